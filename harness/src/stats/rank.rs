//! Rank-based shift estimates with their intervals and one-sided p-values: what the gate tests.
//!
//! Why ranks, not means: whole processes land in discrete speed states (per-process hash seeds,
//! heap and code placement, a slow machine phase), so per-run values are mixtures with modes tens
//! of percent apart. In a paired experiment a round whose two runs fell in different modes gives a
//! log ratio of ±(mode gap), symmetric around the true shift; a mean and its t-test count that as
//! variance (so a 5% change needs ~1,000 rounds), while the Hodges–Lehmann estimate and the
//! Wilcoxon signed-rank test, which invert each other, are driven by the many comparisons that
//! landed in the same mode: their precision follows the within-mode spread. On normal data they
//! lose ~5% efficiency against the t-test (3/π = 0.955).
//!
//! * [`signed_rank_shift`]: paired differences `d_i = ln(b_i / a_i)`. Estimate: the median of the
//!   Walsh averages `(d_i + d_j) / 2, i <= j`; interval: their order statistics at the signed-rank
//!   critical values; p-values: the signed-rank statistic `T+`.
//! * [`rank_sum_shift`]: independent samples on the log scale. Estimate: the median of all
//!   differences `y_j - x_i`; interval and p-values from the Mann–Whitney `U`.
//!
//! Both use the exact null distribution for small samples without ties and the normal
//! approximation with tie and continuity corrections otherwise, for the p-values and the interval
//! alike, so the two agree. Every result carries an *equivalent standard error* (the interval's
//! half-width over its normal quantile) so the thresholds, `calibrate`'s detectable effects and
//! the test all read one dispersion.

use statrs::distribution::{ContinuousCDF, Normal};

use super::StatsError;

/// Most values for which the exact null distribution is used (no ties): beyond, the normal
/// approximation is accurate to the third digit of a tail probability of 1e-3.
const EXACT_MAX_N: usize = 50;

/// A shift on the log scale with its interval and tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// Hodges–Lehmann estimate of the shift (log scale; `> 0`: the second sample is larger).
    pub estimate: f64,
    /// Lower end of the two-sided interval at `confidence`.
    pub low: f64,
    /// Upper end of the two-sided interval at `confidence`.
    pub high: f64,
    /// The two-sided confidence level of `[low, high]`.
    pub confidence: f64,
    /// One-sided p-value of "no shift" against "shifted up" (the second sample is larger).
    pub p_greater: f64,
    /// One-sided p-value of "no shift" against "shifted down".
    pub p_less: f64,
    /// Equivalent standard error of `estimate`: the interval's half-width over `z_{(1+c)/2}`.
    pub std_err: f64,
}

impl Shift {
    /// Two-sided p-value: twice the smaller one-sided one, capped at 1.
    pub fn p_two_sided(&self) -> f64 {
        (2.0 * self.p_greater.min(self.p_less)).min(1.0)
    }
}

/// The standard normal distribution's quantile.
fn z(p: f64) -> f64 {
    // Normal::new(0, 1) cannot fail.
    Normal::new(0.0, 1.0).map_or(f64::NAN, |n| n.inverse_cdf(p))
}

/// Upper tail of the standard normal, `P(Z > x)`.
fn upper(x: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(x / std::f64::consts::SQRT_2)
}

/// Average ranks (1-based) of `v` sorted ascending by `key`, plus the tie term `sum(t^3 - t)`.
fn average_ranks(sorted_keys: &[f64]) -> (Vec<f64>, f64) {
    let n = sorted_keys.len();
    let mut ranks = vec![0.0; n];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && sorted_keys[j] == sorted_keys[i] {
            j += 1;
        }
        ranks[i..j].fill((i + 1 + j) as f64 / 2.0);
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    (ranks, tie_term)
}

/// The `k`-th smallest (0-based) of `v`, reordering `v`.
fn kth(v: &mut [f64], k: usize) -> f64 {
    let k = k.min(v.len() - 1);
    *v.select_nth_unstable_by(k, f64::total_cmp).1
}

/// Median of `v` (reordering it); `v` non-empty.
fn median_of(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        kth(v, n / 2)
    } else {
        let hi = kth(v, n / 2);
        // After select_nth, everything before n/2 is <= hi: its maximum is the lower middle.
        let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lo + hi)
    }
}

/// Checks `confidence` and that every value is finite.
fn check(values: &[f64], what: &'static str, needed: usize, confidence: f64) -> Result<(), StatsError> {
    super::compare::check_probability("confidence", confidence)?;
    if values.len() < needed {
        return Err(StatsError::TooFew { what, needed, got: values.len() });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(StatsError::NonFinite { what, index, value });
    }
    Ok(())
}

/// `counts[s]`: how many of the `2^n` sign assignments of ranks `1..=n` give `T+ = s`.
pub(super) fn signed_rank_counts(n: usize) -> Vec<f64> {
    let max_sum = n * (n + 1) / 2;
    let mut counts = vec![0.0f64; max_sum + 1];
    counts[0] = 1.0;
    for r in 1..=n {
        for s in (r..=max_sum).rev() {
            counts[s] += counts[s - r];
        }
    }
    counts
}

/// Hodges–Lehmann shift of paired log differences `d`, its interval at `confidence`, and the
/// signed-rank p-values (zeros dropped, average ranks for ties).
///
/// The interval is `[W_(k), W_(N+1-k)]` over the `N = n(n+1)/2` sorted Walsh averages, with `k`
/// the signed-rank critical value: the largest with `P(T+ < k) <= (1 - confidence)/2` (exact
/// distribution for `n <= 50` without ties, else `k = floor(N/2 - z sd)`), clamped to at least 1.
///
/// # Errors
/// [`StatsError::TooFew`] for fewer than 2 values, [`StatsError::NonFinite`] for a `NaN` or
/// infinite one, [`StatsError::InvalidProbability`] for a `confidence` outside `(0, 1)`.
pub fn signed_rank_shift(d: &[f64], confidence: f64) -> Result<Shift, StatsError> {
    check(d, "differences", 2, confidence)?;
    let n = d.len();
    let mut walsh = Vec::with_capacity(n * (n + 1) / 2);
    for i in 0..n {
        for j in i..n {
            walsh.push(0.5 * (d[i] + d[j]));
        }
    }
    let big_n = walsh.len();
    let estimate = median_of(&mut walsh);

    // The signed-rank statistic on the non-zero differences.
    let mut nz: Vec<f64> = d.iter().copied().filter(|v| *v != 0.0).collect();
    nz.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let m = nz.len();
    let abs: Vec<f64> = nz.iter().map(|v| v.abs()).collect();
    let (ranks, tie_term) = average_ranks(&abs);
    let t_plus: f64 = nz.iter().zip(&ranks).filter(|(v, _)| **v > 0.0).map(|(_, r)| r).sum();
    let total = (m * (m + 1)) as f64 / 2.0;
    let exact = tie_term == 0.0 && m <= EXACT_MAX_N && m == n;
    let (p_greater, p_less) = if m == 0 {
        (1.0, 1.0)
    } else if exact {
        let counts = signed_rank_counts(m);
        let all = 2f64.powi(m as i32);
        let t = t_plus.round() as usize;
        (counts[t..].iter().sum::<f64>() / all, counts[..=t].iter().sum::<f64>() / all)
    } else {
        let var = (m * (m + 1) * (2 * m + 1)) as f64 / 24.0 - tie_term / 48.0;
        if var <= 0.0 {
            (1.0, 1.0)
        } else {
            let sd = var.sqrt();
            let mean = total / 2.0;
            (upper((t_plus - mean - 0.5) / sd), upper((mean - t_plus - 0.5) / sd))
        }
    };

    // Critical value for the interval, from the distribution of T+ over all n values.
    let tail = (1.0 - confidence) / 2.0;
    let k = if n <= EXACT_MAX_N {
        let counts = signed_rank_counts(n);
        let all = 2f64.powi(n as i32);
        let mut cum = 0.0;
        let mut k = 0usize;
        // Largest k with P(T+ <= k - 1) <= tail.
        while k < counts.len() && cum + counts[k] / all <= tail {
            cum += counts[k] / all;
            k += 1;
        }
        k
    } else {
        let sd = ((n * (n + 1) * (2 * n + 1)) as f64 / 24.0).sqrt();
        (big_n as f64 / 2.0 - z(1.0 - tail) * sd).floor().max(0.0) as usize
    };
    let k = k.max(1).min(big_n.div_ceil(2));
    let low = kth(&mut walsh, k - 1);
    let high = kth(&mut walsh, big_n - k);
    Ok(finish(estimate, low, high, confidence, p_greater.clamp(0.0, 1.0), p_less.clamp(0.0, 1.0)))
}

/// Hodges–Lehmann shift `y - x` of two independent samples (log scale), its interval at
/// `confidence` and the Mann–Whitney p-values; `extra_var` (a variance on the log scale, e.g. the
/// session-to-session variance between a stored baseline and today) is added to the estimate's
/// variance, widening the interval and shrinking the evidence accordingly (then the p-values are
/// normal ones on the widened standard error).
///
/// # Errors
/// [`StatsError::TooFew`] for fewer than 2 values a side, [`StatsError::NonFinite`],
/// [`StatsError::InvalidProbability`] for a `confidence` outside `(0, 1)`.
pub fn rank_sum_shift(x: &[f64], y: &[f64], confidence: f64, extra_var: f64) -> Result<Shift, StatsError> {
    check(x, "baseline", 2, confidence)?;
    check(y, "current", 2, confidence)?;
    let (n1, n2) = (x.len(), y.len());
    let mut diffs: Vec<f64> = Vec::with_capacity(n1 * n2);
    for &a in x {
        for &b in y {
            diffs.push(b - a);
        }
    }
    let big_n = diffs.len();
    let estimate = median_of(&mut diffs);

    // U of y: the number of (x, y) pairs with y > x, ties counting half.
    let mut all: Vec<(f64, bool)> = x.iter().map(|&v| (v, false)).chain(y.iter().map(|&v| (v, true))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let keys: Vec<f64> = all.iter().map(|e| e.0).collect();
    let (ranks, tie_term) = average_ranks(&keys);
    let r2: f64 = all.iter().zip(&ranks).filter(|(e, _)| e.1).map(|(_, r)| r).sum();
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u = r2 - f2 * (f2 + 1.0) / 2.0;
    let mean = f1 * f2 / 2.0;
    let nn = f1 + f2;
    let var = f1 * f2 / 12.0 * ((nn + 1.0) - tie_term / (nn * (nn - 1.0)));
    let (mut p_greater, mut p_less) = if var <= 0.0 {
        (1.0, 1.0)
    } else {
        let sd = var.sqrt();
        (upper((u - mean - 0.5) / sd), upper((mean - u - 0.5) / sd))
    };
    let tail = (1.0 - confidence) / 2.0;
    let sd0 = (f1 * f2 * (nn + 1.0) / 12.0).sqrt();
    let k = (mean - z(1.0 - tail) * sd0).floor().max(1.0) as usize;
    let k = k.min(big_n.div_ceil(2));
    let mut low = kth(&mut diffs, k - 1);
    let mut high = kth(&mut diffs, big_n - k);
    if extra_var > 0.0 && extra_var.is_finite() {
        // Widen: the rank interval's equivalent variance plus the extra term, as a normal interval.
        let zc = z(0.5 + confidence / 2.0);
        let se = ((high - low) / (2.0 * zc)).powi(2) + extra_var;
        let se = se.sqrt();
        low = estimate - zc * se;
        high = estimate + zc * se;
        p_greater = upper(estimate / se);
        p_less = upper(-estimate / se);
    }
    Ok(finish(estimate, low, high, confidence, p_greater.clamp(0.0, 1.0), p_less.clamp(0.0, 1.0)))
}

fn finish(estimate: f64, low: f64, high: f64, confidence: f64, p_greater: f64, p_less: f64) -> Shift {
    let zc = z(0.5 + confidence / 2.0);
    // The estimate always lies inside its own interval; guard against rounding at the edges.
    let (low, high) = (low.min(estimate), high.max(estimate));
    Shift { estimate, low, high, confidence, p_greater, p_less, std_err: (high - low) / (2.0 * zc) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    #[track_caller]
    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol, "got {got}, want {want} (tol {tol})");
    }

    #[test]
    fn stats_signed_rank_matches_known_values() {
        // Ten differences, no ties. By hand (and R's wilcox.test(d, conf.int=TRUE, exact=TRUE)):
        // positive ranks 2+3+4+5+6+7+8+9+10 = 54, negative rank 1; exact one-sided
        // P(T+ >= 54) = #{sign sets with T+ >= 54} / 1024 = 2/1024 (T+ = 55 and T+ = 54).
        let d = [0.5, 1.5, -0.1, 2.0, 0.8, 1.1, 0.3, 0.9, 1.3, 1.7];
        let s = signed_rank_shift(&d, 0.95).unwrap();
        close(s.p_greater, 2.0 / 1024.0, 1e-15);
        close(s.p_less, 1.0 - 1.0 / 1024.0, 1e-15);
        close(s.p_two_sided(), 4.0 / 1024.0, 1e-15);
        // The HL estimate is the median of the 55 Walsh averages; exact k for n = 10 at 95% is 9
        // (P(T+ <= 8) = 25/1024 <= 0.025 < P(T+ <= 9) = 33/1024).
        let mut w: Vec<f64> = Vec::new();
        for i in 0..10 {
            for j in i..10 {
                w.push(0.5 * (d[i] + d[j]));
            }
        }
        w.sort_by(f64::total_cmp);
        close(s.estimate, w[27], 1e-15);
        close(s.low, w[8], 1e-15);
        close(s.high, w[46], 1e-15);
        assert!(s.std_err > 0.0);
    }

    #[test]
    fn stats_signed_rank_normal_approximation_agrees_with_exact_at_the_boundary() {
        // n = 50 (exact) against n = 51 (normal) on the same kind of data: both intervals cover the
        // planted shift and have nearly the same width.
        let mut rng = SplitMix64::new(7);
        let mk = |n: usize, rng: &mut SplitMix64| -> Vec<f64> {
            (0..n).map(|_| 0.05 + 0.02 * (rng.uniform() - 0.5) * 3.46).collect()
        };
        let a = signed_rank_shift(&mk(50, &mut rng), 0.99).unwrap();
        let b = signed_rank_shift(&mk(51, &mut rng), 0.99).unwrap();
        for s in [a, b] {
            assert!(s.low < 0.05 && 0.05 < s.high, "{s:?}");
            assert!(s.p_greater < 1e-6);
        }
        assert!((a.std_err / b.std_err - 1.0).abs() < 0.3, "{a:?} {b:?}");
    }

    #[test]
    fn stats_signed_rank_is_robust_to_mode_mismatched_rounds() {
        // 200 rounds: a true +5% shift with 1% within-mode noise, but 40% of rounds pair runs from
        // modes 30% apart (symmetric ±0.3 in log). The mean's t-test drowns; the rank test does not.
        let mut rng = SplitMix64::new(42);
        let gauss = SplitMix64::normal;
        let shift = 1.05f64.ln();
        let d: Vec<f64> = (0..200)
            .map(|_| {
                let u = rng.uniform();
                let mode = if u < 0.2 {
                    0.3
                } else if u < 0.4 {
                    -0.3
                } else {
                    0.0
                };
                shift + mode + 0.014 * gauss(&mut rng)
            })
            .collect();
        let s = signed_rank_shift(&d, 0.99).unwrap();
        assert!(s.p_greater < 1e-6, "{s:?}");
        assert!(s.low > 0.02 && s.high < 0.08, "{s:?}");
        let sd = {
            let m = d.iter().sum::<f64>() / 200.0;
            (d.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 199.0).sqrt()
        };
        // The equivalent standard error is several times smaller than the mean's.
        assert!(s.std_err < 0.5 * sd / 200f64.sqrt(), "{} vs {}", s.std_err, sd / 200f64.sqrt());
    }

    #[test]
    fn stats_signed_rank_null_is_calibrated() {
        // Symmetric noise around 0: the one-sided test rejects at 1% about 1% of the time.
        let mut rng = SplitMix64::new(3);
        let trials = 2000;
        let mut rejections = 0;
        for _ in 0..trials {
            let d: Vec<f64> = (0..30).map(|_| rng.uniform() - 0.5).collect();
            if signed_rank_shift(&d, 0.95).unwrap().p_greater < 0.01 {
                rejections += 1;
            }
        }
        // Binomial(2000, 0.01): mean 20, sd 4.5.
        assert!((5..=38).contains(&rejections), "{rejections}");
    }

    #[test]
    fn stats_signed_rank_degenerate_and_bad_input() {
        let s = signed_rank_shift(&[0.0, 0.0, 0.0], 0.95).unwrap();
        assert_eq!((s.estimate, s.low, s.high, s.p_greater, s.p_less), (0.0, 0.0, 0.0, 1.0, 1.0));
        let s = signed_rank_shift(&[0.1, 0.1, 0.1, 0.1], 0.95).unwrap();
        close(s.estimate, 0.1, 1e-15);
        assert!(s.p_greater < 0.1 && s.p_less > 0.9);
        assert!(matches!(signed_rank_shift(&[1.0], 0.95), Err(StatsError::TooFew { .. })));
        assert!(matches!(signed_rank_shift(&[1.0, f64::NAN], 0.95), Err(StatsError::NonFinite { .. })));
        assert!(signed_rank_shift(&[1.0, 2.0], 1.0).is_err());
    }

    #[test]
    fn stats_rank_sum_matches_known_values() {
        // x = 1..=5, y = 3.5..=7.5 step 1: every y - x difference is k + 0.5 for k in -2..=6, the
        // HL shift is the median of the 25 differences = 2.5; U(y) = 20.5 + ... by hand: pairs with
        // y > x: for y = 3.5: 3, 4.5: 4, 5.5: 5, 6.5: 5, 7.5: 5 -> U = 22.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [3.5, 4.5, 5.5, 6.5, 7.5];
        let s = rank_sum_shift(&x, &y, 0.95, 0.0).unwrap();
        close(s.estimate, 2.5, 1e-15);
        // Normal approximation: mean 12.5, var 25 * 11 / 12, z = (22 - 12.5 - 0.5) / sqrt(22.9167).
        let zz = 9.0 / (25.0 * 11.0 / 12.0f64).sqrt();
        close(s.p_greater, 0.5 * statrs::function::erf::erfc(zz / std::f64::consts::SQRT_2), 1e-12);
        assert!(s.low <= 2.5 && 2.5 <= s.high);
        // Session variance widens the interval and weakens the evidence.
        let w = rank_sum_shift(&x, &y, 0.95, 1.0).unwrap();
        assert!(w.high - w.low > s.high - s.low && w.p_greater > s.p_greater);
        assert!(rank_sum_shift(&x, &[1.0], 0.95, 0.0).is_err());
    }
}
