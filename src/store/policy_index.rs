//! The facts every send is checked against, kept in memory so the check needs no database
//! round trip: when each person last wrote (only the last 24 hours matter: an older message no
//! longer opens the window) and every person with a consent record (people without one have
//! never opted out). Both sets are small next to the contact table — people active today and
//! people who ever opted in or out — and are loaded when the store opens, then updated by the
//! store itself after each write commits, so they are exact for the process that owns the
//! SQLite file.
//!
//! What the index holds, how a committed [`Effect`] changes it and which stored rows it loads
//! are decided here, not by a backend. A backend shared by several nodes (PostgreSQL) cannot
//! keep such a cache exact, so it reads the same facts from its rows on every check and builds
//! them with [`facts_from_rows`]: the same rules, one round trip.

use std::collections::HashMap;
use std::sync::RwLock;

use super::{Effect, PolicyFacts};
use crate::consent::{Action, Category, State};
use crate::time::Millis;
use crate::window::{CUSTOMER_SERVICE_WINDOW_MS, FREE_ENTRY_POINT_MS};

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

/// The stored times of one person that the policy reads (a row of `contacts`).
#[derive(Debug, Clone, Default)]
pub struct ContactTimes {
    pub sender_id: String,
    pub wa_id: String,
    pub last_inbound_at: Option<Millis>,
    pub referral_at: Option<Millis>,
    pub free_until: Option<Millis>,
}

/// One current consent state row: (sender, subject, category, action, at).
pub type ConsentRow = (String, String, Category, Action, Millis);

/// Which rows matter at `now`: people who wrote after the first value (their window may be
/// open) and people referred by an ad after the second (their free entry point may be).
pub fn horizons(now: Millis) -> (Millis, Millis) {
    let window = now - CUSTOMER_SERVICE_WINDOW_MS;
    (window, window - FREE_ENTRY_POINT_MS)
}

/// The facts of one person built from their stored rows, by the index's rules.
pub fn facts_from_rows(
    contact: Option<&ContactTimes>,
    consent: &[ConsentRow],
    now: Millis,
) -> PolicyFacts {
    let index = PolicyIndex::default();
    index.load(contact.into_iter().cloned(), consent.iter().cloned(), now);
    match contact {
        Some(c) => index.policy_facts(&c.sender_id, &c.wa_id),
        None => match consent.first() {
            Some((sender, subject, ..)) => index.policy_facts(sender, subject),
            None => PolicyFacts::default(),
        },
    }
}

impl PolicyIndex {
    /// Fills the index from stored rows (see [`horizons`] for which rows to pass).
    pub fn load(
        &self,
        contacts: impl IntoIterator<Item = ContactTimes>,
        consent: impl IntoIterator<Item = ConsentRow>,
        now: Millis,
    ) {
        let (window, referrals) = horizons(now);
        for c in contacts {
            if let Some(at) = c.last_inbound_at.filter(|t| *t > window) {
                self.inbound(&c.sender_id, &c.wa_id, at);
            }
            if let Some(at) = c.referral_at.filter(|t| *t > referrals) {
                self.referral(&c.sender_id, &c.wa_id, at);
                if let Some(until) = c.free_until {
                    self.free_until(&c.sender_id, &c.wa_id, until);
                }
            }
        }
        for (sender, subject, category, action, at) in consent {
            self.consent(&sender, &subject, (category, action, at));
        }
    }

    /// Everything a send to this person is checked against.
    pub fn policy_facts(&self, sender: &str, subject: &str) -> PolicyFacts {
        let (last_inbound, consent) = self.facts(sender, subject);
        let (referral_at, free_until) = self.entry_point(sender, subject);
        PolicyFacts {
            last_inbound,
            consent,
            referral_at,
            free_until,
        }
    }

    /// Mirrors a committed effect: a message (or a WhatsApp call) opens the person's window, a
    /// referral starts an entry point cycle, a consent record replaces its category's state.
    pub fn apply(&self, e: &Effect) {
        match e {
            Effect::InboundMessage { message: m, .. } => {
                if let Some(wa_id) =
                    &crate::consent::subject(m.from_wa_id.as_deref(), m.from_user_id.as_deref())
                {
                    self.inbound(&m.phone_number_id, wa_id, m.timestamp);
                    if m.payload.get("referral").is_some() {
                        self.referral(&m.phone_number_id, wa_id, m.timestamp);
                    }
                }
            }
            Effect::Call { call: c, .. } if c.source == "whatsapp" => {
                if let (Some(sender), Some(caller)) = (&c.sender_id, &c.caller_e164) {
                    self.inbound(sender, caller.trim_start_matches('+'), c.occurred_at);
                }
            }
            Effect::Consent { record: r, .. } => {
                self.consent(&r.sender_id, &r.subject, (r.category, r.action, r.at))
            }
            _ => {}
        }
    }
}
