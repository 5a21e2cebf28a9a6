//! Where runs come from: published events (and replies to runs waiting for one), schedules,
//! and direct starts (an HTTP hook, the API).
//!
//! The follower reads the published events after its cursor and, in one transaction, starts a
//! run per (event, matching flow) — the trigger key `event:{id}:{flow}` is unique, so an event
//! read twice after a crash starts one run — hands each customer's message to that
//! customer's runs waiting for a reply, and moves the cursor. It starts at the newest event
//! the first time, so a flow added to a busy install does not run for last month's calls.
//!
//! Schedules fire at their cron's times in their time zone; the key
//! `schedule:{flow}:{time}` makes a time fire once, whichever node or restart gets there. A
//! time missed while the server was down is not made up.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::catalog::{Catalog, Loaded};
use super::engine::Run;
use super::triggers;
use crate::shutdown::Shutdown;
use crate::store::{NewRun, Store, StoreError};
use crate::time::{Millis, now_ms};

/// Events read per pass.
const BATCH: u32 = 256;

/// A new run of `flow` from `trigger` for `contact`.
pub fn new_run(
    flow: &Loaded,
    trigger_key: String,
    trigger: Value,
    contact: Value,
    now: Millis,
) -> NewRun {
    let phone = contact["phone"].as_str().map(str::to_string);
    let run = Run::start(trigger, contact, now);
    NewRun {
        id: format!("run_{}", uuid::Uuid::now_v7().simple()),
        flow: flow.flow.name.clone(),
        version: flow.version.clone(),
        trigger_key,
        contact: phone,
        status: "running".into(),
        due_at: now,
        state: serde_json::to_string(&run).unwrap_or_else(|_| "null".into()),
        created_at: now,
    }
}

/// Follows the published events.
#[derive(Clone)]
pub struct Follower {
    pub store: Arc<dyn Store>,
    pub catalog: Catalog,
    pub published: watch::Sender<i64>,
    /// The runner's: woken when runs become due.
    pub wake: Arc<Notify>,
}

impl Follower {
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut published = self.published.subscribe();
        let mut backoff = crate::retry::Backoff::store_write();
        // The starting point is stored first: read again later, "the newest event" would
        // have moved past the events published meanwhile.
        while let Err(e) = self.begin().await {
            tracing::error!(error.message = %e, "Reading the flows' event cursor failed; retrying.");
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = shutdown.wait() => return,
            }
        }
        loop {
            let wait = match self.pass(now_ms()).await {
                Ok(n) if n >= BATCH as usize => continue,
                Ok(_) => {
                    backoff.reset();
                    Duration::from_secs(1)
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "Starting flow runs from events failed; retrying.");
                    backoff.next_delay()
                }
            };
            tokio::select! {
                _ = published.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Stores the cursor where it stands (the newest event, the first time).
    pub async fn begin(&self) -> Result<(), StoreError> {
        let cursor = self.store.flow_cursor().await?.unwrap_or(0);
        self.store.start_runs(&[], &[], Some(cursor)).await?;
        Ok(())
    }

    /// Reads the events after the cursor that a flow starts on or a waiting run takes (a
    /// customer's message); returns how many.
    pub async fn pass(&self, now: Millis) -> Result<usize, StoreError> {
        let cursor = self.store.flow_cursor().await?.unwrap_or(0);
        // Read before the events: one publisher writes events in id order, so every event up
        // to `newest` is in what the query below sees, and when it returns less than a batch
        // the cursor passes the events of other types up to there (none is read again).
        let newest = self.store.latest_event_id().await?;
        if newest <= cursor {
            return Ok(0);
        }
        let flows = self.catalog.current().await?;
        // Only those types are read: reading and parsing every event a send publishes, for
        // flows that start on none of them, cost a tenth of a run's CPU in the benchmark.
        let mut types: Vec<String> = flows.iter().map(|f| f.flow.trigger.on.clone()).collect();
        types.push("message.received".into());
        types.sort();
        types.dedup();
        let events = self.store.events_after(cursor, &types, BATCH).await?;
        let last = match events.last().map(|e| e.id) {
            Some(id) if events.len() >= BATCH as usize => id,
            read => read.map_or(newest, |id| id.max(newest)),
        };
        let mut runs = Vec::new();
        let mut replies = Vec::new();
        for e in &events {
            for f in &flows {
                if triggers::matches(&f.flow.trigger, &e.kind, &e.data) {
                    let key = format!("event:{}:{}", e.id, f.flow.name);
                    runs.push(new_run(
                        f,
                        key,
                        e.data.clone(),
                        triggers::contact(&e.data),
                        now,
                    ));
                }
            }
            if e.kind == "message.received"
                && let Some(phone) = e.data.pointer("/customer/phone").and_then(Value::as_str)
            {
                for waiting in self.store.runs_awaiting(phone).await? {
                    let m = &e.data["message"];
                    replies.push((
                        waiting.id,
                        json!({"text": m["text"], "type": m["type"], "wamid": m["id"],
                            "reply_id": m["reply_id"], "at": now}),
                    ));
                }
            }
        }
        let started = self.store.start_runs(&runs, &replies, Some(last)).await?;
        if !started.is_empty() || !replies.is_empty() {
            metrics::counter!("ringback_flow_runs_started_total").increment(started.len() as u64);
            self.wake.notify_one();
        }
        Ok(events.len())
    }
}

/// Fires schedule triggers.
#[derive(Clone)]
pub struct Schedules {
    pub store: Arc<dyn Store>,
    pub catalog: Catalog,
    pub wake: Arc<Notify>,
}

/// The longest sleep before the flows are read again (a flow added, changed or disabled).
const RECHECK: Millis = 30_000;

impl Schedules {
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut after = now_ms();
        loop {
            let until = match self.fire_due(after, now_ms()).await {
                Ok((fired_upto, next)) => {
                    after = fired_upto;
                    next.unwrap_or(i64::MAX).min(now_ms() + RECHECK)
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "Firing flow schedules failed; retrying.");
                    now_ms() + 1_000
                }
            };
            let wait = Duration::from_millis((until - now_ms()).max(0) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Starts a run of each schedule flow whose time in `(after, now]` has come; returns
    /// `now` and the next time any schedule fires.
    pub async fn fire_due(
        &self,
        after: Millis,
        now: Millis,
    ) -> Result<(Millis, Option<Millis>), StoreError> {
        let mut runs = Vec::new();
        let mut next: Option<Millis> = None;
        for f in self.catalog.current().await? {
            let t = &f.flow.trigger;
            let (Some(cron), Some(zone)) = (&t.cron, &t.time_zone) else {
                continue;
            };
            if t.on != "schedule" {
                continue;
            }
            let Ok(from) = jiff::Timestamp::from_millisecond(after) else {
                continue;
            };
            let mut at = super::schedule::next_fire(cron, zone, from);
            while let Ok(fire) = at {
                let ms = fire.as_millisecond();
                if ms > now {
                    next = Some(next.map_or(ms, |n| n.min(ms)));
                    break;
                }
                let when = crate::time::display(ms);
                let key = format!("schedule:{}:{when}", f.flow.name);
                runs.push(new_run(
                    &f,
                    key,
                    json!({"scheduled_at": when}),
                    json!({}),
                    now,
                ));
                at = super::schedule::next_fire(cron, zone, fire);
            }
        }
        if !runs.is_empty() {
            self.store.start_runs(&runs, &[], None).await?;
            self.wake.notify_one();
        }
        Ok((now, next))
    }
}
