//! `[console]`: the web console served beside the API.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `[console]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    pub enabled: bool,
    pub session_hours: u32,
    pub secure_cookies: bool,
}

/// Validated `[console]`.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    pub enabled: bool,
    /// How long a sign-in lasts.
    pub session_lifetime: Duration,
    /// The session cookie is sent over HTTPS only.
    pub secure_cookies: bool,
}

impl ConsoleConfig {
    /// Checks the section. A console reachable from other machines must run behind HTTPS:
    /// its passwords and session cookies would otherwise cross the network in clear text.
    pub(super) fn settings(&self, listen: SocketAddr) -> Result<ConsoleSettings, ConfigError> {
        if !(1..=24 * 30).contains(&self.session_hours) {
            return Err(ConfigError::Invalid(format!(
                "console.session_hours = {} is out of range: use 1 to 720 (30 days)",
                self.session_hours
            )));
        }
        if self.enabled && !self.secure_cookies && !listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "server.listen = {listen} is reachable from other machines, so the console's passwords and session cookies would cross the network in clear text; serve it over HTTPS (a TLS proxy in front) and set RINGBACK_CONSOLE__SECURE_COOKIES=true, or turn the console off with RINGBACK_CONSOLE__ENABLED=false"
            )));
        }
        Ok(ConsoleSettings {
            enabled: self.enabled,
            session_lifetime: Duration::from_secs(u64::from(self.session_hours) * 3600),
            secure_cookies: self.secure_cookies,
        })
    }
}
