//! Crash safety with the real binary: `kill -9` while sends are in flight and calls are
//! queued, restart, and check that every accepted call got exactly one message.

use std::time::Duration;

use serde_json::json;

use crate::served::Pair;
use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_send_loses_nothing_and_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let pair = Pair::start(
        dir.path(),
        "[outbox]\nconcurrency = 5\nretry_delays_ms = [100]\nuncertain_resend_after_seconds = 5\n[sandbox]\nstatus_delay_ms = 20\n",
    )
    .await;
    let http = reqwest::Client::new();
    let (base, sandbox) = (pair.base.clone(), pair.sandbox.clone());
    // Every send now takes 3 s to answer: the server will die with requests in flight.
    let slow = http
        .post(format!("{sandbox}/sandbox/faults"))
        .json(&json!({"phone_number_id": PNID, "latency_ms": 3000}))
        .send()
        .await
        .unwrap();
    assert!(slow.status().is_success());

    let server = pair.serve(&dir.path().join("serve1.log")).await;
    let post_call = |i: usize| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let body = json!({"call_id": format!("k-{i}"), "from": format!("+9198765{:05}", 30000 + i), "to": BUSINESS, "status": "no-answer"});
            let r = post_call(&http, &base, &body).await.unwrap();
            assert_eq!(r.status(), 202);
        }
    };
    for i in 0..8 {
        post_call(i).await;
    }
    // Five requests reach the sandbox (concurrency 5); three calls wait in the outbox.
    eventually(|| async {
        let v: serde_json::Value = http
            .get(format!("{sandbox}/sandbox/messages"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (v["data"].as_array()?.len() >= 5).then_some(())
    })
    .await;
    drop(server); // SIGKILL: no graceful shutdown, five requests in flight.

    http.post(format!("{sandbox}/sandbox/faults"))
        .json(&json!({"phone_number_id": PNID, "latency_ms": 0}))
        .send()
        .await
        .unwrap();
    let _server = pair.serve(&dir.path().join("serve2.log")).await;
    for i in 8..10 {
        post_call(i).await;
    }

    let messages = || async {
        let r = http
            .get(format!("{base}/api/v1/messages?limit=100"))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{v}");
        v["data"].as_array().unwrap().clone()
    };
    let all_delivered = |n: usize| async move {
        let rows = messages().await;
        (rows.len() == n && rows.iter().all(|m| m["state"] == "delivered")).then_some(())
    };
    eventually_within(Duration::from_secs(30), || all_delivered(10)).await;
    // Nothing can be sent a second time from here: only `queued` rows are sent, only
    // `uncertain` ones are requeued, and every row is `delivered`. A resend claimed before
    // this point would already be a request; a sentinel call posted now is sent after
    // anything still due, so once it is delivered, the sandbox has seen every request.
    post_call(10).await;
    eventually_within(Duration::from_secs(30), || all_delivered(11)).await;
    let r = http
        .get(format!("{sandbox}/sandbox/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let mut to: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        to.len(),
        11,
        "exactly one Cloud API request per call: {to:?}"
    );
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 11);
}
