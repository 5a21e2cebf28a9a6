//! The generic call webhook, `POST /webhooks/calls`, for any PBX or provider Ringback has no
//! adapter for. The body is JSON, signed with `X-Ringback-Signature: sha256=<hex>` (HMAC-SHA256
//! of the raw body with `calls.secret`):
//!
//! ```json
//! {"call_id": "pbx-4711", "from": "+91 98765 43210", "to": "+15550100001",
//!  "status": "no-answer", "ring_seconds": 25, "duration": 0, "caller_name": "Asha"}
//! ```
//!
//! `status` is one of `ringing`, `answered`, `completed`, `no-answer`, `missed`, `busy`,
//! `failed`, `canceled`, `rejected`. The same `call_id` twice is one call.
//!
//! `timestamp`, when given, is seconds since the Unix epoch (UTC) between 2000-01-01 and one
//! day after now. Anything else is refused with a 400 rather than guessed at: a PBX that sends
//! milliseconds (a common mistake) would otherwise have its calls dated thousands of years
//! ahead, and the reply would quote a time that never was.

use serde::Deserialize;

use super::{CallEvent, CallOutcome, CallSource, InboundEvent, KeyedEvent, Rejected};
use crate::signature::{self, Algorithm};
use crate::time::Millis;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Ringback-Signature";

/// The JSON body, as documented above.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericCall {
    pub call_id: String,
    pub from: String,
    #[serde(default)]
    pub to: Option<String>,
    pub status: String,
    #[serde(default)]
    pub ring_seconds: Option<u32>,
    /// Talk time in seconds; 0 means nobody answered.
    #[serde(default)]
    pub duration: Option<u32>,
    #[serde(default)]
    pub caller_name: Option<String>,
    /// When the call happened, unix seconds (see [`occurred_at`]); defaults to when Ringback
    /// received it.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

/// The generic source: only a shared secret.
#[derive(Clone)]
pub struct GenericSource {
    secret: secrecy::SecretString,
}

impl GenericSource {
    pub fn new(secret: secrecy::SecretString) -> Self {
        Self { secret }
    }

    pub fn verify(&self, header: Option<&str>, body: &[u8]) -> Result<(), Rejected> {
        use secrecy::ExposeSecret;
        signature::verify(
            Algorithm::HmacSha256Hex,
            SIGNATURE_HEADER,
            header,
            self.secret.expose_secret().as_bytes(),
            &[body],
        )?;
        Ok(())
    }

    pub fn parse(&self, body: &[u8], now: Millis) -> Result<KeyedEvent, Rejected> {
        let call: GenericCall = serde_json::from_slice(body).map_err(|e| {
            Rejected::Malformed(format!(
                "the body is not a call event: {e}. Expected {{\"call_id\", \"from\", \"to\", \"status\", \"ring_seconds\"?, \"duration\"?}}"
            ))
        })?;
        if call.call_id.trim().is_empty() {
            return Err(Rejected::Malformed(
                "call_id is empty; send the PBX's unique id for the call".into(),
            ));
        }
        let outcome = match call.status.to_ascii_lowercase().replace('_', "-").as_str() {
            "ringing" => CallOutcome::Ringing,
            "answered" => CallOutcome::Answered,
            // A PBX that reports "completed" with no talk time saw nobody pick up.
            "completed" if call.duration == Some(0) => CallOutcome::NoAnswer,
            "completed" => CallOutcome::Answered,
            "no-answer" | "noanswer" | "missed" | "unanswered" => CallOutcome::NoAnswer,
            "busy" => CallOutcome::Busy,
            "failed" => CallOutcome::Failed,
            "canceled" | "cancelled" | "abandoned" => CallOutcome::Canceled,
            "rejected" | "declined" => CallOutcome::Rejected,
            other => {
                return Err(Rejected::Malformed(format!(
                    "status '{other}' is not one of ringing, answered, completed, no-answer, missed, busy, failed, canceled, rejected"
                )));
            }
        };
        let dedup_key = format!("generic:call:{}:{}", call.call_id, outcome.as_str());
        let event = CallEvent {
            source: CallSource::Generic,
            provider_call_id: call.call_id,
            from_raw: call.from,
            to_raw: call.to,
            outcome,
            ring_seconds: call.ring_seconds,
            talk_seconds: call.duration,
            caller_name: call.caller_name.filter(|n| !n.trim().is_empty()),
            occurred_at: match call.timestamp {
                Some(t) => occurred_at(t, now)?,
                None => now,
            },
        };
        Ok(KeyedEvent {
            dedup_key,
            event: InboundEvent::Call(event),
        })
    }
}

/// 2000-01-01T00:00:00Z: no PBX reports a call before it, so an earlier value is a wrong unit
/// or a zeroed field.
pub const EARLIEST_TIMESTAMP: i64 = 946_684_800;
/// How far ahead of Ringback's clock a PBX clock may run.
const CLOCK_SKEW_SECONDS: i64 = 86_400;

/// `timestamp` (unix seconds) as milliseconds, or the 400 that says which unit and range.
pub fn occurred_at(timestamp: i64, now: Millis) -> Result<Millis, Rejected> {
    let latest = now / 1000 + CLOCK_SKEW_SECONDS;
    if (EARLIEST_TIMESTAMP..=latest).contains(&timestamp) {
        return Ok(timestamp * 1000);
    }
    let hint = if (EARLIEST_TIMESTAMP.saturating_mul(1000)..=latest.saturating_mul(1000))
        .contains(&timestamp)
    {
        "; it looks like milliseconds: divide by 1000"
    } else {
        ""
    };
    Err(Rejected::Malformed(format!(
        "timestamp {timestamp} is out of range: send seconds since the Unix epoch (UTC), from {EARLIEST_TIMESTAMP} (2000-01-01) to {latest} (one day after now){hint}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn event(timestamp: i64) -> Result<KeyedEvent, Rejected> {
        let body = serde_json::json!({"call_id": "c1", "from": "+919876543210", "status": "no-answer", "timestamp": timestamp});
        GenericSource::new("s".to_string().into()).parse(&serde_json::to_vec(&body).unwrap(), NOW)
    }

    fn refusal(timestamp: i64) -> String {
        match event(timestamp) {
            Err(Rejected::Malformed(m)) => m,
            Err(other) => panic!("{timestamp}: refused as {other}, not as malformed"),
            Ok(_) => panic!("{timestamp} was accepted"),
        }
    }

    #[test]
    fn seconds_in_range_are_the_call_time() {
        let InboundEvent::Call(c) = event(1_767_225_000).unwrap().event else {
            panic!("not a call")
        };
        assert_eq!(c.occurred_at, 1_767_225_000_000);
        assert!(event(EARLIEST_TIMESTAMP).is_ok());
        assert!(event(NOW / 1000 + CLOCK_SKEW_SECONDS).is_ok());
    }

    #[test]
    fn out_of_range_timestamps_are_refused_with_the_unit() {
        for t in [
            i64::MAX,
            i64::MIN,
            -1,
            0,
            EARLIEST_TIMESTAMP - 1,
            NOW / 1000 + CLOCK_SKEW_SECONDS + 1,
        ] {
            let m = refusal(t);
            assert!(m.contains("seconds since the Unix epoch"), "{t}: {m}");
            assert!(!m.contains("milliseconds"), "{t}: {m}");
        }
        let m = refusal(NOW - 60_000);
        assert!(m.contains("looks like milliseconds"), "{m}");
    }
}
