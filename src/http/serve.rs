//! The HTTP listener shared by Ringback's server and the Cloud API sandbox.
//!
//! `axum::serve` has no timeouts, so a client that sends half a request header (or half a
//! body) holds its connection forever, and a few hundred of them exhaust the process's file
//! descriptors. This serves each connection with hyper's HTTP/1 builder, which closes a
//! connection whose request header is not complete in time (hyper also applies that limit to
//! a keep-alive connection waiting for its next request), and adds an idle limit of its own:
//! a connection with no byte read or written for that long is closed. Shutdown stops
//! accepting, lets requests in progress finish, and is bounded by the idle limit.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::config::http::Timeouts;
use crate::shutdown::Shutdown;

/// Serves `router` on `listener` until `shutdown`, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    mut shutdown: Shutdown,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .keep_alive(true);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin, as
                    // axum::serve does.
                    tracing::warn!(error.message = %e, "Accepting an HTTP connection failed; retrying shortly.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.wait() => break,
        };
        let (stream, peer) = stream;
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        // Handlers that need the client's address (the console's sign-in limits) read it as
        // axum's `ConnectInfo`.
        let service = tower_http::add_extension::AddExtension::new(
            router.clone(),
            axum::extract::ConnectInfo(peer),
        );
        let conn = graceful.watch(builder.serve_connection(io, TowerToHyperService::new(service)));
        let idle = timeouts.idle;
        tokio::spawn(async move {
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        if e.is_timeout() {
                            crate::telemetry::http_connection_cut("header_timeout");
                        }
                        tracing::debug!(error.message = %e, "HTTP connection ended with an error.");
                    }
                }
                () = activity.idle_for(idle) => {
                    crate::telemetry::http_connection_cut("idle");
                    tracing::debug!(idle_seconds = idle.as_secs(), "Closed an HTTP connection that sent and read nothing for too long.");
                }
            }
        });
    }
    drop(listener);
    // Requests in progress finish; an idle connection closes at once. A connection that
    // stalls is cut by its idle limit, so this cannot wait much longer than that.
    if tokio::time::timeout(timeouts.idle, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "HTTP connections were still open when the shutdown grace period ended; closing them."
        );
    }
    Ok(())
}

/// When a connection last moved a byte, in milliseconds since it was accepted.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A stream that records when bytes move through it.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
