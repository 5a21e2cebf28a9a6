//! The store's durability rules: unreadable events are set aside, a full disk does not wedge
//! the write connection, and only started attempts become uncertain after a crash.

use super::*;
use crate::inbound::{InboundEvent, KeyedEvent};

async fn store(dir: &tempfile::TempDir) -> SqliteStore {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let s = SqliteStore::open(&url).await.expect("store opens");
    s.migrate().await.expect("migrations apply");
    s
}

fn request(key: &str, field: &str, size: usize) -> IngestRequest {
    IngestRequest {
        source: "whatsapp",
        raw: vec![b'x'; size],
        events: vec![KeyedEvent {
            dedup_key: key.into(),
            event: InboundEvent::Other {
                field: field.into(),
                value: serde_json::json!({"pad": "y".repeat(size)}),
            },
        }],
        received_at: 1_000,
    }
}

fn message(id: &str) -> NewMessage {
    NewMessage {
        id: id.into(),
        sender_id: "pn1".into(),
        to: "+15550001111".into(),
        kind: "text".into(),
        body: serde_json::json!({"text": {"body": "hi"}}),
        idempotency_key: None,
        reason: "test".into(),
        created_at: 1_000,
    }
}

#[tokio::test]
async fn an_unreadable_event_is_reported_with_its_id_and_the_next_ones_still_come() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    s.ingest(&[request("a", "first", 10), request("b", "second", 10)])
        .await
        .unwrap();
    sqlx::query("UPDATE inbound_events SET event_json = '{not json' WHERE dedup_key = 'b'")
        .execute(&s.write)
        .await
        .unwrap();
    // The good event before it comes alone; then the bad one is named.
    let first = s.pending_events(10).await.unwrap();
    assert_eq!(first.len(), 1);
    s.apply(
        &[Effect::Finish {
            event_id: first[0].id,
            note: "done".into(),
        }],
        None,
    )
    .await
    .unwrap();
    let Err(StoreError::CorruptEvent { id, reason }) = s.pending_events(10).await else {
        panic!("the unreadable event is reported");
    };
    assert!(reason.contains("event_json"), "{reason}");
    s.dead_letter(id, &reason, 2_000).await.unwrap();
    assert!(s.pending_events(10).await.unwrap().is_empty());
    let dead = s.dead_events().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].source.as_str()), (id, "whatsapp"));
    assert_eq!(dead[0].reason, reason);
    // Fixed by hand, then retried: pending again and readable.
    sqlx::query("UPDATE inbound_events SET event_json = (SELECT event_json FROM inbound_events WHERE dedup_key = 'a') WHERE id = $1")
        .bind(id)
        .execute(&s.write)
        .await
        .unwrap();
    assert_eq!(s.retry_dead(Some(id + 100)).await.unwrap(), 0);
    assert_eq!(s.retry_dead(None).await.unwrap(), 1);
    let again = s.pending_events(10).await.unwrap();
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
    assert!(s.dead_events().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_full_disk_fails_writes_and_the_store_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    s.ingest(&[request("warm", "x", 10)]).await.unwrap();
    let event_id = s.pending_events(1).await.unwrap()[0].id;
    // Growing a row through a nullable column fails with SQLITE_FULL in a way that makes
    // SQLite roll the whole transaction back by itself: the case that wedged the connection.
    let finish = || Effect::Finish {
        event_id,
        note: "n".repeat(50_000),
    };
    assert_eq!(s.write_failure(), None);
    s.inject_write_fault(Some(WriteFault::Full)).await.unwrap();
    for i in 0..3 {
        let err = s
            .apply(&[finish()], None)
            .await
            .expect_err("no room for 50 KB");
        // Every failure is the disk, never a connection left inside a dead transaction.
        assert!(err.to_string().contains("full"), "apply {i}: {err}");
        let err = s
            .ingest(&[request(&format!("big{i}"), "x", 50_000)])
            .await
            .expect_err("no room for 100 KB");
        assert!(err.to_string().contains("full"), "ingest {i}: {err}");
        let failure = s.write_failure().expect("the failure is remembered");
        assert!(failure.contains("full"), "{failure}");
    }
    s.inject_write_fault(None).await.unwrap();
    s.apply(&[finish()], None)
        .await
        .expect("writes work again once space returns, without a restart");
    assert_eq!(s.write_failure(), None);
    s.ingest(&[request("after", "x", 50_000)]).await.unwrap();
}

#[tokio::test]
async fn only_started_attempts_become_uncertain_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    for id in ["m1", "m2", "m3", "m4"] {
        s.enqueue(&message(id)).await.unwrap();
    }
    let claimed = s
        .claim_sends("pn1", 2_000, 10, "node-a", 60_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    // Only m1 and m2 had their requests made before the "crash".
    let started: Vec<ClaimedSend> = claimed
        .iter()
        .filter(|c| c.message_id == "m1" || c.message_id == "m2")
        .cloned()
        .collect();
    s.start_attempts(&started, 2_100).await.unwrap();
    assert_eq!(
        s.mark_in_flight_uncertain(Some("node-a"), 3_000)
            .await
            .unwrap(),
        2
    );
    let state = |id: &'static str| {
        let s = &s;
        async move { s.message(id).await.unwrap().expect("message exists") }
    };
    for id in ["m1", "m2"] {
        let m = state(id).await;
        assert_eq!(m.message.state, "uncertain", "{id}");
        assert_eq!(m.attempts[0].outcome, "interrupted", "{id}");
    }
    for id in ["m3", "m4"] {
        let m = state(id).await;
        assert_eq!(m.message.state, "queued", "{id}");
        assert_eq!(m.message.attempts, 0, "{id}: the claim was not an attempt");
        assert!(m.attempts.is_empty(), "{id}: {:?}", m.attempts);
    }
    // Due at once: the next claim (at the restart's clock) takes exactly the two.
    let again = s
        .claim_sends("pn1", 3_000, 10, "node-a", 60_000)
        .await
        .unwrap();
    let mut ids: Vec<_> = again.iter().map(|c| c.message_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["m3", "m4"]);
    assert!(again.iter().all(|c| c.attempt_no == 1));
}

#[tokio::test]
async fn replies_claimed_and_started_with_their_decision_follow_the_same_crash_rules() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    s.ingest(&[
        request("a", "x", 1),
        request("b", "x", 1),
        request("c", "x", 1),
    ])
    .await
    .unwrap();
    let events = s.pending_events(10).await.unwrap();
    let effects = events
        .iter()
        .zip(["m1", "m2", "m3"])
        .map(|(e, id)| Effect::Enqueue {
            event_id: e.id,
            message: message(id),
        })
        .collect();
    let now = crate::time::now_ms();
    let request = ClaimRequest {
        sender_id: "pn1".into(),
        limit: 2,
        start: 1,
        node: "node-a".into(),
        lease_until: now + 60_000,
    };
    let claimed = s.apply_and_claim(effects, None, &[request]).await.unwrap();
    assert!(s.pending_events(10).await.unwrap().is_empty(), "decided");
    let ids: Vec<_> = claimed
        .iter()
        .map(|(c, started)| (c.message_id.as_str(), *started))
        .collect();
    assert_eq!(
        ids,
        [("m1", true), ("m2", false)],
        "the limit, the first started"
    );
    // A crash now: the started reply waits for its status, the claimed one is queued again,
    // and the third was never claimed.
    assert_eq!(
        s.mark_in_flight_uncertain(Some("node-a"), now + 1)
            .await
            .unwrap(),
        1
    );
    let state = |id: &'static str| {
        let s = &s;
        async move {
            s.message(id)
                .await
                .unwrap()
                .expect("message exists")
                .message
                .state
        }
    };
    assert_eq!(state("m1").await, "uncertain");
    assert_eq!(state("m2").await, "queued");
    assert_eq!(state("m3").await, "queued");
}
