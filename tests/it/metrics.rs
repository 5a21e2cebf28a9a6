//! `/metrics` values, asserted exactly, on a server that is the only one recording them.
//!
//! The `metrics` recorder is process-wide: every app started in this test binary writes into
//! the same counters, and tests run in parallel, so an in-process test can neither assert a
//! value (another test may have added to it) nor even that a series moved (every webhook
//! registers its series at 0). `metrics::with_local_recorder` only covers the current thread,
//! not the tasks an app spawns, and a per-app label would put a test-only dimension on every
//! production series. So these tests run the real `ringback serve` binary in a child process:
//! a fresh app with a fresh recorder, whose counters nobody else can touch, so each assertion
//! can name the exact value it expects.

use serde_json::{Value, json};

use crate::served::serve;
use crate::support::*;

fn text_message(wamid: &str) -> Value {
    wa_envelope(json!({
        "contacts": [{"profile": {"name": "Ravi"}, "wa_id": "919876500901"}],
        "messages": [{"from": "919876500901", "id": wamid, "timestamp": "1763900000", "type": "text", "text": {"body": "hi"}}]
    }))
}

const NEW: &str = r#"ringback_webhook_events_total{source="whatsapp",result="new"}"#;
const DUPLICATE: &str = r#"ringback_webhook_events_total{source="whatsapp",result="duplicate"}"#;

#[tokio::test]
async fn a_redelivered_webhook_counts_one_new_event_and_one_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let app = serve(dir.path(), &[]).await;
    let m = text_message("wamid.metrics.dup");
    assert_eq!(app.whatsapp(&m, APP_SECRET).await, 200);
    assert_eq!(app.metric(NEW).await, Some(1.0));
    // The first delivery registers the duplicate series at 0: the series existing proves nothing.
    assert_eq!(app.metric(DUPLICATE).await, Some(0.0));
    assert_eq!(app.whatsapp(&m, APP_SECRET).await, 200);
    assert_eq!(
        app.metric(NEW).await,
        Some(1.0),
        "the redelivery is not new"
    );
    assert_eq!(app.metric(DUPLICATE).await, Some(1.0));
    let other = text_message("wamid.metrics.other");
    assert_eq!(app.whatsapp(&other, APP_SECRET).await, 200);
    assert_eq!(app.metric(NEW).await, Some(2.0));
    assert_eq!(app.metric(DUPLICATE).await, Some(1.0));
}

#[tokio::test]
async fn each_rejected_webhook_is_counted_under_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let app = serve(dir.path(), &[]).await;
    let m = text_message("wamid.metrics.sig");
    assert_eq!(app.whatsapp(&m, "not-the-secret").await, 401);
    assert_eq!(
        app.post("/webhooks/whatsapp", serde_json::to_vec(&m).unwrap(), &[])
            .await,
        401
    );
    let call = serde_json::to_vec(
        &json!({"call_id": "x", "from": "+919876500902", "status": "no-answer"}),
    )
    .unwrap();
    assert_eq!(
        app.post(
            "/webhooks/calls",
            call,
            &[("X-Ringback-Signature", "sha256=00")]
        )
        .await,
        401
    );
    // Summed over reasons: which reason label each gets is not what this test is about.
    let metrics = app.metrics().await;
    let rejected = |source: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("ringback_webhooks_rejected_total{")
                    && l.contains(&format!("source=\"{source}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(rejected("whatsapp"), 2.0, "{metrics}");
    assert_eq!(rejected("generic"), 1.0, "{metrics}");
    assert_eq!(
        app.metric(NEW).await.unwrap_or(0.0),
        0.0,
        "nothing was accepted"
    );
}

#[tokio::test]
async fn every_series_and_the_health_check_name_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let app = serve(
        dir.path(),
        &[("RINGBACK_CLUSTER__NODE_ID", "node-under-test")],
    )
    .await;
    assert_eq!(
        app.whatsapp(&text_message("wamid.metrics.node"), APP_SECRET)
            .await,
        200
    );
    let metrics = app.metrics().await;
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("ringback_"))
        .collect();
    assert!(!series.is_empty(), "{metrics}");
    for line in series {
        assert!(line.contains(r#"node="node-under-test""#), "{line}");
    }
    let r = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let health: serde_json::Value = r.json().await.unwrap();
    assert_eq!(health["node"], "node-under-test", "{health}");
}

#[tokio::test]
async fn assistant_replies_are_counted_by_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ringback.toml");
    std::fs::write(
        &config,
        format!(
            "[[assistants]]\nname = \"desk\"\nknowledge = [\"{}/examples/assistants/smile-dental.md\"]\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let path = config.display().to_string();
    let app = serve(dir.path(), &[("RINGBACK_CONFIG", path.as_str())]).await;
    let http = reqwest::Client::new();
    for message in [
        "When are you open on Saturday?",
        "I want a human",
        "Do you sell bikes?",
    ] {
        let r = http
            .post(format!("{}/api/v1/assistants/desk/replies", app.base))
            .json(&json!({"customer_id": "c1", "message": message}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{message}");
    }
    let series = |outcome: &str| {
        format!("ringback_assistant_replies_total{{assistant=\"desk\",outcome=\"{outcome}\"}}")
    };
    assert_eq!(app.metric(&series("knowledge")).await, Some(1.0));
    assert_eq!(app.metric(&series("hand_off:keyword")).await, Some(1.0));
    let low = app
        .metric(&series("hand_off:low_confidence"))
        .await
        .unwrap_or(0.0)
        + app
            .metric(&series("hand_off:no_knowledge"))
            .await
            .unwrap_or(0.0);
    assert_eq!(low, 1.0);
    assert!(
        app.metrics()
            .await
            .contains("ringback_assistant_overhead_seconds")
    );
}
