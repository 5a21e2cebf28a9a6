//! PostgreSQL: keeping the store itself healthy: migrations, housekeeping, retention, write health.

use super::*;

#[async_trait]
impl MaintenanceStore for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        connect::migrate(&self.pool).await?;
        Ok(())
    }
    /// Nothing to do: PostgreSQL's autovacuum reclaims space and there is no WAL file to
    /// checkpoint from here, nor an in-memory index to expire.
    async fn maintain(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn prune(&self, kind: RowKind, before: Millis, limit: u32) -> Result<u64, StoreError> {
        self.prune_batch(kind, before, limit).await
    }
    fn write_failure(&self) -> Option<String> {
        self.health.failure()
    }
    /// `ReadOnly`: every connection gets `default_transaction_read_only = on`, so each write
    /// fails in PostgreSQL itself (SQLSTATE 25006) as on a read-only server; `None` lifts it
    /// (see `health.rs` for how it reaches pooled connections). `Full` cannot be caused from a
    /// client: it fails with [`StoreError::Corrupt`] and changes nothing.
    async fn inject_write_fault(&self, fault: Option<WriteFault>) -> Result<(), StoreError> {
        if fault == Some(WriteFault::Full) {
            return Err(StoreError::Corrupt(
                "WriteFault::Full is not supported on PostgreSQL".into(),
            ));
        }
        self.health.set_fault(fault);
        Ok(())
    }
}
