//! The conversation tracker: the one sequencer that turns the journal of facts into
//! conversations and published events.
//!
//! It runs on the leader (one node at a time), reads the journal in order, and writes one
//! [`Publication`] per pass: conversations started, touched or ended, transcript lines, the
//! events in the order a reader should see them (`conversation.started` before the message
//! that started it), one webhook delivery per interested endpoint, and the removal of the
//! journal rows it consumed — all in one transaction, so a crash repeats a pass whole or not
//! at all. Because it is the only writer of conversations, it may decide from what it read
//! at the start of the pass; a person closing a conversation goes through the journal too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::{
    Conversation, EndReason, Kind, Line, OutboundMessage, ended_payload, object, sender_json,
    status_rank, view,
};
use crate::config::Settings;
use crate::events::Fact;
use crate::shutdown::Shutdown;
use crate::store::{Endpoint, Fence, LineUpdate, NewEvent, Publication, Store, StoreError};
use crate::time::{Millis, now_ms};

/// Journal rows read per pass.
const BATCH: u32 = 512;
/// How often idle conversations are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How long a pass waits after being woken, so the facts of the commits that follow (a
/// burst commits hundreds a second) are published together: each pass costs a few reads and
/// a write whatever its size.
const LINGER: Duration = Duration::from_millis(3);

/// The tracker's dependencies.
#[derive(Clone)]
pub struct Tracker {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    /// The last published event id: the stream and the webhook dispatcher watch it.
    pub published: watch::Sender<i64>,
    pub fence: Option<Fence>,
}

impl Tracker {
    /// Runs until `shutdown`; store errors are logged and retried.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut last_sweep = tokio::time::Instant::now() - SWEEP_EVERY;
        let mut backoff = crate::retry::Backoff::store_write();
        let journaled = self.store.journaled();
        loop {
            let sweep = last_sweep.elapsed() >= SWEEP_EVERY;
            if sweep {
                last_sweep = tokio::time::Instant::now();
            }
            let result = self.pass(now_ms(), sweep).await;
            if result.is_ok() {
                backoff.reset();
            }
            match result {
                Ok(n) if n >= BATCH as usize => continue,
                Ok(_) => {
                    tokio::select! {
                        _ = journaled.notified() => tokio::time::sleep(LINGER).await,
                        _ = tokio::time::sleep(SWEEP_EVERY) => {}
                        _ = shutdown.wait() => return,
                    }
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "Publishing events failed; retrying.");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = shutdown.wait() => return,
                    }
                }
            }
        }
    }

    /// One pass: reads the journal (and, with `sweep`, the conversations gone idle by `now`)
    /// and publishes what follows; returns how many journal rows it consumed.
    pub async fn pass(&self, now: Millis, sweep: bool) -> Result<usize, StoreError> {
        let entries = self.store.journal(BATCH).await?;
        let facts: Vec<Fact> = entries
            .iter()
            .filter_map(|e| {
                if e.fact.is_none() {
                    tracing::warn!(journal_id = e.id, "A journal row cannot be read; skipped.");
                }
                e.fact.clone()
            })
            .collect();
        let mut pass = Pass::prepare(self, &facts).await?;
        for fact in &facts {
            pass.apply(fact).await?;
        }
        if sweep {
            pass.sweep(now).await?;
        }
        let mut publication = pass.finish();
        publication.upto = entries.last().map(|e| e.id);
        if publication.is_empty() {
            return Ok(0);
        }
        let ids = self.store.publish(publication, self.fence.as_ref()).await?;
        if let Some(last) = ids.last() {
            metrics::counter!("ringback_events_published_total").increment(ids.len() as u64);
            self.published.send_replace(*last);
        }
        Ok(entries.len())
    }
}

/// What one pass knows and has decided so far.
struct Pass<'a> {
    tracker: &'a Tracker,
    endpoints: Vec<Endpoint>,
    /// Open conversation per (sender, contact).
    open: HashMap<(String, String), String>,
    /// Conversations read or changed, by id; `touched` keeps the order they changed in.
    conversations: HashMap<String, Conversation>,
    touched: Vec<String>,
    touched_set: std::collections::HashSet<String>,
    /// Our messages named by this pass's facts, by id, and their ids by wamid.
    outbound: HashMap<String, OutboundMessage>,
    by_wamid: HashMap<String, String>,
    /// Where each line added in this pass is in `new_lines`, by message id.
    new_line_at: HashMap<String, usize>,
    /// Known lines by message id (and by wamid): conversation and status.
    lines: HashMap<String, (String, String)>,
    new_lines: Vec<Line>,
    updates: Vec<LineUpdate>,
    events: Vec<NewEvent>,
    /// Conversations started in this pass: none of their lines is stored yet.
    fresh: std::collections::HashSet<String>,
}

impl<'a> Pass<'a> {
    async fn prepare(tracker: &'a Tracker, facts: &[Fact]) -> Result<Pass<'a>, StoreError> {
        let store = &tracker.store;
        let (mut ids, mut wamids) = (Vec::new(), Vec::new());
        for f in facts {
            if let Fact::Outbound {
                message_id, wamid, ..
            } = f
            {
                // A status names our id (biz_opaque_callback_data); the wamid is looked up
                // only when it does not.
                match message_id {
                    Some(id) => ids.push(id.clone()),
                    None => wamids.extend(wamid.clone()),
                }
            }
        }
        let mut outbound = HashMap::new();
        if !ids.is_empty() || !wamids.is_empty() {
            for m in store.outbound_messages(&ids, &wamids).await? {
                outbound.insert(m.id.clone(), m);
            }
        }
        let mut lines = HashMap::new();
        let keys: Vec<String> = outbound
            .keys()
            .cloned()
            .chain(facts.iter().filter_map(|f| match f {
                Fact::Inbound { wamid, .. } => Some(wamid.clone()),
                _ => None,
            }))
            .collect();
        if !keys.is_empty() {
            for l in store.lines_of_messages(&keys).await? {
                lines.insert(
                    l.message_id.clone(),
                    (l.conversation_id.clone(), l.status.clone()),
                );
            }
        }
        let mut pairs: Vec<(String, String)> = facts
            .iter()
            .filter_map(|f| match f {
                Fact::Inbound {
                    sender_id, contact, ..
                }
                | Fact::Consent {
                    sender_id, contact, ..
                }
                | Fact::CallPermission {
                    sender_id, contact, ..
                }
                | Fact::Attributed {
                    sender_id, contact, ..
                } => Some((sender_id.clone(), contact.clone())),
                Fact::Call {
                    sender_id: Some(s),
                    contact: Some(c),
                    ..
                } => Some((s.clone(), c.clone())),
                _ => None,
            })
            .chain(
                outbound
                    .values()
                    .map(|m| (m.sender_id.clone(), m.contact())),
            )
            .collect();
        pairs.sort();
        pairs.dedup();
        let mut pass = Pass {
            tracker,
            endpoints: store.endpoints().await?,
            open: HashMap::new(),
            conversations: HashMap::new(),
            touched: Vec::new(),
            touched_set: Default::default(),
            outbound: HashMap::new(),
            by_wamid: HashMap::new(),
            new_line_at: HashMap::new(),
            lines,
            new_lines: Vec::new(),
            updates: Vec::new(),
            events: Vec::new(),
            fresh: Default::default(),
        };
        if !pairs.is_empty() {
            for c in store.open_conversations(&pairs).await? {
                pass.open
                    .insert((c.sender_id.clone(), c.contact.clone()), c.id.clone());
                pass.conversations.insert(c.id.clone(), c);
            }
        }
        pass.by_wamid = outbound
            .values()
            .filter_map(|m| Some((m.wamid.clone()?, m.id.clone())))
            .collect();
        pass.outbound = outbound;
        Ok(pass)
    }

    fn settings(&self) -> &Settings {
        &self.tracker.settings
    }

    fn inactivity(&self, sender_id: &str) -> Millis {
        self.settings().conversation_inactivity(sender_id)
    }

    fn touch(&mut self, id: &str) {
        if self.touched_set.insert(id.to_string()) {
            self.touched.push(id.to_string());
        }
    }

    fn emit(&mut self, kind: &str, at: Millis, conversation_id: Option<String>, data: Value) {
        let endpoints = self
            .endpoints
            .iter()
            .filter(|e| e.wants(kind))
            .map(|e| e.id.clone())
            .collect();
        self.events.push(NewEvent {
            kind: kind.to_string(),
            at,
            conversation_id,
            data,
            endpoints,
        });
    }

    /// The open conversation of (sender, contact) at `at`, ending one gone idle and starting
    /// one of `kind` when there is none (or, with `kind` `None`, only looking).
    async fn current(
        &mut self,
        sender_id: &str,
        contact: &str,
        at: Millis,
        kind: Option<Kind>,
    ) -> Result<Option<String>, StoreError> {
        let pair = (sender_id.to_string(), contact.to_string());
        if let Some(id) = self.open.get(&pair).cloned() {
            let idle_at = self.conversations[&id].idle_at(self.inactivity(sender_id));
            if at < idle_at {
                return Ok(Some(id));
            }
            self.end(&id, EndReason::Inactivity, idle_at).await?;
        }
        let Some(kind) = kind else {
            return Ok(None);
        };
        let c = Conversation::start(sender_id, contact, kind, at);
        let id = c.id.clone();
        self.emit(
            "conversation.started",
            at,
            Some(id.clone()),
            object([("conversation", view(self.settings(), &c))]),
        );
        self.open.insert(pair, id.clone());
        self.conversations.insert(id.clone(), c);
        self.fresh.insert(id.clone());
        self.touch(&id);
        Ok(Some(id))
    }

    /// Adds a line to a conversation; a message counts as activity.
    fn add_line(&mut self, conversation_id: &str, mut line: Line) {
        let c = self
            .conversations
            .get_mut(conversation_id)
            .expect("a line is added to a conversation this pass holds");
        c.message_count += 1;
        line.seq = c.message_count;
        line.conversation_id = conversation_id.to_string();
        if line.status != "queued" {
            c.last_message_at = c.last_message_at.max(line.at);
        }
        self.lines.insert(
            line.message_id.clone(),
            (conversation_id.to_string(), line.status.clone()),
        );
        self.new_line_at
            .insert(line.message_id.clone(), self.new_lines.len());
        self.new_lines.push(line);
        self.touch(conversation_id);
    }

    /// Ends a conversation: its transcript, with our messages to the customer still on their
    /// way (they belong to it), goes out with `conversation.ended`.
    async fn end(&mut self, id: &str, reason: EndReason, at: Millis) -> Result<(), StoreError> {
        let c = self.conversations[id].clone();
        if !c.is_open() {
            return Ok(());
        }
        let mut transcript = if self.fresh.contains(id) {
            Vec::new()
        } else {
            self.tracker.store.transcript(id).await?
        };
        // Our messages sent during the conversation whose facts the journal has not reached
        // yet (on their way, or accepted a moment ago): they belong to it, in their state now.
        // An opt-out's confirmation was queued with the opt-out, after the STOP it answers:
        // it belongs to the conversation it ends.
        let until = match reason {
            EndReason::OptOut => at.max(crate::time::now_ms()),
            _ => at,
        };
        if let Some(phone) = c.customer_phone() {
            let stored: std::collections::HashSet<&str> =
                transcript.iter().map(|l| l.message_id.as_str()).collect();
            let late: Vec<OutboundMessage> = self
                .tracker
                .store
                .messages_to(&c.sender_id, &phone, c.started_at, until)
                .await?
                .into_iter()
                .filter(|m| !stored.contains(m.id.as_str()) && !self.lines.contains_key(&m.id))
                .collect();
            for m in late {
                // Its facts come later in the journal and move the line on (and publish
                // `message.sent` then): until they are read, it is on its way.
                let state = match m.state.as_str() {
                    "queued" | "sending" | "uncertain" => m.state.as_str(),
                    _ => "sending",
                };
                let line = outbound_line(&m, state, m.created_at);
                self.add_line(id, line);
            }
        }
        for l in &mut transcript {
            if let Some(u) = self
                .updates
                .iter()
                .rev()
                .find(|u| u.message_id == l.message_id)
            {
                l.status = u.status.clone();
                l.status_at = u.status_at;
            }
        }
        transcript.extend(
            self.new_lines
                .iter()
                .filter(|l| l.conversation_id == id)
                .cloned(),
        );
        transcript.sort_by_key(|l| l.seq);
        transcript.dedup_by_key(|l| l.seq);
        let c = self.conversations.get_mut(id).expect("held above");
        c.ended_at = Some(at.max(c.started_at));
        c.end_reason = Some(reason.as_str().to_string());
        let ended = c.clone();
        self.open
            .remove(&(ended.sender_id.clone(), ended.contact.clone()));
        self.touch(id);
        let payload = ended_payload(self.settings(), &ended, &transcript);
        // A number whose assistant extracts variables: the event waits for them (the
        // assistant's evaluator journals `Fact::Evaluated`, published below).
        match crate::config::assistants::evaluator(&self.settings().assistants, &ended.sender_id) {
            Some(a) => {
                let held = crate::store::HeldEnding {
                    conversation_id: id.to_string(),
                    assistant: a.name.clone(),
                    at,
                    payload,
                };
                self.tracker.store.hold_ending(&held).await?;
            }
            None => self.emit("conversation.ended", at, Some(id.to_string()), payload),
        }
        Ok(())
    }

    async fn apply(&mut self, fact: &Fact) -> Result<(), StoreError> {
        match fact {
            Fact::Inbound {
                sender_id,
                contact,
                name,
                wamid,
                message_type,
                text,
                reply_to,
                reply_id,
                at,
            } => {
                if self.lines.contains_key(wamid) {
                    return Ok(());
                }
                let id = self
                    .current(sender_id, contact, *at, Some(Kind::Inbound))
                    .await?
                    .expect("a kind was given");
                if name.is_some() {
                    self.conversations
                        .get_mut(&id)
                        .expect("current")
                        .contact_name = name.clone();
                }
                self.add_line(
                    &id,
                    Line {
                        conversation_id: String::new(),
                        seq: 0,
                        direction: "inbound".into(),
                        message_id: wamid.clone(),
                        wamid: Some(wamid.clone()),
                        kind: message_type.clone(),
                        text: text.clone(),
                        status: "received".into(),
                        at: *at,
                        status_at: *at,
                    },
                );
                let c = &self.conversations[&id];
                let mut data = json!({
                    "message": {"id": wamid, "type": message_type, "text": text, "reply_to": reply_to,
                        "reply_id": reply_id, "at": at},
                    // Whether this message started its conversation.
                    "first": c.message_count == 1,
                    "customer": {"contact": contact, "phone": c.customer_phone(), "name": c.contact_name},
                });
                data["sender"] = sender_json(self.settings(), sender_id);
                self.emit("message.received", *at, Some(id), data);
            }
            Fact::Outbound {
                message_id,
                wamid,
                status,
                error_code,
                error,
                at,
            } => {
                self.outbound_status(
                    message_id.as_deref(),
                    wamid.as_deref(),
                    status,
                    *error_code,
                    error.as_deref(),
                    *at,
                )
                .await?;
            }
            Fact::Call {
                event,
                sender_id,
                contact,
                call,
                at,
            } => {
                let mut conversation = None;
                if let (Some(s), Some(c)) = (sender_id, contact) {
                    let whatsapp = call["source"] == "whatsapp" && event != "call.completed";
                    let kind = whatsapp.then(|| {
                        if event == "call.missed" {
                            Kind::MissedCall
                        } else {
                            Kind::Inbound
                        }
                    });
                    conversation = self.current(s, c, *at, kind).await?;
                    if let (true, Some(id)) = (whatsapp, &conversation) {
                        let line = Line {
                            conversation_id: String::new(),
                            seq: 0,
                            direction: "inbound".into(),
                            message_id: format!(
                                "call:{}:{}",
                                call["source"].as_str().unwrap_or(""),
                                call["call_id"].as_str().unwrap_or("")
                            ),
                            wamid: None,
                            kind: "call".into(),
                            text: format!("[call {}]", event.trim_start_matches("call.")),
                            status: "received".into(),
                            at: *at,
                            status_at: *at,
                        };
                        if !self.lines.contains_key(&line.message_id) {
                            self.add_line(&id.clone(), line);
                        }
                    }
                }
                let sender = sender_id
                    .as_deref()
                    .map(|s| sender_json(self.settings(), s));
                self.emit(
                    event,
                    *at,
                    conversation,
                    object([
                        ("call", call.clone()),
                        ("sender", sender.unwrap_or_default()),
                    ]),
                );
            }
            Fact::Consent {
                sender_id,
                contact,
                action,
                category,
                source,
                at,
            } => {
                let conversation = self.current(sender_id, contact, *at, None).await?;
                let data = json!({"contact": contact, "action": action, "category": category, "source": source,
                    "sender": sender_json(self.settings(), sender_id)});
                self.emit("consent.changed", *at, conversation.clone(), data);
                if let (Some(id), "opt_out") = (conversation, action.as_str()) {
                    self.end(&id, EndReason::OptOut, *at).await?;
                }
            }
            Fact::NumberQuality {
                phone_number_id,
                quality_rating,
                event,
                at,
            } => {
                self.emit("number.quality_changed", *at, None,
                    json!({"phone_number_id": phone_number_id, "quality_rating": quality_rating, "event": event}));
            }
            Fact::TemplateStatus {
                name,
                language,
                status,
                at,
            } => {
                self.emit(
                    "template.status_changed",
                    *at,
                    None,
                    json!({"name": name, "language": language, "status": status}),
                );
            }
            Fact::CallPermission {
                sender_id,
                contact,
                from,
                to,
                source,
                reason,
                at,
            } => {
                let conversation = self.current(sender_id, contact, *at, None).await?;
                let data = json!({"contact": contact, "from": from, "to": to, "source": source,
                    "reason": reason, "sender": sender_json(self.settings(), sender_id)});
                self.emit("call.permission_changed", *at, conversation, data);
            }
            Fact::SenderStatus {
                phone_number_id,
                online,
                reason,
                at,
            } => {
                let kind = if *online {
                    "number.online"
                } else {
                    "number.offline"
                };
                let mut data = sender_json(self.settings(), phone_number_id);
                data["reason"] = json!(reason);
                self.emit(kind, *at, None, data);
            }
            Fact::Evaluated {
                conversation_id,
                payload,
                variables,
                error,
                at,
            } => {
                let mut payload = payload.clone();
                payload["extracted_variables"] = variables.clone();
                payload["extraction_error"] = json!(error);
                self.emit(
                    "conversation.ended",
                    *at,
                    Some(conversation_id.clone()),
                    payload,
                );
            }
            Fact::FlowFailed {
                flow,
                run_id,
                step,
                error,
                contact,
                at,
            } => {
                self.emit(
                    "flow.failed",
                    *at,
                    None,
                    json!({"flow": flow, "run_id": run_id, "step": step, "error": error, "contact": contact}),
                );
            }
            Fact::LinkClicked {
                code,
                source,
                sender_id,
                clicks,
                at,
            } => {
                let mut data = sender_json(self.settings(), sender_id);
                data["link"] = json!({"code": code, "source": source, "clicks": clicks});
                self.emit("link.clicked", *at, None, data);
            }
            Fact::Attributed {
                sender_id,
                contact,
                code,
                source,
                wamid,
                at,
            } => {
                // The message was placed just before: this is its conversation.
                let conversation = self.current(sender_id, contact, *at, None).await?;
                let data = json!({"contact": contact, "wamid": wamid,
                    "link": {"code": code, "source": source},
                    "sender": sender_json(self.settings(), sender_id)});
                self.emit("conversation.attributed", *at, conversation, data);
            }
            Fact::EndpointDisabled {
                endpoint_id,
                url,
                reason,
                at,
            } => {
                self.emit(
                    "webhook_endpoint.disabled",
                    *at,
                    None,
                    json!({"endpoint_id": endpoint_id, "url": url, "reason": reason}),
                );
            }
            Fact::CloseRequested {
                conversation_id,
                at,
            } => {
                if !self.conversations.contains_key(conversation_id) {
                    match self.tracker.store.conversation(conversation_id).await? {
                        Some(c) if c.is_open() => {
                            // The pass may hold it under its pair already (read by pair).
                            self.open
                                .insert((c.sender_id.clone(), c.contact.clone()), c.id.clone());
                            self.conversations.insert(c.id.clone(), c);
                        }
                        _ => return Ok(()),
                    }
                }
                self.end(conversation_id, EndReason::Closed, *at).await?;
            }
        }
        Ok(())
    }

    async fn outbound_status(
        &mut self,
        message_id: Option<&str>,
        wamid: Option<&str>,
        status: &str,
        error_code: Option<i64>,
        error: Option<&str>,
        at: Millis,
    ) -> Result<(), StoreError> {
        let event = match status {
            "sent" => "message.sent",
            "delivered" => "message.delivered",
            "read" | "played" => "message.read",
            "failed" => "message.failed",
            _ => return Ok(()),
        };
        // Our id when the fact has it; a status webhook without it is matched by its wamid.
        let found = message_id
            .and_then(|id| self.outbound.get(id))
            .or_else(|| {
                let id = self.by_wamid.get(wamid?)?;
                self.outbound.get(id)
            })
            .cloned();
        let Some(m) = found else {
            // Not a message this store sent (another tool on the same number): no event.
            return Ok(());
        };
        let conversation = match self.lines.get(&m.id).cloned() {
            Some((conversation, current)) => {
                if status_rank(status) <= status_rank(&current) {
                    return Ok(()); // a repeated or overtaken status
                }
                self.updates.push(LineUpdate {
                    message_id: m.id.clone(),
                    wamid: wamid.map(str::to_string),
                    status: status.to_string(),
                    status_at: at,
                });
                self.lines
                    .insert(m.id.clone(), (conversation.clone(), status.to_string()));
                if let Some(l) = self
                    .new_line_at
                    .get(&m.id)
                    .and_then(|i| self.new_lines.get_mut(*i))
                {
                    l.status = status.to_string();
                    l.status_at = at;
                }
                Some(conversation)
            }
            None => {
                // A failure starts nothing: the customer never saw the message.
                let kind =
                    (status != "failed").then(|| Kind::for_outbound(m.idempotency_key.as_deref()));
                let conversation = self.current(&m.sender_id, &m.contact(), at, kind).await?;
                if let Some(id) = &conversation {
                    let mut line = outbound_line(&m, status, at);
                    line.wamid = wamid.map(str::to_string);
                    self.add_line(&id.clone(), line);
                }
                conversation
            }
        };
        // The text goes with `message.sent` and `message.failed`; a delivery or read status
        // only moves the message on.
        let text = matches!(status, "sent" | "failed").then(|| m.summary());
        let mut data = json!({
            "message": {"id": m.id, "wamid": wamid, "to": m.to, "type": m.kind,
                "text": text, "status": status, "at": at},
        });
        data["sender"] = sender_json(self.settings(), &m.sender_id);
        if status == "failed" {
            data["error"] = json!({"code": error_code, "detail": error,
                "explanation": error_code.map(crate::cloud_api::errors::explain)});
        }
        self.emit(event, at, conversation, data);
        Ok(())
    }

    /// Ends the open conversations quiet for longer than their number's inactivity period.
    async fn sweep(&mut self, now: Millis) -> Result<(), StoreError> {
        let shortest = self
            .settings()
            .senders
            .iter()
            .map(|s| self.inactivity(&s.phone_number_id))
            .min()
            .unwrap_or(crate::config::DEFAULT_CONVERSATION_INACTIVITY_MS);
        let idle = self
            .tracker
            .store
            .idle_conversations(now - shortest, 200)
            .await?;
        for c in idle {
            let held = self.conversations.entry(c.id.clone()).or_insert(c).clone();
            let idle_at = held.idle_at(self.inactivity(&held.sender_id));
            if held.is_open() && idle_at <= now {
                self.open.insert(
                    (held.sender_id.clone(), held.contact.clone()),
                    held.id.clone(),
                );
                self.end(&held.id, EndReason::Inactivity, idle_at).await?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Publication {
        let Pass {
            mut conversations,
            touched,
            new_lines,
            updates,
            events,
            ..
        } = self;
        Publication {
            upto: None,
            conversations: touched
                .iter()
                .filter_map(|id| conversations.remove(id))
                .collect(),
            new_lines,
            line_updates: updates,
            events,
        }
    }
}

/// A line for one of our messages.
fn outbound_line(m: &OutboundMessage, status: &str, at: Millis) -> Line {
    let body = m.body();
    Line {
        conversation_id: String::new(),
        seq: 0,
        direction: "outbound".into(),
        message_id: m.id.clone(),
        wamid: None,
        kind: body["type"].as_str().unwrap_or(&m.kind).to_string(),
        text: super::summary::outbound(&m.kind, &body),
        status: status.to_string(),
        at,
        status_at: at,
    }
}
