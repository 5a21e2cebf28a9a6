//! Rendering: a template into an HTML response, the header every signed-in page shares, and
//! the page that explains a refusal.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The header of a signed-in page: who is signed in, what they may open, and the token
/// the sign-out form sends.
pub struct Chrome {
    pub email: String,
    pub role: &'static str,
    pub admin: bool,
    pub csrf: String,
    /// The page shown, to mark it in the navigation.
    pub page: &'static str,
}

/// `template` as an HTML response with `status`; a template that fails to render (a bug)
/// is a 500 that says so in words, and the log has the details.
pub fn html(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error.message = %e, "A console page could not be rendered.");
            let mut res = (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error · Ringback</title><p>This page could not be shown; the server log has the details.</p>"),
            )
                .into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            res
        }
    }
}

#[derive(Template)]
#[template(path = "console/problem.html")]
struct Problem<'a> {
    chrome: Option<Chrome>,
    heading: &'a str,
    detail: String,
}

/// A page that says, in a sentence, why the request was refused.
pub fn problem(
    status: StatusCode,
    heading: &str,
    detail: String,
    chrome: Option<Chrome>,
) -> Response {
    html(
        status,
        &Problem {
            chrome,
            heading,
            detail,
        },
    )
}

/// The store could not answer: the page says to try again; the log says why.
pub fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error.message = %e, "A console page could not read the store.");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again in a moment",
        "Ringback could not read its store just now; the server log has the details.".into(),
        None,
    )
}

/// A redirect after a form (303: the browser follows with a GET).
pub fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// [`see_other`] to a path made at run time (one of this console's own).
pub fn see_other_to(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => see_other("/today"),
    }
}

/// A customer as the pages name them: "Name +phone", or the phone alone when WhatsApp gave
/// no name.
pub fn customer_label(name: Option<&str>, phone: String) -> String {
    match name.filter(|n| !n.trim().is_empty()) {
        Some(name) => format!("{name} {phone}"),
        None => phone,
    }
}

/// A moment as a person reads it, in the business's time zone: "Wed 2 Dec 15:52".
pub fn when(at: crate::time::Millis, tz: &jiff::tz::TimeZone) -> String {
    format_at(at, tz, "%a %-d %b %H:%M")
}

/// The time of day, in the business's time zone: "15:52:07".
pub fn clock(at: crate::time::Millis, tz: &jiff::tz::TimeZone) -> String {
    format_at(at, tz, "%H:%M:%S")
}

fn format_at(at: crate::time::Millis, tz: &jiff::tz::TimeZone, format: &str) -> String {
    jiff::Timestamp::from_millisecond(at)
        .map(|t| t.to_zoned(tz.clone()).strftime(format).to_string())
        .unwrap_or_default()
}
