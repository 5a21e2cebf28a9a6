//! Assistants' memory: one thread per (assistant, customer identifier), its turns with the
//! usage each reply cost, and the variables the assistant recorded (see [`crate::assistants`]).

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::StoreError;
use crate::time::Millis;

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
    pub assistant: String,
    pub customer_id: String,
    /// The id the thread gets if this reply starts it (if it exists, its id stays).
    pub new_thread_id: String,
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

/// A `conversation.ended` waiting for its extracted variables.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldEnding {
    pub conversation_id: String,
    pub assistant: String,
    pub at: Millis,
    /// The event's payload, without the extraction.
    pub payload: Value,
}

/// See [`AutoReplyPause::covers`].
const OPENED_BY_THE_PAUSING_MESSAGE_MS: Millis = 60_000;

/// Auto-reply paused for one customer of one number.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoReplyPause {
    pub sender_id: String,
    pub contact: String,
    /// The conversation it pauses; `None` when none was open (then: those started by `at`).
    pub conversation_id: Option<String>,
    pub at: Millis,
    pub reason: String,
}

impl AutoReplyPause {
    /// Whether it pauses a conversation (`id`, started at `started_at`). Without a
    /// conversation (none was open: a person's template opens one), it covers those started
    /// by a minute after the pause — the one the person's message opens starts when Meta
    /// accepts that message, seconds later.
    pub fn covers(&self, id: &str, started_at: Millis) -> bool {
        match &self.conversation_id {
            Some(paused) => paused == id,
            None => started_at <= self.at + OPENED_BY_THE_PAUSING_MESSAGE_MS,
        }
    }
}

#[async_trait]
pub trait AssistantStore: Send + Sync {
    /// The last `limit` turns of the customer's thread with `assistant`, oldest first (one
    /// read, no thread lookup first).
    async fn assistant_turns(
        &self,
        assistant: &str,
        customer_id: &str,
        limit: u32,
    ) -> Result<Vec<AssistantTurn>, StoreError>;

    /// Records a question and its answer in one transaction, with the thread's new state
    /// (starting the thread if it is the customer's first question); returns the thread's id.
    /// One write per reply: on SQLite it joins the writer thread's group commits, so a
    /// thousand replies finishing together do not queue a thousand commits in front of
    /// webhooks.
    async fn record_assistant_reply(&self, reply: &RecordedReply) -> Result<String, StoreError>;

    /// Auto-reply stops for (`sender_id`, `contact`): for `conversation_id`, or with none,
    /// for conversations that started by `at` (the latest pause wins).
    async fn pause_auto_reply(&self, pause: &AutoReplyPause) -> Result<(), StoreError>;

    /// The latest pause of (`sender_id`, `contact`).
    async fn auto_reply_pause(
        &self,
        sender_id: &str,
        contact: &str,
    ) -> Result<Option<AutoReplyPause>, StoreError>;

    /// The last event the auto-replier finished with (the newest event, the first time).
    async fn auto_reply_cursor(&self) -> Result<Option<i64>, StoreError>;

    async fn set_auto_reply_cursor(&self, event_id: i64) -> Result<(), StoreError>;

    /// Holds a conversation's `conversation.ended` until its variables are extracted (once:
    /// a second hold of the same conversation changes nothing).
    async fn hold_ending(&self, ending: &HeldEnding) -> Result<(), StoreError>;

    /// Held endings, oldest first.
    async fn held_endings(&self, limit: u32) -> Result<Vec<HeldEnding>, StoreError>;

    /// Journals `fact` (a [`crate::events::Fact::Evaluated`]) and marks the held ending
    /// evaluated, in one transaction (marked rows go after a week).
    async fn finish_ending(
        &self,
        conversation_id: &str,
        fact: &crate::events::Fact,
    ) -> Result<(), StoreError>;
}
