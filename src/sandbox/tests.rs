use std::time::Duration;

use serde_json::json;

use super::webhooks::Item;
use super::{ReceivedMessage, Sandbox, SandboxNumber, SandboxSettings, SentMessage};

fn number() -> SandboxNumber {
    SandboxNumber {
        phone_number_id: "100000000000001".into(),
        waba_id: "200000000000001".into(),
        display_number: "15550100001".into(),
        access_token: "t".to_string().into(),
    }
}

fn sandbox(keep: usize) -> (Sandbox, crate::shutdown::Trigger) {
    let mut settings = SandboxSettings::demo(vec![number()], None, "s".to_string().into());
    settings.keep = keep;
    let (trigger, shutdown) = crate::shutdown::channel();
    (Sandbox::start(settings, shutdown), trigger)
}

fn sent(seq: u64) -> SentMessage {
    SentMessage {
        seq,
        wamid: format!("wamid.{seq}"),
        phone_number_id: "100000000000001".into(),
        to: "919800000001".into(),
        kind: "text".into(),
        received_at: 0,
        received_us: 0,
        outcome: "accepted".into(),
        body: json!({}),
    }
}

fn received(seq: u64) -> ReceivedMessage {
    ReceivedMessage {
        seq,
        wamid: format!("wamid.in{seq}"),
        phone_number_id: "100000000000001".into(),
        from: "919800000001".into(),
        at: 0,
        message: json!({}),
    }
}

#[tokio::test]
async fn messages_beyond_keep_drop_the_oldest_and_are_counted() {
    let (sb, _t) = sandbox(3);
    for seq in 1..=5 {
        sb.lock().record_sent(sent(seq), 3);
        sb.lock().record_received(received(seq), 3);
    }
    let kept: Vec<u64> = sb.sent(None).iter().map(|m| m.seq).collect();
    assert_eq!(kept, [3, 4, 5]);
    let st = sb.lock();
    let kept: Vec<u64> = st.received.iter().map(|m| m.seq).collect();
    assert_eq!(kept, [3, 4, 5]);
    assert_eq!((st.dropped.sent, st.dropped.received), (2, 2));
    drop(st);
    // The total still counts every send (the benchmarks wait on it).
    assert_eq!(sb.sent_count(), 5);
}

#[tokio::test]
async fn the_count_includes_what_was_dropped() {
    let (sb, _t) = sandbox(3);
    for seq in 1..=5 {
        sb.lock().record_sent(sent(seq), 3);
    }
    let axum::Json(count) = super::control::count_messages(axum::extract::State(sb)).await;
    assert_eq!(count, json!({"sent": 5, "kept": 3, "dropped": 2}));
}

#[tokio::test]
async fn keep_zero_keeps_everything() {
    let (sb, _t) = sandbox(0);
    for seq in 1..=50 {
        sb.lock().record_sent(sent(seq), 0);
    }
    assert_eq!(sb.sent(None).len(), 50);
    assert_eq!(sb.lock().dropped.sent, 0);
}

#[tokio::test]
async fn pending_webhooks_beyond_keep_drop_the_oldest() {
    let (sb, _t) = sandbox(3);
    for i in 0..5u64 {
        // Due in a minute, so none is delivered (or dropped as undeliverable) meanwhile.
        let item = Item::Message {
            contact: json!({"wa_id": "919800000001"}),
            message: json!({"id": format!("wamid.{i}")}),
        };
        sb.hooks.push(&number(), item, Duration::from_secs(60 + i));
    }
    let stats = sb.hooks.stats();
    assert_eq!((stats.pending, stats.pending_dropped), (3, 2));
}
