//! Message templates as last synced from the Cloud API.

use async_trait::async_trait;

use super::StoreError;

/// Message templates as last synced from the Cloud API..
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Replaces the stored templates of one WABA with a fresh list from the Cloud API.
    async fn sync_templates(
        &self,
        waba_id: &str,
        templates: &[crate::cloud_api::template::Template],
    ) -> Result<(), StoreError>;
    /// Every stored template.
    async fn templates(&self) -> Result<Vec<crate::cloud_api::template::Template>, StoreError>;
}
