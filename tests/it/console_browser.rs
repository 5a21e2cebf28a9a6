//! The console in a real browser: headless Chromium (Debian's `chromium`) driven through
//! WebDriver (`chromedriver`, Debian's `chromium-driver`) with fantoccini. `scripts/test`
//! installs both through `scripts/install-test-tools`; run alone, this test says what is
//! missing.
//!
//! It signs in, watches a missed call appear on Today without a reload, checks that a
//! customer's name made of markup renders as text (and runs nothing), and saves a screenshot
//! of each page, desktop and phone sized, to `target/console-screenshots/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::*;

const PASSWORD: &str = "correct-horse-battery";

/// A chromedriver on a free port, stopped when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        for program in ["chromedriver", "chromium"] {
            let found = std::process::Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "the console's browser test needs {program}: install the Debian packages chromium and chromium-driver (scripts/install-test-tools does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        eventually_within(Duration::from_secs(20), || async {
            let r = http.get(format!("{url}/status")).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        Driver { child, url }
    }

    async fn browser(&self) -> Client {
        let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"]
            }
        }))
        .unwrap();
        ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(b: &Client, name: &str) {
    let png = b.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Waits for a CSS selector to match, with a deadline.
async fn appears(b: &Client, css: &str) -> fantoccini::elements::Element {
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
}

#[tokio::test]
async fn a_person_signs_in_and_sees_a_missed_call_arrive_live() {
    let app = spawn_app().await;
    let store = app.running.as_ref().unwrap().store.clone();
    ringback::users::create(
        store.as_ref(),
        "frontdesk@clinic.example",
        ringback::users::Role::Admin,
        PASSWORD,
    )
    .await
    .unwrap();
    let driver = Driver::start().await;
    let b = driver.browser().await;

    // Sign in: a wrong password first, then the right one.
    b.goto(&format!("{}/", app.base)).await.unwrap();
    appears(&b, "#sign-in").await;
    shoot(&b, "sign-in").await;
    b.find(Locator::Css("#email"))
        .await
        .unwrap()
        .send_keys("frontdesk@clinic.example")
        .await
        .unwrap();
    b.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys("wrong-password")
        .await
        .unwrap();
    b.find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = appears(&b, "#error").await.text().await.unwrap();
    assert!(
        error.contains("the email or the password is wrong"),
        "{error}"
    );
    b.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    b.find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    appears(&b, "#figure-missed").await;
    assert_eq!(b.current_url().await.unwrap().path(), "/today");
    let live = appears(&b, "#feed-state").await;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//span[@id='feed-state'][text()='live']"))
        .await
        .unwrap_or_else(|_| panic!("the feed did not connect"));
    drop(live);

    // A missed call appears without a reload: the marker set on this page survives.
    b.execute("window.notReloaded = true;", vec![])
        .await
        .unwrap();
    app.missed_call("browser-1", "+919876543210").await;
    let line = appears(&b, "#feed li.call_missed").await;
    let text = line.text().await.unwrap();
    assert!(
        text.contains("Missed call") && text.contains("+919876543210"),
        "{text}"
    );
    let same_page = b
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same_page, json!(true), "the page was reloaded");
    appears(&b, "#feed li.message_sent").await;

    // A customer whose WhatsApp name is a script: shown as text, never run.
    app.sandbox_post(
        "simulate/message",
        json!({"from": "+919876543299", "text": "Hello <b>there</b>",
               "name": "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned=2\">"}),
    )
    .await;
    let who = appears(&b, "#feed li.message_received .who")
        .await
        .text()
        .await
        .unwrap();
    assert!(who.contains("<script>window.pwned = 1</script>"), "{who}");
    let pwned = b
        .execute("return window.pwned === undefined;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, json!(true), "the customer's markup ran");
    // The same after a reload, when the server renders the line.
    b.refresh().await.unwrap();
    let rendered = appears(&b, "#feed li.message_received .who")
        .await
        .text()
        .await
        .unwrap();
    assert!(rendered.contains("<script>"), "{rendered}");
    let pwned = b
        .execute("return window.pwned === undefined;", vec![])
        .await
        .unwrap();
    assert_eq!(
        pwned,
        json!(true),
        "the customer's markup ran after a reload"
    );
    appears(&b, "#activity-chart canvas").await;
    shoot(&b, "today").await;

    // Conversations: the customer who wrote is inside the window; reply to them.
    b.goto(&format!("{}/conversations?q=98765%2043299", app.base))
        .await
        .unwrap();
    shoot(&b, "conversations").await;
    appears(&b, "#conversations a").await.click().await.unwrap();
    appears(&b, "#window.open").await;
    b.find(Locator::Css("#text"))
        .await
        .unwrap()
        .send_keys("Thanks for writing, we open at 9.")
        .await
        .unwrap();
    b.find(Locator::Css("#send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = appears(&b, "#notice").await.text().await.unwrap();
    assert!(notice.starts_with("Queued"), "{notice}");
    eventually(|| async {
        app.sandbox_sent()
            .await
            .iter()
            .any(|m| m["body"]["text"]["body"] == "Thanks for writing, we open at 9.")
            .then_some(())
    })
    .await;
    appears(&b, ".bubble.outbound").await;
    shoot(&b, "conversation").await;

    // The caller who only rang is outside the window: a template, its variables checked.
    b.goto(&format!("{}/conversations?q=98765%2043210", app.base))
        .await
        .unwrap();
    appears(&b, "#conversations a").await.click().await.unwrap();
    appears(&b, "#window.closed").await;
    assert!(
        b.find(Locator::Css("#text")).await.is_err(),
        "no free-form box"
    );
    let select = b.find(Locator::Css("#template")).await.unwrap();
    select
        .select_by_value("missed_call_followup|en_US")
        .await
        .unwrap();
    b.find(Locator::Css("#choose"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    appears(&b, "#var-1").await.send_keys("Asha").await.unwrap();
    b.find(Locator::Css("#var-3"))
        .await
        .unwrap()
        .send_keys("9:00")
        .await
        .unwrap();
    b.find(Locator::Css("#send-template"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let refused = appears(&b, "#error").await.text().await.unwrap();
    assert!(refused.contains("{{2}} is empty"), "{refused}");
    shoot(&b, "conversation-template-refused").await;
    b.find(Locator::Css("#var-2"))
        .await
        .unwrap()
        .send_keys("Demo Bakery")
        .await
        .unwrap();
    b.find(Locator::Css("#send-template"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    appears(&b, "#notice").await;

    b.goto(&format!("{}/calls", app.base)).await.unwrap();
    appears(&b, "#calls").await;
    shoot(&b, "calls").await;
    appears(&b, "#calls a").await.click().await.unwrap();
    appears(&b, "#timeline").await;
    shoot(&b, "message").await;
    b.goto(&format!("{}/messages", app.base)).await.unwrap();
    appears(&b, "#messages").await;
    shoot(&b, "messages").await;

    b.goto(&format!("{}/templates", app.base)).await.unwrap();
    appears(&b, "#templates").await;
    shoot(&b, "templates").await;
    app.sandbox_post(
        "numbers/throughput",
        json!({"phone_number_id": PNID, "per_second": 1000}),
    )
    .await;
    eventually(|| async {
        b.goto(&format!("{}/numbers", app.base)).await.ok()?;
        b.find(Locator::Css(".number .chart canvas")).await.ok()
    })
    .await;
    shoot(&b, "numbers").await;

    b.goto(&format!("{}/contacts?q=%2B919876543210", app.base))
        .await
        .unwrap();
    appears(&b, "#evidence")
        .await
        .send_keys("asked on the phone")
        .await
        .unwrap();
    b.find(Locator::Css("#to"))
        .await
        .unwrap()
        .send_keys("")
        .await
        .unwrap();
    b.find(Locator::Css("#record"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    appears(&b, "#notice").await;
    appears(&b, "#ledger").await;
    shoot(&b, "contacts").await;

    // A click-to-chat link: made in the form, shown with its QR code (an image that loaded).
    b.goto(&format!("{}/links", app.base)).await.unwrap();
    appears(&b, "#link-text")
        .await
        .send_keys("Hi, I missed your call")
        .await
        .unwrap();
    b.find(Locator::Css("#link-source"))
        .await
        .unwrap()
        .send_keys("flyer")
        .await
        .unwrap();
    b.find(Locator::Css("#make-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    appears(&b, "#made img.qr").await;
    let qr_width = eventually(|| async {
        let w = b
            .execute(
                "return document.querySelector('#made img.qr').naturalWidth;",
                vec![],
            )
            .await
            .ok()?;
        w.as_u64().filter(|w| *w > 0)
    })
    .await;
    assert!(qr_width >= 200, "the QR code image loaded: {qr_width}");
    shoot(&b, "links").await;

    for page in ["flows", "webhooks"] {
        b.goto(&format!("{}/{page}", app.base)).await.unwrap();
        appears(&b, "main h1").await;
        shoot(&b, page).await;
    }

    b.goto(&format!("{}/settings", app.base)).await.unwrap();
    appears(&b, "#users").await;
    shoot(&b, "settings").await;

    // Phone-sized.
    b.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{}/today", app.base)).await.unwrap();
    appears(&b, "#feed li.call_missed").await;
    let overflow = b
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, json!(true), "Today scrolls sideways on a phone");
    shoot(&b, "today-phone").await;

    // Signing out returns to the sign-in page, and Today asks to sign in again.
    b.find(Locator::Css(".signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    appears(&b, "#sign-in").await;
    b.goto(&format!("{}/today", app.base)).await.unwrap();
    appears(&b, "#sign-in").await;
    b.close().await.unwrap();
}
