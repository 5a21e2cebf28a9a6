use super::super::wire::{Decoder, parse_event};
use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/freeswitch/",
            $name
        ))
    };
}

const NOW: Millis = 1_800_000_000_000;

fn decisions(bytes: &[u8]) -> Vec<Decision> {
    let mut d = Decoder::new();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(m) = d.next_message().expect("fixture parses") {
        assert_eq!(m.content_type(), "text/event-plain");
        out.push(decide(&parse_event(&m.body), NOW));
    }
    out
}

/// The one call a transcript decides (other legs are ignored).
fn the_call(bytes: &[u8]) -> CallEvent {
    let calls: Vec<CallEvent> = decisions(bytes)
        .into_iter()
        .filter_map(|d| match d {
            Decision::Call(c) => Some(c),
            Decision::Ignore(_) => None,
            Decision::Flag(r) => panic!("{r}"),
        })
        .collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls.into_iter().next().unwrap()
}

#[test]
fn not_answered() {
    let c = the_call(fixture!("no_answer.esl"));
    assert_eq!(c.outcome, CallOutcome::NoAnswer);
    assert_eq!(c.source, CallSource::Freeswitch);
    assert_eq!(c.provider_call_id, "0f5e3c1a-8a51-4d2b-9a43-000000000201");
    assert_eq!(c.from_raw, "+14155550201");
    assert_eq!(c.caller_name.as_deref(), Some("Asha Rao"));
    assert_eq!(c.to_raw.as_deref(), Some("+15550100001"));
    assert_eq!(c.ring_seconds, Some(20));
    assert_eq!(c.occurred_at, NOW);
}

#[test]
fn caller_hung_up_while_it_rang() {
    let c = the_call(fixture!("originator_cancel.esl"));
    assert_eq!(c.outcome, CallOutcome::Canceled);
    assert_eq!(c.ring_seconds, Some(6));
}

#[test]
fn busy() {
    let c = the_call(fixture!("user_busy.esl"));
    assert_eq!(c.outcome, CallOutcome::Busy);
    assert_eq!(c.caller_name, None);
}

#[test]
fn bridged_is_answered() {
    let c = the_call(fixture!("bridged.esl"));
    assert_eq!(c.outcome, CallOutcome::Answered);
    assert_eq!(c.ring_seconds, Some(5));
    assert_eq!(c.talk_seconds, Some(62));
}

#[test]
fn the_outbound_leg_is_ignored() {
    assert_eq!(
        decisions(fixture!("outbound_leg.esl")),
        [Decision::Ignore("outbound leg")]
    );
}

#[test]
fn missing_unique_id_is_flagged() {
    assert_eq!(
        decisions(fixture!("missing_fields.esl")),
        [Decision::Flag(
            "CHANNEL_HANGUP_COMPLETE without Unique-ID".into()
        )]
    );
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h = vec![
        (
            "Event-Name".to_string(),
            "CHANNEL_HANGUP_COMPLETE".to_string(),
        ),
        ("Unique-ID".into(), "u1".into()),
        ("Call-Direction".into(), "inbound".into()),
        ("Caller-Caller-ID-Number".into(), "+14155550123".into()),
    ];
    h.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    h
}

fn outcome(pairs: &[(&str, &str)]) -> Option<CallOutcome> {
    match decide(&headers(pairs), NOW) {
        Decision::Call(c) => Some(c.outcome),
        _ => None,
    }
}

#[test]
fn an_ivr_answer_without_a_bridge_is_still_missed() {
    let o = outcome(&[
        ("Hangup-Cause", "NORMAL_CLEARING"),
        ("variable_answersec", "2"),
        ("Caller-Channel-Answered-Time", "1763900002000000"),
        ("variable_originate_disposition", "NO_USER_RESPONSE"),
    ]);
    assert_eq!(o, Some(CallOutcome::NoAnswer));
    // Hung up in the IVR before any phone rang.
    assert_eq!(
        outcome(&[
            ("Hangup-Cause", "NORMAL_CLEARING"),
            ("variable_answersec", "9")
        ]),
        Some(CallOutcome::Canceled)
    );
}

#[test]
fn causes_in_order_of_trust() {
    use CallOutcome::*;
    for (pairs, want) in [
        (&[("Hangup-Cause", "CALL_REJECTED")][..], Rejected),
        (&[("Hangup-Cause", "ALLOTTED_TIMEOUT")][..], NoAnswer),
        (&[("Hangup-Cause", "USER_NOT_REGISTERED")][..], Failed),
        (
            &[
                ("variable_originate_disposition", "USER_BUSY"),
                ("Hangup-Cause", "NO_ANSWER"),
            ][..],
            Busy,
        ),
        (
            &[
                ("variable_bridge_epoch", "1763900185"),
                ("Hangup-Cause", "NO_ANSWER"),
            ][..],
            Answered,
        ),
        (
            &[
                ("variable_bridge_epoch", "0"),
                ("Hangup-Cause", "NO_ANSWER"),
            ][..],
            NoAnswer,
        ),
    ] {
        assert_eq!(outcome(pairs), Some(want), "{pairs:?}");
    }
    assert!(
        matches!(decide(&headers(&[]), NOW), Decision::Flag(r) if r.contains("no Hangup-Cause"))
    );
}

#[test]
fn other_events_and_missing_direction() {
    let mut h = headers(&[("Hangup-Cause", "NO_ANSWER")]);
    h[0].1 = "HEARTBEAT".into();
    assert_eq!(
        decide(&h, NOW),
        Decision::Ignore("not CHANNEL_HANGUP_COMPLETE")
    );
    let h: Vec<_> = headers(&[("Hangup-Cause", "NO_ANSWER")])
        .into_iter()
        .filter(|(k, _)| k != "Call-Direction")
        .collect();
    assert!(matches!(decide(&h, NOW), Decision::Flag(r) if r.contains("Call-Direction")));
}
