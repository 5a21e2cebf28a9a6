//! Conversations: everything one customer and one business number said to each other, from
//! the first message (or call) until it ends.
//!
//! The rules live here, free of HTTP and SQL:
//! - a conversation belongs to one (sender number, contact), the contact keyed like the
//!   consent ledger (wa_id, or `bsuid:…` for a username user without one);
//! - it starts with a customer's message ([`Kind::Inbound`]), a WhatsApp call, or our first
//!   message that Meta accepted, whose origin gives the kind ([`Kind::for_outbound`]);
//! - it ends after a quiet period in both directions (`[conversations] inactivity_minutes`,
//!   per number), by hand, or when the customer opts out; a message after the end starts a
//!   new one.
//!
//! [`tracker`] applies these rules to the journal of facts, in order, and publishes the events.

use serde::Serialize;
use serde_json::{Value, json};

use crate::time::Millis;

pub mod summary;
pub mod tracker;

/// Why a conversation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The customer wrote (or called on WhatsApp) first.
    Inbound,
    /// Our reply to a missed call opened it.
    MissedCall,
    /// A message of ours that no person asked for through the API (an opt-out confirmation,
    /// a flow).
    BusinessInitiated,
    /// A message sent through `POST /api/v1/messages`.
    Api,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Inbound => "inbound",
            Kind::MissedCall => "missed_call",
            Kind::BusinessInitiated => "business_initiated",
            Kind::Api => "api",
        }
    }

    /// The kind a conversation opened by one of our messages has, from the message's
    /// idempotency key: the processor keys a missed-call reply `call:…` and an opt-out
    /// confirmation `consent-confirm:…`; anything else came through the API.
    pub fn for_outbound(idempotency_key: Option<&str>) -> Kind {
        match idempotency_key {
            Some(k) if k.starts_with("call:") => Kind::MissedCall,
            Some(k) if k.starts_with("consent-confirm:") => Kind::BusinessInitiated,
            _ => Kind::Api,
        }
    }
}

/// Why a conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Inactivity,
    Closed,
    OptOut,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Inactivity => "inactivity",
            EndReason::Closed => "closed",
            EndReason::OptOut => "opt_out",
        }
    }
}

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    pub id: String,
    pub sender_id: String,
    /// The customer: a wa_id (digits) or `bsuid:<id>`.
    pub contact: String,
    pub contact_name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub started_at: Millis,
    pub last_message_at: Millis,
    pub message_count: u32,
    pub ended_at: Option<Millis>,
    pub end_reason: Option<String>,
}

impl Conversation {
    /// A new open conversation.
    pub fn start(sender_id: &str, contact: &str, kind: Kind, at: Millis) -> Self {
        Conversation {
            id: format!("conv_{}", uuid::Uuid::now_v7().simple()),
            sender_id: sender_id.to_string(),
            contact: contact.to_string(),
            contact_name: None,
            kind: kind.as_str().to_string(),
            started_at: at,
            last_message_at: at,
            message_count: 0,
            ended_at: None,
            end_reason: None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.ended_at.is_none()
    }

    /// When this conversation ends of inactivity if nothing more is said.
    pub fn idle_at(&self, inactivity: Millis) -> Millis {
        self.last_message_at.saturating_add(inactivity)
    }

    /// The customer's phone number, when the contact is one (`+` and digits).
    pub fn customer_phone(&self) -> Option<String> {
        (!self.contact.starts_with("bsuid:")).then(|| format!("+{}", self.contact))
    }

    /// `open` or `ended`.
    pub fn state(&self) -> &'static str {
        if self.is_open() { "open" } else { "ended" }
    }
}

/// One message of a conversation, in either direction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    #[serde(skip)]
    pub conversation_id: String,
    /// 1, 2, 3… in the order the messages joined the conversation.
    pub seq: u32,
    /// `inbound` (the customer) or `outbound` (the business).
    pub direction: String,
    /// The wamid of a customer's message; Ringback's id of one of ours.
    pub message_id: String,
    pub wamid: Option<String>,
    /// Meta's message type (`text`, `image`, `template`, `interactive`, `reaction`…).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text, or a readable summary for anything else (see [`summary`]).
    pub text: String,
    /// `received` for the customer's; the delivery state for ours.
    pub status: String,
    pub at: Millis,
    pub status_at: Millis,
}

/// One of our messages as the tracker needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    pub id: String,
    pub sender_id: String,
    /// The recipient as queued (`+` and digits).
    pub to: String,
    pub kind: String,
    /// The Cloud API request body as stored; read with [`OutboundMessage::body`] only when a
    /// summary is needed (most statuses need none).
    pub body_json: String,
    pub idempotency_key: Option<String>,
    pub state: String,
    pub wamid: Option<String>,
    pub created_at: Millis,
}

impl OutboundMessage {
    pub fn body(&self) -> Value {
        serde_json::from_str(&self.body_json).unwrap_or(Value::Null)
    }

    /// The text of the message, or a summary of it.
    pub fn summary(&self) -> String {
        summary::outbound(&self.kind, &self.body())
    }

    /// The conversation contact this message goes to.
    pub fn contact(&self) -> String {
        self.to.trim_start_matches('+').to_string()
    }
}

/// How far along a delivery status is: a status only moves a line forward.
pub fn status_rank(status: &str) -> u8 {
    match status {
        "queued" | "sending" | "uncertain" => 0,
        "accepted" | "sent" => 1,
        "delivered" => 2,
        "read" | "played" => 3,
        "failed" => 4,
        _ => 0,
    }
}

/// A JSON object of `fields`, each moved in: `json!` would copy a `Value` field by
/// serializing it again, and events are built on the tracker's hot path.
pub fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// The business number as events show it.
pub fn sender_json(settings: &crate::config::Settings, sender_id: &str) -> Value {
    let s = settings
        .senders
        .iter()
        .find(|s| s.phone_number_id == sender_id);
    json!({
        "phone_number_id": sender_id,
        "phone": s.map(|s| s.display_number.to_string()),
        "display_name": s.map(|s| s.business_name.clone()),
    })
}

/// The transcript as one readable string: `[time] Customer|Business: text`, one per line.
pub fn transcript_text(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|l| {
            let who = if l.direction == "inbound" {
                "Customer"
            } else {
                "Business"
            };
            format!("[{}] {who}: {}", crate::time::display(l.at), l.text)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A person ends `c` now (the API's close, the console's button). The end is journaled and
/// applied by the tracker in order with everything else, so it cannot race a message arriving
/// at the same moment; `conversation.ended` follows. `Ok(Err(why))` when it has ended already.
pub async fn request_close(
    store: &dyn crate::store::Store,
    c: &Conversation,
    now: Millis,
) -> Result<Result<(), String>, crate::store::StoreError> {
    if !c.is_open() {
        return Ok(Err(format!(
            "conversation '{}' ended already ({})",
            c.id,
            c.end_reason.as_deref().unwrap_or("?")
        )));
    }
    store
        .record_fact(&crate::events::Fact::CloseRequested {
            conversation_id: c.id.clone(),
            at: now,
        })
        .await?;
    Ok(Ok(()))
}

/// A conversation as the API and events show it (without its transcript).
pub fn view(settings: &crate::config::Settings, c: &Conversation) -> Value {
    let mut view = json!({
        "id": c.id,
        "type": c.kind,
        "state": c.state(),
        "customer": {"contact": c.contact, "phone": c.customer_phone(), "name": c.contact_name},
        "started_at": c.started_at,
        "last_message_at": c.last_message_at,
        "message_count": c.message_count,
        "ended_at": c.ended_at,
        "end_reason": c.end_reason,
    });
    view["sender"] = sender_json(settings, &c.sender_id);
    view
}

/// The `conversation.ended` payload: the fields seed automations expect of a "conversation
/// ended" webhook, with the whole transcript.
pub fn ended_payload(
    settings: &crate::config::Settings,
    c: &Conversation,
    lines: &[Line],
) -> Value {
    let sender = sender_json(settings, &c.sender_id);
    json!({
        "conversation_id": c.id,
        "conversation_type": c.kind,
        "end_reason": c.end_reason,
        "customer_phone": c.customer_phone(),
        "customer_contact": c.contact,
        "customer_name": c.contact_name,
        "sender_phone_number_id": c.sender_id,
        "sender_phone": sender["phone"],
        "sender_display_name": sender["display_name"],
        "message_count": lines.len(),
        "created_at": c.started_at,
        "ended_at": c.ended_at,
        "transcript": lines,
        "transcript_text": transcript_text(lines),
        // Filled by the number's assistant when it declares `extract` (see
        // `crate::assistants::evaluate`); `extraction_error` says why when it could not.
        "extracted_variables": {},
        "extraction_error": null,
        "input_variables": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbound_message_names_the_kind_of_conversation_it_opens() {
        assert_eq!(
            Kind::for_outbound(Some("call:twilio:CA1")),
            Kind::MissedCall
        );
        assert_eq!(
            Kind::for_outbound(Some("consent-confirm:wamid.1")),
            Kind::BusinessInitiated
        );
        assert_eq!(Kind::for_outbound(Some("order-7")), Kind::Api);
        assert_eq!(Kind::for_outbound(None), Kind::Api);
    }

    #[test]
    fn a_conversation_goes_idle_after_the_quiet_period() {
        let mut c = Conversation::start("pn", "4915", Kind::Inbound, 1_000);
        c.last_message_at = 5_000;
        assert_eq!(c.idle_at(60_000), 65_000);
        assert_eq!(c.customer_phone().as_deref(), Some("+4915"));
        c.contact = "bsuid:x".into();
        assert_eq!(c.customer_phone(), None);
    }

    #[test]
    fn the_transcript_reads_as_a_dialogue() {
        let line = |d: &str, t: &str| Line {
            conversation_id: "c".into(),
            seq: 1,
            direction: d.into(),
            message_id: "m".into(),
            wamid: None,
            kind: "text".into(),
            text: t.into(),
            status: "received".into(),
            at: 0,
            status_at: 0,
        };
        let text = transcript_text(&[
            line("outbound", "Sorry we missed you"),
            line("inbound", "Call me"),
        ]);
        assert_eq!(
            text,
            "[1970-01-01T00:00:00Z] Business: Sorry we missed you\n[1970-01-01T00:00:00Z] Customer: Call me"
        );
    }
}
