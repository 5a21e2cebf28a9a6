//! SQLite: aPI keys (hashes only).

use super::*;

#[async_trait]
impl KeyStore for SqliteStore {
    async fn create_api_key(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError> {
        let _turn = self.writer.turn().await?;
        sqlx::query("INSERT INTO api_keys (id, name, hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.id)
            .bind(&key.name)
            .bind(hash)
            .bind(key.created_at)
            .execute(&self.write)
            .await?;
        Ok(())
    }
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY created_at DESC",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiKey {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
    async fn revoke_api_key(&self, id: &str, now: Millis) -> Result<bool, StoreError> {
        let _turn = self.writer.turn().await?;
        let n =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&self.write)
                .await?
                .rows_affected();
        Ok(n == 1)
    }
    async fn api_key_valid(&self, hash: &str) -> Result<Option<bool>, StoreError> {
        let any: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
            .fetch_one(&self.read)
            .await?;
        if any == 0 {
            return Ok(None);
        }
        let ok: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_one(&self.read)
        .await?;
        Ok(Some(ok == 1))
    }
}
