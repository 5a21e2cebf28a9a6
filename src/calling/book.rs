//! The permission book: applies [`super::permission`] to stored records under one lock, so an
//! API request and a webhook for the same pair never lose each other's update, and stores
//! every change as a `call.permission_changed` event in the same transaction as the record.

use std::sync::Arc;

use super::permission::{self, Change, Input, Limits, PermissionRecord, Refusal};
pub use crate::store::{BusinessCall, PermissionEvent};
use crate::store::{Store, StoreError};
use crate::time::Millis;

/// Cheap to clone; one per server.
#[derive(Clone)]
pub struct PermissionBook {
    store: Arc<dyn Store>,
    pub limits: Limits,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl PermissionBook {
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        Self {
            store,
            limits,
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The pair's record (a default `none` record if nothing was ever recorded).
    pub async fn get(
        &self,
        sender_id: &str,
        user_id: &str,
    ) -> Result<PermissionRecord, StoreError> {
        Ok(self
            .store
            .call_permission(sender_id, user_id)
            .await?
            .unwrap_or_default())
    }

    /// Holds the book for a check-then-act sequence; use [`Self::apply_locked`] while held.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    /// Applies `input`; returns the changes it caused (empty if it was a redelivery).
    pub async fn apply(
        &self,
        sender_id: &str,
        user_id: &str,
        input: Input,
        now: Millis,
    ) -> Result<Vec<Change>, StoreError> {
        let _guard = self.lock.lock().await;
        self.apply_locked(sender_id, user_id, input, now).await
    }

    /// [`Self::apply`] for a caller that holds [`Self::lock`].
    pub async fn apply_locked(
        &self,
        sender_id: &str,
        user_id: &str,
        input: Input,
        now: Millis,
    ) -> Result<Vec<Change>, StoreError> {
        let mut record = self.get(sender_id, user_id).await?;
        let redelivery = record.seen.iter().any(|s| s == input.origin());
        let changes = permission::apply(&mut record, &input, now, &self.limits);
        if !redelivery {
            self.store
                .save_call_permission(sender_id, user_id, &record, &changes, now)
                .await?;
            for c in &changes {
                tracing::info!(
                    event = "call.permission_changed",
                    sender_id,
                    user_id,
                    from = c.from.as_str(),
                    to = c.to.as_str(),
                    source = %c.source,
                    reason = %c.reason,
                    "Call permission changed."
                );
                metrics::counter!("ringback_call_permission_changes_total", "to" => c.to.as_str())
                    .increment(1);
            }
        }
        Ok(changes)
    }

    /// May the business call this user now?
    pub async fn may_call(
        &self,
        sender_id: &str,
        user_id: &str,
        now: Millis,
    ) -> Result<Result<(), Refusal>, StoreError> {
        Ok(self
            .get(sender_id, user_id)
            .await?
            .may_call(now, &self.limits))
    }
}
