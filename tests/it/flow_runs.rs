//! Flows run by the server: triggers from events and hooks, sends through the outbox, waits
//! for replies (taken by a reply and by a timeout), failures that emit `flow.failed`, cancel and
//! rerun, flows posted through the API. Both backends.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// A server whose `flows.dir` holds `files` (name, TOML); `extra` are more overrides.
async fn app_with_flows(
    files: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().display().to_string();
    let mut env = vec![("RINGBACK_FLOWS__DIR", path.as_str())];
    env.extend_from_slice(extra);
    (spawn_app_with(&env).await, dir)
}

/// Waits until run `id` has `status`, and returns it with its timeline.
async fn run_in(app: &TestApp, id: &str, status: &str) -> Value {
    let url = format!("{}/api/v1/flow-runs/{id}", app.base);
    let last = std::sync::Mutex::new(Value::Null);
    eventually_or(
        Duration::from_secs(15),
        || async {
            let run = app.get_json(&url).await;
            *last.lock().unwrap() = run.clone();
            (run["status"] == status).then_some(run)
        },
        || format!("run {id} never became {status}: {}", last.lock().unwrap()),
    )
    .await
}

/// Message `id` once the Cloud API (the sandbox) has accepted it.
async fn message_out(app: &TestApp, id: &str) -> Value {
    eventually(|| async {
        let m = app.message(id).await;
        ["sent", "delivered", "read"]
            .contains(&m["state"].as_str().unwrap_or_default())
            .then_some(m)
    })
    .await
}

/// Waits until a message of `phone` is published (its window is open then).
async fn received(app: &TestApp, phone: &str) {
    eventually(|| async {
        let events = app
            .list(&format!(
                "{}/api/v1/events?types=message.received",
                app.base
            ))
            .await;
        events
            .iter()
            .any(|e| e["data"]["customer"]["phone"] == phone)
            .then_some(())
    })
    .await
}

/// The runs of `flow`, once there are `n`.
async fn runs_of(app: &TestApp, flow: &str, n: usize) -> Vec<Value> {
    eventually(|| async {
        let runs = app
            .list(&format!("{}/api/v1/flows/{flow}/runs", app.base))
            .await;
        (runs.len() >= n).then_some(runs)
    })
    .await
}

async fn post_json(
    app: &TestApp,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let r = app
        .raw_post(path, serde_json::to_vec(&body).unwrap(), headers)
        .await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The shipped example: the built-in reply written as a flow.
const MISSED: &str = include_str!("../../examples/flows/missed-call-reply.toml");

/// The one step `step` of run `id`'s timeline that acted.
fn action<'a>(run: &'a Value, step: &str) -> &'a Value {
    run["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["step"] == step && l["action_key"].is_string())
        .unwrap_or_else(|| panic!("no action of {step} on the timeline: {run}"))
}

#[tokio::test]
async fn the_missed_call_reply_as_a_flow_replaces_the_builtin_one() {
    let (app, _flows) = app_with_flows(
        &[("missed-call-reply.toml", MISSED)],
        &[("RINGBACK_MISSED_CALL__REPLY__BUILTIN", "false")],
    )
    .await;
    // A caller who never wrote: the window is closed, the fallback template goes.
    let r = app.missed_call("flow-c1", "+919876500101").await;
    assert_eq!(r.status(), 202);
    let call = app.decided_call("flow-c1").await;
    assert_eq!(call["decision"], "skipped", "{call}");
    assert!(
        call["reason"]
            .as_str()
            .unwrap()
            .contains("flows on call.missed"),
        "{call}"
    );
    let runs = runs_of(&app, "missed-call-reply", 1).await;
    let run = run_in(&app, runs[0]["id"].as_str().unwrap(), "done").await;
    assert_eq!(run["contact"], "+919876500101");
    let send = action(&run, "reply");
    assert_eq!(send["output"]["status"], "queued", "{send}");
    assert_eq!(send["output"]["type"], "template", "{send}");
    let id = send["output"]["message_id"].as_str().unwrap().to_string();
    let message = message_out(&app, &id).await;
    assert_eq!(message["body"]["template"]["name"], "missed_call_followup");

    // A caller who wrote today: free-form text.
    app.user_writes("+919876500102", "hello?").await;
    received(&app, "+919876500102").await;
    app.missed_call("flow-c2", "+919876500102").await;
    let runs = runs_of(&app, "missed-call-reply", 2).await;
    let second = runs
        .iter()
        .find(|r| r["contact"] == "+919876500102")
        .expect("a run for the second caller");
    let run = run_in(&app, second["id"].as_str().unwrap(), "done").await;
    let send = action(&run, "reply");
    assert_eq!(send["output"]["type"], "text", "{send}");

    // One message per call, and none from the built-in reply.
    let sent = eventually(|| async {
        let s = app.sandbox_sent().await;
        (s.len() >= 2).then_some(s)
    })
    .await;
    assert_eq!(sent.len(), 2, "{sent:?}");
}

const ASK: &str = r#"
name = "ask"
[trigger]
on = "http"
secret_env = "RINGBACK_FLOW_ASK_SECRET"
[[steps]]
id = "welcome"
type = "send_template"
to = "{{ trigger.phone }}"
template = "lead_welcome"
variables = ["{{ trigger.name }}", "solar panels"]
[[steps]]
id = "answer"
type = "wait_for_reply"
timeout = "2s"
on_timeout = "quiet"
[[steps]]
id = "thanks"
type = "send_text"
text = "Thanks {{ trigger.name }}, you wrote: {{ steps.answer.text }}"
next = "end"
[[steps]]
id = "quiet"
type = "set"
vars = { outcome = "no reply" }
"#;

const SECRET: (&str, &str) = ("RINGBACK_FLOW_ASK_SECRET", "hook-secret-1");

#[tokio::test]
async fn a_hook_starts_a_run_that_waits_for_a_reply_or_times_out() {
    let (app, _flows) = app_with_flows(&[("ask.toml", ASK)], &[SECRET]).await;
    let auth = "Bearer hook-secret-1";
    let (status, replied) = post_json(
        &app,
        "/hooks/ask",
        json!({"phone": "+919876500201", "name": "Ravi"}),
        &[("Authorization", auth)],
    )
    .await;
    assert_eq!(status, 202, "{replied}");
    let replied = replied["run_id"].as_str().unwrap().to_string();
    // Signed instead of sent: the same secret, as the generic call webhook signs.
    let body = serde_json::to_vec(&json!({"phone": "+919876500202", "name": "Mia"})).unwrap();
    let sig = ringback::signature::sign_sha256_hex(SECRET.1.as_bytes(), &body);
    let r = app
        .raw_post("/hooks/ask", body, &[("X-Ringback-Signature", &sig)])
        .await;
    assert_eq!(r.status(), 202);
    let silent: Value = r.json().await.unwrap();
    let silent = silent["run_id"].as_str().unwrap().to_string();

    run_in(&app, &replied, "awaiting_reply").await;
    app.user_writes("+919876500201", "How much for 5 kW?").await;
    let run = run_in(&app, &replied, "done").await;
    assert_eq!(
        run["steps"]["answer"]["text"], "How much for 5 kW?",
        "{run}"
    );
    assert_eq!(run["steps"]["answer"]["timed_out"], false);
    let id = run["steps"]["thanks"]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let thanks = message_out(&app, &id).await;
    assert_eq!(thanks["kind"], "text", "{thanks}");

    let run = run_in(&app, &silent, "done").await;
    assert_eq!(run["steps"]["answer"]["timed_out"], true, "{run}");
    assert_eq!(run["vars"]["outcome"], "no reply");
    assert!(
        run["steps"]["thanks"].is_null(),
        "no thanks without a reply: {run}"
    );
}

#[tokio::test]
async fn a_hook_refuses_callers_without_the_secret_and_starts_one_run_per_key() {
    let (app, _flows) = app_with_flows(&[("ask.toml", ASK)], &[SECRET]).await;
    let lead = json!({"phone": "+919876500301", "name": "Ana"});
    let (status, body) = post_json(&app, "/hooks/ask", lead.clone(), &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("RINGBACK_FLOW_ASK_SECRET")
    );
    let sig = "sha256=00";
    let (status, body) = post_json(
        &app,
        "/hooks/ask",
        lead.clone(),
        &[("X-Ringback-Signature", sig)],
    )
    .await;
    assert_eq!(status, 401, "a wrong signature: {body}");

    let auth = [
        ("Authorization", "Bearer hook-secret-1"),
        ("Idempotency-Key", "form-77"),
    ];
    let (status, first) = post_json(&app, "/hooks/ask", lead.clone(), &auth).await;
    assert_eq!(status, 202, "{first}");
    let (status, again) = post_json(&app, "/hooks/ask", lead.clone(), &auth).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["run_id"], first["run_id"]);

    let (status, body) = post_json(&app, "/hooks/nope", lead.clone(), &auth).await;
    assert_eq!(status, 404, "{body}");
    let r = app
        .raw_post(
            "/hooks/ask",
            b"{not json".to_vec(),
            &[("Authorization", "Bearer hook-secret-1")],
        )
        .await;
    assert_eq!(r.status(), 400);
    let big = vec![b' '; 100_000];
    let r = app
        .raw_post(
            "/hooks/ask",
            big,
            &[("Authorization", "Bearer hook-secret-1")],
        )
        .await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["code"].is_string(), "{body}");
    assert_eq!(
        runs_of(&app, "ask", 1).await.len(),
        1,
        "one run for the key, none for the refusals"
    );
}

/// Why `ringback::app::start` refused, with `flows` in its flows directory.
async fn refusal(flows: &[(&str, &str)], extra: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in flows {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let store = tempfile::tempdir().unwrap();
    let mut env = base_env();
    env.extend(store_env(store.path()).await);
    env.push((
        "RINGBACK_FLOWS__DIR".into(),
        dir.path().display().to_string(),
    ));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = ringback::config::Config::load_with_env(None, env)
        .unwrap()
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    match ringback::app::start(settings, listener, Some(sb)).await {
        Err(e) => e.to_string(),
        Ok(running) => {
            running.stop().await;
            panic!("the server started with {flows:?}");
        }
    }
}

#[tokio::test]
async fn a_server_refuses_to_start_with_a_broken_flow_or_a_missing_hook_secret() {
    let e = refusal(&[("ask.toml", ASK)], &[]).await;
    assert!(e.contains("RINGBACK_FLOW_ASK_SECRET is not set"), "{e}");
    let broken = ASK.replace("lead_welcome", "lead_welcom");
    let e = refusal(&[("ask.toml", &broken)], &[SECRET]).await;
    assert!(
        e.contains("ask.toml:") && e.contains("step 'welcome'") && e.contains("lead_welcom"),
        "{e}"
    );
}

const STRICT: &str = r#"
name = "strict"
[trigger]
on = "manual"
[[steps]]
id = "note"
type = "send_text"
to = "{{ trigger.phone }}"
text = "Your order {{ trigger.order }} is ready."
retry = { attempts = 1, wait = "1s" }
"#;

#[tokio::test]
async fn a_refused_send_fails_the_run_with_flow_failed_and_a_rerun_goes_on() {
    let (app, _flows) = app_with_flows(&[("strict.toml", STRICT)], &[]).await;
    let (status, started) = post_json(
        &app,
        "/api/v1/flows/strict/runs",
        json!({"phone": "+919876500401", "order": "A-17"}),
        &[],
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let id = started["run_id"].as_str().unwrap().to_string();
    // Free-form text with the customer's window closed: the policy refuses it, as for an API send.
    let run = run_in(&app, &id, "failed").await;
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("outside_window"), "{run}");
    let failed = eventually(|| async {
        let events = app
            .list(&format!("{}/api/v1/events?types=flow.failed", app.base))
            .await;
        events
            .into_iter()
            .find(|e| e["data"]["run_id"] == id.as_str())
    })
    .await;
    assert_eq!(failed["data"]["flow"], "strict");
    assert_eq!(failed["data"]["step"], "note");
    assert_eq!(failed["data"]["contact"], "+919876500401");

    // A running run cannot be rerun; a failed one can, once the customer wrote.
    app.user_writes("+919876500401", "is it ready?").await;
    received(&app, "+919876500401").await;
    let (status, rerun) = post_json(
        &app,
        &format!("/api/v1/flow-runs/{id}/rerun"),
        json!({}),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{rerun}");
    let run = run_in(&app, &id, "done").await;
    let timeline = run["timeline"].as_array().unwrap();
    let attempts: Vec<&Value> = timeline
        .iter()
        .filter(|l| l["step"] == "note" && l["action_key"].is_string())
        .collect();
    assert_eq!(
        attempts.len(),
        2,
        "the refused attempt and the rerun: {timeline:?}"
    );
    assert_ne!(attempts[0]["action_key"], attempts[1]["action_key"]);
    let (status, again) = post_json(
        &app,
        &format!("/api/v1/flow-runs/{id}/rerun"),
        json!({}),
        &[],
    )
    .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "wrong_state");
}

const SLOW: &str = r#"
name = "slow"
[trigger]
on = "manual"
[[steps]]
id = "later"
type = "delay"
for = "1h"
[[steps]]
id = "hello"
type = "send_template"
to = "{{ trigger.phone }}"
template = "call_follow_up"
variables = ["there"]
"#;

#[tokio::test]
async fn flows_are_posted_through_the_api_and_runs_are_cancelled() {
    let app = spawn_app().await;
    let (status, body) = post_json(&app, "/api/v1/flows", json!({"source": SLOW}), &[]).await;
    assert_eq!(status, 201, "{body}");
    let version = body["version"].as_str().unwrap().to_string();
    assert!(version.starts_with("slow@"), "{version}");
    let bad = SLOW.replace("call_follow_up", "call_folow_up");
    let (status, body) = post_json(&app, "/api/v1/flows", json!({"source": bad}), &[]).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_flow");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("call_folow_up"),
        "{body}"
    );
    let flows = app.list(&format!("{}/api/v1/flows", app.base)).await;
    assert_eq!(flows.len(), 1);
    assert_eq!(
        flows[0]["version"],
        version.as_str(),
        "the refused version did not replace it"
    );

    let (status, started) = post_json(
        &app,
        "/api/v1/flows/slow/runs",
        json!({"phone": "+919876500501"}),
        &[],
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let id = started["run_id"].as_str().unwrap().to_string();
    let run = run_in(&app, &id, "sleeping").await;
    assert!(run["due_at"].as_i64().unwrap() > ringback::time::now_ms() + 3_500_000);
    assert_eq!(run["version"], version.as_str());
    // The flow is edited while the run waits: the run keeps its version, new runs take the new.
    let edited = SLOW.replace(r#"["there"]"#, r#"["friend"]"#);
    let (status, body) = post_json(&app, "/api/v1/flows", json!({"source": edited}), &[]).await;
    assert_eq!(status, 201, "{body}");
    let newer = body["version"].as_str().unwrap().to_string();
    assert_ne!(newer, version);
    let run = app
        .get_json(&format!("{}/api/v1/flow-runs/{id}", app.base))
        .await;
    assert_eq!(run["version"], version.as_str(), "{run}");
    let (_, later) = post_json(
        &app,
        "/api/v1/flows/slow/runs",
        json!({"phone": "+919876500502"}),
        &[],
    )
    .await;
    let later = run_in(&app, later["run_id"].as_str().unwrap(), "sleeping").await;
    assert_eq!(later["version"], newer.as_str());
    let (status, cancelled) = post_json(
        &app,
        &format!("/api/v1/flow-runs/{id}/cancel"),
        json!({}),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["due_at"].is_null());
    let (status, again) = post_json(
        &app,
        &format!("/api/v1/flow-runs/{id}/cancel"),
        json!({}),
        &[],
    )
    .await;
    assert_eq!(status, 409, "{again}");

    let r = app
        .http
        .get(format!("{}/api/v1/flow-runs?status=sideways", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (status, body) = post_json(&app, "/api/v1/flows/none/runs", json!({}), &[]).await;
    assert_eq!(status, 404, "{body}");
}

const NIGHTLY: &str = r#"
name = "nightly"
[trigger]
on = "schedule"
cron = "30 2 * * *"
time_zone = "Europe/Berlin"
[[steps]]
id = "mark"
type = "set"
vars = { at = "{{ trigger.scheduled_at }}" }
"#;

/// The schedule fires on a driven clock across Berlin's autumn change (02:00-03:00 happens
/// twice on 2026-10-25): 02:30 fires once that night, and once the next, each time once
/// however often the same window is looked at.
#[tokio::test]
async fn a_schedule_fires_once_at_each_time_across_a_dst_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = ringback::store::open(&store_url(dir.path()).await)
        .await
        .unwrap();
    let catalog = ringback::flows::catalog::Catalog::new(store.clone(), Vec::new());
    catalog
        .put(NIGHTLY, "nightly", "test", None, 0)
        .await
        .unwrap();
    let schedules = ringback::flows::follower::Schedules {
        store: store.clone(),
        catalog,
        wake: Default::default(),
    };
    let ms = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    let (after, now) = (ms("2026-10-24T12:00:00Z"), ms("2026-10-26T12:00:00Z"));
    let (upto, next) = schedules.fire_due(after, now).await.unwrap();
    assert_eq!(upto, now);
    // 2026-10-27 02:30 CET.
    assert_eq!(next, Some(ms("2026-10-27T01:30:00Z")));
    // Looked at again (a restart, a second node): nothing more.
    schedules.fire_due(after, now).await.unwrap();
    let runs = store
        .runs(&ringback::store::RunQuery {
            flow: Some("nightly".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut keys: Vec<&str> = runs.iter().map(|r| r.trigger_key.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "schedule:nightly:2026-10-25T00:30:00Z",
            "schedule:nightly:2026-10-26T01:30:00Z"
        ],
        "02:30 CEST on the night of the change, 02:30 CET the next"
    );
}

#[tokio::test]
async fn a_schedule_every_second_starts_runs_in_the_server() {
    let tick = NIGHTLY
        .replace("30 2 * * *", "* * * * * *")
        .replace("nightly", "tick");
    let (app, _flows) = app_with_flows(&[("tick.toml", &tick)], &[]).await;
    let runs = runs_of(&app, "tick", 2).await;
    let mut at: Vec<&str> = runs
        .iter()
        .map(|r| r["trigger"]["scheduled_at"].as_str().unwrap())
        .collect();
    at.dedup();
    assert_eq!(at.len(), runs.len(), "one run per second: {runs:?}");
    let done = run_in(&app, runs[0]["id"].as_str().unwrap(), "done").await;
    assert_eq!(done["vars"]["at"], done["trigger"]["scheduled_at"]);
}

/// A flow on call.missed that sends the caller two templates, `{tag}1` then `{tag}2`.
fn two_sends(tag: &str) -> String {
    format!(
        r#"
name = "two-{tag}"
[trigger]
on = "call.missed"
[[steps]]
id = "first"
type = "send_template"
template = "call_follow_up"
variables = ["{tag}1"]
[[steps]]
id = "second"
type = "send_template"
template = "call_follow_up"
variables = ["{tag}2"]
"#
    )
}

/// Two runs for one customer started by the same call: one's messages are all queued before
/// the other's first, never interleaved.
#[tokio::test]
async fn runs_of_one_customer_do_not_interleave_their_sends() {
    let (a, b) = (two_sends("a"), two_sends("b"));
    let (app, _flows) = app_with_flows(&[("a.toml", &a), ("b.toml", &b)], &[]).await;
    app.missed_call("two-c1", "+919876500601").await;
    let mut queued: Vec<(i64, String, String)> = Vec::new();
    for flow in ["two-a", "two-b"] {
        let runs = runs_of(&app, flow, 1).await;
        let run = run_in(&app, runs[0]["id"].as_str().unwrap(), "done").await;
        for step in ["first", "second"] {
            let line = action(&run, step);
            let id = line["output"]["message_id"].as_str().unwrap().to_string();
            let tag = line["input"]["template"]["variables"][0]
                .as_str()
                .unwrap()
                .to_string();
            let m = app.message(&id).await;
            queued.push((m["created_at"].as_i64().unwrap(), id, tag));
        }
    }
    queued.sort();
    let order: Vec<&str> = queued.iter().map(|(_, _, t)| t.as_str()).collect();
    assert!(
        order == ["a1", "a2", "b1", "b2"] || order == ["b1", "b2", "a1", "a2"],
        "{order:?}"
    );
}

const CRM: &str = r#"
name = "crm"
[trigger]
on = "manual"
[[steps]]
id = "post"
type = "http"
method = "POST"
url = "{{ trigger.url }}"
body = { name = "{{ trigger.name }}" }
retry = { attempts = 2, wait = "1s" }
"#;

/// An HTTP step retries a 503, then records the answer; a private address is refused unless
/// `flows.allow_private_addresses` (as for webhook endpoints).
#[tokio::test]
async fn an_http_step_retries_and_private_addresses_are_refused_by_default() {
    let receiver = crate::receiver::Receiver::start(1).await;
    let (app, _flows) = app_with_flows(
        &[("crm.toml", CRM)],
        &[("RINGBACK_FLOWS__ALLOW_PRIVATE_ADDRESSES", "true")],
    )
    .await;
    let input = json!({"url": receiver.url, "name": "Ravi"});
    let (status, started) = post_json(&app, "/api/v1/flows/crm/runs", input.clone(), &[]).await;
    assert_eq!(status, 202, "{started}");
    let run = run_in(&app, started["run_id"].as_str().unwrap(), "done").await;
    assert_eq!(run["steps"]["post"]["status"], 204, "{run}");
    let timeline = run["timeline"].as_array().unwrap();
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["http", "retry_wait", "http", "done"], "{run}");
    assert!(
        timeline[0]["error"]
            .as_str()
            .unwrap()
            .contains("http_status")
    );
    assert_eq!(receiver.delivered(), [json!({"name": "Ravi"})]);

    let (strict, _flows) = app_with_flows(&[("crm.toml", CRM)], &[]).await;
    let (_, started) = post_json(&strict, "/api/v1/flows/crm/runs", input, &[]).await;
    let run = run_in(&strict, started["run_id"].as_str().unwrap(), "failed").await;
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("http_refused"), "{run}");
    assert_eq!(
        receiver.all().len(),
        2,
        "the refused request was never made"
    );
}

/// A run of flow `f` started at `at`, as the store holds it.
fn running_run(id: &str, at: i64) -> ringback::store::NewRun {
    ringback::store::NewRun {
        id: id.into(),
        flow: "f".into(),
        version: "f@0".into(),
        trigger_key: id.into(),
        contact: None,
        status: "running".into(),
        due_at: at,
        state: "{}".into(),
        created_at: at,
    }
}

/// Retention prunes runs that ended, with their timelines, and never a run still waiting.
#[tokio::test]
async fn retention_prunes_ended_runs_and_keeps_waiting_ones() {
    use ringback::store::{RowKind, RunSaved, RunUpdate, StepLine};
    let dir = tempfile::tempdir().unwrap();
    let store = ringback::store::open(&store_url(dir.path()).await)
        .await
        .unwrap();
    let runs = [
        running_run("old-done", 1_000),
        running_run("new-done", 1_000),
        running_run("old-waiting", 1_000),
    ];
    store.start_runs(&runs, &[], None).await.unwrap();
    let line = StepLine {
        seq: 0,
        at: 1_000,
        step: "s".into(),
        kind: "done".into(),
        action_key: None,
        input: None,
        output: None,
        error: None,
    };
    for (id, status, due_at, at) in [
        ("old-done", "done", None, 2_000),
        ("new-done", "failed", None, 9_000),
        ("old-waiting", "sleeping", Some(99_000), 2_000),
    ] {
        let update = RunUpdate {
            id: id.into(),
            status: status.into(),
            due_at,
            state: "{}".into(),
            error: None,
            at,
            message: None,
        };
        assert_eq!(
            store
                .save_run(update, vec![line.clone()], None)
                .await
                .unwrap(),
            RunSaved::Saved
        );
    }
    assert_eq!(store.prune(RowKind::FlowRuns, 5_000, 100).await.unwrap(), 1);
    assert!(store.run("old-done").await.unwrap().is_none());
    assert!(store.run_timeline("old-done").await.unwrap().is_empty());
    assert!(store.run("new-done").await.unwrap().is_some());
    assert_eq!(store.run_timeline("old-waiting").await.unwrap().len(), 1);
    assert_eq!(
        store.run("old-waiting").await.unwrap().unwrap().status,
        "sleeping"
    );
}

/// A send's message is written with its run's save, in the same transaction: a run cancelled
/// meanwhile writes neither, and a key that holds a message already writes nothing.
#[tokio::test]
async fn a_runs_message_is_written_with_its_save_and_not_for_a_cancelled_run() {
    use ringback::store::{NewMessage, RunSaved, RunUpdate};
    let dir = tempfile::tempdir().unwrap();
    let store = ringback::store::open(&store_url(dir.path()).await)
        .await
        .unwrap();
    let runs = ["kept", "cancelled", "taken"].map(|id| running_run(id, 1_000));
    store.start_runs(&runs, &[], None).await.unwrap();
    assert!(
        store
            .cancel_run("cancelled", "a person", 1_500)
            .await
            .unwrap()
    );
    let message = |id: &str| NewMessage {
        id: format!("m-{id}"),
        sender_id: PNID.into(),
        to: "+14155550100".into(),
        kind: "text".into(),
        body: json!({"messaging_product": "whatsapp", "to": "14155550100", "type": "text", "text": {"body": "hi"}}),
        idempotency_key: Some(format!("flow:{id}:1")),
        reason: "sent by a flow".into(),
        created_at: 2_000,
    };
    // An earlier attempt queued this one's message before a crash.
    let earlier = NewMessage {
        id: "m-earlier".into(),
        ..message("taken")
    };
    store.enqueue(&earlier).await.unwrap();
    for (id, wanted) in [
        ("kept", RunSaved::Saved),
        ("cancelled", RunSaved::Cancelled),
        ("taken", RunSaved::KeyTaken),
    ] {
        let update = RunUpdate {
            id: id.into(),
            status: "done".into(),
            due_at: None,
            state: "{}".into(),
            error: None,
            at: 2_000,
            message: Some(message(id)),
        };
        let saved = store.save_run(update, vec![], None).await.unwrap();
        assert_eq!(saved, wanted, "run {id}");
    }
    let key = |id: &str| format!("flow:{id}:1");
    assert_eq!(
        store
            .message_by_idempotency_key(&key("kept"))
            .await
            .unwrap(),
        Some("m-kept".to_string())
    );
    assert_eq!(
        store
            .message_by_idempotency_key(&key("cancelled"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .message_by_idempotency_key(&key("taken"))
            .await
            .unwrap(),
        Some("m-earlier".to_string())
    );
    assert_eq!(
        store.run("taken").await.unwrap().unwrap().status,
        "running",
        "nothing of the refused save is written"
    );
}

const LATER: &str = r#"
name = "later"
[trigger]
on = "manual"
[[steps]]
id = "wait"
type = "delay"
for = "2s"
[[steps]]
id = "hello"
type = "send_template"
to = "{{ trigger.phone }}"
template = "call_follow_up"
variables = ["there"]
"#;

/// A send whose idempotency key holds a message already (as after a crash between queueing
/// it and storing the step, which a call-permission request or a send opening a free entry
/// point can leave) sends nothing more, and the step names the message that holds the key.
#[tokio::test]
async fn a_send_whose_key_holds_a_message_names_that_message() {
    let (app, _flows) = app_with_flows(&[("later.toml", LATER)], &[]).await;
    let phone = "+919876500701";
    let (status, started) = post_json(
        &app,
        "/api/v1/flows/later/runs",
        json!({"phone": phone}),
        &[],
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let id = started["run_id"].as_str().unwrap().to_string();
    run_in(&app, &id, "sleeping").await;
    // The message an earlier attempt of the step queued before a crash: the run's first
    // action, step `hello`, first attempt.
    let store = app.running.as_ref().unwrap().store.clone();
    let earlier = "msg_queued_before_the_crash";
    let queued = store
        .enqueue(&ringback::store::NewMessage {
            id: earlier.into(),
            sender_id: PNID.into(),
            to: phone.into(),
            kind: "template".into(),
            body: json!({"messaging_product": "whatsapp", "to": &phone[1..], "type": "template",
                         "template": {"name": "call_follow_up", "language": {"code": "en_US"},
                                      "components": [{"type": "body", "parameters": [{"type": "text", "text": "there"}]}]}}),
            idempotency_key: Some(format!("flow:{id}:1:hello#1")),
            reason: "sent by a flow".into(),
            created_at: ringback::time::now_ms(),
        })
        .await
        .unwrap();
    assert_eq!(queued, ringback::store::Enqueued::New(earlier.into()));
    let run = run_in(&app, &id, "done").await;
    let hello = action(&run, "hello");
    assert_eq!(hello["output"]["message_id"], earlier, "{run}");
    assert_eq!(hello["output"]["duplicate"], true, "{run}");
    assert_eq!(hello["action_key"], "1:hello#1", "{run}");
}

/// The trigger follower reads the events a flow starts on (and customers' messages, which
/// waiting runs take) and its cursor passes the others without reading them: each event of a
/// flow's type starts one run, once, and events of other types cost no read later.
#[tokio::test]
async fn the_follower_reads_the_events_flows_start_on_and_passes_the_others() {
    use ringback::store::{NewEvent, Publication, RunQuery};
    let dir = tempfile::tempdir().unwrap();
    let store = ringback::store::open(&store_url(dir.path()).await)
        .await
        .unwrap();
    let catalog = ringback::flows::catalog::Catalog::new(store.clone(), Vec::new());
    let on_missed = "name = \"missed\"\n[trigger]\non = \"call.missed\"\n[[steps]]\nid = \"mark\"\ntype = \"set\"\nvars = { seen = \"yes\" }\n";
    catalog
        .put(on_missed, "missed", "test", None, 0)
        .await
        .unwrap();
    let follower = ringback::flows::follower::Follower {
        store: store.clone(),
        catalog,
        published: tokio::sync::watch::channel(0).0,
        wake: Default::default(),
    };
    follower.begin().await.unwrap();
    let event = |kind: &str, i: i64| NewEvent {
        kind: kind.into(),
        at: i,
        conversation_id: None,
        data: json!({"customer": {"phone": format!("+1415555{i:04}")}}),
        endpoints: Vec::new(),
    };
    let publish = |events: Vec<NewEvent>| {
        let store = store.clone();
        async move {
            store
                .publish(
                    Publication {
                        events,
                        ..Default::default()
                    },
                    None,
                )
                .await
                .unwrap()
        }
    };
    let ids = publish(vec![
        event("message.sent", 1),
        event("call.missed", 2),
        event("message.sent", 3),
    ])
    .await;
    assert_eq!(
        follower.pass(10).await.unwrap(),
        1,
        "only the call.missed event is read"
    );
    assert_eq!(store.flow_cursor().await.unwrap(), Some(ids[2]));
    // Only events of other types: nothing is read, the cursor passes them.
    let later = publish(vec![event("message.sent", 4)]).await;
    assert_eq!(follower.pass(11).await.unwrap(), 0);
    assert_eq!(store.flow_cursor().await.unwrap(), Some(later[0]));
    follower.pass(12).await.unwrap();
    let runs = store
        .runs(&RunQuery {
            flow: Some("missed".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<&str> = runs.iter().map(|r| r.trigger_key.as_str()).collect();
    assert_eq!(keys, [format!("event:{}:missed", ids[1])]);
}
