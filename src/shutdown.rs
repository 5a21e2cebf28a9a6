//! A shutdown signal every worker and server shares.
//!
//! [`Trigger::fire`] is called once (Ctrl-C, SIGTERM, or a test ending); every [`Shutdown`]
//! clone then sees it. Workers check it between units of work so in-flight work finishes.

use tokio::sync::watch;

/// The sending side, held by whoever decides to stop.
#[derive(Clone)]
pub struct Trigger(watch::Sender<bool>);

/// The receiving side, cloned into every worker.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A connected pair.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Resolves once shutdown is triggered (or the trigger is dropped).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}
