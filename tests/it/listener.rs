//! The HTTP listener as an outsider meets it: slow clients are cut off, secrets stay out of
//! request logs, and `serve` refuses an exposed address whatever set it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::support::*;

/// Slow-client limits short enough for a test: 1 s for a header, 2 s of silence.
async fn app_with_short_timeouts() -> TestApp {
    spawn_app_with(&[
        ("RINGBACK_SERVER__HEADER_READ_TIMEOUT_SECONDS", "1"),
        ("RINGBACK_SERVER__IDLE_TIMEOUT_SECONDS", "2"),
    ])
    .await
}

/// Reads until the server closes the connection (EOF or reset) and returns what it sent and
/// when it closed; panics if the connection is still open after `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(start + limit, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open for {limit:?}; it sent {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&received).into(), start.elapsed());
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// The value of `ringback_http_connections_cut_total{reason}` (0 before the first cut).
async fn cuts(app: &TestApp, reason: &str) -> f64 {
    let r = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let series = format!("ringback_http_connections_cut_total{{reason=\"{reason}\"}} ");
    r.text()
        .await
        .unwrap()
        .lines()
        .map(crate::support::without_node_label)
        .find_map(|l| l.strip_prefix(&series).map(str::to_string))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("server reachable")
}

#[tokio::test]
async fn half_a_request_header_is_cut_off_after_the_header_timeout() {
    let app = app_with_short_timeouts().await;
    let before = cuts(&app, "header_timeout").await;
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: ringback\r\nX-Slow: ")
        .await
        .unwrap();
    let (_, after) = read_until_closed(&mut slow, Duration::from_secs(8)).await;
    assert!(
        after >= Duration::from_millis(500),
        "closed after {after:?}, before the client had its second"
    );
    let after_cut = cuts(&app, "header_timeout").await;
    assert!(after_cut >= before + 1.0, "{before} → {after_cut}");
}

#[tokio::test]
async fn a_stalled_request_body_is_cut_off_after_the_idle_timeout() {
    let app = app_with_short_timeouts().await;
    let before = cuts(&app, "idle").await;
    let mut slow = connect(&app).await;
    // The header is complete (so the header timeout no longer applies); the body never is.
    slow.write_all(
        b"POST /webhooks/calls HTTP/1.1\r\nHost: ringback\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"call_id\":",
    )
    .await
    .unwrap();
    let (_, after) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(
        after >= Duration::from_millis(1500),
        "closed after {after:?}"
    );
    let after_cut = cuts(&app, "idle").await;
    assert!(after_cut >= before + 1.0, "{before} → {after_cut}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_and_normal_requests_still_work() {
    let app = app_with_short_timeouts().await;
    let mut conn = connect(&app).await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: ringback\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut conn, Duration::from_secs(8)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"status\":\"ok\""), "{answer}");

    // A client that keeps to the limits is served as before, several times on one pool.
    for _ in 0..3 {
        let r = app
            .http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

/// A `ringback` command with no `RINGBACK_…` variables from the test's environment, run in
/// `dir` (so the demo's SQLite file lands there).
fn ringback_command(args: &[&str], dir: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ringback"));
    cmd.args(args).current_dir(dir).kill_on_drop(true);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("RINGBACK_")) {
        cmd.env_remove(key);
    }
    cmd
}

// The real binary, so the logs are the ones an operator gets (its own process and global
// subscriber: a test-local subscriber would share tracing's callsite cache with every other
// test running in parallel).
#[tokio::test]
async fn the_verify_token_of_metas_handshake_is_not_logged_at_debug() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut child = ringback_command(&["serve"], dir.path())
        .env("RINGBACK_SERVER__LISTEN", "127.0.0.1:0")
        .env("RINGBACK_SANDBOX__LISTEN", "127.0.0.1:0")
        .env("RINGBACK_WHATSAPP__VERIFY_TOKEN", "verify-8c1d7e")
        .env("RUST_LOG", "ringback=debug,tower_http=debug")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("the ringback binary starts");
    // The banner's first line says where it listens.
    // Held open until the child is killed: the banner is more than one write, and a pipe
    // closed after its first line fails the next write, which kills the server (Rust's
    // `println!` panics on EPIPE).
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .expect("the server printed its banner within 30 s")
        .unwrap()
        .unwrap_or_default();
    let base = first
        .strip_prefix("Ringback is listening on ")
        .unwrap_or_else(|| panic!("unexpected banner: {first}"))
        .to_string();

    let r = reqwest::get(format!(
        "{base}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=verify-8c1d7e&hub.challenge=1158201444"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "1158201444");
    let logs = eventually(|| async {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        text.contains("finished processing request").then_some(text)
    })
    .await;
    let _ = child.kill().await;
    drop(stdout);
    assert!(
        logs.contains("hub.verify_token=REDACTED"),
        "the request was logged, redacted: {logs}"
    );
    assert!(!logs.contains("verify-8c1d7e"), "the token leaked: {logs}");
}

/// Runs the real binary with `args` and no `RINGBACK_…` variables but `env`; returns its exit
/// status and stderr. Fails if it is still running after 30 s (it started serving).
async fn ringback(args: &[&str], env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = ringback_command(args, dir.path());
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .envs(env.iter().copied());
    let child = cmd.spawn().expect("the ringback binary starts");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`ringback {}` kept running", args.join(" ")))
        .unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn serve_listen_on_all_interfaces_without_an_api_token_refuses_to_start() {
    let (status, stderr) = ringback(&["serve", "--listen", "0.0.0.0:0"], &[]).await;
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("server.api_token is empty; set RINGBACK_SERVER__API_TOKEN"),
        "{stderr}"
    );
    assert!(stderr.contains("--listen 0.0.0.0:0"), "{stderr}");
}

#[tokio::test]
async fn serve_listen_on_all_interfaces_with_demo_secrets_refuses_to_start() {
    let (status, stderr) = ringback(
        &["serve", "--listen", "0.0.0.0:0"],
        &[("RINGBACK_SERVER__API_TOKEN", "a-real-api-token")],
    )
    .await;
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("set RINGBACK_WHATSAPP__APP_SECRET"),
        "{stderr}"
    );
}

#[tokio::test]
async fn config_check_reports_the_same_refusal_as_serve() {
    let (status, stderr) = ringback(
        &["config", "check"],
        &[
            ("RINGBACK_SERVER__LISTEN", "0.0.0.0:8080"),
            ("RINGBACK_SERVER__API_TOKEN", "a-real-api-token"),
        ],
    )
    .await;
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("set RINGBACK_WHATSAPP__APP_SECRET"),
        "{stderr}"
    );
}
