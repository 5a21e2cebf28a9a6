//! SQLite: the outbox: every outgoing message is a row before it is a request; claims, attempts and their outcomes.

use super::*;

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn message_by_idempotency_key(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM messages WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(&self.read)
                .await?,
        )
    }
    async fn enqueue(&self, m: &NewMessage) -> Result<Enqueued, StoreError> {
        let m = m.clone();
        let result = self
            .writer
            .run(move |c| {
                Ok(if effects::insert_message(c, &m)? {
                    Enqueued::New(m.id)
                } else {
                    Enqueued::Existing(effects::message_id_for_key(c, &m.idempotency_key)?)
                })
            })
            .await;
        self.health.observe(result, |_| true)
    }
    async fn claim_sends(
        &self,
        sender_id: &str,
        now: Millis,
        limit: u32,
        node: &str,
        lease_until: Millis,
    ) -> Result<Vec<ClaimedSend>, StoreError> {
        let (sender, node) = (sender_id.to_string(), node.to_string());
        let result = self
            .writer
            .run(move |c| effects::claim_sends(c, &sender, now, limit, &node, lease_until))
            .await;
        self.health.observe(result, |c| !c.is_empty())
    }
    async fn start_attempts(
        &self,
        sends: &[ClaimedSend],
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        let owned = sends.to_vec();
        let result = self
            .writer
            .run(move |c| effects::start_attempts(c, &owned, now))
            .await;
        self.health.observe(result, |_| !sends.is_empty())
    }
    async fn record_attempts(
        &self,
        results: &[(ClaimedSend, AttemptOutcome)],
        now: Millis,
    ) -> Result<(), StoreError> {
        let owned = results.to_vec();
        let result = self
            .writer
            .run(move |c| {
                owned
                    .iter()
                    .try_for_each(|(send, outcome)| effects::record_attempt(c, send, outcome, now))
            })
            .await;
        self.journaled.notify_one();
        self.health.observe(result, |_| !results.is_empty())
    }
    async fn next_due(&self, sender_id: &str) -> Result<Option<Millis>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM messages WHERE sender_id = $1 AND state = 'queued'",
        )
        .bind(sender_id)
        .fetch_one(&self.read)
        .await?)
    }
    async fn mark_in_flight_uncertain(
        &self,
        node: Option<&str>,
        now: Millis,
    ) -> Result<u64, StoreError> {
        let node = node.map(str::to_string);
        self.writer
            .run(move |c| recovery::mark_in_flight_uncertain(c, node.as_deref(), now))
            .await
    }

    async fn requeue_uncertain(
        &self,
        before: Millis,
        now: Millis,
        max_attempts: u32,
    ) -> Result<UncertainResolved, StoreError> {
        let resolved = self
            .writer
            .run(move |c| recovery::requeue_uncertain(c, before, now, max_attempts))
            .await?;
        if resolved.failed > 0 {
            self.journaled.notify_one();
        }
        Ok(resolved)
    }
    async fn lanes(&self) -> Result<Vec<LaneRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT sender_id,
                 SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END) AS queued,
                 SUM(CASE WHEN state = 'sending' THEN 1 ELSE 0 END) AS sending,
                 SUM(CASE WHEN state = 'uncertain' THEN 1 ELSE 0 END) AS uncertain,
                 GROUP_CONCAT(DISTINCT CASE WHEN state = 'sending' THEN lease_owner END) AS nodes
             FROM messages WHERE state IN ('queued', 'sending', 'uncertain')
             GROUP BY sender_id ORDER BY sender_id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let nodes: Option<String> = r.try_get("nodes")?;
                Ok(LaneRow {
                    sender_id: r.try_get("sender_id")?,
                    queued: r.try_get("queued")?,
                    sending: r.try_get("sending")?,
                    uncertain: r.try_get("uncertain")?,
                    claimed_by: nodes
                        .map(|n| n.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn outbox_depth(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE state IN ('queued', 'sending', 'uncertain')",
        )
        .fetch_one(&self.read)
        .await?)
    }
    async fn list_messages(&self, limit: u32) -> Result<Vec<MessageRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY created_at DESC, id DESC LIMIT $1"
        ));
        let rows = sqlx::query(sql)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(message_from_row)
            .collect::<Result<_, _>>()?)
    }
    async fn message(&self, id: &str) -> Result<Option<MessageDetail>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS}, body_json FROM messages WHERE id = $1"
        ));
        let Some(row) = sqlx::query(sql).bind(id).fetch_optional(&self.read).await? else {
            return Ok(None);
        };
        let message = message_from_row(&row)?;
        let body: String = row.try_get("body_json")?;
        let attempts = sqlx::query(
            "SELECT attempt_no, started_at, finished_at, outcome, error_code, detail FROM attempts
             WHERE message_id = $1 ORDER BY attempt_no",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(AttemptRow {
                attempt_no: opt_u32(r.try_get("attempt_no")?).unwrap_or(0),
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                outcome: r.try_get("outcome")?,
                error_code: r.try_get("error_code")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let statuses = sqlx::query(
            "SELECT status, at, error_code, detail FROM message_statuses WHERE message_id = $1 ORDER BY at, rowid",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(StatusRow {
                status: r.try_get("status")?,
                at: r.try_get("at")?,
                error_code: r.try_get("error_code")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some(MessageDetail {
            message,
            body: serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            attempts,
            statuses,
        }))
    }
    async fn template_reach(
        &self,
        sender_id: Option<&str>,
        since: Millis,
    ) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT to_number) FROM messages WHERE ($1 IS NULL OR sender_id = $1) AND kind = 'template'
                 AND state IN ('accepted', 'sent', 'delivered', 'read') AND created_at > $2",
        )
        .bind(sender_id)
        .bind(since)
        .fetch_one(&self.read)
        .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
