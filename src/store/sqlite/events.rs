//! SQLite: inbound events: committed before acknowledgement, processed in order, set aside when unreadable; and the calls decided from them.

use super::*;

#[async_trait]
impl EventStore for SqliteStore {
    async fn ingest(&self, batch: &[IngestRequest]) -> Result<Vec<IngestCounts>, StoreError> {
        let result = async {
        let mut tx = self.tx().await?;
        let mut out = Vec::with_capacity(batch.len());
        for req in batch {
            let raw_id: i64 = sqlx::query_scalar(
                "INSERT INTO raw_payloads (source, body, received_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(req.source)
            .bind(&req.raw)
            .bind(req.received_at)
            .fetch_one(&mut *tx)
            .await?;
            let mut counts = IngestCounts::default();
            for e in &req.events {
                let json = serde_json::to_string(&e.event)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let done = sqlx::query(
                    "INSERT INTO inbound_events (raw_id, source, dedup_key, kind, event_json, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedup_key) DO NOTHING",
                )
                .bind(raw_id)
                .bind(req.source)
                .bind(&e.dedup_key)
                .bind(e.event.kind())
                .bind(json)
                .bind(req.received_at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 1 {
                    counts.inserted += 1;
                } else {
                    counts.duplicates += 1;
                }
            }
            out.push(counts);
        }
        tx.commit().await?;
        Ok(out)
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
        .fetch_all(&self.write)
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
        dead::dead_letter(&self.write, event_id, reason, at).await
    }
    async fn dead_events(&self) -> Result<Vec<DeadEvent>, StoreError> {
        dead::dead_events(&self.read).await
    }
    async fn retry_dead(&self, event_id: Option<i64>) -> Result<u64, StoreError> {
        dead::retry(&self.write, event_id).await
    }
    async fn call(
        &self,
        source: &str,
        provider_call_id: &str,
    ) -> Result<Option<CallRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM calls WHERE source = $1 AND provider_call_id = $2")
            .bind(source)
            .bind(provider_call_id)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.as_ref().map(call_from_row).transpose()?)
    }
    async fn apply(&self, batch: &[Effect], fence: Option<&Fence>) -> Result<(), StoreError> {
        let result = async {
            let mut tx = self.tx().await?;
            if let Some(f) = fence {
                cluster::check_fence(&mut tx, f).await?;
            }
            for effect in batch {
                match effect {
                    Effect::InboundMessage {
                        event_id,
                        message,
                        note,
                    } => {
                        effects::record_inbound_message(
                            &mut tx,
                            *event_id,
                            message,
                            note.as_deref(),
                        )
                        .await?
                    }
                    Effect::Status { event_id, status } => {
                        effects::record_status(&mut tx, *event_id, status).await?;
                    }
                    Effect::Call {
                        event_id,
                        call,
                        reply,
                    } => effects::record_call(&mut tx, *event_id, call, reply.as_ref()).await?,
                    Effect::TemplateStatus {
                        event_id,
                        name,
                        language,
                        status,
                    } => {
                        effects::template_status(&mut tx, *event_id, name, language, status).await?
                    }
                    Effect::Consent { event_id, record } => {
                        effects::record_consent(&mut tx, record).await?;
                        let note = format!(
                            "{} {} from {}",
                            record.action.as_str(),
                            record.category.as_str(),
                            record.source
                        );
                        effects::finish(&mut tx, *event_id, &note).await?
                    }
                    Effect::Enqueue { event_id, message } => {
                        insert_message(&mut tx, message).await?;
                        effects::finish(&mut tx, *event_id, &format!("queued {}", message.id))
                            .await?
                    }
                    Effect::NumberUpdate { event_id, update } => {
                        effects::number_update(&mut tx, *event_id, update).await?
                    }
                    Effect::Finish { event_id, note } => {
                        effects::finish(&mut tx, *event_id, note).await?
                    }
                }
            }
            tx.commit().await?;
            for effect in batch {
                self.index.apply(effect);
            }
            Ok(())
        }
        .await;
        self.health.observe(result, |_| !batch.is_empty())
    }
    async fn list_calls(&self, limit: u32) -> Result<Vec<CallRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM calls ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(call_from_row).collect::<Result<_, _>>()?)
    }
}
