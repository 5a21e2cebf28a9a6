//! Assistants' memory: one thread per (assistant, customer identifier), its turns with the
//! usage each reply cost, and the variables the assistant recorded (see [`crate::assistants`]).

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::StoreError;
use crate::time::Millis;

/// One customer's conversation with one assistant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssistantThread {
    pub id: String,
    pub assistant: String,
    /// A phone number, an email, a CRM id: whatever the caller identifies the customer by.
    pub customer_id: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// When the last hand-off to a person happened, and why.
    pub handed_off_at: Option<Millis>,
    pub hand_off_reason: Option<String>,
    /// What the assistant recorded (declared variables only), as a JSON object.
    pub variables: Value,
}

/// One remembered turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssistantTurn {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    pub at: Millis,
}

/// A reply to record: the question, the answer, what it cost, and what changed on the thread.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedReply {
    pub thread_id: String,
    pub at: Millis,
    pub question: String,
    pub answer: String,
    /// `model`, `knowledge` or `hand_off`.
    pub source: String,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub cost: Option<f64>,
    pub latency_ms: i64,
    /// Why the model could not answer, if it could not.
    pub error: Option<String>,
    pub hand_off_reason: Option<String>,
    /// Variables recorded by this reply, merged into the thread's.
    pub recorded: Vec<(String, String)>,
}

#[async_trait]
pub trait AssistantStore: Send + Sync {
    /// The thread of (`assistant`, `customer_id`), created if new.
    async fn assistant_thread(
        &self,
        assistant: &str,
        customer_id: &str,
        now: Millis,
    ) -> Result<AssistantThread, StoreError>;

    /// The thread's last `limit` turns, oldest first.
    async fn assistant_turns(
        &self,
        thread_id: &str,
        limit: u32,
    ) -> Result<Vec<AssistantTurn>, StoreError>;

    /// Records a question and its answer in one transaction, with the thread's new state.
    async fn record_assistant_reply(&self, reply: &RecordedReply) -> Result<(), StoreError>;
}
