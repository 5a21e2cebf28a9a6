//! When a conversation ends on a number whose assistant declares `extract` (a JSON schema), the
//! assistant reads the transcript and extracts those variables; `conversation.ended` carries
//! them as `extracted_variables`.
//!
//! The tracker does not wait on a model: it holds the event (`assistant_endings`) and goes on.
//! The evaluator takes held endings, asks the model for JSON under the schema
//! (`response_format: json_schema`), checks the answer against the schema (the `jsonschema`
//! crate), asks once more with the reason when it does not match, and then journals
//! `Fact::Evaluated` — the variables, or the error — in the transaction that lets the held
//! ending go. The tracker publishes `conversation.ended` from that fact: always once, with the
//! variables or with `extraction_error`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_openai::types::chat::{ResponseFormat, ResponseFormatJsonSchema};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::{Assistant, Assistants, prompt};
use crate::events::Fact;
use crate::shutdown::Shutdown;
use crate::store::{HeldEnding, Store, StoreError};

/// Endings evaluated at once.
const AT_ONCE: u32 = 32;

/// Evaluates held endings.
#[derive(Clone)]
pub struct Evaluator {
    pub store: Arc<dyn Store>,
    pub assistants: Assistants,
    /// Published events: an ending is held while a publication is written.
    pub published: watch::Sender<i64>,
}

impl Evaluator {
    pub async fn run(self, mut shutdown: Shutdown) {
        if !self
            .assistants
            .by_name
            .values()
            .any(|a| a.settings.extract.is_some())
        {
            return;
        }
        let mut published = self.published.subscribe();
        let mut backoff = crate::retry::Backoff::store_write();
        loop {
            let wait = match self.pass().await {
                Ok(n) if n >= AT_ONCE as usize => Duration::ZERO,
                Ok(_) => {
                    backoff.reset();
                    Duration::from_secs(5)
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "Evaluating ended conversations failed; retrying.");
                    backoff.next_delay()
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = published.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Evaluates the held endings (at once: each mostly waits on its model).
    async fn pass(&self) -> Result<usize, StoreError> {
        let held = self.store.held_endings(AT_ONCE).await?;
        let mut work = tokio::task::JoinSet::new();
        for h in held.iter().cloned() {
            let me = self.clone();
            work.spawn(async move { me.evaluate(h).await });
        }
        while let Some(done) = work.join_next().await {
            if let Ok(Err(e)) = done {
                return Err(e);
            }
        }
        Ok(held.len())
    }

    async fn evaluate(&self, h: HeldEnding) -> Result<(), StoreError> {
        let transcript = h.payload["transcript_text"].as_str().unwrap_or_default();
        let (variables, error) = match self.assistants.get(&h.assistant) {
            Some(a) => match extract(a, transcript).await {
                Ok(vars) => (Value::Object(vars), None),
                Err(e) => (json!({}), Some(e)),
            },
            None => (
                json!({}),
                Some(format!(
                    "assistant \"{}\" is no longer configured",
                    h.assistant
                )),
            ),
        };
        let outcome = if error.is_some() { "error" } else { "ok" };
        metrics::counter!("ringback_assistant_extractions_total", "assistant" => h.assistant.clone(), "outcome" => outcome)
            .increment(1);
        let fact = Fact::Evaluated {
            conversation_id: h.conversation_id.clone(),
            payload: h.payload,
            variables,
            error,
            at: h.at,
        };
        self.store.finish_ending(&h.conversation_id, &fact).await
    }
}

/// The declared variables of `transcript`, checked against the schema; an answer that does
/// not match is asked for once more, with the reason.
pub async fn extract(a: &Assistant, transcript: &str) -> Result<Map<String, Value>, String> {
    let (Some(schema), Some(p), Some(provider)) =
        (&a.settings.extract, &a.settings.provider, &a.provider)
    else {
        return Err("the assistant has no extraction schema or no model".into());
    };
    let validator = jsonschema::validator_for(schema).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + a.settings.timeout;
    let system = format!(
        "Read this WhatsApp conversation between a customer and the business and extract the \
         variables of the JSON schema. Answer with one JSON object only. Leave out what the \
         conversation does not say.\n\nSchema:\n{schema}"
    );
    let mut messages = vec![prompt::turn("user", transcript)];
    let mut usage = super::Usage::default();
    for attempt in 0..2 {
        let mut request = prompt::request(p, system.clone(), &[], messages.clone(), Vec::new());
        request.response_format = Some(ResponseFormat::JsonSchema {
            json_schema: ResponseFormatJsonSchema {
                description: None,
                name: "extracted_variables".into(),
                schema: schema.clone(),
                strict: None,
            },
        });
        let completion = super::with_retries(provider.as_ref(), &request, deadline, &mut usage)
            .await
            .map_err(|e| e.to_string())?;
        let content = completion
            .response
            .choices
            .first()
            .and_then(|c| c.message.content.clone())
            .unwrap_or_default();
        let why = match serde_json::from_str::<Value>(content.trim()) {
            Ok(Value::Object(vars)) => {
                let value = Value::Object(vars.clone());
                match validator.validate(&value) {
                    Ok(()) => return Ok(vars),
                    Err(e) => format!("it does not match the schema: {e}"),
                }
            }
            Ok(_) => "it is not a JSON object".to_string(),
            Err(e) => format!("it is not JSON ({e})"),
        };
        if attempt == 1 {
            return Err(format!(
                "the model's extraction was invalid twice; the last time {why}"
            ));
        }
        messages.push(prompt::turn("assistant", &content));
        messages.push(prompt::turn(
            "user",
            &format!("That answer cannot be used: {why}. Answer again with one JSON object matching the schema."),
        ));
    }
    unreachable!("two attempts return")
}
