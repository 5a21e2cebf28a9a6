use super::*;

const INVITE: &str = "INVITE sip:5550100@us SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
From: <sip:+14155550123@h>;tag=1\r\nTo: <sip:5550100@us>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";

fn drain(f: &mut Framer) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(frame) = f.next_frame().unwrap() {
        out.push(frame);
    }
    out
}

#[test]
fn crlf_only_input_is_consumed_not_buffered() {
    // The old framing left these in the buffer forever ("need more"): 1 MiB of CRLFs must
    // leave at most a partial ping behind.
    let mut f = Framer::new();
    for _ in 0..1024 {
        f.push(&b"\r\n".repeat(512)).unwrap();
        drain(&mut f);
        assert!(f.buffered() < PING.len(), "{} bytes held", f.buffered());
    }
    f.push(INVITE.as_bytes()).unwrap();
    let frames = drain(&mut f);
    assert!(matches!(frames.as_slice(), [Frame::Message(m, _)] if m.method() == Some("INVITE")));
    assert_eq!(f.buffered(), 0);
}

#[test]
fn a_double_crlf_is_a_ping_even_across_reads() {
    let mut f = Framer::new();
    f.push(b"\r\n\r\n").unwrap();
    assert_eq!(drain(&mut f), [Frame::Ping]);
    f.push(b"\r\n").unwrap();
    assert_eq!(drain(&mut f), [], "half a ping waits for the rest");
    f.push(b"\r").unwrap();
    assert_eq!(drain(&mut f), []);
    f.push(b"\n").unwrap();
    assert_eq!(drain(&mut f), [Frame::Ping]);
    assert_eq!(f.buffered(), 0);
    // A single CRLF (a pong, or a stray line end) before a message is skipped silently.
    f.push(format!("\r\n{INVITE}").as_bytes()).unwrap();
    let frames = drain(&mut f);
    assert_eq!(frames.len(), 1);
    let Frame::Message(_, raw) = &frames[0] else {
        panic!("{frames:?}")
    };
    assert_eq!(
        raw,
        INVITE.as_bytes(),
        "the raw message starts at its start line"
    );
    // A ping and a message in one read: both.
    f.push(format!("\r\n\r\n{INVITE}").as_bytes()).unwrap();
    let frames = drain(&mut f);
    assert!(
        matches!(frames.as_slice(), [Frame::Ping, Frame::Message(..)]),
        "{frames:?}"
    );
}

#[test]
fn messages_split_anywhere_are_framed_once() {
    let two = format!("{INVITE}{INVITE}");
    for cut in 1..two.len() {
        let mut f = Framer::new();
        f.push(&two.as_bytes()[..cut]).unwrap();
        let mut frames = drain(&mut f);
        f.push(&two.as_bytes()[cut..]).unwrap();
        frames.extend(drain(&mut f));
        assert_eq!(frames.len(), 2, "cut at {cut}");
        assert_eq!(f.buffered(), 0);
    }
}

#[test]
fn the_buffer_is_capped_per_connection() {
    let mut f = Framer::new();
    // A header that never ends: parse errors out at the message limit...
    f.push(&b"INVITE sip:x SIP/2.0\r\nX: ".repeat(3000))
        .unwrap();
    assert!(matches!(
        f.next_frame(),
        Err(FrameError::Parse(ParseError::TooLarge))
    ));
    // ...and whatever happens, pushing past the cap fails instead of growing.
    let mut f = Framer::new();
    f.push(&vec![b'a'; MAX_BUFFERED]).unwrap();
    assert_eq!(f.push(b"b"), Err(FrameError::Overflow));
    assert_eq!(f.buffered(), MAX_BUFFERED);
}
