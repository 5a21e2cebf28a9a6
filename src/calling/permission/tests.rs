use super::*;

const T0: Millis = 1_800_000_000_000;

fn req(o: &str) -> Input {
    Input::RequestSent { origin: o.into() }
}
fn accept(o: &str, permanent: bool) -> Input {
    Input::Reply {
        origin: o.into(),
        accept: true,
        permanent,
        expires_at: None,
        automatic: false,
    }
}
fn unanswered(o: &str) -> Input {
    Input::BusinessCallEnded {
        origin: o.into(),
        answered: false,
    }
}

#[test]
fn request_then_accept_then_expiry() {
    let l = Limits::default();
    let mut r = PermissionRecord::default();
    let c = apply(&mut r, &req("m1"), T0, &l);
    assert_eq!(
        (c[0].from, c[0].to),
        (PermissionStatus::None, PermissionStatus::Requested)
    );
    apply(&mut r, &accept("m2", false), T0 + HOUR, &l);
    assert_eq!(r.status, PermissionStatus::Accepted);
    assert!(r.may_call(T0 + 2 * HOUR, &l).is_ok());
    // Seven days after acceptance it lapses.
    let later = T0 + HOUR + TEMPORARY_MS + 1;
    assert_eq!(r.status_at(later), PermissionStatus::Expired);
    assert_eq!(r.may_call(later, &l).unwrap_err().code, 138006);
    let c = apply(&mut r, &unanswered("c1"), later, &l);
    assert_eq!(c[0].source, "expiry");
    assert_eq!(r.status, PermissionStatus::Expired);
}

#[test]
fn request_limits_one_a_day_two_a_week_reset_by_a_connected_call() {
    let l = Limits::default();
    let mut r = PermissionRecord::default();
    assert!(r.may_request(T0, &l).is_ok());
    apply(&mut r, &req("m1"), T0, &l);
    assert_eq!(r.may_request(T0 + HOUR, &l).unwrap_err().code, 138009);
    assert!(r.may_request(T0 + DAY + 1, &l).is_ok());
    apply(&mut r, &req("m2"), T0 + DAY + 1, &l);
    let e = r.may_request(T0 + 3 * DAY, &l).unwrap_err();
    assert!(e.message.contains("2 per 7 days"), "{e}");
    // A connected call (either direction) resets both limits.
    apply(
        &mut r,
        &Input::UserCalled {
            origin: "wacid.1".into(),
            connected: true,
            callback_permission: false,
        },
        T0 + 3 * DAY,
        &l,
    );
    assert!(r.may_request(T0 + 3 * DAY, &l).is_ok());
}

#[test]
fn a_permanent_permission_refuses_new_requests() {
    let l = Limits::default();
    let mut r = PermissionRecord::default();
    apply(&mut r, &req("m1"), T0, &l);
    apply(&mut r, &accept("m2", true), T0, &l);
    assert_eq!(r.may_request(T0 + 30 * DAY, &l).unwrap_err().code, 138017);
    assert_eq!(r.status_at(T0 + 365 * DAY), PermissionStatus::Accepted);
}

#[test]
fn two_unanswered_prompt_four_revoke_and_an_answer_resets_the_count() {
    let l = Limits::default();
    let mut r = PermissionRecord::default();
    apply(&mut r, &accept("m", true), T0, &l);
    assert!(apply(&mut r, &unanswered("c1"), T0, &l).is_empty());
    let c = apply(&mut r, &unanswered("c2"), T0, &l);
    assert_eq!(c.len(), 1);
    assert!(c[0].reason.contains("reconsider"));
    assert_eq!(r.status, PermissionStatus::Accepted);
    apply(
        &mut r,
        &Input::BusinessCallEnded {
            origin: "c3".into(),
            answered: true,
        },
        T0,
        &l,
    );
    assert_eq!(r.consecutive_unanswered, 0);
    for i in 0..3 {
        apply(&mut r, &unanswered(&format!("d{i}")), T0, &l);
    }
    assert_eq!(r.status, PermissionStatus::Accepted);
    let c = apply(&mut r, &unanswered("d3"), T0, &l);
    assert_eq!(
        (c[0].to, c[0].source.as_str()),
        (PermissionStatus::Revoked, "unanswered_calls")
    );
    assert_eq!(r.may_call(T0, &l).unwrap_err().code, 138006);
}

#[test]
fn a_redelivered_event_changes_nothing() {
    let l = Limits::default();
    let mut r = PermissionRecord::default();
    apply(&mut r, &accept("m", false), T0, &l);
    apply(&mut r, &unanswered("c1"), T0, &l);
    let before = r.clone();
    assert!(apply(&mut r, &unanswered("c1"), T0 + 5, &l).is_empty());
    assert_eq!(r, before);
}

#[test]
fn a_user_call_grants_temporary_permission_only_with_callback_permission() {
    let l = Limits::default();
    let mut r = PermissionRecord::default();
    apply(
        &mut r,
        &Input::UserCalled {
            origin: "w1".into(),
            connected: false,
            callback_permission: false,
        },
        T0,
        &l,
    );
    assert_eq!(r.status, PermissionStatus::None);
    let c = apply(
        &mut r,
        &Input::UserCalled {
            origin: "w2".into(),
            connected: false,
            callback_permission: true,
        },
        T0,
        &l,
    );
    assert_eq!(
        (c[0].to, c[0].source.as_str()),
        (PermissionStatus::Accepted, "user_call")
    );
    assert_eq!(r.expires_at, Some(T0 + TEMPORARY_MS));
}

#[test]
fn the_connected_call_cap_is_per_24_hours() {
    let l = Limits {
        connected_calls_per_day: 2,
        ..Limits::default()
    };
    let mut r = PermissionRecord::default();
    apply(&mut r, &accept("m", true), T0, &l);
    for i in 0..2 {
        apply(
            &mut r,
            &Input::BusinessCallEnded {
                origin: format!("c{i}"),
                answered: true,
            },
            T0 + i,
            &l,
        );
    }
    assert_eq!(r.may_call(T0 + HOUR, &l).unwrap_err().code, 138012);
    assert!(r.may_call(T0 + DAY + 2, &l).is_ok());
}

#[test]
fn declined_then_granted_later_is_allowed() {
    let l = Limits::default();
    let mut r = PermissionRecord::default();
    apply(&mut r, &req("m1"), T0, &l);
    apply(
        &mut r,
        &Input::Reply {
            origin: "m2".into(),
            accept: false,
            permanent: false,
            expires_at: None,
            automatic: false,
        },
        T0,
        &l,
    );
    assert_eq!(r.status, PermissionStatus::Declined);
    apply(&mut r, &accept("m3", false), T0 + HOUR, &l);
    assert_eq!(r.status, PermissionStatus::Accepted);
}
