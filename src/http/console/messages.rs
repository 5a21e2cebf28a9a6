//! Messages: what Ringback sent, newest first, and one message's timeline: the policy's
//! decision, each attempt, each status Meta reported, and Meta's error in plain language.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::page::{self, Chrome, html, when};
use super::session::Visitor;
use crate::cloud_api::errors::explain;
use crate::http::AppState;

const LIMIT: u32 = 200;

pub struct Row {
    pub id: String,
    pub when: String,
    pub to: String,
    pub kind: String,
    pub state: String,
    pub attempts: u32,
    pub why: String,
}

#[derive(Template)]
#[template(path = "console/messages.html")]
struct MessagesPage {
    chrome: Option<Chrome>,
    limit: u32,
    rows: Vec<Row>,
}

/// A Meta error code in words, with the text Meta sent.
fn error_words(code: Option<i64>, detail: Option<&str>) -> Option<String> {
    match (code, detail) {
        (Some(c), Some(d)) => Some(format!("{} Meta said: {d}", explain(c))),
        (Some(c), None) => Some(explain(c)),
        (None, Some(d)) => Some(d.to_string()),
        (None, None) => None,
    }
}

pub async fn list(State(s): State<AppState>, visitor: Visitor) -> Response {
    let messages = match s.store.list_messages(LIMIT).await {
        Ok(m) => m,
        Err(e) => return page::unavailable(e),
    };
    let tz = &s.settings.timezone;
    let rows = messages
        .into_iter()
        .map(|m| Row {
            when: when(m.created_at, tz),
            to: format!("+{}", m.to.trim_start_matches('+')),
            why: error_words(m.error_code, m.last_error.as_deref()).unwrap_or(m.reason),
            id: m.id,
            kind: m.kind,
            state: m.state,
            attempts: m.attempts,
        })
        .collect();
    html(
        StatusCode::OK,
        &MessagesPage {
            chrome: Some(visitor.chrome("messages")),
            limit: LIMIT,
            rows,
        },
    )
}

pub struct Moment {
    pub at: i64,
    pub when: String,
    pub what: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage {
    chrome: Option<Chrome>,
    id: String,
    to: String,
    from: String,
    kind: String,
    state: String,
    wamid: Option<String>,
    content: String,
    error: Option<String>,
    timeline: Vec<Moment>,
}

pub async fn show(State(s): State<AppState>, visitor: Visitor, Path(id): Path<String>) -> Response {
    let detail = match s.store.message(&id).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return page::problem(
                StatusCode::NOT_FOUND,
                "No such message",
                format!("There is no message with the id {id}."),
                Some(visitor.chrome("messages")),
            );
        }
        Err(e) => return page::unavailable(e),
    };
    let tz = &s.settings.timezone;
    let m = &detail.message;
    let mut timeline = vec![Moment {
        at: m.created_at,
        when: String::new(),
        what: "Decided".into(),
        detail: m.reason.clone(),
    }];
    for a in &detail.attempts {
        timeline.push(Moment {
            at: a.started_at,
            when: String::new(),
            what: format!("Attempt {}: {}", a.attempt_no, a.outcome.replace('_', " ")),
            detail: error_words(a.error_code, a.detail.as_deref()).unwrap_or_default(),
        });
    }
    for st in &detail.statuses {
        timeline.push(Moment {
            at: st.at,
            when: String::new(),
            what: format!("WhatsApp: {}", st.status),
            detail: error_words(st.error_code, st.detail.as_deref()).unwrap_or_default(),
        });
    }
    // In the order things happened to the message: decided, tried, then what Meta reported
    // (Meta's status times have whole seconds only, so sorting by time would put a status
    // before the attempt it answers).
    for t in &mut timeline {
        t.when = when(t.at, tz);
    }
    html(
        StatusCode::OK,
        &MessagePage {
            chrome: Some(visitor.chrome("messages")),
            id: m.id.clone(),
            to: format!("+{}", m.to.trim_start_matches('+')),
            from: super::conversations::number_name(&s, &m.sender_id),
            kind: m.kind.clone(),
            state: m.state.clone(),
            wamid: m.wamid.clone(),
            content: crate::conversation::summary::outbound(&m.kind, &detail.body),
            error: error_words(m.error_code, m.last_error.as_deref()),
            timeline,
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_meta_error_reads_as_its_meaning_and_fix() {
        let words = super::error_words(Some(131047), Some("Re-engagement message")).unwrap();
        assert!(
            words.starts_with("(#131047)") && words.contains("Fix:"),
            "{words}"
        );
        assert!(
            words.ends_with("Meta said: Re-engagement message"),
            "{words}"
        );
        assert_eq!(super::error_words(None, None), None);
    }
}
