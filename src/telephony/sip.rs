//! Ringback's own SIP "missed-call number": a UAS that rings and never answers.
//!
//! Point a SIP trunk DID, a PBX route or a forward-on-no-answer target at it. Each INVITE gets
//! 100 Trying and 180 Ringing; after `ring_seconds` it is refused with the configured final
//! response (480/486/603), or the caller gives up first (CANCEL → 487). Either way the call
//! becomes exactly one [`CallEvent`](crate::inbound::CallEvent) for the missed-call rules.
//! There is no dialog, media or 2xx, so no SIP stack is needed: this is Ringback's own small
//! implementation of what telephony.md §5.2 lists (recommended there over a full stack such as
//! rsipstack), with no SIP crate:
//!
//! - [`message`]: parser and serializer (compact headers, folding, Via lists, Content-Length);
//! - [`caller`]: caller number and name (P-Asserted-Identity, Remote-Party-ID, From, Privacy);
//! - [`transaction`]: the INVITE server transaction as a pure state machine (timers G, H, I);
//! - [`uas`]: routes requests to transactions or answers them statelessly; pure as well;
//! - [`framing`]: messages and RFC 5626 keep-alives out of a TCP stream, memory-bounded;
//! - [`transport`]: UDP and TCP with tokio, and the loop that drives the UAS;
//! - [`delivery`]: hands ended calls and flagged input to the [`CallSink`] off the SIP loop.

use std::net::SocketAddr;

use tokio::task::JoinSet;

use super::CallSink;
use crate::config::telephony::{SipConfig, SipSettings};
use crate::shutdown::Shutdown;

pub mod caller;
pub mod delivery;
pub mod framing;
pub mod message;
pub mod transaction;
pub mod transport;
pub mod uas;

/// Where the SIP listeners are bound (port 0 in the config becomes the real port here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bound {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
}

impl From<&SipSettings> for uas::UasSettings {
    /// The UAS's part of the checked `[sip]`, with RFC 3261's default timers.
    fn from(s: &SipSettings) -> Self {
        uas::UasSettings {
            ring: s.ring,
            final_code: s.final_code,
            number: s.number.clone(),
            trusted_peers: s.trusted_peers.clone(),
            accept_from: s.accept_from.clone(),
            timers: transaction::Timers::default(),
        }
    }
}

/// Binds the configured listeners and starts the UAS in `tasks`; a disabled `[sip]` starts
/// nothing. Returns the bound addresses.
pub async fn start(
    config: &SipConfig,
    sink: CallSink,
    shutdown: Shutdown,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<Bound> {
    if !config.enabled {
        return Ok(Bound::default());
    }
    let settings = config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    if settings.accept_any {
        tracing::warn!(udp = ?settings.udp, tcp = ?settings.tcp, "SIP accepts calls from ANY peer (sip.accept_any = true): anyone who reaches the port can make Ringback message numbers of their choosing; list your trunks in sip.accept_from instead.");
    }
    let deliveries = delivery::start(sink, tasks);
    transport::start(&settings, deliveries, shutdown, tasks).await
}
