//! A PBX call that ends while the store is failing is spooled, then stored when the store
//! answers again: the PBX never sends the event twice, so nothing else could recover it.

use super::*;
use crate::sip::spool::{break_store, mend_store, spooled};

#[tokio::test]
async fn asterisk_calls_are_spooled_while_the_store_fails() {
    let peer = peers::asterisk("s3cret", vec![keep_open(fixture("asterisk/noanswer.ami"))]).await;
    let dir = tempfile::tempdir().unwrap();
    // The store exists and is failing before Ringback connects to the PBX.
    let url = store_url(dir.path()).await;
    ringback::store::open(&url).await.expect("the store opens");
    let db = Db::open(&url).await;
    break_store(&db).await;
    let mut env = base_env();
    env.extend(store_env(dir.path()).await);
    for (k, v) in [
        ("RINGBACK_ASTERISK__ENABLED", "true"),
        ("RINGBACK_ASTERISK__ADDRESS", peer.addr.as_str()),
        ("RINGBACK_ASTERISK__SECRET", "s3cret"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
    let settings = ringback::config::Config::load_with_env(None, env)
        .unwrap()
        .build()
        .unwrap();
    let app = start(settings, dir).await;
    eventually(|| async { (spooled(&app.settings) == 1).then_some(()) }).await;
    assert!(app.calls().await.is_empty());
    mend_store(&db).await;
    let call = app.decided_call("1763900000.101").await;
    assert_eq!(call["decision"], "replied", "{call}");
    eventually(|| async { (spooled(&app.settings) == 0).then_some(()) }).await;
    assert_sent_to(&app, &["14155550101"]).await;
}
