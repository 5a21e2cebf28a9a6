//! SQLite: inbound events: committed before acknowledgement, processed in order, set aside when unreadable; and the calls decided from them.

use super::*;

#[async_trait]
impl EventStore for SqliteStore {
    async fn ingest(&self, batch: &[IngestRequest]) -> Result<Vec<IngestCounts>, StoreError> {
        let batch = batch.to_vec();
        let result = self.writer.run(move |c| effects::ingest(c, &batch)).await;
        self.health.observe(result, |_| true)
    }
    async fn pending_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        self.reader
            .run(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, event_json, received_at FROM inbound_events
                     WHERE processed_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT ?1",
                )?;
                let mut rows = stmt.query([i64::from(limit)])?;
                let mut events = Vec::new();
                while let Some(r) = rows.next()? {
                    let id: i64 = r.get(0)?;
                    match stored_event(id, r) {
                        Ok(event) => events.push(event),
                        // The events before it are processed first; it then comes first and
                        // is reported.
                        Err(_) if !events.is_empty() => break,
                        Err(reason) => return Err(StoreError::CorruptEvent { id, reason }),
                    }
                }
                Ok(events)
            })
            .await
    }
    async fn dead_letter(&self, event_id: i64, reason: &str, at: Millis) -> Result<(), StoreError> {
        let _turn = self.writer.turn().await?;
        dead::dead_letter(&self.write, event_id, reason, at).await
    }
    async fn dead_events(&self) -> Result<Vec<DeadEvent>, StoreError> {
        dead::dead_events(&self.read).await
    }
    async fn retry_dead(&self, event_id: Option<i64>) -> Result<u64, StoreError> {
        let _turn = self.writer.turn().await?;
        dead::retry(&self.write, event_id).await
    }
    async fn call_decisions(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let keys = keys.to_vec();
        self.reader
            .run(move |c| {
                rows_for_pairs(
                    c,
                    "SELECT source, provider_call_id, decision FROM calls
                     WHERE (source, provider_call_id) IN (VALUES {})",
                    &keys,
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .await
    }
    async fn call(
        &self,
        source: &str,
        provider_call_id: &str,
    ) -> Result<Option<CallRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM calls WHERE source = $1 AND provider_call_id = $2")
            .bind(source)
            .bind(provider_call_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(call_from_row).transpose()?)
    }
    async fn apply_and_claim(
        &self,
        effects: Vec<Effect>,
        fence: Option<&Fence>,
        claims: &[ClaimRequest],
    ) -> Result<Vec<(ClaimedSend, bool)>, StoreError> {
        let (fence, claims, wrote) = (fence.cloned(), claims.to_vec(), !effects.is_empty());
        let result = self
            .writer
            .run(move |c| {
                if let Some(f) = &fence {
                    effects::check_fence(c, f)?;
                }
                effects.iter().try_for_each(|e| effects::apply(c, e))?;
                crate::events::facts(&effects)
                    .iter()
                    .try_for_each(|f| super::conversations::journal(c, f))?;
                let now = crate::time::now_ms();
                let mut claimed = Vec::new();
                for r in &claims {
                    let sends = effects::claim_sends(
                        c,
                        &r.sender_id,
                        now,
                        r.limit,
                        &r.node,
                        r.lease_until,
                    )?;
                    let first = (r.start as usize).min(sends.len());
                    let mut started = effects::start_attempts(c, &sends[..first], now)?;
                    started.resize(sends.len(), false);
                    claimed.extend(sends.into_iter().zip(started));
                }
                Ok((claimed, effects))
            })
            .await;
        let result = result.map(|(claimed, effects)| {
            self.journaled.notify_one();
            for effect in &effects {
                self.index.apply(effect);
            }
            claimed
        });
        self.health.observe(result, |_| wrote)
    }
    async fn list_calls(&self, limit: u32) -> Result<Vec<CallRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM calls ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(call_from_row).collect::<Result<_, _>>()?)
    }
}

/// An event row (`id, event_json, received_at`), or why it cannot be read.
fn stored_event(id: i64, r: &rusqlite::Row) -> Result<StoredEvent, String> {
    let json = r
        .get_ref(1)
        .and_then(|v| Ok(v.as_str()?))
        .map_err(|e| format!("event_json: {e}"))?;
    Ok(StoredEvent {
        id,
        event: serde_json::from_str(json).map_err(|e| format!("event_json: {e}"))?,
        received_at: r.get(2).map_err(|e| format!("received_at: {e}"))?,
    })
}
