//! Inbound: what providers tell us, verified, parsed and made durable before we answer.
//!
//! Every provider module only *verifies* (is this really from the provider?) and *parses*
//! (provider wire format → [`InboundEvent`]); parsing is pure. The HTTP layer then hands the
//! events to the [`Ingestor`], which commits them in a group transaction, and only then sends
//! the provider's acknowledgement. Redeliveries are absorbed by each event's dedup key.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::Millis;

pub mod generic;
pub mod twilio;
pub mod whatsapp;

/// A provider request was refused; the text says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// Missing or wrong signature: 401, nothing stored.
    #[error(transparent)]
    BadSignature(#[from] crate::signature::SignatureError),
    /// The body cannot be read at all: 400, nothing stored.
    #[error("{0}")]
    Malformed(String),
    /// The provider is not configured on this server: 404.
    #[error("{0}")]
    NotConfigured(&'static str),
}

/// Where a call event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallSource {
    Twilio,
    Generic,
    Whatsapp,
    /// Ringback's own SIP missed-call number.
    Sip,
    /// An Asterisk PBX through its Manager Interface (AMI).
    Asterisk,
    /// A FreeSWITCH PBX through its event socket (ESL).
    Freeswitch,
}

impl CallSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CallSource::Twilio => "twilio",
            CallSource::Generic => "generic",
            CallSource::Whatsapp => "whatsapp",
            CallSource::Sip => "sip",
            CallSource::Asterisk => "asterisk",
            CallSource::Freeswitch => "freeswitch",
        }
    }
}

/// How a call ended (or that it is still ringing), in Ringback's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Not over yet; carries ring time if the source knows it.
    Ringing,
    Answered,
    NoAnswer,
    Busy,
    Failed,
    /// The caller hung up while it rang.
    Canceled,
    /// The line refused the call (a missed-call number that never answers).
    Rejected,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ringing => "ringing",
            CallOutcome::Answered => "answered",
            CallOutcome::NoAnswer => "no-answer",
            CallOutcome::Busy => "busy",
            CallOutcome::Failed => "failed",
            CallOutcome::Canceled => "canceled",
            CallOutcome::Rejected => "rejected",
        }
    }
}

/// One phone call, normalised across sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    pub source: CallSource,
    pub provider_call_id: String,
    /// The caller id exactly as the source gave it.
    pub from_raw: String,
    /// The number that was called (the business line), as given.
    pub to_raw: Option<String>,
    pub outcome: CallOutcome,
    pub ring_seconds: Option<u32>,
    pub talk_seconds: Option<u32>,
    pub caller_name: Option<String>,
    pub occurred_at: Millis,
}

/// A message a WhatsApp user sent to one of our numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub phone_number_id: String,
    pub wamid: String,
    /// `wa_id` (digits) when Meta sent it; absent for some username users since 2026.
    pub from_wa_id: Option<String>,
    /// Business-scoped user id (2026), when present.
    pub from_user_id: Option<String>,
    pub profile_name: Option<String>,
    pub timestamp: Millis,
    /// Meta's `type`, verbatim (including types Ringback does not know).
    pub message_type: String,
    /// Human-readable summary (text body, button title, caption...), if any.
    pub text: Option<String>,
    /// The business message this one replies to, if any.
    pub context_id: Option<String>,
    /// True when `message_type` is not one Ringback knows; the message is still kept whole.
    pub unknown_type: bool,
    /// The whole message object as Meta sent it.
    pub payload: Value,
    /// What the user chose, when the message is a tap on a reply button, a list row or a
    /// template quick-reply button. Events stored before this field existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyTap>,
}

/// A tap on something the business offered; `context_id` names the message it was in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyTap {
    /// `button_reply` or `list_reply` (Meta's `interactive.type`), or `button` for a template
    /// quick-reply button.
    pub kind: String,
    /// The button or row id the business gave it (a template button's `payload`).
    pub id: String,
    pub title: String,
    /// A list row's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Delivery state of a message we sent, as Meta reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Played => "played",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// An error object from a webhook (`statuses[].errors[]` and friends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookError {
    pub code: i64,
    pub title: Option<String>,
    pub details: Option<String>,
}

/// A status webhook for a message we sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub phone_number_id: String,
    pub wamid: String,
    pub status: DeliveryStatus,
    pub timestamp: Millis,
    pub recipient_id: Option<String>,
    /// Our message id, echoed back (Ringback sets it on every send).
    pub biz_opaque_callback_data: Option<String>,
    pub errors: Vec<WebhookError>,
}

impl StatusUpdate {
    /// The first error Meta attached, as "(code) title: details", for the message's
    /// `last_error` and the status row.
    pub fn error_detail(&self) -> Option<String> {
        self.errors.first().map(|e| {
            format!(
                "({}) {}{}",
                e.code,
                e.title.as_deref().unwrap_or_default(),
                e.details
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )
        })
    }
}

/// Everything a webhook can carry, after parsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboundEvent {
    Message(InboundMessage),
    Status(StatusUpdate),
    Call(CallEvent),
    /// A webhook field Ringback keeps but does not act on yet (template status, quality...).
    Other {
        field: String,
        value: Value,
    },
    /// Part of a batch that could not be understood: stored with the reason, never dropped.
    Flagged {
        reason: String,
        fragment: Value,
    },
}

impl InboundEvent {
    /// Short name stored with the event.
    pub fn kind(&self) -> &'static str {
        match self {
            InboundEvent::Message(_) => "message",
            InboundEvent::Status(_) => "status",
            InboundEvent::Call(_) => "call",
            InboundEvent::Other { .. } => "other",
            InboundEvent::Flagged { .. } => "flagged",
        }
    }
}

/// An event plus the key that makes its redelivery a no-op.
#[derive(Debug, Clone)]
pub struct KeyedEvent {
    pub dedup_key: String,
    pub event: InboundEvent,
}

/// One accepted request: its raw body (kept for audit and replay) and its events.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    pub source: &'static str,
    pub raw: Vec<u8>,
    pub events: Vec<KeyedEvent>,
    pub received_at: Millis,
}

/// A stable short digest for dedup keys of events that carry no id of their own.
pub fn digest_key(value: &Value) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..12])
}
