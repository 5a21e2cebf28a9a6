//! Group commit of attempt starts.
//!
//! A claimed row is not yet a request: the lane claims up to 64 rows ahead of its pacing loop.
//! Just before each request, the attempt is recorded as started, so after a crash only rows
//! whose request may have left become `uncertain` (and wait for a status webhook), while rows
//! merely claimed go back to the queue at once. Requests wait for that commit; one writer task
//! commits every start that queued up meanwhile in one transaction, so at high rates one fsync
//! serves many requests and the pacing loop itself never waits.

use std::sync::Arc;

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
}

impl Starter {
    pub fn spawn(store: Arc<dyn Store>) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, tokio::spawn(writer(store, rx)))
    }

    /// Records that `send`'s request is about to be made; `Err` (why) means it must not be.
    pub async fn start(&self, send: &ClaimedSend) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        let gone = || "the attempt writer has stopped".to_string();
        self.tx.send((send.clone(), done)).map_err(|_| gone())?;
        wait.await.map_err(|_| gone())?
    }
}

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (sends, waiters): (Vec<_>, Vec<_>) = jobs.drain(..).unzip();
        let result = store
            .start_attempts(&sends, now_ms())
            .await
            .map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error.message = %e, count = sends.len(), "Could not record the start of send attempts; they are not sent now.");
        }
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}
