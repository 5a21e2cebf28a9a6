//! `ringback bench --soak`: does Ringback stay flat when it runs for a long time?
//!
//! A real server (temporary SQLite file, embedded sandbox sending `sent` and `delivered`
//! status webhooks for every reply) takes signed missed-call webhooks at a steady rate from a
//! pool of callers, with retention shortened (every kind kept `--keep`, the worker every 30 s)
//! so pruning runs during the soak. Every minute it prints: elapsed time, calls posted, RSS
//! (VmRSS), p99 latency from posting a webhook to the sandbox receiving the reply over that
//! minute, the database size (file + WAL) and the rows pruned so far. At the end it compares
//! the last third of the minutes with the middle third: RSS, p99 and size are flat when the
//! later figure is within 10 % (plus a small absolute margin) of the earlier one — the mean for
//! RSS and p99, the peak for the size, since the WAL is a sawtooth (it fills, then a
//! checkpoint truncates it) and a store that grows shows it in its peaks. The first third
//! is warm-up: caches fill and the database grows until the first rows age past `--keep`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde::Serialize;

use super::{Poster, percentile, rss_mb};
use crate::config::Config;
use crate::config::retention::Keep;

/// Distinct callers: each calls again every `CALLERS / rate` seconds, so contacts and the
/// policy index stop growing once all have called.
const CALLERS: usize = 20_000;

/// One printed row.
#[derive(Debug, Clone, Serialize)]
pub struct Minute {
    pub minute: u32,
    pub elapsed_s: f64,
    pub calls: u64,
    pub replies: u64,
    pub failed_posts: u64,
    pub rss_mb: f64,
    pub p99_ms: f64,
    pub db_mb: f64,
    pub pruned_rows: u64,
}

/// Parses `90s`, `30m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 90s, 30m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("'{s}' is not a duration like 90s, 30m or 1h")),
    };
    Ok(Duration::from_secs(secs))
}

pub async fn run(
    duration: Duration,
    rate: u32,
    keep: Duration,
    json_out: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(rate > 0, "--rate must be at least 1");
    let dir = super::tempfile_dir()?;
    let db = dir.join("soak.db");
    let env = vec![
        (
            "RINGBACK_STORE__URL".to_string(),
            format!("sqlite://{}", db.display()),
        ),
        (
            "RINGBACK_MISSED_CALL__COOLDOWN_MINUTES".to_string(),
            "0".to_string(),
        ),
        ("RINGBACK_SANDBOX__LIMITS".to_string(), "false".to_string()),
        (
            "RINGBACK_OUTBOX__THROUGHPUT_PER_SECOND".to_string(),
            "1000000".to_string(),
        ),
    ];
    let mut settings = Config::load_with_env(None, env)?.build()?;
    // Set directly rather than through the configuration, which refuses to keep events less
    // than Meta's 7-day redelivery period: the soak has no redeliveries to recognise.
    settings.retention.interval = Duration::from_secs(30);
    settings.retention.keep = Keep::all(Some(keep));
    let secret = settings.calls_secret.expose_secret().to_string();
    let to = settings.senders[0].display_number.to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sandbox_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = crate::app::start(settings, listener, Some(sandbox_listener)).await?;
    let sandbox = running
        .sandbox
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the soak needs the embedded sandbox"))?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let post = Arc::new(Poster {
        client,
        urls: vec![format!("http://{}/webhooks/calls", running.addr)],
        secret,
        to,
    });
    if !json_out {
        println!(
            "soak: {} s at {rate} calls/s, {CALLERS} callers, every kind kept {} s, retention every 30 s",
            duration.as_secs(),
            keep.as_secs()
        );
        println!(
            "{:>6} {:>8} {:>9} {:>9} {:>7} {:>8} {:>8} {:>8} {:>10}",
            "minute",
            "elapsed",
            "calls",
            "replies",
            "failed",
            "RSS MB",
            "p99 ms",
            "DB MB",
            "pruned"
        );
    }

    let started = Instant::now();
    let failed = Arc::new(AtomicU64::new(0));
    let mut posted_us: HashMap<String, i64> = HashMap::with_capacity(CALLERS);
    let mut minute_lat: Vec<f64> = Vec::new();
    let mut rows: Vec<Minute> = Vec::new();
    let (mut calls, mut replies) = (0u64, 0u64);
    let total = duration.as_secs() * u64::from(rate);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut drain = tokio::time::interval(Duration::from_secs(1));
    let mut next_minute = Duration::from_secs(60);
    while calls < total {
        tokio::select! {
            _ = tick.tick() => {
                let i = calls as usize;
                let caller_no = i % CALLERS;
                posted_us.insert(super::caller(caller_no).trim_start_matches('+').to_string(), jiff::Timestamp::now().as_microsecond());
                let (post, failed) = (post.clone(), failed.clone());
                // A slow answer must not hold the next call back, and one failure is a figure,
                // not the end of the soak.
                tokio::spawn(async move {
                    if post.call_from(i, caller_no).await.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                });
                calls += 1;
            }
            _ = drain.tick() => {
                for m in sandbox.drain_sent() {
                    replies += 1;
                    if let Some(at) = posted_us.get(&m.to) {
                        minute_lat.push((m.received_us - at) as f64 / 1000.0);
                    }
                }
                if started.elapsed() >= next_minute {
                    next_minute += Duration::from_secs(60);
                    let row = minute_row(&mut rows, started, calls, replies, &failed, &mut minute_lat, &db);
                    if !json_out {
                        print_row(&row);
                    }
                }
            }
        }
    }
    // The calls of a last partial minute count in the totals, not in the minute rows.
    running.stop().await;
    let verdict = verdict(&rows);
    let _ = std::fs::remove_dir_all(&dir);
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "rate": rate, "seconds": duration.as_secs(), "keep_seconds": keep.as_secs(),
                "calls": calls, "replies": replies, "minutes": rows, "verdict": verdict,
            }))?
        );
    } else {
        for line in &verdict {
            println!("{line}");
        }
    }
    Ok(())
}

fn minute_row(
    rows: &mut Vec<Minute>,
    started: Instant,
    calls: u64,
    replies: u64,
    failed: &AtomicU64,
    lat: &mut Vec<f64>,
    db: &std::path::Path,
) -> Minute {
    lat.sort_by(f64::total_cmp);
    let size = |p: std::path::PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = db.with_extension("db-wal");
    let row = Minute {
        minute: rows.len() as u32 + 1,
        elapsed_s: started.elapsed().as_secs_f64(),
        calls,
        replies,
        failed_posts: failed.load(Ordering::Relaxed),
        rss_mb: rss_mb("VmRSS:"),
        p99_ms: percentile(lat, 0.99),
        db_mb: (size(db.to_path_buf()) + size(wal)) as f64 / 1_048_576.0,
        pruned_rows: pruned_rows(),
    };
    lat.clear();
    rows.push(row.clone());
    row
}

fn print_row(r: &Minute) {
    println!(
        "{:>6} {:>7.0}s {:>9} {:>9} {:>7} {:>8.1} {:>8.2} {:>8.1} {:>10}",
        r.minute,
        r.elapsed_s,
        r.calls,
        r.replies,
        r.failed_posts,
        r.rss_mb,
        r.p99_ms,
        r.db_mb,
        r.pruned_rows
    );
}

/// Rows pruned so far, from the retention worker's counter.
fn pruned_rows() -> u64 {
    crate::telemetry::prometheus()
        .map(|h| h.render())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("ringback_retention_pruned_rows_total"))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum::<f64>() as u64
}

/// Compares the last third of the minutes with the middle third (means, or peaks for size).
pub fn verdict(rows: &[Minute]) -> Vec<String> {
    let n = rows.len();
    if n < 3 {
        return vec![format!(
            "verdict: {n} minute(s) measured; at least 3 are needed to compare the middle and last thirds"
        )];
    }
    let (middle, last) = (&rows[n / 3..2 * n / 3], &rows[2 * n / 3..]);
    fn mean(rs: &[Minute], f: fn(&Minute) -> f64) -> f64 {
        rs.iter().map(f).sum::<f64>() / rs.len() as f64
    }
    fn peak(rs: &[Minute], f: fn(&Minute) -> f64) -> f64 {
        rs.iter().map(f).fold(0.0, f64::max)
    }
    type Check = (
        &'static str,
        fn(&Minute) -> f64,
        fn(&[Minute], fn(&Minute) -> f64) -> f64,
        f64,
    );
    let checks: [Check; 3] = [
        ("RSS MB (mean)", |r| r.rss_mb, mean, 8.0),
        ("p99 ms (mean)", |r| r.p99_ms, mean, 5.0),
        ("DB MB (peak)", |r| r.db_mb, peak, 2.0),
    ];
    let mut out = Vec::new();
    let mut all = true;
    for (name, f, aggregate, margin) in checks {
        let (m, l) = (aggregate(middle, f), aggregate(last, f));
        let flat = l <= m * 1.10 + margin;
        all &= flat;
        out.push(format!(
            "{name}: middle third {m:.2}, last third {l:.2} ({:+.1} %): {}",
            if m > 0.0 { (l - m) / m * 100.0 } else { 0.0 },
            if flat { "flat" } else { "GROWING" }
        ));
    }
    out.push(format!(
        "verdict: {}",
        if all {
            "flat (RSS, p99 latency and database size)"
        } else {
            "NOT flat"
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(minute: u32, rss_mb: f64, p99_ms: f64, db_mb: f64) -> Minute {
        Minute {
            minute,
            elapsed_s: 60.0 * f64::from(minute),
            calls: 0,
            replies: 0,
            failed_posts: 0,
            rss_mb,
            p99_ms,
            db_mb,
            pruned_rows: 0,
        }
    }

    #[test]
    fn durations_take_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn a_database_that_keeps_growing_is_not_flat() {
        let rows: Vec<Minute> = (1..=9)
            .map(|m| row(m, 60.0, 4.0, 10.0 * f64::from(m)))
            .collect();
        let v = verdict(&rows);
        assert!(v[2].contains("GROWING"), "{v:?}");
        assert_eq!(v[3], "verdict: NOT flat");
    }

    #[test]
    fn a_bounded_wal_sawtooth_is_flat() {
        // The WAL fills to the truncation bound and drops back, out of phase with the thirds.
        let sizes = [60.0, 110.0, 55.0, 100.0, 118.0, 57.0, 90.0, 117.0, 53.0];
        let rows: Vec<Minute> = (1..=9)
            .map(|m| row(m, 60.0, 4.0, sizes[m as usize - 1]))
            .collect();
        let v = verdict(&rows);
        assert!(v[2].contains("flat") && !v[2].contains("GROWING"), "{v:?}");
    }

    #[test]
    fn steady_figures_are_flat() {
        let rows: Vec<Minute> = (1..=9)
            .map(|m| row(m, 60.0 + f64::from(m % 2), 4.0, 30.0))
            .collect();
        assert_eq!(
            verdict(&rows).last().map(String::as_str),
            Some("verdict: flat (RSS, p99 latency and database size)")
        );
    }
}
