//! What the plots of one checkpoint show: the per-call latency distribution of each side and the
//! per-run values of each judged metric. Filled by the judge (run values) and by the commands
//! from their pooled samples (distributions, see [`crate::distribution`]); the plot and HTML
//! reporters only draw them.

use serde::{Deserialize, Serialize};

use crate::stats::Metric;

/// Plot data of one checkpoint. Every part is optional: a document from before it existed, a
/// baseline without samples, or a one-sided checkpoint shows what there is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Distributions {
    /// The baseline's (or arm A's) per-call distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Ecdf>,
    /// The current (or arm B's) per-call distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Ecdf>,
    /// The probe's exact histogram of every call on the baseline side (level Deep and above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_deep: Option<DeepHistogram>,
    /// The probe's exact histogram of every call on the current side (level Deep and above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_deep: Option<DeepHistogram>,
    /// Per judged metric: the run-level values of both sides, as the test saw them (before any
    /// drift correction).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunValues>,
}

impl Distributions {
    /// Whether there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.baseline.is_none()
            && self.current.is_none()
            && self.baseline_deep.is_none()
            && self.current_deep.is_none()
            && self.runs.is_empty()
    }
}

/// Where an [`Ecdf`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EcdfSource {
    /// Every sampled call of every run, pooled (3 significant digits).
    Samples,
    /// Only the baseline file's pooled quantiles (p50, p90, p99, p99.9): a coarse outline.
    BaselineQuantiles,
}

/// An empirical cumulative distribution, compacted to a fixed grid of probabilities.
/// Invariant: `points` ascending in both coordinates, values `> 0`, fractions in `[0, 1]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ecdf {
    /// Where the points come from.
    pub source: EcdfSource,
    /// Calls behind it (0 if unknown).
    pub calls: u64,
    /// `(ns, fraction of calls at or below it)`, ascending.
    pub points: Vec<(f64, f64)>,
    /// The median call, ns.
    pub p50: f64,
    /// The 99th percentile, ns.
    pub p99: f64,
}

/// The probe's log-linear histogram of every call (nothing sampled away), non-empty buckets only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeepHistogram {
    /// `(low ns, high ns, calls)` per non-empty bucket, ascending, `low < high`.
    pub buckets: Vec<(f64, f64, u64)>,
}

/// The per-run values of one metric on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunValues {
    /// The metric.
    pub metric: Metric,
    /// Baseline (or arm A) per run, ns.
    pub baseline: Vec<f64>,
    /// Current (or arm B) per run, ns.
    pub current: Vec<f64>,
}
