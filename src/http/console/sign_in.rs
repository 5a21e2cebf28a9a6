//! Signing in and out, and the one-time link that creates the first admin.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::page::{self, Chrome, html, see_other};
use super::session::{self, Visitor, same_origin};
use crate::http::AppState;
use crate::users::{self, Opened, Role, SignInError};

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    chrome: Option<Chrome>,
    error: Option<String>,
    email: String,
    no_users: bool,
}

/// `/`: Today for a signed-in person, the sign-in page otherwise.
pub async fn home(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match Visitor::find(&s, &headers).await {
        Ok(Some(_)) => see_other("/today"),
        Ok(None) => see_other("/sign-in"),
        Err(res) => res,
    }
}

async fn sign_in_page(
    s: &AppState,
    status: StatusCode,
    error: Option<String>,
    email: String,
) -> Response {
    let no_users = match s.store.users().await {
        Ok(u) => u.is_empty(),
        Err(e) => return page::unavailable(e),
    };
    html(
        status,
        &SignInPage {
            chrome: None,
            error,
            email,
            no_users,
        },
    )
}

pub async fn form(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match Visitor::find(&s, &headers).await {
        Ok(Some(_)) => see_other("/today"),
        Ok(None) => sign_in_page(&s, StatusCode::OK, None, String::new()).await,
        Err(res) => res,
    }
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// The client's address, for the per-address limit. Behind a proxy every sign-in comes from
/// the proxy, so the per-account limit is the one that counts there.
fn address(peer: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Redirects to Today with the new session's cookie.
fn signed_in(s: &AppState, opened: &Opened) -> Response {
    let mut res = see_other("/today");
    res.headers_mut()
        .insert(header::SET_COOKIE, session::set_cookie(s, &opened.token));
    res
}

pub async fn submit(
    State(s): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(c): Form<Credentials>,
) -> Response {
    if let Err(res) = same_origin(&s, &headers) {
        return res;
    }
    let ip = address(peer.as_ref().map(|e| &e.0));
    match s
        .sessions
        .sign_in(&*s.store, &c.email, &c.password, ip)
        .await
    {
        Ok(opened) => {
            tracing::info!(user = %opened.user.id, "Signed in to the console.");
            signed_in(&s, &opened)
        }
        Err(SignInError::Wrong) => {
            tracing::info!(%ip, "A console sign-in failed (wrong email or password).");
            sign_in_page(
                &s,
                StatusCode::UNAUTHORIZED,
                Some(SignInError::Wrong.to_string()),
                c.email,
            )
            .await
        }
        Err(
            e @ SignInError::TooMany {
                retry_after_seconds,
            },
        ) => {
            tracing::warn!(%ip, "Console sign-ins refused: too many attempts.");
            let mut res = sign_in_page(
                &s,
                StatusCode::TOO_MANY_REQUESTS,
                Some(e.to_string()),
                c.email,
            )
            .await;
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            res
        }
        Err(SignInError::Store(e)) => page::unavailable(e),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(s): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(res) = visitor.check_form(&s, &headers, &f.csrf) {
        return res;
    }
    if let Err(e) = s.sessions.close(&*s.store, &visitor.token).await {
        return page::unavailable(e);
    }
    let mut res = see_other("/sign-in");
    res.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(&s));
    res
}

#[derive(Template)]
#[template(path = "console/setup.html")]
struct SetupPage {
    chrome: Option<Chrome>,
    error: Option<String>,
    token: String,
    email: String,
    min_chars: usize,
}

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

fn link_spent() -> Response {
    page::problem(
        StatusCode::NOT_FOUND,
        "This link has been used",
        "The first admin exists already, or this link is from an earlier start of the server. Sign in, or create users with `ringback users create`.".into(),
        None,
    )
}

/// Whether the one-time link still works: its token, and no user yet (one may have been
/// made with `ringback users create`, or on another node, since the link was printed).
async fn link_open(s: &AppState, token: &str) -> Result<bool, Response> {
    if !s.setup.valid(token) {
        return Ok(false);
    }
    match s.store.users().await {
        Ok(u) => Ok(u.is_empty()),
        Err(e) => Err(page::unavailable(e)),
    }
}

pub async fn setup_form(State(s): State<AppState>, Query(q): Query<SetupQuery>) -> Response {
    match link_open(&s, &q.token).await {
        Ok(true) => {}
        Ok(false) => return link_spent(),
        Err(res) => return res,
    }
    html(
        StatusCode::OK,
        &SetupPage {
            chrome: None,
            error: None,
            token: q.token,
            email: String::new(),
            min_chars: users::MIN_PASSWORD_CHARS,
        },
    )
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn setup(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SetupForm>,
) -> Response {
    if let Err(res) = same_origin(&s, &headers) {
        return res;
    }
    match link_open(&s, &f.token).await {
        Ok(true) => {}
        Ok(false) => return link_spent(),
        Err(res) => return res,
    }
    let retry = |error: String| SetupPage {
        chrome: None,
        error: Some(error),
        token: f.token.clone(),
        email: f.email.clone(),
        min_chars: users::MIN_PASSWORD_CHARS,
    };
    if let Err(e) = users::check_new(&f.email, &f.password) {
        return html(StatusCode::BAD_REQUEST, &retry(e));
    }
    // Spent before the user is created, so two posts of the form cannot make two admins.
    if !s.setup.spend(&f.token) {
        return link_spent();
    }
    let user = match users::create(&*s.store, &f.email, Role::Admin, &f.password).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error.message = %e, "The first admin could not be created.");
            let status = match e {
                users::CreateError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::CONFLICT,
            };
            return page::problem(
                status,
                "Not created",
                format!("{e}. Create the first admin with `ringback users create --role admin`."),
                None,
            );
        }
    };
    tracing::info!(user = %user.id, "Created the first console admin from the one-time link.");
    match s.sessions.open(&*s.store, user).await {
        Ok(opened) => signed_in(&s, &opened),
        Err(e) => page::unavailable(e),
    }
    .into_response()
}
