use super::*;

fn config() -> RetentionConfig {
    crate::config::Config::load_with_env(None, Vec::new())
        .expect("defaults load")
        .retention
}

#[test]
fn events_kept_less_than_metas_redelivery_period_are_refused() {
    let mut c = config();
    c.inbound_events_days = 3;
    let err = c
        .settings(0)
        .expect_err("3 days is shorter than redelivery");
    assert!(err.contains("retention.inbound_events_days"), "{err}");
    assert!(err.contains("at least 7"), "{err}");
    c.inbound_events_days = 0;
    assert!(c.settings(0).is_ok());
}
