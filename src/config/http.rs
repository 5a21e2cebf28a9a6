//! The HTTP listeners' slow-client limits (`server.header_read_timeout_seconds`,
//! `server.idle_timeout_seconds`), checked here and applied by `http::serve`.

use std::time::Duration;

use super::{Config, ConfigError};

/// How long a connection may keep the server waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To send a complete request header (and between keep-alive requests).
    pub header_read: Duration,
    /// With no byte read or written in either direction.
    pub idle: Duration,
}

impl Default for Timeouts {
    /// The defaults of `config.default.toml`.
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        }
    }
}

/// Longest accepted limit (a day): far beyond any real client, and small enough that a
/// deadline computed from it cannot overflow the clock.
const MAX_TIMEOUT_SECONDS: u64 = 86_400;

/// The HTTP listeners' slow-client limits; zero would close every connection at once.
pub(super) fn timeouts(c: &Config) -> Result<Timeouts, ConfigError> {
    let s = &c.server;
    let in_range = |v: u64| (1..=MAX_TIMEOUT_SECONDS).contains(&v);
    if !in_range(s.header_read_timeout_seconds) || !in_range(s.idle_timeout_seconds) {
        return Err(ConfigError::Invalid(format!(
            "server.header_read_timeout_seconds = {} and server.idle_timeout_seconds = {} must both be between 1 and {MAX_TIMEOUT_SECONDS}",
            s.header_read_timeout_seconds, s.idle_timeout_seconds
        )));
    }
    Ok(Timeouts {
        header_read: Duration::from_secs(s.header_read_timeout_seconds),
        idle: Duration::from_secs(s.idle_timeout_seconds),
    })
}
