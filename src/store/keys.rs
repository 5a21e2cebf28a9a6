//! API keys (hashes only).

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;
use crate::time::Millis;

/// An API key's public description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// API keys (hashes only)..
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new API key (its hash only).
    async fn create_api_key(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError>;
    /// Every API key, newest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key; `false` if there is no such active key.
    async fn revoke_api_key(&self, id: &str, now: Millis) -> Result<bool, StoreError>;
    /// Is `hash` the hash of an active key? `None` when no key was ever created.
    async fn api_key_valid(&self, hash: &str) -> Result<Option<bool>, StoreError>;
}
