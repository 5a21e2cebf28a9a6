//! The store: every durable fact goes through the [`Store`] trait.
//!
//! The store is split by the product's concepts, one trait each, so a reader finds every query
//! about one concept in one place: [`EventStore`] (inbound events and the calls decided from
//! them), [`OutboxStore`] (messages, claims, attempts), [`ContactStore`] (contacts, windows and
//! the consent ledger), [`TemplateStore`], [`NumberStore`], [`CallingStore`] (WhatsApp
//! Business Calling), [`KeyStore`] (API keys), [`MaintenanceStore`] (migrations, retention,
//! write health), [`ClusterStore`] (nodes and leases), [`FlowStore`] (flows and their
//! runs), [`AssistantStore`] and [`ConsoleStore`] (the console's users, sessions and
//! figures). [`Store`] is all of them: what the app holds as `Arc<dyn Store>`.
//!
//! The store stores; it does not decide. The rules that say what a row becomes (which message
//! state may follow which, what an attempt's outcome does, which facts a send is checked
//! against) live in domain modules ([`crate::message`], [`policy_index`]) that every backend
//! calls, so a second backend cannot drift from the first.
//!
//! Methods are named for what they mean in the domain. Each one that changes state is one
//! transaction, so a crash between two calls leaves a consistent state that the caller can
//! resume from (events stay unprocessed, sends stay queued or become uncertain).
//! [`open`] chooses the implementation from the URL scheme.

use std::sync::Arc;

mod assistants;
mod calling;
mod cluster;
mod console;
mod contacts;
mod conversations;
mod events;
mod flows;
pub(crate) mod health;
mod keys;
mod links;
mod maintenance;
mod numbers;
mod outbox;
pub mod policy_index;
pub mod postgres;
pub mod sqlite;
mod templates;
pub(crate) mod twin;
pub(crate) mod twin_assistants;
pub(crate) mod twin_console;
pub(crate) mod twin_flows;
pub(crate) mod twin_links;
mod webhooks;

pub use assistants::*;
pub use calling::*;
pub use cluster::*;
pub use console::*;
pub use contacts::*;
pub use conversations::*;
pub use events::*;
pub use flows::*;
pub use keys::*;
pub use links::*;
pub use maintenance::*;
pub use numbers::*;
pub use outbox::*;
pub use templates::*;
pub use webhooks::*;

/// A storage failure. Callers retry later; nothing here is the user's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A write that failed on SQLite's writer thread (see `store/sqlite/writer.rs`), or
    /// failed with the rest of its group.
    #[error("database error: {0}")]
    Write(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error(
        "unsupported store url '{0}': use sqlite://path/to/ringback.db or postgres://user@host/database (or postgresql://)"
    )]
    UnsupportedUrl(String),
    /// A write made under a lease that another node has taken since (see [`Fence`]).
    #[error("lease {0} is held by another node now")]
    LeaseLost(String),
    /// One stored event cannot be read: retrying will not help, so the processor sets it aside.
    #[error("stored event {id} is unreadable: {reason}")]
    CorruptEvent { id: i64, reason: String },
}

/// A JSON value as the text a store keeps: `serde_json::to_string` writes into a byte buffer,
/// where `Value`'s `Display` (`to_string()`) passes every piece through a formatter; both print
/// the same compact JSON.
pub(crate) fn json_text(v: &serde_json::Value) -> String {
    // A `Value`'s keys are strings: it always serializes.
    serde_json::to_string(v).unwrap_or_default()
}

/// Opens the store named by `url` and applies migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        let store = sqlite::SqliteStore::open(url).await?;
        store.migrate().await?;
        store.load_policy_index().await?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // Several nodes may start at once: the migrator takes an advisory lock first.
        let store = postgres::PostgresStore::open(url).await?;
        store.migrate().await?;
        Ok(Arc::new(store))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

/// Every durable operation Ringback performs: one part per concept, all implemented by each
/// backend.
pub trait Store:
    EventStore
    + OutboxStore
    + ContactStore
    + TemplateStore
    + NumberStore
    + CallingStore
    + KeyStore
    + MaintenanceStore
    + ClusterStore
    + ConversationStore
    + WebhookStore
    + FlowStore
    + AssistantStore
    + ConsoleStore
    + LinkStore
{
}

impl<T> Store for T where
    T: EventStore
        + OutboxStore
        + ContactStore
        + TemplateStore
        + NumberStore
        + CallingStore
        + KeyStore
        + MaintenanceStore
        + ClusterStore
        + ConversationStore
        + WebhookStore
        + FlowStore
        + AssistantStore
        + ConsoleStore
        + LinkStore
{
}
