//! Durability seen from outside: an unreadable event is set aside and the next one is
//! processed; a full disk is reported by `/healthz` and recovered from without a restart;
//! stopping is bounded while the store fails; rows claimed ahead are sent at once after a
//! crash instead of waiting as `uncertain`.

use std::sync::Arc;
use std::time::Duration;

use ringback::store::{Store, WriteFault};
use serde_json::{Value, json};

use crate::support::*;

fn store(app: &TestApp) -> Arc<dyn Store> {
    app.running.as_ref().expect("app runs").store.clone()
}

async fn health(app: &TestApp) -> (u16, Value) {
    let r = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.expect("healthz answers JSON"))
}

/// Runs the `ringback` binary against the test app's store; returns its stdout.
pub(crate) async fn cli(app: &TestApp, args: &[&str]) -> String {
    let mut env = base_env();
    env.push(("RINGBACK_STORE__URL".into(), app.settings.store_url.clone()));
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ringback"))
            .args(&args)
            .env_remove("RINGBACK_CONFIG")
            .envs(env)
            .output()
            .expect("the ringback binary runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_event_is_dead_lettered_and_the_next_one_processed() {
    let app = spawn_app().await;
    let db = Db::open(&app.settings.store_url).await;
    // An event whose stored JSON cannot be read, ahead of a good one.
    let raw: i64 = on_db!(&db, pool => sqlx::query_scalar(
        "INSERT INTO raw_payloads (source, body, received_at) VALUES ('calls', $1, 1) RETURNING id",
    )
    .bind(&[0u8][..])
    .fetch_one(pool)
    .await
    .unwrap());
    let bad: i64 = on_db!(&db, pool => sqlx::query_scalar(
        "INSERT INTO inbound_events (raw_id, source, dedup_key, kind, event_json, received_at)
         VALUES ($1, 'calls', 'test-bad', 'call', '{\"kind\": \"call\", \"trunc', 1) RETURNING id",
    )
    .bind(raw)
    .fetch_one(pool)
    .await
    .unwrap());

    let r = app.missed_call("after-bad", "+14155550101").await;
    assert_eq!(r.status(), 202);
    let call = app.decided_call("after-bad").await;
    assert_eq!(call["decision"], "replied", "{call}");

    let dead = store(&app).dead_events().await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].id, dead[0].source.as_str()), (bad, "calls"));
    assert!(dead[0].reason.contains("event_json"), "{}", dead[0].reason);
    let listed = cli(&app, &["events", "dead"]).await;
    assert!(
        listed.contains(&bad.to_string()) && listed.contains("event_json"),
        "{listed}"
    );

    // Fixed by hand (here: a copy of the good event, so it is a redelivered call), then retried.
    on_db!(&db, pool => {
        sqlx::query(
            "UPDATE inbound_events SET event_json = (SELECT event_json FROM inbound_events
                 WHERE dedup_key != 'test-bad' AND kind = 'call' LIMIT 1) WHERE id = $1",
        )
        .bind(bad)
        .execute(pool)
        .await
        .unwrap();
    });
    let out = cli(&app, &["events", "retry", &bad.to_string()]).await;
    assert!(out.contains("queued for processing again"), "{out}");
    eventually(|| async {
        let done: Option<i64> = on_db!(&db, pool =>
            sqlx::query_scalar("SELECT processed_at FROM inbound_events WHERE id = $1")
                .bind(bad)
                .fetch_one(pool)
                .await
                .unwrap());
        done.map(|_| ())
    })
    .await;
    db.close().await;
    assert!(store(&app).dead_events().await.unwrap().is_empty());
}

/// A text message of `size` bytes: far more than the free space of a fresh database.
fn big_message(n: u32, size: usize) -> Value {
    wa_envelope(json!({
        "contacts": [{"profile": {"name": "Asha"}, "wa_id": "15550002222"}],
        "messages": [{"from": "15550002222", "id": format!("wamid.full-disk-{n}"),
            "timestamp": "1700000000", "type": "text", "text": {"body": "x".repeat(size)}}],
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_turns_healthz_503_and_the_store_recovers_by_itself() {
    if sqlite_only("store-specific: WriteFault::Full injects SQLITE_FULL through max_page_count") {
        return;
    }
    let app = spawn_app().await;
    assert_eq!(health(&app).await.0, 200);
    store(&app)
        .inject_write_fault(Some(WriteFault::Full))
        .await
        .unwrap();
    for n in 1..=3 {
        let r = app.whatsapp(&big_message(n, 20_000)).await;
        assert_eq!(r.status(), 503, "webhook {n} cannot be stored");
        // Each failure is the disk's, not a connection wedged by the one before.
        let failure = store(&app).write_failure().expect("the failure is kept");
        assert!(failure.contains("full"), "webhook {n}: {failure}");
    }
    let (status, h) = health(&app).await;
    assert_eq!(status, 503, "{h}");
    assert_eq!(h["checks"]["store_write"]["status"], "failing", "{h}");
    assert_eq!(h["checks"]["store_read"]["status"], "ok", "{h}");

    // Space returns: Meta's redelivery of the same webhook is stored, no restart needed.
    store(&app).inject_write_fault(None).await.unwrap();
    let r = app.whatsapp(&big_message(3, 20_000)).await;
    assert_eq!(r.status(), 200);
    let (status, h) = health(&app).await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["status"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_returns_promptly_while_the_store_fails() {
    let mut app = spawn_app().await;
    let r = app
        .http
        .post(format!("{}/sandbox/faults", app.sandbox))
        .json(&json!({"phone_number_id": PNID, "latency_ms": 4000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No status webhook either: a `sent` status that settled the message before the stop
    // would leave its attempt `in_flight` (only sends still `sending` are interrupted).
    let r = app
        .http
        .post(format!("{}/sandbox/webhooks/faults", app.sandbox))
        .json(&json!({"delay_ms": 600_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.missed_call("stop-1", "+14155550102").await.status(),
        202
    );
    let id = app.decided_call("stop-1").await["message_id"]
        .as_str()
        .expect("a reply was queued")
        .to_string();
    // The request has left (its attempt is started) when every write starts failing.
    eventually(|| async {
        let m = app.message(&id).await;
        (m["attempts"][0]["outcome"] == "in_flight").then_some(())
    })
    .await;
    store(&app)
        .inject_write_fault(Some(WriteFault::ReadOnly))
        .await
        .unwrap();
    let running = app.running.take().expect("app runs");
    tokio::time::timeout(Duration::from_secs(10), running.stop())
        .await
        .expect("stop returns within 10 s although the outcome cannot be recorded");

    // Nothing is lost: the next start finds the attempt in flight, and the message waits for
    // its status webhook (`uncertain`).
    let restarted = ringback::store::open(&app.settings.store_url)
        .await
        .unwrap();
    restarted
        .mark_in_flight_uncertain(
            Some(&ringback::cluster::default_node_id()),
            ringback::time::now_ms(),
        )
        .await
        .unwrap();
    let m = restarted.message(&id).await.unwrap().expect("message kept");
    assert_eq!(m.message.state, "uncertain", "{m:?}");
    assert_eq!(m.attempts.len(), 1, "{m:?}");
    assert_eq!(m.attempts[0].outcome, "interrupted", "{m:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_claimed_ahead_are_sent_at_once_after_a_crash() {
    let mut app = spawn_app_with(&[("RINGBACK_OUTBOX__THROUGHPUT_PER_SECOND", "1")]).await;
    for i in 0..10 {
        let r = app
            .missed_call(&format!("ahead-{i}"), &format!("+141555501{i:02}"))
            .await;
        assert_eq!(r.status(), 202);
    }
    // At one message per second, the lane has claimed the rest ahead of its pacing.
    eventually(|| async {
        let m = app.messages().await;
        (m.len() == 10 && m.iter().filter(|m| m["state"] == "sending").count() >= 6).then_some(())
    })
    .await;
    // A crash: every task is dropped mid-flight, nothing is recorded on the way out.
    drop(app.running.take());
    let dir = std::mem::replace(&mut app.dir, tempfile::tempdir().unwrap());
    let app = start(app.settings.clone(), dir).await;
    // uncertain_resend_after_seconds is 600: only a started request may wait that long.
    let states = eventually(|| async {
        let m = app.messages().await;
        let states: Vec<String> = m
            .iter()
            .map(|m| m["state"].as_str().unwrap_or_default().to_string())
            .collect();
        states
            .iter()
            .all(|s| s != "queued" && s != "sending")
            .then_some(states)
    })
    .await;
    // A request in flight and the rows started ahead of pacing (four at one message a second,
    // the lane's minimum) may wait; the rest of the rows claimed ahead may not.
    let uncertain = states.iter().filter(|s| *s == "uncertain").count();
    assert!(uncertain <= 5, "only started rows may wait: {states:?}");
    assert_eq!(states.len(), 10);
}
