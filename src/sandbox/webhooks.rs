//! Webhook delivery from the sandbox to the receiver (Ringback or any app under test).
//!
//! Like Meta: signed with the app secret (`X-Hub-Signature-256` over the exact bytes sent),
//! batched (several statuses and messages in one POST, grouped per number), and retried with
//! backoff when the receiver does not answer 200, so a receiver that was down gets its
//! webhooks when it comes back. Items wait in a time-ordered queue until they are due.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::SandboxSettings;
use crate::shutdown::Shutdown;
use crate::time::{Millis, now_ms};

/// One thing to tell the receiver.
#[derive(Debug, Clone)]
pub enum Item {
    /// An entry of `value.statuses`.
    Status(Value),
    /// An entry of `value.messages` with its `value.contacts` entry.
    Message { contact: Value, message: Value },
}

#[derive(Debug, Clone)]
struct Pending {
    phone_number_id: String,
    display_number: String,
    waba_id: String,
    item: Item,
    attempts: usize,
}

/// Counters shown at `GET /sandbox/webhooks`.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub posts_ok: u64,
    pub posts_failed: u64,
    pub items_delivered: u64,
    pub items_dropped: u64,
    pub pending: u64,
}

#[derive(Default)]
struct Counters {
    posts_ok: AtomicU64,
    posts_failed: AtomicU64,
    items_delivered: AtomicU64,
    items_dropped: AtomicU64,
}

/// Handle to the delivery queue; cheap to clone.
#[derive(Clone)]
pub struct Delivery {
    queue: Arc<Mutex<BTreeMap<(Millis, u64), Pending>>>,
    seq: Arc<AtomicU64>,
    wake: Arc<Notify>,
    counters: Arc<Counters>,
}

impl Delivery {
    pub(super) fn start(settings: Arc<SandboxSettings>, shutdown: Shutdown) -> Self {
        let d = Self {
            queue: Arc::default(),
            seq: Arc::default(),
            wake: Arc::default(),
            counters: Arc::default(),
        };
        tokio::spawn(d.clone().run(settings, shutdown));
        d
    }

    /// Queues `item` for delivery `delay` from now.
    pub fn push(&self, number: &super::SandboxNumber, item: Item, delay: Duration) {
        let due = now_ms() + delay.as_millis() as Millis;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let pending = Pending {
            phone_number_id: number.phone_number_id.clone(),
            display_number: number.display_number.clone(),
            waba_id: number.waba_id.clone(),
            item,
            attempts: 0,
        };
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((due, seq), pending);
        self.wake.notify_one();
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            posts_ok: c.posts_ok.load(Ordering::Relaxed),
            posts_failed: c.posts_failed.load(Ordering::Relaxed),
            items_delivered: c.items_delivered.load(Ordering::Relaxed),
            items_dropped: c.items_dropped.load(Ordering::Relaxed),
            pending: self.queue.lock().unwrap_or_else(|p| p.into_inner()).len() as u64,
        }
    }

    fn take_due(&self, max: usize) -> (Vec<Pending>, Option<Millis>) {
        let now = now_ms();
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        while out.len() < max {
            match q.first_key_value() {
                Some((&(due, _), _)) if due <= now => out.push(q.pop_first().expect("peeked").1),
                _ => break,
            }
        }
        let next = q.first_key_value().map(|(&(due, _), _)| due);
        (out, next)
    }

    async fn run(self, settings: Arc<SandboxSettings>, mut shutdown: Shutdown) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("a client with only a timeout set always builds");
        loop {
            let (batch, next) = self.take_due(settings.webhook_batch.max(1));
            if batch.is_empty() {
                let wait = next
                    .map(|d| Duration::from_millis((d - now_ms()).clamp(1, 1000) as u64))
                    .unwrap_or(Duration::from_secs(1));
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait() => return,
                }
                continue;
            }
            let Some(url) = settings.webhook_url.as_deref() else {
                self.counters
                    .items_dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                continue;
            };
            let body = envelope(&batch);
            let signature = crate::signature::sign_sha256_hex(
                settings.app_secret.expose_secret().as_bytes(),
                &body,
            );
            let ok = http
                .post(url)
                .header("Content-Type", "application/json")
                .header("X-Hub-Signature-256", signature)
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ok {
                self.counters.posts_ok.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .items_delivered
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            } else {
                self.counters.posts_failed.fetch_add(1, Ordering::Relaxed);
                self.retry(batch, &settings.webhook_retry_delays);
            }
        }
    }

    fn retry(&self, batch: Vec<Pending>, delays: &[Duration]) {
        let now = now_ms();
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        for mut p in batch {
            match delays.get(p.attempts) {
                Some(d) => {
                    p.attempts += 1;
                    let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                    q.insert((now + d.as_millis() as Millis, seq), p);
                }
                None => {
                    self.counters.items_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The `whatsapp_business_account` envelope: one entry per WABA, one `messages` change per
/// number, statuses and messages in arrival order.
fn envelope(batch: &[Pending]) -> Vec<u8> {
    let mut entries: Vec<(
        String,
        Vec<(String, String, Vec<Value>, Vec<Value>, Vec<Value>)>,
    )> = Vec::new();
    for p in batch {
        let entry = match entries.iter_mut().position(|(w, _)| *w == p.waba_id) {
            Some(i) => &mut entries[i].1,
            None => {
                entries.push((p.waba_id.clone(), Vec::new()));
                &mut entries.last_mut().expect("just pushed").1
            }
        };
        let change = match entry
            .iter_mut()
            .position(|(id, ..)| *id == p.phone_number_id)
        {
            Some(i) => &mut entry[i],
            None => {
                entry.push((
                    p.phone_number_id.clone(),
                    p.display_number.clone(),
                    vec![],
                    vec![],
                    vec![],
                ));
                entry.last_mut().expect("just pushed")
            }
        };
        match &p.item {
            Item::Status(s) => change.2.push(s.clone()),
            Item::Message { contact, message } => {
                change.3.push(contact.clone());
                change.4.push(message.clone());
            }
        }
    }
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|(waba, changes)| {
            let changes: Vec<Value> = changes
                .into_iter()
                .map(|(pnid, display, statuses, contacts, messages)| {
                    let mut value = json!({
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": display, "phone_number_id": pnid},
                    });
                    if !contacts.is_empty() {
                        value["contacts"] = Value::Array(contacts);
                        value["messages"] = Value::Array(messages);
                    }
                    if !statuses.is_empty() {
                        value["statuses"] = Value::Array(statuses);
                    }
                    json!({"field": "messages", "value": value})
                })
                .collect();
            json!({"id": waba, "changes": changes})
        })
        .collect();
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": entry}))
        .expect("JSON values serialise")
}
