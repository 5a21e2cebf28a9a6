//! The call spool: where a SIP or PBX call waits, on disk, while the store is unavailable.
//!
//! A SIP caller has already heard its final response and an AMI/ESL event is never sent
//! twice, so a call the store cannot take is otherwise lost. It is appended instead to a
//! file, one JSON line per call event, fsynced before the source goes on. A replayer feeds
//! the file back through the ingestor, in order, when the store answers again and at
//! start; replaying twice is harmless because the ingestor dedups by source + call id +
//! outcome. Appends and replay never touch the same file: the replayer first renames the
//! spool to `<spool>.replaying`, replays that, and deletes it. While anything is spooled,
//! new calls are spooled behind it, so calls reach the store in the order they ended.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};

use super::CallSink;
use crate::inbound::CallEvent;
use crate::shutdown::Shutdown;

/// The first wait before replaying again after the store failed; doubles to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(500);
const MAX_WAIT: Duration = Duration::from_secs(5);

/// One spooled call, as a line of the file.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    call: CallEvent,
    /// What the source saw, base64 (a SIP body need not be UTF-8).
    raw: String,
}

/// Handle to the spool. Cheap to clone.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    replaying: PathBuf,
    /// Serialises appends with the rename that starts a replay.
    lock: std::sync::Mutex<()>,
    /// Something is spooled and not yet replayed.
    pending: AtomicBool,
    wake: Notify,
}

impl Spool {
    /// A spool at `path`. Calls left by an earlier run are pending at once, so they are
    /// replayed as soon as the replayer starts.
    pub fn open(path: PathBuf) -> Self {
        let mut name = path.as_os_str().to_owned();
        name.push(".replaying");
        let replaying = PathBuf::from(name);
        let non_empty = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.len() > 0);
        let pending = non_empty(&path) || replaying.exists();
        Spool {
            inner: Arc::new(Inner {
                path,
                replaying,
                lock: std::sync::Mutex::new(()),
                pending: AtomicBool::new(pending),
                wake: Notify::new(),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Calls are waiting in the spool (new calls must queue behind them).
    pub fn is_pending(&self) -> bool {
        self.inner.pending.load(Ordering::Acquire)
    }

    /// Appends one call and fsyncs it; once this returns the call survives a crash.
    pub async fn append(&self, call: &CallEvent, raw: &[u8]) -> std::io::Result<()> {
        let entry = Entry {
            call: call.clone(),
            raw: B64.encode(raw),
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _held = inner.lock.lock().unwrap_or_else(|e| e.into_inner());
            let created = !inner.path.exists();
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&inner.path)?;
            file.write_all(&line)?;
            file.sync_data()?;
            if created {
                // A new file's name is durable only once its directory is synced too.
                let dir = inner.path.parent().filter(|d| !d.as_os_str().is_empty());
                std::fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()?;
            }
            inner.pending.store(true, Ordering::Release);
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(std::io::Error::other)??;
        metrics::counter!("ringback_call_spool_appended_total").increment(1);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Replays everything spooled through `sink`, oldest first, until the spool is empty
    /// (returns how many calls were stored) or the store fails (the rest stays spooled).
    pub async fn replay(&self, sink: &CallSink) -> anyhow::Result<u64> {
        let mut replayed = 0;
        loop {
            if !self.inner.replaying.exists() && !self.rotate().await? {
                return Ok(replayed);
            }
            replayed += self.replay_file(sink).await?;
            tokio::fs::remove_file(&self.inner.replaying).await?;
        }
    }

    /// Moves the spool aside for replay; `false` (and no longer pending) when it is empty.
    async fn rotate(&self) -> std::io::Result<bool> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _held = inner.lock.lock().unwrap_or_else(|e| e.into_inner());
            let len = std::fs::metadata(&inner.path).map(|m| m.len()).unwrap_or(0);
            if len == 0 {
                // Cleared under the lock, so an append racing with this sets it again.
                inner.pending.store(false, Ordering::Release);
                return Ok(false);
            }
            std::fs::rename(&inner.path, &inner.replaying)?;
            Ok(true)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Stores every call in `<spool>.replaying`, read line by line (memory stays bounded
    /// whatever the file's size).
    async fn replay_file(&self, sink: &CallSink) -> anyhow::Result<u64> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
        let path = self.inner.replaying.clone();
        let reader = tokio::task::spawn_blocking(move || {
            let mut file = std::io::BufReader::new(std::fs::File::open(path)?);
            let mut line = Vec::new();
            while file.read_until(b'\n', &mut line)? > 0 {
                if tx.blocking_send(std::mem::take(&mut line)).is_err() {
                    break;
                }
            }
            Ok::<_, std::io::Error>(())
        });
        let mut stored = 0;
        while let Some(line) = rx.recv().await {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let entry = serde_json::from_slice::<Entry>(&line).ok().and_then(|e| {
                let raw = B64.decode(&e.raw).ok()?;
                Some((e.call, raw))
            });
            let Some((call, raw)) = entry else {
                // Only a write torn by a crash ends like this, and its call was never
                // reported as safe; keeping it would block every call behind it.
                metrics::counter!("ringback_call_spool_unreadable_total").increment(1);
                tracing::error!(spool = %self.inner.replaying.display(), bytes = line.len(), "A spooled call line is unreadable; skipped.");
                continue;
            };
            let id = call.provider_call_id.clone();
            sink.deliver(raw, call).await.map_err(|e| {
                anyhow::anyhow!("the store still fails (call {id} stays spooled): {e}")
            })?;
            stored += 1;
            metrics::counter!("ringback_call_spool_replayed_total").increment(1);
        }
        reader.await??;
        Ok(stored)
    }
}

/// Replays the spool whenever something is in it (at start too), backing off while the
/// store keeps failing. Stops at shutdown; what is left is replayed at the next start.
pub async fn run(sink: CallSink, mut shutdown: Shutdown) {
    let spool = sink.spool.clone();
    let mut backoff = crate::retry::Backoff::new(FIRST_WAIT, MAX_WAIT);
    loop {
        if spool.is_pending() {
            let result = tokio::select! {
                _ = shutdown.wait() => return,
                r = spool.replay(&sink) => r,
            };
            match result {
                Ok(n) => {
                    backoff.reset();
                    if n > 0 {
                        tracing::info!(calls = n, spool = %spool.path().display(), "Spooled calls are now in the store.");
                    }
                    continue;
                }
                Err(e) => {
                    let wait = backoff.next_delay();
                    tracing::warn!(error.message = %e, retry_in_ms = wait.as_millis() as u64, "Replaying spooled calls failed; retrying.");
                    tokio::select! {
                        _ = shutdown.wait() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = spool.inner.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests;
