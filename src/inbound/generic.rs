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
    /// When the call happened, unix seconds; defaults to when Ringback received it.
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
            occurred_at: call.timestamp.map(|s| s * 1000).unwrap_or(now),
        };
        Ok(KeyedEvent {
            dedup_key,
            event: InboundEvent::Call(event),
        })
    }
}
