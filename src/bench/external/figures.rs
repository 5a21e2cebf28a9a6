//! What `ringback bench --target` prints: a line per run, every figure's min / median / max,
//! the median run's timeline, and the medians against issue 11's targets.

use serde::Serialize;

use crate::bench::report::{Figure, figure_lines, over_runs, timeline_line};
use crate::bench::summary::{Spread, grouped, median_run};
use crate::bench::timeline::Second;

/// One burst against the running server.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRun {
    pub run: usize,
    pub calls: usize,
    /// First post to last acknowledgement.
    pub burst_seconds: f64,
    pub accepted_calls_per_second: f64,
    /// Replies the sandbox had received when the last webhook was acknowledged.
    pub sends_during_load: usize,
    pub sends_during_load_percent: f64,
    /// First post to the sandbox's receive time of the last reply.
    pub all_sent_seconds: f64,
    pub end_to_end_sends_per_second: f64,
    /// The server process's user + system CPU from the first post to the last reply, per
    /// reply: the server alone, not the load generator or the sandbox.
    pub server_cpu_ms_per_send: f64,
    /// Each call's post → its acknowledgement (the webhook durable): the part of the latency
    /// in front of the acknowledgement; the rest is deciding and sending behind it.
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    /// Each call's post → the sandbox receiving its reply.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// CPU over the same interval, in cores (1.0 = one core busy throughout).
    pub server_cores: f64,
    pub load_generator_cores: f64,
    /// `None` without `--sandbox-pid`.
    pub sandbox_cores: Option<f64>,
    /// The machine's busy CPU that was none of the three above.
    pub others_cores: f64,
    pub timeline: Vec<Second>,
}

const FIGURES: &[Figure<TargetRun>] = &[
    Figure {
        key: "accepted_calls_per_second",
        label: "accepted webhooks/s",
        decimals: 0,
        value: |r| r.accepted_calls_per_second,
    },
    Figure {
        key: "sends_during_load",
        label: "sends during load",
        decimals: 0,
        value: |r| r.sends_during_load as f64,
    },
    Figure {
        key: "sends_during_load_percent",
        label: "sends during load %",
        decimals: 1,
        value: |r| r.sends_during_load_percent,
    },
    Figure {
        key: "end_to_end_sends_per_second",
        label: "end-to-end sends/s",
        decimals: 0,
        value: |r| r.end_to_end_sends_per_second,
    },
    Figure {
        key: "all_sent_seconds",
        label: "all replies sent after s",
        decimals: 2,
        value: |r| r.all_sent_seconds,
    },
    Figure {
        key: "server_cpu_ms_per_send",
        label: "server CPU per send ms",
        decimals: 3,
        value: |r| r.server_cpu_ms_per_send,
    },
    Figure {
        key: "ack_p50_ms",
        label: "webhook → ack p50 ms",
        decimals: 2,
        value: |r| r.ack_p50_ms,
    },
    Figure {
        key: "ack_p99_ms",
        label: "webhook → ack p99 ms",
        decimals: 2,
        value: |r| r.ack_p99_ms,
    },
    Figure {
        key: "latency_p50_ms",
        label: "webhook → send p50 ms",
        decimals: 2,
        value: |r| r.latency_p50_ms,
    },
    Figure {
        key: "latency_p99_ms",
        label: "webhook → send p99 ms",
        decimals: 2,
        value: |r| r.latency_p99_ms,
    },
    Figure {
        key: "latency_max_ms",
        label: "webhook → send max ms",
        decimals: 2,
        value: |r| r.latency_max_ms,
    },
    Figure {
        key: "server_cores",
        label: "server, cores",
        decimals: 2,
        value: |r| r.server_cores,
    },
    Figure {
        key: "load_generator_cores",
        label: "load generator, cores",
        decimals: 2,
        value: |r| r.load_generator_cores,
    },
    Figure {
        key: "others_cores",
        label: "other processes, cores",
        decimals: 2,
        value: |r| r.others_cores,
    },
];

/// Only with `--sandbox-pid`.
const SANDBOX_FIGURES: &[Figure<TargetRun>] = &[Figure {
    key: "sandbox_cores",
    label: "sandbox, cores",
    decimals: 2,
    value: |r| r.sandbox_cores.unwrap_or(0.0),
}];

/// One short line for a run.
pub fn run_line(run: &TargetRun) -> String {
    let mut line = format!(
        "run {}: accepted {}/s, during load {} sent ({:.1} %), end-to-end {} sends/s in {:.2} s, server CPU {:.3} ms/send, webhook → ack p50 {:.2} ms, webhook → send p50 {:.2} ms p99 {:.2} ms; cores: server {:.2}, load generator {:.2}",
        run.run,
        grouped(run.accepted_calls_per_second, 0),
        grouped(run.sends_during_load as f64, 0),
        run.sends_during_load_percent,
        grouped(run.end_to_end_sends_per_second, 0),
        run.all_sent_seconds,
        run.server_cpu_ms_per_send,
        run.ack_p50_ms,
        run.latency_p50_ms,
        run.latency_p99_ms,
        run.server_cores,
        run.load_generator_cores,
    );
    if let Some(sandbox) = run.sandbox_cores {
        line.push_str(&format!(", sandbox {sandbox:.2}"));
    }
    if let Some(note) = crate::bench::cpu::run_note(run.others_cores) {
        line.push_str("; ");
        line.push_str(&note);
    }
    line
}

/// Issue 11's targets for Ringback, checked against the medians over the runs.
struct Target {
    label: &'static str,
    bound: Bound,
    decimals: usize,
    value: fn(&TargetRun) -> f64,
}

#[derive(Clone, Copy)]
enum Bound {
    AtLeast(f64),
    AtMost(f64),
    Below(f64),
}

impl Bound {
    fn met(self, value: f64) -> bool {
        match self {
            Bound::AtLeast(b) => value >= b,
            Bound::AtMost(b) => value <= b,
            Bound::Below(b) => value < b,
        }
    }
}

const TARGETS: &[Target] = &[
    Target {
        label: "end-to-end sends/s ≥ 5,000",
        bound: Bound::AtLeast(5_000.0),
        decimals: 0,
        value: |r| r.end_to_end_sends_per_second,
    },
    Target {
        label: "server CPU per send ≤ 0.2 ms",
        bound: Bound::AtMost(0.2),
        decimals: 3,
        value: |r| r.server_cpu_ms_per_send,
    },
    Target {
        label: "webhook → send p50 < 20 ms",
        bound: Bound::Below(20.0),
        decimals: 2,
        value: |r| r.latency_p50_ms,
    },
    Target {
        label: "sends during load ≥ 80 %",
        bound: Bound::AtLeast(80.0),
        decimals: 1,
        value: |r| r.sends_during_load_percent,
    },
];

/// `met` or `MISSED` per target, from the medians.
pub fn target_lines(runs: &[TargetRun]) -> Vec<String> {
    TARGETS
        .iter()
        .filter_map(|t| {
            let median = Spread::of(&runs.iter().map(t.value).collect::<Vec<_>>())?.median;
            Some(format!(
                "  {:<30} {} (median {})",
                t.label,
                if t.bound.met(median) { "met" } else { "MISSED" },
                grouped(median, t.decimals)
            ))
        })
        .collect()
}

/// The lines after the runs.
pub fn summary_lines(runs: &[TargetRun], with_sandbox: bool) -> Vec<String> {
    let mut out = vec![over_runs(runs.len())];
    out.extend(figure_lines(runs, FIGURES));
    if with_sandbox {
        out.extend(figure_lines(runs, SANDBOX_FIGURES));
    }
    out.push(
        "  (server CPU per send: user + system CPU of the server process alone, /proc/PID/stat, from the burst's first post to its last reply, over the burst's calls; cores: each process's CPU over that interval)"
            .to_string(),
    );
    let accepted: Vec<f64> = runs.iter().map(|r| r.accepted_calls_per_second).collect();
    if let Some(run) = median_run(&accepted).and_then(|i| runs.get(i)) {
        out.push(timeline_line(run.run, &run.timeline));
    }
    out.push("targets (issue 11, medians):".to_string());
    out.extend(target_lines(runs));
    out
}

/// The spread of every figure, keyed as in JSON.
pub fn summary_json(
    runs: &[TargetRun],
    with_sandbox: bool,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut all = crate::bench::report::figures_json(runs, FIGURES)?;
    if with_sandbox {
        all.extend(crate::bench::report::figures_json(runs, SANDBOX_FIGURES)?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: usize, sends_per_second: f64, cpu_ms: f64, p50: f64, during: f64) -> TargetRun {
        TargetRun {
            run: n,
            calls: 20_000,
            burst_seconds: 2.0,
            accepted_calls_per_second: 10_000.0 - n as f64,
            sends_during_load: (during * 200.0) as usize,
            sends_during_load_percent: during,
            all_sent_seconds: 20_000.0 / sends_per_second,
            end_to_end_sends_per_second: sends_per_second,
            server_cpu_ms_per_send: cpu_ms,
            ack_p50_ms: p50 / 2.0,
            ack_p99_ms: p50,
            latency_p50_ms: p50,
            latency_p99_ms: p50 * 3.0,
            latency_max_ms: p50 * 5.0,
            server_cores: 0.95,
            load_generator_cores: 0.6,
            sandbox_cores: None,
            others_cores: 0.0,
            timeline: vec![],
        }
    }

    #[test]
    fn targets_are_judged_on_the_medians() {
        let runs = [
            run(1, 6_000.0, 0.15, 8.0, 90.0),
            run(2, 4_000.0, 0.20, 30.0, 50.0),
            run(3, 5_500.0, 0.25, 12.0, 85.0),
        ];
        let lines = target_lines(&runs);
        assert_eq!(lines.len(), 4);
        assert!(lines[0].contains("met (median 5,500)"), "{}", lines[0]);
        // Exactly 0.2 ms is within "≤ 0.2 ms".
        assert!(lines[1].contains("met (median 0.200)"), "{}", lines[1]);
        assert!(lines[2].contains("met (median 12.00)"), "{}", lines[2]);
        assert!(lines[3].contains("met (median 85.0)"), "{}", lines[3]);
        let slow = [run(1, 4_000.0, 0.3, 25.0, 10.0)];
        assert!(target_lines(&slow).iter().all(|l| l.contains("MISSED")));
    }

    #[test]
    fn the_time_to_the_acknowledgement_is_printed_beside_the_time_to_the_send() {
        let runs = [run(1, 6_000.0, 0.15, 8.0, 90.0)];
        assert!(
            run_line(&runs[0]).contains("webhook → ack p50 4.00 ms, webhook → send p50 8.00 ms"),
            "{}",
            run_line(&runs[0])
        );
        let summary = summary_lines(&runs, false).join("\n");
        assert!(summary.contains("webhook → ack p50 ms"), "{summary}");
        assert_eq!(
            summary_json(&runs, false).unwrap()["ack_p99_ms"]["median"],
            8.0
        );
    }

    #[test]
    fn the_sandbox_figure_appears_only_when_its_pid_was_given() {
        let runs = [run(1, 6_000.0, 0.15, 8.0, 90.0)];
        let without = summary_lines(&runs, false).join("\n");
        assert!(!without.contains("sandbox, cores"));
        assert!(without.contains("server CPU per send ms"));
        let with = summary_lines(&runs, true).join("\n");
        assert!(with.contains("sandbox, cores"));
        assert!(
            summary_json(&runs, true)
                .unwrap()
                .contains_key("sandbox_cores")
        );
        assert!(
            !summary_json(&runs, false)
                .unwrap()
                .contains_key("sandbox_cores")
        );
    }
}
