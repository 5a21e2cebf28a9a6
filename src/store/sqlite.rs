//! SQLite implementation of [`Store`]: a WAL file, one writer connection, a small read pool.
//!
//! SQLite allows one writer at a time, so a pool of one write connection is the honest model
//! (more connections only add `SQLITE_BUSY`). Write transactions start with `BEGIN IMMEDIATE`
//! so they take the write lock up front instead of failing on upgrade. `synchronous=FULL`:
//! an acknowledged webhook survives power loss; group commit in the ingestor keeps it cheap.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::*;
use crate::inbound::DeliveryStatus;

mod calling;
mod checkpoint;
mod consent_page;
mod dead;
mod effects;
mod health;
mod retention;

/// The SQLite store.
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    index: super::policy_index::PolicyIndex,
    health: Arc<health::WriteHealth>,
    /// WAL frames beyond which `maintain` truncates the WAL (see [`checkpoint`]).
    wal_truncate_frames: i64,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path`).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Checkpoints run from `maintain` on another connection, so a commit never waits
            // for one (they fsync the database file and would stall webhook acknowledgements).
            .pragma("wal_autocheckpoint", "0");
        let health = Arc::new(health::WriteHealth::default());
        let faults = health.clone();
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                let faults = faults.clone();
                Box::pin(async move { faults.apply_fault(conn).await })
            })
            .after_release(|conn, _| Box::pin(async move { Ok(health::reusable(conn)) }))
            .connect_with(opts.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(false))
            .await?;
        Ok(Self {
            write,
            read,
            index: Default::default(),
            health,
            wal_truncate_frames: checkpoint::TRUNCATE_AFTER_FRAMES,
        })
    }

    /// Loads the people active in the last 24 hours and everyone with a consent record.
    pub async fn load_policy_index(&self) -> Result<(), StoreError> {
        let now = crate::time::now_ms();
        let window = now - crate::window::CUSTOMER_SERVICE_WINDOW_MS;
        let referrals = window - crate::window::FREE_ENTRY_POINT_MS;
        let rows = sqlx::query(
            "SELECT sender_id, wa_id, last_inbound_at, referral_at, free_until FROM contacts
             WHERE last_inbound_at > $1 OR referral_at > $2",
        )
        .bind(window)
        .bind(referrals)
        .fetch_all(&self.read)
        .await?;
        for r in rows {
            let (sender, wa_id): (String, String) = (r.try_get("sender_id")?, r.try_get("wa_id")?);
            if let Some(at) = r
                .try_get::<Option<i64>, _>("last_inbound_at")?
                .filter(|t| *t > window)
            {
                self.index.inbound(&sender, &wa_id, at);
            }
            if let Some(at) = r
                .try_get::<Option<i64>, _>("referral_at")?
                .filter(|t| *t > referrals)
            {
                self.index.referral(&sender, &wa_id, at);
                if let Some(until) = r.try_get::<Option<i64>, _>("free_until")? {
                    self.index.free_until(&sender, &wa_id, until);
                }
            }
        }
        let rows =
            sqlx::query("SELECT sender_id, subject, category, action, at FROM consent_state")
                .fetch_all(&self.read)
                .await?;
        for r in rows {
            let (sender, subject): (String, String) =
                (r.try_get("sender_id")?, r.try_get("subject")?);
            let (category, action) = consent_columns(&r)?;
            self.index
                .consent(&sender, &subject, (category, action, r.try_get("at")?));
        }
        let (active, consented) = self.index.sizes();
        tracing::info!(active, consented, "Policy index loaded.");
        Ok(())
    }

    async fn tx(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }
}

pub(super) const FINISH_EVENT: &str =
    "UPDATE inbound_events SET processed_at = $1, note = $2 WHERE id = $3";

pub(super) fn state_rank(state: &str) -> u8 {
    match state {
        "queued" => 0,
        "sending" | "uncertain" => 1,
        "accepted" => 2,
        "sent" => 3,
        "delivered" => 4,
        "read" | "played" => 5,
        "failed" => 6,
        _ => 0,
    }
}

/// The state a message moves to when `status` arrives while it is in `current`. Statuses can
/// arrive out of order (read before delivered), so the state never moves backwards; `failed`
/// wins over anything short of delivery.
pub(super) fn next_state(current: &str, status: DeliveryStatus) -> String {
    let proposed = status.as_str();
    let cur = state_rank(current);
    match status {
        DeliveryStatus::Failed if cur < 4 => "failed".into(),
        DeliveryStatus::Failed => current.into(),
        _ if cur == 6 => current.into(),
        _ if state_rank(proposed) > cur => proposed.into(),
        _ => current.into(),
    }
}

/// One pending event row, or why it cannot be read.
fn stored_event(id: i64, r: &SqliteRow) -> Result<StoredEvent, String> {
    let json: String = r
        .try_get("event_json")
        .map_err(|e| format!("event_json: {e}"))?;
    let event = serde_json::from_str(&json).map_err(|e| format!("event_json: {e}"))?;
    Ok(StoredEvent {
        id,
        event,
        received_at: r
            .try_get("received_at")
            .map_err(|e| format!("received_at: {e}"))?,
    })
}

fn opt_u32(v: Option<i64>) -> Option<u32> {
    v.and_then(|x| u32::try_from(x).ok())
}

fn call_from_row(r: &SqliteRow) -> Result<CallRecord, sqlx::Error> {
    Ok(CallRecord {
        source: r.try_get("source")?,
        provider_call_id: r.try_get("provider_call_id")?,
        sender_id: r.try_get("sender_id")?,
        caller_raw: r.try_get("caller_raw")?,
        caller_e164: r.try_get("caller_e164")?,
        callee_raw: r.try_get("callee_raw")?,
        outcome: r.try_get("outcome")?,
        ring_seconds: opt_u32(r.try_get("ring_seconds")?),
        missed: r.try_get::<i64, _>("missed")? != 0,
        decision: r.try_get("decision")?,
        reason: r.try_get("reason")?,
        message_id: r.try_get("message_id")?,
        occurred_at: r.try_get("occurred_at")?,
    })
}

fn message_from_row(r: &SqliteRow) -> Result<MessageRow, sqlx::Error> {
    Ok(MessageRow {
        id: r.try_get("id")?,
        sender_id: r.try_get("sender_id")?,
        to: r.try_get("to_number")?,
        kind: r.try_get("kind")?,
        state: r.try_get("state")?,
        wamid: r.try_get("wamid")?,
        reason: r.try_get("reason")?,
        attempts: opt_u32(r.try_get("attempts")?).unwrap_or(0),
        error_code: r.try_get("error_code")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl SqliteStore {
    /// Mirrors a committed effect in the policy index.
    fn index_effect(&self, e: &Effect) {
        match e {
            Effect::InboundMessage { message: m, .. } => {
                if let Some(wa_id) =
                    &crate::consent::subject(m.from_wa_id.as_deref(), m.from_user_id.as_deref())
                {
                    self.index.inbound(&m.phone_number_id, wa_id, m.timestamp);
                    if m.payload.get("referral").is_some() {
                        self.index.referral(&m.phone_number_id, wa_id, m.timestamp);
                    }
                }
            }
            Effect::Call { call: c, .. } if c.source == "whatsapp" => {
                if let (Some(sender), Some(caller)) = (&c.sender_id, &c.caller_e164) {
                    self.index
                        .inbound(sender, caller.trim_start_matches('+'), c.occurred_at);
                }
            }
            Effect::Consent { record: r, .. } => {
                self.index
                    .consent(&r.sender_id, &r.subject, (r.category, r.action, r.at))
            }
            _ => {}
        }
    }
}

/// The `category` and `action` columns of a consent row (only Ringback writes them, so an
/// unknown category cannot occur; `all` would be the cautious reading).
fn consent_columns(
    r: &SqliteRow,
) -> Result<(crate::consent::Category, crate::consent::Action), sqlx::Error> {
    let category: String = r.try_get("category")?;
    let action: String = r.try_get("action")?;
    let category =
        crate::consent::Category::parse(&category).unwrap_or(crate::consent::Category::All);
    let action = if action == "opt_out" {
        crate::consent::Action::OptOut
    } else {
        crate::consent::Action::OptIn
    };
    Ok((category, action))
}

/// A row of `consent_records` as a ledger record.
fn consent_record_from_row(r: &SqliteRow) -> Result<crate::consent::Record, sqlx::Error> {
    let (category, action) = consent_columns(r)?;
    Ok(crate::consent::Record {
        sender_id: r.try_get("sender_id")?,
        subject: r.try_get("subject")?,
        wa_id: r.try_get("wa_id")?,
        user_id: r.try_get("user_id")?,
        category,
        action,
        source: r.try_get("source")?,
        evidence: r.try_get("evidence")?,
        at: r.try_get("at")?,
    })
}

const MESSAGE_COLUMNS: &str = "id, sender_id, to_number, kind, state, wamid, reason, attempts, error_code, last_error, created_at, updated_at";

pub(super) async fn upsert_contact_reply(
    tx: &mut Transaction<'static, Sqlite>,
    sender: &str,
    wa_id: &str,
    at: Millis,
    message_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO contacts (sender_id, wa_id, last_reply_at, last_reply_message_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (sender_id, wa_id) DO UPDATE SET last_reply_at = excluded.last_reply_at,
             last_reply_message_id = excluded.last_reply_message_id",
    )
    .bind(sender)
    .bind(wa_id)
    .bind(at)
    .bind(message_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn insert_message(
    tx: &mut Transaction<'static, Sqlite>,
    m: &NewMessage,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO messages (id, sender_id, to_number, kind, body_json, idempotency_key, reason, state,
             next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $8, $8)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(&m.id)
    .bind(&m.sender_id)
    .bind(&m.to)
    .bind(&m.kind)
    .bind(m.body.to_string())
    .bind(&m.idempotency_key)
    .bind(&m.reason)
    .bind(m.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/sqlite").run(&self.write).await?;
        Ok(())
    }

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

    fn write_failure(&self) -> Option<String> {
        self.health.failure()
    }

    async fn inject_write_fault(&self, fault: Option<WriteFault>) -> Result<(), StoreError> {
        self.health.set_fault(fault);
        // The idle connection gets it now; a replacement gets it from `after_connect`.
        let mut conn = self.write.acquire().await?;
        self.health.apply_fault(&mut conn).await?;
        Ok(())
    }

    async fn start_attempts(&self, sends: &[ClaimedSend], now: Millis) -> Result<(), StoreError> {
        let result = async {
            let mut tx = self.tx().await?;
            for s in sends {
                sqlx::query(
                    "UPDATE attempts SET outcome = 'in_flight', started_at = $1
                     WHERE message_id = $2 AND attempt_no = $3 AND outcome = 'claimed'",
                )
                .bind(now)
                .bind(&s.message_id)
                .bind(i64::from(s.attempt_no))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.health.observe(result, |_| !sends.is_empty())
    }

    async fn contact(&self, sender_id: &str, wa_id: &str) -> Result<Option<Contact>, StoreError> {
        let row = sqlx::query(
            "SELECT sender_id, wa_id, name, last_inbound_at, last_reply_at, last_reply_message_id
             FROM contacts WHERE sender_id = $1 AND wa_id = $2",
        )
        .bind(sender_id)
        .bind(wa_id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(Contact {
                sender_id: r.try_get("sender_id")?,
                wa_id: r.try_get("wa_id")?,
                name: r.try_get("name")?,
                last_inbound_at: r.try_get("last_inbound_at")?,
                last_reply_at: r.try_get("last_reply_at")?,
                last_reply_message_id: r.try_get("last_reply_message_id")?,
            })
        })
        .transpose()
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

    async fn apply(&self, batch: &[Effect]) -> Result<(), StoreError> {
        let result = async {
            let mut tx = self.tx().await?;
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
                self.index_effect(effect);
            }
            Ok(())
        }
        .await;
        self.health.observe(result, |_| !batch.is_empty())
    }

    async fn record_attempts(
        &self,
        results: &[(ClaimedSend, AttemptOutcome)],
        now: Millis,
    ) -> Result<(), StoreError> {
        let result = async {
            let mut tx = self.tx().await?;
            for (send, outcome) in results {
                effects::record_attempt(&mut tx, send, outcome, now).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.health.observe(result, |_| !results.is_empty())
    }

    async fn list_calls(&self, limit: u32) -> Result<Vec<CallRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM calls ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(call_from_row).collect::<Result<_, _>>()?)
    }

    async fn message_by_idempotency_key(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM messages WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn enqueue(&self, m: &NewMessage) -> Result<Enqueued, StoreError> {
        let result = async {
            let mut tx = self.tx().await?;
            let inserted = insert_message(&mut tx, m).await?;
            let result = if inserted {
                Enqueued::New(m.id.clone())
            } else {
                let id: String =
                    sqlx::query_scalar("SELECT id FROM messages WHERE idempotency_key = $1")
                        .bind(&m.idempotency_key)
                        .fetch_one(&mut *tx)
                        .await?;
                Enqueued::Existing(id)
            };
            tx.commit().await?;
            Ok(result)
        }
        .await;
        self.health.observe(result, |_| true)
    }

    async fn claim_sends(
        &self,
        sender_id: &str,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<ClaimedSend>, StoreError> {
        let result = async {
        let mut tx = self.tx().await?;
        let rows = sqlx::query(
            "UPDATE messages SET state = 'sending', attempts = attempts + 1, updated_at = $1
             WHERE id IN (SELECT id FROM messages WHERE sender_id = $2 AND state = 'queued' AND next_attempt_at <= $1
                          ORDER BY next_attempt_at LIMIT $3)
             RETURNING id, sender_id, to_number, body_json, attempts",
        )
        .bind(now)
        .bind(sender_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in rows {
            let send = ClaimedSend {
                message_id: r.try_get("id")?,
                sender_id: r.try_get("sender_id")?,
                to: r.try_get("to_number")?,
                body: r.try_get("body_json")?,
                attempt_no: opt_u32(r.try_get("attempts")?).unwrap_or(1),
            };
            sqlx::query(
                "INSERT INTO attempts (message_id, attempt_no, started_at, outcome) VALUES ($1, $2, $3, 'claimed')
                 ON CONFLICT (message_id, attempt_no) DO NOTHING",
            )
            .bind(&send.message_id)
            .bind(i64::from(send.attempt_no))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            claimed.push(send);
        }
        tx.commit().await?;
        Ok(claimed)
        }
        .await;
        self.health.observe(result, |c| !c.is_empty())
    }

    async fn next_due(&self, sender_id: &str) -> Result<Option<Millis>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM messages WHERE sender_id = $1 AND state = 'queued'",
        )
        .bind(sender_id)
        .fetch_one(&self.write)
        .await?)
    }

    async fn mark_in_flight_uncertain(&self, now: Millis) -> Result<u64, StoreError> {
        let mut tx = self.tx().await?;
        // Claimed ahead but never started: no request left, so they are due again at once.
        let requeued = sqlx::query(
            "UPDATE messages SET state = 'queued', attempts = attempts - 1, next_attempt_at = $1, updated_at = $1
             WHERE state = 'sending' AND EXISTS (SELECT 1 FROM attempts a WHERE a.message_id = messages.id
                 AND a.attempt_no = messages.attempts AND a.outcome = 'claimed')",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM attempts WHERE outcome = 'claimed'")
            .execute(&mut *tx)
            .await?;
        if requeued > 0 {
            tracing::info!(
                count = requeued,
                "Sends claimed but not started when Ringback last stopped are queued again."
            );
        }
        sqlx::query(
            "UPDATE attempts SET outcome = 'interrupted', finished_at = $1,
                 detail = 'the process stopped while this request was in flight; outcome unknown'
             WHERE outcome = 'in_flight'",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query(
            "UPDATE messages SET state = 'uncertain', updated_at = $1,
                 last_error = 'in flight when Ringback stopped; waiting for a status webhook before resending'
             WHERE state = 'sending'",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn requeue_uncertain(&self, before: Millis, now: Millis) -> Result<u64, StoreError> {
        let n = sqlx::query(
            "UPDATE messages SET state = 'queued', next_attempt_at = $1, updated_at = $1,
                 last_error = 'no status webhook arrived for the interrupted attempt; sending again'
             WHERE state = 'uncertain' AND updated_at <= $2",
        )
        .bind(now)
        .bind(before)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn sync_templates(
        &self,
        waba_id: &str,
        templates: &[crate::cloud_api::template::Template],
    ) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        sqlx::query("DELETE FROM templates WHERE waba_id = $1")
            .bind(waba_id)
            .execute(&mut *tx)
            .await?;
        let now = crate::time::now_ms();
        for t in templates {
            sqlx::query(
                "INSERT INTO templates (waba_id, name, language, id, status, category, parameter_format, components_json, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (waba_id, name, language) DO NOTHING",
            )
            .bind(waba_id)
            .bind(&t.name)
            .bind(&t.language)
            .bind(&t.id)
            .bind(&t.status)
            .bind(&t.category)
            .bind(&t.parameter_format)
            .bind(serde_json::Value::Array(t.components.clone()).to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn templates(&self) -> Result<Vec<crate::cloud_api::template::Template>, StoreError> {
        let rows = sqlx::query("SELECT * FROM templates ORDER BY waba_id, name, language")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let components: String = r.try_get("components_json")?;
                Ok(crate::cloud_api::template::Template {
                    id: r.try_get("id")?,
                    waba_id: r.try_get("waba_id")?,
                    name: r.try_get("name")?,
                    language: r.try_get("language")?,
                    status: r.try_get("status")?,
                    category: r.try_get("category")?,
                    parameter_format: r.try_get("parameter_format")?,
                    components: serde_json::from_str(&components)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }

    async fn record_consent(&self, record: &crate::consent::Record) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        effects::record_consent(&mut tx, record).await?;
        tx.commit().await?;
        self.index.consent(
            &record.sender_id,
            &record.subject,
            (record.category, record.action, record.at),
        );
        Ok(())
    }

    async fn consent_records(
        &self,
        sender_id: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<crate::consent::Record>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM consent_records WHERE ($1 IS NULL OR sender_id = $1) AND ($2 IS NULL OR subject = $2) ORDER BY at, id",
        )
        .bind(sender_id)
        .bind(subject)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(consent_record_from_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn consent_records_after(
        &self,
        subject: Option<&str>,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(i64, crate::consent::Record)>, StoreError> {
        consent_page::after(&self.read, subject, after_id, limit).await
    }

    async fn template_reach(
        &self,
        sender_id: Option<&str>,
        since: Millis,
    ) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT to_number) FROM messages WHERE ($1 IS NULL OR sender_id = $1) AND kind = 'template'
                 AND state IN ('accepted', 'sent', 'delivered', 'read') AND created_at > $2",
        )
        .bind(sender_id)
        .bind(since)
        .fetch_one(&self.read)
        .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    async fn create_api_key(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_keys (id, name, hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.id)
            .bind(&key.name)
            .bind(hash)
            .bind(key.created_at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY created_at DESC",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiKey {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn revoke_api_key(&self, id: &str, now: Millis) -> Result<bool, StoreError> {
        let n =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&self.write)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    async fn api_key_valid(&self, hash: &str) -> Result<Option<bool>, StoreError> {
        let any: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
            .fetch_one(&self.read)
            .await?;
        if any == 0 {
            return Ok(None);
        }
        let ok: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_one(&self.read)
        .await?;
        Ok(Some(ok == 1))
    }

    async fn number_events(
        &self,
        phone_number_id: &str,
        limit: u32,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query("SELECT field, event, detail, at FROM number_events WHERE phone_number_id = $1 ORDER BY at DESC, id DESC LIMIT $2")
            .bind(phone_number_id)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                let at: i64 = r.try_get("at")?;
                Ok(serde_json::json!({
                    "field": r.try_get::<String, _>("field")?,
                    "event": r.try_get::<Option<String>, _>("event")?,
                    "at": at,
                    "detail": serde_json::from_str::<serde_json::Value>(&detail).unwrap_or(serde_json::Value::Null),
                }))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn numbers(&self) -> Result<Vec<NumberState>, StoreError> {
        let rows = sqlx::query("SELECT phone_number_id, throughput, quality_rating, messaging_tier, status, updated_at FROM numbers ORDER BY phone_number_id")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(NumberState {
                    phone_number_id: r.try_get("phone_number_id")?,
                    throughput: opt_u32(r.try_get("throughput")?),
                    quality_rating: r.try_get("quality_rating")?,
                    messaging_tier: r.try_get("messaging_tier")?,
                    status: r.try_get("status")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    fn policy_facts(&self, sender_id: &str, subject: &str) -> PolicyFacts {
        let (last_inbound, consent) = self.index.facts(sender_id, subject);
        let (referral_at, free_until) = self.index.entry_point(sender_id, subject);
        PolicyFacts {
            last_inbound,
            consent,
            referral_at,
            free_until,
        }
    }

    async fn open_free_entry_point(
        &self,
        sender_id: &str,
        subject: &str,
        until: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE contacts SET free_until = $1 WHERE sender_id = $2 AND wa_id = $3 AND free_until IS NULL")
            .bind(until)
            .bind(sender_id)
            .bind(subject)
            .execute(&self.write)
            .await?;
        self.index.free_until(sender_id, subject, until);
        Ok(())
    }

    async fn call_permission(
        &self,
        sender_id: &str,
        user_id: &str,
    ) -> Result<Option<crate::calling::PermissionRecord>, StoreError> {
        calling::permission(&self.read, sender_id, user_id).await
    }

    async fn save_call_permission(
        &self,
        sender_id: &str,
        user_id: &str,
        record: &crate::calling::PermissionRecord,
        changes: &[crate::calling::permission::Change],
        at: Millis,
    ) -> Result<(), StoreError> {
        calling::save_permission(&self.write, sender_id, user_id, record, changes, at).await
    }

    async fn call_permission_events(
        &self,
        sender_id: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<Vec<crate::calling::book::PermissionEvent>, StoreError> {
        calling::permission_events(&self.read, sender_id, user_id).await
    }

    async fn save_business_call(
        &self,
        call: &crate::calling::book::BusinessCall,
    ) -> Result<(), StoreError> {
        calling::save_business_call(&self.write, call).await
    }

    async fn business_call(
        &self,
        id: &str,
    ) -> Result<Option<crate::calling::book::BusinessCall>, StoreError> {
        calling::business_call(&self.read, id).await
    }

    async fn set_business_call_wacid(&self, id: &str, wacid: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE business_calls SET wacid = COALESCE(wacid, $1) WHERE id = $2")
            .bind(wacid)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn business_call_by_wacid(
        &self,
        wacid: &str,
    ) -> Result<Option<crate::calling::book::BusinessCall>, StoreError> {
        calling::business_call_by_wacid(&self.read, wacid).await
    }

    async fn business_calls(
        &self,
        limit: u32,
    ) -> Result<Vec<crate::calling::book::BusinessCall>, StoreError> {
        calling::business_calls(&self.read, limit).await
    }

    async fn maintain(&self) -> Result<(), StoreError> {
        self.index.expire(crate::time::now_ms());
        checkpoint::run(&self.read, &self.write, self.wal_truncate_frames).await
    }

    async fn outbox_depth(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE state IN ('queued', 'sending', 'uncertain')",
        )
        .fetch_one(&self.read)
        .await?)
    }

    async fn list_messages(&self, limit: u32) -> Result<Vec<MessageRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY created_at DESC, id DESC LIMIT $1"
        ));
        let rows = sqlx::query(sql)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(message_from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn message(&self, id: &str) -> Result<Option<MessageDetail>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS}, body_json FROM messages WHERE id = $1"
        ));
        let Some(row) = sqlx::query(sql).bind(id).fetch_optional(&self.read).await? else {
            return Ok(None);
        };
        let message = message_from_row(&row)?;
        let body: String = row.try_get("body_json")?;
        let attempts = sqlx::query(
            "SELECT attempt_no, started_at, finished_at, outcome, error_code, detail FROM attempts
             WHERE message_id = $1 ORDER BY attempt_no",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(AttemptRow {
                attempt_no: opt_u32(r.try_get("attempt_no")?).unwrap_or(0),
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                outcome: r.try_get("outcome")?,
                error_code: r.try_get("error_code")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let statuses = sqlx::query(
            "SELECT status, at, error_code, detail FROM message_statuses WHERE message_id = $1 ORDER BY at, rowid",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(StatusRow {
                status: r.try_get("status")?,
                at: r.try_get("at")?,
                error_code: r.try_get("error_code")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some(MessageDetail {
            message,
            body: serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            attempts,
            statuses,
        }))
    }

    async fn prune(
        &self,
        kind: crate::retention::Kind,
        before: Millis,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.prune_batch(kind, before, limit).await
    }
}

#[cfg(test)]
mod durability_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_never_moves_backwards() {
        assert_eq!(next_state("accepted", DeliveryStatus::Sent), "sent");
        assert_eq!(next_state("read", DeliveryStatus::Delivered), "read");
        assert_eq!(
            next_state("sending", DeliveryStatus::Delivered),
            "delivered"
        );
        assert_eq!(next_state("sent", DeliveryStatus::Failed), "failed");
        assert_eq!(next_state("delivered", DeliveryStatus::Failed), "delivered");
        assert_eq!(next_state("failed", DeliveryStatus::Sent), "failed");
    }
}
