//! Business numbers: what Meta announced about each (quality, throughput, tier, status).

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;
use crate::time::Millis;

/// A change to a number's state; `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NumberUpdate {
    /// `None` when no configured number matches: only the event is recorded.
    pub phone_number_id: Option<String>,
    pub field: String,
    pub event: Option<String>,
    pub throughput: Option<u32>,
    pub quality_rating: Option<String>,
    pub messaging_tier: Option<String>,
    pub status: Option<String>,
    pub detail: serde_json::Value,
}

/// A number's current state as Meta last described it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NumberState {
    pub phone_number_id: String,
    pub throughput: Option<u32>,
    pub quality_rating: Option<String>,
    pub messaging_tier: Option<String>,
    pub status: Option<String>,
    pub updated_at: Millis,
}

/// Business numbers.
#[async_trait]
pub trait NumberStore: Send + Sync {
    /// What Meta announced about a number (quality, throughput, tier, restrictions), newest first.
    async fn number_events(
        &self,
        phone_number_id: &str,
        limit: u32,
    ) -> Result<Vec<serde_json::Value>, StoreError>;
    /// Every number Meta has told us about.
    async fn numbers(&self) -> Result<Vec<NumberState>, StoreError>;
}
