//! The Cloud API's limits (reference §5): per-number throughput (80 msg/s, 1000 after an
//! upgrade) → 130429; the pair rate limit (1 message per 6 s to one user, bursts up to 45) →
//! 131056; and the portfolio messaging limit — unique users reached outside their customer
//! service window in a rolling 24 h (250 → 2K → 10K → 100K → unlimited), which grows one tier
//! once half of it was used in 7 days with good quality.
//!
//! Rates use GCRA (the `governor` crate). The throughput limiter's burst is 1/20 of a second's
//! worth, so over 10 s it admits the configured rate to within 0.5 %.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::time::{HOUR_MS, Millis};

/// Portfolio messaging-limit tiers, as Meta names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tier {
    #[serde(rename = "TIER_250")]
    T250,
    #[serde(rename = "TIER_2K")]
    T2K,
    #[serde(rename = "TIER_10K")]
    T10K,
    #[serde(rename = "TIER_100K")]
    T100K,
    #[serde(rename = "TIER_UNLIMITED")]
    Unlimited,
}

impl Tier {
    pub fn limit(self) -> Option<usize> {
        match self {
            Tier::T250 => Some(250),
            Tier::T2K => Some(2_000),
            Tier::T10K => Some(10_000),
            Tier::T100K => Some(100_000),
            Tier::Unlimited => None,
        }
    }

    pub fn next(self) -> Tier {
        match self {
            Tier::T250 => Tier::T2K,
            Tier::T2K => Tier::T10K,
            Tier::T10K => Tier::T100K,
            Tier::T100K | Tier::Unlimited => Tier::Unlimited,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::T250 => "TIER_250",
            Tier::T2K => "TIER_2K",
            Tier::T10K => "TIER_10K",
            Tier::T100K => "TIER_100K",
            Tier::Unlimited => "TIER_UNLIMITED",
        }
    }
}

/// Limit settings; `enabled = false` turns every limit off (for benchmarks).
#[derive(Debug, Clone)]
pub struct LimitSettings {
    pub enabled: bool,
    /// Messages per second per number (Meta: 80, or 1000 after an upgrade).
    pub throughput_per_second: u32,
    /// Starting portfolio tier.
    pub tier: Tier,
    /// How long an earned tier upgrade takes (Meta: within 6 hours).
    pub tier_upgrade_delay: Duration,
}

/// Live limiter state.
pub struct Limits {
    pub settings: LimitSettings,
    throughput: HashMap<String, (u32, Arc<DefaultDirectRateLimiter>)>,
    pair: DefaultKeyedRateLimiter<(String, String)>,
    /// Portfolio tier and when each user was last reached outside their window.
    pub tier: Tier,
    reached: HashMap<String, Millis>,
    pub upgrade_due: Option<Millis>,
}

/// Why a send is refused synchronously.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Throughput,
    PairRate,
}

fn throughput_limiter(per_second: u32) -> Arc<DefaultDirectRateLimiter> {
    let rate = NonZeroU32::new(per_second.max(1)).expect("max(1) is non-zero");
    let burst = NonZeroU32::new(per_second.div_ceil(20).max(1)).expect("max(1) is non-zero");
    Arc::new(RateLimiter::direct(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Self {
        let pair_quota = Quota::with_period(Duration::from_secs(6))
            .expect("6 s is a valid period")
            .allow_burst(NonZeroU32::new(45).expect("45 is non-zero"));
        Self {
            tier: settings.tier,
            settings,
            throughput: HashMap::new(),
            pair: RateLimiter::keyed(pair_quota),
            reached: HashMap::new(),
            upgrade_due: None,
        }
    }

    /// The number's current throughput level (messages per second).
    pub fn throughput_of(&self, phone_number_id: &str) -> u32 {
        self.throughput
            .get(phone_number_id)
            .map(|(r, _)| *r)
            .unwrap_or(self.settings.throughput_per_second)
    }

    /// Raises (or sets) a number's throughput, as a THROUGHPUT_UPGRADE does.
    pub fn set_throughput(&mut self, phone_number_id: &str, per_second: u32) {
        self.throughput.insert(
            phone_number_id.to_string(),
            (per_second, throughput_limiter(per_second)),
        );
    }

    /// Checks and consumes the number's and the pair's rate for one send.
    pub fn admit(&mut self, phone_number_id: &str, to: &str) -> Result<(), Refusal> {
        if !self.settings.enabled {
            return Ok(());
        }
        let default = self.settings.throughput_per_second;
        let (_, limiter) = self
            .throughput
            .entry(phone_number_id.to_string())
            .or_insert_with(|| (default, throughput_limiter(default)));
        limiter.check().map_err(|_| Refusal::Throughput)?;
        self.pair
            .check_key(&(phone_number_id.to_string(), to.to_string()))
            .map_err(|_| Refusal::PairRate)?;
        Ok(())
    }

    /// Counts a business-initiated conversation with `user` (a template outside the window).
    /// `false` when the portfolio's limit of unique users in 24 h is reached.
    pub fn reach(&mut self, user: &str, now: Millis) -> bool {
        if !self.settings.enabled {
            return true;
        }
        let day_ago = now - 24 * HOUR_MS;
        if self.reached.get(user).is_some_and(|t| *t > day_ago) {
            return true;
        }
        let active = self.reached.values().filter(|t| **t > day_ago).count();
        if self.tier.limit().is_some_and(|l| active >= l) {
            return false;
        }
        self.reached.insert(user.to_string(), now);
        true
    }

    /// Meta's upgrade rule: at least half the limit used in 7 days and quality not RED →
    /// next tier after the upgrade delay. Returns when the upgrade was newly scheduled.
    pub fn consider_upgrade(&mut self, quality_red: bool, now: Millis) -> Option<Millis> {
        let limit = self.tier.limit()?;
        if quality_red || self.upgrade_due.is_some() {
            return None;
        }
        let week_ago = now - 7 * 24 * HOUR_MS;
        let used = self.reached.values().filter(|t| **t > week_ago).count();
        if used * 2 >= limit {
            let due = now + self.settings.tier_upgrade_delay.as_millis() as Millis;
            self.upgrade_due = Some(due);
            return Some(due);
        }
        None
    }

    /// Applies a due upgrade; returns the new tier.
    pub fn apply_upgrade(&mut self, now: Millis) -> Option<Tier> {
        match self.upgrade_due {
            Some(due) if due <= now => {
                self.upgrade_due = None;
                self.tier = self.tier.next();
                Some(self.tier)
            }
            _ => None,
        }
    }

    /// Unique users reached outside the window in the last 24 h.
    pub fn reached_today(&self, now: Millis) -> usize {
        self.reached
            .values()
            .filter(|t| **t > now - 24 * HOUR_MS)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(tier: Tier) -> Limits {
        Limits::new(LimitSettings {
            enabled: true,
            throughput_per_second: 80,
            tier,
            tier_upgrade_delay: Duration::ZERO,
        })
    }

    #[test]
    fn throughput_burst_is_a_twentieth_of_the_rate() {
        let mut l = limits(Tier::Unlimited);
        let admitted = (0..100)
            .filter(|i| l.admit("1", &format!("u{i}")).is_ok())
            .count();
        assert_eq!(admitted, 4, "80/s allows a burst of 4");
    }

    #[test]
    fn pair_rate_allows_a_burst_of_45_then_refuses() {
        let mut l = limits(Tier::Unlimited);
        l.set_throughput("1", 100_000);
        let results: Vec<_> = (0..46).map(|_| l.admit("1", "user")).collect();
        assert!(results[..45].iter().all(Result::is_ok));
        assert_eq!(results[45], Err(Refusal::PairRate));
    }

    #[test]
    fn portfolio_limit_counts_unique_users_and_upgrades_at_half() {
        let mut l = limits(Tier::T250);
        assert!((0..250).all(|i| l.reach(&format!("u{i}"), 0)));
        assert!(
            l.reach("u1", 1),
            "a user already reached today does not count again"
        );
        assert!(!l.reach("new", 1));
        assert!(l.consider_upgrade(false, 2).is_some());
        assert_eq!(l.apply_upgrade(3), Some(Tier::T2K));
        assert!(l.reach("new", 4));
        assert!(
            l.reach("later", 25 * HOUR_MS),
            "users reached yesterday no longer count"
        );
    }
}
