//! SQLite side of WhatsApp Business Calling: permission records, their change events, and
//! business-initiated calls.

use sqlx::{Row, SqlitePool};

use async_trait::async_trait;

use super::SqliteStore;
use crate::store::StoreError;
use crate::store::{BusinessCall, CallingStore, Change, PermissionEvent, PermissionRecord};
use crate::time::Millis;

pub async fn permission(
    read: &SqlitePool,
    sender_id: &str,
    user_id: &str,
) -> Result<Option<PermissionRecord>, StoreError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT record FROM call_permissions WHERE sender_id = $1 AND user_id = $2")
            .bind(sender_id)
            .bind(user_id)
            .fetch_optional(read)
            .await?;
    row.map(|(json,)| {
        serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("call permission record: {e}")))
    })
    .transpose()
}

pub async fn save_permission(
    write: &SqlitePool,
    sender_id: &str,
    user_id: &str,
    record: &PermissionRecord,
    changes: &[Change],
    at: Millis,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut tx = write.begin().await?;
    sqlx::query(
        "INSERT INTO call_permissions (sender_id, user_id, record, status, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (sender_id, user_id) DO UPDATE SET record = excluded.record, status = excluded.status, updated_at = excluded.updated_at",
    )
    .bind(sender_id)
    .bind(user_id)
    .bind(&json)
    .bind(record.status.as_str())
    .bind(at)
    .execute(&mut *tx)
    .await?;
    for c in changes {
        sqlx::query(
            "INSERT INTO call_permission_events (sender_id, user_id, from_status, to_status, source, reason, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(sender_id)
        .bind(user_id)
        .bind(c.from.as_str())
        .bind(c.to.as_str())
        .bind(&c.source)
        .bind(&c.reason)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        // Published as `call.permission_changed`, from the same transaction.
        let fact = crate::events::permission_change(sender_id, user_id, c, at);
        super::conversations::journal_fact(&mut tx, &fact).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn permission_events(
    read: &SqlitePool,
    sender_id: Option<&str>,
    user_id: Option<&str>,
) -> Result<Vec<PermissionEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM call_permission_events WHERE ($1 IS NULL OR sender_id = $1) AND ($2 IS NULL OR user_id = $2) ORDER BY id",
    )
    .bind(sender_id)
    .bind(user_id)
    .fetch_all(read)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PermissionEvent {
                id: r.try_get("id")?,
                event: "call.permission_changed",
                sender_id: r.try_get("sender_id")?,
                user_id: r.try_get("user_id")?,
                from: r.try_get("from_status")?,
                to: r.try_get("to_status")?,
                source: r.try_get("source")?,
                reason: r.try_get("reason")?,
                at: r.try_get("at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

pub async fn save_business_call(write: &SqlitePool, c: &BusinessCall) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO business_calls (id, sender_id, user_id, wacid, status, reason, duration, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET wacid = excluded.wacid, status = excluded.status, reason = excluded.reason,
           duration = excluded.duration, updated_at = excluded.updated_at",
    )
    .bind(&c.id)
    .bind(&c.sender_id)
    .bind(&c.user_id)
    .bind(&c.wacid)
    .bind(&c.status)
    .bind(&c.reason)
    .bind(c.duration.map(i64::from))
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(write)
    .await?;
    Ok(())
}

fn business_call_row(r: &sqlx::sqlite::SqliteRow) -> Result<BusinessCall, sqlx::Error> {
    Ok(BusinessCall {
        id: r.try_get("id")?,
        sender_id: r.try_get("sender_id")?,
        user_id: r.try_get("user_id")?,
        wacid: r.try_get("wacid")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        duration: r
            .try_get::<Option<i64>, _>("duration")?
            .map(|d| d.clamp(0, i64::from(u32::MAX)) as u32),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn business_call(
    read: &SqlitePool,
    id: &str,
) -> Result<Option<BusinessCall>, StoreError> {
    let row = sqlx::query("SELECT * FROM business_calls WHERE id = $1")
        .bind(id)
        .fetch_optional(read)
        .await?;
    Ok(row.as_ref().map(business_call_row).transpose()?)
}

pub async fn business_call_by_wacid(
    read: &SqlitePool,
    wacid: &str,
) -> Result<Option<BusinessCall>, StoreError> {
    let row = sqlx::query("SELECT * FROM business_calls WHERE wacid = $1")
        .bind(wacid)
        .fetch_optional(read)
        .await?;
    Ok(row.as_ref().map(business_call_row).transpose()?)
}

pub async fn business_calls(
    read: &SqlitePool,
    limit: u32,
) -> Result<Vec<BusinessCall>, StoreError> {
    let rows = sqlx::query("SELECT * FROM business_calls ORDER BY created_at DESC LIMIT $1")
        .bind(i64::from(limit))
        .fetch_all(read)
        .await?;
    Ok(rows
        .iter()
        .map(business_call_row)
        .collect::<Result<_, _>>()?)
}

#[async_trait]
impl CallingStore for SqliteStore {
    async fn call_permission(
        &self,
        sender_id: &str,
        user_id: &str,
    ) -> Result<Option<PermissionRecord>, StoreError> {
        permission(&self.read, sender_id, user_id).await
    }
    async fn save_call_permission(
        &self,
        sender_id: &str,
        user_id: &str,
        record: &PermissionRecord,
        changes: &[Change],
        at: Millis,
    ) -> Result<(), StoreError> {
        let _turn = self.writer.turn().await?;
        save_permission(&self.write, sender_id, user_id, record, changes, at).await?;
        self.journaled.notify_one();
        Ok(())
    }
    async fn call_permission_events(
        &self,
        sender_id: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<Vec<PermissionEvent>, StoreError> {
        permission_events(&self.read, sender_id, user_id).await
    }
    async fn save_business_call(&self, call: &BusinessCall) -> Result<(), StoreError> {
        let _turn = self.writer.turn().await?;
        save_business_call(&self.write, call).await
    }
    async fn business_call(&self, id: &str) -> Result<Option<BusinessCall>, StoreError> {
        business_call(&self.read, id).await
    }
    async fn set_business_call_wacid(&self, id: &str, wacid: &str) -> Result<(), StoreError> {
        let _turn = self.writer.turn().await?;
        sqlx::query("UPDATE business_calls SET wacid = COALESCE(wacid, $1) WHERE id = $2")
            .bind(wacid)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }
    async fn business_call_by_wacid(
        &self,
        wacid: &str,
    ) -> Result<Option<BusinessCall>, StoreError> {
        business_call_by_wacid(&self.read, wacid).await
    }
    async fn business_calls(&self, limit: u32) -> Result<Vec<BusinessCall>, StoreError> {
        business_calls(&self.read, limit).await
    }
}
