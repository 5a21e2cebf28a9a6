//! `ringback bench --assistants`: AI assistants, the server and its sandbox model in this
//! process on a temporary SQLite store, measured three ways:
//!
//! 1. retrieval: the built-in assistant's search over a 1,000-entry FAQ (p50/p99 per question);
//! 2. overhead: `--calls` replies through `POST /api/v1/assistants/desk/replies`, the model
//!    being the sandbox's (it answers at once); Ringback's own time per reply is the reply's
//!    latency minus the time spent waiting on the model (p50/p99);
//! 3. a slow model: `--contacts` replies at once to a model answering in 2 s, while missed
//!    calls arrive: how long the replies take all together, and the missed calls' webhook
//!    acknowledgement and webhook → Cloud API times meanwhile.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::summary::grouped;
use crate::assistants::knowledge::{Knowledge, Passage};
use crate::config::Config;

/// The figures.
#[derive(Debug, serde::Serialize)]
pub struct AssistantFigures {
    pub faq_entries: usize,
    pub retrieval_p50_us: f64,
    pub retrieval_p99_us: f64,
    pub replies: usize,
    pub overhead_p50_ms: f64,
    pub overhead_p99_ms: f64,
    pub round_trip_p50_ms: f64,
    pub round_trip_p99_ms: f64,
    pub slow_replies: usize,
    pub slow_all_answered_s: f64,
    pub calls_meanwhile: usize,
    pub call_ack_p99_ms: f64,
    pub call_to_send_p99_ms: f64,
}

const TOPICS: &[&str] = &[
    "whitening",
    "implant",
    "crown",
    "bridge",
    "veneer",
    "braces",
    "aligner",
    "filling",
    "extraction",
    "root",
    "canal",
    "hygienist",
    "xray",
    "denture",
    "gum",
    "wisdom",
    "tooth",
    "sensitivity",
    "mouthguard",
    "sedation",
    "anaesthetic",
    "insurance",
    "invoice",
    "refund",
    "voucher",
    "student",
    "pensioner",
    "pregnancy",
    "allergy",
    "latex",
    "wheelchair",
    "bus",
    "train",
    "bicycle",
    "locker",
    "wifi",
    "coffee",
    "toilet",
    "lift",
    "stairs",
];

/// A synthetic FAQ of `n` entries: each question names two topics and an aspect.
fn faq(n: usize) -> Knowledge {
    let aspects = ["price", "duration", "booking", "aftercare", "availability"];
    let passages = (0..n)
        .map(|i| {
            let a = TOPICS[i % TOPICS.len()];
            let b = TOPICS[(i / TOPICS.len() + 7) % TOPICS.len()];
            let aspect = aspects[i % aspects.len()];
            Passage {
                title: format!("{a} {b} {aspect} question {i}"),
                body: format!(
                    "About {a} with {b}: the {aspect} depends on the case; entry {i} explains it in a sentence or two so the passage has a realistic length for an FAQ answer."
                ),
                source: "bench".into(),
            }
        })
        .collect();
    Knowledge::from_passages(passages)
}

fn retrieval(entries: usize) -> (f64, f64) {
    let k = faq(entries);
    let mut times = Vec::with_capacity(20_000);
    for i in 0..20_000 {
        let q = format!(
            "How much is {} with {}, and what about booking?",
            TOPICS[i % TOPICS.len()],
            TOPICS[(i * 7) % TOPICS.len()]
        );
        let t = Instant::now();
        let found = k.search(&q, 1);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(found);
    }
    times.sort_by(f64::total_cmp);
    (
        super::percentile(&times, 0.5),
        super::percentile(&times, 0.99),
    )
}

/// A server whose assistant `desk` asks the sandbox's model.
async fn server(
    dir: &std::path::Path,
) -> anyhow::Result<(crate::app::Running, crate::config::Settings)> {
    let sandbox = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let config = dir.join("ringback.toml");
    std::fs::write(
        &config,
        format!(
            "[[assistants]]\nname = \"desk\"\ninstructions = \"You are a bench.\"\ntimeout_ms = 60000\n\
             [assistants.provider]\nbase_url = \"http://{}/v1\"\nmodel = \"bench\"\n",
            sandbox.local_addr()?
        ),
    )?;
    let env = [
        (
            "RINGBACK_STORE__URL",
            format!("sqlite://{}", dir.join("assistants.db").display()),
        ),
        ("RINGBACK_SANDBOX__LIMITS", "false".into()),
        ("RINGBACK_SANDBOX__STATUSES", "false".into()),
        ("RINGBACK_OUTBOX__THROUGHPUT_PER_SECOND", "1000000".into()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let settings = Config::load_with_env(Some(&config), env)?.build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = crate::app::start(settings.clone(), listener, Some(sandbox)).await?;
    Ok((running, settings))
}

async fn ask(http: &reqwest::Client, base: &str, customer: &str) -> anyhow::Result<Value> {
    let r = http
        .post(format!("{base}/api/v1/assistants/desk/replies"))
        .json(&json!({"customer_id": customer, "message": "When are you open?"}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "a reply answered {}", r.status());
    Ok(r.json().await?)
}

/// p50 and p99 of Ringback's own time per reply, and of the whole round trip, over
/// sequential replies to 100 customers.
struct Overhead {
    own: (f64, f64),
    round_trip: (f64, f64),
}

/// The model's time is the server's `usage.model_ms`: its request to the model written to the
/// answer read (to the microsecond), so the client's own serialising of the request and
/// parsing of the answer, tens of microseconds, count as the model's.
async fn overhead(base: &str, replies: usize) -> anyhow::Result<Overhead> {
    let http = reqwest::Client::new();
    let mut own = Vec::with_capacity(replies);
    let mut round_trip = Vec::with_capacity(replies);
    for i in 0..replies {
        let t = Instant::now();
        let r = ask(&http, base, &format!("c{}", i % 100)).await?;
        let total = t.elapsed().as_secs_f64() * 1000.0;
        let model = r["usage"]["model_ms"]
            .as_f64()
            .ok_or_else(|| anyhow::anyhow!("a reply without usage.model_ms: {r}"))?;
        own.push((total - model).max(0.0));
        round_trip.push(total);
    }
    let p50_p99 = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (super::percentile(&v, 0.5), super::percentile(&v, 0.99))
    };
    Ok(Overhead {
        own: p50_p99(own),
        round_trip: p50_p99(round_trip),
    })
}

/// Messages the sandbox received (`GET /sandbox/messages/count`).
async fn sandbox_sent(http: &reqwest::Client, sandbox: &str) -> anyhow::Result<usize> {
    let v: Value = http
        .get(format!("{sandbox}/sandbox/messages/count"))
        .send()
        .await?
        .json()
        .await?;
    Ok(v["sent"].as_u64().unwrap_or(0) as usize)
}

struct Slow {
    all_answered_s: f64,
    calls: usize,
    ack_p99_ms: f64,
    send_p99_ms: f64,
}

/// `n` replies at once to a model answering in 2 s, and 100 missed calls meanwhile.
async fn slow_model(
    running: &crate::app::Running,
    settings: &crate::config::Settings,
    n: usize,
) -> anyhow::Result<Slow> {
    let sandbox = format!("http://{}", running.sandbox_addr.expect("the sandbox runs"));
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let answers: Vec<Value> = (0..n)
        .map(|_| json!({"delay_ms": 2000, "content": "Slowly, yes."}))
        .collect();
    let r = http
        .post(format!("{sandbox}/sandbox/models/script"))
        .json(&json!({"answers": answers, "replace": true}))
        .send()
        .await?;
    anyhow::ensure!(
        r.status() == 200,
        "scripting the model answered {}",
        r.status()
    );
    let sent_before = sandbox_sent(&http, &sandbox).await?;
    let started = Instant::now();
    let mut replies = tokio::task::JoinSet::new();
    for i in 0..n {
        let (http, base) = (http.clone(), base.clone());
        replies.spawn(async move { ask(&http, &base, &format!("slow-{i}")).await });
    }
    // Missed calls while every reply waits on the model.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hook = format!("{base}/webhooks/calls");
    let secret = settings.calls_secret.expose_secret().to_string();
    let to = settings.senders[0].display_number.to_string();
    let calls = 100;
    let mut acks = Vec::with_capacity(calls);
    let calls_started = Instant::now();
    for i in 0..calls {
        let body = serde_json::to_vec(&json!({"call_id": format!("slow-call-{i}"),
            "from": format!("+9198{:08}", i), "to": to, "status": "no-answer", "ring_seconds": 20}))?;
        let sig = crate::signature::sign_sha256_hex(secret.as_bytes(), &body);
        let t = Instant::now();
        let r = http
            .post(&hook)
            .header("Content-Type", "application/json")
            .header(crate::inbound::generic::SIGNATURE_HEADER, sig)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(r.status() == 202, "a call webhook answered {}", r.status());
        acks.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // Every missed call's reply reached the sandbox; the last one's time is an upper bound
    // on each call's webhook → Cloud API time.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent = sandbox_sent(&http, &sandbox).await?;
        if sent >= sent_before + calls {
            break;
        }
        if Instant::now() > deadline {
            let calls_seen: Value = http
                .get(format!("{base}/api/v1/calls?limit=3"))
                .send()
                .await?
                .json()
                .await?;
            anyhow::bail!(
                "the missed calls' replies did not all leave ({} of {calls} at the sandbox); the last calls: {calls_seen}",
                sent - sent_before
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last_send_ms = calls_started.elapsed().as_secs_f64() * 1000.0;
    while let Some(r) = replies.join_next().await {
        r??;
    }
    acks.sort_by(f64::total_cmp);
    Ok(Slow {
        all_answered_s: started.elapsed().as_secs_f64(),
        calls,
        ack_p99_ms: super::percentile(&acks, 0.99),
        send_p99_ms: last_send_ms,
    })
}

pub async fn run(replies: usize, slow: usize, json_out: bool) -> anyhow::Result<()> {
    // --calls and --contacts default to the other scenarios' sizes (20,000 and 1,000,000).
    let slow = slow.min(10_000);
    let entries = 1000;
    let (r50, r99) = retrieval(entries);
    if !json_out {
        println!(
            "retrieval over a {entries}-entry FAQ, 20,000 questions: p50 {r50:.1} µs, p99 {r99:.1} µs"
        );
    }
    let dir = super::tempfile_dir()?;
    let _leftovers = super::Leftovers(vec![dir.clone()]);
    let (running, settings) = server(&dir).await?;
    let base = format!("http://{}", running.addr);
    let o = overhead(&base, replies).await?;
    let ((o50, o99), (t50, t99)) = (o.own, o.round_trip);
    if !json_out {
        println!(
            "overhead per reply (HTTP API → store → model → store → answer, minus the model's time), {} replies: p50 {o50:.2} ms, p99 {o99:.2} ms (round trip with the sandbox's model: p50 {t50:.2} ms, p99 {t99:.2} ms)",
            grouped(replies as f64, 0)
        );
    }
    let s = slow_model(&running, &settings, slow).await?;
    if !json_out {
        println!(
            "{} replies waiting at once on a 2 s model: all answered in {:.2} s; meanwhile {} missed calls: ack p99 {:.1} ms, all {} replies at the Cloud API within {:.0} ms of the first call",
            grouped(slow as f64, 0),
            s.all_answered_s,
            s.calls,
            s.ack_p99_ms,
            s.calls,
            s.send_p99_ms
        );
    }
    let figures = AssistantFigures {
        faq_entries: entries,
        retrieval_p50_us: r50,
        retrieval_p99_us: r99,
        replies,
        overhead_p50_ms: o50,
        overhead_p99_ms: o99,
        round_trip_p50_ms: t50,
        round_trip_p99_ms: t99,
        slow_replies: slow,
        slow_all_answered_s: s.all_answered_s,
        calls_meanwhile: s.calls,
        call_ack_p99_ms: s.ack_p99_ms,
        call_to_send_p99_ms: s.send_p99_ms,
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    }
    running.stop().await;
    Ok(())
}
