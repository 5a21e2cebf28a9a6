//! Checks on what the HTTP listeners expose (their slow-client limits are in [`super::http`]).

use std::net::SocketAddr;

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
