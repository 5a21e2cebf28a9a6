//! Asterisk (AMI) and FreeSWITCH (event socket) as missed-call sources, end to end: a fake
//! PBX replays recorded transcripts over TCP after a real handshake, the real server logs in,
//! decides each call, and missed ones get a WhatsApp reply through the sandbox.

mod peers;
mod spool;

use std::time::Duration;

use peers::{Peer, Script};
use serde_json::Value;

use crate::support::*;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

fn fixtures(paths: &[&str]) -> Vec<u8> {
    paths.iter().flat_map(|p| fixture(p)).collect()
}

fn keep_open(bytes: Vec<u8>) -> Script {
    Script {
        bytes,
        then_close: false,
    }
}

async fn asterisk_app(peer: &Peer, secret: &str) -> TestApp {
    spawn_app_with(&[
        ("RINGBACK_ASTERISK__ENABLED", "true"),
        ("RINGBACK_ASTERISK__ADDRESS", &peer.addr),
        ("RINGBACK_ASTERISK__SECRET", secret),
    ])
    .await
}

async fn freeswitch_app(peer: &Peer, password: &str) -> TestApp {
    spawn_app_with(&[
        ("RINGBACK_FREESWITCH__ENABLED", "true"),
        ("RINGBACK_FREESWITCH__ADDRESS", &peer.addr),
        ("RINGBACK_FREESWITCH__PASSWORD", password),
    ])
    .await
}

/// Every call row with this provider id (to prove nothing is duplicated).
async fn rows(app: &TestApp, call_id: &str) -> Vec<Value> {
    app.calls()
        .await
        .into_iter()
        .filter(|c| c["provider_call_id"] == call_id)
        .collect()
}

/// Flagged inbound events, read straight from the test app's store.
async fn flagged(app: &TestApp) -> Vec<(String, String)> {
    let db = Db::open(&app.settings.store_url).await;
    let rows: Vec<(String, String)> = on_db!(&db, pool =>
        sqlx::query_as("SELECT source, event_json FROM inbound_events WHERE kind = 'flagged'")
            .fetch_all(pool)
            .await
            .unwrap());
    db.close().await;
    rows
}

/// Checks who got a reply. Callers first wait for the last call of the script to be
/// decided; the link stores calls in order and the processor decides them in order, so
/// every call is decided by then. Then nothing more can be sent once every message has left
/// the outbox, which is waited for (no sleep hoping that nothing more trickles in).
async fn assert_sent_to(app: &TestApp, want: &[&str]) {
    // Accepted or later: the sandbox has the request (failed: it was answered).
    let left = |m: &Value| {
        matches!(
            m["state"].as_str(),
            Some("accepted" | "sent" | "delivered" | "read" | "failed")
        )
    };
    let messages = eventually(|| async {
        let calls = app.calls().await;
        let messages = app.messages().await;
        (calls.iter().all(|c| c["decision"] != "pending")
            && messages.len() >= want.len()
            && messages.iter().all(left))
        .then_some(messages)
    })
    .await;
    assert_eq!(
        messages.len(),
        want.len(),
        "one message per missed call: {messages:?}"
    );
    let sent = app.sandbox_sent().await;
    let mut to: Vec<String> = sent
        .iter()
        .map(|m| m["to"].as_str().unwrap().to_string())
        .collect();
    to.sort();
    assert_eq!(to, want, "{sent:?}");
}

#[tokio::test]
async fn asterisk_calls_are_decided_and_missed_ones_get_a_reply() {
    let peer = peers::asterisk(
        "s3cret",
        vec![keep_open(fixtures(&[
            "asterisk/noanswer.ami",
            "asterisk/busy.ami",
            "asterisk/cancel.ami",
            "asterisk/answered.ami",
            "asterisk/ivr_then_noanswer.ami",
            "asterisk/ringgroup_answered.ami",
            "asterisk/withheld.ami",
        ]))],
    )
    .await;
    let app = asterisk_app(&peer, "s3cret").await;
    for (id, outcome, decision, caller) in [
        ("1763900000.101", "no-answer", "replied", "+14155550101"),
        ("1763900060.201", "busy", "replied", "+14155550102"),
        ("1763900120.301", "canceled", "replied", "+14155550103"),
        ("1763900180.401", "answered", "answered", "+14155550104"),
        ("1763900300.501", "no-answer", "replied", "+14155550105"),
        ("1763900400.601", "answered", "answered", "+14155550106"),
        ("1763900500.701", "no-answer", "skipped", "<unknown>"),
    ] {
        let call = app.decided_call(id).await;
        assert_eq!(call["source"], "asterisk", "{call}");
        assert_eq!(call["outcome"], outcome, "{call}");
        assert_eq!(call["decision"], decision, "{call}");
        assert_eq!(call["caller_raw"], caller, "{call}");
    }
    let noanswer = app.decided_call("1763900000.101").await;
    assert_eq!(noanswer["ring_seconds"], 20);
    assert_eq!(noanswer["callee_raw"], "15550100001");
    assert!(
        app.decided_call("1763900500.701").await["reason"]
            .as_str()
            .unwrap()
            .contains("withheld")
    );
    assert_sent_to(
        &app,
        &["14155550101", "14155550102", "14155550103", "14155550105"],
    )
    .await;
    assert_eq!(peer.logins().len(), 1);
    stops_promptly(app).await;
    eventually(|| async { (peer.goodbyes() == 1).then_some(()) }).await;
}

/// Shutdown ends the client at once, logging off politely when connected.
async fn stops_promptly(mut app: TestApp) {
    tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("the server stops within 5 s");
}

#[tokio::test]
async fn asterisk_reconnects_logs_in_again_and_duplicates_nothing() {
    let busy = fixture("asterisk/busy.ami");
    // The connection drops after the busy call's first two events.
    let cut = busy
        .windows(4)
        .enumerate()
        .filter(|(_, w)| w == b"\r\n\r\n")
        .nth(1)
        .map(|(i, _)| i + 4)
        .unwrap();
    let mut first = fixture("asterisk/noanswer.ami");
    first.extend_from_slice(&busy[..cut]);
    let peer = peers::asterisk(
        "s3cret",
        vec![
            Script {
                bytes: first,
                then_close: true,
            },
            // After the reconnect Asterisk happens to resend the first call, then a new one.
            keep_open(fixtures(&["asterisk/noanswer.ami", "asterisk/cancel.ami"])),
        ],
    )
    .await;
    let app = asterisk_app(&peer, "s3cret").await;
    assert_eq!(
        app.decided_call("1763900120.301").await["outcome"],
        "canceled"
    );
    assert_eq!(rows(&app, "1763900000.101").await.len(), 1);
    assert!(
        rows(&app, "1763900060.201").await.is_empty(),
        "the cut call is not guessed"
    );
    assert_sent_to(&app, &["14155550101", "14155550103"]).await;
    let logins = peer.logins();
    assert_eq!(logins.len(), 2, "{logins:?}");
    assert!(logins.iter().all(|(_, ok)| *ok));
}

#[tokio::test]
async fn asterisk_wrong_secret_retries_with_backoff_and_records_nothing() {
    let peer = peers::asterisk("right", vec![keep_open(fixture("asterisk/noanswer.ami"))]).await;
    let app = asterisk_app(&peer, "wrong").await;
    let logins = eventually(|| async {
        let l = peer.logins();
        (l.len() >= 3).then_some(l)
    })
    .await;
    assert!(logins.iter().all(|(_, ok)| !ok));
    let gap1 = logins[1].0 - logins[0].0;
    let gap2 = logins[2].0 - logins[1].0;
    assert!(
        gap1 >= Duration::from_millis(700),
        "no tight loop: {gap1:?}"
    );
    assert!(gap2 > gap1, "the delay grows: {gap1:?} then {gap2:?}");
    assert!(app.calls().await.is_empty());
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    stops_promptly(app).await; // while waiting to retry
}

#[tokio::test]
async fn asterisk_event_with_missing_fields_is_flagged() {
    let peer = peers::asterisk(
        "s3cret",
        vec![keep_open(fixture("asterisk/missing_fields.ami"))],
    )
    .await;
    let app = asterisk_app(&peer, "s3cret").await;
    let rows = eventually(|| async {
        let f = flagged(&app).await;
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "asterisk");
    let event: Value = serde_json::from_str(&rows[0].1).unwrap();
    assert_eq!(
        event["reason"], "Hangup event without Uniqueid or Linkedid",
        "{event}"
    );
    assert!(
        event["fragment"]["raw"]
            .as_str()
            .unwrap()
            .starts_with("Event: Hangup\r\n")
    );
    assert!(app.calls().await.is_empty());
}

#[tokio::test]
async fn freeswitch_hangups_are_decided_and_missed_ones_get_a_reply() {
    let peer = peers::freeswitch(
        "s3cret-esl",
        vec![keep_open(fixtures(&[
            "freeswitch/no_answer.esl",
            "freeswitch/originator_cancel.esl",
            "freeswitch/user_busy.esl",
            "freeswitch/bridged.esl",
            "freeswitch/outbound_leg.esl",
        ]))],
    )
    .await;
    let app = freeswitch_app(&peer, "s3cret-esl").await;
    let id = |n: &str| format!("0f5e3c1a-8a51-4d2b-9a43-000000000{n}");
    for (n, outcome, decision) in [
        ("201", "no-answer", "replied"),
        ("202", "canceled", "replied"),
        ("203", "busy", "replied"),
        ("204", "answered", "answered"),
    ] {
        let call = app.decided_call(&id(n)).await;
        assert_eq!(call["source"], "freeswitch", "{call}");
        assert_eq!(call["outcome"], outcome, "{call}");
        assert_eq!(call["decision"], decision, "{call}");
        assert_eq!(call["caller_raw"], format!("+14155550{n}"), "{call}");
    }
    assert_sent_to(&app, &["14155550201", "14155550202", "14155550203"]).await;
    // The legs FreeSWITCH originated to the phones are not calls.
    let calls = app.calls().await;
    assert_eq!(calls.len(), 4, "{calls:?}");
    stops_promptly(app).await;
    eventually(|| async { (peer.goodbyes() == 1).then_some(()) }).await;
}

#[tokio::test]
async fn freeswitch_reconnects_and_duplicates_nothing() {
    let peer = peers::freeswitch(
        "s3cret-esl",
        vec![
            Script {
                bytes: fixture("freeswitch/no_answer.esl"),
                then_close: true,
            },
            keep_open(fixtures(&[
                "freeswitch/no_answer.esl",
                "freeswitch/user_busy.esl",
            ])),
        ],
    )
    .await;
    let app = freeswitch_app(&peer, "s3cret-esl").await;
    app.decided_call("0f5e3c1a-8a51-4d2b-9a43-000000000203")
        .await;
    assert_eq!(
        rows(&app, "0f5e3c1a-8a51-4d2b-9a43-000000000201")
            .await
            .len(),
        1
    );
    assert_sent_to(&app, &["14155550201", "14155550203"]).await;
    assert_eq!(peer.logins().len(), 2);
}

#[tokio::test]
async fn freeswitch_wrong_password_retries_with_backoff() {
    let peer = peers::freeswitch(
        "right",
        vec![keep_open(fixture("freeswitch/no_answer.esl"))],
    )
    .await;
    let app = freeswitch_app(&peer, "wrong").await;
    let logins = eventually(|| async {
        let l = peer.logins();
        (l.len() >= 3).then_some(l)
    })
    .await;
    assert!(logins.iter().all(|(_, ok)| !ok));
    assert!(logins[2].0 - logins[1].0 > logins[1].0 - logins[0].0);
    assert!(logins[1].0 - logins[0].0 >= Duration::from_millis(700));
    assert!(app.calls().await.is_empty());
}

#[tokio::test]
async fn freeswitch_event_with_missing_fields_is_flagged() {
    let peer = peers::freeswitch(
        "s3cret-esl",
        vec![keep_open(fixture("freeswitch/missing_fields.esl"))],
    )
    .await;
    let app = freeswitch_app(&peer, "s3cret-esl").await;
    let rows = eventually(|| async {
        let f = flagged(&app).await;
        (!f.is_empty()).then_some(f)
    })
    .await;
    let event: Value = serde_json::from_str(&rows[0].1).unwrap();
    assert_eq!(rows[0].0, "freeswitch");
    assert_eq!(event["reason"], "CHANNEL_HANGUP_COMPLETE without Unique-ID");
}

#[test]
fn pbx_settings_are_validated() {
    let build = |env: &[(&str, &str)]| {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        ringback::config::Config::load_with_env(None, env)
            .unwrap()
            .build()
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let err = build(&[("RINGBACK_ASTERISK__ENABLED", "true")]).unwrap_err();
    assert!(err.contains("RINGBACK_ASTERISK__SECRET"), "{err}");
    let err = build(&[
        ("RINGBACK_ASTERISK__ENABLED", "true"),
        ("RINGBACK_ASTERISK__SECRET", "x"),
        ("RINGBACK_ASTERISK__ADDRESS", "pbx.example.com"),
    ])
    .unwrap_err();
    assert!(err.contains("needs a port"), "{err}");
    let err = build(&[
        ("RINGBACK_FREESWITCH__ENABLED", "true"),
        ("RINGBACK_FREESWITCH__PASSWORD", "ClueCon"),
        ("RINGBACK_FREESWITCH__ADDRESS", "10.0.0.5:8021"),
    ])
    .unwrap_err();
    assert!(err.contains("CVE-2019-19492"), "{err}");
    build(&[
        ("RINGBACK_FREESWITCH__ENABLED", "true"),
        ("RINGBACK_FREESWITCH__PASSWORD", "ClueCon"),
    ])
    .expect("the factory password is tolerated (with a warning) on loopback");
    build(&[
        ("RINGBACK_ASTERISK__ENABLED", "true"),
        ("RINGBACK_ASTERISK__SECRET", "x"),
        ("RINGBACK_ASTERISK__CONTEXTS", "[\"from-trunk\"]"),
    ])
    .expect("a full [asterisk] section builds");
}
