//! The hot write path's statements, run on the writer thread (see [`super::writer`]): ingest,
//! the processor's effects, and the outbox's claims, starts and outcomes. Each function
//! writes into the group transaction the writer owns, so many commit (and fsync) once.
//!
//! Parameters are written `?N` (SQLite's numbered form); statements are prepared once per
//! connection and cached.

use rusqlite::{Connection, OptionalExtension, params};

use crate::inbound::{DeliveryStatus, InboundMessage, IngestRequest, StatusUpdate};
use crate::message::{MessageChange, MessageState};
use crate::store::{
    AttemptOutcome, CallRecord, ClaimedSend, Effect, Fence, IngestCounts, NewMessage, StoreError,
};
use crate::time::Millis;

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Stores each request's raw body and its events (a duplicate event key is counted, not
/// stored again).
pub(super) fn ingest(
    c: &Connection,
    batch: &[IngestRequest],
) -> Result<Vec<IngestCounts>, StoreError> {
    // No `RETURNING id` (see `conversations::publish`): the writer thread owns the
    // connection, so the last rowid is this insert's.
    let mut raw = c.prepare_cached(
        "INSERT INTO raw_payloads (source, body, received_at) VALUES (?1, ?2, ?3)",
    )?;
    let mut event = c.prepare_cached(
        "INSERT INTO inbound_events (raw_id, source, dedup_key, kind, event_json, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (dedup_key) DO NOTHING",
    )?;
    let mut out = Vec::with_capacity(batch.len());
    for req in batch {
        raw.execute(params![req.source, req.raw, req.received_at])?;
        let raw_id = c.last_insert_rowid();
        let mut counts = IngestCounts::default();
        for e in &req.events {
            let json = serde_json::to_string(&e.event).map_err(corrupt)?;
            let n = event.execute(params![
                raw_id,
                req.source,
                e.dedup_key,
                e.event.kind(),
                json,
                req.received_at
            ])?;
            if n == 1 {
                counts.inserted += 1;
            } else {
                counts.duplicates += 1;
            }
        }
        out.push(counts);
    }
    Ok(out)
}

/// Fails with [`StoreError::LeaseLost`] unless `f` is still held.
pub(super) fn check_fence(c: &Connection, f: &Fence) -> Result<(), StoreError> {
    let held = c
        .prepare_cached("SELECT 1 FROM leases WHERE name = ?1 AND holder = ?2 AND token = ?3")?
        .query_row(params![f.name, f.holder, f.token], |_| Ok(()))
        .optional()?;
    held.ok_or_else(|| StoreError::LeaseLost(f.name.clone()))
}

/// Writes one effect of a processed event.
pub(super) fn apply(c: &Connection, effect: &Effect) -> Result<(), StoreError> {
    match effect {
        Effect::InboundMessage {
            event_id,
            message,
            note,
        } => record_inbound_message(c, *event_id, message, note.as_deref()),
        Effect::Status { event_id, status } => record_status(c, *event_id, status),
        Effect::Call {
            event_id,
            call,
            reply,
            ..
        } => record_call(c, *event_id, call, reply.as_ref()),
        Effect::TemplateStatus {
            event_id,
            name,
            language,
            status,
        } => template_status(c, *event_id, name, language, status),
        Effect::Consent { event_id, record } => {
            record_consent(c, record)?;
            let note = format!(
                "{} {} from {}",
                record.action.as_str(),
                record.category.as_str(),
                record.source
            );
            finish(c, *event_id, &note)
        }
        Effect::Enqueue { event_id, message } => {
            insert_message(c, message)?;
            finish(c, *event_id, &format!("queued {}", message.id))
        }
        Effect::NumberUpdate { event_id, update } => number_update(c, *event_id, update),
        Effect::LinkAttributed {
            link, contact, at, ..
        } => {
            let new = c
                .prepare_cached(
                    "INSERT INTO link_contacts (code, sender_id, contact, first_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![link.code, link.sender_id, contact, at])?;
            if new == 1 {
                c.prepare_cached(
                    "UPDATE links SET conversations = conversations + 1 WHERE code = ?1",
                )?
                .execute(params![link.code])?;
            }
            Ok(())
        }
        Effect::Finish { event_id, note } => finish(c, *event_id, note),
    }
}

/// Inserts a queued message; `false` when its idempotency key is taken already.
pub(super) fn insert_message(c: &Connection, m: &NewMessage) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached(
            "INSERT INTO messages (id, sender_id, to_number, kind, body_json, idempotency_key, reason, state,
                 next_attempt_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?8, ?8)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )?
        .execute(params![
            m.id,
            m.sender_id,
            m.to,
            m.kind,
            crate::store::json_text(&m.body),
            m.idempotency_key,
            m.reason,
            m.created_at
        ])?;
    Ok(n == 1)
}

/// The id of the message holding an idempotency key.
pub(super) fn message_id_for_key(
    c: &Connection,
    key: &Option<String>,
) -> Result<String, StoreError> {
    Ok(
        c.prepare_cached("SELECT id FROM messages WHERE idempotency_key = ?1")?
            .query_row([key], |r| r.get(0))?,
    )
}

fn upsert_contact_reply(
    c: &Connection,
    sender: &str,
    wa_id: &str,
    at: Millis,
    message_id: &str,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO contacts (sender_id, wa_id, last_reply_at, last_reply_message_id) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (sender_id, wa_id) DO UPDATE SET last_reply_at = excluded.last_reply_at,
             last_reply_message_id = excluded.last_reply_message_id",
    )?
    .execute(params![sender, wa_id, at, message_id])?;
    Ok(())
}

fn record_inbound_message(
    c: &Connection,
    event_id: i64,
    m: &InboundMessage,
    note: Option<&str>,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO inbound_messages (wamid, sender_id, from_wa_id, from_user_id, message_type, text,
             context_id, unknown_type, sent_at, event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (wamid) DO NOTHING",
    )?
    .execute(params![
        m.wamid,
        m.phone_number_id,
        m.from_wa_id,
        m.from_user_id,
        m.message_type,
        m.text,
        m.context_id,
        m.unknown_type,
        m.timestamp,
        event_id
    ])?;
    // Contacts are keyed by wa_id, or by business-scoped user id for username users who have
    // none (2026): the same key the consent ledger uses.
    if let Some(wa_id) =
        &crate::consent::subject(m.from_wa_id.as_deref(), m.from_user_id.as_deref())
    {
        c.prepare_cached(
            "INSERT INTO contacts (sender_id, wa_id, name, last_inbound_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (sender_id, wa_id) DO UPDATE SET
                 name = COALESCE(excluded.name, contacts.name),
                 last_inbound_at = MAX(COALESCE(contacts.last_inbound_at, 0), excluded.last_inbound_at)",
        )?
        .execute(params![m.phone_number_id, wa_id, m.profile_name, m.timestamp])?;
        if m.payload.get("referral").is_some() {
            // A click-to-WhatsApp referral: the free entry point cycle starts again.
            c.prepare_cached(
                "UPDATE contacts SET referral_at = ?1, free_until = NULL WHERE sender_id = ?2 AND wa_id = ?3",
            )?
            .execute(params![m.timestamp, m.phone_number_id, wa_id])?;
        }
    }
    let note = match note {
        Some(n) => n,
        None if m.unknown_type => "message type unknown to Ringback; kept raw",
        None => "recorded",
    };
    finish(c, event_id, note)
}

fn record_status(c: &Connection, event_id: i64, s: &StatusUpdate) -> Result<(), StoreError> {
    // Ringback puts its message id in biz_opaque_callback_data, so a status can be matched
    // even when it overtakes the HTTP response that carries the wamid.
    let row: Option<(String, String)> = c
        .prepare_cached("SELECT id, state FROM messages WHERE id = ?1 OR wamid = ?2 LIMIT 1")?
        .query_row(
            params![s.biz_opaque_callback_data.as_deref().unwrap_or(""), s.wamid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let first_error = s.errors.first();
    let detail = s.error_detail();
    let message_id = row.as_ref().map(|(id, _)| id.as_str());
    c.prepare_cached(
        "INSERT INTO message_statuses (wamid, status, message_id, at, error_code, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (wamid, status) DO NOTHING",
    )?
    .execute(params![
        s.wamid,
        s.status.as_str(),
        message_id,
        s.timestamp,
        first_error.map(|e| e.code),
        detail
    ])?;
    let note = if let Some((id, state)) = &row {
        let current = MessageState::parse(state);
        let next = current.after_status(s.status);
        let failed = s.status == DeliveryStatus::Failed && next == MessageState::Failed;
        c.prepare_cached(
            "UPDATE messages SET state = ?1, wamid = COALESCE(wamid, ?2), updated_at = ?3,
                 error_code = CASE WHEN ?4 THEN ?5 ELSE error_code END,
                 last_error = CASE WHEN ?4 THEN ?6 ELSE last_error END
             WHERE id = ?7",
        )?
        .execute(params![
            next.as_str(),
            s.wamid,
            crate::time::now_ms(),
            failed,
            first_error.map(|e| e.code),
            detail,
            id
        ])?;
        format!("{} -> {}", current.as_str(), next.as_str())
    } else {
        "status for a message this store did not send".to_string()
    };
    finish(c, event_id, &note)
}

fn record_call(
    c: &Connection,
    event_id: i64,
    call: &CallRecord,
    reply: Option<&NewMessage>,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO calls (source, provider_call_id, sender_id, caller_raw, caller_e164, callee_raw, outcome,
             ring_seconds, missed, decision, reason, message_id, occurred_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (source, provider_call_id) DO UPDATE SET
             outcome = excluded.outcome, ring_seconds = COALESCE(excluded.ring_seconds, calls.ring_seconds),
             missed = excluded.missed, decision = excluded.decision, reason = excluded.reason,
             message_id = COALESCE(excluded.message_id, calls.message_id),
             sender_id = COALESCE(excluded.sender_id, calls.sender_id),
             caller_e164 = COALESCE(excluded.caller_e164, calls.caller_e164)",
    )?
    .execute(params![
        call.source,
        call.provider_call_id,
        call.sender_id,
        call.caller_raw,
        call.caller_e164,
        call.callee_raw,
        call.outcome,
        call.ring_seconds,
        call.missed,
        call.decision,
        call.reason,
        call.message_id,
        call.occurred_at
    ])?;
    if let Some(m) = reply {
        insert_message(c, m)?;
        let wa_id = m.to.trim_start_matches('+');
        upsert_contact_reply(c, &m.sender_id, wa_id, m.created_at, &m.id)?;
    }
    if call.source == "whatsapp" {
        // A WhatsApp call opens the caller's 24-hour window like a message does.
        if let Some(wa_id) = call
            .caller_e164
            .as_deref()
            .map(|e| e.trim_start_matches('+'))
        {
            c.prepare_cached(
                "INSERT INTO contacts (sender_id, wa_id, last_inbound_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sender_id, wa_id) DO UPDATE SET
                     last_inbound_at = MAX(COALESCE(contacts.last_inbound_at, 0), excluded.last_inbound_at)",
            )?
            .execute(params![
                call.sender_id.as_deref().unwrap_or_default(),
                wa_id,
                call.occurred_at
            ])?;
        }
    }
    finish(
        c,
        event_id,
        &format!("call {}: {}", call.decision, call.reason),
    )
}

/// Claims up to `limit` due rows of `sender_id` for `node` and writes each one's attempt row
/// (`claimed`) before any request is made.
pub(super) fn claim_sends(
    c: &Connection,
    sender_id: &str,
    now: Millis,
    limit: u32,
    node: &str,
    lease_until: Millis,
) -> Result<Vec<ClaimedSend>, StoreError> {
    let mut claim = c.prepare_cached(
        "UPDATE messages SET state = 'sending', attempts = attempts + 1, updated_at = ?1,
             lease_owner = ?4, lease_until = ?5
         WHERE id IN (SELECT id FROM messages WHERE sender_id = ?2 AND state = 'queued' AND next_attempt_at <= ?1
                      ORDER BY next_attempt_at LIMIT ?3)
         RETURNING id, sender_id, to_number, body_json, attempts",
    )?;
    let claimed = claim
        .query_map(params![now, sender_id, limit, node, lease_until], |r| {
            Ok(ClaimedSend {
                message_id: r.get(0)?,
                sender_id: r.get(1)?,
                to: r.get(2)?,
                body: r.get(3)?,
                attempt_no: r.get::<_, Option<u32>>(4)?.unwrap_or(1),
                claimed_by: node.to_string(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut attempt = c.prepare_cached(
        "INSERT INTO attempts (message_id, attempt_no, started_at, outcome) VALUES (?1, ?2, ?3, 'claimed')
         ON CONFLICT (message_id, attempt_no) DO NOTHING",
    )?;
    for send in &claimed {
        attempt.execute(params![send.message_id, send.attempt_no, now])?;
    }
    Ok(claimed)
}

/// Marks claimed attempts started (`in_flight`); `false` for a send this node no longer holds.
pub(super) fn start_attempts(
    c: &Connection,
    sends: &[ClaimedSend],
    now: Millis,
) -> Result<Vec<bool>, StoreError> {
    let mut start = c.prepare_cached(
        "UPDATE attempts SET outcome = 'in_flight', started_at = ?1
         WHERE message_id = ?2 AND attempt_no = ?3 AND outcome = 'claimed'
           AND EXISTS (SELECT 1 FROM messages m WHERE m.id = ?2 AND m.lease_owner = ?4)",
    )?;
    sends
        .iter()
        .map(|s| Ok(start.execute(params![now, s.message_id, s.attempt_no, s.claimed_by])? == 1))
        .collect()
}

/// Records how an attempt ended and moves its message accordingly.
pub(super) fn record_attempt(
    c: &Connection,
    s: &ClaimedSend,
    outcome: &AttemptOutcome,
    now: Millis,
) -> Result<(), StoreError> {
    if let Some((label, code, detail)) = outcome.attempt_record() {
        c.prepare_cached(
            "UPDATE attempts SET finished_at = ?1, outcome = ?2, error_code = ?3, detail = ?4
             WHERE message_id = ?5 AND attempt_no = ?6",
        )?
        .execute(params![
            now,
            label,
            code,
            detail,
            s.message_id,
            s.attempt_no
        ])?;
    }
    // Fenced: a node whose lease on the send lapsed, and was taken over, records its attempt
    // as history but no longer moves the message.
    let current: Option<String> = c
        .prepare_cached(
            "SELECT state FROM messages WHERE id = ?1 AND (lease_owner IS NULL OR lease_owner = ?2)",
        )?
        .query_row(params![s.message_id, s.claimed_by], |r| r.get(0))
        .optional()?;
    let Some(current) = current else {
        return Ok(());
    };
    let change = MessageState::parse(&current).after_attempt(outcome);
    if let Some(fact) = crate::events::attempt_fact(s, &change, now) {
        super::conversations::journal(c, &fact)?;
    }
    match change {
        MessageChange::Accepted { state, wamid } => {
            c.prepare_cached(
                "UPDATE messages SET state = ?1, wamid = ?2, updated_at = ?3 WHERE id = ?4",
            )?
            .execute(params![state.as_str(), wamid, now, s.message_id])?;
            // Statuses that overtook the response were stored by wamid alone; link them.
            c.prepare_cached(
                "UPDATE message_statuses SET message_id = ?1 WHERE wamid = ?2 AND message_id IS NULL",
            )?
            .execute(params![s.message_id, wamid])?;
        }
        MessageChange::Requeued { at, code, detail } => {
            c.prepare_cached(
                "UPDATE messages SET state = 'queued', next_attempt_at = ?1, error_code = ?2, last_error = ?3,
                     updated_at = ?4 WHERE id = ?5",
            )?
            .execute(params![at, code, detail, now, s.message_id])?;
        }
        MessageChange::Failed { code, detail } => {
            c.prepare_cached(
                "UPDATE messages SET state = 'failed', error_code = ?1, last_error = ?2, updated_at = ?3 WHERE id = ?4",
            )?
            .execute(params![code, detail, now, s.message_id])?;
        }
        MessageChange::Deferred { at, reason } => {
            // Pacing held the claim back: no attempt was made, so none is recorded.
            c.prepare_cached(
                "DELETE FROM attempts WHERE message_id = ?1 AND attempt_no = ?2 AND outcome IN ('claimed', 'in_flight')",
            )?
            .execute(params![s.message_id, s.attempt_no])?;
            c.prepare_cached(
                "UPDATE messages SET state = 'queued', attempts = attempts - 1, next_attempt_at = ?1, last_error = ?2, updated_at = ?3
                 WHERE id = ?4 AND state = 'sending'",
            )?
            .execute(params![at, reason, now, s.message_id])?;
        }
        MessageChange::Uncertain { detail } => {
            c.prepare_cached(
                "UPDATE messages SET state = 'uncertain', last_error = ?1, updated_at = ?2,
                     lease_owner = NULL, lease_until = NULL WHERE id = ?3",
            )?
            .execute(params![detail, now, s.message_id])?;
        }
        MessageChange::None => {}
    }
    Ok(())
}

/// Marks an event processed with a note.
fn finish(c: &Connection, event_id: i64, note: &str) -> Result<(), StoreError> {
    c.prepare_cached("UPDATE inbound_events SET processed_at = ?1, note = ?2 WHERE id = ?3")?
        .execute(params![crate::time::now_ms(), note, event_id])?;
    Ok(())
}

/// Records an announcement about a number and applies it to the number's state.
fn number_update(
    c: &Connection,
    event_id: i64,
    u: &crate::store::NumberUpdate,
) -> Result<(), StoreError> {
    let now = crate::time::now_ms();
    if let Some(id) = &u.phone_number_id {
        c.prepare_cached(
            "INSERT INTO numbers (phone_number_id, throughput, quality_rating, messaging_tier, status, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (phone_number_id) DO UPDATE SET
                 throughput = COALESCE(excluded.throughput, numbers.throughput),
                 quality_rating = COALESCE(excluded.quality_rating, numbers.quality_rating),
                 messaging_tier = COALESCE(excluded.messaging_tier, numbers.messaging_tier),
                 status = COALESCE(excluded.status, numbers.status),
                 updated_at = excluded.updated_at",
        )?
        .execute(params![id, u.throughput, u.quality_rating, u.messaging_tier, u.status, now])?;
    }
    c.prepare_cached(
        "INSERT INTO number_events (phone_number_id, field, event, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![u.phone_number_id, u.field, u.event, crate::store::json_text(&u.detail), now])?;
    let note = format!(
        "{} {}: applied to {}",
        u.field,
        u.event.as_deref().unwrap_or(""),
        u.phone_number_id.as_deref().unwrap_or("")
    );
    finish(c, event_id, &note)
}

/// A template's status as Meta announced it.
fn template_status(
    c: &Connection,
    event_id: i64,
    name: &str,
    language: &str,
    status: &str,
) -> Result<(), StoreError> {
    let n = c
        .prepare_cached(
            "UPDATE templates SET status = ?1, updated_at = ?2 WHERE name = ?3 AND language = ?4",
        )?
        .execute(params![status, crate::time::now_ms(), name, language])?;
    let note = if n > 0 {
        format!("template {name} ({language}) is now {status}")
    } else {
        format!("template {name} ({language}) is not synced yet; status {status} noted")
    };
    finish(c, event_id, &note)
}

/// Appends a consent record and makes it the person's current state for its category.
pub(super) fn record_consent(c: &Connection, r: &crate::consent::Record) -> Result<(), StoreError> {
    let id: i64 = c
        .prepare_cached(
            "INSERT INTO consent_records (sender_id, subject, wa_id, user_id, category, action, source, evidence, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        )?
        .query_row(
            params![
                r.sender_id,
                r.subject,
                r.wa_id,
                r.user_id,
                r.category.as_str(),
                r.action.as_str(),
                r.source,
                r.evidence,
                r.at
            ],
            |row| row.get(0),
        )?;
    c.prepare_cached(
        "INSERT INTO consent_state (sender_id, subject, category, action, record_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (sender_id, subject, category) DO UPDATE SET action = excluded.action, record_id = excluded.record_id, at = excluded.at
         WHERE excluded.at >= consent_state.at",
    )?
    .execute(params![
        r.sender_id,
        r.subject,
        r.category.as_str(),
        r.action.as_str(),
        id,
        r.at
    ])?;
    Ok(())
}
