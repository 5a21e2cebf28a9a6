//! Running several nodes on one database.
//!
//! Every node accepts webhooks and API calls: those only append rows. The work behind them —
//! deciding events in order, sending from the outbox at each number's pace, retention — runs
//! on one node at a time, the holder of the `leader` lease. One place keeps the guarantees
//! that depend on seeing everything: per-caller order (cooldowns, windows) and exact pacing
//! (a number's 80/s is one budget, not 80/s per node). When the leader dies its lease lapses
//! and another node takes it; sends the dead node had in flight are taken over by the same
//! uncertainty rule as a restart ([`crate::store::OutboxStore::mark_in_flight_uncertain`]).
//!
//! The store keeps the bookkeeping ([`crate::store::ClusterStore`]); this module decides how
//! long a lease lasts, renews it, and stops the leader's work the moment it cannot.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::shutdown::Shutdown;
use crate::store::{Fence, NodeInfo, Store};
use crate::time::{Millis, now_ms};

/// The lease whose holder runs the processor, the outbox lanes and retention.
pub const LEADER: &str = "leader";

/// This node and its lease timing.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: Arc<str>,
    pub started_at: Millis,
    /// Where it listens, for `ringback cluster`.
    pub address: String,
    /// How long a lease lasts without renewal: a dead leader is replaced after at most this.
    pub lease: Duration,
    /// How long a claimed send stays leased to the node that claimed it. Longer than any
    /// request may take, so a live node never loses a send it is still attempting.
    pub send_lease: Duration,
    /// The longest a leader's worker stays idle: work committed by another node wakes
    /// nothing on this one.
    pub poll: Duration,
}

impl Node {
    /// This node as configured (`[cluster]`), listening on `addr`.
    pub fn new(settings: &crate::config::Settings, addr: std::net::SocketAddr) -> Node {
        let c = &settings.cluster;
        Node {
            id: if c.node_id.is_empty() {
                default_node_id().into()
            } else {
                c.node_id.as_str().into()
            },
            started_at: now_ms(),
            address: addr.to_string(),
            lease: c.lease,
            // Three request timeouts: a live node is never overtaken on a send it attempts.
            send_lease: (settings.request_timeout * 3).max(Duration::from_secs(5)),
            poll: c.poll,
        }
    }

    /// The heartbeat row.
    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            id: self.id.to_string(),
            started_at: self.started_at,
            last_seen: now_ms(),
            address: Some(self.address.clone()),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        }
    }

    pub fn send_lease_until(&self, now: Millis) -> Millis {
        now + millis(self.send_lease)
    }
}

fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX / 4)
}

/// This node's name when none is configured: the host name, which stays the same across
/// restarts so a restarted node takes back its own lease and sends at once. Several nodes on
/// one host need `cluster.node_id`.
pub fn default_node_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Beats every third of a lease until shutdown, so `ringback cluster` shows who is alive.
pub async fn heartbeat(store: Arc<dyn Store>, node: Node, mut shutdown: Shutdown) {
    loop {
        if let Err(e) = store.heartbeat(&node.info()).await {
            tracing::warn!(error.message = %e, "Could not record this node's heartbeat; retrying.");
        }
        tokio::select! {
            _ = tokio::time::sleep(node.lease / 3) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Runs `work` while this node holds lease `name`, for as many terms as it wins, until
/// shutdown. A term starts when the lease is taken (the work gets the term's [`Fence`]) and
/// ends when a renewal shows the lease is gone, or when renewals fail until it would lapse:
/// the work's future is then dropped, before another node can take over.
pub async fn while_held<W, F>(
    store: Arc<dyn Store>,
    node: Node,
    name: &str,
    mut shutdown: Shutdown,
    work: W,
) where
    W: Fn(Fence, Shutdown) -> F,
    F: Future<Output = ()>,
{
    let lease = millis(node.lease);
    loop {
        let held = tokio::select! {
            held = acquire(&store, &node, name) => held,
            _ = shutdown.wait() => return,
        };
        tracing::info!(lease = name, node = %node.id, token = held.token, "This node holds the lease.");
        metrics::gauge!("ringback_cluster_lease_held", "lease" => name.to_string()).set(1.0);
        // The term's own stop signal: fired at shutdown, or when the lease is lost.
        let (end_term, term) = crate::shutdown::channel();
        let job = work(Fence::from(&held), term);
        tokio::pin!(job);
        let lost = tokio::select! {
            _ = &mut job => false,
            _ = shutdown.wait() => false,
            _ = keep(&store, &node, name, held.token, held.expires_at, lease) => true,
        };
        end_term.fire();
        // In-flight work finishes (its writes are fenced); bounded in case it cannot.
        let _ = tokio::time::timeout(node.lease, job).await;
        metrics::gauge!("ringback_cluster_lease_held", "lease" => name.to_string()).set(0.0);
        if !lost {
            // Shutdown: hand the lease over at once instead of making the next node wait.
            let _ = store.release_lease(name, &node.id).await;
            return;
        }
        tracing::warn!(lease = name, node = %node.id, "This node lost the lease; its work stops until it holds it again.");
    }
}

/// Waits until the lease is this node's.
async fn acquire(store: &Arc<dyn Store>, node: &Node, name: &str) -> crate::store::Lease {
    let lease = millis(node.lease);
    loop {
        let now = now_ms();
        match store.acquire_lease(name, &node.id, now, now + lease).await {
            Ok(Some(l)) => return l,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(lease = name, error.message = %e, "Could not ask for the lease; asking again.")
            }
        }
        tokio::time::sleep(node.lease / 4).await;
    }
}

/// Renews the lease every third of its length; returns when it is lost.
async fn keep(
    store: &Arc<dyn Store>,
    node: &Node,
    name: &str,
    token: i64,
    mut expires_at: Millis,
    lease: Millis,
) {
    loop {
        tokio::time::sleep(node.lease / 3).await;
        let now = now_ms();
        match store.acquire_lease(name, &node.id, now, now + lease).await {
            Ok(Some(l)) if l.token == token => expires_at = l.expires_at,
            // Someone else held it in between, or holds it now.
            Ok(_) => return,
            // The store is unreachable: keep working while the lease certainly holds.
            Err(e) => {
                tracing::warn!(lease = name, error.message = %e, "Could not renew the lease.");
                if now + lease / 3 >= expires_at {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> Node {
        Node {
            id: id.into(),
            started_at: 0,
            address: "127.0.0.1:0".into(),
            lease: Duration::from_secs(2),
            send_lease: Duration::from_secs(5),
            poll: Duration::from_millis(50),
        }
    }

    /// The work runs under the lease with its fence, and a shutdown hands the lease over at
    /// once (expired, token kept) so the next node need not wait for it to lapse.
    #[tokio::test]
    async fn work_runs_under_the_lease_and_shutdown_hands_it_over() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            crate::store::open(&format!("sqlite://{}", dir.path().join("c.db").display()))
                .await
                .unwrap();
        let (trigger, shutdown) = crate::shutdown::channel();
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let runner = tokio::spawn(while_held(
            store.clone(),
            node("node-a"),
            LEADER,
            shutdown,
            move |fence, mut term| {
                let seen = seen_tx.clone();
                async move {
                    let _ = seen.send(fence);
                    term.wait().await;
                }
            },
        ));
        let fence = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv())
            .await
            .expect("the work starts")
            .expect("with a fence");
        assert_eq!(
            (fence.name.as_str(), fence.holder.as_str()),
            (LEADER, "node-a")
        );
        // Another node is refused while the lease is held.
        let now = now_ms();
        assert_eq!(
            store
                .acquire_lease(LEADER, "node-b", now, now + 2_000)
                .await
                .unwrap(),
            None
        );
        trigger.fire();
        tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .expect("the runner ends at shutdown")
            .unwrap();
        let now = now_ms();
        let next = store
            .acquire_lease(LEADER, "node-b", now, now + 2_000)
            .await
            .unwrap()
            .expect("handed over at once");
        assert_eq!(
            next.token,
            fence.token + 1,
            "a new holder gets a higher token"
        );
    }
}
