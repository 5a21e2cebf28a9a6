//! Retention: old rows are deleted in small batches by a background worker, so the database
//! stops growing while Ringback runs for years.
//!
//! Each [`Kind`] of row has its own limit (`[retention]` in the configuration; 0 keeps it
//! forever). Every interval the worker asks the store to delete, kind by kind, at most
//! `batch_rows` rows older than the limit per transaction, pausing between batches so webhook
//! commits never wait long behind it. The store decides what is still needed and keeps it
//! whatever its age: unprocessed events, sends not in a final state with their attempts and
//! statuses, events a stored user message was read from, raw bodies an event was read from,
//! calls still ringing, pending webhook deliveries, events a delivery points at, open
//! conversations. Contacts are kept while their 24-hour window, free entry point or reply
//! cooldown could still matter.
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

use crate::config::retention::RetentionSettings;
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::time::{HOUR_MS, Millis};

/// The kinds of rows retention prunes (defined with the store, which prunes them).
pub use crate::store::RowKind as Kind;

/// How long a contact is needed after its last activity whatever the limit: the 24-hour
/// window plus the 72-hour free entry point window a referral can open.
const CONTACT_MIN_MS: Millis =
    crate::window::CUSTOMER_SERVICE_WINDOW_MS + crate::window::FREE_ENTRY_POINT_MS;

impl RetentionSettings {
    /// How long rows of `kind` are kept; `None` = forever.
    pub fn limit(&self, kind: Kind) -> Option<Duration> {
        let k = &self.keep;
        match kind {
            Kind::Messages => k.messages,
            Kind::Attempts => k.attempts,
            Kind::Statuses => k.statuses,
            Kind::InboundMessages => k.inbound_messages,
            Kind::InboundEvents => k.inbound_events,
            Kind::RawPayloads => k.raw_payloads,
            Kind::Calls => k.calls,
            Kind::Contacts => k.contacts,
            Kind::NumberEvents => k.number_events,
            Kind::WebhookDeliveries => k.webhook_deliveries,
            Kind::Events => k.events,
            Kind::Conversations => k.conversations,
            Kind::FlowRuns => k.flow_runs,
            Kind::AssistantMemory => k.assistant_memory,
        }
    }

    /// Rows of `kind` older than this (unix ms) may be pruned at `now`; `None` = keep forever.
    pub fn cutoff(&self, kind: Kind, now: Millis) -> Option<Millis> {
        let keep = self.limit(kind)?;
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
    let mut counts = Vec::with_capacity(Kind::ALL.len());
    for kind in Kind::ALL {
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
