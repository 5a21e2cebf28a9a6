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
    /// Burst calls, posted `concurrency` at a time as fast as they are acknowledged: from
    /// posting each webhook to the sandbox receiving its reply.
    pub burst_latency_p50_ms: f64,
    pub burst_latency_p99_ms: f64,
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

/// One summarised figure of a run of kind `R`: its JSON key, its label and how many decimals
/// it is printed with. `ringback bench --target` has runs of its own kind and shares these.
pub struct Figure<R> {
    pub key: &'static str,
    pub label: &'static str,
    pub decimals: usize,
    pub value: fn(&R) -> f64,
}

const FIGURES: &[Figure<Run>] = &[
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
        key: "burst_latency_p50_ms",
        label: "burst p50 ms",
        decimals: 2,
        value: |r| r.burst_latency_p50_ms,
    },
    Figure {
        key: "burst_latency_p99_ms",
        label: "burst p99 ms",
        decimals: 2,
        value: |r| r.burst_latency_p99_ms,
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

fn spread<R>(runs: &[R], figure: &Figure<R>) -> Option<Spread> {
    Spread::of(&runs.iter().map(figure.value).collect::<Vec<_>>())
}

/// `  label   min …  median …  max …` for every figure.
pub fn figure_lines<R>(runs: &[R], figures: &[Figure<R>]) -> Vec<String> {
    figures
        .iter()
        .filter_map(|figure| {
            let s = spread(runs, figure)?;
            Some(format!(
                "  {:<26} min {:>9}  median {:>9}  max {:>9}",
                figure.label,
                grouped(s.min, figure.decimals),
                grouped(s.median, figure.decimals),
                grouped(s.max, figure.decimals),
            ))
        })
        .collect()
}

/// Every figure's spread, keyed by its JSON key.
pub fn figures_json<R>(
    runs: &[R],
    figures: &[Figure<R>],
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    Ok(figures
        .iter()
        .filter_map(|f| Some((f.key.to_string(), serde_json::to_value(spread(runs, f)?))))
        .map(|(k, v)| v.map(|v| (k, v)))
        .collect::<Result<_, _>>()?)
}

/// `over 3 runs:`
pub fn over_runs(count: usize) -> String {
    format!("over {count} run{}:", if count == 1 { "" } else { "s" })
}

/// One short line for a run, with a note when other processes competed for the CPU.
pub fn run_line(run: &Run, postgres: bool) -> String {
    let mut line = format!(
        "run {}: accepted {}/s, during load {} sent ({:.1} %), end-to-end {} sends/s in {:.2} s, CPU {:.3} ms/send, burst p50 {:.2} ms p99 {:.2} ms, paced p99 {:.2} ms",
        run.run,
        grouped(run.accepted_calls_per_second, 0),
        grouped(run.sends_during_load as f64, 0),
        run.sends_during_load_percent,
        grouped(run.end_to_end_sends_per_second, 0),
        run.burst_all_sent_seconds,
        run.cpu_ms_per_send,
        run.burst_latency_p50_ms,
        run.burst_latency_p99_ms,
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
    let mut out = vec![over_runs(runs.len())];
    out.extend(figure_lines(runs, FIGURES));
    out.push(
        "  (CPU per send: user + system CPU of the whole process — server + sandbox + load generator — from the burst's first post to its last reply, over the burst's replies)"
            .to_string(),
    );
    out.push(
        "  (burst p50/p99: each burst webhook's post to the sandbox receiving its reply, with the burst's clients posting again as soon as they are acknowledged)"
            .to_string(),
    );
    let accepted: Vec<f64> = runs.iter().map(|r| r.accepted_calls_per_second).collect();
    if let Some(run) = median_run(&accepted).and_then(|i| runs.get(i)) {
        out.push(timeline_line(run.run, &run.timeline));
    }
    out
}

/// The timeline of the run with the median accepted webhooks/s.
pub fn timeline_line(run: usize, timeline: &[Second]) -> String {
    format!(
        "per second (accepted/sent), run {run} (median accepted webhooks/s): {}",
        compact(timeline)
    )
}

/// Every run and the summary, as one JSON document.
pub fn json(
    store: &str,
    nodes: usize,
    concurrency: usize,
    before: &Before,
    runs: &[Run],
) -> anyhow::Result<String> {
    let summary = figures_json(runs, FIGURES)?;
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "store": store,
        "nodes": nodes,
        "concurrency": concurrency,
        "before": before,
        "runs": runs,
        "summary": summary,
    }))?)
}

/// The machine before the runs: other processes' CPU, the load average, and the note when
/// the figures that follow are a floor.
pub fn print_before(before: &Before) {
    let [one, five, fifteen] = before.load_average;
    println!(
        "before: other processes used {:.0} % of the CPU over 1 s idle; load average {one:.2} {five:.2} {fifteen:.2}",
        before.others_cpu_percent
    );
    if let Some(note) = &before.note {
        println!("{note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: usize, p50: f64, p99: f64) -> Run {
        Run {
            run: n,
            burst_calls: 20_000,
            burst_seconds: 2.0,
            accepted_calls_per_second: 10_000.0,
            sends_during_load: 16_000,
            sends_during_load_percent: 80.0,
            burst_all_sent_seconds: 2.5,
            end_to_end_sends_per_second: 8_000.0,
            cpu_ms_per_send: 0.2,
            paced_rate: 100,
            paced_calls: 1_000,
            latency_p50_ms: 3.0,
            latency_p99_ms: 6.0,
            latency_max_ms: 9.0,
            burst_latency_p50_ms: p50,
            burst_latency_p99_ms: p99,
            idle_rss_mb: 30.0,
            peak_rss_mb: 90.0,
            others_cores: 0.0,
            timeline: vec![],
        }
    }

    #[test]
    fn the_burst_latency_is_on_each_run_line_and_in_the_summary() {
        let runs = [run(1, 12.5, 40.0), run(2, 10.0, 30.0), run(3, 14.0, 55.0)];
        assert!(run_line(&runs[0], false).contains("burst p50 12.50 ms p99 40.00 ms"));
        let lines = summary_lines(&runs);
        let p50 = lines.iter().find(|l| l.contains("burst p50 ms")).unwrap();
        assert!(
            p50.contains("min     10.00  median     12.50  max     14.00"),
            "{p50}"
        );
        assert!(lines.iter().any(|l| l.contains("burst p99 ms")));
        let json = json(
            "SQLite",
            1,
            64,
            &Before {
                cores: 2,
                others_cpu_percent: 0.0,
                load_average: [0.0; 3],
                note: None,
            },
            &runs,
        )
        .unwrap();
        assert!(json.contains("\"burst_latency_p99_ms\""));
    }
}
