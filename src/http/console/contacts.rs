//! Contacts and consent: one person's ledger (every opt-in and opt-out, with its source and
//! evidence), recording one by hand, and the whole ledger as CSV (the API's export, whose
//! cells a spreadsheet would run as formulas are neutralised).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::page::{self, Chrome, html, when};
use super::session::Visitor;
use crate::consent::{Action, Category, Record, subject};
use crate::http::AppState;
use crate::http::api::consent::export;
use crate::phone::PhoneE164;
use crate::time::now_ms;

pub struct Row {
    pub when: String,
    pub number: String,
    pub action: &'static str,
    pub category: &'static str,
    pub source: String,
    pub evidence: String,
}

#[derive(Template)]
#[template(path = "console/contacts.html")]
struct ContactsPage {
    chrome: Option<Chrome>,
    q: String,
    subject: String,
    subject_display: String,
    rows: Vec<Row>,
    csrf: String,
    /// The sending numbers (consent is recorded per number): (phone_number_id, label).
    numbers: Vec<(String, String)>,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct ContactsQuery {
    #[serde(default)]
    q: String,
    recorded: Option<String>,
}

async fn render(
    s: &AppState,
    visitor: &Visitor,
    q: String,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let records = if digits.is_empty() {
        Vec::new()
    } else {
        match s.store.consent_records(None, Some(&digits)).await {
            Ok(r) => r,
            Err(e) => return page::unavailable(e),
        }
    };
    let tz = &s.settings.timezone;
    let rows = records
        .into_iter()
        .rev()
        .map(|r| Row {
            when: when(r.at, tz),
            number: super::conversations::number_name(s, &r.sender_id),
            action: r.action.as_str(),
            category: r.category.as_str(),
            source: r.source.replace('_', " "),
            evidence: r.evidence,
        })
        .collect();
    html(
        status,
        &ContactsPage {
            chrome: Some(visitor.chrome("contacts")),
            subject_display: if digits.is_empty() {
                String::new()
            } else {
                format!("+{digits}")
            },
            subject: digits,
            q,
            rows,
            csrf: visitor.session.csrf.clone(),
            numbers: s
                .settings
                .senders
                .iter()
                .map(|x| {
                    let id = x.phone_number_id.clone();
                    (id.clone(), super::conversations::number_name(s, &id))
                })
                .collect(),
            error,
            notice,
        },
    )
}

pub async fn page(
    State(s): State<AppState>,
    visitor: Visitor,
    Query(q): Query<ContactsQuery>,
) -> Response {
    let notice = q
        .recorded
        .map(|a| format!("Recorded: {}.", a.replace('_', " ")));
    render(&s, &visitor, q.q, StatusCode::OK, None, notice).await
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    evidence: String,
}

pub async fn record(
    State(s): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<ConsentForm>,
) -> Response {
    if let Err(res) = visitor.check_form(&s, &headers, &f.csrf) {
        return res;
    }
    let refuse = |why: String| {
        render(
            &s,
            &visitor,
            f.to.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(why),
            None,
        )
    };
    let to = match PhoneE164::parse_international(&f.to) {
        Ok(p) => p,
        Err(e) => return refuse(e).await,
    };
    let action = match f.action.as_str() {
        "opt_in" => Action::OptIn,
        "opt_out" => Action::OptOut,
        other => {
            return refuse(format!(
                "'{other}' is not an action: choose opt in or opt out"
            ))
            .await;
        }
    };
    let Some(category) = Category::parse(&f.category) else {
        return refuse(format!(
            "'{}' is not a category: choose all, marketing or utility",
            f.category
        ))
        .await;
    };
    if f.evidence.trim().is_empty() {
        return refuse("Say what proves this consent (a call, a form, a note).".into()).await;
    }
    let from = Some(f.from.as_str()).filter(|f| !f.is_empty());
    let sender = match s.settings.sender(from) {
        Ok(x) => x,
        Err(e) => return refuse(e).await,
    };
    let record = Record {
        sender_id: sender.phone_number_id.clone(),
        subject: subject(Some(to.digits()), None).unwrap_or_default(),
        wa_id: Some(to.digits().to_string()),
        user_id: None,
        category,
        action,
        source: "console".into(),
        evidence: format!(
            "{} (recorded by {})",
            f.evidence.trim(),
            visitor.session.user.email
        ),
        at: now_ms(),
    };
    if let Err(e) = s.store.record_consent(&record).await {
        return page::unavailable(e);
    }
    tracing::info!(user = %visitor.session.user.id, action = action.as_str(), "Consent recorded from the console.");
    page::see_other_to(&format!(
        "/contacts?q=%2B{}&recorded={}",
        to.digits(),
        action.as_str()
    ))
}

/// The whole ledger as CSV, streamed (the API's `?format=csv`).
pub async fn export_csv(State(s): State<AppState>, _visitor: Visitor) -> Response {
    match export::csv(s.store.clone(), None, export::PAGE).await {
        Ok(mut res) => {
            res.headers_mut().insert(
                axum::http::header::CONTENT_DISPOSITION,
                axum::http::HeaderValue::from_static("attachment; filename=\"consent-ledger.csv\""),
            );
            res
        }
        Err(e) => page::unavailable(e.message),
    }
    .into_response()
}
