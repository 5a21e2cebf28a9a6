//! Flows and their runs on SQLite: the shared queries of [`crate::store::twin_flows`].

use super::SqliteStore;

crate::store::twin_flows::twin_flow_store!(SqliteStore, read, sqlx::sqlite::SqliteRow);
