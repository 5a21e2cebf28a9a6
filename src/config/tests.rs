use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_build_into_a_demo() {
    let c = Config::load_with_env(None, env(&[])).unwrap();
    let s = c.build().unwrap();
    assert_eq!(s.senders.len(), 1);
    assert!(s.api_base.is_none(), "no api_base means the sandbox");
    assert!(s.demo_secrets);
}

#[test]
fn environment_overrides_nested_and_array_fields_keeping_string_types() {
    let c = Config::load_with_env(
        None,
        env(&[
            ("RINGBACK_SENDERS__0__ACCESS_TOKEN", "12345"),
            ("RINGBACK_MISSED_CALL__RING_TIMEOUT_SECONDS", "15"),
            ("RINGBACK_SANDBOX__ENABLED", "false"),
            ("RINGBACK_WHATSAPP__API_BASE", "https://graph.facebook.com"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&c.senders[0].access_token),
        "12345"
    );
    assert_eq!(c.missed_call.ring_timeout_seconds, 15);
    assert!(!c.sandbox.enabled);
}

#[test]
fn unknown_fields_and_bad_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.toml");
    std::fs::write(&p, "[server]\nlisten_addr = 1\n").unwrap();
    let e = Config::load_with_env(Some(&p), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("listen_addr"), "{e}");

    std::fs::write(&p, "[missed_call.reply]\nbuttons = ['a','b','c','d']\n").unwrap();
    let e = Config::load_with_env(Some(&p), env(&[]))
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most 3"), "{e}");

    std::fs::write(&p, "[server]\nlisten = '0.0.0.0:8080'\n").unwrap();
    let e = Config::load_with_env(Some(&p), env(&[]))
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("api_token"), "{e}");
}

#[test]
fn secrets_are_redacted_in_debug() {
    let c = Config::load_with_env(None, env(&[])).unwrap();
    let dbg = format!("{:?}", c.build().unwrap());
    assert!(!dbg.contains("ringback-demo-app-secret"), "{dbg}");
    assert!(!dbg.contains("ringback-demo-token"), "{dbg}");
}

#[test]
fn business_hours_follow_the_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.toml");
    std::fs::write(
        &p,
        "[missed_call.business_hours]\nenabled = true\ntimezone = 'Asia/Kolkata'\n",
    )
    .unwrap();
    let s = Config::load_with_env(Some(&p), env(&[]))
        .unwrap()
        .build()
        .unwrap();
    let bh = s.business_hours.unwrap();
    // Monday 2026-11-23 05:00 UTC = 10:30 in Kolkata: open.
    let open: jiff::Timestamp = "2026-11-23T05:00:00Z".parse().unwrap();
    assert!(bh.is_open(open.as_millisecond()));
    // Monday 2026-11-23 14:00 UTC = 19:30 in Kolkata: closed.
    let closed: jiff::Timestamp = "2026-11-23T14:00:00Z".parse().unwrap();
    assert!(!bh.is_open(closed.as_millisecond()));
}

#[test]
fn declared_templates_apply_to_every_waba_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.toml");
    std::fs::write(&p, "[[templates]]\nname = 'spring_sale'\ncategory = 'marketing'\nbody = 'Hi {{first_name}}, {{offer}}'\n").unwrap();
    let s = Config::load_with_env(Some(&p), env(&[]))
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(s.templates.len(), 1);
    let t = &s.templates[0];
    assert_eq!(
        (t.name.as_str(), t.category.as_str(), t.waba_id.as_str()),
        ("spring_sale", "MARKETING", "200000000000001")
    );
    assert!(t.is_named());
    assert_eq!(t.body_params(), ["first_name", "offer"]);
    std::fs::write(
        &p,
        "[[templates]]\nname = 'x'\ncategory = 'promo'\nbody = 'b'\n",
    )
    .unwrap();
    let e = Config::load_with_env(Some(&p), env(&[]))
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("templates[0].category"), "{e}");
}
