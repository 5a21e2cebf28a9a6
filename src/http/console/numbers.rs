//! Numbers: each sending number's quality, status, messaging tier and throughput as Meta last
//! announced them, whether it can send, and the history, as a chart of its quality and a
//! table of what Meta said.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::page::{self, Chrome, html, when};
use super::session::Visitor;
use crate::http::AppState;

/// Announcements shown per number.
const HISTORY: u32 = 100;

pub struct Announcement {
    pub when: String,
    pub field: String,
    pub event: String,
    pub detail: String,
}

pub struct NumberView {
    pub id: String,
    pub display: String,
    pub business: String,
    pub online: bool,
    pub sending: String,
    pub quality: String,
    pub status: String,
    pub tier: String,
    pub throughput: String,
    pub history: Vec<Announcement>,
    pub series_json: String,
}

#[derive(Template)]
#[template(path = "console/numbers.html")]
struct NumbersPage {
    chrome: Option<Chrome>,
    numbers: Vec<NumberView>,
}

/// Quality as a level for the chart: 3 green (high), 2 yellow (medium), 1 red (flagged).
fn quality_level(event: &Value) -> Option<u8> {
    match (event["field"].as_str(), event["event"].as_str()) {
        (Some("phone_number_quality_update"), Some("FLAGGED")) => Some(1),
        (Some("phone_number_quality_update"), Some("UNFLAGGED")) => Some(2),
        (Some("phone_number_quality_update"), _) => Some(3),
        _ => None,
    }
}

/// The chart's span before the oldest announcement shown.
const CHART_DAYS: i64 = 30;

/// The chart's data: quality levels over the last [`CHART_DAYS`] days (or since the oldest
/// announcement shown), from green, stepping at each announcement, to the level now.
fn quality_series(events: &[Value], now: i64) -> Value {
    let oldest = events.last().and_then(|e| e["at"].as_i64()).unwrap_or(now);
    let start = oldest.min(now - CHART_DAYS * 24 * crate::time::HOUR_MS) / 1000;
    let mut level = 3u8;
    let mut x = vec![start];
    let mut y = vec![level];
    for e in events.iter().rev() {
        if let Some(l) = quality_level(e) {
            level = l;
        }
        x.push(e["at"].as_i64().unwrap_or(0) / 1000);
        y.push(level);
    }
    x.push(now / 1000);
    y.push(level);
    json!({"x": x, "names": ["Quality (3 green, 2 yellow, 1 red)"], "values": [y], "unit": "quality",
        "steps": true, "range": [0, 3.5], "x_range": [start, now / 1000]})
}

fn or_unknown(v: Option<String>) -> String {
    v.unwrap_or_else(|| "not announced yet".into())
}

pub async fn list(State(s): State<AppState>, visitor: Visitor) -> Response {
    let known = match s.store.numbers().await {
        Ok(k) => k,
        Err(e) => return page::unavailable(e),
    };
    let tz = &s.settings.timezone;
    let mut numbers = Vec::new();
    for sender in &s.settings.senders {
        let id = &sender.phone_number_id;
        let events = match s.store.number_events(id, HISTORY).await {
            Ok(e) => e,
            Err(e) => return page::unavailable(e),
        };
        let state = known.iter().find(|n| &n.phone_number_id == id);
        let sending = s.sender_status.get(id);
        numbers.push(NumberView {
            id: id.clone(),
            display: sender.display_number.to_string(),
            business: sender.business_name.clone(),
            online: sending.online,
            sending: if sending.online {
                "online".into()
            } else {
                format!("offline: {}", sending.reason.unwrap_or_default())
            },
            quality: or_unknown(state.and_then(|n| n.quality_rating.clone())),
            status: or_unknown(state.and_then(|n| n.status.clone())),
            tier: or_unknown(state.and_then(|n| n.messaging_tier.clone())),
            throughput: s.pacer.rate(id).map_or_else(
                || "not paced yet".into(),
                |r| format!("{r} messages per second"),
            ),
            series_json: quality_series(&events, crate::time::now_ms()).to_string(),
            history: events
                .iter()
                .map(|e| Announcement {
                    when: when(e["at"].as_i64().unwrap_or(0), tz),
                    field: e["field"].as_str().unwrap_or_default().replace('_', " "),
                    event: e["event"].as_str().unwrap_or_default().to_string(),
                    detail: e["detail"].to_string(),
                })
                .collect(),
        });
    }
    html(
        StatusCode::OK,
        &NumbersPage {
            chrome: Some(visitor.chrome("numbers")),
            numbers,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_steps_from_green_through_each_announcement() {
        // Newest first, as the store gives them.
        let events = vec![
            json!({"field": "phone_number_quality_update", "event": "UNFLAGGED", "at": 3000}),
            json!({"field": "account_update", "event": "X", "at": 2000}),
            json!({"field": "phone_number_quality_update", "event": "FLAGGED", "at": 1000}),
        ];
        let now = 40 * 24 * 3_600_000;
        let s = quality_series(&events, now);
        assert_eq!(s["x"], json!([1, 1, 2, 3, now / 1000]));
        assert_eq!(s["values"], json!([[3, 1, 1, 2, 2]]));
    }
}
