//! PostgreSQL: business numbers: what Meta announced about each (quality, throughput, tier, status).

use super::*;

#[async_trait]
impl NumberStore for PostgresStore {
    async fn number_events(
        &self,
        phone_number_id: &str,
        limit: u32,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query("SELECT field, event, detail, at FROM number_events WHERE phone_number_id = $1 ORDER BY at DESC, id DESC LIMIT $2")
            .bind(phone_number_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                let at: i64 = r.try_get("at")?;
                Ok(serde_json::json!({
                    "field": r.try_get::<String, _>("field")?,
                    "event": r.try_get::<Option<String>, _>("event")?,
                    "at": at,
                    "detail": serde_json::from_str::<serde_json::Value>(&detail).unwrap_or(serde_json::Value::Null),
                }))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
    async fn numbers(&self) -> Result<Vec<NumberState>, StoreError> {
        let rows = sqlx::query("SELECT phone_number_id, throughput, quality_rating, messaging_tier, status, updated_at FROM numbers ORDER BY phone_number_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(NumberState {
                    phone_number_id: r.try_get("phone_number_id")?,
                    throughput: opt_u32(r.try_get("throughput")?),
                    quality_rating: r.try_get("quality_rating")?,
                    messaging_tier: r.try_get("messaging_tier")?,
                    status: r.try_get("status")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
