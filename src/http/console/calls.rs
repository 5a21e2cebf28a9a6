//! Calls: each call a source reported, newest first, with what Ringback decided and why, in
//! the words the processor recorded.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::page::{self, Chrome, html, when};
use super::session::Visitor;
use crate::http::AppState;

const LIMIT: u32 = 200;

pub struct Row {
    pub when: String,
    pub caller: String,
    pub source: String,
    pub outcome: String,
    pub decision: String,
    pub reason: String,
    pub message_id: Option<String>,
}

#[derive(Template)]
#[template(path = "console/calls.html")]
struct CallsPage {
    chrome: Option<Chrome>,
    limit: u32,
    rows: Vec<Row>,
}

pub async fn list(State(s): State<AppState>, visitor: Visitor) -> Response {
    let calls = match s.store.list_calls(LIMIT).await {
        Ok(c) => c,
        Err(e) => return page::unavailable(e),
    };
    let tz = &s.settings.timezone;
    let rows = calls
        .into_iter()
        .map(|c| Row {
            when: when(c.occurred_at, tz),
            caller: c.caller_e164.unwrap_or(c.caller_raw),
            source: c.source,
            outcome: c.outcome.replace('-', " "),
            decision: c.decision,
            reason: c.reason,
            message_id: c.message_id,
        })
        .collect();
    html(
        StatusCode::OK,
        &CallsPage {
            chrome: Some(visitor.chrome("calls")),
            limit: LIMIT,
            rows,
        },
    )
}
