//! [`AssistantStore`](super::AssistantStore), written once for both backends (see
//! [`super::twin`] for why that works). None of these writes is hot enough for SQLite's
//! writer thread: a reply waits on a model for far longer than its commit takes.

/// `$store`: the backend's store type; `$read`: its read pool field; `$row`: its row type.
macro_rules! twin_assistant_store {
    ($store:ty, $read:ident, $row:ty) => {
        use async_trait::async_trait;
        use sqlx::Row;

        use $crate::store::{
            AssistantStore, AssistantThread, AssistantTurn, RecordedReply, StoreError,
        };
        use $crate::time::Millis;

        fn thread_from_row(r: &$row) -> Result<AssistantThread, sqlx::Error> {
            let vars: String = r.try_get("variables_json")?;
            Ok(AssistantThread {
                id: r.try_get("id")?,
                assistant: r.try_get("assistant")?,
                customer_id: r.try_get("customer_id")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
                handed_off_at: r.try_get("handed_off_at")?,
                hand_off_reason: r.try_get("hand_off_reason")?,
                variables: serde_json::from_str(&vars)
                    .unwrap_or_else(|_| serde_json::json!({})),
            })
        }

        #[async_trait]
        impl AssistantStore for $store {
            async fn assistant_thread(
                &self,
                assistant: &str,
                customer_id: &str,
                now: Millis,
            ) -> Result<AssistantThread, StoreError> {
                let select = "SELECT * FROM assistant_threads WHERE assistant = $1 AND customer_id = $2";
                if let Some(r) = sqlx::query(select)
                    .bind(assistant)
                    .bind(customer_id)
                    .fetch_optional(&self.$read)
                    .await?
                {
                    return Ok(thread_from_row(&r)?);
                }
                let mut tx = self.tx().await?;
                sqlx::query(
                    "INSERT INTO assistant_threads (id, assistant, customer_id, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $4)
                     ON CONFLICT (assistant, customer_id) DO NOTHING",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(assistant)
                .bind(customer_id)
                .bind(now)
                .execute(tx.as_mut())
                .await?;
                let r = sqlx::query(select)
                    .bind(assistant)
                    .bind(customer_id)
                    .fetch_one(tx.as_mut())
                    .await?;
                tx.commit().await?;
                Ok(thread_from_row(&r)?)
            }

            async fn assistant_turns(
                &self,
                thread_id: &str,
                limit: u32,
            ) -> Result<Vec<AssistantTurn>, StoreError> {
                let rows = sqlx::query(
                    "SELECT role, content, at FROM assistant_turns WHERE thread_id = $1
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(thread_id)
                .bind(i64::from(limit))
                .fetch_all(&self.$read)
                .await?;
                let mut turns = rows
                    .iter()
                    .map(|r| {
                        Ok(AssistantTurn {
                            role: r.try_get("role")?,
                            content: r.try_get("content")?,
                            at: r.try_get("at")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                turns.reverse();
                Ok(turns)
            }

            async fn record_assistant_reply(&self, r: &RecordedReply) -> Result<(), StoreError> {
                let mut tx = self.tx().await?;
                sqlx::query(
                    "INSERT INTO assistant_turns (thread_id, at, role, content) VALUES ($1, $2, 'user', $3)",
                )
                .bind(&r.thread_id)
                .bind(r.at)
                .bind(&r.question)
                .execute(tx.as_mut())
                .await?;
                sqlx::query(
                    "INSERT INTO assistant_turns (thread_id, at, role, content, source, prompt_tokens,
                         completion_tokens, cost, latency_ms, error)
                     VALUES ($1, $2, 'assistant', $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&r.thread_id)
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
                let vars: String = sqlx::query("SELECT variables_json FROM assistant_threads WHERE id = $1")
                    .bind(&r.thread_id)
                    .fetch_one(tx.as_mut())
                    .await?
                    .try_get("variables_json")?;
                let mut vars: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&vars).unwrap_or_default();
                for (k, v) in &r.recorded {
                    vars.insert(k.clone(), serde_json::Value::String(v.clone()));
                }
                sqlx::query(
                    "UPDATE assistant_threads SET updated_at = $2, variables_json = $3,
                         handed_off_at = CASE WHEN $4 IS NULL THEN handed_off_at ELSE $2 END,
                         hand_off_reason = COALESCE($4, hand_off_reason)
                     WHERE id = $1",
                )
                .bind(&r.thread_id)
                .bind(r.at)
                .bind(serde_json::Value::Object(vars).to_string())
                .bind(&r.hand_off_reason)
                .execute(tx.as_mut())
                .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use twin_assistant_store;
