//! One lane per sending number: claim, send, record.
//!
//! The claim transaction writes the attempt row (`claimed`) before any byte leaves, and the
//! [`Starter`] marks it started when its turn to be paced comes, so an attempt cut short by
//! a crash is visible as `interrupted` on restart and its message becomes `uncertain` (see
//! [`run_maintenance`]) instead of being sent again blindly, while rows only claimed ahead are
//! queued again at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;

use super::handoff::Handed;
use super::starter::{Pending, Starter};
use crate::cloud_api::{Client, Outcome};
use crate::config::Sender;
use crate::retry::RetryPolicy;
use crate::shutdown::Shutdown;
use crate::store::{AttemptOutcome, ClaimedSend, Store, StoreError};
use crate::time::now_ms;

/// How often a held marketing message looks again whether its hold has lifted.
const HOLD_RECHECK: Duration = Duration::from_secs(30);

/// Rows claimed ahead of the pacing loop. After a crash they go back to the queue (their
/// attempts were never started), so this only bounds how far the claimer runs ahead.
const CLAIM_AHEAD: usize = 64;

/// The fewest rows whose start is recorded ahead of pacing, so the commit overlaps the wait
/// for the previous slots. The lane records as many as its pace sends during one commit (see
/// [`Lane::start_ahead`]); after a crash at most these (and the requests in flight) become
/// uncertain.
const MIN_START_AHEAD: usize = 4;

/// How many start commits' worth of slots are marked ahead: a commit slower than its average
/// (a loaded machine, a busy database) must not cost a pacing slot.
const COMMITS_AHEAD: f64 = 4.0;

/// Rows to mark started ahead for a pace of `rate` per second and a commit time (see
/// [`Lane::start_ahead`]).
fn start_window(rate: Option<u32>, commit: Duration) -> usize {
    match rate {
        Some(rate) => {
            let slots = (f64::from(rate) * commit.as_secs_f64() * COMMITS_AHEAD).ceil();
            (slots as usize).clamp(MIN_START_AHEAD, CLAIM_AHEAD)
        }
        None => MIN_START_AHEAD,
    }
}

#[cfg(test)]
#[test]
fn the_start_window_covers_four_commits_of_the_pace() {
    let ms = Duration::from_millis;
    // 80/s with a 2 ms commit: the next slot is 12.5 ms away, the minimum suffices.
    assert_eq!(start_window(Some(80), ms(2)), MIN_START_AHEAD);
    // 80/s with 30 ms commits (a loaded database): ten slots pass during four commits.
    assert_eq!(start_window(Some(80), ms(30)), 10);
    // 1000/s with a 5 ms commit: twenty slots pass during four commits.
    assert_eq!(start_window(Some(1000), ms(5)), 20);
    // An open pace (the bench) is bounded by what is claimed ahead.
    assert_eq!(start_window(Some(1_000_000), ms(2)), CLAIM_AHEAD);
    assert_eq!(start_window(None, ms(2)), MIN_START_AHEAD);
}

/// The outcome that returns a claimed, unsent row to the queue on shutdown.
fn stopping() -> AttemptOutcome {
    AttemptOutcome::Deferred {
        at: now_ms(),
        reason: "not sent: Ringback was stopping".into(),
    }
}

/// The outcome of a send whose start could not be recorded: not attempted, queued again.
fn not_started(why: &str) -> AttemptOutcome {
    AttemptOutcome::Deferred {
        at: now_ms() + 1000,
        reason: format!("not sent: could not record the attempt before sending ({why})"),
    }
}

/// Longest sleep between polls when nothing is due and nobody wakes the lane.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// A lane's dependencies.
#[derive(Clone)]
pub struct Lane {
    pub sender: Sender,
    pub store: Arc<dyn Store>,
    pub client: Client,
    pub policy: RetryPolicy,
    pub permits: Arc<Semaphore>,
    pub wake: Arc<Notify>,
    /// Where the processor hands this lane the replies it claimed (see [`super::handoff`]).
    pub door: Arc<super::handoff::Door>,
    pub pacer: super::Pacer,
    pub holds: super::Holds,
    /// To tell marketing templates from the rest.
    pub templates: crate::template_registry::Registry,
    /// This node: claimed sends are leased to it (see [`crate::cluster`]).
    pub node: crate::cluster::Node,
    /// Whether each number can send (see [`crate::sender_status`]).
    pub sender_status: crate::sender_status::SenderStatus,
    /// How often an offline number tries one send.
    pub offline_probe: Duration,
}

/// A finished attempt waiting to be recorded.
type Finished = (ClaimedSend, AttemptOutcome);

impl Lane {
    /// Runs until `shutdown`, then waits for requests already in flight and records them.
    pub async fn run(self, mut shutdown: Shutdown) {
        // Outcomes are recorded by their own task, and due rows are claimed by another a
        // little ahead of need, so the loop that paces never waits for a transaction: at 1000
        // messages/s a pause of a few milliseconds is several lost sending slots.
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Finished>();
        let recorder = tokio::spawn(self.clone().recorder(done_rx, shutdown.clone()));
        let (starter, start_writer) = Starter::spawn(self.store.clone());
        let (claimed_tx, mut claimed_rx) = mpsc::channel::<Handed>(CLAIM_AHEAD);
        self.door.open(claimed_tx.clone(), self.node.clone());
        let claimer = tokio::spawn(self.clone().claimer(claimed_tx, shutdown.clone()));
        let mut in_flight = JoinSet::new();
        let mut concurrency = self.permits.available_permits();
        tracing::info!(phone_number_id = %self.sender.phone_number_id, "Outbox lane started.");
        // Sends whose start was asked for, in order: pacing waits for the first one's commit,
        // so a slow commit delays the pace instead of releasing a burst after it.
        let mut ahead: VecDeque<(ClaimedSend, Pending)> = VecDeque::new();
        loop {
            while in_flight.try_join_next().is_some() {}
            if ahead.is_empty() {
                let send = tokio::select! {
                    s = claimed_rx.recv() => match s { Some(s) => s, None => break },
                    _ = shutdown.wait() => break,
                };
                self.queue_start(send, &starter, &mut ahead, &done_tx);
            }
            let window = self.start_ahead(starter.commit_time());
            while ahead.len() < window {
                match claimed_rx.try_recv() {
                    Ok(send) => self.queue_start(send, &starter, &mut ahead, &done_tx),
                    Err(_) => break,
                }
            }
            self.door.set_start_room(window.saturating_sub(ahead.len()));
            let Some((send, pending)) = ahead.pop_front() else {
                continue;
            };
            let started = tokio::select! {
                r = pending.committed() => r,
                _ = shutdown.wait() => {
                    let _ = done_tx.send((send, stopping()));
                    break;
                }
            };
            if let Err(e) = started {
                let _ = done_tx.send((send, not_started(&e)));
                continue;
            }
            // Throughput pacing: wait for the number's next slot before each request.
            tokio::select! {
                _ = self.pacer.until_ready(&self.sender.phone_number_id) => {}
                _ = shutdown.wait() => {
                    let _ = done_tx.send((send, stopping()));
                    break;
                }
            }
            self.scale_concurrency(&mut concurrency);
            let lane = self.clone();
            let done = done_tx.clone();
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            in_flight.spawn(async move {
                let outcome = lane.attempt(&send).await;
                let _ = done.send((send, outcome));
                drop(permit);
            });
        }
        self.door.close();
        // Rows claimed (or started) but not sent go back to the queue.
        for (send, _) in ahead.drain(..) {
            let _ = done_tx.send((send, stopping()));
        }
        claimed_rx.close();
        while let Some((send, _)) = claimed_rx.recv().await {
            let _ = done_tx.send((send, stopping()));
        }
        let _ = claimer.await;
        while in_flight.join_next().await.is_some() {}
        drop(starter);
        let _ = start_writer.await;
        drop(done_tx);
        let _ = recorder.await;
        tracing::info!(phone_number_id = %self.sender.phone_number_id, "Outbox lane stopped.");
    }

    /// Sends a held or pair-limited row back to the queue, or asks for its start.
    /// A send the processor started in its own transaction (see [`super::handoff`]) needs no
    /// start of its own; held back, its started attempt is undone like a claimed one.
    fn queue_start(
        &self,
        (send, started): Handed,
        starter: &Starter,
        ahead: &mut VecDeque<(ClaimedSend, Pending)>,
        done: &mpsc::UnboundedSender<Finished>,
    ) {
        match self.held(&send).or_else(|| self.pair_limited(&send)) {
            Some(d) => {
                let _ = done.send(d);
            }
            None => {
                let pending = if started {
                    Pending::done()
                } else {
                    starter.request(&send)
                };
                ahead.push_back((send, pending));
            }
        }
    }

    /// How many rows to mark started ahead of pacing: the rows whose pacing slot falls within
    /// the next four commits of the start writer (`rate × commit time × 4`), at least
    /// [`MIN_START_AHEAD`] and at most what is claimed ahead. A fixed small count made each
    /// send wait for its own commit (one fsync per two sends); a count sized by time keeps the
    /// pace whatever the disk, while a crash still leaves only the next few slots uncertain.
    fn start_ahead(&self, commit: Duration) -> usize {
        start_window(self.pacer.rate(&self.sender.phone_number_id), commit)
    }

    /// Keeps enough requests in flight for the number's pace: at 1000 messages/s and a few
    /// hundred milliseconds per Cloud API answer, a fixed 32 would cap the rate. Grows only.
    fn scale_concurrency(&self, current: &mut usize) {
        let wanted = self
            .pacer
            .rate(&self.sender.phone_number_id)
            .map(|r| r as usize / 4)
            .unwrap_or(0);
        if wanted > *current {
            self.permits.add_permits(wanted - *current);
            tracing::info!(phone_number_id = %self.sender.phone_number_id, from = *current, to = wanted, "More sends in flight for a higher throughput.");
            *current = wanted;
        }
    }

    /// Claims due rows while the pacing loop has room for them (at most [`CLAIM_AHEAD`]).
    /// The longest idle wait: sends queued by another node (an API call it answered) wake no
    /// lane here, so the lane looks again at least this often.
    fn idle_poll(&self) -> Duration {
        IDLE_POLL.min(self.node.poll)
    }

    async fn claimer(self, tx: mpsc::Sender<Handed>, mut shutdown: Shutdown) {
        loop {
            // Wait for room before claiming: a claimed row is marked in flight.
            let room = tokio::select! {
                r = tx.reserve() => match r { Ok(r) => r, Err(_) => return },
                _ = shutdown.wait() => return,
            };
            drop(room);
            let limit = tx.capacity().max(1) as u32;
            let claimed = match self
                .store
                .claim_sends(
                    &self.sender.phone_number_id,
                    now_ms(),
                    limit,
                    &self.node.id,
                    self.node.send_lease_until(now_ms()),
                )
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error.message = %e, "Outbox claim failed; retrying in 1 s.");
                    tokio::select! { _ = tokio::time::sleep(IDLE_POLL) => continue, _ = shutdown.wait() => return }
                }
            };
            if claimed.is_empty() {
                let wait = self.idle_wait().await;
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait() => return,
                }
                continue;
            }
            for send in claimed {
                if tx.send((send, false)).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Records outcomes in batches until every sender of `rx` is gone.
    async fn recorder(self, mut rx: mpsc::UnboundedReceiver<Finished>, shutdown: Shutdown) {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 256).await > 0 {
            // A retry or a deferral may be due soon: the claiming loop looks after recording
            // it. Only then: after accepted sends there is nothing to claim, and under a burst
            // that empty claim was a writer transaction per recorded batch.
            let requeued = batch.iter().any(|(_, outcome)| {
                matches!(
                    outcome,
                    AttemptOutcome::Retry { .. } | AttemptOutcome::Deferred { .. }
                )
            });
            self.record(std::mem::take(&mut batch), &shutdown).await;
            if requeued {
                self.wake.notify_one();
            }
        }
    }

    /// Sends everything due now, one batch after another, and returns how many were sent.
    /// Tests use this to run the lane's unit of work without the loop.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let claimed = self.claim().await?;
            if claimed.is_empty() {
                return Ok(total);
            }
            total += claimed.len();
            let mut set = JoinSet::new();
            let mut deferred = Vec::new();
            let mut to_send = Vec::new();
            for send in claimed {
                match self.held(&send).or_else(|| self.pair_limited(&send)) {
                    Some(d) => deferred.push(d),
                    None => to_send.push(send),
                }
            }
            let started = self.store.start_attempts(&to_send, now_ms()).await?;
            let to_send: Vec<_> = to_send
                .into_iter()
                .zip(started)
                .filter_map(|(send, ok)| ok.then_some(send))
                .collect();
            for send in to_send {
                self.pacer.until_ready(&self.sender.phone_number_id).await;
                let lane = self.clone();
                set.spawn(async move {
                    let outcome = lane.attempt(&send).await;
                    (send, outcome)
                });
            }
            let mut finished = set.join_all().await;
            let only_deferred = finished.is_empty();
            finished.extend(deferred);
            self.store.record_attempts(&finished, now_ms()).await?;
            if only_deferred {
                return Ok(total);
            }
        }
    }

    /// A marketing template held back while the number is at risk (see [`super::holds`]).
    fn held(&self, send: &ClaimedSend) -> Option<Finished> {
        // The hold first: most of the time there is none, and the body need not be parsed.
        let reason = self.holds.marketing_hold(&self.sender.phone_number_id)?;
        let body: serde_json::Value = serde_json::from_str(&send.body).ok()?;
        let name = body.pointer("/template/name")?.as_str()?;
        let marketing = self.templates.snapshot().iter().any(|t| {
            t.waba_id == self.sender.waba_id
                && t.name == name
                && t.category.eq_ignore_ascii_case("MARKETING")
        });
        if !marketing {
            return None;
        }
        Some((
            send.clone(),
            AttemptOutcome::Deferred {
                at: now_ms() + HOLD_RECHECK.as_millis() as i64,
                reason,
            },
        ))
    }

    /// A send the pair rate limit holds back, with the time it may go.
    fn pair_limited(&self, send: &ClaimedSend) -> Option<Finished> {
        let wait = self
            .pacer
            .pair(
                &self.sender.phone_number_id,
                send.to.trim_start_matches('+'),
            )
            .err()?;
        let at = now_ms() + wait.as_millis() as i64 + 1;
        let reason = format!(
            "paced: this recipient's pair rate limit (1 message per 6 s, bursts of 45) is used up; next try in {} ms",
            wait.as_millis()
        );
        Some((send.clone(), AttemptOutcome::Deferred { at, reason }))
    }

    async fn claim(&self) -> Result<Vec<ClaimedSend>, StoreError> {
        // `drain` (tests) ignores permits and claims a batch of at least one.
        let free = self.permits.available_permits().max(1) as u32;
        self.store
            .claim_sends(
                &self.sender.phone_number_id,
                now_ms(),
                free,
                &self.node.id,
                self.node.send_lease_until(now_ms()),
            )
            .await
    }

    /// Until the next queued send is due (capped), so retries fire on time.
    async fn idle_wait(&self) -> Duration {
        match self.store.next_due(&self.sender.phone_number_id).await {
            Ok(Some(due)) => Duration::from_millis(
                (due - now_ms()).clamp(1, self.idle_poll().as_millis() as i64) as u64,
            ),
            _ => IDLE_POLL,
        }
    }

    /// Records finished attempts in one transaction. The outcome must be stored, so store
    /// hiccups are retried rather than leaving messages in `sending`, until shutdown: then the
    /// rows are left to the restart rules (a started attempt becomes `uncertain`, a claimed one
    /// is queued again), so stopping never waits on a store that keeps failing.
    async fn record(&self, finished: Vec<Finished>, shutdown: &Shutdown) {
        if finished.is_empty() {
            return;
        }
        let mut backoff = crate::retry::Backoff::store_write();
        let mut stop = shutdown.clone();
        while let Err(e) = self.store.record_attempts(&finished, now_ms()).await {
            if shutdown.is_triggered() {
                tracing::error!(error.message = %e, count = finished.len(), "Could not record send attempts while stopping; the next start resolves them.");
                return;
            }
            tracing::error!(error.message = %e, "Could not record send attempts; retrying.");
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = stop.wait() => {}
            }
        }
    }

    /// One Cloud API request and what to record about it.
    #[tracing::instrument(skip_all, fields(message_id = %send.message_id, attempt = send.attempt_no))]
    async fn attempt(&self, send: &ClaimedSend) -> AttemptOutcome {
        let number = &self.sender.phone_number_id;
        if let Err(reason) = self.sender_status.may_send(number) {
            // Not attempted: it waits in the queue until the next probe says the number is back.
            return AttemptOutcome::Deferred {
                at: now_ms() + self.offline_probe.as_millis() as i64,
                reason,
            };
        }
        let started = Instant::now();
        let outcome = self
            .client
            .send_message(number, &self.sender.access_token, &send.body)
            .await;
        if let Some(fact) = self.sender_status.after_send(number, &outcome) {
            crate::sender_status::announce(&self.store, &fact).await;
        }
        let now = now_ms();
        let (recorded, label) = match outcome {
            Outcome::Sent { wamid } => {
                tracing::debug!(%wamid, "Cloud API accepted the message.");
                (AttemptOutcome::Accepted { wamid }, "accepted")
            }
            Outcome::Retry {
                after,
                code,
                reason,
            } => match self
                .policy
                .next_attempt_at(send.attempt_no, code, after, now)
            {
                Some(at) => {
                    tracing::warn!(?code, %reason, retry_in_ms = at - now, "Send failed; will retry.");
                    (
                        AttemptOutcome::Retry {
                            at,
                            code,
                            detail: reason,
                        },
                        "retry",
                    )
                }
                None => {
                    let detail = format!("gave up after {} attempts: {reason}", send.attempt_no);
                    tracing::error!(?code, %detail, "Send failed for good.");
                    (AttemptOutcome::Failed { code, detail }, "failed")
                }
            },
            Outcome::Unknown { reason } => {
                tracing::warn!(%reason, "No answer to a send; it waits for Meta's status webhook before it is sent again.");
                (AttemptOutcome::Unknown { detail: reason }, "unknown")
            }
            Outcome::Fail { code, reason } => {
                let detail = match code {
                    Some(c) => format!("{reason}. {}", crate::cloud_api::errors::explain(c)),
                    None => reason,
                };
                tracing::error!(?code, %detail, "Send refused by the Cloud API; not retried.");
                (AttemptOutcome::Failed { code, detail }, "failed")
            }
        };
        crate::telemetry::send_finished(&self.sender.phone_number_id, label, started.elapsed());
        recorded
    }
}

/// Requeues the uncertain sends that no status webhook can still resolve; returns how many.
///
/// A status webhook naming an uncertain send may be stored and still wait its turn: the
/// processor works in order, and after a takeover or a restart it can be seconds behind (a
/// new leader finds every event the other nodes took in meanwhile). That status arrived in
/// time and must be read before the send is given up for lost, so a send is requeued once
/// `resend_after` has passed since it became uncertain *and* every event that arrived within
/// that time has been processed: the horizon is `now`, or the arrival of the oldest event
/// not processed yet.
async fn requeue_unresolved(
    store: &dyn Store,
    resend_after: Duration,
    max_attempts: u32,
    now: crate::time::Millis,
) -> Result<crate::store::UncertainResolved, StoreError> {
    let oldest = store.pending_events(1).await?;
    let horizon = oldest.first().map_or(now, |e| e.received_at.min(now));
    let resend_after = i64::try_from(resend_after.as_millis()).unwrap_or(i64::MAX / 4);
    store
        .requeue_uncertain(horizon - resend_after, now, max_attempts)
        .await
}

/// Housekeeping for all lanes: sends whose outcome was lost to a crash go back to the queue
/// How long the portfolio's reach may go unread while it is under half of every limit and
/// reading it is costly.
const REACH_FAR_REFRESH: Duration = Duration::from_secs(30);

/// A read of the reach at most this long is cheap enough for every pass.
const REACH_CHEAP: Duration = Duration::from_millis(5);

/// When the portfolio's reach (unique users reached in 24 h) was last read, what it was, and
/// how long reading it took.
#[derive(Default)]
struct ReachReads {
    last: usize,
    at: Option<Instant>,
    took: Duration,
}

impl ReachReads {
    /// Whether to read it again, given `share` = reach / the lowest limit (`None`: no limit).
    fn due(&self, share: Option<f64>, now: Instant) -> bool {
        match self.at {
            None => true,
            Some(_) if self.took <= REACH_CHEAP => true,
            Some(_) if share.is_some_and(|s| s >= 0.5) => true,
            Some(at) => now.duration_since(at) >= REACH_FAR_REFRESH,
        }
    }

    fn read(&mut self, reached: usize, began: Instant, now: Instant) {
        self.last = reached;
        self.at = Some(now);
        self.took = now.duration_since(began);
    }
}

#[cfg(test)]
#[test]
fn a_costly_reach_is_read_at_every_pass_only_near_a_limit() {
    let start = Instant::now();
    let mut r = ReachReads::default();
    assert!(r.due(None, start), "read once at start");
    r.read(10, start, start + Duration::from_millis(1));
    let soon = start + Duration::from_secs(1);
    assert!(r.due(Some(0.04), soon), "a cheap read: every pass");
    r.read(10, start, start + Duration::from_millis(60));
    assert!(
        !r.due(Some(0.04), soon),
        "costly and far from the limit: not every pass"
    );
    assert!(
        !r.due(None, soon),
        "costly and no limit known: not every pass"
    );
    assert!(r.due(Some(0.5), soon), "half the limit: every pass");
    assert!(
        r.due(
            Some(0.04),
            start + REACH_FAR_REFRESH + Duration::from_millis(60)
        ),
        "and at least every 30 s"
    );
}

/// when no status webhook resolved them in time, and the outbox depth gauge stays current.
pub async fn run_maintenance(
    store: Arc<dyn Store>,
    resend_after: Duration,
    max_attempts: u32,
    wakers: super::Wakers,
    holds: super::Holds,
    sender_ids: Vec<String>,
    mut shutdown: Shutdown,
) {
    let period = (resend_after / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut reach = ReachReads::default();
    loop {
        let now = now_ms();
        match requeue_unresolved(store.as_ref(), resend_after, max_attempts, now).await {
            Ok(r) => {
                if r.requeued > 0 {
                    tracing::warn!(
                        count = r.requeued,
                        "Requeued sends whose outcome was unknown (a restart, or no answer) and that no status webhook confirmed."
                    );
                    sender_ids.iter().for_each(|id| wakers.wake(id));
                }
                if r.failed > 0 {
                    tracing::error!(
                        count = r.failed,
                        max_attempts,
                        "Gave up on sends that got no answer and no status webhook after their last attempt."
                    );
                }
            }
            Err(e) => tracing::error!(error.message = %e, "Could not requeue uncertain sends."),
        }
        // Sends a dead node claimed: once their lease lapses they are this leader's.
        match store.mark_in_flight_uncertain(None, now).await {
            Ok(n) if n > 0 => {
                tracing::warn!(
                    count = n,
                    "Took over sends whose node stopped while they were in flight."
                );
                sender_ids.iter().for_each(|id| wakers.wake(id));
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error.message = %e, "Could not take over lapsed sends."),
        }
        // Messaging limits are per business portfolio: every number shares one count. The
        // count reads every template sent in 24 h (60 ms at 130k messages): when it costs
        // more than a few milliseconds and the reach is under half the limit, it is read
        // every REACH_FAR_REFRESH only.
        let began = Instant::now();
        if reach.due(holds.nearest_limit_share(reach.last), began)
            && let Ok(reached) = store
                .template_reach(None, now - 24 * crate::time::HOUR_MS)
                .await
        {
            reach.read(reached, began, Instant::now());
            for id in &sender_ids {
                holds.update(id, |r| r.reached = reached);
            }
        }
        if let Err(e) = store.maintain().await {
            tracing::warn!(error.message = %e, "Store maintenance failed.");
        }
        if let Ok(depth) = store.outbox_depth().await {
            crate::telemetry::outbox_depth(depth);
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.wait() => return,
        }
    }
}

#[cfg(test)]
mod tests;
