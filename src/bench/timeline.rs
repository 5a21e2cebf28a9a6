//! A burst second by second: webhooks acknowledged and replies the sandbox received in each
//! second of the burst and its drain. The totals alone hide whether the server sends while it
//! takes webhooks in, or takes everything in first and sends afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Running totals at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the burst's first post.
    pub at_s: f64,
    pub accepted: usize,
    pub sent: usize,
}

/// One interval of the timeline: a whole second, except the last, which ends with the last
/// reply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Second {
    /// Length of the interval (1.0 but for the last).
    pub seconds: f64,
    pub accepted: usize,
    pub sent: usize,
}

/// Intervals between consecutive samples; the first starts at zero.
pub fn per_second(samples: &[Sample]) -> Vec<Second> {
    let start = Sample {
        at_s: 0.0,
        accepted: 0,
        sent: 0,
    };
    std::iter::once(&start)
        .chain(samples)
        .zip(samples)
        .map(|(before, after)| Second {
            seconds: after.at_s - before.at_s,
            accepted: after.accepted.saturating_sub(before.accepted),
            sent: after.sent.saturating_sub(before.sent),
        })
        .collect()
}

/// `9500/1200 9400/3100 0/2000 0/800 (last 0.4 s)`.
pub fn compact(seconds: &[Second]) -> String {
    let mut out: Vec<String> = seconds
        .iter()
        .map(|s| format!("{}/{}", s.accepted, s.sent))
        .collect();
    if let Some(last) = seconds.last()
        && (last.seconds - 1.0).abs() > 0.05
    {
        out.push(format!("(last {:.1} s)", last.seconds));
    }
    out.join(" ")
}

/// Where the timeline reads how many replies the Cloud API received so far: the in-process
/// sandbox directly, or a standalone one over HTTP (`ringback bench --target`).
pub trait SentCount: Send + Sync + 'static {
    fn count_sent(&self) -> impl Future<Output = anyhow::Result<usize>> + Send;
}

impl SentCount for crate::sandbox::Sandbox {
    fn count_sent(&self) -> impl Future<Output = anyhow::Result<usize>> + Send {
        let sent = self.sent_count();
        async move { Ok(sent) }
    }
}

/// Samples the burst's counters every second until [`Sampler::finish`].
pub struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<Sample>>>,
}

impl Sampler {
    /// `accepted` counts acknowledged posts; the sandbox's count is taken relative to
    /// `sent_before`, the replies it had before the burst.
    pub fn start(
        started: Instant,
        accepted: Arc<AtomicUsize>,
        sandbox: impl SentCount,
        sent_before: usize,
    ) -> Sampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // The count comes first: over HTTP it takes a moment, and the instant and the
            // accepted count are read when it is known, so the three belong together.
            let sample = async || -> anyhow::Result<Sample> {
                let sent = sandbox.count_sent().await?.saturating_sub(sent_before);
                Ok(Sample {
                    at_s: started.elapsed().as_secs_f64(),
                    accepted: accepted.load(Ordering::Relaxed),
                    sent,
                })
            };
            let mut samples = Vec::new();
            // Ticks on whole seconds after the burst's start, and the missed ones are not
            // made up in a rush: each interval stays about a second long.
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::from_std(started) + Duration::from_secs(1),
                Duration::from_secs(1),
            );
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => samples.push(sample().await?),
                    _ = &mut stopped => {
                        samples.push(sample().await?);
                        return Ok(samples);
                    }
                }
            }
        });
        Sampler { stop, task }
    }

    /// Takes a last sample now and returns the timeline.
    pub async fn finish(self) -> anyhow::Result<Vec<Second>> {
        // The task only ends when told to or on a failed count: a send error means it already
        // ended, and the join below reports why.
        let _ = self.stop.send(());
        Ok(per_second(&self.task.await??))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_interval_is_the_difference_of_running_totals() {
        let samples = [
            Sample {
                at_s: 1.0,
                accepted: 9500,
                sent: 1200,
            },
            Sample {
                at_s: 2.0,
                accepted: 10_000,
                sent: 4300,
            },
            Sample {
                at_s: 2.4,
                accepted: 10_000,
                sent: 10_000,
            },
        ];
        let t = per_second(&samples);
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].accepted, t[0].sent), (9500, 1200));
        assert_eq!((t[1].accepted, t[1].sent), (500, 3100));
        assert_eq!((t[2].accepted, t[2].sent), (0, 5700));
        assert!((t[2].seconds - 0.4).abs() < 1e-9);
        assert_eq!(compact(&t), "9500/1200 500/3100 0/5700 (last 0.4 s)");
        assert!(per_second(&[]).is_empty());
    }
}
