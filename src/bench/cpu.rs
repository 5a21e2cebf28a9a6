//! CPU time, read from `/proc`: this process's own (`/proc/self/stat`), another's
//! (`/proc/PID/stat`, for a server driven from outside) and the whole machine's
//! (`/proc/stat`), so the bench can say how much CPU a send costs and whether other processes
//! were competing for the cores while it measured (its figures are then a floor).
//!
//! Both files count in clock ticks of `USER_HZ`. The crate forbids `unsafe`, so
//! `sysconf(_SC_CLK_TCK)` is out of reach; `USER_HZ` is part of the kernel's ABI and is 100 on
//! every architecture Ringback runs on (x86-64, arm64), which is what `getconf CLK_TCK` prints.
//! The comparisons between the two files do not depend on it (same unit on both sides); only
//! the conversion to milliseconds does.

use anyhow::Context;

/// Clock ticks per second of `/proc/stat` and `/proc/PID/stat` (see the module docs).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// Above this share, other processes' CPU is worth a note: the bench's figures are then a
/// floor. It applies to the machine's capacity before the runs and to one core during a run.
pub const OTHERS_THRESHOLD: f64 = 0.10;

/// The aggregate `cpu` line of `/proc/stat`: every core's ticks summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineTicks {
    /// Ticks spent running something: user, nice, system, irq, softirq, steal.
    pub busy: u64,
    /// Every tick, busy or not (adds idle and iowait).
    pub total: u64,
    /// The `cpuN` lines: cores the ticks are summed over.
    pub cpus: usize,
}

/// Reads `/proc/stat`'s aggregate line. Guest time is not added: the kernel already counts it
/// in user (and guest_nice in nice).
pub fn parse_proc_stat(text: &str) -> anyhow::Result<MachineTicks> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))
        .context("/proc/stat has no aggregate `cpu` line")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse::<u64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("/proc/stat: `{line}` is not a list of tick counts"))?;
    anyhow::ensure!(
        fields.len() >= 8,
        "/proc/stat: `{line}` has fewer than the 8 fields up to steal"
    );
    let field = |i: usize| fields[i];
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
    let total = busy + field(3) + field(4);
    let cpus = text
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    Ok(MachineTicks {
        busy,
        total,
        cpus: cpus.max(1),
    })
}

/// A process's user + system ticks, summed over its threads: fields 14 and 15 of
/// `/proc/PID/stat` (or `/proc/self/stat`). Field 2 (the command name, in parentheses) may
/// hold spaces and parentheses itself, so the count starts after the last `)`.
pub fn parse_process_ticks(text: &str) -> anyhow::Result<u64> {
    let after_name = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .context("/proc/PID/stat has no `(command)` field")?;
    // After the name come fields 3 (state), 4, …: field N is at index N - 3.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let tick = |field: usize| -> anyhow::Result<u64> {
        let raw = fields
            .get(field - 3)
            .with_context(|| format!("/proc/PID/stat has no field {field}"))?;
        raw.parse::<u64>()
            .with_context(|| format!("/proc/PID/stat field {field} is `{raw}`, not ticks"))
    };
    Ok(tick(14)? + tick(15)?)
}

/// Another process's user + system ticks (all its threads), e.g. a server the bench drives
/// from outside: `/proc/PID/stat` is readable for any process of the same user, and for root.
pub fn process_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}: is process {pid} running?"))?;
    parse_process_ticks(&text).with_context(|| format!("in {path}"))
}

/// Ticks in milliseconds of CPU time.
pub fn ticks_ms(ticks: u64) -> f64 {
    ticks as f64 * 1000.0 / TICKS_PER_SECOND
}

/// The cores a process may run on, as `/proc/PID/status` lists them (`0`, `1`, `0-1`): shows
/// whether `taskset` pinned the processes the way a benchmark meant to.
pub fn parse_allowed_cpus(status: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|list| list.trim().to_string())
}

/// [`parse_allowed_cpus`] of process `pid`, or of this process; `None` where it cannot be read.
pub fn allowed_cpus(pid: Option<u32>) -> Option<String> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    parse_allowed_cpus(&std::fs::read_to_string(path).ok()?)
}

/// The 1, 5 and 15 minute load averages of `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> anyhow::Result<[f64; 3]> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    let mut next = || -> anyhow::Result<f64> {
        fields
            .next()
            .context("/proc/loadavg has fewer than 3 fields")?
            .with_context(|| format!("/proc/loadavg: `{}` is not three numbers", text.trim()))
    };
    Ok([next()?, next()?, next()?])
}

/// One reading of the machine's and this process's CPU counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSample {
    pub machine: MachineTicks,
    pub own: u64,
}

impl CpuSample {
    pub fn now() -> anyhow::Result<CpuSample> {
        let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        let own = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
        Ok(CpuSample {
            machine: parse_proc_stat(&stat)?,
            own: parse_process_ticks(&own)?,
        })
    }

    /// What was used between `earlier` and this sample.
    pub fn since(&self, earlier: &CpuSample) -> CpuUse {
        let own = self.own.saturating_sub(earlier.own);
        let busy = self.machine.busy.saturating_sub(earlier.machine.busy);
        CpuUse {
            own_ticks: own,
            // The two files are sampled by different kernel paths (per-tick for /proc/stat,
            // scaled run time for a process), so this process can appear to use a few ticks
            // more than the whole machine did: that is no CPU used by others.
            others_ticks: busy.saturating_sub(own),
            total_ticks: self.machine.total.saturating_sub(earlier.machine.total),
            cpus: self.machine.cpus,
        }
    }
}

/// CPU used over an interval, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuUse {
    pub own_ticks: u64,
    /// The machine's busy ticks that were not this process's.
    pub others_ticks: u64,
    /// The machine's capacity over the interval: every core's ticks.
    pub total_ticks: u64,
    pub cpus: usize,
}

impl CpuUse {
    /// This process's CPU time in milliseconds.
    pub fn own_ms(&self) -> f64 {
        ticks_ms(self.own_ticks)
    }

    /// Other processes' share of the machine's capacity, 0 to 1.
    pub fn others_share(&self) -> f64 {
        if self.total_ticks == 0 {
            return 0.0;
        }
        self.others_ticks as f64 / self.total_ticks as f64
    }

    /// Other processes' CPU in cores (1.0 = one core kept busy for the whole interval).
    pub fn others_cores(&self) -> f64 {
        self.others_share() * self.cpus as f64
    }
}

/// The note printed before the runs when other processes used more than the threshold of
/// the machine's CPU while the bench sat idle.
pub fn before_note(others_share: f64) -> Option<String> {
    (others_share > OTHERS_THRESHOLD).then(|| {
        format!(
            "note: other processes were using {:.0} % of the CPU before the run; figures are a floor",
            others_share * 100.0
        )
    })
}

/// The note on a run's line when other processes used more than the threshold of one core
/// during it.
pub fn run_note(others_cores: f64) -> Option<String> {
    (others_cores > OTHERS_THRESHOLD)
        .then(|| format!("other processes used {others_cores:.2} cores during the run"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  108026 5 7642 69171 1264 3 211 146 40 0\n\
        cpu0 64238 0 3413 25303 132 0 67 76 0 0\n\
        cpu1 43788 5 4229 43868 1132 3 144 70 40 0\n\
        intr 1234 0 0\n\
        ctxt 99\n";

    #[test]
    fn the_aggregate_line_sums_busy_ticks_without_counting_guest_twice() {
        let m = parse_proc_stat(STAT).unwrap();
        // user + nice + system + irq + softirq + steal; the guest 40 is already in user.
        assert_eq!(m.busy, 108026 + 5 + 7642 + 3 + 211 + 146);
        assert_eq!(m.total, m.busy + 69171 + 1264);
        assert_eq!(m.cpus, 2);
    }

    #[test]
    fn a_proc_stat_without_the_aggregate_line_or_with_short_fields_is_an_error() {
        assert!(parse_proc_stat("cpu0 1 2 3 4 5 6 7 8\n").is_err());
        assert!(parse_proc_stat("cpu  1 2 3 4\n").is_err());
        assert!(parse_proc_stat("cpu  1 2 x 4 5 6 7 8\n").is_err());
    }

    #[test]
    fn process_ticks_are_fields_14_and_15_even_with_a_command_name_holding_spaces() {
        let plain = "13819 (cat) R 13810 13810 13229 0 -1 4194304 100 0 0 0 250 31 0 0 20 0 1 0";
        assert_eq!(parse_process_ticks(plain).unwrap(), 281);
        let odd = "42 (tokio (rt) x) S 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 9 0";
        assert_eq!(parse_process_ticks(odd).unwrap(), 10);
        assert!(parse_process_ticks("42 (short) S 1 2").is_err());
    }

    #[test]
    fn another_process_is_read_by_its_pid() {
        // A server started by `ringback serve`, as /proc/PID/stat shows it to the bench.
        let server = "51234 (ringback) S 51200 51234 51200 34816 51300 4194560 9012 0 3 0 \
            48211 9377 0 0 20 0 12 0 881234 1234567680 20480 18446744073709551615";
        assert_eq!(parse_process_ticks(server).unwrap(), 48_211 + 9_377);
        assert!((ticks_ms(57_588) - 575_880.0).abs() < 1e-9);
        // This process through its pid: the same counter /proc/self/stat reads, and a pid
        // that does not exist is an error that names it.
        let by_pid = process_ticks(std::process::id()).unwrap();
        let own =
            parse_process_ticks(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
        assert!(own >= by_pid);
        let missing = process_ticks(u32::MAX).unwrap_err();
        assert!(format!("{missing:#}").contains(&u32::MAX.to_string()));
    }

    #[test]
    fn the_allowed_cores_are_read_from_the_status_file() {
        let status = "Name:\tringback\nCpus_allowed:\t1\nCpus_allowed_list:\t0\nMems_allowed:\t1\n";
        assert_eq!(parse_allowed_cpus(status).as_deref(), Some("0"));
        assert_eq!(parse_allowed_cpus("Name:\tx\n"), None);
        assert!(allowed_cpus(None).is_some());
        assert_eq!(allowed_cpus(Some(u32::MAX)), None);
    }

    #[test]
    fn load_averages_are_the_first_three_fields() {
        assert_eq!(
            parse_loadavg("0.45 0.96 0.81 1/132 13818\n").unwrap(),
            [0.45, 0.96, 0.81]
        );
        assert!(parse_loadavg("0.45").is_err());
    }

    fn sample(busy: u64, total: u64, own: u64) -> CpuSample {
        CpuSample {
            machine: MachineTicks {
                busy,
                total,
                cpus: 2,
            },
            own,
        }
    }

    #[test]
    fn others_use_is_the_machines_busy_time_less_this_process() {
        // One second on two cores: 200 ticks; busy 120, of which this process 90.
        let used = sample(1120, 10_200, 590).since(&sample(1000, 10_000, 500));
        assert_eq!(used.others_ticks, 30);
        assert!((used.others_share() - 0.15).abs() < 1e-9);
        assert!((used.others_cores() - 0.30).abs() < 1e-9);
        assert!((used.own_ms() - 900.0).abs() < 1e-9);
        // Sampling skew: this process seen busier than the machine is no one else's use.
        let skew = sample(1080, 10_200, 590).since(&sample(1000, 10_000, 500));
        assert_eq!(skew.others_ticks, 0);
    }

    #[test]
    fn the_notes_appear_only_above_ten_percent() {
        assert_eq!(before_note(0.10), None);
        assert_eq!(before_note(0.03), None);
        assert_eq!(
            before_note(0.45).as_deref(),
            Some(
                "note: other processes were using 45 % of the CPU before the run; figures are a floor"
            )
        );
        assert_eq!(run_note(0.08), None);
        assert_eq!(
            run_note(0.5).as_deref(),
            Some("other processes used 0.50 cores during the run")
        );
    }
}
