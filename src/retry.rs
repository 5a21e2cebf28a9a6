//! Ringback's one retry policy: how long to wait before trying something again.
//!
//! Two shapes of one rule (wait longer each time, never in lockstep):
//! - [`Backoff`]: doubling from a minimum to a cap, for reconnecting to a PBX, replaying the
//!   call spool, store writes that must not be given up, and a model provider's failed request within the reply's deadline;
//! - [`RetryPolicy`]: a failed Cloud API send's schedule, the configured delays stretched by
//!   Meta's `Retry-After` and the pair-rate rule (131056: wait 4^n seconds) from the Cloud API
//!   reference. Whether an error is retried at all is `cloud_api::errors`' call.
//!
//! Both draw each delay from a band around the nominal one ([`spread`]) so clients restarted
//! together, or sends refused together, do not come back at the same instant.

use rand::Rng;
use std::time::Duration;

use crate::time::Millis;

/// `d` scaled by a factor drawn uniformly from `low..=high`.
pub fn spread(d: Duration, low: f64, high: f64) -> Duration {
    d.mul_f64(rand::rng().random_range(low..=high))
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

    /// For PBX connections: 1 s to 30 s.
    pub fn pbx() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// For a model provider that failed or rate-limited without saying how long to wait:
    /// 500 ms to 8 s (a reply has a deadline; see `crate::assistants`).
    pub fn model_provider() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(8))
    }

    /// For a store write that must not be given up (a send's outcome): 50 ms to 5 s, so a
    /// hiccup costs little and a store that stays down is not hammered.
    pub fn store_write() -> Self {
        Self::new(Duration::from_millis(50), Duration::from_secs(5))
    }

    /// The delay before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        spread(base, 0.8, 1.2)
    }

    /// After a successful login: start again from `min`.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// The schedule from configuration.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub delays_ms: Vec<u64>,
    pub max_attempts: u32,
}

/// Pair rate limit: same sender to the same user too fast.
const PAIR_RATE_LIMIT: i64 = 131_056;
/// Never wait longer than this on Meta's say-so.
const MAX_HINT: Duration = Duration::from_secs(3600);

impl RetryPolicy {
    /// `None` when `attempt_no` was the last allowed attempt.
    pub fn next_attempt_at(
        &self,
        attempt_no: u32,
        code: Option<i64>,
        hint: Option<Duration>,
        now: Millis,
    ) -> Option<Millis> {
        if attempt_no >= self.max_attempts {
            return None;
        }
        let idx = (attempt_no.max(1) as usize - 1).min(self.delays_ms.len().saturating_sub(1));
        let mut delay = Duration::from_millis(self.delays_ms.get(idx).copied().unwrap_or(1000));
        if code == Some(PAIR_RATE_LIMIT) {
            let pair =
                Duration::from_secs(4u64.saturating_pow(attempt_no.saturating_sub(1)).min(3600));
            delay = delay.max(pair);
        }
        if let Some(h) = hint {
            delay = delay.max(h.min(MAX_HINT));
        }
        Some(now + spread(delay, 1.0, 1.2).as_millis() as Millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_jitter_hint_and_limit() {
        let p = RetryPolicy {
            delays_ms: vec![100, 1000],
            max_attempts: 3,
        };
        let t1 = p.next_attempt_at(1, None, None, 0).unwrap();
        assert!((100..=120).contains(&t1), "{t1}");
        let t2 = p.next_attempt_at(2, None, None, 0).unwrap();
        assert!((1000..=1200).contains(&t2), "{t2}");
        assert!(p.next_attempt_at(3, None, None, 0).is_none());
        let hinted = p
            .next_attempt_at(1, None, Some(Duration::from_secs(5)), 0)
            .unwrap();
        assert!(hinted >= 5000);
        let pair = p.next_attempt_at(2, Some(131_056), None, 0).unwrap();
        assert!(pair >= 4000, "{pair}");
    }

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
}
