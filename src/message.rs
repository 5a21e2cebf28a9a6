//! The life of an outgoing message: which state may follow which, and what an attempt's
//! outcome or a status webhook does to it.
//!
//! These are the rules every store backend applies inside its write transaction: the backend
//! reads the current state, asks this module what comes next, and writes exactly that. Keeping
//! them here (not in SQL) is what lets SQLite and PostgreSQL agree.
//!
//! ```text
//! queued ─claim─▶ sending ─accepted─▶ accepted ─▶ sent ─▶ delivered ─▶ read / played
//!   ▲                │  └─retry───────▶ queued (later)
//!   └──deferred──────┤  └─failed──────▶ failed
//!                    └─crash mid-request, or no answer─▶ uncertain ─(status webhook, or timeout)─▶ …
//! ```
//! Status webhooks arrive out of order (read before delivered), so a state never moves back;
//! `failed` wins over anything short of delivery.

use crate::inbound::DeliveryStatus;
use crate::time::Millis;

/// Where a message is in its life. Stored as [`MessageState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    Queued,
    Sending,
    /// A request was in flight when the process stopped, or it got no answer (a timeout): it
    /// may or may not have reached Meta.
    Uncertain,
    Accepted,
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Sending => "sending",
            MessageState::Uncertain => "uncertain",
            MessageState::Accepted => "accepted",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Read => "read",
            MessageState::Played => "played",
            MessageState::Failed => "failed",
        }
    }

    /// The stored name back as a state; an unknown name reads as `queued`, the state that
    /// makes nothing final.
    pub fn parse(s: &str) -> MessageState {
        match s {
            "sending" => MessageState::Sending,
            "uncertain" => MessageState::Uncertain,
            "accepted" => MessageState::Accepted,
            "sent" => MessageState::Sent,
            "delivered" => MessageState::Delivered,
            "read" => MessageState::Read,
            "played" => MessageState::Played,
            "failed" => MessageState::Failed,
            _ => MessageState::Queued,
        }
    }

    /// How far along the message is; a status never moves it to a lower rank.
    fn rank(self) -> u8 {
        match self {
            MessageState::Queued => 0,
            MessageState::Sending | MessageState::Uncertain => 1,
            MessageState::Accepted => 2,
            MessageState::Sent => 3,
            MessageState::Delivered => 4,
            MessageState::Read | MessageState::Played => 5,
            MessageState::Failed => 6,
        }
    }

    /// Not yet answered by the Cloud API: an attempt's response still decides what it becomes.
    pub fn awaits_response(self) -> bool {
        self.rank() <= 1
    }

    /// The state after a status webhook says `status`.
    pub fn after_status(self, status: DeliveryStatus) -> MessageState {
        let proposed = MessageState::from(status);
        match status {
            DeliveryStatus::Failed if self.rank() < 4 => MessageState::Failed,
            DeliveryStatus::Failed => self,
            _ if self == MessageState::Failed => self,
            _ if proposed.rank() > self.rank() => proposed,
            _ => self,
        }
    }

    /// What an attempt's outcome does to a message in this state.
    pub fn after_attempt(self, outcome: &AttemptOutcome) -> MessageChange {
        match outcome {
            AttemptOutcome::Deferred { at, reason } => MessageChange::Deferred {
                at: *at,
                reason: reason.clone(),
            },
            // A status webhook may already have moved the message past `accepted`.
            AttemptOutcome::Accepted { wamid } => MessageChange::Accepted {
                state: if self.rank() > MessageState::Accepted.rank() {
                    self
                } else {
                    MessageState::Accepted
                },
                wamid: wamid.clone(),
            },
            AttemptOutcome::Retry { at, code, detail } if self.awaits_response() => {
                MessageChange::Requeued {
                    at: *at,
                    code: *code,
                    detail: detail.clone(),
                }
            }
            AttemptOutcome::Failed { code, detail } if self.awaits_response() => {
                MessageChange::Failed {
                    code: *code,
                    detail: detail.clone(),
                }
            }
            AttemptOutcome::Unknown { detail } if self.awaits_response() => {
                MessageChange::Uncertain {
                    detail: detail.clone(),
                }
            }
            // A status webhook proved the message was accepted: the failed response is history.
            AttemptOutcome::Retry { .. }
            | AttemptOutcome::Failed { .. }
            | AttemptOutcome::Unknown { .. } => MessageChange::None,
        }
    }
}

impl From<DeliveryStatus> for MessageState {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Sent => MessageState::Sent,
            DeliveryStatus::Delivered => MessageState::Delivered,
            DeliveryStatus::Read => MessageState::Read,
            DeliveryStatus::Played => MessageState::Played,
            DeliveryStatus::Failed => MessageState::Failed,
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Accepted {
        wamid: String,
    },
    /// Not attempted after all: pacing sends it back to the queue until `at`.
    Deferred {
        at: Millis,
        reason: String,
    },
    Retry {
        at: Millis,
        code: Option<i64>,
        detail: String,
    },
    Failed {
        code: Option<i64>,
        detail: String,
    },
    /// The request may have reached Meta but no answer came back (it timed out, or the answer
    /// was cut off): sending it again now could deliver it twice.
    Unknown {
        detail: String,
    },
}

impl AttemptOutcome {
    /// The attempt row's `outcome`, error code and detail; `None` for a deferral, which
    /// leaves no attempt behind (no request was made).
    pub fn attempt_record(&self) -> Option<(&'static str, Option<i64>, &str)> {
        match self {
            AttemptOutcome::Accepted { wamid } => Some(("accepted", None, wamid)),
            AttemptOutcome::Retry { code, detail, .. } => Some(("retry", *code, detail)),
            AttemptOutcome::Failed { code, detail } => Some(("failed", *code, detail)),
            AttemptOutcome::Unknown { detail } => Some(("unknown", None, detail)),
            AttemptOutcome::Deferred { .. } => None,
        }
    }
}

/// What the store writes to a message after one of its attempts.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageChange {
    /// Meta took it: keep the wamid (and link statuses that overtook the response).
    Accepted { state: MessageState, wamid: String },
    /// Back to the queue, due at `at`, with the error that sent it back.
    Requeued {
        at: Millis,
        code: Option<i64>,
        detail: String,
    },
    /// Final failure.
    Failed { code: Option<i64>, detail: String },
    /// Pacing held it back before any request: the claim is undone, due again at `at`.
    Deferred { at: Millis, reason: String },
    /// No answer: it waits for a status webhook to say whether Meta took it, and is queued
    /// again only if none comes in time (the same rule as a crash mid-request).
    Uncertain { detail: String },
    /// Nothing to change (a status webhook already settled it).
    None,
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageState::*;

    #[test]
    fn a_status_never_moves_a_message_backwards() {
        assert_eq!(Accepted.after_status(DeliveryStatus::Sent), Sent);
        assert_eq!(Read.after_status(DeliveryStatus::Delivered), Read);
        assert_eq!(Sending.after_status(DeliveryStatus::Delivered), Delivered);
        assert_eq!(Sent.after_status(DeliveryStatus::Failed), Failed);
        assert_eq!(Delivered.after_status(DeliveryStatus::Failed), Delivered);
        assert_eq!(Failed.after_status(DeliveryStatus::Sent), Failed);
    }

    #[test]
    fn a_late_response_does_not_undo_a_status() {
        let retry = AttemptOutcome::Retry {
            at: 5,
            code: Some(131000),
            detail: "x".into(),
        };
        assert_eq!(Delivered.after_attempt(&retry), MessageChange::None);
        assert!(matches!(
            Sending.after_attempt(&retry),
            MessageChange::Requeued { at: 5, .. }
        ));
        let ok = AttemptOutcome::Accepted { wamid: "w".into() };
        assert!(matches!(
            Read.after_attempt(&ok),
            MessageChange::Accepted { state: Read, .. }
        ));
        assert!(matches!(
            Sending.after_attempt(&ok),
            MessageChange::Accepted {
                state: Accepted,
                ..
            }
        ));
    }

    #[test]
    fn an_unanswered_request_leaves_the_message_uncertain_unless_a_status_settled_it() {
        let unknown = AttemptOutcome::Unknown {
            detail: "no answer in time".into(),
        };
        assert_eq!(
            Sending.after_attempt(&unknown),
            MessageChange::Uncertain {
                detail: "no answer in time".into()
            }
        );
        assert_eq!(Sent.after_attempt(&unknown), MessageChange::None);
        assert_eq!(
            unknown.attempt_record(),
            Some(("unknown", None, "no answer in time"))
        );
        // A status that comes after still moves it on.
        assert_eq!(Uncertain.after_status(DeliveryStatus::Sent), Sent);
    }

    #[test]
    fn every_state_reads_back_as_itself() {
        for s in [
            Queued, Sending, Uncertain, Accepted, Sent, Delivered, Read, Played, Failed,
        ] {
            assert_eq!(MessageState::parse(s.as_str()), s);
        }
    }
}
