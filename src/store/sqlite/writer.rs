//! The SQLite write path: one thread owns the write connection and commits every kind of
//! write that queued up meanwhile — webhooks ingested, events decided, sends claimed, started
//! and recorded — in one transaction, so one fsync serves all of them.
//!
//! Why a thread of its own: SQLite has one writer at a time anyway, and through sqlx each
//! statement is a message to the connection's worker thread and back (two thread wake-ups);
//! a send needs some twenty statements, so that hop was most of the write path's CPU, and
//! the ingestor's stream of transactions left the event processor waiting for the connection
//! (it decided 0-512 events/s during a 5k/s burst). Here statements run synchronously on
//! cached prepared statements, and the queue is first come, first served for every kind of
//! write: none of them starves the others.
//!
//! Each job runs under its own savepoint, so a job that fails (a constraint, a full disk)
//! rolls back only its own changes; the others of the group still commit. A job's caller is
//! answered only after the group's `COMMIT` returned: durable before acknowledged.
//!
//! The rarer writes that still go through sqlx (maintenance, keys, templates, retention…)
//! take a [`Turn`]: the thread commits its group and waits until they are done, instead of the
//! two connections fighting over the lock with busy-wait sleeps.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::health::WriteHealth;
use crate::store::{StoreError, WriteFault};

/// The most jobs committed in one transaction: bounds how long one group holds the lock.
const MAX_GROUP: usize = 512;

/// What a finished job does with the group's commit result (`Some(why)` when it failed).
type Finish = Box<dyn FnOnce(Option<&str>) + Send>;

/// A job given the connection (or, when no transaction could be opened, why not: it then
/// answers with that error without running).
type Work = Box<dyn FnOnce(Result<&Connection, &str>) -> (bool, Finish) + Send>;

enum Job {
    Write(Work),
    /// Another connection wants to write: commit, answer `ready`, wait for `resume`.
    Pause {
        ready: oneshot::Sender<()>,
        resume: oneshot::Receiver<()>,
    },
}

/// Handle to the writer thread; the thread ends when the last handle is dropped.
pub(super) struct Writer {
    jobs: std_mpsc::Sender<Job>,
}

/// While held, the writer thread waits between transactions (see the module comment).
pub(super) struct Turn {
    _resume: oneshot::Sender<()>,
}

fn stopped() -> StoreError {
    StoreError::Write(
        "the SQLite writer dropped this write (its thread stopped, or the write panicked: see the log)"
            .into(),
    )
}

impl Writer {
    /// Opens the write connection to the database file at `path` and starts its thread.
    pub(super) fn start(path: &str, health: Arc<WriteHealth>) -> Result<Self, StoreError> {
        let conn = open(path)?;
        let (jobs, rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || serve(conn, rx, &health))
            .map_err(|e| StoreError::Write(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs `f` in the next group transaction; answers once that transaction committed.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, wait) = oneshot::channel();
        let work: Work = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => f(conn),
                Err(why) => Err(StoreError::Write(why.to_string())),
            };
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let _ = answer.send(match (result, commit) {
                    (Err(e), _) => Err(e),
                    (Ok(v), None) => Ok(v),
                    (Ok(_), Some(why)) => Err(StoreError::Write(why.to_string())),
                });
            });
            (ok, finish)
        });
        self.jobs.send(Job::Write(work)).map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }

    /// Waits until the writer thread is between transactions and holds it there.
    pub(super) async fn turn(&self) -> Result<Turn, StoreError> {
        let (ready, is_ready) = oneshot::channel();
        let (resume, resumed) = oneshot::channel();
        self.jobs
            .send(Job::Pause {
                ready,
                resume: resumed,
            })
            .map_err(|_| stopped())?;
        is_ready.await.map_err(|_| stopped())?;
        Ok(Turn { _resume: resume })
    }
}

/// The SQLite file named by a store URL (`sqlite://path`, `sqlite:path?mode=rwc`).
pub(super) fn path_of(url: &str) -> Result<String, StoreError> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or_default())
        .unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    }
    Ok(path.to_string())
}

fn open(path: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    // The same settings as the read pool's (see `SqliteStore::open` for why each), and the
    // savepoint journal in memory: each job of a group commit runs in a savepoint, and with
    // the journal in a temporary file every page a job first touches was written there with
    // a `pwrite` (11 % of the server's CPU under a burst, by `perf`).
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {};
         PRAGMA temp_store = MEMORY;",
        super::checkpoint::WAL_LIMIT_BYTES
    ))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

fn serve(conn: Connection, rx: std_mpsc::Receiver<Job>, health: &WriteHealth) {
    let mut fault = Applied::Unknown;
    let mut group: Vec<Work> = Vec::with_capacity(MAX_GROUP);
    while let Ok(job) = rx.recv() {
        let mut pause = None;
        match job {
            Job::Write(w) => group.push(w),
            Job::Pause { ready, resume } => pause = Some((ready, resume)),
        }
        while pause.is_none() && group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Job::Write(w)) => group.push(w),
                Ok(Job::Pause { ready, resume }) => pause = Some((ready, resume)),
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            fault.sync(&conn, health);
            commit_group(&conn, group.drain(..));
        }
        if let Some((ready, resume)) = pause
            && ready.send(()).is_ok()
        {
            // Until the other writer drops its turn (or gives up).
            let _ = resume.blocking_recv();
        }
    }
}

fn commit_group(conn: &Connection, group: impl Iterator<Item = Work>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let why = e.to_string();
        for work in group {
            let (_, finish) = work(Err(&why));
            finish(Some(&why));
        }
        return;
    }
    let mut finishes: Vec<Finish> = Vec::new();
    // Set when SQLite rolled the whole transaction back by itself (a full disk, an I/O error).
    let mut lost: Option<String> = None;
    for work in group {
        if let Some(why) = &lost {
            let (_, finish) = work(Err(why));
            finish(Some(why));
            continue;
        }
        if let Err(e) = savepoint(conn, "SAVEPOINT job") {
            lost = Some(e.to_string());
            let (_, finish) = work(Err(&e.to_string()));
            finish(Some(&e.to_string()));
            continue;
        }
        // A job that panics (a bug) must not take the thread, and every later write, with
        // it: its changes are rolled back and its caller told (its answer is dropped).
        let Ok((ok, finish)) = std::panic::catch_unwind(AssertUnwindSafe(|| work(Ok(conn)))) else {
            tracing::error!(
                "A write job panicked on the SQLite writer thread; its changes are rolled back."
            );
            if savepoint(conn, "ROLLBACK TO job")
                .and_then(|_| savepoint(conn, "RELEASE job"))
                .is_err()
                || conn.is_autocommit()
            {
                lost = Some("the transaction ended after a write job panicked".into());
            }
            continue;
        };
        let end = if ok {
            savepoint(conn, "RELEASE job")
        } else {
            savepoint(conn, "ROLLBACK TO job").and_then(|_| savepoint(conn, "RELEASE job"))
        };
        finishes.push(finish);
        if end.is_err() || conn.is_autocommit() {
            lost = Some(format!(
                "the write was rolled back with the rest of its transaction after another write failed ({})",
                end.err()
                    .map_or("transaction ended".to_string(), |e| e.to_string())
            ));
        }
    }
    let commit = match &lost {
        Some(why) => Some(why.clone()),
        None => conn.execute_batch("COMMIT").err().map(|e| e.to_string()),
    };
    if commit.is_some() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for finish in finishes {
        finish(commit.as_deref());
    }
}

fn savepoint(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The injected write fault as last applied to the writer's connection.
#[derive(PartialEq)]
enum Applied {
    Unknown,
    Is(Option<WriteFault>),
}

impl Applied {
    fn sync(&mut self, conn: &Connection, health: &WriteHealth) {
        let wanted = health.fault();
        if *self == Applied::Is(wanted) {
            return;
        }
        let (pages, query_only) = super::health::fault_pragmas(wanted);
        let sql = format!("PRAGMA max_page_count = {pages}; PRAGMA query_only = {query_only}");
        match conn.execute_batch(&sql) {
            Ok(()) => *self = Applied::Is(wanted),
            Err(e) => tracing::warn!(error.message = %e, "Could not apply the write fault."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &tempfile::TempDir) -> Writer {
        let path = dir.path().join("w.db");
        Writer::start(path.to_str().expect("utf-8 path"), Arc::default()).expect("writer starts")
    }

    fn insert(w: &Writer, x: i64) -> impl Future<Output = Result<usize, StoreError>> + '_ {
        w.run(move |c| Ok(c.execute("INSERT INTO t (x) VALUES (?1)", [x])?))
    }

    async fn count(w: &Writer) -> i64 {
        w.run(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn a_failing_write_rolls_back_alone_and_a_panicking_one_does_not_stop_the_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let w = writer(&dir);
        w.run(|c| Ok(c.execute_batch("CREATE TABLE t (x INTEGER UNIQUE)")?))
            .await
            .expect("table");
        // Submitted together, so they usually share one group transaction.
        let (a, b, c) = tokio::join!(insert(&w, 1), insert(&w, 1), insert(&w, 2));
        assert_eq!(a.expect("first insert"), 1);
        assert!(b.expect_err("duplicate").to_string().contains("UNIQUE"));
        assert_eq!(c.expect("third insert"), 1);
        assert_eq!(count(&w).await, 2, "only the failing write was rolled back");

        let panicked = w
            .run(|c| -> Result<(), StoreError> {
                c.execute("INSERT INTO t (x) VALUES (3)", [])?;
                panic!("a bug in a write job")
            })
            .await;
        assert!(
            panicked
                .expect_err("dropped")
                .to_string()
                .contains("panicked")
        );
        assert_eq!(insert(&w, 4).await.expect("the writer still writes"), 1);
        assert_eq!(
            count(&w).await,
            3,
            "the panicking job's insert was rolled back"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_connection_writes_at_once_while_it_holds_the_turn() {
        let dir = tempfile::tempdir().expect("temp dir");
        let w = Arc::new(writer(&dir));
        w.run(|c| Ok(c.execute_batch("CREATE TABLE t (x INTEGER)")?))
            .await
            .expect("table");
        let turn = w.turn().await.expect("turn");
        // Writes keep arriving: without the pause the thread would be inside a transaction.
        let mut queued = tokio::task::JoinSet::new();
        for x in 0..200 {
            let w = w.clone();
            queued.spawn(async move { insert(&w, x).await });
        }
        let other = Connection::open(dir.path().join("w.db")).expect("second connection");
        other
            .busy_timeout(std::time::Duration::ZERO)
            .expect("no busy wait");
        other
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t (x) VALUES (-1); COMMIT;")
            .expect("the write lock is free at once while the turn is held");
        drop(turn);
        while let Some(done) = queued.join_next().await {
            done.expect("task").expect("insert");
        }
        assert_eq!(count(&w).await, 201);
    }
}
