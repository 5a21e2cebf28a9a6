//! `ringback bench`: the numbers in the README's benchmark section come from here.
//!
//! Starts a real server in-process (temporary SQLite file, embedded sandbox, status webhooks
//! on) and drives it over loopback HTTP like a PBX would:
//!
//! 1. **paced**: calls at a fixed rate (default 100/s) → latency from posting the webhook to
//!    the sandbox receiving the Cloud API request, p50/p99/max;
//! 2. **burst**: N signed missed-call webhooks, C at a time, as fast as the server accepts
//!    them durably → accepted calls/s; the replies the sandbox had when the last webhook was
//!    acknowledged (sends during load); burst webhooks over the time to the last reply
//!    (end-to-end sends/s); this process's CPU per reply; each burst webhook's post → Cloud
//!    API request latency, p50/p99 (see [`latency`]); webhooks accepted and replies sent in
//!    each second (see [`timeline`]);
//! 3. RSS: idle after start, and peak.
//!
//! That is one run; `--runs N` (default 3) repeats it on a fresh store and fresh servers each
//! time and prints every figure's min / median / max (see [`summary`]), since one run on a
//! shared machine does not reproduce. Before the runs, and during each, it compares the
//! machine's busy CPU with this process's (see [`cpu`]) and says when other processes took a
//! noticeable share.
//!
//! `--soak` runs a long steady load with retention pruning instead (see [`soak`]).
//!
//! The load generator shares the machine's cores with the server, so the figures are a floor.
//! `--target URL` drives a server running in another process instead, and reads that
//! process's CPU alone (see [`external`] and `scripts/bench-pinned`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use secrecy::ExposeSecret;

use crate::config::Config;
use summary::grouped;

mod assistants;
mod console;
mod cpu;
pub mod events;
mod external;
mod flows;
mod latency;
mod pacing;
mod policy;
mod report;
mod sandbox;
pub mod soak;
mod summary;
mod timeline;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Runs of the default scenario (paced phase, then burst), each on a fresh store and fresh
    /// servers; the figures are printed as min / median / max over them.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
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
    /// Benchmark conversations and events instead: --calls customer messages fanned out as
    /// events to 3 local endpoints; missed call → `call.missed` delivery latency at --rate/s
    /// for --seconds; conversation list and transcript reads with --contacts stored messages.
    #[arg(long)]
    pub events: bool,
    /// Benchmark AI assistants instead: retrieval over a 1,000-entry FAQ (p50/p99), Ringback's
    /// own time per reply over --calls replies (the sandbox's model answering at once), and
    /// --contacts replies waiting at once on a model answering in 2 s while missed calls
    /// arrive. Example: ringback bench --assistants --calls 2000 --contacts 1000
    #[arg(long)]
    pub assistants: bool,
    /// Benchmark flows instead: --calls runs of "HTTP hook → branch → template" over
    /// --concurrency connections (hooks/s, runs/s end to end); --contacts runs waiting on a
    /// delay (RSS, idle CPU); timers ending at --rate/s for --seconds (lateness p50/p99).
    /// Example: ringback bench --flows --calls 20000 --contacts 100000
    #[arg(long)]
    pub flows: bool,
    /// Benchmark the web console instead: a temporary store filled with --contacts customers
    /// (each with a conversation, a missed call and a consent record) and --messages messages
    /// with their events; every page fetched 200 times signed in (p50/p99), then missed calls
    /// timed from the webhook to their line on the live feed.
    /// Example: ringback bench --console --contacts 100000 --messages 1000000
    #[arg(long)]
    pub console: bool,
    /// With --console: how many messages the store holds.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
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
    /// Drive an already running server at this base URL (`http://127.0.0.1:PORT`; webhooks go
    /// to /webhooks/calls) instead of starting one: --runs bursts of --calls webhooks,
    /// --concurrency at a time, the server's own CPU read from --server-pid, its replies from
    /// --target-sandbox. See scripts/bench-pinned.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// With --target: the standalone sandbox the server sends to (`ringback sandbox --keep 0`).
    #[arg(long, value_name = "URL", requires = "target")]
    pub target_sandbox: Option<String>,
    /// With --target: the secret of /webhooks/calls (the server's calls.secret). Default: the
    /// configuration's.
    #[arg(long, env = "RINGBACK_CALLS__SECRET", hide_env_values = true)]
    pub target_secret: Option<String>,
    /// With --target: the business number the calls are to (E.164). Default: the
    /// configuration's senders[0].display_number.
    #[arg(long, value_name = "E164", requires = "target")]
    pub target_to: Option<String>,
    /// With --target: the server's process id; its CPU per send is read from /proc/PID/stat.
    #[arg(long, value_name = "PID", requires = "target")]
    pub server_pid: Option<u32>,
    /// With --target: the sandbox's process id, to show how busy the other side was.
    #[arg(long, value_name = "PID", requires = "target")]
    pub sandbox_pid: Option<u32>,
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
    if let Some(target) = &args.target {
        return external::run(args, target).await;
    }
    if args.soak {
        return soak::run(args.duration, args.rate.unwrap_or(50), args.keep, args.json).await;
    }
    let rate = args.rate.unwrap_or(100);
    if args.policy {
        return policy::run(args.contacts, 20_000, args.json).await;
    }
    if args.console {
        return console::run(args.contacts.max(1), args.messages, args.json).await;
    }
    if args.events {
        return events::run(args.calls, rate, args.seconds, args.contacts, args.json).await;
    }
    if args.assistants {
        return assistants::run(args.calls, args.contacts, args.json).await;
    }
    if args.flows {
        return flows::run(
            args.calls,
            args.concurrency,
            args.contacts,
            rate,
            args.seconds,
            args.json,
        )
        .await;
    }
    if args.pacing {
        return pacing::run(args.numbers, rate, args.seconds, args.json, args.dry).await;
    }
    if args.sandbox {
        return sandbox::run(args.seconds, args.concurrency, args.json).await;
    }
    let postgres = !args.store.is_empty();
    anyhow::ensure!(
        args.nodes >= 1 && (args.nodes == 1 || postgres),
        "--nodes above 1 needs --store postgres://… (an SQLite file has one node)"
    );
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(
        args.calls >= 1 && args.concurrency >= 1,
        "--calls and --concurrency must be at least 1"
    );
    let before = machine_before().await?;
    let kind = if postgres { "PostgreSQL" } else { "SQLite" };
    if !args.json {
        println!(
            "store:  {} ({} node{}, {} cores), {} run{} on a fresh store and server each: {} calls at {}/s, then a burst of {} webhooks, {} concurrent",
            kind,
            args.nodes,
            if args.nodes == 1 { "" } else { "s" },
            before.cores,
            args.runs,
            if args.runs == 1 { "" } else { "s" },
            grouped(f64::from(rate * args.seconds), 0),
            rate,
            grouped(args.calls as f64, 0),
            args.concurrency
        );
        report::print_before(&before);
    }
    let mut runs = Vec::with_capacity(args.runs);
    // Each run's SQLite files are deleted only after the last run: on a disk mounted with
    // `discard`, freeing a run's few hundred megabytes stalled the next run's fsyncs by up to
    // 100 ms (the store's, measured: a file's fdatasync p99 1 ms → max 35 ms while a 400 MB
    // file was deleted), which the next paced phase reported as its p99.
    let mut stores = Leftovers::default();
    for number in 1..=args.runs {
        let run = run_once(args, rate, number, &mut stores).await?;
        if !args.json {
            println!("{}", report::run_line(&run, postgres));
        }
        runs.push(run);
    }
    drop(stores);
    if args.json {
        println!(
            "{}",
            report::json(kind, args.nodes, args.concurrency, &before, &runs)?
        );
    } else {
        for line in report::summary_lines(&runs) {
            println!("{line}");
        }
        println!(
            "memory: RSS of the whole process (server, sandbox and load generator); peak RSS is reset before each run, idle RSS is not: after run 1 it holds what the allocator kept from the runs before"
        );
    }
    Ok(())
}

/// Other processes' CPU over a second while the bench sits idle, and the load average: a
/// machine busy with something else gives lower figures, and the output says so.
async fn machine_before() -> anyhow::Result<report::Before> {
    let first = cpu::CpuSample::now()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu::CpuSample::now()?.since(&first);
    let loadavg = std::fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
    Ok(report::Before {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        others_cpu_percent: used.others_share() * 100.0,
        load_average: cpu::parse_loadavg(&loadavg)?,
        note: cpu::before_note(used.others_share()),
    })
}

/// The servers of one run and what posting to them needs.
struct Nodes {
    running: Vec<crate::app::Running>,
    secret: String,
    to: String,
}

impl Nodes {
    async fn stop(self) {
        for running in self.running {
            running.stop().await;
        }
    }
}

async fn start_nodes(count: usize, store_url: &str) -> anyhow::Result<Nodes> {
    let env = vec![
        ("RINGBACK_STORE__URL".to_string(), store_url.to_string()),
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
    let settings = Config::load_with_env(None, env.clone())?.build()?;
    let mut nodes = Nodes {
        running: Vec::with_capacity(count),
        secret: settings.calls_secret.expose_secret().to_string(),
        to: settings.senders[0].display_number.to_string(),
    };
    let mut sandbox_base: Option<String> = None;
    for n in 0..count {
        let mut env = env.clone();
        env.push((
            "RINGBACK_CLUSTER__NODE_ID".to_string(),
            format!("bench-node-{}", n + 1),
        ));
        // The first node runs the sandbox; the others send to it should they lead.
        if let Some(base) = &sandbox_base {
            env.push(("RINGBACK_WHATSAPP__API_BASE".to_string(), base.clone()));
        }
        let started = async {
            let settings = Config::load_with_env(None, env)?.build()?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let sandbox_listener = match n {
                0 => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?),
                _ => None,
            };
            crate::app::start(settings, listener, sandbox_listener).await
        }
        .await;
        match started {
            Ok(running) => {
                if let Some(addr) = running.sandbox_addr {
                    sandbox_base = Some(format!("http://{addr}"));
                }
                nodes.running.push(running);
            }
            Err(e) => {
                // The next run, or the next bench, must not find these still serving.
                nodes.stop().await;
                return Err(e);
            }
        }
    }
    Ok(nodes)
}

/// Directories removed when dropped (after the last run, or when a run fails).
#[derive(Default)]
struct Leftovers(Vec<std::path::PathBuf>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// One run: a fresh store and fresh servers, the paced phase, the burst; everything stopped
/// before it returns, also when it fails; its directory is left to `leftovers`.
async fn run_once(
    args: &BenchArgs,
    rate: u32,
    number: usize,
    leftovers: &mut Leftovers,
) -> anyhow::Result<report::Run> {
    reset_peak_rss();
    let cpu_start = cpu::CpuSample::now()?;
    let dir = tempfile_dir()?;
    leftovers.0.push(dir.clone());
    let store = BenchStore::create(&args.store, &dir).await?;
    let measured = match start_nodes(args.nodes, &store.url).await {
        Ok(nodes) => {
            let measured = measure(args, rate, number, &nodes).await;
            // Sampled before stopping: the run is the paced phase and the burst.
            let cpu_end = cpu::CpuSample::now();
            nodes.stop().await;
            measured.and_then(|run| {
                let others_cores = cpu_end?.since(&cpu_start).others_cores();
                Ok(report::Run {
                    others_cores,
                    ..run
                })
            })
        }
        Err(e) => Err(e),
    };
    store.drop().await;
    measured
}

/// Peak RSS (VmHWM) is the process's since it started: reset it so each run reports its own.
/// Writing 5 to clear_refs does that (Linux 4.0+); where it is refused, the peak is the
/// highest so far, which for later runs is at least the earlier runs' peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn measure(
    args: &BenchArgs,
    rate: u32,
    number: usize,
    nodes: &Nodes,
) -> anyhow::Result<report::Run> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = rss_mb("VmRSS:");
    let sandbox = nodes
        .running
        .first()
        .and_then(|r| r.sandbox.clone())
        .context("the bench's first node runs the sandbox")?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let post = Arc::new(Poster {
        client,
        urls: nodes
            .running
            .iter()
            .map(|r| format!("http://{}/webhooks/calls", r.addr))
            .collect(),
        secret: nodes.secret.clone(),
        to: nodes.to.clone(),
    });

    // Paced: latency webhook -> Cloud API request.
    let paced_calls = (rate * args.seconds) as usize;
    let mut posted_at = Vec::with_capacity(paced_calls);
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut inflight = tokio::task::JoinSet::new();
    for k in 0..paced_calls {
        tick.tick().await;
        posted_at.push(jiff::Timestamp::now().as_microsecond());
        let post = post.clone();
        inflight.spawn(async move { post.call(k).await });
    }
    while let Some(r) = inflight.join_next().await {
        r??;
    }
    wait_for_sends(&sandbox, paced_calls, Duration::from_secs(120)).await?;

    // Burst: accepted calls/s, and what is sent meanwhile and after.
    let calls = args.calls;
    // The paced phase's replies are not the burst's.
    let sent_before = sandbox.sent_count();
    let cpu_start = cpu::CpuSample::now()?;
    let started_us = jiff::Timestamp::now().as_microsecond();
    let started = Instant::now();
    let accepted = Arc::new(AtomicUsize::new(0));
    let sent_at_last_ack = Arc::new(AtomicUsize::new(0));
    let post_times = Arc::new(latency::PostTimes::new(paced_calls, calls));
    let sampler = timeline::Sampler::start(started, accepted.clone(), sandbox.clone(), sent_before);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (post, next, accepted) = (post.clone(), next.clone(), accepted.clone());
        let (sandbox, sent_at_last_ack) = (sandbox.clone(), sent_at_last_ack.clone());
        let post_times = post_times.clone();
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return Ok::<_, anyhow::Error>(());
                }
                post_times.record(paced_calls + i);
                post.call(paced_calls + i).await?;
                // Whoever is acknowledged last reads the sandbox at that moment.
                if accepted.fetch_add(1, Ordering::Relaxed) + 1 == calls {
                    sent_at_last_ack.store(
                        sandbox.sent_count().saturating_sub(sent_before),
                        Ordering::Relaxed,
                    );
                }
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r??;
    }
    let burst = started.elapsed();
    wait_for_sends(&sandbox, sent_before + calls, Duration::from_secs(600)).await?;
    let burst_cpu = cpu::CpuSample::now()?.since(&cpu_start);
    let timeline = sampler.finish().await?;

    let sent = sandbox.sent(None);
    let mut lat: Vec<f64> = Vec::with_capacity(paced_calls);
    for m in &sent {
        if let Some(i) = caller_index(&m.to).filter(|&i| i < paced_calls) {
            lat.push((m.received_us - posted_at[i]) as f64 / 1000.0);
        }
    }
    lat.sort_by(f64::total_cmp);
    let burst_replies = latency::match_replies(
        paced_calls,
        &post_times.snapshot(),
        sent.iter().map(|m| (m.to.as_str(), m.received_us)),
    );
    // The sandbox's own timestamp of the last reply: the poll above sees it up to 20 ms late.
    let last_reply_us = burst_replies.last_received_us.unwrap_or(started_us);
    let all_sent = (last_reply_us - started_us) as f64 / 1e6;
    let sends_during_load = sent_at_last_ack.load(Ordering::Relaxed);
    Ok(report::Run {
        run: number,
        burst_calls: calls,
        burst_seconds: burst.as_secs_f64(),
        accepted_calls_per_second: calls as f64 / burst.as_secs_f64(),
        sends_during_load,
        sends_during_load_percent: sends_during_load as f64 * 100.0 / calls as f64,
        burst_all_sent_seconds: all_sent,
        end_to_end_sends_per_second: if all_sent > 0.0 {
            calls as f64 / all_sent
        } else {
            0.0
        },
        cpu_ms_per_send: burst_cpu.own_ms() / calls as f64,
        paced_rate: rate,
        paced_calls,
        latency_p50_ms: percentile(&lat, 0.50),
        latency_p99_ms: percentile(&lat, 0.99),
        latency_max_ms: lat.last().copied().unwrap_or(0.0),
        burst_latency_p50_ms: burst_replies.p50_ms(),
        burst_latency_p99_ms: burst_replies.p99_ms(),
        idle_rss_mb: idle_rss,
        peak_rss_mb: rss_mb("VmHWM:"),
        // Filled in by run_once, which sees the whole run.
        others_cores: 0.0,
        timeline,
    })
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
