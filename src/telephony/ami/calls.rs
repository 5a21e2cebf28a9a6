//! Which AMI events make a call, and whether it was missed. Pure: events and times in,
//! decided calls out; the client owns the socket and the clock.
//!
//! Asterisk reports channels, not calls. Every channel of one call shares a `Linkedid`, the
//! `Uniqueid` of the oldest channel, so events are grouped by it. The call is decided when
//! the *originating* channel (`Uniqueid == Linkedid`, the trunk leg) hangs up:
//!
//! 1. any `DialEnd` with `DialStatus: ANSWER` → answered (a ring group produces several
//!    `DialEnd`s; one answer wins);
//! 2. otherwise the last `DialEnd` status: `NOANSWER` → no-answer, `BUSY` → busy, `CANCEL`
//!    → canceled (the caller hung up while it rang), `CONGESTION`/`CHANUNAVAIL`/
//!    `INVALIDARGS` → failed, `DONTCALL`/`TORTURE` → rejected (privacy manager);
//! 3. with no `DialEnd` at all, the `Hangup` `Cause` (Q.850): 17 busy, 18/19 no-answer,
//!    21 rejected, congestion/routing causes failed, and 16 (normal clearing) or 0 canceled:
//!    the caller hung up in an IVR, an announcement or voicemail before anyone was dialled.
//!    No person answered, so it is a missed call (an after-hours "we're closed" message is
//!    exactly the case Ringback exists for).
//!
//! The A-leg's own answer state is deliberately ignored: an IVR that ran `Answer()` before
//! dialling makes the A-leg "answered" although no human picked up (reference §3.1).
//!
//! `Cdr` events are used only as a fallback, when the channel events cannot decide: the call
//! was never seen on channel events (the manager user reads only `cdr`), or part of it
//! happened while the connection was down. A CDR alone is weaker evidence (the A-leg CDR of
//! an IVR call says ANSWERED), so channel events win whenever they are complete. Several CDRs
//! can belong to one call (one per dialled party), so CDR-only calls settle for
//! [`CDR_SETTLE_MS`] before they are decided, and one `ANSWERED` wins.

use std::collections::HashMap;

use super::wire::Message;
use crate::inbound::{CallEvent, CallOutcome, CallSource};
use crate::time::Millis;
use cdr::Settling;

/// Calls that never finish (a lost `Hangup`) are forgotten after this long.
pub const MAX_CALL_AGE_MS: Millis = 4 * crate::time::HOUR_MS;
/// How long CDR-decided calls wait for sibling CDRs.
pub const CDR_SETTLE_MS: Millis = 2_000;
/// Decided call ids are remembered this long, so late events (B-leg hangups, the CDR) do
/// not start a new call.
const DECIDED_MEMORY_MS: Millis = 10 * 60_000;
/// At most this many calls in progress are tracked; a PBX has far fewer at once.
const MAX_CALLS: usize = 20_000;
/// Raw event bytes kept per call for audit.
const MAX_RAW_BYTES: usize = 16 * 1024;

/// What the correlator concluded from an event or a tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A decided call and the raw blocks that decided it.
    Call { call: CallEvent, raw: Vec<u8> },
    /// Input that cannot be used, with the reason.
    Flag { reason: String, raw: Vec<u8> },
}

/// Groups AMI events into calls and decides them.
#[derive(Debug, Default)]
pub struct Correlator {
    /// Only calls whose originating channel entered one of these contexts; empty = all.
    contexts: Vec<String>,
    calls: HashMap<String, Call>,
    /// Calls waiting for CDRs to settle (or that only CDRs can decide).
    settling: HashMap<String, Settling>,
    decided: HashMap<String, Millis>,
}

/// A call in progress, as channel events describe it.
#[derive(Debug, Default)]
struct Call {
    /// When Ringback first heard of it (wall clock), for forgetting stale calls.
    first_at: Millis,
    /// Saw the originating channel's `Newchannel` and no connection gap since.
    complete: bool,
    caller: Option<String>,
    caller_name: Option<String>,
    callee: Option<String>,
    contexts: Vec<String>,
    /// DestUniqueid (or DestChannel) → DialBegin time.
    dials: HashMap<String, Millis>,
    answered: Option<(Millis, Option<Millis>)>,
    last_status: Option<String>,
    longest_ring_ms: Option<Millis>,
    raw: Vec<u8>,
}

impl Correlator {
    pub fn new(contexts: Vec<String>) -> Self {
        Self {
            contexts,
            ..Self::default()
        }
    }

    /// Calls being tracked (for tests and metrics).
    pub fn in_progress(&self) -> usize {
        self.calls.len() + self.settling.len()
    }

    /// The connection dropped: events may have been lost, so no call in progress can be
    /// called missed from channel events alone any more.
    pub fn connection_lost(&mut self) {
        for call in self.calls.values_mut() {
            call.complete = false;
        }
    }

    /// Feeds one message received at `now` (wall clock, unix ms).
    pub fn observe(&mut self, msg: &Message, now: Millis) -> Vec<Output> {
        let Some(event) = msg.event() else {
            return Vec::new();
        };
        // `timestampevents = yes` in manager.conf adds an exact time; otherwise arrival time.
        let at = msg
            .get("Timestamp")
            .and_then(parse_timestamp)
            .unwrap_or(now);
        match event {
            "Newchannel" | "DialBegin" | "DialEnd" | "Hangup" => {
                self.channel_event(event, msg, at, now)
            }
            "Cdr" => self.cdr(msg, now),
            _ => Vec::new(),
        }
    }

    fn channel_event(
        &mut self,
        event: &str,
        msg: &Message,
        at: Millis,
        now: Millis,
    ) -> Vec<Output> {
        let (Some(uid), Some(linked)) =
            (nonempty(msg.get("Uniqueid")), nonempty(msg.get("Linkedid")))
        else {
            return vec![flag(
                format!("{event} event without Uniqueid or Linkedid"),
                msg,
            )];
        };
        let origin = uid == linked;
        if self.decided.contains_key(linked) {
            if !(origin && event == "Newchannel") {
                return Vec::new(); // a B-leg hanging up after the call was decided
            }
            self.decided.remove(linked); // the same call replayed from its start
        }
        if !self.calls.contains_key(linked) {
            if self.calls.len() >= MAX_CALLS {
                return vec![flag(
                    format!("{MAX_CALLS} calls in progress; {linked} not tracked"),
                    msg,
                )];
            }
            self.calls.insert(
                linked.to_string(),
                Call {
                    first_at: now,
                    ..Call::default()
                },
            );
        }
        let Some(call) = self.calls.get_mut(linked) else {
            return Vec::new();
        };
        if call.raw.len() + msg.raw.len() <= MAX_RAW_BYTES {
            call.raw.extend_from_slice(&msg.raw);
        }
        if origin {
            call.note_origin(msg);
            if event == "Newchannel" {
                call.complete = true;
            }
        }
        match event {
            "DialBegin" => {
                call.dials.insert(dest_key(msg), at);
            }
            "DialEnd" => {
                let Some(status) = nonempty(msg.get("DialStatus")) else {
                    return vec![flag("DialEnd event without DialStatus".into(), msg)];
                };
                let ring = call.dials.get(&dest_key(msg)).map(|b| (at - b).max(0));
                if status.eq_ignore_ascii_case("ANSWER") {
                    call.answered.get_or_insert((at, ring));
                } else if dial_status_outcome(status).is_some() {
                    call.last_status = Some(status.to_ascii_uppercase());
                    call.longest_ring_ms = call.longest_ring_ms.max(ring);
                }
            }
            "Hangup" if origin => {
                let call = self.calls.remove(linked).unwrap_or_default();
                return self.decide_from_channels(linked, call, msg, at, now);
            }
            _ => {}
        }
        Vec::new()
    }

    fn decide_from_channels(
        &mut self,
        id: &str,
        call: Call,
        hangup: &Message,
        at: Millis,
        now: Millis,
    ) -> Vec<Output> {
        let outcome = if call.answered.is_some() {
            CallOutcome::Answered
        } else if !call.complete {
            // Part of this call happened while we were not listening; a CDR may tell.
            self.settling.insert(
                id.to_string(),
                Settling {
                    deadline: now + CDR_SETTLE_MS,
                    channel: Some(call),
                    ..Settling::default()
                },
            );
            return Vec::new();
        } else if let Some(o) = call.last_status.as_deref().and_then(dial_status_outcome) {
            o
        } else {
            match hangup
                .get("Cause")
                .and_then(|c| c.trim().parse::<u16>().ok())
            {
                Some(cause) => cause_outcome(cause),
                None => {
                    self.remember(id, now);
                    let mut raw = call.raw;
                    raw.extend_from_slice(&hangup.raw);
                    return vec![Output::Flag {
                        reason: format!(
                            "call {id}: the calling channel hung up without a Cause and no DialEnd; outcome unknown"
                        ),
                        raw,
                    }];
                }
            }
        };
        self.remember(id, now);
        if !self.context_allowed(&call.contexts) {
            return Vec::new();
        }
        let Some(caller) = call.caller.clone() else {
            return vec![Output::Flag {
                reason: format!("call {id}: no CallerIDNum for the calling channel"),
                raw: call.raw,
            }];
        };
        let (ring_ms, talk) = match call.answered {
            Some((answered_at, ring)) => (ring, Some(secs(at - answered_at))),
            None => (call.longest_ring_ms, None),
        };
        vec![Output::Call {
            call: CallEvent {
                source: CallSource::Asterisk,
                provider_call_id: id.to_string(),
                from_raw: caller,
                to_raw: call.callee,
                outcome,
                ring_seconds: ring_ms.map(secs),
                talk_seconds: talk,
                caller_name: call.caller_name.filter(|n| !is_unknown(n)),
                occurred_at: now,
            },
            raw: call.raw,
        }]
    }

    /// Time passes: settles CDR-only calls and forgets calls that never ended.
    /// Returns the decisions and how many stale calls were dropped.
    pub fn tick(&mut self, now: Millis) -> (Vec<Output>, usize) {
        let due: Vec<String> = self
            .settling
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for id in due {
            if let Some(s) = self.settling.remove(&id) {
                self.remember(&id, now);
                out.extend(self.decide_settled(&id, s, now));
            }
        }
        let before = self.calls.len();
        self.calls.retain(|_, c| now - c.first_at < MAX_CALL_AGE_MS);
        self.decided.retain(|_, at| now - *at < DECIDED_MEMORY_MS);
        (out, before - self.calls.len())
    }

    fn remember(&mut self, id: &str, now: Millis) {
        self.decided.insert(id.to_string(), now);
    }

    fn context_allowed(&self, seen: &[String]) -> bool {
        self.contexts.is_empty() || seen.iter().any(|c| self.contexts.contains(c))
    }
}

impl Call {
    /// Takes what the originating channel's events say about the caller and the line.
    fn note_origin(&mut self, msg: &Message) {
        // The latest value wins: dialplans often normalise CALLERID(num) after Newchannel.
        if let Some(num) = msg.get("CallerIDNum") {
            self.caller = Some(num.to_string());
        }
        if let Some(name) = msg.get("CallerIDName") {
            self.caller_name = Some(name.to_string());
        }
        // The first real extension is the number that was dialled (the DID); later ones are
        // `s` (IVR start) or `h` (hangup handler).
        if self.callee.is_none()
            && let Some(exten) = nonempty(msg.get("Exten")).filter(|e| !matches!(*e, "s" | "h"))
        {
            self.callee = Some(exten.to_string());
        }
        if let Some(ctx) = nonempty(msg.get("Context"))
            && self.contexts.len() < 16
            && !self.contexts.iter().any(|c| c == ctx)
        {
            self.contexts.push(ctx.to_string());
        }
    }
}

/// `DialStatus` → outcome; `None` for ANSWER and for statuses that say nothing about the
/// callee (CONTINUE, GOTO, ABORT, RINGING in DialState).
pub fn dial_status_outcome(status: &str) -> Option<CallOutcome> {
    Some(match status.to_ascii_uppercase().as_str() {
        "NOANSWER" => CallOutcome::NoAnswer,
        "BUSY" => CallOutcome::Busy,
        "CANCEL" => CallOutcome::Canceled,
        "CONGESTION" | "CHANUNAVAIL" | "INVALIDARGS" => CallOutcome::Failed,
        "DONTCALL" | "TORTURE" => CallOutcome::Rejected,
        _ => return None,
    })
}

/// Q.850 cause of the calling channel's hangup, when nothing was dialled.
pub fn cause_outcome(cause: u16) -> CallOutcome {
    match cause {
        17 => CallOutcome::Busy,
        18 | 19 => CallOutcome::NoAnswer,
        21 => CallOutcome::Rejected,
        // Normal clearing / unspecified: the caller left before anyone was rung.
        0 | 16 | 31 => CallOutcome::Canceled,
        _ => CallOutcome::Failed,
    }
}

fn dest_key(msg: &Message) -> String {
    nonempty(msg.get("DestUniqueid"))
        .or_else(|| msg.get("DestChannel"))
        .unwrap_or("")
        .to_string()
}

fn nonempty(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

fn is_unknown(v: &str) -> bool {
    v.eq_ignore_ascii_case("<unknown>")
}

fn flag(reason: String, msg: &Message) -> Output {
    Output::Flag {
        reason,
        raw: msg.raw.clone(),
    }
}

fn secs(ms: Millis) -> u32 {
    u32::try_from(ms.max(0) / 1000).unwrap_or(u32::MAX)
}

/// `1700000000.123456` (AMI `Timestamp`) → unix ms.
fn parse_timestamp(v: &str) -> Option<Millis> {
    let (s, frac) = v.trim().split_once('.').unwrap_or((v.trim(), "0"));
    let secs: i64 = s.parse().ok()?;
    let ms_digits: String = frac.chars().chain("000".chars()).take(3).collect();
    let ms: i64 = ms_digits.parse().ok()?;
    secs.checked_mul(1000)?.checked_add(ms)
}

mod cdr;
#[cfg(test)]
mod tests;
