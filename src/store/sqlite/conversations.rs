//! SQLite: conversations, events and webhook endpoints (the queries shared with PostgreSQL,
//! see [`crate::store::twin`]), and the tracker's publication, written on the writer thread.

use rusqlite::{Connection, params};

use super::*;

crate::store::twin::twin_store!(SqliteStore, read, SqliteRow);

impl AsMut<sqlx::SqliteConnection> for SqlxWrite {
    fn as_mut(&mut self) -> &mut sqlx::SqliteConnection {
        self.tx.as_mut()
    }
}

impl SqliteStore {
    async fn publish_impl(
        &self,
        p: &Publication,
        fence: Option<&Fence>,
    ) -> Result<Vec<i64>, StoreError> {
        let (p, fence) = (p.clone(), fence.cloned());
        let result = self
            .writer
            .run(move |c| {
                if let Some(f) = &fence {
                    effects::check_fence(c, f)?;
                }
                publish(c, &p)
            })
            .await;
        self.health.observe(result, |_| true)
    }
}

impl SqliteStore {
    async fn record_deliveries_impl(
        &self,
        endpoint_id: &str,
        results: &[DeliveryResult],
        failing_since: Option<Millis>,
    ) -> Result<(), StoreError> {
        let (endpoint, results) = (endpoint_id.to_string(), results.to_vec());
        let result = self
            .writer
            .run(move |c| record_deliveries(c, &endpoint, &results, failing_since))
            .await;
        self.health.observe(result, |_| true)
    }
}

fn record_deliveries(
    c: &Connection,
    endpoint_id: &str,
    results: &[DeliveryResult],
    failing_since: Option<Millis>,
) -> Result<(), StoreError> {
    let mut attempt = c.prepare_cached(
        "INSERT INTO webhook_attempts (delivery_id, attempt_no, at, status, latency_ms, response, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (delivery_id, attempt_no) DO NOTHING",
    )?;
    let mut delivery = c.prepare_cached(
        "UPDATE webhook_deliveries SET state = ?2, attempts = ?3, next_attempt_at = ?4, finished_at = ?5,
             last_status = ?6, last_error = ?7 WHERE id = ?1",
    )?;
    for r in results {
        let a = &r.attempt;
        attempt.execute(params![
            r.delivery_id,
            a.attempt_no,
            a.at,
            a.status,
            a.latency_ms,
            a.response,
            a.error
        ])?;
        let finished = (r.state != "pending").then_some(a.at);
        delivery.execute(params![
            r.delivery_id,
            r.state,
            a.attempt_no,
            r.next_attempt_at,
            finished,
            a.status,
            a.error
        ])?;
    }
    c.prepare_cached("UPDATE webhook_endpoints SET failing_since = ?2 WHERE id = ?1")?
        .execute(params![endpoint_id, failing_since])?;
    Ok(())
}

/// Writes a fact to the journal, in the caller's transaction.
pub(super) fn journal(c: &Connection, fact: &Fact) -> Result<(), StoreError> {
    c.prepare_cached("INSERT INTO event_journal (kind, at, fact_json) VALUES (?1, ?2, ?3)")?
        .execute(params![fact.kind(), fact.at(), fact.to_json()])?;
    Ok(())
}

fn publish(c: &Connection, p: &Publication) -> Result<Vec<i64>, StoreError> {
    if let Some(upto) = p.upto {
        c.prepare_cached("DELETE FROM event_journal WHERE id <= ?1")?
            .execute([upto])?;
    }
    let mut upsert = c.prepare_cached(
        "INSERT INTO conversations (id, sender_id, contact, contact_name, kind, started_at, last_message_at,
             message_count, ended_at, end_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO UPDATE SET contact_name = excluded.contact_name,
             last_message_at = excluded.last_message_at, message_count = excluded.message_count,
             ended_at = excluded.ended_at, end_reason = excluded.end_reason",
    )?;
    for v in &p.conversations {
        upsert.execute(params![
            v.id,
            v.sender_id,
            v.contact,
            v.contact_name,
            v.kind,
            v.started_at,
            v.last_message_at,
            v.message_count,
            v.ended_at,
            v.end_reason
        ])?;
    }
    let mut line = c.prepare_cached(
        "INSERT INTO conversation_messages (conversation_id, seq, direction, message_id, wamid, kind, text,
             status, at, status_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (message_id) DO NOTHING",
    )?;
    for l in &p.new_lines {
        line.execute(params![
            l.conversation_id,
            l.seq,
            l.direction,
            l.message_id,
            l.wamid,
            l.kind,
            l.text,
            l.status,
            l.at,
            l.status_at
        ])?;
    }
    let mut update = c.prepare_cached(
        "UPDATE conversation_messages SET status = ?1, status_at = ?2, wamid = COALESCE(?3, wamid)
         WHERE message_id = ?4",
    )?;
    for u in &p.line_updates {
        update.execute(params![u.status, u.status_at, u.wamid, u.message_id])?;
    }
    let mut event = c.prepare_cached(
        "INSERT INTO events (type, at, conversation_id, data_json) VALUES (?1, ?2, ?3, ?4) RETURNING id",
    )?;
    let mut delivery = c.prepare_cached(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, ordering_key, state, attempts,
             next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
    )?;
    let now = crate::time::now_ms();
    let mut ids = Vec::with_capacity(p.events.len());
    for e in &p.events {
        let id: i64 = event.query_row(
            params![e.kind, e.at, e.conversation_id, e.data.to_string()],
            |r| r.get(0),
        )?;
        for endpoint in &e.endpoints {
            delivery.execute(params![endpoint, id, e.kind, e.conversation_id, now])?;
        }
        ids.push(id);
    }
    Ok(ids)
}
