//! Uprobe checkpoints under the regression gate: the functions a scenario lists in
//! `[[scenario.uprobe]]` are probed in every run of that scenario, beside the probe's region, and
//! each call's duration (ns) becomes a sample of a checkpoint named `uprobe:<name>`, judged like
//! any probe checkpoint.
//!
//! # How a run is probed
//! The runner resolves the targets before it starts the program (a wrong symbol fails the run
//! before anything runs), starts the program, then [`GateSession::start`] attaches the probes to
//! it ([`super::perf::Scope::Attach`]: every thread, `inherit` for later threads and children).
//! Calls made in the microseconds between `exec` and the attach are not seen; the bundled
//! scenarios wait for the reader before their measured phase, which starts after the probes.
//! [`GateSession::poll`] drains the rings while the run goes on (so they never fill), and
//! [`GateSession::finish`] drains the rest once the program has exited.
//!
//! The runner drives every such source of gate checkpoints alike, through [`GateSource`]; the
//! event pairs of `crate::events::gate` are the other one.
//!
//! # Window
//! A uprobe checkpoint counts the calls that start once the program's first probe region has
//! appeared ([`GateSession::open_window`], from the runner's scan for sockets), the window the
//! probe's own checkpoints cover: a scenario's start-up (its calibration calls the same code)
//! is left out, in both arms alike. The edge is the runner's poll interval (1 ms) wide.
//!
//! # Units
//! A uprobe sample is the time between the entry and the return record (CLOCK_MONOTONIC, ns):
//! it includes part of the probes' own cost (on this VM kind under load, about 5-7 us per call for
//! a function starting with `push`, 14-18 us when its first instruction is single-stepped;
//! `funcscope snoop-cost` measures it here).
//! That cost is the same in both arms of a comparison, so it shifts the level, not the
//! difference; it does make small relative changes of short functions harder to see.

use std::path::PathBuf;

use super::elf::{self, Target};
use super::pair::Pairer;
use super::perf::{self, EventKind, Scope, Tracer};
use super::SnoopError;

/// The prefix of uprobe checkpoints' names in run results, baselines and reports (the source
/// mark): probe checkpoint names come from `funcscope::init` and are kept apart by it.
pub const CHECKPOINT_PREFIX: &str = "uprobe:";

/// One function a scenario gates through a uprobe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateProbe {
    /// Checkpoint name (without [`CHECKPOINT_PREFIX`]).
    pub name: String,
    /// The file that holds the symbol: `None` is the program the run executes (its private copy
    /// when runs use one; a uprobe is placed on one file, so the original would never be hit).
    pub file: Option<PathBuf>,
    /// The symbol, mangled or demangled.
    pub symbol: String,
}

impl GateProbe {
    /// The checkpoint name in results: `uprobe:<name>`.
    pub fn checkpoint(&self) -> String {
        format!("{CHECKPOINT_PREFIX}{}", self.name)
    }

    /// Resolves it for a run of `program` (the file actually executed).
    pub fn resolve(&self, program: &std::path::Path) -> Result<Target, SnoopError> {
        let file = self.file.as_deref().unwrap_or(program);
        let spec = format!("{}:{}", file.display(), self.symbol);
        elf::resolve(&spec, None)
    }
}

/// What one run measured of one gate checkpoint (a uprobed function, or an event pair of
/// `crate::events::gate`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GateResult {
    /// Checkpoint name, with its source's prefix ([`CHECKPOINT_PREFIX`], `event:`).
    pub checkpoint: String,
    /// Each paired call's duration, ns, in pairing order.
    pub durations_ns: Vec<u64>,
    /// Records the kernel lost in this run's rings: not attributable to one function, so every
    /// gated function of the run carries the total (a run with losses is partial for all).
    pub lost: u64,
    /// Events with no partner (a start never ended, an end never started); 0 for uprobes.
    pub unpaired: u64,
    /// Pairs dropped because records were lost between their two events.
    pub dropped_by_loss: u64,
}

/// The measured window of a run's gate checkpoints (see "Window" above): samples that start
/// before it opens are left out; until it opens, nothing is known to be outside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    start_ns: Option<u64>,
}

impl Window {
    /// Opens it at `t_ns` (CLOCK_MONOTONIC); the first call wins.
    pub fn open(&mut self, t_ns: u64) {
        self.start_ns.get_or_insert(t_ns);
    }

    /// Whether it has been opened.
    pub fn is_open(&self) -> bool {
        self.start_ns.is_some()
    }

    /// Whether a sample that started at `start_ns` counts: it started once the window was open,
    /// or the window never opened.
    pub fn admits(&self, start_ns: u64) -> bool {
        self.start_ns.is_none_or(|w| start_ns >= w)
    }
}

/// Something measured beside a process run whose samples become gate checkpoints: the uprobes
/// of [`GateSession`], the event pairs of `crate::events::gate::PairSession`. Each is started on
/// the running program by its own constructor; the runner then drives them all alike.
pub trait GateSource {
    /// Opens the measured window at `t_ns` (see [`Window::open`]).
    fn open_window(&mut self, t_ns: u64);
    /// Reads what arrived, so that rings never fill; called every poll interval.
    fn poll(&mut self);
    /// Reads the rest (the program has exited), closes everything, and returns one result per
    /// checkpoint.
    fn finish(self: Box<Self>) -> Vec<GateResult>;
}

/// The probes of one run.
pub struct GateSession {
    tracer: Tracer,
    pairer: Pairer,
    results: Vec<GateResult>,
    /// Calls that start before it are not samples.
    window: Window,
    /// Calls left out because they started before the window.
    before_window: u64,
}

/// CLOCK_MONOTONIC now, ns (the clock of the rings' timestamps).
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map_or(0, |t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

impl GateSession {
    /// Attaches `targets` (resolved by [`GateProbe::resolve`], in the same order as `names`) to
    /// the running process `pid`.
    pub fn start(targets: &[Target], names: &[String], pid: i32) -> Result<GateSession, SnoopError> {
        let tracer = Tracer::start(targets, &Scope::Attach { pid }, perf::DEFAULT_RING_PAGES)?;
        Ok(GateSession {
            tracer,
            pairer: Pairer::new(),
            results: names.iter().map(|n| GateResult { checkpoint: n.clone(), ..GateResult::default() }).collect(),
            window: Window::default(),
            before_window: 0,
        })
    }

    /// Opens the measured window at `t_ns` (the first call wins): calls that started earlier
    /// are left out, so that uprobe checkpoints cover what the probe's checkpoints cover (a
    /// scenario's calibration runs before its region exists). Until it is opened every call
    /// counts (a program whose region never appears fails the run anyway).
    pub fn open_window(&mut self, t_ns: u64) {
        self.window.open(t_ns);
    }

    /// Calls left out because they started before the window.
    pub fn before_window(&self) -> u64 {
        self.before_window
    }

    /// Drains the rings, keeping back the youngest events (see [`perf::HOLD_NS`]).
    pub fn poll(&mut self) {
        // Nothing is released before the window is known (calls before it must be told apart);
        // the rings are still read, so that they cannot fill meanwhile.
        if !self.window.is_open() {
            let _ = self.tracer.drain(Some(0));
            return;
        }
        let events = self.tracer.drain(Some(monotonic_ns().saturating_sub(perf::HOLD_NS)));
        self.feed(events);
    }

    fn feed(&mut self, events: Vec<perf::Event>) {
        for e in events {
            match e.kind {
                EventKind::Entry { func, args } => self.pairer.entry(func, e.tid, e.time_ns, args),
                EventKind::Return { func, ret } => {
                    if let Some(c) = self.pairer.ret(func, e.pid, e.tid, e.time_ns, ret) {
                        if !self.window.admits(c.start_ns) {
                            self.before_window += 1;
                        } else if let Some(r) = self.results.get_mut(func) {
                            r.durations_ns.push(c.duration_ns);
                        }
                    }
                }
                EventKind::Lost(n) => self.pairer.lost(n),
            }
        }
    }

    /// Drains everything (call once the program has exited) and closes the probes.
    pub fn finish(mut self) -> Vec<GateResult> {
        let events = self.tracer.drain(None);
        self.feed(events);
        let lost = self.pairer.stats.lost_records;
        let mut out = std::mem::take(&mut self.results);
        for r in &mut out {
            r.lost = lost;
        }
        out
    }
}

impl GateSource for GateSession {
    fn open_window(&mut self, t_ns: u64) {
        GateSession::open_window(self, t_ns);
    }

    fn poll(&mut self) {
        GateSession::poll(self);
    }

    fn finish(self: Box<Self>) -> Vec<GateResult> {
        GateSession::finish(*self)
    }
}
