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
use crate::inbound::IngestRequest;
use crate::time::Millis;

mod assistants;
mod calling;
mod checkpoint;
mod cluster;
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
mod reader;
mod recovery;
mod retention;
mod templates;
mod writer;

/// The SQLite store.
pub struct SqliteStore {
    /// The hot write path: ingest, decisions, claims, attempts (see [`writer`]).
    writer: writer::Writer,
    /// The event processor's reads (see [`reader`]).
    reader: reader::Reader,
    /// Every other write, each taken while the writer thread waits (see [`writer::Turn`]).
    write: SqlitePool,
    read: SqlitePool,
    index: super::policy_index::PolicyIndex,
    health: Arc<health::WriteHealth>,
    /// WAL frames beyond which `maintain` restarts the WAL (see [`checkpoint`]).
    wal_restart_frames: i64,
    /// Notified after a commit that journaled facts (see [`ConversationStore::journaled`]).
    journaled: Arc<tokio::sync::Notify>,
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
            .pragma("wal_autocheckpoint", "0")
            .pragma(
                "journal_size_limit",
                checkpoint::WAL_LIMIT_BYTES.to_string(),
            );
        let health = Arc::new(health::WriteHealth::default());
        let faults = health.clone();
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                let faults = faults.clone();
                Box::pin(async move { health::apply_fault(&faults, conn).await })
            })
            .after_release(|conn, _| Box::pin(async move { Ok(health::reusable(conn)) }))
            .connect_with(opts.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(false))
            .await?;
        let path = writer::path_of(url)?;
        let writer = writer::Writer::start(&path, health.clone())?;
        // After the writer: its connection has put the file in WAL mode.
        let reader = reader::Reader::start(&path)?;
        Ok(Self {
            writer,
            reader,
            write,
            read,
            index: Default::default(),
            health,
            wal_restart_frames: checkpoint::RESTART_AFTER_FRAMES,
            journaled: Default::default(),
        })
    }

    /// Loads the policy index (see [`super::policy_index`] for what it holds).
    pub async fn load_policy_index(&self) -> Result<(), StoreError> {
        let now = crate::time::now_ms();
        let (window, referrals) = super::policy_index::horizons(now);
        let rows = sqlx::query(
            "SELECT sender_id, wa_id, last_inbound_at, referral_at, free_until FROM contacts
             WHERE last_inbound_at > $1 OR referral_at > $2",
        )
        .bind(window)
        .bind(referrals)
        .fetch_all(&self.read)
        .await?;
        let contacts = rows
            .iter()
            .map(contact_times)
            .collect::<Result<Vec<_>, _>>()?;
        let rows =
            sqlx::query("SELECT sender_id, subject, category, action, at FROM consent_state")
                .fetch_all(&self.read)
                .await?;
        let consent = rows
            .iter()
            .map(consent_state_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.index.load(contacts, consent, now);
        let (active, consented) = self.index.sizes();
        tracing::info!(active, consented, "Policy index loaded.");
        Ok(())
    }

    /// A write transaction on the sqlx connection, for the writes that do not go through the
    /// writer thread; the thread waits until it ends.
    async fn tx(&self) -> Result<SqlxWrite, StoreError> {
        let turn = self.writer.turn().await?;
        Ok(SqlxWrite {
            tx: self.write.begin_with("BEGIN IMMEDIATE").await?,
            _turn: turn,
        })
    }
}

/// A transaction of the sqlx write connection and the [`writer::Turn`] it holds.
pub(super) struct SqlxWrite {
    tx: Transaction<'static, Sqlite>,
    _turn: writer::Turn,
}

impl SqlxWrite {
    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for SqlxWrite {
    type Target = Transaction<'static, Sqlite>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for SqlxWrite {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// One pending event row, or why it cannot be read.
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

/// A `contacts` row as the times the policy reads.
fn contact_times(r: &SqliteRow) -> Result<super::policy_index::ContactTimes, sqlx::Error> {
    Ok(super::policy_index::ContactTimes {
        sender_id: r.try_get("sender_id")?,
        wa_id: r.try_get("wa_id")?,
        last_inbound_at: r.try_get("last_inbound_at")?,
        referral_at: r.try_get("referral_at")?,
        free_until: r.try_get("free_until")?,
    })
}

/// A `consent_state` row.
fn consent_state_row(r: &SqliteRow) -> Result<super::policy_index::ConsentRow, sqlx::Error> {
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
    r: &SqliteRow,
) -> Result<(crate::consent::Category, crate::consent::Action), sqlx::Error> {
    let category: String = r.try_get("category")?;
    let action: String = r.try_get("action")?;
    Ok(super::consent_from_columns(&category, &action))
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

/// Key pairs per `IN (VALUES …)` lookup: well under SQLite's 32,766 bound parameters.
const PAIRS_PER_QUERY: usize = 500;

/// The rows `select` finds for every key pair: `select` ends in `IN (VALUES {})`, which is
/// filled with one `(?, ?)` per pair, [`PAIRS_PER_QUERY`] pairs per statement.
fn rows_for_pairs<T>(
    c: &rusqlite::Connection,
    select: &str,
    keys: &[(String, String)],
    row: impl Fn(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut found = Vec::new();
    for chunk in keys.chunks(PAIRS_PER_QUERY) {
        let values = vec!["(?, ?)"; chunk.len()].join(", ");
        let mut stmt = c.prepare_cached(&select.replace("{}", &values))?;
        let params = chunk.iter().flat_map(|(a, b)| [a, b]);
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        while let Some(r) = rows.next()? {
            found.push(row(r)?);
        }
    }
    Ok(found)
}

const MESSAGE_COLUMNS: &str = "id, sender_id, to_number, kind, state, wamid, reason, attempts, error_code, last_error, created_at, updated_at";

#[cfg(test)]
mod durability_tests;
