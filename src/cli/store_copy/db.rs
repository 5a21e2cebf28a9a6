//! The two ends of a copy: a source read in one snapshot, a destination written in batches.
//!
//! Each end is an enum over the backends with the SQL written once, `$N` placeholders and
//! row-value comparisons (`(a, b) > ($1, $2)`) that SQLite and PostgreSQL both understand.
//! Values travel as [`Value`]s, typed by the column's [`Kind`], so the same Rust value is
//! decoded on one side and bound on the other.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgRow;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, PgPool, Postgres, Row as _, Sqlite, Transaction};

use super::tables::{Kind, Table};
use crate::store::postgres::connect;

/// The SQLite schema, embedded (the same directory the SQLite store migrates from).
pub(super) static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// One column value of one row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
    Bool(Option<bool>),
}

/// One row: its values in the table's column order.
pub(crate) type Row = Vec<Value>;

/// Which backend a store URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(crate) fn of(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            anyhow::bail!(
                "'{}' is not a store URL: use sqlite://path/to/ringback.db or \
                 postgres://user@host/database",
                redact(url)
            )
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATOR,
            Self::Postgres => &connect::MIGRATOR,
        }
    }
}

/// `url` with any password replaced by `***`, for messages.
pub(crate) use crate::config::redact::url as redact;

/// Binds `values` in order onto a query of either backend (the `Value` → Rust type mapping).
macro_rules! bind_all {
    ($query:expr, $values:expr) => {{
        let mut q = $query;
        for v in $values {
            q = match v {
                Value::Int(x) => q.bind(*x),
                Value::Text(x) => q.bind(x.clone()),
                Value::Blob(x) => q.bind(x.clone()),
                Value::Bool(x) => q.bind(*x),
                Value::Real(x) => q.bind(*x),
            };
        }
        q
    }};
}

/// Decodes a row of either backend by the table's column kinds.
macro_rules! decode_row {
    ($row:expr, $table:expr) => {{
        let row = $row;
        $table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Ok(match c.kind {
                    Kind::Int => Value::Int(row.try_get(i)?),
                    Kind::Text => Value::Text(row.try_get(i)?),
                    Kind::Blob => Value::Blob(row.try_get(i)?),
                    Kind::Bool => Value::Bool(row.try_get(i)?),
                    Kind::Real => Value::Real(row.try_get(i)?),
                })
            })
            .collect::<Result<Row, sqlx::Error>>()
    }};
}

fn sqlite_options(url: &str) -> anyhow::Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)
        .with_context(|| format!("reading the SQLite URL {url}"))?
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true))
}

/// The source, inside one read transaction: every table is read from the same snapshot, so
/// the copy is consistent (every reference resolves) even while a server keeps writing.
pub(crate) enum Source {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Source {
    /// Opens the source (it must exist) and starts the snapshot. Refuses a source whose schema
    /// is not exactly the one this binary knows: the copy would miss or misread columns.
    pub(crate) async fn open(url: &str) -> anyhow::Result<Self> {
        let backend = Backend::of(url)?;
        let mut source = match backend {
            Backend::Sqlite => {
                // A missing file is an error, not a new empty database to copy nothing from.
                let opts = sqlite_options(url)?.create_if_missing(false);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts)
                    .await
                    .with_context(|| format!("opening the source {url} (it must exist)"))?;
                // Deferred BEGIN: the snapshot is taken at the first read and held until the
                // end. In WAL mode the server keeps writing meanwhile; it only cannot
                // truncate the WAL past this snapshot until the copy ends.
                Self::Sqlite(pool.begin().await?)
            }
            Backend::Postgres => {
                let pool = connect::pool(url)
                    .await
                    .with_context(|| format!("connecting to the source {}", redact(url)))?;
                Self::Postgres(
                    pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                        .await?,
                )
            }
        };
        source.check_schema(backend).await?;
        Ok(source)
    }

    async fn check_schema(&mut self, backend: Backend) -> anyhow::Result<()> {
        const SQL: &str = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
        let applied: Vec<i64> = match self {
            Self::Sqlite(tx) => sqlx::query_scalar(SQL).fetch_all(&mut **tx).await,
            Self::Postgres(tx) => sqlx::query_scalar(SQL).fetch_all(&mut **tx).await,
        }
        .context(
            "reading the source's schema version (_sqlx_migrations); is it a Ringback store?",
        )?;
        let known: Vec<i64> = backend
            .migrator()
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| m.version)
            .collect();
        if applied != known {
            anyhow::bail!(
                "the source's schema has migrations {applied:?} but this ringback expects \
                 {known:?}: run `ringback migrate` with this binary against the source first \
                 (an older source), or copy with the ringback that wrote it (a newer one)"
            );
        }
        Ok(())
    }

    /// Rows in `table` in the snapshot.
    pub(crate) async fn count(&mut self, table: &Table) -> anyhow::Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name);
        Ok(match self {
            Self::Sqlite(tx) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(&mut **tx)
                    .await?
            }
            Self::Postgres(tx) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(&mut **tx)
                    .await?
            }
        })
    }

    /// Up to `limit` rows of `table` whose key follows `after` (from the start when `None`),
    /// in key order: keyset pages, so each batch costs the same however far the copy is.
    pub(crate) async fn batch(
        &mut self,
        table: &Table,
        after: Option<&[Value]>,
        limit: usize,
    ) -> anyhow::Result<Vec<Row>> {
        let columns = column_list(table);
        let key = table.key.join(", ");
        let n = table.key.len();
        let sql = match after {
            None => format!(
                "SELECT {columns} FROM {} ORDER BY {key} LIMIT $1",
                table.name
            ),
            Some(_) => format!(
                "SELECT {columns} FROM {} WHERE ({key}) > ({}) ORDER BY {key} LIMIT ${}",
                table.name,
                placeholders(1, n),
                n + 1
            ),
        };
        let after = after.unwrap_or_default();
        let limit = i64::try_from(limit).expect("a batch size fits in i64");
        match self {
            Self::Sqlite(tx) => {
                let rows: Vec<SqliteRow> = bind_all!(sqlx::query(AssertSqlSafe(sql)), after)
                    .bind(limit)
                    .fetch_all(&mut **tx)
                    .await?;
                rows.iter()
                    .map(|r| decode_row!(r, table).map_err(Into::into))
                    .collect()
            }
            Self::Postgres(tx) => {
                let rows: Vec<PgRow> = bind_all!(sqlx::query(AssertSqlSafe(sql)), after)
                    .bind(limit)
                    .fetch_all(&mut **tx)
                    .await?;
                rows.iter()
                    .map(|r| decode_row!(r, table).map_err(Into::into))
                    .collect()
            }
        }
    }

    /// Ends the read transaction (nothing was written).
    pub(crate) async fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(tx) => tx.rollback().await?,
            Self::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

/// The destination: created if needed and migrated to this binary's schema before any row.
pub(crate) enum Destination {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Destination {
    pub(crate) async fn open_and_migrate(url: &str) -> anyhow::Result<Self> {
        Ok(match Backend::of(url)? {
            Backend::Sqlite => {
                // The same file settings the SQLite store opens with, so the server finds
                // the database as it would have made it.
                let opts = sqlite_options(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts)
                    .await
                    .with_context(|| format!("opening the destination {url}"))?;
                SQLITE_MIGRATOR
                    .run(&pool)
                    .await
                    .context("migrating the destination")?;
                Self::Sqlite(pool)
            }
            Backend::Postgres => {
                let pool = connect::pool(url)
                    .await
                    .with_context(|| format!("connecting to the destination {}", redact(url)))?;
                connect::migrate(&pool)
                    .await
                    .context("migrating the destination")?;
                Self::Postgres(pool)
            }
        })
    }

    /// Inserts `rows`, skipping any whose primary key is already there; returns how many were
    /// new. A row that collides on another unique column (same dedup key, different id) is an
    /// error: the destination then holds data the source does not.
    pub(crate) async fn insert(&self, table: &Table, rows: &[Row]) -> anyhow::Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let width = table.columns.len();
        let values = (0..rows.len())
            .map(|r| format!("({})", placeholders(r * width + 1, width)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {values} ON CONFLICT ({}) DO NOTHING",
            table.name,
            column_list(table),
            table.key.join(", ")
        );
        let values = rows.iter().flatten();
        let done = match self {
            Self::Sqlite(pool) => bind_all!(sqlx::query(AssertSqlSafe(sql)), values)
                .execute(pool)
                .await?
                .rows_affected(),
            Self::Postgres(pool) => bind_all!(sqlx::query(AssertSqlSafe(sql)), values)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }

    /// Rows in `table` now.
    pub(crate) async fn count(&self, table: &Table) -> anyhow::Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name);
        Ok(match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(pool)
                    .await?
            }
            Self::Postgres(pool) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(pool)
                    .await?
            }
        })
    }

    /// After copying ids into an identity column, moves its sequence past the largest id so
    /// the next row the server inserts does not collide. (SQLite needs nothing: a row id is
    /// max + 1, and AUTOINCREMENT's sqlite_sequence follows explicit ids by itself.)
    pub(crate) async fn reset_identity(&self, table: &Table) -> anyhow::Result<()> {
        if let Self::Postgres(pool) = self
            && table.has_identity()
        {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE(MAX(id), 0) + 1, false)
                 FROM {0}",
                table.name
            );
            sqlx::query(AssertSqlSafe(sql))
                .execute(pool)
                .await
                .with_context(|| {
                    format!("moving {}'s id sequence past the copied ids", table.name)
                })?;
        }
        Ok(())
    }

    pub(crate) async fn close(self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

fn column_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$first, $first+1, …` (`count` of them).
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
