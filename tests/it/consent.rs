//! The consent ledger: STOP, START, Meta's marketing opt-out, API records and the export.

use serde_json::{Value, json};

use crate::support::*;

async fn records(app: &TestApp, to: &str) -> Vec<Value> {
    app.list(&format!("{}/api/v1/consents?to={to}", app.base))
        .await
}

#[tokio::test]
async fn stop_silences_the_caller_after_one_confirmation_and_start_brings_them_back() {
    let app = spawn_app().await;
    let user = "+919800400001";
    app.user_writes(user, "stop").await;
    let r = eventually(|| async { records(&app, user).await.first().cloned() }).await;
    assert_eq!(
        (
            r["action"].as_str(),
            r["category"].as_str(),
            r["source"].as_str()
        ),
        (Some("opt_out"), Some("all"), Some("whatsapp_message"))
    );
    assert!(r["evidence"].as_str().unwrap().contains("'stop'"));
    // The one message allowed after STOP: the confirmation.
    let confirmation = eventually(|| async {
        app.messages()
            .await
            .into_iter()
            .find(|m| m["to"] == user && m["state"] == "delivered")
    })
    .await;
    assert!(
        confirmation["reason"]
            .as_str()
            .unwrap()
            .contains("confirmation of opt_out")
    );
    // A missed call is recorded and skipped; the API refuses.
    app.missed_call("c-stop", user).await;
    let call = app.decided_call("c-stop").await;
    assert_eq!(call["decision"], "skipped", "{call}");
    assert!(
        call["reason"]
            .as_str()
            .unwrap()
            .contains("opted out of all"),
        "{call}"
    );
    let (status, v) = app
        .send_message(json!({"to": user, "template": {"name": "hello_world", "language": "en_US"}}))
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("opted_out")),
        "{v}"
    );
    // START: opted in again, confirmed, and the next missed call gets its reply.
    app.user_writes(user, "START").await;
    eventually(|| async { (records(&app, user).await.len() == 2).then_some(()) }).await;
    app.missed_call("c-start", user).await;
    assert_eq!(app.decided_call("c-start").await["decision"], "replied");
    // Two confirmations and one reply reach the Cloud API, and nothing else.
    eventually(|| async {
        let n = app
            .sandbox_sent()
            .await
            .iter()
            .filter(|m| m["to"] == "919800400001")
            .count();
        (n == 3).then_some(())
    })
    .await;
}

#[tokio::test]
async fn meta_marketing_opt_out_stops_marketing_but_not_utility() {
    let app = spawn_app().await;
    let user = "+919800400002";
    let r = app
        .http
        .post(format!("{}/sandbox/users/preferences", app.sandbox))
        .json(&json!({"from": user, "value": "stop"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let rec = eventually(|| async { records(&app, user).await.first().cloned() }).await;
    assert_eq!(
        (rec["category"].as_str(), rec["source"].as_str()),
        (Some("marketing"), Some("meta_user_preferences"))
    );
    app.templates_synced().await;
    let offer = json!({"to": user, "template": {"name": "weekly_offer", "language": "en_US", "parameters": {"first_name": "A", "offer": "B"}}});
    let (status, v) = app.send_message(offer).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("opted_out")),
        "{v}"
    );
    let (status, _) = app
        .send_message(json!({"to": user, "template": {"name": "hello_world", "language": "en_US"}}))
        .await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn api_records_are_validated_and_exported_as_csv() {
    let app = spawn_app().await;
    let post = |body: Value| {
        let (http, url) = (app.http.clone(), format!("{}/api/v1/consents", app.base));
        async move { http.post(url).json(&body).send().await.unwrap() }
    };
    let r = post(json!({"to": "+919800400003", "action": "opt_in", "category": "marketing", "source": "website_form", "evidence": "form #17, 2026-11-23 10:00 from 203.0.113.9"})).await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        post(json!({"to": "+919800400003", "action": "maybe", "evidence": "x"}))
            .await
            .status(),
        400
    );
    assert_eq!(
        post(json!({"to": "+919800400003", "action": "opt_in", "evidence": " "}))
            .await
            .status(),
        400
    );
    assert_eq!(
        post(
            json!({"to": "+919800400003", "action": "opt_in", "source": "rumour", "evidence": "x"})
        )
        .await
        .status(),
        400
    );
    let csv = app
        .http
        .get(format!("{}/api/v1/consents?format=csv", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("at,sender_id,subject"), "{csv}");
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| r.expect("valid CSV"))
        .collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert_eq!(
        (&rows[0][6], &rows[0][7], &rows[0][8]),
        (
            "opt_in",
            "website_form",
            "form #17, 2026-11-23 10:00 from 203.0.113.9"
        ),
        "{csv}"
    );
}
