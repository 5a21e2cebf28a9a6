//! Retention: old rows are deleted in small batches by a background worker, so the database
//! stops growing while Ringback runs for years.
//!
//! Each [`Kind`] of row has its own limit (`[retention]` in the configuration; 0 keeps it
//! forever). Every interval the worker asks the store to delete, kind by kind, at most
//! `batch_rows` rows older than the limit per transaction, pausing between batches so webhook
//! commits never wait long behind it. The store decides what is still needed and keeps it
//! whatever its age: unprocessed events, sends not in a final state with their attempts and
//! statuses, events a stored user message was read from, raw bodies an event was read from,
//! calls still ringing. Contacts are kept while their 24-hour window, free entry point or
//! reply cooldown could still matter.
//!
//! The consent ledger is never pruned: it is the evidence that a person opted in (or out),
//! which a business may have to show long after the fact, and it is small.
//!
//! SQLite reuses the pages freed by deletions, so the file stops growing at its high-water
//! mark instead of shrinking. `auto_vacuum` stays off on purpose: turning it on for an existing
//! database needs a full `VACUUM` (which rewrites the file while holding the writer), and
//! incremental vacuum moves pages around, fragmenting the tables the hot path reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::counter;
use serde::Deserialize;

use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::time::{HOUR_MS, Millis};

/// The kinds of rows retention prunes (defined with the store, which prunes them).
pub use crate::store::RowKind as Kind;

/// `[retention]` as written. See `config.default.toml` for each field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub interval_seconds: u64,
    pub batch_rows: u32,
    pub batch_pause_ms: u64,
    pub raw_payloads_days: u32,
    pub inbound_events_days: u32,
    pub inbound_messages_days: u32,
    pub messages_days: u32,
    pub attempts_days: u32,
    pub statuses_days: u32,
    pub calls_days: u32,
    pub contacts_days: u32,
    pub number_events_days: u32,
}

/// Meta redelivers an unacknowledged webhook for up to 7 days; an event pruned sooner would
/// no longer make its redelivery a duplicate, and it would be processed twice.
const MIN_EVENTS_DAYS: u32 = 7;

/// How long a contact is needed after its last activity whatever the limit: the 24-hour
/// window plus the 72-hour free entry point window a referral can open.
const CONTACT_MIN_MS: Millis =
    crate::window::CUSTOMER_SERVICE_WINDOW_MS + crate::window::FREE_ENTRY_POINT_MS;

impl RetentionConfig {
    /// Validates and converts; `cooldown_ms` is the missed-call reply cooldown, during which a
    /// contact is needed whatever its limit.
    pub fn settings(&self, cooldown_ms: Millis) -> Result<RetentionSettings, String> {
        if self.interval_seconds == 0 {
            return Err("retention.interval_seconds must be at least 1".into());
        }
        if !(1..=10_000).contains(&self.batch_rows) {
            return Err("retention.batch_rows must be between 1 and 10000".into());
        }
        if self.inbound_events_days != 0 && self.inbound_events_days < MIN_EVENTS_DAYS {
            return Err(format!(
                "retention.inbound_events_days = {} is too short: set 0 (keep forever) or at least {MIN_EVENTS_DAYS}, because Meta redelivers a webhook for up to {MIN_EVENTS_DAYS} days and a pruned event would be processed again",
                self.inbound_events_days
            ));
        }
        let days = |d: u32| (d > 0).then(|| Duration::from_secs(u64::from(d) * 86_400));
        let keep = Kind::ALL
            .iter()
            .map(|&k| {
                let d = match k {
                    Kind::Messages => self.messages_days,
                    Kind::Attempts => self.attempts_days,
                    Kind::Statuses => self.statuses_days,
                    Kind::InboundMessages => self.inbound_messages_days,
                    Kind::InboundEvents => self.inbound_events_days,
                    Kind::RawPayloads => self.raw_payloads_days,
                    Kind::Calls => self.calls_days,
                    Kind::Contacts => self.contacts_days,
                    Kind::NumberEvents => self.number_events_days,
                };
                (k, days(d))
            })
            .collect();
        Ok(RetentionSettings {
            interval: Duration::from_secs(self.interval_seconds),
            batch_rows: self.batch_rows,
            batch_pause: Duration::from_millis(self.batch_pause_ms),
            keep,
            cooldown_ms,
        })
    }
}

/// Validated retention settings.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// Time between two runs of the worker.
    pub interval: Duration,
    /// Most rows deleted in one transaction.
    pub batch_rows: u32,
    /// Pause between two batches, so other writers get the lock.
    pub batch_pause: Duration,
    /// Every kind in [`Kind::ALL`] order, with its limit (`None` = keep forever).
    pub keep: Vec<(Kind, Option<Duration>)>,
    /// The missed-call reply cooldown: a contact is kept at least this long after a reply.
    pub cooldown_ms: Millis,
}

impl RetentionSettings {
    /// Rows of `kind` older than this (unix ms) may be pruned at `now`; `None` = keep forever.
    pub fn cutoff(&self, kind: Kind, now: Millis) -> Option<Millis> {
        let keep = self.keep.iter().find(|(k, _)| *k == kind)?.1?;
        let keep_ms = Millis::try_from(keep.as_millis()).unwrap_or(Millis::MAX);
        let mut cutoff = now.saturating_sub(keep_ms);
        if kind == Kind::Contacts {
            // A short limit must not forget a window or a cooldown that is still running.
            cutoff = cutoff
                .min(now.saturating_sub(CONTACT_MIN_MS))
                .min(now.saturating_sub(self.cooldown_ms));
        }
        Some(cutoff)
    }
}

/// Rows pruned by one run, per kind, in [`Kind::ALL`] order.
pub type RunCounts = Vec<(Kind, u64)>;

/// Runs [`prune_once`] every `settings.interval` until shutdown.
pub async fn run(store: Arc<dyn Store>, settings: RetentionSettings, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(settings.interval) => {}
            _ = shutdown.wait() => return,
        }
        let started = Instant::now();
        let counts = prune_once(store.as_ref(), &settings, crate::time::now_ms(), &shutdown).await;
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        let summary = counts
            .iter()
            .map(|(k, n)| format!("{}={n}", k.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        tracing::info!(
            total,
            pruned = %summary,
            took_ms = started.elapsed().as_millis() as u64,
            "Retention run finished."
        );
    }
}

/// Prunes every kind that has a limit, as of `now`, in batches; stops early on shutdown.
/// A store error skips the kind until the next run (the rows are still there then).
pub async fn prune_once(
    store: &dyn Store,
    settings: &RetentionSettings,
    now: Millis,
    shutdown: &Shutdown,
) -> RunCounts {
    let mut counts = Vec::with_capacity(settings.keep.len());
    for &(kind, _) in &settings.keep {
        let Some(before) = settings.cutoff(kind, now) else {
            continue;
        };
        let mut pruned = 0u64;
        while !shutdown.is_triggered() {
            match store.prune(kind, before, settings.batch_rows).await {
                Ok(n) => {
                    pruned += n;
                    counter!("ringback_retention_pruned_rows_total", "kind" => kind.as_str())
                        .increment(n);
                    if n < u64::from(settings.batch_rows) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(kind = kind.as_str(), error.message = %e, "Retention could not prune a batch; it tries again next run.");
                    break;
                }
            }
            tokio::time::sleep(settings.batch_pause).await;
        }
        counts.push((kind, pruned));
    }
    counts
}

/// One day in milliseconds, for tests and callers that think in days.
pub const DAY_MS: Millis = 24 * HOUR_MS;

#[cfg(test)]
mod tests;
