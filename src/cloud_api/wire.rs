//! The Cloud API's JSON, exactly as the reference gives it (§3, §4): request bodies for the
//! message types Ringback sends, the success response and the Graph error envelope. The
//! sandbox speaks the same structs, so client and emulator cannot drift apart.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `{"messaging_product":"whatsapp","contacts":[…],"messages":[{"id":"wamid…"}]}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendResponse {
    pub messaging_product: String,
    #[serde(default)]
    pub contacts: Vec<ResponseContact>,
    #[serde(default)]
    pub messages: Vec<ResponseMessage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseContact {
    pub input: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseMessage {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_status: Option<String>,
}

/// `{"error":{…}}` on any non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: GraphError,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphError {
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<GraphErrorData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_transient: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphErrorData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    #[serde(default)]
    pub details: String,
}

/// A text message body (≤ 4096 characters).
pub fn text(to: &str, body: &str, biz_opaque: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": false, "body": body},
        "biz_opaque_callback_data": biz_opaque,
    })
}

/// An interactive message with up to three reply buttons; button ids are `btn_<n>`.
pub fn reply_buttons(to: &str, body: &str, buttons: &[String], biz_opaque: &str) -> Value {
    let buttons: Vec<Value> = buttons
        .iter()
        .enumerate()
        .map(|(i, title)| json!({"type": "reply", "reply": {"id": format!("btn_{i}"), "title": title}}))
        .collect();
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "interactive",
        "interactive": {"type": "button", "body": {"text": body}, "action": {"buttons": buttons}},
        "biz_opaque_callback_data": biz_opaque,
    })
}

/// A template with positional body parameters (`{{1}}`, `{{2}}`, …).
pub fn template(
    to: &str,
    name: &str,
    language: &str,
    body_params: &[String],
    biz_opaque: &str,
) -> Value {
    let mut template = json!({"name": name, "language": {"code": language}});
    if !body_params.is_empty() {
        let params: Vec<Value> = body_params
            .iter()
            .map(|p| json!({"type": "text", "text": p}))
            .collect();
        template["components"] = json!([{"type": "body", "parameters": params}]);
    }
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
        "biz_opaque_callback_data": biz_opaque,
    })
}
