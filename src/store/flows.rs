//! Flows: their versions, runs and each run's timeline (see [`crate::flows`]).
//!
//! A run is a row whose `state_json` is the interpreter's [`crate::flows::engine::Run`] and
//! whose `due_at` says when the runner takes it up next: a delay or a wait is a due time, not
//! a sleeping task. Each change of a run is one transaction with the timeline lines it adds
//! (and, when it failed, the `flow.failed` fact), so a crash repeats at most the step in flight.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::StoreError;
use crate::events::Fact;
use crate::time::Millis;

/// One version of a flow's file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowVersion {
    /// `name@` and the first 12 hex digits of the source's SHA-256.
    pub version: String,
    pub name: String,
    pub source: String,
    /// The file it was read from, or `api`.
    pub origin: String,
    pub created_at: Millis,
}

/// A flow as it runs now: its current version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRow {
    pub name: String,
    pub version: String,
    pub enabled: bool,
    pub updated_at: Millis,
}

/// A run to start.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub id: String,
    pub flow: String,
    pub version: String,
    pub trigger_key: String,
    pub contact: Option<String>,
    /// `running` (due at once) for a run a trigger starts.
    pub status: String,
    pub due_at: Millis,
    /// The run's state as JSON text, serialized once by whoever starts the run.
    pub state: String,
    pub created_at: Millis,
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub id: String,
    pub flow: String,
    pub version: String,
    pub trigger_key: String,
    pub contact: Option<String>,
    /// `running`, `sleeping`, `awaiting_reply`, `done`, `failed` or `cancelled`.
    pub status: String,
    pub due_at: Option<Millis>,
    #[serde(skip)]
    pub state: Value,
    /// A reply delivered to a run awaiting one, not yet taken.
    #[serde(skip)]
    pub reply: Option<Value>,
    pub error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What [`FlowStore::save_run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunSaved {
    Saved,
    /// The run was cancelled meanwhile: nothing was written.
    Cancelled,
    /// The message's idempotency key holds a message already (a crash after an earlier
    /// attempt queued it): nothing was written; the step's outcome must name that message.
    KeyTaken,
}

/// A run's new state after the runner took it up.
#[derive(Debug, Clone, PartialEq)]
pub struct RunUpdate {
    pub id: String,
    pub status: String,
    pub due_at: Option<Millis>,
    /// The run's state as JSON text (serialized straight from the run, no `Value` between).
    pub state: String,
    pub error: Option<String>,
    pub at: Millis,
    /// A send the run's last action queued: written in the same transaction, so the step's
    /// outcome and its message are stored together or not at all (and not when the run was
    /// cancelled meanwhile, or when its idempotency key is taken: [`RunSaved`]).
    pub message: Option<crate::store::NewMessage>,
}

/// One line of a run's timeline: a step taken, an action's outcome, a wait.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepLine {
    pub seq: u32,
    pub at: Millis,
    pub step: String,
    pub kind: String,
    /// The action's key (`3:remind#1`), from which a send's idempotency key is made.
    pub action_key: Option<String>,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<String>,
}

/// Which runs a list shows, newest first.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub flow: Option<String>,
    pub status: Option<String>,
    /// Runs created before this one in the list's order.
    pub before: Option<(Millis, String)>,
    pub limit: u32,
}

#[async_trait]
pub trait FlowStore: Send + Sync {
    /// Stores a version (once) and makes it the flow's current one.
    async fn put_flow(&self, v: &FlowVersion, enabled: bool) -> Result<(), StoreError>;
    async fn flows(&self) -> Result<Vec<FlowRow>, StoreError>;
    async fn flow_version(&self, version: &str) -> Result<Option<FlowVersion>, StoreError>;
    /// Starts the runs not started yet (by trigger key), hands replies to runs awaiting one
    /// (`(run id, message)`), and moves the trigger follower's cursor, in one transaction.
    /// Returns the ids of the runs it started.
    async fn start_runs(
        &self,
        runs: &[NewRun],
        replies: &[(String, Value)],
        cursor: Option<i64>,
    ) -> Result<Vec<String>, StoreError>;
    /// The trigger follower's cursor: the last published event it has read (before its first
    /// pass, the newest event; `None` when there is none).
    async fn flow_cursor(&self) -> Result<Option<i64>, StoreError>;
    /// Runs due by `now`, the earliest first.
    async fn due_runs(&self, now: Millis, limit: u32) -> Result<Vec<RunRow>, StoreError>;
    /// When the next run is due.
    async fn next_run_due(&self) -> Result<Option<Millis>, StoreError>;
    /// Runs of `contact` awaiting a reply.
    async fn runs_awaiting(&self, contact: &str) -> Result<Vec<RunRow>, StoreError>;
    /// Writes a run's new state, appends its timeline lines (numbered after the last), inserts
    /// its message and, when given, journals `fact`, in one transaction. A run cancelled
    /// meanwhile stays cancelled, and a message whose idempotency key is taken writes nothing
    /// (see [`RunSaved`]).
    async fn save_run(
        &self,
        update: RunUpdate,
        lines: Vec<StepLine>,
        fact: Option<Fact>,
    ) -> Result<RunSaved, StoreError>;
    async fn run(&self, id: &str) -> Result<Option<RunRow>, StoreError>;
    async fn run_by_trigger(&self, trigger_key: &str) -> Result<Option<RunRow>, StoreError>;
    async fn runs(&self, q: &RunQuery) -> Result<Vec<RunRow>, StoreError>;
    async fn run_timeline(&self, id: &str) -> Result<Vec<StepLine>, StoreError>;
    /// Takes up a failed or cancelled run again from `state` (a rerun); `false` when the run
    /// is not failed or cancelled.
    async fn reopen_run(&self, id: &str, state: &Value, now: Millis) -> Result<bool, StoreError>;
    /// Ends a run that has not ended; `false` when there is none to cancel.
    async fn cancel_run(&self, id: &str, reason: &str, now: Millis) -> Result<bool, StoreError>;
}
