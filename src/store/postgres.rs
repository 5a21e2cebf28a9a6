//! PostgreSQL backend (`store_url = "postgres://…"`), for installations that outgrow one SQLite
//! file or run several nodes on one database.
//!
//! The schema lives in `migrations/postgres/`, one file per SQLite migration with the same
//! number and meaning (atuin's one-directory-per-backend layout). [`connect`] opens a pool and
//! applies those migrations; `ringback store copy` moves an installation's rows between
//! backends. The `Store` implementation joins here as the store traits settle.

pub mod connect;
