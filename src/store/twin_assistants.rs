//! [`AssistantStore`](super::AssistantStore), written once for both backends (see
//! [`super::twin`] for why that works), except its one write, `record_assistant_reply_impl`:
//! SQLite's joins the writer thread's group commits, PostgreSQL's is a sqlx transaction.

/// `$store`: the backend's store type; `$read`: its read pool field; `$row`: its row type.
macro_rules! twin_assistant_store {
    ($store:ty, $read:ident, $row:ty) => {
        use async_trait::async_trait;
        use sqlx::Row;

        use $crate::store::{
            AssistantStore, AssistantTurn, RecordedReply, StoreError,
        };

        #[async_trait]
        impl AssistantStore for $store {
            async fn assistant_turns(
                &self,
                assistant: &str,
                customer_id: &str,
                limit: u32,
            ) -> Result<Vec<AssistantTurn>, StoreError> {
                let rows = sqlx::query(
                    "SELECT u.role, u.content, u.at FROM assistant_threads t
                     JOIN assistant_turns u ON u.thread_id = t.id
                     WHERE t.assistant = $1 AND t.customer_id = $2
                     ORDER BY u.id DESC LIMIT $3",
                )
                .bind(assistant)
                .bind(customer_id)
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

            async fn record_assistant_reply(
                &self,
                r: &RecordedReply,
            ) -> Result<String, StoreError> {
                self.record_assistant_reply_impl(r).await
            }

            async fn pause_auto_reply(
                &self,
                p: &$crate::store::AutoReplyPause,
            ) -> Result<(), StoreError> {
                let mut tx = self.tx().await?;
                sqlx::query(
                    "INSERT INTO assistant_pauses (sender_id, contact, conversation_id, at, reason)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (sender_id, contact) DO UPDATE SET
                         conversation_id = excluded.conversation_id, at = excluded.at,
                         reason = excluded.reason
                     WHERE excluded.at >= assistant_pauses.at",
                )
                .bind(&p.sender_id)
                .bind(&p.contact)
                .bind(&p.conversation_id)
                .bind(p.at)
                .bind(&p.reason)
                .execute(tx.as_mut())
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn auto_reply_pause(
                &self,
                sender_id: &str,
                contact: &str,
            ) -> Result<Option<$crate::store::AutoReplyPause>, StoreError> {
                let row = sqlx::query(
                    "SELECT * FROM assistant_pauses WHERE sender_id = $1 AND contact = $2",
                )
                .bind(sender_id)
                .bind(contact)
                .fetch_optional(&self.$read)
                .await?;
                Ok(row
                    .map(|r| {
                        Ok::<_, sqlx::Error>($crate::store::AutoReplyPause {
                            sender_id: r.try_get("sender_id")?,
                            contact: r.try_get("contact")?,
                            conversation_id: r.try_get("conversation_id")?,
                            at: r.try_get("at")?,
                            reason: r.try_get("reason")?,
                        })
                    })
                    .transpose()?)
            }

            async fn hold_ending(&self, h: &$crate::store::HeldEnding) -> Result<(), StoreError> {
                let mut tx = self.tx().await?;
                sqlx::query(
                    "INSERT INTO assistant_endings (conversation_id, assistant, at, payload_json)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (conversation_id) DO NOTHING",
                )
                .bind(&h.conversation_id)
                .bind(&h.assistant)
                .bind(h.at)
                .bind(h.payload.to_string())
                .execute(tx.as_mut())
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn held_endings(
                &self,
                limit: u32,
            ) -> Result<Vec<$crate::store::HeldEnding>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM assistant_endings WHERE evaluated_at IS NULL ORDER BY at LIMIT $1",
                )
                    .bind(i64::from(limit))
                    .fetch_all(&self.$read)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        let payload: String = r.try_get("payload_json")?;
                        Ok($crate::store::HeldEnding {
                            conversation_id: r.try_get("conversation_id")?,
                            assistant: r.try_get("assistant")?,
                            at: r.try_get("at")?,
                            payload: serde_json::from_str(&payload)
                                .unwrap_or(serde_json::Value::Null),
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?)
            }

            async fn finish_ending(
                &self,
                conversation_id: &str,
                fact: &$crate::events::Fact,
            ) -> Result<(), StoreError> {
                let mut tx = self.tx().await?;
                super::conversations::journal_fact(tx.as_mut(), fact).await?;
                let now = $crate::time::now_ms();
                sqlx::query(
                    "UPDATE assistant_endings SET evaluated_at = $2 WHERE conversation_id = $1",
                )
                .bind(conversation_id)
                .bind(now)
                .execute(tx.as_mut())
                .await?;
                sqlx::query("DELETE FROM assistant_endings WHERE evaluated_at < $1")
                    .bind(now - 7 * 24 * 3600 * 1000)
                    .execute(tx.as_mut())
                    .await?;
                tx.commit().await?;
                self.journaled.notify_one();
                Ok(())
            }

            async fn auto_reply_cursor(&self) -> Result<Option<i64>, StoreError> {
                let row = sqlx::query(
                    "SELECT COALESCE((SELECT event_id FROM flow_cursor WHERE name = 'assistants'),
                                     (SELECT MAX(id) FROM events)) AS cursor",
                )
                .fetch_one(&self.$read)
                .await?;
                Ok(row.try_get("cursor")?)
            }

            async fn set_auto_reply_cursor(&self, event_id: i64) -> Result<(), StoreError> {
                let mut tx = self.tx().await?;
                sqlx::query(
                    "INSERT INTO flow_cursor (name, event_id) VALUES ('assistants', $1)
                     ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id",
                )
                .bind(event_id)
                .execute(tx.as_mut())
                .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use twin_assistant_store;

/// The thread's variables with `recorded` merged in, as stored JSON.
pub(crate) fn merged_variables(stored: &str, recorded: &[(String, String)]) -> String {
    let mut vars: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(stored).unwrap_or_default();
    for (k, v) in recorded {
        vars.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    serde_json::Value::Object(vars).to_string()
}

/// The statements of the one write, numbered alike for both drivers (`$N`; SQLite reads
/// `$N` as `?N`).
pub(crate) const INSERT_THREAD: &str =
    "INSERT INTO assistant_threads (id, assistant, customer_id, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $4) ON CONFLICT (assistant, customer_id) DO NOTHING";
pub(crate) const SELECT_THREAD: &str =
    "SELECT id, variables_json FROM assistant_threads WHERE assistant = $1 AND customer_id = $2";
pub(crate) const INSERT_QUESTION: &str =
    "INSERT INTO assistant_turns (thread_id, at, role, content) VALUES ($1, $2, 'user', $3)";
pub(crate) const INSERT_ANSWER: &str =
    "INSERT INTO assistant_turns (thread_id, at, role, content, source, prompt_tokens,
         completion_tokens, cost, latency_ms, error)
     VALUES ($1, $2, 'assistant', $3, $4, $5, $6, $7, $8, $9)";
pub(crate) const UPDATE_THREAD: &str =
    "UPDATE assistant_threads SET updated_at = $2, variables_json = $3,
         handed_off_at = CASE WHEN $4 IS NULL THEN handed_off_at ELSE $2 END,
         hand_off_reason = COALESCE($4, hand_off_reason)
     WHERE id = $1";
