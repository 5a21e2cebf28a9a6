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

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::CallSink;
use super::link::{self, QUEUE_CAPACITY};
use crate::config::telephony::AsteriskConfig;
use crate::inbound::CallSource;
use crate::shutdown::Shutdown;

pub mod calls;
pub mod client;
pub mod wire;

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
