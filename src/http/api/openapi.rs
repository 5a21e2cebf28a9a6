//! The OpenAPI 3.1 description of `/api/v1` (and `/hooks/{flow}`), generated from the
//! handlers' `#[utoipa::path]` annotations: `GET /api/openapi.json`, and a reference page at
//! `/api/docs` rendered from the same document.
//!
//! [`super::router`] registers every route through utoipa-axum's `routes!`, which adds the
//! route and its description together, so the router cannot serve a route the document
//! lacks.

use std::sync::OnceLock;

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Ringback's error shape, on every route and every status from 400 up.
#[derive(ToSchema)]
#[allow(dead_code, reason = "a schema: the JSON is written by `ApiError`")]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code, reason = "a schema: the JSON is written by `ApiError`")]
pub struct ErrorDetail {
    /// A machine code: `invalid_phone_number`, `outside_window`, `not_found`…
    code: String,
    /// A sentence that says what was wrong and what to change.
    message: String,
}

/// The document's frame; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ringback API",
        description = "Missed calls to WhatsApp conversations: messages, calls, conversations, events, webhooks, flows and assistants. Authentication: `Authorization: Bearer <key>` with a key from `ringback keys create` (or `server.api_token`); a server on loopback with neither configured is open.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "messages", description = "Send WhatsApp messages, checked against the platform's rules first"),
        (name = "calls", description = "Calls reported by call sources, and what Ringback decided"),
        (name = "calling", description = "WhatsApp Business Calling"),
        (name = "numbers", description = "The business's sending numbers"),
        (name = "templates", description = "The message template registry"),
        (name = "consent", description = "The consent ledger"),
        (name = "conversations", description = "Conversations with customers"),
        (name = "events", description = "Published events: by cursor or live"),
        (name = "webhooks", description = "Your endpoints and the deliveries to them"),
        (name = "assistants", description = "AI assistants"),
        (name = "flows", description = "Flows and their runs"),
        (name = "links", description = "Click-to-chat links: wa.me, the app deep link, QR codes, tracked short links"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole document, made once.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| super::documented().split_for_parts().1)
}

/// `GET /api/openapi.json`.
pub async fn json() -> Response {
    let mut res = Json(document()).into_response();
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

/// `GET /api/docs`: a reference page rendered from the document, served from the binary.
pub async fn docs() -> Html<String> {
    Html(super::openapi_page::render(document()))
}
