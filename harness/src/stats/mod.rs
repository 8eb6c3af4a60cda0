//! Statistics for the regression gate: pure functions over slices, no I/O, no clocks, no randomness.
//!
//! # Data flow
//!
//! ```text
//! per-call samples of one run ──RunSummary──► one value per run and metric (e.g. each run's p50)
//!   baseline runs ┐
//!                 ├─ compare_runs / compare_paired ──► Comparison (ratio, CI, p)   ┐
//!   current runs  ┘                                                              ├─► judge ─► Verdict
//!   all p-values of the invocation ── Correction::adjust ──► adjusted p           ┘
//!   run-level values ── noise_cv ──► effective_threshold ──► threshold ──────────────┘
//! ```
//!
//! # Design, and why
//!
//! **The process run is the unit of replication.** Calls inside one process share code layout, hash
//! seeds, CPU frequency and neighbours; two processes of the same binary can differ by a fixed 3-9%
//! on the machines we run on. A test that treated a million calls as independent would call every
//! such difference "significant" (criterion and similar tools flag 17-25% of A/A comparisons on this
//! machine that way). So per-call samples only make each run's summary precise ([`RunSummary`]), and
//! every test compares *run-level* values: the p50 of each of 8 baseline runs against the p50 of each
//! of 8 current runs. The noise the test knows about is then exactly the run-to-run noise that
//! decides whether a difference is real.
//!
//! **Log-ratio scale.** Timings are positive and their noise is multiplicative (a disturbed run is
//! some percent slower, not some nanoseconds), right-skewed, and the question asked is relative ("4%
//! slower"). On `ln(value)` the noise is close to symmetric with a spread independent of the level,
//! a difference of means is a ratio (`exp(mean(ln cur) - mean(ln base))`, the ratio of geometric
//! means), and a confidence interval for it maps back to a ratio interval by `exp`, which is always
//! positive and treats "2x slower" and "2x faster" symmetrically. Every effect here is a ratio
//! current / baseline: `> 1` is slower.
//!
//! **Tests.** The gate uses rank tests on the log values, because whole processes fall into
//! modes (a per-process hash seed or page placement moves a run by 10-50 %): a t-test reads one
//! slow process as a variance blow-up, a rank test as one rank. [`compare_paired_rank`]
//! (interleaved A/B rounds) runs a Wilcoxon signed-rank test on the per-round log ratios (pairing
//! cancels what the two runs of a round share) *and* a rank-sum test of the two arms (robust when
//! modes make some rounds' ratios wild), each at half the level; the shift is the Hodges-Lehmann
//! estimate ([`signed_rank_shift`], [`rank_sum_shift`]) with its distribution-free interval, and
//! each test's equivalent standard error sizes thresholds and [`detectable_shift`], so the test and
//! the promise read one spread. [`compare_runs_rank`] (independent runs, baseline mode) adds the
//! session offset's variance to the rank-sum test's: two sessions differ by more than their
//! processes. Every comparison also carries a one-sided `p_slower`, which the gate's regression
//! family uses. The t-tests ([`compare_runs`], [`compare_paired`]) remain for the library user.
//!
//! **Modes and variance sources.** [`detect_modes`] tells two well-separated groups of processes
//! from one, [`fisher_exact`] tests a change in how often processes are slow, [`shared_state`]
//! tells a scenario-wide slow state from a per-checkpoint mixture, and [`decompose_variance`]
//! splits run-to-run variance into between-round, between-process and within-process parts.
//!
//! **Multiplicity control.** One invocation tests every (checkpoint, metric); 100 tests at 5% would
//! raise about 5 false alarms per unchanged build. p-values are adjusted across the invocation with
//! [`Correction`] (Holm by default: family-wise error rate, valid under any dependence), and the
//! intervals the verdict reads are computed at [`Correction::interval_confidence`] (Bonferroni's
//! `1 - alpha/m` for Holm) so that they are simultaneous and agree with the adjusted p-values.
//!
//! **Equivalence band.** A verdict needs both statistical and practical significance. With the
//! threshold `t` (a relative effect, `0.05` = 5%), the band `[1/(1+t), 1+t]` says what "no relevant
//! change" means; [`judge`] calls a change regressed or improved only if it is significant and its
//! point estimate is outside the band, unchanged only if the whole interval is inside it, and
//! inconclusive otherwise. Noisy checkpoints must not masquerade as unchanged, and tiny but
//! significant drifts must not fail builds. [`effective_threshold`] raises the configured minimum
//! effect to what the runs can actually resolve ([`min_detectable_effect`] from [`noise_cv`]), so a
//! verdict is reproducible rather than a coin flip near the noise floor.
//!
//! # Errors and panics
//!
//! Functions that take data return [`StatsError`] for input they cannot use (too few values, `NaN`,
//! non-positive durations, probabilities outside `(0, 1)`), naming the problem. Nothing here panics on
//! any input; [`quantile_sorted`] returns `NaN` for an empty slice or a `q` outside `[0, 1]`.
//!
//! # Example
//!
//! ```
//! use funcscope_harness::stats::{compare_runs, judge, Correction, Verdict};
//!
//! let baseline = [101.0, 99.0, 100.0, 102.0, 98.0, 100.5, 99.5, 100.0]; // p50 per run, ns
//! let current = [121.0, 119.0, 120.5, 122.0, 118.0, 120.0, 119.5, 121.0];
//! let alpha = 0.05;
//! let m = 1; // number of (checkpoint, metric) tests in this invocation
//! let confidence = Correction::Holm.interval_confidence(alpha, m, 0).unwrap();
//! let cmp = compare_runs(&baseline, &current, confidence).unwrap();
//! let adjusted = Correction::Holm.adjust(&[cmp.p_value]);
//! assert_eq!(judge(&cmp, adjusted[0], alpha, 0.05), Verdict::Regressed);
//! assert!((cmp.ratio - 1.2).abs() < 0.01);
//! ```

mod cells;
pub mod changepoint;
mod compare;
mod counts;
mod location;
mod modes;
mod multiple;
mod noise;
mod proportion;
mod rank;
mod rng;
mod summary;
mod verdict;

#[cfg(test)]
mod properties;

pub use cells::{grouped_quantile_cells, TickCounts, DENSE_TICKS, MIN_SIGNIFICANT_BITS, SPARSE_CELLS};
pub use compare::{
    compare_paired, compare_paired_rank, compare_runs, compare_runs_rank, Comparison, Method, MIN_SAME_STATE_ROUNDS,
};
pub use counts::{compare_counts, judge_counts, CountComparison, CountInput, CountMethod, CountRule, MIN_EXACT_RUNS};
pub use location::{geo_mean, median};
pub use modes::{
    decompose_variance, detect_modes, fisher_exact, median_sampling_var, min_gap, min_separation, shared_state, Fisher,
    ModeSplit, ModesError, SharedState, VarianceParts, VarianceSource, IQR_TO_SD, MIN_GROUP_FRACTION,
    SCENARIO_WIDE_PHI,
};
pub use multiple::{benjamini_hochberg, holm, Correction};
pub use noise::{
    between_group_var, detectable_shift, effective_threshold, effective_threshold_at, log_ratio_sd,
    min_detectable_effect, noise_cv, paired_as_two_sample_cv, FLOOR_ALPHA, FLOOR_POWER, MAD_TO_SD,
};
pub use proportion::wilson;
pub use rank::{rank_sum_shift, signed_rank_shift, Shift};
pub use rng::SplitMix64;
pub use summary::{grouped_quantile_sorted, quantile_sorted, Metric, RunSummary};
pub use verdict::{judge, judge_regression, judge_with_equivalence, Verdict};

/// Why a statistic could not be computed. Every variant names the offending input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// No values at all where at least one is needed.
    #[error("no {what}: at least one is needed")]
    Empty {
        /// Which input was empty.
        what: &'static str,
    },
    /// Fewer values than the statistic needs (a variance needs 2).
    #[error("too few {what}: {got} given, at least {needed} needed")]
    TooFew {
        /// Which input (`"baseline"`, `"current"`, `"a"`, `"b"`, `"values"`, ...).
        what: &'static str,
        /// The minimum.
        needed: usize,
        /// How many were given.
        got: usize,
    },
    /// A `NaN` or infinite value: a broken clock or conversion, never a real duration.
    #[error("{what}[{index}] is {value}, which is not a finite number")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A zero or negative value where a positive duration is needed (ratios and logarithms of
    /// durations are undefined for it).
    #[error("{what}[{index}] is {value}; run-level values must be > 0 to take ratios and logarithms")]
    NonPositive {
        /// Which input.
        what: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A slice that should be sorted ascending is not.
    #[error("values are not sorted ascending: element {index} is smaller than the one before it")]
    NotSorted {
        /// First index `i` with `sorted[i - 1] > sorted[i]`.
        index: usize,
    },
    /// Paired inputs of different lengths.
    #[error("paired inputs differ in length: a has {a} values, b has {b}")]
    LengthMismatch {
        /// Length of `a`.
        a: usize,
        /// Length of `b`.
        b: usize,
    },
    /// A probability parameter (confidence, alpha, power) outside the open interval `(0, 1)`.
    #[error("{name} must be strictly between 0 and 1, got {value}")]
    InvalidProbability {
        /// Which parameter.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// A noise coefficient of variation that is negative or not finite.
    #[error("noise coefficient of variation must be finite and >= 0, got {value}")]
    InvalidNoise {
        /// The value given.
        value: f64,
    },
    /// A relative-effect threshold that is negative or not finite.
    #[error("threshold must be a finite relative effect >= 0 (0.05 = 5%), got {value}")]
    InvalidThreshold {
        /// The value given.
        value: f64,
    },
    /// A metric name that is not one of the stable names.
    #[error("unknown metric {name:?}: expected one of min, p50, p90, p99, p99.9, max, mean")]
    UnknownMetric {
        /// The name given.
        name: String,
    },
}
