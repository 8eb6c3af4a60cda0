//! `events bench`: what tracing one tracepoint costs here, next to perf on the same tracepoint.
//!
//! The workload is `dd if=/dev/zero of=/dev/null bs=1 count=N`: one `read` per byte, so about N
//! hits of `syscalls:sys_enter_read`, in a few hundred ms. Each tool runs it `repeats` times,
//! interleaved (plain, funcscope, perf stat, perf record, plain, ...) so a slow spell of the
//! machine hits every tool; the best (smallest) wall time of each is kept. The cost per event is
//! `(tool wall - plain wall) / events` (each wall includes the tool's start-up and teardown, so
//! the cost is an upper bound that tightens as N grows); funcscope's rate is the events it decoded and handed to a
//! profiler per second of the traced run, and a run that lost records says so.
//!
//! `perf stat` only counts (no samples, no ring); `perf record` writes every sample to a file;
//! funcscope reads every sample with its raw record and decodes it, which is the work of every
//! profiler.

use std::io::Write;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::{EventDesc, EventsError, Options, Profiler, Sample, Scope, StreamStats};

/// The tracepoint every tool traces.
pub const TRACEPOINT: &str = "syscalls:sys_enter_read";

/// One tool's best run.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// `plain`, `funcscope events`, `perf stat -e`, `perf record -e`.
    pub tool: String,
    /// Best wall time of the workload under this tool, s.
    pub wall_s: f64,
    /// Events it reported (None: plain, or not parseable).
    pub events: Option<u64>,
    /// Records lost (funcscope only).
    pub lost: Option<u64>,
}

/// Counts samples and touches each record's fields, as a profiler would.
struct Count {
    n: u64,
    checksum: i128,
}

impl Profiler for Count {
    fn name(&self) -> &'static str {
        "count"
    }
    fn init(&mut self, _events: &[EventDesc]) -> Result<(), EventsError> {
        Ok(())
    }
    fn sample(&mut self, events: &[EventDesc], s: &Sample, _out: &mut dyn Write) -> std::io::Result<()> {
        self.n += 1;
        // Decode every field once, so the figure includes decoding.
        for f in &events[s.event].format.fields {
            self.checksum += f.decode(&s.raw).as_i128().unwrap_or(0);
        }
        Ok(())
    }
    fn deinit(&mut self, _e: &[EventDesc], _s: &StreamStats, _out: &mut dyn Write) -> std::io::Result<()> {
        Ok(())
    }
}

fn dd_args(calls: u64) -> Vec<String> {
    ["if=/dev/zero", "of=/dev/null", "bs=1", "status=none"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("count={calls}")])
        .collect()
}

fn timed(cmd: &mut Command) -> Result<(f64, String), EventsError> {
    let t = Instant::now();
    let out = cmd.output().map_err(|e| EventsError::Launch(format!("running {cmd:?}: {e}")))?;
    let wall = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(EventsError::Launch(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok((wall, String::from_utf8_lossy(&out.stderr).into_owned()))
}

fn keep_best(rows: &mut [Row], i: usize, wall: f64, events: Option<u64>, lost: Option<u64>) {
    let r = &mut rows[i];
    if r.wall_s == 0.0 || wall < r.wall_s {
        *r = Row { tool: r.tool.clone(), wall_s: wall, events, lost };
    }
}

/// Runs the benchmark; `perf` rows are left out (with a note on `out`) when perf is missing.
pub fn run(calls: u64, repeats: usize, ring_pages: usize, out: &mut dyn Write) -> Result<Vec<Row>, EventsError> {
    let perf = Command::new("perf").arg("--version").output().is_ok_and(|o| o.status.success());
    let tools = ["plain", "funcscope events", "perf stat -e", "perf record -e"];
    let n_tools = if perf { 4 } else { 2 };
    let mut rows: Vec<Row> =
        tools[..n_tools].iter().map(|t| Row { tool: (*t).into(), wall_s: 0.0, events: None, lost: None }).collect();
    if !perf {
        writeln!(out, "note: perf is not installed: only plain and funcscope are measured")?;
    }
    let tmp = tempfile::tempdir().map_err(EventsError::Output)?;
    for _ in 0..repeats.max(1) {
        let (w, _) = timed(Command::new("dd").args(dd_args(calls)))?;
        keep_best(&mut rows, 0, w, None, None);
        let o = Options {
            selectors: vec![TRACEPOINT.into()],
            scope: Scope::Launch { program: "dd".into(), args: dd_args(calls) },
            ring_pages,
            interval: None,
            duration: None,
            uprobes: Vec::new(),
        };
        let mut count = Count { n: 0, checksum: 0 };
        let t = Instant::now();
        let r = super::run(&o, &mut count, &AtomicBool::new(false), &mut std::io::sink())?;
        keep_best(&mut rows, 1, t.elapsed().as_secs_f64(), Some(count.n), Some(r.stats.lost));
        if perf {
            let stat = tmp.path().join("stat.csv");
            let (w, _) = timed(
                Command::new("perf")
                    .args(["stat", "-x,", "-e", TRACEPOINT, "-o"])
                    .arg(&stat)
                    .arg("--")
                    .arg("dd")
                    .args(dd_args(calls)),
            )?;
            // "200003,,syscalls:sys_enter_read,..."
            let n = std::fs::read_to_string(&stat).ok().and_then(|s| {
                s.lines().find(|l| l.contains(TRACEPOINT)).and_then(|l| l.split(',').next()?.parse::<u64>().ok())
            });
            keep_best(&mut rows, 2, w, n, None);
            let (w, err) = timed(
                Command::new("perf")
                    .args(["record", "-e", TRACEPOINT, "-o"])
                    .arg(tmp.path().join("perf.data"))
                    .arg("--")
                    .arg("dd")
                    .args(dd_args(calls)),
            )?;
            // "[ perf record: Captured and wrote 6.1 MB perf.data (200003 samples) ]"
            let n = err.split('(').nth(1).and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
            keep_best(&mut rows, 3, w, n, None);
        }
    }
    let base = rows[0].wall_s;
    writeln!(
        out,
        "workload: dd if=/dev/zero of=/dev/null bs=1 count={calls} (one read per byte), tracepoint {TRACEPOINT}, best of {}",
        repeats.max(1)
    )?;
    writeln!(
        out,
        "{:<18} {:>9} {:>10} {:>6} {:>12} {:>14}",
        "tool", "wall", "events", "lost", "cost/event", "events/s"
    )?;
    for r in &rows {
        let cost = r.events.filter(|&n| n > 0).map(|n| (r.wall_s - base) / n as f64 * 1e9);
        writeln!(
            out,
            "{:<18} {:>7.3} s {:>10} {:>6} {:>12} {:>14}",
            r.tool,
            r.wall_s,
            r.events.map_or("-".into(), |n| n.to_string()),
            r.lost.map_or("-".into(), |n| n.to_string()),
            cost.map_or("-".into(), |c| format!("{:.0} ns", c)),
            r.events.map_or("-".into(), |n| format!("{:.0}", n as f64 / r.wall_s)),
        )?;
    }
    Ok(rows)
}
