//! The event-socket connection: connect, answer `auth/request`, subscribe to hangups, keep
//! alive, hand decisions to the delivery task, and reconnect with backoff, until shutdown.

use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use super::calls::{Decision, decide};
use super::wire::{Decoder, Message, WireError, command, parse_event};
use crate::config::telephony::FreeswitchConfig;
use crate::retry::Backoff;
use crate::shutdown::Shutdown;
use crate::telephony::link::{Delivery, FlagBudget};

const SOURCE: &str = "freeswitch";
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The event socket has no ping; `api uptime` every this often proves the peer is alive.
const KEEPALIVE: Duration = Duration::from_secs(30);
const FLAGS_PER_MINUTE: u32 = 30;

/// Why a connection ended (all lead to a reconnect after backoff).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("FreeSWITCH closed the connection")]
    Closed,
    #[error("FreeSWITCH sent a disconnect notice")]
    Disconnected,
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("FreeSWITCH refused the password: {0}")]
    AuthRefused(String),
    #[error("FreeSWITCH refused the event subscription: {0}")]
    SubscribeRefused(String),
    #[error("no answer to keep-alive commands")]
    KeepaliveLost,
}

impl SessionError {
    fn reason(&self) -> &'static str {
        match self {
            SessionError::Connect(_) => "connect",
            SessionError::Io(_) => "io",
            SessionError::Closed | SessionError::Disconnected => "closed",
            SessionError::Timeout(_) => "timeout",
            SessionError::Wire(_) => "protocol",
            SessionError::AuthRefused(_) | SessionError::SubscribeRefused(_) => "login",
            SessionError::KeepaliveLost => "keepalive",
        }
    }
}

/// The client task: sessions until shutdown.
pub async fn run(config: FreeswitchConfig, tx: mpsc::Sender<Delivery>, mut shutdown: Shutdown) {
    let mut flags = FlagBudget::new(FLAGS_PER_MINUTE);
    let mut backoff = Backoff::pbx();
    loop {
        // The session handles shutdown itself once logged in (it logs off politely); the
        // outer race also ends a handshake stuck on an unreachable PBX at once.
        let mut session_shutdown = shutdown.clone();
        let result = tokio::select! {
            biased;
            r = session(&config, &tx, &mut flags, &mut backoff, &mut session_shutdown) => r,
            _ = shutdown.wait() => return,
        };
        let Err(e) = result else {
            return;
        };
        crate::telemetry::pbx_connected(SOURCE, false);
        crate::telemetry::pbx_reconnect(SOURCE, e.reason());
        let delay = backoff.next_delay();
        match &e {
            SessionError::AuthRefused(reply) | SessionError::SubscribeRefused(reply) => {
                tracing::error!(
                    address = %config.address,
                    reply = %reply,
                    retry_in_ms = delay.as_millis() as u64,
                    "FreeSWITCH refused the event-socket login; check [freeswitch] password and the event_socket.conf.xml apply-inbound-acl."
                )
            }
            e => tracing::warn!(
                address = %config.address,
                error.message = %e,
                retry_in_ms = delay.as_millis() as u64,
                "FreeSWITCH event-socket connection lost; reconnecting."
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// One connection. `Ok(())` only on shutdown.
async fn session(
    config: &FreeswitchConfig,
    tx: &mpsc::Sender<Delivery>,
    flags: &mut FlagBudget,
    backoff: &mut Backoff,
    shutdown: &mut Shutdown,
) -> Result<(), SessionError> {
    let stream = timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(&config.address))
        .await
        .map_err(|_| SessionError::Timeout("the TCP connection"))?
        .map_err(SessionError::Connect)?;
    let (mut rd, mut wr) = stream.into_split();
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut io = Reader {
        rd: &mut rd,
        decoder: &mut decoder,
        buf: &mut buf,
    };

    let first = timeout(HANDSHAKE_TIMEOUT, io.next_message())
        .await
        .map_err(|_| SessionError::Timeout("auth/request"))??;
    if first.content_type() != "auth/request" {
        return Err(SessionError::AuthRefused(format!(
            "expected auth/request, got '{}'",
            first.content_type()
        )));
    }
    wr.write_all(&command(&format!(
        "auth {}",
        config.password.expose_secret()
    )))
    .await?;
    let reply = io.command_reply("the auth reply").await?;
    if !reply.starts_with("+OK") {
        return Err(SessionError::AuthRefused(reply));
    }
    wr.write_all(&command("event plain CHANNEL_HANGUP_COMPLETE"))
        .await?;
    let reply = io.command_reply("the subscription reply").await?;
    if !reply.starts_with("+OK") {
        return Err(SessionError::SubscribeRefused(reply));
    }
    backoff.reset();
    crate::telemetry::pbx_connected(SOURCE, true);
    tracing::info!(address = %config.address, "Subscribed to FreeSWITCH hangups on the event socket.");

    let mut keepalive = tokio::time::interval_at(Instant::now() + KEEPALIVE, KEEPALIVE);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.wait() => {
                let _ = timeout(Duration::from_secs(1), wr.write_all(&command("exit"))).await;
                return Ok(());
            }
            _ = keepalive.tick() => {
                if last_heard.elapsed() > KEEPALIVE * 2 {
                    return Err(SessionError::KeepaliveLost);
                }
                wr.write_all(&command("api uptime")).await?;
            }
            read = io.rd.read(io.buf) => {
                let n = read?;
                if n == 0 {
                    return Err(SessionError::Closed);
                }
                last_heard = Instant::now();
                io.decoder.push(io.buf.get(..n).unwrap_or_default());
                let mut blocks = 0;
                while let Some(m) = io.decoder.next_message()? {
                    blocks += 1;
                    match m.content_type() {
                        "text/event-plain" => handle_event(m, tx, flags).await,
                        "text/disconnect-notice" => return Err(SessionError::Disconnected),
                        _ => {} // api/response to keep-alives, command/reply
                    }
                }
                crate::telemetry::pbx_events(SOURCE, blocks);
            }
        }
    }
}

async fn handle_event(m: Message, tx: &mpsc::Sender<Delivery>, flags: &mut FlagBudget) {
    let headers = parse_event(&m.body);
    let now = crate::time::now_ms();
    let delivery = match decide(&headers, now) {
        Decision::Call(call) => Delivery::Call { raw: m.raw, call },
        Decision::Ignore(why) => {
            tracing::trace!(why, "FreeSWITCH event ignored.");
            return;
        }
        Decision::Flag(reason) => {
            if !flags.allow(now) {
                return;
            }
            Delivery::Flag { raw: m.raw, reason }
        }
    };
    let _ = tx.send(delivery).await;
}

/// The read side during the handshake.
struct Reader<'a> {
    rd: &'a mut OwnedReadHalf,
    decoder: &'a mut Decoder,
    buf: &'a mut [u8],
}

impl Reader<'_> {
    async fn next_message(&mut self) -> Result<Message, SessionError> {
        loop {
            if let Some(m) = self.decoder.next_message()? {
                if m.content_type() == "text/disconnect-notice" {
                    return Err(SessionError::Disconnected);
                }
                return Ok(m);
            }
            let n = self.rd.read(self.buf).await?;
            if n == 0 {
                return Err(SessionError::Closed);
            }
            self.decoder.push(self.buf.get(..n).unwrap_or_default());
        }
    }

    /// Waits for the next `command/reply` and returns its `Reply-Text`.
    async fn command_reply(&mut self, what: &'static str) -> Result<String, SessionError> {
        timeout(HANDSHAKE_TIMEOUT, async {
            loop {
                let m = self.next_message().await?;
                if m.content_type() == "command/reply" {
                    return Ok(m.get("Reply-Text").unwrap_or("").to_string());
                }
            }
        })
        .await
        .map_err(|_| SessionError::Timeout(what))?
    }
}
