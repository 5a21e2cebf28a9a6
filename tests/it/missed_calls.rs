//! The headline path, from each source to a Cloud API request and its status webhooks.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn generic_webhook_missed_call_becomes_a_delivered_template() {
    let app = spawn_app().await;
    let r = app.missed_call("pbx-1", "+91 98765 43210").await;
    assert_eq!(r.status(), 202);
    let call = app.decided_call("pbx-1").await;
    assert_eq!(call["decision"], "replied", "{call}");
    assert_eq!(call["caller_e164"], "+919876543210");
    let id = call["message_id"].as_str().unwrap().to_string();
    let m = app.message_in_state(&id, "delivered").await;
    assert_eq!(m["kind"], "template");
    assert!(m["reason"].as_str().unwrap().contains("window closed"));
    let statuses: Vec<_> = m["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    assert_eq!(m["attempts"][0]["outcome"], "accepted");
    // What reached the Cloud API is the exact template request.
    let sent = app.sandbox_sent().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], "919876543210");
    assert_eq!(sent[0]["body"]["template"]["name"], "missed_call_followup");
    assert_eq!(
        sent[0]["body"]["template"]["components"][0]["parameters"][1]["text"],
        "Demo Bakery"
    );
}

#[tokio::test]
async fn twilio_forwarded_call_that_nobody_answers() {
    let app = spawn_app_with(&[
        ("RINGBACK_TWILIO__FORWARD_TO", "+14155552671"),
        ("RINGBACK_TWILIO__DIAL_TIMEOUT_SECONDS", "18"),
    ])
    .await;
    let base = [
        ("CallSid", "CA100"),
        ("From", "+14155550123"),
        ("To", BUSINESS),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
    ];
    let r = app.twilio("/webhooks/twilio/voice", &base).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("xml")
    );
    let twiml = r.text().await.unwrap();
    assert!(twiml.contains("<Dial timeout=\"18\""), "{twiml}");
    assert!(
        twiml.contains(&format!(
            "action=\"{}/webhooks/twilio/dial-status\"",
            app.base
        )),
        "{twiml}"
    );
    assert!(twiml.contains("<Number>+14155552671</Number>"), "{twiml}");
    // Ringing alone decides nothing.
    let mut dial = base.to_vec();
    dial.extend([
        ("DialCallStatus", "no-answer"),
        ("DialCallSid", "CA200"),
        ("DialCallDuration", "0"),
    ]);
    let r = app.twilio("/webhooks/twilio/dial-status", &dial).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<Hangup/>"));
    let call = app.decided_call("CA100").await;
    assert_eq!(call["decision"], "replied", "{call}");
    assert_eq!(call["source"], "twilio");
    app.message_in_state(call["message_id"].as_str().unwrap(), "delivered")
        .await;
}

#[tokio::test]
async fn twilio_missed_call_number_rejects_and_replies() {
    let app = spawn_app().await;
    let r = app
        .twilio(
            "/webhooks/twilio/voice",
            &[
                ("CallSid", "CA300"),
                ("From", "+14155550124"),
                ("To", BUSINESS),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("<Reject reason=\"busy\"/>")
    );
    let call = app.decided_call("CA300").await;
    assert_eq!(call["outcome"], "rejected");
    assert_eq!(call["decision"], "replied");
}

#[tokio::test]
async fn twilio_answered_call_sends_nothing() {
    let app = spawn_app_with(&[("RINGBACK_TWILIO__FORWARD_TO", "+14155552671")]).await;
    let p = [
        ("CallSid", "CA400"),
        ("From", "+14155550125"),
        ("To", BUSINESS),
        ("DialCallStatus", "completed"),
        ("DialCallDuration", "42"),
    ];
    assert_eq!(
        app.twilio("/webhooks/twilio/dial-status", &p)
            .await
            .status(),
        200
    );
    let call = app.decided_call("CA400").await;
    assert_eq!(call["decision"], "answered");
    assert!(app.messages().await.is_empty());
}

#[tokio::test]
async fn open_window_gets_free_form_text_with_buttons_closed_window_gets_a_template() {
    let app = spawn_app().await;
    // The user writes on WhatsApp first: the sandbox posts a signed inbound webhook to Ringback.
    app.user_writes("+919876500001", "Are you open today?")
        .await;
    // Events are processed in commit order, so once the inbound webhook is acknowledged the
    // call below is decided with the window already open.
    app.webhooks_delivered(1).await;
    app.missed_call("w-1", "+919876500001").await;
    app.missed_call("w-2", "+919876500002").await;
    let open = app.decided_call("w-1").await;
    let closed = app.decided_call("w-2").await;
    let open_msg = app
        .message_in_state(open["message_id"].as_str().unwrap(), "delivered")
        .await;
    let closed_msg = app
        .message_in_state(closed["message_id"].as_str().unwrap(), "delivered")
        .await;
    assert_eq!(open_msg["kind"], "interactive", "{open_msg}");
    assert_eq!(
        open_msg["body"]["interactive"]["body"]["text"],
        "Hi Asha, sorry we missed your call to Demo Bakery. How can we help?"
    );
    assert!(open_msg["reason"].as_str().unwrap().contains("window open"));
    assert_eq!(closed_msg["kind"], "template");
    assert!(
        closed_msg["reason"]
            .as_str()
            .unwrap()
            .contains("window closed")
    );
}

#[tokio::test]
async fn repeated_rings_inside_the_cooldown_collapse_into_one_reply() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.missed_call(&format!("c-{i}"), "+919876500010").await;
    }
    let first = app.decided_call("c-0").await;
    let second = app.decided_call("c-1").await;
    let third = app.decided_call("c-2").await;
    assert_eq!(first["decision"], "replied");
    assert_eq!(second["decision"], "collapsed", "{second}");
    assert_eq!(third["decision"], "collapsed");
    assert_eq!(second["message_id"], first["message_id"]);
    assert!(second["reason"].as_str().unwrap().contains("cooldown"));
    app.message_in_state(first["message_id"].as_str().unwrap(), "delivered")
        .await;
    assert_eq!(app.sandbox_sent().await.len(), 1);
}

#[tokio::test]
async fn the_same_provider_call_id_never_produces_two_replies() {
    let app = spawn_app_with(&[("RINGBACK_MISSED_CALL__COOLDOWN_MINUTES", "0")]).await;
    assert_eq!(
        app.missed_call("dup-1", "+919876500020").await.status(),
        202
    );
    let again = app.missed_call("dup-1", "+919876500020").await;
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap()["status"],
        "duplicate"
    );
    // A different terminal status for the same call id is recorded but changes nothing.
    app.call(json!({"call_id": "dup-1", "from": "+919876500020", "status": "busy"}))
        .await;
    let call = app.decided_call("dup-1").await;
    app.message_in_state(call["message_id"].as_str().unwrap(), "delivered")
        .await;
    // Sentinel instead of a sleep: a later call from someone else is processed and sent after
    // the redeliveries above; once its reply is delivered, anything they caused was sent too.
    app.missed_call("dup-sentinel", "+919876500021").await;
    let sentinel = app.decided_call("dup-sentinel").await;
    app.message_in_state(sentinel["message_id"].as_str().unwrap(), "delivered")
        .await;
    let mut to: Vec<String> = app
        .sandbox_sent()
        .await
        .iter()
        .map(|m| m["to"].as_str().unwrap().to_string())
        .collect();
    to.sort();
    assert_eq!(to, ["919876500020", "919876500021"], "one reply per caller");
}

/// README: "`completed` with `duration: 0` counts as missed" (generic webhook).
#[tokio::test]
async fn a_completed_call_with_zero_duration_counts_as_missed() {
    let app = spawn_app_with(&[("RINGBACK_MISSED_CALL__COOLDOWN_MINUTES", "0")]).await;
    let r = app
        .call(json!({"call_id": "z-0", "from": "+919876500040", "to": BUSINESS, "status": "completed", "duration": 0}))
        .await;
    assert_eq!(r.status(), 202);
    let r = app
        .call(json!({"call_id": "z-30", "from": "+919876500041", "to": BUSINESS, "status": "completed", "duration": 30}))
        .await;
    assert_eq!(r.status(), 202);
    let zero = app.decided_call("z-0").await;
    assert_eq!(zero["decision"], "replied", "{zero}");
    assert!(zero["message_id"].is_string(), "{zero}");
    let talked = app.decided_call("z-30").await;
    assert_eq!(talked["decision"], "answered", "{talked}");
    assert!(talked["message_id"].is_null(), "{talked}");
}

#[tokio::test]
async fn ringing_past_the_timeout_counts_as_missed_and_short_rings_wait() {
    let app = spawn_app().await;
    app.call(
        json!({"call_id": "r-1", "from": "+919876500030", "status": "ringing", "ring_seconds": 25}),
    )
    .await;
    let call = app.decided_call("r-1").await;
    assert_eq!(call["decision"], "replied");
    assert!(call["reason"].as_str().unwrap().contains("rang 25 s"));
    app.call(
        json!({"call_id": "r-2", "from": "+919876500031", "status": "ringing", "ring_seconds": 3}),
    )
    .await;
    app.call(json!({"call_id": "r-2", "from": "+919876500031", "status": "answered"}))
        .await;
    assert_eq!(app.decided_call("r-2").await["decision"], "answered");
}

#[tokio::test]
async fn withheld_invalid_and_short_callers_are_recorded_and_skipped() {
    let app = spawn_app().await;
    app.missed_call("s-1", "anonymous").await;
    app.missed_call("s-2", "1004").await;
    app.missed_call("s-3", "+1 555 000 0000").await;
    for (id, word) in [
        ("s-1", "withheld"),
        ("s-2", "short code"),
        ("s-3", "not a valid"),
    ] {
        let c = app.decided_call(id).await;
        assert_eq!(c["decision"], "skipped", "{c}");
        assert!(c["reason"].as_str().unwrap().contains(word), "{c}");
    }
    assert!(app.messages().await.is_empty());
}

#[tokio::test]
async fn outside_business_hours_the_after_hours_text_is_used() {
    // Closed every day: every call is after hours.
    let closed = [
        ("RINGBACK_MISSED_CALL__BUSINESS_HOURS__ENABLED", "true"),
        ("RINGBACK_MISSED_CALL__BUSINESS_HOURS__MONDAY", ""),
        ("RINGBACK_MISSED_CALL__BUSINESS_HOURS__TUESDAY", ""),
        ("RINGBACK_MISSED_CALL__BUSINESS_HOURS__WEDNESDAY", ""),
        ("RINGBACK_MISSED_CALL__BUSINESS_HOURS__THURSDAY", ""),
        ("RINGBACK_MISSED_CALL__BUSINESS_HOURS__FRIDAY", ""),
        ("RINGBACK_MISSED_CALL__REPLY__BUTTONS", "[]"),
    ];
    let app = spawn_app_with(&closed).await;
    app.user_writes("+919876500040", "hello").await;
    app.webhooks_delivered(1).await;
    app.missed_call("h-1", "+919876500040").await;
    let call = app.decided_call("h-1").await;
    let m = app
        .message_in_state(call["message_id"].as_str().unwrap(), "delivered")
        .await;
    assert_eq!(m["kind"], "text");
    assert!(
        m["body"]["text"]["body"]
            .as_str()
            .unwrap()
            .contains("closed right now"),
        "{m}"
    );
    assert!(
        m["reason"]
            .as_str()
            .unwrap()
            .contains("outside business hours")
    );
}

#[tokio::test]
async fn a_reply_template_that_would_be_refused_is_caught_before_sending() {
    let app = spawn_app_with(&[(
        "RINGBACK_MISSED_CALL__REPLY__TEMPLATE",
        "missed_call_followup_v2",
    )])
    .await;
    app.templates_synced().await;
    app.missed_call("bad-tpl", "+919876500050").await;
    let call = app.decided_call("bad-tpl").await;
    assert_eq!(call["decision"], "skipped", "{call}");
    let reason = call["reason"].as_str().unwrap();
    assert!(
        reason.contains("missed_call_followup_v2")
            && reason.contains("132001")
            && reason.contains("[missed_call.reply]"),
        "{reason}"
    );
    assert!(app.sandbox_sent().await.is_empty());
}

#[tokio::test]
async fn an_unanswered_whatsapp_call_gets_a_free_form_reply_because_the_call_opened_the_window() {
    let app = spawn_app().await;
    let call = |body: serde_json::Value| {
        let (http, url) = (
            app.http.clone(),
            format!("{}/sandbox/users/call", app.sandbox),
        );
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
    let connect = call(json!({"from": "+919800800001", "event": "connect"})).await;
    let id = connect["call_id"].as_str().unwrap().to_string();
    call(json!({"from": "+919800800001", "event": "terminate", "call_id": id})).await;
    let decided = app.decided_call(&id).await;
    assert_eq!(
        (decided["source"].as_str(), decided["decision"].as_str()),
        (Some("whatsapp"), Some("replied")),
        "{decided}"
    );
    let m = app
        .message_in_state(decided["message_id"].as_str().unwrap(), "delivered")
        .await;
    assert_eq!(m["kind"], "interactive", "a call opens the window: {m}");
    // An answered WhatsApp call sends nothing.
    let answered = call(json!({"from": "+919800800002", "event": "connect"})).await;
    let aid = answered["call_id"].as_str().unwrap().to_string();
    call(json!({"from": "+919800800002", "event": "terminate", "call_id": aid, "duration": 42}))
        .await;
    assert_eq!(app.decided_call(&aid).await["decision"], "answered");
}
