//! Assistants' memory on PostgreSQL: the shared queries of [`crate::store::twin_assistants`]
//! and the one write, a transaction.

use super::PostgresStore;
use crate::store::twin_assistants::{
    INSERT_ANSWER, INSERT_QUESTION, INSERT_THREAD, SELECT_THREAD, UPDATE_THREAD, merged_variables,
};

crate::store::twin_assistants::twin_assistant_store!(PostgresStore, pool, sqlx::postgres::PgRow);

impl PostgresStore {
    async fn record_assistant_reply_impl(&self, r: &RecordedReply) -> Result<String, StoreError> {
        let mut tx = self.tx().await?;
        sqlx::query(INSERT_THREAD)
            .bind(&r.new_thread_id)
            .bind(&r.assistant)
            .bind(&r.customer_id)
            .bind(r.at)
            .execute(tx.as_mut())
            .await?;
        // Locked: two replies to one customer at once must not each merge the variables into
        // what they read and overwrite the other's.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_THREAD} FOR UPDATE")))
            .bind(&r.assistant)
            .bind(&r.customer_id)
            .fetch_one(tx.as_mut())
            .await?;
        let id: String = row.try_get("id")?;
        let vars: String = row.try_get("variables_json")?;
        sqlx::query(INSERT_QUESTION)
            .bind(&id)
            .bind(r.at)
            .bind(&r.question)
            .execute(tx.as_mut())
            .await?;
        sqlx::query(INSERT_ANSWER)
            .bind(&id)
            .bind(r.at)
            .bind(&r.answer)
            .bind(&r.source)
            .bind(r.prompt_tokens)
            .bind(r.completion_tokens)
            .bind(r.cost)
            .bind(r.latency_ms)
            .bind(&r.error)
            .execute(tx.as_mut())
            .await?;
        sqlx::query(UPDATE_THREAD)
            .bind(&id)
            .bind(r.at)
            .bind(merged_variables(&vars, &r.recorded))
            .bind(&r.hand_off_reason)
            .execute(tx.as_mut())
            .await?;
        tx.commit().await?;
        Ok(id)
    }
}
