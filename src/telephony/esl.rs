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

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::CallSink;
use super::link::{self, QUEUE_CAPACITY};
use crate::config::telephony::FreeswitchConfig;
use crate::inbound::CallSource;
use crate::shutdown::Shutdown;

pub mod calls;
pub mod client;
pub mod wire;

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
