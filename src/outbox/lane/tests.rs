//! Outbox maintenance: an uncertain send is not given up for lost while a status webhook that
//! arrived in time still waits for the processor.

use serde_json::json;

use super::*;
use crate::inbound::{InboundEvent, IngestRequest, KeyedEvent};
use crate::store::NewMessage;

/// A stored webhook the processor has not reached yet (what it says does not matter here).
fn webhook(key: &str, received_at: i64) -> IngestRequest {
    IngestRequest {
        source: "whatsapp",
        raw: b"{}".to_vec(),
        events: vec![KeyedEvent {
            dedup_key: key.into(),
            event: InboundEvent::Other {
                field: "messages".into(),
                value: json!({}),
            },
        }],
        received_at,
    }
}

/// A store with one send, `m1`, whose request was in flight when node-a died, and which
/// became uncertain at 6 000 (its lease lapsed).
async fn uncertain_at_6000(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = crate::store::open(&url).await.unwrap();
    store
        .enqueue(&NewMessage {
            id: "m1".into(),
            sender_id: "pn1".into(),
            to: "+15550001111".into(),
            kind: "text".into(),
            body: json!({"text": {"body": "hi"}}),
            idempotency_key: None,
            reason: "test".into(),
            created_at: 1_000,
        })
        .await
        .unwrap();
    let claimed = store
        .claim_sends("pn1", 1_000, 10, "node-a", 6_000)
        .await
        .unwrap();
    store.start_attempts(&claimed, 1_000).await.unwrap();
    store
}

async fn state(store: &Arc<dyn Store>) -> String {
    store.message("m1").await.unwrap().unwrap().message.state
}

const RESEND_AFTER: Duration = Duration::from_secs(1);

#[tokio::test]
async fn an_uncertain_send_waits_for_the_events_that_arrived_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = uncertain_at_6000(&dir).await;
    // The status webhook Meta sent for the request reached another node at 1 500, behind a
    // backlog.
    store.ingest(&[webhook("status", 1_500)]).await.unwrap();
    assert_eq!(
        store.mark_in_flight_uncertain(None, 6_000).await.unwrap(),
        1
    );

    // Long past `resend_after`, but the status is not read yet: the send waits.
    let requeued = requeue_unresolved(store.as_ref(), RESEND_AFTER, 10, 60_000).await;
    assert_eq!(requeued.unwrap().requeued, 0);
    assert_eq!(state(&store).await, "uncertain");

    // Read, and it said nothing about m1 (here: set aside): now m1 is sent again.
    let pending = store.pending_events(10).await.unwrap();
    store
        .dead_letter(pending[0].id, "test", 60_000)
        .await
        .unwrap();
    let requeued = requeue_unresolved(store.as_ref(), RESEND_AFTER, 10, 60_000).await;
    assert_eq!(requeued.unwrap().requeued, 1);
    assert_eq!(state(&store).await, "queued");
}

#[tokio::test]
async fn events_that_arrived_too_late_do_not_hold_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = uncertain_at_6000(&dir).await;
    assert_eq!(
        store.mark_in_flight_uncertain(None, 6_000).await.unwrap(),
        1
    );
    // Arrived at 8 000, after the 1 s the send waits for its status (until 7 000).
    store.ingest(&[webhook("late", 8_000)]).await.unwrap();
    let requeued = requeue_unresolved(store.as_ref(), RESEND_AFTER, 10, 60_000).await;
    assert_eq!(requeued.unwrap().requeued, 1);
    assert_eq!(state(&store).await, "queued");
}
