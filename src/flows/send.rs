//! A flow's send step as a message for the send policy: the same [`Outgoing`] an API send
//! becomes, so a flow's message passes the same checks (window, consent, the Cloud API rule
//! book) and, in the runner, the same outbox and pacing.

use serde_json::{Value, json};

use crate::phone::PhoneE164;
use crate::policy::{Outgoing, template_object};

/// A send, ready for [`crate::policy::check`].
#[derive(Debug, Clone)]
pub struct Send {
    pub to: PhoneE164,
    pub message: Outgoing,
    /// Sent instead of a free-form message when the customer service window is closed.
    pub fallback: Option<Outgoing>,
}

/// The step types that send a WhatsApp message.
pub fn is_send(kind: &str) -> bool {
    matches!(
        kind,
        "send_template"
            | "send_text"
            | "send_interactive"
            | "send_media"
            | "request_call_permission"
    )
}

/// Why a send step cannot become a message: the code a flow branches on, and the words.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsendable {
    pub code: &'static str,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> Unsendable {
    Unsendable {
        code: "invalid_input",
        message: message.into(),
    }
}

/// Builds the send of an action (`kind` and its rendered `input`, see
/// [`super::engine::Action`]); `contact_phone` is the recipient when the step names none.
pub fn from_action(
    kind: &str,
    input: &Value,
    contact_phone: Option<&str>,
) -> Result<Send, Unsendable> {
    let to_text = input["to"].as_str().or(contact_phone).ok_or_else(|| {
        invalid(
            "the step has no recipient: set `to`, or start the flow from an event with a contact",
        )
    })?;
    let to = PhoneE164::parse_international(to_text).map_err(|message| Unsendable {
        code: "invalid_phone",
        message,
    })?;
    let template = |t: &Value| -> Result<Outgoing, Unsendable> {
        let name = t["template"].as_str().unwrap_or_default();
        let language = t["language"].as_str().unwrap_or("en_US");
        Ok(Outgoing {
            kind: "template".into(),
            payload: template_object(name, language, &t["variables"], &[]).map_err(invalid)?,
        })
    };
    let fallback = match &input["fallback"] {
        Value::Null => None,
        t => Some(template(t)?),
    };
    let message = match kind {
        "send_template" => template(&input["template"])?,
        "send_text" => {
            let text = input["text"].as_str().unwrap_or_default();
            let n = text.chars().count();
            if n == 0 || n > 4096 {
                return Err(invalid(format!(
                    "the text has {n} characters; WhatsApp allows 1 to 4096"
                )));
            }
            Outgoing {
                kind: "text".into(),
                payload: json!({"preview_url": false, "body": text}),
            }
        }
        "send_interactive" => {
            let buttons: Vec<Value> = input["buttons"]
                .as_array()
                .map(|b| {
                    b.iter()
                        .map(|b| json!({"type": "reply", "reply": {"id": b["id"], "title": b["title"]}}))
                        .collect()
                })
                .unwrap_or_default();
            Outgoing {
                kind: "interactive".into(),
                payload: json!({"type": "button", "body": {"text": input["body"]}, "action": {"buttons": buttons}}),
            }
        }
        "send_media" => {
            let media = input["media"].as_str().unwrap_or("image").to_string();
            let mut object = json!({"link": input["url"]});
            // Audio and stickers take no caption.
            if let Some(c) = input["caption"].as_str()
                && !matches!(media.as_str(), "audio" | "sticker")
            {
                object["caption"] = json!(c);
            }
            Outgoing {
                kind: media,
                payload: object,
            }
        }
        "request_call_permission" => Outgoing {
            kind: "interactive".into(),
            payload: json!({
                "type": "call_permission_request",
                "action": {"name": "call_permission_request"},
                "body": {"text": "May we call you on WhatsApp?"},
            }),
        },
        other => return Err(invalid(format!("a {other} step sends no message"))),
    };
    Ok(Send {
        to,
        message,
        fallback,
    })
}
