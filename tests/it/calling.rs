//! WhatsApp Business Calling end to end: settings applied from config, a ringing call
//! rejected at N seconds and answered on WhatsApp at once, the call-permission lifecycle with
//! Meta's limits and auto-revocation, business-initiated calls and the region rules.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::support::*;

/// A business number outside the countries where business-initiated calls are unavailable.
const UK_BUSINESS: &str = "+447700900123";
const USER: &str = "+919800700001";
/// A second caller, whose call serves as a sentinel after the first one's events.
const OTHER_USER: &str = "+919800700002";
const SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n";

pub(crate) async fn calling_app(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("RINGBACK_CALLING__STATUS", "ENABLED"),
        ("RINGBACK_SENDERS__0__DISPLAY_NUMBER", UK_BUSINESS),
    ];
    env.extend_from_slice(extra);
    let app = spawn_app_with(&env).await;
    // Calling settings are applied in the background at start.
    eventually(|| async {
        let s = sandbox_settings(&app).await;
        (s["calling"]["status"] == "ENABLED").then_some(())
    })
    .await;
    app
}

async fn sandbox_settings(app: &TestApp) -> Value {
    let token = app.settings.senders[0]
        .access_token
        .expose_secret()
        .to_string();
    let r = app
        .http
        .get(format!("{}/v23.0/{PNID}/settings", app.sandbox))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "GET settings answered {status}: {body}");
    serde_json::from_str(&body).unwrap()
}

pub(crate) async fn post(app: &TestApp, url: String, body: Value) -> (u16, Value) {
    let r = app.http.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn permission(app: &TestApp, user: &str) -> Value {
    app.get_json(&format!(
        "{}/api/v1/contacts/{}/call-permission",
        app.base,
        user.trim_start_matches('+')
    ))
    .await
}

async fn place_call(app: &TestApp, to: &str) -> (u16, Value) {
    post(
        app,
        format!("{}/api/v1/calls", app.base),
        json!({"to": to, "session": {"sdp_type": "offer", "sdp": SDP}}),
    )
    .await
}

async fn outbound(app: &TestApp, wacid: &str) -> Value {
    let v = app
        .get_json(&format!("{}/api/v1/calls/outbound", app.base))
        .await;
    v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["wacid"] == wacid)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Places a call and lets the user answer (`answer` with a duration), `reject` or `ignore` it;
/// returns the call once Ringback has recorded its end.
async fn call_and(app: &TestApp, action: &str) -> Value {
    let (status, call) = place_call(app, USER).await;
    assert_eq!(status, 201, "{call}");
    let wacid = call["wacid"].as_str().unwrap().to_string();
    let (s, v) = post(
        app,
        format!("{}/sandbox/users/answer-call", app.sandbox),
        json!({"call_id": wacid, "action": action, "duration": 30}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    eventually(|| async {
        let c = outbound(app, &wacid).await;
        ["completed", "unanswered", "rejected"]
            .contains(&c["status"].as_str().unwrap_or_default())
            .then_some(c)
    })
    .await
}

/// The user writes first, so the free-form permission request is inside the window; retried
/// until Ringback has processed that message.
async fn request_permission(app: &TestApp) -> (u16, Value) {
    let url = format!("{}/api/v1/calls/permission-requests", app.base);
    let body = json!({"to": USER, "text": "May we call you about your order?"});
    eventually(|| async {
        let (s, v) = post(app, url.clone(), body.clone()).await;
        (v["error"]["code"] != "outside_window").then_some((s, v))
    })
    .await
}

#[tokio::test]
async fn calling_settings_come_from_config() {
    let app = calling_app(&[("RINGBACK_CALLING__CALLBACK_PERMISSION", "false")]).await;
    let s = sandbox_settings(&app).await;
    assert_eq!(
        s["calling"]["callback_permission_status"], "DISABLED",
        "{s}"
    );
    // The sandbox validates like Meta: one feature object, known values.
    let token = app.settings.senders[0]
        .access_token
        .expose_secret()
        .to_string();
    let r = app
        .http
        .post(format!("{}/v23.0/{PNID}/settings", app.sandbox))
        .bearer_auth(token)
        .json(&json!({"calling": {"status": "ON"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], 100, "{e}");
}

#[tokio::test]
async fn a_ringing_whatsapp_call_is_rejected_after_n_seconds_and_answered_on_whatsapp_at_once() {
    let app = calling_app(&[("RINGBACK_CALLING__REJECT_AFTER_SECONDS", "1")]).await;
    let (_, connect) = post(
        &app,
        format!("{}/sandbox/users/call", app.sandbox),
        json!({"from": USER, "event": "connect"}),
    )
    .await;
    let id = connect["call_id"].as_str().unwrap().to_string();
    // Nobody answers and the user does not hang up: Ringback rejects it at 1 s.
    let decided = app.decided_call(&id).await;
    assert_eq!(decided["decision"], "replied", "{decided}");
    let m = app
        .message_in_state(decided["message_id"].as_str().unwrap(), "delivered")
        .await;
    assert_eq!(m["kind"], "interactive", "the call opened the window: {m}");
    // Meta's own terminate (posted by the sandbox after the reject) is absorbed: one call,
    // one reply; and the sandbox no longer has the call ringing.
    // Sentinel instead of a sleep: the sandbox queued that terminate before answering the
    // reject, so a second user's call, simulated now, reaches Ringback after it through the
    // same ordered webhook queue, and Ringback processes events in arrival order. Once the
    // second call is decided, the terminate has been processed.
    let (_, later) = post(
        &app,
        format!("{}/sandbox/users/call", app.sandbox),
        json!({"from": OTHER_USER, "event": "connect"}),
    )
    .await;
    let later = later["call_id"].as_str().unwrap().to_string();
    app.decided_call(&later).await;
    let calls: Vec<Value> = app
        .calls()
        .await
        .into_iter()
        .filter(|c| c["provider_call_id"] == id.as_str())
        .collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let replies = app
        .sandbox_sent()
        .await
        .into_iter()
        .filter(|s| s["to"] == USER.trim_start_matches('+'))
        .count();
    assert_eq!(replies, 1);
    let live = app
        .get_json(&format!("{}/sandbox/calls", app.sandbox))
        .await;
    assert_eq!(live["calls"].as_array().unwrap().len(), 0, "{live}");
}

#[tokio::test]
async fn permission_lifecycle_limits_business_calls_and_auto_revocation() {
    let app = calling_app(&[]).await;
    app.user_writes(USER, "hello").await;

    // No permission yet: refused locally, with the reason, and recorded.
    let (status, e) = place_call(&app, USER).await;
    assert_eq!(status, 403, "{e}");
    assert_eq!(e["error"]["code"], "no_call_permission");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("state: none"),
        "{e}"
    );

    // Ask; a second request the same day is over Meta's 1-per-24-h limit.
    let (status, sent) = request_permission(&app).await;
    assert_eq!(status, 202, "{sent}");
    let (status, e) = request_permission(&app).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("call_permission_request_limit")),
        "{e}"
    );
    app.message_in_state(sent["id"].as_str().unwrap(), "delivered")
        .await;

    // The user accepts (temporary, 7 days).
    let (s, v) = post(
        &app,
        format!("{}/sandbox/users/call-permission", app.sandbox),
        json!({"from": USER, "response": "accept"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let p = eventually(|| async {
        let p = permission(&app, USER).await;
        (p["status"] == "accepted").then_some(p)
    })
    .await;
    assert_eq!(p["can_call"]["allowed"], true, "{p}");
    assert!(p["expires_at"].as_i64().is_some(), "temporary: {p}");

    // An answered call resets the unanswered count; then 2 unanswered → reconsider prompt,
    // 4 → revoked, and the next call is refused locally.
    let answered = call_and(&app, "answer").await;
    assert_eq!(
        (answered["status"].as_str(), answered["duration"].as_u64()),
        (Some("completed"), Some(30)),
        "{answered}"
    );
    let rejected = call_and(&app, "reject").await;
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    for _ in 0..3 {
        assert_eq!(call_and(&app, "ignore").await["status"], "unanswered");
    }
    let p = permission(&app, USER).await;
    assert_eq!(p["status"], "revoked", "{p}");
    let events: Vec<(String, String, String)> = p["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["event"], "call.permission_changed");
            (
                e["to"].as_str().unwrap().into(),
                e["source"].as_str().unwrap().into(),
                e["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    let transitions: Vec<(&str, &str)> = events
        .iter()
        .map(|(to, src, _)| (to.as_str(), src.as_str()))
        .collect();
    assert_eq!(
        transitions,
        [
            ("requested", "request"),
            ("accepted", "user_reply"),
            ("accepted", "unanswered_calls"),
            ("revoked", "unanswered_calls")
        ],
        "{events:?}"
    );
    assert!(events[2].2.contains("reconsider"), "{events:?}");
    let (status, e) = place_call(&app, USER).await;
    assert_eq!(status, 403, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("revoked"),
        "{e}"
    );
}

#[tokio::test]
async fn a_user_call_with_callback_permission_grants_a_temporary_permission() {
    let app = calling_app(&[]).await;
    let (_, connect) = post(
        &app,
        format!("{}/sandbox/users/call", app.sandbox),
        json!({"from": USER, "event": "connect"}),
    )
    .await;
    let id = connect["call_id"].as_str().unwrap().to_string();
    post(
        &app,
        format!("{}/sandbox/users/call", app.sandbox),
        json!({"from": USER, "event": "terminate", "call_id": id}),
    )
    .await;
    let p = eventually(|| async {
        let p = permission(&app, USER).await;
        (p["status"] == "accepted").then_some(p)
    })
    .await;
    assert_eq!(p["events"][0]["source"], "user_call", "{p}");
    assert_eq!(p["can_call"]["allowed"], true, "{p}");
}

#[tokio::test]
async fn business_calls_from_a_us_number_are_refused_with_the_reason() {
    let app = spawn_app().await; // BUSINESS is a +1 number
    let (status, e) = place_call(&app, USER).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("calling_unavailable")),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("United States"),
        "{e}"
    );
    let v = app
        .get_json(&format!("{}/api/v1/calls/outbound", app.base))
        .await;
    assert_eq!(v["calls"][0]["status"], "refused", "recorded: {v}");
    // Bad input gets a clear error.
    let (status, e) = post(
        &app,
        format!("{}/api/v1/calls", app.base),
        json!({"to": "12", "session": {"sdp_type": "offer", "sdp": SDP}}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_phone_number")),
        "{e}"
    );
    let (status, e) = post(
        &app,
        format!("{}/api/v1/calls", app.base),
        json!({"to": USER, "session": {"sdp_type": "answer"}}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_session")),
        "{e}"
    );
}

#[tokio::test]
async fn a_permission_reply_to_no_request_is_recorded_but_not_applied() {
    let app = calling_app(&[]).await;
    let body = wa_envelope(json!({
        "contacts": [{"profile": {"name": "Eve"}, "wa_id": "919800700009"}],
        "messages": [{"from": "919800700009", "id": "wamid.NOREQ1", "timestamp": "1790000000", "type": "interactive",
            "interactive": {"type": "call_permission_reply", "call_permission_reply": {"response": "accept", "is_permanent": true, "response_source": "user_action"}}}]
    }));
    assert_eq!(app.whatsapp(&body).await.status(), 200);
    // Processed, and kept with a note that says why nothing changed.
    let note = eventually(|| app.event_note("wamid.NOREQ1")).await;
    assert_eq!(
        note, "call permission reply for a request Ringback never sent; not applied",
        "the event's note"
    );
    let p = permission(&app, "+919800700009").await;
    assert_eq!(p["status"], "none", "{p}");
    assert_eq!(p["events"].as_array().unwrap().len(), 0, "{p}");
}

#[tokio::test]
async fn the_sandbox_refuses_call_actions_like_meta() {
    let app = spawn_app_with(&[("RINGBACK_SENDERS__0__DISPLAY_NUMBER", UK_BUSINESS)]).await;
    let token = app.settings.senders[0]
        .access_token
        .expose_secret()
        .to_string();
    let action = |body: Value| {
        let (http, url, token) = (
            app.http.clone(),
            format!("{}/v23.0/{PNID}/calls", app.sandbox),
            token.clone(),
        );
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let connect = json!({"messaging_product": "whatsapp", "to": "919800700001", "action": "connect", "session": {"sdp_type": "offer", "sdp": SDP}});
    // Calling is off by default.
    let (s, e) = action(connect.clone()).await;
    assert_eq!((s, e["error"]["code"].as_i64()), (401, Some(138000)), "{e}");
    let r = app
        .http
        .post(format!("{}/v23.0/{PNID}/settings", app.sandbox))
        .bearer_auth(&token)
        .json(&json!({"calling": {"status": "ENABLED"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No permission → 138006; unknown call → 100.
    let (s, e) = action(connect).await;
    assert_eq!((s, e["error"]["code"].as_i64()), (401, Some(138006)), "{e}");
    let (s, e) = action(
        json!({"messaging_product": "whatsapp", "call_id": "wacid.nope", "action": "reject"}),
    )
    .await;
    assert_eq!((s, e["error"]["code"].as_i64()), (400, Some(100)), "{e}");
    // A ringing user call can be rejected; Meta then sends terminate.
    let (_, c) = post(
        &app,
        format!("{}/sandbox/users/call", app.sandbox),
        json!({"from": USER, "event": "connect"}),
    )
    .await;
    let id = c["call_id"].as_str().unwrap();
    let (s, v) =
        action(json!({"messaging_product": "whatsapp", "call_id": id, "action": "reject"})).await;
    assert_eq!((s, v["success"].as_bool()), (200, Some(true)), "{v}");
    let (s, e) = action(json!({"messaging_product": "whatsapp", "call_id": id, "action": "accept", "session": {"sdp_type": "answer", "sdp": SDP}})).await;
    assert_eq!(s, 400, "the call is over: {e}");
    // The missed call still reached Ringback and was answered on WhatsApp.
    let decided = app.decided_call(id).await;
    assert_eq!(decided["decision"], "replied", "{decided}");
}
