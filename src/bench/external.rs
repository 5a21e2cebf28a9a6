//! `ringback bench --target http://127.0.0.1:PORT`: drives a server that is already running
//! (`ringback serve`, pinned to its own core by `scripts/bench-pinned`) instead of starting one
//! in this process, so the CPU per send is the server's alone: read from `/proc/PID/stat` of
//! `--server-pid`, not from this process, which is only the load generator.
//!
//! The server sends to a standalone sandbox (`ringback sandbox --keep 0`, `--target-sandbox`),
//! read over HTTP. Each of `--runs` runs is a burst of `--calls` signed missed-call webhooks,
//! `--concurrency` at a time, each from its own caller; it measures what the in-process bench
//! does (accepted webhooks/s, sends during load, end-to-end sends/s, the per-second timeline)
//! plus every call's webhook → Cloud API request latency and the server's CPU per send.
//!
//! The server keeps its store between runs, so call ids and callers never repeat: run `n`
//! posts calls `base + (n - 1) × calls …`, `base` being the replies the sandbox had already
//! received (0 on fresh processes; after an earlier bench against the same pair, past the
//! calls it made).
//!
//! Later runs therefore measure a larger store than the first: on 2026-12-01 the server's CPU
//! per send grew by about a sixth per 20,000 calls, from the outbox's once-a-second
//! housekeeping (`mark_in_flight_uncertain` and `template_reach`, called from
//! src/outbox/lane.rs), whose queries scan every message or attempt. The in-process bench
//! starts each run on a fresh store instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use secrecy::ExposeSecret;

use super::summary::grouped;
use super::{BenchArgs, Poster, cpu, latency, timeline};
use figures::TargetRun;
use remote::SandboxClient;

mod figures;
mod remote;

/// How long the sandbox may take to receive a burst's last reply, and how long its count may
/// stay still before the bench gives up.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);
const DRAIN_STALL: Duration = Duration::from_secs(30);

/// The running pair being measured.
struct Target {
    post: Arc<Poster>,
    sandbox: SandboxClient,
    server_pid: u32,
    sandbox_pid: Option<u32>,
    calls: usize,
    concurrency: usize,
}

pub async fn run(args: &BenchArgs, target: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !(args.soak || args.pacing || args.policy || args.sandbox)
            && args.store.is_empty()
            && args.nodes == 1,
        "--target drives a running server: --soak, --pacing, --policy, --sandbox, --store and --nodes do not apply"
    );
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(
        args.calls >= 1 && args.concurrency >= 1,
        "--calls and --concurrency must be at least 1"
    );
    let sandbox_base = args.target_sandbox.as_deref().context(
        "--target needs --target-sandbox http://HOST:PORT, the standalone sandbox the server sends to",
    )?;
    let server_pid = args
        .server_pid
        .context("--target needs --server-pid PID: the server's CPU is read from /proc/PID/stat")?;
    // Both pids are read once now, so a wrong one fails before any load is sent.
    cpu::process_ticks(server_pid).context("--server-pid")?;
    if let Some(pid) = args.sandbox_pid {
        cpu::process_ticks(pid).context("--sandbox-pid")?;
    }
    let (secret, to) = secret_and_business_number(args)?;
    let target = target.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .context("building the HTTP client")?;
    let health = format!("{target}/healthz");
    let status = client
        .get(&health)
        .send()
        .await
        .with_context(|| format!("reading {health}: is `ringback serve` running there?"))?
        .status();
    anyhow::ensure!(status.is_success(), "{health} answered {status}");
    let sandbox = SandboxClient::new(sandbox_base)?;
    let base = sandbox.sent().await?;
    let t = Target {
        post: Arc::new(Poster {
            client,
            urls: vec![format!("{target}/webhooks/calls")],
            secret,
            to,
        }),
        sandbox,
        server_pid,
        sandbox_pid: args.sandbox_pid,
        calls: args.calls,
        concurrency: args.concurrency,
    };

    let before = super::machine_before().await?;
    if !args.json {
        println!(
            "target: {target} (pid {server_pid}, cores {}), sandbox {sandbox_base} (cores {}), load generator cores {}",
            allowed(Some(server_pid)),
            args.sandbox_pid
                .map_or_else(|| "?, no --sandbox-pid".to_string(), |p| allowed(Some(p))),
            allowed(None),
        );
        println!(
            "{} run{} on one running server: a burst of {} webhooks each, {} concurrent, unique callers from +9198{:08}",
            args.runs,
            if args.runs == 1 { "" } else { "s" },
            grouped(args.calls as f64, 0),
            args.concurrency,
            base,
        );
        super::report::print_before(&before);
    }
    let mut runs = Vec::with_capacity(args.runs);
    for number in 1..=args.runs {
        settle(&t.sandbox).await?;
        let run = measure(&t, number, base + (number - 1) * args.calls).await?;
        if !args.json {
            println!("{}", figures::run_line(&run));
        }
        runs.push(run);
    }
    let with_sandbox = args.sandbox_pid.is_some();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "target": target,
                "sandbox": sandbox_base,
                "server_pid": server_pid,
                "sandbox_pid": args.sandbox_pid,
                "calls": args.calls,
                "concurrency": args.concurrency,
                "before": before,
                "runs": runs,
                "summary": figures::summary_json(&runs, with_sandbox)?,
            }))?
        );
    } else {
        for line in figures::summary_lines(&runs, with_sandbox) {
            println!("{line}");
        }
    }
    Ok(())
}

fn allowed(pid: Option<u32>) -> String {
    cpu::allowed_cpus(pid).unwrap_or_else(|| "?".to_string())
}

/// `--target-secret` and `--target-to`, or what a server started with the same configuration
/// uses: the built-in defaults and the `RINGBACK_…` environment (calls.secret,
/// senders[0].display_number).
fn secret_and_business_number(args: &BenchArgs) -> anyhow::Result<(String, String)> {
    if let (Some(secret), Some(to)) = (&args.target_secret, &args.target_to) {
        return Ok((secret.clone(), to.clone()));
    }
    let settings = crate::config::Config::load(None)?
        .build()
        .context("reading the configuration for the defaults of --target-secret and --target-to")?;
    let secret = args
        .target_secret
        .clone()
        .unwrap_or_else(|| settings.calls_secret.expose_secret().to_string());
    let to = args
        .target_to
        .clone()
        .unwrap_or_else(|| settings.senders[0].display_number.to_string());
    Ok((secret, to))
}

/// Before a run: the sandbox has posted every status webhook of the run before, and the server
/// had a moment to take the last ones in, so this run's CPU is this run's work.
async fn settle(sandbox: &SandboxClient) -> anyhow::Result<()> {
    sandbox.wait_for_webhooks(Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

/// CPU counters at one instant: the server's, the sandbox's, this process's and the machine's.
struct Usage {
    at: Instant,
    server: u64,
    sandbox: Option<u64>,
    machine_and_own: cpu::CpuSample,
}

impl Usage {
    fn now(t: &Target) -> anyhow::Result<Usage> {
        Ok(Usage {
            at: Instant::now(),
            server: cpu::process_ticks(t.server_pid)?,
            sandbox: t.sandbox_pid.map(cpu::process_ticks).transpose()?,
            machine_and_own: cpu::CpuSample::now()?,
        })
    }
}

/// CPU used between two readings, in milliseconds and in cores.
struct Used {
    server_ms: f64,
    server_cores: f64,
    load_generator_cores: f64,
    sandbox_cores: Option<f64>,
    others_cores: f64,
}

fn used(start: &Usage, end: &Usage) -> Used {
    let wall_ms = end.at.duration_since(start.at).as_secs_f64() * 1000.0;
    let cores = |ticks: u64| {
        if wall_ms > 0.0 {
            cpu::ticks_ms(ticks) / wall_ms
        } else {
            0.0
        }
    };
    let server = end.server.saturating_sub(start.server);
    let sandbox = end
        .sandbox
        .zip(start.sandbox)
        .map(|(e, s)| e.saturating_sub(s));
    let machine = end.machine_and_own.since(&start.machine_and_own);
    // `others` of the machine reading is everything but this process: the server's and the
    // sandbox's ticks are not "other processes" here.
    let rest = cpu::CpuUse {
        others_ticks: machine
            .others_ticks
            .saturating_sub(server + sandbox.unwrap_or(0)),
        ..machine
    };
    Used {
        server_ms: cpu::ticks_ms(server),
        server_cores: cores(server),
        load_generator_cores: cores(machine.own_ticks),
        sandbox_cores: sandbox.map(cores),
        others_cores: rest.others_cores(),
    }
}

/// One burst: calls `first .. first + calls`.
async fn measure(t: &Target, number: usize, first: usize) -> anyhow::Result<TargetRun> {
    let calls = t.calls;
    let sent_before = t.sandbox.sent().await?;
    let post_times = Arc::new(latency::PostTimes::new(first, calls));
    let accepted = Arc::new(AtomicUsize::new(0));
    let sent_at_last_ack = Arc::new(AtomicUsize::new(0));
    let cpu_start = Usage::now(t)?;
    let started_us = jiff::Timestamp::now().as_microsecond();
    let started = Instant::now();
    let sampler =
        timeline::Sampler::start(started, accepted.clone(), t.sandbox.clone(), sent_before);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..t.concurrency {
        let (post, next, accepted) = (t.post.clone(), next.clone(), accepted.clone());
        let (sandbox, sent_at_last_ack) = (t.sandbox.clone(), sent_at_last_ack.clone());
        let post_times = post_times.clone();
        workers.spawn(async move {
            let mut acks = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= calls {
                    return Ok::<_, anyhow::Error>(acks);
                }
                post_times.record(first + k);
                let posted = Instant::now();
                post.call(first + k).await?;
                acks.push(posted.elapsed().as_secs_f64() * 1e3);
                // Whoever is acknowledged last reads the sandbox at that moment.
                if accepted.fetch_add(1, Ordering::Relaxed) + 1 == calls {
                    let sent = sandbox.sent().await?;
                    sent_at_last_ack.store(sent.saturating_sub(sent_before), Ordering::Relaxed);
                }
            }
        });
    }
    let mut acks = Vec::with_capacity(calls);
    while let Some(r) = workers.join_next().await {
        acks.extend(r??);
    }
    acks.sort_by(f64::total_cmp);
    let burst = started.elapsed();
    t.sandbox
        .wait_for_sent(sent_before + calls, DRAIN_LIMIT, DRAIN_STALL)
        .await?;
    let cpu = used(&cpu_start, &Usage::now(t)?);
    let timeline = sampler.finish().await?;

    let replies = t.sandbox.replies().await?;
    let matched = latency::match_replies(
        first,
        &post_times.snapshot(),
        replies.iter().map(|r| (r.to.as_str(), r.received_us)),
    );
    anyhow::ensure!(
        matched.sorted_ms.len() == calls,
        "the sandbox holds replies to {} of the burst's {calls} callers (+9198{first:08} on): did another client use it meanwhile?",
        matched.sorted_ms.len()
    );
    // The sandbox's own timestamp of the last reply: the poll above sees it up to 20 ms late.
    let last_reply_us = matched.last_received_us.unwrap_or(started_us);
    let all_sent = (last_reply_us - started_us) as f64 / 1e6;
    let sends_during_load = sent_at_last_ack.load(Ordering::Relaxed);
    Ok(TargetRun {
        run: number,
        calls,
        burst_seconds: burst.as_secs_f64(),
        accepted_calls_per_second: calls as f64 / burst.as_secs_f64(),
        sends_during_load,
        sends_during_load_percent: sends_during_load as f64 * 100.0 / calls as f64,
        all_sent_seconds: all_sent,
        end_to_end_sends_per_second: if all_sent > 0.0 {
            calls as f64 / all_sent
        } else {
            0.0
        },
        server_cpu_ms_per_send: cpu.server_ms / calls as f64,
        ack_p50_ms: super::percentile(&acks, 0.50),
        ack_p99_ms: super::percentile(&acks, 0.99),
        latency_p50_ms: matched.p50_ms(),
        latency_p99_ms: matched.p99_ms(),
        latency_max_ms: matched.sorted_ms.last().copied().unwrap_or(0.0),
        server_cores: cpu.server_cores,
        load_generator_cores: cpu.load_generator_cores,
        sandbox_cores: cpu.sandbox_cores,
        others_cores: cpu.others_cores,
        timeline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(at: Instant, server: u64, sandbox: Option<u64>, busy: u64, own: u64) -> Usage {
        Usage {
            at,
            server,
            sandbox,
            machine_and_own: cpu::CpuSample {
                machine: cpu::MachineTicks {
                    busy,
                    // The machine was never idle over the interval: every tick is busy.
                    total: busy + 10_000,
                    cpus: 2,
                },
                own,
            },
        }
    }

    #[test]
    fn the_servers_and_the_sandboxs_cpu_are_not_counted_as_other_processes() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(2);
        // Two seconds on two cores (400 ticks): server 190, sandbox 120, load generator 70,
        // and 20 more that were someone else's.
        let start = usage(t0, 1_000, Some(500), 10_000, 300);
        let end = usage(t1, 1_190, Some(620), 10_400, 370);
        let u = used(&start, &end);
        assert!((u.server_ms - 1_900.0).abs() < 1e-9);
        assert!((u.server_cores - 0.95).abs() < 1e-9);
        assert!((u.load_generator_cores - 0.35).abs() < 1e-9);
        assert!((u.sandbox_cores.unwrap() - 0.6).abs() < 1e-9);
        assert!((u.others_cores - 0.1).abs() < 1e-9);
        // Without the sandbox's pid its CPU is among "other processes".
        let blind = used(
            &usage(t0, 1_000, None, 10_000, 300),
            &usage(t1, 1_190, None, 10_400, 370),
        );
        assert_eq!(blind.sandbox_cores, None);
        assert!((blind.others_cores - 0.7).abs() < 1e-9);
    }
}
