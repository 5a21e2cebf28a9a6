//! Outbound webhook endpoints, their deliveries and every attempt.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;
use crate::events::{Event, Fact};
use crate::time::Millis;

/// A registered endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Event types delivered; empty = all.
    pub event_types: Vec<String>,
    #[serde(skip)]
    pub secret: String,
    /// The secret before the last rotation, still signed with until `previous_until`.
    #[serde(skip)]
    pub previous_secret: Option<String>,
    pub previous_until: Option<Millis>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// The first failure since the last success, if the endpoint is failing.
    pub failing_since: Option<Millis>,
    pub created_at: Millis,
}

impl Endpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        self.enabled
            && (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
    }
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub endpoint_id: String,
    pub event_id: i64,
    pub event_type: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: u32,
    pub next_attempt_at: Millis,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryAttempt {
    pub attempt_no: u32,
    pub at: Millis,
    pub status: Option<u16>,
    pub latency_ms: u32,
    /// The first bytes of the answer.
    pub response: String,
    pub error: Option<String>,
}

/// A delivery due now, with its event.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery: Delivery,
    pub event: Event,
}

/// How an attempt went and what follows.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryResult {
    pub delivery_id: i64,
    pub attempt: DeliveryAttempt,
    /// `delivered`, `pending` (retry at `next_attempt_at`) or `failed`.
    pub state: &'static str,
    pub next_attempt_at: Millis,
}

/// Which deliveries a list shows, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub endpoint_id: Option<String>,
    pub state: Option<String>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_endpoint(&self, e: &Endpoint) -> Result<(), StoreError>;
    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError>;
    async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>, StoreError>;
    /// Writes every field of an existing endpoint; `false` when there is none.
    async fn update_endpoint(&self, e: &Endpoint) -> Result<bool, StoreError>;
    /// Disables an endpoint with its reason and journals the fact, in one transaction.
    async fn disable_endpoint(&self, id: &str, reason: &str, fact: &Fact)
    -> Result<(), StoreError>;
    /// Removes an endpoint and its pending deliveries; `false` when there is none.
    async fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError>;
    /// Pending deliveries of `endpoint_id` due by `now`, oldest first, leaving out any whose
    /// conversation has an earlier delivery still pending (order per conversation).
    async fn due_deliveries(
        &self,
        endpoint_id: &str,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;
    /// When the next pending delivery of `endpoint_id` is due.
    async fn next_delivery_at(&self, endpoint_id: &str) -> Result<Option<Millis>, StoreError>;
    /// Records attempts and moves their deliveries; sets the endpoint's failing mark.
    async fn record_deliveries(
        &self,
        endpoint_id: &str,
        results: &[DeliveryResult],
        failing_since: Option<Millis>,
    ) -> Result<(), StoreError>;
    async fn deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError>;
    async fn delivery(
        &self,
        id: i64,
    ) -> Result<Option<(Delivery, Vec<DeliveryAttempt>)>, StoreError>;
    /// Puts deliveries back in the queue, due `now`: one (`Some(id)`), or every delivery of
    /// `endpoint_id` whose event happened in `[from, to)`. Returns how many.
    async fn replay(
        &self,
        id: Option<i64>,
        endpoint_id: Option<&str>,
        range: Option<(Millis, Millis)>,
        now: Millis,
    ) -> Result<u64, StoreError>;
}
