//! The event catalogue: what Ringback tells other systems happened.
//!
//! Two steps, so that no event is lost and none is invented by a crash:
//! 1. a [`Fact`] is written to the journal in the same transaction as what it describes (the
//!    processed webhook, the attempt's outcome, the consent record); the functions here that
//!    turn an effect into facts are the rules every store backend calls;
//! 2. the conversation tracker ([`crate::conversation::tracker`]) reads the journal in order,
//!    places each fact in its conversation and publishes it as an [`Event`]: a row with a
//!    sequence number that the events API, the live stream and the outbound webhooks read.
//!
//! Event names and payloads are versioned by [`VERSION`]; a field is only ever added.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::inbound::{DeliveryStatus, InboundMessage, StatusUpdate};
use crate::message::MessageChange;
use crate::store::{CallRecord, ClaimedSend, Effect, NumberUpdate};
use crate::time::Millis;

/// The version of the event shapes below, sent with every event.
pub const VERSION: &str = "2026-12-01";

/// Every event type Ringback publishes.
pub const TYPES: &[&str] = &[
    "call.missed",
    "call.answered",
    "call.completed",
    "message.received",
    "message.sent",
    "message.delivered",
    "message.read",
    "message.failed",
    "conversation.started",
    "conversation.ended",
    "consent.changed",
    "call.permission_changed",
    "number.quality_changed",
    "template.status_changed",
    "number.offline",
    "number.online",
    "webhook_endpoint.disabled",
    "flow.failed",
    "link.clicked",
    "conversation.attributed",
];

/// Checks a list of event type names (a filter), naming the first unknown one.
pub fn check_types(types: &[String]) -> Result<(), String> {
    match types.iter().find(|t| !TYPES.contains(&t.as_str())) {
        None => Ok(()),
        Some(t) => Err(format!(
            "unknown event type '{t}'; the types are: {}",
            TYPES.join(", ")
        )),
    }
}

/// A published event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The sequence number: events are numbered in the order they were published, and `id`
    /// is the cursor of the events API and the stream.
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    /// When the fact happened (unix milliseconds).
    pub at: Millis,
    pub conversation_id: Option<String>,
    pub data: Value,
}

impl Event {
    /// The JSON every reader receives: API, stream and webhook body alike.
    pub fn envelope(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind,
            "version": VERSION,
            "timestamp": crate::time::display(self.at),
            "conversation_id": self.conversation_id,
            "data": self.data,
        })
    }

    /// The id a receiver uses to drop a redelivery: the same for every attempt and replay.
    pub fn webhook_id(&self) -> String {
        format!("evt_{}", self.id)
    }
}

/// A fact as the journal keeps it until the tracker publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fact {
    /// A customer's message to a business number.
    Inbound {
        sender_id: String,
        contact: String,
        name: Option<String>,
        wamid: String,
        message_type: String,
        text: String,
        reply_to: Option<String>,
        /// The id of the button or list row tapped, for a tap.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_id: Option<String>,
        at: Millis,
    },
    /// A message of ours changed state: accepted by Meta (`sent`), or a status webhook.
    Outbound {
        /// Ringback's id, when known (statuses carry it in `biz_opaque_callback_data`).
        message_id: Option<String>,
        wamid: Option<String>,
        status: String,
        error_code: Option<i64>,
        error: Option<String>,
        at: Millis,
    },
    /// A call reached a state worth telling (`call.missed`, `call.answered`, `call.completed`).
    Call {
        event: String,
        sender_id: Option<String>,
        contact: Option<String>,
        call: Value,
        at: Millis,
    },
    Consent {
        sender_id: String,
        contact: String,
        action: String,
        category: String,
        source: String,
        at: Millis,
    },
    NumberQuality {
        phone_number_id: Option<String>,
        quality_rating: Option<String>,
        event: Option<String>,
        at: Millis,
    },
    TemplateStatus {
        name: String,
        language: String,
        status: String,
        at: Millis,
    },
    /// A person closed a conversation (API or CLI); the tracker ends it in order.
    CloseRequested { conversation_id: String, at: Millis },
    /// A user's call permission changed (or a notable fact in the same state).
    CallPermission {
        sender_id: String,
        contact: String,
        from: String,
        to: String,
        source: String,
        reason: String,
        at: Millis,
    },
    /// A sending number went offline (with the reason) or came back.
    SenderStatus {
        phone_number_id: String,
        online: bool,
        reason: Option<String>,
        at: Millis,
    },
    /// A flow's run failed: a step's retries are spent and it has no `on_error`.
    FlowFailed {
        flow: String,
        run_id: String,
        step: String,
        error: String,
        contact: Option<String>,
        at: Millis,
    },
    /// An assistant extracted the declared variables of a conversation that ended (or could
    /// not): `conversation.ended` is published with them, its payload held until now.
    Evaluated {
        conversation_id: String,
        payload: serde_json::Value,
        variables: serde_json::Value,
        error: Option<String>,
        at: Millis,
    },
    /// Someone followed a tracked click-to-chat link (`/l/{code}`); who is not known yet.
    LinkClicked {
        code: String,
        source: String,
        sender_id: String,
        clicks: i64,
        at: Millis,
    },
    /// A customer's message carried a click-to-chat link's reference: their conversation came
    /// from that link.
    Attributed {
        sender_id: String,
        contact: String,
        code: String,
        source: String,
        wamid: String,
        at: Millis,
    },
    /// A webhook endpoint failed for too long and was disabled.
    EndpointDisabled {
        endpoint_id: String,
        url: String,
        reason: String,
        at: Millis,
    },
}

impl Fact {
    /// The journal's `kind` column: for people reading the table.
    pub fn kind(&self) -> &'static str {
        match self {
            Fact::Inbound { .. } => "inbound",
            Fact::Outbound { .. } => "outbound",
            Fact::Call { .. } => "call",
            Fact::Consent { .. } => "consent",
            Fact::NumberQuality { .. } => "number_quality",
            Fact::TemplateStatus { .. } => "template_status",
            Fact::CloseRequested { .. } => "close_requested",
            Fact::EndpointDisabled { .. } => "endpoint_disabled",
            Fact::FlowFailed { .. } => "flow_failed",
            Fact::Evaluated { .. } => "evaluated",
            Fact::SenderStatus { .. } => "sender_status",
            Fact::CallPermission { .. } => "call_permission",
            Fact::LinkClicked { .. } => "link_clicked",
            Fact::Attributed { .. } => "attributed",
        }
    }

    pub fn at(&self) -> Millis {
        match self {
            Fact::Inbound { at, .. }
            | Fact::Outbound { at, .. }
            | Fact::Call { at, .. }
            | Fact::Consent { at, .. }
            | Fact::NumberQuality { at, .. }
            | Fact::TemplateStatus { at, .. }
            | Fact::CloseRequested { at, .. }
            | Fact::EndpointDisabled { at, .. }
            | Fact::FlowFailed { at, .. }
            | Fact::Evaluated { at, .. }
            | Fact::SenderStatus { at, .. }
            | Fact::CallPermission { at, .. }
            | Fact::LinkClicked { at, .. }
            | Fact::Attributed { at, .. } => *at,
        }
    }

    pub fn to_json(&self) -> String {
        // A Fact holds strings, numbers and JSON values only: it always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A fact read back from the journal.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub id: i64,
    /// `None` when the row cannot be read (written by a newer version, or damaged): the
    /// tracker skips it with a warning rather than stopping every event behind it.
    pub fact: Option<Fact>,
}

/// The facts a processed batch of inbound events records, in order. A consent change a
/// message caused (STOP) comes after that message, so the message is still part of the
/// conversation the opt-out ends.
pub fn facts(effects: &[Effect]) -> Vec<Fact> {
    let mut out = Vec::new();
    let caused_by_message = |event: i64| {
        effects
            .iter()
            .any(|e| matches!(e, Effect::InboundMessage { event_id, .. } if *event_id == event))
    };
    for e in effects {
        match e {
            Effect::InboundMessage {
                event_id, message, ..
            } => {
                out.extend(inbound(message));
                out.extend(effects.iter().filter_map(|c| match c {
                    Effect::Consent {
                        event_id: id,
                        record,
                    } if id == event_id => Some(consent(record)),
                    _ => None,
                }));
                out.extend(effects.iter().filter_map(|c| match c {
                    Effect::LinkAttributed {
                        event_id: id,
                        link,
                        contact,
                        ..
                    } if id == event_id => Some(Fact::Attributed {
                        sender_id: message.phone_number_id.clone(),
                        contact: contact.clone(),
                        code: link.code.clone(),
                        source: link.source.clone(),
                        wamid: message.wamid.clone(),
                        at: message.timestamp,
                    }),
                    _ => None,
                }));
            }
            Effect::Consent { event_id, record } if !caused_by_message(*event_id) => {
                out.push(consent(record))
            }
            Effect::Status { status, .. } => out.push(status_fact(status)),
            Effect::Call {
                call, talk_seconds, ..
            } => out.extend(call_facts(call, *talk_seconds)),
            Effect::Consent { .. } => {}
            Effect::TemplateStatus {
                name,
                language,
                status,
                ..
            } => out.push(Fact::TemplateStatus {
                name: name.clone(),
                language: language.clone(),
                status: status.clone(),
                at: crate::time::now_ms(),
            }),
            Effect::NumberUpdate { update, .. } => out.extend(number_quality(update)),
            // Always caused by a message: journaled right after it, above.
            Effect::LinkAttributed { .. } => {}
            Effect::Enqueue { .. } | Effect::Finish { .. } => {}
        }
    }
    out
}

fn inbound(m: &InboundMessage) -> Option<Fact> {
    let contact = crate::consent::subject(m.from_wa_id.as_deref(), m.from_user_id.as_deref())?;
    Some(Fact::Inbound {
        sender_id: m.phone_number_id.clone(),
        contact,
        name: m.profile_name.clone(),
        wamid: m.wamid.clone(),
        message_type: m.message_type.clone(),
        text: crate::conversation::summary::inbound(m),
        reply_to: m.context_id.clone(),
        reply_id: m.reply.as_ref().map(|r| r.id.clone()),
        at: m.timestamp,
    })
}

fn status_fact(s: &StatusUpdate) -> Fact {
    Fact::Outbound {
        message_id: s.biz_opaque_callback_data.clone(),
        wamid: Some(s.wamid.clone()),
        status: s.status.as_str().to_string(),
        error_code: s.errors.first().map(|e| e.code),
        error: s.error_detail(),
        at: s.timestamp,
    }
}

/// `call.missed` for a missed call, `call.answered` for an answered one, then
/// `call.completed` for any call that is over; nothing while it still rings.
fn call_facts(call: &CallRecord, talk_seconds: Option<u32>) -> Vec<Fact> {
    if call.outcome == "ringing" {
        return Vec::new();
    }
    let contact = call
        .caller_e164
        .as_deref()
        .map(|e| e.trim_start_matches('+').to_string());
    let body = json!({
        "source": call.source,
        "call_id": call.provider_call_id,
        "caller": call.caller_e164.as_deref().unwrap_or(&call.caller_raw),
        "called": call.callee_raw,
        "outcome": call.outcome,
        "ring_seconds": call.ring_seconds,
        "talk_seconds": talk_seconds,
        "missed": call.missed,
        "decision": call.decision,
        "reason": call.reason,
        "reply_message_id": call.message_id,
    });
    let first = if call.missed {
        "call.missed"
    } else if call.outcome == "answered" {
        "call.answered"
    } else {
        ""
    };
    [first, "call.completed"]
        .into_iter()
        .filter(|e| !e.is_empty())
        .map(|event| Fact::Call {
            event: event.to_string(),
            sender_id: call.sender_id.clone(),
            contact: contact.clone(),
            call: body.clone(),
            at: call.occurred_at,
        })
        .collect()
}

/// The fact of a consent record, from a keyword, a preference webhook or the API.
pub fn consent(r: &crate::consent::Record) -> Fact {
    Fact::Consent {
        sender_id: r.sender_id.clone(),
        contact: r.subject.clone(),
        action: r.action.as_str().to_string(),
        category: r.category.as_str().to_string(),
        source: r.source.clone(),
        at: r.at,
    }
}

fn number_quality(u: &NumberUpdate) -> Option<Fact> {
    let quality = u.quality_rating.is_some() || u.field == "phone_number_quality_update";
    quality.then(|| Fact::NumberQuality {
        phone_number_id: u.phone_number_id.clone(),
        quality_rating: u.quality_rating.clone(),
        event: u.event.clone(),
        at: crate::time::now_ms(),
    })
}

/// The fact an attempt's outcome records: `sent` when Meta accepted the message, `failed`
/// when it will not be tried again; nothing for a retry, a deferral or an unknown outcome.
pub fn attempt_fact(s: &ClaimedSend, change: &MessageChange, now: Millis) -> Option<Fact> {
    let (status, wamid, code, detail) = match change {
        MessageChange::Accepted { wamid, .. } => ("sent", Some(wamid.clone()), None, None),
        MessageChange::Failed { code, detail } => ("failed", None, *code, Some(detail.clone())),
        _ => return None,
    };
    Some(Fact::Outbound {
        message_id: Some(s.message_id.clone()),
        wamid,
        status: status.into(),
        error_code: code,
        error: detail,
        at: now,
    })
}

/// The fact of a change of a user's call permission.
pub fn permission_change(
    sender_id: &str,
    user_id: &str,
    c: &crate::store::Change,
    at: Millis,
) -> Fact {
    Fact::CallPermission {
        sender_id: sender_id.to_string(),
        contact: user_id.trim_start_matches('+').to_string(),
        from: c.from.as_str().to_string(),
        to: c.to.as_str().to_string(),
        source: c.source.clone(),
        reason: c.reason.clone(),
        at,
    }
}

/// The fact of an unanswered send given up after its last attempt.
pub fn given_up(message_id: &str, now: Millis) -> Fact {
    Fact::Outbound {
        message_id: Some(message_id.to_string()),
        wamid: None,
        status: DeliveryStatus::Failed.as_str().to_string(),
        error_code: None,
        error: Some(crate::store::UNCERTAIN_GIVE_UP.to_string()),
        at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{Action, Category, Record};

    fn message(wamid: &str) -> InboundMessage {
        InboundMessage {
            phone_number_id: "pn".into(),
            wamid: wamid.into(),
            from_wa_id: Some("4915".into()),
            from_user_id: None,
            profile_name: None,
            timestamp: 1,
            message_type: "text".into(),
            text: Some("STOP".into()),
            context_id: None,
            unknown_type: false,
            payload: serde_json::json!({}),
            reply: None,
        }
    }

    fn opt_out(event_id: i64) -> Effect {
        Effect::Consent {
            event_id,
            record: Record {
                sender_id: "pn".into(),
                subject: "4915".into(),
                wa_id: Some("4915".into()),
                user_id: None,
                category: Category::All,
                action: Action::OptOut,
                source: "whatsapp_message".into(),
                evidence: "STOP".into(),
                at: 1,
            },
        }
    }

    #[test]
    fn an_opt_out_comes_after_the_message_that_caused_it() {
        // The processor records the consent change before the message it came from.
        let effects = [
            opt_out(7),
            Effect::InboundMessage {
                event_id: 7,
                message: message("w7"),
                note: None,
            },
            opt_out(8),
        ];
        let kinds: Vec<&str> = facts(&effects).iter().map(Fact::kind).collect();
        assert_eq!(kinds, ["inbound", "consent", "consent"]);
    }

    #[test]
    fn a_ringing_call_tells_nothing_and_a_missed_one_tells_missed_then_completed() {
        let mut call = CallRecord {
            source: "generic".into(),
            provider_call_id: "c1".into(),
            sender_id: Some("pn".into()),
            caller_raw: "+4915".into(),
            caller_e164: Some("+4915".into()),
            callee_raw: None,
            outcome: "ringing".into(),
            ring_seconds: None,
            missed: false,
            decision: "pending".into(),
            reason: String::new(),
            message_id: None,
            occurred_at: 1,
        };
        assert!(call_facts(&call, None).is_empty());
        call.outcome = "no-answer".into();
        call.missed = true;
        let events: Vec<String> = call_facts(&call, None)
            .into_iter()
            .map(|f| match f {
                Fact::Call { event, .. } => event,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(events, ["call.missed", "call.completed"]);
    }

    #[test]
    fn unknown_event_types_are_named() {
        assert!(check_types(&["call.missed".into()]).is_ok());
        let e = check_types(&["call.mised".into()]).unwrap_err();
        assert!(
            e.contains("'call.mised'") && e.contains("call.missed"),
            "{e}"
        );
    }
}
