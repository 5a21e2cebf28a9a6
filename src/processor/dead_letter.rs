//! Setting aside an event that cannot be processed, so the ones after it are.

use super::Processor;
use crate::store::StoreError;
use crate::time::now_ms;

impl Processor {
    /// Dead-letters one event with the reason (it stays stored; `ringback events dead` lists
    /// it) and counts it as handled, so processing goes on with the next event.
    pub(super) async fn dead_letter(
        &self,
        event_id: i64,
        reason: &str,
    ) -> Result<usize, StoreError> {
        self.store.dead_letter(event_id, reason, now_ms()).await?;
        metrics::counter!("ringback_events_dead_lettered_total").increment(1);
        tracing::error!(
            event_id,
            reason,
            "Inbound event set aside as dead: it cannot be processed. List with `ringback events dead`; after fixing it, `ringback events retry`."
        );
        Ok(1)
    }
}
