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

/// A thousand flow runs wait on a delay when the server is killed; after the restart each
/// one goes on once and sends once.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_1000_flow_runs_wait_then_each_sends_once() {
    const RUNS: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).unwrap();
    std::fs::write(
        flows.join("wait.toml"),
        r#"
name = "wait"
[trigger]
on = "http"
secret_env = "RINGBACK_FLOW_WAIT_SECRET"
[[steps]]
id = "later"
type = "delay"
for = "10s"
[[steps]]
id = "hello"
type = "send_template"
to = "{{ trigger.phone }}"
template = "call_follow_up"
variables = ["there"]
"#,
    )
    .unwrap();
    let mut pair = Pair::start(
        dir.path(),
        &format!(
            "[flows]\ndir = \"{}\"\n[outbox]\nthroughput_per_second = 1000\n[sandbox]\nthroughput_per_second = 1000\nstatus_delay_ms = 20\n",
            flows.display()
        ),
    )
    .await;
    pair.env
        .push(("RINGBACK_FLOW_WAIT_SECRET".into(), "wait-secret".into()));
    let http = reqwest::Client::new();
    let (base, sandbox) = (pair.base.clone(), pair.sandbox.clone());
    let server = pair.serve(&dir.path().join("serve1.log")).await;
    let started = std::time::Instant::now();
    let hook = {
        let (http, base) = (http.clone(), base.clone());
        move |i: usize| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let r = http
                    .post(format!("{base}/hooks/wait"))
                    .header("Authorization", "Bearer wait-secret")
                    .header("Idempotency-Key", format!("lead-{i}"))
                    .json(&json!({"phone": format!("+9198770{i:05}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202, "{:?}", r.text().await);
            }
        }
    };
    let mut pending = tokio::task::JoinSet::new();
    for chunk in (0..RUNS).collect::<Vec<_>>().chunks(RUNS / 16) {
        let chunk = chunk.to_vec();
        let hook = hook.clone();
        pending.spawn(async move {
            for i in chunk {
                hook(i).await;
            }
        });
    }
    while let Some(done) = pending.join_next().await {
        done.unwrap();
    }
    let sandbox_sent = || {
        let (http, sandbox) = (http.clone(), sandbox.clone());
        async move {
            let v: serde_json::Value = http
                .get(format!("{sandbox}/sandbox/messages"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["data"].as_array().unwrap().clone()
        }
    };
    // Every run was stored before its 202, and none has come out of its delay yet.
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the hooks took {:?}: the delay is over, the test proves nothing",
        started.elapsed()
    );
    assert_eq!(sandbox_sent().await.len(), 0);
    drop(server); // SIGKILL

    let _server = pair.serve(&dir.path().join("serve2.log")).await;
    let sent = eventually_within(Duration::from_secs(90), || async {
        let sent = sandbox_sent().await;
        (sent.len() >= RUNS).then_some(sent)
    })
    .await;
    // Once no run is running or sleeping, none can act again: the count below is final.
    let runs = |status: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let v: serde_json::Value = http
                .get(format!("{base}/api/v1/flow-runs?status={status}&limit=500"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["data"].as_array().unwrap().len()
        }
    };
    eventually_within(Duration::from_secs(30), || async {
        (runs("sleeping").await == 0 && runs("running").await == 0).then_some(())
    })
    .await;
    assert_eq!(runs("failed").await, 0);
    let mut to: Vec<String> = sent
        .iter()
        .map(|m| m["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(to.len(), RUNS, "one Cloud API request per run");
    to.sort();
    to.dedup();
    assert_eq!(to.len(), RUNS, "each customer once");
}
