//! `[missed_call.reply]`: the texts Ringback sends a caller it missed, with the after-hours
//! variants from `[missed_call.business_hours]`. The `reply` module chooses among them.

use serde::Deserialize;

use super::{BusinessHoursConfig, ConfigError};

/// `[missed_call.reply]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyConfig {
    /// `false` leaves missed calls to flows on `call.missed`: nothing is sent by the built-in
    /// reply (the call is still recorded and published).
    pub builtin: bool,
    pub template: String,
    pub language: String,
    pub template_params: Vec<String>,
    pub text: String,
    pub buttons: Vec<String>,
    pub unknown_caller_name: String,
}

/// The reply texts from configuration (`[missed_call.reply]` and the after-hours variants).
#[derive(Debug, Clone)]
pub struct ReplySettings {
    pub builtin: bool,
    pub template: String,
    pub language: String,
    pub template_params: Vec<String>,
    pub text: String,
    pub buttons: Vec<String>,
    pub unknown_caller_name: String,
    pub after_hours_template: String,
    pub after_hours_text: String,
}

/// Checks the reply against WhatsApp's limits and joins the after-hours variants.
pub(super) fn build(
    reply: &ReplyConfig,
    bh: &BusinessHoursConfig,
) -> Result<ReplySettings, ConfigError> {
    if reply.buttons.len() > 3 {
        return Err(ConfigError::Invalid(format!(
            "missed_call.reply.buttons has {} entries; WhatsApp allows at most 3 reply buttons",
            reply.buttons.len()
        )));
    }
    if let Some(b) = reply
        .buttons
        .iter()
        .find(|b| b.chars().count() > 20 || b.trim().is_empty())
    {
        return Err(ConfigError::Invalid(format!(
            "missed_call.reply.buttons: '{b}' must be 1 to 20 characters (WhatsApp's limit for a button title)"
        )));
    }
    if reply.template.trim().is_empty() {
        return Err(ConfigError::Invalid("missed_call.reply.template is empty: outside the 24-hour window only an approved template can be sent".into()));
    }
    Ok(ReplySettings {
        builtin: reply.builtin,
        template: reply.template.clone(),
        language: reply.language.clone(),
        template_params: reply.template_params.clone(),
        text: reply.text.clone(),
        buttons: reply.buttons.clone(),
        unknown_caller_name: reply.unknown_caller_name.clone(),
        after_hours_template: bh.after_hours_template.clone(),
        after_hours_text: bh.after_hours_text.clone(),
    })
}
