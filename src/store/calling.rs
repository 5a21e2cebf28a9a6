//! WhatsApp Business Calling: call permissions and business-initiated calls.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::time::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PermissionStatus {
    #[default]
    None,
    Requested,
    Accepted,
    Declined,
    Expired,
    Revoked,
}

impl PermissionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionStatus::None => "none",
            PermissionStatus::Requested => "requested",
            PermissionStatus::Accepted => "accepted",
            PermissionStatus::Declined => "declined",
            PermissionStatus::Expired => "expired",
            PermissionStatus::Revoked => "revoked",
        }
    }
}

/// Meta's limits; the defaults are production's.
/// Everything Ringback knows about one pair's permission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PermissionRecord {
    pub status: PermissionStatus,
    pub permanent: bool,
    /// When a temporary permission (or an unanswered request) lapses.
    pub expires_at: Option<Millis>,
    /// Permission requests sent since the last connected call (newest last, ≤ 7 days old).
    pub requests: Vec<Millis>,
    /// Connected business-initiated calls in the last 24 h.
    pub connected_calls: Vec<Millis>,
    pub consecutive_unanswered: u32,
    /// Origins (wamid, wacid) already applied, so a redelivered webhook changes nothing.
    pub seen: Vec<String>,
    pub updated_at: Millis,
}

/// One recorded change: a state transition, or a notable fact in the same state (the
/// reconsider prompt, a request sent while the permission stays accepted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub from: PermissionStatus,
    pub to: PermissionStatus,
    /// `request`, `user_reply`, `automatic`, `user_call`, `unanswered_calls`, `expiry`.
    pub source: String,
    pub reason: String,
}

/// One stored `call.permission_changed` event.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PermissionEvent {
    pub id: i64,
    /// Always `call.permission_changed`: the trigger name flows and CRM webhooks use.
    pub event: &'static str,
    pub sender_id: String,
    pub user_id: String,
    pub from: String,
    pub to: String,
    pub source: String,
    pub reason: String,
    pub at: Millis,
}

/// A call the business placed (`POST /api/v1/calls`) and what became of it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BusinessCall {
    pub id: String,
    pub sender_id: String,
    pub user_id: String,
    /// Meta's call id, once `connect` was accepted.
    pub wacid: Option<String>,
    /// `refused` (locally), `failed` (Meta said no), `calling`, `ringing`, `accepted`,
    /// `declined` (the user declined; Meta's terminate follows), and the final `rejected`,
    /// `completed`, `unanswered`.
    pub status: String,
    pub reason: Option<String>,
    pub duration: Option<u32>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl BusinessCall {
    pub fn is_final(&self) -> bool {
        matches!(
            self.status.as_str(),
            "refused" | "failed" | "completed" | "unanswered" | "rejected"
        )
    }
}

/// WhatsApp Business Calling.
#[async_trait]
pub trait CallingStore: Send + Sync {
    /// Periodic housekeeping off the hot path (SQLite: WAL checkpoints).
    /// A pair's call permission (WhatsApp Business Calling), if any was ever recorded.
    async fn call_permission(
        &self,
        sender_id: &str,
        user_id: &str,
    ) -> Result<Option<PermissionRecord>, StoreError>;
    /// Saves a pair's permission and appends its changes, in one transaction.
    async fn save_call_permission(
        &self,
        sender_id: &str,
        user_id: &str,
        record: &PermissionRecord,
        changes: &[Change],
        at: Millis,
    ) -> Result<(), StoreError>;
    /// The `call.permission_changed` events, oldest first, filtered by number and user.
    async fn call_permission_events(
        &self,
        sender_id: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<Vec<PermissionEvent>, StoreError>;
    /// Inserts or updates a business-initiated call.
    async fn save_business_call(&self, call: &BusinessCall) -> Result<(), StoreError>;
    async fn business_call(&self, id: &str) -> Result<Option<BusinessCall>, StoreError>;
    /// Records Meta's call id on a placed call (keeps one a webhook already recorded).
    async fn set_business_call_wacid(&self, id: &str, wacid: &str) -> Result<(), StoreError>;
    async fn business_call_by_wacid(&self, wacid: &str)
    -> Result<Option<BusinessCall>, StoreError>;
    async fn business_calls(&self, limit: u32) -> Result<Vec<BusinessCall>, StoreError>;
}
