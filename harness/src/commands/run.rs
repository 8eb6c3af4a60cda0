//! `run -- PROGRAM [ARGS]`: measure any instrumented program, no configuration or baseline needed.
//! Each run is one process execution; the report shows per-checkpoint statistics (median over
//! runs) and exits 3 if a run failed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{failed_input, now_rfc3339};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::judge::{self, Against, Decisions, Invocation, Policy, ScenarioInput};
use crate::report::Outputs;
use crate::runner::{self, Launch};

/// Options of `run`.
#[derive(Clone, Debug)]
pub struct Options {
    /// The program: a path, or a name looked up on `PATH`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Process runs (at least 1).
    pub runs: usize,
    /// Kill a run after this long.
    pub timeout: Duration,
    /// Fail a run that has not attached after this long.
    pub attach_timeout: Duration,
    /// Pin the program to one CPU (the last one the harness may use).
    pub pin: bool,
    /// Where the JSON and Markdown reports go (none by default).
    pub outputs: Outputs,
}

/// Runs `run`; returns the exit code of the report.
///
/// # Errors
/// The program does not exist; a report file cannot be written.
pub fn run(o: &Options) -> Result<i32> {
    let t0 = Instant::now();
    let started = now_rfc3339();
    let program = which(&o.program)
        .ok_or_else(|| Error::Usage(format!("{}: no such program (not a path, not on PATH)", o.program)))?;
    let name =
        Path::new(&o.program).file_name().map_or_else(|| o.program.clone(), |n| n.to_string_lossy().into_owned());
    let launch = Launch {
        name: name.clone(),
        program,
        args: o.args.clone(),
        env: Vec::new(),
        timeout: o.timeout,
        attach_timeout: o.attach_timeout,
        cpu: if o.pin { runner::measurement_cpu() } else { None },
        // `run` measures one program: no A/B whose files could differ in layout.
        fresh_copy: false,
        uprobes: Vec::new(),
        event_pairs: Vec::new(),
    };
    let mut runs = Vec::new();
    let mut input = None;
    for _ in 0..o.runs.max(1) {
        match runner::run_once(&launch) {
            Ok(out) => runs.push(out.result),
            Err(e) => {
                input = Some(failed_input(&name, e.to_string()));
                break;
            }
        }
    }
    let input = input.unwrap_or(ScenarioInput { name, outcome: Ok(runs), against: Against::Nothing, reference: None });
    let cfg = Config::ad_hoc();
    let policy = &Policy::from_config(&cfg, Vec::new());
    let inv = Invocation {
        command: "run",
        policy,
        look: policy.single_look(),
        decisions: &Decisions::default(),
        machine: Fingerprint::current(),
        compare: false,
        strict: false,
        started,
        wall_s: t0.elapsed().as_secs_f64(),
    };
    let report = judge::judge(inv, vec![input]);
    super::finish(&report, o.outputs.clone())
}

/// Resolves a program name like a shell: a path if it contains '/', else the first match on PATH.
pub(crate) fn which(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(prog)).find(|p| p.is_file())
}
