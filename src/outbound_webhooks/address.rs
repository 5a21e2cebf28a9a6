//! Which addresses an endpoint may reach (SSRF protection).
//!
//! Anyone who may register an endpoint could otherwise make Ringback call into its own
//! network: an admin port on loopback, a router, a cloud metadata service on a link-local
//! address. So by default only public addresses are called. The check runs twice: when the
//! endpoint is registered (its name resolves now), and on every connection through
//! [`PublicOnly`], the HTTP client's resolver, because a name can point elsewhere later (DNS
//! rebinding). URLs with an IP literal skip the resolver and are checked before each request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// True for addresses on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(a),
        },
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [first, second, ..] = a.octets();
    !(a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_documentation()
        || first == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT).
        || (first == 100 && (second & 0xc0) == 64)
        // 198.18.0.0/15, benchmarking networks.
        || (first == 198 && (second & 0xfe) == 18))
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let first = a.segments()[0];
    !(a.is_loopback()
        || a.is_unspecified()
        // fc00::/7 unique local, fe80::/10 link local.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80)
}

/// Checks a URL an endpoint is registered with: http or https, a host, no credentials, and
/// (unless `allow_private`) only public addresses.
pub async fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url '{url}' is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("url '{url}' must start with https:// (or http://)"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "url must not carry a user name or password; Ringback signs each request instead"
                .into(),
        );
    }
    let Some(host) = parsed.host_str() else {
        return Err(format!("url '{url}' has no host"));
    };
    if allow_private {
        return Ok(());
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("the host of '{url}' does not resolve: {e}"))?
            .collect(),
    };
    match addrs.iter().find(|a| !is_public(a.ip())) {
        Some(a) => Err(private_refusal(url, a.ip())),
        None => Ok(()),
    }
}

/// The refusal for a private address, saying how to allow it.
pub fn private_refusal(url: &str, ip: IpAddr) -> String {
    format!(
        "url '{url}' reaches {ip}, a loopback, private or link-local address; Ringback calls only public addresses unless [outbound_webhooks] allow_private_addresses = true"
    )
}

/// The literal IP of a URL's host, if it is one.
pub fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// A resolver that drops non-public addresses, so a name that resolves only to private ones
/// fails to connect.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                all.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let ip = all.first().map(|a| a.ip().to_string()).unwrap_or_default();
                return Err(format!("'{host}' resolves only to non-public addresses ({ip}); refused (SSRF protection)").into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["8.8.8.8", "157.240.1.1", "2a03:2880::1"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_url_must_be_http_public_and_without_credentials() {
        assert!(
            check_url("ftp://example.com/x", true)
                .await
                .unwrap_err()
                .contains("https://")
        );
        assert!(
            check_url("https://user:pw@example.com/", true)
                .await
                .unwrap_err()
                .contains("password")
        );
        assert!(
            check_url("not a url", true)
                .await
                .unwrap_err()
                .contains("not a URL")
        );
        let refused = check_url("http://127.0.0.1:9/hook", false)
            .await
            .unwrap_err();
        assert!(
            refused.contains("allow_private_addresses = true"),
            "{refused}"
        );
        assert!(check_url("http://[::1]:9/hook", false).await.is_err());
        assert!(check_url("http://127.0.0.1:9/hook", true).await.is_ok());
        assert!(check_url("https://8.8.8.8/hook", false).await.is_ok());
    }
}
