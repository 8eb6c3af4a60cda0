//! funcscope-harness: everything outside the measured process.
//!
//! It launches instrumented programs, attaches to them over their Unix sockets, drains their
//! shared-memory rings (through `funcscope::reader`), turns per-call samples into per-run
//! statistics, compares them with committed TOML baselines or with another build run interleaved,
//! and decides, with honest statistics, whether each checkpoint regressed, improved, stayed
//! unchanged or is inconclusive.
//!
//! # Brief overview
//! ```text
//! cli ──> commands::{regress, baseline, compare, calibrate, verdict_bench, run}
//!           │ config (funcscope.toml), workspace (cargo builds, git worktrees)
//!           ├─> rounds: the experimental design ──> runner: one process run ──> RunResult
//!           ├─> judge (Policy + stats) over runs, baselines, drift ──> model::Report
//!           └─> report::{terminal, markdown, json} ; baseline (the committed TOML files)
//! ```
//! Layers, from the bottom (each may use only those below it):
//! * [`stats`]: pure functions (quantiles, Welch / paired t on log ratios, Holm/BH, noise,
//!   thresholds, verdicts, Wilson intervals, the one PRNG). No I/O; tested against known values.
//! * [`model`]: the result documents (gate report, calibration, verdict benchmark), serialized as
//!   versioned JSON. [`fingerprint`]: machine identity. [`cleanup`]: nothing started outlives a
//!   run or a signal. [`error`]: the typed [`Error`] and its
//!   exit code. [`fsutil`]: atomic file writes.
//! * [`config`]: `funcscope.toml`. [`baseline`]: the committed TOML baselines (a file format: it
//!   knows no policy). [`report`]: renderers of the model; they compute nothing.
//! * [`runner`]: real processes, real sockets, real shared memory; errors name the program, the
//!   signal or the timeout, and carry the tail of its stderr. [`snoop`]: per-call latency of
//!   uninstrumented functions through uprobes (its `unsafe` half is `funcscope::uprobe`). [`events`]:
//!   tracepoints with perf-prof's selectors and profilers (`funcscope::uprobe::tracepoint`). [`reference`](mod@reference): the built-in
//!   reference workload. [`drift`]: how reference runs become the machine-speed correction.
//! * [`rounds`]: rounds of runs (arms alternating A B / B A, reference runs, adaptive looks).
//!   [`judge`]: a [`judge::Policy`] built once per invocation, composing [`stats`] into a
//!   [`model::Report`]. [`workspace`]: cargo builds and git worktrees of revisions.
//! * [`commands`]: one module per command, each `run(&Options) -> Result<i32>`. [`cli`]: clap
//!   parsing and dispatch only, used by `cargo xtask` and by other workspaces' xtasks.
//!
//! **Architecture invariants** (checked by `tests/architecture.rs` where a file scan can check
//! them): the statistics know nothing of where samples came from and do no I/O; the reporters
//! read only the model; the baseline format does not depend on the drift policy or the judge;
//! lower layers never call the commands; nothing is written to a baseline from a failed or partial
//! run; no `unsafe` anywhere in this crate.

#![forbid(unsafe_code)]

pub mod baseline;
pub mod callgrind;
pub mod cleanup;
pub mod cli;
pub mod commands;
pub mod config;
pub mod distribution;
pub mod drift;
pub mod error;
pub mod events;
pub mod fingerprint;
pub mod fsutil;
pub mod history;
pub mod judge;
pub mod model;
pub mod reference;
pub mod report;
pub mod rounds;
pub mod runner;
pub mod snoop;
pub mod stats;
pub mod workspace;

pub use error::{Error, Result};

/// Documented exit codes of the commands.
pub mod exit_code {
    /// Everything ran; no gating regression.
    pub const PASS: i32 = 0;
    /// At least one checkpoint regressed (same machine, or `--strict`).
    pub const REGRESSION: i32 = 1;
    /// Usage, configuration or baseline error: nothing was judged.
    pub const USAGE: i32 = 2;
    /// A scenario failed to run (crash, no attach, timeout). Takes precedence over 1.
    pub const SCENARIO_FAILED: i32 = 3;
}
