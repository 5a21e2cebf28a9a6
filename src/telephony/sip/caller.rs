//! Who is calling: the caller's number and name from an INVITE, in order of trust
//! (telephony.md §5.2):
//!
//! 1. `P-Asserted-Identity` (RFC 3325), set by a trusted network; believed only when the
//!    INVITE came from a configured peer, because anyone can write the header;
//! 2. `Remote-Party-ID` (draft-ietf-sip-privacy-04; still sent by PBXs and carriers), the
//!    calling party's entry; an identity claim just like PAI, so believed from the same
//!    trusted peers only (its privacy request is honoured from anyone: it can only hide);
//! 3. `From`.
//!
//! `Privacy: id`/`header`/`user` (RFC 3323/3325) or an RPID `privacy=full|uri` means the caller
//! withheld the number: even an asserted identity must not be used to contact them, so the
//! caller becomes `anonymous` (which the processor records as withheld).

use super::message::{Message, NameAddr, param, split_list};

/// The caller, as far as the INVITE tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The number (or user part) with URI syntax removed, or `anonymous` when withheld.
    pub number: String,
    pub name: Option<String>,
    pub withheld: bool,
}

/// What a withheld caller becomes: the word the processor already reads as "hidden".
pub const WITHHELD: &str = "anonymous";

/// Finds the caller of `invite`. `trusted` says whether the peer that sent it may assert
/// identities (P-Asserted-Identity, Remote-Party-ID); from any other peer only `From` names
/// the caller.
pub fn identify(invite: &Message, trusted: bool) -> Caller {
    let from = invite.header("From").map(NameAddr::parse);
    let pai = trusted
        .then(|| invite.header("P-Asserted-Identity"))
        .flatten()
        .and_then(preferred_identity);
    let rpid_any = invite
        .headers_named("Remote-Party-ID")
        .flat_map(split_list)
        .map(NameAddr::parse)
        .find(|r| param(r.params, "party").is_none_or(|p| p.eq_ignore_ascii_case("calling")));
    // Anyone can write the header: as an identity it counts only from a trusted peer.
    let rpid = rpid_any.clone().filter(|_| trusted);

    let privacy = invite
        .headers_named("Privacy")
        .flat_map(|v| v.split([';', ',']))
        .map(str::trim)
        .any(|p| {
            ["id", "header", "user"]
                .iter()
                .any(|w| p.eq_ignore_ascii_case(w))
        });
    let rpid_privacy = rpid_any.as_ref().and_then(|r| param(r.params, "privacy"));
    let rpid_hides_number = rpid_privacy
        .is_some_and(|p| p.eq_ignore_ascii_case("full") || p.eq_ignore_ascii_case("uri"));
    let rpid_hides_name = rpid_privacy.is_some_and(|p| p.eq_ignore_ascii_case("name"));

    let chosen = pai.or(rpid).or(from.clone());
    let number = chosen
        .as_ref()
        .map(|a| uri_number(a.uri))
        .unwrap_or_default();
    let withheld = privacy || rpid_hides_number || is_anonymous(&number, chosen.as_ref());
    if withheld {
        return Caller {
            number: WITHHELD.into(),
            name: None,
            withheld: true,
        };
    }
    let name = if rpid_hides_name {
        None
    } else {
        chosen
            .and_then(|a| a.display)
            .or_else(|| from.and_then(|f| f.display))
            .filter(|n| !n.eq_ignore_ascii_case(WITHHELD) && *n != number)
    };
    Caller {
        number,
        name,
        withheld: false,
    }
}

/// The first identity of a P-Asserted-Identity list (which may hold a sip: and a tel: one),
/// preferring the tel: URI because it is a number by definition.
fn preferred_identity(value: &str) -> Option<NameAddr<'_>> {
    let all: Vec<NameAddr> = split_list(value).map(NameAddr::parse).collect();
    let tel = all.iter().position(|a| {
        a.uri
            .get(..4)
            .is_some_and(|s| s.eq_ignore_ascii_case("tel:"))
    });
    match tel {
        Some(i) => all.into_iter().nth(i),
        None => all.into_iter().next(),
    }
}

/// The user part of a `sip:`/`sips:`/`tel:` URI without URI syntax: `sip:+1415...@host;user=phone`
/// → `+1415...`, `tel:+1-415-555-0123;phone-context=...` → `+1-415-555-0123`, with `%xx`
/// escapes decoded. Visual separators are left to the phone-number normaliser.
pub fn uri_number(uri: &str) -> String {
    let uri = uri.trim();
    let lower_scheme = uri
        .split_once(':')
        .map(|(s, rest)| (s.to_ascii_lowercase(), rest));
    let user = match lower_scheme {
        Some((scheme, rest)) if scheme == "tel" => rest,
        Some((scheme, rest)) if scheme == "sip" || scheme == "sips" => {
            match rest.rsplit_once('@') {
                Some((user, _host)) => user,
                // No user part: the identity is the host (e.g. sip:anonymous.invalid).
                None => rest,
            }
        }
        _ => uri,
    };
    // Parameters (`;phone-context=`, `;isub=`, URI params) and a password (`user:pw`) go.
    let user = user.split(';').next().unwrap_or_default();
    let user = user.split(':').next().unwrap_or_default();
    percent_decode(user)
}

fn is_anonymous(number: &str, addr: Option<&NameAddr>) -> bool {
    let host_anonymous = addr.is_some_and(|a| {
        a.uri
            .rsplit_once('@')
            .is_some_and(|(_, host)| host.to_ascii_lowercase().starts_with("anonymous.invalid"))
    });
    number.is_empty() || number.eq_ignore_ascii_case(WITHHELD) || host_anonymous
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
