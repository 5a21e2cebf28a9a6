//! Burst latency: from posting a call's webhook to the Cloud API receiving its reply, for every
//! call of a burst driven C at a time (the "closed loop at 64 concurrent clients" figure).
//!
//! Each call has its own caller (`+9198…`, see [`super::caller`]), so the sandbox's record of a
//! reply names the call it answers; the post times are kept per call index, written by
//! whichever worker posted it.

use std::sync::atomic::{AtomicI64, Ordering};

/// When each call of a burst was posted, in microseconds since the epoch (the clock the
/// sandbox stamps `received_us` with); 0 until it is.
pub struct PostTimes {
    /// Index of the burst's first call.
    first: usize,
    at_us: Vec<AtomicI64>,
}

impl PostTimes {
    /// Calls `first .. first + count`.
    pub fn new(first: usize, count: usize) -> PostTimes {
        PostTimes {
            first,
            at_us: (0..count).map(|_| AtomicI64::new(0)).collect(),
        }
    }

    /// Call `index` (absolute, as passed to the poster) is being posted now.
    pub fn record(&self, index: usize) {
        if let Some(slot) = index
            .checked_sub(self.first)
            .and_then(|k| self.at_us.get(k))
        {
            slot.store(jiff::Timestamp::now().as_microsecond(), Ordering::Relaxed);
        }
    }

    /// The post times, in call order (0 for a call not posted).
    pub fn snapshot(&self) -> Vec<i64> {
        self.at_us
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .collect()
    }
}

/// The burst's replies matched to their calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    /// Post → Cloud API request per matched reply, in milliseconds, sorted.
    pub sorted_ms: Vec<f64>,
    /// The last matched reply's `received_us`.
    pub last_received_us: Option<i64>,
}

impl Matched {
    pub fn p50_ms(&self) -> f64 {
        super::percentile(&self.sorted_ms, 0.50)
    }

    pub fn p99_ms(&self) -> f64 {
        super::percentile(&self.sorted_ms, 0.99)
    }
}

/// Matches the sandbox's records (recipient digits, `received_us`) with the calls of a burst
/// whose first call is `first` and whose post times are `posted_us`. A record whose
/// recipient is no caller of this burst (another phase, an earlier run) is left out, and so is
/// a second reply to the same caller (the first one is the call's reply; with the cooldown at
/// 0 a repeat would be a bug the count check reports, not a latency).
pub fn match_replies<'a>(
    first: usize,
    posted_us: &[i64],
    records: impl IntoIterator<Item = (&'a str, i64)>,
) -> Matched {
    let mut seen = vec![false; posted_us.len()];
    let mut sorted_ms = Vec::with_capacity(posted_us.len());
    let mut last_received_us: Option<i64> = None;
    for (to, received_us) in records {
        let Some(k) = super::caller_index(to).and_then(|i| i.checked_sub(first)) else {
            continue;
        };
        let Some(&posted) = posted_us.get(k) else {
            continue;
        };
        if posted == 0 || seen[k] {
            continue;
        }
        seen[k] = true;
        sorted_ms.push((received_us - posted) as f64 / 1000.0);
        last_received_us = Some(last_received_us.map_or(received_us, |l| l.max(received_us)));
    }
    sorted_ms.sort_by(f64::total_cmp);
    Matched {
        sorted_ms,
        last_received_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_matched_to_their_calls_by_the_caller_digits() {
        // A burst of calls 100..104 posted at 1.000 s, 1.001 s, 1.002 s, 1.003 s; call 103's
        // reply is missing.
        let posted = [1_000_000, 1_001_000, 1_002_000, 1_003_000];
        let records = [
            ("919800000100", 1_004_000), // 4 ms
            ("919800000050", 1_500_000), // an earlier phase's caller
            ("919800000102", 1_012_000), // 10 ms
            ("919800000101", 1_003_000), // 2 ms
            ("919800000101", 1_900_000), // a second reply to the same caller
            ("919800000104", 1_010_000), // past the burst
            ("15550100001", 1_010_000),  // not a bench caller
        ];
        let m = match_replies(100, &posted, records);
        assert_eq!(m.sorted_ms, vec![2.0, 4.0, 10.0]);
        assert_eq!(m.last_received_us, Some(1_012_000));
        assert_eq!(m.p50_ms(), 4.0);
        assert_eq!(m.p99_ms(), 10.0);
    }

    #[test]
    fn a_call_never_posted_and_no_replies_give_no_latency() {
        let m = match_replies(0, &[0, 5_000], [("919800000000", 9_000)]);
        assert!(m.sorted_ms.is_empty());
        assert_eq!(m.last_received_us, None);
        assert_eq!(m.p50_ms(), 0.0);
    }

    #[test]
    fn post_times_are_kept_per_call_index_from_the_first() {
        let times = PostTimes::new(10, 3);
        times.record(11);
        // Outside the burst: ignored rather than written elsewhere.
        times.record(9);
        times.record(13);
        let snap = times.snapshot();
        assert_eq!(snap[0], 0);
        assert!(snap[1] > 0);
        assert_eq!(snap[2], 0);
    }
}
