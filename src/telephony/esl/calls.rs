//! Whether a FreeSWITCH call was missed, from one `CHANNEL_HANGUP_COMPLETE` event. Pure.
//!
//! FreeSWITCH reports each leg separately; the caller's leg is the one with
//! `Call-Direction: inbound` (legs FreeSWITCH originates, such as the phone it rings, are
//! `outbound` and ignored). The test is the bridge, not the answer (reference §3.3):
//!
//! - bridged (`variable_bridge_uuid`, a non-zero `variable_bridge_epoch` or
//!   `Caller-Channel-Bridged-Time`, or `variable_last_bridge_to`) → answered;
//! - never bridged → missed, even if an IVR answered the leg (`variable_answersec > 0`). The
//!   outcome is the first telling cause among `variable_originate_disposition` (what the
//!   `bridge` to the phone ended with), `variable_last_bridge_hangup_cause`,
//!   `Hangup-Cause`, `variable_hangup_cause`: NO_ANSWER/NO_USER_RESPONSE/ALLOTTED_TIMEOUT
//!   → no-answer, USER_BUSY → busy, ORIGINATOR_CANCEL → canceled, CALL_REJECTED →
//!   rejected, routing and network failures → failed. NORMAL_CLEARING alone says nothing
//!   about the callee: the caller hung up in an IVR, an announcement or voicemail before any
//!   phone was bridged — canceled, the same choice as Asterisk's cause 16.

use super::wire::find;
use crate::inbound::{CallEvent, CallOutcome, CallSource};
use crate::time::Millis;

/// What one event means.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Call(CallEvent),
    /// Not a call end Ringback cares about (another event, an outbound leg).
    Ignore(&'static str),
    /// A call end that lacks what a decision needs.
    Flag(String),
}

/// Decides from the URL-decoded headers of one event, received at `now`.
pub fn decide(headers: &[(String, String)], now: Millis) -> Decision {
    let get = |k: &str| find(headers, k).map(str::trim).filter(|v| !v.is_empty());
    if get("Event-Name") != Some("CHANNEL_HANGUP_COMPLETE") {
        return Decision::Ignore("not CHANNEL_HANGUP_COMPLETE");
    }
    let Some(uuid) = get("Unique-ID") else {
        return Decision::Flag("CHANNEL_HANGUP_COMPLETE without Unique-ID".into());
    };
    let Some(direction) = get("Call-Direction")
        .or_else(|| get("Caller-Direction"))
        .or_else(|| get("variable_direction"))
    else {
        return Decision::Flag(format!(
            "call {uuid}: CHANNEL_HANGUP_COMPLETE without Call-Direction"
        ));
    };
    if !direction.eq_ignore_ascii_case("inbound") {
        return Decision::Ignore("outbound leg");
    }
    let Some(caller) = find(headers, "Caller-Caller-ID-Number") else {
        return Decision::Flag(format!("call {uuid}: no Caller-Caller-ID-Number"));
    };
    let micros = |k: &str| {
        get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|t| *t > 0)
    };
    let bridged_at = micros("Caller-Channel-Bridged-Time")
        .or_else(|| micros("variable_bridge_epoch").map(|s| s.saturating_mul(1_000_000)));
    let bridged = bridged_at.is_some()
        || get("variable_bridge_uuid").is_some()
        || get("variable_last_bridge_to").is_some();
    let created = micros("Caller-Channel-Created-Time");
    let hungup = micros("Caller-Channel-Hangup-Time");
    let span = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) if b >= a => u32::try_from((b - a) / 1_000_000).ok(),
        _ => None,
    };

    let (outcome, ring_seconds, talk_seconds) = if bridged {
        let talk = span(bridged_at, hungup)
            .or_else(|| get("variable_billsec").and_then(|v| v.parse().ok()));
        (CallOutcome::Answered, span(created, bridged_at), talk)
    } else {
        let causes = [
            "variable_originate_disposition",
            "variable_last_bridge_hangup_cause",
            "Hangup-Cause",
            "variable_hangup_cause",
        ];
        let seen: Vec<&str> = causes.iter().filter_map(|k| get(k)).collect();
        if seen.is_empty() {
            return Decision::Flag(format!("call {uuid}: never bridged, but no Hangup-Cause"));
        }
        let outcome = seen
            .iter()
            .find_map(|c| cause_outcome(c))
            .unwrap_or(CallOutcome::Canceled);
        (outcome, span(created, hungup), None)
    };
    Decision::Call(CallEvent {
        source: CallSource::Freeswitch,
        provider_call_id: uuid.to_string(),
        from_raw: caller.trim().to_string(),
        to_raw: get("Caller-Destination-Number").map(str::to_string),
        outcome,
        ring_seconds,
        talk_seconds,
        caller_name: get("Caller-Caller-ID-Name")
            .filter(|n| !n.eq_ignore_ascii_case("unknown") && *n != caller.trim())
            .map(str::to_string),
        occurred_at: now,
    })
}

/// A FreeSWITCH cause name → outcome; `None` when it says nothing about the callee.
pub fn cause_outcome(cause: &str) -> Option<CallOutcome> {
    Some(match cause.to_ascii_uppercase().as_str() {
        "NO_ANSWER"
        | "NO_USER_RESPONSE"
        | "ALLOTTED_TIMEOUT"
        | "RECOVERY_ON_TIMER_EXPIRE"
        | "PROGRESS_TIMEOUT" => CallOutcome::NoAnswer,
        "USER_BUSY" => CallOutcome::Busy,
        "ORIGINATOR_CANCEL" => CallOutcome::Canceled,
        "CALL_REJECTED" => CallOutcome::Rejected,
        "SUCCESS" | "NORMAL_CLEARING" | "NONE" | "UNSPECIFIED" | "NORMAL_UNSPECIFIED"
        | "LOSE_RACE" | "PICKED_OFF" | "ATTENDED_TRANSFER" | "BLIND_TRANSFER"
        | "MANAGER_REQUEST" => {
            return None;
        }
        // UNALLOCATED_NUMBER, NO_ROUTE_DESTINATION, USER_NOT_REGISTERED, SUBSCRIBER_ABSENT,
        // NORMAL_TEMPORARY_FAILURE, DESTINATION_OUT_OF_ORDER, …: the phone could not be reached.
        _ => CallOutcome::Failed,
    })
}

#[cfg(test)]
mod tests;
