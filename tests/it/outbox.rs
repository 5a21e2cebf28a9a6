//! The outbox against the sandbox's scripted faults, and the send API.

use std::time::Duration;

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
        // A token or account error takes the number offline; probing at every send keeps
        // the codes after it on their own paths.
        ("RINGBACK_OUTBOX__OFFLINE_PROBE_SECONDS", "0"),
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

/// Which way a send goes after Meta's error, as Meta's documentation describes the code.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Path {
    /// Transient: retried with backoff, then delivered.
    Retried,
    /// Not retried as-is: the message fails on its first attempt.
    Failed,
}

/// Cases written from Meta's error-code documentation (the "possible solutions" of each code
/// and the pair-rate rule), not from Ringback's table: if a table entry disagrees with Meta,
/// this fails. Each row: code, the HTTP status Meta documents for it, the path Meta's text
/// implies, and words the explanation shown to the operator must contain.
const DOCUMENTED: &[(i64, u16, Path, &str)] = &[
    // "Cloud API message throughput has been reached": back off and retry.
    (130429, 400, Path::Retried, ""),
    // Pair rate limit: retry after 4^n seconds.
    (131056, 400, Path::Retried, ""),
    // "Something went wrong" / service unavailable / downtime: transient.
    (131000, 500, Path::Retried, ""),
    (131016, 500, Path::Retried, ""),
    (2, 503, Path::Retried, ""),
    // Maintenance mode (a throughput upgrade takes up to a minute): retry.
    (131057, 500, Path::Retried, ""),
    // App or WABA rate limits: back off.
    (4, 429, Path::Retried, ""),
    (80007, 400, Path::Retried, ""),
    // Re-engagement: more than 24 h since the user wrote; only a template can be sent.
    (131047, 400, Path::Failed, "24 hours"),
    // Undeliverable (no WhatsApp, old app, terms not accepted): do not retry.
    (131026, 400, Path::Failed, "could not be delivered"),
    // Per-user marketing limit: "not delivered to maintain healthy ecosystem engagement";
    // resending now fails again, Meta says to wait at least 24 hours.
    (131049, 400, Path::Failed, "24 hours"),
    // The user stopped marketing messages: never resend.
    (131050, 400, Path::Failed, "stopped marketing"),
    // Access token expired or invalid: a new token is needed, a resend fails the same way.
    (190, 401, Path::Failed, "access_token"),
    (0, 401, Path::Failed, "access_token"),
    // Invalid parameter / template mismatch: the request must be fixed.
    (100, 400, Path::Failed, "parameter"),
    (132000, 400, Path::Failed, "parameters"),
    (132001, 404, Path::Failed, "template"),
    // Policy block and spam rate limit: do not retry as-is.
    (368, 403, Path::Failed, "blocked"),
    (131048, 400, Path::Failed, "spam"),
];

#[tokio::test]
async fn meta_documented_error_codes_take_the_path_meta_describes() {
    let app = spawn_app_with(&[
        ("RINGBACK_OUTBOX__RETRY_DELAYS_MS", "[20]"),
        ("RINGBACK_OUTBOX__THROUGHPUT_PER_SECOND", "1000"),
        // A token or account error takes the number offline; probing at every send keeps
        // the codes after it on their own paths.
        ("RINGBACK_OUTBOX__OFFLINE_PROBE_SECONDS", "0"),
    ])
    .await;
    for (i, &(code, http, path, explained)) in DOCUMENTED.iter().enumerate() {
        // One message at a time, so the scripted fault meets exactly its first attempt.
        app.fault(json!([{"code": code, "http_status": http}]))
            .await;
        let (status, v) = app.send_message(json!({"to": format!("+9198007{i:05}"), "template": {"name": "hello_world", "language": "en_US"}})).await;
        assert_eq!(status, 202, "{v}");
        let id = v["id"].as_str().unwrap();
        // Wait for either end, so a wrong path fails with the code and what happened.
        let m = eventually(|| async {
            let m = app.message(id).await;
            ["delivered", "read", "failed"]
                .contains(&m["state"].as_str().unwrap_or_default())
                .then_some(m)
        })
        .await;
        let ended = match m["state"].as_str() {
            Some("failed") => Path::Failed,
            _ => Path::Retried,
        };
        assert_eq!(ended, path, "code {code}: {m}");
        match path {
            Path::Retried => {
                let attempts = m["attempts"].as_array().unwrap();
                assert_eq!(attempts.len(), 2, "code {code}: one retry: {m}");
                assert_eq!(attempts[0]["outcome"], "retry", "code {code}: {m}");
                assert_eq!(attempts[0]["error_code"], code, "{m}");
                assert_eq!(attempts[1]["outcome"], "accepted", "code {code}: {m}");
                if code == 131056 {
                    // 4^n seconds after the n-th failure, n from 0: at least 1 s here,
                    // although the configured delay is 20 ms.
                    let gap = attempts[1]["started_at"].as_i64().unwrap()
                        - attempts[0]["started_at"].as_i64().unwrap();
                    assert!(gap >= 1000, "131056 waits 4^0 s, waited {gap} ms: {m}");
                }
            }
            Path::Failed => {
                assert_eq!(m["error_code"], code, "{m}");
                assert_eq!(
                    m["attempts"].as_array().unwrap().len(),
                    1,
                    "code {code} is not retried: {m}"
                );
                let explanation = m["error_explanation"].as_str().unwrap();
                assert!(
                    explanation.contains(&format!("(#{code})")) && explanation.contains(explained),
                    "code {code}: the explanation should mention {explained:?}: {m}"
                );
            }
        }
    }
}

/// A code Meta does not document, answered with a 5xx, is a server problem: retried. The
/// same unknown code with a 400 is not.
#[tokio::test]
async fn unknown_codes_follow_the_http_status() {
    let app = spawn_app_with(&[("RINGBACK_OUTBOX__RETRY_DELAYS_MS", "[20]")]).await;
    app.fault(json!([{"code": 999_001, "http_status": 502}]))
        .await;
    let (status, v) = app.send_message(json!({"to": "+919800800001", "template": {"name": "hello_world", "language": "en_US"}})).await;
    assert_eq!(status, 202, "{v}");
    let m = app
        .message_in_state(v["id"].as_str().unwrap(), "delivered")
        .await;
    assert_eq!(m["attempts"][0]["outcome"], "retry", "{m}");
    app.fault(json!([{"code": 999_002, "http_status": 400}]))
        .await;
    let (status, v) = app.send_message(json!({"to": "+919800800002", "template": {"name": "hello_world", "language": "en_US"}})).await;
    assert_eq!(status, 202, "{v}");
    let m = app
        .message_in_state(v["id"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(m["attempts"].as_array().unwrap().len(), 1, "{m}");
}

/// README: "`Retry-After` is honoured". The sandbox answers 130429 with `Retry-After: 2`;
/// the configured delay is 50 ms, so only the header explains a wait of 2 s.
#[tokio::test]
async fn retry_after_from_meta_sets_the_next_attempt() {
    let app = spawn_app().await;
    app.fault(json!([{"code": 130429, "retry_after_seconds": 2}]))
        .await;
    let (status, v) = app.send_message(json!({"to": "+919800800003", "template": {"name": "hello_world", "language": "en_US"}})).await;
    assert_eq!(status, 202, "{v}");
    let m = app
        .message_in_state(v["id"].as_str().unwrap(), "delivered")
        .await;
    let attempts = m["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{m}");
    assert_eq!(attempts[0]["outcome"], "retry", "{m}");
    let gap =
        attempts[1]["started_at"].as_i64().unwrap() - attempts[0]["started_at"].as_i64().unwrap();
    assert!(
        gap >= 2000,
        "the second attempt came {gap} ms after the first: {m}"
    );
}

/// README: a request that gets no answer in time may still have reached Meta, so it is not
/// sent again at once: the message waits `uncertain` for a status webhook, and here the slow
/// sandbox did take it, so its statuses settle it and the caller gets one message.
#[tokio::test]
async fn a_send_that_times_out_is_settled_by_its_status_and_not_sent_twice() {
    let app = spawn_app_with(&[
        ("RINGBACK_WHATSAPP__REQUEST_TIMEOUT_MS", "300"),
        ("RINGBACK_OUTBOX__UNCERTAIN_RESEND_AFTER_SECONDS", "60"),
    ])
    .await;
    // The sandbox records the message at once and answers after 1.5 s: too late. Its status
    // webhooks come 2 s after the send, so the timed-out message waits a while uncertain.
    app.sandbox_post(
        "faults",
        json!({"phone_number_id": PNID, "latency_ms": 1_500}),
    )
    .await;
    app.sandbox_post("webhooks/faults", json!({"delay_ms": 2_000}))
        .await;
    app.missed_call("slow-1", "+919876500290").await;
    let call = app.decided_call("slow-1").await;
    let id = call["message_id"].as_str().unwrap();
    let m = app.message_in_state(id, "uncertain").await;
    assert_eq!(m["attempts"][0]["outcome"], "unknown", "{m}");
    let m = app.message_in_state(id, "delivered").await;
    let attempts = m["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{m}");
    assert_eq!(attempts[0]["outcome"], "unknown", "{m}");
    assert_eq!(app.sandbox_sent().await.len(), 1, "sent once: {m}");
}

/// README: a send that never gets an answer (nor a status webhook) is given up after
/// `outbox.max_attempts`, like a send Meta keeps refusing: it cannot loop forever.
#[tokio::test]
async fn a_send_that_never_gets_an_answer_fails_after_its_last_attempt() {
    let app = spawn_app_with(&[
        ("RINGBACK_WHATSAPP__REQUEST_TIMEOUT_MS", "300"),
        ("RINGBACK_OUTBOX__UNCERTAIN_RESEND_AFTER_SECONDS", "1"),
        ("RINGBACK_OUTBOX__MAX_ATTEMPTS", "2"),
    ])
    .await;
    app.sandbox_post(
        "faults",
        json!({"phone_number_id": PNID, "latency_ms": 60_000}),
    )
    .await;
    app.sandbox_post("webhooks/faults", json!({"delay_ms": 600_000}))
        .await;
    app.missed_call("never-1", "+919876500291").await;
    let call = app.decided_call("never-1").await;
    let m = app
        .message_in_state(call["message_id"].as_str().unwrap(), "failed")
        .await;
    let attempts = m["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{m}");
    assert!(attempts.iter().all(|a| a["outcome"] == "unknown"), "{m}");
    assert_eq!(m["last_error"], ringback::store::UNCERTAIN_GIVE_UP, "{m}");
    assert_eq!(app.sandbox_sent().await.len(), 2, "{m}");
}

/// README: a send in flight when Ringback died becomes `uncertain`, and is sent again only
/// when no status webhook names it within `outbox.uncertain_resend_after_seconds`. The
/// embedded sandbox dies with the process, so the restarted server's sandbox never sends a
/// status for the first request: the resend must come, and not before the window.
#[tokio::test(flavor = "multi_thread")]
async fn an_uncertain_send_is_resent_when_no_status_arrives_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("RINGBACK_OUTBOX__UNCERTAIN_RESEND_AFTER_SECONDS", "1")];
    let first = crate::served::serve(dir.path(), &env).await;
    // The request reaches the sandbox and hangs there: Ringback dies with it in flight.
    let r = first
        .http
        .post(format!("{}/sandbox/faults", first.sandbox))
        .json(&json!({"phone_number_id": PNID, "latency_ms": 60_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The sandbox may post the `sent` status while its answer hangs; hold its webhooks back so
    // that no status reaches the first process either (a status would settle the send).
    let r = first
        .http
        .post(format!("{}/sandbox/webhooks/faults", first.sandbox))
        .json(&json!({"delay_ms": 600_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let call =
        json!({"call_id": "u-1", "from": "+919800800004", "to": BUSINESS, "status": "no-answer"});
    assert_eq!(first.call(&call).await, 202);
    let sandbox = format!("{}/sandbox/messages", first.sandbox);
    eventually_within(Duration::from_secs(30), || async {
        let v = first.get_json(&sandbox).await;
        (v["data"].as_array()?.len() == 1).then_some(())
    })
    .await;
    let first_log = first.log();
    drop(first); // SIGKILL

    let second = crate::served::serve(dir.path(), &env).await;
    let messages = format!("{}/api/v1/messages?limit=10", second.base);
    let id = second.get_json(&messages).await["data"][0]["id"]
        .as_str()
        .expect("the reply is stored")
        .to_string();
    let detail = format!("{}/api/v1/messages/{id}", second.base);
    // Slow on a loaded machine: two process starts and the 1 s window.
    let m = eventually_or(
        Duration::from_secs(30),
        || async {
            let m = second.get_json(&detail).await;
            (m["attempts"][1]["outcome"] == "accepted").then_some(m)
        },
        || format!("not resent; first:\n{first_log}\nsecond:\n{}", second.log()),
    )
    .await;
    let attempts = m["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{m}");
    assert_eq!(attempts[0]["outcome"], "interrupted", "{m}");
    assert_eq!(attempts[1]["outcome"], "accepted", "{m}");
    // Marked uncertain when the second process started (the interrupted attempt's end);
    // resent only once the 1 s window had passed without a status webhook.
    let waited =
        attempts[1]["started_at"].as_i64().unwrap() - attempts[0]["finished_at"].as_i64().unwrap();
    assert!(waited >= 1000, "resent {waited} ms after the restart: {m}");
    let resent = second
        .get_json(&format!("{}/sandbox/messages", second.sandbox))
        .await;
    assert_eq!(resent["data"].as_array().unwrap().len(), 1, "{resent}");
}
