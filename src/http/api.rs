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
use axum::routing::get;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};

mod assistants;
mod calling;
pub(super) mod consent;
mod conversations;
pub(super) mod events;
mod flows;
pub(super) mod links;
pub mod openapi;
mod openapi_page;
mod send;
mod webhook_endpoints;

/// Every `/api/v1` route (and `/hooks/{flow}`), each registered together with its OpenAPI
/// description ([`openapi`]).
pub(super) fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(list_messages, send::send_message))
        .routes(routes!(get_message))
        .routes(routes!(list_calls, calling::place_call))
        .routes(routes!(calling::list_outbound))
        .routes(routes!(calling::request_permission))
        .routes(routes!(calling::get_permission))
        .routes(routes!(list_numbers))
        .routes(routes!(number_events))
        .routes(routes!(list_templates))
        .routes(routes!(consent::list, consent::record))
        .routes(routes!(conversations::list))
        .routes(routes!(conversations::show))
        .routes(routes!(conversations::close))
        .routes(routes!(events::list))
        .routes(routes!(events::stream))
        .routes(routes!(webhook_endpoints::list, webhook_endpoints::create))
        .routes(routes!(
            webhook_endpoints::show,
            webhook_endpoints::update,
            webhook_endpoints::delete
        ))
        .routes(routes!(webhook_endpoints::rotate_secret))
        .routes(routes!(webhook_endpoints::replay_range))
        .routes(routes!(webhook_endpoints::deliveries))
        .routes(routes!(webhook_endpoints::delivery))
        .routes(routes!(webhook_endpoints::replay))
        .routes(routes!(assistants::list))
        .routes(routes!(assistants::reply))
        .routes(routes!(flows::list, flows::create))
        .routes(routes!(flows::show))
        .routes(routes!(flows::runs_of_flow, flows::start))
        .routes(routes!(flows::all_runs))
        .routes(routes!(flows::show_run))
        .routes(routes!(flows::cancel))
        .routes(routes!(flows::rerun))
        .routes(routes!(flows::hook))
        .routes(routes!(links::list, links::create))
        .routes(routes!(links::show))
        .routes(routes!(links::qr))
}

pub fn router() -> Router<AppState> {
    let (router, _) = documented().split_for_parts();
    router
        .route("/api/openapi.json", get(openapi::json))
        .route("/api/docs", get(openapi::docs))
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

#[utoipa::path(
    get,
    path = "/api/v1/messages",
    tag = "messages",
    operation_id = "messages_list_messages",
    params(ListQuery),
    responses((status = 200, description = "The newest messages, each with its state and the reason it was sent", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
async fn list_messages(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let rows = s.store.list_messages(q.limit.min(1000)).await?;
    Ok(Json(json!({"data": rows})).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/messages/{id}",
    tag = "messages",
    operation_id = "messages_get_message",
    params(("id" = String, Path, description = "The message id (msg_…)")),
    responses((status = 200, description = "The message with its body, attempts, statuses and Meta's error explained", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/calls",
    tag = "calls",
    operation_id = "calls_list_calls",
    params(ListQuery),
    responses((status = 200, description = "The newest calls, with Ringback's decision and the reason", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/templates",
    tag = "templates",
    operation_id = "templates_list_templates",
    responses((status = 200, description = "The template registry, each template with its variables and a preview", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/numbers/{id}/events",
    tag = "numbers",
    operation_id = "numbers_number_events",
    params(("id" = String, Path, description = "The number's phone_number_id")),
    responses((status = 200, description = "What Meta announced about the number, newest first", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/numbers",
    tag = "numbers",
    operation_id = "numbers_list_numbers",
    responses((status = 200, description = "Each sending number: quality, tier, status, throughput and whether it can send", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
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
