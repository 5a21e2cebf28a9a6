//! Business Calling endpoints: `/{phone-number-id}/calls` (connect, pre_accept, accept,
//! reject, terminate) and `/{phone-number-id}/settings`. Unlike sends, these are interactive:
//! the caller wants Meta's answer or error now, so they return it rather than an outbox
//! [`super::Outcome`].

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::Client;

/// Meta's error, or why it could not be reached.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}{}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
pub struct GraphError {
    pub http_status: Option<u16>,
    pub code: Option<i64>,
    pub message: String,
}

impl Client {
    /// `POST /{phone-number-id}/calls` with a prepared body.
    pub async fn call_action(
        &self,
        phone_number_id: &str,
        token: &SecretString,
        body: &Value,
    ) -> Result<Value, GraphError> {
        self.graph(
            reqwest::Method::POST,
            &format!("{phone_number_id}/calls"),
            token,
            Some(body),
        )
        .await
    }

    /// `GET /{phone-number-id}/settings`.
    pub async fn number_settings(
        &self,
        phone_number_id: &str,
        token: &SecretString,
    ) -> Result<Value, GraphError> {
        self.graph(
            reqwest::Method::GET,
            &format!("{phone_number_id}/settings"),
            token,
            None,
        )
        .await
    }

    /// `POST /{phone-number-id}/settings` (one feature object per request, e.g. `calling`).
    pub async fn update_number_settings(
        &self,
        phone_number_id: &str,
        token: &SecretString,
        body: &Value,
    ) -> Result<Value, GraphError> {
        self.graph(
            reqwest::Method::POST,
            &format!("{phone_number_id}/settings"),
            token,
            Some(body),
        )
        .await
    }

    pub(super) async fn graph(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &SecretString,
        body: Option<&Value>,
    ) -> Result<Value, GraphError> {
        let url = format!("{}/{}/{path}", self.base, self.version);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(token.expose_secret());
        if let Some(b) = body {
            request = request.json(b);
        }
        let unreachable = |e: reqwest::Error| GraphError {
            http_status: None,
            code: None,
            message: format!("could not reach {url}: {e}"),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(unreachable)?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        Err(GraphError {
            http_status: Some(status),
            code: value.pointer("/error/code").and_then(Value::as_i64),
            message: value
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {status} from {url}")),
        })
    }
}
