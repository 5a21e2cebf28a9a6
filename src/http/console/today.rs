//! Today: the last 24 hours in figures, an hourly chart, and the live feed (Server-Sent
//! Events; a missed call shows within a second, without reloading).

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::page::{self, Chrome, clock, html};
use super::session::Visitor;
use crate::events::Event;
use crate::http::AppState;
use crate::http::api::events::{follow, latest};
use crate::time::HOUR_MS;

/// What the feed shows: the moments a person acts on, not every status.
const FEED_TYPES: &[&str] = &[
    "call.missed",
    "message.sent",
    "message.failed",
    "message.received",
    "conversation.started",
    "conversation.ended",
];
/// What the figures and the chart count.
const COUNTED: &[&str] = &[
    "call.missed",
    "message.sent",
    "message.delivered",
    "message.read",
    "message.received",
];
/// The chart's series: (event type, label).
const CHARTED: &[(&str, &str)] = &[
    ("call.missed", "Missed calls"),
    ("message.sent", "Messages sent"),
    ("message.received", "Messages from customers"),
];
/// Lines on the page when it opens.
const FIRST_LINES: u32 = 30;
const DAY_HOURS: i64 = 24;

/// One line of the feed, as the page renders it and the stream sends it (as JSON, which the
/// page's script inserts as text).
#[derive(Debug, Serialize)]
pub struct FeedLine {
    pub id: i64,
    /// The event type as a CSS class (`call_missed`).
    pub kind: String,
    /// The time of day in the business's time zone.
    pub time: String,
    pub what: &'static str,
    pub who: String,
    pub detail: String,
    /// The conversation it belongs to: a conversation's page adds its own lines live.
    pub conversation: Option<String>,
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// "Name +phone", or whichever is known.
fn person(customer: &Value) -> String {
    let phone = customer["phone"]
        .as_str()
        .map(str::to_string)
        .or_else(|| customer["contact"].as_str().map(|c| format!("+{c}")))
        .unwrap_or_default();
    page::customer_label(customer["name"].as_str(), phone)
}

/// An event in a sentence or two.
pub fn feed_line(e: &Event, tz: &jiff::tz::TimeZone) -> FeedLine {
    let d = &e.data;
    let (what, who, detail) = match e.kind.as_str() {
        "call.missed" => (
            "Missed call",
            text(&d["call"]["caller"]),
            [text(&d["call"]["decision"]), text(&d["call"]["reason"])]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": "),
        ),
        "message.sent" => (
            "Sent",
            format!("to +{}", text(&d["message"]["to"]).trim_start_matches('+')),
            text(&d["message"]["text"]),
        ),
        "message.failed" => (
            "Not delivered",
            format!("to +{}", text(&d["message"]["to"]).trim_start_matches('+')),
            d["error"]["explanation"]
                .as_str()
                .or(d["error"]["detail"].as_str())
                .unwrap_or_default()
                .to_string(),
        ),
        "message.received" => (
            "Message",
            person(&d["customer"]),
            text(&d["message"]["text"]),
        ),
        "conversation.started" => (
            "Conversation started",
            person(&d["conversation"]["customer"]),
            text(&d["conversation"]["type"]),
        ),
        "conversation.ended" => (
            "Conversation ended",
            person(&json!({"phone": d["customer_phone"], "name": d["customer_name"]})),
            text(&d["end_reason"]),
        ),
        _ => ("Event", String::new(), e.kind.clone()),
    };
    FeedLine {
        id: e.id,
        kind: e.kind.replace('.', "_"),
        time: clock(e.at, tz),
        what,
        who,
        detail: clip(detail, 300),
        conversation: e.conversation_id.clone(),
    }
}

/// At most `max` characters, with an ellipsis when cut: a feed line, not a transcript.
fn clip(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    s.chars().take(max - 1).chain(['…']).collect()
}

/// One figure on a card.
pub struct Figure {
    pub id: &'static str,
    pub value: String,
    pub label: &'static str,
}

fn percent(part: u64, whole: u64) -> String {
    match (part.min(whole) * 100 + whole / 2).checked_div(whole) {
        Some(p) => format!("{p}%"),
        None => "–".into(),
    }
}

#[derive(Template)]
#[template(path = "console/today.html")]
struct TodayPage {
    chrome: Option<Chrome>,
    figures: Vec<Figure>,
    series_json: String,
    chart_summary: String,
    lines: Vec<FeedLine>,
    after: i64,
}

pub async fn page(State(s): State<AppState>, visitor: Visitor) -> Response {
    let now = crate::time::now_ms();
    let first_hour = (now / HOUR_MS - (DAY_HOURS - 1)) * HOUR_MS;
    let read = async {
        let counts = s.store.activity(COUNTED, first_hour, HOUR_MS).await?;
        let open = s.store.open_conversation_count().await?;
        let recent = s.store.latest_events(FEED_TYPES, FIRST_LINES).await?;
        Ok::<_, crate::store::StoreError>((counts, open, recent))
    };
    let (counts, open, recent) = match read.await {
        Ok(r) => r,
        Err(e) => return page::unavailable(e),
    };
    let after = match latest(&s).await {
        Ok(a) => a,
        Err(_) => recent.first().map_or(0, |e| e.id),
    };
    let total = |kind: &str| -> u64 {
        counts
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.count)
            .sum()
    };
    let sent = total("message.sent");
    let figures = vec![
        Figure {
            id: "missed",
            value: total("call.missed").to_string(),
            label: "Missed calls",
        },
        Figure {
            id: "sent",
            value: sent.to_string(),
            label: "Messages sent",
        },
        Figure {
            id: "delivered",
            value: percent(total("message.delivered"), sent),
            label: "Delivered",
        },
        Figure {
            id: "read",
            value: percent(total("message.read"), sent),
            label: "Read",
        },
        Figure {
            id: "open",
            value: open.to_string(),
            label: "Conversations open",
        },
        Figure {
            id: "received",
            value: total("message.received").to_string(),
            label: "Messages from customers",
        },
    ];
    let hours: Vec<i64> = (0..DAY_HOURS)
        .map(|h| (first_hour + h * HOUR_MS) / 1000)
        .collect();
    let series: Vec<Vec<u64>> = CHARTED
        .iter()
        .map(|(kind, _)| {
            (0..DAY_HOURS)
                .map(|h| {
                    let bucket = first_hour + h * HOUR_MS;
                    counts
                        .iter()
                        .find(|c| c.kind == *kind && c.bucket == bucket)
                        .map_or(0, |c| c.count)
                })
                .collect()
        })
        .collect();
    let names: Vec<&str> = CHARTED.iter().map(|(_, label)| *label).collect();
    let chart_summary = CHARTED
        .iter()
        .zip(&series)
        .map(|((_, label), counts)| format!("{label}: {}", counts.iter().sum::<u64>()))
        .collect::<Vec<_>>()
        .join(", ");
    let tz = &s.settings.timezone;
    html(
        StatusCode::OK,
        &TodayPage {
            chrome: Some(visitor.chrome("today")),
            figures,
            series_json: json!({"x": hours, "names": names, "values": series, "unit": "per hour"})
                .to_string(),
            chart_summary: format!("Per hour over the last 24 hours. {chart_summary}."),
            lines: recent.iter().map(|e| feed_line(e, tz)).collect(),
            after,
        },
    )
}

#[derive(Deserialize)]
pub struct FeedQuery {
    after: Option<i64>,
}

/// The live feed: each new event of [`FEED_TYPES`] as an SSE `line` event whose data is a
/// [`FeedLine`]. Resumes after `Last-Event-ID` (the browser sends it when it reconnects) or
/// `?after=`, the newest event the page showed.
pub async fn feed(
    State(s): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Response {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let after = match resume.or(q.after) {
        Some(a) => a,
        None => match latest(&s).await {
            Ok(a) => a,
            Err(e) => return page::unavailable(e.message),
        },
    };
    let tz = s.settings.timezone.clone();
    let types = FEED_TYPES.iter().map(|t| t.to_string()).collect();
    // The session is checked again before each line: a person who signed out (or was
    // disabled) receives nothing more, and the stream ends.
    let (sessions, store, token) = (s.sessions.clone(), s.store.clone(), visitor.token);
    let lines = follow(s, after, types)
        .then(move |e| {
            let (sessions, store, token) = (sessions.clone(), store.clone(), token.clone());
            async move {
                let valid = !matches!(sessions.find(&*store, &token).await, Ok(None));
                (valid, e)
            }
        })
        .take_while(|(valid, _)| std::future::ready(*valid))
        .map(move |(_, e)| {
            let line = feed_line(&e, &tz);
            Ok::<_, Infallible>(
                SseEvent::default()
                    .id(e.id.to_string())
                    .event("line")
                    .data(serde_json::to_string(&line).unwrap_or_default()),
            )
        });
    Sse::new(lines)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: Value) -> Event {
        Event {
            id: 7,
            kind: kind.into(),
            at: 1_796_083_200_000,
            conversation_id: None,
            data,
        }
    }

    #[test]
    fn a_missed_call_reads_as_caller_and_decision() {
        let e = event(
            "call.missed",
            json!({"call": {"caller": "+919876543210", "decision": "replied", "reason": "window closed → template"}}),
        );
        let l = feed_line(&e, &jiff::tz::TimeZone::UTC);
        assert_eq!((l.what, l.who.as_str()), ("Missed call", "+919876543210"));
        assert_eq!(l.detail, "replied: window closed → template");
        assert_eq!(
            (l.kind.as_str(), l.time.as_str()),
            ("call_missed", "00:00:00")
        );
    }

    #[test]
    fn a_message_names_the_customer_as_they_wrote_it() {
        let e = event(
            "message.received",
            json!({"customer": {"phone": "+919876543210", "name": "<b>Ann</b>"}, "message": {"text": "hi"}}),
        );
        let l = feed_line(&e, &jiff::tz::TimeZone::UTC);
        // Escaping is the template's and the script's job; the line keeps the text as is.
        assert_eq!(l.who, "<b>Ann</b> +919876543210");
        assert_eq!(l.detail, "hi");
    }

    #[test]
    fn rates_round_and_never_divide_by_zero() {
        assert_eq!(percent(0, 0), "–");
        assert_eq!(percent(2, 3), "67%");
        assert_eq!(percent(5, 3), "100%");
    }
}
