use std::time::{Duration, Instant};

use super::*;
use crate::telephony::sip::message::{StartLine, parse};

const INVITE: &str = "INVITE sip:5550100@us SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1\r\n\
From: <sip:+14155550123@10.0.0.1>;tag=abc\r\nTo: <sip:5550100@us>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
const CANCEL: &str = "CANCEL sip:5550100@us SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1\r\n\
From: <sip:+14155550123@10.0.0.1>;tag=abc\r\nTo: <sip:5550100@us>\r\nCall-ID: c1\r\nCSeq: 7 CANCEL\r\nContent-Length: 0\r\n\r\n";

fn behaviour(reliable: bool) -> Behaviour {
    Behaviour {
        ring: Duration::from_secs(20),
        final_code: 480,
        reliable,
        timers: Timers::default(),
    }
}

fn code(a: &Action) -> u16 {
    let Action::Send(bytes) = a else {
        panic!("not a send: {a:?}")
    };
    match parse(bytes).unwrap().start {
        StartLine::Response { code, .. } => code,
        StartLine::Request { .. } => panic!("a request"),
    }
}

fn sent(a: &Action) -> crate::telephony::sip::message::Message {
    let Action::Send(bytes) = a else {
        panic!("not a send: {a:?}")
    };
    parse(bytes).unwrap()
}

fn start(reliable: bool) -> (InviteTransaction, Instant) {
    let t0 = Instant::now();
    let invite = parse(INVITE.as_bytes()).unwrap();
    let (tx, actions) = InviteTransaction::start(&invite, "tag1".into(), behaviour(reliable), t0);
    assert_eq!(actions.iter().map(code).collect::<Vec<_>>(), [100, 180]);
    assert_eq!(sent(&actions[0]).header("To"), Some("<sip:5550100@us>"));
    assert_eq!(
        sent(&actions[1]).header("To"),
        Some("<sip:5550100@us>;tag=tag1")
    );
    assert_eq!(sent(&actions[1]).header("CSeq"), Some("7 INVITE"));
    (tx, t0)
}

#[test]
fn ring_timeout_sends_the_final_and_retransmits_it_with_timer_g_until_ack() {
    let (mut tx, t0) = start(false);
    assert_eq!(tx.deadline(), Some(t0 + Duration::from_secs(20)));
    assert!(tx.on_tick(t0 + Duration::from_secs(19)).is_empty());
    let t = t0 + Duration::from_secs(20);
    let actions = tx.on_tick(t);
    assert_eq!(code(&actions[0]), 480);
    assert_eq!(
        sent(&actions[0]).header("To"),
        Some("<sip:5550100@us>;tag=tag1")
    );
    assert_eq!(
        actions[1],
        Action::Ended {
            ending: Ending::RingTimeout,
            rang: Duration::from_secs(20)
        }
    );
    assert_eq!(tx.state(), State::Completed);
    // Timer G: 0.5, 1, 2, 4, 4 ... seconds apart.
    let mut at = t;
    for gap in [500, 1000, 2000, 4000, 4000] {
        at += Duration::from_millis(gap);
        assert_eq!(tx.deadline(), Some(at));
        let a = tx.on_tick(at);
        assert_eq!(a.len(), 1);
        assert_eq!(code(&a[0]), 480);
    }
    // A retransmitted INVITE gets the final again, no new call.
    assert_eq!(code(&tx.on_retransmission()[0]), 480);
    assert!(tx.on_ack(at).is_empty());
    assert_eq!(tx.state(), State::Confirmed);
    assert_eq!(tx.deadline(), Some(at + Duration::from_secs(5)));
    assert!(tx.on_retransmission().is_empty(), "absorbed in Confirmed");
    assert!(tx.on_tick(at + Duration::from_secs(5)).is_empty());
    assert_eq!(tx.state(), State::Terminated);
    assert_eq!(tx.deadline(), None);
}

#[test]
fn timer_h_gives_up_without_ack() {
    let (mut tx, t0) = start(false);
    let t = t0 + Duration::from_secs(20);
    tx.on_tick(t);
    let mut sends = 0;
    while let Some(d) = tx.deadline() {
        sends += tx.on_tick(d).len();
    }
    assert_eq!(tx.state(), State::Terminated);
    // Timer H = 32 s: retransmissions at 0.5, 1.5, 3.5, 7.5, then every 4 s up to 31.5.
    assert_eq!(sends, 10);
}

#[test]
fn cancel_while_ringing_answers_200_then_487_with_the_same_tag() {
    let (mut tx, t0) = start(false);
    let cancel = parse(CANCEL.as_bytes()).unwrap();
    let t = t0 + Duration::from_millis(3000);
    let actions = tx.on_cancel(&cancel, t);
    assert_eq!(code(&actions[0]), 200);
    assert_eq!(sent(&actions[0]).header("CSeq"), Some("7 CANCEL"));
    assert_eq!(
        sent(&actions[0]).header("To"),
        Some("<sip:5550100@us>;tag=tag1")
    );
    assert_eq!(code(&actions[1]), 487);
    assert_eq!(sent(&actions[1]).header("CSeq"), Some("7 INVITE"));
    assert_eq!(
        sent(&actions[1]).header("To"),
        Some("<sip:5550100@us>;tag=tag1")
    );
    assert_eq!(
        actions[2],
        Action::Ended {
            ending: Ending::Canceled,
            rang: Duration::from_secs(3)
        }
    );
    // A retransmitted CANCEL gets 200 again, and the call does not end twice.
    let again = tx.on_cancel(&cancel, t + Duration::from_millis(100));
    assert_eq!(again.iter().map(code).collect::<Vec<_>>(), [200]);
}

#[test]
fn cancel_after_the_final_only_gets_200() {
    let (mut tx, t0) = start(false);
    tx.on_tick(t0 + Duration::from_secs(20));
    let cancel = parse(CANCEL.as_bytes()).unwrap();
    let actions = tx.on_cancel(&cancel, t0 + Duration::from_secs(21));
    assert_eq!(actions.iter().map(code).collect::<Vec<_>>(), [200]);
}

#[test]
fn retransmitted_invite_while_ringing_resends_180() {
    let (mut tx, _) = start(false);
    let a = tx.on_retransmission();
    assert_eq!(a.iter().map(code).collect::<Vec<_>>(), [180]);
}

#[test]
fn tcp_has_no_retransmissions_and_ends_at_ack() {
    let (mut tx, t0) = start(true);
    let t = t0 + Duration::from_secs(20);
    tx.on_tick(t);
    assert_eq!(
        tx.deadline(),
        Some(t + Duration::from_secs(32)),
        "only Timer H"
    );
    tx.on_ack(t);
    assert_eq!(tx.state(), State::Terminated);
}

#[test]
fn end_now_finishes_a_ringing_call_once() {
    let (mut tx, t0) = start(false);
    let a = tx.end_now(t0 + Duration::from_secs(2));
    assert_eq!(code(&a[0]), 480);
    assert!(matches!(a[1], Action::Ended { .. }));
    assert!(tx.end_now(t0 + Duration::from_secs(3)).is_empty());
}
