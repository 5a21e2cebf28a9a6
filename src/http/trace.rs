//! Request logs without secrets.
//!
//! tower-http's default span records the whole request URI, and some callers put secrets in
//! the query string: Meta's webhook handshake sends `hub.verify_token=…`, and other clients
//! put tokens or signatures there. Each request's span records the path and the query with
//! the value of every parameter named like a secret replaced by `REDACTED`.

use axum::http::Request;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, TraceLayer};
use tracing::Span;

/// Parameter names containing one of these (in any case) have their value redacted.
const SECRET_NAME_PARTS: &[&str] = &[
    "token",
    "secret",
    "key",
    "password",
    "passwd",
    "signature",
    "sig",
    "auth",
    "credential",
    "session",
];

/// What a redacted value is logged as.
const REDACTED: &str = "REDACTED";

/// The request-logging layer of Ringback's router.
pub fn layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RedactedSpan> {
    TraceLayer::new_for_http().make_span_with(RedactedSpan)
}

/// Makes tower-http's DEBUG `request` span with a redacted query.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactedSpan;

impl<B> MakeSpan<B> for RedactedSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let query = request.uri().query().map(redact_query).unwrap_or_default();
        tracing::debug_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            query = %query,
            version = ?request.version(),
        )
    }
}

/// `a=1&hub.verify_token=x` → `a=1&hub.verify_token=REDACTED`.
pub fn redact_query(query: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if names_a_secret(&name) {
            out.append_pair(&name, REDACTED);
        } else {
            out.append_pair(&name, &value);
        }
    }
    out.finish()
}

fn names_a_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
}

#[cfg(test)]
mod tests;
