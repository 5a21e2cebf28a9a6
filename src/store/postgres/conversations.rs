//! PostgreSQL: conversations, events and webhook endpoints (the queries shared with SQLite,
//! see [`crate::store::twin`]), and the tracker's publication.

use super::effects::Tx;
use super::*;

crate::store::twin::twin_store!(PostgresStore, pool, PgRow, sqlx::PgConnection);
/// The events table read in id order by the console's counts (see `activity`).
const EVENTS_BY_ID: &str = "events";
crate::store::twin_console::twin_console_store!(PostgresStore, pool, PgRow);
crate::store::twin_links::twin_link_store!(PostgresStore, pool, PgRow);

/// Writes facts to the journal in the caller's transaction: one statement for all of them.
pub(super) async fn journal(tx: &mut Tx, facts: &[Fact]) -> Result<(), StoreError> {
    if facts.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = facts.iter().map(Fact::kind).collect();
    let ats: Vec<i64> = facts.iter().map(Fact::at).collect();
    let json: Vec<String> = facts.iter().map(Fact::to_json).collect();
    sqlx::query(
        "INSERT INTO event_journal (kind, at, fact_json)
         SELECT kind, at, fact_json FROM UNNEST($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY AS f(kind, at, fact_json, n) ORDER BY n",
    )
    .bind(&kinds)
    .bind(&ats)
    .bind(&json)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl PostgresStore {
    /// Every attempt in one statement, every delivery in another.
    async fn record_deliveries_impl(
        &self,
        endpoint_id: &str,
        results: &[DeliveryResult],
        failing_since: Option<Millis>,
    ) -> Result<(), StoreError> {
        let result = async {
            let mut tx = self.tx().await?;
            let ids: Vec<i64> = results.iter().map(|r| r.delivery_id).collect();
            let nos: Vec<i64> = results.iter().map(|r| i64::from(r.attempt.attempt_no)).collect();
            let ats: Vec<i64> = results.iter().map(|r| r.attempt.at).collect();
            let statuses: Vec<Option<i64>> = results.iter().map(|r| r.attempt.status.map(i64::from)).collect();
            let latencies: Vec<i64> = results.iter().map(|r| i64::from(r.attempt.latency_ms)).collect();
            let responses: Vec<&str> = results.iter().map(|r| r.attempt.response.as_str()).collect();
            let errors: Vec<Option<&str>> = results.iter().map(|r| r.attempt.error.as_deref()).collect();
            let states: Vec<&str> = results.iter().map(|r| r.state).collect();
            let next: Vec<i64> = results.iter().map(|r| r.next_attempt_at).collect();
            let finished: Vec<Option<i64>> = results
                .iter()
                .map(|r| (r.state != "pending").then_some(r.attempt.at))
                .collect();
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, attempt_no, at, status, latency_ms, response, error)
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])
                 ON CONFLICT (delivery_id, attempt_no) DO NOTHING",
            )
            .bind(&ids)
            .bind(&nos)
            .bind(&ats)
            .bind(&statuses)
            .bind(&latencies)
            .bind(&responses)
            .bind(&errors)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE webhook_deliveries d SET state = r.state, attempts = r.attempt_no, next_attempt_at = r.next,
                     finished_at = r.finished, last_status = r.status, last_error = r.error
                 FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[])
                     AS r(id, state, attempt_no, next, finished, status, error)
                 WHERE d.id = r.id",
            )
            .bind(&ids)
            .bind(&states)
            .bind(&nos)
            .bind(&next)
            .bind(&finished)
            .bind(&statuses)
            .bind(&errors)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE webhook_endpoints SET failing_since = $2 WHERE id = $1")
                .bind(endpoint_id)
                .bind(failing_since)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.health.observe(result, |_| true)
    }

    async fn publish_impl(
        &self,
        p: Publication,
        fence: Option<&Fence>,
    ) -> Result<Vec<i64>, StoreError> {
        let result = async {
            let mut tx = self.tx().await?;
            if let Some(f) = fence {
                cluster::check_fence(&mut tx, f).await?;
            }
            let ids = publish(&mut tx, &p).await?;
            tx.commit().await?;
            Ok(ids)
        }
        .await;
        self.health.observe(result, |_| true)
    }
}

async fn publish(tx: &mut Tx, p: &Publication) -> Result<Vec<i64>, StoreError> {
    if let Some(upto) = p.upto {
        sqlx::query("DELETE FROM event_journal WHERE id <= $1")
            .bind(upto)
            .execute(&mut **tx)
            .await?;
    }
    for v in &p.conversations {
        sqlx::query(
            "INSERT INTO conversations (id, sender_id, contact, contact_name, kind, started_at, last_message_at,
                 message_count, ended_at, end_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET contact_name = excluded.contact_name,
                 last_message_at = excluded.last_message_at, message_count = excluded.message_count,
                 ended_at = excluded.ended_at, end_reason = excluded.end_reason",
        )
        .bind(&v.id)
        .bind(&v.sender_id)
        .bind(&v.contact)
        .bind(&v.contact_name)
        .bind(&v.kind)
        .bind(v.started_at)
        .bind(v.last_message_at)
        .bind(i64::from(v.message_count))
        .bind(v.ended_at)
        .bind(&v.end_reason)
        .execute(&mut **tx)
        .await?;
    }
    for l in &p.new_lines {
        sqlx::query(
            "INSERT INTO conversation_messages (conversation_id, seq, direction, message_id, wamid, kind, text,
                 status, at, status_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(&l.conversation_id)
        .bind(i64::from(l.seq))
        .bind(&l.direction)
        .bind(&l.message_id)
        .bind(&l.wamid)
        .bind(&l.kind)
        .bind(&l.text)
        .bind(&l.status)
        .bind(l.at)
        .bind(l.status_at)
        .execute(&mut **tx)
        .await?;
    }
    for u in &p.line_updates {
        sqlx::query(
            "UPDATE conversation_messages SET status = $1, status_at = $2, wamid = COALESCE($3, wamid)
             WHERE message_id = $4",
        )
        .bind(&u.status)
        .bind(u.status_at)
        .bind(&u.wamid)
        .bind(&u.message_id)
        .execute(&mut **tx)
        .await?;
    }
    let now = crate::time::now_ms();
    let mut ids = Vec::with_capacity(p.events.len());
    for e in &p.events {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO events (type, at, conversation_id, data_json) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&e.kind)
        .bind(e.at)
        .bind(&e.conversation_id)
        .bind(crate::store::json_text(&e.data))
        .fetch_one(&mut **tx)
        .await?;
        if !e.endpoints.is_empty() {
            sqlx::query(
                "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, ordering_key, state, attempts,
                     next_attempt_at, created_at)
                 SELECT endpoint, $2, $3, $4, 'pending', 0, $5, $5 FROM UNNEST($1::text[]) AS endpoint",
            )
            .bind(&e.endpoints)
            .bind(id)
            .bind(&e.kind)
            .bind(&e.conversation_id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// The tracker's reads (see [`crate::store::twin`]).
impl PostgresStore {
    async fn read_journal(&self, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query("SELECT id, fact_json FROM event_journal ORDER BY id LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let json: String = r.try_get("fact_json")?;
                Ok(JournalEntry {
                    id: r.try_get("id")?,
                    fact: serde_json::from_str(&json).ok(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn read_open_conversations(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<Conversation>, StoreError> {
        let senders: Vec<&str> = pairs.iter().map(|(s, _)| s.as_str()).collect();
        let contacts: Vec<&str> = pairs.iter().map(|(_, c)| c.as_str()).collect();
        let rows = sqlx::query(
            "SELECT c.* FROM conversations c JOIN UNNEST($1::text[], $2::text[]) AS p(sender_id, contact)
                 ON c.sender_id = p.sender_id AND c.contact = p.contact
             WHERE c.ended_at IS NULL",
        )
        .bind(&senders)
        .bind(&contacts)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(conversation_from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn read_lines(&self, ids: &[String]) -> Result<Vec<Line>, StoreError> {
        let rows = sqlx::query("SELECT * FROM conversation_messages WHERE message_id = ANY($1)")
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(line_from_row).collect::<Result<_, _>>()?)
    }

    async fn read_outbound(
        &self,
        ids: &[String],
        wamids: &[String],
    ) -> Result<Vec<OutboundMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, sender_id, to_number, kind, body_json, idempotency_key, state, wamid, created_at
             FROM messages WHERE id = ANY($1)
             UNION
             SELECT id, sender_id, to_number, kind, body_json, idempotency_key, state, wamid, created_at
             FROM messages WHERE wamid = ANY($2)",
        )
        .bind(ids)
        .bind(wamids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(outbound_from_row)
            .collect::<Result<_, _>>()?)
    }
}
