//! Keeping the single write connection usable through write failures, and saying when
//! writes fail.
//!
//! When a write fails with SQLITE_FULL (or an I/O error), SQLite may roll the whole
//! transaction back by itself. sqlx does not notice: its rollback then fails ("no transaction
//! is active"), its transaction depth stays at one, and every later `BEGIN` on that connection
//! fails with "attempted to call begin_with at non-zero transaction depth", even after space
//! returns. So a connection that comes back to the pool still inside a transaction is closed,
//! and the pool opens a clean one for the next write.
//!
//! Which write failed last, and which fault is injected, is kept by the backend-neutral
//! [`WriteHealth`] (`store/health.rs`); this file applies a fault to an SQLite connection.

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Executor};

use crate::store::WriteFault;
pub(super) use crate::store::health::WriteHealth;

/// The largest page count SQLite accepts: "no limit" when a simulated full disk ends.
const NO_PAGE_LIMIT: u32 = 4_294_967_294;

/// Applies the injected fault (or its absence) to a write connection.
pub(super) async fn apply_fault(
    health: &WriteHealth,
    conn: &mut SqliteConnection,
) -> Result<(), sqlx::Error> {
    let (pages, query_only) = fault_pragmas(health.fault());
    let sql = format!("PRAGMA max_page_count = {pages}; PRAGMA query_only = {query_only}");
    conn.execute(sqlx::AssertSqlSafe(sql)).await?;
    Ok(())
}

/// The `max_page_count` and `query_only` that simulate `fault` (or lift it).
pub(super) fn fault_pragmas(fault: Option<WriteFault>) -> (u32, bool) {
    match fault {
        // SQLite raises a limit below the current size to the current size: no growth.
        Some(WriteFault::Full) => (1, false),
        Some(WriteFault::ReadOnly) => (NO_PAGE_LIMIT, true),
        None => (NO_PAGE_LIMIT, false),
    }
}

/// The write pool's `after_release` check: keep a connection only if it is outside any
/// transaction (see the module comment for why one still inside is closed).
pub(super) fn reusable(conn: &SqliteConnection) -> bool {
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!(
            "A write transaction failed; its connection is closed and a fresh one will be opened."
        );
    }
    clean
}
