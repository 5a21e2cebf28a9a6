//! Flows and Webhooks (admins only): what runs behind the pages — each flow with its runs and
//! one run's timeline; each webhook endpoint with its deliveries and one delivery's attempts.
//! Read-only: the same store reads as `/api/v1/flow-runs` and `/api/v1/webhook-deliveries`.
//!
//! A step's input can hold what a flow took from the environment (an HTTP step's
//! `Authorization` header), and an endpoint's URL a password or a token: values under keys
//! that name a secret are shown as `<redacted>`, and URLs go through the same redaction as the
//! Settings page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::page::{self, Chrome, html, when};
use super::session::Admin;
use crate::http::AppState;
use crate::store::{DeliveryQuery, RunQuery};

/// Rows per list.
const SHOWN: u32 = 100;

#[derive(Deserialize)]
pub struct StateQuery {
    #[serde(default)]
    state: String,
}

/// `v` with every value under a secret-looking key replaced, at any depth.
fn redacted(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if crate::config::redact::is_secret(k) {
                        Value::String(crate::config::redact::REDACTED.into())
                    } else {
                        redacted(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        Value::String(s) if s.starts_with("http://") || s.starts_with("https://") => {
            Value::String(crate::config::redact::url(s))
        }
        other => other.clone(),
    }
}

/// JSON as a person reads it, secrets redacted, cut where a page would not hold it.
fn pretty(v: Option<&serde_json::Value>) -> String {
    let Some(v) = v else {
        return String::new();
    };
    let text = serde_json::to_string_pretty(&redacted(v)).unwrap_or_default();
    match text.char_indices().nth(2_000) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

pub struct FlowRow {
    pub name: String,
    pub version: String,
    pub enabled: bool,
    pub trigger: String,
    pub updated: String,
}

pub struct RunRow {
    pub id: String,
    pub flow: String,
    pub status: String,
    pub contact: String,
    pub started: String,
    pub due: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "console/flows.html")]
struct FlowsPage {
    chrome: Option<Chrome>,
    flows: Vec<FlowRow>,
    runs: Vec<RunRow>,
    status: String,
}

const RUN_STATES: &[&str] = &[
    "running",
    "sleeping",
    "awaiting_reply",
    "done",
    "failed",
    "cancelled",
];

pub async fn flows(
    State(s): State<AppState>,
    Admin(visitor): Admin,
    Query(q): Query<StateQuery>,
) -> Response {
    let tz = &s.settings.timezone;
    let status = Some(q.state.clone()).filter(|st| RUN_STATES.contains(&st.as_str()));
    let read = async {
        let mut flows = Vec::new();
        for row in s.store.flows().await? {
            let loaded = s.flows.catalog.version(&row.version).await?;
            flows.push(FlowRow {
                trigger: loaded
                    .map(|l| l.flow.trigger.on.clone())
                    .unwrap_or_default(),
                name: row.name,
                version: row.version,
                enabled: row.enabled,
                updated: when(row.updated_at, tz),
            });
        }
        let runs = s
            .store
            .runs(&RunQuery {
                flow: None,
                status: status.clone(),
                before: None,
                limit: SHOWN,
            })
            .await?;
        Ok::<_, crate::store::StoreError>((flows, runs))
    };
    let (flows, runs) = match read.await {
        Ok(r) => r,
        Err(e) => return page::unavailable(e),
    };
    let runs = runs
        .into_iter()
        .map(|r| RunRow {
            started: when(r.created_at, tz),
            due: r.due_at.map(|d| when(d, tz)).unwrap_or_default(),
            contact: r.contact.map(|c| format!("+{c}")).unwrap_or_default(),
            error: r.error.unwrap_or_default(),
            id: r.id,
            flow: r.flow,
            status: r.status,
        })
        .collect();
    html(
        StatusCode::OK,
        &FlowsPage {
            chrome: Some(visitor.chrome("flows")),
            flows,
            runs,
            status: status.unwrap_or_default(),
        },
    )
}

pub struct StepRow {
    pub seq: u32,
    pub when: String,
    pub step: String,
    pub kind: String,
    pub input: String,
    pub output: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "console/flow_run.html")]
struct RunPage {
    chrome: Option<Chrome>,
    run: RunRow,
    steps: Vec<StepRow>,
}

pub async fn run(
    State(s): State<AppState>,
    Admin(visitor): Admin,
    Path(id): Path<String>,
) -> Response {
    let tz = &s.settings.timezone;
    let found = async {
        let run = s.store.run(&id).await?;
        let steps = match &run {
            Some(_) => s.store.run_timeline(&id).await?,
            None => Vec::new(),
        };
        Ok::<_, crate::store::StoreError>((run, steps))
    };
    let (run, steps) = match found.await {
        Ok((Some(r), steps)) => (r, steps),
        Ok((None, _)) => {
            return page::problem(
                StatusCode::NOT_FOUND,
                "No such run",
                format!("No flow run has the id '{id}'."),
                Some(visitor.chrome("flows")),
            );
        }
        Err(e) => return page::unavailable(e),
    };
    let steps = steps
        .into_iter()
        .map(|l| StepRow {
            seq: l.seq,
            when: page::clock(l.at, tz),
            input: pretty(l.input.as_ref()),
            output: pretty(l.output.as_ref()),
            error: l.error.unwrap_or_default(),
            step: l.step,
            kind: l.kind,
        })
        .collect();
    let run = RunRow {
        started: when(run.created_at, tz),
        due: run.due_at.map(|d| when(d, tz)).unwrap_or_default(),
        contact: run.contact.map(|c| format!("+{c}")).unwrap_or_default(),
        error: run.error.unwrap_or_default(),
        id: run.id,
        flow: run.flow,
        status: run.status,
    };
    html(
        StatusCode::OK,
        &RunPage {
            chrome: Some(visitor.chrome("flows")),
            run,
            steps,
        },
    )
}

pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub events: String,
    pub state: String,
}

pub struct DeliveryRow {
    pub id: i64,
    pub endpoint: String,
    pub event: String,
    pub state: String,
    pub attempts: u32,
    pub last: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage {
    chrome: Option<Chrome>,
    endpoints: Vec<EndpointRow>,
    deliveries: Vec<DeliveryRow>,
    state: String,
}

fn delivery_row(d: crate::store::Delivery, tz: &jiff::tz::TimeZone) -> DeliveryRow {
    let last = match (d.last_status, &d.last_error) {
        (Some(st), _) => format!("HTTP {st}"),
        (None, Some(e)) => e.clone(),
        (None, None) => String::new(),
    };
    DeliveryRow {
        created: when(d.created_at, tz),
        id: d.id,
        endpoint: d.endpoint_id,
        event: format!("{} #{}", d.event_type, d.event_id),
        state: d.state,
        attempts: d.attempts,
        last,
    }
}

pub async fn webhooks(
    State(s): State<AppState>,
    Admin(visitor): Admin,
    Query(q): Query<StateQuery>,
) -> Response {
    let tz = &s.settings.timezone;
    let state = Some(q.state.clone())
        .filter(|st| ["pending", "delivered", "failed"].contains(&st.as_str()));
    let read = async {
        let endpoints = s.store.endpoints().await?;
        let deliveries = s
            .store
            .deliveries(&DeliveryQuery {
                endpoint_id: None,
                state: state.clone(),
                before_id: None,
                limit: SHOWN,
            })
            .await?;
        Ok::<_, crate::store::StoreError>((endpoints, deliveries))
    };
    let (endpoints, deliveries) = match read.await {
        Ok(r) => r,
        Err(e) => return page::unavailable(e),
    };
    let endpoints = endpoints
        .into_iter()
        .map(|e| EndpointRow {
            state: match (e.enabled, &e.disabled_reason, e.failing_since) {
                (false, Some(why), _) => format!("disabled: {why}"),
                (false, None, _) => "disabled".into(),
                (true, _, Some(since)) => format!("failing since {}", when(since, tz)),
                (true, _, None) => "delivering".into(),
            },
            events: if e.event_types.is_empty() {
                "every event".into()
            } else {
                e.event_types.join(", ")
            },
            id: e.id,
            url: crate::config::redact::url(&e.url),
        })
        .collect();
    html(
        StatusCode::OK,
        &WebhooksPage {
            chrome: Some(visitor.chrome("webhooks")),
            endpoints,
            deliveries: deliveries
                .into_iter()
                .map(|d| delivery_row(d, tz))
                .collect(),
            state: state.unwrap_or_default(),
        },
    )
}

pub struct AttemptRow {
    pub no: u32,
    pub when: String,
    pub status: String,
    pub latency_ms: u32,
    pub response: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "console/delivery.html")]
struct DeliveryPage {
    chrome: Option<Chrome>,
    delivery: DeliveryRow,
    attempts: Vec<AttemptRow>,
}

pub async fn delivery(
    State(s): State<AppState>,
    Admin(visitor): Admin,
    Path(id): Path<String>,
) -> Response {
    let tz = &s.settings.timezone;
    let missing = || {
        page::problem(
            StatusCode::NOT_FOUND,
            "No such delivery",
            format!("No webhook delivery has the id '{id}'."),
            Some(visitor.chrome("webhooks")),
        )
    };
    let Ok(number) = id.parse::<i64>() else {
        return missing();
    };
    let (d, attempts) = match s.store.delivery(number).await {
        Ok(Some(found)) => found,
        Ok(None) => return missing(),
        Err(e) => return page::unavailable(e),
    };
    let attempts = attempts
        .into_iter()
        .map(|a| AttemptRow {
            no: a.attempt_no,
            when: page::clock(a.at, tz),
            status: a.status.map(|s| s.to_string()).unwrap_or_default(),
            latency_ms: a.latency_ms,
            response: a.response,
            error: a.error.unwrap_or_default(),
        })
        .collect();
    html(
        StatusCode::OK,
        &DeliveryPage {
            chrome: Some(visitor.chrome("webhooks")),
            delivery: delivery_row(d, tz),
            attempts,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_a_step_are_redacted_at_any_depth() {
        let input = serde_json::json!({"url": "https://crm.example/x?token=abc", "headers": {"Authorization": "Bearer s3cret", "Accept": "application/json"},
            "body": [{"api_key": "k"}]});
        let shown = pretty(Some(&input));
        assert!(
            !shown.contains("s3cret") && !shown.contains("\"k\"") && !shown.contains("abc"),
            "{shown}"
        );
        assert!(shown.contains("application/json"));
    }
}
