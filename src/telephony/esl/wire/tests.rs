use proptest::prelude::*;

use super::*;

const HANDSHAKE: &[u8] =
    b"Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\n";

fn event_bytes(body: &str) -> Vec<u8> {
    format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
        body.len()
    )
    .into_bytes()
}

fn all(d: &mut Decoder) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(m) = d.next_message().expect("valid stream") {
        out.push(m);
    }
    out
}

fn decode_in(chunks: &[&[u8]]) -> Vec<Message> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c);
        out.extend(all(&mut d));
    }
    out
}

fn stream() -> Vec<u8> {
    let mut s = HANDSHAKE.to_vec();
    s.extend(event_bytes(
        "Event-Name: CHANNEL_HANGUP_COMPLETE\nCaller-Caller-ID-Number: %2B14155550123\nCaller-Caller-ID-Name: Asha%20Rao\n\n",
    ));
    s.extend(b"Content-Type: text/disconnect-notice\nContent-Length: 9\n\nBye bye!\n");
    s
}

#[test]
fn handshake_event_and_disconnect() {
    let msgs = decode_in(&[&stream()]);
    let types: Vec<_> = msgs.iter().map(|m| m.content_type().to_string()).collect();
    assert_eq!(
        types,
        [
            "auth/request",
            "command/reply",
            "text/event-plain",
            "text/disconnect-notice"
        ]
    );
    assert_eq!(msgs[1].get("reply-text"), Some("+OK accepted"));
    let ev = parse_event(&msgs[2].body);
    assert_eq!(find(&ev, "Caller-Caller-ID-Number"), Some("+14155550123"));
    assert_eq!(find(&ev, "Caller-Caller-ID-Name"), Some("Asha Rao"));
    assert_eq!(msgs[3].body, b"Bye bye!\n");
    assert!(msgs[2].raw.starts_with(b"Content-Length: "));
}

#[test]
fn any_split_gives_the_same_messages() {
    let s = stream();
    let whole = decode_in(&[&s]);
    for cut in 0..=s.len() {
        let (a, b) = s.split_at(cut);
        assert_eq!(decode_in(&[a, b]), whole, "split at {cut}");
    }
    let bytes: Vec<&[u8]> = s.chunks(1).collect();
    assert_eq!(decode_in(&bytes), whole);
}

#[test]
fn crlf_headers_are_accepted() {
    let msgs = decode_in(&[b"Content-Type: command/reply\r\nReply-Text: -ERR invalid\r\n\r\n"]);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].get("Reply-Text"), Some("-ERR invalid"));
}

#[test]
fn limits_and_bad_lengths_are_errors() {
    let mut d = Decoder::new();
    d.push(format!("Content-Length: {}\n\n", MAX_BODY_BYTES + 1).as_bytes());
    assert_eq!(
        d.next_message(),
        Err(WireError::BodyTooLarge(MAX_BODY_BYTES + 1))
    );
    let mut d = Decoder::new();
    d.push(b"Content-Length: -3\n\n");
    assert!(matches!(
        d.next_message(),
        Err(WireError::BadContentLength(_))
    ));
    let mut d = Decoder::new();
    d.push(&vec![b'a'; MAX_HEADER_BYTES + 1]);
    assert_eq!(d.next_message(), Err(WireError::HeadersTooLarge));
}

#[test]
fn percent_decoding_keeps_plus_and_bad_escapes() {
    assert_eq!(percent_decode(b"%2B1%20415"), b"+1 415");
    assert_eq!(percent_decode(b"+1415"), b"+1415");
    assert_eq!(percent_decode(b"100%"), b"100%");
    assert_eq!(percent_decode(b"%zz%4"), b"%zz%4");
    assert_eq!(percent_decode(b"%e2%82%ac"), "€".as_bytes());
}

#[test]
fn commands_cannot_smuggle_lines() {
    assert_eq!(command("auth pw\n\napi system"), b"auth pwapi system\n\n");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096), cut in 0usize..4096) {
        let mut d = Decoder::new();
        let cut = cut.min(data.len());
        for part in [&data[..cut], &data[cut..]] {
            d.push(part);
            for _ in 0..64 {
                match d.next_message() {
                    Ok(Some(m)) => { let _ = parse_event(&m.body); }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let _ = parse_event(&data);
        let _ = percent_decode(&data);
    }

    #[test]
    fn eslish_text_never_panics(lines in proptest::collection::vec("(Content-Length: [0-9]{1,3}|[A-Za-z%:\\- 0-9]{0,30})\n{0,2}", 0..32)) {
        let mut d = Decoder::new();
        for l in &lines {
            d.push(l.as_bytes());
            while let Ok(Some(m)) = d.next_message() {
                let _ = parse_event(&m.body);
            }
        }
    }
}
