//! `/api/v1`: messages (send, list, one with its timeline), calls, conversations, events, the
//! webhook endpoints they are delivered to, and flows with their runs (and `/hooks/{flow}`).
//!
//! Authentication: `Authorization: Bearer <server.api_token>` when a token is configured (it
//! must be, unless the server listens on loopback only).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};

mod assistants;
mod calling;
pub(super) mod consent;
mod conversations;
pub(super) mod events;
mod flows;
mod send;
mod webhook_endpoints;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/messages",
            get(list_messages).post(send::send_message),
        )
        .route("/api/v1/messages/{id}", get(get_message))
        .route("/api/v1/calls", get(list_calls).post(calling::place_call))
        .route("/api/v1/calls/outbound", get(calling::list_outbound))
        .route(
            "/api/v1/calls/permission-requests",
            axum::routing::post(calling::request_permission),
        )
        .route(
            "/api/v1/contacts/{wa_id}/call-permission",
            get(calling::get_permission),
        )
        .route("/api/v1/numbers", get(list_numbers))
        .route("/api/v1/numbers/{id}/events", get(number_events))
        .route("/api/v1/templates", get(list_templates))
        .route("/api/v1/consents", get(consent::list).post(consent::record))
        .route("/api/v1/conversations", get(conversations::list))
        .route("/api/v1/conversations/{id}", get(conversations::show))
        .route(
            "/api/v1/conversations/{id}/close",
            post(conversations::close),
        )
        .route("/api/v1/events", get(events::list))
        .route("/api/v1/events/stream", get(events::stream))
        .route(
            "/api/v1/webhook-endpoints",
            get(webhook_endpoints::list).post(webhook_endpoints::create),
        )
        .route(
            "/api/v1/webhook-endpoints/{id}",
            get(webhook_endpoints::show)
                .patch(webhook_endpoints::update)
                .delete(webhook_endpoints::delete),
        )
        .route(
            "/api/v1/webhook-endpoints/{id}/rotate-secret",
            post(webhook_endpoints::rotate_secret),
        )
        .route(
            "/api/v1/webhook-endpoints/{id}/replay",
            post(webhook_endpoints::replay_range),
        )
        .route(
            "/api/v1/webhook-deliveries",
            get(webhook_endpoints::deliveries),
        )
        .route(
            "/api/v1/webhook-deliveries/{id}",
            get(webhook_endpoints::delivery),
        )
        .route(
            "/api/v1/webhook-deliveries/{id}/replay",
            post(webhook_endpoints::replay),
        )
        .route("/api/v1/assistants", get(assistants::list))
        .route("/api/v1/assistants/{name}/replies", post(assistants::reply))
        .route("/api/v1/flows", get(flows::list).post(flows::create))
        .route("/api/v1/flows/{name}", get(flows::show))
        .route(
            "/api/v1/flows/{name}/runs",
            get(flows::runs_of_flow).post(flows::start),
        )
        .route("/api/v1/flow-runs", get(flows::all_runs))
        .route("/api/v1/flow-runs/{id}", get(flows::show_run))
        .route("/api/v1/flow-runs/{id}/cancel", post(flows::cancel))
        .route("/api/v1/flow-runs/{id}/rerun", post(flows::rerun))
        .route("/hooks/{name}", post(flows::hook))
}

/// Bearer auth: `server.api_token` or a key from `ringback keys create`. With neither
/// configured the API is open, which the configuration allows only on a loopback address.
pub(super) async fn authorize(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let (Some(token), Some(g)) = (&s.settings.api_token, given)
        && crate::signature::tokens_equal(g, token.expose_secret())
    {
        return Ok(());
    }
    let keys = s
        .store
        .api_key_valid(&crate::api_keys::hash(given.unwrap_or("")))
        .await?;
    match (keys, &s.settings.api_token, given) {
        (Some(true), ..) => Ok(()),
        (None, None, _) => Ok(()),
        (_, _, None) => Err(ApiError::unauthorized(
            "send 'Authorization: Bearer <key>' with a key from `ringback keys create`",
        )),
        _ => Err(ApiError::unauthorized(
            "the bearer token is not an active API key (see `ringback keys list`)",
        )),
    }
}

/// The sender a request names in `from` (a phone_number_id), or the first one.
pub(super) fn sender<'a>(
    s: &'a AppState,
    from: Option<&str>,
) -> Result<&'a crate::config::Sender, ApiError> {
    s.settings
        .sender(from)
        .map_err(|e| ApiError::bad_request("unknown_sender", format!("from = {e}")))
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
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let rows = s.store.list_messages(q.limit.min(1000)).await?;
    Ok(Json(json!({"data": rows})).into_response())
}

async fn get_message(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
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
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let rows = s.store.list_calls(q.limit.min(1000)).await?;
    Ok(Json(json!({"data": rows})).into_response())
}

/// The template registry: each template with its variables and a preview.
async fn list_templates(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let data: Vec<_> = s
        .templates
        .snapshot()
        .iter()
        .map(|t| {
            let vars = t.body_params();
            let sample: Vec<String> = vars.iter().map(|v| format!("<{v}>")).collect();
            json!({"waba_id": t.waba_id, "name": t.name, "language": t.language, "status": t.status, "category": t.category,
                "parameter_format": t.parameter_format, "variables": vars, "header": t.header_format(), "preview": t.preview(&sample)})
        })
        .collect();
    Ok(Json(json!({"data": data})).into_response())
}

/// The history of what Meta announced about one number.
async fn number_events(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    if !s.settings.senders.iter().any(|x| x.phone_number_id == id) {
        return Err(ApiError::not_found(format!(
            "no sender with phone_number_id '{id}'"
        )));
    }
    let events = s.store.number_events(&id, 200).await?;
    Ok(Json(json!({"data": events})).into_response())
}

/// What Meta last said about each sending number, with the pace the outbox keeps.
async fn list_numbers(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
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
                "sending": s.sender_status.get(&sender.phone_number_id),
            })
        })
        .collect();
    Ok(Json(json!({"data": data})).into_response())
}
