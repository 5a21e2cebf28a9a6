//! What the PBX clients ([`super::ami`], [`super::esl`]) share: reconnect backoff, a
//! rate bound on flagged input, and the delivery queue between the socket and the store.
//!
//! Delivery runs in its own task behind a bounded channel so a slow store never stalls the
//! socket reader for long; if the store falls far behind, the full channel pushes back on
//! the reader (and, through TCP, on the PBX) rather than dropping calls.

use std::time::Duration;

use rand::Rng;
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

/// Exponential reconnect delay with jitter: `min`, doubling to `max`, each delay drawn
/// from 80–120 % so many clients restarted together do not reconnect in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The default for PBX connections: 1 s to 30 s.
    pub fn pbx() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// The delay before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(rand::rng().random_range(0.8..=1.2))
    }

    /// After a successful login: start again from `min`.
    pub fn reset(&mut self) {
        self.next = self.min;
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
    fn backoff_doubles_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let secs: Vec<f64> = (0..8).map(|_| b.next_delay().as_secs_f64()).collect();
        for (got, want) in secs
            .iter()
            .zip([1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0])
        {
            assert!(*got >= want * 0.8 && *got <= want * 1.2, "{secs:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1200));
    }

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
