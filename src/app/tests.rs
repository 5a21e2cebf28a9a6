use super::*;

fn settings(env: &[(&str, &str)]) -> Settings {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    crate::config::Config::load_with_env(None, env)
        .expect("config loads")
        .build()
        .expect("config builds")
}

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

#[test]
fn the_banner_never_prints_a_configured_calls_secret() {
    // The app secret is still a demo value, which used to be enough to print the real one.
    let s = settings(&[("RINGBACK_CALLS__SECRET", "real-calls-secret-4f1c")]);
    assert!(s.demo_secrets, "other secrets are still demo values");
    let banner = banner_for(&s, addr(), None);
    assert!(!banner.contains("real-calls-secret-4f1c"), "{banner}");
    assert!(banner.contains("-hmac '<calls.secret>'"), "{banner}");
}

#[test]
fn the_banner_shows_the_shipped_demo_calls_secret_so_the_demo_works() {
    let banner = banner_for(&settings(&[]), addr(), None);
    assert!(
        banner.contains("-hmac 'ringback-demo-calls-secret'"),
        "{banner}"
    );
}

#[test]
fn the_banner_offers_the_first_admin_link_only_while_it_is_issued() {
    let s = settings(&[]);
    let with_link = console_banner(&s, addr(), Some("0123abcd"));
    assert!(
        with_link.contains("http://127.0.0.1:8080/setup?token=0123abcd")
            && with_link.contains("works once"),
        "{with_link}"
    );
    let without = console_banner(&s, addr(), None);
    assert!(
        without.contains("http://127.0.0.1:8080/") && without.contains("ringback users create"),
        "{without}"
    );
    assert!(!without.contains("setup?token"));
    let off = settings(&[("RINGBACK_CONSOLE__ENABLED", "false")]);
    assert_eq!(console_banner(&off, addr(), None), "");
}
