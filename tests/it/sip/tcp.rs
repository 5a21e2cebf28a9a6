//! SIP over a real TCP connection: who may connect, RFC 5626 keep-alives, the buffer bound
//! and the idle timeout. Every wait is for a condition, with a deadline.

use std::time::Duration;

use ringback::telephony::sip::framing::{Frame, Framer};
use ringback::telephony::sip::message::{MAX_MESSAGE_BYTES, StartLine};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::*;

/// Longest any single expected event may take on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(10);

struct TcpClient {
    stream: TcpStream,
    framer: Framer,
}

impl TcpClient {
    async fn connect(server: SocketAddr) -> Self {
        TcpClient {
            stream: TcpStream::connect(server).await.expect("SIP TCP connects"),
            framer: Framer::new(),
        }
    }

    fn port(&self) -> u16 {
        self.stream.local_addr().unwrap().port()
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next frame from the server; `None` once the server has closed the connection.
    /// (A lone pong is held as half a ping by the framer and skipped before the next
    /// message, so pongs are read raw where they matter.)
    async fn frame(&mut self) -> Option<Frame> {
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            if let Some(f) = self
                .framer
                .next_frame()
                .expect("the server sends valid SIP")
            {
                return Some(f);
            }
            let read = tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk)).await;
            match read.expect("the server answered or closed within the deadline") {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.framer.push(&chunk[..n]).unwrap(),
            }
        }
    }

    async fn code(&mut self) -> u16 {
        match self.frame().await {
            Some(Frame::Message(m, _)) => match m.start {
                StartLine::Response { code, .. } => code,
                StartLine::Request { .. } => panic!("the UAS sent a request"),
            },
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// Waits until the server closes the connection (EOF or reset), skipping pongs.
    async fn closed(&mut self) {
        loop {
            match self.frame().await {
                None => return,
                Some(Frame::Ping) => continue,
                Some(Frame::Message(m, _)) => panic!("expected a close, got {m:?}"),
            }
        }
    }
}

fn tcp_request(method: &str, port: u16, branch: &str, call_id: &str) -> String {
    request(method, port, branch, call_id).replace("SIP/2.0/UDP", "SIP/2.0/TCP")
}

#[tokio::test]
async fn a_peer_not_in_accept_from_is_disconnected_at_accept() {
    let app = sip_app(&[("RINGBACK_SIP__ACCEPT_FROM", "[\"192.0.2.9\"]")]).await;
    let mut c = TcpClient::connect(tcp_addr(&app)).await;
    // Nothing sent: the server closes at once instead of waiting for an INVITE to refuse.
    c.closed().await;
}

#[tokio::test]
async fn keepalive_pings_get_a_pong_and_a_crlf_flood_is_consumed() {
    let app = sip_app(&[]).await;
    let mut c = TcpClient::connect(tcp_addr(&app)).await;
    c.send(b"\r\n\r\n").await;
    let mut pong = [0u8; 2];
    tokio::time::timeout(DEADLINE, c.stream.read_exact(&mut pong))
        .await
        .expect("a pong within the deadline")
        .expect("the connection stays open");
    assert_eq!(
        &pong, b"\r\n",
        "RFC 5626 §4.4.1: a single CRLF answers a double CRLF"
    );
    // Far more CRLFs than one message may hold: the old framing buffered them all.
    let flood = b"\r\n".repeat(MAX_MESSAGE_BYTES);
    c.send(&flood).await;
    // The connection still frames the next request (pongs may come first).
    c.send(tcp_request("OPTIONS", c.port(), "z9hG4bK-ka", "ka-1").as_bytes())
        .await;
    let code = loop {
        match c.frame().await {
            Some(Frame::Ping) => continue,
            Some(Frame::Message(m, _)) => match m.start {
                StartLine::Response { code, .. } => break code,
                StartLine::Request { .. } => panic!("a request"),
            },
            None => panic!("closed after a CRLF flood"),
        }
    };
    assert_eq!(code, 200);
}

#[tokio::test]
async fn a_header_that_never_ends_closes_the_connection_and_is_flagged() {
    let app = sip_app(&[]).await;
    let mut c = TcpClient::connect(tcp_addr(&app)).await;
    let mut head = tcp_request("INVITE", c.port(), "z9hG4bK-big", "big-1")
        .trim_end()
        .to_string();
    head.push_str("\r\nX-Filler: ");
    c.send(head.as_bytes()).await;
    c.send(&vec![b'a'; MAX_MESSAGE_BYTES + 1]).await;
    // A 400 when the Via can be salvaged, then the close.
    loop {
        match c.frame().await {
            None => break,
            Some(Frame::Message(m, _)) => {
                assert!(
                    matches!(m.start, StartLine::Response { code: 400, .. }),
                    "{m:?}"
                );
            }
            Some(Frame::Ping) => {}
        }
    }
    eventually(|| async { (flagged_sip(&app).await >= 1).then_some(()) }).await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_but_not_while_its_call_rings() {
    let app = sip_app(&[
        ("RINGBACK_SIP__TCP_IDLE_SECONDS", "1"),
        ("RINGBACK_SIP__RING_SECONDS", "8"),
    ])
    .await;
    let mut ringing = TcpClient::connect(tcp_addr(&app)).await;
    let port = ringing.port();
    ringing
        .send(tcp_request("INVITE", port, "z9hG4bK-idle", "idle-1").as_bytes())
        .await;
    assert_eq!(ringing.code().await, 100);
    assert_eq!(ringing.code().await, 180);
    // A silent connection opened after the INVITE is closed after one idle second...
    let mut silent = TcpClient::connect(tcp_addr(&app)).await;
    silent.closed().await;
    // ...so the ringing one has been silent longer, yet still reads its caller's CANCEL.
    ringing
        .send(tcp_request("CANCEL", port, "z9hG4bK-idle", "idle-1").as_bytes())
        .await;
    assert_eq!(ringing.code().await, 200);
    assert_eq!(ringing.code().await, 487);
    let calls = sip_calls(&app, 1).await;
    assert_eq!(calls[0]["outcome"], "canceled", "{calls:?}");
}
