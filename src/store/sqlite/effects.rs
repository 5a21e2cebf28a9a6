//! The write half of the processor and the outbox: each function applies one effect inside a
//! transaction the caller owns, so a batch of effects commits (and fsyncs) once.

use sqlx::{Row, Sqlite, Transaction};

use super::{FINISH_EVENT, insert_message, upsert_contact_reply};
use crate::inbound::{DeliveryStatus, InboundMessage, StatusUpdate};
use crate::message::{MessageChange, MessageState};
use crate::store::{AttemptOutcome, CallRecord, ClaimedSend, NewMessage, StoreError};
use crate::time::Millis;

pub(super) type Tx = Transaction<'static, Sqlite>;

pub(super) async fn record_inbound_message(
    tx: &mut Tx,
    event_id: i64,
    m: &InboundMessage,
    note: Option<&str>,
) -> Result<(), StoreError> {
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
        sqlx::query(
            "INSERT INTO contacts (sender_id, wa_id, name, last_inbound_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (sender_id, wa_id) DO UPDATE SET
                 name = COALESCE(excluded.name, contacts.name),
                 last_inbound_at = MAX(COALESCE(contacts.last_inbound_at, 0), excluded.last_inbound_at)",
        )
        .bind(&m.phone_number_id)
        .bind(wa_id)
        .bind(&m.profile_name)
        .bind(m.timestamp)
        .execute(&mut **tx)
        .await?;
        if m.payload.get("referral").is_some() {
            // A click-to-WhatsApp referral: the free entry point cycle starts again.
            sqlx::query("UPDATE contacts SET referral_at = $1, free_until = NULL WHERE sender_id = $2 AND wa_id = $3")
                .bind(m.timestamp)
                .bind(&m.phone_number_id)
                .bind(wa_id)
                .execute(&mut **tx)
                .await?;
        }
    }
    let note = match note {
        Some(n) => n,
        None if m.unknown_type => "message type unknown to Ringback; kept raw",
        None => "recorded",
    };
    finish(tx, event_id, note).await?;
    Ok(())
}

pub(super) async fn record_status(
    tx: &mut Tx,
    event_id: i64,
    s: &StatusUpdate,
) -> Result<Option<String>, StoreError> {
    // Ringback puts its message id in biz_opaque_callback_data, so a status can be matched
    // even when it overtakes the HTTP response that carries the wamid.
    let row =
        sqlx::query("SELECT id, state, wamid FROM messages WHERE id = $1 OR wamid = $2 LIMIT 1")
            .bind(s.biz_opaque_callback_data.as_deref().unwrap_or(""))
            .bind(&s.wamid)
            .fetch_optional(&mut **tx)
            .await?;
    let first_error = s.errors.first();
    let detail = first_error.map(|e| {
        format!(
            "({}) {}{}",
            e.code,
            e.title.clone().unwrap_or_default(),
            e.details
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )
    });
    let message_id: Option<String> = match &row {
        Some(r) => Some(r.try_get("id")?),
        None => None,
    };
    sqlx::query(
        "INSERT INTO message_statuses (wamid, status, message_id, at, error_code, detail)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (wamid, status) DO NOTHING",
    )
    .bind(&s.wamid)
    .bind(s.status.as_str())
    .bind(&message_id)
    .bind(s.timestamp)
    .bind(first_error.map(|e| e.code))
    .bind(&detail)
    .execute(&mut **tx)
    .await?;
    let note = if let Some(r) = &row {
        let current = MessageState::parse(&r.try_get::<String, _>("state")?);
        let next = current.after_status(s.status);
        let failed = s.status == DeliveryStatus::Failed && next == MessageState::Failed;
        sqlx::query(
            "UPDATE messages SET state = $1, wamid = COALESCE(wamid, $2), updated_at = $3,
                 error_code = CASE WHEN $4 THEN $5 ELSE error_code END,
                 last_error = CASE WHEN $4 THEN $6 ELSE last_error END
             WHERE id = $7",
        )
        .bind(next.as_str())
        .bind(&s.wamid)
        .bind(crate::time::now_ms())
        .bind(failed)
        .bind(first_error.map(|e| e.code))
        .bind(&detail)
        .bind(message_id.as_deref())
        .execute(&mut **tx)
        .await?;
        format!("{} -> {}", current.as_str(), next.as_str())
    } else {
        "status for a message this store did not send".to_string()
    };
    finish(tx, event_id, &note).await?;
    Ok(message_id)
}

pub(super) async fn record_call(
    tx: &mut Tx,
    event_id: i64,
    c: &CallRecord,
    reply: Option<&NewMessage>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO calls (source, provider_call_id, sender_id, caller_raw, caller_e164, callee_raw, outcome,
             ring_seconds, missed, decision, reason, message_id, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (source, provider_call_id) DO UPDATE SET
             outcome = excluded.outcome, ring_seconds = COALESCE(excluded.ring_seconds, calls.ring_seconds),
             missed = excluded.missed, decision = excluded.decision, reason = excluded.reason,
             message_id = COALESCE(excluded.message_id, calls.message_id),
             sender_id = COALESCE(excluded.sender_id, calls.sender_id),
             caller_e164 = COALESCE(excluded.caller_e164, calls.caller_e164)",
    )
    .bind(&c.source)
    .bind(&c.provider_call_id)
    .bind(&c.sender_id)
    .bind(&c.caller_raw)
    .bind(&c.caller_e164)
    .bind(&c.callee_raw)
    .bind(&c.outcome)
    .bind(c.ring_seconds.map(i64::from))
    .bind(c.missed)
    .bind(&c.decision)
    .bind(&c.reason)
    .bind(&c.message_id)
    .bind(c.occurred_at)
    .execute(&mut **tx)
    .await?;
    if let Some(m) = reply {
        insert_message(tx, m).await?;
        let wa_id = m.to.trim_start_matches('+');
        upsert_contact_reply(tx, &m.sender_id, wa_id, m.created_at, &m.id).await?;
    }
    if c.source == "whatsapp" {
        // A WhatsApp call opens the caller's 24-hour window like a message does.
        if let Some(wa_id) = c.caller_e164.as_deref().map(|e| e.trim_start_matches('+')) {
            sqlx::query(
                "INSERT INTO contacts (sender_id, wa_id, last_inbound_at) VALUES ($1, $2, $3)
                 ON CONFLICT (sender_id, wa_id) DO UPDATE SET
                     last_inbound_at = MAX(COALESCE(contacts.last_inbound_at, 0), excluded.last_inbound_at)",
            )
            .bind(c.sender_id.as_deref().unwrap_or_default())
            .bind(wa_id)
            .bind(c.occurred_at)
            .execute(&mut **tx)
            .await?;
        }
    }
    let note = format!("call {}: {}", c.decision, c.reason);
    finish(tx, event_id, &note).await?;
    Ok(())
}

pub(super) async fn record_attempt(
    tx: &mut Tx,
    s: &ClaimedSend,
    outcome: &AttemptOutcome,
    now: Millis,
) -> Result<(), StoreError> {
    if let Some((label, code, detail)) = outcome.attempt_record() {
        sqlx::query(
            "UPDATE attempts SET finished_at = $1, outcome = $2, error_code = $3, detail = $4
             WHERE message_id = $5 AND attempt_no = $6",
        )
        .bind(now)
        .bind(label)
        .bind(code)
        .bind(detail)
        .bind(&s.message_id)
        .bind(i64::from(s.attempt_no))
        .execute(&mut **tx)
        .await?;
    }
    // Fenced: a node whose lease on the send lapsed, and was taken over, records its attempt
    // as history but no longer moves the message.
    let current: Option<String> = sqlx::query_scalar(
        "SELECT state FROM messages WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2)",
    )
    .bind(&s.message_id)
    .bind(&s.claimed_by)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(current) = current else {
        return Ok(());
    };
    match MessageState::parse(&current).after_attempt(outcome) {
        MessageChange::Accepted { state, wamid } => {
            sqlx::query(
                "UPDATE messages SET state = $1, wamid = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(state.as_str())
            .bind(&wamid)
            .bind(now)
            .bind(&s.message_id)
            .execute(&mut **tx)
            .await?;
            // Statuses that overtook the response were stored by wamid alone; link them.
            sqlx::query("UPDATE message_statuses SET message_id = $1 WHERE wamid = $2 AND message_id IS NULL")
                .bind(&s.message_id)
                .bind(&wamid)
                .execute(&mut **tx)
                .await?;
        }
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
        MessageChange::None => {}
    }
    Ok(())
}

/// Marks an event processed with a note.
pub(super) async fn finish(tx: &mut Tx, event_id: i64, note: &str) -> Result<(), StoreError> {
    sqlx::query(FINISH_EVENT)
        .bind(crate::time::now_ms())
        .bind(note)
        .bind(event_id)
        .execute(&mut **tx)
        .await?;
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

/// Records an announcement about a number and applies it to the number's state.
pub(super) async fn number_update(
    tx: &mut Tx,
    event_id: i64,
    u: &crate::store::NumberUpdate,
) -> Result<(), StoreError> {
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
        .bind(u.detail.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    let note = format!(
        "{} {}: applied to {}",
        u.field,
        u.event.as_deref().unwrap_or(""),
        targets.join(", ")
    );
    finish(tx, event_id, &note).await
}

/// A template's status as Meta announced it.
pub(super) async fn template_status(
    tx: &mut Tx,
    event_id: i64,
    name: &str,
    language: &str,
    status: &str,
) -> Result<(), StoreError> {
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
    let note = if n > 0 {
        format!("template {name} ({language}) is now {status}")
    } else {
        format!("template {name} ({language}) is not synced yet; status {status} noted")
    };
    finish(tx, event_id, &note).await
}

/// Appends a consent record and makes it the person's current state for its category.
pub(super) async fn record_consent(
    tx: &mut Tx,
    r: &crate::consent::Record,
) -> Result<(), StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO consent_records (sender_id, subject, wa_id, user_id, category, action, source, evidence, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
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
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO consent_state (sender_id, subject, category, action, record_id, at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (sender_id, subject, category) DO UPDATE SET action = excluded.action, record_id = excluded.record_id, at = excluded.at
         WHERE excluded.at >= consent_state.at",
    )
    .bind(&r.sender_id)
    .bind(&r.subject)
    .bind(r.category.as_str())
    .bind(r.action.as_str())
    .bind(id)
    .bind(r.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
