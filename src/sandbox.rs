//! The sandbox: a local WhatsApp Cloud API that behaves like Meta's, for the demo, the tests
//! and the benchmarks — no Meta account and no network.
//!
//! It speaks the same wire structs as the client ([`crate::cloud_api::wire`]):
//! `POST /{version}/{phone-number-id}/messages` with bearer auth, Graph error envelopes,
//! `wamid`s, the 24-hour window (a free-form message outside it is accepted, then fails with
//! an async 131047 status, exactly like Meta), approved templates with their parameter count,
//! and signed status webhooks (`sent`, `delivered`, optionally `read`) posted back with
//! retries. A control API under `/sandbox/…` lets tests and people play the user (send a
//! message), inject faults, and inspect what each number sent.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::shutdown::Shutdown;
use crate::time::Millis;

pub mod control;
pub mod messages;
pub mod webhooks;

/// A business number the sandbox serves.
#[derive(Debug, Clone)]
pub struct SandboxNumber {
    pub phone_number_id: String,
    pub waba_id: String,
    /// E.164 digits without `+`, as Meta writes `display_phone_number`.
    pub display_number: String,
    pub access_token: SecretString,
}

/// An approved (or not) template known to the sandbox.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxTemplate {
    pub waba_id: String,
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: String,
    pub body: String,
    /// Number of positional `{{n}}` parameters in `body`.
    pub body_params: usize,
}

/// How the sandbox is set up.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub numbers: Vec<SandboxNumber>,
    pub templates: Vec<SandboxTemplate>,
    /// Where status and message webhooks are posted (`…/webhooks/whatsapp`).
    pub webhook_url: Option<String>,
    /// Signs webhooks (`X-Hub-Signature-256`).
    pub app_secret: SecretString,
    pub status_delay: Duration,
    pub emit_read: bool,
    /// Statuses and messages per webhook POST (Meta batches up to 1000).
    pub webhook_batch: usize,
    /// Delays between webhook delivery retries when the receiver does not answer 200.
    pub webhook_retry_delays: Vec<Duration>,
}

/// The demo template every sandbox number's WABA has: positional, three parameters.
pub fn demo_templates(waba_id: &str) -> Vec<SandboxTemplate> {
    vec![
        SandboxTemplate {
            waba_id: waba_id.into(),
            name: "missed_call_followup".into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: "UTILITY".into(),
            body: "Hi {{1}}, thanks for calling {{2}} at {{3}}. Sorry we missed you! Reply here and we will help right away.".into(),
            body_params: 3,
        },
        SandboxTemplate {
            waba_id: waba_id.into(),
            name: "hello_world".into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: "UTILITY".into(),
            body: "Hello World".into(),
            body_params: 0,
        },
    ]
}

/// One message a number sent, as the sandbox recorded it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentMessage {
    pub wamid: String,
    pub phone_number_id: String,
    pub to: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub received_at: Millis,
    /// The same instant in microseconds, for latency measurements.
    pub received_us: i64,
    /// Final outcome so far: `accepted`, `failed:<code>`.
    pub outcome: String,
    pub body: serde_json::Value,
}

/// A scripted answer for the next send of a number.
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
}

fn one() -> u32 {
    1
}

/// Mutable sandbox state.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) windows: HashMap<(String, String), Millis>,
    pub(crate) sent: Vec<SentMessage>,
    pub(crate) faults: HashMap<String, VecDeque<Fault>>,
    pub(crate) latency: HashMap<String, Duration>,
    pub(crate) next_id: u64,
}

/// The running sandbox; cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) settings: Arc<SandboxSettings>,
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) hooks: webhooks::Delivery,
}

impl Sandbox {
    /// Builds the sandbox and starts its webhook delivery worker.
    pub fn start(settings: SandboxSettings, shutdown: Shutdown) -> Self {
        let settings = Arc::new(settings);
        let hooks = webhooks::Delivery::start(settings.clone(), shutdown);
        Self {
            settings,
            state: Arc::default(),
            hooks,
        }
    }

    /// The Cloud API routes plus the `/sandbox` control API.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/{version}/{phone_number_id}/messages",
                post(messages::send),
            )
            .route("/sandbox/messages", get(control::list_messages))
            .route("/sandbox/simulate/message", post(control::simulate_message))
            .route("/sandbox/faults", post(control::set_faults))
            .route("/sandbox/webhooks", get(control::webhook_stats))
            .route("/are-you-ok", get(|| async { "ok" }))
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown`.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        mut shutdown: Shutdown,
    ) -> std::io::Result<()> {
        let addr: SocketAddr = listener.local_addr()?;
        tracing::info!(%addr, "Cloud API sandbox listening.");
        axum::serve(listener, self.router())
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await
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

    /// How many messages all numbers have sent.
    pub fn sent_count(&self) -> usize {
        self.lock().sent.len()
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
