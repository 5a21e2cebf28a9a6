//! `ringback bench --pacing`: does the outbox hold each number's throughput while several
//! numbers send at once? A real server (temporary SQLite, embedded sandbox enforcing Meta's
//! limits) gets N numbers, each with more queued templates than it may send; after a warm-up
//! second, the sandbox's receive times give each number's rate over the measured seconds,
//! compared with the configured rate. Refusals (130429) would show pacing above the limit.

use std::time::Duration;

use serde_json::json;

use crate::config::Config;
use crate::store::NewMessage;

/// The pacer alone: `numbers` tasks each take send slots as fast as the pacer gives them for
/// `seconds`, with no I/O, so the machine cannot be the limit. Returns slots per number.
pub async fn dry(numbers: usize, rate: u32, seconds: u32) -> Vec<u64> {
    let ids: Vec<String> = (0..numbers).map(|i| format!("n{i}")).collect();
    let pacer = crate::outbox::Pacer::new(ids.clone(), rate);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(seconds));
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids {
        let pacer = pacer.clone();
        tasks.spawn(async move {
            // The initial burst is not part of the steady rate being measured.
            let mut n = 0u64;
            while tokio::time::Instant::now() < deadline {
                tokio::select! {
                    _ = pacer.until_ready(&id) => n += 1,
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            n
        });
    }
    tasks.join_all().await
}

pub async fn run(
    numbers: usize,
    rate: u32,
    seconds: u32,
    json_out: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    if dry_run {
        let counts = dry(numbers, rate, seconds).await;
        let expected = f64::from(rate) * f64::from(seconds);
        let worst = counts
            .iter()
            .map(|c| ((*c as f64 - expected) / expected * 100.0).abs())
            .fold(0.0, f64::max);
        if json_out {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"numbers": numbers, "rate": rate, "seconds": seconds, "slots": counts, "expected": expected, "worst_error_percent": worst})
                )?
            );
        } else {
            println!(
                "pacer alone: {numbers} numbers at {rate}/s for {seconds} s: slots per number {counts:?} (expected {expected}), worst error {worst:.2} %"
            );
        }
        return Ok(());
    }
    let dir =
        std::env::temp_dir().join(format!("ringback-pacing-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let mut env: Vec<(String, String)> = vec![
        (
            "RINGBACK_STORE__URL".into(),
            format!("sqlite://{}", dir.join("pacing.db").display()),
        ),
        (
            "RINGBACK_OUTBOX__THROUGHPUT_PER_SECOND".into(),
            rate.to_string(),
        ),
        ("RINGBACK_OUTBOX__CONCURRENCY".into(), "32".into()),
        (
            "RINGBACK_SANDBOX__THROUGHPUT_PER_SECOND".into(),
            rate.to_string(),
        ),
        ("RINGBACK_SANDBOX__STATUS_DELAY_MS".into(), "200".into()),
    ];
    for i in 0..numbers {
        let p = format!("RINGBACK_SENDERS__{i}__");
        env.push((
            format!("{p}PHONE_NUMBER_ID"),
            format!("10000000000{:04}", 100 + i),
        ));
        env.push((format!("{p}WABA_ID"), "200000000000001".into()));
        env.push((
            format!("{p}DISPLAY_NUMBER"),
            format!("+1555010{:04}", 100 + i),
        ));
        env.push((format!("{p}ACCESS_TOKEN"), "ringback-demo-token".into()));
        env.push((format!("{p}BUSINESS_NAME"), format!("Branch {i}")));
    }
    // Rates are counted from every send the sandbox recorded: keep them all.
    env.push(("RINGBACK_SANDBOX__KEEP".into(), "0".into()));
    let settings = Config::load_with_env(None, env)?.build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sandbox_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let senders = settings.senders.clone();
    let running = crate::app::start(settings, listener, Some(sandbox_listener)).await?;
    let sandbox = running.sandbox.clone().expect("the bench runs the sandbox");
    // Enough work that no number runs dry: rate × (warm-up + measured + slack).
    let per_number = rate as usize * (seconds as usize + 3);
    // Every message becomes due at the same instant, after the queue is filled: the lanes start
    // together and none has sent anything before the measurement begins.
    let total = (per_number * numbers) as i64;
    let due = crate::time::now_ms() + 5_000 + total; // enqueueing runs well above 1,000/s
    let now = due;
    for (n, s) in senders.iter().enumerate() {
        for k in 0..per_number {
            let id = crate::outbox::new_message_id();
            let to = format!("+9196{n:02}{k:06}");
            let body = crate::cloud_api::wire::template(&to, "hello_world", "en_US", &[], &id);
            let m = NewMessage {
                id,
                sender_id: s.phone_number_id.clone(),
                to,
                kind: "template".into(),
                body,
                idempotency_key: None,
                reason: "pacing bench".into(),
                created_at: now,
            };
            running.store.enqueue(&m).await?;
        }
    }
    let wait = (due - crate::time::now_ms()).max(0) as u64;
    anyhow::ensure!(
        wait > 0,
        "enqueueing took longer than planned; lower --rate or --numbers"
    );
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let started = due;
    tokio::time::sleep(Duration::from_secs(u64::from(seconds) + 2)).await;
    let (from, to) = (started + 1000, started + 1000 + i64::from(seconds) * 1000);
    let sent = sandbox.sent(None);
    let mut rows = Vec::new();
    for s in &senders {
        let count = sent
            .iter()
            .filter(|m| {
                m.phone_number_id == s.phone_number_id
                    && m.received_at >= from
                    && m.received_at < to
            })
            .count();
        let expected = f64::from(rate) * f64::from(seconds);
        rows.push(json!({"phone_number_id": s.phone_number_id, "sent": count, "expected": expected, "error_percent": (count as f64 - expected) / expected * 100.0}));
    }
    let refused: u64 = crate::telemetry::prometheus()
        .map(|h| h.render())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("ringback_sends_total") && l.contains("outcome=\"retry\""))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum::<f64>() as u64;
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    let worst = rows
        .iter()
        .map(|r| r["error_percent"].as_f64().unwrap_or(0.0).abs())
        .fold(0.0, f64::max);
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"numbers": numbers, "rate": rate, "seconds": seconds, "per_number": rows, "retries": refused, "worst_error_percent": worst})
            )?
        );
    } else {
        for r in &rows {
            println!(
                "{}: {} sent in {seconds} s (expected {}), error {:+.2} %",
                r["phone_number_id"].as_str().unwrap_or(""),
                r["sent"],
                r["expected"],
                r["error_percent"].as_f64().unwrap_or(0.0)
            );
        }
        println!(
            "pacing: {numbers} numbers at {rate}/s each for {seconds} s: worst error {worst:.2} %, {refused} sends retried after a Cloud API refusal"
        );
    }
    Ok(())
}
