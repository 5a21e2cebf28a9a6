use super::super::wire::{Decoder, Frame};
use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/asterisk/",
            $name
        ))
    };
}

const NOW: Millis = 1_800_000_000_000;

fn messages(bytes: &[u8]) -> Vec<Message> {
    let mut d = Decoder::without_banner();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(f) = d.next_frame().expect("fixture parses") {
        if let Frame::Message(m) = f {
            out.push(m);
        }
    }
    out
}

/// Feeds a transcript and lets every settling call settle.
fn run_with(c: &mut Correlator, bytes: &[u8]) -> Vec<Output> {
    let mut out = Vec::new();
    for m in messages(bytes) {
        out.extend(c.observe(&m, NOW));
    }
    out.extend(c.tick(NOW + CDR_SETTLE_MS * 2).0);
    out
}

fn run(bytes: &[u8]) -> Vec<Output> {
    run_with(&mut Correlator::new(Vec::new()), bytes)
}

fn one_call(bytes: &[u8]) -> (CallEvent, Vec<u8>) {
    let out = run(bytes);
    assert_eq!(out.len(), 1, "{out:#?}");
    match out.into_iter().next() {
        Some(Output::Call { call, raw }) => (call, raw),
        other => panic!("{other:?}"),
    }
}

#[test]
fn trunk_call_not_answered() {
    let (call, raw) = one_call(fixture!("noanswer.ami"));
    assert_eq!(call.outcome, CallOutcome::NoAnswer);
    assert_eq!(call.source, CallSource::Asterisk);
    assert_eq!(call.provider_call_id, "1763900000.101");
    assert_eq!(call.from_raw, "+14155550101");
    assert_eq!(call.caller_name.as_deref(), Some("ASHA RAO"));
    assert_eq!(call.to_raw.as_deref(), Some("15550100001"));
    assert_eq!(call.ring_seconds, Some(20));
    assert_eq!(call.talk_seconds, None);
    assert_eq!(call.occurred_at, NOW);
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("Event: Newchannel\r\n"), "{text}");
    assert!(text.contains("DialStatus: NOANSWER\r\n"));
    assert!(text.ends_with("Cause-txt: User alerting, no answer\r\n\r\n"));
}

#[test]
fn busy() {
    let (call, _) = one_call(fixture!("busy.ami"));
    assert_eq!(call.outcome, CallOutcome::Busy);
    assert_eq!(call.ring_seconds, Some(1));
}

#[test]
fn caller_hung_up_while_it_rang() {
    let (call, _) = one_call(fixture!("cancel.ami"));
    assert_eq!(call.outcome, CallOutcome::Canceled);
    assert_eq!(call.ring_seconds, Some(7));
}

#[test]
fn answered_with_talk_time() {
    let (call, _) = one_call(fixture!("answered.ami"));
    assert_eq!(call.outcome, CallOutcome::Answered);
    assert_eq!(call.ring_seconds, Some(5));
    assert_eq!(call.talk_seconds, Some(62));
}

#[test]
fn an_ivr_that_answered_the_trunk_leg_does_not_make_the_call_answered() {
    // The A-leg CDR says ANSWERED (the IVR ran Answer()); the dial says NOANSWER.
    let (call, _) = one_call(fixture!("ivr_then_noanswer.ami"));
    assert_eq!(call.outcome, CallOutcome::NoAnswer);
    assert_eq!(call.to_raw.as_deref(), Some("15550100001"));
    assert_eq!(call.ring_seconds, Some(15));
}

#[test]
fn one_answer_in_a_ring_group_wins() {
    let (call, _) = one_call(fixture!("ringgroup_answered.ami"));
    assert_eq!(call.outcome, CallOutcome::Answered);
    assert_eq!(call.ring_seconds, Some(8));
}

#[test]
fn withheld_caller_is_passed_on_as_given_and_reads_as_withheld() {
    let (call, _) = one_call(fixture!("withheld.ami"));
    assert_eq!(call.outcome, CallOutcome::NoAnswer);
    assert_eq!(call.from_raw, "<unknown>");
    assert_eq!(call.caller_name, None);
    for raw in ["<unknown>", "", "anonymous"] {
        let r = crate::phone::PhoneE164::from_caller_id(raw, "US".parse().unwrap());
        assert!(
            matches!(r, Err(crate::phone::Unusable::Withheld(_))),
            "{raw}: {r:?}"
        );
    }
}

#[test]
fn missing_fields_are_flagged_not_guessed() {
    let out = run(fixture!("missing_fields.ami"));
    assert_eq!(out.len(), 1, "{out:?}");
    let Output::Flag { reason, raw } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(reason, "Hangup event without Uniqueid or Linkedid");
    assert!(raw.starts_with(b"Event: Hangup\r\n"));
}

#[test]
fn a_dial_end_without_status_is_flagged_and_the_cause_still_decides() {
    let text =
        String::from_utf8_lossy(fixture!("noanswer.ami")).replace("DialStatus: NOANSWER\r\n", "");
    let out = run(text.as_bytes());
    assert_eq!(out.len(), 2, "{out:#?}");
    assert!(
        matches!(&out[0], Output::Flag { reason, .. } if reason == "DialEnd event without DialStatus")
    );
    assert!(matches!(&out[1], Output::Call { call, .. } if call.outcome == CallOutcome::NoAnswer));
}

#[test]
fn a_whole_day_of_calls_in_one_stream() {
    let mut stream = Vec::new();
    for f in [
        &fixture!("noanswer.ami")[..],
        fixture!("busy.ami"),
        fixture!("cancel.ami"),
        fixture!("answered.ami"),
        fixture!("ivr_then_noanswer.ami"),
        fixture!("ringgroup_answered.ami"),
        fixture!("withheld.ami"),
    ] {
        stream.extend_from_slice(f);
    }
    let mut c = Correlator::new(Vec::new());
    let outcomes: Vec<_> = run_with(&mut c, &stream)
        .into_iter()
        .map(|o| match o {
            Output::Call { call, .. } => call.outcome,
            Output::Flag { reason, .. } => panic!("{reason}"),
        })
        .collect();
    use CallOutcome::*;
    assert_eq!(
        outcomes,
        [
            NoAnswer, Busy, Canceled, Answered, NoAnswer, Answered, NoAnswer
        ]
    );
    assert_eq!(
        c.in_progress(),
        0,
        "late B-leg hangups and CDRs leave nothing behind"
    );
}

#[test]
fn the_context_filter_keeps_only_calls_from_listed_contexts() {
    let mut only_trunk = Correlator::new(vec!["from-trunk".into()]);
    assert_eq!(run_with(&mut only_trunk, fixture!("noanswer.ami")).len(), 1);
    let mut only_internal = Correlator::new(vec!["from-internal".into()]);
    assert!(run_with(&mut only_internal, fixture!("noanswer.ami")).is_empty());
}

/// Only the `Cdr` events of a transcript, as a manager user with `read=cdr` sees it.
fn cdr_only(bytes: &[u8]) -> Vec<u8> {
    messages(bytes)
        .into_iter()
        .filter(|m| m.event() == Some("Cdr"))
        .flat_map(|m| m.raw)
        .collect()
}

#[test]
fn cdrs_decide_when_no_channel_events_were_seen() {
    let mut c = Correlator::new(Vec::new());
    let out = run_with(&mut c, &cdr_only(fixture!("noanswer.ami")));
    let [Output::Call { call, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(call.outcome, CallOutcome::NoAnswer);
    assert_eq!(call.from_raw, "+14155550101");
    assert_eq!(call.ring_seconds, Some(20));
    // Two CDRs, one ANSWERED: answered.
    let out = run(&cdr_only(fixture!("ringgroup_answered.ami")));
    assert!(
        matches!(&out[..], [Output::Call { call, .. }] if call.outcome == CallOutcome::Answered)
    );
}

#[test]
fn cdrs_wait_to_settle() {
    let mut c = Correlator::new(Vec::new());
    for m in messages(&cdr_only(fixture!("busy.ami"))) {
        assert!(c.observe(&m, NOW).is_empty());
    }
    assert!(c.tick(NOW + CDR_SETTLE_MS - 1).0.is_empty());
    assert_eq!(c.tick(NOW + CDR_SETTLE_MS).0.len(), 1);
}

#[test]
fn a_connection_gap_defers_to_the_cdr() {
    let msgs = messages(fixture!("ivr_then_noanswer.ami"));
    let mut c = Correlator::new(Vec::new());
    // Connected, saw the start; the connection drops; the rest arrives on a new one.
    assert!(c.observe(&msgs[0], NOW).is_empty());
    c.connection_lost();
    let mut out = Vec::new();
    for m in &msgs[1..] {
        out.extend(c.observe(m, NOW));
    }
    out.extend(c.tick(NOW + 10_000).0);
    // The only evidence left is the A-leg CDR (ANSWERED by the IVR), so it is answered:
    // never message someone on a guess.
    assert!(
        matches!(&out[..], [Output::Call { call, .. }] if call.outcome == CallOutcome::Answered),
        "{out:?}"
    );

    // Without any CDR the outcome is unknown: flagged, not guessed.
    let mut c = Correlator::new(Vec::new());
    c.observe(&msgs[0], NOW);
    c.connection_lost();
    let mut out = Vec::new();
    for m in msgs[1..].iter().filter(|m| m.event() != Some("Cdr")) {
        out.extend(c.observe(m, NOW));
    }
    out.extend(c.tick(NOW + 10_000).0);
    assert!(
        matches!(&out[..], [Output::Flag { reason, .. }] if reason.contains("connection was down")),
        "{out:?}"
    );
}

#[test]
fn calls_that_never_end_are_forgotten() {
    let msgs = messages(fixture!("noanswer.ami"));
    let mut c = Correlator::new(Vec::new());
    c.observe(&msgs[0], NOW);
    assert_eq!(c.in_progress(), 1);
    assert_eq!(c.tick(NOW + MAX_CALL_AGE_MS - 1).1, 0);
    assert_eq!(c.tick(NOW + MAX_CALL_AGE_MS).1, 1);
    assert_eq!(c.in_progress(), 0);
}

#[test]
fn replaying_a_decided_call_decides_it_again_identically() {
    let mut c = Correlator::new(Vec::new());
    let first = run_with(&mut c, fixture!("noanswer.ami"));
    let second = run_with(&mut c, fixture!("noanswer.ami"));
    assert_eq!(first, second);
}

#[test]
fn timestamps_parse() {
    assert_eq!(
        parse_timestamp("1763900000.105000"),
        Some(1_763_900_000_105)
    );
    assert_eq!(parse_timestamp("1763900000"), Some(1_763_900_000_000));
    assert_eq!(parse_timestamp("1763900000.1"), Some(1_763_900_000_100));
    assert_eq!(parse_timestamp("x.1"), None);
    assert_eq!(parse_timestamp("99999999999999999999.1"), None);
}
