//! The event processor: reads committed inbound events in arrival order and applies the
//! domain rules to each.
//!
//! Processing an event is one store transaction that also marks the event processed, so a
//! crash at any point either leaves the event pending (it is processed again, with the same
//! result) or fully applied. A call's reply is enqueued in the same transaction that records
//! the call, which is why a call is never answered twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::Settings;
use crate::inbound::{CallEvent, InboundEvent};
use crate::missed_call::{self, Verdict};
use crate::outbox::handoff::Handoff;
use crate::outbox::{Wakers, new_message_id};
use crate::phone::PhoneE164;
use crate::reply::{self, ReplyInput};
use crate::shutdown::Shutdown;
use crate::store::{CallRecord, Contact, Effect, NewMessage, Store, StoreError, StoredEvent};
use crate::time::now_ms;

mod calling;
mod dead_letter;

/// Events handled per store read.
const BATCH: u32 = 256;

/// The processor's dependencies.
#[derive(Clone)]
pub struct Processor {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    /// Notified by the ingestor after each commit.
    pub wake: Arc<Notify>,
    pub outbox: Wakers,
    /// Re-paced when Meta changes a number's throughput.
    pub pacer: crate::outbox::Pacer,
    /// Updated when Meta changes a template's status.
    pub templates: crate::template_registry::Registry,
    /// Updated when Meta flags, restricts or re-tiers a number.
    pub holds: crate::outbox::Holds,
    /// Updated when Meta disconnects or reconnects a number.
    pub sender_status: crate::sender_status::SenderStatus,
    /// Call permissions (WhatsApp Business Calling).
    pub book: crate::calling::PermissionBook,
    /// Rejects ringing WhatsApp calls after `calling.reject_after_seconds`, if set.
    pub rejecter: Option<crate::calling::rejecter::Rejecter>,
    /// The leader lease this processor runs under: a batch commits only while it holds.
    pub fence: Option<crate::store::Fence>,
    /// The longest idle wait: events committed by another node wake nothing here.
    pub poll: Duration,
}

impl Processor {
    /// Runs until `shutdown`; store errors are logged and retried, never skipped.
    pub async fn run(self, mut shutdown: Shutdown) {
        loop {
            match self.work().await {
                Ok(0) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.poll) => {}
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

    /// Processes one batch of pending events in one transaction; returns how many (an event
    /// set aside as unreadable counts as one).
    pub async fn work(&self) -> Result<usize, StoreError> {
        let events = match self.store.pending_events(BATCH).await {
            Err(StoreError::CorruptEvent { id, reason }) => {
                return self.dead_letter(id, &reason).await;
            }
            r => r?,
        };
        if events.is_empty() {
            return Ok(0);
        }
        let mut batch = Batch::default();
        self.prefetch(&events, &mut batch).await?;
        for e in &events {
            match self.handle(e, &mut batch).await {
                // Retrying cannot make stored data readable: set the event aside, and process
                // the batch again without it (nothing of it was applied).
                Err(StoreError::Corrupt(why)) => return self.dead_letter(e.id, &why).await,
                r => r?,
            }
        }
        // Room in the running lanes' queues for this batch's replies: they are claimed in the
        // same transaction and handed over after it (see `outbox::handoff`).
        let mut handoffs: Vec<Handoff> = batch
            .queued
            .iter()
            .filter_map(|(sender, n)| self.outbox.door(sender).reserve(sender, *n))
            .collect();
        let requests: Vec<_> = handoffs.iter().map(|h| h.request.clone()).collect();
        let mut claimed = self
            .store
            .apply_and_claim(
                std::mem::take(&mut batch.effects),
                self.fence.as_ref(),
                &requests,
            )
            .await?;
        // Only after the commit: the replies exist, so the lanes can send them.
        for (source, decision, missed) in &batch.decided {
            crate::telemetry::call_decided(source, decision, *missed);
        }
        for (sender, queued) in &batch.queued {
            let mine: Vec<_> = claimed
                .extract_if(.., |(c, _)| &c.sender_id == sender)
                .collect();
            // Replies that found no room (or no running lane) wait for the lane's own claim.
            if mine.len() < *queued {
                self.outbox.wake(sender);
            }
            if let Some(i) = handoffs.iter().position(|h| &h.request.sender_id == sender) {
                handoffs.swap_remove(i).deliver(mine);
            }
        }
        for (name, language, status) in &batch.templates {
            tracing::info!(name, language, status, "Template status changed.");
            self.templates.set_status(name, language, status);
        }
        for u in &batch.numbers {
            if crate::numbers::is_alert(u) {
                tracing::warn!(phone_number_id = ?u.phone_number_id, field = %u.field, event = ?u.event, status = ?u.status, "Meta flagged or restricted a sending number.");
                metrics::counter!("ringback_number_alerts_total").increment(1);
            }
            if let (Some(id), Some(rate)) = (&u.phone_number_id, u.throughput) {
                self.pacer.set_rate(id, rate);
            }
            if let (Some(id), Some(status)) = (&u.phone_number_id, &u.status)
                && let Some(fact) = self.sender_status.after_meta_status(id, status)
            {
                crate::sender_status::announce(&self.store, &fact).await;
            }
            if let Some(id) = &u.phone_number_id {
                self.holds.update(id, |r| {
                    if u.status.is_some() {
                        r.status = u.status.clone();
                    }
                    if u.quality_rating.is_some() {
                        r.quality_rating = u.quality_rating.clone();
                    }
                    if let Some(tier) = &u.messaging_tier {
                        r.limit = crate::outbox::holds::tier_limit(tier);
                    }
                });
            }
        }
        Ok(events.len())
    }

    async fn handle(&self, e: &StoredEvent, batch: &mut Batch) -> Result<(), StoreError> {
        let effect = match &e.event {
            InboundEvent::Message(m) => {
                if let Some(wa_id) =
                    &crate::consent::subject(m.from_wa_id.as_deref(), m.from_user_id.as_deref())
                {
                    let c = self.contact(batch, &m.phone_number_id, wa_id).await?;
                    c.last_inbound_at = Some(c.last_inbound_at.unwrap_or(0).max(m.timestamp));
                    if m.profile_name.is_some() {
                        c.name = m.profile_name.clone();
                    }
                }
                self.consent_keyword(e.id, m, batch);
                self.link_reference(e.id, m, batch).await?;
                if let Some(tap) = &m.reply {
                    // Kept with the message (type, title, context); no automatic action yet.
                    tracing::info!(event_id = e.id, phone_number_id = %m.phone_number_id, kind = %tap.kind, id = %tap.id, context = ?m.context_id, "A user tapped a reply the business offered.");
                }
                let note = self.call_permission_reply(m).await?;
                if let Some(note) = &note {
                    tracing::info!(event_id = e.id, note, "Call permission reply processed.");
                }
                Effect::InboundMessage {
                    event_id: e.id,
                    message: m.clone(),
                    // The README promises a reply to no request "is kept with a note": the
                    // note goes on the stored event, not only in the log.
                    note,
                }
            }
            InboundEvent::Other { field, value } if field == "user_preferences" => {
                self.marketing_preferences(e.id, value, batch);
                Effect::Finish {
                    event_id: e.id,
                    note: "marketing preferences recorded".into(),
                }
            }
            InboundEvent::Status(s) => Effect::Status {
                event_id: e.id,
                status: s.clone(),
            },
            InboundEvent::Call(c) => self.handle_call(e.id, c, batch).await?,
            InboundEvent::Other { field, value } if field == "calls" => Effect::Finish {
                event_id: e.id,
                note: self.business_call_update(value).await?,
            },
            InboundEvent::Other { field, value } if field == "message_template_status_update" => {
                let text = |k: &str| {
                    value
                        .get(k)
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let (name, language, status) = (
                    text("message_template_name"),
                    text("message_template_language"),
                    text("event"),
                );
                batch
                    .templates
                    .push((name.clone(), language.clone(), status.clone()));
                Effect::TemplateStatus {
                    event_id: e.id,
                    name,
                    language,
                    status,
                }
            }
            InboundEvent::Other { field, value } => {
                let mut updates = crate::numbers::updates(field, value, &self.settings.senders);
                match updates.pop() {
                    None => Effect::Finish {
                        event_id: e.id,
                        note: format!("kept; Ringback does not act on '{field}' yet"),
                    },
                    Some(last) => {
                        for u in updates {
                            batch.numbers.push(u.clone());
                            batch.effects.push(Effect::NumberUpdate {
                                event_id: e.id,
                                update: u,
                            });
                        }
                        batch.numbers.push(last.clone());
                        Effect::NumberUpdate {
                            event_id: e.id,
                            update: last,
                        }
                    }
                }
            }
            InboundEvent::Flagged { reason, .. } => {
                tracing::warn!(
                    event_id = e.id,
                    reason,
                    "Webhook part flagged: stored but not understood."
                );
                Effect::Finish {
                    event_id: e.id,
                    note: format!("flagged: {reason}"),
                }
            }
        };
        batch.effects.push(effect);
        Ok(())
    }

    /// Reads what the batch's events will look up — their calls' earlier decisions and their
    /// contacts — in two queries, and reads each caller id once. With a query per event, the
    /// processor waited behind every webhook connection's task at each lookup: under a burst
    /// it took 55-150 ms to decide 256 calls, and replies waited for the burst to end.
    async fn prefetch(&self, events: &[StoredEvent], batch: &mut Batch) -> Result<(), StoreError> {
        let s = &self.settings;
        let (mut calls, mut contacts) = (Vec::new(), Vec::new());
        for e in events {
            match &e.event {
                InboundEvent::Message(m) => {
                    let subject =
                        crate::consent::subject(m.from_wa_id.as_deref(), m.from_user_id.as_deref());
                    if let Some(subject) = subject {
                        contacts.push((m.phone_number_id.clone(), subject));
                    }
                }
                InboundEvent::Call(c) => {
                    calls.push((c.source.as_str().to_string(), c.provider_call_id.clone()));
                    let sender = &sender_for(s, c.to_raw.as_deref()).phone_number_id;
                    if c.source == crate::inbound::CallSource::Whatsapp
                        && let Some(caller) = PhoneE164::from_wa_id(&c.from_raw)
                    {
                        contacts.push((sender.clone(), caller.digits().to_string()));
                    }
                    if missed_call::missed_reason(c, s.ring_timeout_seconds).is_ok()
                        && !batch.callers.contains_key(&c.from_raw)
                    {
                        let caller = PhoneE164::from_caller_id(&c.from_raw, s.default_region);
                        if let Ok(caller) = &caller {
                            contacts.push((sender.clone(), caller.digits().to_string()));
                        }
                        batch.callers.insert(c.from_raw.clone(), caller);
                    }
                }
                _ => {}
            }
        }
        if !calls.is_empty() {
            for (source, id, decision) in self.store.call_decisions(&calls).await? {
                batch.calls.insert((source, id), decision);
            }
            batch.calls_read.extend(calls);
        }
        if !contacts.is_empty() {
            for c in self.store.contacts(&contacts).await? {
                batch
                    .contacts
                    .insert((c.sender_id.clone(), c.wa_id.clone()), c);
            }
            for (sender_id, wa_id) in contacts {
                batch
                    .contacts
                    .entry((sender_id.clone(), wa_id.clone()))
                    .or_insert_with(|| Contact {
                        sender_id,
                        wa_id,
                        ..Default::default()
                    });
            }
        }
        Ok(())
    }

    /// The contact as this batch has changed it so far (read from the store on first use), so
    /// an earlier event in the same batch (a message, a reply) is seen by a later call.
    async fn contact<'b>(
        &self,
        batch: &'b mut Batch,
        sender: &str,
        wa_id: &str,
    ) -> Result<&'b mut Contact, StoreError> {
        let key = (sender.to_string(), wa_id.to_string());
        if !batch.contacts.contains_key(&key) {
            let stored = self.store.contact(sender, wa_id).await?;
            let c = stored.unwrap_or_else(|| Contact {
                sender_id: key.0.clone(),
                wa_id: key.1.clone(),
                ..Default::default()
            });
            batch.contacts.insert(key.clone(), c);
        }
        Ok(batch.contacts.get_mut(&key).expect("inserted above"))
    }

    async fn handle_call(
        &self,
        event_id: i64,
        call: &CallEvent,
        batch: &mut Batch,
    ) -> Result<Effect, StoreError> {
        let source = call.source.as_str();
        let key = (source.to_string(), call.provider_call_id.clone());
        let earlier = match batch.calls.get(&key) {
            Some(d) => Some(d.clone()),
            None if batch.calls_read.contains(&key) => None,
            None => self
                .store
                .call(source, &call.provider_call_id)
                .await?
                .map(|c| c.decision),
        };
        if let Some(decision) = earlier.filter(|d| d != "pending") {
            let note = format!(
                "call {} already decided ({decision}); this event changes nothing",
                call.provider_call_id
            );
            batch.decided.push((source, "duplicate", false));
            return Ok(Effect::Finish { event_id, note });
        }
        let s = &self.settings;
        let sender = sender_for(s, call.to_raw.as_deref());
        self.whatsapp_user_call(call, sender).await?;
        // A WhatsApp call, answered or not, opens the caller's 24-hour window (reference §5.6),
        // so the reply to a missed WhatsApp call can be free-form.
        let whatsapp_caller = (call.source == crate::inbound::CallSource::Whatsapp)
            .then(|| PhoneE164::from_wa_id(&call.from_raw))
            .flatten();
        if let Some(caller) = &whatsapp_caller {
            let c = self
                .contact(batch, &sender.phone_number_id, caller.digits())
                .await?;
            c.last_inbound_at = Some(c.last_inbound_at.unwrap_or(0).max(call.occurred_at));
        }
        let rules = missed_call::Rules {
            region: s.default_region,
            ring_timeout_seconds: s.ring_timeout_seconds,
            cooldown_ms: s.cooldown_ms,
            builtin_reply: s.reply.builtin,
        };
        let own: Vec<PhoneE164> = s
            .senders
            .iter()
            .flat_map(|x| std::iter::once(x.display_number.clone()).chain(x.lines.iter().cloned()))
            .collect();
        let now = now_ms();
        // Read once (see `prefetch`): the decision reads the same result.
        let caller_id = missed_call::missed_reason(call, rules.ring_timeout_seconds)
            .ok()
            .map(|_| match batch.callers.get(&call.from_raw) {
                Some(read) => read.clone(),
                None => PhoneE164::from_caller_id(&call.from_raw, rules.region),
            });
        let contact = match caller_id.as_ref().and_then(|c| c.as_ref().ok()) {
            Some(caller) => Some(
                self.contact(batch, &sender.phone_number_id, caller.digits())
                    .await?
                    .clone(),
            ),
            None => None,
        };
        let mut verdict =
            missed_call::decide_with(call, &rules, caller_id, &own, |_| contact.clone(), now);
        if let Verdict::Reply { caller, reason } = &verdict {
            // The ledger may forbid the reply (STOP); the caller then gets nothing.
            let state = self
                .consent_state(batch, &sender.phone_number_id, caller.digits())
                .await?;
            if let Err(why) = crate::consent::permits(&state, crate::consent::Category::Utility) {
                verdict = Verdict::Skip {
                    caller: Some(caller.clone()),
                    reason: format!("{reason}, but {why}"),
                };
            }
        }
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
        if record.caller_e164.is_none() {
            record.caller_e164 = whatsapp_caller.as_ref().map(ToString::to_string);
        }
        let mut reply = None;
        match &verdict {
            Verdict::Reply { caller, .. } => {
                let id = new_message_id();
                let input = ReplyInput {
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
                };
                let plan = reply::plan(&input, &s.reply, s.business_hours.as_ref(), &s.timezone);
                record.caller_e164 = Some(caller.to_string());
                // The reply is checked against the synced templates like any send: a
                // misconfigured reply is refused here, with the reason, not by Meta later.
                if let Err(r) = self.check_reply(sender, &plan.body) {
                    record.decision = "skipped".into();
                    record.reason = reply::refusal_reason(&record.reason, &r, &input);
                    tracing::error!(reason = %record.reason, "Missed-call reply refused by the template rules.");
                    batch.calls.insert(key, record.decision.clone());
                    batch.decided.push((source, "skipped", record.missed));
                    return Ok(Effect::Call {
                        event_id,
                        call: record,
                        reply: None,
                        talk_seconds: call.talk_seconds,
                    });
                }
                record.reason = format!("{}; {}", record.reason, plan.reason);
                record.message_id = Some(id.clone());
                let c = self
                    .contact(batch, &sender.phone_number_id, caller.digits())
                    .await?;
                c.last_reply_at = Some(now);
                c.last_reply_message_id = Some(id.clone());
                *batch
                    .queued
                    .entry(sender.phone_number_id.clone())
                    .or_default() += 1;
                reply = Some(NewMessage {
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
        batch.calls.insert(key, record.decision.clone());
        batch
            .decided
            .push((source, verdict.decision(), record.missed));
        Ok(Effect::Call {
            event_id,
            call: record,
            reply,
            talk_seconds: call.talk_seconds,
        })
    }
}

impl Processor {
    /// The consent state (from the store's policy index) plus what this batch has recorded so far.
    async fn consent_state(
        &self,
        batch: &Batch,
        sender: &str,
        subject: &str,
    ) -> Result<crate::consent::State, StoreError> {
        let mut state = self.store.policy_facts(sender, subject).await?.consent;
        state.extend(
            batch
                .consent
                .iter()
                .filter(|r| r.sender_id == sender && r.subject == subject)
                .map(|r| (r.category, r.action, r.at)),
        );
        Ok(state)
    }

    /// A reply body against the Cloud API rule book, once the sender's templates are synced.
    fn check_reply(
        &self,
        sender: &crate::config::Sender,
        body: &serde_json::Value,
    ) -> Result<(), crate::cloud_api::rules::Refusal> {
        let is_template = body.get("type").and_then(serde_json::Value::as_str) == Some("template");
        if is_template && !self.templates.knows(&sender.waba_id) {
            return Ok(());
        }
        let sender_ref = crate::cloud_api::rules::SenderRef {
            display_digits: sender.display_number.digits(),
            waba_id: &sender.waba_id,
        };
        crate::cloud_api::rules::validate(&sender_ref, &self.templates.snapshot(), body).map(|_| ())
    }

    /// STOP / START (and translations): a ledger record and the one confirmation allowed.
    fn consent_keyword(
        &self,
        event_id: i64,
        m: &crate::inbound::InboundMessage,
        batch: &mut Batch,
    ) {
        let c = &self.settings.consent;
        let (Some(text), "text") = (m.text.as_deref(), m.message_type.as_str()) else {
            return;
        };
        let Some(action) = crate::consent::keyword(text, &c.stop_words, &c.start_words) else {
            return;
        };
        let Some(subject) =
            crate::consent::subject(m.from_wa_id.as_deref(), m.from_user_id.as_deref())
        else {
            return;
        };
        let record = crate::consent::Record {
            sender_id: m.phone_number_id.clone(),
            subject,
            wa_id: m.from_wa_id.clone(),
            user_id: m.from_user_id.clone(),
            category: crate::consent::Category::All,
            action,
            source: "whatsapp_message".into(),
            evidence: format!("message {} said '{}'", m.wamid, text.trim()),
            at: m.timestamp,
        };
        tracing::info!(phone_number_id = %m.phone_number_id, action = action.as_str(), "Consent keyword received.");
        batch.consent.push(record.clone());
        batch.effects.push(Effect::Consent { event_id, record });
        let (Some(wa_id), Some(sender)) = (
            &m.from_wa_id,
            self.settings
                .senders
                .iter()
                .find(|s| s.phone_number_id == m.phone_number_id),
        ) else {
            return;
        };
        let template = if action == crate::consent::Action::OptOut {
            &c.opt_out_confirmation
        } else {
            &c.opt_in_confirmation
        };
        let text = template.replace("{business_name}", &sender.business_name);
        let id = new_message_id();
        let to = format!("+{wa_id}");
        let message = NewMessage {
            body: crate::cloud_api::wire::text(&to, &text, &id),
            id,
            sender_id: sender.phone_number_id.clone(),
            to,
            kind: "text".into(),
            idempotency_key: Some(format!("consent-confirm:{}", m.wamid)),
            reason: format!(
                "confirmation of {} by keyword (the one message allowed after STOP)",
                action.as_str()
            ),
            created_at: now_ms(),
        };
        *batch
            .queued
            .entry(sender.phone_number_id.clone())
            .or_default() += 1;
        batch.effects.push(Effect::Enqueue { event_id, message });
    }

    /// A message that kept a tracked click-to-chat link's reference, from a customer the link
    /// has not brought before: the conversation is attributed to the link and, for someone the
    /// ledger does not know, the link is recorded
    /// as the consent source ([`crate::links::consent_record`]). The store is asked only when
    /// the text carries a reference, which almost no message does.
    async fn link_reference(
        &self,
        event_id: i64,
        m: &crate::inbound::InboundMessage,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        let (Some(text), Some(subject)) = (
            m.text.as_deref(),
            crate::consent::subject(m.from_wa_id.as_deref(), m.from_user_id.as_deref()),
        ) else {
            return Ok(());
        };
        let Some(code) = crate::links::reference_in(text) else {
            return Ok(());
        };
        let Some(link) = self
            .store
            .link(&code)
            .await?
            .filter(|l| l.tracked && l.sender_id == m.phone_number_id)
        else {
            return Ok(());
        };
        // A customer is attributed to a link once: the same text sent again, or into a
        // conversation that was already going, brings nobody new.
        let key = (link.code.clone(), subject.clone());
        if batch.attributed.contains(&key)
            || self
                .store
                .link_contact_seen(&link.code, &link.sender_id, &subject)
                .await?
        {
            return Ok(());
        }
        batch.attributed.insert(key);
        let state = self
            .consent_state(batch, &m.phone_number_id, &subject)
            .await?;
        if let Some(record) = crate::links::consent_record(
            &link,
            &state,
            &subject,
            m.from_wa_id.as_deref(),
            m.from_user_id.as_deref(),
            &m.wamid,
            m.timestamp,
        ) {
            batch.consent.push(record.clone());
            batch.effects.push(Effect::Consent { event_id, record });
        }
        tracing::info!(event_id, link = %link.code, source = %link.source, "A conversation came from a click-to-chat link.");
        batch.effects.push(Effect::LinkAttributed {
            event_id,
            link,
            contact: subject,
            at: m.timestamp,
        });
        Ok(())
    }

    /// Meta's `user_preferences` webhook: marketing stop / resume.
    fn marketing_preferences(&self, event_id: i64, value: &serde_json::Value, batch: &mut Batch) {
        let Some(sender) = value
            .pointer("/metadata/phone_number_id")
            .and_then(serde_json::Value::as_str)
        else {
            return;
        };
        for p in value
            .get("user_preferences")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            let wa_id = p.get("wa_id").and_then(serde_json::Value::as_str);
            let user_id = p.get("user_id").and_then(serde_json::Value::as_str);
            let Some(subject) = crate::consent::subject(wa_id, user_id) else {
                continue;
            };
            let action = match p.get("value").and_then(serde_json::Value::as_str) {
                Some("stop") => crate::consent::Action::OptOut,
                Some("resume") => crate::consent::Action::OptIn,
                _ => continue,
            };
            let at = p
                .get("timestamp")
                .and_then(serde_json::Value::as_i64)
                .and_then(|t| t.checked_mul(1000))
                .unwrap_or_else(now_ms);
            let record = crate::consent::Record {
                sender_id: sender.to_string(),
                subject,
                wa_id: wa_id.map(str::to_string),
                user_id: user_id.map(str::to_string),
                category: crate::consent::Category::Marketing,
                action,
                source: "meta_user_preferences".into(),
                evidence: p
                    .get("detail")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("user_preferences webhook")
                    .to_string(),
                at,
            };
            batch.consent.push(record.clone());
            batch.effects.push(Effect::Consent { event_id, record });
        }
    }
}

/// What one batch of events changes, and what the batch has seen so far.
#[derive(Default)]
struct Batch {
    effects: Vec<Effect>,
    contacts: HashMap<(String, String), Contact>,
    /// Decisions by (source, provider call id): read from the store, or made in this batch.
    calls: HashMap<(String, String), String>,
    /// Calls whose stored decision was read (absent from `calls`: none was stored).
    calls_read: HashSet<(String, String)>,
    /// Caller ids read once per batch, by the raw caller id.
    callers: HashMap<String, Result<PhoneE164, crate::phone::Unusable>>,
    decided: Vec<(&'static str, &'static str, bool)>,
    /// Replies queued by this batch, by sending number.
    queued: HashMap<String, usize>,
    numbers: Vec<crate::store::NumberUpdate>,
    templates: Vec<(String, String, String)>,
    consent: Vec<crate::consent::Record>,
    /// (link code, customer) pairs attributed by this batch.
    attributed: HashSet<(String, String)>,
}

/// The sender whose `lines` include the called number, else the first sender.
fn sender_for<'a>(s: &'a Settings, to_raw: Option<&str>) -> &'a crate::config::Sender {
    // Most sources send the called number in E.164 already: an exact match needs no parse
    // (parsing costs tens of microseconds, a tenth of a reply's CPU at full speed).
    let is = |x: &crate::config::Sender, t: &str| {
        x.display_number.as_str() == t || x.lines.iter().any(|l| l.as_str() == t)
    };
    if let Some(t) = to_raw.map(str::trim)
        && let Some(found) = s.senders.iter().find(|x| is(x, t))
    {
        return found;
    }
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
