//! Retention in PostgreSQL: one batch of old rows of one kind deleted per call.
//!
//! The same plans as `sqlite/retention.rs` (the same rows kept, chosen in the same order), as
//! one statement per kind: the batch is chosen with `FOR UPDATE SKIP LOCKED` in a subquery, so
//! a row another transaction is changing is left for a later batch, and the conditions are
//! re-checked on the row's latest version once it is locked (PostgreSQL's READ COMMITTED
//! re-evaluation). SQLite chooses on its read pool and re-checks in the write transaction;
//! here the choice and the delete are one statement, so no keys travel to the client.
//! Indexes for every query here are in `migrations/postgres/0200_retention.sql`.

use super::{PostgresStore, StoreError};
use crate::store::RowKind as Kind;
use crate::time::Millis;

/// States after which a send is never claimed, requeued or resent: its row, attempts and
/// statuses are history. Listed positively so a new in-flight state is kept by default.
const FINAL: &str = "('accepted', 'sent', 'delivered', 'read', 'played', 'failed')";

/// The statement that deletes one batch of `kind`: takes ($1 before, $2 limit) and its row
/// count is the batch's.
fn plan(kind: Kind) -> String {
    // `key` is the table's key, `order` what SQLite orders the batch by.
    let batch = |table: &str, key: &str, cond: &str, order: &str| {
        format!(
            "DELETE FROM {table} WHERE ({key}) IN (
                 SELECT {key} FROM {table} WHERE {cond} ORDER BY {order} LIMIT $2
                 FOR UPDATE SKIP LOCKED)"
        )
    };
    match kind {
        Kind::Messages => {
            // A send goes with its attempts and statuses, in one statement: the foreign key
            // from `attempts` is checked at its end, when the children are gone too.
            let cond = format!("created_at < $1 AND updated_at < $1 AND state IN {FINAL}");
            format!(
                "WITH chosen AS (
                     SELECT id FROM messages WHERE {cond} ORDER BY created_at LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 ),
                 gone_attempts AS (DELETE FROM attempts WHERE message_id IN (SELECT id FROM chosen)),
                 gone_statuses AS (DELETE FROM message_statuses WHERE message_id IN (SELECT id FROM chosen))
                 DELETE FROM messages WHERE id IN (SELECT id FROM chosen)"
            )
        }
        Kind::Attempts => batch(
            "attempts",
            "message_id, attempt_no",
            &format!(
                "started_at < $1 AND message_id IN (SELECT id FROM messages WHERE state IN {FINAL})"
            ),
            "started_at",
        ),
        // A status whose send is still open may be what settles it: kept.
        Kind::Statuses => batch(
            "message_statuses",
            "wamid, status",
            &format!(
                "at < $1 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = message_statuses.message_id AND m.state NOT IN {FINAL})"
            ),
            "at",
        ),
        Kind::InboundMessages => batch("inbound_messages", "wamid", "sent_at < $1", "sent_at"),
        // Unprocessed events are never touched; a stored user message points at its event.
        Kind::InboundEvents => batch(
            "inbound_events",
            "id",
            "processed_at IS NOT NULL AND received_at < $1 AND NOT EXISTS \
                (SELECT 1 FROM inbound_messages m WHERE m.event_id = inbound_events.id)",
            "received_at",
        ),
        Kind::RawPayloads => batch(
            "raw_payloads",
            "id",
            "received_at < $1 AND NOT EXISTS \
                (SELECT 1 FROM inbound_events e WHERE e.raw_id = raw_payloads.id)",
            "received_at",
        ),
        Kind::Calls => batch(
            "calls",
            "id",
            "occurred_at < $1 AND decision <> 'pending'",
            "occurred_at",
        ),
        Kind::Contacts => {
            // Spelled exactly as the contacts_last_activity index, so the index is used.
            let last = "GREATEST(coalesce(last_inbound_at, 0), coalesce(last_reply_at, 0), \
                coalesce(referral_at, 0), coalesce(free_until, 0))";
            batch(
                "contacts",
                "sender_id, wa_id",
                &format!("{last} < $1"),
                last,
            )
        }
        Kind::NumberEvents => batch("number_events", "id", "at < $1", "at"),
        // A pending delivery is still owed to its endpoint: kept. It goes with its attempts.
        Kind::WebhookDeliveries => "WITH chosen AS (
                 SELECT id FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < $1
                 ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED
             ),
             gone_attempts AS (DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM chosen))
             DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM chosen)"
            .to_string(),
        // An event a delivery points at can still be delivered, shown or replayed: kept.
        Kind::Events => batch(
            "events",
            "id",
            "at < $1 AND NOT EXISTS \
                (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = events.id)",
            "at",
        ),
        // A run that has not ended has a due time: kept; an ended one goes with its timeline.
        Kind::FlowRuns => "WITH chosen AS (
                 SELECT id FROM flow_runs WHERE due_at IS NULL AND updated_at < $1
                 ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED
             ),
             gone_steps AS (DELETE FROM flow_steps WHERE run_id IN (SELECT id FROM chosen))
             DELETE FROM flow_runs WHERE id IN (SELECT id FROM chosen)"
            .to_string(),
        // A customer's memory goes whole: the thread with its turns.
        Kind::AssistantMemory => "WITH chosen AS (
                 SELECT id FROM assistant_threads WHERE updated_at < $1
                 ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED
             ),
             gone_turns AS (DELETE FROM assistant_turns WHERE thread_id IN (SELECT id FROM chosen))
             DELETE FROM assistant_threads WHERE id IN (SELECT id FROM chosen)"
            .to_string(),
        // An open conversation is never pruned; an ended one goes with its transcript.
        Kind::Conversations => "WITH chosen AS (
                 SELECT id FROM conversations WHERE ended_at IS NOT NULL AND ended_at < $1
                 ORDER BY ended_at LIMIT $2 FOR UPDATE SKIP LOCKED
             ),
             gone_lines AS (DELETE FROM conversation_messages WHERE conversation_id IN (SELECT id FROM chosen))
             DELETE FROM conversations WHERE id IN (SELECT id FROM chosen)"
            .to_string(),
    }
}

impl PostgresStore {
    /// See [`crate::store::MaintenanceStore::prune`].
    pub(super) async fn prune_batch(
        &self,
        kind: Kind,
        before: Millis,
        limit: u32,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(plan(kind)))
            .bind(before)
            .bind(i64::from(limit))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
