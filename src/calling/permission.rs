//! The call-permission state machine for one (business number, WhatsApp user) pair.
//!
//! States: none → requested → accepted (temporary, 7 days, or permanent) / declined /
//! expired / revoked. Inputs are what Meta or the user did ([`Input`]); each returns the
//! [`Change`]s it caused, which the [`super::PermissionBook`] stores as
//! `call.permission_changed` events. Everything here is pure: the time is a parameter.
//!
//! Meta's rules (reference `cloud-api.md` §7.5–7.6): at most 1 permission request per 24 h and
//! 2 per 7 days, both reset by any connected call; a permanent permission makes a new request
//! pointless (138017); business-initiated calls need an accepted, unexpired permission
//! (138006) and are capped per 24 h (138012); 2 consecutive unanswered business calls make
//! WhatsApp ask the user to reconsider, 4 revoke the permission.

use serde::{Deserialize, Serialize};

use crate::time::Millis;

// The records are stored as they are, so they are defined with the store (a lower layer).
pub use crate::store::{Change, PermissionRecord, PermissionStatus};

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;
/// A temporary permission, and an unanswered request, last 7 days.
pub const TEMPORARY_MS: Millis = 7 * DAY;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub requests_per_day: usize,
    pub requests_per_week: usize,
    pub connected_calls_per_day: usize,
    pub unanswered_before_prompt: u32,
    pub unanswered_before_revoke: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            requests_per_day: 1,
            requests_per_week: 2,
            connected_calls_per_day: 100,
            unanswered_before_prompt: 2,
            unanswered_before_revoke: 4,
        }
    }
}

/// Something that happened to the pair.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// We sent a `call_permission_request` (interactive or template); `origin` = our message id.
    RequestSent { origin: String },
    /// The user (or WhatsApp, `automatic`) answered; `origin` = the reply's wamid.
    Reply {
        origin: String,
        accept: bool,
        permanent: bool,
        expires_at: Option<Millis>,
        automatic: bool,
    },
    /// The user called the business. `connected` if the call was answered.
    /// `callback_permission`: the number grants a temporary permission to callers.
    UserCalled {
        origin: String,
        connected: bool,
        callback_permission: bool,
    },
    /// A business-initiated call ended; `origin` = its wacid.
    BusinessCallEnded { origin: String, answered: bool },
}

impl Input {
    /// The id of the message or call this input came from (its idempotency key).
    pub fn origin(&self) -> &str {
        match self {
            Input::RequestSent { origin }
            | Input::Reply { origin, .. }
            | Input::UserCalled { origin, .. }
            | Input::BusinessCallEnded { origin, .. } => origin,
        }
    }
}

/// Why an action is refused locally, with Meta's code for the same refusal.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: i64,
    pub message: String,
}

fn refusal(code: i64, message: String) -> Refusal {
    Refusal { code, message }
}

fn fmt_time(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

impl PermissionRecord {
    /// The status as of `now`: a temporary permission or an open request past its 7 days
    /// reads as expired even before [`apply`] records it.
    pub fn status_at(&self, now: Millis) -> PermissionStatus {
        match self.status {
            PermissionStatus::Accepted | PermissionStatus::Requested
                if !self.permanent && self.expires_at.is_some_and(|e| e <= now) =>
            {
                PermissionStatus::Expired
            }
            s => s,
        }
    }

    /// May a permission request be sent now?
    pub fn may_request(&self, now: Millis, limits: &Limits) -> Result<(), Refusal> {
        if self.status_at(now) == PermissionStatus::Accepted && self.permanent {
            return Err(refusal(
                138017,
                "the user already gave a permanent call permission; call them instead of asking again".into(),
            ));
        }
        for (span, max, label) in [
            (DAY, limits.requests_per_day, "24 hours"),
            (TEMPORARY_MS, limits.requests_per_week, "7 days"),
        ] {
            let recent = self.requests.iter().filter(|&&t| t > now - span);
            if recent.clone().count() >= max {
                let next = recent.min().map(|t| fmt_time(t + span)).unwrap_or_default();
                return Err(refusal(
                    138009,
                    format!(
                        "call-permission request limit reached: {max} per {label} (next allowed at {next}); a connected call resets it"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// May the business call the user now?
    pub fn may_call(&self, now: Millis, limits: &Limits) -> Result<(), Refusal> {
        match self.status_at(now) {
            PermissionStatus::Accepted => {}
            s => {
                return Err(refusal(
                    138006,
                    format!(
                        "no call permission from this user (state: {}); send a call-permission request first (POST /api/v1/calls/permission-requests)",
                        s.as_str()
                    ),
                ));
            }
        }
        let today: Vec<Millis> = self
            .connected_calls
            .iter()
            .copied()
            .filter(|&t| t > now - DAY)
            .collect();
        if today.len() >= limits.connected_calls_per_day {
            let next = today
                .iter()
                .min()
                .map(|t| fmt_time(t + DAY))
                .unwrap_or_default();
            return Err(refusal(
                138012,
                format!(
                    "{} connected business-initiated calls to this user in 24 hours is the limit; next allowed at {next}",
                    limits.connected_calls_per_day
                ),
            ));
        }
        Ok(())
    }
}

/// Applies one input at `now`; returns the changes to record (empty for a redelivery).
pub fn apply(
    rec: &mut PermissionRecord,
    input: &Input,
    now: Millis,
    limits: &Limits,
) -> Vec<Change> {
    let mut changes = Vec::new();
    if rec.seen.iter().any(|s| s == input.origin()) {
        return changes;
    }
    expire(rec, now, &mut changes);
    rec.requests.retain(|&t| t > now - TEMPORARY_MS);
    rec.connected_calls.retain(|&t| t > now - DAY);
    let from = rec.status;
    let mut set =
        |rec: &mut PermissionRecord, to: PermissionStatus, source: &str, reason: String| {
            changes.push(Change {
                from: rec.status,
                to,
                source: source.into(),
                reason,
            });
            rec.status = to;
        };
    match input {
        Input::RequestSent { .. } => {
            rec.requests.push(now);
            if from == PermissionStatus::Accepted {
                // An accepted permission stays; the request only counts against the limits.
                set(
                    rec,
                    from,
                    "request",
                    "call-permission request sent while a permission is active".into(),
                );
            } else {
                rec.expires_at = Some(now + TEMPORARY_MS);
                rec.permanent = false;
                set(
                    rec,
                    PermissionStatus::Requested,
                    "request",
                    "call-permission request sent".into(),
                );
            }
        }
        Input::Reply {
            accept: true,
            permanent,
            expires_at,
            automatic,
            ..
        } => {
            rec.permanent = *permanent;
            rec.expires_at = if *permanent {
                None
            } else {
                Some(expires_at.unwrap_or(now + TEMPORARY_MS))
            };
            rec.consecutive_unanswered = 0;
            let kind = if *permanent {
                "permanent"
            } else {
                "temporary (7 days)"
            };
            let (source, reason) = if *automatic {
                (
                    "automatic",
                    format!("WhatsApp granted a {kind} permission automatically"),
                )
            } else {
                ("user_reply", format!("the user accepted: {kind}"))
            };
            set(rec, PermissionStatus::Accepted, source, reason);
        }
        Input::Reply {
            accept: false,
            automatic,
            ..
        } => {
            rec.permanent = false;
            rec.expires_at = None;
            let source = if *automatic {
                "automatic"
            } else {
                "user_reply"
            };
            set(
                rec,
                PermissionStatus::Declined,
                source,
                "the user declined".into(),
            );
        }
        Input::UserCalled {
            connected,
            callback_permission,
            ..
        } => {
            if *connected {
                // Any connected call resets the request limits.
                rec.requests.clear();
            }
            if *callback_permission && !(from == PermissionStatus::Accepted && rec.permanent) {
                rec.permanent = false;
                rec.expires_at = Some(now + TEMPORARY_MS);
                rec.consecutive_unanswered = 0;
                set(
                    rec,
                    PermissionStatus::Accepted,
                    "user_call",
                    "the user called; callback permission grants a temporary permission (7 days)"
                        .into(),
                );
            }
        }
        Input::BusinessCallEnded { answered: true, .. } => {
            rec.requests.clear();
            rec.connected_calls.push(now);
            rec.consecutive_unanswered = 0;
        }
        Input::BusinessCallEnded {
            answered: false, ..
        } => {
            rec.consecutive_unanswered += 1;
            let n = rec.consecutive_unanswered;
            if from == PermissionStatus::Accepted {
                if n >= limits.unanswered_before_revoke {
                    rec.permanent = false;
                    rec.expires_at = None;
                    set(
                        rec,
                        PermissionStatus::Revoked,
                        "unanswered_calls",
                        format!(
                            "{n} consecutive unanswered business calls: WhatsApp revoked the permission"
                        ),
                    );
                } else if n == limits.unanswered_before_prompt {
                    set(
                        rec,
                        from,
                        "unanswered_calls",
                        format!(
                            "{n} consecutive unanswered business calls: WhatsApp asks the user to reconsider the permission"
                        ),
                    );
                }
            }
        }
    }
    rec.seen.push(input.origin().to_string());
    if rec.seen.len() > 32 {
        rec.seen.remove(0);
    }
    rec.updated_at = now;
    changes
}

/// Records the lapse of a temporary permission or an unanswered request.
fn expire(rec: &mut PermissionRecord, now: Millis, changes: &mut Vec<Change>) {
    if rec.status_at(now) == PermissionStatus::Expired && rec.status != PermissionStatus::Expired {
        changes.push(Change {
            from: rec.status,
            to: PermissionStatus::Expired,
            source: "expiry".into(),
            reason: format!(
                "lapsed at {}",
                rec.expires_at.map(fmt_time).unwrap_or_default()
            ),
        });
        rec.status = PermissionStatus::Expired;
        rec.expires_at = None;
    }
}

#[cfg(test)]
mod tests;
