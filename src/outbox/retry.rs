//! When to try a failed send again.
//!
//! Classification (retry or not) lives in `cloud_api::errors`; this is only the schedule:
//! the configured delays with up to 20 % jitter, Meta's `Retry-After` when it gives one, and
//! the pair-rate rule (131056: wait 4^n seconds) from the Cloud API reference.

use std::time::Duration;

use crate::time::Millis;

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
        let jitter = delay.mul_f64(rand::random::<f64>() * 0.2);
        Some(now + (delay + jitter).as_millis() as Millis)
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
}
