//! `POST /api/v1/messages`: every message is checked against the platform's rules before it
//! is queued — the Cloud API rule book (types, limits, approved templates and their
//! parameters) and the 24-hour window — so a send Meta would refuse is refused here, at once,
//! with a machine code and a sentence that says what to change.
//!
//! Body: `to` (E.164), optional `from` (a sender's phone_number_id), `idempotency_key` (or the
//! `Idempotency-Key` header), and one of:
//! - `"text": "…"`;
//! - `"template": {"name", "language", "parameters": [..] or {"name": value}, "components"?}`;
//! - `"message": {"type": "interactive" | "image" | "location" | …, "<type>": {…}}` — any Cloud
//!   API message object (reply buttons, lists, call-to-action URLs, media by link or id,
//!   locations, contacts).
//!
//! `fallback_template` (same shape as `template`) is sent instead of a free-form message when
//! the recipient's window is closed.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::JsonBody;
use super::authorize;
use crate::outbox::submit::{NotQueued, Submission};
use crate::phone::PhoneE164;
use crate::policy::{self, Outgoing, Refusal};
use crate::time::now_ms;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    #[serde(default)]
    from: Option<String>,
    to: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    template: Option<TemplateRequest>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    fallback_template: Option<TemplateRequest>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TemplateRequest {
    name: String,
    language: String,
    /// Positional values (`["Asha", "10:30"]`) or named ones (`{"first_name": "Asha"}`).
    #[serde(default)]
    parameters: Value,
    /// Extra components passed through as-is (header media, buttons).
    #[serde(default)]
    components: Vec<Value>,
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// The Cloud API `template` object for a request.
fn template_object(t: &TemplateRequest) -> Result<Value, ApiError> {
    policy::template_object(&t.name, &t.language, &t.parameters, &t.components)
        .map_err(|e| ApiError::bad_request("malformed", e))
}

/// Maps a policy refusal to the API's error.
fn refused(r: Refusal) -> ApiError {
    unprocessable(r.code(), r.to_string())
}

#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "messages",
    operation_id = "messages_send_message",
    request_body(content = SendRequest, content_type = "application/json"),
    responses((status = 202, description = "Queued (200 with `duplicate: true` when the idempotency key was seen before)", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn send_message(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(raw): JsonBody,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    send(&s, &headers, &raw).await
}

/// Checks and queues one message; the caller has authorized the request.
pub(super) async fn send(
    s: &AppState,
    headers: &HeaderMap,
    raw: &[u8],
) -> Result<Response, ApiError> {
    let req: SendRequest = serde_json::from_slice(raw).map_err(|e| {
        ApiError::bad_request("malformed", format!("{e}. Expected {{\"to\": \"+E164\"}} and one of \"text\", \"template\" or \"message\""))
    })?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(req.idempotency_key.clone())
        .map(|k| format!("api:{k}"));
    // A replay of an accepted request answers with the first one's result, before any check:
    // the world (a window, a limit) may have changed since, but the message already exists.
    if let Some(k) = &key
        && let Some(id) = s.store.message_by_idempotency_key(k).await?
    {
        let kind = s.store.message(&id).await?.map(|m| m.message.kind);
        return Ok((
            StatusCode::OK,
            Json(json!({"id": id, "duplicate": true, "type": kind})),
        )
            .into_response());
    }
    let sender = super::sender(s, req.from.as_deref())?;
    let to = PhoneE164::parse_international(&req.to)
        .map_err(|e| ApiError::bad_request("invalid_phone_number", e))?;
    let (kind, payload) = match (&req.text, &req.template, &req.message) {
        (Some(text), None, None) => {
            let n = text.chars().count();
            if n == 0 || n > 4096 {
                return Err(ApiError::bad_request(
                    "text_length",
                    format!("text has {n} characters; WhatsApp allows 1 to 4096"),
                ));
            }
            (
                "text".to_string(),
                json!({"preview_url": false, "body": text}),
            )
        }
        (None, Some(t), None) => ("template".to_string(), template_object(t)?),
        (None, None, Some(m)) => {
            let kind = m
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad_request("malformed", "message.type is required"))?;
            let payload = m.get(kind).cloned().ok_or_else(|| {
                ApiError::bad_request(
                    "malformed",
                    format!("message.{kind} is required for type {kind}"),
                )
            })?;
            (kind.to_string(), payload)
        }
        _ => {
            return Err(ApiError::bad_request(
                "message_kind",
                "give exactly one of 'text', 'template' or 'message'",
            ));
        }
    };
    let fallback = match &req.fallback_template {
        Some(t) => Some(Outgoing {
            kind: "template".into(),
            payload: template_object(t)?,
        }),
        None => None,
    };
    let submitter = crate::outbox::submit::Submitter {
        store: s.store.as_ref(),
        templates: &s.templates,
        book: &s.book,
        wakers: &s.wakers,
    };
    let queued = submitter
        .submit_as_person(
            &s.settings,
            &s.sender_status,
            Submission {
                sender,
                to: &to,
                message: Outgoing { kind, payload },
                fallback,
                idempotency_key: key,
                origin: "sent through the API",
                now: now_ms(),
            },
            "a person (through the API)",
        )
        .await
        .map_err(|e| match e {
            NotQueued::Refused(r) => refused(r),
            NotQueued::CallingUnavailable(why) => unprocessable("calling_unavailable", why),
            NotQueued::PermissionLimit { code, message } => unprocessable(code, message),
            NotQueued::SenderOffline(why) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "sender_offline", why)
            }
            NotQueued::Store(e) => e.into(),
        })?;
    let status = if queued.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(json!({"id": queued.id, "duplicate": queued.duplicate, "type": queued.kind})),
    )
        .into_response())
}
