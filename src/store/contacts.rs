//! Contacts and consent: who wrote when (the 24-hour window), the consent ledger, click-to-WhatsApp entry points.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;
use crate::time::Millis;

/// What we know about one WhatsApp user of one business number.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Contact {
    pub sender_id: String,
    pub wa_id: String,
    pub name: Option<String>,
    /// Their last message to us: the 24-hour window runs from here.
    pub last_inbound_at: Option<Millis>,
    /// Our last missed-call reply to them: the cooldown runs from here.
    pub last_reply_at: Option<Millis>,
    pub last_reply_message_id: Option<String>,
}

/// A stored consent row's `category` and `action` as the ledger's values, for every backend.
/// Only Ringback writes them, so an unknown category cannot occur; `all` is the cautious
/// reading if one did.
pub(crate) fn consent_from_columns(
    category: &str,
    action: &str,
) -> (crate::consent::Category, crate::consent::Action) {
    let category =
        crate::consent::Category::parse(category).unwrap_or(crate::consent::Category::All);
    let action = if action == "opt_out" {
        crate::consent::Action::OptOut
    } else {
        crate::consent::Action::OptIn
    };
    (category, action)
}

/// The facts a send is checked against (see [`ContactStore::policy_facts`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyFacts {
    pub last_inbound: Option<Millis>,
    pub consent: crate::consent::State,
    pub referral_at: Option<Millis>,
    pub free_until: Option<Millis>,
}

/// Contacts and consent.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// The contact for (business number, WhatsApp id), if we have one.
    async fn contact(&self, sender_id: &str, wa_id: &str) -> Result<Option<Contact>, StoreError> {
        let key = [(sender_id.to_string(), wa_id.to_string())];
        Ok(self.contacts(&key).await?.pop())
    }
    /// The contacts we have among (business number, WhatsApp id) `keys`, in one read: the
    /// processor looks up a whole batch at once instead of waiting for one query per event.
    async fn contacts(&self, keys: &[(String, String)]) -> Result<Vec<Contact>, StoreError>;
    /// What a send to this person is checked against: when they last wrote (only if within the
    /// last 24 hours), their consent state, and any click-to-WhatsApp referral. Built by the
    /// rules of [`super::policy_index`], from memory where the backend can keep it exact.
    async fn policy_facts(&self, sender_id: &str, subject: &str)
    -> Result<PolicyFacts, StoreError>;
    /// Our reply to a referral opened the free entry point window until `until`.
    async fn open_free_entry_point(
        &self,
        sender_id: &str,
        subject: &str,
        until: Millis,
    ) -> Result<(), StoreError>;
    /// Appends to the consent ledger and updates the person's current state.
    async fn record_consent(&self, record: &crate::consent::Record) -> Result<(), StoreError>;
    /// Ledger records, oldest first, for one person or (with `None`) everyone.
    async fn consent_records(
        &self,
        sender_id: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<crate::consent::Record>, StoreError>;
    /// Up to `limit` ledger records with an id above `after_id`, in id (insertion) order, with
    /// their ids: one page of an export, for one person or (with `None`) everyone.
    async fn consent_records_after(
        &self,
        subject: Option<&str>,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(i64, crate::consent::Record)>, StoreError>;
}
