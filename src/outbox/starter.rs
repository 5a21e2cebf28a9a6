//! Group commit of attempt starts.
//!
//! A claimed row is not yet a request: the lane claims up to 64 rows ahead of its pacing loop.
//! Just before a row is paced (the rows whose slots fall within the next four commits, see
//! `Lane::start_ahead`), its attempt is recorded as started, so after a crash only rows whose
//! request may have left become `uncertain` (and wait for a status webhook), while rows merely
//! claimed go back to the queue at once. One writer task commits every start that queued up meanwhile in one transaction,
//! so at high rates one fsync serves many requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::{ClaimedSend, Store};
use crate::time::now_ms;

/// The most starts committed in one transaction.
const MAX_BATCH: usize = 256;

type Job = (ClaimedSend, oneshot::Sender<Result<(), String>>);

/// Handle to a lane's start writer. The writer ends when every handle is dropped.
#[derive(Clone)]
pub struct Starter {
    tx: mpsc::UnboundedSender<Job>,
    /// A moving average of how long one start commit takes, in microseconds.
    commit_us: Arc<AtomicU64>,
}

/// Assumed before the first commit is timed: a durable commit on an ordinary disk.
const FIRST_GUESS_US: u64 = 2_000;

impl Starter {
    pub fn spawn(store: Arc<dyn Store>) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let commit_us = Arc::new(AtomicU64::new(FIRST_GUESS_US));
        (
            Self {
                tx,
                commit_us: commit_us.clone(),
            },
            tokio::spawn(writer(store, rx, commit_us)),
        )
    }

    /// How long a start commit takes lately.
    pub fn commit_time(&self) -> Duration {
        Duration::from_micros(self.commit_us.load(Ordering::Relaxed))
    }

    /// Asks for `send`'s start to be recorded; the receiver answers once it is committed
    /// (`Err` with why when it could not be, and the request must then not be made).
    pub fn request(&self, send: &ClaimedSend) -> Pending {
        let (done, wait) = oneshot::channel();
        // If the writer is gone the sender is dropped and `Pending::committed` reports it.
        let _ = self.tx.send((send.clone(), done));
        Pending(wait)
    }
}

/// A start asked for and not yet confirmed.
pub struct Pending(oneshot::Receiver<Result<(), String>>);

impl Pending {
    /// A start already recorded elsewhere (the processor's transaction).
    pub fn done() -> Self {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Ok(()));
        Pending(rx)
    }

    pub async fn committed(self) -> Result<(), String> {
        self.0
            .await
            .map_err(|_| "the attempt writer has stopped".to_string())?
    }
}

async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    commit_us: Arc<AtomicU64>,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (sends, waiters): (Vec<_>, Vec<_>) = jobs.drain(..).unzip();
        let began = Instant::now();
        let result = store
            .start_attempts(&sends, now_ms())
            .await
            .map_err(|e| e.to_string());
        // Exponential moving average (1/8 weight to the newest): steady, yet follows a disk
        // that slows down within a few commits.
        let took = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
        let old = commit_us.load(Ordering::Relaxed);
        commit_us.store(old - old / 8 + took / 8, Ordering::Relaxed);
        match result {
            Ok(started) => {
                for (waiter, ok) in waiters.into_iter().zip(started) {
                    let answer = if ok {
                        Ok(())
                    } else {
                        Err(
                            "another node took this send over; this node does not send it"
                                .to_string(),
                        )
                    };
                    let _ = waiter.send(answer);
                }
            }
            Err(e) => {
                tracing::error!(error.message = %e, count = sends.len(), "Could not record the start of send attempts; they are not sent now.");
                for waiter in waiters {
                    let _ = waiter.send(Err(e.clone()));
                }
            }
        }
    }
}
