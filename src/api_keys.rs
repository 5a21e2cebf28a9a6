//! API keys: `rbk_` and 32 random bytes in hex, shown once; only their SHA-256 is stored.

use sha2::{Digest, Sha256};

use crate::store::{ApiKey, Store, StoreError};

/// The stored form of a key.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Creates and stores a key; returns its description and the secret (to show once).
pub async fn create(store: &dyn Store, name: &str) -> Result<(ApiKey, String), StoreError> {
    let secret = format!("rbk_{}", hex::encode(rand::random::<[u8; 32]>()));
    let key = ApiKey {
        id: format!("key_{}", uuid::Uuid::now_v7().simple()),
        name: name.to_string(),
        created_at: crate::time::now_ms(),
        revoked_at: None,
    };
    store.create_api_key(&key, &hash(&secret)).await?;
    Ok((key, secret))
}
