//! The telephony sections: `[sip]` (Ringback's own missed-call number), `[asterisk]` and
//! `[freeswitch]` (PBX clients), and where the call spool lives (`store.call_spool`). The
//! runtime that uses them is the `telephony` module.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::phone::PhoneE164;

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
    /// How long a call rings before `final_code`.
    pub ring: Duration,
    /// 480, 486 or 603.
    pub final_code: u16,
    /// The business line this SIP number stands for (E.164); `None` = the Request-URI user.
    pub number: Option<String>,
    /// Peers whose P-Asserted-Identity and Remote-Party-ID are believed; empty = the peers in
    /// `accept_from`, or loopback peers when that is empty too.
    pub trusted_peers: Vec<IpAddr>,
    /// Peers allowed to place calls; empty = every peer (only on loopback or with
    /// `accept_any`, which [`SipConfig::validate`] checks).
    pub accept_from: Vec<IpAddr>,
    /// Every peer may call from beyond this machine (logged loudly at start).
    pub accept_any: bool,
    pub tcp_idle: Duration,
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
            ring: Duration::from_secs(u64::from(self.ring_seconds)),
            final_code: self.final_response,
            number,
            trusted_peers,
            accept_from,
        })
    }
}

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
        check_address("asterisk.address", &self.address)?;
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
        let loopback = check_address("freeswitch.address", &self.address)?;
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

    /// Accepted only on loopback (see [`FreeswitchConfig::validate`]); warned about at start.
    pub fn uses_factory_password(&self) -> bool {
        self.password.expose_secret() == FACTORY_PASSWORD
    }
}

/// The call spool's file name when the store is not a SQLite file (no directory to share).
const SPOOL_FALLBACK: &str = "ringback-calls.spool";

/// Where the call spool (`telephony::spool`) lives: `configured` if set, else next to
/// the SQLite database (`sqlite://data/ringback.db` → `data/ringback.db.call-spool`).
pub fn spool_path(store_url: &str, configured: &str) -> PathBuf {
    if !configured.trim().is_empty() {
        return PathBuf::from(configured.trim());
    }
    let db = store_url
        .strip_prefix("sqlite://")
        .or_else(|| store_url.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or_default())
        .filter(|p| !p.is_empty() && !p.starts_with(":memory:"));
    match db {
        Some(db) => PathBuf::from(format!("{db}.call-spool")),
        None => PathBuf::from(SPOOL_FALLBACK),
    }
}

/// Checks a `host:port` address from config; returns whether it is a loopback address
/// (`localhost` counts).
fn check_address(field: &str, address: &str) -> Result<bool, String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{field} = '{address}' needs a port, like 127.0.0.1:5038"))?;
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{field} = '{address}': '{port}' is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{field} = '{address}' has no host"));
    }
    Ok(host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
}

#[cfg(test)]
mod tests;
