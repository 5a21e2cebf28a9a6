//! A SIP call that ends while the store is failing is spooled to disk (fsynced) and stored
//! when the store answers again, or at the next start. The store is made to fail for
//! real: a trigger in the database aborts every telephony ingest, as a failing disk
//! would, and dropping it mends the store.

use super::*;

/// Makes every telephony ingest into the store at `db` fail, until [`mend_store`].
pub(crate) async fn break_store(db: &Db) {
    let statements: &[&str] = match db {
        Db::Sqlite(_) => &["CREATE TRIGGER fail_calls BEFORE INSERT ON raw_payloads \
             WHEN NEW.source IN ('sip', 'asterisk', 'freeswitch') BEGIN \
             SELECT RAISE(ABORT, 'store unavailable (test)'); END"],
        Db::Postgres(_) => &[
            "CREATE FUNCTION fail_calls() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'store unavailable (test)'; END $$",
            "CREATE TRIGGER fail_calls BEFORE INSERT ON raw_payloads FOR EACH ROW \
             WHEN (NEW.source IN ('sip', 'asterisk', 'freeswitch')) EXECUTE FUNCTION fail_calls()",
        ],
    };
    for sql in statements {
        on_db!(db, pool => {
            sqlx::query(*sql).execute(pool).await.unwrap();
        });
    }
}

pub(crate) async fn mend_store(db: &Db) {
    let statements: &[&str] = match db {
        Db::Sqlite(_) => &["DROP TRIGGER fail_calls"],
        Db::Postgres(_) => &[
            "DROP TRIGGER fail_calls ON raw_payloads",
            "DROP FUNCTION fail_calls()",
        ],
    };
    for sql in statements {
        on_db!(db, pool => {
            sqlx::query(*sql).execute(pool).await.unwrap();
        });
    }
}

/// Calls waiting in the spool (both the append file and one being replayed).
pub(crate) fn spooled(settings: &ringback::config::Settings) -> usize {
    let mut replaying = settings.call_spool.as_os_str().to_owned();
    replaying.push(".replaying");
    [settings.call_spool.clone(), replaying.into()]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.lines().count())
        .sum()
}

/// A call from `call_id` that the caller gives up on: INVITE, then CANCEL, answered 487.
async fn canceled_call(app: &TestApp, call_id: &str) {
    let c = RawClient::new(udp_addr(app)).await;
    let branch = format!("z9hG4bK-{call_id}");
    c.send(&request("INVITE", c.port(), &branch, call_id)).await;
    assert_eq!(c.code(2000).await, Some(100));
    assert_eq!(c.code(2000).await, Some(180));
    c.send(&request("CANCEL", c.port(), &branch, call_id)).await;
    assert_eq!(c.code(2000).await, Some(200));
    assert_eq!(c.code(2000).await, Some(487));
}

#[tokio::test]
async fn calls_are_spooled_while_the_store_fails_and_stored_when_it_returns() {
    let app = sip_app(&[]).await;
    if backend() == Backend::Sqlite {
        assert_eq!(
            app.settings.call_spool,
            app.dir.path().join("ringback.db.call-spool"),
            "next to the database by default"
        );
    }
    let db = Db::open(&app.settings.store_url).await;
    break_store(&db).await;
    canceled_call(&app, "spooled-1").await;
    canceled_call(&app, "spooled-2").await;
    eventually(|| async { (spooled(&app.settings) == 2).then_some(()) }).await;
    assert!(app.calls().await.is_empty());
    mend_store(&db).await;
    let calls = sip_calls(&app, 2).await;
    let decision = |id: &str| {
        let call = calls.iter().find(|c| c["provider_call_id"] == id);
        call.map(|c| c["decision"].as_str().unwrap().to_string())
    };
    // Replayed in the order the calls ended: the same caller's first call gets the reply,
    // the second falls in the cooldown.
    assert_eq!(
        decision("spooled-1").as_deref(),
        Some("replied"),
        "{calls:?}"
    );
    assert_eq!(
        decision("spooled-2").as_deref(),
        Some("collapsed"),
        "{calls:?}"
    );
    eventually(|| async { (spooled(&app.settings) == 0).then_some(()) }).await;
    // Caught up: the next call goes straight to the store.
    canceled_call(&app, "direct-3").await;
    sip_calls(&app, 3).await;
    assert_eq!(spooled(&app.settings), 0);
}

#[tokio::test]
async fn calls_spooled_before_a_restart_are_stored_at_the_next_start() {
    let mut app = sip_app(&[]).await;
    let db = Db::open(&app.settings.store_url).await;
    break_store(&db).await;
    canceled_call(&app, "before-restart").await;
    eventually(|| async { (spooled(&app.settings) == 1).then_some(()) }).await;
    app.stop().await;
    mend_store(&db).await;
    db.close().await;
    let TestApp { settings, dir, .. } = app;
    let app = start(settings, dir).await;
    let calls = sip_calls(&app, 1).await;
    assert_eq!(calls[0]["provider_call_id"], "before-restart", "{calls:?}");
    eventually(|| async { (spooled(&app.settings) == 0).then_some(()) }).await;
}
