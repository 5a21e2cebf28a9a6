//! Whether each sending number can send: online, or offline with the reason.
//!
//! A number goes offline when
//! - Meta refuses a send for a reason no message can fix (the errors whose action is
//!   [`Action::FixAccount`]: an expired or invalidated token, missing permissions, a payment
//!   problem, a locked account);
//! - Meta announces it is disconnected, banned or deleted;
//! - [`FAILURES_OFFLINE`] sends in a row get no answer or a 5xx (the Cloud API is unreachable
//!   from here).
//!
//! It is online again after one accepted send, or when Meta announces it connected. While a
//! number is offline its lane sends one request every `outbox.offline_probe_seconds` to find
//! out (other sends wait, queued, and nothing is lost); the API refuses new sends through it
//! up front with `sender_offline`, or queues them, per `outbox.when_sender_offline`. The state
//! is kept by the node that sends (the leader); each change is journaled and published as
//! `number.offline` / `number.online`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cloud_api::Outcome;
use crate::cloud_api::errors::{Action, lookup};
use crate::events::Fact;
use crate::time::{Millis, now_ms};

/// Unanswered or 5xx sends in a row after which a number counts as offline.
pub const FAILURES_OFFLINE: u32 = 5;

/// Meta's number statuses under which nothing can be sent.
const OFFLINE_STATUSES: &[&str] = &["DISCONNECTED", "BANNED", "DELETED"];

/// A number's sending state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub online: bool,
    /// Why it is offline, in words, with what to do.
    pub reason: Option<String>,
    /// Since when it is in this state (`None`: online since start).
    pub since: Option<Millis>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            online: true,
            reason: None,
            since: None,
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    status: Status,
    failures_in_row: u32,
    last_probe: Option<Instant>,
}

/// Every number's state; shared by the lanes, the processor and the API.
#[derive(Clone)]
pub struct SenderStatus {
    inner: Arc<RwLock<HashMap<String, Entry>>>,
    probe_every: Duration,
}

impl SenderStatus {
    pub fn new(probe_every: Duration) -> Self {
        SenderStatus {
            inner: Default::default(),
            probe_every,
        }
    }

    pub fn get(&self, number: &str) -> Status {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(number)
            .map(|e| e.status.clone())
            .unwrap_or_default()
    }

    /// `Ok` when a send may be attempted now: the number is online, or offline with a probe
    /// due (this call takes it). Otherwise the reason.
    pub fn may_send(&self, number: &str) -> Result<(), String> {
        let mut all = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let Some(e) = all.get_mut(number) else {
            return Ok(());
        };
        if e.status.online {
            return Ok(());
        }
        if e.last_probe.is_none_or(|t| t.elapsed() >= self.probe_every) {
            e.last_probe = Some(Instant::now());
            return Ok(());
        }
        Err(format!(
            "sender offline: {}",
            e.status.reason.as_deref().unwrap_or("unknown")
        ))
    }

    /// Learns from a send's outcome; the fact to journal when the state changed.
    pub fn after_send(&self, number: &str, outcome: &Outcome) -> Option<Fact> {
        match outcome {
            Outcome::Sent { .. } => self.set(number, None, |e| e.failures_in_row = 0),
            Outcome::Fail {
                code: Some(code), ..
            } if lookup(*code).is_some_and(|i| i.action == Action::FixAccount) => {
                let info = lookup(*code).expect("checked above");
                let reason = format!(
                    "the Cloud API refused a send with error {code}: {} {}",
                    info.meaning, info.fix
                );
                self.set(number, Some(reason), |_| {})
            }
            Outcome::Retry {
                code: None, reason, ..
            }
            | Outcome::Unknown { reason } => {
                let failures = {
                    let mut all = self.inner.write().unwrap_or_else(|p| p.into_inner());
                    let e = all.entry(number.to_string()).or_default();
                    e.failures_in_row += 1;
                    e.failures_in_row
                };
                (failures >= FAILURES_OFFLINE).then_some(()).and_then(|()| {
                    let reason = format!(
                        "the Cloud API did not answer or failed {failures} times in a row (last: {reason}); sends wait and one is tried every few seconds"
                    );
                    self.set(number, Some(reason), |_| {})
                })
            }
            // A refusal of this message (bad input, a recipient rule, a rate limit): the
            // number itself works.
            _ => None,
        }
    }

    /// Learns from Meta's announcement of a number's status.
    pub fn after_meta_status(&self, number: &str, status: &str) -> Option<Fact> {
        if OFFLINE_STATUSES.contains(&status) {
            let reason =
                format!("Meta reports the number as {status}; reconnect it in WhatsApp Manager");
            self.set(number, Some(reason), |_| {})
        } else if status == "CONNECTED" {
            self.set(number, None, |_| {})
        } else {
            None
        }
    }

    /// Sets a number offline (`Some(reason)`) or online; the fact when that is a change.
    fn set(
        &self,
        number: &str,
        offline: Option<String>,
        also: impl FnOnce(&mut Entry),
    ) -> Option<Fact> {
        let mut all = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let e = all.entry(number.to_string()).or_default();
        also(e);
        let online = offline.is_none();
        if e.status.online == online && (online || e.status.reason == offline) {
            return None;
        }
        let at = now_ms();
        e.status = Status {
            online,
            reason: offline.clone(),
            since: Some(at),
        };
        e.last_probe = Some(Instant::now());
        if online {
            e.failures_in_row = 0;
        }
        metrics::gauge!("ringback_sender_online", "phone_number_id" => number.to_string())
            .set(if online { 1.0 } else { 0.0 });
        Some(Fact::SenderStatus {
            phone_number_id: number.to_string(),
            online,
            reason: offline,
            at,
        })
    }
}

/// Logs a change of state and journals it, so it is published as an event. A failure to
/// journal is logged only: the state itself lives in memory and has changed already.
pub async fn announce(store: &std::sync::Arc<dyn crate::store::Store>, fact: &Fact) {
    if let Fact::SenderStatus {
        phone_number_id,
        online,
        reason,
        ..
    } = fact
    {
        if *online {
            tracing::info!(phone_number_id, "Sending number is online again.");
        } else {
            tracing::warn!(
                phone_number_id,
                reason = reason.as_deref().unwrap_or(""),
                "Sending number is offline; its sends wait."
            );
        }
    }
    if let Err(e) = store.record_fact(fact).await {
        tracing::error!(error.message = %e, "Could not journal a sending number's change of state.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry() -> Outcome {
        Outcome::Retry {
            after: None,
            code: None,
            reason: "HTTP 503".into(),
        }
    }

    #[test]
    fn a_rejected_token_takes_a_number_offline_and_an_accepted_send_brings_it_back() {
        let s = SenderStatus::new(Duration::from_secs(3600));
        let fact = s.after_send(
            "pn",
            &Outcome::Fail {
                code: Some(190),
                reason: "expired".into(),
            },
        );
        assert!(
            matches!(fact, Some(Fact::SenderStatus { online: false, .. })),
            "{fact:?}"
        );
        let status = s.get("pn");
        assert!(!status.online);
        assert!(status.reason.unwrap().contains("190"));
        // The probe right after going offline was taken by the change itself.
        assert!(
            s.may_send("pn")
                .unwrap_err()
                .starts_with("sender offline: ")
        );
        assert!(
            s.after_send(
                "pn",
                &Outcome::Fail {
                    code: Some(190),
                    reason: "again".into()
                }
            )
            .is_none()
        );
        let back = s.after_send("pn", &Outcome::Sent { wamid: "w".into() });
        assert!(matches!(
            back,
            Some(Fact::SenderStatus { online: true, .. })
        ));
        assert!(s.may_send("pn").is_ok());
    }

    #[test]
    fn only_failures_in_a_row_count_and_a_message_refusal_is_not_the_numbers_fault() {
        let s = SenderStatus::new(Duration::ZERO);
        for _ in 0..FAILURES_OFFLINE - 1 {
            assert!(s.after_send("pn", &retry()).is_none());
        }
        assert!(
            s.after_send("pn", &Outcome::Sent { wamid: "w".into() })
                .is_none()
        );
        for _ in 0..FAILURES_OFFLINE - 1 {
            assert!(s.after_send("pn", &retry()).is_none());
        }
        assert!(s.after_send("pn", &retry()).is_some());
        assert!(
            s.may_send("pn").is_ok(),
            "a probe is due at once with a zero interval"
        );
        let bad_input = Outcome::Fail {
            code: Some(131026),
            reason: "undeliverable".into(),
        };
        let other = SenderStatus::new(Duration::ZERO);
        assert!(other.after_send("pn", &bad_input).is_none());
        assert!(other.get("pn").online);
    }

    #[test]
    fn meta_disconnecting_a_number_takes_it_offline_until_it_connects() {
        let s = SenderStatus::new(Duration::from_secs(60));
        assert!(s.after_meta_status("pn", "FLAGGED").is_none());
        assert!(s.after_meta_status("pn", "DISCONNECTED").is_some());
        assert!(!s.get("pn").online);
        assert!(s.after_meta_status("pn", "CONNECTED").is_some());
        assert!(s.get("pn").online);
    }
}
