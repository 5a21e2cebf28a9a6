//! `/api/v1/consents`: record opt-ins and opt-outs (website forms, imports, your CRM) and read
//! or export the ledger for audits (`?format=csv`, streamed: see [`export`]).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::{ApiJson, ApiQuery};
use super::authorize;
use crate::consent::{Action, Category, Record, SOURCES, subject};
use crate::phone::PhoneE164;
use crate::time::now_ms;

pub(in crate::http) mod export;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    /// Sending number; defaults to the first sender.
    #[serde(default)]
    from: Option<String>,
    /// The person, E.164.
    to: String,
    /// `opt_in` or `opt_out`.
    action: String,
    /// `all`, `marketing` or `utility`.
    #[serde(default = "all")]
    category: String,
    /// `website_form`, `api`, `import`, `missed_call`, `whatsapp_message`.
    #[serde(default = "api")]
    source: String,
    /// What proves it (form id, IP and time, import file…).
    evidence: String,
}

fn all() -> String {
    "all".into()
}

fn api() -> String {
    "api".into()
}

#[utoipa::path(
    post,
    path = "/api/v1/consents",
    tag = "consent",
    operation_id = "consent_record",
    request_body(content = NewRecord, content_type = "application/json"),
    responses((status = 201, description = "The record, added to the ledger", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn record(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(r): ApiJson<NewRecord>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let sender = super::sender(&s, r.from.as_deref())?;
    let to = PhoneE164::parse_international(&r.to)
        .map_err(|e| ApiError::bad_request("invalid_phone_number", e))?;
    let action = match r.action.as_str() {
        "opt_in" => Action::OptIn,
        "opt_out" => Action::OptOut,
        other => {
            return Err(ApiError::bad_request(
                "invalid_action",
                format!("action '{other}' must be opt_in or opt_out"),
            ));
        }
    };
    let category = Category::parse(&r.category).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_category",
            format!(
                "category '{}' must be all, marketing or utility",
                r.category
            ),
        )
    })?;
    if !SOURCES.contains(&r.source.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_source",
            format!(
                "source '{}' must be one of {}",
                r.source,
                SOURCES.join(", ")
            ),
        ));
    }
    if r.evidence.trim().is_empty() {
        return Err(ApiError::bad_request(
            "evidence_required",
            "evidence is required: say what proves this consent (form, time, IP, file)",
        ));
    }
    let record = Record {
        sender_id: sender.phone_number_id.clone(),
        subject: subject(Some(to.digits()), None).expect("a phone number is a subject"),
        wa_id: Some(to.digits().to_string()),
        user_id: None,
        category,
        action,
        source: r.source,
        evidence: r.evidence,
        at: now_ms(),
    };
    s.store.record_consent(&record).await?;
    Ok((StatusCode::CREATED, Json(json!({"recorded": record}))).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this person (E.164 or digits).
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/consents",
    tag = "consent",
    operation_id = "consent_list",
    params(ListQuery),
    responses((status = 200, description = "The consent ledger (JSON, or CSV with `format=csv`)", content((serde_json::Value = "application/json"), (String = "text/csv"))), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let subject =
        q.to.as_deref()
            .map(|t| t.chars().filter(char::is_ascii_digit).collect::<String>());
    match q.format.as_deref() {
        None | Some("json") => {}
        Some("csv") => return export::csv(s.store.clone(), subject, export::PAGE).await,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("format '{other}' must be json or csv"),
            ));
        }
    }
    let records = s.store.consent_records(None, subject.as_deref()).await?;
    Ok(Json(json!({"data": records})).into_response())
}
