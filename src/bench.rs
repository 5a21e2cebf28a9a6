//! `ringback bench`: the numbers in the README's benchmark section come from here.
//!
//! Starts a real server in-process (temporary SQLite file, embedded sandbox, status webhooks
//! on) and drives it over loopback HTTP like a PBX would:
//!
//! 1. **paced**: calls at a fixed rate (default 100/s) → latency from posting the webhook to
//!    the sandbox receiving the Cloud API request, p50/p99/max;
//! 2. **burst**: N signed missed-call webhooks, C at a time, as fast as the server accepts
//!    them durably → accepted calls/s, and how long until every reply was sent;
//! 3. RSS: idle after start, and peak.
//!
//! `--soak` runs a long steady load with retention pruning instead (see [`soak`]).
//!
//! The load generator shares the machine's cores with the server, so the figures are a floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use secrecy::ExposeSecret;

use crate::config::Config;

mod pacing;
mod policy;
mod sandbox;
pub mod soak;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Calls in the burst phase.
    #[arg(long, default_value_t = 20_000)]
    pub calls: usize,
    /// Webhooks in flight at once during the burst.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Calls per second in the paced phase (default 100), or with --soak (default 50).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Seconds the paced phase lasts.
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Benchmark the Cloud API sandbox alone instead: raw send throughput with limits off, and
    /// how exactly it holds 80/s and 1000/s (uses --seconds and --concurrency).
    #[arg(long)]
    pub sandbox: bool,
    /// Benchmark pacing instead: --numbers numbers each sending at --rate per second for
    /// --seconds, through a real server into the sandbox (which enforces the same limit).
    #[arg(long)]
    pub pacing: bool,
    /// Benchmark the policy checks before a send instead (window, consent, rule book) against
    /// a store of --contacts contacts.
    #[arg(long)]
    pub policy: bool,
    /// Contacts in the store for --policy.
    #[arg(long, default_value_t = 1_000_000)]
    pub contacts: usize,
    /// With --pacing: measure the pacer alone (no server, no I/O).
    #[arg(long)]
    pub dry: bool,
    /// Sending numbers for --pacing.
    #[arg(long, default_value_t = 10)]
    pub numbers: usize,
    /// Benchmark a long steady load instead: --rate calls/s (default 50) for --duration, with
    /// status webhooks and retention pruning rows older than --keep; prints a row a minute
    /// and a verdict on whether RSS, p99 latency and the database size stay flat.
    #[arg(long)]
    pub soak: bool,
    /// How long --soak runs: 90s, 30m, 1h.
    #[arg(long, default_value = "30m", value_parser = soak::parse_duration)]
    pub duration: std::time::Duration,
    /// With --soak: how long every kind of row is kept before retention prunes it.
    #[arg(long, default_value = "5m", value_parser = soak::parse_duration)]
    pub keep: std::time::Duration,
    /// The store to measure: empty for a temporary SQLite file, or a PostgreSQL server
    /// (`postgres://user@host/db`) on which the bench creates a fresh database and drops it
    /// afterwards.
    #[arg(long, default_value = "")]
    pub store: String,
    /// Nodes sharing the store (PostgreSQL only), all in this process: webhooks are spread
    /// over them round-robin; the leader sends. They share this machine's cores.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
}

/// Results of one run.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub burst_calls: usize,
    pub burst_seconds: f64,
    pub accepted_calls_per_second: f64,
    pub burst_all_sent_seconds: f64,
    pub paced_rate: u32,
    pub paced_calls: usize,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub idle_rss_mb: f64,
    pub peak_rss_mb: f64,
}

fn rss_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_string))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.soak {
        return soak::run(args.duration, args.rate.unwrap_or(50), args.keep, args.json).await;
    }
    let rate = args.rate.unwrap_or(100);
    if args.policy {
        return policy::run(args.contacts, 20_000, args.json).await;
    }
    if args.pacing {
        return pacing::run(args.numbers, rate, args.seconds, args.json, args.dry).await;
    }
    if args.sandbox {
        return sandbox::run(args.seconds, args.concurrency, args.json).await;
    }
    let dir = tempfile_dir()?;
    let store = BenchStore::create(&args.store, &dir).await?;
    anyhow::ensure!(
        args.nodes >= 1 && (args.nodes == 1 || store.is_postgres()),
        "--nodes above 1 needs --store postgres://… (an SQLite file has one node)"
    );
    let env = vec![
        ("RINGBACK_STORE__URL".to_string(), store.url.clone()),
        (
            "RINGBACK_MISSED_CALL__COOLDOWN_MINUTES".to_string(),
            "0".to_string(),
        ),
        ("RINGBACK_OUTBOX__CONCURRENCY".to_string(), "64".to_string()),
        (
            "RINGBACK_SANDBOX__STATUS_DELAY_MS".to_string(),
            "20".to_string(),
        ),
        // The bench measures Ringback, not Meta's limits: the sandbox's are off, and Ringback's
        // own pacing is opened up (one number sending 20,000 replies at Meta's 80/s would take
        // four minutes and measure only the pacing).
        ("RINGBACK_SANDBOX__LIMITS".to_string(), "false".to_string()),
        // Latencies are read from every send the sandbox recorded: keep them all.
        ("RINGBACK_SANDBOX__KEEP".to_string(), "0".to_string()),
        (
            "RINGBACK_OUTBOX__THROUGHPUT_PER_SECOND".to_string(),
            "1000000".to_string(),
        ),
    ];
    let mut nodes = Vec::new();
    let mut sandbox_base: Option<String> = None;
    for n in 0..args.nodes {
        let mut env = env.clone();
        env.push((
            "RINGBACK_CLUSTER__NODE_ID".to_string(),
            format!("bench-node-{}", n + 1),
        ));
        // The first node runs the sandbox; the others send to it should they lead.
        if let Some(base) = &sandbox_base {
            env.push(("RINGBACK_WHATSAPP__API_BASE".to_string(), base.clone()));
        }
        let settings = Config::load_with_env(None, env)?.build()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let sandbox_listener = match n {
            0 => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?),
            _ => None,
        };
        let running = crate::app::start(settings, listener, sandbox_listener).await?;
        if let Some(addr) = running.sandbox_addr {
            sandbox_base = Some(format!("http://{addr}"));
        }
        nodes.push(running);
    }
    let settings = Config::load_with_env(None, env)?.build()?;
    let secret = settings.calls_secret.expose_secret().to_string();
    let to = settings.senders[0].display_number.to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = rss_mb("VmRSS:");
    let urls = nodes
        .iter()
        .map(|r| format!("http://{}/webhooks/calls", r.addr))
        .collect();
    let sandbox = nodes[0]
        .sandbox
        .clone()
        .expect("the bench always runs the sandbox");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let post = Arc::new(Poster {
        client,
        urls,
        secret,
        to,
    });

    // Paced: latency webhook -> Cloud API request.
    let paced_calls = (rate * args.seconds) as usize;
    let base = 0;
    let mut posted_at = Vec::with_capacity(paced_calls);
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut inflight = tokio::task::JoinSet::new();
    for k in 0..paced_calls {
        tick.tick().await;
        posted_at.push(jiff::Timestamp::now().as_microsecond());
        let post = post.clone();
        inflight.spawn(async move { post.call(base + k).await });
    }
    while let Some(r) = inflight.join_next().await {
        r??;
    }
    wait_for_sends(&sandbox, paced_calls, Duration::from_secs(120)).await?;
    // Burst: accepted calls/s.
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (post, next, n) = (post.clone(), next.clone(), args.calls);
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                post.call(paced_calls + i).await?;
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r??;
    }
    let burst = started.elapsed();
    wait_for_sends(&sandbox, paced_calls + args.calls, Duration::from_secs(600)).await?;
    let all_sent = started.elapsed();

    let sent = sandbox.sent(None);
    let mut lat: Vec<f64> = sent
        .iter()
        .filter_map(|m| {
            let i = caller_index(&m.to)?;
            (i < paced_calls).then(|| (m.received_us - posted_at[i]) as f64 / 1000.0)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let report = Report {
        burst_calls: args.calls,
        burst_seconds: burst.as_secs_f64(),
        accepted_calls_per_second: args.calls as f64 / burst.as_secs_f64(),
        burst_all_sent_seconds: all_sent.as_secs_f64(),
        paced_rate: rate,
        paced_calls,
        latency_p50_ms: percentile(&lat, 0.50),
        latency_p99_ms: percentile(&lat, 0.99),
        latency_max_ms: lat.last().copied().unwrap_or(0.0),
        idle_rss_mb: idle_rss,
        peak_rss_mb: rss_mb("VmHWM:"),
    };
    for running in nodes {
        running.stop().await;
    }
    let kind = store.kind();
    store.drop().await;
    let _ = std::fs::remove_dir_all(&dir);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "store:  {} ({} node{}, {} cores)",
            kind,
            args.nodes,
            if args.nodes == 1 { "" } else { "s" },
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!(
            "burst:  {} missed-call webhooks in {:.2} s = {:.0} accepted calls/s (durable, signed, {} concurrent)",
            report.burst_calls,
            report.burst_seconds,
            report.accepted_calls_per_second,
            args.concurrency
        );
        println!(
            "        all {} replies reached the Cloud API sandbox after {:.2} s",
            report.burst_calls, report.burst_all_sent_seconds
        );
        println!(
            "paced:  {} calls at {}/s: webhook -> Cloud API request p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            report.paced_calls,
            report.paced_rate,
            report.latency_p50_ms,
            report.latency_p99_ms,
            report.latency_max_ms
        );
        println!(
            "memory: idle RSS {:.1} MB, peak RSS {:.1} MB (server, sandbox and load generator in one process)",
            report.idle_rss_mb, report.peak_rss_mb
        );
    }
    Ok(())
}

/// Posts signed generic call webhooks; caller `i` is a distinct Indian mobile number. Call
/// `i` goes to node `i mod nodes`.
struct Poster {
    client: reqwest::Client,
    urls: Vec<String>,
    secret: String,
    to: String,
}

fn caller(i: usize) -> String {
    format!("+9198{:08}", i)
}

fn caller_index(to_digits: &str) -> Option<usize> {
    to_digits.strip_prefix("9198")?.parse().ok()
}

impl Poster {
    async fn call(&self, i: usize) -> anyhow::Result<()> {
        self.call_from(i, i).await
    }

    /// Call `i` (its id) from caller number `caller_no`, so a soak can reuse callers.
    async fn call_from(&self, i: usize, caller_no: usize) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&serde_json::json!({
            "call_id": format!("bench-{i}"), "from": caller(caller_no), "to": self.to, "status": "no-answer", "ring_seconds": 20,
        }))?;
        let sig = crate::signature::sign_sha256_hex(self.secret.as_bytes(), &body);
        let resp = self
            .client
            .post(&self.urls[i % self.urls.len()])
            .header("Content-Type", "application/json")
            .header(crate::inbound::generic::SIGNATURE_HEADER, sig)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().as_u16() == 202,
            "webhook {i} answered {}",
            resp.status()
        );
        Ok(())
    }
}

async fn wait_for_sends(
    sandbox: &crate::sandbox::Sandbox,
    n: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let got = sandbox.sent_count();
        if got >= n {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {got} of {n} replies reached the sandbox in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The store a bench run measures, made fresh for it.
struct BenchStore {
    url: String,
    /// PostgreSQL: the server's maintenance URL and the database made for this run.
    postgres: Option<(String, String)>,
}

impl BenchStore {
    async fn create(arg: &str, dir: &std::path::Path) -> anyhow::Result<BenchStore> {
        if arg.is_empty() {
            return Ok(BenchStore {
                url: format!("sqlite://{}", dir.join("bench.db").display()),
                postgres: None,
            });
        }
        anyhow::ensure!(
            arg.starts_with("postgres://") || arg.starts_with("postgresql://"),
            "--store takes a postgres:// URL (leave it out for a temporary SQLite file)"
        );
        let name = format!("ringback_bench_{}", uuid::Uuid::now_v7().simple());
        let admin = crate::store::postgres::connect::pool(arg).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await?;
        admin.close().await;
        let url = with_database(arg, &name)?;
        Ok(BenchStore {
            url,
            postgres: Some((arg.to_string(), name)),
        })
    }

    fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    fn kind(&self) -> &'static str {
        if self.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    async fn drop(self) {
        if let Some((admin, name)) = self.postgres
            && let Ok(pool) = crate::store::postgres::connect::pool(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&pool)
            .await;
        }
    }
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(scheme_end);
    let (authority, query) = match rest.find(['/', '?']) {
        Some(i) => {
            let q = rest[i..].find('?').map(|j| &rest[i + j..]).unwrap_or("");
            (&rest[..i], q)
        }
        None => (rest, ""),
    };
    anyhow::ensure!(!authority.is_empty(), "--store {url}: no host");
    Ok(format!("{head}{authority}/{name}{query}"))
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("ringback-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bench_database_replaces_the_path_and_keeps_the_query() {
        let f = super::with_database;
        assert_eq!(
            f("postgres://postgres@127.0.0.1:5432/postgres", "b").unwrap(),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(f("postgres://h", "b").unwrap(), "postgres://h/b");
        assert_eq!(
            f("postgresql://u:p@h/db?sslmode=disable", "b").unwrap(),
            "postgresql://u:p@h/b?sslmode=disable"
        );
    }
}
