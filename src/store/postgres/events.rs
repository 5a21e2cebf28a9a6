//! PostgreSQL: inbound events: committed before acknowledgement, processed in order, set aside when unreadable; and the calls decided from them.

use std::collections::HashSet;

use super::*;

/// A whole ingest batch in one statement, so one round trip (and one commit) per batch:
/// `raw` gives each request its id up front (a materialised CTE, since it is read twice and
/// calls `nextval`), so each event row can name its request's id whatever order PostgreSQL
/// inserts in; events are inserted in input order (`ORDER BY` the ordinality), so their ids,
/// which `pending_events` orders by, follow arrival. `ON CONFLICT DO NOTHING` also skips a key
/// repeated inside the batch, and `RETURNING` names the keys that were new.
const INGEST: &str = "
WITH raw AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('raw_payloads', 'id')) AS id, source, body, received_at, n
    FROM UNNEST($1::text[], $2::bytea[], $3::bigint[]) WITH ORDINALITY AS r(source, body, received_at, n)
),
raw_rows AS (
    INSERT INTO raw_payloads (id, source, body, received_at)
    SELECT id, source, body, received_at FROM raw
)
INSERT INTO inbound_events (raw_id, source, dedup_key, kind, event_json, received_at)
SELECT raw.id, raw.source, e.dedup_key, e.kind, e.event_json, raw.received_at
FROM UNNEST($4::bigint[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY
    AS e(request, dedup_key, kind, event_json, n)
JOIN raw ON raw.n = e.request
ORDER BY e.n
ON CONFLICT (dedup_key) DO NOTHING
RETURNING dedup_key";

#[async_trait]
impl EventStore for PostgresStore {
    async fn ingest(&self, batch: &[IngestRequest]) -> Result<Vec<IngestCounts>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let result = async {
            let mut sources = Vec::with_capacity(batch.len());
            let mut bodies = Vec::with_capacity(batch.len());
            let mut received = Vec::with_capacity(batch.len());
            let (mut request, mut keys, mut kinds, mut jsons) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (i, req) in batch.iter().enumerate() {
                sources.push(req.source);
                bodies.push(req.raw.as_slice());
                received.push(req.received_at);
                for e in &req.events {
                    // WITH ORDINALITY counts from 1.
                    request.push(i as i64 + 1);
                    keys.push(e.dedup_key.as_str());
                    kinds.push(e.event.kind());
                    jsons.push(
                        serde_json::to_string(&e.event)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    );
                }
            }
            let inserted: Vec<String> = sqlx::query_scalar(INGEST)
                .bind(&sources)
                .bind(&bodies)
                .bind(&received)
                .bind(&request)
                .bind(&keys)
                .bind(&kinds)
                .bind(&jsons)
                .fetch_all(&self.pool)
                .await?;
            // A key repeated in the batch was inserted by its first occurrence (rows go in
            // input order); later ones, and keys stored before, are duplicates.
            let mut new: HashSet<&str> = inserted.iter().map(String::as_str).collect();
            Ok(batch
                .iter()
                .map(|req| {
                    let mut counts = IngestCounts::default();
                    for e in &req.events {
                        if new.remove(e.dedup_key.as_str()) {
                            counts.inserted += 1;
                        } else {
                            counts.duplicates += 1;
                        }
                    }
                    counts
                })
                .collect())
        }
        .await;
        self.health.observe(result, |_| true)
    }
    async fn pending_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_json, received_at FROM inbound_events
             WHERE processed_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            match stored_event(id, r) {
                Ok(e) => events.push(e),
                // The events before it are processed first; it then comes first and is reported.
                Err(_) if !events.is_empty() => break,
                Err(reason) => return Err(StoreError::CorruptEvent { id, reason }),
            }
        }
        Ok(events)
    }
    async fn dead_letter(&self, event_id: i64, reason: &str, at: Millis) -> Result<(), StoreError> {
        dead::dead_letter(&self.pool, event_id, reason, at).await
    }
    async fn dead_events(&self) -> Result<Vec<DeadEvent>, StoreError> {
        dead::dead_events(&self.pool).await
    }
    async fn retry_dead(&self, event_id: Option<i64>) -> Result<u64, StoreError> {
        dead::retry(&self.pool, event_id).await
    }
    async fn call_decisions(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let (sources, ids): (Vec<&str>, Vec<&str>) =
            keys.iter().map(|(s, i)| (s.as_str(), i.as_str())).unzip();
        Ok(sqlx::query_as(
            "SELECT source, provider_call_id, decision FROM calls
             WHERE (source, provider_call_id) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))",
        )
        .bind(&sources)
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?)
    }
    async fn call(
        &self,
        source: &str,
        provider_call_id: &str,
    ) -> Result<Option<CallRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM calls WHERE source = $1 AND provider_call_id = $2")
            .bind(source)
            .bind(provider_call_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(call_from_row).transpose()?)
    }
    async fn apply_and_claim(
        &self,
        batch: Vec<Effect>,
        fence: Option<&Fence>,
        claims: &[ClaimRequest],
    ) -> Result<Vec<(ClaimedSend, bool)>, StoreError> {
        let result = async {
            let mut tx = self.tx().await?;
            if let Some(f) = fence {
                cluster::check_fence(&mut tx, f).await?;
            }
            // Every effect marks its event processed: those notes are written together at the
            // end, one statement for the batch. Calls gather into runs written a statement per
            // table, before any other kind of effect. Statuses gather into one run for the
            // whole batch, written last: they touch only messages already sent and their
            // status rows, which no other effect of a batch writes, and one run locks its
            // messages in id order like the lanes' `lock_for_attempts`, so the two cannot
            // deadlock (two runs could: ids 5 then 3 against a lane's 3 then 5).
            let mut finished = effects::Finished::default();
            let mut calls = runs::CallRun::default();
            let mut statuses = runs::StatusRun::default();
            for effect in &batch {
                match effect {
                    Effect::Call {
                        event_id,
                        call,
                        reply,
                        ..
                    } => {
                        if !calls.fits(call, reply.as_ref()) {
                            calls.write(&mut tx, &mut finished).await?;
                        }
                        calls.push(*event_id, call, reply.as_ref());
                        continue;
                    }
                    Effect::Status { event_id, status } => {
                        statuses.push(*event_id, status);
                        continue;
                    }
                    Effect::Finish { event_id, note } => {
                        finished.push(*event_id, note.clone());
                        continue;
                    }
                    _ => {}
                }
                calls.write(&mut tx, &mut finished).await?;
                match effect {
                    Effect::InboundMessage {
                        event_id,
                        message,
                        note,
                    } => {
                        let note = effects::record_inbound_message(
                            &mut tx,
                            *event_id,
                            message,
                            note.as_deref(),
                        )
                        .await?;
                        finished.push(*event_id, note);
                    }
                    Effect::TemplateStatus {
                        event_id,
                        name,
                        language,
                        status,
                    } => {
                        let note =
                            effects::template_status(&mut tx, name, language, status).await?;
                        finished.push(*event_id, note);
                    }
                    Effect::Consent { event_id, record } => {
                        effects::record_consent(&mut tx, record).await?;
                        let note = format!(
                            "{} {} from {}",
                            record.action.as_str(),
                            record.category.as_str(),
                            record.source
                        );
                        finished.push(*event_id, note);
                    }
                    Effect::Enqueue { event_id, message } => {
                        insert_message(&mut tx, message).await?;
                        finished.push(*event_id, format!("queued {}", message.id));
                    }
                    Effect::NumberUpdate { event_id, update } => {
                        let note = effects::number_update(&mut tx, update).await?;
                        finished.push(*event_id, note);
                    }
                    Effect::LinkAttributed {
                        link, contact, at, ..
                    } => {
                        effects::link_attributed(&mut tx, link, contact, *at).await?;
                    }
                    // Gathered above.
                    Effect::Call { .. } | Effect::Status { .. } | Effect::Finish { .. } => {}
                }
            }
            calls.write(&mut tx, &mut finished).await?;
            statuses.write(&mut tx, &mut finished).await?;
            finished.write(&mut tx).await?;
            conversations::journal(&mut tx, &crate::events::facts(&batch)).await?;
            let now = crate::time::now_ms();
            let mut claimed = Vec::new();
            for r in claims {
                let sends = super::outbox::claim(
                    &mut tx,
                    &r.sender_id,
                    now,
                    r.limit,
                    &r.node,
                    r.lease_until,
                )
                .await?;
                let first = (r.start as usize).min(sends.len());
                let mut started = super::outbox::start(&mut tx, &sends[..first], now).await?;
                started.resize(sends.len(), false);
                claimed.extend(sends.into_iter().zip(started));
            }
            tx.commit().await?;
            Ok(claimed)
        }
        .await;
        self.journaled.notify_one();
        self.health.observe(result, |_| !batch.is_empty())
    }
    async fn list_calls(&self, limit: u32) -> Result<Vec<CallRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM calls ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(call_from_row).collect::<Result<_, _>>()?)
    }
}
