//! An Asterisk PBX as a missed-call source, through its Manager Interface (AMI, TCP 5038).
//!
//! Ringback logs in as a read-only manager user (`read = call,cdr`), listens to channel
//! events, and decides each call when its trunk leg hangs up (rules in [`calls`]). Pieces:
//!
//! - [`wire`]: framing of `Key: Value` blocks (pure, size-limited, fuzzed);
//! - [`calls`]: the correlator that groups events by `Linkedid` and decides (pure);
//! - [`client`]: the connection — login, keep-alive `Ping`, reconnect with backoff.
//!
//! Why no crate: `asterisk-rs-ami` (0.8) and `asterisk-ami` (0.1) exist, but the wire format
//! is a few dozen lines, the crates are young and pull their own runtime assumptions, and
//! owning the parser lets it be fuzzed and tested byte for byte against recorded transcripts
//! (no Asterisk can run on the CI image; reference telephony.md §4).

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

/// `[asterisk]`: how to reach the Manager Interface. See `config.default.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsteriskConfig {
    /// Connect to the AMI at all.
    pub enabled: bool,
    /// `host:port` of the manager interface (`manager.conf` `bindaddr`/`port`).
    pub address: String,
    /// The `manager.conf` user section name.
    pub username: String,
    /// Its `secret`.
    pub secret: SecretString,
    /// Only calls whose trunk leg entered one of these dialplan contexts; empty = all calls.
    pub contexts: Vec<String>,
    /// Seconds between keep-alive `Ping` actions; no reply within two of them = reconnect.
    pub ping_seconds: u64,
}

impl AsteriskConfig {
    /// Checks the section when it is enabled; the message names the field to fix.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        link::check_address("asterisk.address", &self.address)?;
        if self.username.trim().is_empty() {
            return Err(
                "asterisk.username is empty: name the manager.conf user Ringback logs in as".into(),
            );
        }
        let secret = self.secret.expose_secret();
        if secret.is_empty() {
            return Err("asterisk.secret is empty; set RINGBACK_ASTERISK__SECRET to the manager.conf user's secret".into());
        }
        if secret.contains(['\r', '\n']) || self.username.contains(['\r', '\n']) {
            return Err("asterisk.username and asterisk.secret cannot contain line breaks".into());
        }
        if !(1..=3600).contains(&self.ping_seconds) {
            return Err(format!(
                "asterisk.ping_seconds = {} must be between 1 and 3600",
                self.ping_seconds
            ));
        }
        if let Some(c) = self.contexts.iter().find(|c| c.trim().is_empty()) {
            return Err(format!("asterisk.contexts has an empty entry ('{c}')"));
        }
        Ok(())
    }
}

/// Starts the AMI client (and its delivery task) when enabled.
pub async fn start(
    config: &AsteriskConfig,
    sink: CallSink,
    shutdown: Shutdown,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    if !config.enabled {
        return Ok(());
    }
    config.validate().map_err(anyhow::Error::msg)?;
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    tasks.spawn(link::deliver(rx, sink, CallSource::Asterisk));
    tasks.spawn(client::run(config.clone(), tx, shutdown));
    tracing::info!(address = %config.address, username = %config.username, "Asterisk AMI client started.");
    Ok(())
}
