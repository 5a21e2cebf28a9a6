//! Runs of calls and statuses (`runs.rs`) are written as if each effect were applied in turn.

use super::*;
use crate::inbound::{DeliveryStatus, StatusUpdate, WebhookError};

fn call(source: &str, id: &str, caller: &str, decision: &str, reply: Option<&str>) -> CallRecord {
    CallRecord {
        source: source.into(),
        provider_call_id: id.into(),
        sender_id: Some("pn1".into()),
        caller_raw: caller.into(),
        caller_e164: Some(caller.into()),
        callee_raw: None,
        outcome: "no-answer".into(),
        ring_seconds: Some(20),
        missed: true,
        decision: decision.into(),
        reason: format!("{decision} {id}"),
        message_id: reply.map(str::to_string),
        occurred_at: 1_000,
    }
}

/// The notes processing left on these events, in event order.
async fn notes(s: &PostgresStore, ids: &[i64]) -> Vec<String> {
    sqlx::query_scalar("SELECT note FROM inbound_events WHERE id = ANY($1) ORDER BY id")
        .bind(ids)
        .fetch_all(&s.pool)
        .await
        .unwrap()
}

fn reply_to(id: &str, to: &str, at: Millis) -> NewMessage {
    NewMessage {
        to: to.into(),
        ..message(id, at)
    }
}

#[tokio::test]
async fn a_batch_repeating_a_call_and_a_contact_is_written_as_one_effect_at_a_time() {
    let db = Schema::create().await;
    let s = db.open().await;
    let ids = events(&s, &["ring", "missed", "again", "wa", "other"]).await;
    let caller = "+15550001111";
    let effect = |i: usize, c: CallRecord, reply: Option<NewMessage>| Effect::Call {
        event_id: ids[i],
        call: c,
        reply,
        talk_seconds: None,
    };
    s.apply(
        &[
            effect(0, call("twilio", "CA1", caller, "pending", None), None),
            // The same call again (its end) and then a second reply to the same contact:
            // each would touch a row twice in one statement.
            effect(
                1,
                call("twilio", "CA1", caller, "replied", Some("msg_1")),
                Some(reply_to("msg_1", caller, 2_000)),
            ),
            effect(
                2,
                call("twilio", "CA2", caller, "replied", Some("msg_2")),
                Some(reply_to("msg_2", caller, 3_000)),
            ),
            effect(
                3,
                call("whatsapp", "wacid.1", "+15550002222", "skipped", None),
                None,
            ),
            Effect::Finish {
                event_id: ids[4],
                note: "kept".into(),
            },
        ],
        None,
    )
    .await
    .unwrap();

    let first = s.call("twilio", "CA1").await.unwrap().unwrap();
    assert_eq!(first.decision, "replied");
    assert_eq!(first.message_id.as_deref(), Some("msg_1"));
    assert_eq!(s.outbox_depth().await.unwrap(), 2);
    let contact = s.contact("pn1", "15550001111").await.unwrap().unwrap();
    assert_eq!(contact.last_reply_message_id.as_deref(), Some("msg_2"));
    assert_eq!(contact.last_reply_at, Some(3_000));
    let opened = s.contact("pn1", "15550002222").await.unwrap().unwrap();
    assert_eq!(opened.last_inbound_at, Some(1_000));
    assert!(s.pending_events(10).await.unwrap().is_empty());
    let notes = notes(&s, &ids).await;
    assert_eq!(
        notes,
        [
            "call pending: pending CA1",
            "call replied: replied CA1",
            "call replied: replied CA2",
            "call skipped: skipped wacid.1",
            "kept"
        ]
    );
}

fn status(wamid: &str, ours: Option<&str>, s: DeliveryStatus, at: Millis) -> StatusUpdate {
    StatusUpdate {
        phone_number_id: "pn1".into(),
        wamid: wamid.into(),
        status: s,
        timestamp: at,
        recipient_id: None,
        biz_opaque_callback_data: ours.map(str::to_string),
        errors: vec![],
    }
}

#[tokio::test]
async fn statuses_of_one_message_in_one_batch_apply_in_order_and_never_move_it_back() {
    let db = Schema::create().await;
    let s = db.open().await;
    let now = now_ms();
    let queued = events(&s, &["q1", "q2", "q3", "q4"]).await;
    let calls: Vec<Effect> = (1..=4)
        .map(|n| Effect::Call {
            event_id: queued[n - 1],
            call: call(
                "twilio",
                &format!("CA{n}"),
                &format!("+1555000000{n}"),
                "replied",
                None,
            ),
            reply: Some(reply_to(
                &format!("msg_{n}"),
                &format!("+1555000000{n}"),
                now,
            )),
            talk_seconds: None,
        })
        .collect();
    s.apply(&calls, None).await.unwrap();
    let claimed = s
        .claim_sends("pn1", now, 10, "node-a", now + 60_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    s.start_attempts(&claimed, now).await.unwrap();
    let send = |id: &str| claimed.iter().find(|c| c.message_id == id).unwrap().clone();
    // One batch of outcomes: two accepted, one to retry; msg_2's response is still out.
    s.record_attempts(
        &[
            (
                send("msg_1"),
                AttemptOutcome::Accepted {
                    wamid: "wamid.1".into(),
                },
            ),
            (
                send("msg_3"),
                AttemptOutcome::Accepted {
                    wamid: "wamid.3".into(),
                },
            ),
            (
                send("msg_4"),
                AttemptOutcome::Retry {
                    at: now + 5_000,
                    code: Some(131_000),
                    detail: "try again".into(),
                },
            ),
        ],
        now + 1,
    )
    .await
    .unwrap();

    let ids = events(&s, &["s1", "s2", "s3", "s4", "s5", "s6"]).await;
    let mut failed = status("wamid.3", Some("msg_3"), DeliveryStatus::Failed, now + 5);
    failed.errors.push(WebhookError {
        code: 131_026,
        title: Some("Message undeliverable".into()),
        details: Some("not on WhatsApp".into()),
    });
    let batch = [
        status("wamid.1", Some("msg_1"), DeliveryStatus::Delivered, now + 3),
        // Out of order: `sent` after `delivered` leaves it delivered.
        status("wamid.1", Some("msg_1"), DeliveryStatus::Sent, now + 2),
        // Overtakes msg_2's response: matched by our id, and the next by its wamid alone.
        status("wamid.2", Some("msg_2"), DeliveryStatus::Sent, now + 2),
        status("wamid.2", None, DeliveryStatus::Delivered, now + 4),
        failed,
        status("wamid.unknown", None, DeliveryStatus::Read, now + 6),
    ];
    let effects: Vec<Effect> = ids
        .iter()
        .zip(batch)
        .map(|(id, status)| Effect::Status {
            event_id: *id,
            status,
        })
        .collect();
    s.apply(&effects, None).await.unwrap();

    let m1 = s.message("msg_1").await.unwrap().unwrap();
    assert_eq!(m1.message.state, "delivered");
    assert_eq!(m1.statuses.len(), 2);
    assert_eq!(m1.attempts[0].outcome, "accepted");
    let m2 = s.message("msg_2").await.unwrap().unwrap();
    assert_eq!(m2.message.state, "delivered");
    assert_eq!(m2.message.wamid.as_deref(), Some("wamid.2"));
    assert_eq!(m2.statuses.len(), 2);
    let m3 = s.message("msg_3").await.unwrap().unwrap();
    assert_eq!(m3.message.state, "failed");
    assert_eq!(m3.message.error_code, Some(131_026));
    assert_eq!(
        m3.message.last_error.as_deref(),
        Some("(131026) Message undeliverable: not on WhatsApp")
    );
    let m4 = s.message("msg_4").await.unwrap().unwrap();
    assert_eq!(m4.message.state, "queued");
    assert_eq!(m4.attempts[0].outcome, "retry");
    let notes = notes(&s, &ids).await;
    assert_eq!(
        notes,
        [
            "accepted -> delivered",
            "delivered -> delivered",
            "sending -> sent",
            "sent -> delivered",
            "accepted -> failed",
            "status for a message this store did not send"
        ]
    );
    let orphan: Option<String> =
        sqlx::query_scalar("SELECT message_id FROM message_statuses WHERE wamid = 'wamid.unknown'")
            .fetch_one(&s.pool)
            .await
            .unwrap();
    assert_eq!(orphan, None);
}
