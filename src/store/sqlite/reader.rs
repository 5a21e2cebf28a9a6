//! A thread with its own read connection for the event processor's reads.
//!
//! Every batch the processor decides starts with three reads: the pending events, the calls
//! they continue and the contacts they reply to. Through sqlx each is a round trip to one of its
//! worker threads and back, and each row a message of its own; during a burst on one core those
//! hops, queued behind the HTTP tasks, were a third of the time from acknowledgement to reply.
//! Here a read is a closure run on one plain rusqlite connection, answered once. WAL mode lets
//! it read while the writer thread writes; it sees what was committed when the read began.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc as std_mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::store::StoreError;

type Job = Box<dyn FnOnce(&Connection) + Send>;

/// Handle to the reader thread; the thread ends when the last handle is dropped.
pub(super) struct Reader {
    jobs: std_mpsc::Sender<Job>,
}

fn stopped() -> StoreError {
    StoreError::Write(
        "the SQLite reader dropped this read (its thread stopped, or the read panicked: see the log)"
            .into(),
    )
}

impl Reader {
    /// Opens a read connection to the database file at `path` and starts its thread.
    pub(super) fn start(path: &str) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA query_only = ON;")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(64);
        let (jobs, rx) = std_mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-reader".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    // A read that panics (a bug) drops its answer; the thread goes on.
                    if std::panic::catch_unwind(AssertUnwindSafe(|| job(&conn))).is_err() {
                        tracing::error!("A read panicked on the SQLite reader thread.");
                    }
                }
            })
            .map_err(|e| StoreError::Write(format!("cannot start the SQLite reader: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs `f` on the reader's connection.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, wait) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = answer.send(f(conn));
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_what_was_committed_and_survives_a_panicking_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("r.db");
        let path = path.to_str().expect("utf-8 path");
        let setup = Connection::open(path).expect("open");
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (7);",
            )
            .expect("setup");
        let reader = Reader::start(path).expect("reader starts");
        let read =
            || reader.run(|c| Ok(c.query_row("SELECT SUM(x) FROM t", [], |r| r.get::<_, i64>(0))?));
        assert_eq!(read().await.expect("read"), 7);
        setup
            .execute("INSERT INTO t VALUES (5)", [])
            .expect("insert");
        assert_eq!(read().await.expect("read"), 12);
        let panicked = reader
            .run(|_| -> Result<(), StoreError> { panic!("a bug") })
            .await;
        assert!(
            matches!(panicked, Err(StoreError::Write(_))),
            "{panicked:?}"
        );
        assert_eq!(read().await.expect("the thread goes on"), 12);
        let written = reader
            .run(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
            .await;
        assert!(written.is_err(), "the reader's connection is read-only");
    }
}
