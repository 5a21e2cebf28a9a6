//! Auto-reply: an assistant answers the inbound WhatsApp messages of the numbers it is given
//! (`auto_reply = ["+15550100001"]`), inside the customer service window the message opened.
//!
//! It follows the published events, like the flows' follower, from a cursor of its own
//! (starting at the newest event, so turning it on does not answer last month's messages):
//! - `message.received` on an auto-reply number: unless auto-reply is paused for that
//!   customer, the assistant's reply is queued through the send policy and the outbox (a text,
//!   so the policy refuses it if the window has closed), one message per part, keyed
//!   `assistant:{event}:{part}` so a crash never sends twice; a message with no text (a photo,
//!   a location) is handed to a person;
//! - a hand-off (keyword, model, low confidence, fault) sends the hand-off message and pauses
//!   auto-reply for that customer; so does a person's reply (`POST /api/v1/messages`, recorded
//!   by the send route). A conversation that starts after the pause is answered again.
//!
//! Replies run concurrently (a slow model must not hold up other customers), one at a time per
//! customer. The cursor only moves past events whose reply has been queued.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{Notify, watch};

use super::{Ask, Assistants};
use crate::config::Settings;
use crate::events::Event;
use crate::outbox::submit::{NotQueued, Submission, Submitter};
use crate::phone::PhoneE164;
use crate::policy::Outgoing;
use crate::shutdown::Shutdown;
use crate::store::{AutoReplyPause, Store, StoreError};
use crate::time::now_ms;

/// A reply decided: asked of the assistant once, delivered until it is queued.
struct Decided {
    phone: PhoneE164,
    parts: Vec<String>,
    /// Why a person takes over, when the reply is the hand-off message.
    handed_off: Option<String>,
}

/// Events read per pass.
const BATCH: u32 = 256;
/// Replies in progress at once (each mostly waits on its model).
const MAX_IN_FLIGHT: usize = 4096;
/// Tries of one reply whose store writes fail.
const ATTEMPTS: u32 = 12;

/// Follows the events and answers; cheap to clone.
#[derive(Clone)]
pub struct AutoReply {
    pub store: Arc<dyn Store>,
    pub assistants: Assistants,
    pub settings: Arc<Settings>,
    pub templates: crate::template_registry::Registry,
    pub book: crate::calling::PermissionBook,
    pub wakers: crate::outbox::Wakers,
    pub published: watch::Sender<i64>,
}

/// The events being answered, for the cursor.
/// The events being answered, for the cursor, and each customer's last reply in progress.
#[derive(Default)]
struct InFlight {
    ids: Mutex<BTreeSet<i64>>,
    done: Notify,
    /// Per customer: the generation and completion of their latest reply. The next reply of
    /// that customer waits for it, so their messages are answered in the order they came.
    customers: Mutex<HashMap<String, (u64, watch::Receiver<bool>)>>,
    generation: std::sync::atomic::AtomicU64,
}

/// Ends a reply's bookkeeping however its task ends (done, failed, panicked, aborted): the
/// event leaves the in-flight set (so the cursor can move), the customer's next reply may go.
struct Finish {
    flight: Arc<InFlight>,
    event: i64,
    contact: String,
    generation: u64,
    done: watch::Sender<bool>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let _ = self.done.send(true);
        {
            let mut customers = self.flight.customers.lock().expect("customers lock");
            if customers
                .get(&self.contact)
                .is_some_and(|(g, _)| *g == self.generation)
            {
                customers.remove(&self.contact);
            }
        }
        self.flight
            .ids
            .lock()
            .expect("in-flight lock")
            .remove(&self.event);
        self.flight.done.notify_one();
    }
}

impl AutoReply {
    /// The assistant answering `sender_id`, if any.
    fn assistant_for(&self, sender_id: &str) -> Option<String> {
        self.settings
            .assistants
            .iter()
            .find(|a| a.auto_reply.iter().any(|n| n == sender_id))
            .map(|a| a.name.clone())
    }

    pub async fn run(self, mut shutdown: Shutdown) {
        if self
            .settings
            .assistants
            .iter()
            .all(|a| a.auto_reply.is_empty())
        {
            return;
        }
        let mut published = self.published.subscribe();
        let mut backoff = crate::retry::Backoff::store_write();
        let in_flight = Arc::new(InFlight::default());
        // The replies in progress belong to this run: when it ends (shutdown, or this node no
        // longer leads), they are dropped with it, and the next leader answers from the cursor.
        let mut replies = tokio::task::JoinSet::new();
        let mut next = loop {
            match self.begin().await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::error!(error.message = %e, "Reading the auto-reply cursor failed; retrying.");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = shutdown.wait() => return,
                    }
                }
            }
        };
        let mut stored = next;
        loop {
            while replies.try_join_next().is_some() {}
            let wait = match self.pass(next, &in_flight, &mut replies).await {
                Ok((read, last)) => {
                    next = last;
                    backoff.reset();
                    if read >= BATCH as usize {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(1)
                    }
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "Auto-reply could not read the events; retrying.");
                    backoff.next_delay()
                }
            };
            // Durable: everything before the oldest reply still in progress.
            let durable = in_flight
                .ids
                .lock()
                .expect("in-flight lock")
                .first()
                .map_or(next, |first| first - 1);
            if durable > stored {
                match self.store.set_auto_reply_cursor(durable).await {
                    Ok(()) => stored = durable,
                    Err(e) => {
                        tracing::warn!(error.message = %e, "Storing the auto-reply cursor failed; a restart would look at some messages again (their replies are keyed).");
                    }
                }
            }
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = published.changed() => {}
                _ = in_flight.done.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Stores the cursor where it stands (the newest event, the first time).
    async fn begin(&self) -> Result<i64, StoreError> {
        let cursor = self.store.auto_reply_cursor().await?.unwrap_or(0);
        self.store.set_auto_reply_cursor(cursor).await?;
        Ok(cursor)
    }

    /// Reads the events after `after`, starts a reply for each message to answer; returns
    /// how many were read and the last id.
    async fn pass(
        &self,
        after: i64,
        in_flight: &Arc<InFlight>,
        replies: &mut tokio::task::JoinSet<()>,
    ) -> Result<(usize, i64), StoreError> {
        if in_flight.ids.lock().expect("in-flight lock").len() >= MAX_IN_FLIGHT {
            return Ok((0, after));
        }
        let types = ["message.received".to_string()];
        let events = self.store.events_after(after, &types, BATCH).await?;
        let last = events.last().map_or(after, |e| e.id);
        for e in &events {
            let sender = e
                .data
                .pointer("/sender/phone_number_id")
                .and_then(Value::as_str);
            let Some(assistant) = sender.and_then(|s| self.assistant_for(s)) else {
                continue;
            };
            let contact = e
                .data
                .pointer("/customer/contact")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let generation = in_flight
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (done, mine) = watch::channel(false);
            // The customer's previous reply in progress, if any: this one waits for it.
            let previous = in_flight
                .customers
                .lock()
                .expect("customers lock")
                .insert(contact.clone(), (generation, mine))
                .map(|(_, rx)| rx);
            in_flight.ids.lock().expect("in-flight lock").insert(e.id);
            let finish = Finish {
                flight: in_flight.clone(),
                event: e.id,
                contact,
                generation,
                done,
            };
            let (me, e) = (self.clone(), e.clone());
            replies.spawn(async move {
                let _finish = finish;
                if let Some(mut previous) = previous {
                    let _ = previous.wait_for(|done| *done).await;
                }
                me.answer_with_retries(&assistant, &e).await;
            });
        }
        Ok((events.len(), last))
    }

    /// Decides the reply once, then delivers it, waiting out a failing store (a minute at
    /// most): the parts are keyed, so delivering again never sends twice, and the model is
    /// not asked again.
    async fn answer_with_retries(&self, assistant: &str, e: &Event) {
        let mut backoff = crate::retry::Backoff::store_write();
        let mut decided: Option<Decided> = None;
        for attempt in 1..=ATTEMPTS {
            let result = match &decided {
                None => match self.decide(assistant, e).await {
                    Ok(None) => return,
                    Ok(Some(d)) => {
                        let d = decided.insert(d);
                        self.deliver(assistant, e, d).await
                    }
                    Err(err) => Err(err),
                },
                Some(d) => self.deliver(assistant, e, d).await,
            };
            match result {
                Ok(()) => return,
                Err(err) if attempt == ATTEMPTS => {
                    tracing::error!(event = e.id, error.message = %err, "Auto-reply failed; the message stays unanswered.");
                }
                Err(err) => {
                    tracing::warn!(event = e.id, error.message = %err, "Auto-reply failed; trying again.");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// What to answer to one `message.received` event; `None` when nothing is to be sent
    /// (answered before, paused, no phone number to send to).
    async fn decide(&self, assistant: &str, e: &Event) -> anyhow::Result<Option<Decided>> {
        let d = &e.data;
        let (sender_id, contact) = who(e);
        let Some(phone) = d
            .pointer("/customer/phone")
            .and_then(Value::as_str)
            .and_then(|p| PhoneE164::parse_international(p).ok())
        else {
            return Ok(None); // A username user without a phone number: nothing to send to.
        };
        // Asked before (a crash after the reply was queued): the outbox holds it already.
        if self
            .store
            .message_by_idempotency_key(&format!("assistant:{}:0", e.id))
            .await?
            .is_some()
        {
            return Ok(None);
        }
        if let Some(pause) = self.store.auto_reply_pause(sender_id, contact).await? {
            let conversation = match &e.conversation_id {
                Some(id) => self.store.conversation(id).await?,
                None => None,
            };
            if conversation.is_none_or(|c| pause.covers(&c.id, c.started_at)) {
                tracing::debug!(
                    event = e.id,
                    reason = pause.reason,
                    "Auto-reply paused for this customer."
                );
                return Ok(None);
            }
        }
        let text = d
            .pointer("/message/text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let a = self
            .assistants
            .get(assistant)
            .expect("a configured assistant");
        let closed = a.settings.business_hours_only
            && self
                .settings
                .business_hours
                .as_ref()
                .is_some_and(|h| !h.is_open(now_ms()));
        let (parts, handed_off) = if closed {
            (
                vec![a.settings.hand_off_message.clone()],
                Some("outside business hours".to_string()),
            )
        } else if text.trim().is_empty() {
            let kind = d
                .pointer("/message/type")
                .and_then(Value::as_str)
                .unwrap_or("message");
            (
                vec![a.settings.hand_off_message.clone()],
                Some(format!("the customer sent a {kind} without text")),
            )
        } else {
            let mut variables = Map::new();
            if a.settings.variables.iter().any(|v| v == "customer_name")
                && let Some(name) = d.pointer("/customer/name").and_then(Value::as_str)
            {
                // The customer chose this name on WhatsApp: one short line, never a paragraph
                // of instructions in the system prompt.
                let name: String = name.chars().filter(|c| !c.is_control()).take(60).collect();
                variables.insert("customer_name".into(), Value::String(name));
            }
            let reply = self
                .assistants
                .reply(
                    assistant,
                    Ask {
                        customer_id: phone.to_string(),
                        message: text.to_string(),
                        variables,
                    },
                )
                .await?;
            let handed = reply
                .handed_off
                .as_ref()
                .map(|h| format!("{}: {}", h.code, h.reason));
            (reply.parts, handed)
        };
        Ok(Some(Decided {
            phone,
            parts,
            handed_off,
        }))
    }

    /// Queues the decided parts (keyed: a second delivery finds them queued) and, after a
    /// hand-off, pauses auto-reply for the conversation.
    async fn deliver(&self, assistant: &str, e: &Event, decided: &Decided) -> anyhow::Result<()> {
        let (sender_id, contact) = who(e);
        let phone = &decided.phone;
        let sender = self
            .settings
            .senders
            .iter()
            .find(|s| s.phone_number_id == sender_id)
            .ok_or_else(|| anyhow::anyhow!("number {sender_id} is no longer configured"))?;
        let submitter = Submitter {
            store: self.store.as_ref(),
            templates: &self.templates,
            book: &self.book,
            wakers: &self.wakers,
        };
        for (i, part) in decided.parts.iter().enumerate() {
            let queued = submitter
                .submit(Submission {
                    sender,
                    to: phone,
                    message: Outgoing {
                        kind: "text".into(),
                        payload: serde_json::json!({"preview_url": false, "body": part}),
                    },
                    fallback: None,
                    idempotency_key: Some(format!("assistant:{}:{i}", e.id)),
                    origin: "sent by an assistant",
                    now: now_ms(),
                })
                .await;
            match queued {
                Ok(_) => {}
                Err(NotQueued::Refused(r)) => {
                    // Outside the window (a message that reached us more than 24 hours after
                    // it was written), opted out …: WhatsApp would refuse it too. Nothing is
                    // queued; the reason is logged and counted.
                    tracing::warn!(event = e.id, reason = %r, "Auto-reply refused by the send policy.");
                    metrics::counter!("ringback_assistant_auto_replies_refused_total", "assistant" => assistant.to_string())
                        .increment(1);
                    break;
                }
                Err(other) => return Err(other.into()),
            }
        }
        if let Some(reason) = &decided.handed_off {
            self.store
                .pause_auto_reply(&AutoReplyPause {
                    sender_id: sender_id.into(),
                    contact: contact.into(),
                    conversation_id: e.conversation_id.clone(),
                    at: now_ms(),
                    reason: format!("handed off ({reason})"),
                })
                .await?;
            metrics::counter!("ringback_assistant_hand_offs_total", "assistant" => assistant.to_string())
                .increment(1);
        }
        Ok(())
    }
}

/// The business number and the customer of a `message.received` event.
fn who(e: &Event) -> (&str, &str) {
    let text = |p: &str| {
        e.data
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    (text("/sender/phone_number_id"), text("/customer/contact"))
}

/// A person takes over (`sender_id`, `contact`): auto-reply stops for the customer's open
/// conversation (or, with none open, for conversations started until now). Used when a person
/// replies through the API and by a flow's `hand_off` step; returns the conversation paused.
pub async fn hand_to_person(
    store: &dyn Store,
    sender_id: &str,
    contact: &str,
    reason: &str,
) -> Result<Option<String>, StoreError> {
    let open = store
        .conversations(&crate::store::ConversationQuery {
            open: Some(true),
            sender_id: Some(sender_id.to_string()),
            contact: Some(contact.to_string()),
            limit: 1,
            ..Default::default()
        })
        .await?;
    let conversation_id = open.first().map(|c| c.id.clone());
    store
        .pause_auto_reply(&AutoReplyPause {
            sender_id: sender_id.into(),
            contact: contact.into(),
            conversation_id: conversation_id.clone(),
            at: now_ms(),
            reason: reason.into(),
        })
        .await?;
    Ok(conversation_id)
}
