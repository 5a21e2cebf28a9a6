//! What the PBX clients ([`super::ami`], [`super::esl`]) share: a rate bound on flagged input
//! and the delivery queue between the socket and the store (their reconnect backoff is
//! [`crate::retry::Backoff`]).
//!
//! Delivery runs in its own task behind a bounded channel so a slow store never stalls the
//! socket reader for long; if the store falls far behind, the full channel pushes back on
//! the reader (and, through TCP, on the PBX) rather than dropping calls.

use tokio::sync::mpsc;

use super::CallSink;
use crate::inbound::{CallEvent, CallSource};

/// Calls waiting for the store, per client.
pub const QUEUE_CAPACITY: usize = 256;

/// Something a client hands to the store.
#[derive(Debug)]
pub enum Delivery {
    Call { raw: Vec<u8>, call: CallEvent },
    Flag { raw: Vec<u8>, reason: String },
}

/// The receiving end: commits every delivery in order until all senders are gone, so what
/// was read before shutdown is still stored.
pub async fn deliver(mut rx: mpsc::Receiver<Delivery>, sink: CallSink, source: CallSource) {
    while let Some(d) = rx.recv().await {
        match d {
            Delivery::Call { raw, call } => {
                let (id, outcome) = (call.provider_call_id.clone(), call.outcome);
                // Stored or spooled (fsynced) before the next event is taken from the PBX.
                match sink.deliver_or_spool(raw, call).await {
                    Ok(super::Kept::Stored { new }) => {
                        crate::telemetry::pbx_call(source.as_str(), outcome.as_str(), new);
                        tracing::info!(source = source.as_str(), call_id = %id, outcome = outcome.as_str(), new, "PBX call recorded.");
                    }
                    Ok(super::Kept::Spooled) => {
                        tracing::info!(source = source.as_str(), call_id = %id, outcome = outcome.as_str(), "PBX call spooled until the store is back.");
                    }
                    Err(e) => {
                        tracing::error!(source = source.as_str(), call_id = %id, error.message = %e, "Storing a PBX call failed and it could not be spooled; the call is lost.");
                    }
                }
            }
            Delivery::Flag { raw, reason } => {
                crate::telemetry::pbx_flagged(source.as_str());
                tracing::warn!(
                    source = source.as_str(),
                    reason,
                    "PBX input flagged: stored but not usable."
                );
                if let Err(e) = sink.flag(source, &raw, reason).await {
                    tracing::error!(source = source.as_str(), error.message = %e, "Storing flagged PBX input failed.");
                }
            }
        }
    }
}

/// At most `per_minute` flags in any minute; the rest are only counted. A PBX that sends the
/// same broken event thousands of times must not flood the store.
#[derive(Debug)]
pub struct FlagBudget {
    per_minute: u32,
    window_start: crate::time::Millis,
    used: u32,
    pub suppressed: u64,
}

impl FlagBudget {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            window_start: 0,
            used: 0,
            suppressed: 0,
        }
    }

    /// May a flag be stored at `now`?
    pub fn allow(&mut self, now: crate::time::Millis) -> bool {
        if now - self.window_start >= 60_000 {
            self.window_start = now;
            self.used = 0;
        }
        if self.used < self.per_minute {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_budget_bounds_each_minute() {
        let mut f = FlagBudget::new(2);
        assert!(f.allow(1_000));
        assert!(f.allow(2_000));
        assert!(!f.allow(3_000));
        assert_eq!(f.suppressed, 1);
        assert!(f.allow(61_000));
    }
}
