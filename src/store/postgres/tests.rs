//! The PostgreSQL store against a real server: each test on a fresh schema of the database at
//! `RINGBACK_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! opened through a URL whose `options=-c search_path=…` puts every connection in it — the
//! way the integration suite gives each test app its own schema.
//!
//! Tests fail, never skip, when PostgreSQL does not answer: a backend whose tests did not run
//! must not look green.

use super::*;
use crate::inbound::{InboundEvent, InboundMessage, KeyedEvent};
use crate::time::now_ms;

mod outbox;
mod runs;

const ENV: &str = "RINGBACK_TEST_POSTGRES_URL";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A schema of its own for one test, and the URL that selects it.
struct Schema {
    admin_url: String,
    name: String,
    url: String,
}

impl Schema {
    async fn create() -> Self {
        let admin_url = std::env::var(ENV).unwrap_or_else(|_| DEFAULT_URL.to_string());
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut admin(&admin_url).await)
            .await
            .unwrap_or_else(|e| panic!("cannot create a schema through {admin_url}: {e}"));
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options=-c%20search_path%3D{name}");
        Self {
            admin_url,
            name,
            url,
        }
    }

    /// A store (one node's pool) on this schema, migrated.
    async fn open(&self) -> PostgresStore {
        let s = PostgresStore::open(&self.url).await.expect("store opens");
        s.migrate().await.expect("migrations apply");
        s
    }

    async fn drop(self) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.name
        )))
        .execute(&mut admin(&self.admin_url).await)
        .await
        .expect("dropping the test schema");
    }
}

async fn admin(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL did not answer at {url} ({e}). These tests need a PostgreSQL server: \
             start one, or set {ENV} to a database URL whose user may CREATE SCHEMA \
             (e.g. postgres://postgres@127.0.0.1:5432/postgres)."
        )
    })
}

fn other(key: &str) -> KeyedEvent {
    KeyedEvent {
        dedup_key: key.into(),
        event: InboundEvent::Other {
            field: "test".into(),
            value: serde_json::json!({ "key": key }),
        },
    }
}

fn request(body: &str, keys: &[&str]) -> IngestRequest {
    IngestRequest {
        source: "whatsapp",
        raw: body.as_bytes().to_vec(),
        events: keys.iter().map(|k| other(k)).collect(),
        received_at: 1_000,
    }
}

fn counts(inserted: u32, duplicates: u32) -> IngestCounts {
    IngestCounts {
        inserted,
        duplicates,
    }
}

fn message(id: &str, at: Millis) -> NewMessage {
    NewMessage {
        id: id.into(),
        sender_id: "pn1".into(),
        to: "+15550001111".into(),
        kind: "text".into(),
        body: serde_json::json!({"text": {"body": "hi"}}),
        idempotency_key: None,
        reason: "test".into(),
        created_at: at,
    }
}

/// Ingests one event per key and returns their ids.
async fn events(s: &PostgresStore, keys: &[&str]) -> Vec<i64> {
    s.ingest(&[request("{}", keys)]).await.expect("ingest");
    let pending = s.pending_events(100).await.expect("pending");
    keys.iter()
        .map(|k| {
            pending
                .iter()
                .find(
                    |e| matches!(&e.event, InboundEvent::Other { value, .. } if value["key"] == *k),
                )
                .expect("ingested event is pending")
                .id
        })
        .collect()
}

#[tokio::test]
async fn ingest_counts_duplicates_in_one_batch_and_across_batches() {
    let db = Schema::create().await;
    let s = db.open().await;
    let first = s
        .ingest(&[
            request("a", &["k1", "k2"]),
            request("b", &["k2", "k3"]),
            request("c", &[]),
        ])
        .await
        .unwrap();
    assert_eq!(first, [counts(2, 0), counts(1, 1), counts(0, 0)]);
    let second = s
        .ingest(&[request("d", &["k1"]), request("e", &["k4", "k4"])])
        .await
        .unwrap();
    assert_eq!(second, [counts(0, 1), counts(1, 1)]);
    assert_eq!(s.ingest(&[]).await.unwrap(), []);

    // Every request's body is kept, and each event points at the request it came in.
    let raw: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM raw_payloads")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(raw, 5);
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT e.dedup_key, r.body FROM inbound_events e JOIN raw_payloads r ON r.id = e.raw_id ORDER BY e.id",
    )
    .fetch_all(&s.pool)
    .await
    .unwrap();
    let rows: Vec<(&str, &[u8])> = rows
        .iter()
        .map(|(k, b)| (k.as_str(), b.as_slice()))
        .collect();
    assert_eq!(
        rows,
        [("k1", &b"a"[..]), ("k2", b"a"), ("k3", b"b"), ("k4", b"e")]
    );
    db.drop().await;
}

#[tokio::test]
async fn pending_events_come_in_arrival_order_without_processed_or_dead_ones() {
    let db = Schema::create().await;
    let s = db.open().await;
    s.ingest(&[request("a", &["k1", "k2"]), request("b", &["k3"])])
        .await
        .unwrap();
    s.ingest(&[request("c", &["k4", "k5"])]).await.unwrap();
    let pending = s.pending_events(10).await.unwrap();
    let keys: Vec<String> = pending
        .iter()
        .map(|e| match &e.event {
            InboundEvent::Other { value, .. } => value["key"].as_str().unwrap().to_string(),
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(keys, ["k1", "k2", "k3", "k4", "k5"]);
    assert!(pending.windows(2).all(|w| w[0].id < w[1].id));

    s.apply(
        &[Effect::Finish {
            event_id: pending[0].id,
            note: "done".into(),
        }],
        None,
    )
    .await
    .unwrap();
    s.dead_letter(pending[1].id, "unreadable", 2_000)
        .await
        .unwrap();
    let ids: Vec<i64> = s
        .pending_events(2)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, [pending[2].id, pending[3].id]);
    assert_eq!(s.dead_events().await.unwrap().len(), 1);
    assert_eq!(s.retry_dead(None).await.unwrap(), 1);
    assert_eq!(s.pending_events(10).await.unwrap().len(), 4);
    db.drop().await;
}

#[tokio::test]
async fn leases_are_taken_renewed_refused_and_taken_over_with_a_new_token() {
    let db = Schema::create().await;
    let s = db.open().await;
    let l = s
        .acquire_lease("processor", "a", 1_000, 5_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((l.holder.as_str(), l.token, l.expires_at), ("a", 1, 5_000));
    let renewed = s
        .acquire_lease("processor", "a", 2_000, 6_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((renewed.token, renewed.expires_at), (1, 6_000));
    assert_eq!(
        s.acquire_lease("processor", "b", 3_000, 9_000)
            .await
            .unwrap(),
        None
    );
    let taken = s
        .acquire_lease("processor", "b", 6_000, 9_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken.holder.as_str(), taken.token), ("b", 2));
    s.release_lease("processor", "b").await.unwrap();
    let back = s
        .acquire_lease("processor", "a", 6_001, 9_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((back.holder.as_str(), back.token), ("a", 3));
    assert_eq!(s.leases().await.unwrap(), [back]);
    db.drop().await;
}

#[tokio::test]
async fn a_fenced_apply_with_a_stale_token_is_refused_and_changes_nothing() {
    let db = Schema::create().await;
    let s = db.open().await;
    let ids = events(&s, &["e1"]).await;
    let old = s
        .acquire_lease("processor", "a", 1_000, 2_000)
        .await
        .unwrap()
        .unwrap();
    let new = s
        .acquire_lease("processor", "b", 3_000, 9_000)
        .await
        .unwrap()
        .unwrap();
    let finish = [Effect::Finish {
        event_id: ids[0],
        note: "done".into(),
    }];
    match s.apply(&finish, Some(&Fence::from(&old))).await {
        Err(StoreError::LeaseLost(name)) => assert_eq!(name, "processor"),
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert_eq!(s.pending_events(10).await.unwrap().len(), 1);
    s.apply(&finish, Some(&Fence::from(&new))).await.unwrap();
    assert!(s.pending_events(10).await.unwrap().is_empty());
    db.drop().await;
}

#[tokio::test]
async fn replies_are_claimed_and_started_in_the_transaction_that_decides_them() {
    let db = Schema::create().await;
    let s = db.open().await;
    let ids = events(&s, &["e1", "e2", "e3"]).await;
    let now = now_ms();
    let effects = ids
        .iter()
        .zip(["m1", "m2", "m3"])
        .map(|(id, m)| Effect::Enqueue {
            event_id: *id,
            message: message(m, now - 10),
        })
        .collect();
    let request = ClaimRequest {
        sender_id: "pn1".into(),
        limit: 2,
        start: 1,
        node: "node-a".into(),
        lease_until: now + 60_000,
    };
    let claimed = s.apply_and_claim(effects, None, &[request]).await.unwrap();
    assert!(s.pending_events(10).await.unwrap().is_empty(), "decided");
    assert_eq!(claimed.len(), 2, "the limit");
    assert_eq!(claimed.iter().filter(|(_, started)| *started).count(), 1);
    // A crash now: the started reply waits for its status, the claimed one is queued again.
    assert_eq!(
        s.mark_in_flight_uncertain(Some("node-a"), now + 1)
            .await
            .unwrap(),
        1
    );
    let mut states = Vec::new();
    for m in ["m1", "m2", "m3"] {
        states.push(s.message(m).await.unwrap().expect("exists").message.state);
    }
    states.sort();
    assert_eq!(states, ["queued", "queued", "uncertain"]);
    db.drop().await;
}

#[tokio::test]
async fn policy_facts_come_from_the_rows_of_messages_and_consent() {
    let db = Schema::create().await;
    let s = db.open().await;
    assert_eq!(
        s.policy_facts("pn1", "15550001111").await.unwrap(),
        PolicyFacts::default()
    );
    let at = now_ms() - 60_000;
    let ids = events(&s, &["m1", "c1"]).await;
    let inbound = InboundMessage {
        phone_number_id: "pn1".into(),
        wamid: "wamid.in".into(),
        from_wa_id: Some("15550001111".into()),
        from_user_id: None,
        profile_name: Some("Ana".into()),
        timestamp: at,
        message_type: "text".into(),
        text: Some("hello".into()),
        context_id: None,
        unknown_type: false,
        payload: serde_json::json!({"referral": {"source_type": "ad"}}),
        reply: None,
    };
    let record = crate::consent::Record {
        sender_id: "pn1".into(),
        subject: "15550001111".into(),
        wa_id: Some("15550001111".into()),
        user_id: None,
        category: crate::consent::Category::Marketing,
        action: crate::consent::Action::OptOut,
        source: "whatsapp_message".into(),
        evidence: "STOP".into(),
        at: at + 1,
    };
    s.apply(
        &[
            Effect::InboundMessage {
                event_id: ids[0],
                message: inbound,
                note: None,
            },
            Effect::Consent {
                event_id: ids[1],
                record: record.clone(),
            },
        ],
        None,
    )
    .await
    .unwrap();
    let facts = s.policy_facts("pn1", "15550001111").await.unwrap();
    assert_eq!(facts.last_inbound, Some(at));
    assert_eq!(facts.referral_at, Some(at));
    assert_eq!(facts.free_until, None);
    assert_eq!(
        facts.consent,
        [(
            crate::consent::Category::Marketing,
            crate::consent::Action::OptOut,
            at + 1
        )]
    );
    s.open_free_entry_point("pn1", "15550001111", at + 100)
        .await
        .unwrap();
    assert_eq!(
        s.policy_facts("pn1", "15550001111")
            .await
            .unwrap()
            .free_until,
        Some(at + 100)
    );
    assert_eq!(
        s.consent_records(Some("pn1"), None).await.unwrap(),
        [record]
    );
    assert_eq!(s.consent_records_after(None, 0, 10).await.unwrap().len(), 1);
    // Someone else has no facts.
    assert_eq!(
        s.policy_facts("pn1", "15559999999").await.unwrap(),
        PolicyFacts::default()
    );
    db.drop().await;
}

#[tokio::test]
async fn prune_keeps_unprocessed_events_and_the_bodies_they_came_in() {
    let db = Schema::create().await;
    let s = db.open().await;
    s.ingest(&[request("a", &["old_done"]), request("b", &["old_pending"])])
        .await
        .unwrap();
    let pending = s.pending_events(10).await.unwrap();
    s.apply(
        &[Effect::Finish {
            event_id: pending[0].id,
            note: "done".into(),
        }],
        None,
    )
    .await
    .unwrap();
    // Both were received at 1_000; prune everything before 2_000.
    assert_eq!(
        s.prune(RowKind::InboundEvents, 2_000, 100).await.unwrap(),
        1
    );
    assert_eq!(s.prune(RowKind::RawPayloads, 2_000, 100).await.unwrap(), 1);
    let left = s.pending_events(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, pending[1].id);
    assert_eq!(
        s.prune(RowKind::InboundEvents, 2_000, 100).await.unwrap(),
        0
    );
    assert_eq!(s.prune(RowKind::RawPayloads, 2_000, 100).await.unwrap(), 0);
    db.drop().await;
}

#[tokio::test]
async fn final_sends_are_pruned_with_their_attempts_and_statuses_in_limited_batches() {
    let db = Schema::create().await;
    let s = db.open().await;
    for i in 0..3 {
        let id = format!("m{i}");
        s.enqueue(&message(&id, 1_000 + i)).await.unwrap();
    }
    s.enqueue(&message("open", 1_000)).await.unwrap();
    let claimed = s.claim_sends("pn1", 1_500, 10, "a", 100_000).await.unwrap();
    let results: Vec<_> = claimed
        .iter()
        .filter(|c| c.message_id != "open")
        .map(|c| {
            (
                c.clone(),
                AttemptOutcome::Accepted {
                    wamid: format!("wamid.{}", c.message_id),
                },
            )
        })
        .collect();
    s.record_attempts(&results, 1_600).await.unwrap();
    assert_eq!(s.prune(RowKind::Messages, 2_000, 2).await.unwrap(), 2);
    assert_eq!(s.prune(RowKind::Messages, 2_000, 2).await.unwrap(), 1);
    assert_eq!(s.prune(RowKind::Messages, 2_000, 2).await.unwrap(), 0);
    let left: Vec<String> = s
        .list_messages(10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, ["open"]);
    for kind in RowKind::ALL {
        s.prune(kind, 2_000, 10)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", kind.as_str()));
    }
    db.drop().await;
}

#[tokio::test]
async fn finished_deliveries_then_their_events_go_and_what_is_owed_or_open_stays() {
    let db = Schema::create().await;
    let s = db.open().await;
    sqlx::raw_sql(
        "INSERT INTO events (id, type, at, conversation_id, data_json) VALUES
           (1, 'call.missed', 1000, 'c1', '{}'), (2, 'call.missed', 1000, 'c2', '{}'),
           (3, 'call.missed', 1000, NULL, '{}'), (4, 'call.missed', 5000, NULL, '{}');
         INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, state, attempts, next_attempt_at, created_at, finished_at) VALUES
           (1, 'we1', 1, 'call.missed', 'delivered', 1, 1000, 1000, 1000),
           (2, 'we1', 2, 'call.missed', 'pending', 1, 5000, 1000, NULL);
         INSERT INTO webhook_attempts (delivery_id, attempt_no, at, status, latency_ms, response) VALUES
           (1, 1, 1000, 204, 1, ''), (2, 1, 1000, 503, 1, '');
         INSERT INTO conversations (id, sender_id, contact, kind, started_at, last_message_at, message_count, ended_at) VALUES
           ('c1', 'pn1', '1', 'missed_call', 1000, 1000, 1, 1000),
           ('c2', 'pn1', '2', 'missed_call', 1000, 1000, 1, NULL),
           ('c3', 'pn1', '3', 'missed_call', 1000, 5000, 1, 5000);
         INSERT INTO conversation_messages (conversation_id, seq, direction, message_id, kind, text, status, at, status_at) VALUES
           ('c1', 1, 'outbound', 'm1', 'template', 'hi', 'read', 1000, 1000),
           ('c2', 1, 'outbound', 'm2', 'template', 'hi', 'sent', 1000, 1000);",
    )
    .execute(&s.pool)
    .await
    .unwrap();
    let count = |sql: &'static str| {
        let s = &s;
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {sql}")))
                .fetch_one(&s.pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        s.prune(RowKind::WebhookDeliveries, 2_000, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(count("webhook_deliveries WHERE id = 2").await, 1);
    assert_eq!(count("webhook_attempts").await, 1);
    assert_eq!(s.prune(RowKind::Events, 2_000, 10).await.unwrap(), 2);
    assert_eq!(count("events WHERE id IN (2, 4)").await, 2);
    assert_eq!(s.prune(RowKind::Conversations, 2_000, 10).await.unwrap(), 1);
    assert_eq!(count("conversations WHERE id IN ('c2', 'c3')").await, 2);
    assert_eq!(count("conversation_messages").await, 1);
    db.drop().await;
}

#[tokio::test]
async fn a_read_only_fault_fails_writes_until_lifted() {
    let db = Schema::create().await;
    let s = db.open().await;
    s.enqueue(&message("before", 1_000)).await.unwrap();
    s.inject_write_fault(Some(WriteFault::ReadOnly))
        .await
        .unwrap();
    assert!(s.enqueue(&message("during", 1_000)).await.is_err());
    assert!(s.write_failure().is_some());
    // Reads still work.
    assert_eq!(s.outbox_depth().await.unwrap(), 1);
    assert!(matches!(
        s.inject_write_fault(Some(WriteFault::Full)).await,
        Err(StoreError::Corrupt(_))
    ));
    s.inject_write_fault(None).await.unwrap();
    s.enqueue(&message("after", 1_000)).await.unwrap();
    assert_eq!(s.write_failure(), None);
    assert_eq!(s.outbox_depth().await.unwrap(), 2);
    db.drop().await;
}

#[tokio::test]
async fn store_open_accepts_both_postgres_schemes() {
    let db = Schema::create().await;
    let store = crate::store::open(&db.url)
        .await
        .expect("postgres:// opens");
    assert_eq!(store.outbox_depth().await.unwrap(), 0);
    let alt = db.url.replacen("postgres://", "postgresql://", 1);
    let store = crate::store::open(&alt).await.expect("postgresql:// opens");
    assert_eq!(store.outbox_depth().await.unwrap(), 0);
    match crate::store::open("mysql://x").await {
        Err(e) => assert!(e.to_string().contains("postgres://"), "{e}"),
        Ok(_) => panic!("mysql:// must be refused"),
    }
    db.drop().await;
}
