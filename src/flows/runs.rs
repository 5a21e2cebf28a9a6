//! What people do with flows and runs, for the API and the CLI alike: post a flow, start a
//! run (an HTTP hook, a manual start), cancel one, rerun a failed one from its failed step.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Notify;

use super::catalog::{Catalog, Loaded, PutError};
use super::engine::{Run, Status};
use super::follower::new_run;
use super::triggers;
use crate::cloud_api::template::Template;
use crate::store::{RunRow, Store, StoreError};
use crate::time::Millis;

/// The flows of one server: the catalog, the store, and the runner's wake-up.
#[derive(Clone)]
pub struct Flows {
    pub store: Arc<dyn Store>,
    pub catalog: Catalog,
    pub wake: Arc<Notify>,
}

/// Why a run could not be started or changed: each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no flow named '{0}' (see GET /api/v1/flows)")]
    NoFlow(String),
    #[error("flow '{name}' is started by {on}, not {how}")]
    WrongTrigger {
        name: String,
        on: String,
        how: &'static str,
    },
    #[error("no run with id {0}")]
    NoRun(String),
    #[error("run {id} is {status}: {what}")]
    WrongState {
        id: String,
        status: String,
        what: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A run started (or found: the same key was given before).
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub id: Option<String>,
    pub duplicate: bool,
}

impl Flows {
    /// The current version of flow `name`, enabled or not.
    pub async fn flow(&self, name: &str) -> Result<Option<Arc<Loaded>>, StoreError> {
        self.catalog.named(name).await
    }

    /// Stores a flow posted through the API.
    pub async fn put(
        &self,
        source: &str,
        templates: &[Template],
        now: Millis,
    ) -> Result<Arc<Loaded>, PutError> {
        self.catalog
            .put(source, "", "api", Some(templates), now)
            .await
    }

    /// Starts a run of flow `name` with `input` as its trigger: `how` is `http` (a hook call)
    /// or `manual` (the API; any flow may be started so). `key` makes a retried call start
    /// one run.
    pub async fn start(
        &self,
        name: &str,
        how: &'static str,
        input: Value,
        key: Option<&str>,
        now: Millis,
    ) -> Result<Started, RunError> {
        let flow = self
            .flow(name)
            .await?
            .ok_or_else(|| RunError::NoFlow(name.to_string()))?;
        if how == "http" && flow.flow.trigger.on != "http" {
            return Err(RunError::WrongTrigger {
                name: name.to_string(),
                on: flow.flow.trigger.on.clone(),
                how: "an HTTP hook",
            });
        }
        let key = match key {
            Some(k) => format!("{how}:{name}:{k}"),
            None => format!("{how}:{name}:{}", uuid::Uuid::now_v7().simple()),
        };
        let contact = triggers::contact(&input);
        let run = new_run(&flow, key.clone(), input, contact, now);
        let started = self.store.start_runs(&[run], &[], None).await?;
        self.wake.notify_one();
        Ok(match started.into_iter().next() {
            Some(id) => Started {
                id: Some(id),
                duplicate: false,
            },
            None => Started {
                id: self.store.run_by_trigger(&key).await?.map(|r| r.id),
                duplicate: true,
            },
        })
    }

    /// Cancels a run that has not ended.
    pub async fn cancel(&self, id: &str, now: Millis) -> Result<RunRow, RunError> {
        let row = self.run(id).await?;
        if !self
            .store
            .cancel_run(id, "cancelled by a person", now)
            .await?
        {
            return Err(RunError::WrongState {
                id: id.to_string(),
                status: row.status,
                what: "only a running, sleeping or waiting run can be cancelled",
            });
        }
        self.run(id).await
    }

    /// Takes a failed (or cancelled) run up again at the step where it stopped, with a fresh
    /// count of attempts; what it did before is kept.
    pub async fn rerun(&self, id: &str, now: Millis) -> Result<RunRow, RunError> {
        let row = self.run(id).await?;
        let wrong = |what| RunError::WrongState {
            id: id.to_string(),
            status: row.status.clone(),
            what,
        };
        if row.status != "failed" && row.status != "cancelled" {
            return Err(wrong("only a failed or cancelled run can be rerun"));
        }
        let mut run: Run = serde_json::from_value(row.state.clone())
            .map_err(|_| wrong("its stored state cannot be read"))?;
        run.status = Status::Running;
        run.attempt = 0;
        run.acting = None;
        let state = serde_json::to_value(&run).unwrap_or(Value::Null);
        if !self.store.reopen_run(id, &state, now).await? {
            return Err(wrong("only a failed or cancelled run can be rerun"));
        }
        self.wake.notify_one();
        self.run(id).await
    }

    pub async fn run(&self, id: &str) -> Result<RunRow, RunError> {
        self.store
            .run(id)
            .await?
            .ok_or_else(|| RunError::NoRun(id.to_string()))
    }
}
