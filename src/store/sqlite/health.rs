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
//! Writes that fail are remembered until a write that changed something succeeds, so
//! `/healthz` can report the store as failing while nothing can be stored.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Executor};

use crate::store::{StoreError, WriteFault};

/// The largest page count SQLite accepts: "no limit" when a simulated full disk ends.
const NO_PAGE_LIMIT: u32 = 4_294_967_294;

/// Shared between the store and its write pool's connection hooks.
#[derive(Default)]
pub(super) struct WriteHealth {
    last_error: Mutex<Option<String>>,
    /// The injected [`WriteFault`] (0 = none), applied to every new write connection.
    fault: AtomicU8,
}

impl WriteHealth {
    /// Remembers a failed write, or forgets the last failure once a write that changed
    /// something succeeded (an empty claim proves nothing about free space).
    pub(super) fn observe<T>(
        &self,
        result: Result<T, StoreError>,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T, StoreError> {
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &result {
            Ok(v) if changed(v) => {
                if last.take().is_some() {
                    tracing::info!("Store writes succeed again.");
                }
            }
            Ok(_) => {}
            Err(e) => *last = Some(e.to_string()),
        }
        result
    }

    pub(super) fn failure(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(super) fn set_fault(&self, fault: Option<WriteFault>) {
        let code = match fault {
            None => 0,
            Some(WriteFault::Full) => 1,
            Some(WriteFault::ReadOnly) => 2,
        };
        self.fault.store(code, Ordering::Release);
    }

    /// Applies the injected fault (or its absence) to a write connection.
    pub(super) async fn apply_fault(&self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        let (pages, query_only) = match self.fault.load(Ordering::Acquire) {
            // SQLite raises a limit below the current size to the current size: no growth.
            1 => (1, false),
            2 => (NO_PAGE_LIMIT, true),
            _ => (NO_PAGE_LIMIT, false),
        };
        let sql = format!("PRAGMA max_page_count = {pages}; PRAGMA query_only = {query_only}");
        conn.execute(sqlx::AssertSqlSafe(sql)).await?;
        Ok(())
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
