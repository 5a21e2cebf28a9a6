//! `[retention]`: how long each kind of row is kept and how the retention worker runs.
//! The `retention` module runs the worker and decides, kind by kind, what may go.

use std::time::Duration;

use serde::Deserialize;

use crate::time::Millis;

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
    pub webhook_deliveries_days: u32,
    pub events_days: u32,
    pub conversations_days: u32,
    pub flow_runs_days: u32,
    pub assistant_memory_days: u32,
}

/// Meta redelivers an unacknowledged webhook for up to 7 days; an event pruned sooner would
/// no longer make its redelivery a duplicate, and it would be processed twice.
const MIN_EVENTS_DAYS: u32 = 7;

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
        Ok(RetentionSettings {
            interval: Duration::from_secs(self.interval_seconds),
            batch_rows: self.batch_rows,
            batch_pause: Duration::from_millis(self.batch_pause_ms),
            keep: Keep {
                messages: days(self.messages_days),
                attempts: days(self.attempts_days),
                statuses: days(self.statuses_days),
                inbound_messages: days(self.inbound_messages_days),
                inbound_events: days(self.inbound_events_days),
                raw_payloads: days(self.raw_payloads_days),
                calls: days(self.calls_days),
                contacts: days(self.contacts_days),
                number_events: days(self.number_events_days),
                webhook_deliveries: days(self.webhook_deliveries_days),
                events: days(self.events_days),
                conversations: days(self.conversations_days),
                flow_runs: days(self.flow_runs_days),
                assistant_memory: days(self.assistant_memory_days),
            },
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
    /// How long each kind of row is kept.
    pub keep: Keep,
    /// The missed-call reply cooldown: a contact is kept at least this long after a reply.
    pub cooldown_ms: Millis,
}

/// How long each kind of row is kept, one field per `<kind>_days` of `[retention]`
/// (`None` = keep forever). The `retention` module maps its kinds onto these fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub messages: Option<Duration>,
    pub attempts: Option<Duration>,
    pub statuses: Option<Duration>,
    pub inbound_messages: Option<Duration>,
    pub inbound_events: Option<Duration>,
    pub raw_payloads: Option<Duration>,
    pub calls: Option<Duration>,
    pub contacts: Option<Duration>,
    pub number_events: Option<Duration>,
    pub webhook_deliveries: Option<Duration>,
    pub events: Option<Duration>,
    pub conversations: Option<Duration>,
    pub flow_runs: Option<Duration>,
    pub assistant_memory: Option<Duration>,
}

impl Keep {
    /// The same limit for every kind.
    pub fn all(limit: Option<Duration>) -> Keep {
        Keep {
            messages: limit,
            attempts: limit,
            statuses: limit,
            inbound_messages: limit,
            inbound_events: limit,
            raw_payloads: limit,
            calls: limit,
            contacts: limit,
            number_events: limit,
            webhook_deliveries: limit,
            events: limit,
            conversations: limit,
            flow_runs: limit,
            assistant_memory: limit,
        }
    }
}

#[cfg(test)]
mod tests;
