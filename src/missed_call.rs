//! Missed-call rules: is this call missed, may we answer the caller, and should we?
//!
//! Pure functions over a call, the caller's contact record and the rules; the processor loads
//! the facts and stores the [`Verdict`] with its reason, so "why didn't X get a message?" always
//! has an answer.

use crate::inbound::{CallEvent, CallOutcome};
use crate::phone::{PhoneE164, Region};
use crate::store::Contact;
use crate::time::Millis;

/// The rules from configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    pub region: Region,
    pub ring_timeout_seconds: u32,
    pub cooldown_ms: Millis,
    /// The built-in reply is on; off, flows on `call.missed` answer instead.
    pub builtin_reply: bool,
}

/// What to do about one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Still ringing and under the ring timeout: wait for the end of the call.
    Pending { reason: String },
    /// Someone answered.
    Answered { reason: String },
    /// Missed, but we will not (or cannot) reply.
    Skip {
        caller: Option<PhoneE164>,
        reason: String,
    },
    /// Missed, but the caller already got a reply within the cooldown.
    Collapse {
        caller: PhoneE164,
        message_id: Option<String>,
        reason: String,
    },
    /// Missed and answerable: reply.
    Reply { caller: PhoneE164, reason: String },
}

impl Verdict {
    /// The decision word stored with the call.
    pub fn decision(&self) -> &'static str {
        match self {
            Verdict::Pending { .. } => "pending",
            Verdict::Answered { .. } => "answered",
            Verdict::Skip { .. } => "skipped",
            Verdict::Collapse { .. } => "collapsed",
            Verdict::Reply { .. } => "replied",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Verdict::Pending { reason }
            | Verdict::Answered { reason }
            | Verdict::Skip { reason, .. }
            | Verdict::Collapse { reason, .. }
            | Verdict::Reply { reason, .. } => reason,
        }
    }

    pub fn is_missed(&self) -> bool {
        !matches!(self, Verdict::Pending { .. } | Verdict::Answered { .. })
    }
}

/// Missed by status, or by ringing past the timeout unanswered.
pub fn missed_reason(call: &CallEvent, ring_timeout_seconds: u32) -> Result<String, Verdict> {
    let rang = call
        .ring_seconds
        .map(|s| format!(" after ringing {s} s"))
        .unwrap_or_default();
    match call.outcome {
        CallOutcome::Answered => Err(Verdict::Answered {
            reason: format!("answered{rang}"),
        }),
        CallOutcome::Ringing => match call.ring_seconds {
            Some(s) if s >= ring_timeout_seconds => Ok(format!(
                "rang {s} s unanswered (ring timeout {ring_timeout_seconds} s)"
            )),
            _ => Err(Verdict::Pending {
                reason: format!("still ringing{rang}; waiting for the end of the call"),
            }),
        },
        CallOutcome::NoAnswer => Ok(format!("no answer{rang}")),
        CallOutcome::Busy => Ok("the line was busy".into()),
        CallOutcome::Failed => Ok("the forwarded call failed".into()),
        CallOutcome::Canceled => Ok(format!("the caller hung up while it rang{rang}")),
        CallOutcome::Rejected => Ok("the missed-call number rejected the call".into()),
    }
}

/// Decides about a call whose caller and contact record are known.
pub fn decide(
    call: &CallEvent,
    rules: &Rules,
    own_numbers: &[PhoneE164],
    contact: impl FnOnce(&PhoneE164) -> Option<Contact>,
    now: Millis,
) -> Verdict {
    decide_with(call, rules, None, own_numbers, contact, now)
}

/// [`decide`] with the caller id already read by the caller (`None`: read it here), so a
/// processor that needed the number first does not parse it twice.
pub fn decide_with(
    call: &CallEvent,
    rules: &Rules,
    caller_id: Option<Result<PhoneE164, crate::phone::Unusable>>,
    own_numbers: &[PhoneE164],
    contact: impl FnOnce(&PhoneE164) -> Option<Contact>,
    now: Millis,
) -> Verdict {
    let why_missed = match missed_reason(call, rules.ring_timeout_seconds) {
        Ok(r) => r,
        Err(v) => return v,
    };
    let caller_id =
        caller_id.unwrap_or_else(|| PhoneE164::from_caller_id(&call.from_raw, rules.region));
    let caller = match caller_id {
        Ok(c) => c,
        Err(e) => {
            return Verdict::Skip {
                caller: None,
                reason: format!("missed ({why_missed}), but {e}"),
            };
        }
    };
    if own_numbers.contains(&caller) {
        return Verdict::Skip {
            caller: Some(caller),
            reason: format!(
                "missed ({why_missed}), but the caller is one of the business's own numbers"
            ),
        };
    }
    if let Some(c) = contact(&caller)
        && let Some(last) = c.last_reply_at.filter(|t| now - t < rules.cooldown_ms)
    {
        let minutes = (now - last).max(0) / 60_000;
        return Verdict::Collapse {
            reason: format!(
                "missed ({why_missed}); the caller got a reply {minutes} min ago, inside the {} min cooldown",
                rules.cooldown_ms / 60_000
            ),
            message_id: c.last_reply_message_id.clone(),
            caller,
        };
    }
    if !rules.builtin_reply {
        return Verdict::Skip {
            caller: Some(caller),
            reason: format!(
                "missed ({why_missed}); the built-in reply is off (missed_call.reply.builtin = false), flows on call.missed answer"
            ),
        };
    }
    Verdict::Reply {
        caller,
        reason: format!("missed ({why_missed})"),
    }
}

#[cfg(test)]
mod tests;
