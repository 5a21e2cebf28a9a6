//! `ringback bench --flows`: the flow runner on a temporary SQLite store, the server and its
//! sandbox in this process, measured two ways:
//!
//! 1. throughput: `--calls` inbound HTTP triggers (`POST /hooks/lead`, `--concurrency`
//!    connections) of a flow "hook → branch → send a template": hooks acknowledged per second
//!    (each run is stored before its 202) and runs per second end to end, from the first hook
//!    to the last template received by the sandbox;
//! 2. waiting: `--contacts` runs sleeping on a one-hour delay (the process's RSS with them
//!    stored, and its CPU time over 5 s: a waiting run costs nothing), then `--rate` runs per
//!    second for `--seconds` whose delays end while the runner is busy with nothing else: how
//!    late each timer fires (p50, p99, max).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::summary::grouped;
use crate::config::Config;
use crate::flows::engine::{Engine, Next, Run};
use crate::store::{NewRun, RunQuery};
use crate::time::now_ms;

const SECRET: &str = "bench-secret";

const LEAD: &str = r#"
name = "lead"
[trigger]
on = "http"
secret_env = "RINGBACK_FLOW_BENCH_SECRET"
[[steps]]
id = "route"
type = "branch"
cases = [{ if = "trigger.score >= 50", goto = "hot" }]
else = "cold"
[[steps]]
id = "hot"
type = "send_template"
to = "{{ trigger.phone }}"
template = "lead_welcome"
variables = ["{{ trigger.name }}", "a call back today"]
next = "end"
[[steps]]
id = "cold"
type = "send_template"
to = "{{ trigger.phone }}"
template = "lead_welcome"
variables = ["{{ trigger.name }}", "our brochure"]
"#;

const TIMER: &str = r#"
name = "timer"
[trigger]
on = "manual"
[[steps]]
id = "wait"
type = "delay"
for = "1h"
[[steps]]
id = "mark"
type = "set"
vars = { woke = "yes" }
"#;

/// A server on a fresh SQLite store in `dir`, with the two flows and no pacing in the way.
async fn server(dir: &std::path::Path) -> anyhow::Result<crate::app::Running> {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows)?;
    std::fs::write(flows.join("lead.toml"), LEAD)?;
    std::fs::write(flows.join("timer.toml"), TIMER)?;
    let env = [
        (
            "RINGBACK_STORE__URL",
            format!("sqlite://{}", dir.join("flows.db").display()),
        ),
        ("RINGBACK_FLOWS__DIR", flows.display().to_string()),
        ("RINGBACK_FLOW_BENCH_SECRET", SECRET.into()),
        ("RINGBACK_SANDBOX__LIMITS", "false".into()),
        ("RINGBACK_SANDBOX__STATUSES", "false".into()),
        ("RINGBACK_SANDBOX__KEEP", "1000".into()),
        ("RINGBACK_OUTBOX__THROUGHPUT_PER_SECOND", "1000000".into()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let settings = Config::load_with_env(None, env)?.build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sandbox = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    crate::app::start(settings, listener, Some(sandbox)).await
}

/// What the benchmark measured.
#[derive(Debug, serde::Serialize)]
pub struct FlowFigures {
    pub runs: usize,
    pub hooks_per_s: f64,
    pub runs_per_s: f64,
    pub waiting: usize,
    pub rss_mb_waiting: f64,
    pub cpu_ms_idle_5s: f64,
    pub timers: usize,
    pub lateness_p50_ms: f64,
    pub lateness_p99_ms: f64,
    pub lateness_max_ms: f64,
}

pub async fn run(
    calls: usize,
    concurrency: usize,
    waiting: usize,
    rate: u32,
    seconds: u32,
    json_out: bool,
) -> anyhow::Result<()> {
    let dir = super::tempfile_dir()?;
    let _leftovers = super::Leftovers(vec![dir.clone()]);
    let running = server(&dir).await?;
    let (hooks_per_s, runs_per_s) = throughput(&running, calls, concurrency).await?;
    if !json_out {
        println!(
            "hook → branch → template: {} runs, {concurrency} connections: {} hooks acknowledged/s, {} runs/s end to end (first hook to last template at the sandbox)",
            grouped(calls as f64, 0),
            grouped(hooks_per_s, 0),
            grouped(runs_per_s, 0)
        );
    }
    let (rss, cpu) = park(&running, waiting).await?;
    if !json_out {
        println!(
            "{} runs waiting on a 1 h delay: RSS {rss:.0} MB, CPU {cpu:.0} ms over 5 s idle",
            grouped(waiting as f64, 0)
        );
    }
    let late = lateness(&running, rate, seconds).await?;
    let pick = |p: f64| super::percentile(&late, p);
    if !json_out {
        println!(
            "timers: {} delays ending at {rate}/s: lateness p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            grouped(late.len() as f64, 0),
            pick(0.5),
            pick(0.99),
            pick(1.0)
        );
    }
    let figures = FlowFigures {
        runs: calls,
        hooks_per_s,
        runs_per_s,
        waiting,
        rss_mb_waiting: rss,
        cpu_ms_idle_5s: cpu,
        timers: late.len(),
        lateness_p50_ms: pick(0.5),
        lateness_p99_ms: pick(0.99),
        lateness_max_ms: pick(1.0),
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    }
    running.stop().await;
    Ok(())
}

/// Posts `calls` hooks over `concurrency` connections; hooks/s and runs/s end to end.
async fn throughput(
    running: &crate::app::Running,
    calls: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, f64)> {
    let sandbox = running
        .sandbox
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the sandbox is not running"))?;
    let url = format!("http://{}/hooks/lead", running.addr);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, url) = (next.clone(), url.clone());
        clients.spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return Ok::<(), anyhow::Error>(());
                }
                let body = json!({"phone": format!("+9199{i:08}"), "name": format!("Lead {i}"), "score": i % 100});
                let r = http
                    .post(&url)
                    .bearer_auth(SECRET)
                    .json(&body)
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 202, "hook answered {}", r.status());
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done??;
    }
    let acked = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(600);
    while sandbox.sent_count() < calls {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {calls} templates reached the sandbox in 10 minutes",
            sandbox.sent_count()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let done = start.elapsed().as_secs_f64();
    Ok((calls as f64 / acked, calls as f64 / done))
}

/// The state of a run of `timer` that has taken its delay, due at `until`.
fn sleeping(engine: &Engine<'_>, i: usize, at: i64, until: i64) -> NewRun {
    let mut run = Run::start(json!({}), json!({}), at);
    let next = engine.advance(&mut run, at);
    debug_assert!(matches!(next, Next::Sleep { .. }));
    if let crate::flows::engine::Status::Sleeping { until: u, .. } = &mut run.status {
        *u = until;
    }
    NewRun {
        id: format!("run_bench_{i:08}"),
        flow: "timer".into(),
        version: String::new(),
        trigger_key: format!("bench:{i}"),
        contact: None,
        status: "sleeping".into(),
        due_at: until,
        state: serde_json::to_string(&run).unwrap_or_else(|_| "null".into()),
        created_at: at,
    }
}

async fn timer_version(running: &crate::app::Running) -> anyhow::Result<String> {
    Ok(running
        .store
        .flows()
        .await?
        .into_iter()
        .find(|f| f.name == "timer")
        .ok_or_else(|| anyhow::anyhow!("the timer flow is not loaded"))?
        .version)
}

/// The timer flow read, and an empty context for its interpreter.
fn timer_flow() -> anyhow::Result<(crate::flows::Flow, crate::flows::render::Context)> {
    let flow = crate::flows::catalog::read(TIMER, "timer", None)
        .map_err(|p| anyhow::anyhow!("the timer flow: {p:?}"))?;
    Ok((flow, crate::flows::render::Context::default()))
}

/// Stores `n` runs sleeping for an hour; RSS with them stored, CPU over 5 s idle.
async fn park(running: &crate::app::Running, n: usize) -> anyhow::Result<(f64, f64)> {
    let version = timer_version(running).await?;
    let (flow, base) = timer_flow()?;
    let engine = Engine {
        flow: &flow,
        base: &base,
        zone: jiff::tz::TimeZone::UTC,
    };
    let now = now_ms();
    for chunk in (0..n).collect::<Vec<_>>().chunks(2_000) {
        let runs: Vec<NewRun> = chunk
            .iter()
            .map(|&i| NewRun {
                version: version.clone(),
                ..sleeping(&engine, i, now, now + 3_600_000)
            })
            .collect();
        running.store.start_runs(&runs, &[], None).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = std::process::id();
    let before = super::cpu::process_ticks(pid)?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cpu = super::cpu::ticks_ms(super::cpu::process_ticks(pid)? - before);
    Ok((super::rss_mb("VmRSS:"), cpu))
}

/// Runs whose delays end at `rate` per second for `seconds`: how late each wakes, in ms
/// (the time its run was taken up, from its timeline, minus its due time).
async fn lateness(
    running: &crate::app::Running,
    rate: u32,
    seconds: u32,
) -> anyhow::Result<Vec<f64>> {
    let version = timer_version(running).await?;
    let (flow, base) = timer_flow()?;
    let engine = Engine {
        flow: &flow,
        base: &base,
        zone: jiff::tz::TimeZone::UTC,
    };
    let n = (rate * seconds) as usize;
    let first = now_ms() + 2_000;
    let step = 1_000.0 / f64::from(rate.max(1));
    let runs: Vec<NewRun> = (0..n)
        .map(|i| {
            let due = first + (i as f64 * step) as i64;
            NewRun {
                version: version.clone(),
                trigger_key: format!("timer:{i}"),
                id: format!("run_timer_{i:08}"),
                ..sleeping(&engine, i, now_ms(), due)
            }
        })
        .collect();
    for chunk in runs.chunks(2_000) {
        running.store.start_runs(chunk, &[], None).await?;
    }
    // The runner learns of them at its next look (it sleeps until the earliest due time).
    let last_due = first + (n as f64 * step) as i64;
    tokio::time::sleep(Duration::from_millis(
        (last_due - now_ms()).max(0) as u64 + 1_000,
    ))
    .await;
    let mut late = Vec::with_capacity(n);
    for r in &runs {
        let timeline = running.store.run_timeline(&r.id).await?;
        if let Some(woke) = timeline.iter().find(|l| l.kind == "done") {
            late.push((woke.at - r.due_at) as f64);
        }
    }
    let left = running
        .store
        .runs(&RunQuery {
            flow: Some("timer".into()),
            status: Some("running".into()),
            before: None,
            limit: 1,
        })
        .await?;
    anyhow::ensure!(
        late.len() == n,
        "{} of {n} timers fired ({} still running)",
        late.len(),
        left.len()
    );
    late.sort_by(f64::total_cmp);
    Ok(late)
}
