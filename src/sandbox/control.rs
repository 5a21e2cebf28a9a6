//! The `/sandbox/…` control API for tests and people: inject faults, change a number's
//! throughput, inspect what each number sent and received, and the periodic bookkeeping
//! (tier upgrades) that Meta does on its own schedule.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::webhooks::WebhookFaults;
use super::{Fault, RandomFaults, Sandbox};
use crate::time::Millis;

/// Applies tier upgrades that came due, with Meta's webhooks.
pub fn tick(sb: &Sandbox, now: Millis) {
    let upgraded = sb.lock().limits.apply_upgrade(now);
    if let Some(tier) = upgraded {
        let mut wabas: Vec<&str> = sb
            .settings
            .numbers
            .iter()
            .map(|n| n.waba_id.as_str())
            .collect();
        wabas.dedup();
        for waba in wabas {
            sb.hooks.push_change(
                waba,
                "business_capability_update",
                json!({"max_daily_conversations_per_business": tier.name()}),
                Duration::ZERO,
            );
        }
    }
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("unknown {what}")})),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct ListQuery {
    pub phone_number_id: Option<String>,
}

/// `GET /sandbox/messages[?phone_number_id=]`: what each number sent (the last
/// [`super::SandboxSettings::keep`]), and how many older records were dropped.
pub async fn list_messages(State(sb): State<Sandbox>, Query(q): Query<ListQuery>) -> Json<Value> {
    let dropped = sb.lock().dropped;
    Json(json!({"data": sb.sent(q.phone_number_id.as_deref()), "dropped": dropped}))
}

/// `GET /sandbox/messages/count`: how many messages all numbers sent, including those no longer
/// kept, without the list. A test waiting for thousands of sends polls this instead of
/// copying every kept record at each poll.
pub async fn count_messages(State(sb): State<Sandbox>) -> Json<Value> {
    let st = sb.lock();
    Json(json!({
        "sent": st.sent.len() as u64 + st.dropped.sent,
        "kept": st.sent.len(),
        "dropped": st.dropped.sent,
    }))
}

#[derive(Deserialize)]
pub struct ConversationQuery {
    pub phone_number_id: Option<String>,
    /// The user's number (digits or E.164).
    pub user: Option<String>,
}

/// `GET /sandbox/conversations[?phone_number_id=&user=]`: both directions, in time order.
pub async fn conversations(
    State(sb): State<Sandbox>,
    Query(q): Query<ConversationQuery>,
) -> Json<Value> {
    let user: Option<String> = q
        .user
        .map(|u| u.chars().filter(char::is_ascii_digit).collect());
    let st = sb.lock();
    let pn = |p: &str| q.phone_number_id.as_deref().is_none_or(|x| x == p);
    let us = |u: &str| user.as_deref().is_none_or(|x| x == u);
    let mut rows: Vec<(u64, Value)> = st
        .sent
        .iter()
        .filter(|m| pn(&m.phone_number_id) && us(&m.to))
        .map(|m| (m.seq, json!({"direction": "out", "phone_number_id": m.phone_number_id, "user": m.to, "wamid": m.wamid, "at": m.received_at, "type": m.kind, "outcome": m.outcome, "body": m.body})))
        .chain(st.received.iter().filter(|m| pn(&m.phone_number_id) && us(&m.from)).map(|m| {
            (m.seq, json!({"direction": "in", "phone_number_id": m.phone_number_id, "user": m.from, "wamid": m.wamid, "at": m.at, "type": m.message["type"], "body": m.message}))
        }))
        .collect();
    rows.sort_by_key(|(t, _)| *t);
    let dropped = st.dropped;
    Json(json!({"data": rows.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "dropped": dropped}))
}

/// `POST /sandbox/faults`: scripted error answers (in order), random faults and latency.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    pub phone_number_id: String,
    #[serde(default)]
    pub errors: Vec<Fault>,
    /// Fixed delay added to every send of this number, in milliseconds (0 clears it).
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Random faults replacing the current ones.
    #[serde(default)]
    pub random: Option<RandomFaults>,
}

pub async fn set_faults(State(sb): State<Sandbox>, Json(f): Json<FaultRequest>) -> Response {
    if sb.number(&f.phone_number_id).is_none() {
        return not_found("phone_number_id");
    }
    let mut st = sb.lock();
    st.faults
        .entry(f.phone_number_id.clone())
        .or_default()
        .extend(f.errors);
    let random = st
        .random_faults
        .entry(f.phone_number_id.clone())
        .or_default();
    if let Some(r) = f.random {
        *random = r;
    }
    if let Some(ms) = f.latency_ms {
        random.latency_ms = ms;
    }
    let random = random.clone();
    let queued: u32 = st
        .faults
        .get(&f.phone_number_id)
        .map(|q| q.iter().map(|f| f.times).sum())
        .unwrap_or(0);
    Json(json!({"queued_faults": queued, "random": random})).into_response()
}

/// `POST /sandbox/numbers/throughput`: `{"phone_number_id", "per_second": 1000}` — Meta's
/// automatic throughput upgrade, announced with `phone_number_quality_update` THROUGHPUT_UPGRADE.
#[derive(Deserialize)]
pub struct ThroughputRequest {
    pub phone_number_id: String,
    pub per_second: u32,
}

pub async fn set_throughput(
    State(sb): State<Sandbox>,
    Json(t): Json<ThroughputRequest>,
) -> Response {
    let Some(number) = sb.number(&t.phone_number_id).cloned() else {
        return not_found("phone_number_id");
    };
    sb.lock()
        .limits
        .set_throughput(&t.phone_number_id, t.per_second);
    if t.per_second >= 1000 {
        let value = json!({"display_phone_number": number.display_number, "event": "THROUGHPUT_UPGRADE", "max_daily_conversations_per_business": "TIER_UNLIMITED"});
        sb.hooks.push_change(
            &number.waba_id,
            "phone_number_quality_update",
            value,
            Duration::ZERO,
        );
    }
    Json(json!({"phone_number_id": t.phone_number_id, "per_second": t.per_second})).into_response()
}

/// `GET /sandbox/webhooks`: delivery counters.
pub async fn webhook_stats(State(sb): State<Sandbox>) -> Json<super::webhooks::Stats> {
    Json(sb.hooks.stats())
}

/// `POST /sandbox/webhooks/faults`: duplicates, reordering, delays, receiver timeouts.
pub async fn set_webhook_faults(
    State(sb): State<Sandbox>,
    Json(f): Json<WebhookFaults>,
) -> Json<WebhookFaults> {
    sb.hooks.set_faults(f.clone());
    Json(f)
}
