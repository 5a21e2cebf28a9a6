//! `/api/v1/assistants`: the configured assistants, and a reply from one
//! (`POST /api/v1/assistants/{name}/replies`), through the same code as `ringback assistants
//! ask` and the flow step `generate_reply`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::{ApiPath, JsonBody};
use super::authorize;
use crate::assistants::{Ask, AskError};

impl From<AskError> for ApiError {
    fn from(e: AskError) -> Self {
        match e {
            AskError::NotFound(_) => ApiError::not_found(e.to_string()),
            AskError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", m)
            }
            AskError::Store(e) => e.into(),
        }
    }
}

/// `GET /api/v1/assistants`: each assistant with its model (never its key) and knowledge.
#[utoipa::path(
    get,
    path = "/api/v1/assistants",
    tag = "assistants",
    operation_id = "assistants_list",
    responses((status = 200, description = "Each assistant with its model (never its key) and knowledge", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn list(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let data: Vec<Value> = s
        .assistants
        .names()
        .into_iter()
        .filter_map(|n| s.assistants.get(n))
        .map(|a| {
            let st = &a.settings;
            json!({
                "name": st.name,
                "mode": if st.provider.is_some() { "model" } else { "knowledge" },
                "model": st.provider.as_ref().map(|p| p.model.clone()),
                "knowledge_files": st.knowledge.iter().map(|k| k.path.display().to_string()).collect::<Vec<_>>(),
                "knowledge_passages": a.knowledge.passages().len(),
                "variables": st.variables,
                "extracts": st.extract.is_some(),
                "hand_off_keywords": st.hand_off_keywords,
            })
        })
        .collect();
    Ok(Json(json!({"data": data})).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplyRequest {
    customer_id: String,
    message: String,
    #[serde(default)]
    variables: Map<String, Value>,
}

/// `POST /api/v1/assistants/{name}/replies {customer_id, message, variables}` →
/// `{reply, parts, conversation_id, source, handed_off, usage, …}`. A model that fails answers
/// 200 with the hand-off message and `handed_off` saying why: the customer still gets an
/// answer.
#[utoipa::path(
    post,
    path = "/api/v1/assistants/{name}/replies",
    tag = "assistants",
    operation_id = "assistants_reply",
    params(("name" = String, Path, description = "The assistant's name")),
    request_body(content = ReplyRequest, content_type = "application/json"),
    responses((status = 200, description = "The reply, its conversation, and usage (or the hand-off message and why)", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn reply(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    JsonBody(raw): JsonBody,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let body: ReplyRequest = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::bad_request(
            "malformed",
            format!(
                "{e}. Expected {{\"customer_id\": \"+447700900123\", \"message\": \"…\", \"variables\": {{…}}}}"
            ),
        )
    })?;
    let reply = s
        .assistants
        .reply(
            &name,
            Ask {
                customer_id: body.customer_id,
                message: body.message,
                variables: body.variables,
            },
        )
        .await?;
    Ok(Json(reply).into_response())
}
