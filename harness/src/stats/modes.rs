//! Whole-process speed modes: whether per-run values split into two well-separated groups, whether
//! a scenario's checkpoints fall into their slow group together, whether a change made the slow
//! mode more frequent, and which source of variance dominates a checkpoint.
//!
//! Why: a process run's speed is partly decided once, at start (per-process hash seeds, heap and
//! page placement, code alignment), so per-run values of one build are often a mixture: a
//! checkpoint's per-process p50 over 20 runs clusters at ~470, ~500-600 and ~715-840 ns. The rank
//! tests ([`signed_rank_shift`](super::signed_rank_shift)) stay precise on such data, but a report
//! should say *that* a checkpoint is multi-modal, whether the slow state is scenario-wide (every
//! checkpoint of a run is slow together: a process-level state) or one checkpoint's own mixture,
//! and whether a change moved runs between modes rather than shifting every run.
//!
//! * [`detect_modes`]: the 1-D two-means (Otsu) split of one checkpoint's per-run log values,
//!   accepted only when the two groups are far apart relative to their own spread.
//! * [`shared_state`]: how strongly the slow-group membership of a run agrees across the
//!   checkpoints of one scenario (mean pairwise phi coefficient, fraction of unanimous runs).
//! * [`fisher_exact`]: Fisher's exact test for a change in how often runs are slow, A against B.
//! * [`decompose_variance`]: per checkpoint, the run-to-run variance of paired A/B rounds split into
//!   a between-round part (what both runs of a round share), a between-process part (the rest of
//!   the run-to-run variance) and a within-process part (each run's own sampling noise).
//!
//! All values are on the log scale (`ln` of a duration), as everywhere in [`stats`](super).

use statrs::function::factorial::ln_factorial;

use super::StatsError;

/// Smallest separation `(high_centre - low_centre) / within_sd` that [`detect_modes`] accepts from
/// `n` values: `3.5 + 2 sqrt(10 / n)` (5.5 at 10 values, 4.9 at 20, 3.9 at 200).
///
/// Why these numbers: on one normal sample the best two-means split lies near the median, and the
/// two halves are truncated normals whose centres are `1.6 sd` apart with a spread of `0.6 sd`
/// each: a separation near 2.7 for large samples, but up to 6 by chance among 10 values (the
/// 99th percentile). Two modes `d` standard deviations apart give a separation near `d`. The rule
/// is in the spirit of Engelman and Hartigan's (1969) test, whose statistic (the maximal
/// between/within ratio) is this separation in other units, with critical values that fall with
/// `n`; the coefficients were calibrated with [`min_gap`] by simulation (4,000 samples per size
/// from 10 to 200 values): under 2 % of normal samples and under 3 % of skewed unimodal ones
/// (log of a normal with a 25 % coefficient of variation) are flagged at any size.
pub fn min_separation(n: usize) -> f64 {
    3.5 + 2.0 * (10.0 / n as f64).sqrt()
}

/// Smallest empty gap `(min(high) - max(low)) / within_sd` between the groups that
/// [`detect_modes`] accepts from `n` values: `min(2, 30 / n)`.
///
/// Two modes leave a stretch of the axis where no run lands; one mode has its densest values where
/// the split falls, so its gap shrinks like `1 / n`. The gap rule is what keeps small samples
/// honest (among 10 normal values a tight pair of tail values can look far from the rest); the
/// separation rule alone would flag 16 % of them. Large samples of two modes a few standard
/// deviations apart have tails that nearly meet, hence the bound falls with `n`.
pub fn min_gap(n: usize) -> f64 {
    (30.0 / n as f64).min(2.0)
}

/// Smallest share of the runs each group of a [`ModeSplit`] must hold (and at least 2 runs): one or
/// two stragglers are outliers, not a mode.
pub const MIN_GROUP_FRACTION: f64 = 0.1;

/// Mean pairwise phi coefficient from which [`SharedState::is_scenario_wide`] calls the slow state
/// scenario-wide: the checkpoints' memberships agree far beyond chance (independent checkpoints
/// give a phi around `0 ± 1/sqrt(runs)`).
pub const SCENARIO_WIDE_PHI: f64 = 0.5;

/// Why a mode statistic could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModesError {
    /// A problem with the data that the rest of [`stats`](super) also reports.
    #[error(transparent)]
    Stats(#[from] StatsError),
    /// More slow runs than runs in an arm of [`fisher_exact`].
    #[error("arm {arm}: {slow} slow runs out of {total}; the slow count cannot exceed the total")]
    CountAboveTotal {
        /// `"a"` or `"b"`.
        arm: &'static str,
        /// The slow count given.
        slow: u64,
        /// The total given.
        total: u64,
    },
    /// A negative or non-finite variance where a sampling variance (`>= 0`) is needed.
    #[error("{what}[{index}] is {value}; a sampling variance must be finite and >= 0")]
    InvalidVariance {
        /// Which input.
        what: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The value.
        value: f64,
    },
}

/// Two well-separated groups of per-run values found by [`detect_modes`].
///
/// Invariants: `low_count + high_count == slow.len()`, both counts at least
/// `max(2, ceil(0.1 * n))`; `low_centre < threshold < high_centre`; every value of the low group is
/// `< threshold` and every value of the high group `> threshold`; `separation >= min_separation(n)`
/// and `gap >= min_gap(n)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeSplit {
    /// The midpoint between the largest value of the low group and the smallest of the high group:
    /// a value above it belongs to the slow mode.
    pub threshold: f64,
    /// Number of runs in the low (fast) group.
    pub low_count: usize,
    /// Number of runs in the high (slow) group.
    pub high_count: usize,
    /// Mean of the low group (log scale: `exp` of it is the group's geometric mean).
    pub low_centre: f64,
    /// Mean of the high group (log scale).
    pub high_centre: f64,
    /// Pooled within-group standard deviation, `sqrt((SS_low + SS_high) / (n - 2))`.
    pub within_sd: f64,
    /// `(high_centre - low_centre) / within_sd`; infinite when both groups have no spread.
    pub separation: f64,
    /// The empty stretch between the groups, `(min(high) - max(low)) / within_sd`.
    pub gap: f64,
    /// Per input value, in input order: `true` when it is in the high (slow) group.
    pub slow: Vec<bool>,
}

impl ModeSplit {
    /// Share of the runs in the slow group, in `(0, 1)`.
    pub fn slow_fraction(&self) -> f64 {
        self.high_count as f64 / (self.low_count + self.high_count) as f64
    }

    /// The slow mode's centre relative to the fast one as a ratio of geometric means (`> 1`).
    pub fn ratio(&self) -> f64 {
        (self.high_centre - self.low_centre).exp()
    }
}

/// Checks that every value is finite.
fn check_finite(values: &[f64], what: &'static str) -> Result<(), StatsError> {
    match values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, &value)) => Err(StatsError::NonFinite { what, index, value }),
        None => Ok(()),
    }
}

/// Whether per-run log values are a mixture of two well-separated groups, and if so which.
///
/// Method: sort; over every split of the sorted values between two distinct values that leaves each
/// side at least `max(2, ceil(0.1 n))` values ([`MIN_GROUP_FRACTION`]), take the one that
/// maximises the between-group variance `n_lo n_hi (mean_hi - mean_lo)^2` (Otsu's threshold, the
/// exact 1-D two-means optimum). Accept it as two modes only when the groups are far apart
/// relative to their pooled within-group standard deviation `s_w`:
///
/// * separation `(mean_hi - mean_lo) / s_w >= min_separation(n)` (`3.5 + 2 sqrt(10/n)`), and
/// * gap `(min(high) - max(low)) / s_w >= min_gap(n)` (`min(2, 30/n)`).
///
/// Both are needed: the separation alone is fooled by a few tail values that happen to lie close
/// together, the gap alone by a sparse stretch in a small sample. On unimodal normal log values of
/// 10 to 200 runs under 2 % of samples are flagged, on skewed unimodal ones (log of a normal with
/// a 25 % coefficient of variation) under 3 % (see the tests and [`min_separation`]); a 70/30
/// mixture of two modes 8 standard deviations apart is found in over 95 % of 10-run samples and
/// essentially always from 20 runs on; 50/50 at 6 sd in 90 % of 20-run samples.
///
/// Limits: a strongly skewed unimodal distribution with a long upper tail on the log scale
/// (exponential, i.e. a Pareto tail on the raw scale) is flagged in up to 15 % of samples: its
/// tail does look like a spread-out second group. Modes closer than about 5 standard deviations, or
/// a mode holding under 10 % of the runs, go undetected at the usual run counts.
///
/// Returns `Ok(None)` when the split is not accepted, including when there are fewer than 4 values
/// (two groups of 2 are the least that can show spread) or fewer than 2 distinct ones. Values that
/// take exactly two levels (`s_w = 0`) with both groups large enough are two modes with infinite
/// separation: quantized data can do that.
///
/// # Errors
/// [`StatsError::NonFinite`] (wrapped) for a `NaN` or infinite value.
///
/// Time: `O(n log n)`; memory: `O(n)`.
pub fn detect_modes(log_values: &[f64]) -> Result<Option<ModeSplit>, ModesError> {
    check_finite(log_values, "log_values")?;
    let n = log_values.len();
    let min_group = ((MIN_GROUP_FRACTION * n as f64).ceil() as usize).max(2);
    if n < 2 * min_group {
        return Ok(None);
    }
    let mut sorted = log_values.to_vec();
    sorted.sort_by(f64::total_cmp);
    // Prefix sums of values shifted by the first one, for stable group means and sums of squares.
    let shift = sorted[0];
    let mut sum = vec![0.0; n + 1];
    let mut sq = vec![0.0; n + 1];
    for (i, v) in sorted.iter().enumerate() {
        let d = v - shift;
        sum[i + 1] = sum[i] + d;
        sq[i + 1] = sq[i] + d * d;
    }
    let mut best: Option<(usize, f64)> = None;
    for k in min_group..=n - min_group {
        if sorted[k - 1] == sorted[k] {
            continue; // A split must fall between distinct values.
        }
        let (n1, n2) = (k as f64, (n - k) as f64);
        let m1 = sum[k] / n1;
        let m2 = (sum[n] - sum[k]) / n2;
        let between = n1 * n2 * (m2 - m1) * (m2 - m1);
        if best.is_none_or(|(_, b)| between > b) {
            best = Some((k, between));
        }
    }
    let Some((k, _)) = best else { return Ok(None) };
    let (n1, n2) = (k as f64, (n - k) as f64);
    let m1 = sum[k] / n1;
    let m2 = (sum[n] - sum[k]) / n2;
    let ss1 = (sq[k] - n1 * m1 * m1).max(0.0);
    let ss2 = (sq[n] - sq[k] - n2 * m2 * m2).max(0.0);
    let within_sd = ((ss1 + ss2) / (n as f64 - 2.0)).sqrt();
    let (separation, gap) = if within_sd > 0.0 {
        ((m2 - m1) / within_sd, (sorted[k] - sorted[k - 1]) / within_sd)
    } else {
        (f64::INFINITY, f64::INFINITY)
    };
    if !(separation >= min_separation(n) && gap >= min_gap(n)) {
        return Ok(None);
    }
    let threshold = 0.5 * (sorted[k - 1] + sorted[k]);
    Ok(Some(ModeSplit {
        threshold,
        low_count: k,
        high_count: n - k,
        low_centre: shift + m1,
        high_centre: shift + m2,
        within_sd,
        separation,
        gap,
        slow: log_values.iter().map(|&v| v > threshold).collect(),
    }))
}

/// How strongly the slow-group membership of runs agrees across the checkpoints of one scenario
/// ([`shared_state`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharedState {
    /// Mean phi coefficient (the Pearson correlation of two 0/1 variables) over the pairs of
    /// checkpoints whose memberships both vary; `None` when no such pair exists. `1`: every run is
    /// slow at both or at neither; `0`: unrelated; negative: slow at one when fast at the other.
    pub mean_phi: Option<f64>,
    /// Number of checkpoint pairs averaged into `mean_phi`.
    pub pairs: usize,
    /// Share of runs whose membership is the same at every checkpoint (all slow or all fast).
    pub all_agree: f64,
    /// Number of runs (the common length of the memberships).
    pub runs: usize,
}

impl SharedState {
    /// Whether the slow state looks scenario-wide (a process-level state that slows every
    /// checkpoint of a run together): `mean_phi >= SCENARIO_WIDE_PHI`.
    pub fn is_scenario_wide(&self) -> bool {
        self.mean_phi.is_some_and(|phi| phi >= SCENARIO_WIDE_PHI)
    }
}

/// Agreement of slow-mode membership across the checkpoints of one scenario.
///
/// `memberships[c][i]`: whether run `i` is in the slow group at checkpoint `c` (typically
/// [`ModeSplit::slow`] of each checkpoint where [`detect_modes`] found modes; run `i` must be the
/// same process at every checkpoint). For each pair of checkpoints, phi is
/// `(n11 n00 - n10 n01) / sqrt(n1. n0. n.1 n.0)` over the runs' 2x2 table; a pair where either
/// checkpoint is constant has no phi and is skipped. A scenario-wide slow state gives phi near 1
/// for every pair; per-checkpoint mixtures give phi near 0.
///
/// # Errors
/// [`StatsError::TooFew`] for fewer than 2 checkpoints or fewer than 2 runs;
/// [`StatsError::LengthMismatch`] when a checkpoint's membership has a different number of runs
/// than the first (`a`: the first's length, `b`: the other's).
pub fn shared_state(memberships: &[Vec<bool>]) -> Result<SharedState, ModesError> {
    if memberships.len() < 2 {
        return Err(StatsError::TooFew { what: "checkpoints", needed: 2, got: memberships.len() }.into());
    }
    let runs = memberships[0].len();
    if runs < 2 {
        return Err(StatsError::TooFew { what: "runs", needed: 2, got: runs }.into());
    }
    if let Some(m) = memberships.iter().find(|m| m.len() != runs) {
        return Err(StatsError::LengthMismatch { a: runs, b: m.len() }.into());
    }
    let (mut phi_sum, mut pairs) = (0.0, 0usize);
    for (c, x) in memberships.iter().enumerate() {
        for y in &memberships[c + 1..] {
            let mut t = [[0u64; 2]; 2];
            for (&u, &v) in x.iter().zip(y) {
                t[usize::from(u)][usize::from(v)] += 1;
            }
            let (n00, n01, n10, n11) = (t[0][0] as f64, t[0][1] as f64, t[1][0] as f64, t[1][1] as f64);
            let denom = (n10 + n11) * (n00 + n01) * (n01 + n11) * (n00 + n10);
            if denom > 0.0 {
                phi_sum += (n11 * n00 - n10 * n01) / denom.sqrt();
                pairs += 1;
            }
        }
    }
    let agree = (0..runs).filter(|&i| memberships.iter().all(|m| m[i] == memberships[0][i])).count();
    Ok(SharedState {
        mean_phi: (pairs > 0).then(|| phi_sum / pairs as f64),
        pairs,
        all_agree: agree as f64 / runs as f64,
        runs,
    })
}

/// p-values of Fisher's exact test for a change in how often runs are slow ([`fisher_exact`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fisher {
    /// Two-sided: the probability, under equal slow rates, of a table at most as likely as the one
    /// observed (R's `fisher.test` rule, with a relative tolerance of `1e-7` for ties).
    pub two_sided: f64,
    /// One-sided against "B is slow more often": `P(X >= b_slow)`.
    pub b_more_slow: f64,
    /// One-sided against "B is slow less often": `P(X <= b_slow)`.
    pub b_less_slow: f64,
}

/// Fisher's exact test of equal slow-mode frequency in arms A and B.
///
/// The 2x2 table is (slow, not slow) x (A, B). Conditional on its margins, the number of slow B runs
/// `X` is hypergeometric: `P(X = x) = C(K, x) C(N - K, n_b - x) / C(N, n_b)` with `N` all runs, `K`
/// all slow runs and `n_b = b_total`. Each term is computed from log-factorials
/// (`statrs::function::factorial::ln_factorial`), so totals of many thousands are exact to rounding.
/// An arm with no runs, or no slow (or no fast) run at all, gives every p-value 1.
///
/// # Errors
/// [`ModesError::CountAboveTotal`] when `a_slow > a_total` or `b_slow > b_total`.
///
/// Time: one term per table with these margins, at most `min(a_total, b_total, K, N - K) + 1`.
pub fn fisher_exact(a_slow: u64, a_total: u64, b_slow: u64, b_total: u64) -> Result<Fisher, ModesError> {
    if a_slow > a_total {
        return Err(ModesError::CountAboveTotal { arm: "a", slow: a_slow, total: a_total });
    }
    if b_slow > b_total {
        return Err(ModesError::CountAboveTotal { arm: "b", slow: b_slow, total: b_total });
    }
    let n = a_total + b_total;
    let k = a_slow + b_slow;
    let lo = k.saturating_sub(a_total);
    let hi = k.min(b_total);
    let ln_denom = ln_factorial(n) - ln_factorial(b_total) - ln_factorial(a_total);
    let ln_p = |x: u64| {
        ln_factorial(k) - ln_factorial(x) - ln_factorial(k - x) + ln_factorial(n - k)
            - ln_factorial(b_total - x)
            - ln_factorial(n - k - (b_total - x))
            - ln_denom
    };
    let observed = ln_p(b_slow);
    // R's tolerance: tables within a relative 1e-7 of the observed probability count as "as likely".
    let cut = observed + (1.0 + 1e-7f64).ln();
    let (mut two, mut more, mut less) = (0.0, 0.0, 0.0);
    for x in lo..=hi {
        let lp = ln_p(x);
        let p = lp.exp();
        if lp <= cut {
            two += p;
        }
        if x >= b_slow {
            more += p;
        }
        if x <= b_slow {
            less += p;
        }
    }
    Ok(Fisher { two_sided: two.min(1.0), b_more_slow: more.min(1.0), b_less_slow: less.min(1.0) })
}

/// Where run-to-run variance comes from ([`VarianceParts::dominant`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VarianceSource {
    /// Shared by both runs of a round: the machine's state at the time (drift, a noisy neighbour).
    /// Pairing by round cancels it.
    Round,
    /// Each process's own speed (modes, placement, seeds): only more runs average it out.
    Process,
    /// Sampling noise of each run's statistic: more calls per run shrink it.
    Within,
}

/// The variance of one checkpoint's per-run log values split by source ([`decompose_variance`]).
///
/// Invariants: every part `>= 0`; `total == round + process + within`; the fractions are the parts
/// over `total` (all 0 when `total == 0`) and sum to 1 otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VarianceParts {
    /// Between-round variance: the covariance of the A and B values of a round, clamped at 0.
    pub round: f64,
    /// Between-process variance: the run-to-run variance not explained by the round or the
    /// within-process noise, clamped at 0.
    pub process: f64,
    /// Within-process variance: the mean of the runs' sampling variances.
    pub within: f64,
    /// `round + process + within`.
    pub total: f64,
    /// The observed run-to-run variance (the mean of the A and B sample variances); differs from
    /// `total` only when a clamp bit.
    pub observed: f64,
    /// `round / total`.
    pub round_fraction: f64,
    /// `process / total`.
    pub process_fraction: f64,
    /// `within / total`.
    pub within_fraction: f64,
    /// Whether an estimate was negative and set to 0 (a negative covariance, or round plus within
    /// exceeding the observed variance): the parts are then less certain than usual.
    pub clamped: bool,
}

impl VarianceParts {
    /// The largest part (ties go to the first of round, process, within). With `total == 0` every
    /// part is 0 and the answer is [`VarianceSource::Round`], meaningless: check `total` first.
    pub fn dominant(&self) -> VarianceSource {
        let mut best = (VarianceSource::Round, self.round);
        for (s, v) in [(VarianceSource::Process, self.process), (VarianceSource::Within, self.within)] {
            if v > best.1 {
                best = (s, v);
            }
        }
        best.0
    }

    /// The between-process standard deviation, `sqrt(process)`: roughly the relative spread of
    /// whole processes.
    pub fn process_sd(&self) -> f64 {
        self.process.sqrt()
    }
}

/// Splits one checkpoint's run-to-run variance of paired A/B rounds into between-round,
/// between-process and within-process parts.
///
/// `a[i]`, `b[i]`: the log values of round `i`'s A and B runs; `a_within[i]`, `b_within[i]`: the
/// sampling variance of each of those values as a measurement of its own process (for a run's
/// median of `k` calls, [`median_sampling_var`]). The model is
/// `x = mu_arm + r_round + p_process + e_run` with independent effects of variances
/// `round`, `process` and the given `within`. Then the covariance of `a` and `b` over rounds
/// estimates `round` (each arm about its own mean, so a change between A and B does not enter), the
/// mean of the two sample variances estimates `round + process + within`, and
/// `process = observed - round - within`. All three estimates are unbiased before clamping.
///
/// Clamping: a negative covariance becomes `round = 0`, and `process` is floored at 0 when
/// `round + within` exceeds the observed variance; `clamped` says so. Fractions are then of the sum
/// of the clamped parts, which is not the observed variance. An order effect (the first run of a
/// round slower) counts as process variance.
///
/// # Errors
/// [`StatsError::TooFew`] for fewer than 3 rounds; [`StatsError::LengthMismatch`] when `b`,
/// `a_within` or `b_within` is not as long as `a` (`a`: `a.len()`, `b`: the other's length);
/// [`StatsError::NonFinite`] for a value that is not finite; [`ModesError::InvalidVariance`] for a
/// sampling variance that is negative or not finite.
pub fn decompose_variance(
    a: &[f64],
    b: &[f64],
    a_within: &[f64],
    b_within: &[f64],
) -> Result<VarianceParts, ModesError> {
    let n = a.len();
    for other in [b, a_within, b_within] {
        if other.len() != n {
            return Err(StatsError::LengthMismatch { a: n, b: other.len() }.into());
        }
    }
    if n < 3 {
        return Err(StatsError::TooFew { what: "rounds", needed: 3, got: n }.into());
    }
    check_finite(a, "a")?;
    check_finite(b, "b")?;
    for (what, w) in [("a_within", a_within), ("b_within", b_within)] {
        if let Some((index, &value)) = w.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v >= 0.0)) {
            return Err(ModesError::InvalidVariance { what, index, value });
        }
    }
    let nf = n as f64;
    let mean = |x: &[f64]| x.iter().sum::<f64>() / nf;
    let (ma, mb) = (mean(a), mean(b));
    let var_a = a.iter().map(|v| (v - ma).powi(2)).sum::<f64>() / (nf - 1.0);
    let var_b = b.iter().map(|v| (v - mb).powi(2)).sum::<f64>() / (nf - 1.0);
    let cov = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum::<f64>() / (nf - 1.0);
    let observed = 0.5 * (var_a + var_b);
    let within = 0.5 * (mean(a_within) + mean(b_within));
    let round = cov.max(0.0);
    let rest = observed - round - within;
    let process = rest.max(0.0);
    let clamped = cov < 0.0 || rest < 0.0;
    let total = round + process + within;
    let frac = |v: f64| if total > 0.0 { v / total } else { 0.0 };
    Ok(VarianceParts {
        round,
        process,
        within,
        total,
        observed,
        round_fraction: frac(round),
        process_fraction: frac(process),
        within_fraction: frac(within),
        clamped,
    })
}

/// Sampling variance of the log of a run's median over `samples` calls whose log values have the
/// interquartile range `log_iqr`: `(pi / 2) (log_iqr / 1.349)^2 / samples`, the large-sample
/// variance of a normal sample's median with the standard deviation estimated from the IQR (robust
/// to the heavy upper tail of call latencies). An input to [`decompose_variance`]. `NaN` for
/// `samples == 0`.
pub fn median_sampling_var(samples: u64, log_iqr: f64) -> f64 {
    if samples == 0 {
        return f64::NAN;
    }
    let sd = log_iqr / IQR_TO_SD;
    std::f64::consts::FRAC_PI_2 * sd * sd / samples as f64
}

/// The interquartile range of a normal distribution in standard deviations: `2 Phi^{-1}(3/4)`.
pub const IQR_TO_SD: f64 = 1.348_979_500_392_163_5;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    #[track_caller]
    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol, "got {got}, want {want} (tol {tol})");
    }

    #[test]
    fn stats_modes_split_matches_hand_computation() {
        // Two tight groups, given out of order: low {0.9, 1.0, 1.1, 1.0}, high {2.0, 2.1, 1.9}.
        let v = [1.0, 2.0, 0.9, 2.1, 1.1, 1.9, 1.0];
        let m = detect_modes(&v).unwrap().expect("two clear groups");
        assert_eq!((m.low_count, m.high_count), (4, 3));
        close(m.threshold, 1.5, 1e-12);
        close(m.low_centre, 1.0, 1e-12);
        close(m.high_centre, 2.0, 1e-12);
        // SS_low = 0.01 + 0.01 = 0.02, SS_high = 0.02; s_w = sqrt(0.04 / 5).
        let sw = (0.04f64 / 5.0).sqrt();
        close(m.within_sd, sw, 1e-12);
        close(m.separation, 1.0 / sw, 1e-9);
        close(m.gap, 0.8 / sw, 1e-9);
        assert_eq!(m.slow, vec![false, true, false, true, false, true, false]);
        close(m.slow_fraction(), 3.0 / 7.0, 1e-15);
        close(m.ratio(), 1f64.exp(), 1e-12);
    }

    #[test]
    fn stats_modes_edge_cases() {
        assert_eq!(detect_modes(&[]).unwrap(), None);
        assert_eq!(detect_modes(&[1.0, 5.0, 5.0]).unwrap(), None, "fewer than 4 values");
        assert_eq!(detect_modes(&[3.0; 20]).unwrap(), None, "no spread at all");
        // One far outlier among 20 is not a mode: each group needs at least 10 % (2 runs).
        let mut v: Vec<f64> = (0..19).map(|i| 6.0 + 0.001 * i as f64).collect();
        v.push(7.0);
        assert_eq!(detect_modes(&v).unwrap(), None);
        // Exactly two levels (quantized data): two modes, infinitely separated.
        let m = detect_modes(&[1.0, 1.0, 1.0, 2.0, 2.0, 1.0]).unwrap().unwrap();
        assert_eq!((m.low_count, m.high_count, m.separation), (4, 2, f64::INFINITY));
        assert!(matches!(
            detect_modes(&[1.0, f64::NAN, 2.0, 3.0]),
            Err(ModesError::Stats(StatsError::NonFinite { index: 1, .. }))
        ));
    }

    #[test]
    fn stats_modes_rarely_flag_unimodal_samples() {
        // Normal log values (lognormal timings) and the log of normal timings with a 25 % CV (skewed
        // to the left on the log scale): the false detection rate stays under 5 % at every size.
        let mut rng = SplitMix64::new(11);
        let trials = 1000;
        for n in [10usize, 12, 15, 20, 30, 50, 100, 200] {
            for skewed in [false, true] {
                let flagged = (0..trials)
                    .filter(|_| {
                        let v: Vec<f64> = (0..n)
                            .map(|_| {
                                let z = rng.normal();
                                if skewed {
                                    (500.0 * (1.0 + 0.25 * z)).max(1.0).ln()
                                } else {
                                    500f64.ln() + 0.05 * z
                                }
                            })
                            .collect();
                        detect_modes(&v).unwrap().is_some()
                    })
                    .count();
                // Binomial(1000, 0.05) has sd 7: a true rate near the calibrated 2-3 % stays far below.
                assert!(flagged < trials / 20, "n {n} skewed {skewed}: {flagged} of {trials} flagged");
            }
        }
    }

    #[test]
    fn stats_modes_find_a_clear_mixture_and_its_members() {
        // 70 % of runs at ~500 ns, 30 % eight within-mode sd (8 x 2 %) slower.
        let mut rng = SplitMix64::new(5);
        let (base, sd) = (500f64.ln(), 0.02);
        for (n, min_rate) in [(10usize, 0.9), (20, 0.99), (50, 0.99), (200, 0.99)] {
            let trials = 300;
            let (mut found, mut misassigned) = (0, 0);
            for _ in 0..trials {
                let slow_truth: Vec<bool> = (0..n).map(|i| i * 10 < n * 3).collect();
                let v: Vec<f64> =
                    slow_truth.iter().map(|&s| base + if s { 8.0 * sd } else { 0.0 } + sd * rng.normal()).collect();
                if let Some(m) = detect_modes(&v).unwrap() {
                    found += 1;
                    misassigned += m.slow.iter().zip(&slow_truth).filter(|(a, b)| a != b).count();
                    assert!((m.high_centre - m.low_centre - 8.0 * sd).abs() < 3.0 * sd, "{m:?}");
                }
            }
            assert!(found as f64 >= min_rate * trials as f64, "n {n}: found {found} of {trials}");
            // A fast run 4 sd above its mode is past the threshold: about 3e-5 of fast runs.
            assert!(misassigned * 10_000 <= found * n, "n {n}: {misassigned} runs misassigned");
        }
    }

    #[test]
    fn stats_modes_split_the_slowest_mode_of_three() {
        // A checkpoint's per-process p50 over 30 runs of one build, in ns: ~470, 500-600, 715-840.
        // Two-means puts the two faster modes together; their own gap inflates the within spread,
        // so with 20 runs such a sample sits near the acceptance bound (found in about 2 of 3 in
        // simulation); with 30 it is clear.
        let ns = [
            468.0, 471.0, 470.0, 472.0, 469.0, 470.0, 473.0, 512.0, 540.0, 575.0, 598.0, 530.0, 561.0, 505.0, 587.0,
            552.0, 521.0, 580.0, 547.0, 593.0, 566.0, 716.0, 760.0, 802.0, 839.0, 781.0, 744.0, 731.0, 822.0, 795.0,
        ];
        let v: Vec<f64> = ns.iter().map(|x: &f64| x.ln()).collect();
        let m = detect_modes(&v).unwrap().expect("the slow group is far from the rest");
        assert_eq!(m.high_count, 9);
        assert!(m.threshold > 598f64.ln() && m.threshold < 716f64.ln());
        assert!(m.ratio() > 1.3 && m.ratio() < 1.5, "{}", m.ratio());
        assert_eq!(m.slow, ns.iter().map(|&x| x > 700.0).collect::<Vec<_>>());
    }

    #[test]
    fn stats_shared_state_tells_scenario_wide_from_per_checkpoint() {
        // phi of the table n11 = 3, n10 = 1, n01 = 1, n00 = 3 is (9 - 1) / sqrt(4^4) = 0.5.
        let x = vec![true, true, true, true, false, false, false, false];
        let y = vec![true, true, true, false, true, false, false, false];
        let s = shared_state(&[x.clone(), y]).unwrap();
        close(s.mean_phi.unwrap(), 0.5, 1e-15);
        assert_eq!((s.pairs, s.runs), (1, 8));
        close(s.all_agree, 6.0 / 8.0, 1e-15);

        // A process-level slow state: every checkpoint of a slow run is slow.
        let mut rng = SplitMix64::new(9);
        let runs = 40;
        let state: Vec<bool> = (0..runs).map(|_| rng.uniform() < 0.3).collect();
        let wide = shared_state(&[state.clone(), state.clone(), state.clone()]).unwrap();
        assert!(wide.is_scenario_wide());
        assert_eq!((wide.mean_phi, wide.pairs, wide.all_agree), (Some(1.0), 3, 1.0));
        // Each checkpoint its own mixture: memberships unrelated across checkpoints.
        let own: Vec<Vec<bool>> = (0..5).map(|_| (0..runs).map(|_| rng.uniform() < 0.3).collect()).collect();
        let own = shared_state(&own).unwrap();
        assert_eq!(own.pairs, 10);
        assert!(own.mean_phi.unwrap().abs() < 0.2 && !own.is_scenario_wide(), "{own:?}");
        assert!(own.all_agree < 0.5);
    }

    #[test]
    fn stats_shared_state_degenerate_and_bad_input() {
        // A checkpoint where no run is slow has no phi with anything.
        let s = shared_state(&[vec![false; 4], vec![true, false, true, false]]).unwrap();
        assert_eq!((s.mean_phi, s.pairs), (None, 0));
        close(s.all_agree, 0.5, 1e-15);
        assert!(!s.is_scenario_wide());
        assert!(matches!(shared_state(&[vec![true, false]]), Err(ModesError::Stats(StatsError::TooFew { .. }))));
        assert!(matches!(shared_state(&[vec![true], vec![true]]), Err(ModesError::Stats(StatsError::TooFew { .. }))));
        assert!(matches!(
            shared_state(&[vec![true, false], vec![true, false, true]]),
            Err(ModesError::Stats(StatsError::LengthMismatch { a: 2, b: 3 }))
        ));
    }

    /// `C(n, k)` exactly.
    fn choose(n: u64, k: u64) -> u128 {
        (0..k).fold(1u128, |acc, i| acc * u128::from(n - i) / u128::from(i + 1))
    }

    #[test]
    fn stats_fisher_matches_known_values() {
        // Fisher's tea-tasting table: 3 of 4 B cups right, 1 of 4 A cups: P(X >= 3) = 17/70.
        let f = fisher_exact(1, 4, 3, 4).unwrap();
        close(f.b_more_slow, 17.0 / 70.0, 1e-12);
        close(f.two_sided, 34.0 / 70.0, 1e-12);
        close(f.b_less_slow, 69.0 / 70.0, 1e-12);
        close(f.b_more_slow, 0.2429, 5e-5);
        close(f.two_sided, 0.4857, 5e-5);
        // Swapping the arms swaps the one-sided p-values.
        let g = fisher_exact(3, 4, 1, 4).unwrap();
        close(g.b_less_slow, f.b_more_slow, 1e-15);
        close(g.two_sided, f.two_sided, 1e-15);
    }

    #[test]
    fn stats_fisher_matches_exact_rational_arithmetic() {
        // Every p-value against exact integer sums of hypergeometric numerators, on random tables.
        let mut rng = SplitMix64::new(21);
        for _ in 0..300 {
            let a_total = 1 + rng.below(30);
            let b_total = 1 + rng.below(30);
            let a_slow = rng.below(a_total + 1);
            let b_slow = rng.below(b_total + 1);
            let (n, k) = (a_total + b_total, a_slow + b_slow);
            let num = |x: u64| choose(k, x) * choose(n - k, b_total - x);
            let denom = choose(n, b_total) as f64;
            let (lo, hi) = (k.saturating_sub(a_total), k.min(b_total));
            let obs = num(b_slow);
            let two: u128 = (lo..=hi).map(num).filter(|&v| v <= obs).sum();
            let more: u128 = (b_slow..=hi).map(num).sum();
            let less: u128 = (lo..=b_slow).map(num).sum();
            let f = fisher_exact(a_slow, a_total, b_slow, b_total).unwrap();
            let table = (a_slow, a_total, b_slow, b_total);
            close(f.two_sided, (two as f64 / denom).min(1.0), 1e-10 * (1.0 + two as f64 / denom));
            assert!((f.b_more_slow - more as f64 / denom).abs() < 1e-10, "{table:?} {f:?}");
            assert!((f.b_less_slow - less as f64 / denom).abs() < 1e-10, "{table:?} {f:?}");
        }
    }

    #[test]
    fn stats_fisher_is_stable_for_thousands_of_runs() {
        // 2,000 runs an arm, 30 % against 35 % slow. Normal approximation of the two-proportion test:
        // z = 0.05 / sqrt(0.325 * 0.675 * 2 / 2000) = 3.376, two-sided p = 7.4e-4; Fisher's exact
        // p is a little larger (it is conservative) and of the same size.
        let f = fisher_exact(600, 2000, 700, 2000).unwrap();
        assert!(f.two_sided > 7.0e-4 && f.two_sided < 1.2e-3, "{f:?}");
        assert!(f.b_more_slow > 3.5e-4 && f.b_more_slow < 6.0e-4, "{f:?}");
        assert!(f.b_more_slow < f.two_sided && f.b_less_slow > 0.999);
        // The probabilities of all tables with these margins sum to 1: P(X >= x) + P(X <= x - 1).
        let (hi, lo) = (fisher_exact(600, 2000, 700, 2000).unwrap(), fisher_exact(601, 2000, 699, 2000).unwrap());
        close(hi.b_more_slow + lo.b_less_slow, 1.0, 1e-9);
        // No change: nothing to see.
        let same = fisher_exact(1500, 5000, 1500, 5000).unwrap();
        close(same.two_sided, 1.0, 1e-9);
        assert!(same.b_more_slow > 0.5 && same.b_less_slow > 0.5);
    }

    #[test]
    fn stats_fisher_degenerate_and_bad_input() {
        for (a, at, b, bt) in [(0, 0, 0, 0), (0, 0, 3, 5), (0, 10, 0, 10), (10, 10, 10, 10)] {
            let f = fisher_exact(a, at, b, bt).unwrap();
            assert_eq!((f.two_sided, f.b_more_slow, f.b_less_slow), (1.0, 1.0, 1.0), "{a} {at} {b} {bt}");
        }
        assert_eq!(fisher_exact(5, 4, 0, 4), Err(ModesError::CountAboveTotal { arm: "a", slow: 5, total: 4 }));
        assert_eq!(fisher_exact(0, 4, 9, 8), Err(ModesError::CountAboveTotal { arm: "b", slow: 9, total: 8 }));
    }

    /// `rounds` paired rounds with known components; B shifted by `shift`. Returns `(a, b, wa, wb)`.
    fn synthetic_rounds(
        rng: &mut SplitMix64,
        rounds: usize,
        round_sd: f64,
        process_sd: f64,
        within_sd: f64,
        shift: f64,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let (mut a, mut b, mut wa, mut wb) = (vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let r = round_sd * rng.normal();
            for (arm, (x, w)) in [(0.0, (&mut a, &mut wa)), (shift, (&mut b, &mut wb))] {
                // Each run's own sampling sd varies around `within_sd` (more or fewer calls).
                let sd = within_sd * (0.5 + rng.uniform());
                x.push(6.2 + arm + r + process_sd * rng.normal() + sd * rng.normal());
                w.push(sd * sd);
            }
        }
        (a, b, wa, wb)
    }

    #[test]
    fn stats_decompose_variance_recovers_known_components() {
        let mut rng = SplitMix64::new(17);
        let (a, b, wa, wb) = synthetic_rounds(&mut rng, 200, 0.03, 0.05, 0.01, 0.04);
        let v = decompose_variance(&a, &b, &wa, &wb).unwrap();
        // One experiment of 200 rounds: the sample covariance has sd ~2.6e-4 around 9e-4.
        assert!((0.02..0.04).contains(&v.round.sqrt()), "{v:?}");
        assert!((0.04..0.06).contains(&v.process_sd()), "{v:?}");
        let w_mean = (wa.iter().sum::<f64>() + wb.iter().sum::<f64>()) / 400.0;
        close(v.within, w_mean, 1e-15);
        close(v.total, v.round + v.process + v.within, 1e-15);
        close(v.round_fraction + v.process_fraction + v.within_fraction, 1.0, 1e-12);
        close(v.total, v.observed, 1e-15);
        assert!(!v.clamped);
        assert_eq!(v.dominant(), VarianceSource::Process);

        // Unbiased: averaged over 300 experiments each part is within 5 % of its true value
        // (the mean of 300 round estimates has sd ~1.5e-5, under 2 % of 9e-4).
        let (mut round, mut process) = (0.0, 0.0);
        for _ in 0..300 {
            let (a, b, wa, wb) = synthetic_rounds(&mut rng, 200, 0.03, 0.05, 0.01, 0.0);
            let v = decompose_variance(&a, &b, &wa, &wb).unwrap();
            round += v.round / 300.0;
            process += v.process / 300.0;
        }
        assert!((round / 9e-4 - 1.0).abs() < 0.05, "{round}");
        assert!((process / 2.5e-3 - 1.0).abs() < 0.05, "{process}");
    }

    #[test]
    fn stats_decompose_variance_names_the_dominant_source() {
        let mut rng = SplitMix64::new(23);
        let (a, b, wa, wb) = synthetic_rounds(&mut rng, 200, 0.10, 0.02, 0.01, 0.0);
        let v = decompose_variance(&a, &b, &wa, &wb).unwrap();
        assert_eq!(v.dominant(), VarianceSource::Round, "{v:?}");
        assert!(v.round_fraction > 0.8, "{v:?}");
        let (a, b, wa, wb) = synthetic_rounds(&mut rng, 200, 0.005, 0.005, 0.05, 0.0);
        let v = decompose_variance(&a, &b, &wa, &wb).unwrap();
        assert_eq!(v.dominant(), VarianceSource::Within, "{v:?}");
    }

    #[test]
    fn stats_decompose_variance_clamps_and_rejects_bad_input() {
        // A and B move in opposite directions: the covariance is negative, the round part 0.
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [4.0, 3.0, 2.0, 1.0];
        let w = [0.0; 4];
        let v = decompose_variance(&a, &b, &w, &w).unwrap();
        assert_eq!(v.round, 0.0);
        assert!(v.clamped);
        close(v.process, 5.0 / 3.0, 1e-12);
        // Sampling variance larger than all the observed spread: process floored at 0.
        let v = decompose_variance(&[1.0, 1.1, 1.0], &[1.0, 1.0, 1.1], &[1.0; 3], &[1.0; 3]).unwrap();
        assert_eq!((v.process, v.within_fraction), (0.0, 1.0));
        assert!(v.clamped && v.observed < v.total);
        // No spread at all.
        let v = decompose_variance(&[1.0; 3], &[2.0; 3], &[0.0; 3], &[0.0; 3]).unwrap();
        assert_eq!((v.total, v.round_fraction, v.process_fraction, v.within_fraction), (0.0, 0.0, 0.0, 0.0));

        assert!(matches!(
            decompose_variance(&[1.0; 2], &[1.0; 2], &[0.0; 2], &[0.0; 2]),
            Err(ModesError::Stats(StatsError::TooFew { needed: 3, got: 2, .. }))
        ));
        assert!(matches!(
            decompose_variance(&[1.0; 3], &[1.0; 3], &[0.0; 3], &[0.0; 4]),
            Err(ModesError::Stats(StatsError::LengthMismatch { a: 3, b: 4 }))
        ));
        assert!(matches!(
            decompose_variance(&[1.0, f64::INFINITY, 1.0], &[1.0; 3], &[0.0; 3], &[0.0; 3]),
            Err(ModesError::Stats(StatsError::NonFinite { what: "a", index: 1, .. }))
        ));
        assert_eq!(
            decompose_variance(&[1.0; 3], &[1.0; 3], &[0.0; 3], &[0.0, -1.0, 0.0]),
            Err(ModesError::InvalidVariance { what: "b_within", index: 1, value: -1.0 })
        );
    }

    #[test]
    fn stats_median_sampling_var_known_values() {
        // IQR of exactly one normal sd: (pi / 2) / samples.
        close(median_sampling_var(100, IQR_TO_SD), std::f64::consts::FRAC_PI_2 / 100.0, 1e-15);
        close(median_sampling_var(400, 2.0 * IQR_TO_SD), std::f64::consts::FRAC_PI_2 * 4.0 / 400.0, 1e-15);
        assert!(median_sampling_var(0, 1.0).is_nan());
    }
}
