//! Group commit for inbound webhooks.
//!
//! Each HTTP handler submits its request and waits; one writer task takes everything that
//! queued up meanwhile (up to [`MAX_BATCH`]), commits it in a single transaction, then answers
//! every waiting handler. The provider's acknowledgement is sent only after that commit, so an
//! acknowledged webhook is never lost, and one fsync is shared by many requests.
//!
//! A store may ask for several writer tasks ([`crate::store::EventStore::ingest_writers`]),
//! so one batch is written while another waits for its fsync; both backends ask for one today.
//! Several writers commit batches out of submission order, and a submitter that does not wait
//! for one acknowledgement before the next submission (the call spool's replay, PBX clients)
//! relies on that order: a second writer was tried on PostgreSQL and made the spool's replay
//! decide a caller's second call before the first.

use std::sync::Arc;

use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use crate::inbound::IngestRequest;
use crate::store::{IngestCounts, Store, StoreError};

/// The most requests committed in one transaction.
pub const MAX_BATCH: usize = 256;

/// What the writer answers for one request.
pub type IngestReceipt = Result<IngestCounts, Arc<StoreError>>;

type Job = (IngestRequest, oneshot::Sender<IngestReceipt>);

/// Handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
}

impl Ingestor {
    /// Starts the writer. `committed` is notified after every commit that stored something
    /// new, so the event processor wakes at once.
    pub fn start(store: Arc<dyn Store>, committed: Arc<Notify>) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(MAX_BATCH * 8);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..store.ingest_writers().max(1) {
            tokio::spawn(writer(store.clone(), rx.clone(), committed.clone()));
        }
        Self { tx }
    }

    /// Commits one request's events; returns once they are durable.
    pub async fn submit(&self, req: IngestRequest) -> IngestReceipt {
        let (done, wait) = oneshot::channel();
        let closed = || Arc::new(StoreError::Corrupt("the ingest writer has stopped".into()));
        self.tx.send((req, done)).await.map_err(|_| closed())?;
        wait.await.map_err(|_| closed())?
    }
}

async fn writer(
    store: Arc<dyn Store>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    committed: Arc<Notify>,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    // The receiver is held only while taking a batch, so another writer takes the next one
    // while this one commits.
    while rx.lock().await.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (requests, waiters): (Vec<_>, Vec<_>) = jobs.drain(..).unzip();
        let started = std::time::Instant::now();
        match store.ingest(&requests).await {
            Ok(counts) => {
                crate::telemetry::ingest_committed(requests.len(), started.elapsed());
                if counts.iter().any(|c| c.inserted > 0) {
                    committed.notify_one();
                }
                for (waiter, c) in waiters.into_iter().zip(counts) {
                    let _ = waiter.send(Ok(c));
                }
            }
            Err(e) => {
                tracing::error!(error.message = %e, requests = requests.len(), "Ingest transaction failed; webhooks answered with 503 so providers retry.");
                let e = Arc::new(e);
                for waiter in waiters {
                    let _ = waiter.send(Err(e.clone()));
                }
            }
        }
    }
}
