//! Twilio Voice: the Voice URL answers with TwiML that forwards the call (`<Dial timeout
//! action>`) or rejects it (a missed-call number), and the `<Dial action>` callback reports
//! `DialCallStatus`.
//!
//! Signature: `X-Twilio-Signature` is base64 HMAC-SHA1, keyed by the Auth Token, of the full
//! URL Twilio requested followed by every POST parameter as `name` + `value`, sorted by name.
//! Twilio's own library also accepts the URL with or without the default port, so do we.

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
    pub fn verify(&self, header: Option<&str>, url: &str, params: &Params) -> Result<(), Rejected> {
        use secrecy::ExposeSecret;
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

/// Parameters sorted by name (then value), each written as `name` + `value`.
pub fn signed_params(params: &Params) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.iter().map(|(k, v)| format!("{k}{v}")).collect()
}

/// The URL as given, plus the same URL with the default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let (host, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
            if let Some(bare) = host.strip_suffix(port) {
                out.push(format!("{scheme}{bare}{tail}"));
            } else if !host.contains(':') {
                out.push(format!("{scheme}{host}{port}{tail}"));
            }
        }
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn documented_vector_verifies_with_and_without_port() {
        let src = TwilioSource::new("12345".to_string().into(), None, 20);
        let p = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let sig = Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(
            src.verify(sig, "https://mycompany.com/myapp.php?foo=1&bar=2", &p)
                .is_ok()
        );
        assert!(
            src.verify(sig, "https://mycompany.com:443/myapp.php?foo=1&bar=2", &p)
                .is_ok()
        );
        assert!(
            src.verify(sig, "https://mycompany.com/other.php?foo=1&bar=2", &p)
                .is_err()
        );
        assert!(
            src.verify(None, "https://mycompany.com/myapp.php?foo=1&bar=2", &p)
                .is_err()
        );
    }

    #[test]
    fn dial_status_maps_to_outcomes() {
        let src = TwilioSource::new("t".to_string().into(), None, 20);
        for (status, outcome) in [
            ("no-answer", CallOutcome::NoAnswer),
            ("busy", CallOutcome::Busy),
            ("canceled", CallOutcome::Canceled),
            ("failed", CallOutcome::Failed),
            ("completed", CallOutcome::Answered),
        ] {
            let p = params(&[
                ("CallSid", "CA1"),
                ("From", "+14155552671"),
                ("DialCallStatus", status),
            ]);
            let e = src.parse_dial_status(&p, 0).unwrap();
            assert_eq!(e.dedup_key, "twilio:call:CA1");
            let InboundEvent::Call(c) = e.event else {
                panic!()
            };
            assert_eq!(c.outcome, outcome);
        }
        let p = params(&[("CallSid", "CA1"), ("DialCallStatus", "exploded")]);
        assert!(matches!(
            src.parse_dial_status(&p, 0),
            Err(Rejected::Malformed(m)) if m.contains("DialCallStatus 'exploded' is not one of")
        ));
        assert!(matches!(
            src.parse_dial_status(&params(&[("From", "x")]), 0),
            Err(Rejected::Malformed(m)) if m.contains("CallSid is missing")
        ));
    }

    #[test]
    fn twiml_forwards_or_rejects() {
        let fwd = TwilioSource::new(
            "t".to_string().into(),
            Some(PhoneE164::parse_international("+14155552671").unwrap()),
            15,
        );
        let xml = fwd.voice_twiml("https://rb.example/webhooks/twilio/dial-status?a=1&b=2");
        assert!(xml.contains("<Dial timeout=\"15\" action=\"https://rb.example/webhooks/twilio/dial-status?a=1&amp;b=2\""), "{xml}");
        assert!(xml.contains("<Number>+14155552671</Number>"));
        let rej = TwilioSource::new("t".to_string().into(), None, 15);
        assert!(rej.voice_twiml("x").contains("<Reject reason=\"busy\"/>"));
    }
}
