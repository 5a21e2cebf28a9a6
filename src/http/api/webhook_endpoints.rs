//! `/api/v1/webhook-endpoints` and `/api/v1/webhook-deliveries`: where events are delivered,
//! the log of every delivery and attempt, and replays.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::{ApiJson, ApiPath, ApiQuery};
use super::authorize;
use super::conversations::parse_time;
use crate::outbound_webhooks::{self, EndpointInput};
use crate::store::{DeliveryQuery, Endpoint};
use crate::time::now_ms;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    url: String,
    /// Event types to deliver; all when empty or absent.
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChange {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    /// `true` enables a disabled endpoint again (its failure mark is cleared).
    enabled: Option<bool>,
}

fn view(e: &Endpoint) -> Value {
    json!({
        "id": e.id, "url": e.url, "description": e.description, "events": e.event_types,
        "enabled": e.enabled, "disabled_reason": e.disabled_reason, "failing_since": e.failing_since,
        "created_at": e.created_at, "previous_secret_valid_until": e.previous_until,
    })
}

async fn checked(s: &AppState, input: &EndpointInput) -> Result<(), ApiError> {
    outbound_webhooks::check(input, s.settings.outbound_webhooks.allow_private_addresses)
        .await
        .map_err(|e| ApiError::bad_request("invalid_endpoint", e))
}

async fn found(s: &AppState, id: &str) -> Result<Endpoint, ApiError> {
    s.store
        .endpoint(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook endpoint with id '{id}'")))
}

#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints",
    tag = "webhooks",
    operation_id = "webhooks_create",
    request_body(content = NewEndpoint, content_type = "application/json"),
    responses((status = 201, description = "The endpoint, with its signing secret (shown once)", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(n): ApiJson<NewEndpoint>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let input = EndpointInput {
        url: n.url,
        description: n.description,
        event_types: n.events,
    };
    checked(&s, &input).await?;
    let e = outbound_webhooks::new_endpoint(input, now_ms());
    s.store.create_endpoint(&e).await?;
    let mut body = view(&e);
    // The one time the secret is shown (and after a rotation): receivers verify with it.
    body["secret"] = json!(e.secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/webhook-endpoints",
    tag = "webhooks",
    operation_id = "webhooks_list",
    responses((status = 200, description = "Every endpoint (secrets never shown)", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn list(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let data: Vec<_> = s.store.endpoints().await?.iter().map(view).collect();
    Ok(Json(json!({"data": data})).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    operation_id = "webhooks_show",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    responses((status = 200, description = "The endpoint", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    Ok(Json(view(&found(&s, &id).await?)).into_response())
}

#[utoipa::path(
    patch,
    path = "/api/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    operation_id = "webhooks_update",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    request_body(content = EndpointChange, content_type = "application/json"),
    responses((status = 200, description = "The endpoint, changed", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn update(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(c): ApiJson<EndpointChange>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let mut e = found(&s, &id).await?;
    let input = EndpointInput {
        url: c.url.unwrap_or(e.url.clone()),
        description: c.description.unwrap_or(e.description.clone()),
        event_types: c.events.unwrap_or(e.event_types.clone()),
    };
    checked(&s, &input).await?;
    (e.url, e.description, e.event_types) = (input.url, input.description, input.event_types);
    if let Some(enabled) = c.enabled {
        e.enabled = enabled;
        if enabled {
            e.disabled_reason = None;
            e.failing_since = None;
        } else {
            e.disabled_reason = Some("disabled through the API".into());
        }
    }
    s.store.update_endpoint(&e).await?;
    Ok(Json(view(&e)).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    operation_id = "webhooks_delete",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    responses((status = 200, description = "Deleted", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn delete(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    if !s.store.delete_endpoint(&id).await? {
        return Err(ApiError::not_found(format!(
            "no webhook endpoint with id '{id}'"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A new secret; the old one keeps signing alongside it for a day.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints/{id}/rotate-secret",
    tag = "webhooks",
    operation_id = "webhooks_rotate_secret",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    responses((status = 200, description = "The new secret (the old one keeps signing for a day)", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn rotate_secret(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let mut e = found(&s, &id).await?;
    outbound_webhooks::rotate(&mut e, now_ms());
    s.store.update_endpoint(&e).await?;
    Ok(Json(
        json!({"id": e.id, "secret": e.secret, "previous_secret_valid_until": e.previous_until}),
    )
    .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRange {
    /// Events that happened at or after (RFC 3339 or unix milliseconds).
    from: String,
    /// … and before.
    to: Option<String>,
}

/// Delivers again every event of a time range to one endpoint.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints/{id}/replay",
    tag = "webhooks",
    operation_id = "webhooks_replay_range",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    request_body(content = ReplayRange, content_type = "application/json"),
    responses((status = 202, description = "The events of the range, queued again for this endpoint", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn replay_range(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(r): ApiJson<ReplayRange>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    found(&s, &id).await?;
    let from = parse_time("from", &r.from)?;
    let to =
        r.to.as_deref()
            .map(|t| parse_time("to", t))
            .transpose()?
            .unwrap_or(i64::MAX);
    let n = s
        .store
        .replay(None, Some(&id), Some((from, to)), now_ms())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"replayed": n}))).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    endpoint: Option<String>,
    /// `pending`, `delivered` or `failed`.
    state: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<i64>,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

#[utoipa::path(
    get,
    path = "/api/v1/webhook-deliveries",
    tag = "webhooks",
    operation_id = "webhooks_deliveries",
    params(DeliveriesQuery),
    responses((status = 200, description = "Deliveries, newest first, with `next_cursor`", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn deliveries(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    if let Some(state) = &q.state
        && !["pending", "delivered", "failed"].contains(&state.as_str())
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("state = '{state}': use pending, delivered or failed"),
        ));
    }
    let limit = q.limit.clamp(1, 500);
    let rows = s
        .store
        .deliveries(&DeliveryQuery {
            endpoint_id: q.endpoint,
            state: q.state,
            before_id: q.cursor,
            limit,
        })
        .await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|d| d.id))
        .flatten();
    Ok(Json(json!({"data": rows, "next_cursor": next_cursor})).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/webhook-deliveries/{id}",
    tag = "webhooks",
    operation_id = "webhooks_delivery",
    params(("id" = i64, Path, description = "The delivery id")),
    responses((status = 200, description = "The delivery with each attempt", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn delivery(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let (d, attempts) = s
        .store
        .delivery(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook delivery with id {id}")))?;
    let mut body = json!(d);
    body["attempts_log"] = json!(attempts);
    Ok(Json(body).into_response())
}

/// Delivers one event again (whatever became of it), with the same `webhook-id`.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-deliveries/{id}/replay",
    tag = "webhooks",
    operation_id = "webhooks_replay",
    params(("id" = i64, Path, description = "The delivery id")),
    responses((status = 202, description = "Queued again, with the same webhook id", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn replay(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let n = s.store.replay(Some(id), None, None, now_ms()).await?;
    if n == 0 {
        return Err(ApiError::not_found(format!(
            "no webhook delivery with id {id}"
        )));
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"replayed": n}))).into_response())
}
