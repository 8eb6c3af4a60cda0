//! Per-run summaries: what one process run of a scenario says about one checkpoint.
//!
//! A [`RunSummary`] condenses the per-call durations of one run into a handful of order statistics and
//! the mean. Those run-level numbers, one per run, are what [`compare_runs`](super::compare_runs) and
//! [`compare_paired`](super::compare_paired) compare; individual calls never reach a test, because calls
//! inside one process are not independent replicates (see the module overview in [`super`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::StatsError;

/// The `q`-quantile of an ascending sorted slice, by linear interpolation between order statistics.
///
/// This is Hyndman & Fan's type 7, the default of numpy (`method="linear"`), R and Excel's
/// `PERCENTILE.INC`: with `n` values and `h = (n - 1) * q`, the result is
/// `sorted[floor(h)] + (h - floor(h)) * (sorted[floor(h) + 1] - sorted[floor(h)])`. So `q = 0` gives the
/// minimum, `q = 1` the maximum, and `q = 0.5` the usual median.
///
/// Returns `NaN` when `sorted` is empty or `q` is not in `[0, 1]` (including `NaN`); it never panics.
/// The slice must be sorted ascending; this is checked only by a `debug_assert!` because checking costs
/// as much as the lookup is meant to save (use [`RunSummary::from_sorted`] for a checked entry point).
///
/// Time: `O(1)` (plus `O(n)` for the sortedness check in debug builds).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    debug_assert!(
        sorted.windows(2).all(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Greater)),
        "quantile_sorted needs an ascending slice"
    );
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    // `h` is in [0, n - 1] because q is in [0, 1], so both indices are in bounds.
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = h - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    if frac == 0.0 || a == b {
        // Exact order statistic: avoids `inf - inf` and keeps the value bit-identical.
        a
    } else {
        a + frac * (b - a)
    }
}

/// The `q`-quantile of an ascending sorted slice whose values lie on a grid (many ties), treating
/// each distinct value as a cell that spreads its calls uniformly over the span halfway to its
/// neighbours: the interpolated quantile of grouped data.
///
/// Why: tick counters are coarse. On AMD Zen the TSC advances in steps of ~26 ticks (10 ns at
/// 2.6 GHz), so a 40 ns call reads 39.9 or 50.0 ns and nothing between. The type-7 median of such
/// data jumps a whole step when the true median crosses a step boundary and does not move at all
/// otherwise, so a 3 % slowdown of a 45 ns call is either invisible or a 25 % jump. Here the
/// estimate moves in proportion to how much probability mass shifts from one cell to the next,
/// which is what a real slowdown does. For data without ties the result is within half a gap of
/// [`quantile_sorted`]. With `n` values and `t = q * n`, the cell of distinct value `v_i`, holding
/// the calls ranked `(F_i, F_i + c_i]`, spans `[(v_{i-1} + v_i) / 2, (v_i + v_{i+1}) / 2]` (the
/// outermost cells mirror their inner half); the result is `lo_i + (t - F_i) / c_i * (hi_i - lo_i)`
/// for the first cell with `F_i + c_i >= t`, clamped to `[min, max]`.
///
/// Returns `NaN` when `sorted` is empty or `q` is not in `[0, 1]`; never panics.
///
/// Time: `O(n)`.
pub fn grouped_quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let n = sorted.len();
    let t = q * n as f64;
    // Walk the runs of equal values, remembering the previous distinct value.
    let mut start = 0usize; // index of the first value of the current run
    let mut prev: Option<f64> = None;
    while start < n {
        let v = sorted[start];
        let mut end = start + 1;
        while end < n && sorted[end] == v {
            end += 1;
        }
        if end as f64 >= t || end == n {
            let next = sorted.get(end).copied();
            let (lo, hi) = grid_cell(v, prev, next);
            let c = (end - start) as f64;
            let frac = ((t - start as f64) / c).clamp(0.0, 1.0);
            return (lo + frac * (hi - lo)).clamp(sorted[0], sorted[n - 1]);
        }
        prev = Some(v);
        start = end;
    }
    sorted[n - 1]
}

/// A run-level statistic of one checkpoint: which number of a [`RunSummary`] a test compares.
///
/// The names ([`Metric::as_str`], also the serde names) are stable: they are keys in committed baseline
/// TOML files and in JSON reports. `p99.9` contains a dot, so TOML writes it as a quoted key
/// (`"p99.9" = 1234.5`); the `toml` crate does that by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Metric {
    /// The fastest call of the run.
    #[serde(rename = "min")]
    Min,
    /// The median call.
    #[serde(rename = "p50")]
    P50,
    /// The 90th percentile.
    #[serde(rename = "p90")]
    P90,
    /// The 99th percentile.
    #[serde(rename = "p99")]
    P99,
    /// The 99.9th percentile.
    #[serde(rename = "p99.9")]
    P999,
    /// The slowest call of the run.
    #[serde(rename = "max")]
    Max,
    /// The arithmetic mean of all calls.
    #[serde(rename = "mean")]
    Mean,
}

impl Metric {
    /// Every metric, in the order reports list them.
    pub const ALL: [Metric; 7] =
        [Metric::Min, Metric::P50, Metric::P90, Metric::P99, Metric::P999, Metric::Max, Metric::Mean];

    /// The metrics a baseline also records pooled over all calls of all runs, in [`Metric::ALL`]
    /// order: the inner quantiles (min, max and mean of pooled calls say nothing the per-run values
    /// do not).
    pub const POOLED: [Metric; 4] = [Metric::P50, Metric::P90, Metric::P99, Metric::P999];

    /// The metric named `name` ([`Metric::as_str`], exactly, case-sensitive), or `None`.
    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// The stable lowercase name: `"min"`, `"p50"`, `"p90"`, `"p99"`, `"p99.9"`, `"max"` or `"mean"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Metric::Min => "min",
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P99 => "p99",
            Metric::P999 => "p99.9",
            Metric::Max => "max",
            Metric::Mean => "mean",
        }
    }

    /// The quantile this metric is, if it is one (`Min` is 0, `Max` is 1); `None` for `Mean`.
    pub const fn quantile(self) -> Option<f64> {
        match self {
            Metric::Min => Some(0.0),
            Metric::P50 => Some(0.5),
            Metric::P90 => Some(0.9),
            Metric::P99 => Some(0.99),
            Metric::P999 => Some(0.999),
            Metric::Max => Some(1.0),
            Metric::Mean => None,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = StatsError;

    /// Parses a stable name exactly (case-sensitive, as written in baselines). Anything else is
    /// [`StatsError::UnknownMetric`], whose message lists the accepted names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::parse(s).ok_or_else(|| StatsError::UnknownMetric { name: s.to_owned() })
    }
}

/// What one process run says about one checkpoint: count, order statistics and mean of its per-call
/// durations (nanoseconds by convention; nothing here depends on the unit).
///
/// Invariants (checked by the constructors): `count >= 1`; every field is finite;
/// `min <= p50 <= p90 <= p99 <= p999 <= max` and `min <= mean <= max`. Percentiles are
/// [`quantile_sorted`] (type 7) of the run's samples.
///
/// Serialized field names are the [`Metric`] names, so a baseline's keys match `--metric` arguments.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Number of calls in the run; `>= 1`.
    pub count: u64,
    /// Fastest call.
    pub min: f64,
    /// Median call (type-7 quantile 0.5).
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p999: f64,
    /// Slowest call.
    pub max: f64,
    /// Arithmetic mean of all calls (compensated summation).
    pub mean: f64,
}

impl RunSummary {
    /// Summarizes per-call values in any order; sorts `samples` in place (that is why it takes
    /// `&mut`: a run can hold millions of samples and a copy would double the memory).
    ///
    /// # Errors
    /// [`StatsError::Empty`] if there are no samples, [`StatsError::NonFinite`] if any is `NaN` or
    /// infinite (a broken clock or a conversion bug, never a real duration).
    ///
    /// Time: `O(n log n)`; memory: none beyond the slice.
    pub fn from_samples(samples: &mut [f64]) -> Result<RunSummary, StatsError> {
        check_finite(samples, "samples")?;
        samples.sort_unstable_by(f64::total_cmp);
        RunSummary::from_sorted(samples)
    }

    /// Summarizes per-call values already sorted ascending.
    ///
    /// # Errors
    /// [`StatsError::Empty`], [`StatsError::NonFinite`], or [`StatsError::NotSorted`] with the first
    /// index `i` where `sorted[i - 1] > sorted[i]`.
    ///
    /// Time: `O(n)`.
    pub fn from_sorted(sorted: &[f64]) -> Result<RunSummary, StatsError> {
        if sorted.is_empty() {
            return Err(StatsError::Empty { what: "samples" });
        }
        check_finite(sorted, "samples")?;
        if let Some(i) = sorted.windows(2).position(|w| w[0] > w[1]) {
            return Err(StatsError::NotSorted { index: i + 1 });
        }
        let q = |q| quantile_sorted(sorted, q);
        // The mean of finite values is finite unless the sum overflows (|x| ~ 1e308); clamp into
        // [min, max] so the invariant holds against rounding too.
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        let mean = (neumaier_sum(sorted) / sorted.len() as f64).clamp(min, max);
        Ok(RunSummary {
            count: sorted.len() as u64,
            min,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max,
            mean,
        })
    }

    /// Like [`RunSummary::from_samples`], but the percentiles are [`grouped_quantile_sorted`]: for
    /// durations read from a coarse tick counter (values on a grid). `min`, `max` and `mean` are
    /// the same as in `from_samples`.
    ///
    /// # Errors
    /// As [`RunSummary::from_samples`].
    ///
    /// Time: `O(n log n)`.
    pub fn from_grid_samples(samples: &mut [f64]) -> Result<RunSummary, StatsError> {
        let mut s = RunSummary::from_samples(samples)?;
        let q = |q| grouped_quantile_sorted(samples, q);
        // Monotone in q, and clamped to [min, max]: the invariants hold.
        (s.p50, s.p90, s.p99, s.p999) = (q(0.5), q(0.9), q(0.99), q(0.999));
        Ok(s)
    }

    /// The value of one metric.
    pub const fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Min => self.min,
            Metric::P50 => self.p50,
            Metric::P90 => self.p90,
            Metric::P99 => self.p99,
            Metric::P999 => self.p999,
            Metric::Max => self.max,
            Metric::Mean => self.mean,
        }
    }
}

/// Rejects `NaN` and infinities, naming the first offender.
fn check_finite(values: &[f64], what: &'static str) -> Result<(), StatsError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatsError::NonFinite { what, index, value: values[index] }),
        None => Ok(()),
    }
}

/// Neumaier's compensated sum: the error stays `O(eps)` instead of growing with `n`, which matters for
/// a mean over tens of millions of calls.
fn neumaier_sum(values: &[f64]) -> f64 {
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    for &v in values {
        let t = sum + v;
        if sum.abs() >= v.abs() {
            comp += (sum - t) + v;
        } else {
            comp += (v - t) + sum;
        }
        sum = t;
    }
    sum + comp
}

/// The interval a grid value `v` stands for, between its distinct neighbours `prev` and `next`:
/// halfway to each, mirrored at an end with one neighbour, the point itself with none.
pub(super) fn grid_cell(v: f64, prev: Option<f64>, next: Option<f64>) -> (f64, f64) {
    let lo = match (prev, next) {
        (Some(p), _) => (p + v) / 2.0,
        (None, Some(nx)) => v - (nx - v) / 2.0,
        (None, None) => v,
    };
    let hi = match (next, prev) {
        (Some(nx), _) => (v + nx) / 2.0,
        (None, Some(p)) => v + (v - p) / 2.0,
        (None, None) => v,
    };
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn grouped_quantile_moves_with_the_mass_not_in_steps() {
        // Half the calls at 40, half at 50: the median is the boundary between the cells.
        let mut v = vec![40.0; 10];
        v.extend([50.0; 10]);
        assert_eq!(grouped_quantile_sorted(&v, 0.5), 45.0);
        // 6 at 40, 14 at 50: t = 10 falls 4/14 into the 50-cell [45, 55].
        let mut v = vec![40.0; 6];
        v.extend([50.0; 14]);
        assert!(close(grouped_quantile_sorted(&v, 0.5), 45.0 + 4.0 / 14.0 * 10.0, 1e-12));
        // Type 7 jumps straight to 50 for the same data.
        assert_eq!(quantile_sorted(&v, 0.5), 50.0);
        // Moving one call from 40 to 50 moves the grouped median a little, never a whole step.
        let mut w = vec![40.0; 5];
        w.extend([50.0; 15]);
        let (a, b) = (grouped_quantile_sorted(&v, 0.5), grouped_quantile_sorted(&w, 0.5));
        assert!(b > a && b - a < 2.0, "{a} -> {b}");
        // Single value, extremes, bad input.
        assert_eq!(grouped_quantile_sorted(&[7.0, 7.0, 7.0], 0.5), 7.0);
        assert_eq!(grouped_quantile_sorted(&v, 0.0), 40.0);
        assert_eq!(grouped_quantile_sorted(&v, 1.0), 50.0);
        assert!(grouped_quantile_sorted(&[], 0.5).is_nan());
        assert!(grouped_quantile_sorted(&v, 1.5).is_nan());
        // Without ties it stays within half a gap of type 7.
        let x: Vec<f64> = (1..=1001).map(|i| i as f64).collect();
        for q in [0.1, 0.5, 0.9, 0.99] {
            assert!((grouped_quantile_sorted(&x, q) - quantile_sorted(&x, q)).abs() <= 1.0, "q={q}");
        }
        let s = RunSummary::from_grid_samples(&mut v.clone()).unwrap();
        assert!(s.min <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max);
    }

    #[test]
    fn stats_quantile_matches_numpy_linear() {
        // Reference: numpy 2.4.6, np.quantile(x, q) (default method="linear"),
        // x = [15, 20, 35, 40, 50, 7, 3, 100, 1, 9] sorted.
        let mut x = [15.0, 20.0, 35.0, 40.0, 50.0, 7.0, 3.0, 100.0, 1.0, 9.0];
        x.sort_by(f64::total_cmp);
        let cases =
            [(0.0, 1.0), (0.1, 2.8), (0.25, 7.5), (0.5, 17.5), (0.9, 55.0), (0.99, 95.5), (0.999, 99.55), (1.0, 100.0)];
        for (q, want) in cases {
            let got = quantile_sorted(&x, q);
            assert!(close(got, want, 1e-12), "q={q}: got {got}, want {want}");
        }
    }

    #[test]
    fn stats_quantile_edges() {
        assert!(quantile_sorted(&[], 0.5).is_nan());
        assert!(quantile_sorted(&[1.0], f64::NAN).is_nan());
        assert!(quantile_sorted(&[1.0], -0.1).is_nan());
        assert!(quantile_sorted(&[1.0], 1.1).is_nan());
        assert_eq!(quantile_sorted(&[4.0], 0.0), 4.0);
        assert_eq!(quantile_sorted(&[4.0], 0.999), 4.0);
        assert_eq!(quantile_sorted(&[1.0, 3.0], 0.5), 2.0);
        assert_eq!(quantile_sorted(&[2.0, 2.0, 2.0], 0.37), 2.0);
    }

    #[test]
    fn stats_summary_from_samples() {
        // Reference: numpy 2.4.6, x = np.arange(1, 1001); np.quantile(x, [.5, .9, .99, .999]) =
        // [500.5, 900.1, 990.01, 999.001]; x.mean() = 500.5.
        let mut x: Vec<f64> = (1..=1000).rev().map(f64::from).collect();
        let s = RunSummary::from_samples(&mut x).unwrap();
        assert_eq!(s.count, 1000);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 1000.0);
        assert!(close(s.p50, 500.5, 1e-12));
        assert!(close(s.p90, 900.1, 1e-12));
        assert!(close(s.p99, 990.01, 1e-12));
        assert!(close(s.p999, 999.001, 1e-12));
        assert!(close(s.mean, 500.5, 1e-15));
        for m in Metric::ALL {
            let v = s.get(m);
            match m.quantile() {
                Some(q) => assert_eq!(v, quantile_sorted(&x, q)),
                None => assert_eq!(v, s.mean),
            }
        }
    }

    #[test]
    fn stats_summary_single_sample() {
        let s = RunSummary::from_sorted(&[42.0]).unwrap();
        for m in Metric::ALL {
            assert_eq!(s.get(m), 42.0);
        }
        assert_eq!(s.count, 1);
    }

    #[test]
    fn stats_summary_errors() {
        assert!(matches!(RunSummary::from_samples(&mut []), Err(StatsError::Empty { .. })));
        assert!(matches!(RunSummary::from_samples(&mut [1.0, f64::NAN]), Err(StatsError::NonFinite { index: 1, .. })));
        assert!(matches!(RunSummary::from_sorted(&[1.0, f64::INFINITY]), Err(StatsError::NonFinite { index: 1, .. })));
        assert!(matches!(RunSummary::from_sorted(&[1.0, 3.0, 2.0]), Err(StatsError::NotSorted { index: 2 })));
    }

    #[test]
    fn stats_mean_is_compensated() {
        // 1e16 + 1 + 1 + ... loses every 1 in naive summation; the compensated mean does not.
        let mut x = vec![1.0; 1001];
        x[0] = 1e16;
        let s = RunSummary::from_samples(&mut x).unwrap();
        let want = (1e16 + 1000.0) / 1001.0;
        assert!(close(s.mean, want, 1e-15), "{} vs {}", s.mean, want);
    }

    #[test]
    fn stats_metric_names_round_trip() {
        let names = ["min", "p50", "p90", "p99", "p99.9", "max", "mean"];
        for (m, name) in Metric::ALL.into_iter().zip(names) {
            assert_eq!(m.as_str(), name);
            assert_eq!(m.to_string(), name);
            assert_eq!(name.parse::<Metric>().unwrap(), m);
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Metric>(&format!("\"{name}\"")).unwrap(), m);
        }
        let err = "p95".parse::<Metric>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("p95") && msg.contains("p99.9"), "{msg}");
        assert!("P50".parse::<Metric>().is_err());
    }

    #[test]
    fn stats_metric_parse() {
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.as_str()), Some(m));
        }
        for bad in ["p95", "P50", "p99_9", " p50", ""] {
            assert_eq!(Metric::parse(bad), None, "{bad:?}");
        }
        // POOLED is a subsequence of ALL, in ALL order.
        let in_all: Vec<Metric> = Metric::ALL.into_iter().filter(|m| Metric::POOLED.contains(m)).collect();
        assert_eq!(in_all, Metric::POOLED);
    }

    #[test]
    fn stats_summary_serde_keys_are_metric_names() {
        let s = RunSummary::from_sorted(&[1.0, 2.0]).unwrap();
        let json = serde_json::to_value(s).unwrap();
        for m in Metric::ALL {
            assert_eq!(json[m.as_str()].as_f64().unwrap(), s.get(m), "{m}");
        }
        let back: RunSummary = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
