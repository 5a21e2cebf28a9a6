//! A FreeSWITCH PBX as a missed-call source, through its event socket (mod_event_socket,
//! TCP 8021, "inbound" mode: Ringback connects to FreeSWITCH).
//!
//! Ringback authenticates, subscribes to `CHANNEL_HANGUP_COMPLETE` in plain format, and
//! decides each inbound leg as it ends (rules in [`calls`]). Pieces:
//!
//! - [`wire`]: framing (headers + `Content-Length` body) and URL-decoding of event bodies;
//! - [`calls`]: the decision from one event (pure);
//! - [`client`]: the connection — auth, subscription, keep-alive, reconnect with backoff.
//!
//! Why no crate: `freeswitch-esl` (0.1) and `eslrs` (0.1 release candidate) are immature,
//! and `freeswitch-types` brings an 82-variant enum for the handful of causes that matter.
//! The protocol is small enough to own, fuzz and test byte for byte against recorded events
//! (FreeSWITCH is not packaged for the CI image; reference telephony.md §4).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::CallSink;
use super::link::{self, QUEUE_CAPACITY};
use crate::inbound::CallSource;
use crate::shutdown::Shutdown;

pub mod calls;
pub mod client;
pub mod wire;

/// FreeSWITCH's factory event-socket password. CVE-2019-19492: installations exposing the
/// socket with it can be taken over (the socket runs system commands).
pub const FACTORY_PASSWORD: &str = "ClueCon";

/// `[freeswitch]`: how to reach the event socket. See `config.default.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreeswitchConfig {
    /// Connect to the event socket at all.
    pub enabled: bool,
    /// `host:port` of mod_event_socket (`listen-ip`, `listen-port`).
    pub address: String,
    /// The event socket `password`.
    pub password: SecretString,
}

impl FreeswitchConfig {
    /// Checks the section when it is enabled; the message names the field to fix.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        let loopback = link::check_address("freeswitch.address", &self.address)?;
        let password = self.password.expose_secret();
        if password.is_empty() {
            return Err("freeswitch.password is empty; set RINGBACK_FREESWITCH__PASSWORD to the event_socket.conf.xml password".into());
        }
        if password.contains(['\r', '\n']) {
            return Err("freeswitch.password cannot contain line breaks".into());
        }
        if password == FACTORY_PASSWORD && !loopback {
            return Err(format!(
                "freeswitch.password is FreeSWITCH's factory default \"{FACTORY_PASSWORD}\" and freeswitch.address = {} is not loopback: anyone who can reach that socket controls the PBX (CVE-2019-19492). Set a strong password in event_socket.conf.xml and RINGBACK_FREESWITCH__PASSWORD",
                self.address
            ));
        }
        Ok(())
    }

    fn uses_factory_password(&self) -> bool {
        self.password.expose_secret() == FACTORY_PASSWORD
    }
}

/// Starts the event-socket client (and its delivery task) when enabled.
pub async fn start(
    config: &FreeswitchConfig,
    sink: CallSink,
    shutdown: Shutdown,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    if !config.enabled {
        return Ok(());
    }
    config.validate().map_err(anyhow::Error::msg)?;
    if config.uses_factory_password() {
        tracing::warn!(
            address = %config.address,
            "The FreeSWITCH event socket uses the factory password \"ClueCon\" (CVE-2019-19492); accepted only because the address is loopback. Change it in event_socket.conf.xml."
        );
    }
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    tasks.spawn(link::deliver(rx, sink, CallSource::Freeswitch));
    tasks.spawn(client::run(config.clone(), tx, shutdown));
    tracing::info!(address = %config.address, "FreeSWITCH event-socket client started.");
    Ok(())
}
