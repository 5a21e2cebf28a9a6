use super::*;

fn sip() -> SipConfig {
    SipConfig {
        enabled: true,
        listen_udp: "127.0.0.1:5060".into(),
        listen_tcp: String::new(),
        ring_seconds: 20,
        final_response: 480,
        number: String::new(),
        trusted_peers: Vec::new(),
        accept_from: Vec::new(),
        accept_any: false,
        tcp_idle_seconds: 120,
    }
}

#[test]
fn defaults_are_valid() {
    let s = sip().validate().unwrap();
    assert_eq!(s.udp, Some("127.0.0.1:5060".parse().unwrap()));
    assert_eq!(s.tcp, None);
    assert_eq!(s.final_code, 480);
}

#[test]
fn a_2xx_final_response_is_refused_with_the_reason() {
    let e = SipConfig {
        final_response: 200,
        ..sip()
    }
    .validate()
    .unwrap_err();
    assert!(
        e.contains("sip.final_response = 200") && e.contains("never answers"),
        "{e}"
    );
}

#[test]
fn bad_fields_name_themselves() {
    let cases = [
        (
            SipConfig {
                listen_udp: "nope".into(),
                ..sip()
            },
            "sip.listen_udp",
        ),
        (
            SipConfig {
                listen_udp: String::new(),
                ..sip()
            },
            "at least one",
        ),
        (
            SipConfig {
                ring_seconds: 0,
                ..sip()
            },
            "sip.ring_seconds",
        ),
        (
            SipConfig {
                ring_seconds: 999,
                ..sip()
            },
            "sip.ring_seconds",
        ),
        (
            SipConfig {
                number: "5550100".into(),
                ..sip()
            },
            "sip.number",
        ),
        (
            SipConfig {
                trusted_peers: vec!["10.0.0.1:5060".into()],
                ..sip()
            },
            "sip.trusted_peers",
        ),
    ];
    for (c, field) in cases {
        let e = c.validate().unwrap_err();
        assert!(e.contains(field), "{e}");
    }
}

#[test]
fn number_and_peers_are_parsed() {
    let s = SipConfig {
        number: "+1 555 010 0001".into(),
        trusted_peers: vec!["203.0.113.10".into(), "::1".into()],
        ..sip()
    }
    .validate()
    .unwrap();
    assert_eq!(s.number.as_deref(), Some("+15550100001"));
    assert_eq!(s.trusted_peers.len(), 2);
}

#[test]
fn an_exposed_listener_needs_accept_from_or_accept_any() {
    for (udp, tcp) in [("0.0.0.0:5060", ""), ("127.0.0.1:5060", "192.0.2.4:5060")] {
        let exposed = SipConfig {
            listen_udp: udp.into(),
            listen_tcp: tcp.into(),
            ..sip()
        };
        let e = exposed.validate().unwrap_err();
        assert!(
            e.contains("sip.accept_from is empty")
                && e.contains("RINGBACK_SIP__ACCEPT_FROM")
                && e.contains("sip.accept_any = true"),
            "{e}"
        );
        let listed = SipConfig {
            accept_from: vec!["203.0.113.10".into()],
            ..exposed.clone()
        };
        assert_eq!(listed.validate().unwrap().accept_from.len(), 1);
        let any = SipConfig {
            accept_any: true,
            ..exposed.clone()
        };
        assert!(any.validate().unwrap().accept_any);
        // A disabled [sip] exposes nothing.
        let off = SipConfig {
            enabled: false,
            ..exposed
        };
        off.validate().unwrap();
    }
    // Loopback only: the default, allowed with an empty list.
    sip().validate().unwrap();
    let both = SipConfig {
        accept_any: true,
        accept_from: vec!["203.0.113.10".into()],
        ..sip()
    };
    assert!(both.validate().unwrap_err().contains("sip.accept_any"));
    let idle = SipConfig {
        tcp_idle_seconds: 0,
        ..sip()
    };
    assert!(
        idle.validate()
            .unwrap_err()
            .contains("sip.tcp_idle_seconds")
    );
}

#[test]
fn the_spool_lives_next_to_the_database_unless_configured() {
    assert_eq!(
        spool_path("sqlite://data/ringback.db", ""),
        PathBuf::from("data/ringback.db.call-spool")
    );
    assert_eq!(
        spool_path("sqlite:/var/lib/rb.db?mode=rwc", ""),
        PathBuf::from("/var/lib/rb.db.call-spool")
    );
    assert_eq!(
        spool_path("sqlite::memory:", ""),
        PathBuf::from(SPOOL_FALLBACK)
    );
    assert_eq!(
        spool_path("sqlite://x.db", " /srv/calls.spool "),
        PathBuf::from("/srv/calls.spool")
    );
}

#[test]
fn pbx_addresses_need_a_host_and_port_and_say_if_they_are_loopback() {
    assert_eq!(check_address("a", "127.0.0.1:5038"), Ok(true));
    assert_eq!(check_address("a", "localhost:8021"), Ok(true));
    assert_eq!(check_address("a", "[::1]:8021"), Ok(true));
    assert_eq!(check_address("a", "pbx.example.com:5038"), Ok(false));
    assert_eq!(check_address("a", "10.0.0.5:5038"), Ok(false));
    assert!(check_address("a", "10.0.0.5").is_err());
    assert!(check_address("a", "10.0.0.5:http").is_err());
    assert!(check_address("a", ":5038").is_err());
}
