//! `snoop`: per-call latency of uninstrumented functions through uprobes (see [`crate::snoop`]).
//!
//! Prints a note per target whose first instruction the kernel must single-step (about twice the
//! cost per call of a `push` prologue here, up to ~6x on a quiet machine), the final report (also after Ctrl-C, which detaches cleanly: SIGINT/SIGTERM
//! are taken by a thread that raises the stop flag instead of exiting), and a warning where the
//! probes' estimated cost is a large share of the traced time.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};

use crate::error::{Error, Result};
use crate::exit_code;
use crate::snoop::{self, elf::Prologue, report, Scope, SnoopError};

/// Options of `snoop`: the tracer's own, and where its machine-readable output goes.
#[derive(Clone, Debug)]
pub struct Options {
    /// The tracer's options (the command keeps no calls).
    pub tracer: snoop::Options,
    /// Stream every call, loss and report as JSON lines here (`-`: stdout, and the text report
    /// goes to stderr).
    pub json_lines: Option<PathBuf>,
    /// Write the final report as JSON here.
    pub json: Option<PathBuf>,
}

/// The `--json-lines` stream: one line per call, loss and report; the first write error stops
/// the stream and is reported at the end (tracing goes on: the final report still prints).
struct Lines {
    out: Option<Box<dyn Write>>,
    failed: Option<std::io::Error>,
}

impl Lines {
    fn emit(&mut self, v: &serde_json::Value, flush: bool) {
        let Some(w) = self.out.as_mut() else { return };
        let r = serde_json::to_writer(&mut *w, v)
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"))
            .and_then(|()| if flush { w.flush() } else { Ok(()) });
        if let Err(e) = r {
            self.failed = Some(e);
            self.out = None;
        }
    }
}

/// The text reports and the JSON-lines stream, as a session goes.
struct Outputs {
    lines: Lines,
    /// Text reports go to stderr when the stream has stdout.
    text_to_stderr: bool,
}

impl snoop::Observer for Outputs {
    fn report(&mut self, s: &report::Summary) {
        let text = |w: &mut dyn Write| {
            let _ = report::render(s, w);
            let _ = writeln!(w);
        };
        if self.text_to_stderr {
            text(&mut std::io::stderr());
        } else {
            text(&mut std::io::stdout());
        }
        self.lines.emit(&snoop::json::report(s, false), true);
    }

    fn call(&mut self, c: &snoop::pair::Call, name: &str) {
        self.lines.emit(&snoop::json::call(c, name), false);
    }

    fn lost(&mut self, records: u64) {
        self.lines.emit(&snoop::json::lost(records), false);
    }
}

/// Estimated cost of one probed call, entry + return, ns: the medians `funcscope snoop-cost
/// --calls 200000 --repeats 3` measured on this 2-vCPU VM kind at load average ~5 (2026-12-08,
/// other builds running): `push` prologue (emulated) 7.1 us (6.3-9.5), single-stepped 15.4 us
/// (14.0-18.0). On a quiet machine a call costs less (machine-facts.md, 2026-11: 1.9 and
/// 10-12 us), so the warning below errs towards warning.
const COST_EMULATED_NS: f64 = 7_100.0;
const COST_SINGLE_STEP_NS: f64 = 15_400.0;

/// Above this share of the traced wall time spent in the probes, the numbers mostly measure the
/// probes: warn.
const DOMINANT_SHARE: f64 = 0.2;

fn cost_ns(p: Prologue) -> f64 {
    match p {
        Prologue::SingleStepped => COST_SINGLE_STEP_NS,
        _ => COST_EMULATED_NS,
    }
}

impl From<SnoopError> for Error {
    fn from(e: SnoopError) -> Error {
        match e {
            SnoopError::Launch(m) => Error::ScenarioFailed(m),
            other => Error::Usage(other.to_string()),
        }
    }
}

/// Runs `snoop`; returns the exit code (0, or 3 when the launched command failed).
pub fn run(opts: &Options) -> Result<i32> {
    let o = &opts.tracer;
    let pid = match o.scope {
        Scope::Attach { pid } => Some(pid),
        Scope::Launch { .. } => None,
    };
    // Resolve first, so symbol errors come before anything starts and warnings before output.
    let targets = snoop::resolve_named(o, pid)?;
    for t in &targets {
        if t.prologue == Prologue::SingleStepped {
            eprintln!(
                "note: {} starts with an instruction the kernel single-steps: ~{:.0} us per probed call here \
                 (vs ~{:.1} us for push/nop prologues)",
                t.spec,
                COST_SINGLE_STEP_NS / 1e3,
                COST_EMULATED_NS / 1e3
            );
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    take_signals(stop.clone());
    let to_stdout = opts.json_lines.as_deref() == Some(Path::new("-"));
    let stream: Option<Box<dyn Write>> = match &opts.json_lines {
        None => None,
        Some(_) if to_stdout => Some(Box::new(std::io::BufWriter::new(std::io::stdout()))),
        Some(p) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| Error::io(format!("creating {}", p.display()), e))?,
        ))),
    };
    let mut outputs = Outputs { lines: Lines { out: stream, failed: None }, text_to_stderr: to_stdout };
    let out = snoop::run_observed(o, &stop, &mut outputs)?;
    for n in &out.notes {
        eprintln!("note: {n}");
    }
    if stop.load(Ordering::Relaxed) {
        eprintln!("Detaching...");
    }
    let mut text: Box<dyn Write> =
        if to_stdout { Box::new(std::io::stderr().lock()) } else { Box::new(std::io::stdout().lock()) };
    report::render(&out.summary, &mut text).map_err(|e| Error::io("writing the report", e))?;
    let last = snoop::json::report(&out.summary, true);
    outputs.lines.emit(&last, true);
    if let Some(e) = outputs.lines.failed.take() {
        return Err(Error::io("writing the --json-lines stream", e));
    }
    if let Some(p) = &opts.json {
        crate::fsutil::write_atomic(p, 0o644, |w| {
            serde_json::to_writer_pretty(&mut *w, &last)?;
            writeln!(w)
        })
        .map_err(|e| Error::io(format!("--json: {} {}", e.action, e.path.display()), e.source))?;
    }
    for (f, t) in out.summary.funcs.iter().zip(&out.targets) {
        let probe_s = f.count as f64 * cost_ns(t.prologue) / 1e9;
        if out.summary.elapsed_s > 0.0 && probe_s / out.summary.elapsed_s > DOMINANT_SHARE {
            eprintln!(
                "warning: {}: {} calls in {:.2} s; at ~{:.1} us per probed call the probes took ~{:.0}% of the \
                 traced time: its latencies are dominated by the probe",
                t.spec,
                f.count,
                out.summary.elapsed_s,
                cost_ns(t.prologue) / 1e3,
                100.0 * probe_s / out.summary.elapsed_s
            );
        }
    }
    Ok(match out.exit_code {
        Some(0) | None => exit_code::PASS,
        Some(c) => {
            eprintln!("the traced command exited with status {c}");
            exit_code::SCENARIO_FAILED
        }
    })
}

/// SIGINT and SIGTERM raise `stop` instead of killing the harness: the loop then drains, ends
/// the launched command and prints the final report. Blocked here, taken by `sigwait` in a
/// thread (threads spawned later inherit the mask; launched commands get a clear mask).
pub(crate) fn take_signals(stop: Arc<AtomicBool>) {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        while let Ok(_sig) = set.wait() {
            stop.store(true, Ordering::Relaxed);
        }
    });
}
