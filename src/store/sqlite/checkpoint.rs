//! WAL checkpoints, run from `maintain` off the commit path.
//!
//! A `PASSIVE` checkpoint copies committed pages into the database file without blocking
//! anyone, but it never shortens the WAL: SQLite starts writing the WAL from the top again only
//! when a checkpoint has caught up with *every* frame, and under steady traffic new frames keep
//! arriving, so the WAL grew without bound (6 GB in a 12-minute soak at 50 calls/s while the
//! database itself stayed at 56 MB). So once the WAL holds more than a bound, a `RESTART`
//! checkpoint runs on the sqlx write connection while the writer thread waits (its turn):
//! holding the only writer, it waits (busy timeout) for readers on older snapshots, copies the
//! few frames the passive pass left and makes the next commit write the WAL from the top.
//!
//! `RESTART`, not `TRUNCATE`: truncating the file to zero held the writer for ~25 ms (freeing
//! 64 MiB of blocks), and the WAL then grew again block by block, every commit's fsync carrying
//! the file's new size. At 100 calls/s the bound is reached every few seconds, so that stall
//! was the webhook → send p99 of `ringback bench`. Restarting keeps the file and its blocks
//! (the turn lasts ~1.5 ms); `journal_size_limit` ([`WAL_LIMIT_BYTES`]) trims it back when a
//! burst made it much larger.

use sqlx::{Row, SqlitePool};

use crate::store::StoreError;

/// WAL frames (pages) beyond which the WAL is restarted: 64 MiB at SQLite's 4 KiB pages.
pub(super) const RESTART_AFTER_FRAMES: i64 = 16_384;

/// The size the WAL file is trimmed to when it restarts (`PRAGMA journal_size_limit`): twice
/// the bound, since frames carry a header and the WAL grows between two maintenance passes;
/// at the bound itself every restart would trim the file and it would grow back.
pub(super) const WAL_LIMIT_BYTES: i64 = 2 * RESTART_AFTER_FRAMES * 4096;

/// A passive checkpoint, then a restarting one when the WAL holds more than `restart_after`
/// frames.
pub(super) async fn run(
    read: &SqlitePool,
    write: &SqlitePool,
    writer: &super::writer::Writer,
    restart_after: i64,
) -> Result<(), StoreError> {
    // Columns: busy, frames in the WAL, frames checkpointed.
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(read)
        .await?;
    let frames: i64 = row.try_get(1)?;
    if frames > restart_after {
        let _turn = writer.turn().await?;
        let row = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
            .fetch_one(write)
            .await?;
        let busy: i64 = row.try_get(0)?;
        tracing::debug!(
            frames,
            busy = busy != 0,
            "Restarting WAL checkpoint finished."
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::inbound::{InboundEvent, KeyedEvent};

    fn request(key: &str) -> IngestRequest {
        IngestRequest {
            source: "whatsapp",
            raw: vec![b'x'; 8_192],
            events: vec![KeyedEvent {
                dedup_key: key.into(),
                event: InboundEvent::Other {
                    field: "test".into(),
                    value: serde_json::json!({"pad": "y".repeat(8_192)}),
                },
            }],
            received_at: 1_000,
        }
    }

    #[tokio::test]
    async fn a_wal_over_the_bound_is_restarted_by_maintenance() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("t.db");
        let mut store = SqliteStore::open(&format!("sqlite://{}", db.display()))
            .await
            .expect("store opens");
        store.migrate().await.expect("migrations apply");
        store.wal_restart_frames = 50;
        for i in 0..40 {
            store
                .ingest(&[request(&format!("k{i}"))])
                .await
                .expect("ingest");
        }
        let wal = dir.path().join("t.db-wal");
        let before = std::fs::metadata(&wal).expect("wal exists").len();
        assert!(
            before > 50 * 4096,
            "the test must overfill the WAL: {before} bytes"
        );
        store.maintain().await.expect("maintenance runs");
        // Writes go on after the restart, from the top of the WAL, and the data is all there.
        store
            .ingest(&[request("after")])
            .await
            .expect("ingest after");
        assert_eq!(store.pending_events(100).await.expect("read").len(), 41);
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&store.read)
            .await
            .expect("checkpoint");
        let frames: i64 = sqlx::Row::get(&row, 1);
        assert!(
            frames < 50,
            "the WAL holds only the write after the restart: {frames} frames"
        );
        assert!(std::fs::metadata(&wal).expect("wal exists").len() <= before);
    }
}
