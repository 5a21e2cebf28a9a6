//! `[conversations]` and `[outbound_webhooks]`: when a conversation ends of inactivity, and
//! how events are delivered to other systems.

use std::time::Duration;

use serde::Deserialize;

use crate::time::Millis;

/// Twenty-four hours, the inactivity period when nothing else is set.
pub const DEFAULT_CONVERSATION_INACTIVITY_MS: Millis = 24 * crate::time::HOUR_MS;

/// `[conversations]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationsConfig {
    pub inactivity_minutes: u32,
}

/// `[outbound_webhooks]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundWebhooksConfig {
    pub request_timeout_ms: u64,
    pub allow_private_addresses: bool,
    pub disable_after_days: u32,
    pub concurrency: usize,
    pub retry_delays_ms: Vec<u64>,
}

/// Deliveries are retried for at least this long.
const MIN_RETRY_SPAN_MS: u64 = 3 * 24 * 3_600_000;

/// Validated `[outbound_webhooks]`.
#[derive(Debug, Clone)]
pub struct OutboundWebhookSettings {
    pub request_timeout: Duration,
    /// Endpoints on loopback, private or link-local addresses are allowed (a receiver on the
    /// same machine or network); refused by default, so the API cannot be used to probe them.
    pub allow_private_addresses: bool,
    /// An endpoint failing this long without a success is disabled.
    pub disable_after: Millis,
    /// Requests in flight per endpoint.
    pub concurrency: usize,
    /// When a failed delivery goes again: one delay per retry, then it is given up.
    pub retry: crate::retry::RetryPolicy,
}

impl OutboundWebhooksConfig {
    pub fn settings(&self) -> Result<OutboundWebhookSettings, String> {
        if !(100..=60_000).contains(&self.request_timeout_ms) {
            return Err(
                "outbound_webhooks.request_timeout_ms must be between 100 and 60000".into(),
            );
        }
        if self.disable_after_days < 3 {
            return Err(format!(
                "outbound_webhooks.disable_after_days = {} is too short: deliveries are retried for 3 days, so set 3 or more",
                self.disable_after_days
            ));
        }
        if !(1..=256).contains(&self.concurrency) {
            return Err("outbound_webhooks.concurrency must be between 1 and 256".into());
        }
        let span: u64 = self.retry_delays_ms.iter().sum();
        if span < MIN_RETRY_SPAN_MS {
            return Err(format!(
                "outbound_webhooks.retry_delays_ms add up to {:.1} hours: a receiver may be down for a weekend, so they must add up to 72 hours or more (lengthen the last delays)",
                span as f64 / 3_600_000.0
            ));
        }
        Ok(OutboundWebhookSettings {
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            allow_private_addresses: self.allow_private_addresses,
            disable_after: i64::from(self.disable_after_days) * 24 * crate::time::HOUR_MS,
            concurrency: self.concurrency,
            retry: crate::retry::RetryPolicy {
                delays_ms: self.retry_delays_ms.clone(),
                max_attempts: self.retry_delays_ms.len() as u32 + 1,
            },
        })
    }
}

/// Minutes as milliseconds, refusing 0 (a conversation that ends at once is no conversation).
pub fn inactivity_ms(field: &str, minutes: u32) -> Result<Millis, String> {
    if minutes == 0 {
        return Err(format!("{field} must be at least 1 (minutes)"));
    }
    Ok(i64::from(minutes) * 60_000)
}
