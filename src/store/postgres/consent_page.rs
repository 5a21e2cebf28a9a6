//! One page of the consent ledger in insertion order, for exports that stream a ledger of any
//! size: keyset pagination on the ledger's id, so each page is an index range scan and the
//! memory held is one page, however big the ledger.

use sqlx::{PgPool, Row};

use crate::consent::Record;
use crate::store::StoreError;

pub async fn after(
    pool: &PgPool,
    subject: Option<&str>,
    after_id: i64,
    limit: u32,
) -> Result<Vec<(i64, Record)>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM consent_records WHERE id > $1 AND ($2::text IS NULL OR subject = $2) ORDER BY id LIMIT $3",
    )
    .bind(after_id)
    .bind(subject)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, super::consent_record_from_row(r)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}
