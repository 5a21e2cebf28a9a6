//! Dead-lettered inbound events: set aside with a reason, listed, and put back.

use sqlx::{PgPool, Row};

use crate::store::{DeadEvent, StoreError};
use crate::time::Millis;

pub(super) async fn dead_letter(
    pool: &PgPool,
    event_id: i64,
    reason: &str,
    at: Millis,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE inbound_events SET dead_at = $1, dead_reason = $2 WHERE id = $3 AND processed_at IS NULL",
    )
    .bind(at)
    .bind(reason)
    .bind(event_id)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn dead_events(pool: &PgPool) -> Result<Vec<DeadEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, source, kind, received_at, dead_at, dead_reason FROM inbound_events
         WHERE dead_at IS NOT NULL AND processed_at IS NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DeadEvent {
                id: r.try_get("id")?,
                source: r.try_get("source")?,
                kind: r.try_get("kind")?,
                received_at: r.try_get("received_at")?,
                dead_at: r.try_get("dead_at")?,
                reason: r
                    .try_get::<Option<String>, _>("dead_reason")?
                    .unwrap_or_default(),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

pub(super) async fn retry(pool: &PgPool, event_id: Option<i64>) -> Result<u64, StoreError> {
    let n = sqlx::query(
        "UPDATE inbound_events SET dead_at = NULL, dead_reason = NULL
         WHERE dead_at IS NOT NULL AND ($1::bigint IS NULL OR id = $1)",
    )
    .bind(event_id)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n)
}
