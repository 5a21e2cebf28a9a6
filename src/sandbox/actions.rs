//! What a simulated user's message looks like on Meta's wire: the `type` and the type's object
//! of an inbound `messages[]` entry, for every action `POST /sandbox/users/message` supports.
//!
//! Shapes follow Meta's own webhook examples (the Cloud API OpenAPI description and the
//! webhook reference): a reply-button or list tap is `"type": "interactive"` with
//! `interactive.type` naming the reply, a template quick-reply tap is `"type": "button"` with
//! `button {payload, text}`, and a reaction names its message in `reaction.message_id` and
//! carries no `context`. The control API's own vocabulary (`button_reply`, `list_reply`) is only
//! the name of the action, never the `type` on the wire.

use serde_json::{Value, json};

use super::users::UserMessage;

/// One inbound message as the webhook will carry it (without `from`, `id`, `timestamp`).
#[derive(Debug, PartialEq)]
pub struct WireMessage {
    /// Meta's `type`.
    pub kind: &'static str,
    /// The type's object(s), merged into the message (`{"text": {...}}`, `{"referral": ...}`).
    pub payload: Value,
    /// The business message this one answers, as `context.id`; never set for reactions.
    pub context: Option<String>,
}

/// Actions that answer a business message and so need its wamid.
pub fn needs_context(action: &str) -> bool {
    matches!(
        action,
        "button" | "button_reply" | "list_reply" | "reaction"
    )
}

/// Meta's shape for `action`, or the sentence saying why the sandbox cannot simulate it.
pub fn build(action: &str, m: &UserMessage, media_id: &str) -> Result<WireMessage, String> {
    let text = m.text.clone().unwrap_or_else(|| "Hi!".into());
    let id = m.id.clone().unwrap_or_else(|| "btn_0".into());
    let title = m.title.clone().unwrap_or_else(|| text.clone());
    let (kind, mut payload): (&'static str, Value) = match action {
        "text" => ("text", json!({"text": {"body": text}})),
        "image" | "video" | "document" | "sticker" | "audio" => {
            let (kind, mime) = match action {
                "image" => ("image", "image/jpeg"),
                "video" => ("video", "video/mp4"),
                "document" => ("document", "application/pdf"),
                "sticker" => ("sticker", "image/webp"),
                _ => ("audio", "audio/ogg; codecs=opus"),
            };
            let mut media = json!({"mime_type": mime, "sha256": "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=", "id": media_id});
            if let Some(c) = &m.caption {
                media["caption"] = json!(c);
            }
            if kind == "audio" {
                media["voice"] = json!(true);
            }
            (kind, json!({ kind: media }))
        }
        "location" => (
            "location",
            json!({"location": {"latitude": 19.0760, "longitude": 72.8777, "name": text, "address": "Gateway of India, Apollo Bandar, Mumbai"}}),
        ),
        "contacts" => {
            let phone = m.id.clone().unwrap_or_else(|| "+15550109999".into());
            let wa_id: String = phone.chars().filter(char::is_ascii_digit).collect();
            let name = m.title.clone().unwrap_or_else(|| "Sandbox Contact".into());
            (
                "contacts",
                json!({"contacts": [{"name": {"first_name": name, "formatted_name": name},
                    "phones": [{"phone": phone, "wa_id": wa_id, "type": "MOBILE"}]}]}),
            )
        }
        "button" => ("button", json!({"button": {"payload": id, "text": title}})),
        "button_reply" => (
            "interactive",
            json!({"interactive": {"type": "button_reply", "button_reply": {"id": id, "title": title}}}),
        ),
        "list_reply" => {
            let mut row = json!({"id": id, "title": title});
            if let Some(d) = &m.description {
                row["description"] = json!(d);
            }
            (
                "interactive",
                json!({"interactive": {"type": "list_reply", "list_reply": row}}),
            )
        }
        "reaction" => (
            "reaction",
            json!({"reaction": {"message_id": m.context, "emoji": m.text.clone().unwrap_or_else(|| "👍".into())}}),
        ),
        other => {
            return Err(format!(
                "type '{other}' is not one the sandbox can simulate"
            ));
        }
    };
    if m.referral {
        if kind != "text" {
            return Err(format!(
                "\"referral\" (a click-to-WhatsApp ad) comes with a text message, not a '{action}'"
            ));
        }
        payload["referral"] = referral();
    }
    // Meta's reaction webhook names its message in reaction.message_id only.
    let context = (kind != "reaction").then(|| m.context.clone()).flatten();
    Ok(WireMessage {
        kind,
        payload,
        context,
    })
}

/// The `referral` object of a message that came from a click-to-WhatsApp ad, with the fields
/// of Meta's example.
fn referral() -> Value {
    json!({
        "source_url": "https://fb.me/sandbox-ad",
        "source_id": "120226305854810726",
        "source_type": "ad",
        "body": "Fresh bread every morning",
        "headline": "Chat with us",
        "media_type": "image",
        "image_url": "https://example.com/sandbox-ad.jpg",
        "ctwa_clid": format!("ARAk{}", uuid::Uuid::now_v7().simple()),
        "welcome_message": {"text": "Hi! How can we help?"},
    })
}

#[cfg(test)]
mod tests;
