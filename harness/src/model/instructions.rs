//! Instruction counts under callgrind in the gate's report (`--measure time,instructions`): one
//! row per checkpoint with the instruction verdict, time's verdict beside it, and what a
//! disagreement between the two means. Filled by `commands::instructions`; reporters render it.

use serde::{Deserialize, Serialize};

use crate::stats::{CountComparison, Verdict};

/// The instruction pass of one invocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstructionReport {
    /// One per judged checkpoint, in scenario then checkpoint order.
    pub rows: Vec<InstructionRow>,
    /// What the pass wants said: fallbacks to a paired re-run, scenarios not judged, its time.
    pub notes: Vec<String>,
    /// Exit code of the instruction verdicts alone: 1 if a checkpoint regressed, else 0.
    pub exit_code: i32,
}

/// Time's verdict of the same checkpoint, when the time pass judged it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeBeside {
    /// Time's checkpoint verdict.
    pub verdict: Verdict,
    /// Time's p50 change (`ratio - 1`), if compared.
    pub change: Option<f64>,
}

/// One checkpoint's instructions per call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstructionRow {
    /// Scenario.
    pub scenario: String,
    /// Checkpoint.
    pub checkpoint: String,
    /// Median over the baseline arm's runs of mean instructions per call.
    pub baseline: f64,
    /// The same over the current arm's runs.
    pub current: f64,
    /// Mean instructions per call of each baseline run (what `diff` re-judges).
    pub baseline_runs: Vec<f64>,
    /// The same of each current run.
    pub current_runs: Vec<f64>,
    /// Whether the arms were measured here as pairs (paired re-run, `compare`).
    pub paired: bool,
    /// The gated comparison (mean instructions per call).
    pub comparison: CountComparison,
    /// The median call's comparison, reported only.
    pub p50: Option<CountComparison>,
    /// Time's verdict beside it (`None`: time not measured or this checkpoint not judged).
    pub time: Option<TimeBeside>,
    /// When time and instructions disagree: both changes and what it means, e.g.
    /// `instructions unchanged, time +8.0%: a micro-architectural effect ...`.
    pub disagreement: Option<String>,
}
