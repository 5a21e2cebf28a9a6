//! Outbound webhooks over HTTP: registration and its refusals, signed deliveries verified with
//! an independent implementation of Standard Webhooks, an endpoint down then up (retries,
//! order kept), replay, disabling an endpoint that fails for days.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::receiver::{Received, Receiver};
use crate::support::*;

/// Registers an endpoint; returns its id and secret.
async fn add_endpoint(app: &TestApp, url: &str, events: &[&str]) -> (String, String) {
    let r = app
        .http
        .post(format!("{}/api/v1/webhook-endpoints", app.base))
        .json(&json!({"url": url, "events": events, "description": "test receiver"}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    (
        v["id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

/// Standard Webhooks verification written from the specification, independent of
/// Ringback's signer: HMAC-SHA256 over `id.timestamp.body` with the base64-decoded secret,
/// any of the space-separated `v1,` signatures matching.
/// The delivery log of one endpoint, as `GET /api/v1/webhook-deliveries?endpoint=` lists it.
async fn deliveries(app: &TestApp, endpoint: &str) -> Vec<Value> {
    app.list(&format!(
        "{}/api/v1/webhook-deliveries?endpoint={endpoint}",
        app.base
    ))
    .await
}

fn verify(secret: &str, r: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    let signed = format!(
        "{}.{}.{}",
        r.header("webhook-id"),
        r.header("webhook-timestamp"),
        String::from_utf8_lossy(&r.body)
    );
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    r.header("webhook-signature")
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| sig == expected)
}

#[tokio::test]
async fn an_endpoint_down_then_up_gets_every_event_signed_and_in_order() {
    let app = spawn_app().await;
    // The first three requests are refused with 503: the endpoint is down, then up.
    let receiver = Receiver::start(3).await;
    let (endpoint, secret) = add_endpoint(
        &app,
        &receiver.url,
        &["conversation.started", "message.received"],
    )
    .await;
    // Every event published from now on has a delivery for it, whenever its worker starts.
    for text in ["one", "two", "three"] {
        app.user_writes("+919876500101", text).await;
    }
    let delivered = eventually(|| async {
        let d = receiver.delivered();
        (d.len() == 4).then_some(d)
    })
    .await;
    let kinds: Vec<&str> = delivered
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "conversation.started",
            "message.received",
            "message.received",
            "message.received"
        ],
        "one conversation's events arrive in order, retries included"
    );
    let texts: Vec<&str> = delivered[1..]
        .iter()
        .map(|e| e["data"]["message"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["one", "two", "three"]);
    let all = receiver.all();
    assert!(all.iter().filter(|r| r.answered == 503).count() == 3);
    for r in &all {
        assert!(verify(&secret, r), "signature verifies: {:?}", r.headers);
        let body = r.json();
        assert_eq!(r.header("webhook-id"), format!("evt_{}", body["id"]));
        let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
        assert!((ts - ringback::time::now_ms() / 1000).abs() < 60);
    }
    // A retried event kept its webhook-id, so a receiver can drop duplicates.
    let mut ids: HashMap<String, usize> = HashMap::new();
    for r in &all {
        *ids.entry(r.header("webhook-id")).or_default() += 1;
    }
    assert_eq!(ids.len(), 4, "{ids:?}");
    // The delivery log shows the failed attempts and the success (recorded just after the
    // receiver answered: waited for).
    let log = eventually(|| async {
        let log = deliveries(&app, &endpoint).await;
        log.iter().all(|d| d["state"] == "delivered").then_some(log)
    })
    .await;
    assert_eq!(log.len(), 4);
    let first = log.iter().map(|d| d["id"].as_i64().unwrap()).min().unwrap();
    let one = app
        .get_json(&format!("{}/api/v1/webhook-deliveries/{first}", app.base))
        .await;
    let attempts = one["attempts_log"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{one}");
    assert_eq!(attempts[0]["status"], 503);
    assert_eq!(attempts.last().unwrap()["status"], 204);
}

#[tokio::test]
async fn a_delivery_is_replayed_with_the_same_webhook_id() {
    let app = spawn_app().await;
    let receiver = Receiver::start(0).await;
    let (endpoint, _) = add_endpoint(&app, &receiver.url, &["message.received"]).await;
    app.user_writes("+919876500102", "replay me").await;
    eventually(|| async { (receiver.delivered().len() == 1).then_some(()) }).await;
    // Replayed once its first delivery is recorded, not while the dispatcher still holds it.
    let log = eventually(|| async {
        let log = deliveries(&app, &endpoint).await;
        (log.first()?["state"] == "delivered").then_some(log)
    })
    .await;
    let id = log[0]["id"].as_i64().unwrap();
    let r = app
        .http
        .post(format!(
            "{}/api/v1/webhook-deliveries/{id}/replay",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let all = eventually(|| async {
        let all = receiver.all();
        (all.len() == 2).then_some(all)
    })
    .await;
    assert_eq!(all[0].header("webhook-id"), all[1].header("webhook-id"));
    assert_eq!(all[0].body, all[1].body);
    // The replayed attempt is recorded just after the receiver answered: waited for, so the
    // next replay does not race that record.
    eventually(|| async {
        let log = deliveries(&app, &endpoint).await;
        (log.first()?["state"] == "delivered" && log.first()?["attempts"] == 2).then_some(())
    })
    .await;
    // A time range replays every delivery of its events to one endpoint.
    let r = app
        .http
        .post(format!(
            "{}/api/v1/webhook-endpoints/{endpoint}/replay",
            app.base
        ))
        .json(&json!({"from": "2020-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["replayed"], 1, "{v}");
    eventually(|| async { (receiver.all().len() == 3).then_some(()) }).await;
    let missing = app
        .http
        .post(format!(
            "{}/api/v1/webhook-deliveries/999999/replay",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn registering_refuses_unknown_events_bad_urls_and_private_addresses() {
    let app = spawn_app_with(&[(
        "RINGBACK_OUTBOUND_WEBHOOKS__ALLOW_PRIVATE_ADDRESSES",
        "false",
    )])
    .await;
    let refused = |body: Value| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(format!("{}/api/v1/webhook-endpoints", app.base))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            assert_eq!(status, 400, "{v}");
            assert_eq!(v["error"]["code"], "invalid_endpoint", "{v}");
            v["error"]["message"].as_str().unwrap().to_string()
        }
    };
    let m = refused(json!({"url": "https://example.com/h", "events": ["call.mised"]})).await;
    assert!(m.contains("unknown event type 'call.mised'"), "{m}");
    let m = refused(json!({"url": "ftp://example.com/h"})).await;
    assert!(m.contains("https://"), "{m}");
    let m = refused(json!({"url": "http://127.0.0.1:8080/admin"})).await;
    assert!(m.contains("allow_private_addresses = true"), "{m}");
    let m = refused(json!({"url": "http://169.254.169.254/latest/meta-data"})).await;
    assert!(m.contains("169.254.169.254"), "{m}");
    let listed = app
        .list(&format!("{}/api/v1/webhook-endpoints", app.base))
        .await;
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn an_endpoint_failing_for_days_is_disabled_with_a_reason_and_an_event() {
    let app = spawn_app().await;
    let dead = Receiver::start(usize::MAX).await;
    let witness = Receiver::start(0).await;
    let (endpoint, _) = add_endpoint(&app, &dead.url, &[]).await;
    add_endpoint(&app, &witness.url, &["webhook_endpoint.disabled"]).await;
    // It has been failing for six days already (more than disable_after_days = 5).
    let db = Db::open(&app.settings.store_url).await;
    let six_days_ago = ringback::time::now_ms() - 6 * 24 * 3_600_000;
    on_db!(&db, pool => sqlx::query("UPDATE webhook_endpoints SET failing_since = $1 WHERE id = $2")
        .bind(six_days_ago)
        .bind(&endpoint)
        .execute(pool)
        .await
        .unwrap()
        .rows_affected());
    app.user_writes("+919876500103", "anyone there?").await;
    let disabled = eventually(|| async { witness.delivered().into_iter().next() }).await;
    assert_eq!(disabled["type"], "webhook_endpoint.disabled");
    assert_eq!(disabled["data"]["endpoint_id"], endpoint.as_str());
    let reason = disabled["data"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no delivery succeeded for 5 days"),
        "{reason}"
    );
    assert!(reason.contains("503"), "{reason}");
    let ep = app
        .get_json(&format!("{}/api/v1/webhook-endpoints/{endpoint}", app.base))
        .await;
    assert_eq!(ep["enabled"], false);
    assert_eq!(ep["disabled_reason"], reason);
    // A person enables it again: its failure mark is cleared.
    let r = app
        .http
        .patch(format!("{}/api/v1/webhook-endpoints/{endpoint}", app.base))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["enabled"], true, "{v}");
    assert_eq!(v["failing_since"], Value::Null);
    db.close().await;
}

/// `kill -9` of the real binary while deliveries are in flight: after the restart every
/// event reaches the endpoint, under the webhook-id it had before.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_deliveries_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let pair = crate::served::Pair::start(
        dir.path(),
        "[outbound_webhooks]\nallow_private_addresses = true\nrequest_timeout_ms = 30000\nretry_delays_ms = [100, 259200000]\n",
    )
    .await;
    let (http, base) = (reqwest::Client::new(), pair.base.clone());
    // The endpoint answers after 20 s: the server dies with deliveries in flight.
    let receiver = Receiver::start(0).await;
    receiver.slow(std::time::Duration::from_secs(20));
    let server = pair.serve(&dir.path().join("serve1.log")).await;
    let r = http
        .post(format!("{base}/api/v1/webhook-endpoints"))
        .json(&json!({"url": receiver.url, "events": ["call.missed"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for i in 0..5 {
        let body = json!({"call_id": format!("k9-{i}"), "from": format!("+9198765{:05}", 40000 + i), "to": BUSINESS, "status": "no-answer"});
        let r = post_call(&http, &base, &body).await.unwrap();
        assert_eq!(r.status(), 202);
    }
    // Five calls, five conversations-free events: all five requests are in flight at once.
    eventually(|| async { (receiver.arrived() >= 5).then_some(()) }).await;
    drop(server); // SIGKILL
    receiver.slow(std::time::Duration::ZERO);
    let _server = pair.serve(&dir.path().join("serve2.log")).await;
    let ids = eventually_within(std::time::Duration::from_secs(30), || async {
        let mut ids: Vec<String> = receiver
            .all()
            .iter()
            .filter(|r| r.answered < 300)
            .map(|r| r.header("webhook-id"))
            .collect();
        ids.sort();
        ids.dedup();
        (ids.len() == 5).then_some(ids)
    })
    .await;
    let events: Vec<Value> = http
        .get(format!("{base}/api/v1/events?types=call.missed"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["data"]
        .as_array()
        .unwrap()
        .clone();
    let mut expected: Vec<String> = events.iter().map(|e| format!("evt_{}", e["id"])).collect();
    expected.sort();
    assert_eq!(
        ids, expected,
        "every call.missed event arrived, under its own id"
    );
}

/// A rejected token takes the number offline: the API refuses sends through it with the
/// reason, an event says so, and the next probe that Meta accepts brings it back.
#[tokio::test]
async fn a_number_whose_token_is_rejected_goes_offline_and_comes_back() {
    let app = spawn_app_with(&[
        ("RINGBACK_OUTBOX__OFFLINE_PROBE_SECONDS", "1"),
        ("RINGBACK_OUTBOX__WHEN_SENDER_OFFLINE", "refuse"),
    ])
    .await;
    app.templates_synced().await;
    app.fault(json!([{"code": 190, "http_status": 401, "times": 1}]))
        .await;
    let send = || {
        app.send_message(json!({"to": "+919876500201", "template": {"name": "hello_world", "language": "en_US"}}))
    };
    let (status, first) = send().await;
    assert_eq!(status, 202, "{first}");
    app.message_in_state(first["id"].as_str().unwrap(), "failed")
        .await;
    let number = || async {
        let numbers = app.list(&format!("{}/api/v1/numbers", app.base)).await;
        numbers[0]["sending"].clone()
    };
    let offline = number().await;
    assert_eq!(offline["online"], false, "{offline}");
    assert!(
        offline["reason"].as_str().unwrap().contains("190"),
        "{offline}"
    );
    let (status, refused) = send().await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "sender_offline");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("190"),
        "the reason is given: {refused}"
    );
    let published = eventually(|| async {
        crate::conversations::events(&app, "number.offline")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(published["data"]["phone_number_id"], PNID);
    // A missed call still queues its reply; the lane tries it as the probe, Meta accepts it.
    assert_eq!(
        app.missed_call("offline-1", "+919876500202").await.status(),
        202
    );
    eventually(|| async { (number().await["online"] == true).then_some(()) }).await;
    // The state changes first, its event is published right after.
    let back = eventually(|| async {
        let back = crate::conversations::events(&app, "number.online").await;
        (!back.is_empty()).then_some(back)
    })
    .await;
    assert_eq!(back.len(), 1, "{back:?}");
    let (status, again) = send().await;
    assert_eq!(status, 202, "{again}");
}

/// A redirect is an answer like any other non-2xx: logged, retried, never followed.
#[tokio::test]
async fn a_redirect_is_not_followed_but_retried() {
    let app = spawn_app().await;
    let receiver = Receiver::start(1).await;
    receiver.fail_with(307);
    let (endpoint, _) = add_endpoint(&app, &receiver.url, &["message.received"]).await;
    app.user_writes("+919876500301", "hello").await;
    eventually(|| async { (receiver.delivered().len() == 1).then_some(()) }).await;
    let all = receiver.all();
    assert_eq!(all.len(), 2, "one redirect, one retry to the same URL");
    assert_eq!(all[0].answered, 307);
    // The receiver answers before the dispatcher records that answer: wait for the record.
    let one = eventually(|| async {
        let log = deliveries(&app, &endpoint).await;
        let one = app
            .get_json(&format!(
                "{}/api/v1/webhook-deliveries/{}",
                app.base,
                log.first()?["id"]
            ))
            .await;
        (one["attempts_log"].as_array()?.len() == 2).then_some(one)
    })
    .await;
    let attempts = one["attempts_log"].as_array().unwrap();
    assert_eq!(attempts[0]["status"], 307, "{one}");
    assert_eq!(attempts[0]["error"], "the endpoint answered 307");
    assert_eq!(attempts[1]["status"], 204);
}

/// An endpoint that never answers: the attempt ends at the timeout, is logged, and the event
/// goes again.
#[tokio::test]
async fn an_endpoint_that_never_answers_times_out_and_is_retried() {
    let app = spawn_app_with(&[("RINGBACK_OUTBOUND_WEBHOOKS__REQUEST_TIMEOUT_MS", "300")]).await;
    let receiver = Receiver::start(0).await;
    receiver.slow(std::time::Duration::from_secs(5));
    let (endpoint, _) = add_endpoint(&app, &receiver.url, &["message.received"]).await;
    app.user_writes("+919876500302", "anyone?").await;
    let failed = eventually(|| async {
        let log = deliveries(&app, &endpoint).await;
        let d = log.first()?;
        (d["attempts"].as_i64() >= Some(1)).then(|| d.clone())
    })
    .await;
    let error = failed["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("no answer before the timeout"),
        "{failed}"
    );
    receiver.slow(std::time::Duration::ZERO);
    eventually(|| async { (!receiver.delivered().is_empty()).then_some(()) }).await;
}
