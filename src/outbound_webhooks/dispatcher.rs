//! Delivers events to endpoints: one worker per enabled endpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::HashSet;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::address;
use crate::config::events::OutboundWebhookSettings;
use crate::events::Fact;
use crate::shutdown::Shutdown;
use crate::store::{DeliveryAttempt, DeliveryResult, DueDelivery, Endpoint, Store, StoreError};
use crate::time::{Millis, now_ms};

/// How often the endpoint list is read again (endpoints added, removed, disabled).
const RESCAN: Duration = Duration::from_secs(1);
/// The longest wait of an idle worker: events published on another node wake nothing here.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How much of an endpoint's answer is kept in the attempt log.
const RESPONSE_HEAD: usize = 256;

/// The delivery workers' shared parts.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    settings: OutboundWebhookSettings,
    published: watch::Sender<i64>,
    client: reqwest::Client,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        settings: OutboundWebhookSettings,
        published: watch::Sender<i64>,
    ) -> Self {
        let mut builder = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            // A redirect is an answer like any other (not 2xx: retried); following it could
            // lead anywhere, including past the address check.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Ringback-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private_addresses {
            builder = builder.dns_resolver(address::PublicOnly).no_proxy();
        }
        Dispatcher {
            store,
            settings,
            published,
            client: builder
                .build()
                .expect("a client with a resolver and no TLS options builds"),
        }
    }

    /// Keeps one worker running per enabled endpoint until `shutdown`.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut workers: HashMap<String, JoinHandle<()>> = HashMap::new();
        loop {
            match self.store.endpoints().await {
                Ok(endpoints) => {
                    workers.retain(|id, handle| {
                        let keep = !handle.is_finished()
                            && endpoints.iter().any(|e| &e.id == id && e.enabled);
                        if !keep {
                            handle.abort();
                        }
                        keep
                    });
                    for e in endpoints.into_iter().filter(|e| e.enabled) {
                        if let std::collections::hash_map::Entry::Vacant(slot) =
                            workers.entry(e.id.clone())
                        {
                            let worker = self.clone().endpoint_worker(e.id, shutdown.clone());
                            slot.insert(tokio::spawn(worker));
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "Could not read the webhook endpoints.")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RESCAN) => {}
                _ = shutdown.wait() => break,
            }
        }
        for (_, w) in workers {
            let _ = w.await;
        }
    }

    /// Keeps up to `concurrency` requests in flight for one endpoint: due deliveries are
    /// started as slots free up, and each finished attempt is recorded at once (with any
    /// others finished by then), so one slow request holds back only its own conversation.
    async fn endpoint_worker(self, id: String, mut shutdown: Shutdown) {
        let mut published = self.published.subscribe();
        let mut backoff = crate::retry::Backoff::store_write();
        let mut in_flight: HashSet<i64> = HashSet::new();
        let mut running = FuturesUnordered::new();
        // Results that could not be recorded yet (the store failed): kept and retried.
        let mut unrecorded: Vec<DeliveryResult> = Vec::new();
        loop {
            let mut wait = IDLE_POLL;
            let mut failed = false;
            if !unrecorded.is_empty() {
                match self.record(&id, &unrecorded).await {
                    Ok(Recorded::Disabled) => return,
                    Ok(Recorded::Kept) => {
                        for r in unrecorded.drain(..) {
                            in_flight.remove(&r.delivery_id);
                        }
                    }
                    Err(e) => {
                        tracing::error!(endpoint = %id, error.message = %e, "Webhook attempts could not be recorded; retrying.");
                        failed = true;
                    }
                }
            }
            if !failed && in_flight.len() < self.settings.concurrency {
                match self.due(&id, &in_flight).await {
                    Ok(Due::Stop) if in_flight.is_empty() => return,
                    Ok(Due::Stop) => {}
                    Ok(Due::Some(endpoint, due)) => {
                        for d in due
                            .into_iter()
                            .take(self.settings.concurrency - in_flight.len())
                        {
                            in_flight.insert(d.delivery.id);
                            running.push(self.attempt(endpoint.clone(), d));
                        }
                    }
                    Ok(Due::Later(next)) => {
                        if let Some(at) = next {
                            let ms = (at - now_ms()).clamp(0, IDLE_POLL.as_millis() as i64);
                            wait = Duration::from_millis(ms as u64);
                        }
                    }
                    Err(e) => {
                        tracing::error!(endpoint = %id, error.message = %e, "Webhook deliveries could not be read; retrying.");
                        failed = true;
                    }
                }
            }
            if failed {
                wait = backoff.next_delay();
            } else {
                backoff.reset();
            }
            let slots_free = in_flight.len() < self.settings.concurrency && !failed;
            tokio::select! {
                Some(r) = running.next(), if !running.is_empty() => {
                    unrecorded.push(r);
                    // Everything else finished by now goes in the same transaction.
                    while let Some(Some(r)) = running.next().now_or_never() {
                        unrecorded.push(r);
                    }
                }
                _ = published.changed(), if slots_free => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return,
            }
        }
    }

    /// The endpoint and what is due for it now, leaving out what is in flight.
    async fn due(&self, id: &str, in_flight: &HashSet<i64>) -> Result<Due, StoreError> {
        let Some(endpoint) = self.store.endpoint(id).await? else {
            return Ok(Due::Stop);
        };
        if !endpoint.enabled {
            return Ok(Due::Stop);
        }
        let limit = (self.settings.concurrency + in_flight.len()) as u32;
        let due: Vec<DueDelivery> = self
            .store
            .due_deliveries(id, now_ms(), limit)
            .await?
            .into_iter()
            .filter(|d| !in_flight.contains(&d.delivery.id))
            .collect();
        if due.is_empty() {
            return Ok(Due::Later(self.store.next_delivery_at(id).await?));
        }
        Ok(Due::Some(Arc::new(endpoint), due))
    }

    /// Records finished attempts; disables the endpoint when it has failed for too long.
    async fn record(&self, id: &str, results: &[DeliveryResult]) -> Result<Recorded, StoreError> {
        let Some(endpoint) = self.store.endpoint(id).await? else {
            return Ok(Recorded::Disabled);
        };
        let now = now_ms();
        let failing_since = if results.iter().any(|r| r.state == "delivered") {
            None
        } else {
            Some(endpoint.failing_since.unwrap_or(now))
        };
        self.store
            .record_deliveries(id, results, failing_since)
            .await?;
        for r in results {
            metrics::counter!("ringback_webhook_deliveries_total", "outcome" => r.state)
                .increment(1);
        }
        let Some(since) = failing_since else {
            return Ok(Recorded::Kept);
        };
        if now - since < self.settings.disable_after {
            return Ok(Recorded::Kept);
        }
        let days = self.settings.disable_after / (24 * crate::time::HOUR_MS);
        let reason = format!(
            "no delivery succeeded for {days} days (since {}); last error: {}",
            crate::time::display(since),
            results
                .last()
                .and_then(|r| r.attempt.error.clone())
                .unwrap_or_default()
        );
        tracing::warn!(endpoint = %id, url = %endpoint.url, %reason, "Webhook endpoint disabled.");
        let fact = Fact::EndpointDisabled {
            endpoint_id: id.to_string(),
            url: endpoint.url.clone(),
            reason: reason.clone(),
            at: now,
        };
        self.store.disable_endpoint(id, &reason, &fact).await?;
        Ok(Recorded::Disabled)
    }

    /// One HTTP attempt, and what follows from it.
    async fn attempt(&self, endpoint: Arc<Endpoint>, d: DueDelivery) -> DeliveryResult {
        let attempt_no = d.delivery.attempts + 1;
        let started = Instant::now();
        let at = now_ms();
        let body = d.event.envelope().to_string();
        let webhook_id = d.event.webhook_id();
        let timestamp = at / 1000;
        let mut secrets = vec![endpoint.secret.as_str()];
        if let (Some(old), Some(until)) = (&endpoint.previous_secret, endpoint.previous_until)
            && until > at
        {
            secrets.push(old);
        }
        let signature = super::signing::header(&secrets, &webhook_id, timestamp, body.as_bytes());
        let outcome = self
            .post(&endpoint.url, &webhook_id, timestamp, &signature, body)
            .await;
        let latency_ms = started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
        let (status, response, error, hint) = match outcome {
            Ok((status, head, hint)) => {
                let error = (!(200..300).contains(&status))
                    .then(|| format!("the endpoint answered {status}"));
                (Some(status), head, error, hint)
            }
            Err(e) => (None, String::new(), Some(e), None),
        };
        let (state, next_attempt_at) = if error.is_none() {
            ("delivered", at)
        } else {
            match self
                .settings
                .retry
                .next_attempt_at(attempt_no, None, hint, now_ms())
            {
                Some(next) => ("pending", next),
                None => ("failed", at),
            }
        };
        DeliveryResult {
            delivery_id: d.delivery.id,
            attempt: DeliveryAttempt {
                attempt_no,
                at,
                status,
                latency_ms,
                response,
                error,
            },
            state,
            next_attempt_at,
        }
    }

    /// Posts a signed event; the status, the first bytes of the answer and any Retry-After.
    async fn post(
        &self,
        url: &str,
        webhook_id: &str,
        timestamp: Millis,
        signature: &str,
        body: String,
    ) -> Result<(u16, String, Option<Duration>), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid url: {e}"))?;
        if !self.settings.allow_private_addresses
            && let Some(ip) = address::literal_ip(&parsed)
            && !address::is_public(ip)
        {
            return Err(address::private_refusal(url, ip));
        }
        let response = self
            .client
            .post(parsed)
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let hint = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut head = Vec::new();
        let mut response = response;
        while head.len() < RESPONSE_HEAD {
            match response.chunk().await {
                Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                _ => break,
            }
        }
        head.truncate(RESPONSE_HEAD);
        Ok((status, String::from_utf8_lossy(&head).into_owned(), hint))
    }
}

/// What is due for an endpoint.
enum Due {
    Some(Arc<Endpoint>, Vec<DueDelivery>),
    /// Nothing due now; the next pending delivery is due then.
    Later(Option<Millis>),
    /// The endpoint is gone or disabled.
    Stop,
}

/// What recording attempts led to.
enum Recorded {
    Kept,
    Disabled,
}

/// A transport error in words, with its cause chain (reqwest's top line alone says little).
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "no answer before the timeout".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
