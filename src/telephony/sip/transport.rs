//! SIP over UDP and TCP with tokio, and the one loop that drives the [`Uas`].
//!
//! A single task owns the UAS state: it reads UDP datagrams directly, receives framed
//! messages from the TCP connection tasks over a channel, fires timers, and sends what the
//! UAS returns. Ended calls go to [`Deliveries`] without waiting for the store, so the loop
//! only ever waits for the network. Over UDP responses go to the datagram's source address
//! (which also works behind NAT, as `rport` would); over TCP on the same connection
//! (RFC 3261 §18.2.2).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::Bound;
use super::delivery::Deliveries;
use super::framing::{Frame, Framer, PONG};
use super::message::{MAX_MESSAGE_BYTES, Message};
use super::uas::{Now, Output, Uas, UasSettings};
use crate::config::telephony::SipSettings;
use crate::shutdown::Shutdown;

/// Open TCP connections at once; more are refused (closed at accept).
const MAX_TCP_CONNECTIONS: usize = 1024;
/// Datagrams read in one go before sending what they produced: fewer wake-ups under load.
const UDP_BATCH: usize = 64;
/// Requested UDP receive buffer (the kernel caps it at net.core.rmem_max).
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// Where a reply goes.
#[derive(Debug, Clone)]
pub enum Peer {
    Udp(SocketAddr),
    Tcp(TcpPeer),
}

/// One TCP connection's writing side.
#[derive(Debug, Clone)]
pub struct TcpPeer {
    addr: SocketAddr,
    tx: mpsc::Sender<Vec<u8>>,
}

/// What a TCP connection hands the loop.
enum FromTcp {
    Message {
        msg: Message,
        raw: Vec<u8>,
        peer: TcpPeer,
    },
    /// The stream could not be framed; the connection is closing.
    Broken {
        raw: Vec<u8>,
        reason: String,
        peer: TcpPeer,
    },
}

/// Binds the listeners and spawns the loop (and the TCP acceptor) into `tasks`.
pub async fn start(
    settings: &SipSettings,
    deliveries: Deliveries,
    shutdown: Shutdown,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<Bound> {
    let udp = match settings.udp {
        Some(addr) => {
            Some(bind_udp(addr).with_context(|| format!("cannot bind sip.listen_udp {addr}"))?)
        }
        None => None,
    };
    let tcp = match settings.tcp {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind sip.listen_tcp {addr}"))?,
        ),
        None => None,
    };
    let bound = Bound {
        udp: udp.as_ref().and_then(|s| s.local_addr().ok()),
        tcp: tcp.as_ref().and_then(|l| l.local_addr().ok()),
    };
    let (to_core, from_tcp) = mpsc::channel(4096);
    let uas = UasSettings::from(settings);
    if let Some(listener) = tcp {
        let rules = Arc::new(TcpRules {
            uas: uas.clone(),
            idle: settings.tcp_idle,
        });
        tasks.spawn(accept(listener, rules, to_core, shutdown.clone()));
    }
    let uas = Uas::new(uas);
    tasks.spawn(run(uas, udp, from_tcp, deliveries, shutdown));
    tracing::info!(udp = ?bound.udp, tcp = ?bound.tcp, "SIP missed-call number is listening.");
    Ok(bound)
}

/// Binds UDP with a large receive buffer: the default (~200 kB, about 300 INVITEs) overflows
/// during a scheduling hiccup at a few thousand calls per second, and every dropped INVITE
/// costs the caller a 500 ms retransmission (a dropped CANCEL is worse: it is not resent).
fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
        tracing::debug!(error.message = %e, "Cannot enlarge the SIP UDP receive buffer.");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

fn now() -> Now {
    Now {
        at: std::time::Instant::now(),
        ms: crate::time::now_ms(),
    }
}

async fn run(
    mut uas: Uas<Peer>,
    udp: Option<UdpSocket>,
    mut from_tcp: mpsc::Receiver<FromTcp>,
    deliveries: Deliveries,
    mut shutdown: Shutdown,
) {
    let mut buf = vec![0u8; MAX_MESSAGE_BYTES + 1];
    let mut out = Vec::new();
    loop {
        let deadline = uas.next_deadline().map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = shutdown.wait() => break,
            r = recv(udp.as_ref(), &mut buf) => {
                if let Some(socket) = &udp {
                    on_udp(&mut uas, socket, r, &mut buf, &mut out);
                }
            }
            Some(m) = from_tcp.recv() => {
                match m {
                    FromTcp::Message { msg, raw, peer } => {
                        let ip = peer.addr.ip();
                        uas.on_message(msg, &raw, Peer::Tcp(peer), ip, true, now(), &mut out);
                    }
                    FromTcp::Broken { raw, reason, peer } => {
                        uas.on_unparseable(&raw, &reason, Peer::Tcp(peer), &mut out);
                    }
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {}
        }
        // Timers are checked after every wake-up, so a busy socket cannot starve them.
        uas.on_tick(now(), &mut out);
        flush(udp.as_ref(), &mut out, &deliveries).await;
    }
    let ringing = uas.len();
    uas.end_all(now(), &mut out);
    flush(udp.as_ref(), &mut out, &deliveries).await;
    tracing::info!(
        ringing,
        "SIP missed-call number stopped; calls still ringing were ended and reported."
    );
}

async fn recv(udp: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match udp {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    if let Some(at) = deadline {
        tokio::time::sleep_until(at).await;
    }
}

/// Handles one received datagram and whatever else is already queued on the socket.
fn on_udp(
    uas: &mut Uas<Peer>,
    socket: &UdpSocket,
    first: std::io::Result<(usize, SocketAddr)>,
    buf: &mut [u8],
    out: &mut Vec<Output<Peer>>,
) {
    let mut next = Some(first);
    let mut handled = 0;
    while let Some(r) = next.take() {
        match r {
            Ok((n, from)) => {
                let data = buf.get(..n).unwrap_or_default();
                uas.on_bytes(data, Peer::Udp(from), from.ip(), false, now(), out);
            }
            // Linux reports ICMP errors of earlier sends here; nothing to do but go on.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => tracing::debug!(error.message = %e, "SIP UDP receive failed."),
        }
        handled += 1;
        if handled < UDP_BATCH {
            next = Some(socket.try_recv_from(buf));
        }
    }
}

async fn flush(udp: Option<&UdpSocket>, out: &mut Vec<Output<Peer>>, deliveries: &Deliveries) {
    for o in out.drain(..) {
        match o {
            Output::Send {
                to: Peer::Udp(addr),
                bytes,
            } => {
                if let Some(socket) = udp
                    && let Err(e) = socket.send_to(&bytes, addr).await
                {
                    tracing::debug!(%addr, error.message = %e, "SIP UDP send failed.");
                }
            }
            Output::Send {
                to: Peer::Tcp(peer),
                bytes,
            } => {
                // A connection that is gone or not reading is the caller's loss, not ours.
                if peer.tx.try_send(bytes).is_err() {
                    tracing::debug!(addr = %peer.addr, "SIP TCP connection is gone or stalled; response dropped.");
                }
            }
            Output::Call { event, raw } => deliveries.call(event, raw),
            Output::Malformed { reason, raw } => {
                crate::telemetry::sip_malformed(&reason);
                deliveries.flag(reason, raw);
            }
        }
    }
}

/// What the TCP side checks for every connection.
struct TcpRules {
    uas: UasSettings,
    idle: std::time::Duration,
}

async fn accept(
    listener: TcpListener,
    rules: Arc<TcpRules>,
    to_core: mpsc::Sender<FromTcp>,
    mut shutdown: Shutdown,
) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept() => match r {
                Ok((stream, addr)) => {
                    if !rules.uas.accepts(addr.ip()) {
                        // Closed before a byte is read: a stranger gets no connection slot,
                        // no buffer and no 403 to learn from.
                        metrics::counter!("ringback_sip_tcp_refused_total", "reason" => "accept_from").increment(1);
                        tracing::info!(%addr, "SIP TCP connection closed at once: the peer is not in sip.accept_from.");
                        drop(stream);
                        continue;
                    }
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        tracing::warn!(%addr, "SIP TCP connection refused: too many open connections.");
                        continue;
                    };
                    let to_core = to_core.clone();
                    let shutdown = shutdown.clone();
                    let idle = rules.idle;
                    connections.spawn(async move {
                        connection(stream, addr, idle, to_core, shutdown).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(error.message = %e, "SIP TCP accept failed.");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Reads one TCP connection, framing messages by Content-Length, until EOF, an idle
/// timeout, a framing error or shutdown.
async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    idle: std::time::Duration,
    to_core: mpsc::Sender<FromTcp>,
    mut shutdown: Shutdown,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    // The writer lives until every transaction holding this connection is over, so a 487
    // or a final response still reaches a caller that half-closed its side.
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let peer = TcpPeer { addr, tx };
    let mut framer = Framer::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(msg, raw))) => {
                    let peer = peer.clone();
                    if to_core
                        .send(FromTcp::Message { msg, raw, peer })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                // RFC 5626 §4.4.1: a double-CRLF ping gets a single-CRLF pong.
                Ok(Some(Frame::Ping)) => {
                    let _ = peer.tx.try_send(PONG.to_vec());
                }
                Ok(None) => break,
                Err(e) => {
                    let (raw, reason, peer) = (framer.take(), e.to_string(), peer);
                    tracing::debug!(%addr, reason, "SIP TCP stream cannot be framed; closing.");
                    let _ = to_core.send(FromTcp::Broken { raw, reason, peer }).await;
                    return;
                }
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            r = tokio::time::timeout(idle, reader.read(&mut chunk)) => match r {
                // Silent for `idle`: close, unless a call on it is still ringing (its
                // transaction holds a sender), whose CANCEL or ACK may still come.
                Err(_) if peer.tx.strong_count() > 1 => {}
                Err(_) => {
                    metrics::counter!("ringback_sip_tcp_closed_total", "reason" => "idle").increment(1);
                    tracing::debug!(%addr, idle_seconds = idle.as_secs(), "SIP TCP connection closed: idle.");
                    return;
                }
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => {
                    if let Err(e) = framer.push(chunk.get(..n).unwrap_or_default()) {
                        metrics::counter!("ringback_sip_tcp_closed_total", "reason" => "buffer").increment(1);
                        tracing::warn!(%addr, error.message = %e, "SIP TCP connection closed: too much buffered without a complete message.");
                        return;
                    }
                }
            }
        }
    }
}
