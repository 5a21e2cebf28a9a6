//! The CDR fallback: calls that channel events cannot decide, settled from `Cdr` events
//! (see the parent module for when and why).

use super::super::wire::Message;
use super::{
    CDR_SETTLE_MS, Call, Correlator, MAX_CALLS, MAX_RAW_BYTES, Output, flag, is_unknown, nonempty,
};
use crate::inbound::{CallEvent, CallOutcome, CallSource};
use crate::time::Millis;

/// A call only CDRs can decide.
#[derive(Debug, Default)]
pub(super) struct Settling {
    pub(super) deadline: Millis,
    /// From channel events that saw part of the call (a gap), if any.
    pub(super) channel: Option<Call>,
    pub(super) dispositions: Vec<String>,
    pub(super) caller: Option<String>,
    pub(super) caller_name: Option<String>,
    pub(super) callee: Option<String>,
    pub(super) context: Option<String>,
    pub(super) duration_s: Option<u32>,
    pub(super) billsec: Option<u32>,
    pub(super) raw: Vec<u8>,
}

impl Correlator {
    pub(super) fn cdr(&mut self, msg: &Message, now: Millis) -> Vec<Output> {
        let Some(uid) = nonempty(msg.get("UniqueID")) else {
            return vec![flag("Cdr event without UniqueID".into(), msg)];
        };
        let Some(disposition) = nonempty(msg.get("Disposition")) else {
            return vec![flag(
                format!("Cdr event for {uid} without Disposition"),
                msg,
            )];
        };
        if self.decided.contains_key(uid) || self.calls.contains_key(uid) {
            return Vec::new(); // channel events decide (or will decide) this call
        }
        if !self.settling.contains_key(uid) && self.settling.len() >= MAX_CALLS {
            return vec![flag(
                format!("{MAX_CALLS} calls settling; Cdr {uid} dropped"),
                msg,
            )];
        }
        let s = self.settling.entry(uid.to_string()).or_default();
        s.deadline = s.deadline.max(now + CDR_SETTLE_MS);
        s.dispositions.push(disposition.to_ascii_uppercase());
        s.caller
            .get_or_insert_with(|| msg.get("Source").unwrap_or("").to_string());
        if s.caller_name.is_none() {
            s.caller_name = msg.get("CallerID").map(str::to_string);
        }
        if s.callee.is_none() {
            s.callee = nonempty(msg.get("Destination")).map(str::to_string);
        }
        if s.context.is_none() {
            s.context = nonempty(msg.get("DestinationContext")).map(str::to_string);
        }
        let num = |k| msg.get(k).and_then(|v| v.trim().parse::<u32>().ok());
        s.duration_s = s.duration_s.max(num("Duration"));
        s.billsec = s.billsec.max(num("BillableSeconds"));
        if s.raw.len() + msg.raw.len() <= MAX_RAW_BYTES {
            s.raw.extend_from_slice(&msg.raw);
        }
        Vec::new()
    }

    pub(super) fn decide_settled(&self, id: &str, s: Settling, now: Millis) -> Option<Output> {
        let channel = s.channel.unwrap_or_default();
        let mut raw = channel.raw;
        raw.extend_from_slice(&s.raw);
        let answered = channel.answered.is_some() || s.dispositions.iter().any(|d| d == "ANSWERED");
        let outcome = if answered {
            CallOutcome::Answered
        } else if let Some(d) = s.dispositions.first() {
            match d.as_str() {
                "NO ANSWER" => CallOutcome::NoAnswer,
                "BUSY" => CallOutcome::Busy,
                _ => CallOutcome::Failed, // FAILED, CONGESTION
            }
        } else {
            return Some(Output::Flag {
                reason: format!(
                    "call {id} was in progress while the AMI connection was down and no Cdr event followed; outcome unknown"
                ),
                raw,
            });
        };
        let mut contexts = channel.contexts;
        contexts.extend(s.context);
        if !self.context_allowed(&contexts) {
            return None;
        }
        let Some(caller) = channel.caller.or(s.caller) else {
            return Some(Output::Flag {
                reason: format!("call {id}: no caller number in its events"),
                raw,
            });
        };
        Some(Output::Call {
            call: CallEvent {
                source: CallSource::Asterisk,
                provider_call_id: id.to_string(),
                from_raw: caller,
                to_raw: channel.callee.or(s.callee),
                outcome,
                // CDR Duration counts from the call's start: for an unanswered call that is
                // how long it rang (plus any IVR time).
                ring_seconds: if answered { None } else { s.duration_s },
                talk_seconds: if answered { s.billsec } else { None },
                caller_name: channel
                    .caller_name
                    .or(s.caller_name)
                    .filter(|n| !n.is_empty() && !is_unknown(n)),
                occurred_at: now,
            },
            raw,
        })
    }
}
