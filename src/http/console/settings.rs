//! Settings (admins only): the people who can sign in (add, disable), the API keys (create,
//! shown once; revoke) and the configuration in effect with its secrets redacted.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::page::{self, Chrome, html};
use super::session::{Admin, Visitor};
use crate::http::AppState;
use crate::users::{self, Role};

/// A row of the users' table.
pub struct Row {
    pub email: String,
    pub role: String,
    pub since: String,
    pub state: &'static str,
}

pub struct KeyRow {
    pub name: String,
    pub id: String,
    pub since: String,
    pub state: &'static str,
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage {
    chrome: Option<Chrome>,
    me: String,
    csrf: String,
    users: Vec<Row>,
    keys: Vec<KeyRow>,
    config: String,
    min_chars: usize,
    error: Option<String>,
    notice: Option<String>,
    new_key: Option<String>,
}

fn state(ended: Option<i64>, ended_word: &'static str) -> &'static str {
    if ended.is_some() {
        ended_word
    } else {
        "active"
    }
}

/// What a render adds to what the store says.
#[derive(Default)]
struct Outcome {
    error: Option<String>,
    notice: Option<String>,
    new_key: Option<String>,
}

async fn render(s: &AppState, visitor: &Visitor, status: StatusCode, o: Outcome) -> Response {
    let (users, keys) = match (s.store.users().await, s.store.api_keys().await) {
        (Ok(u), Ok(k)) => (u, k),
        (Err(e), _) | (_, Err(e)) => return page::unavailable(e),
    };
    let users = users
        .into_iter()
        .map(|u| Row {
            state: state(u.disabled_at, "disabled"),
            since: crate::time::display(u.created_at),
            email: u.email,
            role: u.role,
        })
        .collect();
    let keys = keys
        .into_iter()
        .map(|k| KeyRow {
            state: state(k.revoked_at, "revoked"),
            since: crate::time::display(k.created_at),
            name: k.name,
            id: k.id,
        })
        .collect();
    html(
        status,
        &SettingsPage {
            chrome: Some(visitor.chrome("settings")),
            me: visitor.session.user.email.clone(),
            csrf: visitor.session.csrf.clone(),
            users,
            keys,
            config: s.settings.effective_toml.clone(),
            min_chars: users::MIN_PASSWORD_CHARS,
            error: o.error,
            notice: o.notice,
            new_key: o.new_key,
        },
    )
}

pub async fn page(State(s): State<AppState>, Admin(visitor): Admin) -> Response {
    render(&s, &visitor, StatusCode::OK, Outcome::default()).await
}

fn refused(why: String) -> Outcome {
    Outcome {
        error: Some(why),
        ..Default::default()
    }
}

fn done(what: String) -> Outcome {
    Outcome {
        notice: Some(what),
        ..Default::default()
    }
}

/// The page after a change the store may not find anything to apply to (disable a user,
/// revoke a key): `did` when it changed something, 404 with `missing` when not.
async fn answer(
    s: &AppState,
    visitor: &Visitor,
    changed: Result<bool, crate::store::StoreError>,
    did: String,
    missing: String,
) -> Response {
    match changed {
        Ok(true) => render(s, visitor, StatusCode::OK, done(did)).await,
        Ok(false) => render(s, visitor, StatusCode::NOT_FOUND, refused(missing)).await,
        Err(e) => page::unavailable(e),
    }
}

#[derive(Deserialize)]
pub struct NewUser {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

pub async fn add_user(
    State(s): State<AppState>,
    Admin(visitor): Admin,
    headers: HeaderMap,
    Form(f): Form<NewUser>,
) -> Response {
    if let Err(res) = visitor.check_form(&s, &headers, &f.csrf) {
        return res;
    }
    let role = match Role::parse(&f.role) {
        Ok(r) => r,
        Err(e) => return render(&s, &visitor, StatusCode::UNPROCESSABLE_ENTITY, refused(e)).await,
    };
    match users::create(&*s.store, &f.email, role, &f.password).await {
        Ok(u) => {
            tracing::info!(by = %visitor.session.user.id, user = %u.id, "A console user was added.");
            render(
                &s,
                &visitor,
                StatusCode::CREATED,
                done(format!("Added {} ({}).", u.email, u.role)),
            )
            .await
        }
        Err(users::CreateError::Store(e)) => page::unavailable(e),
        Err(e) => {
            render(
                &s,
                &visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                refused(e.to_string()),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct Named {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

pub async fn disable_user(
    State(s): State<AppState>,
    Admin(visitor): Admin,
    headers: HeaderMap,
    Form(f): Form<Named>,
) -> Response {
    if let Err(res) = visitor.check_form(&s, &headers, &f.csrf) {
        return res;
    }
    if f.email == visitor.session.user.email {
        let why = "You cannot disable yourself; ask another admin.".to_string();
        return render(&s, &visitor, StatusCode::UNPROCESSABLE_ENTITY, refused(why)).await;
    }
    let changed = s.store.disable_user(&f.email, crate::time::now_ms()).await;
    let did = format!("Disabled {}; their sessions have ended.", f.email);
    let missing = format!("No active user has the email {}.", f.email);
    answer(&s, &visitor, changed, did, missing).await
}

pub async fn create_key(
    State(s): State<AppState>,
    Admin(visitor): Admin,
    headers: HeaderMap,
    Form(f): Form<Named>,
) -> Response {
    if let Err(res) = visitor.check_form(&s, &headers, &f.csrf) {
        return res;
    }
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        let why = "Name the key (1 to 64 characters): what it is for, e.g. crm.".to_string();
        return render(&s, &visitor, StatusCode::UNPROCESSABLE_ENTITY, refused(why)).await;
    }
    match crate::api_keys::create(&*s.store, name).await {
        // Shown in this response only; a reload shows the page without it.
        Ok((key, secret)) => {
            tracing::info!(by = %visitor.session.user.id, key = %key.id, "An API key was created in the console.");
            let o = Outcome {
                notice: Some(format!("Created the key {} ({name}).", key.id)),
                new_key: Some(secret),
                ..Default::default()
            };
            render(&s, &visitor, StatusCode::CREATED, o).await
        }
        Err(e) => page::unavailable(e),
    }
}

pub async fn revoke_key(
    State(s): State<AppState>,
    Admin(visitor): Admin,
    headers: HeaderMap,
    Form(f): Form<Named>,
) -> Response {
    if let Err(res) = visitor.check_form(&s, &headers, &f.csrf) {
        return res;
    }
    let changed = s.store.revoke_api_key(&f.id, crate::time::now_ms()).await;
    let did = format!("Revoked {}.", f.id);
    let missing = format!("No active key has the id {}.", f.id);
    answer(&s, &visitor, changed, did, missing).await
}
