//! `run -- PROGRAM [ARGS]`: measure any instrumented program, no configuration or baseline needed.
//! Each run is one process execution; the report shows per-checkpoint statistics (median over
//! runs) and exits 3 if a run failed.
//!
//! `--uprobe [NAME=]FILE:SYMBOL` (repeatable) also measures an uninstrumented function in every
//! run, through uprobes beside the probe's region, reported as checkpoint `uprobe:NAME` (NAME
//! defaults to SYMBOL as given) beside the probe's checkpoints (see [`crate::snoop::gate`]);
//! under `--measure instructions` its instructions per call come from callgrind's call graph
//! (see [`crate::callgrind`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{failed_input, now_rfc3339};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::judge::{self, Against, Decisions, Invocation, Policy, ScenarioInput};
use crate::report::Outputs;
use crate::runner::{self, Launch};
use crate::snoop::elf::split_spec;
use crate::snoop::gate::GateProbe;

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
    /// Uninstrumented functions measured in every run (see [`parse_uprobe`]).
    pub uprobes: Vec<GateProbe>,
}

/// Parses a `--uprobe` value, `[NAME=]FILE:SYMBOL`: the checkpoint `uprobe:NAME` (NAME defaults
/// to SYMBOL as written) measures SYMBOL of FILE (a path, a soname, or a name on PATH).
///
/// # Errors
/// Not `FILE:SYMBOL`, or an empty NAME.
pub fn parse_uprobe(v: &str) -> Result<GateProbe> {
    let (name, spec) = crate::snoop::elf::split_named(v);
    let bad =
        |why: &str| Error::Usage(format!("--uprobe {v:?}: {why}; expected [NAME=]FILE:SYMBOL, e.g. libz.so.1:inflate"));
    let (file, symbol) = split_spec(spec).map_err(|_| bad("no FILE:SYMBOL"))?;
    let name = name.unwrap_or(symbol);
    if name.trim().is_empty() {
        return Err(bad("empty NAME"));
    }
    Ok(GateProbe { name: name.to_owned(), file: Some(PathBuf::from(file)), symbol: symbol.to_owned() })
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
        uprobes: o.uprobes.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uprobe_options_parse_with_and_without_a_name() {
        let p = parse_uprobe("libz.so.1:inflate").unwrap();
        assert_eq!(
            (p.name.as_str(), p.file.as_deref(), p.symbol.as_str()),
            ("inflate", Some(Path::new("libz.so.1")), "inflate")
        );
        let p = parse_uprobe("z=./bin/app:app::parse").unwrap();
        assert_eq!(
            (p.name.as_str(), p.file.as_deref(), p.symbol.as_str()),
            ("z", Some(Path::new("./bin/app")), "app::parse")
        );
        // '=' inside a symbol is not a name.
        let p = parse_uprobe("lib.so:_ZN1AaSERKS_=x").unwrap();
        assert_eq!(p.symbol, "_ZN1AaSERKS_=x");
        assert_eq!(p.checkpoint(), "uprobe:_ZN1AaSERKS_=x");
        for bad in ["inflate", "=lib:f", "n=inflate", ":f", "lib:"] {
            let e = parse_uprobe(bad).unwrap_err().to_string();
            assert!(e.contains("[NAME=]FILE:SYMBOL"), "{bad}: {e}");
        }
    }
}
