//! Injected write faults on PostgreSQL (test hooks), and the shared [`WriteHealth`].
//!
//! [`WriteFault::ReadOnly`] is applied to every connection as `default_transaction_read_only`,
//! so each write fails inside PostgreSQL with a real error (SQLSTATE 25006, "cannot execute
//! INSERT in a read-only transaction") that callers see as [`crate::store::StoreError::Database`],
//! exactly like a server switched to read-only (a standby after failover). New connections get
//! the current setting from `after_connect`; a pooled connection opened before the fault
//! changed is closed when next acquired (`before_acquire`), so the change reaches every
//! connection without waiting for idle ones to expire.
//!
//! [`WriteFault::Full`] (a full disk) has no PostgreSQL equivalent a client can cause; the
//! store refuses to inject it (see `maintenance.rs`).

use std::sync::Arc;

use sqlx::Executor;
use sqlx::postgres::{PgConnection, PgPoolOptions};

use crate::store::WriteFault;
pub(super) use crate::store::health::WriteHealth;

/// Adds the hooks that keep every connection's read-only setting equal to the injected fault.
pub(super) fn with_fault_hooks(opts: PgPoolOptions, health: &Arc<WriteHealth>) -> PgPoolOptions {
    let on_connect = health.clone();
    let on_acquire = health.clone();
    opts.after_connect(move |conn, _| {
        let health = on_connect.clone();
        Box::pin(async move { apply_fault(&health, conn).await })
    })
    .before_acquire(move |_, meta| {
        let keep = !on_acquire.predates_fault_change(meta.age);
        Box::pin(async move { Ok(keep) })
    })
}

async fn apply_fault(health: &WriteHealth, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    // Only a connection opened while a fault is set needs a statement; the others start with
    // the server's default.
    if health.fault() == Some(WriteFault::ReadOnly) {
        conn.execute("SET default_transaction_read_only = on")
            .await?;
    }
    Ok(())
}
