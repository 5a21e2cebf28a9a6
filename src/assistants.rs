//! AI assistants: business-specific replies per customer identifier, within WhatsApp's rules.
//!
//! An assistant (`[[assistants]]`) has instructions, knowledge files, declared variables and,
//! optionally, an OpenAI-compatible model. [`Assistants::reply`] is the one path every caller
//! takes (`POST /api/v1/assistants/{name}/replies`, `ringback assistants ask`, the flow step
//! `generate_reply`):
//!
//! 1. the customer's thread with that assistant is found or created (memory per identifier);
//! 2. a hand-off keyword ("human", "agent" …) goes to a person at once;
//! 3. with a model: the request carries the instructions, the rules, the relevant knowledge,
//!    the remembered turns within the memory budget, and the tools the model may call
//!    ([`prompt`]); the answer is read strictly ([`answer`]); a failed request is retried
//!    under [`crate::retry::Backoff::model_provider`] within the assistant's deadline, a 429's
//!    `Retry-After` honoured;
//! 4. without a model: the best knowledge passage answers when its confidence reaches
//!    `min_confidence` ([`knowledge`]); it never pretends to be a language model;
//! 5. whatever fails — timeouts, 5xx, malformed answers, refusals, empty text, low
//!    confidence — the customer gets the hand-off message and the thread records the reason:
//!    never an empty reply, never a silent drop;
//! 6. the reply fits WhatsApp (at most `max_reply_chars`, split on sentences or trimmed), and
//!    the turn is stored with its usage (tokens, latency, cost when the provider reports it).
//!
//! Nothing the model writes acts: it is text for the customer, or one of the declared tools
//! (hand off, request a callback, record a declared variable).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestToolMessage, ChatCompletionRequestToolMessageContent, FunctionCall,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::assistants::AssistantSettings;
use crate::store::{RecordedReply, Store, StoreError};
use crate::time::now_ms;

pub mod answer;
pub mod auto_reply;
pub mod evaluate;
pub mod knowledge;
pub mod prompt;
pub mod provider;

use answer::Outcome;
use knowledge::Knowledge;
use provider::{ModelProvider, OpenAiCompatible, ProviderError};

/// Turns read from memory before the token budget trims them.
const MEMORY_TURNS: u32 = 60;
/// Rounds with the model per reply: a first answer that only records variables is followed
/// by one more request with the results.
const MAX_ROUNDS: usize = 2;
/// Longest question accepted (a WhatsApp text is at most 4,096 characters; API callers may
/// pass an email's text).
pub const MAX_QUESTION_CHARS: usize = 16_000;

/// One assistant, ready to answer.
pub struct Assistant {
    pub settings: AssistantSettings,
    pub knowledge: Knowledge,
    pub provider: Option<Arc<dyn ModelProvider>>,
}

/// Every configured assistant; cheap to clone.
#[derive(Clone)]
pub struct Assistants {
    pub(crate) by_name: Arc<HashMap<String, Arc<Assistant>>>,
    store: Arc<dyn Store>,
}

/// A question for an assistant.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub customer_id: String,
    pub message: String,
    pub variables: Map<String, Value>,
}

/// What it cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub total_tokens: Option<u32>,
    /// As the provider reported it (OpenRouter and some proxies do), in its unit.
    pub cost: Option<f64>,
    /// Requests made to the model (retries and second rounds included).
    pub requests: u32,
    /// The whole reply, model included, in milliseconds (to the microsecond).
    pub latency_ms: f64,
    /// Time spent waiting on the model, in milliseconds (to the microsecond: whole
    /// milliseconds would count up to one per request of the model's time as Ringback's).
    pub model_ms: f64,
}

/// Why a person takes over.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HandOff {
    /// `keyword`, `model`, `callback`, `low_confidence`, `no_knowledge`, or the model
    /// failure's code (`model_timeout`, `model_rate_limited`, `model_error`,
    /// `model_rejected`, `model_malformed`, `model_refused`, `model_empty`).
    pub code: String,
    /// In words.
    pub reason: String,
}

/// An assistant's reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// The whole reply (the parts joined by a blank line).
    pub reply: String,
    /// The messages to send, each within WhatsApp's limit.
    pub parts: Vec<String>,
    /// The customer's thread with this assistant.
    pub conversation_id: String,
    /// `model`, `knowledge` or `hand_off`.
    pub source: &'static str,
    pub handed_off: Option<HandOff>,
    /// The retrieval confidence of a knowledge answer.
    pub confidence: Option<f64>,
    /// Variables recorded by this reply.
    pub recorded: Map<String, Value>,
    /// A callback the customer asked for.
    pub callback: Option<Value>,
    pub usage: Usage,
}

/// Why no reply was made (the caller's mistake or the store's failure; a model's failure is
/// a hand-off, not an error).
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("no assistant is named \"{0}\"")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Assistants {
    /// The configured assistants, each with an OpenAI-compatible client when it names a
    /// provider.
    pub fn from_settings(
        settings: &[AssistantSettings],
        store: Arc<dyn Store>,
        http: reqwest::Client,
    ) -> Self {
        let by_name = settings
            .iter()
            .map(|s| {
                let provider = s.provider.clone().map(|p| {
                    Arc::new(OpenAiCompatible {
                        http: http.clone(),
                        settings: p,
                    }) as Arc<dyn ModelProvider>
                });
                let a = Assistant {
                    knowledge: Knowledge::from_files(&s.knowledge),
                    settings: s.clone(),
                    provider,
                };
                (s.name.clone(), Arc::new(a))
            })
            .collect();
        Self {
            by_name: Arc::new(by_name),
            store,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Assistant>> {
        self.by_name.get(name)
    }

    /// Names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Asks assistant `name`; see the module documentation for the steps.
    pub async fn reply(&self, name: &str, ask: Ask) -> Result<Reply, AskError> {
        let started = Instant::now();
        let a = self
            .get(name)
            .ok_or_else(|| AskError::NotFound(name.to_string()))?
            .clone();
        check(&a.settings, &ask)?;
        let message = ask.message.trim();
        // The customer's thread is started (or found) by the one write that records the reply;
        // only a model needs a read first, for the memory.
        let customer_id = ask.customer_id.trim();
        let mut usage = Usage::default();
        let mut recorded = Map::new();
        let mut confidence = None;
        let mut callback = None;
        let mut error = None;
        let (text, source, handed_off) = if let Some(word) = keyword(&a.settings, message) {
            hand_off(&a, "keyword", format!("the customer wrote \"{word}\""))
        } else if let Some(provider) = &a.provider {
            let memory = self
                .store
                .assistant_turns(name, customer_id, MEMORY_TURNS)
                .await?;
            let memory = prompt::within_budget(&memory, a.settings.memory_tokens);
            let asked = ask_model(
                &a,
                provider.as_ref(),
                memory,
                message,
                &ask.variables,
                &mut usage,
            )
            .await;
            match asked {
                Ok((outcome, vars)) => {
                    recorded = vars;
                    match outcome {
                        Outcome::Text(t) => (t, "model", None),
                        Outcome::HandOff { reason } => hand_off(&a, "model", reason),
                        Outcome::Callback { when, note } => {
                            callback = Some(serde_json::json!({"when": when, "note": note}));
                            hand_off(
                                &a,
                                "callback",
                                format!("the customer asked to be called back ({when})"),
                            )
                        }
                        Outcome::Nothing { code, detail } => {
                            error = Some(format!("{code}: {detail}"));
                            hand_off(&a, code, detail)
                        }
                    }
                }
                Err(e) => {
                    error = Some(e.to_string());
                    hand_off(&a, e.code(), e.to_string())
                }
            }
        } else {
            match a.knowledge.search(message, 1).into_iter().next() {
                Some(best) if best.confidence >= a.settings.min_confidence => {
                    confidence = Some(best.confidence);
                    (best.passage.answer().to_string(), "knowledge", None)
                }
                Some(best) => {
                    confidence = Some(best.confidence);
                    hand_off(
                        &a,
                        "low_confidence",
                        format!(
                            "the best knowledge passage matched with confidence {:.2}, under {:.2}",
                            best.confidence, a.settings.min_confidence
                        ),
                    )
                }
                None => hand_off(
                    &a,
                    "no_knowledge",
                    "no knowledge passage matches the question".into(),
                ),
            }
        };
        let parts = answer::fit(&text, a.settings.max_reply_chars, a.settings.long_replies);
        let reply = parts.join("\n\n");
        usage.latency_ms = millis(started.elapsed());
        let conversation_id = self
            .store
            .record_assistant_reply(&RecordedReply {
                assistant: name.to_string(),
                customer_id: customer_id.to_string(),
                new_thread_id: uuid::Uuid::now_v7().to_string(),
                at: now_ms(),
                question: message.to_string(),
                answer: reply.clone(),
                source: source.into(),
                prompt_tokens: usage.prompt_tokens.map(i64::from),
                completion_tokens: usage.completion_tokens.map(i64::from),
                cost: usage.cost,
                latency_ms: usage.latency_ms.round() as i64,
                error,
                hand_off_reason: handed_off
                    .as_ref()
                    .map(|h: &HandOff| format!("{}: {}", h.code, h.reason)),
                recorded: recorded
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect(),
            })
            .await?;
        record_metrics(name, source, handed_off.as_ref(), &usage, started.elapsed());
        Ok(Reply {
            reply,
            parts,
            conversation_id,
            source,
            handed_off,
            confidence,
            recorded,
            callback,
            usage,
        })
    }
}

/// The caller's mistakes, in words.
fn check(a: &AssistantSettings, ask: &Ask) -> Result<(), AskError> {
    let customer = ask.customer_id.trim();
    if customer.is_empty() || customer.chars().count() > 200 {
        return Err(AskError::Invalid(
            "customer_id must name the customer (a phone number, an email, a CRM id; at most 200 characters)".into(),
        ));
    }
    let message = ask.message.trim();
    if message.is_empty() {
        return Err(AskError::Invalid(
            "message is empty: there is nothing to answer".into(),
        ));
    }
    if message.chars().count() > MAX_QUESTION_CHARS {
        return Err(AskError::Invalid(format!(
            "message is longer than {MAX_QUESTION_CHARS} characters"
        )));
    }
    if let Some(unknown) = ask.variables.keys().find(|k| !a.variables.contains(k)) {
        return Err(AskError::Invalid(format!(
            "variable \"{unknown}\" is not declared by assistant \"{}\"; it declares: {}",
            a.name,
            if a.variables.is_empty() {
                "none".to_string()
            } else {
                a.variables.join(", ")
            }
        )));
    }
    Ok(())
}

/// The hand-off keyword `message` contains, as a whole word.
fn keyword<'a>(a: &'a AssistantSettings, message: &str) -> Option<&'a str> {
    let words: Vec<String> = message
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    a.hand_off_keywords
        .iter()
        .find(|k| {
            let kw: Vec<&str> = k.split_whitespace().collect();
            words.windows(kw.len().max(1)).any(|w| w == kw.as_slice())
        })
        .map(String::as_str)
}

fn hand_off(a: &Assistant, code: &str, reason: String) -> (String, &'static str, Option<HandOff>) {
    (
        a.settings.hand_off_message.clone(),
        "hand_off",
        Some(HandOff {
            code: code.into(),
            reason,
        }),
    )
}

/// Asks the model, with retries within the deadline and a second round when the first answer
/// only recorded variables. Returns the outcome and the variables recorded.
async fn ask_model(
    a: &Assistant,
    provider: &dyn ModelProvider,
    memory: &[crate::store::AssistantTurn],
    message: &str,
    variables: &Map<String, Value>,
    usage: &mut Usage,
) -> Result<(Outcome, Map<String, Value>), ProviderError> {
    let p = a.settings.provider.as_ref().expect("a provider's settings");
    let deadline = Instant::now() + a.settings.timeout;
    let system = prompt::system(&a.settings, &a.knowledge, message, variables);
    let tools = prompt::tools(&a.settings);
    let mut extra = vec![prompt::turn("user", message)];
    let mut recorded = Map::new();
    for _round in 0..MAX_ROUNDS {
        let request = prompt::request(p, system.clone(), memory, extra.clone(), tools.clone());
        let completion = with_retries(provider, &request, deadline, usage).await?;
        if let Some(u) = &completion.response.usage {
            usage.prompt_tokens = Some(usage.prompt_tokens.unwrap_or(0) + u.prompt_tokens);
            usage.completion_tokens =
                Some(usage.completion_tokens.unwrap_or(0) + u.completion_tokens);
            usage.total_tokens = Some(usage.total_tokens.unwrap_or(0) + u.total_tokens);
        }
        if let Some(c) = completion.cost {
            usage.cost = Some(usage.cost.unwrap_or(0.0) + c);
        }
        let Some(choice) = completion.response.choices.into_iter().next() else {
            return Err(ProviderError::Malformed("the answer has no choices".into()));
        };
        let reading = answer::read(&choice.message, &a.settings.variables);
        for (k, v) in &reading.recorded {
            recorded.insert(k.clone(), Value::String(v.clone()));
        }
        if !reading.ignored.is_empty() {
            tracing::warn!(assistant = %a.settings.name, ignored = ?reading.ignored, "model tool calls ignored");
        }
        if let Some(outcome) = reading.outcome {
            return Ok((outcome, recorded));
        }
        // Only variables were recorded: give the model the results and ask for the text.
        extra.push(ChatCompletionRequestMessage::Assistant(
            ChatCompletionRequestAssistantMessage {
                tool_calls: Some(
                    choice
                        .message
                        .tool_calls
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|c| match c {
                            ChatCompletionMessageToolCalls::Function(f) => {
                                Some(ChatCompletionMessageToolCalls::Function(
                                    ChatCompletionMessageToolCall {
                                        id: f.id,
                                        function: FunctionCall {
                                            name: f.function.name,
                                            arguments: f.function.arguments,
                                        },
                                    },
                                ))
                            }
                            ChatCompletionMessageToolCalls::Custom(_) => None,
                        })
                        .collect(),
                ),
                ..Default::default()
            },
        ));
        for (id, result) in reading.results {
            extra.push(ChatCompletionRequestMessage::Tool(
                ChatCompletionRequestToolMessage {
                    content: ChatCompletionRequestToolMessageContent::Text(result),
                    tool_call_id: id,
                },
            ));
        }
    }
    Ok((
        Outcome::Nothing {
            code: "model_empty",
            detail: "the model recorded variables but wrote no reply".into(),
        },
        recorded,
    ))
}

/// One request, retried while the error is retryable and the deadline allows.
pub(crate) async fn with_retries(
    provider: &dyn ModelProvider,
    request: &async_openai::types::chat::CreateChatCompletionRequest,
    deadline: Instant,
    usage: &mut Usage,
) -> Result<provider::Completion, ProviderError> {
    let mut backoff = crate::retry::Backoff::model_provider();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(50) {
            return Err(ProviderError::Timeout(Duration::ZERO));
        }
        let asked = Instant::now();
        usage.requests += 1;
        let result = provider.complete(request, left).await;
        usage.model_ms += millis(asked.elapsed());
        let e = match result {
            Ok(c) => return Ok(c),
            Err(e) if !e.retryable() => return Err(e),
            Err(e) => e,
        };
        let wait = match &e {
            ProviderError::RateLimited {
                retry_after: Some(d),
            } => *d,
            _ => backoff.next_delay(),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if wait + Duration::from_millis(50) >= left {
            return Err(e);
        }
        tracing::info!(error = %e, wait_ms = wait.as_millis() as u64, "model request failed; asking again");
        tokio::time::sleep(wait).await;
    }
}

/// Milliseconds to the microsecond.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

fn record_metrics(
    name: &str,
    source: &'static str,
    handed_off: Option<&HandOff>,
    usage: &Usage,
    elapsed: Duration,
) {
    let outcome = handed_off.map_or(source.to_string(), |h| format!("hand_off:{}", h.code));
    metrics::counter!("ringback_assistant_replies_total", "assistant" => name.to_string(), "outcome" => outcome)
        .increment(1);
    for (kind, n) in [
        ("prompt", usage.prompt_tokens),
        ("completion", usage.completion_tokens),
    ] {
        if let Some(n) = n {
            metrics::counter!("ringback_assistant_tokens_total", "assistant" => name.to_string(), "kind" => kind)
                .increment(u64::from(n));
        }
    }
    let overhead = elapsed.saturating_sub(Duration::from_secs_f64(usage.model_ms / 1000.0));
    metrics::histogram!("ringback_assistant_reply_seconds", "assistant" => name.to_string())
        .record(elapsed.as_secs_f64());
    metrics::histogram!("ringback_assistant_overhead_seconds", "assistant" => name.to_string())
        .record(overhead.as_secs_f64());
}

#[cfg(test)]
mod tests;
