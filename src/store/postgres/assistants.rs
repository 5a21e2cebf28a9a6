//! Assistants' memory on PostgreSQL: the shared queries of [`crate::store::twin_assistants`].

use super::PostgresStore;

crate::store::twin_assistants::twin_assistant_store!(PostgresStore, pool, sqlx::postgres::PgRow);
