//! The INVITE server transaction of a UAS that rings and never answers (RFC 3261 §17.2.1,
//! CANCEL per §9.2), as a pure state machine: it is driven by requests and the time they
//! arrived, plus timer ticks, and returns what to send. No sockets, no clock of its own, so
//! every retransmission and timer can be tested exactly.
//!
//! ```text
//!  INVITE ─► Proceeding ──ring timer / CANCEL──► Completed ──ACK──► Confirmed ──Timer I──► Terminated
//!            (100, 180)   (final or 487;          (Timer G resends   (absorbs ACKs)
//!                          the call ends here)     the final; Timer H gives up) ─────────► Terminated
//! ```

use std::time::{Duration, Instant};

use super::message::{self, Header, Message, reason_phrase};

/// RFC 3261 timer values (§17.1.1.1, table 4).
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    /// RTT estimate: first Timer G interval; Timer H = 64·T1.
    pub t1: Duration,
    /// Cap of the Timer G interval.
    pub t2: Duration,
    /// How long a message may stay in the network: Timer I on unreliable transports.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Where the transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Ringing: 100 and 180 sent, waiting for the ring timer or a CANCEL.
    Proceeding,
    /// A final response was sent; waiting for the ACK.
    Completed,
    /// ACK received; absorbing ACK retransmissions.
    Confirmed,
    Terminated,
}

/// How the call ended, reported exactly once per transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The caller hung up while it rang (CANCEL → 487).
    Canceled,
    /// The ring timer ran out and the configured final response was sent.
    RingTimeout,
}

/// Something the transport must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes to the peer the INVITE came from.
    Send(Vec<u8>),
    /// The call is over: report it. `rang` is the time from INVITE to the final response.
    Ended { ending: Ending, rang: Duration },
}

/// How a transaction behaves, fixed for its life.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// How long to ring before giving up.
    pub ring: Duration,
    /// The final response when nobody answers (480, 486 or 603).
    pub final_code: u16,
    /// TCP: no retransmissions, Timer I = 0.
    pub reliable: bool,
    pub timers: Timers,
}

/// One INVITE server transaction.
#[derive(Debug)]
pub struct InviteTransaction {
    state: State,
    behaviour: Behaviour,
    /// The headers responses copy (Via, From, To, Call-ID, CSeq) from the INVITE.
    invite_headers: Vec<Header>,
    /// Generated once; every response of this transaction carries it (§8.2.6.2), so the
    /// caller sees one dialog-to-be.
    to_tag: String,
    last_response: Vec<u8>,
    started: Instant,
    ring_deadline: Instant,
    /// Timer G: next retransmission of the final response and the interval after it.
    timer_g: Option<(Instant, Duration)>,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
}

impl InviteTransaction {
    /// A new INVITE arrived: answer 100 Trying at once (it stops the caller's Timer A), then
    /// 180 Ringing with the To-tag.
    pub fn start(
        invite: &Message,
        to_tag: String,
        behaviour: Behaviour,
        now: Instant,
    ) -> (Self, Vec<Action>) {
        let invite_headers: Vec<Header> = invite
            .headers
            .iter()
            .filter(|h| {
                ["Via", "From", "To", "Call-ID", "CSeq"]
                    .iter()
                    .any(|n| h.name.eq_ignore_ascii_case(n))
            })
            .cloned()
            .collect();
        let mut tx = InviteTransaction {
            state: State::Proceeding,
            behaviour,
            invite_headers,
            to_tag,
            last_response: Vec::new(),
            started: now,
            ring_deadline: now + behaviour.ring,
            timer_g: None,
            timer_h: None,
            timer_i: None,
        };
        // RFC 3261 §8.2.6.1: a 100 carries no To-tag.
        let trying = message::response(&tx.invite_headers, 100, "Trying", None, &[]).encode();
        let ringing = tx.respond(180);
        (tx, vec![Action::Send(trying), Action::Send(ringing)])
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The same INVITE again (same branch and sent-by): the caller missed our last response.
    pub fn on_retransmission(&mut self) -> Vec<Action> {
        match self.state {
            State::Proceeding | State::Completed => vec![Action::Send(self.last_response.clone())],
            State::Confirmed | State::Terminated => Vec::new(),
        }
    }

    /// A CANCEL for this INVITE. It is answered 200 in every state (a retransmitted CANCEL
    /// gets its 200 again); only while ringing does it also end the call with 487.
    pub fn on_cancel(&mut self, cancel: &Message, now: Instant) -> Vec<Action> {
        let ok = message::response(&cancel.headers, 200, "OK", Some(&self.to_tag), &[]).encode();
        let mut actions = vec![Action::Send(ok)];
        if self.state == State::Proceeding {
            actions.extend(self.complete(487, Ending::Canceled, now));
        }
        actions
    }

    /// The ACK for our final response: stop retransmitting, absorb stray ACKs for Timer I.
    pub fn on_ack(&mut self, now: Instant) -> Vec<Action> {
        if self.state == State::Completed {
            self.timer_g = None;
            self.timer_h = None;
            if self.behaviour.reliable {
                self.state = State::Terminated;
            } else {
                self.state = State::Confirmed;
                self.timer_i = Some(now + self.behaviour.timers.t4);
            }
        }
        Vec::new()
    }

    /// Fires every timer due at `now`.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Proceeding if now >= self.ring_deadline => {
                self.complete(self.behaviour.final_code, Ending::RingTimeout, now)
            }
            State::Completed => {
                if self.timer_h.is_some_and(|h| now >= h) {
                    // No ACK in 64·T1: the caller is gone; the call was reported already.
                    self.state = State::Terminated;
                    self.timer_g = None;
                    self.timer_h = None;
                    return Vec::new();
                }
                match self.timer_g {
                    Some((at, interval)) if now >= at => {
                        let next = (interval * 2).min(self.behaviour.timers.t2);
                        self.timer_g = Some((now + next, next));
                        vec![Action::Send(self.last_response.clone())]
                    }
                    _ => Vec::new(),
                }
            }
            State::Confirmed if self.timer_i.is_some_and(|i| now >= i) => {
                self.state = State::Terminated;
                self.timer_i = None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Gives up ringing now (shutdown): the same as the ring timer expiring early.
    pub fn end_now(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Proceeding => self.complete(self.behaviour.final_code, Ending::RingTimeout, now),
            _ => Vec::new(),
        }
    }

    /// When [`on_tick`](Self::on_tick) next has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Proceeding => Some(self.ring_deadline),
            State::Completed => match (self.timer_g, self.timer_h) {
                (Some((g, _)), Some(h)) => Some(g.min(h)),
                (None, h) => h,
                (Some((g, _)), None) => Some(g),
            },
            State::Confirmed => self.timer_i,
            State::Terminated => None,
        }
    }

    /// Sends a final response (never 2xx) and reports the end of the call.
    fn complete(&mut self, code: u16, ending: Ending, now: Instant) -> Vec<Action> {
        debug_assert!(
            code >= 300,
            "a UAS that never answers sends no 2xx to INVITE"
        );
        let bytes = self.respond(code);
        self.state = State::Completed;
        let t1 = self.behaviour.timers.t1;
        self.timer_g = (!self.behaviour.reliable).then_some((now + t1, t1));
        self.timer_h = Some(now + 64 * t1);
        vec![
            Action::Send(bytes),
            Action::Ended {
                ending,
                rang: now.saturating_duration_since(self.started),
            },
        ]
    }

    fn respond(&mut self, code: u16) -> Vec<u8> {
        let bytes = message::response(
            &self.invite_headers,
            code,
            reason_phrase(code),
            Some(&self.to_tag),
            &[],
        )
        .encode();
        self.last_response = bytes.clone();
        bytes
    }
}

#[cfg(test)]
mod tests;
