//! The web console: server-rendered pages for the people who run the business (sign in,
//! Today with its live feed, Conversations with the reply box, Settings), styled and scripted by files embedded in the binary
//! (no CDN, no build step).
//!
//! Pages read the same store and domain code as `/api/v1`; what they add is presentation.
//! Every page is rendered by an askama template, which escapes what it prints (a customer's
//! WhatsApp name is attacker-controlled), and is sent with a Content-Security-Policy that
//! allows scripts from this server only, so markup that slipped through could not run.
//!
//! Security: a session is a random token in an HttpOnly, SameSite=Strict cookie (only its
//! hash is stored); every form also carries the session's CSRF token, and a POST whose
//! `Origin` is another site is refused before anything else. Sign-in attempts are limited
//! per account and per address ([`crate::users::Sessions`]).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};

use super::AppState;

mod assets;
mod automation;
mod calls;
mod contacts;
mod conversations;
mod links;
mod messages;
mod numbers;
mod page;
mod session;
mod settings;
mod sign_in;
mod templates;
mod today;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(sign_in::home))
        .route("/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/setup", get(sign_in::setup_form).post(sign_in::setup))
        .route("/today", get(today::page))
        .route("/today/feed", get(today::feed))
        .route("/calls", get(calls::list))
        .route("/messages", get(messages::list))
        .route("/messages/{id}", get(messages::show))
        .route("/conversations", get(conversations::list))
        .route("/conversations/{id}", get(conversations::show))
        .route("/conversations/{id}/reply", post(conversations::reply))
        .route(
            "/conversations/{id}/template",
            post(conversations::send_template),
        )
        .route("/conversations/{id}/close", post(conversations::close))
        .route("/templates", get(templates::list))
        .route("/numbers", get(numbers::list))
        .route("/links", get(links::page).post(links::create))
        .route("/flows", get(automation::flows))
        .route("/flows/runs/{id}", get(automation::run))
        .route("/webhooks", get(automation::webhooks))
        .route("/webhooks/deliveries/{id}", get(automation::delivery))
        .route("/links/{code}/{file}", get(links::qr))
        .route("/contacts", get(contacts::page))
        .route("/contacts/consent", post(contacts::record))
        .route("/contacts/export.csv", get(contacts::export_csv))
        .route("/settings", get(settings::page))
        .route("/settings/users", post(settings::add_user))
        .route("/settings/users/disable", post(settings::disable_user))
        .route("/settings/keys", post(settings::create_key))
        .route("/settings/keys/revoke", post(settings::revoke_key))
        .route("/assets/{file}", get(assets::file))
        .layer(axum::middleware::map_response(protect))
}

/// Headers every console response carries: scripts, styles and connections from this server
/// only, no framing (clickjacking), no referrer to other sites, no caching of pages.
async fn protect(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
