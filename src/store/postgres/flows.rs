//! Flows and their runs on PostgreSQL: the shared queries of [`crate::store::twin_flows`], and
//! the two writes every run makes as sqlx transactions.

use super::PostgresStore;

crate::store::twin_flows::twin_flow_store!(PostgresStore, pool, sqlx::postgres::PgRow);

impl PostgresStore {
    async fn start_runs_impl(
        &self,
        runs: &[NewRun],
        replies: &[(String, Value)],
        cursor: Option<i64>,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.tx().await?;
        let mut started = Vec::new();
        for r in runs {
            let done = sqlx::query(
                "INSERT INTO flow_runs (id, flow, version, trigger_key, contact, status, due_at,
                     state_json, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
                 ON CONFLICT (trigger_key) DO NOTHING",
            )
            .bind(&r.id)
            .bind(&r.flow)
            .bind(&r.version)
            .bind(&r.trigger_key)
            .bind(&r.contact)
            .bind(&r.status)
            .bind(r.due_at)
            .bind(&r.state)
            .bind(r.created_at)
            .execute(tx.as_mut())
            .await?;
            if done.rows_affected() == 1 {
                started.push(r.id.clone());
            }
        }
        for (id, message) in replies {
            // Only a run still waiting takes it, and only the first reply.
            sqlx::query(
                "UPDATE flow_runs SET reply_json = $2, due_at = $3
                 WHERE id = $1 AND status = 'awaiting_reply' AND reply_json IS NULL",
            )
            .bind(id)
            .bind(message.to_string())
            .bind(message["at"].as_i64().unwrap_or(0))
            .execute(tx.as_mut())
            .await?;
        }
        if let Some(c) = cursor {
            sqlx::query(
                "INSERT INTO flow_cursor (name, event_id) VALUES ('events', $1)
                 ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id",
            )
            .bind(c)
            .execute(tx.as_mut())
            .await?;
        }
        tx.commit().await?;
        Ok(started)
    }

    async fn save_run_impl(
        &self,
        u: RunUpdate,
        lines: Vec<StepLine>,
        fact: Option<Fact>,
    ) -> Result<RunSaved, StoreError> {
        let mut tx = self.tx().await?;
        // A reply is kept only while the run still waits for one.
        let n = sqlx::query(
            "UPDATE flow_runs SET status = $2, due_at = $3, state_json = $4, error = $5,
                 updated_at = $6,
                 reply_json = CASE WHEN $2 = 'awaiting_reply' THEN reply_json ELSE NULL END
             WHERE id = $1 AND status IN ('running', 'sleeping', 'awaiting_reply')",
        )
        .bind(&u.id)
        .bind(&u.status)
        .bind(u.due_at)
        .bind(&u.state)
        .bind(&u.error)
        .bind(u.at)
        .execute(tx.as_mut())
        .await?
        .rows_affected();
        // Returning before the commit rolls the transaction back: nothing is written.
        if n == 0 {
            return Ok(RunSaved::Cancelled);
        }
        if let Some(m) = &u.message
            && !super::insert_message(&mut tx, m).await?
        {
            return Ok(RunSaved::KeyTaken);
        }
        if !lines.is_empty() {
            let last: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(seq), 0) FROM flow_steps WHERE run_id = $1",
            )
            .bind(&u.id)
            .fetch_one(tx.as_mut())
            .await?;
            for (i, l) in lines.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO flow_steps (run_id, seq, at, step, kind, action_key, input_json,
                         output_json, error)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&u.id)
                .bind(last + 1 + i as i64)
                .bind(l.at)
                .bind(&l.step)
                .bind(&l.kind)
                .bind(&l.action_key)
                .bind(l.input.as_ref().map(Value::to_string))
                .bind(l.output.as_ref().map(Value::to_string))
                .bind(&l.error)
                .execute(tx.as_mut())
                .await?;
            }
        }
        if let Some(f) = &fact {
            super::conversations::journal_fact(tx.as_mut(), f).await?;
        }
        tx.commit().await?;
        if fact.is_some() {
            self.journaled.notify_one();
        }
        Ok(RunSaved::Saved)
    }
}
