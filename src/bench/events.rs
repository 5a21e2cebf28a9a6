//! `ringback bench --events`: conversations and events, measured three ways on a temporary
//! SQLite store, with the server in this process and webhook receivers on loopback:
//!
//! 1. fan-out: `--calls` customer messages journaled at once (10 per customer), published by
//!    the tracker and delivered to 3 endpoints subscribed to every event; events committed
//!    per second and deliveries per second (2xx answers recorded);
//! 2. latency: missed calls posted at `--rate` per second for `--seconds`, each `call.missed`
//!    timed from the webhook's request to its arrival at an endpoint;
//! 3. reads: a store holding `--contacts` conversation messages (10 per conversation), the
//!    conversation list (pages, filters) and transcripts read over HTTP, p50 / p99.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::summary::grouped;
use crate::config::Config;
use crate::events::Fact;

/// Arrival times of the deliveries a receiver took, by `webhook-id`, plus the bodies' call ids.
#[derive(Clone, Default)]
struct Taken {
    count: Arc<std::sync::atomic::AtomicU64>,
    calls: Arc<Mutex<HashMap<String, Instant>>>,
}

async fn take(State(t): State<Taken>, body: Bytes) -> StatusCode {
    t.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Ok(v) = serde_json::from_slice::<Value>(&body)
        && let Some(call) = v["data"]["call"]["call_id"].as_str()
    {
        t.calls
            .lock()
            .unwrap()
            .insert(call.to_string(), Instant::now());
    }
    StatusCode::NO_CONTENT
}

async fn receiver() -> anyhow::Result<(String, Taken)> {
    let taken = Taken::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(take))
        .with_state(taken.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, taken))
}

/// A fresh store and server (with the sandbox) whose endpoints may be on loopback.
async fn server(
    dir: &std::path::Path,
) -> anyhow::Result<(crate::app::Running, crate::config::Settings)> {
    let url = format!("sqlite://{}", dir.join("events.db").display());
    let env = vec![
        ("RINGBACK_STORE__URL".to_string(), url),
        (
            "RINGBACK_OUTBOUND_WEBHOOKS__ALLOW_PRIVATE_ADDRESSES".to_string(),
            "true".to_string(),
        ),
        (
            "RINGBACK_OUTBOUND_WEBHOOKS__CONCURRENCY".to_string(),
            "32".to_string(),
        ),
        (
            "RINGBACK_MISSED_CALL__COOLDOWN_MINUTES".to_string(),
            "0".to_string(),
        ),
        ("RINGBACK_SANDBOX__LIMITS".to_string(), "false".to_string()),
        (
            "RINGBACK_SANDBOX__STATUSES".to_string(),
            "false".to_string(),
        ),
        (
            "RINGBACK_OUTBOX__THROUGHPUT_PER_SECOND".to_string(),
            "1000000".to_string(),
        ),
    ];
    let settings = Config::load_with_env(None, env)?.build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sandbox = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = crate::app::start(settings.clone(), listener, Some(sandbox)).await?;
    Ok((running, settings))
}

async fn endpoint(
    store: &Arc<dyn crate::store::Store>,
    url: &str,
    events: &[&str],
) -> anyhow::Result<()> {
    let e = crate::outbound_webhooks::new_endpoint(
        crate::outbound_webhooks::EndpointInput {
            url: url.to_string(),
            description: "bench".into(),
            event_types: events.iter().map(|e| e.to_string()).collect(),
        },
        crate::time::now_ms(),
    );
    store.create_endpoint(&e).await?;
    Ok(())
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    super::percentile(&v, p)
}

pub async fn run(
    messages: usize,
    rate: u32,
    seconds: u32,
    rows: usize,
    json_out: bool,
) -> anyhow::Result<()> {
    let base = super::tempfile_dir()?;
    let _leftovers = super::Leftovers(vec![base.clone()]);
    let fan = fan_out(&base.join("fan-out"), messages).await?;
    if !json_out {
        println!(
            "fan-out: {} messages → {} events committed in {:.2} s ({}/s); {} deliveries to 3 endpoints recorded in {:.2} s ({}/s)",
            grouped(messages as f64, 0),
            grouped(fan.events as f64, 0),
            fan.publish_s,
            grouped(fan.events as f64 / fan.publish_s, 0),
            grouped(fan.deliveries as f64, 0),
            fan.deliver_s,
            grouped(fan.deliveries as f64 / fan.deliver_s, 0),
        );
    }
    let lat = latency(&base.join("latency"), rate, seconds).await?;
    if !json_out {
        println!(
            "missed call → call.missed at an endpoint, {} calls at {rate}/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            lat.len(),
            percentile(lat.clone(), 0.5),
            percentile(lat.clone(), 0.99),
            percentile(lat.clone(), 1.0)
        );
    }
    let reads = reads(&base.join("reads"), rows).await?;
    if !json_out {
        for (name, v) in &reads {
            println!(
                "{name} with {} stored messages: p50 {:.2} ms, p99 {:.2} ms ({} requests)",
                grouped(rows as f64, 0),
                percentile(v.clone(), 0.5),
                percentile(v.clone(), 0.99),
                v.len()
            );
        }
    } else {
        let reads: serde_json::Map<String, Value> = reads
            .iter()
            .map(|(n, v)| (n.to_string(), json!({"p50_ms": percentile(v.clone(), 0.5), "p99_ms": percentile(v.clone(), 0.99)})))
            .collect();
        println!(
            "{}",
            json!({
                "fan_out": {"messages": messages, "events": fan.events, "events_per_s": fan.events as f64 / fan.publish_s,
                    "deliveries": fan.deliveries, "deliveries_per_s": fan.deliveries as f64 / fan.deliver_s},
                "call_missed_delivery_ms": {"calls": lat.len(), "p50": percentile(lat.clone(), 0.5), "p99": percentile(lat, 0.99)},
                "reads": reads, "stored_messages": rows,
            })
        );
    }
    Ok(())
}

struct FanOut {
    events: u64,
    deliveries: u64,
    publish_s: f64,
    deliver_s: f64,
}

async fn fan_out(dir: &std::path::Path, messages: usize) -> anyhow::Result<FanOut> {
    std::fs::create_dir_all(dir)?;
    let (running, settings) = server(dir).await?;
    let store = running.store.clone();
    let mut taken = Vec::new();
    for _ in 0..3 {
        let (url, t) = receiver().await?;
        endpoint(&store, &url, &[]).await?;
        taken.push(t);
    }
    // The facts go into the journal in one transaction, as a burst of processed webhooks would.
    let customers = (messages / 10).max(1);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&settings.store_url)
        .await?;
    let sender = settings.senders[0].phone_number_id.clone();
    let now = crate::time::now_ms();
    let mut tx = pool.begin().await?;
    for chunk in (0..messages).collect::<Vec<_>>().chunks(2_000) {
        let mut q = sqlx::QueryBuilder::new("INSERT INTO event_journal (kind, at, fact_json) ");
        q.push_values(chunk, |mut b, i| {
            let fact = Fact::Inbound {
                sender_id: sender.clone(),
                contact: format!("9196{:08}", i % customers),
                name: Some(format!("Customer {}", i % customers)),
                wamid: format!("wamid.bench.{i}"),
                message_type: "text".into(),
                text: format!("message {i}"),
                reply_to: None,
                reply_id: None,
                at: now + *i as i64,
            };
            b.push_bind(fact.kind())
                .push_bind(fact.at())
                .push_bind(fact.to_json());
        });
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    pool.close().await;
    let events = (messages + customers) as u64;
    // The tracker finds facts written by another connection on its next poll (within a
    // second): the clock starts at the first event published.
    while store.events_after(0, &[], 1).await?.is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    let mut last = 0;
    while last < events as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        last = store
            .events_after(last, &[], 10_000)
            .await?
            .last()
            .map_or(last, |e| e.id);
    }
    let publish_s = started.elapsed().as_secs_f64();
    let deliveries = 3 * events;
    let delivered = || {
        taken
            .iter()
            .map(|t| t.count.load(std::sync::atomic::Ordering::Relaxed))
            .sum::<u64>()
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    while delivered() < deliveries && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Recorded, not only answered: the last results are in the delivery log.
    loop {
        let pending = store
            .deliveries(&crate::store::DeliveryQuery {
                state: Some("pending".into()),
                limit: 1,
                ..Default::default()
            })
            .await?;
        if pending.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deliver_s = started.elapsed().as_secs_f64();
    running.stop().await;
    Ok(FanOut {
        events,
        deliveries: delivered(),
        publish_s,
        deliver_s,
    })
}

async fn latency(dir: &std::path::Path, rate: u32, seconds: u32) -> anyhow::Result<Vec<f64>> {
    std::fs::create_dir_all(dir)?;
    let (running, settings) = server(dir).await?;
    let (url, taken) = receiver().await?;
    endpoint(&running.store, &url, &["call.missed"]).await?;
    let client = reqwest::Client::new();
    let hook = format!("http://{}/webhooks/calls", running.addr);
    let secret = settings.calls_secret.expose_secret().to_string();
    let to = settings.senders[0].display_number.to_string();
    // The endpoint's worker starts within a second of registration.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let total = (rate * seconds) as usize;
    let mut posted: HashMap<String, Instant> = HashMap::with_capacity(total);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..total {
        tick.tick().await;
        let id = format!("lat-{i}");
        let body = serde_json::to_vec(
            &json!({"call_id": id, "from": format!("+9197{:08}", i), "to": to, "status": "no-answer", "ring_seconds": 20}),
        )?;
        let sig = crate::signature::sign_sha256_hex(secret.as_bytes(), &body);
        posted.insert(id, Instant::now());
        let req = client
            .post(&hook)
            .header("Content-Type", "application/json")
            .header(crate::inbound::generic::SIGNATURE_HEADER, sig)
            .body(body);
        pending.spawn(async move { req.send().await.map(|r| r.status().as_u16()) });
    }
    while let Some(r) = pending.join_next().await {
        anyhow::ensure!(r?? == 202, "a call webhook was not accepted");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while taken.calls.lock().unwrap().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrived = taken.calls.lock().unwrap().clone();
    running.stop().await;
    anyhow::ensure!(
        arrived.len() == total,
        "{} of {total} call.missed events arrived",
        arrived.len()
    );
    Ok(posted
        .iter()
        .filter_map(|(id, at)| {
            arrived
                .get(id)
                .map(|got| got.duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect())
}

async fn reads(
    dir: &std::path::Path,
    rows: usize,
) -> anyhow::Result<Vec<(&'static str, Vec<f64>)>> {
    std::fs::create_dir_all(dir)?;
    let url = format!("sqlite://{}", dir.join("events.db").display());
    // Migrate, then load conversations and their messages with plain SQL.
    drop(crate::store::open(&url).await?);
    let per = 10;
    let conversations = (rows / per).max(1);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let sender = Config::load_with_env(None, vec![])?.build()?.senders[0]
        .phone_number_id
        .clone();
    let now = crate::time::now_ms();
    let mut tx = pool.begin().await?;
    for chunk in (0..conversations).collect::<Vec<_>>().chunks(2_000) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO conversations (id, sender_id, contact, contact_name, kind, started_at, last_message_at, message_count, ended_at, end_reason) ",
        );
        q.push_values(chunk, |mut b, c| {
            let open = c % 10 == 0;
            let start = now - (conversations - c) as i64 * 60_000;
            b.push_bind(format!("conv_bench{c:08}"))
                .push_bind(sender.clone())
                .push_bind(format!("9198{c:08}"))
                .push_bind(format!("Customer {c}"))
                .push_bind("inbound")
                .push_bind(start)
                .push_bind(start + 9_000)
                .push_bind(per as i64)
                .push_bind(if open { None } else { Some(start + 86_409_000) })
                .push_bind(if open { None } else { Some("inactivity") });
        });
        q.build().execute(&mut *tx).await?;
    }
    for chunk in (0..conversations * per).collect::<Vec<_>>().chunks(2_000) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO conversation_messages (conversation_id, seq, direction, message_id, wamid, kind, text, status, at, status_at) ",
        );
        q.push_values(chunk, |mut b, m| {
            let (c, seq) = (m / per, m % per + 1);
            let at = now - (conversations - c) as i64 * 60_000 + seq as i64 * 1_000;
            b.push_bind(format!("conv_bench{c:08}"))
                .push_bind(seq as i64)
                .push_bind(if seq % 2 == 1 { "inbound" } else { "outbound" })
                .push_bind(format!("wamid.bench.{m}"))
                .push_bind(format!("wamid.bench.{m}"))
                .push_bind("text")
                .push_bind(format!(
                    "Message {seq} of conversation {c}: do you have a table for four tonight?"
                ))
                .push_bind(if seq % 2 == 1 { "received" } else { "read" })
                .push_bind(at)
                .push_bind(at);
        });
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    pool.close().await;
    let env = vec![("RINGBACK_STORE__URL".to_string(), url)];
    let settings = Config::load_with_env(None, env)?.build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sandbox = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = crate::app::start(settings, listener, Some(sandbox)).await?;
    let base = format!("http://{}/api/v1/conversations", running.addr);
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move {
            let started = Instant::now();
            let r = client.get(&url).send().await?;
            anyhow::ensure!(r.status() == 200, "GET {url} answered {}", r.status());
            let _ = r.bytes().await?;
            Ok::<f64, anyhow::Error>(started.elapsed().as_secs_f64() * 1000.0)
        }
    };
    let mut out = Vec::new();
    let mut rng_state = 0x9e37_79b9_u64;
    let mut next = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        (rng_state % conversations as u64) as usize
    };
    let mut pages = Vec::new();
    let mut open = Vec::new();
    let mut by_contact = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..500 {
        let url = match cursor.take() {
            Some(c) => format!("{base}?limit=50&cursor={c}"),
            None => format!("{base}?limit=50"),
        };
        let r: Value = client.get(&url).send().await?.json().await?;
        cursor = r["next_cursor"].as_str().map(str::to_string);
        pages.push(get(url).await?);
        open.push(get(format!("{base}?limit=50&state=open")).await?);
        by_contact.push(get(format!("{base}?contact=9198{:08}", next())).await?);
    }
    out.push(("conversation list, page after page", pages));
    out.push(("conversation list, open ones", open));
    out.push(("conversation list, one customer's", by_contact));
    let mut shown = Vec::new();
    for _ in 0..500 {
        shown.push(get(format!("{base}/conv_bench{:08}", next())).await?);
    }
    out.push(("conversation with its transcript", shown));
    running.stop().await;
    Ok(out)
}
