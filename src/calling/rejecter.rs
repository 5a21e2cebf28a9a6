//! Rejects a user's WhatsApp call that is still ringing after `calling.reject_after_seconds`
//! (`POST /{phone-number-id}/calls` action `reject`), so the caller is answered on WhatsApp
//! at once instead of after Meta's 30–60 s timeout.
//!
//! After a successful reject, Ringback records the call's end itself (the same event, with
//! the same dedup key, as Meta's `terminate` webhook that follows, so whichever arrives first
//! counts and the other is absorbed). The timers live in memory: if Ringback restarts while a
//! call rings, Meta still times the call out and its `terminate` webhook makes it a missed call.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;

use crate::cloud_api::Client;
use crate::inbound::{CallEvent, CallOutcome, InboundEvent, IngestRequest, KeyedEvent};
use crate::ingestor::Ingestor;
use crate::time::now_ms;

/// Cheap to clone.
#[derive(Clone)]
pub struct Rejecter {
    client: Client,
    ingestor: Ingestor,
    after: Duration,
    /// Calls with a timer running, so a redelivered `connect` does not start a second one.
    pending: Arc<Mutex<HashSet<String>>>,
}

impl Rejecter {
    pub fn new(client: Client, ingestor: Ingestor, after_seconds: u32) -> Option<Self> {
        (after_seconds > 0).then(|| Self {
            client,
            ingestor,
            after: Duration::from_secs(u64::from(after_seconds)),
            pending: Arc::default(),
        })
    }

    /// Starts the timer for a ringing call (the `connect` event), counted from when it rang.
    pub fn schedule(&self, call: &CallEvent, phone_number_id: &str, token: &SecretString) {
        let id = call.provider_call_id.clone();
        if !self
            .pending
            .lock()
            .expect("not poisoned")
            .insert(id.clone())
        {
            return;
        }
        let rang_for = Duration::from_millis((now_ms() - call.occurred_at).max(0) as u64);
        let wait = self.after.saturating_sub(rang_for);
        let this = self.clone();
        let (call, pnid, token) = (call.clone(), phone_number_id.to_string(), token.clone());
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            this.reject(call, &pnid, &token).await;
            this.pending.lock().expect("not poisoned").remove(&id);
        });
    }

    async fn reject(&self, call: CallEvent, pnid: &str, token: &SecretString) {
        let body = serde_json::json!({
            "messaging_product": "whatsapp",
            "call_id": call.provider_call_id,
            "action": "reject",
        });
        match self.client.call_action(pnid, token, &body).await {
            Ok(_) => {
                tracing::info!(call_id = %call.provider_call_id, "Rejected a ringing WhatsApp call; the caller gets the WhatsApp reply now.");
                metrics::counter!("ringback_whatsapp_calls_rejected_total").increment(1);
                let ring_seconds = self.after.as_secs() as u32;
                let ended = CallEvent {
                    outcome: CallOutcome::NoAnswer,
                    ring_seconds: Some(ring_seconds),
                    occurred_at: now_ms(),
                    ..call
                };
                let req = IngestRequest {
                    source: "whatsapp",
                    raw: serde_json::to_vec(&body).unwrap_or_default(),
                    events: vec![KeyedEvent {
                        // The key Meta's terminate webhook for this call gets (inbound::whatsapp).
                        dedup_key: format!("wa:call:{}:terminate", ended.provider_call_id),
                        event: InboundEvent::Call(ended),
                    }],
                    received_at: now_ms(),
                };
                if let Err(e) = self.ingestor.submit(req).await {
                    tracing::error!(error.message = %e, "Could not record the rejected call; Meta's terminate webhook will.");
                }
            }
            // The call may already be over (the user hung up, or someone answered it).
            Err(e) => {
                tracing::info!(call_id = %call.provider_call_id, error.message = %e, "Did not reject the WhatsApp call.")
            }
        }
    }
}
