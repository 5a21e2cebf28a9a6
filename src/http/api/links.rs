//! `/api/v1/links`: click-to-chat links — create one, list them, read one with its counts,
//! and its QR code as SVG or PNG. The same [`crate::links::create`] as `ringback links create`
//! and the console's Links page.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::{ApiPath, ApiQuery, JsonBody};
use super::authorize;
use crate::links::{Link, LinkError, NewLink, view};

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", m)
            }
            // Meta refused, or could not be reached: not the caller's fault.
            LinkError::Meta(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "cloud_api_error", e.to_string())
            }
            LinkError::Store(e) => e.into(),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    /// The text the customer's WhatsApp opens with (it may be empty).
    #[serde(default)]
    text: String,
    /// Where the link is published: `website`, `flyer`, `email-signature` …
    source: String,
    /// The business number's phone_number_id; the first configured number when absent.
    #[serde(default)]
    from: Option<String>,
    /// Count clicks through `/l/{code}` and attribute conversations (default true).
    #[serde(default = "yes")]
    tracked: bool,
    /// Also create Meta's own QR code and short link (`wa.me/message/…`).
    #[serde(default)]
    meta: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/v1/links`.
#[utoipa::path(
    post,
    path = "/api/v1/links",
    tag = "links",
    operation_id = "links_create",
    request_body(content = CreateLink, content_type = "application/json"),
    responses((status = 201, description = "The link: wa.me URL, app deep link, tracked short link, QR code addresses", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable, or Meta refused its QR code); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(raw): JsonBody,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let body: CreateLink = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::bad_request(
            "malformed",
            format!(
                "{e}. Expected {{\"text\": \"Hi, I missed your call\", \"source\": \"website\", \"tracked\": true}}"
            ),
        )
    })?;
    let new = NewLink {
        text: body.text,
        source: body.source,
        sender_id: body.from,
        tracked: body.tracked,
        meta: body.meta,
    };
    let link = crate::links::create(
        s.store.as_ref(),
        &s.settings,
        &s.client,
        new,
        crate::time::now_ms(),
    )
    .await?;
    let body = view(&link, s.settings.public_base_url.as_deref());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// At most this many, newest first (1-1000).
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

/// `GET /api/v1/links`.
#[utoipa::path(
    get,
    path = "/api/v1/links",
    tag = "links",
    operation_id = "links_list",
    params(ListQuery),
    responses((status = 200, description = "The newest links with their clicks and conversations", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    if !(1..=1000).contains(&q.limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit = {} must be between 1 and 1000", q.limit),
        ));
    }
    let base = s.settings.public_base_url.as_deref();
    let data: Vec<Value> = s
        .store
        .links(q.limit)
        .await?
        .iter()
        .map(|l| view(l, base))
        .collect();
    Ok(Json(json!({"data": data})).into_response())
}

async fn find(s: &AppState, code: &str) -> Result<Link, ApiError> {
    let missing = || ApiError::not_found(format!("no link has the code '{code}'"));
    crate::links::find(s.store.as_ref(), code)
        .await?
        .ok_or_else(missing)
}

/// `GET /api/v1/links/{code}`.
#[utoipa::path(
    get,
    path = "/api/v1/links/{code}",
    tag = "links",
    operation_id = "links_show",
    params(("code" = String, Path, description = "The link's code")),
    responses((status = 200, description = "The link with its clicks and conversations", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(code): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let link = find(&s, &code).await?;
    Ok(Json(view(&link, s.settings.public_base_url.as_deref())).into_response())
}

/// `GET /api/v1/links/{code}/qr.svg` and `/qr.png`: the QR code of a link (it encodes the
/// tracked short link when there is one, so scans are counted).
#[utoipa::path(
    get,
    path = "/api/v1/links/{code}/{image}",
    tag = "links",
    operation_id = "links_qr",
    params(("code" = String, Path, description = "The link's code"), ("image" = String, Path, description = "`qr.svg` or `qr.png`")),
    responses((status = 200, description = "The QR code image", content((String = "image/svg+xml"), (String = "image/png"))), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn qr(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath((code, image)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let link = find(&s, &code).await?;
    qr_image(&link, s.settings.public_base_url.as_deref(), &image)
}

/// The image of a link's QR code by file name (`qr.svg`, `qr.png`): for the API and the console.
pub fn qr_image(
    link: &Link,
    public_base_url: Option<&str>,
    file: &str,
) -> Result<Response, ApiError> {
    let target = link.qr_target(public_base_url);
    let (kind, bytes) = match file {
        "qr.svg" => (
            "image/svg+xml",
            crate::links::qr::svg(&target, 256).map(String::into_bytes),
        ),
        "qr.png" => ("image/png", crate::links::qr::png(&target, 8)),
        other => {
            return Err(ApiError::not_found(format!(
                "'{other}' is not an image of a link: ask for qr.svg or qr.png"
            )));
        }
    };
    let bytes = bytes
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_long", e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CONTENT_DISPOSITION, "inline"),
        ],
        bytes,
    )
        .into_response())
}
