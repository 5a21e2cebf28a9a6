//! `/api/v1/flows` and `/api/v1/flow-runs`: the flows the server runs, posting a new one (or
//! a new version), starting a run by hand, every run with its timeline, cancel and rerun; and
//! `POST /hooks/{flow}`, the inbound HTTP trigger.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::{ApiPath, ApiQuery, JsonBody};
use super::authorize;
use crate::flows::catalog::PutError;
use crate::flows::runs::RunError;
use crate::store::{RunQuery, RunRow};
use crate::time::now_ms;

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::NoFlow(_) | RunError::NoRun(_) => ApiError::not_found(e.to_string()),
            RunError::WrongTrigger { .. } => {
                ApiError::new(StatusCode::CONFLICT, "wrong_trigger", e.to_string())
            }
            RunError::WrongState { .. } => {
                ApiError::new(StatusCode::CONFLICT, "wrong_state", e.to_string())
            }
            RunError::Store(e) => e.into(),
        }
    }
}

fn run_view(r: &RunRow) -> Value {
    json!({
        "id": r.id, "flow": r.flow, "version": r.version, "status": r.status,
        "contact": r.contact, "due_at": r.due_at, "error": r.error,
        "created_at": r.created_at, "updated_at": r.updated_at,
        "trigger": r.state["trigger"], "vars": r.state["vars"], "steps": r.state["steps"],
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/flows",
    tag = "flows",
    operation_id = "flows_list",
    responses((status = 200, description = "Every flow with its current version", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn list(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let mut data = Vec::new();
    for row in s.store.flows().await? {
        let loaded = s.flows.catalog.version(&row.version).await?;
        let version = s.store.flow_version(&row.version).await?;
        data.push(json!({
            "name": row.name, "version": row.version, "enabled": row.enabled,
            "updated_at": row.updated_at,
            "trigger": loaded.as_ref().map(|l| l.flow.trigger.on.clone()),
            "description": loaded.as_ref().map(|l| l.flow.description.clone()),
            "origin": version.map(|v| v.origin),
        }));
    }
    Ok(Json(json!({"data": data})).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/flows/{name}",
    tag = "flows",
    operation_id = "flows_show",
    params(("name" = String, Path, description = "The flow's name")),
    responses((status = 200, description = "The flow, its source and its versions", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let loaded = s
        .flows
        .flow(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no flow named '{name}'")))?;
    let v = s.store.flow_version(&loaded.version).await?;
    Ok(Json(json!({
        "name": loaded.flow.name, "version": loaded.version, "enabled": loaded.flow.enabled,
        "trigger": loaded.flow.trigger.on, "description": loaded.flow.description,
        "origin": v.as_ref().map(|v| v.origin.clone()),
        "source": v.map(|v| v.source),
    }))
    .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewFlow {
    /// The flow file's text (TOML).
    source: String,
}

/// `POST /api/v1/flows {"source": "<the flow's TOML>"}`: checked as `ringback flows check`
/// checks a file, then stored as the flow's current version.
#[utoipa::path(
    post,
    path = "/api/v1/flows",
    tag = "flows",
    operation_id = "flows_create",
    request_body(content = NewFlow, content_type = "application/json"),
    responses((status = 201, description = "The flow, checked and stored as its current version", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(raw): JsonBody,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let body: NewFlow = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::bad_request(
            "malformed",
            format!("{e}. Expected {{\"source\": \"<the flow file's TOML>\"}}"),
        )
    })?;
    let templates = crate::flows::catalog::known_templates(s.store.as_ref(), &s.settings).await?;
    match s.flows.put(&body.source, &templates, now_ms()).await {
        Ok(loaded) => Ok((
            StatusCode::CREATED,
            Json(json!({"name": loaded.flow.name, "version": loaded.version})),
        )
            .into_response()),
        Err(PutError::Invalid(problems)) => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| crate::flows::catalog::located(std::path::Path::new("source"), p))
                .collect();
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_flow",
                lines.join("\n"),
            ))
        }
        Err(PutError::Store(e)) => Err(e.into()),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    status: Option<String>,
    #[serde(default = "default_limit")]
    limit: u32,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn default_limit() -> u32 {
    50
}

const STATUSES: [&str; 6] = [
    "running",
    "sleeping",
    "awaiting_reply",
    "done",
    "failed",
    "cancelled",
];

/// `GET /api/v1/flows/{name}/runs` and `GET /api/v1/flow-runs`: newest first.
async fn list_runs(s: &AppState, flow: Option<String>, q: RunsQuery) -> Result<Response, ApiError> {
    if let Some(status) = &q.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("status = '{status}': use one of {}", STATUSES.join(", ")),
        ));
    }
    let before = match &q.cursor {
        Some(c) => {
            let (at, id) = c
                .split_once('_')
                .and_then(|(a, id)| Some((a.parse().ok()?, id)))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_query",
                        "cursor: give the next_cursor of the previous page",
                    )
                })?;
            Some((at, id.to_string()))
        }
        None => None,
    };
    let limit = q.limit.clamp(1, 500);
    let rows = s
        .store
        .runs(&RunQuery {
            flow,
            status: q.status,
            before,
            limit,
        })
        .await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| format!("{}_{}", r.created_at, r.id)))
        .flatten();
    let data: Vec<Value> = rows.iter().map(run_view).collect();
    Ok(Json(json!({"data": data, "next_cursor": next_cursor})).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/flows/{name}/runs",
    tag = "flows",
    operation_id = "flows_runs_of_flow",
    params(("name" = String, Path, description = "The flow's name"), RunsQuery),
    responses((status = 200, description = "The flow's runs, newest first, with `next_cursor`", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn runs_of_flow(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    if s.flows.flow(&name).await?.is_none() {
        return Err(RunError::NoFlow(name).into());
    }
    list_runs(&s, Some(name), q).await
}

#[utoipa::path(
    get,
    path = "/api/v1/flow-runs",
    tag = "flows",
    operation_id = "flows_all_runs",
    params(RunsQuery),
    responses((status = 200, description = "Every flow's runs, newest first, with `next_cursor`", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn all_runs(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    list_runs(&s, None, q).await
}

fn idempotency_key(headers: &HeaderMap) -> Option<&str> {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok())
}

/// The body of a run's start: a JSON object, which becomes `trigger`.
fn trigger_body(raw: &[u8]) -> Result<Value, ApiError> {
    if raw.is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(raw)
        .map_err(|e| ApiError::bad_request("malformed", format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "malformed",
            "the body must be a JSON object: it becomes the run's `trigger`",
        ));
    }
    Ok(v)
}

fn started(st: crate::flows::runs::Started) -> Response {
    let status = if st.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    (
        status,
        Json(json!({"run_id": st.id, "duplicate": st.duplicate})),
    )
        .into_response()
}

/// `POST /api/v1/flows/{name}/runs`: starts a run by hand; the body is `trigger`.
#[utoipa::path(
    post,
    path = "/api/v1/flows/{name}/runs",
    tag = "flows",
    operation_id = "flows_start",
    params(("name" = String, Path, description = "The flow's name")),
    request_body(content = serde_json::Value, content_type = "application/json"),
    responses((status = 202, description = "The run, stored (its id)", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn start(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    JsonBody(raw): JsonBody,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let input = trigger_body(&raw)?;
    let st = s
        .flows
        .start(&name, "manual", input, idempotency_key(&headers), now_ms())
        .await?;
    Ok(started(st))
}

#[utoipa::path(
    get,
    path = "/api/v1/flow-runs/{id}",
    tag = "flows",
    operation_id = "flows_show_run",
    params(("id" = String, Path, description = "The run id (run_…)")),
    responses((status = 200, description = "The run's timeline: each step, when, input, output, error, retries", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn show_run(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let run = s.flows.run(&id).await?;
    let timeline = s.store.run_timeline(&id).await?;
    let mut view = run_view(&run);
    view["timeline"] = json!(timeline);
    Ok(Json(view).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/flow-runs/{id}/cancel",
    tag = "flows",
    operation_id = "flows_cancel",
    params(("id" = String, Path, description = "The run id (run_…)")),
    responses((status = 200, description = "Cancelled", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn cancel(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let run = s.flows.cancel(&id, now_ms()).await?;
    Ok(Json(run_view(&run)).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/flow-runs/{id}/rerun",
    tag = "flows",
    operation_id = "flows_rerun",
    params(("id" = String, Path, description = "The run id (run_…)")),
    responses((status = 202, description = "Started again from its failed step", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn rerun(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let run = s.flows.rerun(&id, now_ms()).await?;
    Ok(Json(run_view(&run)).into_response())
}

/// `POST /hooks/{flow}`: the inbound HTTP trigger of a flow with `on = "http"`. The caller
/// proves it knows the flow's secret (the variable `secret_env` names) with
/// `Authorization: Bearer <secret>` or `X-Ringback-Signature: sha256=<hex HMAC-SHA256 of the
/// body>`, or sends an API key. The JSON body is the run's `trigger`; the run is stored before
/// the answer (202 with its id), and an `Idempotency-Key` starts one run however often sent.
#[utoipa::path(
    post,
    path = "/hooks/{name}",
    tag = "flows",
    operation_id = "flows_hook",
    params(("name" = String, Path, description = "The flow's name (a flow with `on = \"http\"`)")),
    request_body(content = serde_json::Value, content_type = "application/json"),
    responses((status = 202, description = "The run, stored (its id); the body is the run's `trigger`", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn hook(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    JsonBody(raw): JsonBody,
) -> Result<Response, ApiError> {
    let flow = s
        .flows
        .flow(&name)
        .await?
        .filter(|f| f.flow.trigger.on == "http")
        .ok_or_else(|| {
            ApiError::not_found(format!("no flow named '{name}' with an HTTP trigger"))
        })?;
    let secret = flow
        .flow
        .trigger
        .secret_env
        .as_deref()
        .and_then(|var| s.settings.flows.env_var(var));
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let signature = headers
        .get(crate::inbound::generic::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let by_secret = secret.is_some_and(|secret| {
        bearer.is_some_and(|b| crate::signature::tokens_equal(b, secret))
            || crate::signature::verify(
                crate::signature::Algorithm::HmacSha256Hex,
                crate::inbound::generic::SIGNATURE_HEADER,
                signature,
                secret.as_bytes(),
                &[&raw],
            )
            .is_ok()
    });
    if !by_secret {
        // An API key works too; with no secret and no key, this refuses.
        if bearer.is_none() {
            return Err(ApiError::unauthorized(format!(
                "send 'Authorization: Bearer <secret>' with the secret in {}, or sign the body in {}",
                flow.flow
                    .trigger
                    .secret_env
                    .as_deref()
                    .unwrap_or("the flow's secret_env"),
                crate::inbound::generic::SIGNATURE_HEADER
            )));
        }
        authorize(&s, &headers).await?;
    }
    let input = trigger_body(&raw)?;
    let st = s
        .flows
        .start(&name, "http", input, idempotency_key(&headers), now_ms())
        .await?;
    Ok(started(st))
}
