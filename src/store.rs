//! The store: every durable fact goes through the [`Store`] trait.
//!
//! Methods are named for what they mean in the domain. Each one that changes state is one
//! transaction, so a crash between two calls leaves a consistent state that the caller can
//! resume from (events stay unprocessed, sends stay queued or become uncertain).
//! [`open`] chooses the implementation from the URL scheme; only SQLite exists today, and the
//! trait is shaped so a PostgreSQL implementation can join it.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::inbound::{InboundEvent, InboundMessage, IngestRequest, StatusUpdate};
use crate::time::Millis;

mod policy_index;
pub mod postgres;
pub mod sqlite;

/// A storage failure. Callers retry later; nothing here is the user's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("unsupported store url '{0}': use sqlite://path/to/ringback.db")]
    UnsupportedUrl(String),
    /// One stored event cannot be read: retrying will not help, so the processor sets it aside.
    #[error("stored event {id} is unreadable: {reason}")]
    CorruptEvent { id: i64, reason: String },
}

/// Opens the store named by `url` and applies migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        let store = sqlite::SqliteStore::open(url).await?;
        store.migrate().await?;
        store.load_policy_index().await?;
        Ok(Arc::new(store))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

/// How many events of one request were new, and how many were redeliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestCounts {
    pub inserted: u32,
    pub duplicates: u32,
}

/// A committed inbound event waiting for (or done with) processing.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: i64,
    pub event: InboundEvent,
    pub received_at: Millis,
}

/// An inbound event set aside because it could not be read or processed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadEvent {
    pub id: i64,
    pub source: String,
    pub kind: String,
    pub received_at: Millis,
    pub dead_at: Millis,
    pub reason: String,
}

/// A fault the store injects into its own write connection, for tests of failure and recovery.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// Writes that need a new page fail with SQLITE_FULL, as on a full disk.
    Full,
    /// Every write fails (the connection becomes query-only).
    ReadOnly,
}

/// What we know about one WhatsApp user of one business number.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Contact {
    pub sender_id: String,
    pub wa_id: String,
    pub name: Option<String>,
    /// Their last message to us: the 24-hour window runs from here.
    pub last_inbound_at: Option<Millis>,
    /// Our last missed-call reply to them: the cooldown runs from here.
    pub last_reply_at: Option<Millis>,
    pub last_reply_message_id: Option<String>,
}

/// A call and what Ringback decided about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub source: String,
    pub provider_call_id: String,
    pub sender_id: Option<String>,
    pub caller_raw: String,
    pub caller_e164: Option<String>,
    pub callee_raw: Option<String>,
    pub outcome: String,
    pub ring_seconds: Option<u32>,
    pub missed: bool,
    /// `pending` (still ringing), `replied`, `collapsed`, `skipped`, `answered`.
    pub decision: String,
    pub reason: String,
    pub message_id: Option<String>,
    pub occurred_at: Millis,
}

/// A message to send, as the outbox stores it before any attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewMessage {
    pub id: String,
    pub sender_id: String,
    pub to: String,
    /// `template`, `text` or `interactive`.
    pub kind: String,
    /// The exact Cloud API request body.
    pub body: serde_json::Value,
    pub idempotency_key: Option<String>,
    /// Why this message, in words (the reply choice).
    pub reason: String,
    pub created_at: Millis,
}

/// Result of [`Store::enqueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    New(String),
    /// The idempotency key was already used: the existing message id.
    Existing(String),
}

/// A send claimed by an outbox lane: attempt `attempt_no` is recorded as claimed (and as
/// started by [`Store::start_attempts`] just before its request).
#[derive(Debug, Clone)]
pub struct ClaimedSend {
    pub message_id: String,
    pub sender_id: String,
    pub to: String,
    pub body: String,
    pub attempt_no: u32,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Accepted {
        wamid: String,
    },
    /// Not attempted after all: pacing sends it back to the queue until `at`.
    Deferred {
        at: Millis,
        reason: String,
    },
    Retry {
        at: Millis,
        code: Option<i64>,
        detail: String,
    },
    Failed {
        code: Option<i64>,
        detail: String,
    },
}

/// What processing one inbound event changes; every variant also marks its event processed.
// Effects live briefly in one batch; boxing the large variants would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Effect {
    /// A user's message: stored, and it opens their 24-hour window.
    InboundMessage {
        event_id: i64,
        message: InboundMessage,
        /// What processing decided about the message, when more than "recorded" (e.g. a
        /// call-permission reply that answers no request): kept as the event's note.
        note: Option<String>,
    },
    /// A status webhook applied to the message it names.
    Status { event_id: i64, status: StatusUpdate },
    /// A call decision and, when replying, the queued reply (which starts the caller's cooldown).
    Call {
        event_id: i64,
        call: CallRecord,
        reply: Option<NewMessage>,
    },
    /// An opt-in or opt-out for the ledger.
    Consent {
        event_id: i64,
        record: crate::consent::Record,
    },
    /// A message to queue (an opt-out confirmation), idempotent by its key.
    Enqueue { event_id: i64, message: NewMessage },
    /// A template's new status (`message_template_status_update`).
    TemplateStatus {
        event_id: i64,
        name: String,
        language: String,
        status: String,
    },
    /// Something Meta announced about a number (throughput, quality, tier, status).
    NumberUpdate { event_id: i64, update: NumberUpdate },
    /// Nothing to change but a note (kept or flagged events, duplicates).
    Finish { event_id: i64, note: String },
}

/// The facts a send is checked against (see [`Store::policy_facts`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyFacts {
    pub last_inbound: Option<Millis>,
    pub consent: crate::consent::State,
    pub referral_at: Option<Millis>,
    pub free_until: Option<Millis>,
}

/// An API key's public description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// A change to a number's state; `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NumberUpdate {
    /// `None` when no configured number matches: only the event is recorded.
    pub phone_number_id: Option<String>,
    pub field: String,
    pub event: Option<String>,
    pub throughput: Option<u32>,
    pub quality_rating: Option<String>,
    pub messaging_tier: Option<String>,
    pub status: Option<String>,
    pub detail: serde_json::Value,
}

/// A number's current state as Meta last described it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NumberState {
    pub phone_number_id: String,
    pub throughput: Option<u32>,
    pub quality_rating: Option<String>,
    pub messaging_tier: Option<String>,
    pub status: Option<String>,
    pub updated_at: Millis,
}

/// A row of the message list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageRow {
    pub id: String,
    pub sender_id: String,
    pub to: String,
    pub kind: String,
    pub state: String,
    pub wamid: Option<String>,
    pub reason: String,
    pub attempts: u32,
    pub error_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One attempt of a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRow {
    pub attempt_no: u32,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    pub outcome: String,
    pub error_code: Option<i64>,
    pub detail: Option<String>,
}

/// One status webhook applied to a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusRow {
    pub status: String,
    pub at: Millis,
    pub error_code: Option<i64>,
    pub detail: Option<String>,
}

/// A message with its history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub message: MessageRow,
    pub body: serde_json::Value,
    pub attempts: Vec<AttemptRow>,
    pub statuses: Vec<StatusRow>,
}

/// Every durable operation Ringback performs.
#[async_trait]
pub trait Store: Send + Sync {
    /// Applies embedded migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Commits accepted webhook requests in one transaction; redeliveries are counted, not stored twice.
    async fn ingest(&self, batch: &[IngestRequest]) -> Result<Vec<IngestCounts>, StoreError>;
    /// Unprocessed events in arrival order, dead-lettered ones left out. When the first of
    /// them cannot be read this fails with [`StoreError::CorruptEvent`]; an unreadable event
    /// later in the batch ends the batch just before it.
    async fn pending_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;
    /// Sets an unprocessed event aside with the reason; it stays stored for inspection.
    async fn dead_letter(&self, event_id: i64, reason: &str, at: Millis) -> Result<(), StoreError>;
    /// Dead-lettered events, oldest first.
    async fn dead_events(&self) -> Result<Vec<DeadEvent>, StoreError>;
    /// Puts one dead-lettered event (or, with `None`, all of them) back to be processed;
    /// returns how many.
    async fn retry_dead(&self, event_id: Option<i64>) -> Result<u64, StoreError>;
    /// Why writes are failing, if the last write failed and none has succeeded since.
    fn write_failure(&self) -> Option<String>;
    /// Test hook: injects (or, with `None`, clears) a fault on the write connection.
    #[doc(hidden)]
    async fn inject_write_fault(&self, fault: Option<WriteFault>) -> Result<(), StoreError>;
    /// The contact for (business number, WhatsApp id), if we have one.
    async fn contact(&self, sender_id: &str, wa_id: &str) -> Result<Option<Contact>, StoreError>;
    /// The call already recorded under (source, provider call id), if any.
    async fn call(
        &self,
        source: &str,
        provider_call_id: &str,
    ) -> Result<Option<CallRecord>, StoreError>;
    /// Applies the effects of processing a batch of events, each marking its event processed,
    /// in one transaction: a crash leaves the whole batch pending, to be processed again.
    async fn apply(&self, effects: &[Effect]) -> Result<(), StoreError>;
    /// Recent calls, newest first.
    async fn list_calls(&self, limit: u32) -> Result<Vec<CallRecord>, StoreError>;

    /// The message that holds an idempotency key, if any.
    async fn message_by_idempotency_key(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Adds a message to the outbox, or returns the message that already holds its idempotency key.
    async fn enqueue(&self, m: &NewMessage) -> Result<Enqueued, StoreError>;
    /// Claims due sends of one number and records an attempt for each before it is made.
    async fn claim_sends(
        &self,
        sender_id: &str,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<ClaimedSend>, StoreError>;
    /// Records how attempts ended and moves their messages on, in one transaction.
    async fn record_attempts(
        &self,
        results: &[(ClaimedSend, AttemptOutcome)],
        now: Millis,
    ) -> Result<(), StoreError>;
    /// Records that the requests of these claimed sends are about to leave, before they are
    /// made: only a started attempt can have reached Meta, so only it becomes `uncertain` after
    /// a crash (claimed-only rows go straight back to the queue).
    async fn start_attempts(&self, sends: &[ClaimedSend], now: Millis) -> Result<(), StoreError>;
    /// When the next queued send of a number is due, if any.
    async fn next_due(&self, sender_id: &str) -> Result<Option<Millis>, StoreError>;
    /// On start: sends whose request a previous process started become `uncertain`; sends it
    /// had only claimed go back to the queue, due at once.
    async fn mark_in_flight_uncertain(&self, now: Millis) -> Result<u64, StoreError>;
    /// Uncertain sends with no status webhook since `before` go back to the queue.
    async fn requeue_uncertain(&self, before: Millis, now: Millis) -> Result<u64, StoreError>;
    /// Replaces the stored templates of one WABA with a fresh list from the Cloud API.
    async fn sync_templates(
        &self,
        waba_id: &str,
        templates: &[crate::cloud_api::template::Template],
    ) -> Result<(), StoreError>;
    /// Every stored template.
    async fn templates(&self) -> Result<Vec<crate::cloud_api::template::Template>, StoreError>;
    /// Appends to the consent ledger and updates the person's current state.
    async fn record_consent(&self, record: &crate::consent::Record) -> Result<(), StoreError>;
    /// What a send to this person is checked against, from memory: when they last wrote (only
    /// if within the last 24 hours), their consent state, and any click-to-WhatsApp referral.
    fn policy_facts(&self, sender_id: &str, subject: &str) -> PolicyFacts;
    /// Our reply to a referral opened the free entry point window until `until`.
    async fn open_free_entry_point(
        &self,
        sender_id: &str,
        subject: &str,
        until: Millis,
    ) -> Result<(), StoreError>;
    /// Ledger records, oldest first, for one person or (with `None`) everyone.
    async fn consent_records(
        &self,
        sender_id: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<crate::consent::Record>, StoreError>;
    /// Unique recipients of templates sent since `since` by one number or (with `None`) by all
    /// of them — the portfolio's messaging-limit use, since limits are per portfolio.
    async fn template_reach(
        &self,
        sender_id: Option<&str>,
        since: Millis,
    ) -> Result<usize, StoreError>;
    /// Stores a new API key (its hash only).
    async fn create_api_key(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError>;
    /// Every API key, newest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key; `false` if there is no such active key.
    async fn revoke_api_key(&self, id: &str, now: Millis) -> Result<bool, StoreError>;
    /// Is `hash` the hash of an active key? `None` when no key was ever created.
    async fn api_key_valid(&self, hash: &str) -> Result<Option<bool>, StoreError>;
    /// What Meta announced about a number (quality, throughput, tier, restrictions), newest first.
    async fn number_events(
        &self,
        phone_number_id: &str,
        limit: u32,
    ) -> Result<Vec<serde_json::Value>, StoreError>;
    /// Every number Meta has told us about.
    async fn numbers(&self) -> Result<Vec<NumberState>, StoreError>;
    /// Periodic housekeeping off the hot path (SQLite: WAL checkpoints).
    /// A pair's call permission (WhatsApp Business Calling), if any was ever recorded.
    async fn call_permission(
        &self,
        sender_id: &str,
        user_id: &str,
    ) -> Result<Option<crate::calling::PermissionRecord>, StoreError>;
    /// Saves a pair's permission and appends its changes, in one transaction.
    async fn save_call_permission(
        &self,
        sender_id: &str,
        user_id: &str,
        record: &crate::calling::PermissionRecord,
        changes: &[crate::calling::permission::Change],
        at: Millis,
    ) -> Result<(), StoreError>;
    /// The `call.permission_changed` events, oldest first, filtered by number and user.
    async fn call_permission_events(
        &self,
        sender_id: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<Vec<crate::calling::book::PermissionEvent>, StoreError>;
    /// Inserts or updates a business-initiated call.
    async fn save_business_call(
        &self,
        call: &crate::calling::book::BusinessCall,
    ) -> Result<(), StoreError>;
    async fn business_call(
        &self,
        id: &str,
    ) -> Result<Option<crate::calling::book::BusinessCall>, StoreError>;
    /// Records Meta's call id on a placed call (keeps one a webhook already recorded).
    async fn set_business_call_wacid(&self, id: &str, wacid: &str) -> Result<(), StoreError>;
    async fn business_call_by_wacid(
        &self,
        wacid: &str,
    ) -> Result<Option<crate::calling::book::BusinessCall>, StoreError>;
    async fn business_calls(
        &self,
        limit: u32,
    ) -> Result<Vec<crate::calling::book::BusinessCall>, StoreError>;
    async fn maintain(&self) -> Result<(), StoreError>;
    /// Messages not yet accepted by the Cloud API (queued, sending, uncertain).
    async fn outbox_depth(&self) -> Result<i64, StoreError>;

    /// Recent messages, newest first.
    async fn list_messages(&self, limit: u32) -> Result<Vec<MessageRow>, StoreError>;
    /// One message with its attempts and statuses.
    async fn message(&self, id: &str) -> Result<Option<MessageDetail>, StoreError>;
    /// Up to `limit` ledger records with an id above `after_id`, in id (insertion) order, with
    /// their ids: one page of an export, for one person or (with `None`) everyone.
    async fn consent_records_after(
        &self,
        subject: Option<&str>,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(i64, crate::consent::Record)>, StoreError>;

    /// Retention: deletes at most `limit` rows of `kind` older than `before` in one
    /// transaction, never a row still needed (see [`crate::retention`]); returns how many.
    async fn prune(
        &self,
        kind: crate::retention::Kind,
        before: Millis,
        limit: u32,
    ) -> Result<u64, StoreError>;
}
