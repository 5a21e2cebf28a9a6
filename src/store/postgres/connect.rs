//! Connecting to PostgreSQL and bringing its schema up to date.
//!
//! Both functions return sqlx's own errors, which convert into
//! [`StoreError`](crate::store::StoreError) with `?`.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::PgPoolOptions;

/// The PostgreSQL schema, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per node. Unlike SQLite's single writer, PostgreSQL runs writers in parallel,
/// but each connection is a server process: ten per node leaves room for several nodes under
/// the default `max_connections = 100`.
const MAX_CONNECTIONS: u32 = 10;

/// Opens a pool to the database at `url` (`postgres://user:password@host:5432/ringback`).
///
/// Connects once before returning, so a wrong URL, password or host fails here, at startup,
/// and not on the first webhook.
pub async fn pool(url: &str) -> Result<PgPool, sqlx::Error> {
    pool_options().connect(url).await
}

/// The pool settings [`pool`] uses, for callers that add connection hooks (the store's
/// injected write faults) before connecting.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        // A request that cannot get a connection within this time fails (and is retried by its
        // caller) instead of queueing without bound behind a stuck database.
        .acquire_timeout(Duration::from_secs(10))
}

/// Applies every migration in `migrations/postgres` that this database has not seen.
///
/// Safe when several nodes start at once: sqlx's PostgreSQL migrator first takes
/// `pg_advisory_lock` on a key derived from the database name (sqlx-postgres 0.9
/// `migrate.rs`, `lock()`), *before* it creates `_sqlx_migrations` or reads what is applied,
/// and releases it when done. A second node waits on the lock, then finds every version
/// applied and does nothing. The test below runs two migrations at once on an empty database.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

/// A fresh, empty database for one test, created through the maintenance database at
/// `RINGBACK_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
///
/// Tests that need PostgreSQL fail, with a sentence naming that variable, when it does not
/// answer: a test that passes without running would hide a broken backend.
#[cfg(test)]
pub(crate) struct TestDatabase {
    /// The URL of the new database.
    pub url: String,
    admin_url: String,
    name: String,
}

#[cfg(test)]
impl TestDatabase {
    pub(crate) const ENV: &'static str = "RINGBACK_TEST_POSTGRES_URL";
    const DEFAULT_ADMIN_URL: &'static str = "postgres://postgres@127.0.0.1:5432/postgres";

    /// Creates `ringback_test_<random>`.
    pub(crate) async fn create() -> Self {
        let admin_url =
            std::env::var(Self::ENV).unwrap_or_else(|_| Self::DEFAULT_ADMIN_URL.to_string());
        let name = format!("ringback_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = Self::admin(&admin_url).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot create a test database through {admin_url} ({e}); the user in \
                     {} needs CREATEDB",
                    Self::ENV
                )
            });
        let url = with_database(&admin_url, &name);
        Self {
            url,
            admin_url,
            name,
        }
    }

    /// Drops the database, disconnecting anyone still on it.
    pub(crate) async fn drop(self) {
        let mut admin = Self::admin(&self.admin_url).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .expect("dropping the test database");
    }

    async fn admin(url: &str) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL did not answer at {url} ({e}). These tests need a PostgreSQL server \
                 whose user may CREATE DATABASE: start one, or set {} to its maintenance \
                 database URL (e.g. postgres://postgres@127.0.0.1:5432/postgres).",
                Self::ENV
            )
        })
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
#[cfg(test)]
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/postgres?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }

    /// Two nodes starting together on an empty database: both migrations succeed and every
    /// version is recorded exactly once (the advisory lock serialises them).
    #[tokio::test]
    async fn two_nodes_migrating_at_once_apply_each_version_once() {
        let db = TestDatabase::create().await;
        let (a, b) = (pool(&db.url).await.unwrap(), pool(&db.url).await.unwrap());
        let (ra, rb) = tokio::join!(migrate(&a), migrate(&b));
        ra.expect("first node's migration");
        rb.expect("second node's migration");

        let rows: Vec<(i64, i64, bool)> = sqlx::query_as(
            "SELECT version, COUNT(*), bool_and(success) FROM _sqlx_migrations
             GROUP BY version ORDER BY version",
        )
        .fetch_all(&a)
        .await
        .unwrap();
        let expected: Vec<(i64, i64, bool)> = MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, 1, true))
            .collect();
        assert_eq!(rows, expected);
        assert!(
            expected.iter().any(|m| m.0 == 300),
            "0300_cluster is embedded"
        );

        // A third start later finds nothing to do.
        migrate(&a).await.expect("migrating an up-to-date database");
        a.close().await;
        b.close().await;
        db.drop().await;
    }
}
