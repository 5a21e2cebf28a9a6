//! Keeping the store itself healthy: migrations, housekeeping, retention, write health.

use async_trait::async_trait;

use super::StoreError;
use crate::time::Millis;

/// A kind of row with its own retention limit (see [`crate::retention`]). [`RowKind::ALL`] is the order the worker prunes
/// in: rows that point at others go first, so the rows they point at become free to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKind {
    /// Sends in a final state (accepted and later, or failed), with their attempts and statuses.
    Messages,
    /// Attempts of sends in a final state.
    Attempts,
    /// Status webhooks applied to sends (kept while their send is not final).
    Statuses,
    /// Messages users sent to a business number.
    InboundMessages,
    /// Processed inbound events (never an unprocessed one).
    InboundEvents,
    /// Webhook request bodies, byte for byte (kept while an event read from them is kept).
    RawPayloads,
    /// Calls and the decision taken (never one still ringing).
    Calls,
    /// Per-person state: last message, last reply, referral.
    Contacts,
    /// What Meta announced about numbers (quality, tier, throughput).
    NumberEvents,
    /// Outbound webhook deliveries that are over (delivered or given up), with their attempts.
    WebhookDeliveries,
    /// Published events (kept while a webhook delivery points at one).
    Events,
    /// Ended conversations, with their transcripts (never an open one).
    Conversations,
    /// Flow runs that ended (done, failed, cancelled), with their timelines.
    FlowRuns,
    /// Assistants' memory of a customer (the thread and its turns), counted from the last reply.
    AssistantMemory,
}

impl RowKind {
    /// Deliveries come before events, so an event whose deliveries go in a run goes too.
    pub const ALL: [RowKind; 14] = [
        RowKind::Messages,
        RowKind::Attempts,
        RowKind::Statuses,
        RowKind::InboundMessages,
        RowKind::InboundEvents,
        RowKind::RawPayloads,
        RowKind::Calls,
        RowKind::Contacts,
        RowKind::NumberEvents,
        RowKind::WebhookDeliveries,
        RowKind::Events,
        RowKind::Conversations,
        RowKind::FlowRuns,
        RowKind::AssistantMemory,
    ];

    /// The name used in metrics, logs and the configuration (`<name>_days`).
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Messages => "messages",
            RowKind::Attempts => "attempts",
            RowKind::Statuses => "statuses",
            RowKind::InboundMessages => "inbound_messages",
            RowKind::InboundEvents => "inbound_events",
            RowKind::RawPayloads => "raw_payloads",
            RowKind::Calls => "calls",
            RowKind::Contacts => "contacts",
            RowKind::NumberEvents => "number_events",
            RowKind::WebhookDeliveries => "webhook_deliveries",
            RowKind::Events => "events",
            RowKind::Conversations => "conversations",
            RowKind::FlowRuns => "flow_runs",
            RowKind::AssistantMemory => "assistant_memory",
        }
    }
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

/// Keeping the store itself healthy.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Applies embedded migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn maintain(&self) -> Result<(), StoreError>;
    /// Retention: deletes at most `limit` rows of `kind` older than `before` in one
    /// transaction, never a row still needed (see [`crate::retention`]); returns how many.
    async fn prune(&self, kind: RowKind, before: Millis, limit: u32) -> Result<u64, StoreError>;
    /// Why writes are failing, if the last write failed and none has succeeded since.
    fn write_failure(&self) -> Option<String>;
    /// Test hook: injects (or, with `None`, clears) a fault on the write connection.
    #[doc(hidden)]
    async fn inject_write_fault(&self, fault: Option<WriteFault>) -> Result<(), StoreError>;
}
