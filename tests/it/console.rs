//! The web console over HTTP: the first admin from the one-time link, signing in and out,
//! limits on guessing, CSRF and cross-site posts, roles, expired sessions, escaping of what
//! customers write, and the live feed. (The same pages in a real browser:
//! `console_browser.rs`.)

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;

use crate::support::*;

pub(crate) const PASSWORD: &str = "correct-horse-battery";

/// A client that shows redirects instead of following them, so a test sees the 303s and
/// the cookie.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// An HTML form's body (`application/x-www-form-urlencoded`).
pub(crate) trait FormBody {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

/// The session token a response sets.
fn session_cookie(res: &reqwest::Response) -> String {
    let set = res
        .headers()
        .get("set-cookie")
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';')
        .next()
        .unwrap()
        .strip_prefix("rb_session=")
        .expect("the rb_session cookie")
        .to_string()
}

pub(crate) async fn create_user(app: &TestApp, email: &str, role: ringback::users::Role) {
    let store = &app.running.as_ref().unwrap().store;
    ringback::users::create(store.as_ref(), email, role, PASSWORD)
        .await
        .expect("user created");
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    browser()
        .post(format!("{}/sign-in", app.base))
        .form_body(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

/// Signs in and returns the session cookie.
pub(crate) async fn signed_in(app: &TestApp, email: &str) -> String {
    let res = sign_in(app, email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/today");
    session_cookie(&res)
}

pub(crate) async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut req = browser().get(format!("{}{path}", app.base));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("rb_session={c}"));
    }
    req.send().await.unwrap()
}

/// The body of a page that must have answered 200 with HTML.
pub(crate) async fn page(app: &TestApp, path: &str, cookie: &str) -> String {
    let res = get(app, path, Some(cookie)).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    res.text().await.unwrap()
}

/// The CSRF token a page's forms carry.
pub(crate) fn csrf_of(html: &str) -> String {
    let needle = "name=\"csrf\" value=\"";
    let at = html.find(needle).expect("a csrf field") + needle.len();
    html[at..at + 64].to_string()
}

/// The value on a Today card.
fn figure(html: &str, id: &str) -> String {
    let card = &html[html.find(&format!("id=\"figure-{id}\"")).expect("the card")..];
    let needle = "class=\"value\">";
    let value = &card[card.find(needle).unwrap() + needle.len()..];
    value[..value.find('<').unwrap()].to_string()
}

#[tokio::test]
async fn the_first_admin_comes_from_the_one_time_link_which_works_once() {
    let app = spawn_app().await;
    let token = app
        .running
        .as_ref()
        .unwrap()
        .setup_token
        .clone()
        .expect("no user yet, loopback: a setup link");
    let form = get(&app, &format!("/setup?token={token}"), None).await;
    assert_eq!(form.status(), StatusCode::OK);
    let wrong = get(&app, "/setup?token=0000", None).await;
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);

    let post = |password: &'static str| {
        let base = app.base.clone();
        let token = token.clone();
        async move {
            browser()
                .post(format!("{base}/setup"))
                .form_body(&[
                    ("token", token.as_str()),
                    ("email", "Owner@Clinic.example"),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let short = post("short").await;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    assert!(short.text().await.unwrap().contains("use at least 10"));

    let made = post(PASSWORD).await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&made);
    let today = page(&app, "/today", &cookie).await;
    assert!(today.contains("owner@clinic.example (admin)"), "{today}");

    let again = post(PASSWORD).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("This link has been used")
    );
    let users = app.running.as_ref().unwrap().store.users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].role, "admin");
}

#[tokio::test]
async fn signing_in_opens_today_and_signing_out_ends_the_session() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;

    let anonymous = get(&app, "/today", None).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers()["location"], "/sign-in");

    let wrong = sign_in(&app, "ann@clinic.example", "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    let body = wrong.text().await.unwrap();
    assert!(
        body.contains("the email or the password is wrong"),
        "{body}"
    );
    // An unknown email reads exactly the same.
    let unknown = sign_in(&app, "nobody@clinic.example", PASSWORD).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    // Emails are compared in lower case.
    let cookie = signed_in(&app, "Ann@Clinic.Example").await;
    let today = page(&app, "/today", &cookie).await;
    assert!(today.contains("ann@clinic.example (agent)"));

    // Signing out needs the session's CSRF token…
    let forged = browser()
        .post(format!("{}/sign-out", app.base))
        .header("cookie", format!("rb_session={cookie}"))
        .form_body(&[("csrf", &"0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get(&app, "/today", Some(&cookie)).await.status(),
        StatusCode::OK,
        "a forged sign-out ends nothing"
    );
    let out = browser()
        .post(format!("{}/sign-out", app.base))
        .header("cookie", format!("rb_session={cookie}"))
        .form_body(&[("csrf", &csrf_of(&today))])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // …and the old cookie opens nothing any more.
    let after = get(&app, "/today", Some(&cookie)).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn guessing_a_password_is_slowed_per_account() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Admin).await;
    // A right password in between does not count against the account.
    assert_eq!(
        sign_in(&app, "ann@clinic.example", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    for _ in 0..6 {
        let r = sign_in(&app, "ann@clinic.example", "guess-guess-guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password waits now: the limit does not tell a guesser when they hit it.
    let limited = sign_in(&app, "ann@clinic.example", PASSWORD).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&retry), "{retry}");
    assert!(
        limited
            .text()
            .await
            .unwrap()
            .contains("too many sign-in attempts")
    );
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Admin).await;
    let r = browser()
        .post(format!("{}/sign-in", app.base))
        .header("origin", "https://evil.example")
        .form_body(&[("email", "ann@clinic.example"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("https://evil.example"));
    // The same form from the console's own origin works.
    let host = app.base.trim_start_matches("http://").to_string();
    let ok = browser()
        .post(format!("{}/sign-in", app.base))
        .header("origin", format!("http://{host}"))
        .form_body(&[("email", "ann@clinic.example"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_agent_cannot_open_settings_and_an_admin_sees_users_and_keys() {
    let app = spawn_app().await;
    create_user(&app, "agent@clinic.example", ringback::users::Role::Agent).await;
    create_user(&app, "boss@clinic.example", ringback::users::Role::Admin).await;
    let agent = signed_in(&app, "agent@clinic.example").await;
    let refused = get(&app, "/settings", Some(&agent)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("For admins only"));
    assert!(
        !page(&app, "/today", &agent)
            .await
            .contains("href=\"/settings\"")
    );

    let admin = signed_in(&app, "boss@clinic.example").await;
    let settings = page(&app, "/settings", &admin).await;
    assert!(settings.contains("agent@clinic.example") && settings.contains("boss@clinic.example"));
    assert!(
        !settings.contains("$argon2"),
        "no password hash on any page"
    );
}

#[tokio::test]
async fn an_expired_session_goes_back_to_sign_in() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Admin).await;
    let store = &app.running.as_ref().unwrap().store;
    let (user, _) = store
        .user_credentials("ann@clinic.example")
        .await
        .unwrap()
        .unwrap();
    let now = ringback::time::now_ms();
    store
        .create_session(&ringback::store::NewSession {
            token_hash: ringback::api_keys::hash("expired-token"),
            user_id: user.id,
            csrf: "c".repeat(64),
            created_at: now - 13 * 3_600_000,
            expires_at: now - 3_600_000,
        })
        .await
        .unwrap();
    let r = get(&app, "/today", Some("expired-token")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/sign-in");
}

#[tokio::test]
async fn a_customer_name_with_markup_is_shown_as_text() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;
    let cookie = signed_in(&app, "ann@clinic.example").await;
    app.sandbox_post(
        "simulate/message",
        json!({"from": "+919876543210", "text": "<img src=x onerror=alert(2)>", "name": "<script>alert(1)</script>"}),
    )
    .await;
    let today = eventually(|| async {
        let body = page(&app, "/today", &cookie).await;
        body.contains("class=\"line message_received\"")
            .then_some(body)
    })
    .await;
    assert!(
        today.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || today.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{today}"
    );
    assert!(!today.contains("<script>alert(1)"));
    assert!(!today.contains("<img src=x"));
    // And were markup to slip through, the policy allows no inline script.
    let res = get(&app, "/today", Some(&cookie)).await;
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
}

#[tokio::test]
async fn the_live_feed_sends_a_missed_call_as_it_happens() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;
    let cookie = signed_in(&app, "ann@clinic.example").await;
    let feed = get(&app, "/today/feed", Some(&cookie)).await;
    assert_eq!(feed.status(), StatusCode::OK);
    assert!(
        feed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(
        app.missed_call("feed-1", "+919876543210").await.status(),
        StatusCode::ACCEPTED
    );
    let mut feed = feed;
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = feed.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("\"what\":\"Missed call\"") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(found, Ok(true)), "the feed sent: {seen}");
    assert!(
        seen.contains("event: line") && seen.contains("+919876543210"),
        "{seen}"
    );
    // Without a session there is no feed.
    let anonymous = get(&app, "/today/feed", None).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn today_counts_the_missed_calls_and_the_replies() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;
    let cookie = signed_in(&app, "ann@clinic.example").await;
    for (i, from) in ["+919876543210", "+919876543211"].iter().enumerate() {
        app.missed_call(&format!("count-{i}"), from).await;
    }
    let last = std::sync::Mutex::new(String::new());
    eventually_or(
        Duration::from_secs(10),
        || async {
            let body = page(&app, "/today", &cookie).await;
            let counted = figure(&body, "missed") == "2" && figure(&body, "sent") == "2";
            *last.lock().unwrap() = format!(
                "missed {}, sent {}",
                figure(&body, "missed"),
                figure(&body, "sent")
            );
            counted.then_some(())
        },
        || last.lock().unwrap().clone(),
    )
    .await;
}

#[tokio::test]
async fn the_console_can_be_turned_off() {
    let app = spawn_app_with(&[("RINGBACK_CONSOLE__ENABLED", "false")]).await;
    assert!(app.running.as_ref().unwrap().setup_token.is_none());
    let r = get(&app, "/sign-in", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("json")
    );
}

#[tokio::test]
async fn users_create_reads_the_password_from_stdin_and_stores_only_its_hash() {
    if sqlite_only("the CLI test names a SQLite file") {
        return;
    }
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("cli.db").display());
    let run = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ringback"))
            .args(args)
            .env("RINGBACK_STORE__URL", &store)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let create = [
        "users",
        "create",
        "--email",
        "ann@clinic.example",
        "--role",
        "admin",
        "--password-stdin",
    ];
    let short = run(&create, "short\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("use at least 10"));
    let made = run(&create, &format!("{PASSWORD}\n"));
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let again = run(&create, &format!("{PASSWORD}\n"));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let list = run(&["users", "list"], "");
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        listed.contains("ann@clinic.example") && listed.contains("admin"),
        "{listed}"
    );
    assert!(!listed.contains("$argon2"));

    let opened = ringback::store::open(&store).await.unwrap();
    let (_, hash) = opened
        .user_credentials("ann@clinic.example")
        .await
        .unwrap()
        .unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains(PASSWORD));
    let sessions = ringback::users::Sessions::new(Duration::from_secs(60));
    let ip = "127.0.0.1".parse().unwrap();
    assert!(
        sessions
            .sign_in(opened.as_ref(), "ann@clinic.example", PASSWORD, ip)
            .await
            .is_ok()
    );

    let disabled = run(&["users", "disable", "ann@clinic.example"], "");
    assert!(disabled.status.success());
    assert!(matches!(
        sessions
            .sign_in(opened.as_ref(), "ann@clinic.example", PASSWORD, ip)
            .await,
        Err(ringback::users::SignInError::Wrong)
    ));
}

/// The value of a hidden field a page's form carries.
pub(crate) fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&needle)
        .unwrap_or_else(|| panic!("a {name} field"))
        + needle.len();
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

/// The id of the conversation with `contact` (digits), once it exists.
async fn conversation_of(app: &TestApp, contact: &str) -> String {
    eventually(|| async {
        app.list(&format!(
            "{}/api/v1/conversations?contact={contact}",
            app.base
        ))
        .await
        .first()
        .and_then(|c| c["id"].as_str().map(str::to_string))
    })
    .await
}

/// Posts a conversation's form with the page's CSRF token and one-time key.
pub(crate) async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    page_html: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = csrf_of(page_html);
    let idem = hidden(page_html, "idem");
    let mut all = vec![("csrf", csrf.as_str()), ("idem", idem.as_str())];
    all.extend_from_slice(fields);
    browser()
        .post(format!("{}{path}", app.base))
        .header("cookie", format!("rb_session={cookie}"))
        .form_body(&all)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_person_finds_a_conversation_and_replies_inside_the_window_once() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;
    let cookie = signed_in(&app, "ann@clinic.example").await;
    app.user_writes("+919876543210", "Are you open today?")
        .await;
    let id = conversation_of(&app, "919876543210").await;

    // Found by name and by part of the number; not by a name it does not have.
    for q in ["asha", "98765 43", "%2B91"] {
        let list = page(&app, &format!("/conversations?q={q}"), &cookie).await;
        assert!(
            list.contains(&format!("/conversations/{id}")),
            "{q}: {list}"
        );
    }
    let none = page(&app, "/conversations?q=zebra", &cookie).await;
    assert!(none.contains("No conversation matches"));

    let html = page(&app, &format!("/conversations/{id}"), &cookie).await;
    assert!(html.contains("Are you open today?"), "{html}");
    assert!(
        html.contains("open: 23 h") || html.contains("open: 24 h"),
        "{html}"
    );
    let r = post_form(
        &app,
        &cookie,
        &format!("/conversations/{id}/reply"),
        &html,
        &[("text", "Yes, until 6 pm.")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        format!("/conversations/{id}?sent=1").as_str()
    );
    // The same form sent twice (a double click) queues one message.
    let again = post_form(
        &app,
        &cookie,
        &format!("/conversations/{id}/reply"),
        &html,
        &[("text", "Yes, until 6 pm.")],
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("This form was sent already")
    );
    let sent = eventually(|| async {
        let sent: Vec<_> = app
            .sandbox_sent()
            .await
            .into_iter()
            .filter(|m| m["body"]["text"]["body"] == "Yes, until 6 pm.")
            .collect();
        (!sent.is_empty()).then_some(sent)
    })
    .await;
    assert_eq!(sent.len(), 1);
    // The reply joins the transcript once WhatsApp accepted it.
    eventually(|| async {
        let html = page(&app, &format!("/conversations/{id}"), &cookie).await;
        html.contains("bubble outbound").then_some(())
    })
    .await;

    // An empty message is refused with the sentence, nothing is queued.
    let empty = post_form(
        &app,
        &cookie,
        &format!("/conversations/{id}/reply"),
        &html,
        &[("text", "  ")],
    )
    .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty
            .text()
            .await
            .unwrap()
            .contains("WhatsApp allows 1 to 4096")
    );
}

#[tokio::test]
async fn outside_the_window_a_template_is_checked_then_sent() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;
    let cookie = signed_in(&app, "ann@clinic.example").await;
    app.templates_synced().await;
    app.missed_call("tpl-1", "+919876543210").await;
    let id = conversation_of(&app, "919876543210").await;
    let html = page(&app, &format!("/conversations/{id}"), &cookie).await;
    assert!(html.contains("closed: only an approved template"), "{html}");
    assert!(
        !html.contains("name=\"text\""),
        "no free-form box outside the window"
    );

    let chosen = page(
        &app,
        &format!("/conversations/{id}?template=missed_call_followup%7Cen_US"),
        &cookie,
    )
    .await;
    assert!(chosen.contains("name=\"var.1\""), "{chosen}");
    let path = format!("/conversations/{id}/template");
    let template = ("template", "missed_call_followup|en_US");
    // A variable left empty: the policy's sentence, and the values typed stay.
    let missing = post_form(
        &app,
        &cookie,
        &path,
        &chosen,
        &[
            template,
            ("var.1", "Asha"),
            ("var.2", ""),
            ("var.3", "9:00"),
        ],
    )
    .await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = missing.text().await.unwrap();
    assert!(
        body.contains("Fill in every variable: {{2}} is empty"),
        "{body}"
    );
    assert!(body.contains("value=\"Asha\""), "{body}");
    // A template the registry does not know: the send policy's own sentence.
    let unknown = post_form(
        &app,
        &cookie,
        &path,
        &chosen,
        &[("template", "no_such_template|en_US"), ("var.1", "Asha")],
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = unknown.text().await.unwrap();
    assert!(body.contains("no_such_template"), "{body}");
    let before = app.sandbox_sent().await.len();

    let ok = post_form(
        &app,
        &cookie,
        &path,
        &chosen,
        &[
            template,
            ("var.1", "Asha"),
            ("var.2", "Demo Bakery"),
            ("var.3", "9:00"),
        ],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    eventually(|| async {
        let sent = app.sandbox_sent().await;
        (sent.len() > before
            && sent.iter().any(|m| {
                m["body"]["template"]["components"]
                    .to_string()
                    .contains("Demo Bakery")
            }))
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_person_closes_a_conversation() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;
    let cookie = signed_in(&app, "ann@clinic.example").await;
    app.user_writes("+919876543210", "Hello").await;
    let id = conversation_of(&app, "919876543210").await;
    let html = page(&app, &format!("/conversations/{id}"), &cookie).await;
    let r = post_form(
        &app,
        &cookie,
        &format!("/conversations/{id}/close"),
        &html,
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    eventually(|| async {
        let c = app
            .get_json(&format!("{}/api/v1/conversations/{id}", app.base))
            .await;
        (c["state"] == "ended").then_some(())
    })
    .await;
    let ended = page(&app, &format!("/conversations/{id}"), &cookie).await;
    assert!(ended.contains("ended ("), "{ended}");
    assert!(
        !ended.contains("/close"),
        "no reply box on an ended conversation"
    );
    let unknown = get(&app, "/conversations/cnv_nope", Some(&cookie)).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn calls_and_messages_show_the_decision_and_metas_error_in_words() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;
    let cookie = signed_in(&app, "ann@clinic.example").await;
    app.fault(json!([{"code": 131026}])).await;
    app.missed_call("words-1", "+919876500201").await;
    let call = app.decided_call("words-1").await;
    let id = call["message_id"].as_str().unwrap().to_string();
    app.message_in_state(&id, "failed").await;

    let calls = page(&app, "/calls", &cookie).await;
    assert!(
        calls.contains("+919876500201") && calls.contains("<strong>replied</strong>"),
        "{calls}"
    );
    assert!(calls.contains("customer service window closed"), "{calls}");
    assert!(calls.contains(&format!("href=\"/messages/{id}\"")));

    let list = page(&app, "/messages", &cookie).await;
    assert!(
        list.contains(&format!("/messages/{id}")) && list.contains("(#131026)"),
        "{list}"
    );
    let one = page(&app, &format!("/messages/{id}"), &cookie).await;
    assert!(
        one.contains("Decided") && one.contains("Attempt 1"),
        "{one}"
    );
    assert!(one.contains("(#131026)") && one.contains("Fix:"), "{one}");
    assert!(
        one.contains("missed_call_followup"),
        "the content in words: {one}"
    );
    let unknown = get(&app, "/messages/msg_nope", Some(&cookie)).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn templates_and_numbers_show_what_meta_said() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;
    let cookie = signed_in(&app, "ann@clinic.example").await;
    app.templates_synced().await;
    let templates = page(&app, "/templates", &cookie).await;
    assert!(
        templates.contains("missed_call_followup") && templates.contains("approved"),
        "{templates}"
    );
    assert!(templates.contains("Hi "), "a preview: {templates}");

    app.sandbox_post(
        "numbers/throughput",
        json!({"phone_number_id": PNID, "per_second": 1000}),
    )
    .await;
    let numbers = eventually(|| async {
        let html = page(&app, "/numbers", &cookie).await;
        html.contains("THROUGHPUT_UPGRADE").then_some(html)
    })
    .await;
    assert!(
        numbers.contains("+15550100001") && numbers.contains("online"),
        "{numbers}"
    );
    assert!(numbers.contains("class=\"chart\""), "{numbers}");
}

#[tokio::test]
async fn consent_is_recorded_by_hand_shown_per_contact_and_exported_without_formulas() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;
    let cookie = signed_in(&app, "ann@clinic.example").await;
    let html = page(&app, "/contacts", &cookie).await;
    let record = |evidence: &'static str, to: &'static str| {
        let html = html.clone();
        let app = &app;
        let cookie = cookie.clone();
        async move {
            browser()
                .post(format!("{}/contacts/consent", app.base))
                .header("cookie", format!("rb_session={cookie}"))
                .form_body(&[
                    ("csrf", csrf_of(&html).as_str()),
                    ("to", to),
                    ("action", "opt_out"),
                    ("category", "marketing"),
                    ("evidence", evidence),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let bad = record("asked on the phone", "not a number").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("id=\"error\""));
    let ok = record("=HYPERLINK(\"http://evil.example\")", "+91 98765 43210").await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let ledger = page(&app, "/contacts?q=%2B919876543210", &cookie).await;
    assert!(
        ledger.contains("<strong>opt_out</strong>") && ledger.contains("console"),
        "{ledger}"
    );
    assert!(
        ledger.contains("recorded by ann@clinic.example"),
        "{ledger}"
    );

    let csv = get(&app, "/contacts/export.csv", Some(&cookie)).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("consent-ledger.csv")
    );
    let text = csv.text().await.unwrap();
    assert!(text.contains("'=HYPERLINK"), "{text}");
    assert!(
        !text.contains(",=HYPERLINK") && !text.contains("\"=HYPERLINK"),
        "{text}"
    );
    // The export needs a session like every page.
    assert_eq!(
        get(&app, "/contacts/export.csv", None).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_admin_adds_and_disables_users_and_creates_and_revokes_keys() {
    let app = spawn_app().await;
    create_user(&app, "boss@clinic.example", ringback::users::Role::Admin).await;
    create_user(&app, "desk@clinic.example", ringback::users::Role::Agent).await;
    let admin = signed_in(&app, "boss@clinic.example").await;
    let html = page(&app, "/settings", &admin).await;
    // The configuration in effect, without a secret.
    assert!(html.contains("id=\"config\""), "{html}");
    assert!(
        !html.contains(CALLS_SECRET) && !html.contains(APP_SECRET),
        "{html}"
    );
    assert!(
        html.contains("&#60;redacted&#62;") || html.contains("&lt;redacted&gt;"),
        "{html}"
    );

    let post = |path: &'static str, fields: Vec<(&'static str, String)>, cookie: String| {
        let app = &app;
        let csrf = csrf_of(&html);
        async move {
            let mut all = vec![("csrf", csrf)];
            all.extend(fields);
            let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser()
                .post(format!("{}{path}", app.base))
                .header("cookie", format!("rb_session={cookie}"))
                .form_body(&pairs)
                .send()
                .await
                .unwrap()
        }
    };
    let short = post(
        "/settings/users",
        vec![
            ("email", "new@clinic.example".into()),
            ("role", "agent".into()),
            ("password", "short".into()),
        ],
        admin.clone(),
    )
    .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let added = post(
        "/settings/users",
        vec![
            ("email", "new@clinic.example".into()),
            ("role", "agent".into()),
            ("password", PASSWORD.into()),
        ],
        admin.clone(),
    )
    .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    signed_in(&app, "new@clinic.example").await;

    let desk = signed_in(&app, "desk@clinic.example").await;
    let disabled = post(
        "/settings/users/disable",
        vec![("email", "desk@clinic.example".into())],
        admin.clone(),
    )
    .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    assert_eq!(
        get(&app, "/today", Some(&desk)).await.status(),
        StatusCode::SEE_OTHER,
        "their session ended"
    );
    assert_eq!(
        sign_in(&app, "desk@clinic.example", PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // An agent cannot create keys even with a valid form of their own.
    let agent = signed_in(&app, "new@clinic.example").await;
    let agent_page = page(&app, "/today", &agent).await;
    let forbidden = browser()
        .post(format!("{}/settings/keys", app.base))
        .header("cookie", format!("rb_session={agent}"))
        .form_body(&[("csrf", &csrf_of(&agent_page)), ("name", "crm")])
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);

    let created = post(
        "/settings/keys",
        vec![("name", "crm".into())],
        admin.clone(),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let body = created.text().await.unwrap();
    let at = body.find("id=\"new-key\">").unwrap() + 13;
    let key = body[at..at + body[at..].find('<').unwrap()].to_string();
    assert!(key.starts_with("rbk_"), "{key}");
    let api = |key: String| {
        let base = app.base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{base}/api/v1/messages"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(api(key.clone()).await, StatusCode::OK);
    // Shown once: the page does not show it again.
    assert!(!page(&app, "/settings", &admin).await.contains(&key));
    let id = app
        .running
        .as_ref()
        .unwrap()
        .store
        .api_keys()
        .await
        .unwrap()[0]
        .id
        .clone();
    let revoked = post("/settings/keys/revoke", vec![("id", id)], admin.clone()).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(api(key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn flows_and_webhooks_pages_show_runs_with_their_timeline_and_deliveries_with_attempts() {
    let app = spawn_app().await;
    create_user(&app, "ann@clinic.example", ringback::users::Role::Agent).await;
    create_user(&app, "owner@clinic.example", ringback::users::Role::Admin).await;
    // Step inputs and endpoint URLs can hold secrets: admins only.
    let agent = signed_in(&app, "ann@clinic.example").await;
    for path in ["/flows", "/webhooks"] {
        let r = get(&app, path, Some(&agent)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let cookie = signed_in(&app, "owner@clinic.example").await;
    assert!(page(&app, "/flows", &cookie).await.contains("No flow yet"));
    assert!(
        page(&app, "/webhooks", &cookie)
            .await
            .contains("No endpoint yet")
    );

    // A flow whose run fails (free-form text with the customer's window closed).
    let flow = "name = \"strict\"\n[trigger]\non = \"manual\"\n[[steps]]\nid = \"note\"\ntype = \"send_text\"\nto = \"{{ trigger.phone }}\"\ntext = \"Your order is ready.\"\nretry = { attempts = 1, wait = \"1s\" }\n";
    let r = app
        .http
        .post(format!("{}/api/v1/flows", app.base))
        .json(&json!({"source": flow}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .http
        .post(format!("{}/api/v1/flows/strict/runs", app.base))
        .json(&json!({"phone": "+919876500401"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let run: serde_json::Value = r.json().await.unwrap();
    let id = run["run_id"].as_str().unwrap().to_string();
    let flows = eventually(|| async {
        let html = page(&app, "/flows?state=failed", &cookie).await;
        html.contains(&id).then_some(html)
    })
    .await;
    assert!(
        flows.contains("strict") && flows.contains("manual"),
        "{flows}"
    );
    let shown = page(&app, &format!("/flows/runs/{id}"), &cookie).await;
    assert!(shown.contains("id=\"timeline\""));
    assert!(shown.contains("outside_window"), "{shown}");
    let missing = get(&app, "/flows/runs/run_nope", Some(&cookie)).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // An endpoint nobody answers: its delivery and its failed attempts.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook?token=abc", closed.local_addr().unwrap());
    drop(closed);
    let r = app
        .http
        .post(format!("{}/api/v1/webhook-endpoints", app.base))
        .json(&json!({"url": url, "events": ["call.missed"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    app.missed_call("console-hook-1", "+919876500402").await;
    let delivery = eventually(|| async {
        let list = app
            .list(&format!("{}/api/v1/webhook-deliveries", app.base))
            .await;
        list.into_iter()
            .find(|d| d["attempts"].as_u64() >= Some(1))
            .map(|d| d["id"].as_i64().unwrap())
    })
    .await;
    let hooks = page(&app, "/webhooks", &cookie).await;
    assert!(
        hooks.contains("/hook?token=***") && !hooks.contains("token=abc"),
        "{hooks}"
    );
    assert!(hooks.contains("call.missed"));
    assert!(hooks.contains(&format!("/webhooks/deliveries/{delivery}")));
    let one = page(&app, &format!("/webhooks/deliveries/{delivery}"), &cookie).await;
    assert!(one.contains("id=\"attempts\""));
    let missing = get(&app, "/webhooks/deliveries/abc", Some(&cookie)).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
