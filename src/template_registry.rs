//! The template registry: which templates each WABA has, with their status, components and
//! parameters, so a template send can be checked before it leaves (the same rule book the
//! sandbox uses: `cloud_api::rules`).
//!
//! Synced from the Cloud API (`GET /{waba-id}/message_templates`) at start and on a schedule,
//! kept current between syncs by `message_template_status_update` webhooks, and persisted, so
//! a restart has the last known list before the first sync completes. An in-memory snapshot
//! serves the checks: no database read per send.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::cloud_api::Client;
use crate::cloud_api::template::Template;
use crate::config::Sender;
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

/// The shared, in-memory view of the stored templates.
#[derive(Clone, Default)]
pub struct Registry {
    templates: Arc<RwLock<Arc<Vec<Template>>>>,
    /// Templates declared in the configuration; synced ones of the same name and language win.
    declared: Arc<Vec<Template>>,
}

impl Registry {
    /// Loads the last synced list from the store, plus the declared templates.
    pub async fn load(store: &dyn Store, declared: Vec<Template>) -> Result<Self, StoreError> {
        let r = Self {
            declared: Arc::new(declared),
            ..Self::default()
        };
        r.replace(store.templates().await?);
        Ok(r)
    }

    /// A registry holding exactly `templates` (tests, benchmarks, config-declared lists).
    pub fn from_templates(templates: Vec<Template>) -> Self {
        let r = Self::default();
        r.replace(templates);
        r
    }

    fn replace(&self, mut templates: Vec<Template>) {
        for d in self.declared.iter() {
            if !templates
                .iter()
                .any(|t| t.waba_id == d.waba_id && t.name == d.name && t.language == d.language)
            {
                templates.push(d.clone());
            }
        }
        *self.templates.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(templates);
    }

    /// Every known template (cheap: a shared snapshot).
    pub fn snapshot(&self) -> Arc<Vec<Template>> {
        self.templates
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True once any template of `waba_id` is known; before the first sync Ringback cannot
    /// check templates and lets Meta judge them.
    pub fn knows(&self, waba_id: &str) -> bool {
        self.snapshot().iter().any(|t| t.waba_id == waba_id)
    }

    /// Applies a status webhook to the snapshot (the store is updated by the processor).
    pub fn set_status(&self, name: &str, language: &str, status: &str) {
        let mut list = (*self.snapshot()).clone();
        list.iter_mut()
            .filter(|t| t.name == name && t.language == language)
            .for_each(|t| t.status = status.to_string());
        self.replace(list);
    }

    /// Fetches every sender's WABA templates and stores them; returns how many.
    pub async fn sync(
        &self,
        store: &dyn Store,
        client: &Client,
        senders: &[Sender],
    ) -> Result<usize, String> {
        let mut wabas: Vec<&Sender> = Vec::new();
        for s in senders {
            if !wabas.iter().any(|w| w.waba_id == s.waba_id) {
                wabas.push(s);
            }
        }
        let mut total = 0;
        for s in wabas {
            let list = client
                .list_templates(&s.waba_id, &s.access_token)
                .await
                .map_err(|e| format!("WABA {}: {e}", s.waba_id))?;
            total += list.len();
            store
                .sync_templates(&s.waba_id, &list)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.replace(store.templates().await.map_err(|e| e.to_string())?);
        Ok(total)
    }
}

/// Syncs at start, then every `interval`, until shutdown.
pub async fn run_sync(
    registry: Registry,
    store: Arc<dyn Store>,
    client: Client,
    senders: Vec<Sender>,
    interval: Duration,
    mut shutdown: Shutdown,
) {
    loop {
        match registry.sync(store.as_ref(), &client, &senders).await {
            Ok(n) => tracing::info!(
                templates = n,
                "Template registry synced from the Cloud API."
            ),
            Err(e) => {
                tracing::warn!(error.message = %e, "Template sync failed; keeping the last known templates.")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait() => return,
        }
    }
}
