//! Links: click-to-chat links with their QR codes, clicks and the conversations they started,
//! and a form to make one — through the same [`crate::links::create`] as the API and the CLI.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::page::{self, Chrome, html, when};
use super::session::Visitor;
use crate::http::AppState;
use crate::links::{Link, LinkError, NewLink};

/// Links shown on the page, newest first.
const SHOWN: u32 = 200;

pub struct LinkRow {
    pub code: String,
    pub source: String,
    pub text: String,
    pub number: String,
    pub tracked: bool,
    pub clicks: i64,
    pub conversations: i64,
    pub created: String,
    pub wa_me: String,
    pub deep_link: String,
    pub tracked_url: Option<String>,
    pub meta_link: Option<String>,
}

pub struct NumberOption {
    pub id: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "console/links.html")]
struct LinksPage {
    chrome: Option<Chrome>,
    csrf: String,
    links: Vec<LinkRow>,
    numbers: Vec<NumberOption>,
    /// The link just made, shown first with its QR code.
    made: Option<LinkRow>,
    error: Option<String>,
    text: String,
    source: String,
    has_base: bool,
}

fn row(s: &AppState, l: &Link) -> LinkRow {
    let base = s.settings.public_base_url.as_deref();
    LinkRow {
        code: l.code.clone(),
        source: l.source.clone(),
        text: l.prefilled(),
        number: format!("+{}", l.number),
        tracked: l.tracked,
        clicks: l.clicks,
        conversations: l.conversations,
        created: when(l.created_at, &s.settings.timezone),
        wa_me: l.wa_me(),
        deep_link: l.deep_link(),
        tracked_url: l.tracked_url(base),
        meta_link: l.meta_deep_link.clone(),
    }
}

#[derive(Default)]
struct Render {
    made: Option<Link>,
    error: Option<String>,
    text: String,
    source: String,
}

async fn render(s: &AppState, visitor: &Visitor, status: StatusCode, r: Render) -> Response {
    let links = match s.store.links(SHOWN).await {
        Ok(l) => l,
        Err(e) => return page::unavailable(e),
    };
    let numbers = s
        .settings
        .senders
        .iter()
        .map(|x| NumberOption {
            id: x.phone_number_id.clone(),
            label: format!("{} ({})", x.display_number.as_str(), x.business_name),
        })
        .collect();
    html(
        status,
        &LinksPage {
            chrome: Some(visitor.chrome("links")),
            csrf: visitor.session.csrf.clone(),
            links: links.iter().map(|l| row(s, l)).collect(),
            numbers,
            made: r.made.as_ref().map(|l| row(s, l)),
            error: r.error,
            text: r.text,
            source: r.source,
            has_base: s.settings.public_base_url.is_some(),
        },
    )
}

#[derive(Deserialize)]
pub struct PageQuery {
    /// The link just made (the form redirects here, so a reload makes nothing twice).
    made: Option<String>,
}

pub async fn page(
    State(s): State<AppState>,
    visitor: Visitor,
    Query(q): Query<PageQuery>,
) -> Response {
    let made = match q.made.as_deref() {
        Some(code) => match crate::links::find(s.store.as_ref(), code).await {
            Ok(l) => l,
            Err(e) => return page::unavailable(e),
        },
        None => None,
    };
    let r = Render {
        made,
        ..Default::default()
    };
    render(&s, &visitor, StatusCode::OK, r).await
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    number: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    untracked: Option<String>,
    #[serde(default)]
    meta: Option<String>,
}

pub async fn create(
    State(s): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<LinkForm>,
) -> Response {
    if let Err(res) = visitor.check_form(&s, &headers, &f.csrf) {
        return res;
    }
    let new = NewLink {
        text: f.text.clone(),
        source: f.source.clone(),
        sender_id: Some(f.number.clone()).filter(|n| !n.is_empty()),
        tracked: f.untracked.is_none(),
        meta: f.meta.is_some(),
    };
    let made = crate::links::create(
        s.store.as_ref(),
        &s.settings,
        &s.client,
        new,
        crate::time::now_ms(),
    )
    .await;
    match made {
        Ok(link) => {
            tracing::info!(by = %visitor.session.user.id, link = %link.code, "A click-to-chat link was made.");
            page::see_other_to(&format!("/links?made={}", link.code))
        }
        Err(LinkError::Store(e)) => page::unavailable(e),
        Err(e) => {
            let status = match e {
                LinkError::Meta(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let r = Render {
                error: Some(e.to_string()),
                text: f.text,
                source: f.source,
                ..Default::default()
            };
            render(&s, &visitor, status, r).await
        }
    }
}

/// `/links/{code}/qr.svg|qr.png`: the image shown on the page and downloaded for print.
pub async fn qr(
    State(s): State<AppState>,
    _visitor: Visitor,
    Path((code, file)): Path<(String, String)>,
) -> Response {
    match crate::links::find(s.store.as_ref(), &code).await {
        Ok(Some(l)) => {
            match crate::http::api::links::qr_image(
                &l,
                s.settings.public_base_url.as_deref(),
                &file,
            ) {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        }
        Ok(None) => page::problem(
            StatusCode::NOT_FOUND,
            "No such link",
            format!("No link has the code '{code}'."),
            None,
        ),
        Err(e) => page::unavailable(e),
    }
}
