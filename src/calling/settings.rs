//! `[calling]` configuration and the `calling` object Ringback posts to
//! `/{phone-number-id}/settings` (reference `cloud-api.md` §7.2; values as in Meta's docs,
//! upper case, where the OpenAPI file disagrees).

use serde::Deserialize;
use serde_json::{Value, json};

use super::Limits;
use crate::config::BusinessHours;

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

    pub fn limits(&self) -> Limits {
        Limits {
            requests_per_day: self.requests_per_day,
            requests_per_week: self.requests_per_week,
            connected_calls_per_day: self.connected_calls_per_day,
            unanswered_before_prompt: self.unanswered_before_prompt,
            unanswered_before_revoke: self.unanswered_before_revoke,
        }
    }

    /// The body of `POST /{phone-number-id}/settings`, or None when `status` is "".
    pub fn settings_body(&self, hours: Option<&BusinessHours>) -> Option<Value> {
        if self.status.is_empty() {
            return None;
        }
        let on_off = |b: bool| if b { "ENABLED" } else { "DISABLED" };
        let mut calling = json!({
            "status": self.status,
            "callback_permission_status": on_off(self.callback_permission),
        });
        if let Some(h) = hours.filter(|_| self.call_hours_from_business_hours) {
            calling["call_hours"] = call_hours(h);
        }
        Some(json!({ "calling": calling }))
    }
}

const DAYS: [&str; 7] = [
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
    "SUNDAY",
];

/// Business hours in Meta's `call_hours` shape (`HHMM` times, IANA time zone).
pub fn call_hours(h: &BusinessHours) -> Value {
    let hhmm = |t: jiff::civil::Time| format!("{:02}{:02}", t.hour(), t.minute());
    let weekly: Vec<Value> = DAYS
        .iter()
        .zip(h.days.iter())
        .filter_map(|(day, span)| {
            span.map(|(open, close)| {
                json!({"day_of_week": day, "open_time": hhmm(open), "close_time": hhmm(close)})
            })
        })
        .collect();
    json!({
        "status": "ENABLED",
        "timezone_id": h.timezone.iana_name().unwrap_or("UTC"),
        "weekly_operating_hours": weekly,
    })
}

/// Applies `[calling]` to every sender's number settings, in the background: a failure is
/// logged with Meta's reason and does not stop the server.
pub async fn apply_at_start(settings: &crate::config::Settings, client: &crate::cloud_api::Client) {
    let Some(body) = settings
        .calling
        .settings_body(settings.business_hours.as_ref())
    else {
        return;
    };
    for sender in settings.senders.clone() {
        let (client, body) = (client.clone(), body.clone());
        tokio::spawn(async move {
            match client
                .update_number_settings(&sender.phone_number_id, &sender.access_token, &body)
                .await
            {
                Ok(_) => {
                    tracing::info!(phone_number_id = %sender.phone_number_id, status = %body["calling"]["status"], "Calling settings applied.")
                }
                Err(e) => {
                    tracing::warn!(phone_number_id = %sender.phone_number_id, error.message = %e, "Could not apply the calling settings; see `ringback calling settings`.")
                }
            }
        });
    }
}
