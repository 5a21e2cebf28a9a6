//! PostgreSQL backend (`store_url = "postgres://…"`), for installations that outgrow one SQLite
//! file or run several nodes on one database.
//!
//! The schema lives in `migrations/postgres/`, one file per SQLite migration with the same
//! number and meaning (atuin's one-directory-per-backend layout). [`connect`] opens a pool and
//! applies those migrations; `ringback store copy` moves an installation's rows between
//! backends.
//!
//! [`PostgresStore`] implements every store trait, one file per concept in the same order as
//! `sqlite/`. Where it differs from SQLite, it is because several nodes write at once:
//! - there is no in-memory policy index: [`ContactStore::policy_facts`] reads the person's
//!   rows in one round trip and builds the facts with [`super::policy_index::facts_from_rows`];
//! - sends are claimed with `FOR UPDATE SKIP LOCKED`, and every read-then-write of a message
//!   (a status webhook, an attempt's outcome) locks the row with `FOR UPDATE` first, where
//!   SQLite relied on its single writer;
//! - a fenced [`EventStore::apply`] holds its lease row `FOR SHARE` until it commits, so a
//!   node taking the lease over waits for the batch instead of racing it;
//! - ingest and claims are one statement each (`UNNEST` arrays, data-modifying CTEs), because
//!   each round trip to a server costs more than a call into an embedded file.
//!
//! Transactions run at READ COMMITTED (the default): the row locks above are what make the
//! read-then-write sequences safe.
//!
//! The URL may carry libpq startup options (`?options=-c%20search_path%3Dtenant_a`), which
//! sqlx passes to every connection: the test suites run each test on its own schema that way.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Postgres, Row, Transaction};

use super::*;
use crate::inbound::IngestRequest;
use crate::time::Millis;

mod assistants;
mod calling;
mod cluster;
pub mod connect;
mod consent_page;
mod contacts;
mod conversations;
mod dead;
mod effects;
mod events;
mod flows;
mod health;
mod keys;
mod maintenance;
mod numbers;
mod outbox;
mod retention;
mod runs;
mod templates;

/// The PostgreSQL store: one pool, shared by readers and writers (PostgreSQL runs writers in
/// parallel, so there is no single write connection to protect).
pub struct PostgresStore {
    pool: PgPool,
    health: Arc<health::WriteHealth>,
    /// Notified after a commit that journaled facts (see [`ConversationStore::journaled`]).
    journaled: Arc<tokio::sync::Notify>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host/db`, or `postgresql://`).
    /// Migrations are applied by [`MaintenanceStore::migrate`] (and by [`super::open`]).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let health = Arc::new(health::WriteHealth::default());
        let pool = health::with_fault_hooks(connect::pool_options(), &health)
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            health,
            journaled: Default::default(),
        })
    }

    async fn tx(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

/// One pending event row, or why it cannot be read.
fn stored_event(id: i64, r: &PgRow) -> Result<StoredEvent, String> {
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

fn call_from_row(r: &PgRow) -> Result<CallRecord, sqlx::Error> {
    Ok(CallRecord {
        source: r.try_get("source")?,
        provider_call_id: r.try_get("provider_call_id")?,
        sender_id: r.try_get("sender_id")?,
        caller_raw: r.try_get("caller_raw")?,
        caller_e164: r.try_get("caller_e164")?,
        callee_raw: r.try_get("callee_raw")?,
        outcome: r.try_get("outcome")?,
        ring_seconds: opt_u32(r.try_get("ring_seconds")?),
        // BOOLEAN here (an INTEGER 0/1 in SQLite).
        missed: r.try_get("missed")?,
        decision: r.try_get("decision")?,
        reason: r.try_get("reason")?,
        message_id: r.try_get("message_id")?,
        occurred_at: r.try_get("occurred_at")?,
    })
}

fn message_from_row(r: &PgRow) -> Result<MessageRow, sqlx::Error> {
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

/// A `consent_state` row.
fn consent_state_row(r: &PgRow) -> Result<super::policy_index::ConsentRow, sqlx::Error> {
    let (category, action) = consent_columns(r)?;
    Ok((
        r.try_get("sender_id")?,
        r.try_get("subject")?,
        category,
        action,
        r.try_get("at")?,
    ))
}

/// The `category` and `action` columns of a consent row.
fn consent_columns(
    r: &PgRow,
) -> Result<(crate::consent::Category, crate::consent::Action), sqlx::Error> {
    let category: String = r.try_get("category")?;
    let action: String = r.try_get("action")?;
    Ok(super::consent_from_columns(&category, &action))
}

/// A row of `consent_records` as a ledger record.
fn consent_record_from_row(r: &PgRow) -> Result<crate::consent::Record, sqlx::Error> {
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

pub(super) async fn insert_message(
    tx: &mut Transaction<'static, Postgres>,
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

#[cfg(test)]
mod tests;
