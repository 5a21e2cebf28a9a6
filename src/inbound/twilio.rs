//! Twilio Voice: the Voice URL answers with TwiML that forwards the call (`<Dial timeout
//! action>`) or rejects it (a missed-call number), and the `<Dial action>` callback reports
//! `DialCallStatus`.
//!
//! Signature: `X-Twilio-Signature` is base64 HMAC-SHA1, keyed by the Auth Token, of the full
//! URL Twilio requested followed by every POST parameter as `name` + `value`, sorted by name.
//! Which URL is checked copies Twilio's own `RequestValidator` (twilio-python
//! `request_validator.py`, `remove_port`/`add_port`), because Twilio's signing side is
//! inconsistent about ports: the URL with any port removed, and the URL with the scheme's
//! default port added when it has none. So a signature over `https://host/x` is accepted at
//! `https://host:8443/x`, as the library accepts it.
//!
//! Twilio's newer signing with a Webhook Setting's shared key (`X-Twilio-Webhooks-Signature-
//! Settings`, HMAC-SHA256) is a public beta whose details Twilio says may still change; it is
//! not supported, and a request signed that way is refused with a sentence saying so.

use super::{CallEvent, CallOutcome, CallSource, InboundEvent, KeyedEvent, Rejected};
use crate::phone::PhoneE164;
use crate::signature::{self, Algorithm};
use crate::time::Millis;

/// Path of the Voice URL webhook.
pub const VOICE_PATH: &str = "/webhooks/twilio/voice";
/// Path of the `<Dial action>` callback.
pub const DIAL_STATUS_PATH: &str = "/webhooks/twilio/dial-status";

/// The Twilio source.
#[derive(Clone)]
pub struct TwilioSource {
    auth_token: secrecy::SecretString,
    /// `Some(number)`: forward there; `None`: reject every call (missed-call number).
    pub forward_to: Option<PhoneE164>,
    pub dial_timeout: u32,
}

/// The header Twilio adds when a Webhook Rule signs with a shared key instead of the Auth Token.
pub const SIGNATURE_SETTINGS_HEADER: &str = "X-Twilio-Webhooks-Signature-Settings";

/// Form parameters in the order received.
pub type Params = Vec<(String, String)>;

impl TwilioSource {
    pub fn new(
        auth_token: secrecy::SecretString,
        forward_to: Option<PhoneE164>,
        dial_timeout: u32,
    ) -> Self {
        Self {
            auth_token,
            forward_to,
            dial_timeout,
        }
    }

    /// Verifies the signature of a form POST to `url` (as Twilio requested it).
    /// `settings` is the `X-Twilio-Webhooks-Signature-Settings` header, if any.
    pub fn verify(
        &self,
        header: Option<&str>,
        settings: Option<&str>,
        url: &str,
        params: &Params,
    ) -> Result<(), Rejected> {
        use secrecy::ExposeSecret;
        if settings.is_some() {
            return Err(signature::SignatureError::Unsupported(
                "this request is signed with a Twilio Webhook Setting's shared key (X-Twilio-Webhooks-Signature-Settings), which Ringback does not support; remove the Webhook Rule that matches this URL so Twilio signs with the Auth Token",
            )
            .into());
        }
        let payload = signed_params(params);
        let key = self.auth_token.expose_secret().as_bytes();
        let mut last = None;
        for candidate in url_variants(url) {
            let sig = signature::verify(
                Algorithm::HmacSha1Base64,
                "X-Twilio-Signature",
                header,
                key,
                &[candidate.as_bytes(), payload.as_bytes()],
            );
            match sig {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("url_variants is never empty").into())
    }

    /// The Voice URL request: a call is arriving.
    pub fn parse_voice(&self, params: &Params, now: Millis) -> Result<KeyedEvent, Rejected> {
        let call_sid = required(params, "CallSid")?;
        let (outcome, key) = match self.forward_to {
            Some(_) => (CallOutcome::Ringing, format!("twilio:voice:{call_sid}")),
            None => (CallOutcome::Rejected, format!("twilio:call:{call_sid}")),
        };
        Ok(KeyedEvent {
            dedup_key: key,
            event: InboundEvent::Call(call_event(params, call_sid, outcome, now)?),
        })
    }

    /// The `<Dial action>` request: the forwarded leg ended.
    pub fn parse_dial_status(&self, params: &Params, now: Millis) -> Result<KeyedEvent, Rejected> {
        let call_sid = required(params, "CallSid")?;
        let status = required(params, "DialCallStatus")?;
        let outcome = match status {
            "completed" | "answered" => CallOutcome::Answered,
            "no-answer" => CallOutcome::NoAnswer,
            "busy" => CallOutcome::Busy,
            "failed" => CallOutcome::Failed,
            "canceled" => CallOutcome::Canceled,
            other => {
                return Err(Rejected::Malformed(format!(
                    "DialCallStatus '{other}' is not one of completed, answered, busy, no-answer, failed, canceled"
                )));
            }
        };
        let mut event = call_event(params, call_sid, outcome, now)?;
        event.talk_seconds = get(params, "DialCallDuration").and_then(|d| d.parse().ok());
        Ok(KeyedEvent {
            dedup_key: format!("twilio:call:{call_sid}"),
            event: InboundEvent::Call(event),
        })
    }

    /// TwiML for the Voice URL: forward with a ring timeout, or reject as busy.
    pub fn voice_twiml(&self, action_url: &str) -> String {
        match &self.forward_to {
            Some(number) => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial timeout=\"{}\" action=\"{}\" method=\"POST\"><Number>{}</Number></Dial></Response>",
                self.dial_timeout,
                xml_escape(action_url),
                number
            ),
            None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Reject reason=\"busy\"/></Response>".into(),
        }
    }
}

/// TwiML that ends the call after the `<Dial action>` callback.
pub const HANGUP_TWIML: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Hangup/></Response>";

fn call_event(
    params: &Params,
    call_sid: &str,
    outcome: CallOutcome,
    now: Millis,
) -> Result<CallEvent, Rejected> {
    Ok(CallEvent {
        source: CallSource::Twilio,
        provider_call_id: call_sid.to_string(),
        from_raw: get(params, "From").unwrap_or_default().to_string(),
        to_raw: get(params, "To").map(str::to_string),
        outcome,
        ring_seconds: None,
        talk_seconds: None,
        caller_name: get(params, "CallerName")
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        occurred_at: now,
    })
}

fn get<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn required<'a>(params: &'a Params, name: &'static str) -> Result<&'a str, Rejected> {
    get(params, name).filter(|v| !v.is_empty()).ok_or_else(|| {
        Rejected::Malformed(format!(
            "the form field {name} is missing; is this a Twilio Voice request?"
        ))
    })
}

/// Parameters sorted by name, then by value, each written as `name` + `value`. A repeated
/// identical pair is written once, as twilio-python does (`sorted(set(values))`).
pub fn signed_params(params: &Params) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    sorted.iter().map(|(k, v)| format!("{k}{v}")).collect()
}

/// The URLs twilio-python's `RequestValidator.validate` checks: `remove_port(url)` and
/// `add_port(url)`. A URL without `scheme://` is checked as given.
fn url_variants(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return vec![url.to_string()];
    };
    // Python's urlparse lowercases the scheme, and `geturl()` writes it back that way.
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (netloc, tail) = rest.split_at(end);
    let Ok(port) = python_port(netloc) else {
        // urlparse raises on a malformed port, and the library then validates nothing.
        return vec![url.to_string()];
    };
    // `if uri.port:` in Python: port 0 counts as none.
    let port = port.filter(|p| *p != 0);
    let without = match port {
        // `netloc.split(":")[0]`: everything before the first colon.
        Some(_) => netloc.split(':').next().unwrap_or(netloc),
        None => netloc,
    };
    let with = match port {
        Some(_) => netloc.to_string(),
        None => format!("{netloc}:{}", if scheme == "https" { 443 } else { 80 }),
    };
    vec![
        format!("{scheme}://{without}{tail}"),
        format!("{scheme}://{with}{tail}"),
    ]
}

/// `urllib.parse.urlsplit(url).port`: after any `user@`, the digits after the first colon
/// (or after `]` for an IPv6 literal); `Err` where Python raises `ValueError`.
fn python_port(netloc: &str) -> Result<Option<u16>, ()> {
    let hostinfo = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let port = match hostinfo.split_once('[') {
        Some((_, bracketed)) => bracketed
            .split_once(']')
            .map_or("", |(_, after)| after)
            .split_once(':')
            .map_or("", |(_, p)| p),
        None => hostinfo.split_once(':').map_or("", |(_, p)| p),
    };
    if port.is_empty() {
        return Ok(None);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    port.parse::<u16>().map(Some).map_err(|_| ())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests;
