//! The calling side of the emulator (reference `cloud-api.md` §7): number settings, call
//! actions, the call-permission store with Meta's limits, and the `calls` webhooks
//! (`connect`, `terminate`, call `statuses`) plus automatic `call_permission_reply`s.
//!
//! Permission rules are the same state machine Ringback enforces ([`crate::calling::permission`]),
//! as the message rule book is shared: the sandbox is Meta's side of the same rules.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::messages::{GraphFailure, authorize_number};
use super::users::contact;
use super::webhooks::Item;
use super::{Sandbox, SandboxNumber};
use crate::calling::permission::{self, Input, Limits, PermissionRecord, PermissionStatus};
use crate::phone::PhoneE164;
use crate::time::{Millis, now_ms};

/// A call Meta knows about.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub pnid: String,
    pub user: String,
    pub business_initiated: bool,
    /// `ringing`, `pre_accepted`, `connected`.
    pub state: &'static str,
    pub started: Millis,
    pub connected_at: Option<Millis>,
    pub biz_opaque_callback_data: Option<String>,
}

#[derive(Default)]
pub(crate) struct CallingState {
    /// The `calling` settings object per phone number id.
    pub settings: HashMap<String, Value>,
    pub permissions: HashMap<(String, String), PermissionRecord>,
    pub calls: HashMap<String, Call>,
}

/// How long a business-initiated call rings before the emulator ends it unanswered (Meta's
/// clients give up after 30–60 s).
const BUSINESS_RING_TIMEOUT: Duration = Duration::from_secs(45);

/// The SDP answer the emulator hands back for an answered business-initiated call.
const SDP_ANSWER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 3480 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:111 opus/48000/2\r\na=setup:passive\r\n";

fn limits() -> Limits {
    Limits::default()
}

fn default_settings() -> Value {
    json!({"status": "DISABLED", "call_icon_visibility": "DEFAULT", "callback_permission_status": "DISABLED"})
}

impl CallingState {
    fn setting(&self, pnid: &str, key: &str) -> bool {
        self.settings
            .get(pnid)
            .and_then(|s| s.get(key))
            .and_then(Value::as_str)
            == Some("ENABLED")
    }
    pub fn enabled(&self, pnid: &str) -> bool {
        self.setting(pnid, "status")
    }
    pub fn callback_permission(&self, pnid: &str) -> bool {
        self.setting(pnid, "callback_permission_status")
    }
    fn permission(&mut self, pnid: &str, user: &str) -> &mut PermissionRecord {
        self.permissions
            .entry((pnid.to_string(), user.to_string()))
            .or_default()
    }
}

fn invalid(details: impl Into<String>) -> GraphFailure {
    GraphFailure::new(100, "Invalid parameter", details)
}

fn calling_error(code: i64, title: &'static str, details: impl Into<String>) -> GraphFailure {
    let mut f = GraphFailure::new(code, title, details);
    f.http = match code {
        138000 | 138006 => StatusCode::UNAUTHORIZED,
        138002 | 138005 => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    f
}

fn business_region_ok(number: &SandboxNumber) -> Result<(), GraphFailure> {
    let Ok(n) = PhoneE164::parse_configured(&format!("+{}", number.display_number)) else {
        return Ok(());
    };
    crate::calling::region::business_calls_available(&n)
        .map_err(|why| calling_error(138013, "Business-initiated calling is not available", why))
}

/// `GET /{version}/{phone-number-id}/settings`.
pub async fn get_settings(
    State(sb): State<Sandbox>,
    Path((_v, pnid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(f) = authorize_number(&sb, &pnid, &headers) {
        return f.into_response();
    }
    let calling = sb
        .lock()
        .calling
        .settings
        .get(&pnid)
        .cloned()
        .unwrap_or_else(default_settings);
    Json(json!({"calling": calling})).into_response()
}

/// `POST /{version}/{phone-number-id}/settings`: one feature object per request.
pub async fn post_settings(
    State(sb): State<Sandbox>,
    Path((_v, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(f) = authorize_number(&sb, &pnid, &headers) {
        return f.into_response();
    }
    let Ok(Json(body)) = body else {
        return invalid("The request body must be a JSON object.").into_response();
    };
    match validate_settings(&body) {
        Ok(calling) => {
            let mut st = sb.lock();
            let merged = st
                .calling
                .settings
                .entry(pnid)
                .or_insert_with(default_settings);
            for (k, v) in calling {
                merged[k] = v;
            }
            Json(json!({"success": true})).into_response()
        }
        Err(f) => f.into_response(),
    }
}

fn validate_settings(body: &Value) -> Result<serde_json::Map<String, Value>, GraphFailure> {
    let features = [
        "calling",
        "user_identity_change",
        "payload_encryption",
        "storage_configuration",
    ];
    let present: Vec<&str> = features
        .iter()
        .copied()
        .filter(|f| body.get(f).is_some())
        .collect();
    if present.len() != 1 {
        return Err(invalid(format!(
            "Send exactly one feature object per request (one of {}); got {}.",
            features.join(", "),
            present.len()
        )));
    }
    let Some(calling) = body.get("calling").and_then(Value::as_object) else {
        return Ok(serde_json::Map::new());
    };
    let one_of = |key: &str, allowed: &[&str]| -> Result<(), GraphFailure> {
        match calling.get(key) {
            None => Ok(()),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
            Some(v) => Err(invalid(format!(
                "calling.{key} {v} must be one of {allowed:?}."
            ))),
        }
    };
    one_of("status", &["ENABLED", "DISABLED"])?;
    one_of("callback_permission_status", &["ENABLED", "DISABLED"])?;
    one_of("call_icon_visibility", &["DEFAULT", "DISABLE_ALL"])?;
    one_of("srtp_key_exchange_protocol", &["DTLS", "SDES"])?;
    if let Some(hours) = calling.get("call_hours") {
        let weekly = hours
            .get("weekly_operating_hours")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut per_day: HashMap<String, usize> = HashMap::new();
        for h in &weekly {
            let day = h
                .get("day_of_week")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let t = |k: &str| {
                h.get(k)
                    .and_then(Value::as_str)
                    .filter(|s| s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
            };
            match (t("open_time"), t("close_time")) {
                (Some(o), Some(c)) if o < c => {}
                _ => {
                    return Err(invalid(format!(
                        "call_hours entry {h} needs open_time < close_time, both HHMM."
                    )));
                }
            }
            *per_day.entry(day.to_string()).or_default() += 1;
        }
        if per_day.values().any(|&n| n > 2) {
            return Err(invalid(
                "call_hours allows at most 2 entries per day_of_week.",
            ));
        }
        if hours
            .get("holiday_schedule")
            .and_then(Value::as_array)
            .is_some_and(|h| h.len() > 20)
        {
            return Err(invalid(
                "call_hours allows at most 20 holiday_schedule entries.",
            ));
        }
    }
    Ok(calling.clone())
}

#[derive(Deserialize)]
pub struct PermissionQuery {
    user_wa_id: Option<String>,
}

/// `GET /{version}/{phone-number-id}/call_permissions?user_wa_id=…`.
pub async fn get_permissions(
    State(sb): State<Sandbox>,
    Path((_v, pnid)): Path<(String, String)>,
    Query(q): Query<PermissionQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(f) = authorize_number(&sb, &pnid, &headers) {
        return f.into_response();
    }
    let Some(user) = q.user_wa_id.filter(|u| !u.is_empty()) else {
        return invalid("The parameter user_wa_id is required.").into_response();
    };
    let now = now_ms();
    let l = limits();
    let r = sb
        .lock()
        .calling
        .permissions
        .get(&(pnid, user))
        .cloned()
        .unwrap_or_default();
    let status = match r.status_at(now) {
        PermissionStatus::Accepted if r.permanent => "permanent",
        PermissionStatus::Accepted => "temporary",
        _ => "no_permission",
    };
    let mut permission = json!({"status": status});
    if status == "temporary" {
        permission["expiration_time"] = json!(r.expires_at.unwrap_or(0) / 1000);
    }
    let day = 86_400_000;
    let count = |v: &[Millis], span: Millis| v.iter().filter(|&&t| t > now - span).count();
    Json(json!({
        "messaging_product": "whatsapp",
        "permission": permission,
        "actions": [
            {"action_name": "send_call_permission_request", "can_perform_action": r.may_request(now, &l).is_ok(),
             "limits": [
                {"time_period": "PT24H", "max_allowed": l.requests_per_day, "current_usage": count(&r.requests, day)},
                {"time_period": "P7D", "max_allowed": l.requests_per_week, "current_usage": count(&r.requests, 7 * day)}]},
            {"action_name": "start_call", "can_perform_action": r.may_call(now, &l).is_ok(),
             "limits": [{"time_period": "PT24H", "max_allowed": l.connected_calls_per_day, "current_usage": count(&r.connected_calls, day)}]}
        ]
    }))
    .into_response()
}

/// Called by the send endpoint for an interactive `call_permission_request`: checks Meta's
/// limits (138009, 138017, 138013) before the message is accepted.
pub(crate) fn check_permission_request(
    st: &super::State,
    number: &SandboxNumber,
    to: &str,
    now: Millis,
) -> Result<(), GraphFailure> {
    business_region_ok(number)?;
    let r = st
        .calling
        .permissions
        .get(&(number.phone_number_id.clone(), to.to_string()))
        .cloned()
        .unwrap_or_default();
    r.may_request(now, &limits()).map_err(|e| {
        let title = if e.code == 138017 {
            "Permanent permission already exists"
        } else {
            "Call permission request limit reached"
        };
        calling_error(e.code, title, e.message)
    })
}

/// Records an accepted `call_permission_request`.
pub(crate) fn record_permission_request(
    st: &mut super::State,
    pnid: &str,
    to: &str,
    wamid: &str,
    now: Millis,
) {
    let r = st.calling.permission(pnid, to);
    permission::apply(
        r,
        &Input::RequestSent {
            origin: wamid.into(),
        },
        now,
        &limits(),
    );
}

/// Records the user's answer to a request (from `/sandbox/users/call-permission`).
pub(crate) fn record_permission_reply(
    st: &mut super::State,
    pnid: &str,
    user: &str,
    origin: &str,
    accept: bool,
    permanent: bool,
    now: Millis,
) {
    let r = st.calling.permission(pnid, user);
    permission::apply(
        r,
        &Input::Reply {
            origin: origin.into(),
            accept,
            permanent,
            expires_at: None,
            automatic: false,
        },
        now,
        &limits(),
    );
}

#[derive(Deserialize)]
struct Action {
    action: String,
    call_id: Option<String>,
    to: Option<String>,
    session: Option<Value>,
    biz_opaque_callback_data: Option<String>,
}

/// `POST /{version}/{phone-number-id}/calls`.
pub async fn action(
    State(sb): State<Sandbox>,
    Path((_v, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let number = match authorize_number(&sb, &pnid, &headers) {
        Ok(n) => n,
        Err(f) => return f.into_response(),
    };
    let Ok(Json(body)) = body else {
        return invalid("The request body must be a JSON object.").into_response();
    };
    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return invalid("messaging_product must be \"whatsapp\".").into_response();
    }
    let a: Action = match serde_json::from_value(body) {
        Ok(a) => a,
        Err(e) => {
            return invalid(format!("The call action is not understood: {e}.")).into_response();
        }
    };
    if !sb.lock().calling.enabled(&pnid) {
        return calling_error(138000, "Calling not enabled", "Calling is not enabled for this phone number; enable it in the number's settings (POST /{phone-number-id}/settings).").into_response();
    }
    let result = match a.action.as_str() {
        "connect" => connect(&sb, &number, &a),
        "pre_accept" | "accept" | "reject" | "terminate" => act_on_call(&sb, &number, &a),
        other => Err(invalid(format!(
            "action '{other}' must be connect, pre_accept, accept, reject or terminate."
        ))),
    };
    match result {
        Ok(v) => Json(v).into_response(),
        Err(f) => f.into_response(),
    }
}

fn sdp_ok(session: Option<&Value>, expected_type: &str) -> Result<(), GraphFailure> {
    let s = session.ok_or_else(|| invalid("session with sdp_type and sdp is required."))?;
    if s.get("sdp_type").and_then(Value::as_str) != Some(expected_type) {
        return Err(invalid(format!(
            "session.sdp_type must be \"{expected_type}\"."
        )));
    }
    match s.get("sdp").and_then(Value::as_str) {
        Some(sdp) if sdp.starts_with("v=0\r\n") && sdp.contains("\r\nm=audio ") => Ok(()),
        _ => Err(invalid(
            "session.sdp must be an RFC 8866 SDP with CRLF line ends and an audio m-line.",
        )),
    }
}

/// A business-initiated call: the checks Meta makes, then `connect` + `RINGING` webhooks.
fn connect(sb: &Sandbox, number: &SandboxNumber, a: &Action) -> Result<Value, GraphFailure> {
    business_region_ok(number)?;
    let to: String =
        a.to.as_deref()
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
    if !(7..=15).contains(&to.len()) {
        return Err(invalid("to must be the user's phone number (wa_id)."));
    }
    sdp_ok(a.session.as_ref(), "offer")?;
    let now = now_ms();
    let mut st = sb.lock();
    let pnid = number.phone_number_id.clone();
    let r = st
        .calling
        .permissions
        .get(&(pnid.clone(), to.clone()))
        .cloned()
        .unwrap_or_default();
    r.may_call(now, &limits()).map_err(|e| {
        let title = if e.code == 138012 {
            "Business-initiated call limit reached"
        } else {
            "No approved call permission"
        };
        calling_error(e.code, title, e.message)
    })?;
    if st
        .calling
        .calls
        .values()
        .any(|c| c.pnid == pnid && c.user == to)
    {
        return Err(calling_error(
            138003,
            "Duplicate call",
            "A call to this user is already ongoing.",
        ));
    }
    st.next_id += 1;
    let wacid = format!("wacid.SBX{:012}", st.next_id);
    st.calling.calls.insert(
        wacid.clone(),
        Call {
            pnid,
            user: to.clone(),
            business_initiated: true,
            state: "ringing",
            started: now,
            connected_at: None,
            biz_opaque_callback_data: a.biz_opaque_callback_data.clone(),
        },
    );
    drop(st);
    let mut status = json!({"id": wacid, "type": "call", "status": "RINGING", "timestamp": (now / 1000).to_string(), "recipient_id": to});
    if let Some(d) = &a.biz_opaque_callback_data {
        status["biz_opaque_callback_data"] = json!(d);
    }
    sb.hooks
        .push(number, Item::CallStatus { status }, Duration::ZERO);
    // Like Meta, a call nobody picks up ends by itself: terminate without a duration.
    let (sb2, number2, id) = (sb.clone(), number.clone(), wacid.clone());
    tokio::spawn(async move {
        tokio::time::sleep(BUSINESS_RING_TIMEOUT).await;
        let ringing = {
            let mut st = sb2.lock();
            match st.calling.calls.get(&id) {
                Some(c) if c.state == "ringing" => st.calling.calls.remove(&id),
                _ => None,
            }
        };
        if let Some(call) = ringing {
            end_call(&sb2, &number2, &id, &call, now_ms());
        }
    });
    Ok(json!({"messaging_product": "whatsapp", "calls": [{"id": wacid}]}))
}

/// pre_accept / accept / reject / terminate on a known call.
fn act_on_call(sb: &Sandbox, number: &SandboxNumber, a: &Action) -> Result<Value, GraphFailure> {
    let id = a
        .call_id
        .as_deref()
        .ok_or_else(|| invalid("call_id is required for this action."))?;
    let now = now_ms();
    let mut st = sb.lock();
    let call = st
        .calling
        .calls
        .get(id)
        .filter(|c| c.pnid == number.phone_number_id)
        .cloned()
        .ok_or_else(|| {
            invalid(format!(
                "No ongoing call with call_id '{id}' on this number."
            ))
        })?;
    match (a.action.as_str(), call.state) {
        ("pre_accept", "ringing") if !call.business_initiated => {
            drop(st);
            sdp_ok(a.session.as_ref(), "answer")?;
            if let Some(c) = sb.lock().calling.calls.get_mut(id) {
                c.state = "pre_accepted";
            }
        }
        ("accept", "ringing" | "pre_accepted") if !call.business_initiated => {
            drop(st);
            sdp_ok(a.session.as_ref(), "answer")?;
            if let Some(c) = sb.lock().calling.calls.get_mut(id) {
                c.state = "connected";
                c.connected_at = Some(now);
            }
        }
        ("reject", "ringing" | "pre_accepted") if !call.business_initiated => {
            st.calling.calls.remove(id);
            drop(st);
            end_call(sb, number, id, &call, now);
        }
        ("terminate", _) => {
            st.calling.calls.remove(id);
            drop(st);
            end_call(sb, number, id, &call, now);
        }
        (action, state) => {
            return Err(invalid(format!(
                "Cannot {action} call '{id}': it is {state}{}.",
                if call.business_initiated {
                    " and business-initiated"
                } else {
                    ""
                }
            )));
        }
    }
    Ok(json!({"messaging_product": "whatsapp", "success": true}))
}

/// Posts `terminate` for a call that ended (with a duration only if it was connected) and
/// updates the permission store.
fn end_call(sb: &Sandbox, number: &SandboxNumber, id: &str, call: &Call, now: Millis) {
    let answered = call.connected_at.is_some();
    let (from, to, direction) = if call.business_initiated {
        (
            number.display_number.clone(),
            call.user.clone(),
            "BUSINESS_INITIATED",
        )
    } else {
        (
            call.user.clone(),
            number.display_number.clone(),
            "USER_INITIATED",
        )
    };
    let mut terminate = json!({"id": id, "from": from, "to": to, "event": "terminate", "direction": direction,
        "timestamp": (now / 1000).to_string(), "status": if answered { "COMPLETED" } else { "FAILED" }});
    if let Some(at) = call.connected_at {
        terminate["start_time"] = json!((at / 1000).to_string());
        terminate["end_time"] = json!((now / 1000).to_string());
        terminate["duration"] = json!(((now - at) / 1000).max(1));
    }
    if let Some(d) = &call.biz_opaque_callback_data {
        terminate["biz_opaque_callback_data"] = json!(d);
    }
    sb.hooks.push(
        number,
        Item::Call {
            contact: contact(number, None, &call.user),
            call: terminate,
        },
        Duration::ZERO,
    );
    if call.business_initiated {
        let mut st = sb.lock();
        let r = st.calling.permission(&call.pnid, &call.user);
        let input = Input::BusinessCallEnded {
            origin: id.into(),
            answered,
        };
        permission::apply(r, &input, now, &limits());
    } else {
        // A user call the business rejected or ended: the same permission rules as a hang-up,
        // including the automatic callback grant.
        user_call(
            sb,
            number,
            &call.user,
            id,
            "terminate",
            answered.then_some(1),
            now,
        );
    }
}

/// Called when a simulated user calls the business (`connect`) or hangs up (`terminate`).
pub(crate) fn user_call(
    sb: &Sandbox,
    number: &SandboxNumber,
    user: &str,
    id: &str,
    event: &str,
    duration: Option<u64>,
    now: Millis,
) {
    let mut st = sb.lock();
    match event {
        "connect" => {
            st.calling.calls.insert(
                id.to_string(),
                Call {
                    pnid: number.phone_number_id.clone(),
                    user: user.to_string(),
                    business_initiated: false,
                    state: "ringing",
                    started: now,
                    connected_at: None,
                    biz_opaque_callback_data: None,
                },
            );
        }
        _ => {
            st.calling.calls.remove(id);
            let connected = duration.is_some_and(|d| d > 0);
            // Permission features do not exist for business numbers where business-initiated
            // calling is unavailable (reference §7.1).
            let callback = st.calling.callback_permission(&number.phone_number_id)
                && business_region_ok(number).is_ok();
            let r = st.calling.permission(&number.phone_number_id, user);
            let had_permanent = r.status_at(now) == PermissionStatus::Accepted && r.permanent;
            permission::apply(
                r,
                &Input::UserCalled {
                    origin: id.into(),
                    connected,
                    callback_permission: false,
                },
                now,
                &limits(),
            );
            drop(st);
            // With callback permission on, WhatsApp grants a temporary permission and tells
            // the business with an automatic call_permission_reply whose context is the call.
            if callback && !had_permanent {
                let reply = json!({"response": "accept", "is_permanent": false,
                    "expiration_timestamp": now / 1000 + 7 * 24 * 3600, "response_source": "automatic"});
                let payload = json!({"interactive": {"type": "call_permission_reply", "call_permission_reply": reply}});
                let wamid = super::users::deliver_message(
                    sb,
                    number,
                    user,
                    None,
                    "interactive",
                    payload,
                    Some(id),
                );
                let mut st = sb.lock();
                let r = st.calling.permission(&number.phone_number_id, user);
                permission::apply(
                    r,
                    &Input::Reply {
                        origin: wamid,
                        accept: true,
                        permanent: false,
                        expires_at: None,
                        automatic: true,
                    },
                    now,
                    &limits(),
                );
            }
        }
    }
}

/// `POST /sandbox/users/answer-call`: the user answers, rejects or ignores a business call.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerCall {
    pub call_id: String,
    /// `answer`, `reject` or `ignore`.
    pub action: String,
    /// For `answer`: the call is hung up after this many seconds of conversation (default:
    /// it stays connected until the business terminates it).
    #[serde(default)]
    pub duration: Option<u64>,
}

pub async fn answer_call(State(sb): State<Sandbox>, Json(a): Json<AnswerCall>) -> Response {
    let refuse = |s: StatusCode, m: String| (s, Json(json!({"error": m}))).into_response();
    let now = now_ms();
    let call = sb.lock().calling.calls.get(&a.call_id).cloned();
    let Some(call) = call.filter(|c| c.business_initiated && c.state == "ringing") else {
        return refuse(
            StatusCode::CONFLICT,
            format!("no ringing business-initiated call '{}'", a.call_id),
        );
    };
    let Some(number) = sb.number(&call.pnid).cloned() else {
        return refuse(StatusCode::NOT_FOUND, "unknown number".into());
    };
    let status = |s: &str| {
        let mut v = json!({"id": a.call_id, "type": "call", "status": s, "timestamp": (now / 1000).to_string(), "recipient_id": call.user});
        if let Some(d) = &call.biz_opaque_callback_data {
            v["biz_opaque_callback_data"] = json!(d);
        }
        Item::CallStatus { status: v }
    };
    match a.action.as_str() {
        "answer" => {
            // Meta's SDP answer reaches the business in a business-initiated `connect`.
            let mut connect = json!({"id": a.call_id, "from": number.display_number, "to": call.user,
                "event": "connect", "direction": "BUSINESS_INITIATED", "timestamp": (now / 1000).to_string(),
                "session": {"sdp_type": "answer", "sdp": SDP_ANSWER}});
            if let Some(d) = &call.biz_opaque_callback_data {
                connect["biz_opaque_callback_data"] = json!(d);
            }
            sb.hooks.push(
                &number,
                Item::Call {
                    contact: contact(&number, None, &call.user),
                    call: connect,
                },
                Duration::ZERO,
            );
            let connected = Call {
                state: "connected",
                connected_at: Some(now),
                ..call.clone()
            };
            sb.lock()
                .calling
                .calls
                .insert(a.call_id.clone(), connected.clone());
            sb.hooks.push(&number, status("ACCEPTED"), Duration::ZERO);
            if let Some(d) = a.duration {
                sb.lock().calling.calls.remove(&a.call_id);
                let ended = Call {
                    connected_at: Some(now.saturating_sub((d.min(86_400) as i64) * 1000)),
                    ..connected
                };
                end_call(&sb, &number, &a.call_id, &ended, now);
            }
        }
        "reject" => {
            sb.lock().calling.calls.remove(&a.call_id);
            sb.hooks.push(&number, status("REJECTED"), Duration::ZERO);
            end_call(&sb, &number, &a.call_id, &call, now);
        }
        "ignore" => {
            sb.lock().calling.calls.remove(&a.call_id);
            end_call(&sb, &number, &a.call_id, &call, now);
        }
        other => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("action '{other}' must be answer, reject or ignore"),
            );
        }
    }
    Json(json!({"call_id": a.call_id})).into_response()
}

/// `GET /sandbox/calls`: ongoing calls and permission records, for inspection.
pub async fn inspect(State(sb): State<Sandbox>) -> Response {
    let st = sb.lock();
    let calls: Vec<Value> = st
        .calling
        .calls
        .iter()
        .map(|(id, c)| {
            json!({"call_id": id, "phone_number_id": c.pnid, "user": c.user,
        "business_initiated": c.business_initiated, "state": c.state, "started": c.started})
        })
        .collect();
    let permissions: Vec<Value> = st
        .calling
        .permissions
        .iter()
        .map(|((p, u), r)| json!({"phone_number_id": p, "user": u, "record": r}))
        .collect();
    Json(json!({"calls": calls, "permissions": permissions, "settings": st.calling.settings}))
        .into_response()
}
