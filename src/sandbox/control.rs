//! Request validation (what Meta refuses synchronously) and the `/sandbox/…` control API:
//! play the user, inject faults, inspect what was sent.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::messages::GraphFailure;
use super::webhooks::Item;
use super::{Fault, Sandbox, SandboxNumber};
use crate::time::now_ms;

/// What validation learned about a send request.
pub struct Validated {
    /// Recipient digits (the `wa_id`).
    pub to: String,
    /// `to` exactly as sent (echoed in `contacts[].input`).
    pub to_input: String,
    pub kind: String,
    pub category: String,
}

fn invalid(details: impl Into<String>) -> GraphFailure {
    GraphFailure::new(100, "Invalid parameter", details)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, p| v.get(p))?.as_str()
}

/// Checks a send request against the documented shapes and limits.
pub fn validate(
    sb: &Sandbox,
    number: &SandboxNumber,
    req: &Value,
) -> Result<Validated, GraphFailure> {
    if req.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return Err(invalid(
            "The parameter messaging_product is required and must be 'whatsapp'.",
        ));
    }
    let to_input = req.get("to").and_then(Value::as_str).ok_or_else(|| {
        GraphFailure::new(
            131008,
            "Required parameter is missing",
            "The parameter 'to' is required.",
        )
    })?;
    let digits: String = to_input.chars().filter(char::is_ascii_digit).collect();
    let allowed = to_input
        .chars()
        .all(|c| c.is_ascii_digit() || "+-() ".contains(c));
    if !allowed || !(7..=15).contains(&digits.len()) {
        return Err(GraphFailure::new(
            131009,
            "Parameter value is not valid",
            format!("'{to_input}' is not a valid phone number."),
        ));
    }
    let kind = req
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("text")
        .to_string();
    let mut category = "service".to_string();
    match kind.as_str() {
        "text" => {
            let body = str_at(req, &["text", "body"])
                .ok_or_else(|| invalid("The parameter text['body'] is required."))?;
            if body.chars().count() > 4096 {
                return Err(invalid(format!(
                    "Param text['body'] must be at most 4096 characters long; it has {}.",
                    body.chars().count()
                )));
            }
        }
        "template" => category = validate_template(sb, number, req)?,
        "interactive" => validate_interactive(req)?,
        "image" | "audio" | "video" | "document" | "sticker" | "location" | "contacts"
        | "reaction" => {
            if req.get(kind.as_str()).is_none() {
                return Err(invalid(format!(
                    "The parameter {kind} is required for type {kind}."
                )));
            }
        }
        other => {
            return Err(GraphFailure::new(
                131051,
                "Unsupported message type",
                format!("Message type '{other}' is not supported."),
            ));
        }
    }
    Ok(Validated {
        to: digits,
        to_input: to_input.to_string(),
        kind,
        category,
    })
}

fn validate_template(
    sb: &Sandbox,
    number: &SandboxNumber,
    req: &Value,
) -> Result<String, GraphFailure> {
    let name = str_at(req, &["template", "name"])
        .ok_or_else(|| invalid("The parameter template['name'] is required."))?;
    let lang = str_at(req, &["template", "language", "code"])
        .ok_or_else(|| invalid("The parameter template['language']['code'] is required."))?;
    let tpl = sb
        .settings
        .templates
        .iter()
        .find(|t| {
            t.waba_id == number.waba_id
                && t.name == name
                && t.language == lang
                && t.status == "APPROVED"
        })
        .ok_or_else(|| {
            GraphFailure::new(
                132001,
                "Template name does not exist in the translation",
                format!("template name ({name}) does not exist in {lang}"),
            )
        })?;
    let sent = req["template"]
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("body"))
        .filter_map(|c| c.get("parameters").and_then(Value::as_array))
        .map(Vec::len)
        .sum::<usize>();
    if sent != tpl.body_params {
        return Err(GraphFailure::new(
            132000,
            "Number of parameters does not match the expected number of params",
            format!(
                "body: number of localizable_params ({sent}) does not match the expected number of params ({})",
                tpl.body_params
            ),
        ));
    }
    Ok(tpl.category.to_ascii_lowercase())
}

fn validate_interactive(req: &Value) -> Result<(), GraphFailure> {
    let i = req
        .get("interactive")
        .ok_or_else(|| invalid("The parameter interactive is required."))?;
    match i.get("type").and_then(Value::as_str) {
        Some("button") => {
            let buttons = i
                .pointer("/action/buttons")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("interactive['action']['buttons'] is required."))?;
            if buttons.is_empty() || buttons.len() > 3 {
                return Err(invalid(format!(
                    "Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3; got {}.",
                    buttons.len()
                )));
            }
            for b in buttons {
                let title = str_at(b, &["reply", "title"]).unwrap_or_default();
                if title.is_empty() || title.chars().count() > 20 {
                    return Err(invalid(format!(
                        "Button title length invalid: '{title}'. Min length 1, max length 20."
                    )));
                }
            }
            if str_at(i, &["body", "text"]).is_none_or(|t| t.chars().count() > 1024) {
                return Err(invalid(
                    "interactive['body']['text'] is required and at most 1024 characters.",
                ));
            }
            Ok(())
        }
        Some(_) => Ok(()),
        None => Err(invalid("The parameter interactive['type'] is required.")),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    pub phone_number_id: Option<String>,
}

/// `GET /sandbox/messages[?phone_number_id=]`: what each number sent.
pub async fn list_messages(State(sb): State<Sandbox>, Query(q): Query<ListQuery>) -> Json<Value> {
    Json(json!({"data": sb.sent(q.phone_number_id.as_deref())}))
}

/// `POST /sandbox/simulate/message`: a user writes to a business number.
#[derive(Deserialize)]
pub struct SimulatedMessage {
    /// Defaults to the first number.
    pub phone_number_id: Option<String>,
    /// The user's number (digits or E.164).
    pub from: String,
    pub text: String,
    #[serde(default)]
    pub name: Option<String>,
}

pub async fn simulate_message(
    State(sb): State<Sandbox>,
    Json(m): Json<SimulatedMessage>,
) -> Response {
    let number = match &m.phone_number_id {
        Some(id) => sb.number(id).cloned(),
        None => sb.settings.numbers.first().cloned(),
    };
    let Some(number) = number else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "unknown phone_number_id"})),
        )
            .into_response();
    };
    let from: String = m.from.chars().filter(char::is_ascii_digit).collect();
    if !(7..=15).contains(&from.len()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("'{}' is not a phone number", m.from)})),
        )
            .into_response();
    }
    let now = now_ms();
    let wamid = {
        let mut st = sb.lock();
        st.next_id += 1;
        st.windows
            .insert((number.phone_number_id.clone(), from.clone()), now);
        format!("wamid.SBXIN{:012}", st.next_id)
    };
    let contact = json!({"profile": {"name": m.name.clone().unwrap_or_else(|| "Sandbox User".into())}, "wa_id": from});
    let message = json!({"from": from, "id": wamid, "timestamp": (now / 1000).to_string(), "type": "text", "text": {"body": m.text}});
    sb.hooks
        .push(&number, Item::Message { contact, message }, Duration::ZERO);
    Json(json!({"wamid": wamid})).into_response()
}

/// `POST /sandbox/faults`: scripted errors and latency for a number's next sends.
#[derive(Deserialize)]
pub struct FaultRequest {
    pub phone_number_id: String,
    #[serde(default)]
    pub errors: Vec<Fault>,
    /// Delay added to every send of this number, in milliseconds (0 clears it).
    #[serde(default)]
    pub latency_ms: Option<u64>,
}

pub async fn set_faults(State(sb): State<Sandbox>, Json(f): Json<FaultRequest>) -> Response {
    if sb.number(&f.phone_number_id).is_none() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "unknown phone_number_id"})),
        )
            .into_response();
    }
    let mut st = sb.lock();
    st.faults
        .entry(f.phone_number_id.clone())
        .or_default()
        .extend(f.errors);
    if let Some(ms) = f.latency_ms {
        st.latency
            .insert(f.phone_number_id.clone(), Duration::from_millis(ms));
    }
    let queued: u32 = st
        .faults
        .get(&f.phone_number_id)
        .map(|q| q.iter().map(|f| f.times).sum())
        .unwrap_or(0);
    Json(json!({"queued_faults": queued})).into_response()
}

/// `GET /sandbox/webhooks`: delivery counters.
pub async fn webhook_stats(State(sb): State<Sandbox>) -> Json<super::webhooks::Stats> {
    Json(sb.hooks.stats())
}
