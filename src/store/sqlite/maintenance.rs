//! SQLite: keeping the store itself healthy: migrations, housekeeping, retention, write health.

use super::*;

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let _turn = self.writer.turn().await?;
        sqlx::migrate!("migrations/sqlite").run(&self.write).await?;
        Ok(())
    }
    async fn maintain(&self) -> Result<(), StoreError> {
        self.index.expire(crate::time::now_ms());
        checkpoint::run(
            &self.read,
            &self.write,
            &self.writer,
            self.wal_restart_frames,
        )
        .await
    }
    async fn prune(&self, kind: RowKind, before: Millis, limit: u32) -> Result<u64, StoreError> {
        self.prune_batch(kind, before, limit).await
    }
    fn write_failure(&self) -> Option<String> {
        self.health.failure()
    }
    async fn inject_write_fault(&self, fault: Option<WriteFault>) -> Result<(), StoreError> {
        self.health.set_fault(fault);
        // The idle connection gets it now; a replacement gets it from `after_connect`.
        let mut conn = self.write.acquire().await?;
        health::apply_fault(&self.health, &mut conn).await?;
        Ok(())
    }
}
