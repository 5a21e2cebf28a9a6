use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::telephony::sip::message::{StartLine, parse};

const PEER: u8 = 1;
const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn settings() -> UasSettings {
    UasSettings {
        ring: Duration::from_secs(2),
        final_code: 480,
        number: None,
        trusted_peers: Vec::new(),
        accept_from: Vec::new(),
        timers: Timers::default(),
    }
}

fn request(method: &str, branch: &str, extra: &str) -> String {
    format!(
        "{method} sip:5550100@us SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch={branch}\r\n\
From: \"Asha\" <sip:+14155550123@10.0.0.1>;tag=abc\r\nTo: <sip:5550100@us>{extra}\r\nCall-ID: c1\r\n\
CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

struct Harness {
    uas: Uas<u8>,
    t0: Instant,
}

impl Harness {
    fn new(s: UasSettings) -> Self {
        Harness {
            uas: Uas::new(s),
            t0: Instant::now(),
        }
    }

    fn now(&self, ms: u64) -> Now {
        Now {
            at: self.t0 + Duration::from_millis(ms),
            ms: 1_700_000_000_000 + ms as i64,
        }
    }

    fn feed(&mut self, raw: &str, ms: u64) -> Vec<Output<u8>> {
        let mut out = Vec::new();
        let now = self.now(ms);
        self.uas
            .on_bytes(raw.as_bytes(), PEER, IP, false, now, &mut out);
        self.uas.on_tick(now, &mut out);
        out
    }

    fn tick(&mut self, ms: u64) -> Vec<Output<u8>> {
        let mut out = Vec::new();
        self.uas.on_tick(self.now(ms), &mut out);
        out
    }
}

fn codes(out: &[Output<u8>]) -> Vec<u16> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { bytes, .. } => match parse(bytes).unwrap().start {
                StartLine::Response { code, .. } => Some(code),
                StartLine::Request { .. } => None,
            },
            _ => None,
        })
        .collect()
}

fn calls(out: &[Output<u8>]) -> Vec<&CallEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Call { event, .. } => Some(event),
            _ => None,
        })
        .collect()
}

#[test]
fn invite_then_cancel_is_one_canceled_call() {
    let mut h = Harness::new(settings());
    let out = h.feed(&request("INVITE", "z9hG4bK1", ""), 0);
    assert_eq!(codes(&out), [100, 180]);
    assert!(calls(&out).is_empty());
    // Retransmission: 180 again, no second call.
    assert_eq!(
        codes(&h.feed(&request("INVITE", "z9hG4bK1", ""), 300)),
        [180]
    );
    assert_eq!(h.uas.len(), 1);
    let out = h.feed(&request("CANCEL", "z9hG4bK1", ""), 1200);
    assert_eq!(codes(&out), [200, 487]);
    let c = calls(&out);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].outcome, CallOutcome::Canceled);
    assert_eq!(c[0].from_raw, "+14155550123");
    assert_eq!(c[0].caller_name.as_deref(), Some("Asha"));
    assert_eq!(c[0].to_raw.as_deref(), Some("5550100"));
    assert_eq!(c[0].provider_call_id, "c1");
    assert_eq!(c[0].ring_seconds, Some(1));
    assert_eq!(c[0].source, CallSource::Sip);
    // The ring timer does not fire a second event later.
    let mut later = Vec::new();
    for ms in (1300..40_000).step_by(100) {
        later.extend(h.tick(ms));
    }
    assert!(calls(&later).is_empty());
    assert_eq!(codes(&later), [487; 10], "Timer G until Timer H, no ACK");
    assert!(h.uas.is_empty());
}

#[test]
fn ring_timeout_is_no_answer_then_ack_ends_it() {
    let mut h = Harness::new(UasSettings {
        number: Some("+15550100001".into()),
        ..settings()
    });
    h.feed(&request("INVITE", "z9hG4bK2", ""), 0);
    assert!(h.tick(1999).is_empty());
    let out = h.tick(2000);
    assert_eq!(codes(&out), [480]);
    let c = calls(&out);
    assert_eq!(c[0].outcome, CallOutcome::NoAnswer);
    assert_eq!(c[0].to_raw.as_deref(), Some("+15550100001"));
    assert_eq!(codes(&h.tick(2500)), [480]);
    assert!(
        h.feed(&request("ACK", "z9hG4bK2", ";tag=x"), 2600)
            .is_empty()
    );
    assert!(h.tick(3600).is_empty(), "no retransmission after ACK");
    assert!(h.tick(7600).is_empty());
    assert!(h.uas.is_empty(), "Timer I ended the transaction");
}

#[test]
fn final_486_is_busy() {
    let mut h = Harness::new(UasSettings {
        final_code: 486,
        ..settings()
    });
    h.feed(&request("INVITE", "z9hG4bK3", ""), 0);
    let out = h.tick(2000);
    assert_eq!(codes(&out), [486]);
    assert_eq!(calls(&out)[0].outcome, CallOutcome::Busy);
}

#[test]
fn stateless_answers() {
    let mut h = Harness::new(settings());
    assert_eq!(
        codes(&h.feed(&request("CANCEL", "z9hG4bKnone", ""), 0)),
        [481]
    );
    assert!(
        h.feed(&request("ACK", "z9hG4bKnone", ";tag=1"), 0)
            .is_empty()
    );
    let out = h.feed(&request("OPTIONS", "z9hG4bKo", ""), 0);
    assert_eq!(codes(&out), [200]);
    let Output::Send { bytes, .. } = &out[0] else {
        panic!()
    };
    assert!(parse(bytes).unwrap().header("Allow").is_some());
    assert_eq!(
        codes(&h.feed(&request("BYE", "z9hG4bKb", ";tag=1"), 0)),
        [481]
    );
    assert_eq!(codes(&h.feed(&request("INFO", "z9hG4bKi", ""), 0)), [481]);
    assert_eq!(
        codes(&h.feed(&request("INVITE", "z9hG4bKre", ";tag=1"), 0)),
        [481]
    );
    let out = h.feed(&request("FROBNICATE", "z9hG4bKf", ""), 0);
    assert_eq!(codes(&out), [405]);
    let Output::Send { bytes, .. } = &out[0] else {
        panic!()
    };
    assert_eq!(parse(bytes).unwrap().header("Allow"), Some(ALLOW));
    assert_eq!(
        codes(&h.feed(&request("REGISTER", "z9hG4bKr", ""), 0)),
        [405]
    );
    let hops = request("INVITE", "z9hG4bKm", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(codes(&h.feed(&hops, 0)), [483]);
    // Responses are never answered.
    assert!(
        h.feed(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK9\r\nl: 0\r\n\r\n",
            0
        )
        .is_empty()
    );
    assert!(h.uas.is_empty(), "no transaction was created");
}

#[test]
fn stateless_final_responses_carry_a_to_tag() {
    let mut h = Harness::new(settings());
    let out = h.feed(&request("OPTIONS", "z9hG4bKo", ""), 0);
    let Output::Send { bytes, .. } = &out[0] else {
        panic!()
    };
    let to = parse(bytes).unwrap().header("To").unwrap().to_string();
    assert!(to.contains(";tag=rb"), "{to}");
}

#[test]
fn malformed_requests_get_400_when_via_is_readable() {
    let mut h = Harness::new(settings());
    let no_call_id = request("INVITE", "z9hG4bKx", "").replace("Call-ID: c1\r\n", "");
    let out = h.feed(&no_call_id, 0);
    assert_eq!(codes(&out), [400]);
    assert!(matches!(out.last(), Some(Output::Malformed { .. })));
    let wrong_cseq = request("INVITE", "z9hG4bKx", "").replace("1 INVITE", "1 BYE");
    assert_eq!(codes(&h.feed(&wrong_cseq, 0)), [400]);
    let bad_start = request("INVITE", "z9hG4bKx", "").replace("SIP/2.0\r\n", "SIP/9.9\r\n");
    let out = h.feed(&bad_start, 0);
    assert_eq!(codes(&out), [400]);
    let garbage = h.feed("\x00\x01 hello there\r\n\r\n", 0);
    assert!(codes(&garbage).is_empty());
    assert!(matches!(garbage[..], [Output::Malformed { .. }]));
    assert!(h.feed("\r\n\r\n", 0).is_empty(), "keep-alive");
    assert!(h.uas.is_empty());
}

#[test]
fn different_branches_are_different_transactions() {
    let mut h = Harness::new(settings());
    h.feed(&request("INVITE", "z9hG4bKa", ""), 0);
    h.feed(&request("INVITE", "z9hG4bKb", ""), 0);
    assert_eq!(h.uas.len(), 2);
    let out = h.tick(2000);
    assert_eq!(calls(&out).len(), 2);
}

#[test]
fn rfc2543_requests_without_magic_cookie_still_match() {
    let mut h = Harness::new(settings());
    h.feed(&request("INVITE", "old1", ""), 0);
    let out = h.feed(&request("CANCEL", "old1", ""), 100);
    assert_eq!(codes(&out), [200, 487]);
}

#[test]
fn shutdown_ends_ringing_calls() {
    let mut h = Harness::new(settings());
    h.feed(&request("INVITE", "z9hG4bKs", ""), 0);
    let mut out = Vec::new();
    h.uas.end_all(h.now(500), &mut out);
    assert_eq!(codes(&out), [480]);
    assert_eq!(calls(&out).len(), 1);
}

fn mutate(base: &[u8], edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut v = base.to_vec();
    for (at, byte) in edits {
        if !v.is_empty() {
            let i = at % v.len();
            v[i] = *byte;
        }
    }
    v.truncate(cut % (v.len() + 1));
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes: the parser and the UAS never panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = crate::telephony::sip::message::parse(&bytes);
        let _ = crate::telephony::sip::message::parse_stream(&bytes);
        let _ = crate::telephony::sip::message::salvage(&bytes);
        let mut h = Harness::new(settings());
        let mut out = Vec::new();
        h.uas.on_bytes(&bytes, PEER, IP, false, h.now(0), &mut out);
    }

    /// Valid INVITE/CANCEL/ACK with random byte edits and truncation, in sequence through one
    /// UAS, with timers firing: no panic, and never more than one call per transaction.
    #[test]
    fn mutated_requests_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cuts in proptest::collection::vec(any::<usize>(), 3),
        steps in proptest::collection::vec(0u64..3000, 3),
    ) {
        let mut h = Harness::new(settings());
        let msgs = [
            request("INVITE", "z9hG4bKp", ""),
            request("CANCEL", "z9hG4bKp", ""),
            request("ACK", "z9hG4bKp", ";tag=x"),
        ];
        let mut ms = 0;
        let mut ended = 0;
        for (i, m) in msgs.iter().enumerate() {
            let full = usize::MAX;
            let raw = if i == 0 { mutate(m.as_bytes(), &edits, cuts[0]) } else {
                mutate(m.as_bytes(), &edits[..edits.len().min(i)], if cuts[i] % 2 == 0 { full } else { cuts[i] })
            };
            let mut out = Vec::new();
            h.uas.on_bytes(&raw, PEER, IP, i % 2 == 0, h.now(ms), &mut out);
            ms += steps[i];
            h.uas.on_tick(h.now(ms), &mut out);
            ended += calls(&out).len();
            for o in &out {
                if let Output::Send { bytes, .. } = o {
                    let parsed = parse(bytes);
                    prop_assert!(parsed.is_ok(), "we only send parseable messages");
                    if let Ok(StartLine::Response { code, .. }) = parsed.map(|m| m.start) {
                        prop_assert!(!(200..300).contains(&code) || !bytes.windows(6).any(|w| w == b"INVITE"));
                    }
                }
            }
        }
        for t in (ms..ms + 40_000).step_by(250) {
            let mut out = Vec::new();
            h.uas.on_tick(h.now(t), &mut out);
            ended += calls(&out).len();
        }
        prop_assert!(ended <= 1);
        prop_assert!(h.uas.is_empty(), "every transaction terminates");
    }
}

#[test]
fn only_accepted_peers_may_call() {
    let mut h = Harness::new(UasSettings {
        accept_from: vec!["10.0.0.9".parse().unwrap()],
        ..settings()
    });
    let out = h.feed(&request("INVITE", "z9hG4bK1", ""), 0);
    assert_eq!(codes(&out), [403]);
    assert!(calls(&out).is_empty());
    assert!(h.uas.is_empty());
}

#[test]
fn who_may_assert_the_caller() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    // No lists (a loopback server or accept_any): only this machine.
    let open = settings();
    assert!(open.trusts(ip("127.0.0.1")));
    assert!(
        !open.trusts(ip("198.51.100.7")),
        "a peer that merely reached the port"
    );
    // accept_from names the trunks: they may assert, as before.
    let trunks = UasSettings {
        accept_from: vec![ip("10.0.0.9")],
        ..settings()
    };
    assert!(trunks.trusts(ip("10.0.0.9")));
    assert!(!trunks.trusts(ip("127.0.0.1")));
    // An explicit trusted_peers list wins.
    let explicit = UasSettings {
        trusted_peers: vec![ip("10.0.0.1")],
        ..trunks
    };
    assert!(explicit.trusts(ip("10.0.0.1")) && !explicit.trusts(ip("10.0.0.9")));
}

#[test]
fn untrusted_peer_cannot_pick_the_caller_with_pai_or_rpid() {
    let mut h = Harness::new(UasSettings {
        trusted_peers: vec!["10.0.0.1".parse().unwrap()],
        ..settings()
    });
    // Fed from 127.0.0.1, which is not in trusted_peers.
    let forged = "\r\nP-Asserted-Identity: <sip:+15005550006@x>\r\nRemote-Party-ID: <sip:+15005550007@x>;party=calling";
    h.feed(&request("INVITE", "z9hG4bK1", forged), 0);
    let out = h.feed(&request("CANCEL", "z9hG4bK1", ""), 100);
    let ended = calls(&out);
    assert_eq!(ended.len(), 1, "{out:?}");
    assert_eq!(
        ended[0].from_raw, "+14155550123",
        "the From user, not a forged identity"
    );
}
