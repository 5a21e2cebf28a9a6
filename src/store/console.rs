//! The web console's people and sessions, and the figures of its Today page.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;
use crate::events::Event;
use crate::time::Millis;

/// A person who signs in to the console.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    /// `admin` or `agent` ([`crate::users::Role`]).
    pub role: String,
    pub created_at: Millis,
    pub disabled_at: Option<Millis>,
}

/// A sign-in as stored: the cookie's token is only known by its hash.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: String,
    pub user_id: String,
    pub csrf: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A live session and whose it is.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub csrf: String,
    pub expires_at: Millis,
}

/// How many events of one type were published in one period.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityCount {
    pub kind: String,
    /// The period's start (unix milliseconds, a multiple of the period's length).
    pub bucket: Millis,
    pub count: u64,
}

/// The console's people and sessions, and what its pages count.
#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Stores a user with the hash of their password; `false` when the email is taken.
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<bool, StoreError>;
    /// Every user, oldest first.
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// A user (disabled ones too) and their password hash, by email.
    async fn user_credentials(&self, email: &str) -> Result<Option<(User, String)>, StoreError>;
    /// Disables a user and ends their sessions; `false` when no active user has this email.
    async fn disable_user(&self, email: &str, now: Millis) -> Result<bool, StoreError>;
    /// Stores a session, and forgets those that have expired.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;
    /// The session whose token has this hash, if it has not expired at `now` and its user is
    /// not disabled.
    async fn session(&self, token_hash: &str, now: Millis) -> Result<Option<SignedIn>, StoreError>;
    /// Ends a session (signing out).
    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Events of `types` published since `since`, counted per period of `bucket_ms`.
    async fn activity(
        &self,
        types: &[&str],
        since: Millis,
        bucket_ms: i64,
    ) -> Result<Vec<ActivityCount>, StoreError>;
    /// The newest `limit` events of `types`, newest first.
    async fn latest_events(&self, types: &[&str], limit: u32) -> Result<Vec<Event>, StoreError>;
    /// The id of the newest published event (0 when there is none).
    async fn latest_event_id(&self) -> Result<i64, StoreError>;
    /// Conversations that have not ended.
    async fn open_conversation_count(&self) -> Result<u64, StoreError>;
}
