//! `events`: tracepoints through perf-prof's selectors and profilers (see [`crate::events`]).
//!
//! Ctrl-C (SIGINT/SIGTERM) raises the stop flag instead of killing the harness: the rings are
//! drained, a launched command is ended, and the profiler prints its final report.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::events::{self, profilers, EventsError, Profiler};
use crate::exit_code;

/// Which profiler, and its own options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfilerChoice {
    /// `trace`: print every event.
    Trace {
        /// JSON lines.
        json: bool,
    },
    /// `multi-trace`: latency between consecutive `-e` groups.
    MultiTrace {
        /// The default key (tid, pid, cpu or a field).
        key: String,
        /// A JSON report.
        json: bool,
        /// Heat map SVG file and column width (ns).
        heatmap: Option<(std::path::PathBuf, u64)>,
    },
    /// `top`: per-key counts and sums.
    Top {
        /// The default key.
        key: String,
    },
}

/// Options of `events trace|multi-trace|top`.
#[derive(Clone, Debug)]
pub struct Options {
    /// The session: selectors, scope, interval.
    pub session: events::Options,
    /// The profiler.
    pub profiler: ProfilerChoice,
}

impl From<EventsError> for Error {
    fn from(e: EventsError) -> Error {
        match e {
            EventsError::Launch(m) => Error::ScenarioFailed(m),
            other => Error::Usage(other.to_string()),
        }
    }
}

/// Runs a profiler; returns the exit code (0, or 3 when the launched command failed).
pub fn run(o: &Options) -> Result<i32> {
    let mut profiler: Box<dyn Profiler> = match &o.profiler {
        ProfilerChoice::Trace { json } => Box::new(profilers::trace::Trace::new(*json)),
        ProfilerChoice::MultiTrace { key, json, heatmap } => {
            let mut m = profilers::multi_trace::MultiTrace::new(key, *json);
            m.heatmap = heatmap.clone();
            Box::new(m)
        }
        ProfilerChoice::Top { key } => Box::new(profilers::top::Top::new(key)),
    };
    let stop = Arc::new(AtomicBool::new(false));
    super::snoop::take_signals(stop.clone());
    let mut stdout = std::io::stdout().lock();
    let out = match events::run(&o.session, profiler.as_mut(), &stop, &mut stdout) {
        // The reader of the output went away (`| head`): not an error of the tracing.
        Err(EventsError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(exit_code::PASS),
        other => other?,
    };
    for n in &out.notes {
        eprintln!("note: {n}");
    }
    if out.stats.lost > 0 {
        eprintln!(
            "warning: the kernel lost {} records (rings full); raise --ring-pages or filter in the kernel",
            out.stats.lost
        );
    }
    Ok(match out.exit_code {
        Some(0) | None => exit_code::PASS,
        Some(c) => {
            eprintln!("the traced command exited with status {c}");
            exit_code::SCENARIO_FAILED
        }
    })
}

/// `events list [PATTERN]`.
pub fn list(pattern: &str, fields: bool) -> Result<i32> {
    let mut stdout = std::io::stdout().lock();
    let n = events::list(pattern, fields, &mut stdout)?;
    if n == 0 {
        return Err(Error::Usage(format!("no tracepoint matches {pattern:?}; `funcscope events list` shows them all")));
    }
    Ok(exit_code::PASS)
}

/// `events bench`: prints the measured figures.
pub fn bench(calls: u64, repeats: usize, ring_pages: usize) -> Result<i32> {
    let mut stdout = std::io::stdout().lock();
    events::bench::run(calls, repeats, ring_pages, &mut stdout)?;
    Ok(exit_code::PASS)
}
