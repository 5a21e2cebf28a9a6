//! SQLite: message templates as last synced from the Cloud API.

use super::*;

#[async_trait]
impl TemplateStore for SqliteStore {
    async fn sync_templates(
        &self,
        waba_id: &str,
        templates: &[crate::cloud_api::template::Template],
    ) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        sqlx::query("DELETE FROM templates WHERE waba_id = $1")
            .bind(waba_id)
            .execute(&mut **tx)
            .await?;
        let now = crate::time::now_ms();
        for t in templates {
            sqlx::query(
                "INSERT INTO templates (waba_id, name, language, id, status, category, parameter_format, components_json, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (waba_id, name, language) DO NOTHING",
            )
            .bind(waba_id)
            .bind(&t.name)
            .bind(&t.language)
            .bind(&t.id)
            .bind(&t.status)
            .bind(&t.category)
            .bind(&t.parameter_format)
            .bind(serde_json::Value::Array(t.components.clone()).to_string())
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
    async fn templates(&self) -> Result<Vec<crate::cloud_api::template::Template>, StoreError> {
        let rows = sqlx::query("SELECT * FROM templates ORDER BY waba_id, name, language")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let components: String = r.try_get("components_json")?;
                Ok(crate::cloud_api::template::Template {
                    id: r.try_get("id")?,
                    waba_id: r.try_get("waba_id")?,
                    name: r.try_get("name")?,
                    language: r.try_get("language")?,
                    status: r.try_get("status")?,
                    category: r.try_get("category")?,
                    parameter_format: r.try_get("parameter_format")?,
                    components: serde_json::from_str(&components)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }
}
