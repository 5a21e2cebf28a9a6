//! Runs of like effects written with one statement per table.
//!
//! A burst of missed calls gives the processor batches of hundreds of calls and, once the
//! replies go out, of delivery statuses. Written a row at a time that is three round trips
//! per call and three per status, each costing PostgreSQL (on the same cores as the server)
//! more than the row itself. A run collects consecutive calls (or a batch's statuses) and
//! writes them with `UNNEST` arrays: a handful of statements for the whole run.
//!
//! A statement may not touch one row twice with `ON CONFLICT DO UPDATE`, so a call run is
//! written out before it would take a second event for the same call or a second reply to the
//! same contact; a status run applies several statuses of one message in order, in memory,
//! and writes the message once. Contacts are written sorted by key and messages locked in id
//! order, so two transactions take those row locks in the same order.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::Row;

use super::effects::{Finished, Tx};
use crate::inbound::{DeliveryStatus, StatusUpdate};
use crate::message::MessageState;
use crate::store::{CallRecord, NewMessage, StoreError};

/// Consecutive call decisions and their replies.
#[derive(Default)]
pub(super) struct CallRun<'a> {
    calls: Vec<(i64, &'a CallRecord)>,
    replies: Vec<&'a NewMessage>,
    call_keys: HashSet<(&'a str, &'a str)>,
    /// Contacts whose last reply moves: (sender, wa_id) → (at, message id).
    replied: BTreeMap<(&'a str, &'a str), (i64, &'a str)>,
    /// Callers a WhatsApp call opened a window for: (sender, wa_id) → when.
    windows: BTreeMap<(&'a str, &'a str), i64>,
}

impl<'a> CallRun<'a> {
    /// Whether `call` and its reply can join this run without one statement touching a row
    /// twice.
    pub(super) fn fits(&self, call: &CallRecord, reply: Option<&NewMessage>) -> bool {
        !self
            .call_keys
            .contains(&(call.source.as_str(), call.provider_call_id.as_str()))
            && reply.is_none_or(|m| !self.replied.contains_key(&reply_contact(m)))
            && whatsapp_window(call).is_none_or(|(key, _)| !self.windows.contains_key(&key))
    }

    pub(super) fn push(
        &mut self,
        event_id: i64,
        call: &'a CallRecord,
        reply: Option<&'a NewMessage>,
    ) {
        self.call_keys
            .insert((call.source.as_str(), call.provider_call_id.as_str()));
        self.calls.push((event_id, call));
        if let Some(m) = reply {
            self.replies.push(m);
            self.replied
                .insert(reply_contact(m), (m.created_at, m.id.as_str()));
        }
        if let Some((key, at)) = whatsapp_window(call) {
            self.windows.insert(key, at);
        }
    }

    /// Writes the run and notes each call's event as finished.
    pub(super) async fn write(
        &mut self,
        tx: &mut Tx,
        finished: &mut Finished,
    ) -> Result<(), StoreError> {
        if self.calls.is_empty() {
            return Ok(());
        }
        let run = std::mem::take(self);
        write_calls(tx, &run.calls).await?;
        write_replies(tx, &run.replies).await?;
        write_reply_contacts(tx, &run.replied).await?;
        write_windows(tx, &run.windows).await?;
        for (event_id, c) in run.calls {
            finished.push(event_id, format!("call {}: {}", c.decision, c.reason));
        }
        Ok(())
    }
}

fn reply_contact(m: &NewMessage) -> (&str, &str) {
    (m.sender_id.as_str(), m.to.trim_start_matches('+'))
}

/// A WhatsApp call opens the caller's 24-hour window like a message does.
fn whatsapp_window(c: &CallRecord) -> Option<((&str, &str), i64)> {
    if c.source != "whatsapp" {
        return None;
    }
    let wa_id = c.caller_e164.as_deref()?.trim_start_matches('+');
    Some((
        (c.sender_id.as_deref().unwrap_or_default(), wa_id),
        c.occurred_at,
    ))
}

/// In event order, so `calls.id` follows arrival (the call log lists by id); only the
/// leader's processor writes calls, so their lock order needs no sorting.
async fn write_calls(tx: &mut Tx, calls: &[(i64, &CallRecord)]) -> Result<(), StoreError> {
    let rows: Vec<&CallRecord> = calls.iter().map(|(_, c)| *c).collect();
    let col = |f: fn(&CallRecord) -> Option<&str>| -> Vec<Option<&str>> {
        rows.iter().map(|c| f(c)).collect()
    };
    sqlx::query(
        "INSERT INTO calls (source, provider_call_id, sender_id, caller_raw, caller_e164, callee_raw, outcome,
             ring_seconds, missed, decision, reason, message_id, occurred_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::text[], $8::bigint[], $9::boolean[], $10::text[], $11::text[], $12::text[], $13::bigint[])
         ON CONFLICT (source, provider_call_id) DO UPDATE SET
             outcome = excluded.outcome, ring_seconds = COALESCE(excluded.ring_seconds, calls.ring_seconds),
             missed = excluded.missed, decision = excluded.decision, reason = excluded.reason,
             message_id = COALESCE(excluded.message_id, calls.message_id),
             sender_id = COALESCE(excluded.sender_id, calls.sender_id),
             caller_e164 = COALESCE(excluded.caller_e164, calls.caller_e164)",
    )
    .bind(col(|c| Some(&c.source)))
    .bind(col(|c| Some(&c.provider_call_id)))
    .bind(col(|c| c.sender_id.as_deref()))
    .bind(col(|c| Some(&c.caller_raw)))
    .bind(col(|c| c.caller_e164.as_deref()))
    .bind(col(|c| c.callee_raw.as_deref()))
    .bind(col(|c| Some(&c.outcome)))
    .bind(rows.iter().map(|c| c.ring_seconds.map(i64::from)).collect::<Vec<_>>())
    .bind(rows.iter().map(|c| c.missed).collect::<Vec<_>>())
    .bind(col(|c| Some(&c.decision)))
    .bind(col(|c| Some(&c.reason)))
    .bind(col(|c| c.message_id.as_deref()))
    .bind(rows.iter().map(|c| c.occurred_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The replies, queued; an idempotency key already used keeps its first message.
async fn write_replies(tx: &mut Tx, replies: &[&NewMessage]) -> Result<(), StoreError> {
    if replies.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&NewMessage) -> Option<&str>| -> Vec<Option<&str>> {
        replies.iter().map(|m| f(m)).collect()
    };
    let bodies: Vec<String> = replies
        .iter()
        .map(|m| crate::store::json_text(&m.body))
        .collect();
    sqlx::query(
        "INSERT INTO messages (id, sender_id, to_number, kind, body_json, idempotency_key, reason, state,
             next_attempt_at, created_at, updated_at)
         SELECT id, sender_id, to_number, kind, body_json, idempotency_key, reason, 'queued', at, at, at
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])
             AS r(id, sender_id, to_number, kind, body_json, idempotency_key, reason, at)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(col(|m| Some(&m.id)))
    .bind(col(|m| Some(&m.sender_id)))
    .bind(col(|m| Some(&m.to)))
    .bind(col(|m| Some(&m.kind)))
    .bind(&bodies)
    .bind(col(|m| m.idempotency_key.as_deref()))
    .bind(col(|m| Some(&m.reason)))
    .bind(replies.iter().map(|m| m.created_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Each replied contact's last reply (which starts its cooldown).
async fn write_reply_contacts(
    tx: &mut Tx,
    replied: &BTreeMap<(&str, &str), (i64, &str)>,
) -> Result<(), StoreError> {
    if replied.is_empty() {
        return Ok(());
    }
    let (keys, values): (Vec<_>, Vec<_>) = replied.iter().unzip();
    let (senders, wa_ids): (Vec<&str>, Vec<&str>) = keys.into_iter().copied().unzip();
    let (ats, ids): (Vec<i64>, Vec<&str>) = values.into_iter().copied().unzip();
    sqlx::query(
        "INSERT INTO contacts (sender_id, wa_id, last_reply_at, last_reply_message_id)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[])
         ON CONFLICT (sender_id, wa_id) DO UPDATE SET last_reply_at = excluded.last_reply_at,
             last_reply_message_id = excluded.last_reply_message_id",
    )
    .bind(&senders)
    .bind(&wa_ids)
    .bind(&ats)
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The windows WhatsApp calls opened.
async fn write_windows(
    tx: &mut Tx,
    windows: &BTreeMap<(&str, &str), i64>,
) -> Result<(), StoreError> {
    if windows.is_empty() {
        return Ok(());
    }
    let (keys, ats): (Vec<_>, Vec<i64>) = windows.iter().map(|(k, at)| (*k, *at)).unzip();
    let (senders, wa_ids): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
    sqlx::query(
        "INSERT INTO contacts (sender_id, wa_id, last_inbound_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[])
         ON CONFLICT (sender_id, wa_id) DO UPDATE SET
             last_inbound_at = GREATEST(COALESCE(contacts.last_inbound_at, 0), excluded.last_inbound_at)",
    )
    .bind(&senders)
    .bind(&wa_ids)
    .bind(&ats)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A batch's status webhooks, written once after its other effects.
#[derive(Default)]
pub(super) struct StatusRun<'a> {
    statuses: Vec<(i64, &'a StatusUpdate)>,
}

impl<'a> StatusRun<'a> {
    pub(super) fn push(&mut self, event_id: i64, status: &'a StatusUpdate) {
        self.statuses.push((event_id, status));
    }

    /// Applies the run to the messages it names (locked, in id order, since a lane may be
    /// recording one of their attempts at the same time) and notes each event.
    pub(super) async fn write(
        self,
        tx: &mut Tx,
        finished: &mut Finished,
    ) -> Result<(), StoreError> {
        let statuses = self.statuses;
        if statuses.is_empty() {
            return Ok(());
        }
        let mut messages = lock_messages(tx, &statuses).await?;
        let mut rows = StatusRows::default();
        for (event_id, s) in &statuses {
            // Ringback puts its message id in biz_opaque_callback_data, so a status can be
            // matched even when it overtakes the HTTP response that carries the wamid.
            let id = s
                .biz_opaque_callback_data
                .as_deref()
                .filter(|id| messages.by_id.contains_key(*id))
                .map(str::to_string)
                .or_else(|| messages.by_wamid.get(&s.wamid).cloned());
            let detail = s.error_detail();
            rows.push(s, id.as_deref(), detail.as_deref());
            let Some(id) = id else {
                finished.push(*event_id, "status for a message this store did not send");
                continue;
            };
            let m = messages.by_id.get_mut(&id).expect("matched above");
            let current = m.state;
            m.state = current.after_status(s.status);
            if m.wamid.is_none() {
                // Later statuses of the run may name the message by this wamid alone.
                m.wamid = Some(s.wamid.clone());
                messages.by_wamid.insert(s.wamid.clone(), id.clone());
            }
            if s.status == DeliveryStatus::Failed && m.state == MessageState::Failed {
                m.error = Some((s.errors.first().map(|e| e.code), detail));
            }
            m.touched = true;
            finished.push(
                *event_id,
                format!("{} -> {}", current.as_str(), m.state.as_str()),
            );
        }
        rows.write(tx).await?;
        write_messages(tx, &messages.by_id).await
    }
}

/// A message a status run moves, as it stands after the statuses applied so far.
struct StatusTarget {
    state: MessageState,
    wamid: Option<String>,
    /// The failure to record (code, detail) when a status failed it.
    error: Option<(Option<i64>, Option<String>)>,
    touched: bool,
}

#[derive(Default)]
struct Targets {
    by_id: BTreeMap<String, StatusTarget>,
    by_wamid: HashMap<String, String>,
}

async fn lock_messages(
    tx: &mut Tx,
    statuses: &[(i64, &StatusUpdate)],
) -> Result<Targets, StoreError> {
    let ids: Vec<&str> = statuses
        .iter()
        .filter_map(|(_, s)| s.biz_opaque_callback_data.as_deref())
        .collect();
    let wamids: Vec<&str> = statuses.iter().map(|(_, s)| s.wamid.as_str()).collect();
    let rows = sqlx::query(
        "SELECT id, state, wamid FROM messages WHERE id = ANY($1) OR wamid = ANY($2)
         ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .bind(&wamids)
    .fetch_all(&mut **tx)
    .await?;
    let mut targets = Targets::default();
    for r in rows {
        let id: String = r.try_get("id")?;
        let wamid: Option<String> = r.try_get("wamid")?;
        if let Some(w) = &wamid {
            targets.by_wamid.insert(w.clone(), id.clone());
        }
        let state = MessageState::parse(&r.try_get::<String, _>("state")?);
        targets.by_id.insert(
            id,
            StatusTarget {
                state,
                wamid,
                error: None,
                touched: false,
            },
        );
    }
    Ok(targets)
}

/// The statuses as received, each linked to its message when one matched.
#[derive(Default)]
struct StatusRows<'a> {
    wamids: Vec<&'a str>,
    statuses: Vec<&'static str>,
    message_ids: Vec<Option<String>>,
    ats: Vec<i64>,
    codes: Vec<Option<i64>>,
    details: Vec<Option<String>>,
}

impl<'a> StatusRows<'a> {
    fn push(&mut self, s: &'a StatusUpdate, message_id: Option<&str>, detail: Option<&str>) {
        self.wamids.push(&s.wamid);
        self.statuses.push(s.status.as_str());
        self.message_ids.push(message_id.map(str::to_string));
        self.ats.push(s.timestamp);
        self.codes.push(s.errors.first().map(|e| e.code));
        self.details.push(detail.map(str::to_string));
    }

    async fn write(self, tx: &mut Tx) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO message_statuses (wamid, status, message_id, at, error_code, detail)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])
             ON CONFLICT (wamid, status) DO NOTHING",
        )
        .bind(&self.wamids)
        .bind(&self.statuses)
        .bind(&self.message_ids)
        .bind(&self.ats)
        .bind(&self.codes)
        .bind(&self.details)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Each moved message once, in its final state.
async fn write_messages(
    tx: &mut Tx,
    targets: &BTreeMap<String, StatusTarget>,
) -> Result<(), StoreError> {
    let moved: Vec<(&String, &StatusTarget)> = targets.iter().filter(|(_, t)| t.touched).collect();
    if moved.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = moved.iter().map(|(id, _)| id.as_str()).collect();
    let states: Vec<&str> = moved.iter().map(|(_, t)| t.state.as_str()).collect();
    let wamids: Vec<Option<&str>> = moved.iter().map(|(_, t)| t.wamid.as_deref()).collect();
    let failed: Vec<bool> = moved.iter().map(|(_, t)| t.error.is_some()).collect();
    let codes: Vec<Option<i64>> = moved
        .iter()
        .map(|(_, t)| t.error.as_ref().and_then(|e| e.0))
        .collect();
    let details: Vec<Option<&str>> = moved
        .iter()
        .map(|(_, t)| t.error.as_ref().and_then(|e| e.1.as_deref()))
        .collect();
    sqlx::query(
        "UPDATE messages m SET state = r.state, wamid = COALESCE(m.wamid, r.wamid), updated_at = $1,
             error_code = CASE WHEN r.failed THEN r.code ELSE m.error_code END,
             last_error = CASE WHEN r.failed THEN r.detail ELSE m.last_error END
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::boolean[], $6::bigint[], $7::text[])
             AS r(id, state, wamid, failed, code, detail)
         WHERE m.id = r.id",
    )
    .bind(crate::time::now_ms())
    .bind(&ids)
    .bind(&states)
    .bind(&wamids)
    .bind(&failed)
    .bind(&codes)
    .bind(&details)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
