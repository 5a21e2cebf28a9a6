//! Each kind: old rows go, new rows stay, rows still needed stay whatever their age, and a
//! batch never deletes more than its limit.

use super::*;
use crate::store::MaintenanceStore;

const OLD: Millis = 1_000;
const BEFORE: Millis = 2_000;
const NEW: Millis = 5_000;

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let s = SqliteStore::open(&url).await.expect("open");
    s.migrate().await.expect("migrate");
    (dir, s)
}

async fn exec(s: &SqliteStore, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&s.write)
        .await
        .expect(sql);
}

async fn count(s: &SqliteStore, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {sql}")))
        .fetch_one(&s.read)
        .await
        .expect(sql)
}

async fn prune(s: &SqliteStore, kind: Kind) -> u64 {
    s.prune(kind, BEFORE, 500).await.expect("prune")
}

#[tokio::test]
async fn old_processed_events_go_unprocessed_and_new_ones_stay() {
    let (_d, s) = store().await;
    exec(&s, &format!(
        "INSERT INTO raw_payloads (id, source, body, received_at) VALUES (1, 'w', x'00', {OLD}), (2, 'w', x'00', {OLD}), (3, 'w', x'00', {NEW});
         INSERT INTO inbound_events (id, raw_id, source, dedup_key, kind, event_json, received_at, processed_at) VALUES
           (1, 1, 'w', 'k1', 'status', '{{}}', {OLD}, {OLD}),
           (2, 2, 'w', 'k2', 'status', '{{}}', {OLD}, NULL),
           (3, 3, 'w', 'k3', 'status', '{{}}', {NEW}, {NEW});"
    )).await;
    assert_eq!(prune(&s, Kind::InboundEvents).await, 1);
    assert_eq!(count(&s, "inbound_events WHERE id IN (2, 3)").await, 2);
    // Raw body 1 lost its event; 2 still has its unprocessed event; 3 is new.
    assert_eq!(prune(&s, Kind::RawPayloads).await, 1);
    assert_eq!(count(&s, "raw_payloads WHERE id IN (2, 3)").await, 2);
    assert_eq!(count(&s, "raw_payloads").await, 2);
}

#[tokio::test]
async fn an_event_is_kept_while_the_user_message_read_from_it_is() {
    let (_d, s) = store().await;
    exec(&s, &format!(
        "INSERT INTO raw_payloads (id, source, body, received_at) VALUES (1, 'w', x'00', {OLD});
         INSERT INTO inbound_events (id, raw_id, source, dedup_key, kind, event_json, received_at, processed_at) VALUES
           (1, 1, 'w', 'k1', 'message', '{{}}', {OLD}, {OLD});
         INSERT INTO inbound_messages (wamid, sender_id, message_type, unknown_type, sent_at, event_id) VALUES
           ('wamid.new', '1', 'text', 0, {NEW}, 1);"
    )).await;
    assert_eq!(prune(&s, Kind::InboundMessages).await, 0);
    assert_eq!(prune(&s, Kind::InboundEvents).await, 0);
    assert_eq!(prune(&s, Kind::RawPayloads).await, 0);
    exec(&s, &format!("UPDATE inbound_messages SET sent_at = {OLD}")).await;
    assert_eq!(prune(&s, Kind::InboundMessages).await, 1);
    assert_eq!(prune(&s, Kind::InboundEvents).await, 1);
    assert_eq!(prune(&s, Kind::RawPayloads).await, 1);
}

#[tokio::test]
async fn only_final_sends_go_and_they_take_their_attempts_and_statuses() {
    let (_d, s) = store().await;
    let mut sql = String::new();
    for (id, state, at) in [
        ("m_queued", "queued", OLD),
        ("m_sending", "sending", OLD),
        ("m_uncertain", "uncertain", OLD),
        ("m_delivered", "delivered", OLD),
        ("m_failed", "failed", OLD),
        ("m_new", "delivered", NEW),
    ] {
        sql += &format!(
            "INSERT INTO messages (id, sender_id, to_number, kind, body_json, reason, state, next_attempt_at, created_at, updated_at)
             VALUES ('{id}', '1', '+1', 'text', '{{}}', 'r', '{state}', {at}, {at}, {at});
             INSERT INTO attempts (message_id, attempt_no, started_at, outcome) VALUES ('{id}', 1, {at}, 'x');
             INSERT INTO message_statuses (wamid, status, message_id, at) VALUES ('w_{id}', 'sent', '{id}', {at});"
        );
    }
    exec(&s, &sql).await;
    assert_eq!(prune(&s, Kind::Messages).await, 2);
    assert_eq!(
        count(&s, "messages WHERE id IN ('m_delivered', 'm_failed')").await,
        0
    );
    assert_eq!(count(&s, "messages").await, 4);
    assert_eq!(
        count(
            &s,
            "attempts WHERE message_id IN ('m_delivered', 'm_failed')"
        )
        .await,
        0
    );
    assert_eq!(
        count(&s, "message_statuses WHERE message_id = 'm_delivered'").await,
        0
    );
    // The open sends keep every attempt and status (their idempotency and resend depend on it).
    assert_eq!(prune(&s, Kind::Attempts).await, 0);
    assert_eq!(prune(&s, Kind::Statuses).await, 0);
    assert_eq!(count(&s, "attempts").await, 4);
    assert_eq!(count(&s, "message_statuses").await, 4);
    // Once final, the old attempt and status go on their own limits; the new ones stay.
    exec(
        &s,
        "UPDATE messages SET state = 'read', updated_at = 9999 WHERE id = 'm_uncertain'",
    )
    .await;
    assert_eq!(prune(&s, Kind::Attempts).await, 1);
    assert_eq!(prune(&s, Kind::Statuses).await, 1);
    assert_eq!(count(&s, "attempts WHERE message_id = 'm_new'").await, 1);
    assert_eq!(
        count(&s, "message_statuses WHERE message_id = 'm_new'").await,
        1
    );
}

#[tokio::test]
async fn a_call_still_ringing_stays() {
    let (_d, s) = store().await;
    exec(&s, &format!(
        "INSERT INTO calls (source, provider_call_id, caller_raw, outcome, missed, decision, reason, occurred_at) VALUES
           ('pbx', 'a', '1', 'no-answer', 1, 'replied', 'r', {OLD}),
           ('pbx', 'b', '1', 'ringing', 0, 'pending', 'r', {OLD}),
           ('pbx', 'c', '1', 'no-answer', 1, 'replied', 'r', {NEW});"
    )).await;
    assert_eq!(prune(&s, Kind::Calls).await, 1);
    assert_eq!(
        count(&s, "calls WHERE provider_call_id IN ('b', 'c')").await,
        2
    );
}

#[tokio::test]
async fn a_contact_goes_only_when_all_its_activity_is_old() {
    let (_d, s) = store().await;
    exec(&s, &format!(
        "INSERT INTO contacts (sender_id, wa_id, last_inbound_at, last_reply_at, referral_at, free_until) VALUES
           ('1', 'old', {OLD}, {OLD}, NULL, NULL),
           ('1', 'replied', {OLD}, {NEW}, NULL, NULL),
           ('1', 'free', NULL, NULL, {OLD}, {NEW});"
    )).await;
    assert_eq!(prune(&s, Kind::Contacts).await, 1);
    assert_eq!(count(&s, "contacts WHERE wa_id = 'old'").await, 0);
}

#[tokio::test]
async fn a_batch_never_deletes_more_than_its_limit() {
    let (_d, s) = store().await;
    let values: Vec<String> = (0..1200)
        .map(|i| format!("('1', 'f', NULL, '{{}}', {})", OLD + i % 7))
        .collect();
    exec(&s, &format!(
        "INSERT INTO number_events (phone_number_id, field, event, detail, at) VALUES {}; 
         INSERT INTO number_events (phone_number_id, field, event, detail, at) VALUES ('1', 'f', NULL, '{{}}', {NEW});",
        values.join(",")
    )).await;
    let mut batches = Vec::new();
    loop {
        let n = prune(&s, Kind::NumberEvents).await;
        batches.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(batches, vec![500, 500, 200, 0]);
    assert_eq!(count(&s, "number_events").await, 1);
}

#[tokio::test]
async fn finished_deliveries_then_their_events_go_and_what_is_owed_or_open_stays() {
    let (_d, s) = store().await;
    exec(&s, &format!(
        "INSERT INTO events (id, type, at, conversation_id, data_json) VALUES
           (1, 'call.missed', {OLD}, 'c1', '{{}}'), (2, 'call.missed', {OLD}, 'c2', '{{}}'),
           (3, 'call.missed', {OLD}, NULL, '{{}}'), (4, 'call.missed', {NEW}, NULL, '{{}}');
         INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, state, attempts, next_attempt_at, created_at, finished_at) VALUES
           (1, 'we1', 1, 'call.missed', 'delivered', 1, {OLD}, {OLD}, {OLD}),
           (2, 'we1', 2, 'call.missed', 'pending', 1, {NEW}, {OLD}, NULL);
         INSERT INTO webhook_attempts (delivery_id, attempt_no, at, status, latency_ms, response) VALUES
           (1, 1, {OLD}, 204, 1, ''), (2, 1, {OLD}, 503, 1, '');
         INSERT INTO conversations (id, sender_id, contact, kind, started_at, last_message_at, message_count, ended_at) VALUES
           ('c1', 'pn1', '1', 'missed_call', {OLD}, {OLD}, 1, {OLD}),
           ('c2', 'pn1', '2', 'missed_call', {OLD}, {OLD}, 1, NULL),
           ('c3', 'pn1', '3', 'missed_call', {OLD}, {NEW}, 1, {NEW});
         INSERT INTO conversation_messages (conversation_id, seq, direction, message_id, kind, text, status, at, status_at) VALUES
           ('c1', 1, 'outbound', 'm1', 'template', 'hi', 'read', {OLD}, {OLD}),
           ('c2', 1, 'outbound', 'm2', 'template', 'hi', 'sent', {OLD}, {OLD});"
    )).await;
    // The delivered delivery goes with its attempt; the pending one is still owed.
    assert_eq!(prune(&s, Kind::WebhookDeliveries).await, 1);
    assert_eq!(count(&s, "webhook_deliveries WHERE id = 2").await, 1);
    assert_eq!(count(&s, "webhook_attempts").await, 1);
    // Events 1 (its delivery is gone) and 3 go; 2 is still to be delivered, 4 is new.
    assert_eq!(prune(&s, Kind::Events).await, 2);
    assert_eq!(count(&s, "events WHERE id IN (2, 4)").await, 2);
    // The ended conversation goes with its transcript; the open one stays, however old.
    assert_eq!(prune(&s, Kind::Conversations).await, 1);
    assert_eq!(count(&s, "conversations WHERE id IN ('c2', 'c3')").await, 2);
    assert_eq!(count(&s, "conversation_messages").await, 1);
}

#[tokio::test]
async fn an_assistant_forgets_a_customer_whole_once_the_last_reply_is_old() {
    let (_d, s) = store().await;
    exec(
        &s,
        &format!(
        "INSERT INTO assistant_threads (id, assistant, customer_id, created_at, updated_at) VALUES
           ('old', 'desk', 'c1', {OLD}, {OLD}), ('new', 'desk', 'c2', {OLD}, {NEW});
         INSERT INTO assistant_turns (thread_id, at, role, content) VALUES
           ('old', {OLD}, 'user', 'hi'), ('old', {OLD}, 'assistant', 'hello'),
           ('new', {OLD}, 'user', 'hi'), ('new', {NEW}, 'user', 'again');"
    ),
    )
    .await;
    assert_eq!(prune(&s, Kind::AssistantMemory).await, 1);
    assert_eq!(count(&s, "assistant_threads").await, 1);
    // The thread goes with every turn; a thread replied to lately keeps even its old turns.
    assert_eq!(
        count(&s, "assistant_turns WHERE thread_id = 'old'").await,
        0
    );
    assert_eq!(
        count(&s, "assistant_turns WHERE thread_id = 'new'").await,
        2
    );
}
