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

#[test]
fn demo_secrets_on_an_exposed_server_refuse_to_start_naming_each_variable() {
    let c = Config::load_with_env(
        None,
        env(&[
            ("RINGBACK_SERVER__LISTEN", "0.0.0.0:8080"),
            ("RINGBACK_SERVER__API_TOKEN", "a-real-api-token"),
            ("RINGBACK_WHATSAPP__APP_SECRET", "a-real-app-secret"),
        ]),
    )
    .unwrap();
    let e = c.build().unwrap_err().to_string();
    assert!(e.contains("server.listen = 0.0.0.0:8080"), "{e}");
    for named in [
        "whatsapp.verify_token",
        "RINGBACK_WHATSAPP__VERIFY_TOKEN",
        "calls.secret",
        "RINGBACK_CALLS__SECRET",
        "senders[0].access_token",
        "RINGBACK_SENDERS__0__ACCESS_TOKEN",
    ] {
        assert!(e.contains(named), "{named} missing from: {e}");
    }
    assert!(
        !e.contains("APP_SECRET"),
        "the app secret is real, so it is not named: {e}"
    );
}

#[test]
fn an_exposed_server_with_every_secret_set_starts() {
    let c = Config::load_with_env(
        None,
        env(&[
            ("RINGBACK_SERVER__LISTEN", "0.0.0.0:8080"),
            ("RINGBACK_SERVER__API_TOKEN", "a-real-api-token"),
            ("RINGBACK_WHATSAPP__APP_SECRET", "a-real-app-secret"),
            ("RINGBACK_WHATSAPP__VERIFY_TOKEN", "a-real-verify-token"),
            ("RINGBACK_CALLS__SECRET", "a-real-calls-secret"),
            ("RINGBACK_SENDERS__0__ACCESS_TOKEN", "a-real-access-token"),
            ("RINGBACK_CONSOLE__SECURE_COOKIES", "true"),
        ]),
    )
    .unwrap();
    let s = c.build().unwrap();
    assert!(!s.demo_secrets);
    assert!(s.console.secure_cookies);
}

#[test]
fn an_exposed_console_without_https_cookies_refuses_to_start_saying_what_to_set() {
    let exposed = [
        ("RINGBACK_SERVER__LISTEN", "0.0.0.0:8080"),
        ("RINGBACK_SERVER__API_TOKEN", "a-real-api-token"),
        ("RINGBACK_WHATSAPP__APP_SECRET", "a-real-app-secret"),
        ("RINGBACK_WHATSAPP__VERIFY_TOKEN", "a-real-verify-token"),
        ("RINGBACK_CALLS__SECRET", "a-real-calls-secret"),
        ("RINGBACK_SENDERS__0__ACCESS_TOKEN", "a-real-access-token"),
    ];
    let e = Config::load_with_env(None, env(&exposed))
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("server.listen = 0.0.0.0:8080"), "{e}");
    assert!(
        e.contains("RINGBACK_CONSOLE__SECURE_COOKIES=true")
            && e.contains("RINGBACK_CONSOLE__ENABLED=false"),
        "{e}"
    );
    // Without the console there is nothing to protect.
    let mut off = exposed.to_vec();
    off.push(("RINGBACK_CONSOLE__ENABLED", "false"));
    let built = Config::load_with_env(None, env(&off)).unwrap().build();
    assert!(built.is_ok(), "{:?}", built.err());
    // On loopback (the demo) the cookie may travel over plain HTTP.
    let s = Config::load_with_env(None, env(&[]))
        .unwrap()
        .build()
        .unwrap();
    assert!(s.console.enabled && !s.console.secure_cookies);
}

#[test]
fn a_session_lifetime_out_of_range_is_refused() {
    let e = Config::load_with_env(None, env(&[("RINGBACK_CONSOLE__SESSION_HOURS", "0")]))
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("console.session_hours = 0") && e.contains("1 to 720"),
        "{e}"
    );
}

#[test]
fn an_exposed_sandbox_counts_only_when_it_runs() {
    let exposed_sandbox = [("RINGBACK_SANDBOX__LISTEN", "0.0.0.0:8090")];
    let e = Config::load_with_env(None, env(&exposed_sandbox))
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("sandbox.listen = 0.0.0.0:8090"), "{e}");
    assert!(e.contains("RINGBACK_SENDERS__0__ACCESS_TOKEN"), "{e}");

    // With a real Cloud API endpoint the sandbox is not started, so its address exposes
    // nothing.
    let mut real_api = exposed_sandbox.to_vec();
    real_api.push(("RINGBACK_WHATSAPP__API_BASE", "https://graph.facebook.com"));
    let built = Config::load_with_env(None, env(&real_api)).unwrap().build();
    assert!(built.is_ok(), "{:?}", built.err());
}

#[test]
fn slow_client_limits_are_read_and_must_be_positive() {
    let s = Config::load_with_env(None, env(&[]))
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        s.http_timeouts,
        http::Timeouts::default(),
        "the defaults in config.default.toml and Timeouts::default agree"
    );
    let s = Config::load_with_env(
        None,
        env(&[
            ("RINGBACK_SERVER__HEADER_READ_TIMEOUT_SECONDS", "3"),
            ("RINGBACK_SERVER__IDLE_TIMEOUT_SECONDS", "30"),
        ]),
    )
    .unwrap()
    .build()
    .unwrap();
    assert_eq!(
        s.http_timeouts.header_read,
        std::time::Duration::from_secs(3)
    );
    assert_eq!(s.http_timeouts.idle, std::time::Duration::from_secs(30));
    let e = Config::load_with_env(None, env(&[("RINGBACK_SERVER__IDLE_TIMEOUT_SECONDS", "0")]))
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("server.idle_timeout_seconds = 0"), "{e}");
    let e = Config::load_with_env(
        None,
        env(&[(
            "RINGBACK_SERVER__HEADER_READ_TIMEOUT_SECONDS",
            "9223372036854775807",
        )]),
    )
    .unwrap()
    .build()
    .unwrap_err()
    .to_string();
    assert!(e.contains("between 1 and 86400"), "{e}");
}
