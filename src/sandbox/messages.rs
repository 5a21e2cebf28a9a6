//! `POST /{version}/{phone-number-id}/messages` (sends, read receipts, typing indicators) and
//! `GET /{version}/{phone-number-id}` (number info): auth, validation, faults, limits, then a
//! `wamid` and the status webhooks that follow it — or the asynchronous failure Meta would
//! report (131047 outside the window, 131050 opted out of marketing, 131026 blocked or
//! undeliverable, 131048 portfolio messaging limit).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::limits::Refusal as LimitRefusal;
use super::webhooks::Item;
use super::{Sandbox, SandboxNumber, SentMessage};
use crate::cloud_api::rules::{self as validate, Refusal, SenderRef};
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
    /// Sent as `Retry-After` (seconds) when set: only scripted faults set it.
    pub retry_after_seconds: Option<u64>,
}

impl GraphFailure {
    pub fn new(code: i64, title: &'static str, details: impl Into<String>) -> Self {
        Self {
            http: default_http(code),
            code,
            title,
            details: details.into(),
            retry_after_seconds: None,
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

impl From<Refusal> for GraphFailure {
    fn from(r: Refusal) -> Self {
        GraphFailure::new(r.code, r.title, r.details)
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
        let mut response = (self.http, axum::Json(envelope)).into_response();
        if let Some(s) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        response
    }
}

fn bad_token(details: &str) -> GraphFailure {
    GraphFailure::new(
        190,
        "Invalid OAuth access token - Cannot parse access token",
        details,
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The number named in the path, if the bearer token is its token.
pub fn authorize_number(
    sb: &Sandbox,
    pnid: &str,
    headers: &HeaderMap,
) -> Result<SandboxNumber, GraphFailure> {
    let token = bearer(headers)
        .ok_or_else(|| bad_token("Send the access token as 'Authorization: Bearer <token>'."))?;
    let number = sb.number(pnid).cloned().ok_or_else(|| {
        GraphFailure::new(100, "Invalid parameter", format!("Unsupported post request. Object with ID '{pnid}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."))
    })?;
    if !crate::signature::tokens_equal(token, number.access_token.expose_secret()) {
        return Err(bad_token(
            "The access token is not valid for this phone number.",
        ));
    }
    Ok(number)
}

/// Checks that the bearer token belongs to a number of `waba`.
pub fn authorize_waba(sb: &Sandbox, waba: &str, headers: &HeaderMap) -> Result<(), GraphFailure> {
    let token = bearer(headers)
        .ok_or_else(|| bad_token("Send the access token as 'Authorization: Bearer <token>'."))?;
    let numbers: Vec<_> = sb
        .settings
        .numbers
        .iter()
        .filter(|n| n.waba_id == waba)
        .collect();
    if numbers.is_empty() {
        return Err(GraphFailure::new(
            100,
            "Invalid parameter",
            format!("Unsupported get request. Object with ID '{waba}' does not exist."),
        ));
    }
    if numbers
        .iter()
        .any(|n| crate::signature::tokens_equal(token, n.access_token.expose_secret()))
    {
        Ok(())
    } else {
        Err(bad_token(
            "The access token is not valid for this WhatsApp Business Account.",
        ))
    }
}

/// The send endpoint.
pub async fn send(
    State(sb): State<Sandbox>,
    Path((_version, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return GraphFailure::new(
                100,
                "Invalid parameter",
                format!("The request body could not be read: {e}"),
            )
            .into_response();
        }
    };
    let number = match authorize_number(&sb, &pnid, &headers) {
        Ok(n) => n,
        Err(f) => return f.into_response(),
    };
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return GraphFailure::new(
                100,
                "Invalid parameter",
                format!("The request body is not valid JSON: {e}"),
            )
            .into_response();
        }
    };
    if req.get("status").is_some() {
        return read_receipt(&sb, &number, &req)
            .map(|v| axum::Json(v).into_response())
            .unwrap_or_else(IntoResponse::into_response);
    }
    let random = sb
        .lock()
        .random_faults
        .get(&pnid)
        .cloned()
        .unwrap_or_default();
    let latency = Duration::from_millis(
        random.latency_ms
            + if random.latency_jitter_ms > 0 {
                rand::rng().random_range(0..=random.latency_jitter_ms)
            } else {
                0
            },
    );
    let result = accept(&sb, &number, &req, &random);
    if let Err(Hang) = &result {
        tokio::time::sleep(Duration::from_millis(random.timeout_ms.max(1))).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match result {
        Ok(Ok(response)) => (StatusCode::OK, axum::Json(response)).into_response(),
        Ok(Err(failure)) => failure.into_response(),
        Err(Hang) => unreachable!("handled above"),
    }
}

/// A simulated timeout: the request hangs, then the connection ends without an answer.
struct Hang;

fn accept(
    sb: &Sandbox,
    number: &SandboxNumber,
    req: &Value,
    random: &super::RandomFaults,
) -> Result<Result<SendResponse, GraphFailure>, Hang> {
    let pnid = &number.phone_number_id;
    // Validation runs under the lock against the live template list: no copy per request.
    let sender = SenderRef {
        display_digits: &number.display_number,
        waba_id: &number.waba_id,
    };
    let validated = validate::validate(&sender, &sb.lock().templates, req);
    let v = match validated {
        Ok(v) => v,
        Err(f) => return Ok(Err(f.into())),
    };
    let mut rng = rand::rng();
    if random.timeout_rate > 0.0 && rng.random_bool(random.timeout_rate.clamp(0.0, 1.0)) {
        return Err(Hang);
    }
    if random.http_5xx_rate > 0.0 && rng.random_bool(random.http_5xx_rate.clamp(0.0, 1.0)) {
        let mut f = GraphFailure::new(
            2,
            "Service temporarily unavailable",
            "Injected by the sandbox (random 5xx).",
        );
        f.http = StatusCode::SERVICE_UNAVAILABLE;
        return Ok(Err(f));
    }
    if random.error_rate > 0.0 && rng.random_bool(random.error_rate.clamp(0.0, 1.0)) {
        return Ok(Err(GraphFailure::new(
            131000,
            "Something went wrong",
            "Injected by the sandbox (random error).",
        )));
    }
    let now = now_ms();
    if sb.lock().limits.upgrade_due.is_some() {
        super::control::tick(sb, now);
    }
    let mut st = sb.lock();
    if let Some(f) = st.faults.get_mut(pnid).and_then(|q| {
        let f = q.front_mut()?;
        let out = f.clone();
        f.times = f.times.saturating_sub(1);
        if f.times == 0 {
            q.pop_front();
        }
        Some(out)
    }) {
        let mut failure = GraphFailure::new(
            f.code,
            fault_title(f.code),
            format!("Injected by the sandbox (fault for error {}).", f.code),
        );
        if let Some(h) = f.http_status.and_then(|h| StatusCode::from_u16(h).ok()) {
            failure.http = h;
        }
        failure.retry_after_seconds = f.retry_after_seconds;
        return Ok(Err(failure));
    }
    match st.limits.admit(pnid, &v.to) {
        Err(LimitRefusal::Throughput) => {
            return Ok(Err(GraphFailure::new(
                130429,
                "Rate limit hit",
                "Cloud API message throughput has been reached.",
            )));
        }
        Err(LimitRefusal::PairRate) => {
            return Ok(Err(GraphFailure::new(
                131056,
                "(Business Account, Consumer Account) pair rate limit hit",
                "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
            )));
        }
        Ok(()) => {}
    }
    let permission_request =
        req.pointer("/interactive/type").and_then(Value::as_str) == Some("call_permission_request");
    if permission_request
        && let Err(f) = super::calling::check_permission_request(&st, number, &v.to, now)
    {
        return Ok(Err(f));
    }
    st.next_id += 1;
    let wamid = format!(
        "wamid.SBX{:012}{}",
        st.next_id,
        &uuid::Uuid::now_v7().simple().to_string()[24..]
    );
    let open = matches!(
        window::at(st.windows.get(&(pnid.clone(), v.to.clone())).copied(), now),
        window::Window::Open { .. }
    );
    let is_template = v.kind == "template";
    let failure: Option<(i64, &str, &str)> = if st.blocked.contains(&(pnid.clone(), v.to.clone())) {
        Some((
            131026,
            "Message undeliverable",
            "Unable to deliver the message. This recipient has blocked the business.",
        ))
    } else if !open && !is_template {
        Some((
            131047,
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        ))
    } else if is_template
        && v.category == "marketing"
        && st
            .opted_out
            .contains(&(number.waba_id.clone(), v.to.clone()))
    {
        Some((
            131050,
            "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
            "The user stopped marketing messages from this business.",
        ))
    } else if is_template && !open && !st.limits.reach(&v.to, now) {
        Some((
            131048,
            "Spam rate limit hit",
            "Message failed to send because there are restrictions on how many messages can be sent from this phone number: the portfolio's messaging limit of unique users in 24 hours is reached.",
        ))
    } else if sb.settings.undeliverable_probability > 0.0
        && rng.random_bool(sb.settings.undeliverable_probability.clamp(0.0, 1.0))
    {
        Some((
            131026,
            "Message undeliverable",
            "Unable to deliver the message (injected by the sandbox).",
        ))
    } else {
        None
    };
    let red = st
        .quality
        .get(pnid)
        .is_some_and(|q| *q == super::quality::Rating::Red);
    if is_template
        && !open
        && let Some(due) = st.limits.consider_upgrade(red, now)
    {
        tracing::info!(due, "Sandbox portfolio tier upgrade earned.");
    }
    if permission_request && failure.is_none() {
        super::calling::record_permission_request(&mut st, pnid, &v.to, &wamid, now);
    }
    let seq = st.next_id;
    let keep = sb.settings.keep;
    st.record_sent(
        SentMessage {
            seq,
            wamid: wamid.clone(),
            phone_number_id: pnid.clone(),
            to: v.to.clone(),
            kind: v.kind.clone(),
            received_at: now,
            received_us: jiff::Timestamp::now().as_microsecond(),
            outcome: failure
                .map(|(c, ..)| format!("failed:{c}"))
                .unwrap_or_else(|| "accepted".into()),
            body: req.clone(),
        },
        keep,
    );
    drop(st);
    schedule_statuses(sb, number, req, &v, &wamid, failure);
    Ok(Ok(SendResponse {
        messaging_product: "whatsapp".into(),
        contacts: vec![ResponseContact {
            input: v.to_input,
            wa_id: Some(v.to),
        }],
        messages: vec![ResponseMessage {
            id: wamid,
            message_status: is_template.then(|| "accepted".to_string()),
        }],
    }))
}

/// `sent` → `delivered` → (maybe) `read` with pricing, or one `failed` with Meta's error object.
fn schedule_statuses(
    sb: &Sandbox,
    number: &SandboxNumber,
    req: &Value,
    v: &validate::Validated,
    wamid: &str,
    failure: Option<(i64, &str, &str)>,
) {
    if !sb.settings.statuses {
        return;
    }
    let opaque = req.get("biz_opaque_callback_data").and_then(Value::as_str);
    let contact = json!({"wa_id": v.to, "user_id": super::users::user_id(number, &v.to)});
    let recipient_user_id = super::users::user_id(number, &v.to);
    let status = |name: &str, extra: Value| {
        let mut s = json!({"id": wamid, "status": name, "timestamp": (now_ms() / 1000).to_string(), "recipient_id": v.to, "recipient_user_id": recipient_user_id});
        if let Some(o) = opaque {
            s["biz_opaque_callback_data"] = json!(o);
        }
        if let (Some(obj), Some(more)) = (s.as_object_mut(), extra.as_object()) {
            obj.extend(more.clone());
        }
        Item::Status {
            contact: contact.clone(),
            status: s,
        }
    };
    let delay = sb.settings.status_delay;
    if let Some((code, title, details)) = failure {
        let error = json!({"errors": [{"code": code, "title": title, "message": title, "error_data": {"details": details},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]});
        sb.hooks.push(number, status("failed", error), delay);
        return;
    }
    let is_template = v.kind == "template";
    let pricing = json!({"pricing": {"billable": is_template, "pricing_model": "PMP",
        "type": if is_template { "regular" } else { "free_customer_service" }, "category": v.category}});
    sb.hooks
        .push(number, status("sent", pricing.clone()), delay);
    if v.kind == "reaction" {
        return; // Reactions only ever produce `sent`.
    }
    sb.hooks
        .push(number, status("delivered", pricing), delay * 2);
    let p = sb.settings.read_probability.clamp(0.0, 1.0);
    if p > 0.0 && rand::rng().random_bool(p) {
        sb.hooks.push(number, status("read", json!({})), delay * 3);
    }
}

/// `{"status":"read","message_id":…[,"typing_indicator":{"type":"text"}]}` → `{"success":true}`.
fn read_receipt(sb: &Sandbox, number: &SandboxNumber, req: &Value) -> Result<Value, GraphFailure> {
    if req.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return Err(GraphFailure::new(
            100,
            "Invalid parameter",
            "The parameter messaging_product is required and must be 'whatsapp'.",
        ));
    }
    if req.get("status").and_then(Value::as_str) != Some("read") {
        return Err(GraphFailure::new(
            100,
            "Invalid parameter",
            "status must be 'read' to mark a message as read.",
        ));
    }
    let id = req
        .get("message_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            GraphFailure::new(
                131008,
                "Required parameter is missing",
                "The parameter message_id is required.",
            )
        })?;
    if let Some(t) = req.get("typing_indicator")
        && t.get("type").and_then(Value::as_str) != Some("text")
    {
        return Err(GraphFailure::new(
            100,
            "Invalid parameter",
            "typing_indicator['type'] must be 'text'.",
        ));
    }
    let known = sb
        .lock()
        .received
        .iter()
        .any(|m| m.wamid == id && m.phone_number_id == number.phone_number_id);
    if !known {
        return Err(GraphFailure::new(
            100,
            "Invalid parameter",
            format!("Message '{id}' was not received by this phone number."),
        ));
    }
    Ok(json!({"success": true}))
}

#[derive(Deserialize)]
pub struct InfoQuery {
    pub fields: Option<String>,
}

/// `GET /{version}/{phone-number-id}[?fields=…]`: quality, status, throughput and messaging limit.
pub async fn number_info(
    State(sb): State<Sandbox>,
    Path((_v, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<InfoQuery>,
) -> Response {
    let number = match authorize_number(&sb, &pnid, &headers) {
        Ok(n) => n,
        Err(f) => return f.into_response(),
    };
    super::control::tick(&sb, now_ms());
    let st = sb.lock();
    let quality = st
        .quality
        .get(&pnid)
        .copied()
        .unwrap_or(super::quality::Rating::Green);
    let throughput = st.limits.throughput_of(&pnid);
    let all = json!({
        "id": pnid,
        "display_phone_number": format!("+{}", number.display_number),
        "verified_name": "Ringback Sandbox",
        "quality_rating": quality.name(),
        "status": if quality == super::quality::Rating::Red { "FLAGGED" } else { "CONNECTED" },
        "code_verification_status": "VERIFIED",
        "name_status": "APPROVED",
        "account_mode": "SANDBOX",
        "throughput": {"level": if throughput >= 1000 { "HIGH" } else { "STANDARD" }},
        "whatsapp_business_manager_messaging_limit": st.limits.tier.name(),
    });
    let out = match q.fields {
        Some(fields) => {
            let mut o = json!({"id": pnid});
            for f in fields.split(',').map(str::trim) {
                if let Some(v) = all.get(f) {
                    o[f] = v.clone();
                }
            }
            o
        }
        None => all,
    };
    axum::Json(out).into_response()
}

/// Any path the sandbox does not serve: Graph's answer for unknown paths.
pub async fn unknown_path(uri: axum::http::Uri) -> Response {
    let mut f = GraphFailure::new(
        2500,
        "Unknown path components",
        format!("Unknown path components: {}", uri.path()),
    );
    f.http = StatusCode::BAD_REQUEST;
    f.into_response()
}

fn fault_title(code: i64) -> &'static str {
    match code {
        130429 => "Rate limit hit",
        131056 => "(Business Account, Consumer Account) pair rate limit hit",
        131026 => "Message undeliverable",
        131000 => "Something went wrong",
        131016 => "Service unavailable",
        131047 => "Re-engagement message",
        131057 => "Account in maintenance mode",
        132000 => "Number of parameters does not match the expected number of params",
        132001 => "Template name does not exist in the translation",
        190 => "Invalid OAuth access token",
        _ => "Error",
    }
}
