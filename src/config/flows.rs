//! `[flows]`: where flow files are read from and how the runner runs them.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[flows]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowsConfig {
    pub dir: String,
    pub concurrency: usize,
    pub http_timeout_ms: u64,
    pub allow_private_addresses: bool,
}

/// Validated `[flows]`.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// The directory of `*.toml` flow files loaded at start-up (a missing one holds none).
    pub dir: PathBuf,
    /// Runs taken up at once (runs of one customer never at once).
    pub concurrency: usize,
    /// An HTTP step's timeout when it names none.
    pub http_timeout: Duration,
    /// HTTP steps may call loopback, private and link-local addresses.
    pub allow_private_addresses: bool,
    /// The `RINGBACK_FLOW_…` environment variables (see `Config::flow_env`).
    pub env: Vec<(String, String)>,
}

impl FlowSettings {
    /// A `RINGBACK_FLOW_…` variable, when set and not empty.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

impl FlowsConfig {
    pub fn settings(&self, env: &[(String, String)]) -> Result<FlowSettings, String> {
        if !(1..=1024).contains(&self.concurrency) {
            return Err("flows.concurrency must be between 1 and 1024".into());
        }
        if !(100..=60_000).contains(&self.http_timeout_ms) {
            return Err("flows.http_timeout_ms must be between 100 and 60000".into());
        }
        Ok(FlowSettings {
            dir: PathBuf::from(&self.dir),
            concurrency: self.concurrency,
            http_timeout: Duration::from_millis(self.http_timeout_ms),
            allow_private_addresses: self.allow_private_addresses,
            env: env.to_vec(),
        })
    }
}
