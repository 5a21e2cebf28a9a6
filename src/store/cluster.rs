//! Several nodes on one database: who is alive, and who runs each singleton job.
//!
//! A lease names a job only one node may run at a time — the in-order event processor, the
//! sending lane of one business number (so its pacing budget is spent in one place), the
//! retention worker. A node takes a free or lapsed lease and renews it well before it lapses;
//! every change of holder raises the lease's token, and writes made under a lease carry its
//! [`Fence`] so a node that lost its lease (paused, partitioned) cannot write with it.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;
use crate::time::Millis;

/// One node of the cluster as its heartbeat last described it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeInfo {
    pub id: String,
    pub started_at: Millis,
    pub last_seen: Millis,
    /// Where it listens (for people reading `ringback cluster`).
    pub address: Option<String>,
    pub version: Option<String>,
}

/// A singleton job and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    /// Raised at every change of holder: the fencing token.
    pub token: i64,
    pub expires_at: Millis,
}

/// Proof that a write is made under a lease still held: the store refuses the write (with
/// [`StoreError::LeaseLost`]) unless `holder` still holds `name` with `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub name: String,
    pub holder: String,
    pub token: i64,
}

impl From<&Lease> for Fence {
    fn from(l: &Lease) -> Self {
        Fence {
            name: l.name.clone(),
            holder: l.holder.clone(),
            token: l.token,
        }
    }
}

/// Nodes and leases.
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Records that `node` is alive (inserts it, or updates `last_seen` and `address`).
    async fn heartbeat(&self, node: &NodeInfo) -> Result<(), StoreError>;
    /// Every node that ever beat, most recently seen first.
    async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError>;
    /// Takes `name` for `holder` until `until` if it is free, lapsed (`expires_at <= now`) or
    /// already `holder`'s (a renewal, same token); a new holder gets the previous token + 1.
    /// `None` while another node holds it.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        until: Millis,
    ) -> Result<Option<Lease>, StoreError>;
    /// Gives a lease up at once (a clean shutdown), if `holder` still holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
    /// Every lease, by name.
    async fn leases(&self) -> Result<Vec<Lease>, StoreError>;
}
