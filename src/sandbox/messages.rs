//! `POST /{version}/{phone-number-id}/messages`: auth, validation to the documented limits,
//! scripted faults, then a `wamid` and the status webhooks that follow it.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::webhooks::Item;
use super::{Sandbox, SentMessage};
use crate::cloud_api::wire::{
    ErrorEnvelope, GraphError, GraphErrorData, ResponseContact, ResponseMessage, SendResponse,
};
use crate::time::now_ms;
use crate::window;

/// A Graph error ready to send.
pub struct GraphFailure {
    pub http: StatusCode,
    pub code: i64,
    pub title: &'static str,
    pub details: String,
}

impl GraphFailure {
    pub fn new(code: i64, title: &'static str, details: impl Into<String>) -> Self {
        Self {
            http: default_http(code),
            code,
            title,
            details: details.into(),
        }
    }
}

/// The HTTP status Meta documents for a code (Cloud API reference §4.3).
fn default_http(code: i64) -> StatusCode {
    match code {
        0 | 190 | 104 => StatusCode::UNAUTHORIZED,
        10 | 200..=299 | 368 | 131005 | 131031 | 130497 => StatusCode::FORBIDDEN,
        132001 => StatusCode::NOT_FOUND,
        2 => StatusCode::SERVICE_UNAVAILABLE,
        1 | 131000 | 131016 | 131057 => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for GraphFailure {
    fn into_response(self) -> Response {
        let envelope = ErrorEnvelope {
            error: GraphError {
                message: format!("(#{}) {}", self.code, self.title),
                kind: Some("OAuthException".into()),
                code: self.code,
                error_subcode: None,
                error_data: Some(GraphErrorData {
                    messaging_product: Some("whatsapp".into()),
                    details: self.details,
                }),
                fbtrace_id: Some(format!("Sbx{}", uuid::Uuid::now_v7().simple())),
                is_transient: None,
            },
        };
        (self.http, axum::Json(envelope)).into_response()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The send endpoint.
pub async fn send(
    State(sb): State<Sandbox>,
    Path((_version, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept(&sb, &pnid, &headers, &body) {
        Ok((response, latency)) => {
            if let Some(l) = latency {
                tokio::time::sleep(l).await;
            }
            (StatusCode::OK, axum::Json(response)).into_response()
        }
        Err(f) => f.into_response(),
    }
}

fn accept(
    sb: &Sandbox,
    pnid: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(SendResponse, Option<Duration>), GraphFailure> {
    let Some(token) = bearer(headers) else {
        return Err(GraphFailure::new(
            190,
            "Invalid OAuth access token - Cannot parse access token",
            "Send the access token as 'Authorization: Bearer <token>'.",
        ));
    };
    let Some(number) = sb.number(pnid).cloned() else {
        return Err(GraphFailure::new(
            100,
            "Invalid parameter",
            format!(
                "Unsupported post request. Object with ID '{pnid}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
            ),
        ));
    };
    if !crate::signature::tokens_equal(token, number.access_token.expose_secret()) {
        return Err(GraphFailure::new(
            190,
            "Invalid OAuth access token - Cannot parse access token",
            "The access token is not valid for this phone number.",
        ));
    }
    let req: Value = serde_json::from_slice(body).map_err(|e| {
        GraphFailure::new(
            100,
            "Invalid parameter",
            format!("The request body is not valid JSON: {e}"),
        )
    })?;
    let validated = super::control::validate(sb, &number, &req)?;
    let (fault, latency) = {
        let mut st = sb.lock();
        let fault = st.faults.get_mut(pnid).and_then(|q| {
            let f = q.front_mut()?;
            let out = f.clone();
            f.times = f.times.saturating_sub(1);
            if f.times == 0 {
                q.pop_front();
            }
            Some(out)
        });
        (fault, st.latency.get(pnid).copied())
    };
    if let Some(f) = fault {
        let mut failure = GraphFailure::new(
            f.code,
            fault_title(f.code),
            format!("Injected by the sandbox (fault for error {}).", f.code),
        );
        if let Some(h) = f.http_status.and_then(|h| StatusCode::from_u16(h).ok()) {
            failure.http = h;
        }
        return Err(failure);
    }

    let now = now_ms();
    let mut st = sb.lock();
    st.next_id += 1;
    let wamid = format!(
        "wamid.SBX{:012}{}",
        st.next_id,
        &uuid::Uuid::now_v7().simple().to_string()[..8]
    );
    let open = matches!(
        window::at(
            st.windows
                .get(&(pnid.to_string(), validated.to.clone()))
                .copied(),
            now
        ),
        window::Window::Open { .. }
    );
    let blocked = !open && validated.kind != "template";
    st.sent.push(SentMessage {
        wamid: wamid.clone(),
        phone_number_id: pnid.to_string(),
        to: validated.to.clone(),
        kind: validated.kind.clone(),
        received_at: now,
        received_us: jiff::Timestamp::now().as_microsecond(),
        outcome: if blocked {
            "failed:131047".into()
        } else {
            "accepted".into()
        },
        body: req.clone(),
    });
    drop(st);

    let opaque = req.get("biz_opaque_callback_data").and_then(Value::as_str);
    let status = |name: &str, extra: Value| {
        let mut s = json!({"id": wamid, "status": name, "timestamp": (now_ms() / 1000).to_string(), "recipient_id": validated.to});
        if let Some(o) = opaque {
            s["biz_opaque_callback_data"] = json!(o);
        }
        if let (Some(obj), Some(more)) = (s.as_object_mut(), extra.as_object()) {
            obj.extend(more.clone());
        }
        Item::Status(s)
    };
    let delay = sb.settings.status_delay;
    if blocked {
        let error = json!({"errors": [{
            "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
            "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]});
        sb.hooks.push(&number, status("failed", error), delay);
    } else {
        let category = if validated.kind == "template" {
            validated.category.clone()
        } else {
            "service".into()
        };
        let pricing = json!({"pricing": {"billable": validated.kind == "template", "pricing_model": "PMP",
            "type": if validated.kind == "template" { "regular" } else { "free_customer_service" }, "category": category}});
        sb.hooks
            .push(&number, status("sent", pricing.clone()), delay);
        sb.hooks
            .push(&number, status("delivered", pricing), delay * 2);
        if sb.settings.emit_read {
            sb.hooks.push(&number, status("read", json!({})), delay * 3);
        }
    }
    let response = SendResponse {
        messaging_product: "whatsapp".into(),
        contacts: vec![ResponseContact {
            input: validated.to_input,
            wa_id: Some(validated.to),
        }],
        messages: vec![ResponseMessage {
            id: wamid,
            message_status: (validated.kind == "template").then(|| "accepted".to_string()),
        }],
    };
    Ok((response, latency))
}

fn fault_title(code: i64) -> &'static str {
    match code {
        130429 => "Rate limit hit",
        131056 => "(Business Account, Consumer Account) pair rate limit hit",
        131026 => "Message undeliverable",
        131000 => "Something went wrong",
        131016 => "Service unavailable",
        131047 => "Re-engagement message",
        132000 => "Number of parameters does not match the expected number of params",
        132001 => "Template name does not exist in the translation",
        190 => "Invalid OAuth access token",
        _ => "Error",
    }
}
