//! `[cluster]`: this node's name and how the nodes sharing one PostgreSQL database hand the
//! leader's work between them (the `cluster` module runs it).

use std::time::Duration;

use serde::Deserialize;

/// `[cluster]` as written. See `config.default.toml` for each field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub node_id: String,
    pub lease_seconds: u64,
    pub poll_ms: u64,
}

/// `[cluster]`, checked.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// Empty: the host name (see `cluster::default_node_id`).
    pub node_id: String,
    pub lease: Duration,
    pub poll: Duration,
}

impl ClusterConfig {
    pub fn settings(&self) -> Result<ClusterSettings, String> {
        if !(2..=300).contains(&self.lease_seconds) {
            return Err("cluster.lease_seconds must be between 2 and 300".into());
        }
        if !(10..=10_000).contains(&self.poll_ms) {
            return Err("cluster.poll_ms must be between 10 and 10000".into());
        }
        let id = self.node_id.trim();
        if id.len() > 100 || id.chars().any(|c| c.is_control()) {
            return Err("cluster.node_id must be at most 100 printable characters".into());
        }
        Ok(ClusterSettings {
            node_id: id.to_string(),
            lease: Duration::from_secs(self.lease_seconds),
            poll: Duration::from_millis(self.poll_ms),
        })
    }
}
