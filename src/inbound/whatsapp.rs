//! Meta's WhatsApp webhooks: the `hub.challenge` handshake, `X-Hub-Signature-256`, and the
//! `whatsapp_business_account` envelope turned into events.
//!
//! Dedup keys follow the reference: inbound messages by wamid, statuses by (wamid, status),
//! anything else by a digest of its JSON.

use std::collections::HashSet;

use serde_json::Value;

use super::{
    DeliveryStatus, InboundEvent, InboundMessage, KeyedEvent, Rejected, StatusUpdate, WebhookError,
    digest_key,
};
use crate::signature::{self, Algorithm};

pub mod wire;

/// Message types documented in the Cloud API reference (§2.5).
const KNOWN_TYPES: &[&str] = &[
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "reaction",
    "interactive",
    "button",
    "order",
    "system",
    "unsupported",
    "request_welcome",
    "edit",
    "revoke",
];

/// The WhatsApp webhook source: the app secret and the numbers we own.
#[derive(Clone)]
pub struct WhatsAppSource {
    app_secret: secrecy::SecretString,
    verify_token: secrecy::SecretString,
    phone_number_ids: HashSet<String>,
}

impl WhatsAppSource {
    pub fn new(
        app_secret: secrecy::SecretString,
        verify_token: secrecy::SecretString,
        phone_number_ids: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            app_secret,
            verify_token,
            phone_number_ids: phone_number_ids.into_iter().collect(),
        }
    }

    /// The GET handshake: `Some(challenge)` to echo back, or `None` (403).
    pub fn handshake(
        &self,
        mode: Option<&str>,
        token: Option<&str>,
        challenge: Option<&str>,
    ) -> Option<String> {
        use secrecy::ExposeSecret;
        let ok = mode == Some("subscribe")
            && token.is_some_and(|t| signature::tokens_equal(t, self.verify_token.expose_secret()));
        ok.then(|| challenge.unwrap_or_default().to_string())
    }

    /// `X-Hub-Signature-256` over the raw bytes with the app secret.
    pub fn verify(&self, header: Option<&str>, body: &[u8]) -> Result<(), Rejected> {
        use secrecy::ExposeSecret;
        signature::verify(
            Algorithm::HmacSha256Hex,
            "X-Hub-Signature-256",
            header,
            self.app_secret.expose_secret().as_bytes(),
            &[body],
        )?;
        Ok(())
    }

    /// The envelope must be JSON from `whatsapp_business_account`; every part inside it
    /// becomes an event, flagged if it cannot be understood.
    pub fn parse(&self, body: &[u8]) -> Result<Vec<KeyedEvent>, Rejected> {
        let envelope: wire::Envelope = serde_json::from_slice(body).map_err(|e| {
            Rejected::Malformed(format!("the body is not a WhatsApp webhook envelope: {e}"))
        })?;
        if envelope.object != "whatsapp_business_account" {
            return Err(Rejected::Malformed(format!(
                "object is '{}', expected 'whatsapp_business_account'",
                envelope.object
            )));
        }
        let mut out = Vec::new();
        for entry in envelope.entry {
            match serde_json::from_value::<wire::Entry>(entry.clone()) {
                Ok(e) => e
                    .changes
                    .into_iter()
                    .for_each(|c| self.parse_change(c, &mut out)),
                Err(err) => out.push(flag(format!("entry is not understood: {err}"), entry)),
            }
        }
        Ok(out)
    }

    fn parse_change(&self, change: Value, out: &mut Vec<KeyedEvent>) {
        let parsed = match serde_json::from_value::<wire::Change>(change.clone()) {
            Ok(c) => c,
            Err(err) => return out.push(flag(format!("change is not understood: {err}"), change)),
        };
        if parsed.field == "calls" {
            return self.parse_calls(parsed.value, out);
        }
        if parsed.field != "messages" {
            let key = format!("wa:{}:{}", parsed.field, digest_key(&parsed.value));
            let event = InboundEvent::Other {
                field: parsed.field,
                value: parsed.value,
            };
            return out.push(KeyedEvent {
                dedup_key: key,
                event,
            });
        }
        let value = parsed.value;
        let pnid = match value
            .get("metadata")
            .cloned()
            .map(serde_json::from_value::<wire::Metadata>)
        {
            Some(Ok(m)) => m.phone_number_id,
            _ => {
                return out.push(flag(
                    "messages change without metadata.phone_number_id".into(),
                    value,
                ));
            }
        };
        if !self.phone_number_ids.contains(&pnid) {
            return out.push(flag(
                format!("phone_number_id {pnid} is not one of this server's [[senders]]"),
                value,
            ));
        }
        let contacts: Vec<wire::Contact> = value
            .get("contacts")
            .cloned()
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or_default();
        for m in array(&value, "messages") {
            out.push(parse_message(&pnid, &contacts, m));
        }
        for s in array(&value, "statuses") {
            out.push(parse_status(&pnid, s));
        }
        if let Some(errors) = value.get("errors").filter(|e| !e.is_null()) {
            let key = format!("wa:errors:{}", digest_key(errors));
            let event = InboundEvent::Other {
                field: "messages.errors".into(),
                value: errors.clone(),
            };
            out.push(KeyedEvent {
                dedup_key: key,
                event,
            });
        }
        if value.get("messages").is_none()
            && value.get("statuses").is_none()
            && value.get("errors").is_none()
        {
            out.push(flag(
                "messages change with no messages, statuses or errors".into(),
                value,
            ));
        }
    }
}

impl WhatsAppSource {
    /// The `calls` field (WhatsApp Business Calling): a user-initiated `connect` is a call
    /// ringing at the business; its `terminate` without a duration was never answered — a
    /// missed call, answered on WhatsApp by the same rules as any other source. Business-
    /// initiated calls are kept but not treated as missed calls.
    fn parse_calls(&self, value: Value, out: &mut Vec<KeyedEvent>) {
        let pnid = value
            .pointer("/metadata/phone_number_id")
            .and_then(Value::as_str);
        if !pnid.is_some_and(|p| self.phone_number_ids.contains(p)) {
            return out.push(flag(
                "calls change for a phone_number_id that is not one of this server's [[senders]]"
                    .into(),
                value,
            ));
        }
        let display = value
            .pointer("/metadata/display_phone_number")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = value
            .pointer("/contacts/0/profile/name")
            .and_then(Value::as_str)
            .map(str::to_string);
        // Progress of business-initiated calls (RINGING, ACCEPTED, REJECTED).
        for status in array(&value, "statuses") {
            let text = |k: &str| status.get(k).and_then(Value::as_str);
            match (text("id"), text("status")) {
                (Some(id), Some(st)) => out.push(KeyedEvent {
                    dedup_key: format!("wa:callstatus:{id}:{st}"),
                    event: InboundEvent::Other {
                        field: "calls".into(),
                        value: status.clone(),
                    },
                }),
                _ => out.push(flag(
                    "call status without id or status".into(),
                    status.clone(),
                )),
            }
        }
        for call in array(&value, "calls") {
            let text = |k: &str| call.get(k).and_then(Value::as_str);
            let (Some(id), Some(event), Some(from)) = (text("id"), text("event"), text("from"))
            else {
                out.push(flag("call without id, event or from".into(), call.clone()));
                continue;
            };
            if text("direction") == Some("BUSINESS_INITIATED") {
                let key = format!("wa:bizcall:{id}:{event}");
                out.push(KeyedEvent {
                    dedup_key: key,
                    event: InboundEvent::Other {
                        field: "calls".into(),
                        value: call.clone(),
                    },
                });
                continue;
            }
            let answered = call
                .get("duration")
                .and_then(Value::as_u64)
                .is_some_and(|d| d > 0)
                && text("status") == Some("COMPLETED");
            let outcome = match event {
                "connect" => super::CallOutcome::Ringing,
                "terminate" if answered => super::CallOutcome::Answered,
                "terminate" => super::CallOutcome::NoAnswer,
                other => {
                    out.push(flag(
                        format!("call event '{other}' is not connect or terminate"),
                        call.clone(),
                    ));
                    continue;
                }
            };
            let occurred_at = call
                .get("timestamp")
                .and_then(|t| {
                    t.as_str()
                        .and_then(|s| s.parse::<i64>().ok())
                        .or(t.as_i64())
                })
                .and_then(|s| s.checked_mul(1000))
                .unwrap_or(0);
            let event_value = super::CallEvent {
                source: super::CallSource::Whatsapp,
                provider_call_id: id.to_string(),
                from_raw: format!("+{}", from.trim_start_matches('+')),
                to_raw: Some(format!("+{}", display.trim_start_matches('+')))
                    .filter(|d| d.len() > 1),
                outcome,
                ring_seconds: None,
                talk_seconds: call
                    .get("duration")
                    .and_then(Value::as_u64)
                    .map(|d| d as u32),
                caller_name: name.clone(),
                occurred_at,
            };
            out.push(KeyedEvent {
                dedup_key: format!("wa:call:{id}:{event}"),
                event: InboundEvent::Call(event_value),
            });
        }
    }
}

fn array<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn flag(reason: String, fragment: Value) -> KeyedEvent {
    let dedup_key = format!("wa:flagged:{}", digest_key(&fragment));
    KeyedEvent {
        dedup_key,
        event: InboundEvent::Flagged { reason, fragment },
    }
}

fn parse_message(pnid: &str, contacts: &[wire::Contact], raw: &Value) -> KeyedEvent {
    let m: wire::Message = match serde_json::from_value(raw.clone()) {
        Ok(m) => m,
        Err(e) => return flag(format!("message is not understood: {e}"), raw.clone()),
    };
    let Some(timestamp) = m.timestamp.millis() else {
        return flag("message timestamp is not unix seconds".into(), raw.clone());
    };
    let contact = contacts
        .iter()
        .find(|c| c.wa_id.is_some() && c.wa_id == m.from)
        .or_else(|| contacts.first());
    let message = InboundMessage {
        phone_number_id: pnid.to_string(),
        wamid: m.id.clone(),
        from_wa_id: m.from.clone(),
        from_user_id: m
            .from_user_id
            .clone()
            .or_else(|| contact.and_then(|c| c.user_id.clone())),
        profile_name: contact
            .and_then(|c| c.profile.as_ref())
            .and_then(|p| p.name.clone()),
        timestamp,
        text: summary(&m.kind, raw),
        unknown_type: !KNOWN_TYPES.contains(&m.kind.as_str()),
        reply: reply_tap(&m.kind, raw),
        message_type: m.kind,
        context_id: m.context.and_then(|c| c.id),
        payload: raw.clone(),
    };
    KeyedEvent {
        dedup_key: format!("wa:msg:{}", m.id),
        event: InboundEvent::Message(message),
    }
}

/// The human-readable part of a message, by type.
fn summary(kind: &str, raw: &Value) -> Option<String> {
    let at = |path: &[&str]| -> Option<String> {
        let mut v = raw;
        for p in path {
            v = v.get(p)?;
        }
        v.as_str().map(str::to_string)
    };
    match kind {
        "text" => at(&["text", "body"]),
        "image" | "video" | "document" => {
            at(&[kind, "caption"]).or_else(|| Some(format!("[{kind}]")))
        }
        "audio" | "sticker" => Some(format!("[{kind}]")),
        "button" => at(&["button", "text"]),
        "reaction" => at(&["reaction", "emoji"]),
        "location" => at(&["location", "name"]).or_else(|| Some("[location]".into())),
        "interactive" => at(&["interactive", "button_reply", "title"])
            .or_else(|| at(&["interactive", "list_reply", "title"]))
            .or_else(|| at(&["interactive", "type"]).map(|t| format!("[{t}]"))),
        "system" => at(&["system", "body"]),
        _ => None,
    }
}

/// The button or row a user tapped, from Meta's shapes: `interactive` with
/// `interactive.type` = `button_reply` / `list_reply` and the object of that name, or a
/// template quick reply, `button {payload, text}`. Anything else (or a tap missing its id) is
/// no tap.
fn reply_tap(kind: &str, raw: &Value) -> Option<super::ReplyTap> {
    let (tap_kind, tap) = match kind {
        "interactive" => {
            let t = raw.pointer("/interactive/type").and_then(Value::as_str)?;
            if t != "button_reply" && t != "list_reply" {
                return None;
            }
            let w: wire::InteractiveReply =
                serde_json::from_value(raw.get("interactive")?.get(t)?.clone()).ok()?;
            (t, w)
        }
        "button" => {
            let b: wire::QuickReply = serde_json::from_value(raw.get("button")?.clone()).ok()?;
            let title = b.text.unwrap_or_else(|| b.payload.clone());
            let tap = wire::InteractiveReply {
                id: b.payload,
                title,
                description: None,
            };
            ("button", tap)
        }
        _ => return None,
    };
    Some(super::ReplyTap {
        kind: tap_kind.to_string(),
        id: tap.id,
        title: tap.title,
        description: tap.description,
    })
}

fn parse_status(pnid: &str, raw: &Value) -> KeyedEvent {
    if raw.get("type").and_then(Value::as_str) == Some("call") {
        let key = format!("wa:callstatus:{}", digest_key(raw));
        return KeyedEvent {
            dedup_key: key,
            event: InboundEvent::Other {
                field: "calls.statuses".into(),
                value: raw.clone(),
            },
        };
    }
    let s: wire::Status = match serde_json::from_value(raw.clone()) {
        Ok(s) => s,
        Err(e) => return flag(format!("status is not understood: {e}"), raw.clone()),
    };
    let Some(timestamp) = s.timestamp.millis() else {
        return flag("status timestamp is not unix seconds".into(), raw.clone());
    };
    let status = match s.status {
        wire::StatusValue::Sent => DeliveryStatus::Sent,
        wire::StatusValue::Delivered => DeliveryStatus::Delivered,
        wire::StatusValue::Read => DeliveryStatus::Read,
        wire::StatusValue::Played => DeliveryStatus::Played,
        wire::StatusValue::Failed => DeliveryStatus::Failed,
        wire::StatusValue::Deleted => {
            let key = format!("wa:status:{}:deleted", s.id);
            return KeyedEvent {
                dedup_key: key,
                event: InboundEvent::Other {
                    field: "messages.statuses".into(),
                    value: raw.clone(),
                },
            };
        }
    };
    let errors = s
        .errors
        .into_iter()
        .map(|e| WebhookError {
            code: e.code,
            title: e.title.or(e.message),
            details: e.error_data.and_then(|d| d.details),
        })
        .collect();
    let dedup_key = format!("wa:status:{}:{}", s.id, status.as_str());
    let update = StatusUpdate {
        phone_number_id: pnid.to_string(),
        wamid: s.id,
        status,
        timestamp,
        recipient_id: s.recipient_id,
        biz_opaque_callback_data: s.biz_opaque_callback_data,
        errors,
    };
    KeyedEvent {
        dedup_key,
        event: InboundEvent::Status(update),
    }
}

#[cfg(test)]
mod tests;
