//! The model provider boundary: one chat-completions request, one answer or one classified
//! error. [`OpenAiCompatible`] talks to any OpenAI-compatible endpoint (OpenAI, Azure OpenAI's
//! v1 API, OpenRouter, Groq, Ollama, vLLM, llama.cpp, LM Studio); the sandbox serves the same
//! wire format at `/v1/chat/completions` (`crate::sandbox::models`), so tests and the offline
//! demo use this same client.
//!
//! The wire types are async-openai's. The request goes through reqwest directly because the
//! crate's client turns an error answer into a value without its headers, and a 429's
//! `Retry-After` is what tells us how long to wait; retries themselves are the caller's, under
//! Ringback's one policy ([`crate::retry`]).

use std::time::Duration;

use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};
use async_trait::async_trait;
use secrecy::ExposeSecret;

use crate::config::assistants::{Auth, ProviderSettings};

/// What went wrong asking the model, classified for the retry decision.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the provider is rate limiting (429){}", .retry_after.map(|d| format!(", retry after {d:?}")).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("the provider failed ({status}): {message}")]
    Server { status: u16, message: String },
    /// A 4xx other than 408/409/429, or a 429 for an exhausted quota: asking again will not help.
    #[error("the provider refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("the provider's answer is not a chat completion: {0}")]
    Malformed(String),
}

impl ProviderError {
    /// Worth asking again (the OpenAI SDKs' rule: 408, 409, 429, 5xx, connection errors).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Timeout(_)
                | ProviderError::Unreachable(_)
                | ProviderError::RateLimited { .. }
                | ProviderError::Server { .. }
        )
    }

    /// A short code for metrics and the hand-off reason.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::Timeout(_) => "model_timeout",
            ProviderError::Unreachable(_) => "model_unreachable",
            ProviderError::RateLimited { .. } => "model_rate_limited",
            ProviderError::Server { .. } => "model_error",
            ProviderError::Rejected { .. } => "model_rejected",
            ProviderError::Malformed(_) => "model_malformed",
        }
    }
}

/// A completion with what the provider reported beyond the standard usage.
#[derive(Debug, Clone)]
pub struct Completion {
    pub response: CreateChatCompletionResponse,
    /// `usage.cost`, which OpenRouter and some proxies report (in their currency unit).
    pub cost: Option<f64>,
}

/// A chat-completions endpoint.
#[async_trait]
pub trait ModelProvider: Send + Sync {
    /// One request, within `timeout`.
    async fn complete(
        &self,
        request: &CreateChatCompletionRequest,
        timeout: Duration,
    ) -> Result<Completion, ProviderError>;
}

/// Any OpenAI-compatible endpoint.
pub struct OpenAiCompatible {
    pub http: reqwest::Client,
    pub settings: ProviderSettings,
}

#[async_trait]
impl ModelProvider for OpenAiCompatible {
    async fn complete(
        &self,
        request: &CreateChatCompletionRequest,
        timeout: Duration,
    ) -> Result<Completion, ProviderError> {
        let mut req = self
            .http
            .post(&self.settings.url)
            .json(request)
            .timeout(timeout);
        if let Some(key) = &self.settings.api_key {
            req = match self.settings.auth {
                Auth::Bearer => req.bearer_auth(key.expose_secret()),
                Auth::ApiKeyHeader => req.header("api-key", key.expose_secret()),
            };
        }
        let response = req.send().await.map_err(|e| transport(&e, timeout))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(|e| transport(&e, timeout))?;
        if !status.is_success() {
            return Err(classify(status.as_u16(), retry_after, &body));
        }
        parse(&body)
    }
}

fn transport(e: &reqwest::Error, timeout: Duration) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout(timeout)
    } else {
        // Without the URL: a provider's URL may carry a key in its query (Azure's classic API).
        ProviderError::Unreachable(e.without_url_string())
    }
}

trait WithoutUrl {
    fn without_url_string(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_string(&self) -> String {
        let e = std::error::Error::source(self)
            .map(ToString::to_string)
            .unwrap_or_else(|| "connection failed".into());
        clip(&e, 200)
    }
}

/// `Retry-After` in seconds, or `retry-after-ms` (OpenAI's), when present and sane.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let read = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    // A value past an hour is not a wait a reply can make: capped (the deadline decides).
    let capped = |secs: f64| Duration::try_from_secs_f64(secs.min(3600.0)).ok();
    read("retry-after-ms")
        .and_then(|ms| capped(ms / 1000.0))
        .or_else(|| read("retry-after").and_then(capped))
}

/// An error answer, classified. The message comes from `{error:{message, code}}` when the
/// body is OpenAI's error shape, else from the body's first characters.
fn classify(status: u16, retry_after: Option<Duration>, body: &[u8]) -> ProviderError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let error = json.as_ref().and_then(|j| j.get("error"));
    let text = |k: &str| error.and_then(|e| e.get(k)).and_then(|v| v.as_str());
    let message = clip(
        &text("message")
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string()),
        300,
    );
    let quota = [text("code"), text("type")].into_iter().flatten().any(|c| {
        c == "insufficient_quota"
            || c.contains("balance")
            || c.contains("spend_limit")
            || c.contains("quota")
    });
    match status {
        429 if quota => ProviderError::Rejected { status, message },
        429 => ProviderError::RateLimited { retry_after },
        408 | 409 | 500..=599 => ProviderError::Server { status, message },
        _ => ProviderError::Rejected { status, message },
    }
}

/// At most `max` characters of `s` (a provider's error page is not a log line).
fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn parse(body: &[u8]) -> Result<Completion, ProviderError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::Malformed(format!("not JSON ({e})")))?;
    let cost = value
        .pointer("/usage/cost")
        .and_then(serde_json::Value::as_f64);
    let response: CreateChatCompletionResponse =
        serde_json::from_value(value).map_err(|e| ProviderError::Malformed(e.to_string()))?;
    Ok(Completion { response, cost })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_429s_are_not_retried_and_rate_limits_are() {
        let quota = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert!(!classify(429, None, quota).retryable());
        let limited = br#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            classify(429, Some(Duration::from_secs(2)), limited),
            ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert!(classify(503, None, b"upstream down").retryable());
        assert!(!classify(401, None, b"{}").retryable());
    }

    #[test]
    fn odd_answers_do_not_panic() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "1e20".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3600)));
        let page = format!("{}’ upstream", "x".repeat(299));
        let e = classify(502, None, page.as_bytes());
        assert!(matches!(e, ProviderError::Server { status: 502, .. }));
    }

    #[test]
    fn retry_after_reads_seconds_and_openai_milliseconds() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
    }

    #[test]
    fn an_answer_missing_choices_is_malformed_and_usage_cost_is_kept() {
        assert!(matches!(
            parse(b"{\"id\":\"x\"}"),
            Err(ProviderError::Malformed(_))
        ));
        assert!(matches!(parse(b"<html>"), Err(ProviderError::Malformed(_))));
        let ok = br#"{"id":"c","object":"chat.completion","created":1,"model":"m",
            "choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"cost":0.0002}}"#;
        let c = parse(ok).unwrap();
        assert_eq!(c.cost, Some(0.0002));
        assert_eq!(c.response.choices[0].message.content.as_deref(), Some("hi"));
    }
}
