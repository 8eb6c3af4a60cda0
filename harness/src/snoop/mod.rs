//! `snoop`: per-call latency of functions nobody instrumented (a C library, libc, a vendor
//! runtime, a binary without sources), through entry and return uprobes opened with
//! `perf_event_open`: no BPF toolchain, nothing but cargo to build.
//!
//! # Data flow
//! ```text
//! "lib.so:sym" ──elf::resolve──> Target (path, file offset)
//!      └─> perf::Tracer (entry + return uprobe per target per CPU, per-CPU rings)
//!            └─> Event stream, merged by time ──> pair::Pairer (per-thread stacks)
//!                  └─> Call ──> report::FuncStats ──> report::render (funclatency-style)
//! ```
//! * [`elf`]: `BINARY_OR_LIBRARY:SYMBOL` -> file offset, with errors that say which is wrong.
//! * [`perf`]: opening the probes for a launched command or a running pid, decoding records.
//!   The `unsafe` half (syscall, ioctls, ring mapping) is `funcscope::uprobe`, in the probe
//!   crate, because this crate forbids `unsafe`.
//! * [`pair`]: pure pairing; losses drop the calls that span them, never mis-pair.
//! * [`report`]: statistics per function and the text report.
//!
//! [`run`] ties them together until the command exits, the process disappears, or `stop` is
//! raised (Ctrl-C), then drains everything and returns the final [`Summary`].
//!
//! Costs per probed call (entry + return), `funcscope snoop-cost --repeats 3` on this 2-vCPU VM
//! kind at load ~5 (2026-12-08): ~7 us when the function starts with `push`/`nop` (bpftrace:
//! ~5 us), ~15 us when its first instruction must be single-stepped ([`elf::Prologue`];
//! bpftrace: ~11 us); machine-facts.md measured 1.9 and 10-12 us on a quiet machine (2026-11).
//! The rings wake the reader at a watermark (a quarter of the ring), not per sample: a wakeup
//! per sample (an irq_work self-IPI, a VM exit) made a single-stepped call cost ~38 us.

pub mod elf;
pub mod gate;
pub mod json;
pub mod ldcache;
pub mod pair;
pub mod perf;
pub mod report;
pub mod targets;
pub mod tracefs;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};

pub use elf::{resolve, Target};
pub use perf::Scope;
pub use report::{FuncStats, Summary};

/// Why snoop could not run; every variant names the thing and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnoopError {
    /// A target is not `BINARY_OR_LIBRARY:SYMBOL`.
    #[error("target {spec:?}: {why}")]
    BadTarget {
        /// As given.
        spec: String,
        /// What is expected.
        why: String,
    },
    /// The binary or library could not be found or read.
    #[error("{}: {why}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// No such symbol in the file.
    #[error("{}: no function {symbol:?} in .symtab or .dynsym{}", path.display(), suggest(near))]
    MissingSymbol {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        symbol: String,
        /// Close names that exist.
        near: Vec<String>,
    },
    /// The file has no `.symtab` and the symbol is not exported.
    #[error(
        "{}: stripped (no .symtab): only its {exported} exported functions (.dynsym) can be probed, and \
         {symbol:?} is not one of them; probe an unstripped build",
        path.display()
    )]
    Stripped {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        symbol: String,
        /// Functions it exports.
        exported: usize,
    },
    /// The symbol is only imported by the file (defined in a library it loads).
    #[error(
        "{}: {symbol:?} is imported, not defined there; probe the library that defines it (e.g. \
         libc.so.6:{symbol}, see `ldd {}`)",
        path.display(),
        path.display()
    )]
    Imported {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        symbol: String,
    },
    /// The symbol has no code of its own.
    #[error("{}: {symbol:?} has no code of its own to probe: {why}", path.display())]
    NoCode {
        /// The file.
        path: PathBuf,
        /// The symbol.
        symbol: String,
        /// Why.
        why: String,
    },
    /// A demangled name matches several functions.
    #[error("{}: {symbol:?} matches {} functions; give the mangled name of one: {}", path.display(), candidates.len(), candidates.join(", "))]
    Ambiguous {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        symbol: String,
        /// The matches (mangled and readable).
        candidates: Vec<String>,
    },
    /// `perf_event_open` was refused for lack of privilege.
    #[error(
        "perf_event_open refused ({why}): uprobes need root, or CAP_PERFMON (with CAP_SYS_PTRACE to follow \
         other users' processes) and kernel.perf_event_paranoid <= 2 (now {paranoid}); run as root, or \
         `sudo setcap cap_perfmon+ep` the binary"
    )]
    Privilege {
        /// kernel.perf_event_paranoid now.
        paranoid: String,
        /// The kernel's answer.
        why: String,
    },
    /// Any other perf failure (no uprobe PMU, a refused mapping).
    #[error("{0}")]
    Perf(String),
    /// The command could not be launched.
    #[error("{0}")]
    Launch(String),
    /// A target file (`--config`) is unreadable or wrong.
    #[error("{}{}: {}{why}", path.display(), if *line > 0 { format!(":{line}") } else { String::new() }, if key.is_empty() { String::new() } else { format!("{key}: ") })]
    TargetFile {
        /// The file.
        path: PathBuf,
        /// 1-based line (0: unknown).
        line: usize,
        /// The key (`group.name`), empty when the file as a whole is wrong.
        key: String,
        /// What is wrong and how to fix it.
        why: String,
    },
    /// The process to attach to does not exist.
    #[error("no process {pid} to attach to: {why}")]
    NoProcess {
        /// The pid.
        pid: i32,
        /// Why.
        why: String,
    },
}

fn suggest(near: &[String]) -> String {
    if near.is_empty() {
        String::new()
    } else {
        format!("; near names: {}", near.join(", "))
    }
}

/// What to trace and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// `BINARY_OR_LIBRARY:SYMBOL`, at least one.
    pub targets: Vec<String>,
    /// Display names of the first targets (from a target file); the others show their symbol's
    /// readable name.
    pub names: Vec<String>,
    /// A command to launch, or a pid.
    pub scope: Scope,
    /// Data pages per CPU ring (a power of two; see [`perf::DEFAULT_RING_PAGES`]).
    pub ring_pages: usize,
    /// Print a report this often (None: only the final one).
    pub interval: Option<Duration>,
    /// Record slow calls: those at or above the threshold are counted per function and the
    /// slowest are kept (see [`report::SlowCalls`]).
    pub slow: Option<report::SlowOptions>,
    /// Keep every paired call in [`Outcome::calls`] (memory grows with the calls: for tests and
    /// short runs).
    pub keep_calls: bool,
}

/// What a finished session returns.
#[derive(Debug)]
pub struct Outcome {
    /// The resolved targets, in order.
    pub targets: Vec<Target>,
    /// The measurements.
    pub summary: Summary,
    /// The launched command's exit code (None: attached, interrupted, or killed by a signal).
    pub exit_code: Option<i32>,
    /// Every paired call in pairing order, when [`Options::keep_calls`] asked for them.
    pub calls: Vec<pair::Call>,
    /// How the probes were made (tracefs mounted, the PMU fallback), to tell the user.
    pub notes: Vec<String>,
}

/// The longest wait for a ring to reach its wakeup watermark before the rings are read anyway
/// (see [`perf::Tracer::wait`]): how late a quiet ring's records, a stop request or the
/// command's exit are seen at most.
const IDLE_POLL: Duration = Duration::from_millis(10);

fn monotonic_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// Whether `pid` has exited: no `/proc/PID`, or a zombie waiting for its parent (which may be
/// the caller, about to wait for it once snoop returns).
pub(crate) fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')' (comm may hold spaces and parens).
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|st| st == "Z" || st == "X"),
        Err(_) => true,
    }
}

/// Resolves the targets (all, before anything starts).
pub fn resolve_all(targets: &[String], pid: Option<i32>) -> Result<Vec<Target>, SnoopError> {
    if targets.is_empty() {
        return Err(SnoopError::BadTarget { spec: String::new(), why: "no target given".into() });
    }
    targets.iter().map(|t| resolve(t, pid)).collect()
}

/// Resolves `opts.targets` and gives them their display names ([`Options::names`]).
pub fn resolve_named(opts: &Options, pid: Option<i32>) -> Result<Vec<Target>, SnoopError> {
    let mut targets = resolve_all(&opts.targets, pid)?;
    for (t, n) in targets.iter_mut().zip(&opts.names) {
        t.name.clone_from(n);
    }
    Ok(targets)
}

/// What a session tells as it goes: each periodic report, each paired call, each loss.
pub trait Observer {
    /// A periodic report (not the final one, which [`run_observed`] returns).
    fn report(&mut self, _s: &Summary) {}
    /// A paired call of the function named `name`.
    fn call(&mut self, _c: &pair::Call, _name: &str) {}
    /// The kernel lost `records` records (calls spanning the gap are dropped).
    fn lost(&mut self, _records: u64) {}
}

struct Reports<'a>(&'a mut dyn FnMut(&Summary));

impl Observer for Reports<'_> {
    fn report(&mut self, s: &Summary) {
        (self.0)(s)
    }
}

/// Runs a session: resolve, open, trace until the command ends, the process disappears or
/// `stop` is raised; `on_report` gets each periodic report.
pub fn run(opts: &Options, stop: &AtomicBool, on_report: &mut dyn FnMut(&Summary)) -> Result<Outcome, SnoopError> {
    run_observed(opts, stop, &mut Reports(on_report))
}

/// [`run`], telling `obs` every report, call and loss as they come.
pub fn run_observed(opts: &Options, stop: &AtomicBool, obs: &mut dyn Observer) -> Result<Outcome, SnoopError> {
    let pid = match opts.scope {
        Scope::Attach { pid } => Some(pid),
        Scope::Launch { .. } => None,
    };
    let targets = resolve_named(opts, pid)?;
    let mut tracer = perf::Tracer::start(&targets, &opts.scope, opts.ring_pages)?;
    let t0 = Instant::now();
    let mut funcs: Vec<FuncStats> =
        targets.iter().map(|t| FuncStats::new(&t.name, &t.spec).with_slow(opts.slow)).collect();
    let started_ns = monotonic_ns();
    let mut pairer = pair::Pairer::new();
    let mut next_report = opts.interval.map(|i| t0 + i);
    let mut exit_code = None;
    let mut calls = Vec::new();
    loop {
        let mut last = stop.load(Ordering::Relaxed);
        if let Some(c) = tracer.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                exit_code = status.code();
                last = true;
            }
        } else if let Some(pid) = pid {
            last |= process_gone(pid);
        }
        let until = if last { None } else { Some(monotonic_ns().saturating_sub(perf::HOLD_NS)) };
        let events = tracer.drain(until);
        for e in events {
            match e.kind {
                perf::EventKind::Entry { func, args } => pairer.entry(func, e.tid, e.time_ns, args),
                perf::EventKind::Return { func, ret } => {
                    if let Some(c) = pairer.ret(func, e.pid, e.tid, e.time_ns, ret) {
                        funcs[func].add(&c);
                        obs.call(&c, &funcs[func].name);
                        if opts.keep_calls {
                            calls.push(c);
                        }
                    }
                }
                perf::EventKind::Lost(n) => {
                    pairer.lost(n);
                    obs.lost(n);
                }
            }
        }
        let summary = |funcs: &Vec<FuncStats>, pairer: &pair::Pairer| Summary {
            funcs: funcs.clone(),
            pairing: pairer.stats,
            open_calls: pairer.open_calls(),
            elapsed_s: t0.elapsed().as_secs_f64(),
            started_ns,
        };
        if last {
            tracer.kill_child();
            let notes = std::mem::take(&mut tracer.notes);
            return Ok(Outcome { targets, summary: summary(&funcs, &pairer), exit_code, calls, notes });
        }
        if let (Some(at), Some(every)) = (next_report, opts.interval) {
            if Instant::now() >= at {
                obs.report(&summary(&funcs, &pairer));
                next_report = Some(at + every);
            }
        }
        tracer.wait(IDLE_POLL);
    }
}
