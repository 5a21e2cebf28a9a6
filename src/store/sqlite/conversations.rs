//! SQLite: conversations, events and webhook endpoints (the queries shared with PostgreSQL,
//! see [`crate::store::twin`]), and the tracker's publication, written on the writer thread.

use rusqlite::{Connection, OptionalExtension, params};

use super::*;

crate::store::twin::twin_store!(SqliteStore, read, SqliteRow, sqlx::SqliteConnection);
/// The events table read in id order by the console's counts (see `activity`).
const EVENTS_BY_ID: &str = "events NOT INDEXED";
crate::store::twin_console::twin_console_store!(SqliteStore, read, SqliteRow);
crate::store::twin_links::twin_link_store!(SqliteStore, read, SqliteRow);

impl AsMut<sqlx::SqliteConnection> for SqlxWrite {
    fn as_mut(&mut self) -> &mut sqlx::SqliteConnection {
        self.tx.as_mut()
    }
}

impl SqliteStore {
    async fn publish_impl(
        &self,
        p: Publication,
        fence: Option<&Fence>,
    ) -> Result<Vec<i64>, StoreError> {
        let fence = fence.cloned();
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
    // No `RETURNING id`: SQLite runs a RETURNING statement with a statement journal, whose
    // release walked the whole in-memory sub-journal of the group commit (memjrnlTruncate:
    // 2-3 % of the server's CPU with four events per reply). The writer thread owns this
    // connection, so the last rowid is this insert's.
    let mut event = c.prepare_cached(
        "INSERT INTO events (type, at, conversation_id, data_json) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut delivery = c.prepare_cached(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, ordering_key, state, attempts,
             next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
    )?;
    let now = crate::time::now_ms();
    let mut ids = Vec::with_capacity(p.events.len());
    for e in &p.events {
        event.execute(params![
            e.kind,
            e.at,
            e.conversation_id,
            crate::store::json_text(&e.data)
        ])?;
        let id = c.last_insert_rowid();
        for endpoint in &e.endpoints {
            delivery.execute(params![endpoint, id, e.kind, e.conversation_id, now])?;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// The tracker's reads, on the reader thread (see [`crate::store::twin`]).
impl SqliteStore {
    async fn read_journal(&self, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
        self.reader
            .run(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, fact_json FROM event_journal ORDER BY id LIMIT ?1",
                )?;
                let rows = stmt.query_map([limit], |r| {
                    let json: String = r.get(1)?;
                    Ok(JournalEntry {
                        id: r.get(0)?,
                        fact: serde_json::from_str(&json).ok(),
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn read_open_conversations(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<Conversation>, StoreError> {
        let pairs = pairs.to_vec();
        self.reader
            .run(move |c| {
                // One indexed lookup per pair, each a cached statement.
                let mut stmt = c.prepare_cached(
                    "SELECT * FROM conversations WHERE ended_at IS NULL AND sender_id = ?1 AND contact = ?2",
                )?;
                let mut out = Vec::new();
                for (s, k) in &pairs {
                    if let Some(v) = stmt.query_row(params![s, k], conversation_of).optional()? {
                        out.push(v);
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn read_lines(&self, ids: &[String]) -> Result<Vec<Line>, StoreError> {
        let ids = ids.to_vec();
        self.reader
            .run(move |c| {
                let mut stmt =
                    c.prepare_cached("SELECT * FROM conversation_messages WHERE message_id = ?1")?;
                let mut out = Vec::new();
                for id in &ids {
                    if let Some(l) = stmt.query_row([id], line_of).optional()? {
                        out.push(l);
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn read_outbound(
        &self,
        ids: &[String],
        wamids: &[String],
    ) -> Result<Vec<OutboundMessage>, StoreError> {
        let (ids, wamids) = (ids.to_vec(), wamids.to_vec());
        self.reader
            .run(move |c| {
                const COLUMNS: &str =
                    "id, sender_id, to_number, kind, body_json, idempotency_key, state, wamid, created_at";
                let mut by_id = c.prepare_cached(&format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"))?;
                let mut by_wamid =
                    c.prepare_cached(&format!("SELECT {COLUMNS} FROM messages WHERE wamid = ?1"))?;
                let mut out: Vec<OutboundMessage> = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for (stmt, keys) in [(&mut by_id, &ids), (&mut by_wamid, &wamids)] {
                    for k in keys {
                        if let Some(m) = stmt.query_row([k], outbound_of).optional()?
                            && seen.insert(m.id.clone())
                        {
                            out.push(m);
                        }
                    }
                }
                Ok(out)
            })
            .await
    }
}

fn conversation_of(r: &rusqlite::Row) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: r.get("id")?,
        sender_id: r.get("sender_id")?,
        contact: r.get("contact")?,
        contact_name: r.get("contact_name")?,
        kind: r.get("kind")?,
        started_at: r.get("started_at")?,
        last_message_at: r.get("last_message_at")?,
        message_count: r.get("message_count")?,
        ended_at: r.get("ended_at")?,
        end_reason: r.get("end_reason")?,
    })
}

fn line_of(r: &rusqlite::Row) -> rusqlite::Result<Line> {
    Ok(Line {
        conversation_id: r.get("conversation_id")?,
        seq: r.get("seq")?,
        direction: r.get("direction")?,
        message_id: r.get("message_id")?,
        wamid: r.get("wamid")?,
        kind: r.get("kind")?,
        text: r.get("text")?,
        status: r.get("status")?,
        at: r.get("at")?,
        status_at: r.get("status_at")?,
    })
}

fn outbound_of(r: &rusqlite::Row) -> rusqlite::Result<OutboundMessage> {
    Ok(OutboundMessage {
        id: r.get("id")?,
        sender_id: r.get("sender_id")?,
        to: r.get("to_number")?,
        kind: r.get("kind")?,
        body_json: r.get("body_json")?,
        idempotency_key: r.get("idempotency_key")?,
        state: r.get("state")?,
        wamid: r.get("wamid")?,
        created_at: r.get("created_at")?,
    })
}
