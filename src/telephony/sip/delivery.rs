//! Hands ended calls and unusable input to the [`CallSink`] without making the SIP loop wait:
//! the loop only puts them on a bounded channel; a delivering task commits them, many at
//! once, so the ingestor can group-commit them.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::inbound::{CallEvent, CallSource};
use crate::telephony::CallSink;

/// Calls waiting for the store. At 2,000 calls/s this is half a minute of store outage.
const QUEUE: usize = 65_536;
/// Commits in flight at once: enough to fill the ingestor's group commits.
const IN_FLIGHT: usize = 512;
/// Flagged records per second (burst 10): malformed traffic is counted in full, but only a
/// sample is written to the store, so a flood cannot fill it.
const FLAGS_PER_SECOND: u32 = 5;

enum Delivery {
    Call { event: CallEvent, raw: Vec<u8> },
    Flag { reason: String, raw: Vec<u8> },
}

/// The SIP loop's handle. Dropping every clone ends the delivering task once it has
/// committed what is queued.
#[derive(Clone)]
pub struct Deliveries {
    tx: mpsc::Sender<Delivery>,
    flags: Arc<DefaultDirectRateLimiter>,
}

impl Deliveries {
    /// Queues an ended call. Never waits: if the queue is full the store has been failing
    /// for a long time, and the call is logged at ERROR rather than stalling every caller.
    pub fn call(&self, event: CallEvent, raw: Vec<u8>) {
        crate::telemetry::sip_call_ended(event.outcome.as_str());
        if let Err(e) = self.tx.try_send(Delivery::Call { event, raw }) {
            let call_id = match e.into_inner() {
                Delivery::Call { event, .. } => event.provider_call_id,
                Delivery::Flag { .. } => String::new(),
            };
            crate::telemetry::sip_call_dropped();
            tracing::error!(%call_id, "SIP call lost: the delivery queue to the store is full.");
        }
    }

    /// Records unusable input, at most [`FLAGS_PER_SECOND`]; the rest is only counted.
    pub fn flag(&self, reason: String, raw: Vec<u8>) {
        if self.flags.check().is_ok() {
            let _ = self.tx.try_send(Delivery::Flag { reason, raw });
        }
    }
}

/// Starts the delivering task in `tasks`.
pub fn start(sink: CallSink, tasks: &mut JoinSet<()>) -> Deliveries {
    let (tx, rx) = mpsc::channel(QUEUE);
    let per_second = NonZeroU32::new(FLAGS_PER_SECOND).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(FLAGS_PER_SECOND * 2).unwrap_or(NonZeroU32::MIN);
    let flags = Arc::new(RateLimiter::direct(
        Quota::per_second(per_second).allow_burst(burst),
    ));
    tasks.spawn(run(rx, sink));
    Deliveries { tx, flags }
}

async fn run(mut rx: mpsc::Receiver<Delivery>, sink: CallSink) {
    let mut in_flight = JoinSet::new();
    while let Some(d) = rx.recv().await {
        while in_flight.len() >= IN_FLIGHT {
            in_flight.join_next().await;
        }
        while in_flight.try_join_next().is_some() {}
        in_flight.spawn(deliver(sink.clone(), d));
    }
    // The SIP loop is gone (shutdown): finish what was handed over.
    while in_flight.join_next().await.is_some() {}
}

async fn deliver(sink: CallSink, d: Delivery) {
    match d {
        Delivery::Call { event, raw } => {
            let call_id = event.provider_call_id.clone();
            if let Err(e) = sink.deliver_or_spool(raw, event).await {
                crate::telemetry::sip_call_dropped();
                tracing::error!(%call_id, error.message = %e, "Storing a SIP call failed and it could not be spooled; the missed call is lost.");
            }
        }
        Delivery::Flag { reason, raw } => {
            if let Err(e) = sink.flag(CallSource::Sip, &raw, reason).await {
                tracing::warn!(error.message = %e, "Recording malformed SIP input failed.");
            }
        }
    }
}
