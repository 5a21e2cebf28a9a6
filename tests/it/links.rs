//! Click-to-chat links over HTTP: the API, the short address `/l/{code}` (clicks counted, no
//! open redirect), attribution of the first message and its consent source, QR codes, Meta's
//! own QR codes through the sandbox, the CLI and the console page.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::{FormBody, browser, create_user, csrf_of, get, page, signed_in};
use crate::conversations::events;
use crate::support::*;

const BASE_URL: &str = "https://rb.example";

async fn links_app() -> TestApp {
    spawn_app_with(&[("RINGBACK_SERVER__PUBLIC_BASE_URL", BASE_URL)]).await
}

/// `POST /api/v1/links`: the status and the body.
async fn create(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let r = app
        .http
        .post(format!("{}/api/v1/links", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn link(app: &TestApp, code: &str) -> Value {
    app.get_json(&format!("{}/api/v1/links/{code}", app.base))
        .await
}

#[tokio::test]
async fn a_tracked_link_counts_clicks_and_its_first_message_is_attributed_with_consent() {
    let app = links_app().await;
    let (status, made) = create(
        &app,
        json!({"text": "Hi, I missed your call", "source": "website"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let code = made["code"].as_str().unwrap().to_string();
    let prefilled = format!("Hi, I missed your call (ref {code})");
    assert_eq!(made["prefilled_text"], prefilled);
    assert_eq!(
        made["wa_me_url"],
        format!(
            "https://wa.me/15550100001?text=Hi%2C%20I%20missed%20your%20call%20%28ref%20{code}%29"
        )
    );
    assert_eq!(
        made["deep_link"],
        format!(
            "whatsapp://send?phone=15550100001&text=Hi%2C%20I%20missed%20your%20call%20%28ref%20{code}%29"
        )
    );
    assert_eq!(made["tracked_url"], format!("{BASE_URL}/l/{code}"));
    assert_eq!(made["qr_target"], made["tracked_url"]);

    // The short address: counted, then redirected to wa.me, never cached.
    let click = browser()
        .get(format!("{}/l/{code}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(click.status(), StatusCode::FOUND);
    assert_eq!(
        click.headers()["location"],
        made["wa_me_url"].as_str().unwrap()
    );
    assert_eq!(click.headers()["cache-control"], "no-store");
    assert_eq!(link(&app, &code).await["clicks"], 1);
    // A HEAD (a link checker) is no click; a code typed in lower case is the same link.
    let head = browser()
        .head(format!("{}/l/{}", app.base, code.to_lowercase()))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::FOUND);
    assert_eq!(link(&app, &code).await["clicks"], 1);
    let clicked =
        eventually(|| async { events(&app, "link.clicked").await.into_iter().next() }).await;
    assert_eq!(clicked["data"]["link"]["code"], code);
    assert_eq!(clicked["data"]["link"]["clicks"], 1);
    assert_eq!(clicked["conversation_id"], Value::Null);

    // The customer sends the prefilled text: the conversation is the link's, and the ledger
    // says where their consent came from.
    app.user_writes("+447700900123", &prefilled).await;
    let attributed = eventually(|| async {
        events(&app, "conversation.attributed")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(attributed["data"]["link"]["code"], code);
    assert_eq!(attributed["data"]["link"]["source"], "website");
    assert_eq!(attributed["data"]["contact"], "447700900123");
    let conversation = attributed["conversation_id"]
        .as_str()
        .expect("in a conversation");
    let started = events(&app, "conversation.started").await;
    assert_eq!(started[0]["conversation_id"], conversation);
    let ledger = app
        .list(&format!("{}/api/v1/consents?to=%2B447700900123", app.base))
        .await;
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["source"], "click_to_chat");
    assert_eq!(ledger[0]["category"], "utility");
    assert_eq!(ledger[0]["action"], "opt_in");
    let evidence = ledger[0]["evidence"].as_str().unwrap();
    assert!(
        evidence.contains(&format!("click-to-chat link {code} (website)")),
        "{evidence}"
    );
    assert_eq!(link(&app, &code).await["conversations"], 1);

    // The same text again brings nobody new: no second attribution, no second count.
    app.user_writes("+447700900123", &prefilled).await;
    app.user_writes("+447700900125", &prefilled).await;
    eventually(|| async {
        (events(&app, "conversation.attributed").await.len() == 2).then_some(())
    })
    .await;
    let attributed = events(&app, "conversation.attributed").await;
    assert_eq!(attributed[1]["data"]["contact"], "447700900125");
    assert_eq!(link(&app, &code).await["conversations"], 2);
}

#[tokio::test]
async fn a_link_never_overrides_an_earlier_stop() {
    let app = links_app().await;
    let (_, made) = create(&app, json!({"text": "Table for two?", "source": "flyer"})).await;
    let code = made["code"].as_str().unwrap().to_string();
    app.user_writes("+447700900124", "STOP").await;
    app.user_writes("+447700900124", made["prefilled_text"].as_str().unwrap())
        .await;
    eventually(|| async {
        events(&app, "conversation.attributed")
            .await
            .into_iter()
            .next()
    })
    .await;
    let ledger = app
        .list(&format!("{}/api/v1/consents?to=%2B447700900124", app.base))
        .await;
    assert_eq!(ledger.len(), 1, "only the STOP: {ledger:?}");
    assert_eq!(ledger[0]["action"], "opt_out");
    assert_eq!(link(&app, &code).await["conversations"], 1);
}

#[tokio::test]
async fn the_short_address_is_no_open_redirect_and_bad_requests_say_what_to_change() {
    let app = links_app().await;
    let (_, plain) = create(
        &app,
        json!({"text": "Hi", "source": "website", "tracked": false}),
    )
    .await;
    assert_eq!(plain["tracked_url"], Value::Null);
    assert_eq!(plain["prefilled_text"], "Hi");
    let plain_code = plain["code"].as_str().unwrap();
    for path in [
        "/l/..%2F..%2Fevil.example".to_string(),
        "/l/https:%2F%2Fevil.example".to_string(),
        "/l/ZZZZZZ".to_string(),
        // An untracked link has no short address.
        format!("/l/{plain_code}"),
    ] {
        let r = browser()
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(r.headers().get("location").is_none(), "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }

    let (status, body) = create(&app, json!({"text": "Hi", "source": "<script>"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("source")
    );
    let (status, body) = create(
        &app,
        json!({"text": "x".repeat(130), "source": "website", "meta": true}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap().contains("140"));
    let (status, body) = create(&app, json!({"source": "website", "from": "nope"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));
    let (status, body) = create(&app, json!({"text": "Hi", "sorce": "website"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "malformed");
}

#[tokio::test]
async fn qr_codes_come_as_png_and_svg() {
    let app = links_app().await;
    let (_, made) = create(&app, json!({"text": "Hi", "source": "website"})).await;
    let code = made["code"].as_str().unwrap();
    let png = app
        .http
        .get(format!("{}/api/v1/links/{code}/qr.png", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.headers()["content-type"], "image/png");
    let bytes = png.bytes().await.unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let svg = app
        .http
        .get(format!("{}/api/v1/links/{code}/qr.svg", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(svg.status(), StatusCode::OK);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    let gif = app
        .http
        .get(format!("{}/api/v1/links/{code}/qr.gif", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(gif.status(), StatusCode::NOT_FOUND);
    let listed = app.list(&format!("{}/api/v1/links", app.base)).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["code"], code);
}

#[tokio::test]
async fn meta_qr_codes_through_the_cloud_api_client_and_the_sandbox() {
    let app = links_app().await;
    let (status, made) = create(
        &app,
        json!({"text": "Book a table", "source": "menu", "meta": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let meta_code = made["meta"]["code"].as_str().unwrap().to_string();
    assert_eq!(
        made["meta"]["deep_link_url"],
        format!("https://wa.me/message/{meta_code}")
    );

    let sender = &app.settings.senders[0];
    let client = ringback::cloud_api::Client::new(
        &app.sandbox,
        &app.settings.api_version,
        std::time::Duration::from_secs(5),
    );
    let token = &sender.access_token;
    let listed = client.list_qrs(PNID, token).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].prefilled_message,
        made["prefilled_text"].as_str().unwrap()
    );
    let png = client
        .create_qr(
            PNID,
            token,
            "Hello",
            ringback::cloud_api::qr::ImageFormat::Png,
        )
        .await
        .unwrap();
    let image = png.qr_image_url.expect("an image was asked for");
    let fetched = app.http.get(&image).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.headers()["content-type"], "image/png");

    let too_long = client
        .create_qr(
            PNID,
            token,
            &"x".repeat(141),
            ringback::cloud_api::qr::ImageFormat::Svg,
        )
        .await
        .unwrap_err();
    assert_eq!(too_long.code, Some(100));
    client.delete_qr(PNID, token, &png.code).await.unwrap();
    assert_eq!(client.list_qrs(PNID, token).await.unwrap().len(), 1);
    let gone = client.delete_qr(PNID, token, &png.code).await.unwrap_err();
    assert_eq!(gone.code, Some(100));
}

#[tokio::test]
async fn the_cli_makes_a_link_with_its_qr_files_and_lists_it() {
    if sqlite_only("the CLI test names a SQLite file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("cli.db").display());
    let png = dir.path().join("qr.png");
    let svg = dir.path().join("qr.svg");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringback"))
            .args(args)
            .env("RINGBACK_STORE__URL", &store)
            .env("RINGBACK_SERVER__PUBLIC_BASE_URL", BASE_URL)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = run(&[
        "links",
        "create",
        "--text",
        "Hi, I missed your call",
        "--source",
        "website",
        "--png",
        png.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(shown.contains("wa.me:     https://wa.me/"), "{shown}");
    assert!(
        shown.contains(&format!("tracked:   {BASE_URL}/l/")),
        "{shown}"
    );
    assert!(shown.contains('█'), "the QR code in the terminal: {shown}");
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    let json: Value = serde_json::from_str(&run(&[
        "links",
        "create",
        "--source",
        "flyer",
        "--untracked",
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["tracked"], false);
    let listed = run(&["links", "list"]);
    assert!(
        listed.contains("website") && listed.contains("flyer"),
        "{listed}"
    );
}

#[tokio::test]
async fn the_console_makes_a_link_and_shows_its_qr_code() {
    let app = links_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;
    let cookie = signed_in(&app, "ann@clinic.example").await;
    let html = page(&app, "/links", &cookie).await;
    assert!(html.contains("No link yet"));
    let made = browser()
        .post(format!("{}/links", app.base))
        .header("cookie", format!("rb_session={cookie}"))
        .form_body(&[
            ("csrf", &csrf_of(&html)),
            ("text", "<b>Hi</b>"),
            ("source", "website"),
            ("number", PNID),
        ])
        .send()
        .await
        .unwrap();
    // Answered with a redirect, so a reload makes nothing twice.
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let location = made.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/links?made="), "{location}");
    let body = page(&app, &location, &cookie).await;
    assert!(
        body.contains("&#60;b&#62;Hi&#60;/b&#62;"),
        "escaped: {body}"
    );
    assert!(!body.contains("<b>Hi"), "escaped: {body}");
    let stored = app.list(&format!("{}/api/v1/links", app.base)).await;
    let code = stored[0]["code"].as_str().unwrap();
    assert!(body.contains(&format!("src=\"/links/{code}/qr.svg\"")));
    assert!(body.contains(&format!("{BASE_URL}/l/{code}")));
    let qr = get(&app, &format!("/links/{code}/qr.png"), Some(&cookie)).await;
    assert_eq!(qr.status(), StatusCode::OK);
    assert_eq!(qr.headers()["content-type"], "image/png");
    let anonymous = get(&app, &format!("/links/{code}/qr.png"), None).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);

    let refused = browser()
        .post(format!("{}/links", app.base))
        .header("cookie", format!("rb_session={cookie}"))
        .form_body(&[("csrf", &csrf_of(&html)), ("source", "bad source!")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("must be 1-64 letters")
    );
}
