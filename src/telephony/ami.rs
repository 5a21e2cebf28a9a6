//! (skeleton; being written)

use serde::Deserialize;
use tokio::task::JoinSet;

use super::CallSink;
use crate::shutdown::Shutdown;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsteriskConfig {
    pub enabled: bool,
}

pub async fn start(
    config: &AsteriskConfig,
    _sink: CallSink,
    _shutdown: Shutdown,
    _tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    let _ = config.enabled;
    Ok(())
}
