//! Fake PBXs that speak the real wire protocols: an Asterisk Manager Interface and a
//! FreeSWITCH event socket, each replaying recorded transcripts byte for byte after a real
//! handshake. Each accepted connection plays the next [`Script`]; connections beyond the
//! list log in and then stay idle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ringback::telephony::ami::wire::{Decoder, Frame, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What one connection replays after a successful login.
pub struct Script {
    pub bytes: Vec<u8>,
    /// Drop the connection right after the bytes (a PBX restart, a network cut).
    pub then_close: bool,
}

/// A running fake PBX.
pub struct Peer {
    pub addr: String,
    /// Every login attempt: when, and whether the credentials were right.
    pub logins: Arc<Mutex<Vec<(Instant, bool)>>>,
    /// Polite goodbyes received (`Action: Logoff`, `exit`).
    pub goodbyes: Arc<AtomicUsize>,
}

impl Peer {
    pub fn logins(&self) -> Vec<(Instant, bool)> {
        self.logins.lock().unwrap().clone()
    }

    pub fn goodbyes(&self) -> usize {
        self.goodbyes.load(Ordering::SeqCst)
    }
}

async fn listen(
    handle: impl Fn(TcpStream, Option<Script>, Counters) -> tokio::task::JoinHandle<()> + Send + 'static,
    scripts: Vec<Script>,
) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let logins = Arc::new(Mutex::new(Vec::new()));
    let goodbyes = Arc::new(AtomicUsize::new(0));
    let shared = (logins.clone(), goodbyes.clone());
    tokio::spawn(async move {
        let mut scripts = scripts.into_iter();
        while let Ok((stream, _)) = listener.accept().await {
            handle(stream, scripts.next(), shared.clone());
        }
    });
    Peer {
        addr,
        logins,
        goodbyes,
    }
}

/// What a session records: login attempts and goodbyes.
type Counters = (Arc<Mutex<Vec<(Instant, bool)>>>, Arc<AtomicUsize>);

/// Writes in uneven pieces so the client sees blocks split across reads.
async fn replay(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    for piece in bytes.chunks(333) {
        stream.write_all(piece).await?;
        stream.flush().await?;
        tokio::task::yield_now().await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Asterisk

/// An AMI that accepts `Username: ringback` with `secret`.
pub async fn asterisk(secret: &'static str, scripts: Vec<Script>) -> Peer {
    listen(
        move |stream, script, logins| tokio::spawn(ami_session(stream, secret, script, logins)),
        scripts,
    )
    .await
}

async fn ami_session(
    mut stream: TcpStream,
    secret: &'static str,
    script: Option<Script>,
    (logins, goodbyes): Counters,
) {
    if stream
        .write_all(b"Asterisk Call Manager/5.0.1\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut decoder = Decoder::without_banner();
    let mut buf = [0u8; 4096];
    let mut script = script;
    loop {
        let action = loop {
            match decoder.next_frame() {
                Ok(Some(Frame::Message(m))) => break m,
                Ok(_) => {}
                Err(e) => panic!("the client sent bad AMI: {e}"),
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => decoder.push(&buf[..n]),
            }
        };
        let id = action.get("ActionID").unwrap_or("").to_string();
        match action.get("Action").unwrap_or("") {
            "Login" => {
                let ok = action.get("Username") == Some("ringback")
                    && action.get("Secret") == Some(secret);
                assert_eq!(
                    action.get("Events"),
                    Some("call,cdr"),
                    "the client asks for call and cdr events"
                );
                logins.lock().unwrap().push((Instant::now(), ok));
                if !ok {
                    let _ = stream
                        .write_all(&encode(&[
                            ("Response", "Error"),
                            ("ActionID", &id),
                            ("Message", "Authentication failed"),
                        ]))
                        .await;
                    return; // Asterisk ends the session after a failed login
                }
                let mut hello = encode(&[
                    ("Response", "Success"),
                    ("ActionID", &id),
                    ("Message", "Authentication accepted"),
                ]);
                hello.extend(encode(&[
                    ("Event", "FullyBooted"),
                    ("Privilege", "system,all"),
                    ("Uptime", "4242"),
                    ("LastReload", "4242"),
                    ("Status", "Fully Booted"),
                ]));
                if stream.write_all(&hello).await.is_err() {
                    return;
                }
                if let Some(s) = script.take()
                    && (replay(&mut stream, &s.bytes).await.is_err() || s.then_close)
                {
                    return;
                }
            }
            "Ping" => {
                let pong = encode(&[
                    ("Response", "Success"),
                    ("ActionID", &id),
                    ("Ping", "Pong"),
                    ("Timestamp", "1763900000.000000"),
                ]);
                if stream.write_all(&pong).await.is_err() {
                    return;
                }
            }
            "Logoff" => {
                goodbyes.fetch_add(1, Ordering::SeqCst);
                let _ = stream
                    .write_all(&encode(&[
                        ("Response", "Goodbye"),
                        ("ActionID", &id),
                        ("Message", "Thanks for all the fish."),
                    ]))
                    .await;
                return;
            }
            other => {
                let _ = stream
                    .write_all(&encode(&[
                        ("Response", "Error"),
                        ("ActionID", &id),
                        ("Message", &format!("Invalid/unknown command: {other}")),
                    ]))
                    .await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// FreeSWITCH

/// An event socket that accepts `password`.
pub async fn freeswitch(password: &'static str, scripts: Vec<Script>) -> Peer {
    listen(
        move |stream, script, logins| tokio::spawn(esl_session(stream, password, script, logins)),
        scripts,
    )
    .await
}

const DISCONNECT: &str = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

fn reply(text: &str) -> Vec<u8> {
    format!("Content-Type: command/reply\nReply-Text: {text}\n\n").into_bytes()
}

fn disconnect_notice() -> Vec<u8> {
    format!(
        "Content-Type: text/disconnect-notice\nContent-Length: {}\n\n{DISCONNECT}",
        DISCONNECT.len()
    )
    .into_bytes()
}

/// Reads one command: a line, then an empty line.
async fn read_command(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<String> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let cmd: Vec<u8> = pending.drain(..end + 2).collect();
            return Some(String::from_utf8_lossy(&cmd).trim().to_string());
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

async fn esl_session(
    mut stream: TcpStream,
    password: &'static str,
    script: Option<Script>,
    (logins, goodbyes): Counters,
) {
    if stream
        .write_all(b"Content-Type: auth/request\n\n")
        .await
        .is_err()
    {
        return;
    }
    let mut pending = Vec::new();
    let mut script = script;
    while let Some(cmd) = read_command(&mut stream, &mut pending).await {
        let out = if let Some(given) = cmd.strip_prefix("auth ") {
            let ok = given == password;
            logins.lock().unwrap().push((Instant::now(), ok));
            if !ok {
                let mut out = reply("-ERR invalid");
                out.extend(disconnect_notice());
                let _ = stream.write_all(&out).await;
                return;
            }
            reply("+OK accepted")
        } else if cmd == "event plain CHANNEL_HANGUP_COMPLETE" {
            if stream
                .write_all(&reply("+OK event listener enabled plain"))
                .await
                .is_err()
            {
                return;
            }
            if let Some(s) = script.take()
                && (replay(&mut stream, &s.bytes).await.is_err() || s.then_close)
            {
                return;
            }
            continue;
        } else if cmd == "api uptime" {
            b"Content-Type: api/response\nContent-Length: 4\n\n4242".to_vec()
        } else if cmd == "exit" {
            goodbyes.fetch_add(1, Ordering::SeqCst);
            let mut out = reply("+OK bye");
            out.extend(disconnect_notice());
            let _ = stream.write_all(&out).await;
            return;
        } else {
            reply("-ERR command not found")
        };
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}
