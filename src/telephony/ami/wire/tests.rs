use proptest::prelude::*;

use super::*;

const STREAM: &[u8] = b"Asterisk Call Manager/5.0.1\r\nResponse: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\nEvent: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n";

fn drain(d: &mut Decoder) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(f) = d.next_frame().expect("valid stream") {
        out.push(f);
    }
    out
}

fn frames_of(chunks: &[&[u8]]) -> Vec<Frame> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c);
        out.extend(drain(&mut d));
    }
    out
}

#[test]
fn banner_then_blocks() {
    let frames = frames_of(&[STREAM]);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0], Frame::Banner("5.0.1".into()));
    let Frame::Message(login) = &frames[1] else {
        panic!("{frames:?}")
    };
    assert_eq!(login.response(), Some("Success"));
    assert_eq!(login.get("actionid"), Some("1"));
    assert_eq!(login.get("Message"), Some("Authentication accepted"));
    assert!(login.raw.ends_with(b"accepted\r\n\r\n"));
    let Frame::Message(booted) = &frames[2] else {
        panic!()
    };
    assert_eq!(booted.event(), Some("FullyBooted"));
}

#[test]
fn any_split_of_the_stream_gives_the_same_frames() {
    let whole = frames_of(&[STREAM]);
    for cut in 0..=STREAM.len() {
        let (a, b) = STREAM.split_at(cut);
        assert_eq!(frames_of(&[a, b]), whole, "split at {cut}");
    }
    let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
    assert_eq!(frames_of(&bytes), whole);
}

#[test]
fn lf_only_line_ends_are_accepted() {
    let lf: Vec<u8> = String::from_utf8_lossy(STREAM)
        .replace("\r\n", "\n")
        .into_bytes();
    let frames = frames_of(&[&lf]);
    assert_eq!(frames.len(), 3);
    let Frame::Message(m) = &frames[2] else {
        panic!()
    };
    assert_eq!(m.get("Status"), Some("Fully Booted"));
}

#[test]
fn values_keep_colons_and_blank_lines_between_blocks_are_ignored() {
    let mut d = Decoder::without_banner();
    d.push(
        b"\r\n\r\nEvent: Cdr\r\nCallerID: \"A: B\" <100>\r\nAccountCode:\r\nno colon here\r\n\r\n",
    );
    let frames = drain(&mut d);
    assert_eq!(frames.len(), 1);
    let Frame::Message(m) = &frames[0] else {
        panic!()
    };
    assert_eq!(m.get("CallerID"), Some("\"A: B\" <100>"));
    assert_eq!(m.get("AccountCode"), Some(""));
    assert_eq!(m.headers.len(), 3);
}

#[test]
fn a_wrong_banner_is_refused() {
    let mut d = Decoder::new();
    d.push(b"SSH-2.0-OpenSSH_9.2\r\n");
    assert!(matches!(d.next_frame(), Err(WireError::BadBanner(b)) if b.starts_with("SSH")));
}

#[test]
fn an_oversized_block_is_refused_once_then_skipped() {
    let mut d = Decoder::without_banner();
    let big = format!(
        "Event: VarSet\r\nValue: {}\r\n",
        "x".repeat(MAX_BLOCK_BYTES)
    );
    // Arrives in pieces, as from a socket.
    let mut errors = 0;
    for chunk in big.as_bytes().chunks(4096) {
        d.push(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => panic!("unexpected frame {f:?}"),
                Ok(None) => break,
                Err(WireError::Oversized) => errors += 1,
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert_eq!(errors, 1);
    assert!(d.buf.len() <= 8, "memory stays bounded");
    d.push(b"\r\nEvent: Hangup\r\nUniqueid: 1.1\r\n\r\n");
    let frames = drain(&mut d);
    assert_eq!(frames.len(), 1, "{frames:?}");
    let Frame::Message(m) = &frames[0] else {
        panic!()
    };
    assert_eq!(m.event(), Some("Hangup"));
}

#[test]
fn an_oversized_block_in_one_read_is_refused() {
    let mut d = Decoder::without_banner();
    let big = format!(
        "Event: VarSet\r\nValue: {}\r\n\r\nEvent: Hangup\r\n\r\n",
        "x".repeat(MAX_BLOCK_BYTES)
    );
    d.push(big.as_bytes());
    assert_eq!(d.next_frame(), Err(WireError::Oversized));
    let Ok(Some(Frame::Message(m))) = d.next_frame() else {
        panic!()
    };
    assert_eq!(m.event(), Some("Hangup"));
}

#[test]
fn encode_writes_crlf_and_strips_injected_line_breaks() {
    let bytes = encode(&[("Action", "Login"), ("Secret", "a\r\nEvents: on")]);
    assert_eq!(
        bytes,
        b"Action: Login\r\nSecret: aEvents: on\r\n\r\n".to_vec()
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096), cuts in proptest::collection::vec(0usize..4096, 0..8)) {
        let mut d = Decoder::new();
        let mut start = 0;
        let mut cuts = cuts;
        cuts.sort();
        for cut in cuts.into_iter().chain([data.len()]) {
            let cut = cut.min(data.len()).max(start);
            d.push(&data[start..cut]);
            start = cut;
            for _ in 0..64 {
                match d.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }

    #[test]
    fn amiish_text_never_panics(lines in proptest::collection::vec("[A-Za-z:\\- \r\n]{0,40}", 0..64)) {
        let mut d = Decoder::without_banner();
        for l in &lines {
            d.push(l.as_bytes());
            while let Ok(Some(_)) = d.next_frame() {}
        }
    }
}
