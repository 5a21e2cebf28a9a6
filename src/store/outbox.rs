//! The outbox: every outgoing message is a row before it is a request; claims, attempts and their outcomes.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;
use crate::time::Millis;

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

/// The reason an uncertain send that had its last attempt fails with.
pub const UNCERTAIN_GIVE_UP: &str = "no answer and no status webhook after the last allowed attempt; given up (a status webhook that still comes is recorded with the message)";

/// What [`OutboxStore::requeue_uncertain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UncertainResolved {
    pub requeued: u64,
    pub failed: u64,
}

/// Result of [`Store::enqueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    New(String),
    /// The idempotency key was already used: the existing message id.
    Existing(String),
}

/// A send claimed by an outbox lane: attempt `attempt_no` is recorded as claimed (and as
/// started by [`OutboxStore::start_attempts`] just before its request).
#[derive(Debug, Clone)]
pub struct ClaimedSend {
    pub message_id: String,
    pub sender_id: String,
    pub to: String,
    pub body: String,
    pub attempt_no: u32,
    /// The node that claimed it: its outcome is recorded only while that node still holds it.
    pub claimed_by: String,
}

pub use crate::message::AttemptOutcome;

/// One number's sending lane as `ringback cluster` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneRow {
    pub sender_id: String,
    pub queued: i64,
    pub sending: i64,
    pub uncertain: i64,
    /// The nodes holding this number's claimed sends right now.
    pub claimed_by: Vec<String>,
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

/// The outbox.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// The message that holds an idempotency key, if any.
    async fn message_by_idempotency_key(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Adds a message to the outbox, or returns the message that already holds its idempotency key.
    async fn enqueue(&self, m: &NewMessage) -> Result<Enqueued, StoreError>;
    /// Claims due sends of one number and records an attempt for each before it is made.
    /// Several nodes never claim the same row: each claimed row is leased to `node` until
    /// `lease_until` (PostgreSQL claims with `FOR UPDATE SKIP LOCKED`).
    async fn claim_sends(
        &self,
        sender_id: &str,
        now: Millis,
        limit: u32,
        node: &str,
        lease_until: Millis,
    ) -> Result<Vec<ClaimedSend>, StoreError>;
    /// Records that the requests of these claimed sends are about to leave, before they are
    /// made: only a started attempt can have reached Meta, so only it becomes `uncertain` after
    /// a crash (claimed-only rows go straight back to the queue). Fenced: one flag per send,
    /// `false` when the send is no longer this node's (its lease lapsed and another node took
    /// it over) — that request must not be made.
    async fn start_attempts(
        &self,
        sends: &[ClaimedSend],
        now: Millis,
    ) -> Result<Vec<bool>, StoreError>;
    /// Records how attempts ended and moves their messages on, in one transaction.
    async fn record_attempts(
        &self,
        results: &[(ClaimedSend, AttemptOutcome)],
        now: Millis,
    ) -> Result<(), StoreError>;
    /// When the next queued send of a number is due, if any.
    async fn next_due(&self, sender_id: &str) -> Result<Option<Millis>, StoreError>;
    /// Sends left in flight by `restarting` (a node starting again, or taking the lead) or by
    /// any node whose lease on them lapsed before `now` (a node that died): those whose request
    /// had started become `uncertain`; those only claimed go back to the queue, due at once.
    /// The same rule serves a restart and a takeover.
    async fn mark_in_flight_uncertain(
        &self,
        restarting: Option<&str>,
        now: Millis,
    ) -> Result<u64, StoreError>;
    /// Uncertain sends with no status webhook since `before` go back to the queue, except
    /// those that have had `max_attempts` attempts: they fail (no answer and no status after
    /// every attempt), so a Cloud API that keeps timing out cannot make a send loop forever.
    async fn requeue_uncertain(
        &self,
        before: Millis,
        now: Millis,
        max_attempts: u32,
    ) -> Result<UncertainResolved, StoreError>;
    /// Per number: sends queued, being sent (and by which nodes), uncertain.
    async fn lanes(&self) -> Result<Vec<LaneRow>, StoreError>;
    /// Messages not yet accepted by the Cloud API (queued, sending, uncertain).
    async fn outbox_depth(&self) -> Result<i64, StoreError>;
    /// Recent messages, newest first.
    async fn list_messages(&self, limit: u32) -> Result<Vec<MessageRow>, StoreError>;
    /// One message with its attempts and statuses.
    async fn message(&self, id: &str) -> Result<Option<MessageDetail>, StoreError>;
    /// Unique recipients of templates sent since `since` by one number or (with `None`) by all
    /// of them — the portfolio's messaging-limit use, since limits are per portfolio.
    async fn template_reach(
        &self,
        sender_id: Option<&str>,
        since: Millis,
    ) -> Result<usize, StoreError>;
}
