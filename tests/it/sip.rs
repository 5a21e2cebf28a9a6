//! The SIP missed-call number against real SIP traffic: sipp (the `sip-tester` package) runs
//! the scenarios in `tests/sip/` against the real server on loopback, and a raw UDP socket
//! sends what sipp cannot (an exact retransmission, garbage). Without sipp these tests fail
//! and say how to install it: they are not skipped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use ringback::telephony::sip::message::{self, StartLine};
use serde_json::Value;
use tokio::net::UdpSocket;

use crate::support::*;

pub(crate) mod spool;
mod tcp;

async fn sip_app(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("RINGBACK_SIP__ENABLED", "true"),
        ("RINGBACK_SIP__LISTEN_UDP", "127.0.0.1:0"),
        ("RINGBACK_SIP__LISTEN_TCP", "127.0.0.1:0"),
        ("RINGBACK_SIP__NUMBER", BUSINESS),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

fn udp_addr(app: &TestApp) -> SocketAddr {
    app.running
        .as_ref()
        .unwrap()
        .sip_udp
        .expect("SIP UDP bound")
}

fn tcp_addr(app: &TestApp) -> SocketAddr {
    app.running
        .as_ref()
        .unwrap()
        .sip_tcp
        .expect("SIP TCP bound")
}

/// sipp's path; fails the test (not skip) when it is missing.
fn sipp() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("sipp"))
            .find(|p| p.is_file())
    });
    found.expect(
        "sipp is not installed: run scripts/install-test-tools (it installs the Debian package \
         sip-tester), then run the tests again",
    )
}

/// A local port that was free a moment ago (sipp's `-p 0` is not reliable).
fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let t = std::net::TcpListener::bind(("127.0.0.1", s.local_addr().unwrap().port()));
    match t {
        Ok(_) => s.local_addr().unwrap().port(),
        Err(_) => free_port(),
    }
}

struct SippRun {
    out: Output,
    /// Every message sipp sent and received (`-trace_msg`).
    messages: String,
    errors: String,
}

impl SippRun {
    fn assert_ok(&self) {
        assert!(
            self.out.status.success(),
            "sipp exited with {:?}\nstderr:\n{}\nstdout (tail):\n{}\nerrors:\n{}\nmessages:\n{}",
            self.out.status.code(),
            String::from_utf8_lossy(&self.out.stderr),
            tail(&String::from_utf8_lossy(&self.out.stdout), 3000),
            self.errors,
            tail(&self.messages, 6000),
        );
    }

    /// How many times sipp received a response starting with `status_line`.
    fn received(&self, status_line: &str) -> usize {
        self.messages
            .split("message received")
            .skip(1)
            .filter(|m| m.contains(status_line))
            .count()
    }
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    s.get(start..).unwrap_or(s)
}

async fn run_sipp(app: &TestApp, scenario: &str, target: SocketAddr, args: &[&str]) -> SippRun {
    let dir = app.dir.path();
    let name = scenario.trim_end_matches(".xml");
    let messages = dir.join(format!("{name}-messages.log"));
    let errors = dir.join(format!("{name}-errors.log"));
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sip")
        .join(scenario);
    let port = free_port().to_string();
    let mut cmd = tokio::process::Command::new(sipp());
    cmd.arg(target.to_string())
        .arg("-sf")
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-p", &port, "-s", "5550100"])
        .args(["-timeout", "30s", "-timeout_error", "-nostdin"])
        .args(["-trace_msg", "-message_file"])
        .arg(&messages)
        .args(["-trace_err", "-error_file"])
        .arg(&errors)
        .args(args)
        .current_dir(dir)
        .kill_on_drop(true);
    let out = cmd.output().await.expect("sipp runs");
    SippRun {
        out,
        messages: std::fs::read_to_string(&messages).unwrap_or_default(),
        errors: std::fs::read_to_string(&errors).unwrap_or_default(),
    }
}

/// Waits until `n` SIP calls are decided, and returns them.
async fn sip_calls(app: &TestApp, n: usize) -> Vec<Value> {
    eventually(|| async {
        let calls: Vec<Value> = app
            .calls()
            .await
            .into_iter()
            .filter(|c| c["source"] == "sip")
            .collect();
        (calls.len() >= n && calls.iter().all(|c| c["decision"] != "pending")).then_some(calls)
    })
    .await
}

/// Flagged SIP input stored (read from the test app's store).
async fn flagged_sip(app: &TestApp) -> i64 {
    let db = Db::open(&app.settings.store_url).await;
    let n: (i64,) = on_db!(&db, pool => sqlx::query_as(
        "SELECT count(*) FROM inbound_events WHERE source = 'sip' AND kind = 'flagged'",
    )
    .fetch_one(pool)
    .await
    .unwrap());
    db.close().await;
    n.0
}

#[tokio::test]
async fn sipp_caller_cancels_and_gets_a_whatsapp_reply() {
    let app = sip_app(&[]).await;
    let run = run_sipp(
        &app,
        "uac_cancel.xml",
        udp_addr(&app),
        &["-m", "1", "-d", "200"],
    )
    .await;
    run.assert_ok();
    let calls = sip_calls(&app, 1).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["outcome"], "canceled", "{call}");
    assert_eq!(call["caller_e164"], "+14155550123");
    assert_eq!(call["callee_raw"], BUSINESS);
    assert_eq!(call["decision"], "replied", "{call}");
    // Replied = queued; wait for the send itself before looking at the sandbox.
    app.message_in_state(call["message_id"].as_str().unwrap(), "delivered")
        .await;
    let sent = app.sandbox_sent().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["to"], "14155550123");
    // The caller's display name reached the reply.
    let params = &sent[0]["body"]["template"]["components"][0]["parameters"];
    assert_eq!(params[0]["text"], "Test Caller", "{params}");
}

#[tokio::test]
async fn sipp_nobody_answers_final_480_is_retransmitted_until_ack() {
    let app = sip_app(&[("RINGBACK_SIP__RING_SECONDS", "1")]).await;
    let keys = [
        "-m",
        "1",
        "-key",
        "from_user",
        "+14155550123",
        "-key",
        "pai",
        "<sip:+14155550123@carrier.invalid;user=phone>",
        "-key",
        "privacy",
        "none",
    ];
    let run = run_sipp(&app, "uac_noanswer.xml", udp_addr(&app), &keys).await;
    run.assert_ok();
    // Sent at once, then Timer G at +0.5 s and +1.5 s; the ACK at +1.8 s stops it.
    let finals = run.received("SIP/2.0 480");
    assert!((2..=3).contains(&finals), "480 received {finals} times");
    let calls = sip_calls(&app, 1).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["outcome"], "no-answer");
    assert_eq!(calls[0]["ring_seconds"], 1);
    assert_eq!(calls[0]["caller_e164"], "+14155550123");
}

#[tokio::test]
async fn sipp_withheld_caller_is_recorded_but_not_messaged() {
    let app = sip_app(&[("RINGBACK_SIP__RING_SECONDS", "1")]).await;
    let keys = [
        "-m",
        "1",
        "-key",
        "from_user",
        "anonymous",
        "-key",
        "pai",
        "<sip:+442079460000@carrier.invalid;user=phone>",
        "-key",
        "privacy",
        "id",
    ];
    let run = run_sipp(&app, "uac_noanswer.xml", udp_addr(&app), &keys).await;
    run.assert_ok();
    let calls = sip_calls(&app, 1).await;
    assert_eq!(calls[0]["caller_raw"], "anonymous", "{:?}", calls[0]);
    assert_eq!(calls[0]["decision"], "skipped");
    assert!(app.sandbox_sent().await.is_empty());
}

#[tokio::test]
async fn sipp_over_tcp() {
    let app = sip_app(&[]).await;
    let args = ["-m", "1", "-d", "100", "-t", "t1"];
    let run = run_sipp(&app, "uac_cancel.xml", tcp_addr(&app), &args).await;
    run.assert_ok();
    let calls = sip_calls(&app, 1).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["outcome"], "canceled");
}

#[tokio::test]
async fn sipp_many_calls_each_stored_once() {
    let app = sip_app(&[]).await;
    let args = ["-m", "50", "-r", "50", "-l", "50", "-d", "100"];
    let run = run_sipp(&app, "uac_cancel.xml", udp_addr(&app), &args).await;
    run.assert_ok();
    let calls = sip_calls(&app, 50).await;
    assert_eq!(calls.len(), 50);
}

// A raw UDP client for what sipp cannot send.

struct RawClient {
    socket: UdpSocket,
    server: SocketAddr,
}

impl RawClient {
    async fn new(server: SocketAddr) -> Self {
        RawClient {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server,
        }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    async fn send(&self, text: &str) {
        self.socket
            .send_to(text.as_bytes(), self.server)
            .await
            .unwrap();
    }

    /// The next response's code, or `None` if nothing came within `ms`.
    async fn code(&self, ms: u64) -> Option<u16> {
        let mut buf = vec![0u8; 65_536];
        let r = tokio::time::timeout(Duration::from_millis(ms), self.socket.recv(&mut buf)).await;
        let n = r.ok()?.unwrap();
        match message::parse(&buf[..n]).unwrap().start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => panic!("the UAS sent a request"),
        }
    }
}

fn request(method: &str, port: u16, branch: &str, call_id: &str) -> String {
    format!(
        "{method} sip:5550100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}\r\n\
         From: <sip:+14155550124@127.0.0.1>;tag=raw1\r\nTo: <sip:5550100@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test]
async fn retransmitted_invite_is_still_one_call() {
    let app = sip_app(&[]).await;
    let c = RawClient::new(udp_addr(&app)).await;
    let invite = request("INVITE", c.port(), "z9hG4bK-raw-1", "retrans-1");
    c.send(&invite).await;
    assert_eq!(c.code(2000).await, Some(100));
    assert_eq!(c.code(2000).await, Some(180));
    // The same INVITE again (as if our responses were lost): the last response, again.
    c.send(&invite).await;
    c.send(&invite).await;
    assert_eq!(c.code(2000).await, Some(180));
    assert_eq!(c.code(2000).await, Some(180));
    c.send(&request("CANCEL", c.port(), "z9hG4bK-raw-1", "retrans-1"))
        .await;
    assert_eq!(c.code(2000).await, Some(200));
    assert_eq!(c.code(2000).await, Some(487));
    c.send(&invite).await;
    assert_eq!(c.code(2000).await, Some(487), "the final, not a new call");
    // Prove the negative with a sentinel: a later call, handled by the same loop after every
    // retransmission above. Once it is decided, a duplicate of retrans-1 would be there too.
    let sentinel = request("INVITE", c.port(), "z9hG4bK-raw-2", "sentinel-2");
    c.send(&sentinel).await;
    assert_eq!(c.code(2000).await, Some(100));
    assert_eq!(c.code(2000).await, Some(180));
    c.send(&request("CANCEL", c.port(), "z9hG4bK-raw-2", "sentinel-2"))
        .await;
    assert_eq!(c.code(2000).await, Some(200));
    assert_eq!(c.code(2000).await, Some(487));
    app.decided_call("sentinel-2").await;
    let all: Vec<Value> = app.calls().await;
    let mut ids: Vec<&str> = all
        .iter()
        .map(|c| c["provider_call_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["retrans-1", "sentinel-2"], "{all:?}");
}

#[tokio::test]
async fn malformed_input_is_flagged_and_the_server_stays_healthy() {
    let app = sip_app(&[]).await;
    let c = RawClient::new(udp_addr(&app)).await;
    // Garbage: nothing to answer (no Via).
    c.send("\u{0}\u{1}GARBAGE \u{7f} hello\r\n\r\n").await;
    assert_eq!(c.code(300).await, None);
    // A broken INVITE with a readable Via: 400.
    let broken =
        request("INVITE", c.port(), "z9hG4bK-bad", "bad-1").replace("CSeq: 1 INVITE\r\n", "");
    c.send(&broken).await;
    assert_eq!(c.code(2000).await, Some(400));
    let bad_length = request("INVITE", c.port(), "z9hG4bK-bad2", "bad-2")
        .replace("Content-Length: 0", "Content-Length: 999");
    c.send(&bad_length).await;
    assert_eq!(c.code(2000).await, Some(400));
    eventually(|| async { (flagged_sip(&app).await >= 3).then_some(()) }).await;
    // Still healthy: OPTIONS answered, HTTP up, and no call was made of any of it.
    c.send(&request("OPTIONS", c.port(), "z9hG4bK-opt", "opt-1"))
        .await;
    assert_eq!(c.code(2000).await, Some(200));
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    assert!(app.calls().await.is_empty());
}

#[tokio::test]
async fn a_2xx_final_response_is_refused_at_startup() {
    let mut env = base_env();
    env.push(("RINGBACK_SIP__FINAL_RESPONSE".into(), "200".into()));
    let err = ringback::config::Config::load_with_env(None, env)
        .unwrap()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("sip.final_response"), "{err}");
}

#[test]
fn an_exposed_sip_number_without_accept_from_is_refused_at_startup() {
    let build = |extra: &[(&str, &str)]| {
        let mut env = base_env();
        env.push(("RINGBACK_SIP__ENABLED".into(), "true".into()));
        env.push(("RINGBACK_SIP__LISTEN_UDP".into(), "0.0.0.0:0".into()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        ringback::config::Config::load_with_env(None, env)
            .unwrap()
            .build()
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let err = build(&[]).unwrap_err();
    assert!(err.contains("sip.accept_from is empty"), "{err}");
    build(&[("RINGBACK_SIP__ACCEPT_FROM", "[\"192.0.2.9\"]")]).expect("a listed trunk builds");
    build(&[("RINGBACK_SIP__ACCEPT_ANY", "true")]).expect("an explicit accept_any builds");
}
