//! Sends left behind by a stopped node (or this one, restarting), run on the writer thread:
//! the leader checks on every maintenance pass, so these must not pause the group commits the
//! way a write on the sqlx connection does (see [`super::writer::Turn`]).

use rusqlite::{Connection, params};

use crate::store::{StoreError, UNCERTAIN_GIVE_UP, UncertainResolved};
use crate::time::Millis;

/// The sends left behind: `node`'s (it is starting again) and those whose lease lapsed.
/// Their in-flight attempts end as interrupted even when a status webhook has moved the
/// message on meanwhile (the sandbox and Meta may report `sent` before they answer).
const LEFT_BEHIND: &str = "(lease_owner IS NULL OR lease_owner = ?2 OR lease_until <= ?1)";

/// Written out so SQLite uses the partial index `messages_open` (its WHERE must appear as
/// is): with `state = 'sending'` alone, every pass scanned the whole table.
const OPEN: &str = "state IN ('queued', 'sending', 'uncertain')";

/// Claimed-only sends go back to the queue, started ones become `uncertain`; returns how
/// many became uncertain.
pub(super) fn mark_in_flight_uncertain(
    c: &Connection,
    node: Option<&str>,
    now: Millis,
) -> Result<u64, StoreError> {
    let requeued = c
        .prepare_cached(&format!(
            "UPDATE messages SET state = 'queued', attempts = attempts - 1, next_attempt_at = ?1, updated_at = ?1,
                 lease_owner = NULL, lease_until = NULL
             WHERE {OPEN} AND state = 'sending' AND {LEFT_BEHIND} AND EXISTS (SELECT 1 FROM attempts a WHERE a.message_id = messages.id
                 AND a.attempt_no = messages.attempts AND a.outcome = 'claimed')"
        ))?
        .execute(params![now, node])?;
    // Their claimed-only attempts: the message went back to the queue above (no longer
    // `sending`), so its claim row is the one whose attempt number is now past the count.
    c.prepare_cached(
        "DELETE FROM attempts WHERE outcome = 'claimed' AND attempt_no > (SELECT m.attempts FROM messages m WHERE m.id = attempts.message_id)",
    )?
    .execute([])?;
    if requeued > 0 {
        tracing::info!(
            count = requeued,
            "Sends claimed but not started by a stopped node are queued again."
        );
    }
    c.prepare_cached(&format!(
        "UPDATE attempts SET outcome = 'interrupted', finished_at = ?1,
             detail = 'the node stopped while this request was in flight; outcome unknown'
         WHERE outcome = 'in_flight' AND EXISTS (SELECT 1 FROM messages WHERE messages.id = attempts.message_id
             AND {LEFT_BEHIND})"
    ))?
    .execute(params![now, node])?;
    let n = c
        .prepare_cached(&format!(
            "UPDATE messages SET state = 'uncertain', updated_at = ?1, lease_owner = NULL, lease_until = NULL,
                 last_error = 'in flight when its node stopped; waiting for a status webhook before resending'
             WHERE {OPEN} AND state = 'sending' AND {LEFT_BEHIND}"
        ))?
        .execute(params![now, node])?;
    Ok(n as u64)
}

/// Uncertain sends no status webhook settled by `before` are queued again, or fail once they
/// have had `max_attempts` attempts.
pub(super) fn requeue_uncertain(
    c: &Connection,
    before: Millis,
    now: Millis,
    max_attempts: u32,
) -> Result<UncertainResolved, StoreError> {
    let failed: Vec<String> = c
        .prepare_cached(&format!(
            "UPDATE messages SET state = 'failed', updated_at = ?1, last_error = ?3
             WHERE {OPEN} AND state = 'uncertain' AND updated_at <= ?2 AND attempts >= ?4 RETURNING id"
        ))?
        .query_map(params![now, before, UNCERTAIN_GIVE_UP, max_attempts], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &failed {
        super::conversations::journal(c, &crate::events::given_up(id, now))?;
    }
    let requeued = c
        .prepare_cached(&format!(
            "UPDATE messages SET state = 'queued', next_attempt_at = ?1, updated_at = ?1,
                 last_error = 'no status webhook arrived for the interrupted attempt; sending again'
             WHERE {OPEN} AND state = 'uncertain' AND updated_at <= ?2"
        ))?
        .execute(params![now, before])?;
    Ok(UncertainResolved {
        requeued: requeued as u64,
        failed: failed.len() as u64,
    })
}
