//! The sandbox on its own, as any Cloud API client sees it: a capture server receives its
//! webhooks and checks every signature.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use ringback::sandbox::{Sandbox, SandboxNumber, SandboxSettings};
use serde_json::{Value, json};

use crate::support::eventually;

const TOKEN: &str = "sbx-token";
const SECRET: &str = "sbx-secret";

/// Records webhook bodies (after checking X-Hub-Signature-256); can be told to fail or stall.
#[derive(Clone, Default)]
struct Capture {
    bodies: Arc<Mutex<Vec<Value>>>,
    fail_next: Arc<Mutex<u32>>,
    /// The next N deliveries are recorded, then answered only once `release` is notified:
    /// a receiver slower than any timeout, without guessing how slow is slow enough.
    stall_next: Arc<Mutex<u32>>,
    release: Arc<tokio::sync::Notify>,
}

impl Capture {
    fn items(&self, field: &str, key: &str) -> Vec<Value> {
        let bodies = self.bodies.lock().unwrap();
        let mut out = Vec::new();
        for b in bodies.iter() {
            for e in b["entry"].as_array().into_iter().flatten() {
                for c in e["changes"].as_array().into_iter().flatten() {
                    if c["field"] == field {
                        match c["value"].get(key).and_then(Value::as_array) {
                            Some(a) => out.extend(a.iter().cloned()),
                            None if key.is_empty() => out.push(c["value"].clone()),
                            None => {}
                        }
                    }
                }
            }
        }
        out
    }

    /// The first status webhook for `wamid` (panics if none arrived).
    fn status_of(&self, wamid: &str) -> Value {
        self.items("messages", "statuses")
            .into_iter()
            .find(|s| s["id"] == wamid)
            .expect("a status webhook for the message")
    }

    fn statuses(&self, wamid: &str) -> Vec<String> {
        self.items("messages", "statuses")
            .iter()
            .filter(|s| s["id"] == wamid)
            .map(|s| s["status"].as_str().unwrap().to_string())
            .collect()
    }
}

struct Env {
    base: String,
    http: reqwest::Client,
    capture: Capture,
    _trigger: ringback::shutdown::Trigger,
}

async fn env_with(tune: impl FnOnce(&mut SandboxSettings)) -> Env {
    let capture = Capture::default();
    let c = capture.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let c = c.clone();
            async move {
                let sig = headers
                    .get("x-hub-signature-256")
                    .and_then(|v| v.to_str().ok());
                ringback::signature::verify(
                    ringback::signature::Algorithm::HmacSha256Hex,
                    "X-Hub-Signature-256",
                    sig,
                    SECRET.as_bytes(),
                    &[&body],
                )
                .expect("every sandbox webhook is signed");
                {
                    let mut fail = c.fail_next.lock().unwrap();
                    if *fail > 0 {
                        *fail -= 1;
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                }
                c.bodies
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                let stall = {
                    let mut n = c.stall_next.lock().unwrap();
                    let stall = *n > 0;
                    *n = n.saturating_sub(1);
                    stall
                };
                if stall {
                    c.release.notified().await;
                }
                StatusCode::OK
            }
        }),
    );
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hook_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(hook_listener, receiver).await });
    let number = |id: &str, display: &str| SandboxNumber {
        phone_number_id: id.into(),
        waba_id: "300000000000001".into(),
        display_number: display.into(),
        access_token: TOKEN.to_string().into(),
    };
    let mut settings = SandboxSettings::demo(
        vec![
            number("100000000000011", "447700900011"),
            number("100000000000012", "15550100012"),
        ],
        Some(hook_url),
        SECRET.to_string().into(),
    );
    settings.status_delay = Duration::from_millis(5);
    settings.template_review_delay = Duration::from_millis(5);
    settings.webhook_retry_delays = vec![Duration::from_millis(50); 5];
    tune(&mut settings);
    let (trigger, shutdown) = ringback::shutdown::channel();
    let sb = Sandbox::start(settings, shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sb.serve(listener, shutdown));
    Env {
        base,
        http: reqwest::Client::new(),
        capture,
        _trigger: trigger,
    }
}

async fn env() -> Env {
    env_with(|_| {}).await
}

impl Env {
    async fn send(&self, body: Value) -> (u16, Value) {
        self.send_as("100000000000011", TOKEN, body).await
    }

    async fn send_as(&self, pnid: &str, token: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/v23.0/{pnid}/messages", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// A control call that must succeed: any other status panics with the status and body.
    async fn control_ok(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.control(path, body).await;
        assert!(
            (200..300).contains(&status),
            "POST {path} answered {status}: {v}"
        );
        v
    }

    /// `GET path`, which must answer 200 with JSON.
    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "GET {path} answered {status}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

fn text(to: &str) -> Value {
    json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "hi"}})
}

fn template(to: &str, name: &str) -> Value {
    json!({"messaging_product": "whatsapp", "to": to, "type": "template", "template": {"name": name, "language": {"code": "en_US"}}})
}

fn wamid(v: &Value) -> String {
    v["messages"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn auth_routing_and_graph_errors() {
    let e = env().await;
    let (s, v) = e
        .send_as("100000000000011", "wrong", text("+919800000001"))
        .await;
    assert_eq!((s, v["error"]["code"].as_i64()), (401, Some(190)));
    let (s, v) = e.send_as("999", TOKEN, text("+919800000001")).await;
    assert_eq!((s, v["error"]["code"].as_i64()), (400, Some(100)));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("(#100) ")
    );
    assert!(
        v["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("999")
    );
    let r = e
        .http
        .post(format!("{}/v23.0/100000000000011/messages", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, v) = e
        .send_as(
            "100000000000012",
            TOKEN,
            template("+919800000001", "hello_world"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["messages"][0]["message_status"], "accepted");
    assert_eq!(v["contacts"][0]["wa_id"], "919800000001");
}

#[tokio::test]
async fn lifecycle_window_and_async_131047() {
    let e = env_with(|s| s.read_probability = 1.0).await;
    let (_, t) = e.send(template("+919800000002", "hello_world")).await;
    let (_, f) = e.send(text("+919800000002")).await;
    let (tw, fw) = (wamid(&t), wamid(&f));
    eventually(|| async {
        (e.capture.statuses(&tw).len() == 3 && !e.capture.statuses(&fw).is_empty()).then_some(())
    })
    .await;
    assert_eq!(e.capture.statuses(&tw), ["sent", "delivered", "read"]);
    assert_eq!(e.capture.statuses(&fw), ["failed"]);
    let failed = e.capture.status_of(&fw);
    assert_eq!(failed["errors"][0]["code"], 131047);
    let sent = e.capture.status_of(&tw);
    assert_eq!(sent["pricing"]["pricing_model"], "PMP");
    assert!(sent["timestamp"].is_string());
    // The user writes: the window opens and free-form text goes through.
    e.control_ok(
        "/sandbox/users/message",
        json!({"phone_number_id": "100000000000011", "from": "919800000002", "text": "hello"}),
    )
    .await;
    let (_, ok) = e.send(text("+919800000002")).await;
    let okw = wamid(&ok);
    eventually(|| async {
        e.capture
            .statuses(&okw)
            .contains(&"delivered".to_string())
            .then_some(())
    })
    .await;
    let inbound = e.capture.items("messages", "messages");
    assert_eq!(inbound[0]["text"]["body"], "hello");
    assert_eq!(
        e.capture.items("messages", "contacts")[0]["wa_id"],
        "919800000002"
    );
}

#[tokio::test]
async fn template_api_create_approve_send_delete() {
    let e = env().await;
    let create = json!({"name": "order_ready", "language": "en_US", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Order {{1}} is ready", "example": {"body_text": [["42"]]}}]});
    let r = e
        .http
        .post(format!(
            "{}/v23.0/300000000000001/message_templates",
            e.base
        ))
        .bearer_auth(TOKEN)
        .json(&create)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "PENDING", "{v}");
    eventually(|| async {
        e.capture
            .items("message_template_status_update", "")
            .into_iter()
            .find(|u| u["message_template_name"] == "order_ready" && u["event"] == "APPROVED")
    })
    .await;
    let list = e
        .get("/v23.0/300000000000001/message_templates?name=order_ready")
        .await;
    assert_eq!(list["data"][0]["status"], "APPROVED");
    let mut send = template("+919800000003", "order_ready");
    send["template"]["components"] =
        json!([{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]);
    assert_eq!(e.send(send.clone()).await.0, 200);
    let (s, v) = e.send(template("+919800000003", "order_ready")).await;
    assert_eq!((s, v["error"]["code"].as_i64()), (400, Some(132000)));
    // Meta pauses it: sends now fail with 132001.
    e.control_ok(
        "/sandbox/templates/status",
        json!({"name": "order_ready", "status": "PAUSED"}),
    )
    .await;
    assert_eq!(e.send(send.clone()).await.1["error"]["code"], 132001);
    let r = e
        .http
        .delete(format!(
            "{}/v23.0/300000000000001/message_templates?name=order_ready",
            e.base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["success"], true);
    let bad = json!({"name": "Bad Name", "language": "en_US", "category": "UTILITY", "components": [{"type": "BODY", "text": "x"}]});
    let r = e
        .http
        .post(format!(
            "{}/v23.0/300000000000001/message_templates",
            e.base
        ))
        .bearer_auth(TOKEN)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn throughput_pair_rate_and_portfolio_limits() {
    // 1/s, not 20/s: at 20/s a slot comes back every 50 ms, and ten sends on a loaded
    // machine can take longer than that, so the count depended on the machine's speed.
    let e = env_with(|s| {
        s.limits.throughput_per_second = 1;
        s.limits.tier = ringback::sandbox::limits::Tier::T250;
    })
    .await;
    // Warm-up that uses no throughput (refused by validation, before the limiter): the first
    // phone-number parse loads metadata, which in a debug build can outlast a slot.
    let (_, v) = e.send(template("+919800001099", "no_such_template")).await;
    assert_eq!(v["error"]["code"], 132001, "{v}");
    let mut codes = Vec::new();
    for i in 0..10 {
        let (_, v) = e
            .send(template(&format!("+9198000010{i:02}"), "hello_world"))
            .await;
        codes.push(v["error"]["code"].as_i64());
    }
    assert_eq!(
        codes.iter().filter(|c| c.is_none()).count(),
        1,
        "1/s allows a burst of 1: {codes:?}"
    );
    assert!(codes.contains(&Some(130429)));
    e.control_ok(
        "/sandbox/numbers/throughput",
        json!({"phone_number_id": "100000000000011", "per_second": 100000}),
    )
    .await;
    let mut pair = Vec::new();
    for _ in 0..46 {
        pair.push(
            e.send(template("+919800002000", "hello_world")).await.1["error"]["code"].as_i64(),
        );
    }
    assert_eq!(pair[..45].iter().filter(|c| c.is_none()).count(), 45);
    assert_eq!(pair[45], Some(131056));
    eventually(|| async {
        e.capture
            .items("phone_number_quality_update", "")
            .into_iter()
            .find(|u| u["event"] == "THROUGHPUT_UPGRADE")
    })
    .await;
    let info = e.get("/v23.0/100000000000011?fields=throughput,quality_rating,whatsapp_business_manager_messaging_limit").await;
    assert_eq!(info["throughput"]["level"], "HIGH");
    assert_eq!(
        info["whatsapp_business_manager_messaging_limit"],
        "TIER_250"
    );
    // 250 unique users outside their window, then the 251st fails asynchronously.
    for i in 0..249 {
        e.send(template(&format!("+91980003{i:04}"), "hello_world"))
            .await;
    }
    let (_, v) = e.send(template("+919800049999", "hello_world")).await;
    let last = wamid(&v);
    eventually(|| async { e.capture.statuses(&last).first().cloned() }).await;
    let failed = e.capture.status_of(&last);
    assert_eq!(failed["errors"][0]["code"], 131048, "{failed}");
}

#[tokio::test]
async fn opt_out_blocks_and_quality() {
    let e = env().await;
    let user = "919800005000";
    e.control_ok(
        "/sandbox/users/preferences",
        json!({"from": user, "value": "stop"}),
    )
    .await;
    let prefs = eventually(|| async {
        e.capture
            .items("user_preferences", "user_preferences")
            .first()
            .cloned()
    })
    .await;
    assert_eq!(prefs["value"], "stop");
    let mut offer = template(user, "weekly_offer");
    offer["template"]["components"] = json!([{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "first_name", "text": "A"}, {"type": "text", "parameter_name": "offer", "text": "B"}]}]);
    let w = wamid(&e.send(offer).await.1);
    eventually(|| async { e.capture.statuses(&w).first().cloned() }).await;
    let s = e.capture.status_of(&w);
    assert_eq!(s["errors"][0]["code"], 131050);
    // Two users block and report: with few messages sent the number turns RED.
    for u in ["919800005001", "919800005002"] {
        e.control_ok("/sandbox/users/block", json!({"from": u, "report": true}))
            .await;
    }
    eventually(|| async {
        e.capture
            .items("phone_number_quality_update", "")
            .into_iter()
            .find(|u| u["event"] == "FLAGGED")
    })
    .await;
    eventually(|| async {
        e.capture
            .items("account_update", "")
            .into_iter()
            .find(|u| u["event"] == "ACCOUNT_RESTRICTION")
    })
    .await;
    assert_eq!(
        e.get("/v23.0/100000000000011?fields=quality_rating").await["quality_rating"],
        "RED"
    );
    let w = wamid(&e.send(template("919800005001", "hello_world")).await.1);
    eventually(|| async { e.capture.statuses(&w).first().cloned() }).await;
    assert_eq!(e.capture.status_of(&w)["errors"][0]["code"], 131026);
}

#[tokio::test]
async fn simulated_users_tap_reply_send_media_call_and_answer_permission_requests() {
    let e = env().await;
    let user = "919800006000";
    e.control_ok(
        "/sandbox/users/message",
        json!({"from": user, "text": "hi"}),
    )
    .await;
    let buttons = json!({"messaging_product": "whatsapp", "to": user, "type": "interactive", "interactive": {"type": "button",
        "body": {"text": "Pick"}, "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]}}});
    let b = wamid(&e.send(buttons).await.1);
    let (s, _) = e.control("/sandbox/users/message", json!({"from": user, "type": "button_reply", "context": b, "id": "yes", "title": "Yes"})).await;
    assert_eq!(s, 200);
    let (s, v) = e
        .control(
            "/sandbox/users/message",
            json!({"from": user, "type": "list_reply", "context": "wamid.unknown"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    e.control_ok(
        "/sandbox/users/message",
        json!({"from": user, "type": "image", "caption": "my receipt"}),
    )
    .await;
    let perm = json!({"messaging_product": "whatsapp", "to": user, "type": "interactive", "interactive": {"type": "call_permission_request",
        "body": {"text": "May we call you?"}, "action": {"name": "call_permission_request"}}});
    let p = wamid(&e.send(perm).await.1);
    let (s, _) = e
        .control(
            "/sandbox/users/call-permission",
            json!({"from": user, "response": "accept"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = e
        .control(
            "/sandbox/users/call-permission",
            json!({"from": "919800006001", "response": "accept"}),
        )
        .await;
    assert_eq!(s, 409, "a reply with no request is refused");
    let c = e
        .control_ok(
            "/sandbox/users/call",
            json!({"from": "919800006002", "event": "connect"}),
        )
        .await;
    e.control_ok(
        "/sandbox/users/call",
        json!({"from": "919800006002", "event": "terminate", "call_id": c["call_id"]}),
    )
    .await;
    eventually(|| async {
        (e.capture.items("calls", "calls").len() == 2
            && e.capture.items("messages", "messages").len() == 4)
            .then_some(())
    })
    .await;
    let msgs = e.capture.items("messages", "messages");
    assert_eq!(msgs[1]["interactive"]["button_reply"]["id"], "yes");
    assert_eq!(msgs[1]["context"]["id"], b.as_str());
    assert_eq!(msgs[2]["image"]["caption"], "my receipt");
    assert_eq!(
        msgs[3]["interactive"]["call_permission_reply"]["response"],
        "accept"
    );
    assert_eq!(msgs[3]["context"]["id"], p.as_str());
    let calls = e.capture.items("calls", "calls");
    assert_eq!(calls[0]["event"], "connect");
    assert_eq!(calls[1]["status"], "FAILED");
    // A call opened the caller's window: free-form text is delivered.
    let w = wamid(&e.send(text("919800006002")).await.1);
    eventually(|| async {
        e.capture
            .statuses(&w)
            .contains(&"delivered".to_string())
            .then_some(())
    })
    .await;
    let convo = e.get(&format!("/sandbox/conversations?user={user}")).await;
    let directions: Vec<_> = convo["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(directions, ["in", "out", "in", "in", "out", "in"]);
    let read = json!({"messaging_product": "whatsapp", "status": "read", "message_id": msgs[0]["id"], "typing_indicator": {"type": "text"}});
    assert_eq!(e.send(read).await.1["success"], true);
}

#[tokio::test]
async fn webhook_retries_duplicates_and_timeouts() {
    let e = env().await;
    *e.capture.fail_next.lock().unwrap() = 2;
    let w = wamid(&e.send(template("919800007000", "hello_world")).await.1);
    eventually(|| async { (e.capture.statuses(&w).len() >= 2).then_some(()) }).await;
    let stats = e.get("/sandbox/webhooks").await;
    assert!(stats["posts_failed"].as_u64().unwrap() >= 2, "{stats}");
    e.control_ok("/sandbox/webhooks/faults", json!({"duplicate_rate": 1.0}))
        .await;
    let w = wamid(&e.send(template("919800007001", "hello_world")).await.1);
    eventually(|| async { (e.capture.statuses(&w).len() >= 4).then_some(()) }).await;
    // A receiver slower than the timeout gets the same webhook again, as with Meta.
    e.control_ok("/sandbox/webhooks/faults", json!({"timeout_ms": 100}))
        .await;
    *e.capture.stall_next.lock().unwrap() = 1;
    let w = wamid(&e.send(template("919800007002", "hello_world")).await.1);
    eventually(|| async {
        (e.capture
            .statuses(&w)
            .iter()
            .filter(|s| *s == "sent")
            .count()
            >= 2)
            .then_some(())
    })
    .await;
    e.capture.release.notify_waiters();
}

#[tokio::test]
async fn scripted_and_random_faults() {
    let e = env().await;
    e.control_ok(
        "/sandbox/faults",
        json!({"phone_number_id": "100000000000011", "errors": [{"code": 131016, "times": 2}]}),
    )
    .await;
    assert_eq!(
        e.send(template("919800008000", "hello_world")).await.1["error"]["code"],
        131016
    );
    assert_eq!(e.send(template("919800008000", "hello_world")).await.0, 500);
    assert_eq!(e.send(template("919800008000", "hello_world")).await.0, 200);
    e.control_ok(
        "/sandbox/faults",
        json!({"phone_number_id": "100000000000011", "random": {"http_5xx_rate": 1.0}}),
    )
    .await;
    assert_eq!(e.send(template("919800008001", "hello_world")).await.0, 503);
    e.control_ok("/sandbox/faults", json!({"phone_number_id": "100000000000011", "random": {"timeout_rate": 1.0, "timeout_ms": 50}})).await;
    assert_eq!(e.send(template("919800008002", "hello_world")).await.0, 504);
}

mod fidelity;

#[tokio::test]
async fn with_statuses_off_the_sandbox_only_accepts_sends() {
    // A long delay: had anything been scheduled, it would still be waiting when we look.
    let e = env_with(|s| {
        s.statuses = false;
        s.status_delay = Duration::from_secs(30);
    })
    .await;
    let (status, body) = e.send(template("+919800000001", "hello_world")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["messages"][0]["id"].as_str().is_some(), "{body}");
    // Statuses are scheduled before the response is written, so none means none.
    let stats = e.get("/sandbox/webhooks").await;
    assert_eq!(stats["pending"], 0, "no status webhook scheduled: {stats}");
}
