//! The journal of facts, the conversations the tracker builds from it, and the published events.

use async_trait::async_trait;
use serde_json::Value;

use super::{Fence, StoreError};
use crate::conversation::{Conversation, Line, OutboundMessage};
use crate::events::{Event, Fact, JournalEntry};
use crate::time::Millis;

/// An event to publish, with the endpoints it is to be delivered to.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: String,
    pub at: Millis,
    pub conversation_id: Option<String>,
    pub data: Value,
    /// The webhook endpoints whose filter takes this event: one delivery each.
    pub endpoints: Vec<String>,
}

/// A line whose delivery state moved on.
#[derive(Debug, Clone, PartialEq)]
pub struct LineUpdate {
    pub message_id: String,
    pub wamid: Option<String>,
    pub status: String,
    pub status_at: Millis,
}

/// What the tracker publishes from one read of the journal, written in one transaction: the
/// journal rows it consumed go, so a crash either publishes all of it or none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Publication {
    /// The last journal row consumed, if any.
    pub upto: Option<i64>,
    /// Conversations started or changed, written whole.
    pub conversations: Vec<Conversation>,
    pub new_lines: Vec<Line>,
    pub line_updates: Vec<LineUpdate>,
    pub events: Vec<NewEvent>,
}

impl Publication {
    pub fn is_empty(&self) -> bool {
        self.upto.is_none() && self.conversations.is_empty() && self.events.is_empty()
    }
}

/// Which conversations a list shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationQuery {
    /// `Some(true)`: open only; `Some(false)`: ended only.
    pub open: Option<bool>,
    pub sender_id: Option<String>,
    pub contact: Option<String>,
    pub started_after: Option<Millis>,
    pub started_before: Option<Millis>,
    /// Conversations that started before this one in the list's order (newest first).
    pub before: Option<(Millis, String)>,
    /// Part of the customer's number or WhatsApp name (case-insensitive): the console's
    /// search box.
    pub search: Option<String>,
    pub limit: u32,
}

/// Conversations, the journal and events.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Notified after every commit that journaled facts: the tracker waits on it.
    fn journaled(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// Facts not yet published, oldest first.
    async fn journal(&self, limit: u32) -> Result<Vec<JournalEntry>, StoreError>;
    /// Writes one fact on its own (a person closing a conversation).
    async fn record_fact(&self, fact: &Fact) -> Result<(), StoreError>;
    /// The open conversations of these (sender, contact) pairs.
    async fn open_conversations(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<Conversation>, StoreError>;
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError>;
    /// Newest first.
    async fn conversations(&self, q: &ConversationQuery) -> Result<Vec<Conversation>, StoreError>;
    /// A conversation's messages in order.
    async fn transcript(&self, id: &str) -> Result<Vec<Line>, StoreError>;
    /// The lines holding these message ids (Ringback's for ours, the wamid for a customer's).
    async fn lines_of_messages(&self, ids: &[String]) -> Result<Vec<Line>, StoreError>;
    /// Our messages among these ids or wamids.
    async fn outbound_messages(
        &self,
        ids: &[String],
        wamids: &[String],
    ) -> Result<Vec<OutboundMessage>, StoreError>;
    /// Our messages to `to` from `sender_id` created in `[from, until]`, oldest first.
    async fn messages_to(
        &self,
        sender_id: &str,
        to: &str,
        from: Millis,
        until: Millis,
    ) -> Result<Vec<OutboundMessage>, StoreError>;
    /// Open conversations quiet since before `before`, oldest first.
    async fn idle_conversations(
        &self,
        before: Millis,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError>;
    /// Writes a publication in one transaction (fenced by the leader lease when given);
    /// returns the published events' ids in order.
    async fn publish(&self, p: Publication, fence: Option<&Fence>) -> Result<Vec<i64>, StoreError>;
    /// Published events after `after`, oldest first, of `types` (all when empty).
    async fn events_after(
        &self,
        after: i64,
        types: &[String],
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;
    async fn event(&self, id: i64) -> Result<Option<Event>, StoreError>;
}
