//! Settings (admins only): the people who can sign in and the API keys.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::page::{self, Chrome, html};
use super::session::Admin;
use crate::http::AppState;

/// A row of either table.
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
    users: Vec<Row>,
    keys: Vec<KeyRow>,
}

fn state(ended: Option<i64>, ended_word: &'static str) -> &'static str {
    if ended.is_some() {
        ended_word
    } else {
        "active"
    }
}

pub async fn page(State(s): State<AppState>, Admin(visitor): Admin) -> Response {
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
        StatusCode::OK,
        &SettingsPage {
            chrome: Some(visitor.chrome("settings")),
            users,
            keys,
        },
    )
}
