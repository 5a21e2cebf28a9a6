//! `ringback flows check` and `ringback flows test` as a user runs them: the shipped examples
//! checked against the template registry of the test's store and the sandbox, a broken flow
//! reported by file, line and step with exit status 1, and trial runs on a simulated clock
//! against a sandbox, with a real HTTP endpoint for an HTTP step.

use std::process::Stdio;

use crate::receiver::Receiver;
use crate::support::{base_env, store_env};

/// Runs `ringback flows COMMAND ARGS` in `dir` with the test's store and `env`; returns the
/// exit status and what it printed (stdout, then stderr).
async fn ringback_flows(
    dir: &std::path::Path,
    command: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ringback"))
        .args(["flows", command])
        .args(args)
        .current_dir(dir)
        .env_remove("RINGBACK_CONFIG")
        .envs(base_env())
        .envs(store_env(dir).await)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("the ringback binary runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = out.status.code();
    assert!(status.is_some(), "killed by a signal: {printed}");
    (status.unwrap_or(-1), printed)
}

#[tokio::test]
async fn the_example_flows_pass_the_check_and_a_broken_one_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flows");
    let (status, out) = ringback_flows(dir.path(), "check", &[examples], &[]).await;
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("4 flow(s) checked, 0 with problems"), "{out}");

    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).unwrap();
    std::fs::write(
        flows.join("follow-up.toml"),
        "[trigger]\non = \"call.completed\"\n\n[[steps]]\nid = \"thanks\"\n\
         type = \"send_template\"\ntemplate = \"call_follow_up\"\nvariables = []\n\n\
         [[steps]]\nid = \"again\"\ntype = \"branch\"\ncases = [{ if = \"true\", goto = \"thanks\" }]\n",
    )
    .unwrap();
    // No path: the flows/ directory of the working directory.
    let (status, out) = ringback_flows(dir.path(), "check", &[], &[]).await;
    assert_eq!(status, 1, "{out}");
    for wanted in [
        "flows/follow-up.toml:4: step 'thanks': template 'call_follow_up' has 1 variable(s) ({{1}}); `variables` maps 0",
        "flows/follow-up.toml:4: step 'thanks': thanks → again → thanks loops without a delay",
        "1 flow(s) checked, 1 with problems",
    ] {
        assert!(out.contains(wanted), "{wanted:?} not in:\n{out}");
    }
}

fn example(name: &str) -> String {
    format!("{}/examples/flows/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn a_trial_run_waits_on_a_simulated_clock_and_sends_through_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let call = dir.path().join("call.json");
    std::fs::write(
        &call,
        r#"{"call": {"source": "asterisk", "caller": "+919876543210", "outcome": "answered", "talk_seconds": 95, "missed": false}}"#,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (status, out) = ringback_flows(
        dir.path(),
        "test",
        &[
            &example("post-call-follow-up"),
            "--event",
            call.to_str().unwrap(),
            "--name",
            "Asha",
        ],
        &[],
    )
    .await;
    assert_eq!(status, 0, "{out}");
    for wanted in [
        "pause (delay)",
        "(+5m)",
        "+5m        interested (send_template)",
        r#""variables":["Asha","https://example.com/prices"]"#,
        r#""status":"sent""#,
        "wamid.",
        "done after 5m (simulated): 1 message(s) sent to the sandbox",
    ] {
        assert!(out.contains(wanted), "{wanted:?} not in:\n{out}");
    }
    // Five simulated minutes are not five real ones.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{out}"
    );

    // --at sets the simulated start; a short call gets the follow-up template instead.
    std::fs::write(
        &call,
        r#"{"call": {"caller": "+919876543210", "outcome": "answered", "talk_seconds": 20}}"#,
    )
    .unwrap();
    let (status, out) = ringback_flows(
        dir.path(),
        "test",
        &[
            &example("post-call-follow-up"),
            "--event",
            call.to_str().unwrap(),
            "--at",
            "2026-12-24T09:00:00Z",
        ],
        &[],
    )
    .await;
    assert_eq!(status, 0, "{out}");
    for wanted in [
        "the clock simulated from 2026-12-24T09:00:00Z",
        "sleeps until 2026-12-24T09:05:00Z (+5m)",
        "follow_up (send_template)",
        // No --name and no name in the event: the template's default, never "None".
        r#""variables":["there"]"#,
    ] {
        assert!(out.contains(wanted), "{wanted:?} not in:\n{out}");
    }
}

#[tokio::test]
async fn a_trial_takes_the_reply_or_the_timeout_and_retries_a_failing_http_step() {
    let dir = tempfile::tempdir().unwrap();
    let lead = dir.path().join("lead.json");
    std::fs::write(&lead, r#"{"phone": "+919876543210", "name": "Ravi"}"#).unwrap();
    let lead = lead.to_str().unwrap();
    let token = [("RINGBACK_FLOW_CRM_TOKEN", "crm-7")];

    let (status, out) = ringback_flows(
        dir.path(),
        "test",
        &[
            &example("lead-qualification"),
            "--event",
            lead,
            "--reply",
            "How much for 5 kW?",
            "--respond",
            r#"qualify={"reply": "About 6,000 EUR"}"#,
            "--respond",
            r#"qualified={"status": 201}"#,
        ],
        &token,
    )
    .await;
    assert_eq!(status, 0, "{out}");
    for wanted in [
        r#""variables":["Ravi","our services"]"#,
        r#"the customer replies "How much for 5 kW?""#,
        r#""message":"How much for 5 kW?""#,
        r#""assessment":"About 6,000 EUR""#,
        r#""Authorization":"Bearer crm-7""#,
        r#""status":"replied""#,
    ] {
        assert!(out.contains(wanted), "{wanted:?} not in:\n{out}");
    }

    // No reply: a day later the timeout branch posts "no_reply" to a real endpoint that fails
    // once (503, retried a minute later on the simulated clock), then takes it.
    let crm = Receiver::start(1).await;
    let flow = dir.path().join("lead.toml");
    std::fs::write(
        &flow,
        std::fs::read_to_string(example("lead-qualification"))
            .unwrap()
            .replace("https://crm.example.com/api/leads", &crm.url),
    )
    .unwrap();
    let (status, out) = ringback_flows(
        dir.path(),
        "test",
        &[flow.to_str().unwrap(), "--event", lead],
        &token,
    )
    .await;
    assert_eq!(status, 0, "{out}");
    for wanted in [
        "no reply: times out at +1d",
        "no_reply (http)",
        "✗ http_status:",
        "answered 503",
        "(retryable)",
        "no_reply (retry)",
        "+1d 1m",
        r#"→ {"body":"#,
        "done after 1d 1m (simulated)",
    ] {
        assert!(out.contains(wanted), "{wanted:?} not in:\n{out}");
    }
    assert_eq!(crm.arrived(), 2, "one refused, one taken");
    let got = crm.delivered();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["status"], "no_reply");
    assert_eq!(got[0]["name"], "Ravi");
}

#[tokio::test]
async fn a_trial_fails_on_a_policy_refusal_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("hello.toml");
    std::fs::write(
        &flow,
        "[trigger]\non = \"manual\"\n[[steps]]\nid = \"hello\"\ntype = \"send_text\"\n\
         to = \"+919876543210\"\ntext = \"Hello!\"\n",
    )
    .unwrap();
    // Nobody wrote in the last 24 hours: free-form text is refused before it leaves.
    let (status, out) = ringback_flows(dir.path(), "test", &[flow.to_str().unwrap()], &[]).await;
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("failed at step 'hello': outside_window:"),
        "{out}"
    );
    // With the window open it goes.
    let (status, out) = ringback_flows(
        dir.path(),
        "test",
        &[flow.to_str().unwrap(), "--window-open"],
        &[],
    )
    .await;
    assert_eq!(status, 0, "{out}");
    assert!(out.contains(r#""type":"text""#), "{out}");
}

/// The third example end to end: the schedule's run fetches two appointments (the answer
/// given with --respond), reminds each patient through the sandbox — one phone number is not
/// one, so that reminder fails and `on_error` logs it — and logs both results to a real
/// endpoint. And the post-call example's third branch: a missed call ends without a message.
#[tokio::test]
async fn a_trial_loops_over_appointments_and_logs_each_result() {
    let dir = tempfile::tempdir().unwrap();
    let log = Receiver::start(0).await;
    let flow = dir.path().join("reminders.toml");
    std::fs::write(
        &flow,
        std::fs::read_to_string(example("appointment-reminders"))
            .unwrap()
            .replace("https://clinic.example.com/api/reminder-log", &log.url),
    )
    .unwrap();
    let fetch = r#"fetch={"status": 200, "body": {"appointments": [
        {"id": "a-1", "phone": "+919876543210", "name": "Asha", "date": "3 Dec", "time": "10:30"},
        {"id": "a-2", "phone": "12", "name": "Ravi", "date": "3 Dec", "time": "11:00"}]}}"#;
    let (status, out) = ringback_flows(
        dir.path(),
        "test",
        &[flow.to_str().unwrap(), "--respond", fetch],
        &[("RINGBACK_FLOW_CLINIC_TOKEN", "clinic-1")],
    )
    .await;
    assert_eq!(status, 0, "{out}");
    for wanted in [
        r#""variables":{"date":"3 Dec","name":"Asha","time":"10:30"}"#,
        r#""status":"sent""#,
        "✗ invalid_phone:",
        "done after 0s (simulated): 1 message(s) sent to the sandbox",
    ] {
        assert!(out.contains(wanted), "{wanted:?} not in:\n{out}");
    }
    let logged = log.delivered();
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert_eq!(logged[0]["appointment"], "a-1");
    assert_eq!(logged[0]["status"], "sent");
    assert_eq!(logged[0]["error"], "");
    assert_eq!(logged[1]["appointment"], "a-2");
    assert_eq!(logged[1]["status"], "failed");
    assert!(
        logged[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid_phone:"),
        "{logged:?}"
    );
    let auth = log.all()[0].header("authorization");
    assert_eq!(auth, "Bearer clinic-1");

    let call = dir.path().join("missed.json");
    std::fs::write(
        &call,
        r#"{"call": {"caller": "+919876543210", "outcome": "no-answer", "missed": true}}"#,
    )
    .unwrap();
    let (status, out) = ringback_flows(
        dir.path(),
        "test",
        &[
            &example("post-call-follow-up"),
            "--event",
            call.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("done after 5m (simulated): 0 message(s) sent to the sandbox"),
        "{out}"
    );
    assert!(!out.contains("(send_template)"), "{out}");
}
