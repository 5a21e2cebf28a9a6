//! Reply choice: what to send a caller we missed, and why.
//!
//! Inside the caller's 24-hour customer service window Ringback may send free-form text
//! (with reply buttons when configured); outside it, only the approved template. Business
//! hours select the after-hours variant. The result is the exact Cloud API body plus a
//! sentence explaining the choice, stored with the message.

use jiff::tz::TimeZone;

use crate::cloud_api::wire;
use crate::config::BusinessHours;
use crate::config::reply::ReplySettings;
use crate::phone::PhoneE164;
use crate::time::Millis;
use crate::window::{self, Window};

/// Everything the choice depends on.
pub struct ReplyInput<'a> {
    pub message_id: &'a str,
    pub caller: &'a PhoneE164,
    pub caller_name: Option<&'a str>,
    pub business_name: &'a str,
    pub last_inbound_at: Option<Millis>,
    pub call_at: Millis,
    pub now: Millis,
}

/// The chosen message.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyPlan {
    /// `template`, `text` or `interactive`.
    pub kind: &'static str,
    pub body: serde_json::Value,
    pub reason: String,
}

/// Picks the message for a missed call.
pub fn plan(
    input: &ReplyInput<'_>,
    cfg: &ReplySettings,
    hours: Option<&BusinessHours>,
    tz: &TimeZone,
) -> ReplyPlan {
    let after_hours = hours.is_some_and(|h| !h.is_open(input.call_at));
    let fill = |s: &str| fill_placeholders(s, input, &cfg.unknown_caller_name, tz);
    let hours_note = if after_hours {
        ", outside business hours"
    } else {
        ""
    };
    match window::at(input.last_inbound_at, input.now) {
        Window::Open { closes_at } => {
            let text_src = if after_hours && !cfg.after_hours_text.is_empty() {
                &cfg.after_hours_text
            } else {
                &cfg.text
            };
            let text = fill(text_src);
            let left_min = (closes_at - input.now) / 60_000;
            let why = format!(
                "customer service window open (caller wrote within 24 h, {left_min} min left){hours_note}"
            );
            if cfg.buttons.is_empty() {
                ReplyPlan {
                    kind: "text",
                    body: wire::text(input.caller.as_str(), &text, input.message_id),
                    reason: format!("{why} → free-form text"),
                }
            } else {
                ReplyPlan {
                    kind: "interactive",
                    body: wire::reply_buttons(
                        input.caller.as_str(),
                        &text,
                        &cfg.buttons,
                        input.message_id,
                    ),
                    reason: format!(
                        "{why} → free-form text with {} reply buttons",
                        cfg.buttons.len()
                    ),
                }
            }
        }
        Window::Closed => {
            let name = if after_hours && !cfg.after_hours_template.is_empty() {
                &cfg.after_hours_template
            } else {
                &cfg.template
            };
            let params: Vec<String> = cfg.template_params.iter().map(|p| fill(p)).collect();
            ReplyPlan {
                kind: "template",
                body: wire::template(
                    input.caller.as_str(),
                    name,
                    &cfg.language,
                    &params,
                    input.message_id,
                ),
                reason: format!(
                    "customer service window closed (no message from the caller in 24 h){hours_note} → template {name} ({})",
                    cfg.language
                ),
            }
        }
    }
}

/// Why a missed-call reply was refused before sending, blaming the right party: when the
/// call event itself carries a value the reply cannot use (a call time no calendar can show),
/// the event is at fault and the configuration is fine; otherwise the configured reply does
/// not fit the approved template.
pub fn refusal_reason(
    decided: &str,
    refusal: &crate::cloud_api::rules::Refusal,
    input: &ReplyInput<'_>,
) -> String {
    match event_problem(input) {
        Some(problem) => format!(
            "{decided}, but the reply could not be filled from the call event: {problem} (Meta error {} would follow: {}); the event's data is at fault, not the configuration",
            refusal.code, refusal.details
        ),
        None => format!(
            "{decided}, but the reply was refused before sending: {} (Meta error {}); fix [missed_call.reply] in the configuration",
            refusal.details, refusal.code
        ),
    }
}

/// A value of the call event that no placeholder can render.
pub fn event_problem(input: &ReplyInput<'_>) -> Option<String> {
    jiff::Timestamp::from_millisecond(input.call_at)
        .err()
        .map(|_| {
            format!(
                "the call time ({} ms since the epoch) is not a date {{call_time}} can show",
                input.call_at
            )
        })
}

/// Replaces `{caller_name}`, `{business_name}`, `{call_time}` and `{caller_number}`.
pub fn fill_placeholders(
    s: &str,
    input: &ReplyInput<'_>,
    unknown_name: &str,
    tz: &TimeZone,
) -> String {
    let name = input
        .caller_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(unknown_name);
    let time = jiff::Timestamp::from_millisecond(input.call_at)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%H:%M on %a %-d %b")
                .to_string()
        })
        .unwrap_or_default();
    s.replace("{caller_name}", name)
        .replace("{business_name}", input.business_name)
        .replace("{call_time}", &time)
        .replace("{caller_number}", input.caller.as_str())
}

#[cfg(test)]
mod tests;
