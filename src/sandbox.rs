//! The sandbox: a local WhatsApp Cloud API that behaves like Meta's, for the demo, the tests
//! and the benchmarks — no Meta account and no network.
//!
//! It speaks the same wire structs as the client ([`crate::cloud_api::wire`]). Files:
//! [`messages`] (send endpoint, read receipts, number info; checked with the shared rule book
//! [`crate::cloud_api::rules`]), [`templates`] (template management API and status webhooks),
//! [`limits`] (throughput, pair rate, portfolio messaging limit), [`quality`] (rating from
//! blocks and reports), [`users`] (simulated WhatsApp users; [`actions`]: their messages in
//! Meta's shape), [`webhooks`] (signed, batched, retried delivery with fault injection),
//! [`versions`] (the Graph API versions it answers), [`control`] (faults, inspection) and
//! [`models`] (an OpenAI-compatible chat-completions endpoint for AI assistants) and [`qr`]
//! (Meta's QR codes and short links).
//!
//! What it records is bounded ([`SandboxSettings::keep`]): a long-running `serve` must not grow
//! with every message it ever saw.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::shutdown::Shutdown;
use crate::time::Millis;

pub mod actions;
pub mod calling;
pub mod control;
pub mod limits;
pub mod messages;
pub mod models;
pub mod qr;
pub mod quality;
pub mod templates;
pub mod users;
pub mod versions;
pub mod webhooks;

pub use templates::{SandboxTemplate, demo_templates};

/// A business number the sandbox serves.
#[derive(Debug, Clone)]
pub struct SandboxNumber {
    pub phone_number_id: String,
    pub waba_id: String,
    /// E.164 digits without `+`, as Meta writes `display_phone_number`.
    pub display_number: String,
    pub access_token: SecretString,
}

/// How the sandbox is set up.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub numbers: Vec<SandboxNumber>,
    pub templates: Vec<SandboxTemplate>,
    /// Where webhooks are posted (`…/webhooks/whatsapp`).
    pub webhook_url: Option<String>,
    /// Signs webhooks (`X-Hub-Signature-256`).
    pub app_secret: SecretString,
    /// Whether accepted sends get status webhooks at all.
    pub statuses: bool,
    /// Delay before `sent`; `delivered` and `read` follow at twice and three times it.
    pub status_delay: Duration,
    /// Probability that a delivered message is also read.
    pub read_probability: f64,
    /// Probability that an accepted message is never delivered (async 131026).
    pub undeliverable_probability: f64,
    /// Statuses and messages per webhook POST (Meta batches up to 1000).
    pub webhook_batch: usize,
    /// Delays between webhook delivery retries when the receiver does not answer 200.
    pub webhook_retry_delays: Vec<Duration>,
    pub limits: limits::LimitSettings,
    /// How long a new template stays PENDING before it is approved.
    pub template_review_delay: Duration,
    /// Graph API versions answered besides Meta's current ones ([`versions`]), e.g. the
    /// configured `whatsapp.api_version`.
    pub api_versions: Vec<String>,
    /// How many sent messages, received messages and pending webhooks are kept (each); the
    /// oldest are dropped beyond it and counted. 0 = unbounded.
    pub keep: usize,
}

/// What the embedded sandbox keeps by default ([`SandboxSettings::keep`]).
pub const DEFAULT_KEEP: usize = 10_000;

impl SandboxSettings {
    /// One number with the demo templates and Meta's default limits; for tests and tools.
    pub fn demo(
        numbers: Vec<SandboxNumber>,
        webhook_url: Option<String>,
        app_secret: SecretString,
    ) -> Self {
        let mut wabas: Vec<&str> = numbers.iter().map(|n| n.waba_id.as_str()).collect();
        wabas.sort();
        wabas.dedup();
        Self {
            templates: wabas.iter().flat_map(|w| demo_templates(w)).collect(),
            numbers,
            webhook_url,
            app_secret,
            statuses: true,
            status_delay: Duration::from_millis(50),
            read_probability: 0.0,
            undeliverable_probability: 0.0,
            webhook_batch: 100,
            webhook_retry_delays: [100, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000]
                .map(Duration::from_millis)
                .to_vec(),
            limits: limits::LimitSettings {
                enabled: true,
                throughput_per_second: 80,
                tier: limits::Tier::T2K,
                tier_upgrade_delay: Duration::from_secs(6 * 3600),
            },
            template_review_delay: Duration::from_millis(100),
            api_versions: Vec::new(),
            keep: DEFAULT_KEEP,
        }
    }
}

/// One message a number sent, as the sandbox recorded it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentMessage {
    /// Order among everything the sandbox sent and received.
    pub seq: u64,
    pub wamid: String,
    pub phone_number_id: String,
    pub to: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub received_at: Millis,
    /// The same instant in microseconds, for latency measurements.
    pub received_us: i64,
    /// `accepted`, or `failed:<code>` when the sandbox failed it asynchronously.
    pub outcome: String,
    pub body: serde_json::Value,
}

/// One message a simulated user sent to a number.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedMessage {
    /// Order among everything the sandbox sent and received.
    pub seq: u64,
    pub wamid: String,
    pub phone_number_id: String,
    pub from: String,
    pub at: Millis,
    pub message: serde_json::Value,
}

/// A scripted answer for the next sends of a number.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Fault {
    /// Meta error code to answer with (e.g. 130429).
    pub code: i64,
    /// HTTP status; defaults to what Meta documents for the code.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// How many sends this applies to.
    #[serde(default = "one")]
    pub times: u32,
    /// A `Retry-After` header (seconds) on the error answer, to test that clients wait.
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
}

fn one() -> u32 {
    1
}

/// Random faults for a number's sends (benchmarks and chaos tests).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RandomFaults {
    /// Probability of an error answer (code 131000, HTTP 500).
    #[serde(default)]
    pub error_rate: f64,
    /// Probability of a bare HTTP 503 with no Graph envelope.
    #[serde(default)]
    pub http_5xx_rate: f64,
    /// Probability that the request hangs for `timeout_ms` and then drops the connection.
    #[serde(default)]
    pub timeout_rate: f64,
    #[serde(default)]
    pub timeout_ms: u64,
    /// Added latency: fixed part and a uniformly random extra part, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub latency_jitter_ms: u64,
}

/// Mutable sandbox state.
pub(crate) struct State {
    pub(crate) windows: HashMap<(String, String), Millis>,
    pub(crate) sent: VecDeque<SentMessage>,
    pub(crate) received: VecDeque<ReceivedMessage>,
    /// Everything recorded and then dropped beyond `keep`, for the inspection API.
    pub(crate) dropped: Dropped,
    pub(crate) faults: HashMap<String, VecDeque<Fault>>,
    pub(crate) random_faults: HashMap<String, RandomFaults>,
    pub(crate) templates: Vec<SandboxTemplate>,
    pub(crate) limits: limits::Limits,
    pub(crate) quality: HashMap<String, quality::Rating>,
    pub(crate) signals: HashMap<String, Vec<Millis>>,
    /// (WABA, user) pairs that stopped marketing messages.
    pub(crate) opted_out: HashSet<(String, String)>,
    /// (number, user) pairs where the user blocked the business.
    pub(crate) blocked: HashSet<(String, String)>,
    pub(crate) calling: calling::CallingState,
    /// Meta's QR codes and short links, by phone number id.
    pub(crate) qr_codes: HashMap<String, Vec<crate::cloud_api::qr::QrCode>>,
    pub(crate) next_id: u64,
}

/// How many records were dropped to stay within [`SandboxSettings::keep`].
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Dropped {
    pub sent: u64,
    pub received: u64,
}

impl State {
    /// Records a message a number sent, dropping the oldest beyond `keep`.
    pub(crate) fn record_sent(&mut self, m: SentMessage, keep: usize) {
        self.sent.push_back(m);
        self.dropped.sent += trim(&mut self.sent, keep, "sent");
    }

    /// Records a message a user sent, dropping the oldest beyond `keep`.
    pub(crate) fn record_received(&mut self, m: ReceivedMessage, keep: usize) {
        self.received.push_back(m);
        self.dropped.received += trim(&mut self.received, keep, "received");
    }
}

/// Drops the oldest entries beyond `keep` (0 = unbounded); returns how many.
fn trim<T>(q: &mut VecDeque<T>, keep: usize, kind: &'static str) -> u64 {
    if keep == 0 || q.len() <= keep {
        return 0;
    }
    let n = q.len() - keep;
    q.drain(..n);
    metrics::counter!("ringback_sandbox_dropped_total", "kind" => kind).increment(n as u64);
    n as u64
}

/// The running sandbox; cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) settings: Arc<SandboxSettings>,
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) hooks: webhooks::Delivery,
    /// The OpenAI-compatible model at `/v1/chat/completions` ([`models`]).
    pub(crate) models: Arc<Mutex<models::Models>>,
}

impl Sandbox {
    /// Builds the sandbox and starts its webhook delivery worker.
    pub fn start(settings: SandboxSettings, shutdown: Shutdown) -> Self {
        let state = State {
            windows: HashMap::new(),
            sent: VecDeque::new(),
            received: VecDeque::new(),
            dropped: Dropped::default(),
            faults: HashMap::new(),
            random_faults: HashMap::new(),
            templates: settings.templates.clone(),
            limits: limits::Limits::new(settings.limits.clone()),
            quality: HashMap::new(),
            signals: HashMap::new(),
            opted_out: HashSet::new(),
            blocked: HashSet::new(),
            calling: calling::CallingState::default(),
            qr_codes: HashMap::new(),
            next_id: 0,
        };
        let settings = Arc::new(settings);
        let hooks = webhooks::Delivery::start(settings.clone(), shutdown);
        Self {
            settings,
            state: Arc::new(Mutex::new(state)),
            hooks,
            models: Arc::default(),
        }
    }

    /// The Cloud API routes plus the `/sandbox` control API.
    pub fn router(&self) -> Router {
        // Meta's routes answer only the Graph API versions Meta serves (see `versions`).
        let cloud_api = Router::new()
            .route("/{version}/{id}/messages", post(messages::send))
            .route(
                "/{version}/{id}/message_templates",
                get(templates::list)
                    .post(templates::create)
                    .delete(templates::delete),
            )
            .route("/{version}/{id}", get(messages::number_info))
            .route(
                "/{version}/{id}/settings",
                get(calling::get_settings).post(calling::post_settings),
            )
            .route("/{version}/{id}/calls", post(calling::action))
            .route(
                "/{version}/{id}/message_qrdls",
                get(qr::list).post(qr::create),
            )
            .route(
                "/{version}/{id}/message_qrdls/{code}",
                get(qr::show).delete(qr::delete),
            )
            .route(
                "/{version}/{id}/call_permissions",
                get(calling::get_permissions),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                versions::check,
            ));
        Router::new()
            .merge(cloud_api)
            .route("/sandbox/users/answer-call", post(calling::answer_call))
            .route("/sandbox/calls", get(calling::inspect))
            .route("/sandbox/qr/{file}", get(qr::image))
            .route("/sandbox/messages", get(control::list_messages))
            .route("/sandbox/messages/count", get(control::count_messages))
            .route("/sandbox/conversations", get(control::conversations))
            .route("/sandbox/simulate/message", post(users::message))
            .route("/sandbox/users/message", post(users::message))
            .route("/sandbox/users/block", post(users::block))
            .route("/sandbox/users/preferences", post(users::preferences))
            .route("/sandbox/users/call", post(users::call))
            .route(
                "/sandbox/users/call-permission",
                post(users::call_permission),
            )
            .route("/sandbox/faults", post(control::set_faults))
            .route("/sandbox/numbers/throughput", post(control::set_throughput))
            .route("/sandbox/templates/status", post(templates::change_status))
            .route("/sandbox/webhooks", get(control::webhook_stats))
            .route(
                "/sandbox/webhooks/faults",
                post(control::set_webhook_faults),
            )
            .route("/v1/chat/completions", post(models::complete))
            .route("/sandbox/models/script", post(models::script))
            .route("/sandbox/models/requests", get(models::requests))
            .route("/are-you-ok", get(|| async { "ok" }))
            .fallback(messages::unknown_path)
            .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
            .layer(tower_http::catch_panic::CatchPanicLayer::new())
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown`, with the default slow-client limits.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: Shutdown,
    ) -> std::io::Result<()> {
        self.serve_with(listener, crate::config::http::Timeouts::default(), shutdown)
            .await
    }

    /// Serves on `listener` until `shutdown`, on the same listener code as Ringback's server.
    pub async fn serve_with(
        self,
        listener: tokio::net::TcpListener,
        timeouts: crate::config::http::Timeouts,
        shutdown: Shutdown,
    ) -> std::io::Result<()> {
        let addr: SocketAddr = listener.local_addr()?;
        tracing::info!(%addr, "Cloud API sandbox listening.");
        crate::http::serve::serve(listener, self.router(), timeouts, shutdown).await
    }

    pub(crate) fn number(&self, phone_number_id: &str) -> Option<&SandboxNumber> {
        self.settings
            .numbers
            .iter()
            .find(|n| n.phone_number_id == phone_number_id)
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters for an emulator, so a poisoned lock is simply reused.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many messages all numbers have sent, including those no longer kept.
    pub fn sent_count(&self) -> usize {
        let st = self.lock();
        st.sent.len() + st.dropped.sent as usize
    }

    /// Takes everything sent so far out of the sandbox, oldest first: a long benchmark reads
    /// sends as they come, so the sandbox's memory does not grow with the run.
    pub fn drain_sent(&self) -> Vec<SentMessage> {
        self.lock().sent.drain(..).collect()
    }

    /// Everything a number has sent, oldest first.
    pub fn sent(&self, phone_number_id: Option<&str>) -> Vec<SentMessage> {
        self.lock()
            .sent
            .iter()
            .filter(|m| phone_number_id.is_none_or(|p| m.phone_number_id == p))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests;
