//! The facts every send is checked against, kept in memory so the check needs no database
//! round trip: when each person last wrote (only the last 24 hours matter: an older message no
//! longer opens the window) and every person with a consent record (people without one have
//! never opted out). Both sets are small next to the contact table — people active today and
//! people who ever opted in or out — and are loaded when the store opens, then updated by the
//! store itself after each write commits, so they are exact for the process that owns the
//! SQLite file.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::consent::State;
use crate::time::Millis;
use crate::window::CUSTOMER_SERVICE_WINDOW_MS;

type Key = (String, String);

#[derive(Default)]
pub struct PolicyIndex {
    last_inbound: RwLock<HashMap<Key, Millis>>,
    consent: RwLock<HashMap<Key, State>>,
    /// Click-to-WhatsApp referrals: (referral time, free entry point window end once opened).
    entry_points: RwLock<HashMap<Key, (Millis, Option<Millis>)>>,
}

fn key(sender: &str, subject: &str) -> Key {
    (sender.to_string(), subject.to_string())
}

impl PolicyIndex {
    /// The person's last message time (if within the window's reach) and consent state.
    pub fn facts(&self, sender: &str, subject: &str) -> (Option<Millis>, State) {
        let k = key(sender, subject);
        let last = self
            .last_inbound
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&k)
            .copied();
        let consent = self
            .consent
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&k)
            .cloned()
            .unwrap_or_default();
        (last, consent)
    }

    /// Referral time and free-window end, for people who came through an ad in the last days.
    pub fn entry_point(&self, sender: &str, subject: &str) -> (Option<Millis>, Option<Millis>) {
        match self
            .entry_points
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key(sender, subject))
        {
            Some((r, f)) => (Some(*r), *f),
            None => (None, None),
        }
    }

    /// A referral message (a new one restarts the cycle).
    pub fn referral(&self, sender: &str, subject: &str, at: Millis) {
        self.entry_points
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key(sender, subject), (at, None));
    }

    /// Our reply opened the free entry point window until `until`.
    pub fn free_until(&self, sender: &str, subject: &str, until: Millis) {
        if let Some(e) = self
            .entry_points
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&key(sender, subject))
        {
            e.1 = Some(until);
        }
    }

    /// A message from the person at `at` (later wins).
    pub fn inbound(&self, sender: &str, subject: &str, at: Millis) {
        let mut map = self.last_inbound.write().unwrap_or_else(|p| p.into_inner());
        let e = map.entry(key(sender, subject)).or_insert(at);
        *e = (*e).max(at);
    }

    /// A consent record became the latest for its category.
    pub fn consent(
        &self,
        sender: &str,
        subject: &str,
        record: (crate::consent::Category, crate::consent::Action, Millis),
    ) {
        let mut map = self.consent.write().unwrap_or_else(|p| p.into_inner());
        let state = map.entry(key(sender, subject)).or_default();
        match state.iter_mut().find(|(c, ..)| *c == record.0) {
            Some(existing) if existing.2 <= record.2 => *existing = record,
            Some(_) => {}
            None => state.push(record),
        }
    }

    /// Drops people whose last message no longer opens a window (called periodically).
    pub fn expire(&self, now: Millis) {
        self.last_inbound
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, t| *t + CUSTOMER_SERVICE_WINDOW_MS > now);
    }

    pub fn sizes(&self) -> (usize, usize) {
        (
            self.last_inbound.read().map(|m| m.len()).unwrap_or(0),
            self.consent.read().map(|m| m.len()).unwrap_or(0),
        )
    }
}
