use super::*;
use crate::telephony::sip::message::parse;

fn invite(extra: &str) -> Message {
    let raw = format!(
        "INVITE sip:5550100@us SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n{extra}Call-ID: c\r\nCSeq: 1 INVITE\r\nTo: <sip:5550100@us>\r\nContent-Length: 0\r\n\r\n"
    );
    parse(raw.as_bytes()).unwrap()
}

#[test]
fn from_user_and_display_name() {
    let c = identify(
        &invite("From: \"Asha Rao\" <sip:+14155550123@pbx;user=phone>;tag=1\r\n"),
        true,
    );
    assert_eq!(c.number, "+14155550123");
    assert_eq!(c.name.as_deref(), Some("Asha Rao"));
    assert!(!c.withheld);
}

#[test]
fn trusted_pai_wins_over_from_and_untrusted_pai_is_ignored() {
    let m = invite(
        "From: \"Front Desk\" <sip:200@pbx>;tag=1\r\nP-Asserted-Identity: <sip:+442079460000@carrier;user=phone>, <tel:+44-20-7946-0001>\r\n",
    );
    let trusted = identify(&m, true);
    assert_eq!(trusted.number, "+44-20-7946-0001", "tel: preferred");
    assert_eq!(trusted.name.as_deref(), Some("Front Desk"));
    let untrusted = identify(&m, false);
    assert_eq!(untrusted.number, "200");
}

#[test]
fn remote_party_id_is_used_before_from() {
    let m = invite(
        "From: <sip:100@pbx>;tag=1\r\nRemote-Party-ID: \"Called\" <sip:999@x>;party=called, \"Ravi\" <sip:+919876543210@gw>;party=calling;screen=yes;privacy=off\r\n",
    );
    let c = identify(&m, true);
    assert_eq!(
        (c.number.as_str(), c.name.as_deref()),
        ("+919876543210", Some("Ravi"))
    );
}

#[test]
fn untrusted_remote_party_id_is_ignored_but_its_privacy_is_honoured() {
    // Anyone can write RPID: from an untrusted peer it must not pick who gets messaged.
    let m = invite(
        "From: <sip:100@pbx>;tag=1\r\nRemote-Party-ID: \"Ravi\" <sip:+919876543210@gw>;party=calling\r\n",
    );
    let c = identify(&m, false);
    assert_eq!((c.number.as_str(), c.name), ("100", None));
    let hidden = invite(
        "From: <sip:+14155550123@c>;tag=1\r\nRemote-Party-ID: <sip:+14155550123@c>;privacy=full\r\n",
    );
    assert!(identify(&hidden, false).withheld);
}

#[test]
fn privacy_withholds_even_an_asserted_identity() {
    for extra in [
        "From: <sip:anonymous@anonymous.invalid>;tag=1\r\nP-Asserted-Identity: <sip:+14155550123@c>\r\nPrivacy: id\r\n",
        "From: <sip:+14155550123@c>;tag=1\r\nPrivacy: user; id\r\n",
        "From: <sip:+14155550123@c>;tag=1\r\nPrivacy: header\r\n",
        "From: \"x\" <sip:+14155550123@c>;tag=1\r\nRemote-Party-ID: <sip:+14155550123@c>;privacy=full\r\n",
        "From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1\r\n",
        "From: <sip:someone@anonymous.invalid>;tag=1\r\n",
        "From: <sip:c.example>;tag=1\r\nP-Asserted-Identity: <sip:anonymous@x>\r\n",
    ] {
        let c = identify(&invite(extra), true);
        assert_eq!(c.number, WITHHELD, "{extra}");
        assert!(c.withheld && c.name.is_none(), "{extra}");
    }
    let none = identify(
        &invite("From: <sip:+14155550123@c>;tag=1\r\nPrivacy: none\r\n"),
        true,
    );
    assert_eq!(none.number, "+14155550123");
}

#[test]
fn rpid_privacy_name_hides_only_the_name() {
    let m = invite(
        "From: \"Hidden\" <sip:+14155550123@c>;tag=1\r\nRemote-Party-ID: \"Hidden\" <sip:+14155550123@c>;privacy=name\r\n",
    );
    let c = identify(&m, true);
    assert_eq!((c.number.as_str(), c.name), ("+14155550123", None));
}

#[test]
fn uri_syntax_is_stripped() {
    for (uri, want) in [
        ("sip:+14155550123@h;user=phone", "+14155550123"),
        ("sips:0207946000@h:5061", "0207946000"),
        ("tel:+1-415-555-0123", "+1-415-555-0123"),
        ("tel:5550123;phone-context=+1415", "5550123"),
        ("sip:5550123;phone-context=+1415@h;user=phone", "5550123"),
        ("sip:%2B14155550123@h", "+14155550123"),
        ("sip:alice:secret@h", "alice"),
        ("TEL:+44", "+44"),
        ("sip:h", "h"),
        ("%", "%"),
        ("", ""),
    ] {
        assert_eq!(uri_number(uri), want, "{uri}");
    }
}

#[test]
fn missing_from_is_withheld() {
    let c = identify(&invite(""), true);
    assert!(c.withheld);
}
