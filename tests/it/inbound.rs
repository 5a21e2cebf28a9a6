//! Verify → parse → commit → acknowledge, and every way a request can be wrong.

use serde_json::json;

use crate::support::*;

fn text_message(wamid: &str, from: &str) -> serde_json::Value {
    wa_envelope(json!({
        "contacts": [{"profile": {"name": "Ravi"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": "1763900000", "type": "text", "text": {"body": "hi"}}]
    }))
}

#[tokio::test]
async fn meta_handshake_echoes_the_challenge_only_with_the_right_token() {
    let app = spawn_app().await;
    let ok = app.http.get(format!("{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=test-verify&hub.challenge=1158201444", app.base)).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let bad = app
        .http
        .get(format!(
            "{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 403);
}

#[tokio::test]
async fn wrong_or_missing_signatures_get_401_and_store_nothing() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&text_message("wamid.sig", "919876500100")).unwrap();
    let wrong = ringback::signature::sign_sha256_hex(b"not-the-secret", &body);
    let r = app
        .raw_post(
            "/webhooks/whatsapp",
            body.clone(),
            &[("X-Hub-Signature-256", &wrong)],
        )
        .await;
    assert_eq!(r.status(), 401);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "bad_signature");
    assert_eq!(
        app.raw_post("/webhooks/whatsapp", body, &[]).await.status(),
        401
    );

    let call = serde_json::to_vec(
        &json!({"call_id": "x", "from": "+919876500100", "status": "no-answer"}),
    )
    .unwrap();
    let r = app
        .raw_post(
            "/webhooks/calls",
            call.clone(),
            &[("X-Ringback-Signature", "sha256=00")],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        app.raw_post("/webhooks/calls", call, &[]).await.status(),
        401
    );

    let twilio = app
        .http
        .post(format!("{}/webhooks/twilio/voice", app.base))
        .header("X-Twilio-Signature", "bm9wZQ==")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("CallSid=CA1&From=%2B14155550123")
        .send()
        .await
        .unwrap();
    assert_eq!(twilio.status(), 401);

    // Sentinel instead of a sleep: a good call posted after the bad ones is processed after
    // them (events are processed in arrival order); once it is decided, it must be the only
    // call. The counters of rejections are asserted by value in `metrics.rs`.
    assert_eq!(
        app.missed_call("sig-sentinel", "+919876500109")
            .await
            .status(),
        202
    );
    app.decided_call("sig-sentinel").await;
    let calls = app.calls().await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["provider_call_id"], "sig-sentinel");
}

#[tokio::test]
async fn redelivered_messages_and_statuses_are_stored_once() {
    let app = spawn_app().await;
    let m = text_message("wamid.dup", "919876500101");
    assert_eq!(app.whatsapp(&m).await.status(), 200);
    assert_eq!(
        app.whatsapp(&m).await.status(),
        200,
        "a redelivery is acknowledged too"
    );
    // Send something, then replay its status webhook.
    app.missed_call("d-1", "+919876500102").await;
    let call = app.decided_call("d-1").await;
    let id = call["message_id"].as_str().unwrap();
    let msg = app.message_in_state(id, "delivered").await;
    let wamid = msg["wamid"].as_str().unwrap();
    let replay = wa_envelope(
        json!({"statuses": [{"id": wamid, "status": "delivered", "timestamp": "1763900001", "recipient_id": "919876500102"}]}),
    );
    assert_eq!(app.whatsapp(&replay).await.status(), 200);
    // Sentinel instead of a sleep: a message posted after the replay is processed after it
    // (events are processed in arrival order); once it is, the replayed `delivered` has been
    // handled and must not have added a row. (The sandbox may add its own `read` meanwhile.)
    // The duplicate counter is asserted by value in `metrics.rs`.
    let sentinel = text_message("wamid.dup.sentinel", "919876500103");
    assert_eq!(app.whatsapp(&sentinel).await.status(), 200);
    eventually(|| app.event_note("wamid.dup.sentinel")).await;
    let msg = app.message(id).await;
    let statuses: Vec<&str> = msg["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "delivered").count(),
        1,
        "{msg}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == "sent").count(),
        1,
        "{msg}"
    );
}

#[tokio::test]
async fn malformed_and_incomplete_bodies_get_clear_400s() {
    let app = spawn_app().await;
    let sign = |b: &[u8]| ringback::signature::sign_sha256_hex(CALLS_SECRET.as_bytes(), b);
    for (body, needle) in [
        (&b"{not json"[..], "not a call event"),
        (
            &br#"{"from":"+919876500103","status":"no-answer"}"#[..],
            "call_id",
        ),
        (
            &br#"{"call_id":"m1","from":"+919876500103","status":"exploded"}"#[..],
            "is not one of",
        ),
        (
            &br#"{"call_id":"m1","from":"+919876500103","status":"busy","colour":"red"}"#[..],
            "unknown field",
        ),
    ] {
        let r = app
            .raw_post(
                "/webhooks/calls",
                body.to_vec(),
                &[("X-Ringback-Signature", &sign(body))],
            )
            .await;
        assert_eq!(r.status(), 400);
        let e: serde_json::Value = r.json().await.unwrap();
        assert!(
            e["error"]["message"].as_str().unwrap().contains(needle),
            "{e}"
        );
    }
    let garbage = b"[1,2".to_vec();
    let sig = ringback::signature::sign_sha256_hex(APP_SECRET.as_bytes(), &garbage);
    assert_eq!(
        app.raw_post(
            "/webhooks/whatsapp",
            garbage,
            &[("X-Hub-Signature-256", &sig)]
        )
        .await
        .status(),
        400
    );
    let r = app
        .twilio("/webhooks/twilio/dial-status", &[("CallSid", "CA9")])
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("DialCallStatus"));
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app().await;
    let big = vec![b' '; 70_000];
    let r = app
        .raw_post(
            "/webhooks/calls",
            big,
            &[("X-Ringback-Signature", "sha256=00")],
        )
        .await;
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn unknown_types_and_unknown_numbers_are_stored_and_flagged_without_losing_the_batch() {
    let app = spawn_app().await;
    let now = (ringback::time::now_ms() / 1000).to_string();
    let mixed = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "1", "phone_number_id": "999999"},
            "messages": [{"from": "919876500104", "id": "wamid.other", "timestamp": "1", "type": "text", "text": {"body": "x"}}]}}]},
        {"id": "2", "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100001", "phone_number_id": PNID},
            "contacts": [{"profile": {"name": "Ravi"}, "wa_id": "919876500104"}],
            "messages": [
                {"from": "919876500104", "id": "wamid.poll", "timestamp": "1763900000", "type": "poll_v9", "poll_v9": {"q": "?"}},
                {"from": "919876500104", "id": "wamid.text", "timestamp": now, "type": "text", "text": {"body": "hello"}}
            ]}}]}
    ]});
    assert_eq!(app.whatsapp(&mixed).await.status(), 200);
    // The text message opened the window: a missed call from the same user gets free-form text.
    app.missed_call("u-1", "+919876500104").await;
    let call = app.decided_call("u-1").await;
    let m = app.message(call["message_id"].as_str().unwrap()).await;
    assert_eq!(m["kind"], "interactive", "{m}");
}
