//! The AMI connection: connect, read the banner, log in, keep alive, feed the correlator,
//! and reconnect with backoff when anything goes wrong, until shutdown.

use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use super::calls::{Correlator, Output};
use super::wire::{Decoder, Frame, Message, WireError, encode};
use crate::config::telephony::AsteriskConfig;
use crate::retry::Backoff;
use crate::shutdown::Shutdown;
use crate::telephony::link::{Delivery, FlagBudget};

const SOURCE: &str = "asterisk";
/// Connecting, the banner and the login answer must each come within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Flags stored per minute at most.
const FLAGS_PER_MINUTE: u32 = 30;

/// Why a connection ended (all lead to a reconnect after backoff).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("Asterisk closed the connection")]
    Closed,
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Wrong username/secret, or the user may not log in from this address.
    #[error("Asterisk refused the login: {0}")]
    LoginRefused(String),
    #[error("no answer to keep-alive pings")]
    KeepaliveLost,
}

impl SessionError {
    /// A short fixed word for the reconnect metric.
    fn reason(&self) -> &'static str {
        match self {
            SessionError::Connect(_) => "connect",
            SessionError::Io(_) => "io",
            SessionError::Closed => "closed",
            SessionError::Timeout(_) => "timeout",
            SessionError::Wire(_) => "protocol",
            SessionError::LoginRefused(_) => "login",
            SessionError::KeepaliveLost => "keepalive",
        }
    }
}

/// The client task: sessions until shutdown. Call state survives reconnects, marked as
/// having a gap (see [`Correlator::connection_lost`]).
pub async fn run(config: AsteriskConfig, tx: mpsc::Sender<Delivery>, mut shutdown: Shutdown) {
    let mut state = State {
        correlator: Correlator::new(config.contexts.clone()),
        flags: FlagBudget::new(FLAGS_PER_MINUTE),
        tx,
        action_seq: 0,
    };
    let mut backoff = Backoff::pbx();
    loop {
        // The session handles shutdown itself once logged in (it logs off politely); the
        // outer race also ends a handshake stuck on an unreachable PBX at once.
        let mut session_shutdown = shutdown.clone();
        let result = tokio::select! {
            biased;
            r = session(&config, &mut state, &mut backoff, &mut session_shutdown) => r,
            _ = shutdown.wait() => return,
        };
        let Err(e) = result else {
            return; // shutdown
        };
        crate::telemetry::pbx_connected(SOURCE, false);
        crate::telemetry::pbx_reconnect(SOURCE, e.reason());
        state.correlator.connection_lost();
        let delay = backoff.next_delay();
        match &e {
            SessionError::LoginRefused(message) => tracing::error!(
                address = %config.address,
                username = %config.username,
                message = %message,
                retry_in_ms = delay.as_millis() as u64,
                "Asterisk refused the AMI login; check [asterisk] username/secret and the manager.conf permit/deny lists."
            ),
            e => tracing::warn!(
                address = %config.address,
                error.message = %e,
                retry_in_ms = delay.as_millis() as u64,
                "Asterisk AMI connection lost; reconnecting."
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// What outlives one connection.
struct State {
    correlator: Correlator,
    flags: FlagBudget,
    tx: mpsc::Sender<Delivery>,
    action_seq: u64,
}

impl State {
    fn action_id(&mut self, what: &str) -> String {
        self.action_seq += 1;
        format!("ringback-{what}-{}", self.action_seq)
    }

    /// Hands decisions to the delivery task; flags within the budget.
    async fn forward(&mut self, outputs: Vec<Output>) {
        for o in outputs {
            let d = match o {
                Output::Call { call, raw } => Delivery::Call { raw, call },
                Output::Flag { reason, raw } => {
                    if !self.flags.allow(crate::time::now_ms()) {
                        tracing::debug!(reason, "Flag suppressed by the per-minute bound.");
                        continue;
                    }
                    Delivery::Flag { raw, reason }
                }
            };
            // The receiver lives until every sender is dropped; an error means shutdown.
            let _ = self.tx.send(d).await;
        }
    }
}

/// One connection. `Ok(())` only on shutdown.
async fn session(
    config: &AsteriskConfig,
    state: &mut State,
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

    let version = match timeout(
        HANDSHAKE_TIMEOUT,
        next_frame(&mut rd, &mut decoder, &mut buf),
    )
    .await
    .map_err(|_| SessionError::Timeout("the AMI banner"))??
    {
        Frame::Banner(v) => v,
        Frame::Message(_) => return Err(WireError::BadBanner("a message".into()).into()),
    };

    let login_id = state.action_id("login");
    wr.write_all(&encode(&[
        ("Action", "Login"),
        ("ActionID", &login_id),
        ("Username", &config.username),
        ("Secret", config.secret.expose_secret()),
        ("Events", "call,cdr"),
    ]))
    .await?;
    let answer = timeout(HANDSHAKE_TIMEOUT, async {
        loop {
            if let Frame::Message(m) = next_frame(&mut rd, &mut decoder, &mut buf).await? {
                let ours = m.get("ActionID").is_none_or(|id| id == login_id);
                if m.response().is_some() && ours {
                    return Ok::<Message, SessionError>(m);
                }
            }
        }
    })
    .await
    .map_err(|_| SessionError::Timeout("the login answer"))??;
    if !answer
        .response()
        .is_some_and(|r| r.eq_ignore_ascii_case("Success"))
    {
        let message = answer.get("Message").unwrap_or("no message").to_string();
        return Err(SessionError::LoginRefused(message));
    }
    backoff.reset();
    crate::telemetry::pbx_connected(SOURCE, true);
    tracing::info!(address = %config.address, version = %version, "Logged in to the Asterisk Manager Interface.");

    let period = Duration::from_secs(config.ping_seconds);
    let mut ping = tokio::time::interval_at(Instant::now() + period, period);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.wait() => {
                let logoff = encode(&[("Action", "Logoff"), ("ActionID", &state.action_id("logoff"))]);
                let _ = timeout(Duration::from_secs(1), wr.write_all(&logoff)).await;
                return Ok(());
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > period * 2 {
                    return Err(SessionError::KeepaliveLost);
                }
                let id = state.action_id("ping");
                wr.write_all(&encode(&[("Action", "Ping"), ("ActionID", &id)])).await?;
            }
            _ = tick.tick() => {
                let (outputs, forgotten) = state.correlator.tick(crate::time::now_ms());
                if forgotten > 0 {
                    tracing::warn!(forgotten, "Forgot Asterisk calls that never ended (no Hangup for 4 hours).");
                }
                state.forward(outputs).await;
            }
            read = rd.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    return Err(SessionError::Closed);
                }
                last_heard = Instant::now();
                decoder.push(buf.get(..n).unwrap_or_default());
                let mut blocks = 0;
                loop {
                    match decoder.next_frame() {
                        Ok(Some(Frame::Message(m))) => {
                            blocks += 1;
                            if m.get("Event").is_some_and(|e| e.eq_ignore_ascii_case("Shutdown")) {
                                tracing::info!("Asterisk is shutting down.");
                            }
                            let outputs = state.correlator.observe(&m, crate::time::now_ms());
                            state.forward(outputs).await;
                        }
                        Ok(Some(Frame::Banner(_))) => {}
                        Ok(None) => break,
                        Err(e) => {
                            state.forward(vec![Output::Flag { reason: e.to_string(), raw: Vec::new() }]).await;
                        }
                    }
                }
                crate::telemetry::pbx_events(SOURCE, blocks);
            }
        }
    }
}

/// Reads until the decoder yields a frame.
async fn next_frame(
    rd: &mut OwnedReadHalf,
    decoder: &mut Decoder,
    buf: &mut [u8],
) -> Result<Frame, SessionError> {
    loop {
        if let Some(frame) = decoder.next_frame()? {
            return Ok(frame);
        }
        let n = rd.read(buf).await?;
        if n == 0 {
            return Err(SessionError::Closed);
        }
        decoder.push(buf.get(..n).unwrap_or_default());
    }
}
