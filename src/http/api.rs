//! `/api/v1`: messages (send, list, one with its timeline) and calls.
//!
//! Authentication: `Authorization: Bearer <server.api_token>` when a token is configured (it
//! must be, unless the server listens on loopback only).

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use crate::cloud_api::wire;
use crate::phone::PhoneE164;
use crate::store::{Enqueued, NewMessage};
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/messages", get(list_messages).post(send_message))
        .route("/api/v1/messages/{id}", get(get_message))
        .route("/api/v1/calls", get(list_calls))
        .route("/api/v1/numbers", get(list_numbers))
}

fn authorize(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &s.settings.api_token else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::unauthorized("send 'Authorization: Bearer <server.api_token>'"))?;
    if crate::signature::tokens_equal(given.trim(), token.expose_secret()) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "the bearer token is not server.api_token",
        ))
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

async fn list_messages(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let rows = s.store.list_messages(q.limit.min(1000)).await?;
    Ok(Json(json!({"data": rows})).into_response())
}

async fn get_message(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let detail = s
        .store
        .message(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no message with id '{id}'")))?;
    let explanation = detail
        .message
        .error_code
        .map(crate::cloud_api::errors::explain);
    let mut body = serde_json::to_value(&detail)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    body["error_explanation"] = json!(explanation);
    Ok(Json(body).into_response())
}

async fn list_calls(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let rows = s.store.list_calls(q.limit.min(1000)).await?;
    Ok(Json(json!({"data": rows})).into_response())
}

/// What Meta last said about each sending number, with the pace the outbox keeps.
async fn list_numbers(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let known = s.store.numbers().await?;
    let data: Vec<_> = s
        .settings
        .senders
        .iter()
        .map(|sender| {
            let state = known
                .iter()
                .find(|n| n.phone_number_id == sender.phone_number_id);
            json!({
                "phone_number_id": sender.phone_number_id,
                "display_number": sender.display_number,
                "throughput_per_second": s.pacer.rate(&sender.phone_number_id),
                "quality_rating": state.and_then(|n| n.quality_rating.clone()),
                "messaging_tier": state.and_then(|n| n.messaging_tier.clone()),
                "status": state.and_then(|n| n.status.clone()),
                "updated_at": state.map(|n| n.updated_at),
            })
        })
        .collect();
    Ok(Json(json!({"data": data})).into_response())
}

/// `POST /api/v1/messages` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    /// Sending number's phone_number_id; defaults to the first sender.
    #[serde(default)]
    from: Option<String>,
    to: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    template: Option<TemplateRequest>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateRequest {
    name: String,
    language: String,
    #[serde(default)]
    parameters: Vec<String>,
}

async fn send_message(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let req: SendRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("malformed", format!("{e}. Expected {{\"to\": \"+E164\", \"text\": \"...\"}} or {{\"to\", \"template\": {{\"name\", \"language\", \"parameters\"}}}}"))
    })?;
    let sender = match &req.from {
        Some(id) => s
            .settings
            .senders
            .iter()
            .find(|x| &x.phone_number_id == id)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "unknown_sender",
                    format!("from = '{id}' is not the phone_number_id of any [[senders]]"),
                )
            })?,
        None => &s.settings.senders[0],
    };
    let to = PhoneE164::parse_international(&req.to)
        .map_err(|e| ApiError::bad_request("invalid_phone_number", e))?;
    let id = crate::processor::new_message_id();
    let (kind, body) = match (&req.text, &req.template) {
        (Some(text), None) => {
            let n = text.chars().count();
            if n == 0 || n > 4096 {
                return Err(ApiError::bad_request(
                    "text_length",
                    format!("text has {n} characters; WhatsApp allows 1 to 4096"),
                ));
            }
            ("text", wire::text(to.as_str(), text, &id))
        }
        (None, Some(t)) => (
            "template",
            wire::template(to.as_str(), &t.name, &t.language, &t.parameters, &id),
        ),
        _ => {
            return Err(ApiError::bad_request(
                "message_kind",
                "give exactly one of 'text' or 'template'",
            ));
        }
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(req.idempotency_key)
        .map(|k| format!("api:{k}"));
    let message = NewMessage {
        id,
        sender_id: sender.phone_number_id.clone(),
        to: to.to_string(),
        kind: kind.to_string(),
        body,
        idempotency_key: key,
        reason: "sent through the API".into(),
        created_at: now_ms(),
    };
    let (status, id, duplicate) = match s.store.enqueue(&message).await? {
        Enqueued::New(id) => (StatusCode::ACCEPTED, id, false),
        Enqueued::Existing(id) => (StatusCode::OK, id, true),
    };
    s.wakers.wake(&sender.phone_number_id);
    Ok((status, Json(json!({"id": id, "duplicate": duplicate}))).into_response())
}
