//! The `calling` object Ringback posts to `/{phone-number-id}/settings` (reference
//! `cloud-api.md` §7.2; values as in Meta's docs, upper case, where the OpenAPI file
//! disagrees), built from `[calling]`, which [`crate::config::calling`] defines and checks.

use serde_json::{Value, json};

use super::Limits;
use crate::config::BusinessHours;
use crate::config::calling::CallingConfig;

impl CallingConfig {
    /// The call-permission limits the [`PermissionBook`](super::PermissionBook) enforces.
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
