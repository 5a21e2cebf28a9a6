//! Conversations: the list (search by number or name), one conversation's transcript with its
//! 24-hour window and time left, the reply box (free-form inside the window, a template with
//! its variables outside it), closing, and the hand-off marker.
//!
//! A reply goes through the same code as `POST /api/v1/messages`
//! ([`Submitter::submit_as_person`]): the send policy decides, its refusals are shown as the
//! sentences it words, and the number's assistant stops answering this customer.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::page::{self, Chrome, html, when};
use super::session::Visitor;
use crate::conversation::Conversation;
use crate::http::AppState;
use crate::outbox::submit::{NotQueued, Submission, Submitter};
use crate::phone::PhoneE164;
use crate::policy::Outgoing;
use crate::store::ConversationQuery;
use crate::time::now_ms;
use crate::window::Window;

/// Rows on the list.
const LIST_LIMIT: u32 = 100;

pub struct ListRow {
    pub id: String,
    pub customer: String,
    pub number: String,
    pub kind: String,
    pub state: &'static str,
    pub last: String,
    pub count: u32,
}

#[derive(Template)]
#[template(path = "console/conversations.html")]
struct ListPage {
    chrome: Option<Chrome>,
    q: String,
    state: String,
    states: Vec<(&'static str, &'static str)>,
    rows: Vec<ListRow>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
}

/// "Name +phone", or whichever is known.
fn customer(c: &Conversation) -> String {
    let phone = c.customer_phone().unwrap_or_else(|| c.contact.clone());
    page::customer_label(c.contact_name.as_deref(), phone)
}

/// A sending number as people know it: "+15550100001 (Demo Bakery)".
pub fn number_name(s: &AppState, sender_id: &str) -> String {
    s.settings
        .sender(Some(sender_id))
        .map(|x| format!("{} ({})", x.display_number, x.business_name))
        .unwrap_or_else(|_| sender_id.to_string())
}

pub async fn list(
    State(s): State<AppState>,
    visitor: Visitor,
    Query(q): Query<ListQuery>,
) -> Response {
    let open = match q.state.as_str() {
        "ended" => Some(false),
        "all" => None,
        _ => Some(true),
    };
    let query = ConversationQuery {
        open,
        search: Some(q.q.clone()).filter(|t| !t.trim().is_empty()),
        limit: LIST_LIMIT,
        ..Default::default()
    };
    let rows = match s.store.conversations(&query).await {
        Ok(r) => r,
        Err(e) => return page::unavailable(e),
    };
    let tz = &s.settings.timezone;
    let rows = rows
        .iter()
        .map(|c| ListRow {
            id: c.id.clone(),
            customer: customer(c),
            number: number_name(&s, &c.sender_id),
            kind: c.kind.replace('_', " "),
            state: c.state(),
            last: when(c.last_message_at, tz),
            count: c.message_count,
        })
        .collect();
    html(
        StatusCode::OK,
        &ListPage {
            chrome: Some(visitor.chrome("conversations")),
            q: q.q,
            state: match open {
                Some(true) => "open",
                Some(false) => "ended",
                None => "all",
            }
            .into(),
            states: vec![("open", "Open"), ("ended", "Ended"), ("all", "All")],
            rows,
        },
    )
}

pub struct LineView {
    pub direction: String,
    pub kind: String,
    pub text: String,
    pub status: String,
    pub time: String,
}

pub struct TemplateChoice {
    /// `name|language`.
    pub key: String,
    pub label: String,
}

pub struct Variable {
    pub name: String,
    pub value: String,
}

pub struct ChosenTemplate {
    pub key: String,
    pub body: String,
    pub variables: Vec<Variable>,
}

#[derive(Template)]
#[template(path = "console/conversation.html")]
struct ConversationPage {
    chrome: Option<Chrome>,
    id: String,
    customer: String,
    number: String,
    state: String,
    open: bool,
    window: String,
    window_open: bool,
    hand_off: Option<String>,
    error: Option<String>,
    notice: Option<String>,
    lines: Vec<LineView>,
    csrf: String,
    templates: Vec<TemplateChoice>,
    chosen_key: String,
    chosen: Option<ChosenTemplate>,
    /// This render's one-time key, sent back by its forms.
    idem: String,
    /// The newest event when the page was made: its script follows from there.
    after: i64,
}

/// What a render of one conversation adds to what the store says.
#[derive(Default)]
struct Extra {
    template: Option<String>,
    filled: Vec<(String, String)>,
    error: Option<String>,
    notice: Option<String>,
}

/// "3 h 12 min", "45 min", "under a minute".
fn duration_words(ms: i64) -> String {
    let minutes = ms / 60_000;
    match (minutes / 60, minutes % 60) {
        (0, 0) => "under a minute".into(),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

async fn render(
    s: &AppState,
    visitor: &Visitor,
    id: &str,
    status: StatusCode,
    extra: Extra,
) -> Response {
    let c = match s.store.conversation(id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return page::problem(
                StatusCode::NOT_FOUND,
                "No such conversation",
                format!("There is no conversation with the id {id}."),
                Some(visitor.chrome("conversations")),
            );
        }
        Err(e) => return page::unavailable(e),
    };
    let read = async {
        let transcript = s.store.transcript(id).await?;
        let facts = s.store.policy_facts(&c.sender_id, &c.contact).await?;
        let pause = s.store.auto_reply_pause(&c.sender_id, &c.contact).await?;
        Ok::<_, crate::store::StoreError>((transcript, facts, pause))
    };
    let (transcript, facts, pause) = match read.await {
        Ok(r) => r,
        Err(e) => return page::unavailable(e),
    };
    let after = crate::http::api::events::latest(s).await.unwrap_or(0);
    let tz = &s.settings.timezone;
    let now = now_ms();
    let (window, window_open) = match crate::window::at(facts.last_inbound, now) {
        Window::Open { closes_at } => (
            format!(
                "open: {} left (until {})",
                duration_words(closes_at - now),
                when(closes_at, tz)
            ),
            true,
        ),
        Window::Closed => (
            "closed: only an approved template can be sent until the customer writes".into(),
            false,
        ),
    };
    let hand_off = pause
        .filter(|p| p.covers(&c.id, c.started_at))
        .map(|p| format!("{} ({})", p.reason, when(p.at, tz)));
    let waba = s
        .settings
        .sender(Some(&c.sender_id))
        .map(|x| x.waba_id.clone())
        .unwrap_or_default();
    let all = s.templates.snapshot();
    let usable: Vec<_> = all
        .iter()
        .filter(|t| t.waba_id == waba && t.status == "APPROVED")
        .collect();
    let chosen_key = extra.template.clone().unwrap_or_default();
    let chosen = usable
        .iter()
        .find(|t| format!("{}|{}", t.name, t.language) == chosen_key)
        .map(|t| ChosenTemplate {
            key: chosen_key.clone(),
            body: t.body_text().to_string(),
            variables: t
                .body_params()
                .into_iter()
                .map(|name| Variable {
                    value: extra
                        .filled
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                    name,
                })
                .collect(),
        });
    html(
        status,
        &ConversationPage {
            chrome: Some(visitor.chrome("conversations")),
            id: c.id.clone(),
            customer: customer(&c),
            number: number_name(s, &c.sender_id),
            state: match &c.end_reason {
                Some(r) => format!("ended ({r})"),
                None => "open".into(),
            },
            open: c.is_open(),
            window,
            window_open,
            hand_off,
            error: extra.error,
            notice: extra.notice,
            lines: transcript
                .iter()
                .map(|l| LineView {
                    direction: l.direction.clone(),
                    kind: l.kind.clone(),
                    text: l.text.clone(),
                    status: l.status.clone(),
                    time: when(l.at, tz),
                })
                .collect(),
            csrf: visitor.session.csrf.clone(),
            templates: usable
                .iter()
                .map(|t| TemplateChoice {
                    key: format!("{}|{}", t.name, t.language),
                    label: format!("{} ({}, {})", t.name, t.language, t.category.to_lowercase()),
                })
                .collect(),
            chosen_key,
            chosen,
            idem: hex::encode(rand::random::<[u8; 16]>()),
            after,
        },
    )
}

#[derive(Deserialize)]
pub struct ShowQuery {
    template: Option<String>,
    sent: Option<String>,
}

pub async fn show(
    State(s): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let notice = q
        .sent
        .map(|_| "Queued: it shows here once WhatsApp has accepted it.".to_string());
    let extra = Extra {
        template: q.template.filter(|t| !t.is_empty()),
        notice,
        ..Default::default()
    };
    render(&s, &visitor, &id, StatusCode::OK, extra).await
}

/// Sends `message` to the conversation's customer as `visitor`; on a refusal, the page again
/// with the policy's sentence.
async fn send(
    s: &AppState,
    visitor: &Visitor,
    id: &str,
    message: Outgoing,
    idempotency: &str,
    retry: Extra,
) -> Response {
    let c = match s.store.conversation(id).await {
        Ok(Some(c)) => c,
        Ok(None) => return render(s, visitor, id, StatusCode::NOT_FOUND, retry).await,
        Err(e) => return page::unavailable(e),
    };
    let refused = |why: String| Extra {
        error: Some(why),
        ..retry
    };
    let (Ok(sender), Some(phone)) = (s.settings.sender(Some(&c.sender_id)), c.customer_phone())
    else {
        let why = "This customer is known only by a WhatsApp user id, or their number is no longer configured; Ringback cannot write to them from here.".to_string();
        return render(
            s,
            visitor,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            refused(why),
        )
        .await;
    };
    let to = match PhoneE164::parse_international(&phone) {
        Ok(p) => p,
        Err(e) => {
            return render(s, visitor, id, StatusCode::UNPROCESSABLE_ENTITY, refused(e)).await;
        }
    };
    let submitter = Submitter {
        store: s.store.as_ref(),
        templates: &s.templates,
        book: &s.book,
        wakers: &s.wakers,
    };
    let who = format!("{} (in the console)", visitor.session.user.email);
    // The form's one-time key: a double click or a resent form queues one message.
    let key = Some(idempotency)
        .filter(|k| !k.is_empty() && k.len() <= 64)
        .map(|k| format!("console:{id}:{k}"));
    let result = submitter
        .submit_as_person(
            &s.settings,
            &s.sender_status,
            Submission {
                sender,
                to: &to,
                message,
                fallback: None,
                idempotency_key: key,
                origin: "sent from the console",
                now: now_ms(),
            },
            &who,
        )
        .await;
    match result {
        Ok(q) if q.duplicate => {
            let extra = Extra {
                notice: Some("This form was sent already; its message was queued then, and nothing new was queued now.".into()),
                ..Extra::default()
            };
            render(s, visitor, id, StatusCode::OK, extra).await
        }
        Ok(q) => {
            tracing::info!(message_id = %q.id, user = %visitor.session.user.id, "A person replied from the console.");
            page::see_other_to(&format!("/conversations/{id}?sent=1"))
        }
        Err(NotQueued::Store(e)) => page::unavailable(e),
        Err(e) => {
            render(
                s,
                visitor,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                refused(e.to_string()),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    idem: String,
}

pub async fn reply(
    State(s): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<ReplyForm>,
) -> Response {
    if let Err(res) = visitor.check_form(&s, &headers, &f.csrf) {
        return res;
    }
    let n = f.text.trim().chars().count();
    if n == 0 || n > 4096 {
        let why = format!("The message has {n} characters; WhatsApp allows 1 to 4096.");
        let extra = Extra {
            error: Some(why),
            ..Default::default()
        };
        return render(&s, &visitor, &id, StatusCode::UNPROCESSABLE_ENTITY, extra).await;
    }
    let message = Outgoing {
        kind: "text".into(),
        payload: json!({"preview_url": false, "body": f.text.trim()}),
    };
    send(&s, &visitor, &id, message, &f.idem, Extra::default()).await
}

pub async fn send_template(
    State(s): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if let Err(res) = visitor.check_form(&s, &headers, &field("csrf")) {
        return res;
    }
    let key = field("template");
    let filled: Vec<(String, String)> = fields
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("var.")
                .map(|n| (n.to_string(), v.trim().to_string()))
        })
        .collect();
    let retry = Extra {
        template: Some(key.clone()),
        filled: filled.clone(),
        ..Default::default()
    };
    let Some((name, language)) = key.split_once('|') else {
        let extra = Extra {
            error: Some("Choose a template first.".into()),
            ..retry
        };
        return render(&s, &visitor, &id, StatusCode::UNPROCESSABLE_ENTITY, extra).await;
    };
    let empty: Vec<String> = filled
        .iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| format!("{{{{{k}}}}}"))
        .collect();
    if !empty.is_empty() {
        let why = format!(
            "Fill in every variable: {} {} empty (WhatsApp refuses a template with an empty variable).",
            empty.join(", "),
            if empty.len() == 1 { "is" } else { "are" }
        );
        let extra = Extra {
            error: Some(why),
            ..retry
        };
        return render(&s, &visitor, &id, StatusCode::UNPROCESSABLE_ENTITY, extra).await;
    }
    // Positional variables ({{1}}, {{2}}) go as a list in their order; named ones by name.
    let positional = filled.iter().all(|(k, _)| k.parse::<u32>().is_ok());
    let parameters = if positional {
        let mut sorted = filled.clone();
        sorted.sort_by_key(|(k, _)| k.parse::<u32>().unwrap_or(u32::MAX));
        Value::Array(sorted.into_iter().map(|(_, v)| Value::String(v)).collect())
    } else {
        Value::Object(
            filled
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    };
    let payload = match crate::policy::template_object(name, language, &parameters, &[]) {
        Ok(p) => p,
        Err(e) => {
            let extra = Extra {
                error: Some(e),
                ..retry
            };
            return render(&s, &visitor, &id, StatusCode::UNPROCESSABLE_ENTITY, extra).await;
        }
    };
    let message = Outgoing {
        kind: "template".into(),
        payload,
    };
    send(&s, &visitor, &id, message, &field("idem"), retry).await
}

#[derive(Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    csrf: String,
}

pub async fn close(
    State(s): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CloseForm>,
) -> Response {
    if let Err(res) = visitor.check_form(&s, &headers, &f.csrf) {
        return res;
    }
    let c = match s.store.conversation(&id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return render(&s, &visitor, &id, StatusCode::NOT_FOUND, Extra::default()).await;
        }
        Err(e) => return page::unavailable(e),
    };
    match crate::conversation::request_close(s.store.as_ref(), &c, now_ms()).await {
        Ok(Ok(())) => page::see_other_to(&format!("/conversations/{id}")),
        Ok(Err(why)) => {
            let extra = Extra {
                error: Some(why),
                ..Default::default()
            };
            render(&s, &visitor, &id, StatusCode::CONFLICT, extra).await
        }
        Err(e) => page::unavailable(e),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_left_reads_in_hours_and_minutes() {
        assert_eq!(super::duration_words(30_000), "under a minute");
        assert_eq!(super::duration_words(45 * 60_000), "45 min");
        assert_eq!(super::duration_words(3 * 3_600_000), "3 h");
        assert_eq!(
            super::duration_words(23 * 3_600_000 + 12 * 60_000),
            "23 h 12 min"
        );
    }
}
