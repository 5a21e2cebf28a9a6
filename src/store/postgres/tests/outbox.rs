//! The outbox on PostgreSQL: a send's whole life, claims by two nodes at once, and the
//! takeover of a lapsed node's sends.

use super::*;
use crate::inbound::{DeliveryStatus, StatusUpdate};

#[tokio::test]
async fn a_call_reply_is_claimed_sent_accepted_and_read() {
    let db = Schema::create().await;
    let s = db.open().await;
    let now = now_ms();
    let ids = events(&s, &["call", "status"]).await;
    let reply = message("msg_1", now);
    let call = CallRecord {
        source: "twilio".into(),
        provider_call_id: "CA1".into(),
        sender_id: Some("pn1".into()),
        caller_raw: "+15550001111".into(),
        caller_e164: Some("+15550001111".into()),
        callee_raw: None,
        outcome: "no-answer".into(),
        ring_seconds: Some(20),
        missed: true,
        decision: "replied".into(),
        reason: "first call".into(),
        message_id: Some("msg_1".into()),
        occurred_at: now,
    };
    s.apply(
        &[Effect::Call {
            event_id: ids[0],
            call: call.clone(),
            reply: Some(reply.clone()),
            talk_seconds: None,
        }],
        None,
    )
    .await
    .unwrap();
    assert_eq!(s.call("twilio", "CA1").await.unwrap(), Some(call));
    let contact = s.contact("pn1", "15550001111").await.unwrap().unwrap();
    assert_eq!(contact.last_reply_message_id.as_deref(), Some("msg_1"));
    assert_eq!(s.outbox_depth().await.unwrap(), 1);

    let claimed = s
        .claim_sends("pn1", now, 10, "node-a", now + 60_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message_id, "msg_1");
    assert_eq!(claimed[0].attempt_no, 1);
    assert_eq!(claimed[0].claimed_by, "node-a");
    s.start_attempts(&claimed, now).await.unwrap();
    s.record_attempts(
        &[(
            claimed[0].clone(),
            AttemptOutcome::Accepted {
                wamid: "wamid.1".into(),
            },
        )],
        now + 1,
    )
    .await
    .unwrap();
    let status = StatusUpdate {
        phone_number_id: "pn1".into(),
        wamid: "wamid.1".into(),
        status: DeliveryStatus::Read,
        timestamp: now + 2,
        recipient_id: Some("15550001111".into()),
        biz_opaque_callback_data: Some("msg_1".into()),
        errors: vec![],
    };
    s.apply(
        &[Effect::Status {
            event_id: ids[1],
            status,
        }],
        None,
    )
    .await
    .unwrap();

    let m = s.message("msg_1").await.unwrap().expect("message stored");
    assert_eq!(m.message.state, "read");
    assert_eq!(m.message.wamid.as_deref(), Some("wamid.1"));
    assert_eq!(m.attempts.len(), 1);
    assert_eq!(m.attempts[0].outcome, "accepted");
    assert_eq!(m.statuses.len(), 1);
    assert_eq!(s.outbox_depth().await.unwrap(), 0);
    assert!(s.pending_events(10).await.unwrap().is_empty());
    let note: Option<String> = sqlx::query_scalar("SELECT note FROM inbound_events WHERE id = $1")
        .bind(ids[1])
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(note.as_deref(), Some("accepted -> read"));
    db.drop().await;
}

#[tokio::test]
async fn two_nodes_claiming_at_once_never_get_the_same_send() {
    let db = Schema::create().await;
    let (a, b) = (db.open().await, db.open().await);
    for i in 0..60 {
        a.enqueue(&message(&format!("msg_{i:02}"), 1_000))
            .await
            .unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    loop {
        let (ca, cb) = tokio::join!(
            a.claim_sends("pn1", 2_000, 7, "node-a", 60_000),
            b.claim_sends("pn1", 2_000, 7, "node-b", 60_000),
        );
        let (ca, cb) = (ca.unwrap(), cb.unwrap());
        if ca.is_empty() && cb.is_empty() {
            break;
        }
        for c in ca.iter().chain(&cb) {
            assert!(
                seen.insert(c.message_id.clone()),
                "{} claimed twice",
                c.message_id
            );
        }
        assert!(ca.iter().all(|c| c.claimed_by == "node-a"));
        assert!(cb.iter().all(|c| c.claimed_by == "node-b"));
    }
    assert_eq!(seen.len(), 60);
    let attempts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE outcome = 'claimed'")
            .fetch_one(&a.pool)
            .await
            .unwrap();
    assert_eq!(attempts, 60);
    db.drop().await;
}

#[tokio::test]
async fn a_lapsed_lease_is_taken_over_and_a_live_one_is_left() {
    let db = Schema::create().await;
    let s = db.open().await;
    // Due in this order, so the claims below take them in this order.
    for (i, id) in ["live", "lapsed_started", "lapsed_claimed"]
        .iter()
        .enumerate()
    {
        s.enqueue(&message(id, 1_000 + i as i64)).await.unwrap();
    }
    // node-a claims one send with a long lease; node-b claims two with a short one and
    // starts the request of the first.
    let live = s
        .claim_sends("pn1", 2_000, 1, "node-a", 100_000)
        .await
        .unwrap();
    let lapsed = s
        .claim_sends("pn1", 2_000, 2, "node-b", 5_000)
        .await
        .unwrap();
    let ids = |c: &[ClaimedSend]| c.iter().map(|c| c.message_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&live), ["live"]);
    assert_eq!(ids(&lapsed), ["lapsed_started", "lapsed_claimed"]);
    s.start_attempts(&live, 2_500).await.unwrap();
    s.start_attempts(&lapsed[..1], 2_500).await.unwrap();

    // node-c starts at 10_000: node-b's lease lapsed, node-a's did not.
    assert_eq!(
        s.mark_in_flight_uncertain(Some("node-c"), 10_000)
            .await
            .unwrap(),
        1
    );
    let detail = |id: &'static str| {
        let s = &s;
        async move { s.message(id).await.unwrap().expect("message stored") }
    };
    let m = detail("lapsed_started").await;
    assert_eq!(m.message.state, "uncertain");
    assert_eq!(m.attempts[0].outcome, "interrupted");
    let m = detail("lapsed_claimed").await;
    assert_eq!(
        (m.message.state.as_str(), m.message.attempts),
        ("queued", 0)
    );
    assert!(m.attempts.is_empty(), "the claim-only attempt is gone");
    let m = detail("live").await;
    assert_eq!(m.message.state, "sending");
    assert_eq!(m.attempts[0].outcome, "in_flight");

    // node-c claims the requeued send; node-b, back from its pause, reports on its old claim
    // of it: the attempt row is updated, but the message is node-c's and does not move.
    let reclaimed = s
        .claim_sends("pn1", 20_000, 10, "node-c", 100_000)
        .await
        .unwrap();
    assert_eq!(ids(&reclaimed), ["lapsed_claimed"]);
    let mut stale = reclaimed[0].clone();
    stale.claimed_by = "node-b".into();
    s.record_attempts(
        &[(
            stale,
            AttemptOutcome::Accepted {
                wamid: "wamid.stale".into(),
            },
        )],
        21_000,
    )
    .await
    .unwrap();
    let m = detail("lapsed_claimed").await;
    assert_eq!(
        (m.message.state.as_str(), m.message.wamid.as_deref()),
        ("sending", None)
    );
    assert_eq!(m.attempts[0].outcome, "accepted");

    // A restart of node-a takes its own live sends too.
    assert_eq!(
        s.mark_in_flight_uncertain(Some("node-a"), 21_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(detail("live").await.message.state, "uncertain");
    db.drop().await;
}
