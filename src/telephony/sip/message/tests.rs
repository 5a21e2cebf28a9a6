use super::*;

const INVITE: &str = "INVITE sip:5550100@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1;rport\r\n\
From: \"Test Caller\" <sip:+14155550123@10.0.0.1>;tag=abc\r\n\
To: <sip:5550100@127.0.0.1>\r\n\
Call-ID: call-1@10.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\r\n";

#[test]
fn parses_a_request_and_stops_at_content_length() {
    let m = parse(INVITE.as_bytes()).unwrap();
    assert_eq!(m.method(), Some("INVITE"));
    assert_eq!(m.uri(), Some("sip:5550100@127.0.0.1:5060"));
    assert_eq!(m.header("call-id"), Some("call-1@10.0.0.1"));
    assert_eq!(m.body, b"v=0\r");
    let via = Via::parse(m.vias()[0]).unwrap();
    assert_eq!(via.transport, "UDP");
    assert_eq!(via.sent_by, "10.0.0.1:5070");
    assert_eq!(via.branch(), Some("z9hG4bK-1"));
}

#[test]
fn compact_names_become_full_names() {
    let raw = "INVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h:1;branch=z9hG4bKx\r\nf: <sip:1@h>;tag=1\r\n\
t: <sip:2@h>\r\ni: cid\r\nm: <sip:1@h>\r\nl: 0\r\n\r\n";
    let m = parse(raw.as_bytes()).unwrap();
    for name in ["Via", "From", "To", "Call-ID", "Contact", "Content-Length"] {
        assert!(m.header(name).is_some(), "{name}");
    }
}

#[test]
fn folded_header_lines_are_joined() {
    let raw = "OPTIONS sip:a@b SIP/2.0\r\nSubject: I know you're there,\r\n  pick up the phone\r\n\tand talk to me!\r\nl: 0\r\n\r\n";
    let m = parse(raw.as_bytes()).unwrap();
    assert_eq!(
        m.header("Subject"),
        Some("I know you're there, pick up the phone and talk to me!")
    );
}

#[test]
fn via_values_come_in_order_from_one_header_or_several() {
    let raw = "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP p1:5060;branch=z9hG4bK1, SIP / 2.0 / TCP p2;branch=z9hG4bK2\r\n\
v: SIP/2.0/UDP p3;branch=z9hG4bK3\r\nl: 0\r\n\r\n";
    let m = parse(raw.as_bytes()).unwrap();
    let vias = m.vias();
    assert_eq!(vias.len(), 3);
    let parsed: Vec<_> = vias.iter().map(|v| Via::parse(v).unwrap()).collect();
    assert_eq!(parsed[0].sent_by, "p1:5060");
    assert_eq!(parsed[1].transport, "TCP");
    assert_eq!(parsed[1].sent_by, "p2");
    assert_eq!(parsed[2].branch(), Some("z9hG4bK3"));
    // A response copies them in the same order, as separate or joined headers.
    let r = response(&m.headers, 100, "Trying", None, &[]);
    let again = parse(&r.encode()).unwrap();
    assert_eq!(again.vias(), vias);
}

#[test]
fn content_length_is_checked() {
    let short = INVITE.replace("Content-Length: 4", "Content-Length: 400");
    assert!(matches!(
        parse(short.as_bytes()),
        Err(ParseError::ShortBody { declared: 400, .. })
    ));
    let bad = INVITE.replace("Content-Length: 4", "Content-Length: four");
    assert!(matches!(
        parse(bad.as_bytes()),
        Err(ParseError::BadContentLength(_))
    ));
    // Over UDP it may be missing: the body is the rest of the datagram.
    let missing = INVITE.replace("Content-Length: 4\r\n", "");
    assert_eq!(parse(missing.as_bytes()).unwrap().body, b"v=0\r\n");
    // On a stream it is mandatory.
    assert_eq!(
        parse_stream(missing.as_bytes()),
        Err(ParseError::MissingContentLength)
    );
}

#[test]
fn stream_framing_waits_for_whole_messages_and_skips_keepalives() {
    let two = format!("\r\n\r\n{INVITE}{INVITE}");
    let bytes = two.as_bytes();
    let (m, used) = parse_stream(bytes).unwrap().unwrap();
    assert_eq!(m.body, b"v=0\r");
    let rest = &bytes[used..];
    assert!(rest.starts_with(b"\nINVITE"));
    // The LF left over from the first body is skipped like a keep-alive.
    let (_, used2) = parse_stream(rest).unwrap().unwrap();
    assert_eq!(used2, rest.len() - 1);
    for cut in [0, 10, INVITE.len() - 3] {
        assert_eq!(parse_stream(&INVITE.as_bytes()[..cut]), Ok(None), "{cut}");
    }
    let huge = vec![b'a'; MAX_MESSAGE_BYTES + 1];
    assert_eq!(parse_stream(&huge), Err(ParseError::TooLarge));
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for raw in [
        &b""[..],
        b"\r\n\r\n",
        b"hello",
        b"hello\r\n\r\n",
        b"INVITE sip:a@b SIP/3.0\r\n\r\n",
        b"INVITE nouri SIP/2.0\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\n folded first\r\n\r\n",
        b"SIP/2.0 99 Too Low\r\n\r\n",
        b"\xff\xfe\r\n\r\n",
    ] {
        assert!(parse(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn bare_lf_line_ends_are_accepted() {
    let raw = INVITE.replace("\r\n", "\n");
    let m = parse(raw.as_bytes()).unwrap();
    assert_eq!(m.header("CSeq"), Some("1 INVITE"));
}

#[test]
fn responses_parse() {
    let m = parse(b"SIP/2.0 180 Ringing\r\nl: 0\r\n\r\n").unwrap();
    assert_eq!(
        m.start,
        StartLine::Response {
            code: 180,
            reason: "Ringing".into()
        }
    );
    assert_eq!(m.method(), None);
}

#[test]
fn response_adds_the_to_tag_once_and_copies_the_dialog_headers() {
    let m = parse(INVITE.as_bytes()).unwrap();
    let r = response(
        &m.headers,
        180,
        "Ringing",
        Some("t1"),
        &[("Allow", "INVITE")],
    );
    let text = String::from_utf8(r.encode()).unwrap();
    assert!(text.starts_with("SIP/2.0 180 Ringing\r\n"), "{text}");
    assert!(
        text.contains("To: <sip:5550100@127.0.0.1>;tag=t1\r\n"),
        "{text}"
    );
    assert!(text.contains("From: \"Test Caller\" <sip:+14155550123@10.0.0.1>;tag=abc\r\n"));
    assert!(text.contains("CSeq: 1 INVITE\r\nAllow: INVITE\r\nContent-Length: 0\r\n\r\n"));
    assert!(!text.contains("Max-Forwards"));
    // A To that already has a tag keeps it.
    let tagged = response(&r.headers, 487, "Request Terminated", Some("t2"), &[]);
    assert_eq!(
        NameAddr::parse(tagged.header("To").unwrap()).tag(),
        Some("t1")
    );
}

#[test]
fn name_addr_forms() {
    let a = NameAddr::parse("\"Doe, \\\"J\\\"\" <sip:+1415@h;user=phone>;tag=9");
    assert_eq!(a.display.as_deref(), Some("Doe, \"J\""));
    assert_eq!(a.uri, "sip:+1415@h;user=phone");
    assert_eq!(a.tag(), Some("9"));
    let b = NameAddr::parse("sip:bob@h;tag=x");
    assert_eq!((b.uri, b.tag()), ("sip:bob@h", Some("x")));
    let c = NameAddr::parse("Bob <tel:+1-415>");
    assert_eq!((c.display.as_deref(), c.uri), (Some("Bob"), "tel:+1-415"));
    assert_eq!(split_list("<sip:a,b@h>, \"x,y\" <tel:1>").count(), 2);
}

#[test]
fn salvage_reads_the_headers_of_a_broken_request() {
    let broken = "INVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h:1;branch=z9hG4bKq\r\nbad line\r\nCSeq: x\r\n\r\n";
    let h = salvage(broken.as_bytes()).unwrap();
    assert_eq!(h.len(), 2);
    assert!(salvage(b"garbage\r\n\r\n").is_none());
    assert!(salvage(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n").is_none());
}

#[test]
fn cseq_values() {
    assert_eq!(cseq("1 INVITE"), Some((1, "INVITE")));
    assert_eq!(cseq("  42   CANCEL "), Some((42, "CANCEL")));
    assert_eq!(cseq("x INVITE"), None);
    assert_eq!(cseq("1"), None);
    assert_eq!(cseq("1 INVITE extra"), None);
}

#[test]
fn a_huge_content_length_on_a_stream_is_too_large_not_an_overflow() {
    let msg = b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1\r\nContent-Length: 18446744073709551615\r\n\r\n";
    assert!(matches!(parse_stream(msg), Err(ParseError::TooLarge)));
}
