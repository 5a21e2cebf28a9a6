//! The outbox against the sandbox's scripted faults, and the send API.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn throughput_error_130429_is_retried_then_succeeds() {
    let app = spawn_app().await;
    app.fault(json!([{"code": 130429, "times": 2}])).await;
    app.missed_call("t-1", "+919876500200").await;
    let call = app.decided_call("t-1").await;
    let m = app
        .message_in_state(call["message_id"].as_str().unwrap(), "delivered")
        .await;
    let attempts = m["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{m}");
    assert_eq!(attempts[0]["outcome"], "retry");
    assert_eq!(attempts[0]["error_code"], 130429);
    assert_eq!(attempts[2]["outcome"], "accepted");
    assert_eq!(
        app.sandbox_sent().await.len(),
        1,
        "rejected attempts are not messages"
    );
}

#[tokio::test]
async fn permanent_failure_131026_is_recorded_with_its_reason_and_not_retried() {
    let app = spawn_app().await;
    app.fault(json!([{"code": 131026}])).await;
    app.missed_call("p-1", "+919876500201").await;
    let call = app.decided_call("p-1").await;
    let m = app
        .message_in_state(call["message_id"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(m["error_code"], 131026);
    assert_eq!(m["attempts"].as_array().unwrap().len(), 1);
    assert!(
        m["last_error"]
            .as_str()
            .unwrap()
            .contains("Message undeliverable"),
        "{m}"
    );
    assert!(
        m["error_explanation"].as_str().unwrap().contains("Fix:"),
        "{m}"
    );
}

#[tokio::test]
async fn retryable_failures_give_up_after_max_attempts() {
    let app = spawn_app_with(&[("RINGBACK_OUTBOX__MAX_ATTEMPTS", "2")]).await;
    app.fault(json!([{"code": 131000, "times": 5}])).await;
    app.missed_call("g-1", "+919876500202").await;
    let call = app.decided_call("g-1").await;
    let m = app
        .message_in_state(call["message_id"].as_str().unwrap(), "failed")
        .await;
    assert!(
        m["last_error"]
            .as_str()
            .unwrap()
            .contains("gave up after 2 attempts"),
        "{m}"
    );
}

#[tokio::test]
async fn send_api_honours_idempotency_keys_and_validates_input() {
    let app = spawn_app().await;
    let send = |key: &'static str, body: serde_json::Value| {
        let http = app.http.clone();
        let url = format!("{}/api/v1/messages", app.base);
        async move {
            http.post(url)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let body =
        json!({"to": "+919876500204", "template": {"name": "hello_world", "language": "en_US"}});
    let first = send("k1", body.clone()).await;
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.unwrap();
    let second = send("k1", body).await;
    assert_eq!(second.status(), 200);
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["duplicate"], true);
    app.message_in_state(first["id"].as_str().unwrap(), "delivered")
        .await;
    assert_eq!(app.sandbox_sent().await.len(), 1);

    for (body, code) in [
        (
            json!({"to": "98765 00204", "text": "x"}),
            "invalid_phone_number",
        ),
        (
            json!({"to": "+919876500204", "text": "x".repeat(4097)}),
            "text_length",
        ),
        (json!({"to": "+919876500204"}), "message_kind"),
        (
            json!({"to": "+919876500204", "text": "x", "from": "42"}),
            "unknown_sender",
        ),
    ] {
        let r = send("k2", body).await;
        assert_eq!(r.status(), 400);
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], code, "{e}");
    }
}

/// Every Meta error code in Ringback's table, injected by the sandbox on a message's first
/// attempt: codes to retry or wait on are retried (and the message then delivered), every
/// other code fails the message at once with the code and its explanation.
#[tokio::test]
async fn every_meta_error_code_takes_its_documented_path() {
    use ringback::cloud_api::errors::{Action, TABLE};
    let app = spawn_app_with(&[
        ("RINGBACK_OUTBOX__RETRY_DELAYS_MS", "[20]"),
        ("RINGBACK_OUTBOX__THROUGHPUT_PER_SECOND", "1000"),
    ])
    .await;
    for (i, info) in TABLE.iter().enumerate() {
        // One message at a time, so the scripted fault meets exactly its first attempt.
        app.fault(json!([{"code": info.code, "http_status": 400}]))
            .await;
        let (status, v) = app.send_message(json!({"to": format!("+9198006{i:05}"), "template": {"name": "hello_world", "language": "en_US"}})).await;
        assert_eq!(status, 202, "{v}");
        let id = v["id"].as_str().unwrap();
        let code = info.code;
        match info.action {
            Action::Retry | Action::Wait => {
                let m = app.message_in_state(id, "delivered").await;
                assert_eq!(
                    (
                        m["attempts"][0]["outcome"].as_str(),
                        m["attempts"][0]["error_code"].as_i64()
                    ),
                    (Some("retry"), Some(code)),
                    "{m}"
                );
            }
            _ => {
                let m = app.message_in_state(id, "failed").await;
                assert_eq!(m["error_code"], code, "{m}");
                assert!(
                    m["error_explanation"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("#{code}")),
                    "{m}"
                );
                assert_eq!(
                    m["attempts"].as_array().unwrap().len(),
                    1,
                    "code {code} is not retried: {m}"
                );
            }
        }
    }
}
