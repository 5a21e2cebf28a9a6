//! What the default scenario prints: a line per run, then every figure's min / median / max
//! over the runs, and the median run's second-by-second timeline; or all of it as JSON.

use serde::Serialize;

use super::summary::{Spread, grouped, median_run};
use super::timeline::{Second, compact};

/// Figures of one run (one fresh store and server).
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// 1, 2, … in the order they ran.
    pub run: usize,
    pub burst_calls: usize,
    pub burst_seconds: f64,
    pub accepted_calls_per_second: f64,
    /// Burst replies the sandbox had received when the last burst webhook was acknowledged.
    pub sends_during_load: usize,
    pub sends_during_load_percent: f64,
    /// From the burst's first post to the sandbox receiving its last reply.
    pub burst_all_sent_seconds: f64,
    pub end_to_end_sends_per_second: f64,
    /// This process's CPU (user + system) from the burst's first post to its last reply, per
    /// burst reply. The whole process: server, sandbox and load generator.
    pub cpu_ms_per_send: f64,
    pub paced_rate: u32,
    pub paced_calls: usize,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub idle_rss_mb: f64,
    pub peak_rss_mb: f64,
    /// Other processes' CPU during the run, in cores (PostgreSQL's included when it is the
    /// store).
    pub others_cores: f64,
    pub timeline: Vec<Second>,
}

/// The machine before the runs.
#[derive(Debug, Clone, Serialize)]
pub struct Before {
    pub cores: usize,
    /// Other processes' share of the machine's CPU over a second while the bench was idle.
    pub others_cpu_percent: f64,
    pub load_average: [f64; 3],
    pub note: Option<String>,
}

/// One summarised figure: its JSON key, its label and how many decimals it is printed with.
struct Figure {
    key: &'static str,
    label: &'static str,
    decimals: usize,
    value: fn(&Run) -> f64,
}

const FIGURES: &[Figure] = &[
    Figure {
        key: "accepted_calls_per_second",
        label: "accepted webhooks/s",
        decimals: 0,
        value: |r| r.accepted_calls_per_second,
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
        key: "burst_all_sent_seconds",
        label: "all replies sent after s",
        decimals: 2,
        value: |r| r.burst_all_sent_seconds,
    },
    Figure {
        key: "cpu_ms_per_send",
        label: "CPU per send ms",
        decimals: 3,
        value: |r| r.cpu_ms_per_send,
    },
    Figure {
        key: "latency_p50_ms",
        label: "paced p50 ms",
        decimals: 2,
        value: |r| r.latency_p50_ms,
    },
    Figure {
        key: "latency_p99_ms",
        label: "paced p99 ms",
        decimals: 2,
        value: |r| r.latency_p99_ms,
    },
    Figure {
        key: "latency_max_ms",
        label: "paced max ms",
        decimals: 2,
        value: |r| r.latency_max_ms,
    },
    Figure {
        key: "idle_rss_mb",
        label: "idle RSS MB",
        decimals: 1,
        value: |r| r.idle_rss_mb,
    },
    Figure {
        key: "peak_rss_mb",
        label: "peak RSS MB",
        decimals: 1,
        value: |r| r.peak_rss_mb,
    },
    Figure {
        key: "others_cores",
        label: "other processes, cores",
        decimals: 2,
        value: |r| r.others_cores,
    },
];

fn spread(runs: &[Run], figure: &Figure) -> Option<Spread> {
    Spread::of(&runs.iter().map(figure.value).collect::<Vec<_>>())
}

/// One short line for a run, with a note when other processes competed for the CPU.
pub fn run_line(run: &Run, postgres: bool) -> String {
    let mut line = format!(
        "run {}: accepted {}/s, during load {} sent ({:.1} %), end-to-end {} sends/s in {:.2} s, CPU {:.3} ms/send, paced p99 {:.2} ms",
        run.run,
        grouped(run.accepted_calls_per_second, 0),
        grouped(run.sends_during_load as f64, 0),
        run.sends_during_load_percent,
        grouped(run.end_to_end_sends_per_second, 0),
        run.burst_all_sent_seconds,
        run.cpu_ms_per_send,
        run.latency_p99_ms,
    );
    if let Some(note) = super::cpu::run_note(run.others_cores) {
        line.push_str("; ");
        line.push_str(&note);
        if postgres {
            line.push_str(" (PostgreSQL's included)");
        }
    }
    line
}

/// The lines after the runs: the spread of every figure and the median run's timeline.
pub fn summary_lines(runs: &[Run]) -> Vec<String> {
    let mut out = vec![format!(
        "over {} run{}:",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" }
    )];
    for figure in FIGURES {
        if let Some(s) = spread(runs, figure) {
            out.push(format!(
                "  {:<26} min {:>9}  median {:>9}  max {:>9}",
                figure.label,
                grouped(s.min, figure.decimals),
                grouped(s.median, figure.decimals),
                grouped(s.max, figure.decimals),
            ));
        }
    }
    out.push(
        "  (CPU per send: user + system CPU of the whole process — server + sandbox + load generator — from the burst's first post to its last reply, over the burst's replies)"
            .to_string(),
    );
    let accepted: Vec<f64> = runs.iter().map(|r| r.accepted_calls_per_second).collect();
    if let Some(run) = median_run(&accepted).and_then(|i| runs.get(i)) {
        out.push(format!(
            "per second (accepted/sent), run {} (median accepted webhooks/s): {}",
            run.run,
            compact(&run.timeline)
        ));
    }
    out
}

/// Every run and the summary, as one JSON document.
pub fn json(
    store: &str,
    nodes: usize,
    concurrency: usize,
    before: &Before,
    runs: &[Run],
) -> anyhow::Result<String> {
    let summary: serde_json::Map<String, serde_json::Value> = FIGURES
        .iter()
        .filter_map(|f| Some((f.key.to_string(), serde_json::to_value(spread(runs, f)?))))
        .map(|(k, v)| v.map(|v| (k, v)))
        .collect::<Result<_, _>>()?;
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "store": store,
        "nodes": nodes,
        "concurrency": concurrency,
        "before": before,
        "runs": runs,
        "summary": summary,
    }))?)
}
