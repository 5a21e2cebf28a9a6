//! [`FlowStore`](super::FlowStore), written once for both backends (see [`super::twin`] for
//! why that works), except the two hot writes (see the macro).

/// `$store`: the backend's store type; `$read`: its read pool field; `$row`: its row type.
/// The backend supplies `self.tx()` and the two writes every run makes, `start_runs_impl`
/// and `save_run_impl`: SQLite's join its writer thread's group commits (one fsync for
/// every run saved meanwhile), PostgreSQL's are sqlx transactions.
macro_rules! twin_flow_store {
    ($store:ty, $read:ident, $row:ty) => {
        use async_trait::async_trait;
        use serde_json::Value;
        use sqlx::Row;

        use $crate::events::Fact;
        use $crate::store::{
            FlowRow, FlowStore, FlowVersion, NewRun, RunQuery, RunRow, RunSaved, RunUpdate, StepLine,
            StoreError,
        };
        use $crate::time::Millis;

        fn json_of(text: Option<String>) -> Option<Value> {
            text.and_then(|t| serde_json::from_str(&t).ok())
        }

        fn run_from_row(r: &$row) -> Result<RunRow, sqlx::Error> {
            let state: String = r.try_get("state_json")?;
            Ok(RunRow {
                id: r.try_get("id")?,
                flow: r.try_get("flow")?,
                version: r.try_get("version")?,
                trigger_key: r.try_get("trigger_key")?,
                contact: r.try_get("contact")?,
                status: r.try_get("status")?,
                due_at: r.try_get("due_at")?,
                state: serde_json::from_str(&state).unwrap_or(Value::Null),
                reply: json_of(r.try_get("reply_json")?),
                error: r.try_get("error")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        fn version_from_row(r: &$row) -> Result<FlowVersion, sqlx::Error> {
            Ok(FlowVersion {
                version: r.try_get("version")?,
                name: r.try_get("name")?,
                source: r.try_get("source")?,
                origin: r.try_get("origin")?,
                created_at: r.try_get("created_at")?,
            })
        }

        fn line_from_row(r: &$row) -> Result<StepLine, sqlx::Error> {
            Ok(StepLine {
                seq: u32::try_from(r.try_get::<i64, _>("seq")?).unwrap_or(u32::MAX),
                at: r.try_get("at")?,
                step: r.try_get("step")?,
                kind: r.try_get("kind")?,
                action_key: r.try_get("action_key")?,
                input: json_of(r.try_get("input_json")?),
                output: json_of(r.try_get("output_json")?),
                error: r.try_get("error")?,
            })
        }

        /// Statuses in which a run is not over.
        const LIVE: &str = "('running', 'sleeping', 'awaiting_reply')";

        #[async_trait]
        impl FlowStore for $store {
            async fn put_flow(&self, v: &FlowVersion, enabled: bool) -> Result<(), StoreError> {
                let mut tx = self.tx().await?;
                sqlx::query(
                    "INSERT INTO flow_versions (version, name, source, origin, created_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO NOTHING",
                )
                .bind(&v.version)
                .bind(&v.name)
                .bind(&v.source)
                .bind(&v.origin)
                .bind(v.created_at)
                .execute(tx.as_mut())
                .await?;
                sqlx::query(
                    "INSERT INTO flows (name, version, enabled, updated_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (name) DO UPDATE SET version = excluded.version,
                         enabled = excluded.enabled, updated_at = excluded.updated_at",
                )
                .bind(&v.name)
                .bind(&v.version)
                .bind(enabled)
                .bind(v.created_at)
                .execute(tx.as_mut())
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn flows(&self) -> Result<Vec<FlowRow>, StoreError> {
                let rows = sqlx::query("SELECT * FROM flows ORDER BY name")
                    .fetch_all(&self.$read)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push(FlowRow {
                        name: r.try_get("name")?,
                        version: r.try_get("version")?,
                        enabled: r.try_get("enabled")?,
                        updated_at: r.try_get("updated_at")?,
                    });
                }
                Ok(out)
            }

            async fn flow_version(&self, version: &str) -> Result<Option<FlowVersion>, StoreError> {
                let row = sqlx::query("SELECT * FROM flow_versions WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&self.$read)
                    .await?;
                Ok(row.as_ref().map(version_from_row).transpose()?)
            }

            async fn start_runs(
                &self,
                runs: &[NewRun],
                replies: &[(String, Value)],
                cursor: Option<i64>,
            ) -> Result<Vec<String>, StoreError> {
                self.start_runs_impl(runs, replies, cursor).await
            }

            async fn flow_cursor(&self) -> Result<Option<i64>, StoreError> {
                // Before the first pass: the newest event, so flows start with what happens next.
                let row = sqlx::query(
                    "SELECT COALESCE((SELECT event_id FROM flow_cursor WHERE name = 'events'),
                                     (SELECT MAX(id) FROM events)) AS at",
                )
                .fetch_one(&self.$read)
                .await?;
                Ok(row.try_get("at")?)
            }

            async fn due_runs(&self, now: Millis, limit: u32) -> Result<Vec<RunRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM flow_runs WHERE due_at IS NOT NULL AND due_at <= $1
                     ORDER BY due_at LIMIT $2",
                )
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.$read)
                .await?;
                Ok(rows.iter().map(run_from_row).collect::<Result<_, _>>()?)
            }

            async fn next_run_due(&self) -> Result<Option<Millis>, StoreError> {
                let row = sqlx::query("SELECT MIN(due_at) AS due FROM flow_runs WHERE due_at IS NOT NULL")
                    .fetch_one(&self.$read)
                    .await?;
                Ok(row.try_get("due")?)
            }

            async fn runs_awaiting(&self, contact: &str) -> Result<Vec<RunRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM flow_runs WHERE contact = $1 AND status = 'awaiting_reply'
                     ORDER BY created_at",
                )
                .bind(contact)
                .fetch_all(&self.$read)
                .await?;
                Ok(rows.iter().map(run_from_row).collect::<Result<_, _>>()?)
            }

            async fn save_run(
                &self,
                u: RunUpdate,
                lines: Vec<StepLine>,
                fact: Option<Fact>,
            ) -> Result<RunSaved, StoreError> {
                self.save_run_impl(u, lines, fact).await
            }

            async fn run(&self, id: &str) -> Result<Option<RunRow>, StoreError> {
                let row = sqlx::query("SELECT * FROM flow_runs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.$read)
                    .await?;
                Ok(row.as_ref().map(run_from_row).transpose()?)
            }

            async fn run_by_trigger(&self, trigger_key: &str) -> Result<Option<RunRow>, StoreError> {
                let row = sqlx::query("SELECT * FROM flow_runs WHERE trigger_key = $1")
                    .bind(trigger_key)
                    .fetch_optional(&self.$read)
                    .await?;
                Ok(row.as_ref().map(run_from_row).transpose()?)
            }

            async fn runs(&self, q: &RunQuery) -> Result<Vec<RunRow>, StoreError> {
                let (before_at, before_id) = q.before.clone().unwrap_or((Millis::MAX, String::new()));
                let rows = sqlx::query(
                    "SELECT * FROM flow_runs
                     WHERE ($1 IS NULL OR flow = $1) AND ($2 IS NULL OR status = $2)
                       AND (created_at < $3 OR (created_at = $3 AND id < $4) OR $4 = '')
                     ORDER BY created_at DESC, id DESC LIMIT $5",
                )
                .bind(&q.flow)
                .bind(&q.status)
                .bind(before_at)
                .bind(before_id)
                .bind(i64::from(q.limit))
                .fetch_all(&self.$read)
                .await?;
                Ok(rows.iter().map(run_from_row).collect::<Result<_, _>>()?)
            }

            async fn run_timeline(&self, id: &str) -> Result<Vec<StepLine>, StoreError> {
                let rows = sqlx::query("SELECT * FROM flow_steps WHERE run_id = $1 ORDER BY seq")
                    .bind(id)
                    .fetch_all(&self.$read)
                    .await?;
                Ok(rows.iter().map(line_from_row).collect::<Result<_, _>>()?)
            }

            async fn reopen_run(&self, id: &str, state: &Value, now: Millis) -> Result<bool, StoreError> {
                let mut tx = self.tx().await?;
                let n = sqlx::query(
                    "UPDATE flow_runs SET status = 'running', due_at = $3, state_json = $2, error = NULL,
                         updated_at = $3
                     WHERE id = $1 AND status IN ('failed', 'cancelled')",
                )
                .bind(id)
                .bind(state.to_string())
                .bind(now)
                .execute(tx.as_mut())
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }

            async fn cancel_run(&self, id: &str, reason: &str, now: Millis) -> Result<bool, StoreError> {
                let mut tx = self.tx().await?;
                let sql = format!(
                    "UPDATE flow_runs SET status = 'cancelled', due_at = NULL, error = $2, updated_at = $3,
                         reply_json = NULL
                     WHERE id = $1 AND status IN {LIVE}"
                );
                let n = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .bind(reason)
                    .bind(now)
                    .execute(tx.as_mut())
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }
        }
    };
}

pub(crate) use twin_flow_store;
