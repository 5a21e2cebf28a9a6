//! The write half of the processor and the outbox on PostgreSQL: each function applies one
//! effect inside a transaction the caller owns, so a batch of effects commits once.
//!
//! Unlike SQLite's twin, the functions return their event's note instead of marking the event
//! processed themselves: [`Finished`] writes every note of a batch in one statement. And a
//! message's state is read with `FOR UPDATE` before it is changed, because another node (or
//! another lane of this one) may be changing the same row; SQLite's single writer made the
//! plain read safe.

use std::collections::HashMap;

use sqlx::{Postgres, Row, Transaction};

use crate::inbound::InboundMessage;
use crate::message::{MessageChange, MessageState};
use crate::store::{AttemptOutcome, ClaimedSend, StoreError};
use crate::time::Millis;

pub(super) type Tx = Transaction<'static, Postgres>;

/// The events a batch finished, with their notes: marked processed in one statement.
#[derive(Default)]
pub(super) struct Finished {
    ids: Vec<i64>,
    notes: Vec<String>,
}

impl Finished {
    pub(super) fn push(&mut self, event_id: i64, note: impl Into<String>) {
        self.ids.push(event_id);
        self.notes.push(note.into());
    }

    pub(super) async fn write(self, tx: &mut Tx) -> Result<(), StoreError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE inbound_events e SET processed_at = $1, note = f.note
             FROM UNNEST($2::bigint[], $3::text[]) AS f(id, note) WHERE e.id = f.id",
        )
        .bind(crate::time::now_ms())
        .bind(&self.ids)
        .bind(&self.notes)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// A user's message: stored, and it opens their window. Returns the event's note.
pub(super) async fn record_inbound_message(
    tx: &mut Tx,
    event_id: i64,
    m: &InboundMessage,
    note: Option<&str>,
) -> Result<String, StoreError> {
    sqlx::query(
        "INSERT INTO inbound_messages (wamid, sender_id, from_wa_id, from_user_id, message_type, text,
             context_id, unknown_type, sent_at, event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (wamid) DO NOTHING",
    )
    .bind(&m.wamid)
    .bind(&m.phone_number_id)
    .bind(&m.from_wa_id)
    .bind(&m.from_user_id)
    .bind(&m.message_type)
    .bind(&m.text)
    .bind(&m.context_id)
    .bind(m.unknown_type)
    .bind(m.timestamp)
    .bind(event_id)
    .execute(&mut **tx)
    .await?;
    // Contacts are keyed by wa_id, or by business-scoped user id for username users who have
    // none (2026): the same key the consent ledger uses.
    if let Some(wa_id) =
        &crate::consent::subject(m.from_wa_id.as_deref(), m.from_user_id.as_deref())
    {
        // A click-to-WhatsApp referral starts the free entry point cycle again: folded into
        // the same upsert ($5), where SQLite runs a second UPDATE.
        sqlx::query(
            "INSERT INTO contacts (sender_id, wa_id, name, last_inbound_at, referral_at)
             VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN $4 END)
             ON CONFLICT (sender_id, wa_id) DO UPDATE SET
                 name = COALESCE(excluded.name, contacts.name),
                 last_inbound_at = GREATEST(COALESCE(contacts.last_inbound_at, 0), excluded.last_inbound_at),
                 referral_at = CASE WHEN $5 THEN excluded.referral_at ELSE contacts.referral_at END,
                 free_until = CASE WHEN $5 THEN NULL ELSE contacts.free_until END",
        )
        .bind(&m.phone_number_id)
        .bind(wa_id)
        .bind(&m.profile_name)
        .bind(m.timestamp)
        .bind(m.payload.get("referral").is_some())
        .execute(&mut **tx)
        .await?;
    }
    Ok(match note {
        Some(n) => n,
        None if m.unknown_type => "message type unknown to Ringback; kept raw",
        None => "recorded",
    }
    .to_string())
}

/// Locks the messages of a batch of attempts, in id order (so two batches that share messages
/// cannot deadlock), and returns the state of those the attempt's node may still move:
/// fenced, so a node whose lease on a send lapsed, and was taken over, records its attempt as
/// history but no longer moves the message.
pub(super) async fn lock_for_attempts(
    tx: &mut Tx,
    sends: &[&ClaimedSend],
) -> Result<HashMap<String, MessageState>, StoreError> {
    let ids: Vec<&str> = sends.iter().map(|s| s.message_id.as_str()).collect();
    let owners: Vec<&str> = sends.iter().map(|s| s.claimed_by.as_str()).collect();
    let rows = sqlx::query(
        "SELECT m.id, m.state FROM messages m
         JOIN UNNEST($1::text[], $2::text[]) AS s(id, owner) ON m.id = s.id
         WHERE m.lease_owner IS NULL OR m.lease_owner = s.owner
         ORDER BY m.id FOR UPDATE OF m",
    )
    .bind(&ids)
    .bind(&owners)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                MessageState::parse(&r.try_get::<String, _>("state")?),
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Records how a batch of attempts ended, in four statements whatever the batch's size when
/// every request was accepted (the common case); a message moves only when `states` (from
/// [`lock_for_attempts`]) says this node may. Requeues, failures and deferrals are rare and
/// written a row at a time.
pub(super) async fn record_attempts(
    tx: &mut Tx,
    results: &[(ClaimedSend, AttemptOutcome)],
    states: &HashMap<String, MessageState>,
    now: Millis,
) -> Result<(), StoreError> {
    let mut ended = EndedAttempts::default();
    let mut accepted = AcceptedMessages::default();
    let mut others = Vec::new();
    let mut facts = Vec::new();
    for (s, outcome) in results {
        if let Some((label, code, detail)) = outcome.attempt_record() {
            ended.push(s, label, code, detail);
        }
        let Some(current) = states.get(&s.message_id) else {
            continue;
        };
        let change = current.after_attempt(outcome);
        facts.extend(crate::events::attempt_fact(s, &change, now));
        match change {
            MessageChange::Accepted { state, wamid } => accepted.push(s, state, wamid),
            MessageChange::None => {}
            change => others.push((s, change)),
        }
    }
    ended.write(tx, now).await?;
    accepted.write(tx, now).await?;
    super::conversations::journal(tx, &facts).await?;
    for (s, change) in others {
        write_change(tx, s, change, now).await?;
    }
    Ok(())
}

/// The attempts of a batch that reached an outcome: one UPDATE.
#[derive(Default)]
struct EndedAttempts<'a> {
    ids: Vec<&'a str>,
    numbers: Vec<i64>,
    labels: Vec<&'static str>,
    codes: Vec<Option<i64>>,
    details: Vec<&'a str>,
}

impl<'a> EndedAttempts<'a> {
    fn push(
        &mut self,
        s: &'a ClaimedSend,
        label: &'static str,
        code: Option<i64>,
        detail: &'a str,
    ) {
        self.ids.push(&s.message_id);
        self.numbers.push(i64::from(s.attempt_no));
        self.labels.push(label);
        self.codes.push(code);
        self.details.push(detail);
    }

    async fn write(self, tx: &mut Tx, now: Millis) -> Result<(), StoreError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE attempts a SET finished_at = $1, outcome = r.outcome, error_code = r.code, detail = r.detail
             FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[])
                 AS r(message_id, attempt_no, outcome, code, detail)
             WHERE a.message_id = r.message_id AND a.attempt_no = r.attempt_no",
        )
        .bind(now)
        .bind(&self.ids)
        .bind(&self.numbers)
        .bind(&self.labels)
        .bind(&self.codes)
        .bind(&self.details)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Messages Meta accepted: their new state and wamid in one UPDATE, and the statuses that
/// overtook the response (stored by wamid alone) linked in another.
#[derive(Default)]
struct AcceptedMessages<'a> {
    ids: Vec<&'a str>,
    states: Vec<&'static str>,
    wamids: Vec<String>,
}

impl<'a> AcceptedMessages<'a> {
    fn push(&mut self, s: &'a ClaimedSend, state: MessageState, wamid: String) {
        self.ids.push(&s.message_id);
        self.states.push(state.as_str());
        self.wamids.push(wamid);
    }

    async fn write(self, tx: &mut Tx, now: Millis) -> Result<(), StoreError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE messages m SET state = r.state, wamid = r.wamid, updated_at = $1
             FROM UNNEST($2::text[], $3::text[], $4::text[]) AS r(id, state, wamid) WHERE m.id = r.id",
        )
        .bind(now)
        .bind(&self.ids)
        .bind(&self.states)
        .bind(&self.wamids)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE message_statuses st SET message_id = r.id
             FROM UNNEST($1::text[], $2::text[]) AS r(id, wamid)
             WHERE st.wamid = r.wamid AND st.message_id IS NULL",
        )
        .bind(&self.ids)
        .bind(&self.wamids)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// A requeue, failure, deferral or unanswered request of one message.
async fn write_change(
    tx: &mut Tx,
    s: &ClaimedSend,
    change: MessageChange,
    now: Millis,
) -> Result<(), StoreError> {
    match change {
        MessageChange::Requeued { at, code, detail } => {
            sqlx::query(
                "UPDATE messages SET state = 'queued', next_attempt_at = $1, error_code = $2, last_error = $3,
                     updated_at = $4 WHERE id = $5",
            )
            .bind(at)
            .bind(code)
            .bind(detail)
            .bind(now)
            .bind(&s.message_id)
            .execute(&mut **tx)
            .await?;
        }
        MessageChange::Failed { code, detail } => {
            sqlx::query(
                "UPDATE messages SET state = 'failed', error_code = $1, last_error = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(code)
            .bind(detail)
            .bind(now)
            .bind(&s.message_id)
            .execute(&mut **tx)
            .await?;
        }
        MessageChange::Deferred { at, reason } => defer(tx, s, at, &reason, now).await?,
        MessageChange::Uncertain { detail } => {
            sqlx::query(
                "UPDATE messages SET state = 'uncertain', last_error = $1, updated_at = $2,
                     lease_owner = NULL, lease_until = NULL WHERE id = $3",
            )
            .bind(detail)
            .bind(now)
            .bind(&s.message_id)
            .execute(&mut **tx)
            .await?;
        }
        MessageChange::Accepted { .. } | MessageChange::None => {}
    }
    Ok(())
}

/// Undoes a claim that pacing held back: no attempt was made, so none is recorded.
async fn defer(
    tx: &mut Tx,
    s: &ClaimedSend,
    at: Millis,
    reason: &str,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM attempts WHERE message_id = $1 AND attempt_no = $2 AND outcome IN ('claimed', 'in_flight')",
    )
    .bind(&s.message_id)
    .bind(i64::from(s.attempt_no))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE messages SET state = 'queued', attempts = attempts - 1, next_attempt_at = $1, last_error = $2, updated_at = $3
         WHERE id = $4 AND state = 'sending'",
    )
    .bind(at)
    .bind(reason)
    .bind(now)
    .bind(&s.message_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records an announcement about a number and applies it to the number's state. Returns the
/// event's note.
pub(super) async fn number_update(
    tx: &mut Tx,
    u: &crate::store::NumberUpdate,
) -> Result<String, StoreError> {
    let now = crate::time::now_ms();
    let targets: Vec<String> = u.phone_number_id.iter().cloned().collect();
    for id in &targets {
        sqlx::query(
            "INSERT INTO numbers (phone_number_id, throughput, quality_rating, messaging_tier, status, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (phone_number_id) DO UPDATE SET
                 throughput = COALESCE(excluded.throughput, numbers.throughput),
                 quality_rating = COALESCE(excluded.quality_rating, numbers.quality_rating),
                 messaging_tier = COALESCE(excluded.messaging_tier, numbers.messaging_tier),
                 status = COALESCE(excluded.status, numbers.status),
                 updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(u.throughput.map(i64::from))
        .bind(&u.quality_rating)
        .bind(&u.messaging_tier)
        .bind(&u.status)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("INSERT INTO number_events (phone_number_id, field, event, detail, at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&u.phone_number_id)
        .bind(&u.field)
        .bind(&u.event)
        .bind(crate::store::json_text(&u.detail))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(format!(
        "{} {}: applied to {}",
        u.field,
        u.event.as_deref().unwrap_or(""),
        targets.join(", ")
    ))
}

/// A template's status as Meta announced it. Returns the event's note.
pub(super) async fn template_status(
    tx: &mut Tx,
    name: &str,
    language: &str,
    status: &str,
) -> Result<String, StoreError> {
    let n = sqlx::query(
        "UPDATE templates SET status = $1, updated_at = $2 WHERE name = $3 AND language = $4",
    )
    .bind(status)
    .bind(crate::time::now_ms())
    .bind(name)
    .bind(language)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(if n > 0 {
        format!("template {name} ({language}) is now {status}")
    } else {
        format!("template {name} ({language}) is not synced yet; status {status} noted")
    })
}

/// Appends a consent record and makes it the person's current state for its category.
pub(super) async fn record_consent(
    tx: &mut Tx,
    r: &crate::consent::Record,
) -> Result<(), StoreError> {
    // One statement: the ledger row's id feeds the state upsert through a CTE.
    sqlx::query(
        "WITH rec AS (
             INSERT INTO consent_records (sender_id, subject, wa_id, user_id, category, action, source, evidence, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id
         )
         INSERT INTO consent_state (sender_id, subject, category, action, record_id, at)
         SELECT $1, $2, $5, $6, rec.id, $9 FROM rec
         ON CONFLICT (sender_id, subject, category) DO UPDATE SET action = excluded.action, record_id = excluded.record_id, at = excluded.at
         WHERE excluded.at >= consent_state.at",
    )
    .bind(&r.sender_id)
    .bind(&r.subject)
    .bind(&r.wa_id)
    .bind(&r.user_id)
    .bind(r.category.as_str())
    .bind(r.action.as_str())
    .bind(&r.source)
    .bind(&r.evidence)
    .bind(r.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A customer came through a click-to-chat link: counted once per customer.
pub(super) async fn link_attributed(
    tx: &mut Tx,
    link: &crate::links::Link,
    contact: &str,
    at: crate::time::Millis,
) -> Result<(), StoreError> {
    sqlx::query(
        "WITH new AS (
             INSERT INTO link_contacts (code, sender_id, contact, first_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING RETURNING code
         )
         UPDATE links SET conversations = conversations + 1 WHERE code IN (SELECT code FROM new)",
    )
    .bind(&link.code)
    .bind(&link.sender_id)
    .bind(contact)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
