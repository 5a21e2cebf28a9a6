//! WhatsApp Business Calling in the API:
//! - `POST /api/v1/calls` — the business calls a user: permission and region are checked
//!   locally (refused with the reason, and recorded), then Meta's `connect`;
//! - `GET /api/v1/calls/outbound` — those calls and what became of them;
//! - `POST /api/v1/calls/permission-requests` — asks a user for permission to call
//!   (an interactive `call_permission_request`, through the normal send path and its checks);
//! - `GET /api/v1/contacts/{wa_id}/call-permission` — the pair's permission, what may be done
//!   now, and every `call.permission_changed` event.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::{ApiPath, ApiQuery, JsonBody};
use super::{authorize, sender};
use crate::calling::book::BusinessCall;
use crate::phone::PhoneE164;
use crate::time::now_ms;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceCall {
    to: String,
    #[serde(default)]
    from: Option<String>,
    /// The business side's WebRTC offer: `{"sdp_type": "offer", "sdp": "v=0\r\n…"}`.
    session: Value,
}

#[utoipa::path(
    post,
    path = "/api/v1/calls",
    tag = "calling",
    operation_id = "calling_place_call",
    request_body(content = PlaceCall, content_type = "application/json"),
    responses((status = 202, description = "The business-initiated WhatsApp call, started", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn place_call(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(raw): JsonBody,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let req: PlaceCall = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::bad_request(
            "malformed",
            format!("{e}. Expected {{\"to\": \"+E164\", \"session\": {{\"sdp_type\": \"offer\", \"sdp\": \"v=0…\"}}}}"),
        )
    })?;
    let sender = sender(&s, req.from.as_deref())?;
    let to = PhoneE164::parse_international(&req.to)
        .map_err(|e| ApiError::bad_request("invalid_phone_number", e))?;
    if req.session.get("sdp_type").and_then(Value::as_str) != Some("offer")
        || !req
            .session
            .get("sdp")
            .and_then(Value::as_str)
            .is_some_and(|sdp| sdp.starts_with("v=0"))
    {
        return Err(ApiError::bad_request(
            "invalid_session",
            "session must be {\"sdp_type\": \"offer\", \"sdp\": \"v=0\\r\\n…\"}: the SDP offer of the business's WebRTC endpoint (RFC 8866, CRLF line ends)",
        ));
    }
    let now = now_ms();
    let mut call = BusinessCall {
        id: format!("call_{}", uuid::Uuid::now_v7().simple()),
        sender_id: sender.phone_number_id.clone(),
        user_id: to.digits().to_string(),
        wacid: None,
        status: "refused".into(),
        reason: None,
        duration: None,
        created_at: now,
        updated_at: now,
    };
    let local = match crate::calling::region::business_calls_available(&sender.display_number) {
        Err(why) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "calling_unavailable",
            why,
        )),
        Ok(()) => s
            .book
            .may_call(&sender.phone_number_id, to.digits(), now)
            .await?
            .map_err(|r| {
                let code = match r.code {
                    138012 => "call_limit_reached",
                    _ => "no_call_permission",
                };
                ApiError::new(StatusCode::FORBIDDEN, code, r.message)
            }),
    };
    if let Err(e) = local {
        call.reason = Some(e.message.clone());
        s.store.save_business_call(&call).await?;
        return Err(e);
    }
    // The row exists before Meta is asked, and Meta echoes our id in every calls webhook
    // (`biz_opaque_callback_data`), so a webhook that beats Meta's answer finds its call.
    call.status = "calling".into();
    s.store.save_business_call(&call).await?;
    let body = json!({
        "messaging_product": "whatsapp",
        "to": to.digits(),
        "action": "connect",
        "session": req.session,
        "biz_opaque_callback_data": call.id,
    });
    match s
        .client
        .call_action(&sender.phone_number_id, &sender.access_token, &body)
        .await
    {
        Ok(answer) => {
            if let Some(wacid) = answer.pointer("/calls/0/id").and_then(Value::as_str) {
                s.store.set_business_call_wacid(&call.id, wacid).await?;
            }
            let placed = s.store.business_call(&call.id).await?.unwrap_or(call);
            Ok((StatusCode::CREATED, Json(json!(placed))).into_response())
        }
        Err(e) => {
            call.status = "failed".into();
            let explained = e
                .code
                .and_then(crate::cloud_api::errors::lookup)
                .map(|k| format!("{e}: {}", k.fix))
                .unwrap_or_else(|| e.to_string());
            call.reason = Some(explained.clone());
            s.store.save_business_call(&call).await?;
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "cloud_api_refused",
                format!("Meta refused the call: {explained}"),
            ))
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Limit {
    #[serde(default = "fifty")]
    limit: u32,
}

fn fifty() -> u32 {
    50
}

#[utoipa::path(
    get,
    path = "/api/v1/calls/outbound",
    tag = "calling",
    operation_id = "calling_list_outbound",
    params(Limit),
    responses((status = 200, description = "Business-initiated WhatsApp calls, newest first", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn list_outbound(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<Limit>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let calls = s.store.business_calls(q.limit.min(1000)).await?;
    Ok(Json(json!({"calls": calls})).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionRequest {
    to: String,
    #[serde(default)]
    from: Option<String>,
    /// The sentence shown above WhatsApp's accept/decline buttons.
    text: String,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/calls/permission-requests",
    tag = "calling",
    operation_id = "calling_request_permission",
    request_body(content = PermissionRequest, content_type = "application/json"),
    responses((status = 202, description = "The call-permission request, queued as a message", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn request_permission(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(raw): JsonBody,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let req: PermissionRequest = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::bad_request(
            "malformed",
            format!("{e}. Expected {{\"to\": \"+E164\", \"text\": \"We would like to call you about …\"}}"),
        )
    })?;
    let mut send = json!({
        "to": req.to,
        "message": {"type": "interactive", "interactive": {
            "type": "call_permission_request",
            "action": {"name": "call_permission_request"},
            "body": {"text": req.text},
        }},
    });
    if let Some(f) = req.from {
        send["from"] = json!(f);
    }
    if let Some(k) = req.idempotency_key {
        send["idempotency_key"] = json!(k);
    }
    let bytes = serde_json::to_vec(&send).unwrap_or_default();
    super::send::send(&s, &headers, &bytes).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PermissionQuery {
    #[serde(default)]
    from: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/contacts/{wa_id}/call-permission",
    tag = "calling",
    operation_id = "calling_get_permission",
    params(("wa_id" = String, Path, description = "The customer's WhatsApp id (digits)"), PermissionQuery),
    responses((status = 200, description = "Whether the business may call this customer, and until when", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn get_permission(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(user): ApiPath<String>,
    ApiQuery(q): ApiQuery<PermissionQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let sender = sender(&s, q.from.as_deref())?;
    let user = PhoneE164::from_wa_id(&user)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_phone_number",
                format!("'{user}' is not a wa_id (the user's number in digits, e.g. 919876543210)"),
            )
        })?
        .digits()
        .to_string();
    let now = now_ms();
    let record = s.book.get(&sender.phone_number_id, &user).await?;
    let events = s
        .store
        .call_permission_events(Some(&sender.phone_number_id), Some(&user))
        .await?;
    let limits = &s.book.limits;
    let region = crate::calling::region::business_calls_available(&sender.display_number);
    let verdict = |r: Result<(), crate::calling::Refusal>| match (r, &region) {
        (_, Err(why)) => json!({"allowed": false, "reason": why}),
        (Ok(()), _) => json!({"allowed": true}),
        (Err(e), _) => json!({"allowed": false, "code": e.code, "reason": e.message}),
    };
    Ok(Json(json!({
        "phone_number_id": sender.phone_number_id,
        "user": user,
        "status": record.status_at(now).as_str(),
        "permanent": record.permanent,
        "expires_at": record.expires_at,
        "consecutive_unanswered_calls": record.consecutive_unanswered,
        "can_request": verdict(record.may_request(now, limits)),
        "can_call": verdict(record.may_call(now, limits)),
        "events": events,
    }))
    .into_response())
}
