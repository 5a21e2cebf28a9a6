//! Click-to-chat links ([`crate::links`]): stored once, counted on each click and on each
//! customer they bring.

use async_trait::async_trait;

use super::StoreError;
use crate::links::Link;
use crate::time::Millis;

#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Stores a new link; `false` when its code is taken.
    async fn create_link(&self, link: &Link) -> Result<bool, StoreError>;
    /// The newest links first.
    async fn links(&self, limit: u32) -> Result<Vec<Link>, StoreError>;
    async fn link(&self, code: &str) -> Result<Option<Link>, StoreError>;
    /// Counts a click on a tracked link and journals `link.clicked`, in one transaction; the
    /// link as it is now, or `None` when no tracked link has this code.
    async fn link_clicked(&self, code: &str, at: Millis) -> Result<Option<Link>, StoreError>;
    /// Whether this customer of this number was attributed to the link already.
    async fn link_contact_seen(
        &self,
        code: &str,
        sender_id: &str,
        contact: &str,
    ) -> Result<bool, StoreError>;
}
