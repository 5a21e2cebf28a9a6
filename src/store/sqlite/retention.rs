//! Retention in SQLite: one batch of old rows of one kind deleted per call.
//!
//! Candidates are chosen on the read pool (WAL readers never block the writer), so the write
//! transaction only deletes rows by key, re-checking the same conditions in case a row
//! changed in between (a message that left its final state, an event a new user message now
//! points at). The write lock is therefore held for at most `limit` keyed deletes.
//! Indexes for every query here are in `migrations/sqlite/0200_retention.sql`.

use sqlx::Row;

use super::{SqliteStore, StoreError};
use crate::store::RowKind as Kind;
use crate::time::Millis;

/// States after which a send is never claimed, requeued or resent: its row, attempts and
/// statuses are history. Listed positively so a new in-flight state is kept by default.
const FINAL: &str = "('accepted', 'sent', 'delivered', 'read', 'played', 'failed')";

/// What one kind's batch runs: `select` takes ($1 before, $2 limit) and returns keys; each
/// `delete` takes ($1 before, $2 keys as a JSON array); the last one's count is returned.
struct Plan {
    select: String,
    delete: Vec<String>,
}

fn plan(kind: Kind) -> Plan {
    let keys = "SELECT value FROM json_each($2)";
    let (select, delete) = match kind {
        Kind::Messages => {
            let cond = format!("created_at < $1 AND updated_at < $1 AND state IN {FINAL}");
            let chosen = format!("SELECT id FROM messages WHERE id IN ({keys}) AND {cond}");
            (
                format!("SELECT id FROM messages WHERE {cond} ORDER BY created_at LIMIT $2"),
                vec![
                    format!("DELETE FROM attempts WHERE message_id IN ({chosen})"),
                    format!("DELETE FROM message_statuses WHERE message_id IN ({chosen})"),
                    format!("DELETE FROM messages WHERE id IN ({keys}) AND {cond}"),
                ],
            )
        }
        Kind::Attempts => {
            let cond = format!(
                "started_at < $1 AND message_id IN (SELECT id FROM messages WHERE state IN {FINAL})"
            );
            (
                format!("SELECT rowid FROM attempts WHERE {cond} ORDER BY started_at LIMIT $2"),
                vec![format!(
                    "DELETE FROM attempts WHERE rowid IN ({keys}) AND {cond}"
                )],
            )
        }
        Kind::Statuses => {
            // A status whose send is still open may be what settles it: kept.
            let cond = format!(
                "at < $1 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = message_statuses.message_id AND m.state NOT IN {FINAL})"
            );
            (
                format!("SELECT rowid FROM message_statuses WHERE {cond} ORDER BY at LIMIT $2"),
                vec![format!(
                    "DELETE FROM message_statuses WHERE rowid IN ({keys}) AND {cond}"
                )],
            )
        }
        Kind::InboundMessages => (
            "SELECT wamid FROM inbound_messages WHERE sent_at < $1 ORDER BY sent_at LIMIT $2"
                .to_string(),
            vec![format!(
                "DELETE FROM inbound_messages WHERE wamid IN ({keys}) AND sent_at < $1"
            )],
        ),
        Kind::InboundEvents => {
            // Unprocessed events are never touched; a stored user message points at its event.
            let cond = "processed_at IS NOT NULL AND received_at < $1 AND NOT EXISTS \
                (SELECT 1 FROM inbound_messages m WHERE m.event_id = inbound_events.id)";
            (
                format!("SELECT id FROM inbound_events WHERE {cond} ORDER BY received_at LIMIT $2"),
                vec![format!(
                    "DELETE FROM inbound_events WHERE id IN ({keys}) AND {cond}"
                )],
            )
        }
        Kind::RawPayloads => {
            let cond = "received_at < $1 AND NOT EXISTS \
                (SELECT 1 FROM inbound_events e WHERE e.raw_id = raw_payloads.id)";
            (
                format!("SELECT id FROM raw_payloads WHERE {cond} ORDER BY received_at LIMIT $2"),
                vec![format!(
                    "DELETE FROM raw_payloads WHERE id IN ({keys}) AND {cond}"
                )],
            )
        }
        Kind::Calls => {
            let cond = "occurred_at < $1 AND decision <> 'pending'";
            (
                format!("SELECT id FROM calls WHERE {cond} ORDER BY occurred_at LIMIT $2"),
                vec![format!("DELETE FROM calls WHERE id IN ({keys}) AND {cond}")],
            )
        }
        Kind::Contacts => {
            // The same expression as the contacts_last_activity index, so the index is used.
            let last = "max(coalesce(last_inbound_at, 0), coalesce(last_reply_at, 0), \
                coalesce(referral_at, 0), coalesce(free_until, 0))";
            (
                format!("SELECT rowid FROM contacts WHERE {last} < $1 ORDER BY {last} LIMIT $2"),
                vec![format!(
                    "DELETE FROM contacts WHERE rowid IN ({keys}) AND {last} < $1"
                )],
            )
        }
        Kind::NumberEvents => (
            "SELECT id FROM number_events WHERE at < $1 ORDER BY at LIMIT $2".to_string(),
            vec![format!(
                "DELETE FROM number_events WHERE id IN ({keys}) AND at < $1"
            )],
        ),
        Kind::WebhookDeliveries => {
            // A pending delivery is still owed to its endpoint: kept.
            let cond = "state <> 'pending' AND finished_at < $1";
            let chosen =
                format!("SELECT id FROM webhook_deliveries WHERE id IN ({keys}) AND {cond}");
            (
                format!(
                    "SELECT id FROM webhook_deliveries WHERE {cond} ORDER BY finished_at LIMIT $2"
                ),
                vec![
                    format!("DELETE FROM webhook_attempts WHERE delivery_id IN ({chosen})"),
                    format!("DELETE FROM webhook_deliveries WHERE id IN ({keys}) AND {cond}"),
                ],
            )
        }
        Kind::Events => {
            // An event a delivery points at can still be delivered, shown or replayed: kept.
            let cond = "at < $1 AND NOT EXISTS \
                (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = events.id)";
            (
                format!("SELECT id FROM events WHERE {cond} ORDER BY at LIMIT $2"),
                vec![format!(
                    "DELETE FROM events WHERE id IN ({keys}) AND {cond}"
                )],
            )
        }
        Kind::FlowRuns => {
            // A run that has not ended has a due time: kept.
            let cond = "due_at IS NULL AND updated_at < $1";
            let chosen = format!("SELECT id FROM flow_runs WHERE id IN ({keys}) AND {cond}");
            (
                format!("SELECT id FROM flow_runs WHERE {cond} ORDER BY updated_at LIMIT $2"),
                vec![
                    format!("DELETE FROM flow_steps WHERE run_id IN ({chosen})"),
                    format!("DELETE FROM flow_runs WHERE id IN ({keys}) AND {cond}"),
                ],
            )
        }
        Kind::AssistantMemory => {
            let cond = "updated_at < $1";
            let chosen =
                format!("SELECT id FROM assistant_threads WHERE id IN ({keys}) AND {cond}");
            (
                format!(
                    "SELECT id FROM assistant_threads WHERE {cond} ORDER BY updated_at LIMIT $2"
                ),
                vec![
                    format!("DELETE FROM assistant_turns WHERE thread_id IN ({chosen})"),
                    format!("DELETE FROM assistant_threads WHERE id IN ({keys}) AND {cond}"),
                ],
            )
        }
        Kind::Conversations => {
            let cond = "ended_at IS NOT NULL AND ended_at < $1";
            let chosen = format!("SELECT id FROM conversations WHERE id IN ({keys}) AND {cond}");
            (
                format!("SELECT id FROM conversations WHERE {cond} ORDER BY ended_at LIMIT $2"),
                vec![
                    format!(
                        "DELETE FROM conversation_messages WHERE conversation_id IN ({chosen})"
                    ),
                    format!("DELETE FROM conversations WHERE id IN ({keys}) AND {cond}"),
                ],
            )
        }
    };
    Plan { select, delete }
}

impl SqliteStore {
    /// See [`crate::store::Store::prune`].
    pub(super) async fn prune_batch(
        &self,
        kind: Kind,
        before: Millis,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let plan = plan(kind);
        let rows = sqlx::query(sqlx::AssertSqlSafe(plan.select))
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let keys = rows
            .iter()
            .map(|r| {
                r.try_get::<i64, _>(0)
                    .map(serde_json::Value::from)
                    .or_else(|_| r.try_get::<String, _>(0).map(serde_json::Value::from))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keys = serde_json::Value::Array(keys).to_string();
        let mut tx = self.tx().await?;
        let mut deleted = 0;
        for sql in plan.delete {
            deleted = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(before)
                .bind(&keys)
                .execute(&mut **tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests;
