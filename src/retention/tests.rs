use super::*;
use crate::config::retention::RetentionConfig;
use crate::consent::{Action, Category, Record};

fn config() -> RetentionConfig {
    crate::config::Config::load_with_env(None, Vec::new())
        .expect("defaults load")
        .retention
}

#[test]
fn defaults_keep_raw_bodies_30_days_and_sends_13_months() {
    let s = config().settings(0).expect("defaults are valid");
    let now = 1_000 * DAY_MS;
    assert_eq!(s.cutoff(Kind::RawPayloads, now), Some(now - 30 * DAY_MS));
    assert_eq!(s.cutoff(Kind::InboundEvents, now), Some(now - 30 * DAY_MS));
    assert_eq!(s.cutoff(Kind::Messages, now), Some(now - 396 * DAY_MS));
    assert_eq!(s.cutoff(Kind::Calls, now), Some(now - 396 * DAY_MS));
    assert_eq!(
        s.cutoff(Kind::WebhookDeliveries, now),
        Some(now - 30 * DAY_MS)
    );
    assert_eq!(s.cutoff(Kind::Events, now), Some(now - 30 * DAY_MS));
    assert_eq!(s.cutoff(Kind::Conversations, now), Some(now - 396 * DAY_MS));
    assert_eq!(s.interval, Duration::from_secs(600));
    assert_eq!(s.batch_rows, 500);
}

#[test]
fn zero_keeps_a_kind_forever() {
    let mut c = config();
    c.messages_days = 0;
    let s = c.settings(0).expect("valid");
    assert_eq!(s.cutoff(Kind::Messages, 1_000 * DAY_MS), None);
}

#[test]
fn a_contact_outlives_a_short_limit_while_its_cooldown_runs() {
    let mut c = config();
    c.contacts_days = 1;
    let cooldown = 30 * DAY_MS;
    let s = c.settings(cooldown).expect("valid");
    let now = 1_000 * DAY_MS;
    assert_eq!(s.cutoff(Kind::Contacts, now), Some(now - cooldown));
    // Without a cooldown the 24-hour window and 72-hour free entry point still hold.
    let s = c.settings(0).expect("valid");
    assert_eq!(s.cutoff(Kind::Contacts, now), Some(now - 4 * DAY_MS));
}

/// The worker with every limit at one day and `now` a year on: everything old goes, in
/// batches, except the consent ledger.
#[tokio::test]
async fn a_run_prunes_every_kind_in_batches_and_never_the_consent_ledger() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = crate::store::open(&url).await.expect("open");
    let t0: Millis = 1_700_000_000_000;
    for i in 0..3 {
        store
            .record_consent(&Record {
                sender_id: "1".into(),
                subject: format!("1555000000{i}"),
                wa_id: None,
                user_id: None,
                category: Category::All,
                action: Action::OptIn,
                source: "api".into(),
                evidence: "form".into(),
                at: t0,
            })
            .await
            .expect("consent");
    }
    // Old rows the trait cannot backdate are written directly.
    let pool = sqlx::SqlitePool::connect(&url).await.expect("pool");
    let values: Vec<String> = (0..1100)
        .map(|i| format!("('1', 'f', NULL, '{{}}', {})", t0 + i))
        .collect();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO number_events (phone_number_id, field, event, detail, at) VALUES {};",
        values.join(",")
    )))
    .execute(&pool)
    .await
    .expect("insert");

    let mut c = config();
    for d in [
        &mut c.raw_payloads_days,
        &mut c.inbound_messages_days,
        &mut c.messages_days,
        &mut c.attempts_days,
        &mut c.statuses_days,
        &mut c.calls_days,
        &mut c.contacts_days,
        &mut c.number_events_days,
        &mut c.webhook_deliveries_days,
        &mut c.events_days,
        &mut c.conversations_days,
        &mut c.flow_runs_days,
        &mut c.assistant_memory_days,
    ] {
        *d = 1;
    }
    c.inbound_events_days = 7;
    c.batch_pause_ms = 0;
    let settings = c.settings(0).expect("valid");
    let (_trigger, shutdown) = crate::shutdown::channel();
    let counts = prune_once(store.as_ref(), &settings, t0 + 365 * DAY_MS, &shutdown).await;
    assert_eq!(counts.len(), Kind::ALL.len());
    assert!(counts.contains(&(Kind::NumberEvents, 1100)), "{counts:?}");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM number_events")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(left, 0);
    assert_eq!(
        store
            .consent_records(None, None)
            .await
            .expect("ledger")
            .len(),
        3
    );
}

#[tokio::test]
async fn a_run_stops_between_batches_on_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = crate::store::open(&url).await.expect("open");
    let settings = config().settings(0).expect("valid");
    let (trigger, shutdown) = crate::shutdown::channel();
    trigger.fire();
    let counts = prune_once(store.as_ref(), &settings, 1_000 * DAY_MS, &shutdown).await;
    assert!(counts.iter().all(|(_, n)| *n == 0), "{counts:?}");
}
