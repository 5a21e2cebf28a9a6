//! Flows and their runs on PostgreSQL: the shared queries of [`crate::store::twin_flows`].

use super::PostgresStore;

crate::store::twin_flows::twin_flow_store!(PostgresStore, pool, sqlx::postgres::PgRow);
