//! Configuration: one TOML file, environment overrides, validated once.
//!
//! [`Config`] is plain serde data, layered as built-in defaults (`config.default.toml`, also
//! printed by `ringback config example`) ← the `--config` file ← `RINGBACK_…` variables.
//! [`Config::build`] validates it into [`Settings`], the typed form the rest of the program
//! uses; nothing downstream re-validates.
//!
//! The layering is hand-written (about sixty lines) rather than the `config` crate because
//! senders are an array of tables and must be overridable per entry
//! (`RINGBACK_SENDERS__0__ACCESS_TOKEN`), which neither `config` nor figment can address.

use std::net::SocketAddr;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::phone::{PhoneE164, Region};

/// The commented default file.
pub const DEFAULT_TOML: &str = include_str!("config.default.toml");

/// Demo secrets shipped in the default file: fine on loopback with the sandbox, never exposed.
const DEMO_SECRETS: &[&str] = &[
    "ringback-demo-app-secret",
    "ringback-demo-verify-token",
    "ringback-demo-calls-secret",
    "ringback-demo-token",
];

/// The file as written (after layering). See `config.default.toml` for every field's meaning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub whatsapp: WhatsAppConfig,
    pub senders: Vec<SenderConfig>,
    pub missed_call: MissedCallConfig,
    pub twilio: TwilioConfig,
    pub calls: CallsConfig,
    pub calling: calling::CallingConfig,
    pub sip: telephony::SipConfig,
    pub asterisk: telephony::AsteriskConfig,
    pub freeswitch: telephony::FreeswitchConfig,
    pub outbox: OutboxConfig,
    pub sandbox: SandboxConfig,
    pub consent: ConsentConfig,
    /// Templates declared by hand, for a token without template-management permission.
    #[serde(default)]
    pub templates: Vec<TemplateConfig>,
    pub log: LogConfig,
    pub retention: retention::RetentionConfig,
    pub cluster: cluster::ClusterConfig,
    pub conversations: events::ConversationsConfig,
    pub outbound_webhooks: events::OutboundWebhooksConfig,
    pub flows: flows::FlowsConfig,
    pub console: console::ConsoleConfig,
    /// Business-specific AI assistants (`[[assistants]]`).
    #[serde(default)]
    pub assistants: Vec<assistants::AssistantConfig>,
    /// The environment variables that `[[assistants]]` name as `provider.api_key_env`, as
    /// the configuration was loaded (keys never live in the file).
    #[serde(skip)]
    pub provider_keys: Vec<(String, String)>,
    /// The `RINGBACK_FLOW_…` variables of the environment the configuration was loaded with:
    /// what flows read as `env.*` and where HTTP triggers find their secrets.
    #[serde(skip)]
    pub flow_env: Vec<(String, String)>,
    /// The merged configuration as TOML with secrets redacted ([`redact::effective`]): what
    /// the console's Settings page shows.
    #[serde(skip)]
    pub effective_toml: String,
}

/// One `[[templates]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    pub name: String,
    #[serde(default = "en_us")]
    pub language: String,
    /// MARKETING, UTILITY or AUTHENTICATION.
    pub category: String,
    /// The body with {{1}}… or {{name}} placeholders.
    pub body: String,
    /// Restrict to one WABA; empty = every sender's WABA.
    #[serde(default)]
    pub waba_id: String,
}

fn en_us() -> String {
    "en_US".into()
}

/// Opt-out and opt-in keywords and the confirmations sent for them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentConfig {
    pub stop_words: Vec<String>,
    pub start_words: Vec<String>,
    pub opt_out_confirmation: String,
    pub opt_in_confirmation: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub public_base_url: String,
    pub max_body_bytes: usize,
    pub api_token: SecretString,
    /// Seconds a connection may take to send a complete request header.
    pub header_read_timeout_seconds: u64,
    /// Seconds a connection may stay open with no byte read or written.
    pub idle_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub url: String,
    /// Where SIP/PBX calls wait while the store is unavailable; empty = next to the database.
    pub call_spool: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppConfig {
    pub api_base: String,
    pub api_version: String,
    pub app_secret: SecretString,
    pub verify_token: SecretString,
    pub request_timeout_ms: u64,
    pub template_sync_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    pub phone_number_id: String,
    pub waba_id: String,
    pub display_number: String,
    pub access_token: SecretString,
    pub business_name: String,
    #[serde(default)]
    pub lines: Vec<String>,
    /// Overrides `[conversations] inactivity_minutes` for this number.
    #[serde(default)]
    pub conversation_inactivity_minutes: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissedCallConfig {
    pub default_region: String,
    pub ring_timeout_seconds: u32,
    pub cooldown_minutes: u32,
    pub reply: reply::ReplyConfig,
    pub business_hours: BusinessHoursConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursConfig {
    pub enabled: bool,
    pub timezone: String,
    pub monday: String,
    pub tuesday: String,
    pub wednesday: String,
    pub thursday: String,
    pub friday: String,
    pub saturday: String,
    pub sunday: String,
    pub after_hours_template: String,
    pub after_hours_text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    pub auth_token: SecretString,
    pub forward_to: String,
    pub dial_timeout_seconds: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsConfig {
    pub secret: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    pub retry_delays_ms: Vec<u64>,
    pub max_attempts: u32,
    pub concurrency: usize,
    pub throughput_per_second: u32,
    pub messaging_tier: String,
    pub uncertain_resend_after_seconds: u64,
    pub offline_probe_seconds: u64,
    pub when_sender_offline: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    pub enabled: bool,
    pub listen: String,
    pub statuses: bool,
    pub status_delay_ms: u64,
    pub read_probability: f64,
    pub undeliverable_probability: f64,
    pub webhook_batch: usize,
    pub limits: bool,
    pub throughput_per_second: u32,
    /// Sent and received messages (and pending webhooks) the sandbox keeps; 0 = all.
    pub keep: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub filter: String,
    pub format: String,
}

/// A configuration problem, with the field it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults ← `file` (if any) ← environment (`RINGBACK_…`).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut merged = parse_toml(DEFAULT_TOML, "built-in defaults")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let user = parse_toml(&text, &path.display().to_string())?;
            merge(&mut merged, user);
        }
        let mut flow_env = Vec::new();
        let env: Vec<(String, String)> = env.into_iter().collect();
        for (key, value) in env.iter().cloned() {
            if key.starts_with(crate::flows::expr::ENV_PREFIX) && !key.contains("__") {
                flow_env.push((key, value));
                continue;
            }
            if let Some(path) = key.strip_prefix("RINGBACK_") {
                // Overrides always name a section and a field (`SECTION__FIELD`); other
                // RINGBACK_ variables (RINGBACK_CONFIG, RINGBACK_BIN, …) belong to tools.
                if !path.contains("__") {
                    continue;
                }
                set_path(&mut merged, &path.to_ascii_lowercase(), &value)
                    .map_err(|m| ConfigError::Invalid(format!("{key}: {m}")))?;
            }
        }
        let effective = redact::effective(&merged);
        let mut config =
            Config::deserialize(merged).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.flow_env = flow_env;
        config.effective_toml = effective;
        let named: Vec<&str> = config
            .assistants
            .iter()
            .filter_map(|a| a.provider.as_ref())
            .map(|p| p.api_key_env.trim())
            .filter(|v| !v.is_empty())
            .collect();
        config.provider_keys = env
            .into_iter()
            .filter(|(k, _)| named.contains(&k.as_str()))
            .collect();
        Ok(config)
    }

    /// Validates everything and returns the typed settings.
    pub fn build(&self) -> Result<Settings, ConfigError> {
        settings::build(self)
    }

    /// True when any secret still holds the demo value shipped in the default file.
    pub fn uses_demo_secrets(&self) -> bool {
        !self.demo_secret_fields().is_empty()
    }

    /// The secrets still holding a shipped demo value, as (field, environment variable).
    pub fn demo_secret_fields(&self) -> Vec<(String, String)> {
        let named = [
            (
                "whatsapp.app_secret",
                "WHATSAPP__APP_SECRET",
                &self.whatsapp.app_secret,
            ),
            (
                "whatsapp.verify_token",
                "WHATSAPP__VERIFY_TOKEN",
                &self.whatsapp.verify_token,
            ),
            ("calls.secret", "CALLS__SECRET", &self.calls.secret),
        ]
        .map(|(field, env, secret)| (field.to_string(), format!("RINGBACK_{env}"), secret));
        let senders = self.senders.iter().enumerate().map(|(i, s)| {
            (
                format!("senders[{i}].access_token"),
                format!("RINGBACK_SENDERS__{i}__ACCESS_TOKEN"),
                &s.access_token,
            )
        });
        named
            .into_iter()
            .chain(senders)
            .filter(|(_, _, secret)| is_demo_secret(secret))
            .map(|(field, env, _)| (field, env))
            .collect()
    }
}

/// Is `secret` one of the demo values shipped in the default file?
pub fn is_demo_secret(secret: &SecretString) -> bool {
    DEMO_SECRETS.contains(&secret.expose_secret())
}

fn parse_toml(text: &str, origin: &str) -> Result<toml::Value, ConfigError> {
    text.parse::<toml::Table>()
        .map(toml::Value::Table)
        .map_err(|e| ConfigError::Syntax {
            origin: origin.into(),
            message: e.to_string(),
        })
}

/// Tables merge key by key; anything else (including arrays) is replaced whole.
fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Sets `a__b__0__c` to `raw`. The value keeps the type of what it replaces: a string field
/// stays a string even if the value looks like a number (tokens often do).
fn set_path(root: &mut toml::Value, path: &str, raw: &str) -> Result<(), String> {
    let mut node = root;
    let parts: Vec<&str> = path.split("__").collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let next = match node {
            toml::Value::Table(t) => {
                if last {
                    let typed = typed_value(t.get(*part), raw)?;
                    t.insert((*part).to_string(), typed);
                    return Ok(());
                }
                // A section the file leaves out: an array when the next part is an index
                // (`ASSISTANTS__0__NAME` with no [[assistants]] written), else a table.
                let indexed = parts[i + 1].parse::<usize>().is_ok();
                t.entry((*part).to_string()).or_insert_with(|| {
                    if indexed {
                        toml::Value::Array(Vec::new())
                    } else {
                        toml::Value::Table(Default::default())
                    }
                })
            }
            toml::Value::Array(a) => {
                let idx: usize = part
                    .parse()
                    .map_err(|_| format!("'{part}' is not an array index"))?;
                if idx > a.len() {
                    return Err(format!(
                        "index {idx} skips entries (the array has {})",
                        a.len()
                    ));
                }
                if idx == a.len() {
                    a.push(toml::Value::Table(Default::default()));
                }
                if last {
                    a[idx] = typed_value(Some(&a[idx]), raw)?;
                    return Ok(());
                }
                &mut a[idx]
            }
            _ => return Err(format!("'{part}' is inside a value that is not a table")),
        };
        node = next;
    }
    Ok(())
}

fn typed_value(existing: Option<&toml::Value>, raw: &str) -> Result<toml::Value, String> {
    let parse_literal = || {
        format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .ok_or_else(|| format!("'{raw}' is not a TOML value of the expected type"))
    };
    match existing {
        None | Some(toml::Value::String(_)) => Ok(toml::Value::String(raw.to_string())),
        Some(_) => parse_literal(),
    }
}

pub mod assistants;
pub mod calling;
pub mod cluster;
pub mod console;
pub mod events;
pub mod flows;
pub mod http;
mod listeners;
pub mod redact;
pub mod reply;
pub mod retention;
pub use events::DEFAULT_CONVERSATION_INACTIVITY_MS;
pub mod settings;
pub mod telephony;
pub use settings::{BusinessHours, Sender, Settings};

/// Parses a listen address with a helpful message.
pub fn parse_listen(field: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        ConfigError::Invalid(format!(
            "{field} = '{s}' is not an address like 127.0.0.1:8080"
        ))
    })
}

/// Parses a configured E.164 number with the field name in the message.
pub fn parse_number(field: &str, s: &str) -> Result<PhoneE164, ConfigError> {
    PhoneE164::parse_configured(s).map_err(|e| ConfigError::Invalid(format!("{field}: {e}")))
}

/// Parses a region with the field name in the message.
pub fn parse_region(field: &str, s: &str) -> Result<Region, ConfigError> {
    s.parse()
        .map_err(|e| ConfigError::Invalid(format!("{field}: {e}")))
}

#[cfg(test)]
mod tests;
