//! PostgreSQL: the outbox: every outgoing message is a row before it is a request; claims, attempts and their outcomes.

use super::*;

/// One statement claims due sends of a number and records their `claimed` attempts. Rows
/// another node (or lane) has locked are skipped, not waited for, so two claimers never get
/// the same row and never block each other; the claim is leased to `$4` until `$5`.
const CLAIM: &str = "
WITH due AS (
    SELECT id FROM messages
    WHERE sender_id = $2 AND state = 'queued' AND next_attempt_at <= $1
    ORDER BY next_attempt_at LIMIT $3
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE messages m SET state = 'sending', attempts = m.attempts + 1, updated_at = $1,
        lease_owner = $4, lease_until = $5
    FROM due WHERE m.id = due.id
    RETURNING m.id, m.sender_id, m.to_number, m.body_json, m.attempts, m.next_attempt_at
),
recorded AS (
    INSERT INTO attempts (message_id, attempt_no, started_at, outcome)
    SELECT id, attempts, $1, 'claimed' FROM claimed
    ON CONFLICT (message_id, attempt_no) DO NOTHING
)
SELECT id, sender_id, to_number, body_json, attempts FROM claimed ORDER BY next_attempt_at, id";

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn message_by_idempotency_key(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM messages WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
    async fn enqueue(&self, m: &NewMessage) -> Result<Enqueued, StoreError> {
        let result = async {
            let mut tx = self.tx().await?;
            let inserted = insert_message(&mut tx, m).await?;
            let result = if inserted {
                Enqueued::New(m.id.clone())
            } else {
                // At READ COMMITTED this statement sees the row a concurrent enqueue committed
                // (ON CONFLICT waited for it).
                let id: String =
                    sqlx::query_scalar("SELECT id FROM messages WHERE idempotency_key = $1")
                        .bind(&m.idempotency_key)
                        .fetch_one(&mut *tx)
                        .await?;
                Enqueued::Existing(id)
            };
            tx.commit().await?;
            Ok(result)
        }
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
        let result = async {
            let mut conn = self.pool.acquire().await?;
            claim(&mut conn, sender_id, now, limit, node, lease_until).await
        }
        .await;
        self.health.observe(result, |c| !c.is_empty())
    }
    async fn start_attempts(
        &self,
        sends: &[ClaimedSend],
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        if sends.is_empty() {
            return Ok(Vec::new());
        }
        let result = async {
            let mut conn = self.pool.acquire().await?;
            start(&mut conn, sends, now).await
        }
        .await;
        self.health.observe(result, |_| true)
    }
    async fn record_attempts(
        &self,
        results: &[(ClaimedSend, AttemptOutcome)],
        now: Millis,
    ) -> Result<(), StoreError> {
        let result = async {
            let mut tx = self.tx().await?;
            let sends: Vec<&ClaimedSend> = results.iter().map(|(s, _)| s).collect();
            let states = effects::lock_for_attempts(&mut tx, &sends).await?;
            effects::record_attempts(&mut tx, results, &states, now).await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.journaled.notify_one();
        self.health.observe(result, |_| !results.is_empty())
    }
    async fn next_due(&self, sender_id: &str) -> Result<Option<Millis>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM messages WHERE sender_id = $1 AND state = 'queued'",
        )
        .bind(sender_id)
        .fetch_one(&self.pool)
        .await?)
    }
    async fn mark_in_flight_uncertain(
        &self,
        node: Option<&str>,
        now: Millis,
    ) -> Result<u64, StoreError> {
        // The sends left behind: this node's (it is starting again) and those whose lease lapsed.
        // Their in-flight attempts end as interrupted even when a status webhook has moved the
        // message on meanwhile (Meta may report `sent` before it answers).
        const LEFT_BEHIND: &str = "(lease_owner IS NULL OR lease_owner = $2 OR lease_until <= $1)";
        const LEFT: &str =
            "state = 'sending' AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until <= $1)";
        let mut tx = self.tx().await?;
        let requeued = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE messages SET state = 'queued', attempts = attempts - 1, next_attempt_at = $1, updated_at = $1,
                 lease_owner = NULL, lease_until = NULL
             WHERE {LEFT} AND EXISTS (SELECT 1 FROM attempts a WHERE a.message_id = messages.id
                 AND a.attempt_no = messages.attempts AND a.outcome = 'claimed')"
        )))
        .bind(now)
        .bind(node)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Their claimed-only attempts: the message went back to the queue above (no longer
        // `sending`), so its claim row is the one whose attempt number is now past the count.
        sqlx::query(
            "DELETE FROM attempts WHERE outcome = 'claimed'
                 AND attempt_no > (SELECT m.attempts FROM messages m WHERE m.id = attempts.message_id)",
        )
        .execute(&mut *tx)
        .await?;
        if requeued > 0 {
            tracing::info!(
                count = requeued,
                "Sends claimed but not started by a stopped node are queued again."
            );
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE attempts SET outcome = 'interrupted', finished_at = $1,
                 detail = 'the node stopped while this request was in flight; outcome unknown'
             WHERE outcome = 'in_flight' AND message_id IN (SELECT id FROM messages WHERE {LEFT_BEHIND})"
        )))
        .bind(now)
        .bind(node)
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE messages SET state = 'uncertain', updated_at = $1, lease_owner = NULL, lease_until = NULL,
                 last_error = 'in flight when its node stopped; waiting for a status webhook before resending'
             WHERE {LEFT}"
        )))
        .bind(now)
        .bind(node)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn requeue_uncertain(
        &self,
        before: Millis,
        now: Millis,
        max_attempts: u32,
    ) -> Result<UncertainResolved, StoreError> {
        let mut tx = self.tx().await?;
        let failed: Vec<String> = sqlx::query_scalar(
            "UPDATE messages SET state = 'failed', updated_at = $1, last_error = $3
             WHERE state = 'uncertain' AND updated_at <= $2 AND attempts >= $4 RETURNING id",
        )
        .bind(now)
        .bind(before)
        .bind(crate::store::UNCERTAIN_GIVE_UP)
        .bind(i64::from(max_attempts))
        .fetch_all(&mut *tx)
        .await?;
        let facts: Vec<_> = failed
            .iter()
            .map(|id| crate::events::given_up(id, now))
            .collect();
        super::conversations::journal(&mut tx, &facts).await?;
        let failed = failed.len() as u64;
        self.journaled.notify_one();
        let requeued = sqlx::query(
            "UPDATE messages SET state = 'queued', next_attempt_at = $1, updated_at = $1,
                 last_error = 'no status webhook arrived for the interrupted attempt; sending again'
             WHERE state = 'uncertain' AND updated_at <= $2",
        )
        .bind(now)
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(UncertainResolved { requeued, failed })
    }
    async fn lanes(&self) -> Result<Vec<LaneRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT sender_id,
                 COUNT(*) FILTER (WHERE state = 'queued') AS queued,
                 COUNT(*) FILTER (WHERE state = 'sending') AS sending,
                 COUNT(*) FILTER (WHERE state = 'uncertain') AS uncertain,
                 ARRAY_REMOVE(ARRAY_AGG(DISTINCT lease_owner) FILTER (WHERE state = 'sending'), NULL) AS nodes
             FROM messages WHERE state IN ('queued', 'sending', 'uncertain')
             GROUP BY sender_id ORDER BY sender_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let nodes: Option<Vec<String>> = r.try_get("nodes")?;
                Ok(LaneRow {
                    sender_id: r.try_get("sender_id")?,
                    queued: r.try_get("queued")?,
                    sending: r.try_get("sending")?,
                    uncertain: r.try_get("uncertain")?,
                    claimed_by: nodes.unwrap_or_default(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
    async fn outbox_depth(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE state IN ('queued', 'sending', 'uncertain')",
        )
        .fetch_one(&self.pool)
        .await?)
    }
    async fn list_messages(&self, limit: u32) -> Result<Vec<MessageRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY created_at DESC, id DESC LIMIT $1"
        ));
        let rows = sqlx::query(sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
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
        let Some(row) = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let message = message_from_row(&row)?;
        let body: String = row.try_get("body_json")?;
        let attempts = sqlx::query(
            "SELECT attempt_no, started_at, finished_at, outcome, error_code, detail FROM attempts
             WHERE message_id = $1 ORDER BY attempt_no",
        )
        .bind(id)
        .fetch_all(&self.pool)
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
        // SQLite breaks ties of `at` (Meta's timestamps are whole seconds) by rowid, i.e.
        // insertion order. PostgreSQL has no rowid and the table no sequence column: the
        // tuple's physical position (ctid) is insertion order for rows never updated, which
        // holds for all but statuses linked to their message after overtaking its response.
        let statuses = sqlx::query(
            "SELECT status, at, error_code, detail FROM message_statuses WHERE message_id = $1 ORDER BY at, ctid",
        )
        .bind(id)
        .fetch_all(&self.pool)
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
            "SELECT COUNT(DISTINCT to_number) FROM messages WHERE ($1::text IS NULL OR sender_id = $1) AND kind = 'template'
                 AND state IN ('accepted', 'sent', 'delivered', 'read') AND created_at > $2",
        )
        .bind(sender_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// Claims up to `limit` due sends of `sender_id` for `node` (see [`CLAIM`]), on `conn`: the
/// lanes' own claims and the processor's (in its transaction) share it.
pub(super) async fn claim(
    conn: &mut sqlx::PgConnection,
    sender_id: &str,
    now: Millis,
    limit: u32,
    node: &str,
    lease_until: Millis,
) -> Result<Vec<ClaimedSend>, StoreError> {
    let rows = sqlx::query(CLAIM)
        .bind(now)
        .bind(sender_id)
        .bind(i64::from(limit))
        .bind(node)
        .bind(lease_until)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ClaimedSend {
                message_id: r.try_get("id")?,
                sender_id: r.try_get("sender_id")?,
                to: r.try_get("to_number")?,
                body: r.try_get("body_json")?,
                attempt_no: opt_u32(r.try_get("attempts")?).unwrap_or(1),
                claimed_by: node.to_string(),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Marks claimed attempts started (see [`OutboxStore::start_attempts`]), on `conn`.
pub(super) async fn start(
    conn: &mut sqlx::PgConnection,
    sends: &[ClaimedSend],
    now: Millis,
) -> Result<Vec<bool>, StoreError> {
    if sends.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = sends.iter().map(|s| s.message_id.as_str()).collect();
    let numbers: Vec<i64> = sends.iter().map(|s| i64::from(s.attempt_no)).collect();
    let owners: Vec<&str> = sends.iter().map(|s| s.claimed_by.as_str()).collect();
    // Fenced on the row's owner: a send another node took over is not started here.
    let started: Vec<String> = sqlx::query_scalar(
        "UPDATE attempts a SET outcome = 'in_flight', started_at = $1
         FROM UNNEST($2::text[], $3::bigint[], $4::text[]) AS s(message_id, attempt_no, owner),
              messages m
         WHERE a.message_id = s.message_id AND a.attempt_no = s.attempt_no
             AND a.outcome = 'claimed' AND m.id = s.message_id AND m.lease_owner = s.owner
         RETURNING a.message_id",
    )
    .bind(now)
    .bind(&ids)
    .bind(&numbers)
    .bind(&owners)
    .fetch_all(&mut *conn)
    .await?;
    let started: std::collections::HashSet<String> = started.into_iter().collect();
    Ok(sends
        .iter()
        .map(|s| started.contains(&s.message_id))
        .collect())
}
