//! The WhatsApp Cloud API client: one real HTTP client whose base URL is configuration, so the
//! same code talks to `https://graph.facebook.com` or to the sandbox.
//!
//! [`Client::send_message`] never fails with an error type: every answer (success, a Graph error
//! envelope, a timeout, garbage) becomes an [`Outcome`] that says what the outbox does next.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

pub mod calling;
pub mod errors;
pub mod qr;
pub mod rules;
pub mod template;
pub mod wire;

use errors::Action;

/// What became of one send request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Meta accepted the message (delivery is reported later by status webhooks).
    Sent { wamid: String },
    /// Try again; `after` is Meta's hint (Retry-After), if any.
    Retry {
        after: Option<Duration>,
        code: Option<i64>,
        reason: String,
    },
    /// Do not resend as-is.
    Fail { code: Option<i64>, reason: String },
    /// The request left but no answer came (a timeout, a cut-off response): Meta may have
    /// taken the message, so it must not simply be sent again.
    Unknown { reason: String },
}

/// The HTTP client with its base URL and API version.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    version: String,
}

impl Client {
    /// `base` without a trailing slash, e.g. `https://graph.facebook.com`; `version` like `v23.0`.
    pub fn new(base: &str, version: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("ringback/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with only timeouts set always builds");
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            version: version.to_string(),
        }
    }

    /// `POST /{version}/{phone_number_id}/messages` with a prepared JSON body.
    pub async fn send_message(
        &self,
        phone_number_id: &str,
        token: &SecretString,
        body: &str,
    ) -> Outcome {
        let url = format!(
            "{}/{}/{}/messages",
            self.base, self.version, phone_number_id
        );
        let response = self
            .http
            .post(&url)
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            // No connection, or a request that could not be built (a malformed token or
            // URL): nothing left, so it is safe to send again.
            Err(e) if e.is_connect() || e.is_builder() => {
                return Outcome::Retry {
                    after: None,
                    code: None,
                    reason: format!("could not reach {url}: {e}"),
                };
            }
            Err(e) => {
                let reason = if e.is_timeout() {
                    format!("no answer from {url} in time")
                } else {
                    format!("no answer from {url}: {e}")
                };
                return Outcome::Unknown { reason };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match response.bytes().await {
            Ok(b) => b,
            // Meta answered 2xx (it took the message) but the body with the wamid was lost.
            Err(e) if (200..300).contains(&status) => {
                return Outcome::Unknown {
                    reason: format!("the answer from {url} was cut off: {e}"),
                };
            }
            // An error status already says the message was not taken.
            Err(_) => return classify(status, b"", retry_after),
        };
        classify(status, &bytes, retry_after)
    }
}

impl Client {
    /// Every template of a WABA (`GET /{version}/{waba-id}/message_templates`, all pages).
    pub async fn list_templates(
        &self,
        waba_id: &str,
        token: &SecretString,
    ) -> Result<Vec<template::Template>, String> {
        let mut url = format!(
            "{}/{}/{}/message_templates?limit=100",
            self.base, self.version, waba_id
        );
        let mut out = Vec::new();
        for _ in 0..100 {
            let response = self
                .http
                .get(&url)
                .bearer_auth(token.expose_secret())
                .send()
                .await
                .map_err(|e| format!("could not reach {url}: {e}"))?;
            let status = response.status();
            let body: serde_json::Value = response
                .json()
                .await
                .map_err(|e| format!("unreadable template list: {e}"))?;
            if !status.is_success() {
                return Err(format!(
                    "HTTP {status}: {}",
                    body["error"]["message"]
                        .as_str()
                        .unwrap_or("no Graph error message")
                ));
            }
            for item in body["data"].as_array().into_iter().flatten() {
                match serde_json::from_value::<template::Template>(item.clone()) {
                    Ok(mut t) => {
                        t.waba_id = waba_id.to_string();
                        out.push(t);
                    }
                    Err(e) => {
                        tracing::warn!(error.message = %e, "Skipping a template the Cloud API described in an unexpected shape.")
                    }
                }
            }
            match body["paging"]["cursors"]["after"]
                .as_str()
                .filter(|_| body["paging"].get("next").is_some())
            {
                Some(after) => {
                    url = format!(
                        "{}/{}/{}/message_templates?limit=100&after={after}",
                        self.base, self.version, waba_id
                    )
                }
                None => return Ok(out),
            }
        }
        Ok(out)
    }
}

/// Turns an HTTP answer into an [`Outcome`]. Pure, so it is tested without a server.
pub fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> Outcome {
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<wire::SendResponse>(body) {
            Ok(r) => match r.messages.into_iter().next() {
                Some(m) => Outcome::Sent { wamid: m.id },
                None => Outcome::Fail {
                    code: None,
                    reason: "HTTP 200 without a message id".into(),
                },
            },
            Err(e) => Outcome::Fail {
                code: None,
                reason: format!("HTTP {status} with an unreadable body: {e}"),
            },
        };
    }
    let graph = serde_json::from_slice::<wire::ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error);
    let code = graph.as_ref().map(|g| g.code);
    let reason = match &graph {
        Some(g) => {
            let details = g
                .error_data
                .as_ref()
                .map(|d| d.details.as_str())
                .filter(|d| !d.is_empty());
            match details {
                Some(d) => format!("HTTP {status}: {} — {d}", g.message),
                None => format!("HTTP {status}: {}", g.message),
            }
        }
        None => format!(
            "HTTP {status} without a Graph error envelope: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    };
    match errors::action_for(code, status) {
        Action::Retry | Action::Wait => Outcome::Retry {
            after: retry_after,
            code,
            reason,
        },
        Action::FixInput | Action::FixAccount | Action::GiveUp => Outcome::Fail { code, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request that never left (no listener; a token that cannot be a header) is safe to
    /// send again; one that left and got no answer in time is not.
    #[tokio::test]
    async fn only_a_request_that_may_have_left_has_an_unknown_outcome() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let token = SecretString::from("t".to_string());
        let client = Client::new(&refused, "v23.0", Duration::from_secs(2));
        assert!(matches!(
            client.send_message("1", &token, "{}").await,
            Outcome::Retry { .. }
        ));
        let bad_token = SecretString::from("a\nb".to_string());
        assert!(matches!(
            client.send_message("1", &bad_token, "{}").await,
            Outcome::Retry { .. }
        ));

        // Accepts the connection and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let client = Client::new(&url, "v23.0", Duration::from_millis(200));
        let outcome = client.send_message("1", &token, "{}").await;
        assert!(
            matches!(&outcome, Outcome::Unknown { reason } if reason.contains("in time")),
            "{outcome:?}"
        );
        hold.abort();
    }

    #[test]
    fn success_and_error_envelopes() {
        let ok = br#"{"messaging_product":"whatsapp","contacts":[{"input":"+1","wa_id":"1"}],"messages":[{"id":"wamid.X","message_status":"accepted"}]}"#;
        assert_eq!(
            classify(200, ok, None),
            Outcome::Sent {
                wamid: "wamid.X".into()
            }
        );
        let throttled = br#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"error_data":{"messaging_product":"whatsapp","details":"Cloud API message throughput has been reached."},"fbtrace_id":"A"}}"#;
        assert!(matches!(
            classify(400, throttled, None),
            Outcome::Retry {
                code: Some(130429),
                ..
            }
        ));
        let undeliverable = br#"{"error":{"message":"(#131026) Message undeliverable","type":"OAuthException","code":131026,"error_data":{"details":"x"}}}"#;
        assert!(matches!(
            classify(400, undeliverable, None),
            Outcome::Fail {
                code: Some(131026),
                ..
            }
        ));
        assert!(matches!(
            classify(502, b"<html>bad gateway</html>", None),
            Outcome::Retry { code: None, .. }
        ));
        assert!(matches!(
            classify(400, b"nope", None),
            Outcome::Fail { code: None, .. }
        ));
    }
}
