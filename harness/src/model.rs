//! The result model: what one invocation measured and decided. **API boundary**: serialized as
//! the versioned JSON report ([`REPORT_SCHEMA`]) and read by every reporter (terminal table,
//! Markdown, JSON): reporters only render these types, they compute nothing.
//!
//! Three documents: the gate's [`Report`] (`regress`, `compare`, `run`, `baseline`), the
//! [`CalibrationReport`] of `calibrate` and the [`BenchReport`] of `verdict-bench`.

mod bench;
mod calibration;
mod distributions;
mod history;
mod instructions;
mod modes;

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

pub use bench::{BenchMode, BenchReport, BenchRow, Proportion, Target, TargetState, BENCH_SCHEMA};
pub use calibration::{AaVerdicts, CalibrationReport, NoiseRow, ScenarioFailure, SessionOffset, CALIBRATION_SCHEMA};
pub use distributions::{DeepHistogram, Distributions, Ecdf, EcdfSource, RunValues};
pub use history::{Entry, Point, Trend, TrendRow, HISTORY_SCHEMA};
pub use instructions::{InstructionReport, InstructionRow, TimeBeside};
pub use modes::{CheckpointModes, ModeCounts, ModesReport, SharedMode, VarianceShare};

use crate::stats::{Comparison, Metric, RunSummary, Verdict};

/// Version of the JSON report schema. Bumped on any incompatible change.
pub const REPORT_SCHEMA: u32 = 1;

/// One checkpoint in one process run, durations in nanoseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRun {
    /// Calls recorded by the probe (exact, from its aggregates, all processes of the run).
    pub count: u64,
    /// Samples lost to ring overrun or overwrite (counted, never hidden).
    pub lost: u64,
    /// Durations clamped because they did not fit the sample field.
    pub clamped: u64,
    /// Statistics of the samples read (`None` if none were read, e.g. at level Lite).
    pub summary: Option<RunSummary>,
    /// The probe's exact aggregates over every call, read whether or not samples were: at level
    /// Lite (no rings) the only figures there are. `None` in documents from before they existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<Totals>,
}

/// Exact figures over every call of one checkpoint in one run (all processes), from the probe's
/// aggregates (not from samples), in nanoseconds. Invariant: `min_ns <= mean_ns <= max_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Sum of all durations.
    pub sum_ns: f64,
    /// Shortest call.
    pub min_ns: f64,
    /// Longest call.
    pub max_ns: f64,
    /// `sum_ns` over the call count.
    pub mean_ns: f64,
}

/// One process run of a scenario (all of its processes merged by checkpoint name).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Scenario name.
    pub scenario: String,
    /// Wall time of the run in seconds.
    pub wall_s: f64,
    /// Instrumented processes that attached.
    pub processes: usize,
    /// Tick frequency used for conversion (Hz).
    pub tick_hz: f64,
    /// The probe's floor (median ns of an empty ENTER/EXIT), as measured by the program.
    pub floor_ns: f64,
    /// ENTER/EXIT calls with an out-of-range index (they record nothing).
    pub bad_index: u64,
    /// Per checkpoint name.
    pub checkpoints: BTreeMap<String, CheckpointRun>,
}

#[cfg(test)]
impl RunResult {
    /// A synthetic run for unit tests: every call of each named checkpoint took `ns` (10 calls).
    pub(crate) fn uniform(checkpoints: &[(&str, f64)]) -> RunResult {
        RunResult {
            scenario: "s".into(),
            wall_s: 1.0,
            processes: 1,
            tick_hz: 1e9,
            floor_ns: 10.0,
            bad_index: 0,
            checkpoints: checkpoints
                .iter()
                .map(|&(name, ns)| {
                    let summary = RunSummary::from_samples(&mut [ns; 10]).expect("finite samples");
                    (
                        name.to_owned(),
                        CheckpointRun { count: 10, lost: 0, clamped: 0, summary: Some(summary), totals: None },
                    )
                })
                .collect(),
        }
    }
}

/// Which side(s) a checkpoint was found on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// In the baseline and in the current runs.
    Both,
    /// Only in the baseline: removed or renamed, or it never ran.
    BaselineOnly,
    /// Only in the current runs: new, no baseline yet.
    CurrentOnly,
}

/// The judgement of one (checkpoint, metric).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// The metric.
    pub metric: Metric,
    /// Median over baseline runs (ns), if any.
    pub baseline_ns: Option<f64>,
    /// Median over current runs (ns), if any.
    pub current_ns: Option<f64>,
    /// The statistical comparison (ratio current/baseline, CI, p), if both sides have data.
    pub comparison: Option<Comparison>,
    /// p-value after the multiple-comparison correction across the whole invocation.
    pub p_adjusted: Option<f64>,
    /// Relative effect below which a change does not count (max of the configured minimum and
    /// the smallest effect the test could call significant, from its own standard error).
    pub threshold: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// Whether this metric gates (`gate.metrics`); report-only metrics (`gate.report_metrics`)
    /// are judged and shown but never fail a build nor decide the checkpoint's verdict.
    #[serde(default = "yes")]
    pub gating: bool,
    /// Adaptive sampling: the rounds after which the verdict was reached and frozen (`None` while
    /// undecided, or for a single look).
    #[serde(default)]
    pub decided_at: Option<usize>,
    /// An inconclusive verdict whose equivalence interval already rules out a regression beyond
    /// `gate.unchanged_within`: more rounds could make it unchanged or improved, which never
    /// gate, so the scenario may stop sampling for it.
    #[serde(default)]
    pub no_regression: bool,
}

fn yes() -> bool {
    true
}

/// One checkpoint of one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointResult {
    /// Checkpoint name.
    pub name: String,
    /// Which side(s) have it.
    pub presence: Presence,
    /// Mean calls per current run.
    pub calls_per_run: f64,
    /// Samples lost over all current runs.
    pub lost: u64,
    /// Durations clamped over all current runs.
    pub clamped: u64,
    /// Per-metric judgements (empty unless present on both sides).
    pub metrics: Vec<MetricResult>,
    /// The checkpoint's overall verdict: regressed if any metric regressed, else improved if
    /// any improved, else unchanged if all unchanged, else inconclusive.
    pub verdict: Verdict,
    /// Why a regression of this checkpoint is accepted (`--accept` or `gate.accept`): it is
    /// still shown as regressed but does not fail the gate. `None`: not accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
    /// What the plots show: distributions and per-run values of both sides (empty if none).
    #[serde(default, skip_serializing_if = "Distributions::is_empty")]
    pub distributions: Distributions,
}

/// How the current runs were compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Against a committed baseline recorded on a machine with the same fingerprint.
    Baseline,
    /// Against a committed baseline from a different machine: reported, not gating unless
    /// `--strict`.
    CrossMachine,
    /// Paired A/B: two builds run interleaved in rounds on this machine (`compare`, or
    /// `regress --paired` against the baseline's commit); judged on per-round ratios.
    Paired,
    /// No comparison: statistics only (`run`, `baseline`).
    Measure,
}

/// How the machine's speed drift was taken out of a baseline comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftCorrection {
    /// Machine speed now relative to when the baseline was recorded, as measured by the
    /// harness's reference workload: > 1 means the machine is slower now. Checkpoint values were
    /// divided by the reference speed of their adjacent run before judging.
    pub factor: f64,
    /// Reference runs now.
    pub current_runs: usize,
    /// Reference runs in the baseline.
    pub baseline_runs: usize,
}

/// What happened to one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum ScenarioStatus {
    /// Ran and was compared.
    Compared,
    /// Ran, but there is no baseline to compare with.
    NoBaseline,
    /// Ran and was measured only.
    Measured,
    /// Failed to run (crash, no attach, timeout...): the message says why.
    Failed(String),
}

/// One scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// Outcome.
    pub status: ScenarioStatus,
    /// Comparison mode.
    pub mode: Mode,
    /// Measured runs (warm-up excluded).
    pub runs: usize,
    /// Baseline runs compared against.
    pub baseline_runs: usize,
    /// Why the machine differs from the baseline's, if it does.
    pub machine_note: Option<String>,
    /// What the current runs were compared with, in words (baseline commit and date, or the
    /// other arm of a paired comparison).
    #[serde(default)]
    pub against: Option<String>,
    /// The drift correction applied in baseline mode, if the baseline has reference runs.
    #[serde(default)]
    pub drift: Option<DriftCorrection>,
    /// The probe floor in ns (median over runs).
    pub floor_ns: f64,
    /// Checkpoints, sorted by name.
    pub checkpoints: Vec<CheckpointResult>,
    /// Paired comparisons: whole-process modes and the sources of run-to-run variance per
    /// checkpoint (reported, never part of a verdict).
    #[serde(default)]
    pub modes: Option<ModesReport>,
    /// The individual runs (for `run` and for the JSON report).
    pub run_results: Vec<RunResult>,
}

/// Counts of checkpoint verdicts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Checkpoints regressed.
    pub regressed: usize,
    /// Checkpoints improved.
    pub improved: usize,
    /// Checkpoints unchanged.
    pub unchanged: usize,
    /// Checkpoints inconclusive.
    pub inconclusive: usize,
    /// Checkpoints on one side only.
    pub one_sided: usize,
    /// Scenarios that failed to run.
    pub failed_scenarios: usize,
}

fn one() -> usize {
    1
}

/// Reads an `f64` that may be `null`: JSON has no `NaN`, so `serde_json` writes a `NaN` ("could not
/// be computed") as `null`, and this reads it back as `NaN`.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Everything one invocation produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_SCHEMA`].
    pub schema: u32,
    /// The command (`regress`, `run`, `baseline`).
    pub command: String,
    /// funcscope version.
    pub tool_version: String,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// Wall time in seconds, from the start of the command (builds included).
    pub wall_s: f64,
    /// Seconds of sampling (the adaptive experiment's runs and looks, from its first run): what
    /// `run.budget_s` and `run.total_budget_s` bound. `None` where nothing was sampled (`diff`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_s: Option<f64>,
    /// This machine.
    pub machine: crate::fingerprint::Fingerprint,
    /// Family-wise error rate or FDR target.
    pub alpha: f64,
    /// Multiple-comparison correction.
    pub correction: crate::stats::Correction,
    /// Whether cross-machine regressions gate (`--strict`).
    pub strict: bool,
    /// Planned interim analyses of an adaptive experiment: `alpha` is spent over them (see
    /// `judge::Policy`), so looking often cannot inflate the false-alarm rate. 1 for a
    /// fixed design.
    #[serde(default = "one")]
    pub looks: usize,
    /// Scenarios in configuration order.
    pub scenarios: Vec<ScenarioResult>,
    /// Counts.
    pub tally: Tally,
    /// The documented exit code this report maps to (see [`crate::exit_code`]); with an
    /// instruction pass, the worse of time's and its own.
    pub exit_code: i32,
    /// Instruction counts under callgrind beside time (`--measure ...,instructions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<InstructionReport>,
}
