//! An OpenAI-compatible model on the sandbox port: `POST /v1/chat/completions` with the real
//! request and response schema, so assistants run offline (the demo) and their tests script
//! what the model answers, including faults and tool calls.
//!
//! Unscripted, the sandbox model is a plain stand-in, not a language model: it answers with
//! the knowledge passage in its system prompt that shares the most words with the question,
//! and calls `hand_off` when none does. Scripted (`POST /sandbox/models/script`), each request
//! takes the next answer: text, tool calls, a refusal, an HTTP error (with `Retry-After`), a
//! malformed body, or a delay. `GET /sandbox/models/requests` shows what was asked.

use std::collections::VecDeque;
use std::time::Duration;

use async_openai::types::chat::CreateChatCompletionRequest;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Sandbox;
use crate::assistants::knowledge::terms;

/// Requests kept for inspection.
const KEEP_REQUESTS: usize = 200;

/// One scripted answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scripted {
    /// Text of the answer.
    #[serde(default)]
    pub content: Option<String>,
    /// Tool calls: `{name, arguments}` (arguments an object or a string).
    #[serde(default)]
    pub tool_calls: Vec<ScriptedCall>,
    #[serde(default)]
    pub refusal: Option<String>,
    /// An HTTP error status instead of an answer.
    #[serde(default)]
    pub status: Option<u16>,
    /// The error body's `error` object (OpenAI's shape) for `status`.
    #[serde(default)]
    pub error: Option<Value>,
    /// `Retry-After`, in seconds, with `status`.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// A raw body sent as is with 200 (a malformed answer).
    #[serde(default)]
    pub raw: Option<String>,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: u64,
    /// Reported as `usage.cost`.
    #[serde(default)]
    pub cost: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedCall {
    pub name: String,
    #[serde(default)]
    pub arguments: Value,
}

/// What the sandbox model holds.
#[derive(Debug, Default)]
pub struct Models {
    script: VecDeque<Scripted>,
    requests: VecDeque<Value>,
    served: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptBody {
    pub answers: Vec<Scripted>,
    /// Drop answers still queued first.
    #[serde(default)]
    pub replace: bool,
}

/// `POST /sandbox/models/script`: queue answers.
pub async fn script(State(sb): State<Sandbox>, Json(body): Json<ScriptBody>) -> Response {
    let mut m = sb.models.lock().expect("models lock");
    if body.replace {
        m.script.clear();
    }
    m.script.extend(body.answers);
    Json(json!({"queued": m.script.len()})).into_response()
}

/// `GET /sandbox/models/requests`: the requests received, oldest first.
pub async fn requests(State(sb): State<Sandbox>) -> Response {
    let m = sb.models.lock().expect("models lock");
    Json(json!({"served": m.served, "requests": m.requests})).into_response()
}

fn openai_error(status: StatusCode, message: &str, kind: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": null}})),
    )
        .into_response()
}

/// `POST /v1/chat/completions`.
pub async fn complete(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let request: CreateChatCompletionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return openai_error(
                StatusCode::BAD_REQUEST,
                &format!("the body is not a chat completion request: {e}"),
                "invalid_request_error",
            );
        }
    };
    if request.messages.is_empty() {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "messages must hold at least one message",
            "invalid_request_error",
        );
    }
    let raw: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let scripted = {
        let mut m = sb.models.lock().expect("models lock");
        m.served += 1;
        m.requests.push_back(raw.clone());
        while m.requests.len() > KEEP_REQUESTS {
            m.requests.pop_front();
        }
        m.script.pop_front()
    };
    let s = scripted.unwrap_or_else(|| unscripted(&raw));
    if s.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(s.delay_ms)).await;
    }
    if let Some(status) = s.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let error = s.error.unwrap_or_else(|| {
            json!({"message": format!("scripted {status}"), "type": "server_error", "param": null, "code": null})
        });
        let mut r = (status, Json(json!({ "error": error }))).into_response();
        if let Some(secs) = s.retry_after {
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().expect("a number"));
        }
        return r;
    }
    if let Some(raw) = s.raw {
        return (StatusCode::OK, [("content-type", "application/json")], raw).into_response();
    }
    let prompt_tokens: usize = raw["messages"]
        .as_array()
        .map(|ms| ms.iter().map(|m| m.to_string().len() / 4).sum())
        .unwrap_or(0);
    let calls: Vec<Value> = s
        .tool_calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let arguments = match &c.arguments {
                Value::String(s) => s.clone(),
                Value::Null => "{}".into(),
                other => other.to_string(),
            };
            json!({"id": format!("call_{i}"), "type": "function",
                   "function": {"name": c.name, "arguments": arguments}})
        })
        .collect();
    let completion_tokens = s.content.as_deref().map_or(1, |c| c.len() / 4 + 1);
    let mut message = json!({"role": "assistant", "content": s.content});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if let Some(r) = &s.refusal {
        message["refusal"] = json!(r);
    }
    let finish = if message.get("tool_calls").is_some() {
        "tool_calls"
    } else {
        "stop"
    };
    let mut usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                           "total_tokens": prompt_tokens + completion_tokens});
    if let Some(c) = s.cost {
        usage["cost"] = json!(c);
    }
    Json(json!({
        "id": format!("chatcmpl-sandbox-{}", uuid::Uuid::now_v7().simple()),
        "object": "chat.completion",
        "created": crate::time::now_ms() / 1000,
        "model": request.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }))
    .into_response()
}

/// The stand-in answer: the system prompt's knowledge passage sharing the most words with the
/// last user message (at least two), else a hand-off; `{}` when JSON is asked for.
fn unscripted(request: &Value) -> Scripted {
    if request.get("response_format").is_some() {
        // Structured output asked for: an object that says nothing.
        return Scripted {
            content: Some("{}".into()),
            ..Default::default()
        };
    }
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let text = |m: &Value| m["content"].as_str().unwrap_or_default().to_string();
    let system = messages
        .iter()
        .find(|m| m["role"] == "system")
        .map(text)
        .unwrap_or_default();
    let question = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(text)
        .unwrap_or_default();
    let asked = terms(&question);
    let best = system
        .split_once("\nKnowledge:\n")
        .map(|(_, k)| k)
        .unwrap_or_default()
        .split("\n---\n")
        .map(|p| {
            let words = terms(p);
            (asked.iter().filter(|t| words.contains(t)).count(), p)
        })
        .max_by_key(|(n, _)| *n);
    match best {
        Some((n, passage)) if n >= 2.min(asked.len()).max(1) => Scripted {
            content: Some(
                passage
                    .split_once('\n')
                    .map_or(passage, |(_, body)| body)
                    .trim()
                    .to_string(),
            ),
            ..Default::default()
        },
        _ => Scripted {
            tool_calls: vec![ScriptedCall {
                name: "hand_off".into(),
                arguments: json!({"reason": "the sandbox model found nothing in the knowledge"}),
            }],
            ..Default::default()
        },
    }
}
