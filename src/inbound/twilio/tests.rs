use super::*;

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn documented_vector_verifies_with_and_without_port() {
    let src = TwilioSource::new("12345".to_string().into(), None, 20);
    let p = params(&[
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]);
    let sig = Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    assert!(
        src.verify(sig, None, "https://mycompany.com/myapp.php?foo=1&bar=2", &p)
            .is_ok()
    );
    assert!(
        src.verify(
            sig,
            None,
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &p
        )
        .is_ok()
    );
    assert!(
        src.verify(sig, None, "https://mycompany.com/other.php?foo=1&bar=2", &p)
            .is_err()
    );
    assert!(
        src.verify(
            None,
            None,
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &p
        )
        .is_err()
    );
}

/// Twilio's signature, computed here from its definition: base64(HMAC-SHA1(token, url +
/// sorted name+value pairs)).
fn twilio_signature(token: &str, url: &str, pairs: &[(&str, &str)]) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let mut sorted = pairs.to_vec();
    sorted.sort();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn any_port_is_accepted_as_twilio_python_does() {
    let src = TwilioSource::new("tok".to_string().into(), None, 20);
    let pairs = [("CallSid", "CA1"), ("From", "+14155552671")];
    let p = params(&pairs);
    let signed_without_port = twilio_signature(
        "tok",
        "https://rb.example/webhooks/twilio/voice?x=1",
        &pairs,
    );
    // The same value printed by twilio-python's RequestValidator.compute_signature, which
    // also validates it at https://rb.example:8443/webhooks/twilio/voice?x=1.
    assert_eq!(signed_without_port, "uS95c4uRObBmLUWFyNiFwUxh9J8=");
    for url in [
        "https://rb.example:8443/webhooks/twilio/voice?x=1",
        "https://rb.example:443/webhooks/twilio/voice?x=1",
        "https://rb.example/webhooks/twilio/voice?x=1",
    ] {
        src.verify(Some(&signed_without_port), None, url, &p)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // A signature over the URL with its non-default port is accepted too (add_port keeps it).
    let signed_with_port =
        twilio_signature("tok", "http://10.0.0.5:8080/webhooks/twilio/voice", &pairs);
    src.verify(
        Some(&signed_with_port),
        None,
        "http://10.0.0.5:8080/webhooks/twilio/voice",
        &p,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The scheme's default port is added to a URL without one: http gets :80.
    let signed_default =
        twilio_signature("tok", "http://rb.example:80/webhooks/twilio/voice", &pairs);
    src.verify(
        Some(&signed_default),
        None,
        "http://rb.example/webhooks/twilio/voice",
        &p,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The host and path still count.
    for url in [
        "https://other.example:8443/webhooks/twilio/voice?x=1",
        "https://rb.example:8443/webhooks/twilio/dial-status?x=1",
    ] {
        assert!(matches!(
            src.verify(Some(&signed_without_port), None, url, &p),
            Err(Rejected::BadSignature(signature::SignatureError::Mismatch(
                _
            )))
        ));
    }
}

#[test]
fn url_variants_match_remove_port_and_add_port() {
    assert_eq!(
        url_variants("https://h.example:8443/a?b=1"),
        ["https://h.example/a?b=1", "https://h.example:8443/a?b=1"]
    );
    assert_eq!(
        url_variants("HTTP://h.example/a"),
        ["http://h.example/a", "http://h.example:80/a"]
    );
    // Expected values printed by twilio-python's own remove_port/add_port. Port 0 is no
    // port there (`if uri.port:` is false), and only the text before the netloc's first
    // colon survives remove_port (an IPv6 literal or user:password@ included).
    assert_eq!(
        url_variants("https://h.example:0/a"),
        ["https://h.example:0/a", "https://h.example:0:443/a"]
    );
    assert_eq!(
        url_variants("https://u:p@h:99/x"),
        ["https://u/x", "https://u:p@h:99/x"]
    );
    assert_eq!(
        url_variants("https://[::1]:8443/a"),
        ["https://[/a", "https://[::1]:8443/a"]
    );
    assert_eq!(python_port("h:x"), Err(()));
    assert_eq!(python_port("u:p@h:99"), Ok(Some(99)));
}

#[test]
fn repeated_identical_pairs_are_signed_once() {
    let p = params(&[("b", "2"), ("a", "1"), ("b", "2"), ("b", "1")]);
    assert_eq!(signed_params(&p), "a1b1b2");
}

#[test]
fn shared_key_signing_is_refused_with_the_reason() {
    let src = TwilioSource::new("tok".to_string().into(), None, 20);
    let pairs = [("CallSid", "CA1")];
    let url = "https://rb.example/webhooks/twilio/voice";
    let sig = twilio_signature("tok", url, &pairs);
    let r = src.verify(
        Some(&sig),
        Some("key=KS1,algorithm=HMAC_SHA256"),
        url,
        &params(&pairs),
    );
    let Err(Rejected::BadSignature(e)) = r else {
        panic!("accepted: {r:?}")
    };
    assert!(e.to_string().contains("does not support"), "{e}");
}

#[test]
fn dial_status_maps_to_outcomes() {
    let src = TwilioSource::new("t".to_string().into(), None, 20);
    for (status, outcome) in [
        ("no-answer", CallOutcome::NoAnswer),
        ("busy", CallOutcome::Busy),
        ("canceled", CallOutcome::Canceled),
        ("failed", CallOutcome::Failed),
        ("completed", CallOutcome::Answered),
    ] {
        let p = params(&[
            ("CallSid", "CA1"),
            ("From", "+14155552671"),
            ("DialCallStatus", status),
        ]);
        let e = src.parse_dial_status(&p, 0).unwrap();
        assert_eq!(e.dedup_key, "twilio:call:CA1");
        let InboundEvent::Call(c) = e.event else {
            panic!()
        };
        assert_eq!(c.outcome, outcome);
    }
    let p = params(&[("CallSid", "CA1"), ("DialCallStatus", "exploded")]);
    assert!(matches!(
        src.parse_dial_status(&p, 0),
        Err(Rejected::Malformed(m)) if m.contains("DialCallStatus 'exploded' is not one of")
    ));
    assert!(matches!(
        src.parse_dial_status(&params(&[("From", "x")]), 0),
        Err(Rejected::Malformed(m)) if m.contains("CallSid is missing")
    ));
}

#[test]
fn twiml_forwards_or_rejects() {
    let fwd = TwilioSource::new(
        "t".to_string().into(),
        Some(PhoneE164::parse_international("+14155552671").unwrap()),
        15,
    );
    let xml = fwd.voice_twiml("https://rb.example/webhooks/twilio/dial-status?a=1&b=2");
    assert!(xml.contains("<Dial timeout=\"15\" action=\"https://rb.example/webhooks/twilio/dial-status?a=1&amp;b=2\""), "{xml}");
    assert!(xml.contains("<Number>+14155552671</Number>"));
    let rej = TwilioSource::new("t".to_string().into(), None, 15);
    assert!(rej.voice_twiml("x").contains("<Reject reason=\"busy\"/>"));
}
