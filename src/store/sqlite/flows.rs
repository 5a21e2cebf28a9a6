//! Flows and their runs on SQLite: the shared queries of [`crate::store::twin_flows`], and the
//! two writes every run makes — starting runs and saving a run — on the writer thread, so
//! the runs saved meanwhile share one commit.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;

crate::store::twin_flows::twin_flow_store!(SqliteStore, read, sqlx::sqlite::SqliteRow);

impl SqliteStore {
    async fn start_runs_impl(
        &self,
        runs: &[NewRun],
        replies: &[(String, Value)],
        cursor: Option<i64>,
    ) -> Result<Vec<String>, StoreError> {
        let (runs, replies) = (runs.to_vec(), replies.to_vec());
        let result = self
            .writer
            .run(move |c| start_runs(c, &runs, &replies, cursor))
            .await;
        self.health.observe(result, |_| true)
    }

    async fn save_run_impl(
        &self,
        u: RunUpdate,
        lines: Vec<StepLine>,
        fact: Option<Fact>,
    ) -> Result<RunSaved, StoreError> {
        let journaled = fact.is_some();
        let result = self
            .writer
            .run(move |c| save_run(c, &u, &lines, fact.as_ref()))
            .await;
        let saved = self.health.observe(result, |_| true)?;
        if saved == RunSaved::Saved && journaled {
            self.journaled.notify_one();
        }
        Ok(saved)
    }
}

fn start_runs(
    c: &Connection,
    runs: &[NewRun],
    replies: &[(String, Value)],
    cursor: Option<i64>,
) -> Result<Vec<String>, StoreError> {
    let mut insert = c.prepare_cached(
        "INSERT INTO flow_runs (id, flow, version, trigger_key, contact, status, due_at, state_json,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) ON CONFLICT (trigger_key) DO NOTHING",
    )?;
    let mut started = Vec::new();
    for r in runs {
        let n = insert.execute(params![
            r.id,
            r.flow,
            r.version,
            r.trigger_key,
            r.contact,
            r.status,
            r.due_at,
            r.state,
            r.created_at
        ])?;
        if n == 1 {
            started.push(r.id.clone());
        }
    }
    let mut reply = c.prepare_cached(
        "UPDATE flow_runs SET reply_json = ?2, due_at = ?3
         WHERE id = ?1 AND status = 'awaiting_reply' AND reply_json IS NULL",
    )?;
    for (id, message) in replies {
        reply.execute(params![
            id,
            message.to_string(),
            message["at"].as_i64().unwrap_or(0)
        ])?;
    }
    if let Some(cursor) = cursor {
        c.prepare_cached(
            "INSERT INTO flow_cursor (name, event_id) VALUES ('events', ?1)
             ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id",
        )?
        .execute([cursor])?;
    }
    Ok(started)
}

fn save_run(
    c: &Connection,
    u: &RunUpdate,
    lines: &[StepLine],
    fact: Option<&Fact>,
) -> Result<RunSaved, StoreError> {
    // Checked before anything is written: this job's writes are kept unless it fails.
    if let Some(key) = u.message.as_ref().and_then(|m| m.idempotency_key.as_ref()) {
        let taken: Option<i64> = c
            .prepare_cached("SELECT 1 FROM messages WHERE idempotency_key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        if taken.is_some() {
            return Ok(RunSaved::KeyTaken);
        }
    }
    let n = c
        .prepare_cached(
            "UPDATE flow_runs SET status = ?2, due_at = ?3, state_json = ?4, error = ?5, updated_at = ?6,
                 reply_json = CASE WHEN ?2 = 'awaiting_reply' THEN reply_json ELSE NULL END
             WHERE id = ?1 AND status IN ('running', 'sleeping', 'awaiting_reply')",
        )?
        .execute(params![
            u.id,
            u.status,
            u.due_at,
            u.state,
            u.error,
            u.at
        ])?;
    if n == 0 {
        return Ok(RunSaved::Cancelled);
    }
    if let Some(m) = &u.message {
        super::effects::insert_message(c, m)?;
    }
    if !lines.is_empty() {
        let last: i64 = c
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM flow_steps WHERE run_id = ?1")?
            .query_row([&u.id], |r| r.get(0))?;
        let mut insert = c.prepare_cached(
            "INSERT INTO flow_steps (run_id, seq, at, step, kind, action_key, input_json, output_json, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (i, l) in lines.iter().enumerate() {
            insert.execute(params![
                u.id,
                last + 1 + i as i64,
                l.at,
                l.step,
                l.kind,
                l.action_key,
                l.input.as_ref().map(Value::to_string),
                l.output.as_ref().map(Value::to_string),
                l.error
            ])?;
        }
    }
    if let Some(f) = fact {
        super::conversations::journal(c, f)?;
    }
    Ok(RunSaved::Saved)
}
