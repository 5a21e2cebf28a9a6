//! Logs and metrics: one function per event that needs a metric, so names and labels live in
//! one place. Labels stay bounded (source, outcome, phone-number id), never a customer's number.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process; later calls return the same handle.
pub fn prometheus() -> Option<PrometheusHandle> {
    prometheus_with(None)
}

/// As [`prometheus`], labelling every series with `node` (one node per process; when
/// several servers share a process, as in tests, the first one's name stays).
pub fn prometheus_for(node: &str) -> Option<PrometheusHandle> {
    prometheus_with(Some(node))
}

fn prometheus_with(node: Option<&str>) -> Option<PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let mut builder = PrometheusBuilder::new().set_buckets(&buckets).ok()?;
            if let Some(node) = node {
                builder = builder.add_global_label("node", node);
            }
            builder.install_recorder().ok()
        })
        .clone()
}

/// Sets up `tracing` output; `filter` uses EnvFilter syntax and RUST_LOG wins over it.
pub fn init_logs(filter: &str, json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub fn webhook_received(source: &'static str) {
    counter!("ringback_webhooks_received_total", "source" => source).increment(1);
}

pub fn webhook_rejected(source: &'static str, reason: &'static str, detail: &str) {
    tracing::warn!(source, reason, detail, "Webhook rejected.");
    counter!("ringback_webhooks_rejected_total", "source" => source, "reason" => reason)
        .increment(1);
}

pub fn webhook_events(source: &'static str, inserted: u32, duplicates: u32) {
    counter!("ringback_webhook_events_total", "source" => source, "result" => "new")
        .increment(u64::from(inserted));
    counter!("ringback_webhook_events_total", "source" => source, "result" => "duplicate")
        .increment(u64::from(duplicates));
}

pub fn ingest_committed(requests: usize, took: Duration) {
    histogram!("ringback_ingest_batch_requests").record(requests as f64);
    histogram!("ringback_ingest_commit_seconds").record(took.as_secs_f64());
}

pub fn call_decided(source: &'static str, decision: &str, missed: bool) {
    let decision = match decision {
        "replied" => "replied",
        "collapsed" => "collapsed",
        "skipped" => "skipped",
        "answered" => "answered",
        "duplicate" => "duplicate",
        _ => "pending",
    };
    counter!("ringback_calls_total", "source" => source, "decision" => decision).increment(1);
    if missed {
        counter!("ringback_calls_missed_total", "source" => source).increment(1);
    }
}

pub fn send_finished(sender: &str, outcome: &'static str, took: Duration) {
    counter!("ringback_sends_total", "phone_number_id" => sender.to_string(), "outcome" => outcome)
        .increment(1);
    histogram!("ringback_send_latency_seconds", "phone_number_id" => sender.to_string())
        .record(took.as_secs_f64());
}

/// Time from a call's webhook being committed to its reply's Cloud API request.
pub fn reply_lag(took: Duration) {
    histogram!("ringback_missed_call_to_send_seconds").record(took.as_secs_f64());
}

pub fn outbox_depth(depth: i64) {
    gauge!("ringback_outbox_depth").set(depth as f64);
}

/// A PBX client (asterisk, freeswitch) logged in (`up`) or lost its connection.
pub fn pbx_connected(source: &'static str, up: bool) {
    gauge!("ringback_pbx_connected", "source" => source).set(if up { 1.0 } else { 0.0 });
    if up {
        counter!("ringback_pbx_logins_total", "source" => source).increment(1);
    }
}

/// A PBX connection ended or failed; `reason` is a short fixed word (closed, refused, login, …).
pub fn pbx_reconnect(source: &'static str, reason: &'static str) {
    counter!("ringback_pbx_reconnects_total", "source" => source, "reason" => reason).increment(1);
}

/// Event blocks read from a PBX (counted per read, not per block).
pub fn pbx_events(source: &'static str, blocks: u64) {
    counter!("ringback_pbx_events_total", "source" => source).increment(blocks);
}

/// A PBX call decided and stored (`new` = not a redelivery).
pub fn pbx_call(source: &'static str, outcome: &'static str, new: bool) {
    counter!("ringback_pbx_calls_total", "source" => source, "outcome" => outcome, "result" => if new { "new" } else { "duplicate" })
        .increment(1);
}

/// PBX input that could not be used.
pub fn pbx_flagged(source: &'static str) {
    counter!("ringback_pbx_flagged_total", "source" => source).increment(1);
}

/// A SIP call ended (canceled, no-answer, busy) and was handed to delivery.
pub fn sip_call_ended(outcome: &'static str) {
    counter!("ringback_sip_calls_total", "outcome" => outcome).increment(1);
}

/// A SIP call could not be stored (queue full or store error): data lost, logged at ERROR.
pub fn sip_call_dropped() {
    counter!("ringback_sip_calls_lost_total").increment(1);
}

/// SIP input that is not a usable message (garbage, a request missing mandatory headers).
pub fn sip_malformed(reason: &str) {
    tracing::debug!(reason, "Malformed SIP message.");
    counter!("ringback_sip_malformed_total").increment(1);
}

/// The HTTP listener closed a slow client's connection: `header_timeout` (no complete request
/// header in time) or `idle` (no byte either way for too long).
pub fn http_connection_cut(reason: &'static str) {
    counter!("ringback_http_connections_cut_total", "reason" => reason).increment(1);
}
