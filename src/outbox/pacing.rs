//! Pacing: Ringback keeps within Meta's rate limits instead of learning them from 130429 and
//! 131056 errors.
//!
//! - **Throughput** per sending number (80 messages/s by default, raised to 1000 when Meta
//!   announces `THROUGHPUT_UPGRADE`): a GCRA limiter each lane waits on before every request.
//!   Its burst is a fortieth of a second's worth, so over any 10 s the rate holds within
//!   0.25 % and jitter on the way cannot push a burst past Meta's allowance.
//! - **Pair rate** per (number, recipient): 1 message per 6 s with bursts of up to 45. A send
//!   that would exceed it is not attempted; it goes back to the queue until the pair has quota.
//!
//! Limiters are in-process (`governor`), which is exact for the single-node SQLite deployment.
//! Several nodes sending from one number would need the GCRA state in PostgreSQL (a
//! `theoretical arrival time` column updated in the claim query); that comes with the
//! PostgreSQL store.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Meta's pair rate: one message per 6 s to the same user…
const PAIR_PERIOD: Duration = Duration::from_secs(6);
/// …with bursts of up to 45.
const PAIR_BURST: u32 = 45;

/// One number's limiters.
pub struct NumberPace {
    rate: u32,
    throughput: DefaultDirectRateLimiter,
    pair: DefaultKeyedRateLimiter<String>,
}

impl NumberPace {
    fn new(per_second: u32) -> Self {
        let pair_quota = Quota::with_period(PAIR_PERIOD)
            .expect("6 s is a valid period")
            .allow_burst(NonZeroU32::new(PAIR_BURST).expect("45 is non-zero"));
        Self {
            rate: per_second,
            throughput: throughput_limiter(per_second),
            pair: RateLimiter::keyed(pair_quota),
        }
    }
}

/// A burst of a fortieth of a second's worth: enough to make up for a lane's short pauses
/// (claiming the next batch waits for the database), half of the allowance assumed at Meta's
/// end, so network jitter bunching requests up still stays within it.
fn throughput_limiter(per_second: u32) -> DefaultDirectRateLimiter {
    let rate = NonZeroU32::new(per_second.max(1)).expect("max(1) is non-zero");
    let burst = NonZeroU32::new(per_second / 40).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
}

/// All numbers' limiters; shared by the lanes and by whoever learns of a throughput change.
#[derive(Clone, Default)]
pub struct Pacer {
    numbers: Arc<RwLock<HashMap<String, Arc<NumberPace>>>>,
}

impl Pacer {
    /// Limiters for `numbers` at `per_second` each.
    pub fn new(numbers: impl IntoIterator<Item = String>, per_second: u32) -> Self {
        let map = numbers
            .into_iter()
            .map(|n| (n, Arc::new(NumberPace::new(per_second))))
            .collect();
        Self {
            numbers: Arc::new(RwLock::new(map)),
        }
    }

    fn get(&self, number: &str) -> Option<Arc<NumberPace>> {
        self.numbers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(number)
            .cloned()
    }

    /// The number's current throughput, messages per second.
    pub fn rate(&self, number: &str) -> Option<u32> {
        self.get(number).map(|p| p.rate)
    }

    /// Changes a number's throughput (a THROUGHPUT_UPGRADE). Pair quotas start afresh, which
    /// errs on the side of sending: Meta's own pair state is unaffected by the upgrade.
    pub fn set_rate(&self, number: &str, per_second: u32) {
        let mut map = self.numbers.write().unwrap_or_else(|p| p.into_inner());
        if map.get(number).is_some_and(|p| p.rate == per_second) {
            return;
        }
        map.insert(number.to_string(), Arc::new(NumberPace::new(per_second)));
        tracing::info!(
            phone_number_id = number,
            per_second,
            "Sending pace changed."
        );
    }

    /// Waits until the number may send one more message.
    pub async fn until_ready(&self, number: &str) {
        if let Some(p) = self.get(number) {
            p.throughput.until_ready().await;
        }
    }

    /// Takes one unit of the pair quota, or says how long until there is one.
    pub fn pair(&self, number: &str, recipient: &str) -> Result<(), Duration> {
        let Some(p) = self.get(number) else {
            return Ok(());
        };
        p.pair
            .check_key(&recipient.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets pair state of recipients with full quota (bounded memory; call periodically).
    pub fn tidy(&self) {
        for p in self
            .numbers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            p.pair.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_quota_and_rate_changes() {
        let pacer = Pacer::new(["n".to_string()], 80);
        assert!((0..45).all(|_| pacer.pair("n", "u").is_ok()));
        let wait = pacer.pair("n", "u").unwrap_err();
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(6),
            "{wait:?}"
        );
        assert!(pacer.pair("n", "other").is_ok());
        pacer.set_rate("n", 1000);
        assert_eq!(pacer.rate("n"), Some(1000));
        assert!(pacer.pair("unknown", "u").is_ok());
    }
}
