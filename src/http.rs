//! The HTTP surface: webhooks from providers, the REST API, health and metrics.
//!
//! Handlers stay thin: they extract, call the domain or the store, and map errors through
//! [`error::ApiError`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Settings;
use crate::inbound::generic::GenericSource;
use crate::inbound::twilio::TwilioSource;
use crate::inbound::whatsapp::WhatsAppSource;
use crate::ingestor::Ingestor;
use crate::outbox::Wakers;
use crate::store::Store;

pub mod api;
pub mod console;
pub mod error;
pub mod extract;
pub mod serve;
pub mod short_link;
pub mod trace;
pub mod webhooks;

/// Shared state of every handler: one `Arc`, because axum clones the state for each request
/// (a clone of every field was 1-2 % of the server's CPU under a burst).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub ingestor: Ingestor,
    pub whatsapp: WhatsAppSource,
    pub twilio: Option<TwilioSource>,
    pub generic: GenericSource,
    pub wakers: Wakers,
    pub pacer: crate::outbox::Pacer,
    pub templates: crate::template_registry::Registry,
    pub prometheus: Option<PrometheusHandle>,
    /// Call permissions (WhatsApp Business Calling).
    pub book: crate::calling::PermissionBook,
    /// For interactive Cloud API calls (call actions); sends go through the outbox.
    pub client: crate::cloud_api::Client,
    /// This node, named in `/healthz`.
    pub node: crate::cluster::Node,
    /// The last event published on this node: the event stream wakes on it.
    pub published: tokio::sync::watch::Sender<i64>,
    /// Whether each number can send (known on the node that sends).
    pub sender_status: crate::sender_status::SenderStatus,
    /// Flows and their runs (`/api/v1/flows`, `/hooks/{flow}`).
    pub flows: crate::flows::Flows,
    /// AI assistants (`/api/v1/assistants`).
    pub assistants: crate::assistants::Assistants,
    /// The console's sign-ins ([`console`]).
    pub sessions: crate::users::Sessions,
    /// The one-time link that creates the first admin, while there is none.
    pub setup: crate::users::SetupLink,
    /// Clicks on tracked links counted per second ([`short_link`]).
    pub link_clicks: Arc<governor::DefaultDirectRateLimiter>,
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    let console = if state.settings.console.enabled {
        console::router()
    } else {
        Router::new()
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(webhooks::router())
        .merge(api::router())
        .merge(short_link::router())
        .merge(console)
        .fallback(extract::not_found)
        .method_not_allowed_fallback(extract::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        // Outside the panic catcher, so even its answer has the JSON error shape.
        .layer(axum::middleware::map_response(extract::json_errors))
        .layer(trace::layer())
        .with_state(state)
}

/// 200 while the store can be read and written; 503 naming the failing part otherwise. Writes
/// count as failing from a failed write until one succeeds again (a full disk fails writes
/// while reads still work).
async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    let read = s.store.outbox_depth().await;
    let write = s.store.write_failure();
    let check = |failure: Option<String>| match failure {
        None => serde_json::json!({"status": "ok"}),
        Some(e) => serde_json::json!({"status": "failing", "error": e}),
    };
    let healthy = read.is_ok() && write.is_none();
    let mut body = serde_json::json!({
        "status": if healthy { "ok" } else { "unavailable" },
        "node": &*s.node.id,
        "checks": {
            "store_read": check(read.as_ref().err().map(ToString::to_string)),
            "store_write": check(write),
        },
    });
    if let Ok(depth) = read {
        body["outbox_depth"] = depth.into();
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    match &s.prometheus {
        Some(h) => (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4")],
            h.render(),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "text/plain")],
            "metrics recorder not installed".to_string(),
        ),
    }
}
