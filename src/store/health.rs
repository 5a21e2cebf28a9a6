//! Write health, shared by every backend: the last write failure (for `/healthz`) and the
//! write fault a test injected.
//!
//! Writes that fail are remembered until a write that changed something succeeds, so
//! `/healthz` can report the store as failing while nothing can be stored. How an injected
//! fault reaches a connection is the backend's business (`sqlite/health.rs`,
//! `postgres/health.rs`); this only holds which fault is current and since when.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::store::{StoreError, WriteFault};

/// Shared between a store and its pool's connection hooks.
pub(crate) struct WriteHealth {
    last_error: Mutex<Option<String>>,
    /// The injected [`WriteFault`] (0 = none), applied to every new write connection.
    fault: AtomicU8,
    /// When the fault last changed: connections opened before then still carry the old one.
    fault_changed_at: Mutex<Instant>,
}

impl Default for WriteHealth {
    fn default() -> Self {
        Self {
            last_error: Mutex::default(),
            fault: AtomicU8::new(0),
            fault_changed_at: Mutex::new(Instant::now()),
        }
    }
}

impl WriteHealth {
    /// Remembers a failed write, or forgets the last failure once a write that changed
    /// something succeeded (an empty claim proves nothing about free space).
    pub(crate) fn observe<T>(
        &self,
        result: Result<T, StoreError>,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T, StoreError> {
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &result {
            Ok(v) if changed(v) => {
                if last.take().is_some() {
                    tracing::info!("Store writes succeed again.");
                }
            }
            Ok(_) => {}
            Err(e) => *last = Some(e.to_string()),
        }
        result
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn set_fault(&self, fault: Option<WriteFault>) {
        let code = match fault {
            None => 0,
            Some(WriteFault::Full) => 1,
            Some(WriteFault::ReadOnly) => 2,
        };
        *self
            .fault_changed_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
        self.fault.store(code, Ordering::Release);
    }

    /// The injected fault, if any.
    pub(crate) fn fault(&self) -> Option<WriteFault> {
        match self.fault.load(Ordering::Acquire) {
            1 => Some(WriteFault::Full),
            2 => Some(WriteFault::ReadOnly),
            _ => None,
        }
    }

    /// Whether a connection opened `age` ago predates the last change of fault (and so may
    /// carry the previous one).
    pub(crate) fn predates_fault_change(&self, age: Duration) -> bool {
        let changed = *self
            .fault_changed_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        age >= changed.elapsed()
    }
}
