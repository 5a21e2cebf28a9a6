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

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;
use tokio::task::JoinSet;

use super::CallSink;
use crate::phone::PhoneE164;
use crate::shutdown::Shutdown;

pub mod caller;
pub mod delivery;
pub mod framing;
pub mod message;
pub mod transaction;
pub mod transport;
pub mod uas;

/// `[sip]`: the missed-call number. Every field is documented in `config.default.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// Listen for SIP at all.
    pub enabled: bool,
    /// UDP address; empty = no UDP.
    pub listen_udp: String,
    /// TCP address; empty = no TCP.
    pub listen_tcp: String,
    /// Seconds to ring before sending `final_response`.
    pub ring_seconds: u32,
    /// 480 (Temporarily Unavailable), 486 (Busy Here) or 603 (Decline).
    pub final_response: u16,
    /// The business line (E.164) this SIP number stands for; empty = the called user part.
    pub number: String,
    /// IP addresses whose P-Asserted-Identity and Remote-Party-ID are believed; empty = the
    /// `accept_from` peers (loopback peers when that is empty too).
    pub trusted_peers: Vec<String>,
    /// IP addresses allowed to place calls; others get 403 (UDP) or are disconnected (TCP).
    /// Empty = anyone who reaches the port, which needs a loopback listener or `accept_any`.
    pub accept_from: Vec<String>,
    /// Accept calls from every peer on a non-loopback address, with an empty `accept_from`.
    pub accept_any: bool,
    /// Seconds a TCP connection may stay silent (no message, no keep-alive) before it is
    /// closed; a connection whose call is still ringing is kept.
    pub tcp_idle_seconds: u32,
}

/// `[sip]` checked and parsed.
#[derive(Debug, Clone)]
pub struct SipSettings {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub uas: uas::UasSettings,
    /// Every peer may call from beyond this machine (logged loudly at start).
    pub accept_any: bool,
    pub tcp_idle: Duration,
}

/// Where the SIP listeners are bound (port 0 in the config becomes the real port here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bound {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
}

/// The longest ring accepted: proxies give up after Timer C (> 3 minutes), and a caller
/// hearing ringback for longer is not waiting for an answer.
const MAX_RING_SECONDS: u32 = 180;

impl SipConfig {
    /// Checks every field; the error names the field and says what is allowed and why.
    pub fn validate(&self) -> Result<SipSettings, String> {
        let addr = |field: &str, value: &str| -> Result<Option<SocketAddr>, String> {
            if value.trim().is_empty() {
                return Ok(None);
            }
            value.trim().parse().map(Some).map_err(|_| {
                format!("sip.{field} = '{value}' is not an address: write IP:port, e.g. 0.0.0.0:5060, or leave it empty to turn it off")
            })
        };
        let udp = addr("listen_udp", &self.listen_udp)?;
        let tcp = addr("listen_tcp", &self.listen_tcp)?;
        if self.enabled && udp.is_none() && tcp.is_none() {
            return Err(
                "sip.enabled = true but both sip.listen_udp and sip.listen_tcp are empty: set at least one".into(),
            );
        }
        if !(1..=MAX_RING_SECONDS).contains(&self.ring_seconds) {
            return Err(format!(
                "sip.ring_seconds = {} must be between 1 and {MAX_RING_SECONDS}; keep it below the \
                 carrier's voicemail timer (about 20 s)",
                self.ring_seconds
            ));
        }
        if ![480, 486, 603].contains(&self.final_response) {
            return Err(format!(
                "sip.final_response = {} is not allowed: use 480 (Temporarily Unavailable), 486 \
                 (Busy Here) or 603 (Decline). The missed-call number never answers, so it must \
                 end every call with a failure response; a 2xx would connect a call with no one \
                 on it",
                self.final_response
            ));
        }
        let number = if self.number.trim().is_empty() {
            None
        } else {
            let n = PhoneE164::parse_configured(&self.number)
                .map_err(|e| format!("sip.number: {e}"))?;
            Some(n.as_str().to_string())
        };
        let ips = |field: &str, list: &[String]| {
            list.iter()
                .map(|p| {
                    p.trim().parse::<IpAddr>().map_err(|_| {
                        format!("sip.{field}: '{p}' is not an IP address (write e.g. 203.0.113.10, without a port)")
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let trusted_peers = ips("trusted_peers", &self.trusted_peers)?;
        let accept_from = ips("accept_from", &self.accept_from)?;
        if self.accept_any && !accept_from.is_empty() {
            return Err(
                "sip.accept_any = true but sip.accept_from lists peers: keep the list and \
                 remove accept_any, or empty the list"
                    .into(),
            );
        }
        // Anyone who can reach an open SIP number can have Ringback send paid templates to
        // numbers of their choosing, so an exposed listener must name who may call.
        let exposed = [("listen_udp", udp), ("listen_tcp", tcp)]
            .into_iter()
            .find_map(|(field, a)| a.filter(|a| !a.ip().is_loopback()).map(|a| (field, a)));
        if let Some((field, a)) = exposed
            && self.enabled
            && accept_from.is_empty()
            && !self.accept_any
        {
            return Err(format!(
                "sip.{field} = {a} is reachable from other machines but sip.accept_from is empty, \
                 so anyone could make Ringback message numbers of their choosing; list your \
                 trunk's or PBX's IP addresses in sip.accept_from (e.g. \
                 RINGBACK_SIP__ACCEPT_FROM='[\"203.0.113.10\"]'), or set sip.accept_any = true \
                 to accept calls from everyone"
            ));
        }
        if self.tcp_idle_seconds == 0 {
            return Err("sip.tcp_idle_seconds must be at least 1 (120 is a good value)".into());
        }
        Ok(SipSettings {
            udp,
            tcp,
            accept_any: self.accept_any,
            tcp_idle: Duration::from_secs(u64::from(self.tcp_idle_seconds)),
            uas: uas::UasSettings {
                ring: Duration::from_secs(u64::from(self.ring_seconds)),
                final_code: self.final_response,
                number,
                trusted_peers,
                accept_from,
                timers: transaction::Timers::default(),
            },
        })
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

#[cfg(test)]
mod tests;
