//! The event processor: reads committed inbound events in arrival order and applies the
//! domain rules to each.
//!
//! Processing an event is one store transaction that also marks the event processed, so a
//! crash at any point either leaves the event pending (it is processed again, with the same
//! result) or fully applied. A call's reply is enqueued in the same transaction that records
//! the call, which is why a call is never answered twice.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::Settings;
use crate::inbound::{CallEvent, InboundEvent};
use crate::missed_call::{self, Verdict};
use crate::outbox::Wakers;
use crate::phone::PhoneE164;
use crate::reply::{self, ReplyInput};
use crate::shutdown::Shutdown;
use crate::store::{CallRecord, NewMessage, Store, StoreError, StoredEvent};
use crate::time::now_ms;

/// Events handled per store read.
const BATCH: u32 = 256;

/// The processor's dependencies.
pub struct Processor {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    /// Notified by the ingestor after each commit.
    pub wake: Arc<Notify>,
    pub outbox: Wakers,
}

impl Processor {
    /// Runs until `shutdown`; store errors are logged and retried, never skipped.
    pub async fn run(self, mut shutdown: Shutdown) {
        loop {
            match self.work().await {
                Ok(0) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = shutdown.wait() => return,
                    }
                }
                Ok(_) => {
                    if shutdown.is_triggered() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "Event processing failed; retrying in 1 s.");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.wait() => return,
                    }
                }
            }
        }
    }

    /// Processes one batch of pending events; returns how many.
    pub async fn work(&self) -> Result<usize, StoreError> {
        let events = self.store.pending_events(BATCH).await?;
        for e in &events {
            self.handle(e).await?;
        }
        Ok(events.len())
    }

    async fn handle(&self, e: &StoredEvent) -> Result<(), StoreError> {
        match &e.event {
            InboundEvent::Message(m) => self.store.record_inbound_message(e.id, m).await,
            InboundEvent::Status(s) => self.store.record_status(e.id, s).await.map(|_| ()),
            InboundEvent::Call(c) => self.handle_call(e.id, c).await,
            InboundEvent::Other { field, .. } => {
                self.store
                    .finish_event(
                        e.id,
                        &format!("kept; Ringback does not act on '{field}' yet"),
                    )
                    .await
            }
            InboundEvent::Flagged { reason, .. } => {
                tracing::warn!(
                    event_id = e.id,
                    reason,
                    "Webhook part flagged: stored but not understood."
                );
                self.store
                    .finish_event(e.id, &format!("flagged: {reason}"))
                    .await
            }
        }
    }

    async fn handle_call(&self, event_id: i64, call: &CallEvent) -> Result<(), StoreError> {
        let source = call.source.as_str();
        if let Some(existing) = self.store.call(source, &call.provider_call_id).await? {
            if existing.decision != "pending" {
                let note = format!(
                    "call {} already decided ({}); this event changes nothing",
                    call.provider_call_id, existing.decision
                );
                crate::telemetry::call_decided(source, "duplicate", false);
                return self.store.finish_event(event_id, &note).await;
            }
        }
        let s = &self.settings;
        let sender = sender_for(s, call.to_raw.as_deref());
        let rules = missed_call::Rules {
            region: s.default_region,
            ring_timeout_seconds: s.ring_timeout_seconds,
            cooldown_ms: s.cooldown_ms,
        };
        let own: Vec<PhoneE164> = s
            .senders
            .iter()
            .flat_map(|x| std::iter::once(x.display_number.clone()).chain(x.lines.iter().cloned()))
            .collect();
        let now = now_ms();
        // The contact is read before deciding; the processor is the only writer of
        // cooldowns, so nothing can change it between this read and the write below.
        let contact = match missed_call::missed_reason(call, rules.ring_timeout_seconds)
            .ok()
            .and_then(|_| PhoneE164::from_caller_id(&call.from_raw, rules.region).ok())
        {
            Some(caller) => {
                self.store
                    .contact(&sender.phone_number_id, caller.digits())
                    .await?
            }
            None => None,
        };
        let verdict = missed_call::decide(call, &rules, &own, |_| contact.clone(), now);
        let mut record = CallRecord {
            source: source.to_string(),
            provider_call_id: call.provider_call_id.clone(),
            sender_id: Some(sender.phone_number_id.clone()),
            caller_raw: call.from_raw.clone(),
            caller_e164: None,
            callee_raw: call.to_raw.clone(),
            outcome: call.outcome.as_str().to_string(),
            ring_seconds: call.ring_seconds,
            missed: verdict.is_missed(),
            decision: verdict.decision().to_string(),
            reason: verdict.reason().to_string(),
            message_id: None,
            occurred_at: call.occurred_at,
        };
        let mut reply_message = None;
        match &verdict {
            Verdict::Reply { caller, .. } => {
                let id = new_message_id();
                let plan = reply::plan(
                    &ReplyInput {
                        message_id: &id,
                        caller,
                        caller_name: call
                            .caller_name
                            .as_deref()
                            .or(contact.as_ref().and_then(|c| c.name.as_deref())),
                        business_name: &sender.business_name,
                        last_inbound_at: contact.as_ref().and_then(|c| c.last_inbound_at),
                        call_at: call.occurred_at,
                        now,
                    },
                    &s.reply,
                    s.business_hours.as_ref(),
                    &s.timezone,
                );
                record.reason = format!("{}; {}", record.reason, plan.reason);
                record.caller_e164 = Some(caller.to_string());
                record.message_id = Some(id.clone());
                reply_message = Some(NewMessage {
                    id,
                    sender_id: sender.phone_number_id.clone(),
                    to: caller.to_string(),
                    kind: plan.kind.to_string(),
                    body: plan.body,
                    idempotency_key: Some(format!("call:{source}:{}", call.provider_call_id)),
                    reason: format!(
                        "missed call {} ({source}): {}",
                        call.provider_call_id, plan.reason
                    ),
                    created_at: now,
                });
            }
            Verdict::Collapse {
                caller, message_id, ..
            } => {
                record.caller_e164 = Some(caller.to_string());
                record.message_id = message_id.clone();
            }
            Verdict::Skip { caller, .. } => {
                record.caller_e164 = caller.as_ref().map(ToString::to_string)
            }
            Verdict::Pending { .. } | Verdict::Answered { .. } => {}
        }
        tracing::info!(source, call_id = %call.provider_call_id, decision = %record.decision, reason = %record.reason, "Call decided.");
        self.store
            .record_call(event_id, &record, reply_message.as_ref())
            .await?;
        crate::telemetry::call_decided(source, &record.decision, record.missed);
        if reply_message.is_some() {
            self.outbox.wake(&sender.phone_number_id);
        }
        Ok(())
    }
}

/// The sender whose `lines` include the called number, else the first sender.
fn sender_for<'a>(s: &'a Settings, to_raw: Option<&str>) -> &'a crate::config::Sender {
    let called = to_raw.and_then(|t| {
        PhoneE164::from_caller_id(t, s.default_region)
            .or_else(|_| PhoneE164::parse_configured(t))
            .ok()
    });
    called
        .and_then(|c| {
            s.senders
                .iter()
                .find(|x| x.display_number == c || x.lines.contains(&c))
        })
        .unwrap_or(&s.senders[0])
}

/// A new outbox message id: `msg_` and a time-ordered UUID.
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}
