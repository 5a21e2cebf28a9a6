//! The 24-hour customer service window.
//!
//! A user's message (or call) opens a 24-hour window in which any message type may be sent;
//! outside it only an approved template may start the conversation (Meta answers other types
//! with error 131047). Ringback decides before sending, from the contact's last inbound time.

use crate::time::{HOUR_MS, Millis};

/// Length of the customer service window.
pub const CUSTOMER_SERVICE_WINDOW_MS: Millis = 24 * HOUR_MS;

/// Whether the window is open at `now`, and why, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    Open { closes_at: Millis },
    Closed,
}

/// The window for a user whose last message to us arrived at `last_inbound_at`.
pub fn at(last_inbound_at: Option<Millis>, now: Millis) -> Window {
    match last_inbound_at {
        Some(t) if now < t + CUSTOMER_SERVICE_WINDOW_MS && t <= now + HOUR_MS => Window::Open {
            closes_at: t + CUSTOMER_SERVICE_WINDOW_MS,
        },
        _ => Window::Closed,
    }
}

/// The free entry point window (reference §5.6): a person who wrote through a
/// click-to-WhatsApp ad or a Page call-to-action, and gets our reply within 24 hours, opens a
/// 72-hour window from that reply in which every message is free. It does not extend the
/// customer service window: outside that, only templates may still be sent.
pub const FREE_ENTRY_POINT_MS: Millis = 72 * HOUR_MS;

/// Where a send stands with respect to the free entry point window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryPoint {
    None,
    /// This send opens it, until the given time.
    Opens {
        until: Millis,
    },
    Open {
        until: Millis,
    },
}

/// `referral_at`: the referral message's time; `free_until`: the window's end once opened.
pub fn entry_point(
    referral_at: Option<Millis>,
    free_until: Option<Millis>,
    now: Millis,
) -> EntryPoint {
    match (referral_at, free_until) {
        (_, Some(until)) if now < until => EntryPoint::Open { until },
        (Some(r), None) if now < r + CUSTOMER_SERVICE_WINDOW_MS => EntryPoint::Opens {
            until: now + FREE_ENTRY_POINT_MS,
        },
        _ => EntryPoint::None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_entry_point_opens_with_the_first_reply_within_a_day() {
        let h = HOUR_MS;
        assert_eq!(entry_point(None, None, 0), EntryPoint::None);
        assert_eq!(
            entry_point(Some(0), None, 2 * h),
            EntryPoint::Opens { until: 74 * h }
        );
        assert_eq!(entry_point(Some(0), None, 25 * h), EntryPoint::None);
        assert_eq!(
            entry_point(Some(0), Some(74 * h), 30 * h),
            EntryPoint::Open { until: 74 * h }
        );
        assert_eq!(entry_point(Some(0), Some(74 * h), 75 * h), EntryPoint::None);
    }

    use super::*;

    #[test]
    fn opens_for_24_hours_after_the_users_message() {
        assert_eq!(at(None, 1000), Window::Closed);
        assert_eq!(
            at(Some(0), 1000),
            Window::Open {
                closes_at: CUSTOMER_SERVICE_WINDOW_MS
            }
        );
        assert_eq!(at(Some(0), CUSTOMER_SERVICE_WINDOW_MS), Window::Closed);
    }
}
