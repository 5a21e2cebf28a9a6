//! `ringback bench --sandbox`: the sandbox alone, so it is never the bottleneck of Ringback's
//! own benchmarks. (1) Raw send throughput with limits off: C clients post template sends as
//! fast as they are answered, status webhooks going to an in-process sink. (2) Rate-limit
//! accuracy: clients offer far more than the number's throughput (80/s, then 1000/s) for N
//! seconds to distinct recipients; the accepted count is compared with rate × N.
//!
//! To measure with an external load generator instead (`apt-get install wrk`), run
//! `RINGBACK_SANDBOX__LIMITS=false ringback sandbox --listen 127.0.0.1:18090` and
//! `wrk -t2 -c64 -d10s -s sends.lua http://127.0.0.1:18090/v23.0/100000000000001/messages`
//! with this `sends.lua`:
//!
//! ```lua
//! wrk.method = "POST"
//! wrk.headers["Content-Type"] = "application/json"
//! wrk.headers["Authorization"] = "Bearer ringback-demo-token"
//! counter = 0
//! request = function()
//!   counter = counter + 1
//!   local body = string.format('{"messaging_product":"whatsapp","to":"+9197%08d","type":"template",'
//!     .. '"template":{"name":"hello_world","language":{"code":"en_US"}}}', counter)
//!   return wrk.format(nil, nil, nil, body)
//! end
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::sandbox::{Sandbox, SandboxNumber, SandboxSettings};

const PNID: &str = "100000000000001";
const TOKEN: &str = "bench-token";
const AUTH: &str = "Bearer bench-token";

async fn start(
    limits: bool,
    per_second: u32,
) -> anyhow::Result<(String, crate::shutdown::Trigger)> {
    let (trigger, shutdown) = crate::shutdown::channel();
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sink_url = format!("http://{}/hook", sink.local_addr()?);
    let router = axum::Router::new().route("/hook", axum::routing::post(|| async { "" }));
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(sink, router)
            .with_graceful_shutdown(async move { stop.wait().await })
            .await
    });
    let number = SandboxNumber {
        phone_number_id: PNID.into(),
        waba_id: "200000000000001".into(),
        display_number: "15550100001".into(),
        access_token: TOKEN.to_string().into(),
    };
    let mut settings =
        SandboxSettings::demo(vec![number], Some(sink_url), "bench".to_string().into());
    settings.limits.enabled = limits;
    settings.limits.throughput_per_second = per_second;
    settings.limits.tier = crate::sandbox::limits::Tier::Unlimited;
    settings.status_delay = Duration::from_millis(1);
    let sb = Sandbox::start(settings, shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/v23.0/{PNID}/messages", listener.local_addr()?);
    tokio::spawn(sb.serve(listener, shutdown));
    Ok((base, trigger))
}

/// Posts sends from `clients` tasks for `seconds`; returns (answered 200, answered other).
async fn drive(url: &str, clients: usize, seconds: f64) -> (u64, u64) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client builds");
    let (ok, refused, next) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, url, ok, refused, next, stop) = (
            http.clone(),
            url.to_string(),
            ok.clone(),
            refused.clone(),
            next.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                // Pre-formatted bytes: the load generator shares the cores, so keep it cheap.
                let body = format!(
                    r#"{{"messaging_product":"whatsapp","to":"+9197{:08}","type":"template","template":{{"name":"hello_world","language":{{"code":"en_US"}}}}}}"#,
                    i % 100_000_000
                );
                let request = http.post(&url).header("authorization", AUTH).header("content-type", "application/json").body(body);
                match request.send().await {
                    Ok(r) if r.status().as_u16() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    (ok.load(Ordering::Relaxed), refused.load(Ordering::Relaxed))
}

pub async fn run(seconds: u32, clients: usize, json_out: bool) -> anyhow::Result<()> {
    let secs = f64::from(seconds.max(1));
    let (url, stop) = start(false, 80).await?;
    let started = Instant::now();
    let (ok, _) = drive(&url, clients, secs).await;
    let raw = ok as f64 / started.elapsed().as_secs_f64();
    stop.fire();
    let mut accuracy = Vec::new();
    for rate in [80u32, 1000] {
        let (url, stop) = start(true, rate).await?;
        let (ok, refused) = drive(&url, 16, secs).await;
        let expected = f64::from(rate) * secs;
        accuracy.push(json!({"rate_per_second": rate, "seconds": secs, "accepted": ok, "refused_130429": refused,
            "expected": expected, "error_percent": (ok as f64 - expected) / expected * 100.0}));
        stop.fire();
    }
    let report = json!({"raw_sends_per_second": raw, "clients": clients, "rate_limits": accuracy});
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "sandbox, limits off: {raw:.0} send requests/s answered 200 ({clients} clients, {secs} s, status webhooks to a local sink)"
        );
        for a in &accuracy {
            println!(
                "sandbox, limit {}/s for {} s: {} accepted (expected {}), error {:+.2} %, {} refused with 130429",
                a["rate_per_second"],
                a["seconds"],
                a["accepted"],
                a["expected"],
                a["error_percent"].as_f64().unwrap_or(0.0),
                a["refused_130429"]
            );
        }
    }
    Ok(())
}
