//! `[calling]`: WhatsApp Business Calling settings and the limits Ringback keeps locally.
//! `calling::settings` turns it into the `calling` object of `/{phone-number-id}/settings`;
//! the `calling` module applies the limits.

use serde::Deserialize;

/// `[calling]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallingConfig {
    /// "" leaves Meta's calling settings alone; "ENABLED" or "DISABLED" is applied to every
    /// sender at start and by `ringback calling apply`.
    pub status: String,
    pub callback_permission: bool,
    /// Publish `[missed_call.business_hours]` as the numbers' call hours.
    pub call_hours_from_business_hours: bool,
    /// Reject a ringing user call after this many seconds (0 = never; Meta times out at 30–60 s).
    pub reject_after_seconds: u32,
    pub requests_per_day: usize,
    pub requests_per_week: usize,
    pub connected_calls_per_day: usize,
    pub unanswered_before_prompt: u32,
    pub unanswered_before_revoke: u32,
}

impl CallingConfig {
    /// Checks values; the text says how to fix them.
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.status.as_str(), "" | "ENABLED" | "DISABLED") {
            return Err(format!(
                "calling.status '{}' must be \"\", \"ENABLED\" or \"DISABLED\"",
                self.status
            ));
        }
        if self.reject_after_seconds > 60 {
            return Err(format!(
                "calling.reject_after_seconds {} is longer than Meta lets a call ring (30–60 s); use 0–60",
                self.reject_after_seconds
            ));
        }
        if self.unanswered_before_prompt == 0 || self.unanswered_before_revoke == 0 {
            return Err(
                "calling.unanswered_before_prompt and unanswered_before_revoke must be at least 1"
                    .into(),
            );
        }
        Ok(())
    }
}
