//! `/api/v1/conversations`: every conversation with a customer on a business number, its
//! transcript, and closing one by hand.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::{ApiPath, ApiQuery};
use super::authorize;
use crate::conversation::view;
use crate::store::ConversationQuery;
use crate::time::{Millis, now_ms};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open` or `ended`.
    state: Option<String>,
    /// A sender's phone_number_id.
    number: Option<String>,
    /// The customer: a phone number (with or without `+`) or `bsuid:…`.
    contact: Option<String>,
    /// Started at or after (RFC 3339 or unix milliseconds).
    from: Option<String>,
    /// Started before.
    to: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

/// A time given in a query: RFC 3339 or unix milliseconds.
pub fn parse_time(field: &str, v: &str) -> Result<Millis, ApiError> {
    crate::time::parse(v)
        .map_err(|e| ApiError::bad_request("invalid_query", format!("{field} = {e}")))
}

#[utoipa::path(
    get,
    path = "/api/v1/conversations",
    tag = "conversations",
    operation_id = "conversations_list",
    params(ListQuery),
    responses((status = 200, description = "Conversations, newest first, with `next_cursor`", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let open = match q.state.as_deref() {
        None => None,
        Some("open") => Some(true),
        Some("ended") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("state = '{other}': use open or ended"),
            ));
        }
    };
    let before = match &q.cursor {
        None => None,
        Some(c) => Some(
            c.split_once('_')
                .and_then(|(at, id)| Some((at.parse().ok()?, id.to_string())))
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_query", "cursor is not one this API returned")
                })?,
        ),
    };
    let limit = q.limit.clamp(1, 500);
    let query = ConversationQuery {
        open,
        sender_id: q.number.clone(),
        contact: q
            .contact
            .as_deref()
            .map(|c| c.trim_start_matches('+').to_string()),
        started_after: q
            .from
            .as_deref()
            .map(|v| parse_time("from", v))
            .transpose()?,
        started_before: q.to.as_deref().map(|v| parse_time("to", v)).transpose()?,
        before,
        search: None,
        limit,
    };
    let rows = s.store.conversations(&query).await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|c| format!("{}_{}", c.started_at, c.id)))
        .flatten();
    let data: Vec<_> = rows.iter().map(|c| view(&s.settings, c)).collect();
    Ok(Json(json!({"data": data, "next_cursor": next_cursor})).into_response())
}

async fn found(s: &AppState, id: &str) -> Result<crate::conversation::Conversation, ApiError> {
    s.store
        .conversation(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no conversation with id '{id}'")))
}

#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}",
    tag = "conversations",
    operation_id = "conversations_show",
    params(("id" = String, Path, description = "The conversation id (cnv_…)")),
    responses((status = 200, description = "The conversation with its transcript and hand-off", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let c = found(&s, &id).await?;
    let transcript = s.store.transcript(&id).await?;
    let mut body = view(&s.settings, &c);
    // A person took over (an assistant's hand-off, a flow's, a reply through the API): the
    // number's assistant does not answer this conversation.
    let pause = s.store.auto_reply_pause(&c.sender_id, &c.contact).await?;
    body["hand_off"] = match pause.filter(|p| p.covers(&c.id, c.started_at)) {
        Some(p) => json!({"at": p.at, "reason": p.reason}),
        None => serde_json::Value::Null,
    };
    body["transcript"] = json!(transcript);
    body["transcript_text"] = json!(crate::conversation::transcript_text(&transcript));
    Ok(Json(body).into_response())
}

/// Ends a conversation now ([`crate::conversation::request_close`]); the answer is 202 and
/// `conversation.ended` follows.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/close",
    tag = "conversations",
    operation_id = "conversations_close",
    params(("id" = String, Path, description = "The conversation id (cnv_…)")),
    responses((status = 202, description = "Closing: `conversation.ended` follows", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn close(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let c = found(&s, &id).await?;
    if let Err(why) = crate::conversation::request_close(s.store.as_ref(), &c, now_ms()).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conversation_ended",
            why,
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "state": "closing"})),
    )
        .into_response())
}
