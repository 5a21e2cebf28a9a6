//! The missed-call UAS core: routes every request to its INVITE transaction or answers it
//! statelessly, and turns each ended transaction into one [`CallEvent`]. Pure like
//! [`transaction`](super::transaction): bytes and time in, bytes to send and calls out. The
//! peer type `P` is whatever the transport needs to reply (a UDP address, a TCP connection).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::caller::{self, Caller};
use super::message::{self, Message, NameAddr, Via, reason_phrase};
use super::transaction::{Action, Behaviour, Ending, InviteTransaction, Timers};
use crate::inbound::{CallEvent, CallOutcome, CallSource};
use crate::time::Millis;

/// Methods a UAS may meet. Anything else is answered 405.
const KNOWN: &[&str] = &[
    "INVITE",
    "ACK",
    "CANCEL",
    "OPTIONS",
    "BYE",
    "REGISTER",
    "INFO",
    "UPDATE",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
    "PUBLISH",
];
/// Requests that only make sense inside a dialog; this UAS never has one (481).
const IN_DIALOG: &[&str] = &["BYE", "INFO", "UPDATE", "PRACK", "NOTIFY", "REFER"];
/// What the UAS handles, for `Allow` in 405 and OPTIONS replies.
const ALLOW: &str = "INVITE, ACK, CANCEL, OPTIONS, BYE";
/// Ringing calls at once before new INVITEs get 503: bounds memory under a flood.
pub const MAX_TRANSACTIONS: usize = 200_000;

/// Bytes of each INVITE kept with its ringing call.
const RAW_KEPT: usize = 8 * 1024;

/// Fixed behaviour of the UAS.
#[derive(Debug, Clone)]
pub struct UasSettings {
    pub ring: Duration,
    /// 480, 486 or 603.
    pub final_code: u16,
    /// The business line this SIP number stands for; `None` = the Request-URI user.
    pub number: Option<String>,
    /// Peers whose P-Asserted-Identity and Remote-Party-ID are believed; empty = the peers in
    /// `accept_from`, or loopback peers when that is empty too (see [`UasSettings::trusts`]).
    pub trusted_peers: Vec<IpAddr>,
    /// Peers allowed to place calls; empty = every peer (only allowed on loopback or with
    /// `sip.accept_any`, which configuration checks).
    pub accept_from: Vec<IpAddr>,
    pub timers: Timers,
}

impl UasSettings {
    /// May `ip` place calls at all?
    pub fn accepts(&self, ip: IpAddr) -> bool {
        self.accept_from.is_empty() || self.accept_from.contains(&ip)
    }

    /// May `ip` assert who is calling? The explicit list if there is one. Otherwise the
    /// trunks and PBXs named in `accept_from`, since the operator already vouched for them;
    /// with no list at all (a loopback server, or `accept_any`) only this machine, so a peer
    /// accepted merely because it reached the port cannot choose whom Ringback messages.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        if !self.trusted_peers.is_empty() {
            self.trusted_peers.contains(&ip)
        } else if !self.accept_from.is_empty() {
            self.accept_from.contains(&ip)
        } else {
            ip.is_loopback()
        }
    }
}

/// What the transport must do after feeding the UAS.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<P> {
    Send {
        to: P,
        bytes: Vec<u8>,
    },
    /// A call ended; `raw` is the INVITE as received.
    Call {
        event: CallEvent,
        raw: Vec<u8>,
    },
    /// Bytes that could not be used, with the reason (counted, logged, flagged).
    Malformed {
        reason: String,
        raw: Vec<u8>,
    },
}

/// The time now, both clocks: monotonic for timers, wall for event timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: Instant,
    pub ms: Millis,
}

struct Call<P> {
    tx: InviteTransaction,
    peer: P,
    call_id: String,
    caller: Caller,
    to_raw: String,
    raw: Vec<u8>,
    /// The deadline last put on the heap, to avoid pushing it twice.
    scheduled: Option<Instant>,
}

/// All live INVITE transactions.
pub struct Uas<P> {
    settings: UasSettings,
    calls: HashMap<String, Call<P>>,
    /// Deadlines, earliest first. Entries go stale when a transaction's deadline moves;
    /// those are skipped when popped (cheaper than removing them).
    timers: BinaryHeap<Reverse<(Instant, String)>>,
}

impl<P: Clone> Uas<P> {
    pub fn new(settings: UasSettings) -> Self {
        Uas {
            settings,
            calls: HashMap::new(),
            timers: BinaryHeap::new(),
        }
    }

    /// Live transactions (ringing or waiting out their timers).
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// One datagram (or one framed stream message) from `peer` at `ip`.
    pub fn on_bytes(
        &mut self,
        raw: &[u8],
        peer: P,
        ip: IpAddr,
        reliable: bool,
        now: Now,
        out: &mut Vec<Output<P>>,
    ) {
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            return; // keep-alive (RFC 5626 §4.4.1)
        }
        match message::parse(raw) {
            Ok(msg) => self.on_message(msg, raw, peer, ip, reliable, now, out),
            Err(e) => self.on_unparseable(raw, &e.to_string(), peer, out),
        }
    }

    /// Bytes that are not a SIP message: 400 when a Via can be read, else nothing.
    pub fn on_unparseable(&mut self, raw: &[u8], reason: &str, peer: P, out: &mut Vec<Output<P>>) {
        if let Some(headers) = message::salvage(raw) {
            let reply = message::response(&headers, 400, &bad_request(reason), None, &[]);
            out.push(Output::Send {
                to: peer,
                bytes: reply.encode(),
            });
        }
        out.push(Output::Malformed {
            reason: reason.to_string(),
            raw: raw.to_vec(),
        });
    }

    /// A parsed message.
    #[allow(clippy::too_many_arguments)] // Each is a distinct fact about the message.
    pub fn on_message(
        &mut self,
        msg: Message,
        raw: &[u8],
        peer: P,
        ip: IpAddr,
        reliable: bool,
        now: Now,
        out: &mut Vec<Output<P>>,
    ) {
        let Some(method) = msg.method().map(str::to_ascii_uppercase) else {
            return; // A response: this UAS sends no requests, so none is expected.
        };
        let checked = match check_request(&msg, &method) {
            Ok(c) => c,
            Err(Invalid { reason, answer }) => {
                if answer {
                    self.reply(&msg, 400, &bad_request(&reason), None, &[], &peer, out);
                }
                out.push(Output::Malformed {
                    reason,
                    raw: raw.to_vec(),
                });
                return;
            }
        };
        if method != "ACK" && checked.max_forwards == Some(0) {
            self.reply(&msg, 483, reason_phrase(483), None, &[], &peer, out);
            return;
        }
        let key = checked.key;
        match method.as_str() {
            "INVITE" => {
                if let Some(call) = self.calls.get_mut(&key) {
                    let actions = call.tx.on_retransmission();
                    self.apply(&key, actions, now, out);
                } else if checked.to_tagged {
                    self.reply(&msg, 481, reason_phrase(481), None, &[], &peer, out);
                } else if !self.settings.accepts(ip) {
                    // Not our trunk or PBX: no call, so no WhatsApp message to whoever is named.
                    self.reply(&msg, 403, "Forbidden", None, &[], &peer, out);
                } else if self.calls.len() >= MAX_TRANSACTIONS {
                    let extra = [("Retry-After", "5")];
                    self.reply(&msg, 503, reason_phrase(503), None, &extra, &peer, out);
                } else {
                    self.start_call(key, &msg, raw, peer, ip, reliable, now, out);
                }
            }
            "ACK" => {
                // An ACK is never answered; one without a transaction is dropped.
                if let Some(call) = self.calls.get_mut(&key) {
                    let actions = call.tx.on_ack(now.at);
                    self.apply(&key, actions, now, out);
                }
            }
            "CANCEL" => {
                if let Some(call) = self.calls.get_mut(&key) {
                    let actions = call.tx.on_cancel(&msg, now.at);
                    self.apply(&key, actions, now, out);
                } else {
                    self.reply(&msg, 481, reason_phrase(481), None, &[], &peer, out);
                }
            }
            "OPTIONS" => {
                let extra = [("Allow", ALLOW), ("Accept", "application/sdp")];
                self.reply(&msg, 200, "OK", None, &extra, &peer, out);
            }
            // Known methods in (or claiming) a dialog: there is none. Unknown ones: 405.
            m if KNOWN.contains(&m) && (IN_DIALOG.contains(&m) || checked.to_tagged) => {
                self.reply(&msg, 481, reason_phrase(481), None, &[], &peer, out);
            }
            _ => {
                self.reply(
                    &msg,
                    405,
                    reason_phrase(405),
                    None,
                    &[("Allow", ALLOW)],
                    &peer,
                    out,
                );
            }
        }
    }

    /// Fires every timer due at `now`.
    pub fn on_tick(&mut self, now: Now, out: &mut Vec<Output<P>>) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now.at {
                break;
            }
            let Some(Reverse((at, key))) = self.timers.pop() else {
                break;
            };
            let Some(call) = self.calls.get_mut(&key) else {
                continue;
            };
            if call.scheduled != Some(at) {
                continue; // stale: the deadline moved
            }
            call.scheduled = None;
            let actions = call.tx.on_tick(now.at);
            self.apply(&key, actions, now, out);
        }
    }

    /// The earliest pending deadline (possibly a stale one, which costs one empty tick).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Shutting down: every ringing call gets its final response now and is reported, so no
    /// caller is left ringing and no missed call is lost.
    pub fn end_all(&mut self, now: Now, out: &mut Vec<Output<P>>) {
        let keys: Vec<String> = self.calls.keys().cloned().collect();
        for key in keys {
            if let Some(call) = self.calls.get_mut(&key) {
                let actions = call.tx.end_now(now.at);
                self.apply(&key, actions, now, out);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_call(
        &mut self,
        key: String,
        msg: &Message,
        raw: &[u8],
        peer: P,
        ip: IpAddr,
        reliable: bool,
        now: Now,
        out: &mut Vec<Output<P>>,
    ) {
        let trusted = self.settings.trusts(ip);
        let behaviour = Behaviour {
            ring: self.settings.ring,
            final_code: self.settings.final_code,
            reliable,
            timers: self.settings.timers,
        };
        let (tx, actions) = InviteTransaction::start(msg, new_tag(), behaviour, now.at);
        let to_raw = self.settings.number.clone().unwrap_or_else(|| {
            let to_uri = msg
                .header("To")
                .map(|t| NameAddr::parse(t).uri)
                .unwrap_or("");
            let user = caller::uri_number(msg.uri().unwrap_or(to_uri));
            if user.is_empty() {
                caller::uri_number(to_uri)
            } else {
                user
            }
        });
        let call = Call {
            tx,
            peer,
            call_id: msg.header("Call-ID").unwrap_or_default().to_string(),
            caller: caller::identify(msg, trusted),
            to_raw,
            // Kept for audit with the call; capped so a flood of large INVITEs stays bounded.
            raw: raw
                .get(..raw.len().min(RAW_KEPT))
                .unwrap_or_default()
                .to_vec(),
            scheduled: None,
        };
        self.calls.insert(key.clone(), call);
        self.apply(&key, actions, now, out);
    }

    /// Carries out a transaction's actions, reports an ended call, reschedules its timer and
    /// forgets it once terminated.
    fn apply(&mut self, key: &str, actions: Vec<Action>, now: Now, out: &mut Vec<Output<P>>) {
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        for action in actions {
            match action {
                Action::Send(bytes) => out.push(Output::Send {
                    to: call.peer.clone(),
                    bytes,
                }),
                Action::Ended { ending, rang } => out.push(Output::Call {
                    event: CallEvent {
                        source: CallSource::Sip,
                        provider_call_id: call.call_id.clone(),
                        from_raw: call.caller.number.clone(),
                        to_raw: Some(call.to_raw.clone()).filter(|t| !t.is_empty()),
                        outcome: match ending {
                            Ending::Canceled => CallOutcome::Canceled,
                            Ending::RingTimeout if self.settings.final_code == 486 => {
                                CallOutcome::Busy
                            }
                            Ending::RingTimeout => CallOutcome::NoAnswer,
                        },
                        ring_seconds: Some(rounded_seconds(rang)),
                        talk_seconds: None,
                        caller_name: call.caller.name.clone(),
                        occurred_at: now.ms,
                    },
                    raw: std::mem::take(&mut call.raw),
                }),
            }
        }
        match call.tx.deadline() {
            None => {
                self.calls.remove(key);
            }
            Some(at) if call.scheduled != Some(at) => {
                call.scheduled = Some(at);
                self.timers.push(Reverse((at, key.to_string())));
            }
            Some(_) => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reply(
        &self,
        req: &Message,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
        extra: &[(&str, &str)],
        peer: &P,
        out: &mut Vec<Output<P>>,
    ) {
        let tag;
        let to_tag = match to_tag {
            Some(t) => Some(t),
            // Stateless final responses still need a To-tag (RFC 3261 §8.2.6.2).
            None if code >= 200 => {
                tag = new_tag();
                Some(tag.as_str())
            }
            None => None,
        };
        let bytes = message::response(&req.headers, code, reason, to_tag, extra).encode();
        out.push(Output::Send {
            to: peer.clone(),
            bytes,
        });
    }
}

/// A request's routing facts, once it is known to be well-formed.
struct Checked {
    /// Transaction key: top Via branch + sent-by (RFC 3261 §17.2.3).
    key: String,
    to_tagged: bool,
    max_forwards: Option<u32>,
}

struct Invalid {
    reason: String,
    /// Whether a 400 can be sent (the top Via is readable).
    answer: bool,
}

fn check_request(msg: &Message, method: &str) -> Result<Checked, Invalid> {
    let vias = msg.vias();
    let Some(top) = vias.first().and_then(|v| Via::parse(v)) else {
        return Err(Invalid {
            reason: "no readable Via header".into(),
            answer: false,
        });
    };
    let invalid = |reason: &str| Invalid {
        reason: reason.to_string(),
        answer: true,
    };
    let call_id = msg.header("Call-ID").filter(|c| !c.is_empty());
    let (Some(call_id), Some(from), Some(to)) = (call_id, msg.header("From"), msg.header("To"))
    else {
        return Err(invalid("missing Call-ID, From or To"));
    };
    let Some((cseq, cseq_method)) = msg.header("CSeq").and_then(message::cseq) else {
        return Err(invalid("missing or unreadable CSeq"));
    };
    if !cseq_method.eq_ignore_ascii_case(method) {
        return Err(invalid("CSeq method differs from the request method"));
    }
    let max_forwards = match msg.header("Max-Forwards") {
        None => None,
        Some(v) => Some(
            v.parse::<u32>()
                .map_err(|_| invalid("Max-Forwards is not a number"))?,
        ),
    };
    // RFC 3261 §17.2.3; for RFC 2543 peers (no magic cookie) the branch is not unique, so
    // the key falls back to the request's identifying fields.
    let key = match top.branch().filter(|b| b.starts_with("z9hG4bK")) {
        Some(branch) => format!("{branch}|{}", top.sent_by),
        None => {
            let from_tag = NameAddr::parse(from).tag().unwrap_or_default();
            format!("2543|{call_id}|{from_tag}|{cseq}|{}", top.sent_by)
        }
    };
    Ok(Checked {
        key,
        to_tagged: NameAddr::parse(to).tag().is_some(),
        max_forwards,
    })
}

fn bad_request(reason: &str) -> String {
    // The reason phrase is free text but must stay on one line.
    let detail: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    format!("Bad Request ({detail})")
}

/// Rounds to whole seconds (0.6 s of ringing is 1 s, as a caller would count it).
fn rounded_seconds(d: Duration) -> u32 {
    u32::try_from((d.as_millis() + 500) / 1000).unwrap_or(u32::MAX)
}

/// A To-tag: 64 random bits in hex (RFC 3261 §19.3 asks for at least 32).
fn new_tag() -> String {
    format!("rb{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests;
