//! `ringback store copy` tests. Those that need PostgreSQL create a fresh database through
//! `RINGBACK_TEST_POSTGRES_URL` (see [`TestDatabase`]) and fail when it does not answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::Row as _;

use super::db::{Backend, Destination, Row, Source, Value};
use super::tables::{Kind, TABLES, Table};
use super::*;
use crate::store::postgres::connect::{self, TestDatabase};

const ROWS: usize = 1234;

fn options() -> Options {
    // Small batches and frequent progress, so several batches and progress lines run.
    Options {
        batch: 500,
        progress_every: 1000,
    }
}

fn sqlite_url(dir: &tempfile::TempDir, file: &str) -> String {
    format!("sqlite://{}", dir.path().join(file).display())
}

/// Row `i` of `table`: every integer column is `i << 40` and every text column the same
/// string for the same `i`, so each foreign key finds the parent row with the same `i`, and
/// every unique column differs between rows. Nullable columns are NULL in every fifth row.
fn row(table: &Table, i: usize) -> Row {
    table
        .columns
        .iter()
        .map(|c| {
            let null = c.nullable && i.is_multiple_of(5);
            match c.kind {
                Kind::Int => Value::Int((!null).then_some((i as i64) << 40)),
                Kind::Text => Value::Text((!null).then(|| format!("{i:05} it's “ünïcode” ✓ \\"))),
                Kind::Blob => Value::Blob((!null).then(|| vec![0, 0xff, i as u8, b'\''])),
                Kind::Bool => Value::Bool((!null).then_some(i.is_multiple_of(2))),
                Kind::Real => Value::Real((!null).then_some(i as f64 / 3.0)),
            }
        })
        .collect()
}

/// A migrated SQLite store with [`ROWS`] rows in every table.
async fn populated_sqlite(url: &str) {
    let store = Destination::open_and_migrate(url).await.unwrap();
    for table in TABLES {
        let rows: Vec<Row> = (1..=ROWS).map(|i| row(table, i)).collect();
        for chunk in rows.chunks(300) {
            store.insert(table, chunk).await.unwrap();
        }
    }
    store.close().await;
}

/// Every row of every table, in key order.
async fn dump(url: &str) -> Vec<(&'static str, Vec<Row>)> {
    let mut source = Source::open(url).await.unwrap();
    let mut tables = Vec::new();
    for table in TABLES {
        tables.push((
            table.name,
            source.batch(table, None, 1_000_000).await.unwrap(),
        ));
    }
    source.finish().await.unwrap();
    tables
}

fn counts(reports: &[TableReport]) -> Vec<(&'static str, u64, u64, u64)> {
    reports
        .iter()
        .map(|r| (r.table, r.source, r.copied, r.already))
        .collect()
}

fn every_table(source: u64, copied: u64, already: u64) -> Vec<(&'static str, u64, u64, u64)> {
    TABLES
        .iter()
        .map(|t| (t.name, source, copied, already))
        .collect()
}

/// SQLite → PostgreSQL → SQLite keeps every row of every table exactly; a second run copies
/// nothing; ids continue after the copied ones; a destination with extra rows fails, naming
/// the table.
#[tokio::test]
async fn sqlite_to_postgres_and_back_keeps_every_row_and_runs_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (src, back) = (sqlite_url(&dir, "src.db"), sqlite_url(&dir, "back.db"));
    populated_sqlite(&src).await;
    let pg = TestDatabase::create().await;
    let n = ROWS as u64;

    let first = copy(&src, &pg.url, &options()).await.unwrap();
    assert_eq!(counts(&first), every_table(n, n, 0));
    let again = copy(&src, &pg.url, &options()).await.unwrap();
    assert_eq!(
        counts(&again),
        every_table(n, 0, n),
        "a second run is a no-op"
    );

    let back_reports = copy(&pg.url, &back, &options()).await.unwrap();
    assert_eq!(counts(&back_reports), every_table(n, n, 0));

    let original = dump(&src).await;
    assert!(original.iter().all(|(_, rows)| rows.len() == ROWS));
    assert_eq!(
        dump(&pg.url).await,
        original,
        "PostgreSQL holds the same rows"
    );
    assert_eq!(
        dump(&back).await,
        original,
        "the SQLite copy of the copy is identical"
    );

    // The identity sequences moved past the copied ids: a row inserted without an id gets
    // a fresh one instead of colliding.
    let pool = connect::pool(&pg.url).await.unwrap();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO raw_payloads (source, body, received_at) VALUES ('t', '\\x00', 1) RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(id, ((ROWS as i64) << 40) + 1);
    pool.close().await;

    // Now PostgreSQL has a row the SQLite source lacks: copying into it again must fail and
    // say which table differs.
    let err = copy(&src, &pg.url, &options()).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("raw_payloads has 1235 rows in the destination but 1234 in the source"),
        "{message}"
    );
    pg.drop().await;
}

/// The source may be a running server's store: rows written during the copy are either in the
/// snapshot or left for the next run, and the check compares with the snapshot.
#[tokio::test]
async fn a_source_written_during_the_copy_is_copied_as_of_one_moment() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (sqlite_url(&dir, "src.db"), sqlite_url(&dir, "dst.db"));
    populated_sqlite(&src).await;

    let writer = Destination::open_and_migrate(&src).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writing = tokio::spawn({
        let stop = stop.clone();
        async move {
            let table = &TABLES[0];
            let mut i = ROWS + 1;
            while !stop.load(Ordering::Relaxed) {
                writer.insert(table, &[row(table, i)]).await.unwrap();
                i += 1;
                tokio::task::yield_now().await;
            }
            writer.close().await;
            i - ROWS - 1
        }
    });
    let during = copy(&src, &dst, &options()).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writing.await.unwrap() as u64;
    assert!(written > 0, "the writer wrote during the copy");

    let after = copy(&src, &dst, &options()).await.unwrap();
    let raw = (&during[0], &after[0]);
    assert_eq!(raw.0.table, "raw_payloads");
    assert_eq!(raw.1.source, ROWS as u64 + written);
    assert_eq!(
        raw.0.copied + raw.1.copied,
        raw.1.source,
        "the second run copied the rest"
    );
    assert_eq!(dump(&src).await, dump(&dst).await);
}

/// How a migrated schema describes itself, one line per column, in the list's vocabulary.
fn expected(backend: Backend) -> Vec<String> {
    let mut tables: Vec<&Table> = TABLES.iter().collect();
    tables.sort_by_key(|t| t.name);
    tables
        .into_iter()
        .flat_map(|t| {
            t.columns.iter().map(move |c| {
                let ty = match (backend, c.kind) {
                    (Backend::Sqlite, Kind::Int | Kind::Bool) => "INTEGER",
                    (Backend::Sqlite, Kind::Text) => "TEXT",
                    (Backend::Sqlite, Kind::Blob) => "BLOB",
                    (Backend::Sqlite, Kind::Real) => "REAL",
                    (Backend::Postgres, Kind::Real) => "double precision",
                    (Backend::Postgres, Kind::Int) => "bigint",
                    (Backend::Postgres, Kind::Bool) => "boolean",
                    (Backend::Postgres, Kind::Text) => "text",
                    (Backend::Postgres, Kind::Blob) => "bytea",
                };
                let key = t.key.iter().position(|k| *k == c.name).map(|p| p + 1);
                let identity = backend == Backend::Postgres && key.is_some() && t.has_identity();
                line(t.name, c.name, ty, c.nullable, key, identity)
            })
        })
        .collect()
}

fn line(
    table: &str,
    column: &str,
    ty: &str,
    nullable: bool,
    key: Option<usize>,
    identity: bool,
) -> String {
    let null = if nullable { "null" } else { "not null" };
    let key = key.map(|k| format!(" key#{k}")).unwrap_or_default();
    let identity = if identity { " identity" } else { "" };
    format!("{table}.{column} {ty} {null}{key}{identity}")
}

const UPDATE_THE_LIST: &str = "the copy's table list (src/cli/store_copy/tables.rs) and the \
    migrated schema differ: a migration added or changed a table or column; describe it in \
    TABLES so `ringback store copy` moves it";

#[tokio::test]
async fn the_table_list_matches_the_migrated_sqlite_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir, "schema.db");
    Destination::open_and_migrate(&url)
        .await
        .unwrap()
        .close()
        .await;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut actual = Vec::new();
    for table in &tables {
        let columns = sqlx::query(
            "SELECT name, upper(type) AS type, \"notnull\", pk FROM pragma_table_info($1) ORDER BY cid",
        )
        .bind(table)
        .fetch_all(&pool)
        .await
        .unwrap();
        for c in columns {
            let ty: String = c.get("type");
            let ty = if ty == "BIGINT" { "INTEGER".into() } else { ty };
            let pk: i64 = c.get("pk");
            // SQLite lets a TEXT primary key hold NULL unless it says NOT NULL; Ringback
            // never writes one and PostgreSQL forbids it, so a key column counts as NOT NULL.
            let nullable = c.get::<i64, _>("notnull") == 0 && pk == 0;
            let key = usize::try_from(pk).ok().filter(|k| *k > 0);
            actual.push(line(table, c.get("name"), &ty, nullable, key, false));
        }
    }
    assert_eq!(actual, expected(Backend::Sqlite), "{UPDATE_THE_LIST}");

    // Parents come before the tables that reference them.
    let position = |name: &str| TABLES.iter().position(|t| t.name == name);
    for (i, table) in TABLES.iter().enumerate() {
        let parents: Vec<String> =
            sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_list($1)")
                .bind(table.name)
                .fetch_all(&pool)
                .await
                .unwrap();
        for parent in parents {
            assert!(
                position(&parent).is_some_and(|p| p < i),
                "{} references {parent}, which TABLES must list before it",
                table.name
            );
        }
    }
    pool.close().await;
}

#[tokio::test]
async fn the_table_list_matches_the_migrated_postgres_schema() {
    let db = TestDatabase::create().await;
    let pool = connect::pool(&db.url).await.unwrap();
    connect::migrate(&pool).await.unwrap();
    let columns = sqlx::query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name,
                c.data_type::text AS data_type, c.is_nullable = 'YES' AS nullable,
                c.is_identity = 'YES' AS identity, k.ordinal_position::bigint AS key
         FROM information_schema.columns c
         LEFT JOIN information_schema.table_constraints t
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name
          AND t.constraint_type = 'PRIMARY KEY'
         LEFT JOIN information_schema.key_column_usage k
           ON k.constraint_schema = t.constraint_schema AND k.constraint_name = t.constraint_name
          AND k.column_name = c.column_name
         WHERE c.table_schema = current_schema() AND c.table_name <> '_sqlx_migrations'
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let actual: Vec<String> = columns
        .iter()
        .map(|c| {
            let key: Option<i64> = c.get("key");
            line(
                c.get("table_name"),
                c.get("column_name"),
                c.get("data_type"),
                c.get("nullable"),
                key.map(|k| k as usize),
                c.get("identity"),
            )
        })
        .collect();
    assert_eq!(actual, expected(Backend::Postgres), "{UPDATE_THE_LIST}");
    pool.close().await;
    db.drop().await;
}

#[tokio::test]
async fn refuses_the_same_store_a_missing_source_and_unknown_urls() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (sqlite_url(&dir, "a.db"), sqlite_url(&dir, "b.db"));
    let err = copy(&a, &a, &options()).await.unwrap_err();
    assert!(format!("{err:#}").contains("are the same store"), "{err:#}");
    let err = copy(&a, &b, &options()).await.unwrap_err();
    assert!(format!("{err:#}").contains("opening the source"), "{err:#}");
    assert!(
        !dir.path().join("a.db").exists(),
        "a missing source is not created"
    );
    assert!(!dir.path().join("b.db").exists(), "nor the destination");
    let err = copy("mysql://x/y", &b, &options()).await.unwrap_err();
    assert!(format!("{err:#}").contains("is not a store URL"), "{err:#}");
}

#[tokio::test]
async fn refuses_a_source_at_another_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (sqlite_url(&dir, "a.db"), sqlite_url(&dir, "b.db"));
    Destination::open_and_migrate(&a)
        .await
        .unwrap()
        .close()
        .await;
    let pool = sqlx::SqlitePool::connect(&a).await.unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 300")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = copy(&a, &b, &options()).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("run `ringback migrate`"),
        "{err:#}"
    );
}
