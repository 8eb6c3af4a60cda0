//! funcscope-harness: everything outside the measured process.
//!
//! It launches instrumented programs, attaches to them over their Unix sockets, drains their
//! shared-memory rings (through `funcscope::reader`), turns per-call samples into per-run
//! statistics, compares them with committed TOML baselines and decides, with honest statistics,
//! whether each checkpoint regressed, improved, stayed unchanged or is inconclusive.
//!
//! # Brief overview
//! ```text
//! config (funcscope.toml) ─┐
//!                          ├─> runner: launch, attach, drain ──> RunResult per process run
//! scenario binaries ───────┘                                          │
//! baseline (baselines/*.toml) ──────────────> judge: stats + verdicts <┘
//!                                                   │
//!                                         model::Report ──> report::{terminal, markdown, json}
//! ```
//! * [`stats`]: pure functions (quantiles, Welch / paired t on log ratios, Holm/BH, noise,
//!   verdicts). No I/O; tested against known values.
//! * [`runner`]: real processes, real sockets, real shared memory. Errors name the program, the
//!   signal or the timeout, and carry the tail of its stderr.
//! * [`baseline`]: the committed TOML files: schema-versioned, stably ordered, written atomically;
//!   a malformed file is an error naming the file, line and field.
//! * [`judge`]: composes the statistics into a [`model::Report`].
//! * [`report`]: renderers; they read the model and compute nothing.
//! * [`cli`]: the commands (`regress`, `baseline`, `run`) used by `cargo xtask` and by other
//!   workspaces' xtasks.
//!
//! **Architecture invariants.** The statistics know nothing of where samples came from; the
//! reporters know nothing of how verdicts were reached; nothing is written to a baseline from a
//! failed or partial run.

#![forbid(unsafe_code)]

pub mod baseline;
pub mod cli;
pub mod commands;
pub mod config;
pub mod drift;
pub mod error;
pub mod fingerprint;
pub mod fsutil;
pub mod judge;
pub mod model;
pub mod reference;
pub mod report;
pub mod rounds;
pub mod runner;
pub mod stats;
pub mod workspace;

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
