//! Assistants' memory on SQLite: the shared queries of [`crate::store::twin_assistants`].

use super::SqliteStore;

crate::store::twin_assistants::twin_assistant_store!(SqliteStore, read, sqlx::sqlite::SqliteRow);
