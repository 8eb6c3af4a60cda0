//! The result of `calibrate`: this machine's run-to-run noise per checkpoint and metric, the
//! smallest regression the gate can detect with it, and how the A/A pairs were judged.
//!
//! Relative quantities (coefficients of variation, standard deviations of log ratios, minimum
//! detectable effects) are fractions: `0.05` is 5 %. A value that could not be computed (too few
//! usable runs) is `NaN`, written as `null` in JSON and read back as `NaN`.

use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::stats::Metric;

/// Version of the calibration JSON schema (`calibrate.json`). Bumped on any incompatible change.
pub const CALIBRATION_SCHEMA: u32 = 1;

/// One row of the calibration table: the noise of one (scenario, checkpoint, metric).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseRow {
    /// Scenario.
    pub scenario: String,
    /// Checkpoint.
    pub checkpoint: String,
    /// Metric.
    pub metric: Metric,
    /// Runs measured, both arms together (`2 x` the rounds that had the checkpoint).
    pub runs: usize,
    /// Robust coefficient of variation of the raw run values (fraction, >= 0).
    #[serde(deserialize_with = "super::nan_if_null")]
    pub cv_raw: f64,
    /// Robust coefficient of variation after dividing each run by the reference speed of its round
    /// (fraction, >= 0); `None` without reference runs.
    pub cv_corrected: Option<f64>,
    /// Spread of the per-round natural-log ratios A/B as the gate's signed-rank test sees it: its
    /// equivalent standard error times `sqrt(rounds)` (paired noise, >= 0).
    #[serde(deserialize_with = "super::nan_if_null")]
    pub sd_paired: f64,
    /// Minimum detectable effect in baseline mode (relative, fraction > 0), with `runs` runs a
    /// side and the session offset `gate.session_cv`, one-sided at [`CalibrationReport::per_test_alpha`] and [`CalibrationReport::mde_power`].
    #[serde(deserialize_with = "super::nan_if_null")]
    pub mde_baseline: f64,
    /// Minimum detectable effect in paired mode (relative, fraction > 0), with `runs` rounds.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub mde_paired: f64,
}

/// How the A/A pairs were judged (exactly as `compare` would judge them, `--strict`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AaVerdicts {
    /// Checkpoints judged `regressed`, as `scenario/checkpoint`: every one is a false alarm,
    /// since both arms ran the same build.
    pub false_alarms: Vec<String>,
    /// Checkpoints judged `unchanged`.
    pub unchanged: usize,
    /// Checkpoints judged `inconclusive`.
    pub inconclusive: usize,
}

/// A scenario that failed to run during calibration (it has no rows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioFailure {
    /// Scenario.
    pub scenario: String,
    /// Why it failed (may span lines: the tail of its stderr).
    pub error: String,
}

/// Everything `calibrate` measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// [`CALIBRATION_SCHEMA`].
    pub schema: u32,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// This machine.
    pub machine: Fingerprint,
    /// Measured rounds per scenario (each round runs both arms once); also the runs a side the
    /// minimum detectable effects are computed for.
    pub runs: usize,
    /// The per-test significance level the gate uses, in (0, 1): alpha over every test of the
    /// configuration and every planned look.
    pub per_test_alpha: f64,
    /// Power at which the minimum detectable effects are given, in (0, 1).
    pub mde_power: f64,
    /// The noise table, by scenario (configuration order), checkpoint (name order), metric.
    pub rows: Vec<NoiseRow>,
    /// The A/A pairs judged like `compare`.
    pub aa: AaVerdicts,
    /// Scenarios that failed to run.
    #[serde(default)]
    pub failed: Vec<ScenarioFailure>,
    /// This session against the stored baselines of this machine: the session offset baseline
    /// mode must allow for (`None` without such baselines).
    #[serde(default)]
    pub session: Option<SessionOffset>,
}

/// How far this session's p50 values lie from the stored baselines' (same machine, drift
/// corrected where both have reference runs), beyond what run-to-run noise explains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionOffset {
    /// Checkpoints compared.
    pub checkpoints: usize,
    /// Estimated session coefficient of variation: the root mean square of the log offsets less
    /// their sampling variance (fraction, >= 0). Compare with `gate.session_cv`.
    pub session_cv: f64,
    /// The largest offset seen, as a signed fraction.
    pub largest: f64,
    /// The checkpoint with the largest offset, `scenario/checkpoint`.
    pub largest_at: String,
    /// `gate.session_cv` as configured.
    pub configured: f64,
}
