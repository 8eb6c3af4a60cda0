//! The summary of `verdict-bench`: how often the gate caught planted slowdowns and how often it
//! raised false alarms on this machine, with 95 % Wilson score intervals, and whether the quality
//! targets are met. (The per-trial records are a separate JSON file, written by the command.)
//!
//! Rates and interval bounds are fractions in `[0, 1]`; plant sizes are percents (`5.0` = 5 %).

use serde::{Deserialize, Serialize};

/// Version of the verdict-bench summary schema. Bumped on any incompatible change.
pub const BENCH_SCHEMA: u32 = 1;

/// The gate mode of a verdict-bench trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchMode {
    /// Against a baseline.
    Baseline,
    /// Paired A/B.
    Paired,
}

impl BenchMode {
    /// The lowercase name: `baseline`, `paired`.
    pub fn as_str(self) -> &'static str {
        match self {
            BenchMode::Baseline => "baseline",
            BenchMode::Paired => "paired",
        }
    }
}

/// `k` successes in `n` trials, with the 95 % Wilson score interval of the rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    /// Successes.
    pub k: usize,
    /// Trials.
    pub n: usize,
    /// `k / n`; `None` when `n` is 0.
    pub rate: Option<f64>,
    /// Lower bound of the 95 % Wilson interval (0 when `n` is 0).
    pub ci_low: f64,
    /// Upper bound of the 95 % Wilson interval (1 when `n` is 0).
    pub ci_high: f64,
}

/// One row of the summary: the trials of one mode and plant size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    /// Mode.
    pub mode: BenchMode,
    /// Planted slowdown in percent; 0 for A/A trials.
    pub size_pct: f64,
    /// Trials that produced verdicts.
    pub trials: usize,
    /// Trials that failed to run (not counted in any rate).
    pub failed: usize,
    /// Trials whose planted checkpoint was judged `regressed`; `None` for A/A.
    pub detected: Option<Proportion>,
    /// Trials whose planted checkpoint was judged `inconclusive`; `None` for A/A.
    pub inconclusive: Option<usize>,
    /// Trials in which a checkpoint other than the planted one (any, for A/A) was judged
    /// `regressed`.
    pub false_alarms: Proportion,
    /// Median wall time per trial, seconds (`NaN`, `null` in JSON, without trials).
    #[serde(deserialize_with = "super::nan_if_null")]
    pub median_wall_s: f64,
    /// Longest wall time of a trial, seconds (`NaN`, `null` in JSON, without trials).
    #[serde(deserialize_with = "super::nan_if_null")]
    pub max_wall_s: f64,
    /// Median over trials of the planted checkpoint's measured p50 ratio (current / baseline, or
    /// B / A when paired); `None` for A/A or when no trial measured it.
    pub median_p50_ratio: Option<f64>,
}

/// Whether a rate target is met, judged from the 95 % Wilson interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// The whole interval is on the right side.
    Met,
    /// The whole interval is on the wrong side.
    NotMet,
    /// The interval straddles the target: more trials are needed to tell.
    NotResolvable,
    /// No trials.
    NoData,
}

/// One quality target of the gate and where the measurement puts it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Mode.
    pub mode: BenchMode,
    /// The target in words, e.g. `false alarms <= 1% of A/A trials`.
    pub what: String,
    /// The plant size (percent, 0 for A/A) of the trials it is judged on.
    pub size_pct: f64,
    /// The target rate, a fraction in `[0, 1]`.
    pub goal: f64,
    /// `true` for "rate <= goal" (false alarms), `false` for "rate >= goal" (detections).
    pub at_most: bool,
    /// The measured successes out of trials, with its interval.
    pub measured: Proportion,
    /// The judgement.
    pub state: TargetState,
}

/// Everything `verdict-bench` concluded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// [`BENCH_SCHEMA`].
    pub schema: u32,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// Trials run (failed ones included).
    pub trials: usize,
    /// Scenarios benchmarked.
    pub scenarios: usize,
    /// Rounds per trial before adaptive extension (and rounds of each baseline).
    pub runs: usize,
    /// Most rounds per trial with adaptive extension.
    pub max_runs: usize,
    /// Time budget per trial, seconds.
    pub budget_s: f64,
    /// The configured minimum relevant effect (fraction: `0.03` = 3 %).
    pub min_effect: f64,
    /// The configured family-wise alpha.
    pub alpha: f64,
    /// The time limit of the detection target, seconds.
    pub detect_within_s: f64,
    /// Wall time of the whole benchmark, seconds (baseline recording included).
    pub wall_s: f64,
    /// The summary, by mode then plant size.
    pub rows: Vec<BenchRow>,
    /// The quality targets, by mode.
    pub targets: Vec<Target>,
}
