//! The outbox keeps within Meta's limits instead of learning them from errors.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

async fn send_template(app: &TestApp, to: &str) -> String {
    let r = app
        .http
        .post(format!("{}/api/v1/messages", app.base))
        .json(&json!({"to": to, "template": {"name": "hello_world", "language": "en_US"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn throughput_is_paced_so_the_sandbox_never_answers_130429() {
    // The sandbox enforces 80/s like Meta; the outbox paces at 80/s.
    let app = spawn_app().await;
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(send_template(&app, &format!("+9198000{i:05}")).await);
    }
    eventually(|| async {
        let rows = app.messages().await;
        (rows.len() == 100 && rows.iter().all(|m| m["state"] == "delivered")).then_some(())
    })
    .await;
    assert!(
        started.elapsed().as_secs_f64() >= 1.1,
        "100 sends at 80/s take over a second: {:?}",
        started.elapsed()
    );
    for id in &ids[..10] {
        let m = app.message(id).await;
        assert_eq!(
            m["attempts"].as_array().unwrap().len(),
            1,
            "no 130429 retry: {m}"
        );
    }
    assert!(app.messages().await.iter().all(|m| m["attempts"] == 1));
}

#[tokio::test]
async fn the_pair_rate_limit_holds_messages_back_instead_of_sending_them() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..47 {
        ids.push(send_template(&app, "+919800099999").await);
    }
    // The two over the limit may be `sending` for a moment after the 45th is delivered: the
    // lane claims rows ahead of its pacing and only then finds them held, and puts them back.
    let last = std::sync::Mutex::new(Vec::new());
    let held = eventually_or(
        Duration::from_secs(10),
        || async {
            let rows = app.messages().await;
            let delivered = rows.iter().filter(|m| m["state"] == "delivered").count();
            let held: Vec<_> = rows
                .iter()
                .filter(|m| m["state"] == "queued")
                .cloned()
                .collect();
            *last.lock().unwrap() = rows;
            (delivered == 45 && held.len() == 2).then_some(held)
        },
        || format!("not 45 delivered and 2 held: {:#?}", last.lock().unwrap()),
    )
    .await;
    for m in held {
        assert_eq!(m["attempts"], 0, "held, not attempted: {m}");
        assert!(
            m["last_error"]
                .as_str()
                .unwrap()
                .contains("pair rate limit"),
            "{m}"
        );
    }
    let sent = app.sandbox_sent().await;
    assert_eq!(
        sent.len(),
        45,
        "the sandbox never saw a request it would refuse with 131056"
    );
}

#[tokio::test]
async fn throughput_upgrade_webhook_raises_the_pace_and_is_recorded() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(format!("{}/sandbox/numbers/throughput", app.sandbox))
        .json(&json!({"phone_number_id": PNID, "per_second": 1000}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let number = eventually(|| async {
        let v = app.get_json(&format!("{}/api/v1/numbers", app.base)).await;
        let n = v["data"][0].clone();
        (n["throughput_per_second"] == 1000).then_some(n)
    })
    .await;
    assert_eq!(number["messaging_tier"], "TIER_UNLIMITED");
}

#[tokio::test]
async fn a_flagged_number_holds_marketing_while_utility_goes_on() {
    let app = spawn_app().await;
    app.templates_synced().await;
    // Two users block and report the business: the sandbox turns the number RED and flags it.
    for u in ["919800500001", "919800500002"] {
        app.http
            .post(format!("{}/sandbox/users/block", app.sandbox))
            .json(&json!({"from": u, "report": true}))
            .send()
            .await
            .unwrap();
    }
    eventually(|| async {
        let v = app.get_json(&format!("{}/api/v1/numbers", app.base)).await;
        (v["data"][0]["quality_rating"] == "RED").then_some(())
    })
    .await;
    let post = |body: serde_json::Value| {
        let (http, url) = (app.http.clone(), format!("{}/api/v1/messages", app.base));
        async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let offer = post(json!({"to": "+919800500010", "template": {"name": "weekly_offer", "language": "en_US", "parameters": {"first_name": "A", "offer": "B"}}})).await;
    let utility = post(
        json!({"to": "+919800500011", "template": {"name": "hello_world", "language": "en_US"}}),
    )
    .await;
    app.message_in_state(utility["id"].as_str().unwrap(), "delivered")
        .await;
    let held = eventually(|| async {
        let m = app.message(offer["id"].as_str().unwrap()).await;
        m["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("held"))
            .then_some(m)
    })
    .await;
    assert_eq!(held["state"], "queued");
    let events = app
        .get_json(&format!("{}/api/v1/numbers/{PNID}/events", app.base))
        .await;
    let names: Vec<_> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        names.contains(&"FLAGGED".to_string())
            && names.contains(&"ACCOUNT_RESTRICTION".to_string()),
        "{events}"
    );
    assert_eq!(
        held["attempts"].as_array().unwrap().len(),
        0,
        "held, never attempted: {held}"
    );
}
