use std::sync::Arc;

use tokio::sync::Notify;

use super::*;
use crate::config::telephony::spool_path;
use crate::inbound::{CallOutcome, CallSource};
use crate::ingestor::Ingestor;
use crate::telephony::Kept;

fn call(id: &str) -> CallEvent {
    CallEvent {
        source: CallSource::Sip,
        provider_call_id: id.into(),
        from_raw: "+14155550123".into(),
        to_raw: Some("+15550100001".into()),
        outcome: CallOutcome::Canceled,
        ring_seconds: Some(3),
        talk_seconds: None,
        caller_name: None,
        occurred_at: 1_700_000_000_000,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    sink: CallSink,
    spool: Spool,
    /// A second connection to the same file, to break and mend the store.
    admin: sqlx::SqlitePool,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ringback.db");
    let url = format!("sqlite://{}", db.display());
    let store = crate::store::open(&url).await.unwrap();
    let spool = Spool::open(spool_path(&url, ""));
    let sink = CallSink::new(
        Ingestor::start(store, Arc::new(Notify::new())),
        spool.clone(),
    );
    let admin = sqlx::SqlitePool::connect(&url).await.unwrap();
    Fixture {
        _dir: dir,
        sink,
        spool,
        admin,
    }
}

impl Fixture {
    /// Every telephony ingest now fails, as a store that lost its disk would.
    async fn break_store(&self) {
        sqlx::query(
            "CREATE TRIGGER fail_calls BEFORE INSERT ON raw_payloads BEGIN \
             SELECT RAISE(ABORT, 'store unavailable (test)'); END",
        )
        .execute(&self.admin)
        .await
        .unwrap();
    }

    async fn mend_store(&self) {
        sqlx::query("DROP TRIGGER fail_calls")
            .execute(&self.admin)
            .await
            .unwrap();
    }

    async fn stored(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT dedup_key FROM inbound_events ORDER BY id")
            .fetch_all(&self.admin)
            .await
            .unwrap()
    }

    fn lines(&self) -> usize {
        std::fs::read_to_string(self.spool.path())
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn a_failing_store_spools_in_order_and_replay_stores_each_call_once() {
    let f = fixture().await;
    assert_eq!(
        f.sink
            .deliver_or_spool(b"INVITE 1".to_vec(), call("c1"))
            .await
            .unwrap(),
        Kept::Stored { new: true }
    );
    f.break_store().await;
    let kept = f
        .sink
        .deliver_or_spool(b"INVITE 2".to_vec(), call("c2"))
        .await
        .unwrap();
    assert_eq!(kept, Kept::Spooled);
    assert_eq!(f.lines(), 1);
    f.mend_store().await;
    // The store answers again, but c2 is still spooled: c3 queues behind it.
    assert_eq!(
        f.sink
            .deliver_or_spool(b"INVITE 3".to_vec(), call("c3"))
            .await
            .unwrap(),
        Kept::Spooled
    );
    assert_eq!(f.lines(), 2);
    // A replay that stops half-way (the store failing again) keeps what is left...
    f.break_store().await;
    assert!(f.spool.replay(&f.sink).await.is_err());
    assert!(f.spool.is_pending());
    f.mend_store().await;
    // ...and a replay that runs twice stores nothing twice.
    assert_eq!(f.spool.replay(&f.sink).await.unwrap(), 2);
    assert_eq!(f.spool.replay(&f.sink).await.unwrap(), 0);
    assert_eq!(
        f.stored().await,
        [
            "sip:call:c1:canceled",
            "sip:call:c2:canceled",
            "sip:call:c3:canceled"
        ]
    );
    assert!(!f.spool.is_pending());
    assert_eq!(f.lines(), 0);
    assert!(!f.spool.inner.replaying.exists());
    // Caught up: calls go straight to the store again.
    assert_eq!(
        f.sink
            .deliver_or_spool(b"INVITE 4".to_vec(), call("c4"))
            .await
            .unwrap(),
        Kept::Stored { new: true }
    );
}

#[tokio::test]
async fn a_torn_last_line_is_skipped_and_a_reopened_spool_is_pending() {
    let f = fixture().await;
    f.break_store().await;
    f.sink
        .deliver_or_spool(b"x".to_vec(), call("c1"))
        .await
        .unwrap();
    // A crash in the middle of the next append.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(f.spool.path())
        .unwrap();
    file.write_all(b"{\"call\":{\"sour").unwrap();
    // A new process finds it pending.
    let again = Spool::open(f.spool.path().to_path_buf());
    assert!(again.is_pending());
    f.mend_store().await;
    let sink = CallSink::new(f.sink.ingestor.clone(), again.clone());
    assert_eq!(again.replay(&sink).await.unwrap(), 1);
    assert_eq!(f.stored().await, ["sip:call:c1:canceled"]);
    assert!(!again.is_pending());
}
