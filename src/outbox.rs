//! The outbox: every outgoing message is a row before it is a request.
//!
//! One [`lane`] per sending number claims due rows (recording an attempt before each request),
//! calls the Cloud API, and records the answer; [`retry`] turns a retryable answer into the
//! time of the next attempt. A lane owns its concurrency, so a slow or throttled number never
//! holds up the others. [`Wakers`] lets the processor and the API wake a lane at once instead
//! of waiting for its next poll.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Notify;

pub mod handoff;
pub mod holds;
pub mod lane;
pub mod pacing;
pub mod starter;
pub mod submit;

pub use holds::Holds;
pub use lane::{Lane, run_maintenance};
pub use pacing::Pacer;

/// A new outbox message id: `msg_` and a time-ordered UUID.
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// What the processor and the API reach a lane by: its wake-up, and its hand-off door.
type LaneHandles = (Arc<Notify>, Arc<handoff::Door>);

/// One `Notify` and one hand-off [`Door`](handoff::Door) per sending number.
#[derive(Clone, Default)]
pub struct Wakers(Arc<HashMap<String, LaneHandles>>);

impl Wakers {
    pub fn new(sender_ids: impl IntoIterator<Item = String>) -> Self {
        Self(Arc::new(
            sender_ids
                .into_iter()
                .map(|id| (id, Default::default()))
                .collect(),
        ))
    }

    /// Wakes the lane of `sender_id` (no-op for unknown ids).
    pub fn wake(&self, sender_id: &str) {
        if let Some((n, _)) = self.0.get(sender_id) {
            n.notify_one();
        }
    }

    /// The notifier for one lane.
    pub fn get(&self, sender_id: &str) -> Arc<Notify> {
        self.0
            .get(sender_id)
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    }

    /// The hand-off door of one lane.
    pub fn door(&self, sender_id: &str) -> Arc<handoff::Door> {
        self.0
            .get(sender_id)
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    }
}
