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

#[cfg(test)]
mod tests {
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
