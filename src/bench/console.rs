//! `ringback bench --console`: the web console on a big store. A temporary SQLite store is
//! filled with plain SQL — `--contacts` customers, each with a conversation, a missed call and
//! a consent record, and `--messages` messages (half theirs, half ours, each of ours with its
//! attempt and status), with an event per message over the last 30 days — then the server
//! starts on it, an admin signs in, and every page is fetched over HTTP on loopback (p50 /
//! p99 of the time to the last byte). Last, the live feed: a missed call is posted and timed
//! until its line arrives on `/today/feed`.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::summary::grouped;
use crate::config::Config;

/// Requests per page.
const REQUESTS: usize = 200;

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    super::percentile(&v, p)
}

/// Fills the store: each statement makes its rows from a recursive counter, so a million
/// rows take seconds and no Rust-side loop.
async fn seed(url: &str, sender: &str, contacts: usize, messages: usize) -> anyhow::Result<()> {
    // The rows refer to one another as the server writes them, except inbound messages,
    // which would each need their webhook's rows: the checks are off for this connection.
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.foreign_keys(false))
        .await?;
    let now = crate::time::now_ms();
    let per = (messages / contacts).max(2) as i64;
    let contacts = contacts as i64;
    let total = contacts * per;
    // Customers spread over the last 30 days, a minute-ish apart; their messages a second apart.
    let span = 30 * 24 * 3_600_000_i64;
    let step = span / contacts;
    let counter = |n: i64| {
        format!("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {n} - 1)")
    };
    let mut tx = pool.begin().await?;
    let statements = [
        format!(
            "{} INSERT INTO contacts (sender_id, wa_id, name, last_inbound_at)
             SELECT $1, '9198' || printf('%08d', i), 'Customer ' || i, $2 - ({contacts} - i) * {step} FROM n",
            counter(contacts)
        ),
        format!(
            "{} INSERT INTO conversations (id, sender_id, contact, contact_name, kind, started_at, last_message_at,
                 message_count, ended_at, end_reason)
             SELECT 'conv_bench' || printf('%08d', i), $1, '9198' || printf('%08d', i), 'Customer ' || i,
                 'missed_call', $2 - ({contacts} - i) * {step}, $2 - ({contacts} - i) * {step} + {per} * 1000, {per},
                 CASE WHEN i % 10 = 0 THEN NULL ELSE $2 - ({contacts} - i) * {step} + 86400000 END,
                 CASE WHEN i % 10 = 0 THEN NULL ELSE 'inactivity' END
             FROM n",
            counter(contacts)
        ),
        format!(
            "{} INSERT INTO calls (source, provider_call_id, sender_id, caller_raw, caller_e164, callee_raw, outcome,
                 ring_seconds, missed, decision, reason, message_id, occurred_at)
             SELECT 'generic', 'bench-' || i, $1, '+9198' || printf('%08d', i), '+9198' || printf('%08d', i),
                 '+15550100001', 'no-answer', 25, 1, 'replied',
                 'missed (no answer); customer service window closed → template missed_call_followup (en_US)',
                 'msg_bench' || printf('%09d', i * {per} + 1), $2 - ({contacts} - i) * {step}
             FROM n",
            counter(contacts)
        ),
        format!(
            "{} INSERT INTO consent_records (sender_id, subject, wa_id, category, action, source, evidence, at)
             SELECT $1, '9198' || printf('%08d', i), '9198' || printf('%08d', i), 'utility', 'opt_in', 'missed_call',
                 'called the business', $2 - ({contacts} - i) * {step}
             FROM n",
            counter(contacts)
        ),
        format!(
            "{} INSERT INTO conversation_messages (conversation_id, seq, direction, message_id, wamid, kind, text,
                 status, at, status_at)
             SELECT 'conv_bench' || printf('%08d', i / {per}), i % {per} + 1,
                 CASE WHEN i % 2 = 1 THEN 'inbound' ELSE 'outbound' END,
                 CASE WHEN i % 2 = 1 THEN 'wamid.bench.' || i ELSE 'msg_bench' || printf('%09d', i) END,
                 'wamid.bench.' || i, 'text',
                 'Message ' || (i % {per} + 1) || ': do you have a table for four tonight?',
                 CASE WHEN i % 2 = 1 THEN 'received' ELSE 'read' END,
                 $2 - ({contacts} - i / {per}) * {step} + (i % {per}) * 1000,
                 $2 - ({contacts} - i / {per}) * {step} + (i % {per}) * 1000
             FROM n",
            counter(total)
        ),
        format!(
            "{} INSERT INTO messages (id, sender_id, to_number, kind, body_json, reason, state, wamid, attempts,
                 next_attempt_at, created_at, updated_at)
             SELECT 'msg_bench' || printf('%09d', i), $1, '+9198' || printf('%08d', i / {per}), 'text',
                 '{{\"messaging_product\":\"whatsapp\",\"to\":\"+9198' || printf('%08d', i / {per}) || '\",\"type\":\"text\",\"text\":{{\"body\":\"Yes, we do.\"}}}}',
                 'reply inside the customer service window', 'read', 'wamid.bench.' || i, 1,
                 $2 - ({contacts} - i / {per}) * {step} + (i % {per}) * 1000,
                 $2 - ({contacts} - i / {per}) * {step} + (i % {per}) * 1000,
                 $2 - ({contacts} - i / {per}) * {step} + (i % {per}) * 1000
             FROM n WHERE i % 2 = 0",
            counter(total)
        ),
        "INSERT INTO attempts (message_id, attempt_no, started_at, finished_at, outcome)
         SELECT id, 1, created_at, created_at + 40, 'accepted' FROM messages WHERE id LIKE 'msg_bench%'"
            .to_string(),
        "INSERT INTO message_statuses (wamid, status, message_id, at)
         SELECT wamid, 'read', id, created_at + 5000 FROM messages WHERE id LIKE 'msg_bench%'"
            .to_string(),
        format!(
            "{} INSERT INTO inbound_messages (wamid, sender_id, from_wa_id, message_type, text, unknown_type, sent_at, event_id)
             SELECT 'wamid.bench.' || i, $1, '9198' || printf('%08d', i / {per}), 'text', 'Do you have a table?', 0,
                 $2 - ({contacts} - i / {per}) * {step} + (i % {per}) * 1000, 0
             FROM n WHERE i % 2 = 1",
            counter(total)
        ),
        // One event per message (received or sent), in time order, as the tracker publishes.
        format!(
            "{} INSERT INTO events (type, at, conversation_id, data_json)
             SELECT CASE WHEN i % 2 = 1 THEN 'message.received' ELSE 'message.sent' END,
                 $2 - ({contacts} - i / {per}) * {step} + (i % {per}) * 1000,
                 'conv_bench' || printf('%08d', i / {per}),
                 '{{\"message\":{{\"id\":\"wamid.bench.' || i || '\",\"type\":\"text\",\"text\":\"Do you have a table?\"}},\"customer\":{{\"contact\":\"9198' || printf('%08d', i / {per}) || '\",\"phone\":\"+9198' || printf('%08d', i / {per}) || '\",\"name\":\"Customer\"}}}}'
             FROM n",
            counter(total)
        ),
    ];
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(sender)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    // No ANALYZE: Ringback never runs it, so the planner works without statistics, as here.
    // (With them, SQLite's STAT4 — on in the bundled build — plans a range query again at
    // every new bound value: 2-4 ms per `id >= ?` probe through sqlx.)
    pool.close().await;
    Ok(())
}

/// The session cookie of a fresh admin.
async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    store: &dyn crate::store::Store,
) -> anyhow::Result<String> {
    let password = "bench-password-123";
    crate::users::create(
        store,
        "bench@ringback.example",
        crate::users::Role::Admin,
        password,
    )
    .await?;
    let body = format!("email=bench%40ringback.example&password={password}");
    let r = client
        .post(format!("{base}/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 303, "sign-in answered {}", r.status());
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(set.split(';').next().unwrap_or_default().to_string())
}

/// The time from posting a missed call to its line on the live feed.
async fn feed_latency(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    calls_secret: &str,
    i: usize,
) -> anyhow::Result<f64> {
    let mut feed = client
        .get(format!("{base}/today/feed"))
        .header("cookie", cookie)
        .send()
        .await?;
    anyhow::ensure!(feed.status() == 200, "the feed answered {}", feed.status());
    let caller = format!("+4477009{i:05}");
    let body = serde_json::to_vec(
        &json!({"call_id": format!("feed-{i}"), "from": caller, "to": "+15550100001", "status": "no-answer"}),
    )?;
    let sig = crate::signature::sign_sha256_hex(calls_secret.as_bytes(), &body);
    let started = Instant::now();
    let r = client
        .post(format!("{base}/webhooks/calls"))
        .header("content-type", "application/json")
        .header("X-Ringback-Signature", sig)
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "the call answered {}", r.status());
    let digits = caller.trim_start_matches('+').to_string();
    let mut seen = String::new();
    let deadline = started + Duration::from_secs(10);
    while Instant::now() < deadline {
        match tokio::time::timeout_at(deadline.into(), feed.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains(&digits) || seen.contains(&caller) {
                    return Ok(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            _ => break,
        }
    }
    anyhow::bail!("the missed call did not reach the live feed within 10 s")
}

pub async fn run(contacts: usize, messages: usize, json_out: bool) -> anyhow::Result<()> {
    let dir = super::tempfile_dir()?;
    let _leftovers = super::Leftovers(vec![dir.clone()]);
    let url = format!("sqlite://{}", dir.join("console.db").display());
    drop(crate::store::open(&url).await?);
    let sender = Config::load_with_env(None, vec![])?.build()?.senders[0]
        .phone_number_id
        .clone();
    let seeding = Instant::now();
    seed(&url, &sender, contacts, messages).await?;
    let seed_s = seeding.elapsed().as_secs_f64();
    if !json_out {
        println!(
            "store: {} contacts, {} messages, {} events, seeded in {seed_s:.0} s",
            grouped(contacts as f64, 0),
            grouped(messages as f64, 0),
            grouped(messages as f64, 0)
        );
    }
    let env = vec![("RINGBACK_STORE__URL".to_string(), url)];
    let settings = Config::load_with_env(None, env)?.build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sandbox = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = crate::app::start(settings.clone(), listener, Some(sandbox)).await?;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = sign_in(&client, &base, running.store.as_ref()).await?;
    let per = (messages / contacts).max(2);
    let mut rng_state = 0x9e37_79b9_u64;
    let mut next = move || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        (rng_state % contacts as u64) as usize
    };
    type Page = (&'static str, Box<dyn Fn(usize) -> String>);
    let pages: Vec<Page> = vec![
        ("Today", Box::new(|_| "/today".into())),
        ("Calls", Box::new(|_| "/calls".into())),
        ("Conversations", Box::new(|_| "/conversations".into())),
        (
            "Conversations, open",
            Box::new(|_| "/conversations?state=open".into()),
        ),
        (
            "Conversations, search by number",
            Box::new(|c| format!("/conversations?q={:08}", c)),
        ),
        (
            "Conversations, search by name",
            Box::new(|c| format!("/conversations?q=Customer+{c}")),
        ),
        (
            "Conversation with transcript",
            Box::new(|c| format!("/conversations/conv_bench{c:08}")),
        ),
        ("Messages", Box::new(|_| "/messages".into())),
        (
            "Message timeline",
            Box::new(move |c| format!("/messages/msg_bench{:09}", c * per)),
        ),
        ("Templates", Box::new(|_| "/templates".into())),
        (
            "Contacts, one ledger",
            Box::new(|c| format!("/contacts?q=%2B9198{c:08}")),
        ),
        ("Numbers", Box::new(|_| "/numbers".into())),
        ("Flows", Box::new(|_| "/flows".into())),
        ("Webhooks", Box::new(|_| "/webhooks".into())),
        ("Links", Box::new(|_| "/links".into())),
        ("Settings", Box::new(|_| "/settings".into())),
    ];
    let mut results = Vec::new();
    for (name, path) in &pages {
        let mut times = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            let url = format!("{base}{}", path(next()));
            let started = Instant::now();
            let r = client.get(&url).header("cookie", &cookie).send().await?;
            let status = r.status();
            let _ = r.bytes().await?;
            anyhow::ensure!(status == 200, "GET {url} answered {status}");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        results.push((*name, times));
    }
    let mut feed = Vec::new();
    for i in 0..20 {
        feed.push(
            feed_latency(
                &client,
                &base,
                &cookie,
                settings.calls_secret.expose_secret(),
                i,
            )
            .await?,
        );
    }
    running.stop().await;
    if json_out {
        let pages: serde_json::Map<String, Value> = results
            .iter()
            .map(|(n, v)| {
                (n.to_string(), json!({"p50_ms": percentile(v.clone(), 0.5), "p99_ms": percentile(v.clone(), 0.99)}))
            })
            .collect();
        println!(
            "{}",
            json!({"contacts": contacts, "messages": messages, "pages": pages,
                "feed_ms": {"p50": percentile(feed.clone(), 0.5), "max": percentile(feed, 1.0)}})
        );
        return Ok(());
    }
    println!(
        "{:<34} {:>9} {:>9}   ({REQUESTS} requests each, time to the last byte on loopback)",
        "page", "p50 ms", "p99 ms"
    );
    for (name, v) in &results {
        println!(
            "{name:<34} {:>9.2} {:>9.2}",
            percentile(v.clone(), 0.5),
            percentile(v.clone(), 0.99)
        );
    }
    println!(
        "live feed: missed call posted → its line on /today/feed: p50 {:.0} ms, max {:.0} ms ({} calls)",
        percentile(feed.clone(), 0.5),
        percentile(feed.clone(), 1.0),
        feed.len()
    );
    Ok(())
}
