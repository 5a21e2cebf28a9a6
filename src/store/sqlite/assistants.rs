//! Assistants' memory on SQLite: the shared queries of [`crate::store::twin_assistants`], and
//! the one write on the writer thread, so the replies recorded meanwhile share one commit.

use rusqlite::{Connection, params};

use super::SqliteStore;
use crate::store::twin_assistants::{
    INSERT_ANSWER, INSERT_QUESTION, INSERT_THREAD, SELECT_THREAD, UPDATE_THREAD, merged_variables,
};

crate::store::twin_assistants::twin_assistant_store!(SqliteStore, read, sqlx::sqlite::SqliteRow);

impl SqliteStore {
    async fn record_assistant_reply_impl(&self, r: &RecordedReply) -> Result<String, StoreError> {
        let r = r.clone();
        let result = self.writer.run(move |c| record(c, &r)).await;
        self.health.observe(result, |_| true)
    }
}

/// `$N` as rusqlite numbers parameters (`?N`): SQLite reads `$2` as a *named* parameter and
/// numbers names in order of appearance, so positional values would land in the wrong places.
fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

fn record(c: &Connection, r: &RecordedReply) -> Result<String, StoreError> {
    c.prepare_cached(&numbered(INSERT_THREAD))?
        .execute(params![r.new_thread_id, r.assistant, r.customer_id, r.at])?;
    let (id, vars): (String, String) = c
        .prepare_cached(SELECT_THREAD)?
        .query_row(params![r.assistant, r.customer_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    c.prepare_cached(&numbered(INSERT_QUESTION))?
        .execute(params![id, r.at, r.question])?;
    c.prepare_cached(&numbered(INSERT_ANSWER))?
        .execute(params![
            id,
            r.at,
            r.answer,
            r.source,
            r.prompt_tokens,
            r.completion_tokens,
            r.cost,
            r.latency_ms,
            r.error
        ])?;
    c.prepare_cached(&numbered(UPDATE_THREAD))?
        .execute(params![
            id,
            r.at,
            merged_variables(&vars, &r.recorded),
            r.hand_off_reason
        ])?;
    Ok(id)
}
