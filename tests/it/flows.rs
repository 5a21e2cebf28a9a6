//! `ringback flows check` as a user runs it: the shipped examples against the template
//! registry of the test's store and the sandbox, and a broken flow reported by file, line and
//! step with exit status 1.

use std::process::Stdio;

use crate::support::{base_env, store_env};

/// Runs `ringback flows check ARGS` in `dir` with the test's store; returns (status, stdout).
async fn flows_check(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ringback"))
        .args(["flows", "check"])
        .args(args)
        .current_dir(dir)
        .env_remove("RINGBACK_CONFIG")
        .envs(base_env())
        .envs(store_env(dir).await)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("the ringback binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some(),
        "killed by a signal: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), stdout)
}

#[tokio::test]
async fn the_example_flows_pass_the_check_and_a_broken_one_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flows");
    let (status, out) = flows_check(dir.path(), &[examples]).await;
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("3 flow(s) checked, 0 with problems"), "{out}");

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
    let (status, out) = flows_check(dir.path(), &[]).await;
    assert_eq!(status, 1, "{out}");
    for wanted in [
        "flows/follow-up.toml:4: step 'thanks': template 'call_follow_up' has 1 variable(s) ({{1}}); `variables` maps 0",
        "flows/follow-up.toml:4: step 'thanks': thanks → again → thanks loops without a delay",
        "1 flow(s) checked, 1 with problems",
    ] {
        assert!(out.contains(wanted), "{wanted:?} not in:\n{out}");
    }
}
