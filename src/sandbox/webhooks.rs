//! Webhook delivery from the sandbox to the receiver (Ringback or any app under test).
//!
//! Like Meta: signed with the app secret (`X-Hub-Signature-256` over the exact bytes sent),
//! batched (several statuses and messages in one POST, grouped per WABA and number), retried
//! with backoff when the receiver does not answer 200 in time, so a receiver that was down gets
//! its webhooks when it comes back. Items wait in a time-ordered queue until they are due.
//! Fault injection reproduces what Meta does to receivers in the wild: duplicates, reordering,
//! delays and timeouts (a slow 200 counts as a failure and is delivered again).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{SandboxNumber, SandboxSettings};
use crate::shutdown::Shutdown;
use crate::time::{Millis, now_ms};

/// One thing to tell the receiver.
#[derive(Debug, Clone)]
pub enum Item {
    /// An entry of `value.statuses` with its recipient's `value.contacts` entry (field `messages`).
    Status { contact: Value, status: Value },
    /// An entry of `value.messages` with its `value.contacts` entry (field `messages`).
    Message { contact: Value, message: Value },
    /// An entry of `value.calls` with its contact (field `calls`).
    Call { contact: Value, call: Value },
    /// An entry of `value.statuses` of field `calls`: a business-initiated call's progress.
    CallStatus { status: Value },
    /// An entry of `value.user_preferences` with its contact (field `user_preferences`).
    Preference { contact: Value, preference: Value },
    /// A whole management change (`message_template_status_update`, `account_update`, …).
    Change { field: String, value: Value },
}

#[derive(Debug, Clone)]
struct Pending {
    waba_id: String,
    /// (phone_number_id, display number) for number-scoped items.
    number: Option<(String, String)>,
    item: Item,
    attempts: usize,
}

/// Faults applied to deliveries, set with `POST /sandbox/webhooks/faults`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFaults {
    /// Probability (0–1) that a delivered batch is delivered a second time.
    #[serde(default)]
    pub duplicate_rate: f64,
    /// Shuffle the items of each batch (so `delivered` can precede `sent`).
    #[serde(default)]
    pub reorder: bool,
    /// Extra delay added to every item, in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
    /// The receiver must answer within this many milliseconds or the POST counts as failed and
    /// is retried (Meta's is about 20 s). 0 = the default 20 s.
    #[serde(default)]
    pub timeout_ms: u64,
}

/// Counters shown at `GET /sandbox/webhooks`.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub posts_ok: u64,
    pub posts_failed: u64,
    pub items_delivered: u64,
    pub items_dropped: u64,
    pub duplicates_sent: u64,
    pub pending: u64,
    /// Pending items dropped, oldest first, to keep at most `keep` waiting (a receiver that
    /// stays down must not grow the sandbox without limit).
    pub pending_dropped: u64,
}

#[derive(Default)]
struct Counters {
    posts_ok: AtomicU64,
    posts_failed: AtomicU64,
    items_delivered: AtomicU64,
    items_dropped: AtomicU64,
    duplicates_sent: AtomicU64,
    pending_dropped: AtomicU64,
}

/// Handle to the delivery queue; cheap to clone.
#[derive(Clone)]
pub struct Delivery {
    queue: Arc<Mutex<BTreeMap<(Millis, u64), Pending>>>,
    seq: Arc<AtomicU64>,
    wake: Arc<Notify>,
    counters: Arc<Counters>,
    faults: Arc<Mutex<WebhookFaults>>,
    /// Most items waiting in `queue`; 0 = unbounded.
    keep: usize,
}

impl Delivery {
    pub(super) fn start(settings: Arc<SandboxSettings>, shutdown: Shutdown) -> Self {
        let d = Self {
            queue: Arc::default(),
            seq: Arc::default(),
            wake: Arc::default(),
            counters: Arc::default(),
            faults: Arc::default(),
            keep: settings.keep,
        };
        tokio::spawn(d.clone().run(settings, shutdown));
        d
    }

    fn enqueue(&self, pending: Pending, delay: Duration) {
        let extra = self
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .delay_ms;
        let due = now_ms() + delay.as_millis() as Millis + extra as Millis;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.insert((due, seq), pending);
        self.bound(&mut q);
        drop(q);
        self.wake.notify_one();
    }

    /// Drops the items due soonest (the oldest) beyond `keep`.
    fn bound(&self, q: &mut BTreeMap<(Millis, u64), Pending>) {
        if self.keep == 0 {
            return;
        }
        let mut n = 0u64;
        while q.len() > self.keep && q.pop_first().is_some() {
            n += 1;
        }
        if n > 0 {
            self.counters
                .pending_dropped
                .fetch_add(n, Ordering::Relaxed);
            metrics::counter!("ringback_sandbox_dropped_total", "kind" => "webhook").increment(n);
        }
    }

    /// Queues a number-scoped `item` for delivery `delay` from now.
    pub fn push(&self, number: &SandboxNumber, item: Item, delay: Duration) {
        let number_ids = Some((
            number.phone_number_id.clone(),
            number.display_number.clone(),
        ));
        self.enqueue(
            Pending {
                waba_id: number.waba_id.clone(),
                number: number_ids,
                item,
                attempts: 0,
            },
            delay,
        );
    }

    /// Queues a WABA-level change (`field` + `value`).
    pub fn push_change(&self, waba_id: &str, field: &str, value: Value, delay: Duration) {
        let item = Item::Change {
            field: field.into(),
            value,
        };
        self.enqueue(
            Pending {
                waba_id: waba_id.into(),
                number: None,
                item,
                attempts: 0,
            },
            delay,
        );
    }

    pub fn set_faults(&self, f: WebhookFaults) {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            posts_ok: c.posts_ok.load(Ordering::Relaxed),
            posts_failed: c.posts_failed.load(Ordering::Relaxed),
            items_delivered: c.items_delivered.load(Ordering::Relaxed),
            items_dropped: c.items_dropped.load(Ordering::Relaxed),
            duplicates_sent: c.duplicates_sent.load(Ordering::Relaxed),
            pending: self.queue.lock().unwrap_or_else(|p| p.into_inner()).len() as u64,
            pending_dropped: c.pending_dropped.load(Ordering::Relaxed),
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
        let http = reqwest::Client::new();
        loop {
            let (mut batch, next) = self.take_due(settings.webhook_batch.max(1));
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
            let faults = self
                .faults
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if faults.reorder {
                batch.shuffle(&mut rand::rng());
            }
            let body = envelope(&batch);
            let signature = crate::signature::sign_sha256_hex(
                settings.app_secret.expose_secret().as_bytes(),
                &body,
            );
            let timeout = Duration::from_millis(if faults.timeout_ms == 0 {
                20_000
            } else {
                faults.timeout_ms
            });
            let post = || {
                http.post(url)
                    .timeout(timeout)
                    .header("Content-Type", "application/json")
                    .header("X-Hub-Signature-256", &signature)
                    .body(body.clone())
                    .send()
            };
            let ok = post().await.is_ok_and(|r| r.status().as_u16() == 200);
            if ok {
                self.counters.posts_ok.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .items_delivered
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                if faults.duplicate_rate > 0.0
                    && rand::rng().random_bool(faults.duplicate_rate.clamp(0.0, 1.0))
                {
                    let _ = post().await;
                    self.counters
                        .duplicates_sent
                        .fetch_add(1, Ordering::Relaxed);
                }
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
        self.bound(&mut q);
    }
}

/// Number-scoped items of one (WABA, number, field), in arrival order.
#[derive(Default)]
struct NumberChange {
    statuses: Vec<Value>,
    contacts: Vec<Value>,
    messages: Vec<Value>,
    calls: Vec<Value>,
    preferences: Vec<Value>,
}

/// One WABA's part of a batch: its id, its management changes, and its number-scoped changes
/// keyed by (phone_number_id, display number, field).
type WabaChanges = (
    String,
    Vec<Value>,
    Vec<((String, String, &'static str), NumberChange)>,
);

/// The `whatsapp_business_account` envelope: one entry per WABA; one change per number and
/// kind (inbound messages, statuses, calls, preferences); management changes carry
/// `entry[].time` as Meta's do. The internal key `"messages "` keeps inbound messages apart
/// from statuses; it is trimmed to `messages` on the wire.
fn envelope(batch: &[Pending]) -> Vec<u8> {
    let mut wabas: Vec<WabaChanges> = Vec::new();
    for p in batch {
        let idx = match wabas.iter().position(|(w, ..)| *w == p.waba_id) {
            Some(i) => i,
            None => {
                wabas.push((p.waba_id.clone(), Vec::new(), Vec::new()));
                wabas.len() - 1
            }
        };
        let (_, management, numbers) = &mut wabas[idx];
        let field = match &p.item {
            Item::Change { field, value } => {
                management.push(json!({"field": field, "value": value}));
                continue;
            }
            Item::Call { .. } => "calls",
            // Call statuses travel in their own change, like message statuses.
            Item::CallStatus { .. } => "calls ",
            Item::Preference { .. } => "user_preferences",
            Item::Status { .. } => "messages",
            Item::Message { .. } => "messages ",
        };
        let (pnid, display) = p.number.clone().unwrap_or_default();
        let key = (pnid, display, field);
        let change = match numbers.iter().position(|(k, _)| *k == key) {
            Some(i) => &mut numbers[i].1,
            None => {
                numbers.push((key, NumberChange::default()));
                &mut numbers.last_mut().expect("just pushed").1
            }
        };
        match &p.item {
            Item::Status { contact, status } => {
                if !change.contacts.contains(contact) {
                    change.contacts.push(contact.clone());
                }
                change.statuses.push(status.clone());
            }
            Item::Message { contact, message } => {
                change.contacts.push(contact.clone());
                change.messages.push(message.clone());
            }
            Item::Call { contact, call } => {
                change.contacts.push(contact.clone());
                change.calls.push(call.clone());
            }
            Item::CallStatus { status } => change.statuses.push(status.clone()),
            Item::Preference {
                contact,
                preference,
            } => {
                change.contacts.push(contact.clone());
                change.preferences.push(preference.clone());
            }
            Item::Change { .. } => unreachable!("handled above"),
        }
    }
    let entry: Vec<Value> = wabas
        .into_iter()
        .map(|(waba, management, numbers)| {
            let mut changes: Vec<Value> = numbers
                .into_iter()
                .map(|((pnid, display, field), c)| {
                    let mut value = json!({
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": display, "phone_number_id": pnid},
                    });
                    let mut set = |k: &str, v: Vec<Value>| {
                        if !v.is_empty() {
                            value[k] = Value::Array(v);
                        }
                    };
                    set("contacts", c.contacts);
                    set("messages", c.messages);
                    set("calls", c.calls);
                    set("user_preferences", c.preferences);
                    set("statuses", c.statuses);
                    // Messages and statuses travel in separate changes, as Meta sends them.
                    json!({"field": field.trim_end(), "value": value})
                })
                .collect();
            let has_management = !management.is_empty();
            changes.extend(management);
            let mut e = json!({"id": waba, "changes": changes});
            if has_management {
                e["time"] = json!(now_ms() / 1000);
            }
            e
        })
        .collect();
    let body =
        serde_json::to_string(&json!({"object": "whatsapp_business_account", "entry": entry}))
            .expect("JSON values serialise");
    escape_non_ascii(&body).into_bytes()
}

/// Meta signs the payload as sent, with non-ASCII escaped as `\uXXXX` (lowercase hex, UTF-16
/// surrogate pairs). Receivers that re-serialise parsed JSON break the signature; sending the
/// escaped form lets tests catch that. Outside strings JSON is ASCII, so this is safe.
pub fn escape_non_ascii(json: &str) -> String {
    use std::fmt::Write;
    if json.is_ascii() {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{u:04x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_ascii_is_escaped_like_meta() {
        let s = super::escape_non_ascii(r#"{"name":"Zoë 👍"}"#);
        assert_eq!(s, r#"{"name":"Zo\u00eb \ud83d\udc4d"}"#);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["name"], "Zoë 👍");
    }
}
