//! The durable runner: takes up runs that are due, moves each through its flow with the
//! interpreter, performs the actions it asks for and stores the run (see below for when).
//!
//! - A run is due when it was just started, when its delay or retry wait is over, when its
//!   wait for a reply timed out, or when a reply reached it. Between those it is a row with a
//!   due time: nothing polls it. The runner sleeps until the earliest due time, or until it is
//!   woken (a run started, a reply delivered).
//! - Each action's outcome is stored (with the run's new state, in one transaction) before the
//!   next action is performed and before the run waits or ends; a plain send's message is
//!   written in that same transaction. A crash repeats at most the last action, with the same
//!   key; a send is then either not written yet or found by its idempotency key (see
//!   [`super::actions`]).
//! - Runs of one customer are taken up one after the other, never at once, so two runs do not
//!   interleave their sends to one person; other customers' runs go concurrently, up to
//!   `flows.concurrency`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;

use super::actions::Actions;
use super::catalog::Catalog;
use super::engine::{Engine, Next, Run, Status};
use super::render::Context;
use crate::events::Fact;
use crate::shutdown::Shutdown;
use crate::store::{RunRow, RunSaved, RunUpdate, StepLine, Store, StoreError};
use crate::time::{Millis, now_ms};

/// Runs read per pass.
const BATCH: u32 = 512;
/// The longest sleep without looking at the store (a run started on another node).
const IDLE: Duration = Duration::from_secs(1);

/// The runner's dependencies.
#[derive(Clone)]
pub struct Runner {
    pub store: Arc<dyn Store>,
    pub catalog: Catalog,
    pub actions: Actions,
    /// Woken when runs become due now (started, replied to, rerun).
    pub wake: Arc<Notify>,
    /// `RINGBACK_FLOW_…` variables, read once.
    pub env: Arc<Vec<(String, String)>>,
}

impl Runner {
    /// Runs until `shutdown`; store errors are logged and retried.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut backoff = crate::retry::Backoff::store_write();
        loop {
            let wait = match self.pass(now_ms()).await {
                Ok(n) if n >= BATCH as usize => continue,
                Ok(_) => {
                    backoff.reset();
                    self.until_next_due().await
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "Running flows failed; retrying.");
                    backoff.next_delay()
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return,
            }
        }
    }

    async fn until_next_due(&self) -> Duration {
        match self.store.next_run_due().await {
            Ok(Some(at)) => Duration::from_millis((at - now_ms()).clamp(0, 1_000) as u64),
            _ => IDLE,
        }
    }

    /// Takes up every run due by `now`; returns how many it read.
    pub async fn pass(&self, now: Millis) -> Result<usize, StoreError> {
        let due = self.store.due_runs(now, BATCH).await?;
        let n = due.len();
        // One queue per customer (a run without one is its own), taken in due order.
        let mut queues: Vec<Vec<RunRow>> = Vec::new();
        let mut by_contact: HashMap<String, usize> = HashMap::new();
        for row in due {
            match row.contact.clone() {
                Some(c) => {
                    let i = *by_contact.entry(c).or_insert_with(|| {
                        queues.push(Vec::new());
                        queues.len() - 1
                    });
                    queues[i].push(row);
                }
                None => queues.push(vec![row]),
            }
        }
        let permits = Arc::new(tokio::sync::Semaphore::new(
            self.actions.settings.flows.concurrency,
        ));
        let mut work = tokio::task::JoinSet::new();
        for queue in queues {
            let (runner, permits) = (self.clone(), permits.clone());
            work.spawn(async move {
                let _permit = permits.acquire_owned().await;
                for row in queue {
                    runner.take_up_once(row).await?;
                }
                Ok::<(), StoreError>(())
            });
        }
        let mut first_error = None;
        while let Some(done) = work.join_next().await {
            if let Ok(Err(e)) = done {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(n)
    }

    /// Takes a run up. When a send's idempotency key turns out to hold a message already (a
    /// crash after an earlier attempt queued it, before its outcome was stored), nothing of
    /// that save was written: the run is taken up again from what is stored, its sends queued
    /// at once, so the outbox answers with the message that holds the key and the step's
    /// outcome names it.
    async fn take_up_once(&self, row: RunRow) -> Result<(), StoreError> {
        let id = row.id.clone();
        if self.take_up(row, true).await? == RunSaved::KeyTaken
            && let Some(row) = self.store.run(&id).await?
        {
            self.take_up(row, false).await?;
        }
        Ok(())
    }

    /// Moves one run on until it waits or ends, storing it before each action after the first
    /// and when it waits or ends; a plain send's message is written by that save when
    /// `defer_sends`, queued at once otherwise.
    async fn take_up(&self, row: RunRow, defer_sends: bool) -> Result<RunSaved, StoreError> {
        let Some(loaded) = self.catalog.version(&row.version).await? else {
            let why = format!("version {} of the flow cannot be read", row.version);
            return self.fail_unreadable(&row, why).await;
        };
        let mut run: Run = match serde::Deserialize::deserialize(&row.state) {
            Ok(r) => r,
            Err(e) => {
                let why = format!("the run's stored state cannot be read: {e}");
                return self.fail_unreadable(&row, why).await;
            }
        };
        let now = now_ms();
        let base = Context::new(
            [
                (
                    "flow",
                    json!({"name": loaded.flow.name, "version": loaded.version}),
                ),
                (
                    "run",
                    json!({"id": row.id, "started_at": crate::time::display(run.started_at)}),
                ),
                ("now", json!(crate::time::display(now))),
            ],
            self.env.iter().cloned(),
        );
        let engine = Engine {
            flow: &loaded.flow,
            base: &base,
            zone: self.actions.settings.timezone.clone(),
        };
        let mut lines = Vec::new();
        // An action completed and not stored yet: stored with the run's next wait or end, or
        // before its next action, whichever comes first (one write per run for most flows),
        // with the message it queued, if any.
        let mut unsaved = false;
        let mut message = None;
        let mut next = match (&run.status, row.reply) {
            (Status::AwaitingReply { .. }, Some(reply)) => {
                let step = current(&engine, &run);
                lines.push(line(now, &step, "reply", None, Some(reply.clone()), None));
                engine.reply(&mut run, reply, now)
            }
            (Status::AwaitingReply { until }, None) if *until <= now => {
                let step = current(&engine, &run);
                lines.push(line(now, &step, "timeout", None, None, None));
                engine.resume(&mut run, now)
            }
            _ => engine.resume(&mut run, now),
        };
        loop {
            let now = now_ms();
            let (status, due_at, error, fact) = match next {
                Next::Act(action) => {
                    // The outcome of the action before is stored before this one is
                    // performed: a crash repeats no action that completed.
                    if unsaved {
                        let saving = Saving {
                            status: "running",
                            due_at: Some(now),
                            error: None,
                            message: message.take(),
                            fact: None,
                        };
                        let saved = self
                            .save(&row.id, &run, saving, std::mem::take(&mut lines))
                            .await?;
                        if saved != RunSaved::Saved {
                            return Ok(saved);
                        }
                    }
                    let performed = self
                        .actions
                        .perform(
                            &row.id,
                            &action,
                            &run.contact,
                            &run.trigger,
                            now,
                            defer_sends,
                        )
                        .await;
                    let outcome = performed.outcome;
                    message = performed.message;
                    metrics::counter!("ringback_flow_actions_total", "kind" => action.kind, "outcome" => if outcome.is_ok() { "ok" } else { "failed" }).increment(1);
                    let (output, error) = match &outcome {
                        Ok(v) => (Some(v.clone()), None),
                        Err(f) => (
                            None,
                            Some(format!(
                                "{}: {}{}",
                                f.code,
                                f.message,
                                if f.retryable { " (retryable)" } else { "" }
                            )),
                        ),
                    };
                    lines.push(StepLine {
                        seq: 0,
                        at: now,
                        step: action.step.clone(),
                        kind: action.kind.to_string(),
                        action_key: Some(action.key.clone()),
                        input: Some(action.input.clone()),
                        output,
                        error,
                    });
                    next = engine.complete(&mut run, outcome, now);
                    unsaved = true;
                    continue;
                }
                Next::Sleep { until } => {
                    let step = current(&engine, &run);
                    let kind = match run.status {
                        Status::Sleeping { retry: true, .. } => "retry_wait",
                        _ => "delay",
                    };
                    lines.push(line(
                        now,
                        &step,
                        kind,
                        None,
                        Some(json!({"until": crate::time::display(until)})),
                        None,
                    ));
                    ("sleeping", Some(until), None, None)
                }
                Next::AwaitReply { until } => {
                    let step = current(&engine, &run);
                    lines.push(line(
                        now,
                        &step,
                        "wait_for_reply",
                        None,
                        Some(json!({"until": crate::time::display(until)})),
                        None,
                    ));
                    ("awaiting_reply", Some(until), None, None)
                }
                Next::Done => {
                    lines.push(line(now, "", "done", None, None, None));
                    metrics::counter!("ringback_flow_runs_total", "status" => "done").increment(1);
                    ("done", None, None, None)
                }
                Next::Failed { step, error } => {
                    lines.push(line(now, &step, "failed", None, None, Some(error.clone())));
                    metrics::counter!("ringback_flow_runs_total", "status" => "failed")
                        .increment(1);
                    let fact = Fact::FlowFailed {
                        flow: loaded.flow.name.clone(),
                        run_id: row.id.clone(),
                        step,
                        error: error.clone(),
                        contact: run.contact["phone"].as_str().map(str::to_string),
                        at: now,
                    };
                    ("failed", None, Some(error), Some(fact))
                }
            };
            let saving = Saving {
                status,
                due_at,
                error,
                message: message.take(),
                fact,
            };
            return self.save(&row.id, &run, saving, lines).await;
        }
    }

    /// Stores the run and what its last steps did (nothing at all unless it is
    /// [`RunSaved::Saved`]).
    async fn save(
        &self,
        id: &str,
        run: &Run,
        saving: Saving,
        lines: Vec<StepLine>,
    ) -> Result<RunSaved, StoreError> {
        let update = RunUpdate {
            id: id.to_string(),
            status: saving.status.to_string(),
            due_at: saving.due_at,
            state: serde_json::to_string(run).unwrap_or_else(|_| "null".into()),
            error: saving.error,
            at: now_ms(),
            message: saving.message,
        };
        let sender = update.message.as_ref().map(|m| m.sender_id.clone());
        let saved = self.store.save_run(update, lines, saving.fact).await?;
        if let (RunSaved::Saved, Some(sender)) = (saved, sender) {
            self.actions.saved(&sender);
        }
        Ok(saved)
    }

    /// A run that cannot go on (its version or state unreadable) fails with the reason.
    async fn fail_unreadable(&self, row: &RunRow, why: String) -> Result<RunSaved, StoreError> {
        tracing::error!(run = %row.id, flow = %row.flow, reason = %why, "A flow run cannot go on.");
        let now = now_ms();
        let fact = Fact::FlowFailed {
            flow: row.flow.clone(),
            run_id: row.id.clone(),
            step: String::new(),
            error: why.clone(),
            contact: row.contact.clone(),
            at: now,
        };
        let update = RunUpdate {
            id: row.id.clone(),
            status: "failed".into(),
            due_at: None,
            state: row.state.to_string(),
            error: Some(why.clone()),
            at: now,
            message: None,
        };
        let lines = vec![line(now, "", "failed", None, None, Some(why))];
        self.store.save_run(update, lines, Some(fact)).await
    }
}

/// A run's new status, and what is written with it.
struct Saving {
    status: &'static str,
    due_at: Option<Millis>,
    error: Option<String>,
    message: Option<crate::store::NewMessage>,
    fact: Option<Fact>,
}

fn current(engine: &Engine<'_>, run: &Run) -> String {
    engine
        .current(run)
        .map(|s| s.id.clone())
        .unwrap_or_default()
}

fn line(
    at: Millis,
    step: &str,
    kind: &str,
    input: Option<Value>,
    output: Option<Value>,
    error: Option<String>,
) -> StepLine {
    StepLine {
        seq: 0,
        at,
        step: step.to_string(),
        kind: kind.to_string(),
        action_key: None,
        input,
        output,
        error,
    }
}
