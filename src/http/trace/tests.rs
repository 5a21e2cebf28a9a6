use super::*;

#[test]
fn parameters_named_like_secrets_are_redacted() {
    assert_eq!(
        redact_query("hub.mode=subscribe&hub.verify_token=s3cr3t&hub.challenge=42"),
        "hub.mode=subscribe&hub.verify_token=REDACTED&hub.challenge=42"
    );
    for name in [
        "token",
        "access_token",
        "api_key",
        "Secret",
        "password",
        "signature",
        "X-Auth",
    ] {
        let out = redact_query(&format!("{name}=s3cr3t&limit=5"));
        assert_eq!(out, format!("{name}=REDACTED&limit=5"), "{name}");
    }
}

#[test]
fn a_secret_is_redacted_however_it_is_encoded() {
    // Percent-encoded name and value: the name is decoded before it is checked.
    let out = redact_query("hub%2Everify%5Ftoken=s%33cret&x");
    assert!(
        !out.contains("s%33cret") && !out.contains("s3cret"),
        "{out}"
    );
    assert!(out.contains("hub.verify_token=REDACTED"), "{out}");
}

#[test]
fn ordinary_parameters_are_kept() {
    assert_eq!(redact_query("limit=20&state=sent"), "limit=20&state=sent");
    assert_eq!(redact_query(""), "");
}
