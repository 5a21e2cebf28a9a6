//! The send policy: everything checked before a message is queued, in one place and free of
//! HTTP — the 24-hour window (with an optional fallback template), the consent ledger, and the
//! Cloud API rule book against the synced templates. The API maps a [`Refusal`] to a 4xx with
//! a machine code; the benchmark (`ringback bench --policy`) times [`check`].

use serde_json::{Value, json};

use crate::cloud_api::rules::{self, SenderRef};
use crate::config::Sender;
use crate::consent::{self, Category};
use crate::phone::PhoneE164;
use crate::store::PolicyFacts;
use crate::template_registry::Registry;
use crate::time::Millis;
use crate::window::{self, Window};

/// A message as the caller asked for it: a Cloud API `type` and its object.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub kind: String,
    pub payload: Value,
}

/// What the policy allows: the exact Cloud API body, and why it is what it is.
#[derive(Debug, Clone)]
pub struct Approved {
    pub kind: String,
    pub body: Value,
    pub reason: String,
    /// Set when this send opens the 72-hour free entry point window (until then).
    pub opens_free_entry_point: Option<Millis>,
}

/// Why a send is refused; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{to} has not written to this number in the last 24 hours, so WhatsApp allows only an approved template (Meta would fail this with 131047). Send a template, or add \"fallback_template\" to send one in its place."
    )]
    OutsideWindow { to: String },
    #[error(
        "Not sent: {0}. Meta would fail a marketing template with 131050; sending to people who opted out also lowers the number's quality."
    )]
    OptedOut(String),
    #[error("{}", describe(.0))]
    Invalid(rules::Refusal),
}

fn describe(r: &rules::Refusal) -> String {
    let fix = crate::cloud_api::errors::lookup(r.code)
        .map(|i| format!(" Fix: {}", i.fix))
        .unwrap_or_default();
    format!(
        "{} (Meta would refuse this with error {}: {}).{fix}",
        r.details, r.code, r.title
    )
}

/// The full Cloud API body: `messaging_product`, `recipient_type`, `to`, `type`, the typed
/// object, and our message id as `biz_opaque_callback_data` (status webhooks echo it).
pub fn body(to: &PhoneE164, kind: &str, payload: Value, id: &str) -> Value {
    let mut b = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to.as_str(), "type": kind, "biz_opaque_callback_data": id});
    b[kind] = payload;
    b
}

/// The Cloud API `template` object: `name`, `language` and the body's parameters, positional
/// (`["Asha", "10:30"]`) or named (`{"first_name": "Asha"}`), then any `components` as given
/// (header media, buttons). The API's sends and the flows' build it alike.
pub fn template_object(
    name: &str,
    language: &str,
    parameters: &Value,
    components: &[Value],
) -> Result<Value, String> {
    let text_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let params: Vec<Value> = match parameters {
        Value::Null => Vec::new(),
        Value::Array(values) => values
            .iter()
            .map(|v| json!({"type": "text", "text": text_of(v)}))
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| json!({"type": "text", "parameter_name": k, "text": text_of(v)}))
            .collect(),
        _ => {
            return Err(
                "template.parameters must be a list (positional) or an object (named)".into(),
            );
        }
    };
    let mut all = Vec::new();
    if !params.is_empty() {
        all.push(json!({"type": "body", "parameters": params}));
    }
    all.extend(components.iter().cloned());
    let mut object = json!({"name": name, "language": {"code": language}});
    if !all.is_empty() {
        object["components"] = Value::Array(all);
    }
    Ok(object)
}

impl Refusal {
    /// The machine code of a refusal: the API's error `code`, and what a flow branches on.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::OutsideWindow { .. } => "outside_window",
            Refusal::OptedOut(_) => "opted_out",
            Refusal::Invalid(i) => meta_error_code(i.code).unwrap_or("invalid_message"),
        }
    }
}

/// The machine code of a Cloud API error code, when Ringback names it: the same word whether
/// the policy refused the send before it left or Meta refused it after (an API client and a
/// flow branch on it alike).
pub fn meta_error_code(code: i64) -> Option<&'static str> {
    Some(match code {
        132000 | 132001 | 132005 | 132012 | 132015 | 132016 => "template_invalid",
        131021 => "recipient_is_sender",
        131051 => "unsupported_type",
        131047 => "outside_window",
        131050 => "opted_out",
        130429 | 131056 | 131048 | 4 | 80007 => "rate_limited",
        131026 | 131030 => "invalid_phone",
        _ => return None,
    })
}

/// The consent category of a message: a template's own category, else utility.
fn category(templates: &Registry, sender: &Sender, kind: &str, payload: &Value) -> Category {
    if kind != "template" {
        return Category::Utility;
    }
    let name = payload
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let snapshot = templates.snapshot();
    let found = snapshot
        .iter()
        .find(|t| t.waba_id == sender.waba_id && t.name == name);
    found
        .and_then(|t| Category::parse(&t.category))
        .unwrap_or(Category::Utility)
}

/// Checks one send; `fallback` replaces a free-form message when the window is closed.
/// `facts` are the person's, read by the caller ([`crate::store::ContactStore::policy_facts`]),
/// so the check itself is pure.
#[allow(clippy::too_many_arguments)]
pub fn check(
    facts: &PolicyFacts,
    templates: &Registry,
    sender: &Sender,
    to: &PhoneE164,
    out: Outgoing,
    fallback: Option<Outgoing>,
    id: &str,
    now: Millis,
) -> Result<Approved, Refusal> {
    let Outgoing {
        mut kind,
        mut payload,
    } = out;
    let mut reason = "sent through the API".to_string();
    let (last_inbound, consent_state) = (facts.last_inbound, facts.consent.clone());
    if kind != "template" && window::at(last_inbound, now) == Window::Closed {
        let replaced = kind.clone();
        let f = fallback.ok_or_else(|| Refusal::OutsideWindow { to: to.to_string() })?;
        reason = format!(
            "sent through the API; the 24-hour window with {to} is closed, so the fallback template {} replaced the {replaced} message",
            f.payload.get("name").and_then(Value::as_str).unwrap_or("")
        );
        (kind, payload) = (f.kind, f.payload);
    }
    consent::permits(&consent_state, category(templates, sender, &kind, &payload))
        .map_err(Refusal::OptedOut)?;
    let body = body(to, &kind, payload, id);
    // Before the first template sync Ringback cannot judge templates and leaves them to Meta.
    if kind != "template" || templates.knows(&sender.waba_id) {
        let sender_ref = SenderRef {
            display_digits: sender.display_number.digits(),
            waba_id: &sender.waba_id,
        };
        rules::validate(&sender_ref, &templates.snapshot(), &body).map_err(Refusal::Invalid)?;
    }
    let mut opens_free_entry_point = None;
    match window::entry_point(facts.referral_at, facts.free_until, now) {
        window::EntryPoint::Open { until } => {
            reason += &format!(
                "; inside the free entry point window (click-to-WhatsApp referral): free until {}",
                crate::time::display(until)
            );
        }
        window::EntryPoint::Opens { until } => {
            reason += &format!(
                "; replying to a click-to-WhatsApp referral within 24 h opens the 72-hour free entry point window: free until {}",
                crate::time::display(until)
            );
            opens_free_entry_point = Some(until);
        }
        window::EntryPoint::None => {}
    }
    Ok(Approved {
        kind,
        body,
        reason,
        opens_free_entry_point,
    })
}
