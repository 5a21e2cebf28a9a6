use super::*;
use crate::inbound::CallSource;

fn rules() -> Rules {
    Rules {
        region: "US".parse().unwrap(),
        ring_timeout_seconds: 20,
        cooldown_ms: 60 * 60_000,
        builtin_reply: true,
    }
}

fn call(outcome: CallOutcome, from: &str, ring: Option<u32>) -> CallEvent {
    CallEvent {
        source: CallSource::Generic,
        provider_call_id: "c1".into(),
        from_raw: from.into(),
        to_raw: None,
        outcome,
        ring_seconds: ring,
        talk_seconds: None,
        caller_name: None,
        occurred_at: 0,
    }
}

const CALLER: &str = "+14155552671";

#[test]
fn missed_by_status_or_by_ring_time() {
    let none = |_: &PhoneE164| None;
    assert!(matches!(
        decide(
            &call(CallOutcome::NoAnswer, CALLER, None),
            &rules(),
            &[],
            none,
            0
        ),
        Verdict::Reply { .. }
    ));
    assert!(matches!(
        decide(
            &call(CallOutcome::Busy, CALLER, None),
            &rules(),
            &[],
            none,
            0
        ),
        Verdict::Reply { .. }
    ));
    assert!(matches!(
        decide(
            &call(CallOutcome::Ringing, CALLER, Some(25)),
            &rules(),
            &[],
            none,
            0
        ),
        Verdict::Reply { .. }
    ));
    assert!(matches!(
        decide(
            &call(CallOutcome::Ringing, CALLER, Some(5)),
            &rules(),
            &[],
            none,
            0
        ),
        Verdict::Pending { .. }
    ));
    assert!(matches!(
        decide(
            &call(CallOutcome::Answered, CALLER, Some(5)),
            &rules(),
            &[],
            none,
            0
        ),
        Verdict::Answered { .. }
    ));
}

#[test]
fn unusable_callers_are_skipped_with_a_reason() {
    let none = |_: &PhoneE164| None;
    let v = decide(
        &call(CallOutcome::NoAnswer, "anonymous", None),
        &rules(),
        &[],
        none,
        0,
    );
    assert!(
        matches!(&v, Verdict::Skip { reason, .. } if reason.contains("withheld")),
        "{v:?}"
    );
    let v = decide(
        &call(CallOutcome::NoAnswer, "611", None),
        &rules(),
        &[],
        none,
        0,
    );
    assert!(
        matches!(&v, Verdict::Skip { reason, .. } if reason.contains("short code")),
        "{v:?}"
    );
    let own = [PhoneE164::parse_international(CALLER).unwrap()];
    let v = decide(
        &call(CallOutcome::NoAnswer, CALLER, None),
        &rules(),
        &own,
        none,
        0,
    );
    assert!(
        matches!(&v, Verdict::Skip { reason, .. } if reason.contains("own numbers")),
        "{v:?}"
    );
}

#[test]
fn cooldown_collapses_repeated_rings() {
    let replied = |_: &PhoneE164| {
        Some(Contact {
            last_reply_at: Some(0),
            last_reply_message_id: Some("msg_1".into()),
            ..Default::default()
        })
    };
    let v = decide(
        &call(CallOutcome::NoAnswer, CALLER, None),
        &rules(),
        &[],
        replied,
        30 * 60_000,
    );
    assert!(
        matches!(&v, Verdict::Collapse { message_id: Some(m), .. } if m == "msg_1"),
        "{v:?}"
    );
    let v = decide(
        &call(CallOutcome::NoAnswer, CALLER, None),
        &rules(),
        &[],
        replied,
        61 * 60_000,
    );
    assert!(matches!(v, Verdict::Reply { .. }));
}

#[test]
fn with_the_builtin_reply_off_a_missed_call_is_left_to_flows() {
    let off = Rules {
        builtin_reply: false,
        ..rules()
    };
    let v = decide(
        &call(CallOutcome::NoAnswer, CALLER, None),
        &off,
        &[],
        |_| None,
        0,
    );
    assert!(
        matches!(&v, Verdict::Skip { caller: Some(_), reason } if reason.contains("flows on call.missed")),
        "{v:?}"
    );
    assert!(
        v.is_missed(),
        "still a missed call, published as call.missed"
    );
}
