//! Checks on what the HTTP listeners expose and how long they wait for slow clients.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Config, ConfigError};

/// Demo secrets are public (they ship in the default file), so a listener other machines can
/// reach must not run with them: anyone could sign webhooks or use the sandbox's token. The
/// sandbox counts only when it is started (no whatsapp.api_base).
pub(super) fn refuse_demo_secrets_when_exposed(
    c: &Config,
    listen: SocketAddr,
    sandbox_listen: Option<SocketAddr>,
) -> Result<(), ConfigError> {
    let exposed: Vec<String> = [
        ("server.listen", Some(listen)),
        ("sandbox.listen", sandbox_listen),
    ]
    .into_iter()
    .filter_map(|(field, addr)| addr.map(|a| (field, a)))
    .filter(|(_, addr)| !addr.ip().is_loopback())
    .map(|(field, addr)| format!("{field} = {addr}"))
    .collect();
    let demo = c.demo_secret_fields();
    if exposed.is_empty() || demo.is_empty() {
        return Ok(());
    }
    let fields: Vec<&str> = demo.iter().map(|(f, _)| f.as_str()).collect();
    let envs: Vec<&str> = demo.iter().map(|(_, e)| e.as_str()).collect();
    Err(ConfigError::Invalid(format!(
        "{} is reachable from other machines but {} still holds the public demo value shipped in the default file; set {} to a secret of your own",
        exposed.join(" and "),
        fields.join(", "),
        envs.join(", "),
    )))
}

/// Longest accepted limit (a day): far beyond any real client, and small enough that a
/// deadline computed from it cannot overflow the clock.
const MAX_TIMEOUT_SECONDS: u64 = 86_400;

/// The HTTP listeners' slow-client limits; zero would close every connection at once.
pub(super) fn http_timeouts(c: &Config) -> Result<crate::http::serve::Timeouts, ConfigError> {
    let s = &c.server;
    let in_range = |v: u64| (1..=MAX_TIMEOUT_SECONDS).contains(&v);
    if !in_range(s.header_read_timeout_seconds) || !in_range(s.idle_timeout_seconds) {
        return Err(ConfigError::Invalid(format!(
            "server.header_read_timeout_seconds = {} and server.idle_timeout_seconds = {} must both be between 1 and {MAX_TIMEOUT_SECONDS}",
            s.header_read_timeout_seconds, s.idle_timeout_seconds
        )));
    }
    Ok(crate::http::serve::Timeouts {
        header_read: Duration::from_secs(s.header_read_timeout_seconds),
        idle: Duration::from_secs(s.idle_timeout_seconds),
    })
}
