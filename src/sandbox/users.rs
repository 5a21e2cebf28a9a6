//! Simulated WhatsApp users: they write (text, media, location, contacts, from an ad), tap
//! template buttons, pick reply buttons or list rows, react, reply to a message, block or
//! report the business, stop or resume marketing, call the business, and answer call-permission requests. Each action produces the
//! webhook Meta would send, in Meta's shape, and updates the state Meta keeps (windows,
//! opt-outs, blocks, quality).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::webhooks::Item;
use super::{ReceivedMessage, Sandbox, SandboxNumber};
use crate::time::now_ms;

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// The number (default: the first) and the user's digits, or a 4xx.
// The error is the handler's own early answer, built once per refused request; boxing it would
// only add an allocation to every caller's `return`.
#[allow(clippy::result_large_err)]
fn resolve(
    sb: &Sandbox,
    phone_number_id: Option<&str>,
    from: &str,
) -> Result<(SandboxNumber, String), Response> {
    let number = match phone_number_id {
        Some(id) => sb.number(id).cloned(),
        None => sb.settings.numbers.first().cloned(),
    }
    .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "unknown phone_number_id"))?;
    let digits: String = from.chars().filter(char::is_ascii_digit).collect();
    if !(7..=15).contains(&digits.len()) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("'{from}' is not a phone number"),
        ));
    }
    Ok((number, digits))
}

/// A `contacts[]` entry as Meta sends it since the 2026 business-scoped user ids.
pub fn contact(number: &SandboxNumber, name: Option<&str>, wa_id: &str) -> Value {
    json!({"profile": {"name": name.unwrap_or("Sandbox User")}, "wa_id": wa_id, "user_id": user_id(number, wa_id)})
}

/// A stable business-scoped user id: the user's country, a dot, and a digest of (WABA, user),
/// shaped like Meta's (`US.13491208655302741918`).
pub fn user_id(number: &SandboxNumber, wa_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let country = phonenumber::parse(None, format!("+{wa_id}"))
        .ok()
        .and_then(|p| p.country().id())
        .map(|id| id.as_ref().to_string())
        .unwrap_or_else(|| "US".into());
    let digest = Sha256::digest(format!("{}:{wa_id}", number.waba_id).as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    format!("{country}.{n:020}")
}

/// A user action: what they send, and about which earlier message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserMessage {
    pub phone_number_id: Option<String>,
    pub from: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `text` (default), `image`, `audio`, `video`, `document`, `sticker`, `location`,
    /// `contacts`, `button` (tap on a template quick reply), `button_reply`, `list_reply`,
    /// `reaction` — see [`super::actions`] for the shape each one has on the wire.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    /// The wamid of the business message this one answers (required for taps, picks and
    /// reactions).
    #[serde(default)]
    pub context: Option<String>,
    /// Button or row id / template button payload (for `contacts`: the shared phone number).
    #[serde(default)]
    pub id: Option<String>,
    /// Button or row title (for `contacts`: the shared contact's name).
    #[serde(default)]
    pub title: Option<String>,
    /// A list row's description.
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    /// The text came from a click-to-WhatsApp ad (Meta adds a `referral` object).
    #[serde(default)]
    pub referral: bool,
}

/// `POST /sandbox/users/message` (also `/sandbox/simulate/message`).
pub async fn message(State(sb): State<Sandbox>, Json(m): Json<UserMessage>) -> Response {
    let (number, from) = match resolve(&sb, m.phone_number_id.as_deref(), &m.from) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let action = m.kind.clone().unwrap_or_else(|| "text".into());
    if super::actions::needs_context(&action) && m.context.is_none() {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("a '{action}' needs \"context\": the wamid of the business message it answers"),
        );
    }
    if let Some(ctx) = &m.context {
        let known = sb.lock().sent.iter().any(|s| {
            &s.wamid == ctx && s.to == from && s.phone_number_id == number.phone_number_id
        });
        if !known {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("context '{ctx}' is not a message this number sent to {from}"),
            );
        }
    }
    let media_id = format!("{}", 9_000_000_000u64 + u64::from(rand::random::<u32>()));
    let wire = match super::actions::build(&action, &m, &media_id) {
        Ok(w) => w,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let wamid = deliver_message(
        &sb,
        &number,
        &from,
        m.name.as_deref(),
        wire.kind,
        wire.payload,
        wire.context.as_deref(),
    );
    Json(json!({"wamid": wamid})).into_response()
}

/// Records an inbound message, opens the window and queues the webhook.
pub fn deliver_message(
    sb: &Sandbox,
    number: &SandboxNumber,
    from: &str,
    name: Option<&str>,
    kind: &str,
    payload: Value,
    context: Option<&str>,
) -> String {
    let now = now_ms();
    let mut message = json!({"from": from, "from_user_id": user_id(number, from), "id": "", "timestamp": (now / 1000).to_string(), "type": kind});
    if let (Some(obj), Some(p)) = (message.as_object_mut(), payload.as_object()) {
        obj.extend(p.clone());
    }
    if let Some(ctx) = context {
        message["context"] = json!({"from": number.display_number, "id": ctx});
    }
    let wamid = {
        let mut st = sb.lock();
        st.next_id += 1;
        // The random tail keeps ids unique across sandbox restarts, as Meta's are.
        let wamid = format!(
            "wamid.SBXIN{:012}{}",
            st.next_id,
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        message["id"] = json!(wamid);
        st.windows
            .insert((number.phone_number_id.clone(), from.to_string()), now);
        let seq = st.next_id;
        let received = ReceivedMessage {
            seq,
            wamid: wamid.clone(),
            phone_number_id: number.phone_number_id.clone(),
            from: from.to_string(),
            at: now,
            message: message.clone(),
        };
        st.record_received(received, sb.settings.keep);
        wamid
    };
    sb.hooks.push(
        number,
        Item::Message {
            contact: contact(number, name, from),
            message,
        },
        Duration::ZERO,
    );
    wamid
}

/// `POST /sandbox/users/block`: `{"from", "report": false, "unblock": false}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub phone_number_id: Option<String>,
    pub from: String,
    /// Also report the business (counts as a second negative signal).
    #[serde(default)]
    pub report: bool,
    #[serde(default)]
    pub unblock: bool,
}

pub async fn block(State(sb): State<Sandbox>, Json(b): Json<Block>) -> Response {
    let (number, from) = match resolve(&sb, b.phone_number_id.as_deref(), &b.from) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let key = (number.phone_number_id.clone(), from);
    if b.unblock {
        sb.lock().blocked.remove(&key);
        return Json(json!({"blocked": false})).into_response();
    }
    sb.lock().blocked.insert(key);
    let rating = super::quality::record_signal(
        &sb,
        &number.phone_number_id,
        1 + usize::from(b.report),
        now_ms(),
    );
    Json(json!({"blocked": true, "quality_rating": rating.name()})).into_response()
}

/// `POST /sandbox/users/preferences`: `{"from", "value": "stop" | "resume"}` — marketing opt-out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preference {
    pub phone_number_id: Option<String>,
    pub from: String,
    pub value: String,
}

pub async fn preferences(State(sb): State<Sandbox>, Json(p): Json<Preference>) -> Response {
    let (number, from) = match resolve(&sb, p.phone_number_id.as_deref(), &p.from) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let detail = match p.value.as_str() {
        "stop" => {
            sb.lock()
                .opted_out
                .insert((number.waba_id.clone(), from.clone()));
            "User requested to stop marketing messages"
        }
        "resume" => {
            sb.lock()
                .opted_out
                .remove(&(number.waba_id.clone(), from.clone()));
            "User requested to resume marketing messages"
        }
        other => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("value '{other}' must be 'stop' or 'resume'"),
            );
        }
    };
    let preference = json!({"wa_id": from, "detail": detail, "category": "marketing_messages", "value": p.value, "timestamp": now_ms() / 1000});
    sb.hooks.push(
        &number,
        Item::Preference {
            contact: contact(&number, None, &from),
            preference,
        },
        Duration::ZERO,
    );
    Json(json!({"value": p.value})).into_response()
}

/// `POST /sandbox/users/call`: the user calls the business (`connect`), then hangs up or is
/// not answered (`terminate`). A call opens the 24-hour window, answered or not.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserCall {
    pub phone_number_id: Option<String>,
    pub from: String,
    /// `connect` or `terminate`.
    pub event: String,
    /// Reuse the id of an earlier `connect` to end that call; a new one otherwise.
    #[serde(default)]
    pub call_id: Option<String>,
    /// For `terminate`: seconds of conversation; absent = never answered (status FAILED).
    #[serde(default)]
    pub duration: Option<u64>,
}

pub async fn call(State(sb): State<Sandbox>, Json(c): Json<UserCall>) -> Response {
    let (number, from) = match resolve(&sb, c.phone_number_id.as_deref(), &c.from) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = now_ms();
    let call_id = c
        .call_id
        .clone()
        .unwrap_or_else(|| format!("wacid.SBX{}", uuid::Uuid::now_v7().simple()));
    let mut call = json!({"id": call_id, "from": from, "to": number.display_number, "event": c.event,
        "timestamp": (now / 1000).to_string(), "direction": "USER_INITIATED"});
    match c.event.as_str() {
        "connect" => {
            call["session"] = json!({"sdp_type": "offer", "sdp": "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"});
        }
        "terminate" => match c.duration {
            Some(d) => {
                call["status"] = json!("COMPLETED");
                call["start_time"] = json!(((now / 1000) - d as i64).to_string());
                call["end_time"] = json!((now / 1000).to_string());
                call["duration"] = json!(d);
            }
            None => call["status"] = json!("FAILED"),
        },
        other => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("event '{other}' must be 'connect' or 'terminate'"),
            );
        }
    }
    sb.lock()
        .windows
        .insert((number.phone_number_id.clone(), from.clone()), now);
    let ended_by_user = c.event == "terminate";
    if !ended_by_user {
        super::calling::user_call(&sb, &number, &from, &call_id, "connect", None, now);
    }
    sb.hooks.push(
        &number,
        Item::Call {
            contact: contact(&number, None, &from),
            call,
        },
        Duration::ZERO,
    );
    if ended_by_user {
        super::calling::user_call(&sb, &number, &from, &call_id, "terminate", c.duration, now);
    }
    Json(json!({"call_id": call_id})).into_response()
}

/// `POST /sandbox/users/call-permission`: `{"from", "response": "accept"|"reject", "permanent": false}`
/// answers the latest `call_permission_request` the number sent this user.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionReply {
    pub phone_number_id: Option<String>,
    pub from: String,
    pub response: String,
    #[serde(default)]
    pub permanent: bool,
}

pub async fn call_permission(
    State(sb): State<Sandbox>,
    Json(p): Json<PermissionReply>,
) -> Response {
    let (number, from) = match resolve(&sb, p.phone_number_id.as_deref(), &p.from) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if p.response != "accept" && p.response != "reject" {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("response '{}' must be 'accept' or 'reject'", p.response),
        );
    }
    let request = sb
        .lock()
        .sent
        .iter()
        .rev()
        .find(|s| {
            s.to == from
                && s.phone_number_id == number.phone_number_id
                && s.body.pointer("/interactive/type").and_then(Value::as_str)
                    == Some("call_permission_request")
        })
        .map(|s| s.wamid.clone());
    let Some(request) = request else {
        return refuse(
            StatusCode::CONFLICT,
            format!("no call_permission_request was sent to {from}; nothing to answer"),
        );
    };
    let mut reply = json!({"response": p.response, "is_permanent": p.permanent, "response_source": "user_action"});
    if p.response == "accept" && !p.permanent {
        reply["expiration_timestamp"] = json!(now_ms() / 1000 + 7 * 24 * 3600);
    }
    let payload =
        json!({"interactive": {"type": "call_permission_reply", "call_permission_reply": reply}});
    let wamid = deliver_message(
        &sb,
        &number,
        &from,
        None,
        "interactive",
        payload,
        Some(&request),
    );
    super::calling::record_permission_reply(
        &mut sb.lock(),
        &number.phone_number_id,
        &from,
        &wamid,
        p.response == "accept",
        p.permanent,
        now_ms(),
    );
    Json(json!({"wamid": wamid})).into_response()
}
