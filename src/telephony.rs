//! Telephony sources that are not webhooks: Ringback's own SIP missed-call number ([`sip`]),
//! and clients of an Asterisk PBX's Manager Interface ([`ami`]) and a FreeSWITCH event socket
//! ([`esl`]). Each turns what it hears into the same normalised [`CallEvent`] as the webhook
//! sources and hands it to the [`CallSink`], which makes it durable through the ingestor; the
//! processor then applies the missed-call rules unchanged. While the store is unavailable the
//! sink keeps calls in the [`spool`] file, so a database hiccup cannot lose a missed call.

use tokio::task::JoinSet;

use crate::config::Settings;
use crate::inbound::InboundEvent;
use crate::inbound::{CallEvent, CallSource, IngestRequest, KeyedEvent};
use crate::ingestor::Ingestor;
use crate::shutdown::Shutdown;

pub mod ami;
pub mod esl;
mod link;
pub mod sip;
pub mod spool;

/// Where telephony sources deliver calls. Cheap to clone.
#[derive(Clone)]
pub struct CallSink {
    ingestor: Ingestor,
    spool: spool::Spool,
}

/// Where [`CallSink::deliver_or_spool`] put a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// In the store; `new` is false for a redelivery the dedup key absorbed.
    Stored { new: bool },
    /// In the spool file, fsynced; it reaches the store when the store answers again.
    Spooled,
}

impl CallSink {
    pub fn new(ingestor: Ingestor, spool: spool::Spool) -> Self {
        Self { ingestor, spool }
    }

    /// Commits one call event; returns once it is durable. `raw` is what the source saw
    /// (the SIP request, the AMI/ESL event block), kept for audit. A redelivery of the same
    /// (source, call id, outcome) is absorbed by the dedup key.
    pub async fn deliver(&self, raw: Vec<u8>, call: CallEvent) -> anyhow::Result<bool> {
        let dedup_key = format!(
            "{}:call:{}:{}",
            call.source.as_str(),
            call.provider_call_id,
            call.outcome.as_str()
        );
        let req = IngestRequest {
            source: call.source.as_str(),
            raw,
            events: vec![KeyedEvent {
                dedup_key,
                event: InboundEvent::Call(call),
            }],
            received_at: crate::time::now_ms(),
        };
        let counts = self
            .ingestor
            .submit(req)
            .await
            .map_err(|e| anyhow::anyhow!("storing the call failed: {e}"))?;
        Ok(counts.inserted > 0)
    }

    /// [`Self::deliver`], or when the store fails (or calls are already waiting in the spool,
    /// which this one must not overtake) an fsynced append to the spool. Either way the call
    /// is durable when this returns `Ok`; an error means both the store and the spool file
    /// failed, and the caller logs the call as lost.
    pub async fn deliver_or_spool(&self, raw: Vec<u8>, call: CallEvent) -> anyhow::Result<Kept> {
        if !self.spool.is_pending() {
            match self.deliver(raw.clone(), call.clone()).await {
                Ok(new) => return Ok(Kept::Stored { new }),
                Err(e) => {
                    tracing::warn!(source = call.source.as_str(), call_id = %call.provider_call_id, error.message = %e, "Storing a call failed; spooling it to disk until the store is back.");
                }
            }
        }
        self.spool.append(&call, &raw).await.map_err(|e| {
            anyhow::anyhow!(
                "the store is unavailable and the call spool {} cannot be written: {e}",
                self.spool.path().display()
            )
        })?;
        Ok(Kept::Spooled)
    }

    /// Records input a source could not use (a malformed SIP message, an AMI event without
    /// the fields a call needs) with the reason, so it is visible rather than silently
    /// dropped. `raw` is kept up to 4 KiB. Callers rate-limit this: it writes to the store.
    pub async fn flag(
        &self,
        source: CallSource,
        raw: &[u8],
        reason: impl Into<String>,
    ) -> anyhow::Result<()> {
        let reason = reason.into();
        let shown = String::from_utf8_lossy(&raw[..raw.len().min(4096)]).into_owned();
        let fragment = serde_json::json!({ "source": source.as_str(), "raw": shown });
        let req = IngestRequest {
            source: source.as_str(),
            raw: raw.to_vec(),
            events: vec![KeyedEvent {
                dedup_key: format!(
                    "{}:flagged:{}",
                    source.as_str(),
                    crate::inbound::digest_key(&serde_json::json!([&reason, &shown]))
                ),
                event: InboundEvent::Flagged { reason, fragment },
            }],
            received_at: crate::time::now_ms(),
        };
        self.ingestor
            .submit(req)
            .await
            .map_err(|e| anyhow::anyhow!("storing the flagged input failed: {e}"))?;
        Ok(())
    }
}

/// What the started sources listen on (for tests and the banner).
#[derive(Debug, Clone, Copy, Default)]
pub struct Started {
    pub sip: sip::Bound,
}

/// Starts every configured telephony source as a task in `tasks`.
pub async fn start(
    settings: &Settings,
    sink: CallSink,
    shutdown: Shutdown,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<Started> {
    // Started whatever is enabled: calls spooled by an earlier run are replayed at start.
    tasks.spawn(spool::run(sink.clone(), shutdown.clone()));
    let sip = sip::start(&settings.sip, sink.clone(), shutdown.clone(), tasks).await?;
    ami::start(&settings.asterisk, sink.clone(), shutdown.clone(), tasks).await?;
    esl::start(&settings.freeswitch, sink, shutdown, tasks).await?;
    Ok(Started { sip })
}
