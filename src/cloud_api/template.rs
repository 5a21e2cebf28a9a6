//! Message templates as the Cloud API describes them (reference §6): what a template declares
//! (category, parameter format, header, body placeholders, buttons), so that a send can be
//! checked against it — by Ringback before sending, and by the sandbox on receipt.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A template as the WABA holds it (the shape of `GET /{waba-id}/message_templates` items).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Template {
    pub id: String,
    #[serde(skip, default)]
    pub waba_id: String,
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: String,
    /// `positional` ({{1}}) or `named` ({{first_name}}).
    #[serde(default = "positional")]
    pub parameter_format: String,
    /// Components as created (`HEADER`, `BODY`, `FOOTER`, `BUTTONS`).
    #[serde(default)]
    pub components: Vec<Value>,
}

fn positional() -> String {
    "positional".into()
}

impl Template {
    /// A body-only template; placeholders decide positional or named.
    pub fn simple(waba_id: &str, id: u64, name: &str, category: &str, body: &str) -> Self {
        let named = placeholders(body)
            .iter()
            .any(|p| !p.chars().all(|c| c.is_ascii_digit()));
        Self {
            id: id.to_string(),
            waba_id: waba_id.into(),
            name: name.into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: category.into(),
            parameter_format: if named { "named" } else { "positional" }.into(),
            components: vec![json!({"type": "BODY", "text": body})],
        }
    }

    fn component(&self, kind: &str) -> Option<&Value> {
        self.components.iter().find(|c| {
            c.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(kind))
        })
    }

    /// The body text with its placeholders, as people see it before values are filled in.
    pub fn body_text(&self) -> &str {
        self.component("BODY")
            .and_then(|b| b.get("text"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The body with `values` in place of its placeholders, in order.
    pub fn preview(&self, values: &[String]) -> String {
        let mut text = self.body_text().to_string();
        for (name, value) in self.body_params().iter().zip(values) {
            text = text.replace(&format!("{{{{{name}}}}}"), value);
        }
        text
    }

    /// The body's placeholders in order (`1`, `2` … or names).
    pub fn body_params(&self) -> Vec<String> {
        self.component("BODY")
            .and_then(|b| b.get("text"))
            .and_then(Value::as_str)
            .map(placeholders)
            .unwrap_or_default()
    }

    pub fn is_named(&self) -> bool {
        self.parameter_format == "named"
    }

    /// `TEXT`, `IMAGE`, `VIDEO`, `DOCUMENT` or `LOCATION` when the template has a header.
    pub fn header_format(&self) -> Option<String> {
        self.component("HEADER")
            .and_then(|h| h.get("format"))
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase)
    }

    /// Placeholders in a text header.
    pub fn header_params(&self) -> Vec<String> {
        self.component("HEADER")
            .and_then(|h| h.get("text"))
            .and_then(Value::as_str)
            .map(placeholders)
            .unwrap_or_default()
    }

    /// Indexes of URL buttons whose URL has a variable suffix (need a `text` parameter).
    pub fn dynamic_url_buttons(&self) -> Vec<usize> {
        let buttons = self
            .component("BUTTONS")
            .and_then(|b| b.get("buttons"))
            .and_then(Value::as_array);
        buttons
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(_, b)| {
                b.get("type").and_then(Value::as_str) == Some("URL")
                    && b.get("url")
                        .and_then(Value::as_str)
                        .is_some_and(|u| u.contains("{{"))
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// `{{1}}`, `{{ name }}` … in order of first appearance.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim().to_string();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
        rest = &after[end + 2..];
    }
    out
}

/// The templates every sandbox WABA starts with.
pub fn demo_templates(waba_id: &str) -> Vec<Template> {
    vec![
        Template::simple(
            waba_id,
            1_000_001,
            "missed_call_followup",
            "UTILITY",
            "Hi {{1}}, thanks for calling {{2}} at {{3}}. Sorry we missed you! Reply here and we will help right away.",
        ),
        Template::simple(waba_id, 1_000_002, "hello_world", "UTILITY", "Hello World"),
        Template::simple(
            waba_id,
            1_000_003,
            "weekly_offer",
            "MARKETING",
            "Hi {{first_name}}, this week: {{offer}}. Reply STOP to opt out.",
        ),
        // The templates of the example flows (examples/flows).
        Template::simple(
            waba_id,
            1_000_004,
            "call_follow_up",
            "UTILITY",
            "Hi {{1}}, thanks for your call today. If anything is still open, reply here and we will pick it up.",
        ),
        Template::simple(
            waba_id,
            1_000_005,
            "call_interested",
            "UTILITY",
            "Hi {{1}}, thanks for your interest on today's call. Here are the details we promised: {{2}}",
        ),
        Template::simple(
            waba_id,
            1_000_006,
            "lead_welcome",
            "UTILITY",
            "Hi {{1}}, thanks for your enquiry about {{2}}. What would you like to know? Reply here.",
        ),
        Template::simple(
            waba_id,
            1_000_007,
            "appointment_reminder",
            "UTILITY",
            "Hi {{name}}, a reminder of your appointment on {{date}} at {{time}}. Reply C to confirm or R to reschedule.",
        ),
    ]
}
