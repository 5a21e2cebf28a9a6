//! Inbound events: committed before acknowledgement, processed in order, set aside when unreadable; and the calls decided from them.

use async_trait::async_trait;
use serde::Serialize;

use super::{NewMessage, NumberUpdate, StoreError};
use crate::inbound::{InboundEvent, InboundMessage, IngestRequest, StatusUpdate};
use crate::time::Millis;

/// How many events of one request were new, and how many were redeliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestCounts {
    pub inserted: u32,
    pub duplicates: u32,
}

/// Sends a lane asks to claim in the processor's transaction (see
/// [`EventStore::apply_and_claim`]): at most `limit` due rows of `sender_id`, leased to `node`,
/// the first `start` of them started.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub sender_id: String,
    pub limit: u32,
    pub start: u32,
    pub node: String,
    pub lease_until: Millis,
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
    /// A customer's message carried a click-to-chat link's reference, for the first time for
    /// this customer: the link counts one more (the message itself is its own effect).
    LinkAttributed {
        event_id: i64,
        link: crate::links::Link,
        /// The ledger key of the customer ([`crate::consent::subject`]).
        contact: String,
        at: Millis,
    },
    /// A status webhook applied to the message it names.
    Status { event_id: i64, status: StatusUpdate },
    /// A call decision and, when replying, the queued reply (which starts the caller's cooldown).
    Call {
        event_id: i64,
        call: CallRecord,
        reply: Option<NewMessage>,
        /// How long the call was talked, when the source says (not stored with the call; it
        /// goes out with `call.completed`).
        talk_seconds: Option<u32>,
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

/// Inbound events.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Commits accepted webhook requests in one transaction; redeliveries are counted, not stored twice.
    async fn ingest(&self, batch: &[IngestRequest]) -> Result<Vec<IngestCounts>, StoreError>;
    /// How many ingest transactions may run at once (the ingestor's writer tasks): 1 where
    /// writes are serialised anyway (SQLite).
    fn ingest_writers(&self) -> usize {
        1
    }
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
    /// The decisions recorded for the calls among (source, provider call id) `keys`, in one
    /// read, as (source, provider call id, decision).
    async fn call_decisions(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<(String, String, String)>, StoreError>;
    /// The call already recorded under (source, provider call id), if any.
    async fn call(
        &self,
        source: &str,
        provider_call_id: &str,
    ) -> Result<Option<CallRecord>, StoreError>;
    /// Applies the effects of processing a batch of events, each marking its event processed,
    /// in one transaction: a crash leaves the whole batch pending, to be processed again.
    /// With a `fence`, the batch commits only while the processor lease is still held.
    async fn apply(
        &self,
        effects: &[Effect],
        fence: Option<&super::Fence>,
    ) -> Result<(), StoreError> {
        self.apply_and_claim(effects.to_vec(), fence, &[])
            .await
            .map(|_| ())
    }
    /// [`apply`](Self::apply), and in the same transaction claims due sends for the lanes
    /// that asked (as [`OutboxStore::claim_sends`](super::OutboxStore::claim_sends) would,
    /// after the batch's own replies are queued) and records the start of the first
    /// `start` of each lane's (as [`OutboxStore::start_attempts`](super::OutboxStore::start_attempts)
    /// would). A reply then reaches its lane ready to send with the commit that decided it,
    /// instead of two transactions later. Each claimed send comes with whether it was started.
    /// The batch is taken by value: the SQLite writer thread needs it, and a copy of 256
    /// effects (request bodies included) was 1 % of a reply's CPU.
    async fn apply_and_claim(
        &self,
        effects: Vec<Effect>,
        fence: Option<&super::Fence>,
        claims: &[ClaimRequest],
    ) -> Result<Vec<(super::ClaimedSend, bool)>, StoreError>;
    /// Recent calls, newest first.
    async fn list_calls(&self, limit: u32) -> Result<Vec<CallRecord>, StoreError>;
}
