//! Quality rating per number, driven by simulated users blocking or reporting the business.
//!
//! Meta rates the last 7 days of user feedback, weighted by volume; the sandbox uses the share
//! of negative signals among messages sent in 7 days (at least 20 counted): ≥ 3 % YELLOW,
//! ≥ 10 % RED. Webhooks follow the reference's vocabulary: a number turning RED gets
//! `phone_number_quality_update` with event `FLAGGED` and an `account_update`
//! `ACCOUNT_RESTRICTION` limiting business-initiated messaging; leaving RED gets `UNFLAGGED`.

use serde::Serialize;
use serde_json::json;

use super::Sandbox;
use crate::time::{HOUR_MS, Millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Rating {
    Green,
    Yellow,
    Red,
}

impl Rating {
    pub fn name(self) -> &'static str {
        match self {
            Rating::Green => "GREEN",
            Rating::Yellow => "YELLOW",
            Rating::Red => "RED",
        }
    }
}

/// The rating for `signals` negative signals among `sent` messages.
pub fn rating(signals: usize, sent: usize) -> Rating {
    let share = signals as f64 / sent.max(20) as f64;
    if share >= 0.10 {
        Rating::Red
    } else if share >= 0.03 {
        Rating::Yellow
    } else {
        Rating::Green
    }
}

/// Records a block or report against a number and posts webhooks if the rating changed.
pub fn record_signal(sb: &Sandbox, phone_number_id: &str, weight: usize, now: Millis) -> Rating {
    let week_ago = now - 7 * 24 * HOUR_MS;
    let (before, after, number, tier) = {
        let mut st = sb.lock();
        let before = st
            .quality
            .get(phone_number_id)
            .copied()
            .unwrap_or(Rating::Green);
        let signals = st.signals.entry(phone_number_id.to_string()).or_default();
        signals.extend(std::iter::repeat_n(now, weight));
        signals.retain(|t| *t > week_ago);
        let count = signals.len();
        let sent = st
            .sent
            .iter()
            .filter(|m| m.phone_number_id == phone_number_id && m.received_at > week_ago)
            .count();
        let after = rating(count, sent);
        st.quality.insert(phone_number_id.to_string(), after);
        (
            before,
            after,
            sb.number(phone_number_id).cloned(),
            st.limits.tier,
        )
    };
    let Some(number) = number else { return after };
    if before != Rating::Red && after == Rating::Red {
        let value = json!({"display_phone_number": number.display_number, "event": "FLAGGED", "current_limit": tier.name(), "max_daily_conversations_per_business": tier.name()});
        sb.hooks.push_change(
            &number.waba_id,
            "phone_number_quality_update",
            value,
            std::time::Duration::ZERO,
        );
        let restriction = json!({"phone_number": number.display_number, "event": "ACCOUNT_RESTRICTION", "restriction_info": [
            {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": now / 1000 + 7 * 24 * 3600}]});
        sb.hooks.push_change(
            &number.waba_id,
            "account_update",
            restriction,
            std::time::Duration::ZERO,
        );
    } else if before == Rating::Red && after != Rating::Red {
        let value = json!({"display_phone_number": number.display_number, "event": "UNFLAGGED", "current_limit": tier.name(), "max_daily_conversations_per_business": tier.name()});
        sb.hooks.push_change(
            &number.waba_id,
            "phone_number_quality_update",
            value,
            std::time::Duration::ZERO,
        );
    }
    after
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(rating(0, 100), Rating::Green);
        assert_eq!(rating(1, 20), Rating::Yellow);
        assert_eq!(rating(2, 20), Rating::Red);
        assert_eq!(rating(2, 100), Rating::Green);
        assert_eq!(
            rating(1, 0),
            Rating::Yellow,
            "a handful of sends is judged as 20"
        );
    }
}
