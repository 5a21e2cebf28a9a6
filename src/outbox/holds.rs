//! Holding marketing back when a number is at risk: Meta flagged it or restricted it, its
//! quality is RED, or the portfolio is near its messaging limit (unique users reached outside
//! their window in 24 h). Utility messages — missed-call replies — go on; held marketing waits
//! in the queue with the reason visible, and goes out when the hold lifts. Nothing is dropped.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Marketing is held from this share of the messaging limit on.
pub const NEAR_LIMIT: f64 = 0.9;

/// What is known about one number's risk.
#[derive(Debug, Clone, Default)]
pub struct Risk {
    pub status: Option<String>,
    pub quality_rating: Option<String>,
    /// Unique users the number may reach outside their window per 24 h (`None` = unlimited or unknown).
    pub limit: Option<usize>,
    /// Unique users reached with templates in the last 24 h.
    pub reached: usize,
}

/// The tier names Meta uses, as limits.
pub fn tier_limit(tier: &str) -> Option<usize> {
    match tier {
        "TIER_50" => Some(50),
        "TIER_250" => Some(250),
        "TIER_1K" => Some(1_000),
        "TIER_2K" => Some(2_000),
        "TIER_10K" => Some(10_000),
        "TIER_100K" => Some(100_000),
        _ => None,
    }
}

/// Why marketing from a number with `risk` is held, if it is.
pub fn marketing_hold(risk: &Risk) -> Option<String> {
    if matches!(risk.status.as_deref(), Some("FLAGGED" | "RESTRICTED")) {
        return Some(format!(
            "held: Meta reports the number as {}; marketing waits until that is lifted (utility messages still go)",
            risk.status.as_deref().unwrap_or("")
        ));
    }
    if risk.quality_rating.as_deref() == Some("RED") {
        return Some("held: the number's quality rating is RED; marketing waits so quality can recover (utility messages still go)".into());
    }
    if let Some(limit) = risk.limit
        && risk.reached as f64 >= limit as f64 * NEAR_LIMIT
    {
        return Some(format!(
            "held: {} of the {limit} unique users allowed in 24 h are used; marketing waits so missed-call replies keep their room",
            risk.reached
        ));
    }
    None
}

/// Every number's risk; shared by the lanes, the processor and the maintenance loop.
#[derive(Clone, Default)]
pub struct Holds {
    risks: Arc<RwLock<HashMap<String, Risk>>>,
}

impl Holds {
    pub fn update(&self, number: &str, f: impl FnOnce(&mut Risk)) {
        f(self
            .risks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(number.to_string())
            .or_default());
    }

    /// `reached` as a share of the lowest messaging limit any number has (`None`: none known).
    pub fn nearest_limit_share(&self, reached: usize) -> Option<f64> {
        self.risks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(|r| r.limit)
            .min()
            .map(|limit| reached as f64 / limit.max(1) as f64)
    }

    pub fn marketing_hold(&self, number: &str) -> Option<String> {
        self.risks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(number)
            .and_then(marketing_hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_for_flags_red_quality_and_a_nearly_used_limit() {
        assert_eq!(marketing_hold(&Risk::default()), None);
        assert!(
            marketing_hold(&Risk {
                status: Some("RESTRICTED".into()),
                ..Default::default()
            })
            .unwrap()
            .contains("RESTRICTED")
        );
        assert!(
            marketing_hold(&Risk {
                quality_rating: Some("RED".into()),
                ..Default::default()
            })
            .unwrap()
            .contains("RED")
        );
        let near = Risk {
            limit: tier_limit("TIER_250"),
            reached: 225,
            ..Default::default()
        };
        assert!(marketing_hold(&near).unwrap().contains("225 of the 250"));
        let fine = Risk {
            limit: tier_limit("TIER_250"),
            reached: 224,
            ..Default::default()
        };
        assert_eq!(marketing_hold(&fine), None);
        assert_eq!(tier_limit("TIER_UNLIMITED"), None);
    }
}
