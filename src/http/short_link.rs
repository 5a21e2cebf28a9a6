//! `GET /l/{code}`: a tracked click-to-chat link's short address. It counts the click (and
//! journals `link.clicked`) and redirects to the link's wa.me address.
//!
//! The redirect target is only ever built from the stored link — a business number and its
//! text — never from the request, so the route cannot be used as an open redirect; a path that
//! is not a code at all is refused before the store is asked.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::extract::ApiPath;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/l/{code}", axum::routing::get(follow))
}

async fn follow(
    State(s): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found("this link does not exist (or is no longer tracked)");
    if !crate::links::is_code(&code) {
        return Err(missing());
    }
    let link = s
        .store
        .link_clicked(&code, crate::time::now_ms())
        .await?
        .ok_or_else(missing)?;
    metrics::counter!("ringback_link_clicks_total").increment(1);
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, link.wa_me()),
            // Every click must reach Ringback to be counted.
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::REFERRER_POLICY, "no-referrer".to_string()),
        ],
    )
        .into_response())
}
