//! How noisy run-level values are, and what effect that noise lets us resolve.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::compare::check_probability;
use super::summary::quantile_sorted;
use super::StatsError;

/// Scale factor that turns a median absolute deviation into a standard deviation for normal data:
/// `1 / Phi^{-1}(3/4) = 1.482602...`, the constant R's `mad()` and scipy's `scale="normal"` use.
pub const MAD_TO_SD: f64 = 1.4826;

/// Significance level of the noise floor in [`effective_threshold`]: the conventional 5%, two-sided.
pub const FLOOR_ALPHA: f64 = 0.05;

/// Power of the noise floor in [`effective_threshold`] and in the gate's thresholds
/// (`judge`): 50%.
///
/// Why 0.5 and not the conventional 0.8: at 0.5 the floor is the smallest effect that can be
/// significant at all (critical t times the standard error), so requiring the estimate to reach it
/// costs no power beyond the test itself, while the reported threshold says honestly what the
/// comparison could resolve. At 0.8 the floor demands effects well above significance and halves
/// the detection of regressions near it.
pub const FLOOR_POWER: f64 = 0.5;

/// Robust coefficient of variation of run-level values: `1.4826 * MAD / median`.
///
/// `MAD = median(|x_i - median(x)|)`; scaled by [`MAD_TO_SD`] it estimates the standard deviation of
/// normal data, so the result is comparable to `sd / mean`, but one process that hit a noisy neighbour
/// cannot inflate it (the breakdown point is 50%, against 0% for the standard deviation). For the
/// few-percent spreads of run-level timings it also estimates the standard deviation of `ln(x)`, the
/// scale the tests work on. Medians are type-7 quantiles ([`quantile_sorted`]).
///
/// # Errors
/// [`StatsError::TooFew`] with fewer than 2 values (one value says nothing about spread);
/// [`StatsError::NonFinite`] / [`StatsError::NonPositive`] for values that are not positive finite
/// durations.
///
/// Time: `O(n log n)`; memory: `O(n)`.
pub fn noise_cv(values: &[f64]) -> Result<f64, StatsError> {
    if values.len() < 2 {
        return Err(StatsError::TooFew { what: "values", needed: 2, got: values.len() });
    }
    for (index, &value) in values.iter().enumerate() {
        if !value.is_finite() {
            return Err(StatsError::NonFinite { what: "values", index, value });
        }
        if value <= 0.0 {
            return Err(StatsError::NonPositive { what: "values", index, value });
        }
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = quantile_sorted(&sorted, 0.5);
    let mut dev: Vec<f64> = sorted.iter().map(|v| (v - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = quantile_sorted(&dev, 0.5);
    // median > 0 because every value is > 0.
    Ok(MAD_TO_SD * mad / median)
}

/// Sample standard deviation of the paired log ratios `ln(b_i / a_i)`: the run-to-run noise a
/// paired comparison sees. `0` with fewer than two pairs. Values must be positive (callers pass
/// run-level durations).
///
/// Time: `O(n)`.
pub fn log_ratio_sd(a: &[f64], b: &[f64]) -> f64 {
    let logs: Vec<f64> = a.iter().zip(b).map(|(x, y)| (y / x).ln()).collect();
    if logs.len() < 2 {
        return 0.0;
    }
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// The noise of a paired comparison as the per-side coefficient of variation of a two-sample one:
/// `sd_log_ratio / sqrt(2)`, where `sd_log_ratio` is [`log_ratio_sd`] of the pairs.
///
/// Why: [`min_detectable_effect`] and [`effective_threshold_at`] take a per-side noise and use the
/// two-sample standard error `cv * sqrt(1/n + 1/n)`; a paired test on `n` rounds has standard error
/// `sd_log_ratio / sqrt(n)`. With `cv = sd_log_ratio / sqrt(2)` the first gives the second
/// (`sd / sqrt(2) * sqrt(2 / n)`), so the paired floor comes out of the same formula. (The degrees
/// of freedom stay the two-sample ones: slightly optimistic for few rounds.)
pub fn paired_as_two_sample_cv(sd_log_ratio: f64) -> f64 {
    sd_log_ratio / std::f64::consts::SQRT_2
}

/// The smallest relative change a two-sample comparison detects with probability `power`, in the
/// same units as a threshold (`0.05` = 5% slower).
///
/// On the log scale with per-run standard deviation `sigma = sqrt(ln(1 + cv^2))` (the exact relation
/// for a log-normal; `≈ cv` for small `cv`), the log difference has standard error
/// `se = sigma * sqrt(1/n_base + 1/n_cur)`. The usual t approximation to the power of a two-sided
/// test at level `alpha` gives
///
/// ```text
/// delta = (t_{1 - alpha/2, df} + t_{power, df}) * se,   df = n_base + n_cur - 2
/// MDE   = exp(delta) - 1
/// ```
///
/// (the normal version has `z` for `t`; with 8 runs a side the t quantiles are ~10% larger and
/// honest about it). It ignores the probability of a significant result in the wrong direction,
/// which is negligible at any useful power.
///
/// # Errors
/// [`StatsError::TooFew`] if a side has fewer than 2 runs; [`StatsError::InvalidProbability`] if
/// `alpha` or `power` is not in `(0, 1)`; [`StatsError::InvalidNoise`] if `noise_cv` is negative or not
/// finite.
pub fn min_detectable_effect(
    noise_cv: f64,
    n_base: usize,
    n_cur: usize,
    alpha: f64,
    power: f64,
) -> Result<f64, StatsError> {
    check_probability("alpha", alpha)?;
    check_probability("power", power)?;
    if !(noise_cv.is_finite() && noise_cv >= 0.0) {
        return Err(StatsError::InvalidNoise { value: noise_cv });
    }
    for (what, got) in [("baseline", n_base), ("current", n_cur)] {
        if got < 2 {
            return Err(StatsError::TooFew { what, needed: 2, got });
        }
    }
    let sigma = noise_cv.mul_add(noise_cv, 1.0).ln().sqrt();
    let se = sigma * (1.0 / n_base as f64 + 1.0 / n_cur as f64).sqrt();
    let df = (n_base + n_cur - 2) as f64;
    let t = StudentsT::new(0.0, 1.0, df).map_err(|_| StatsError::TooFew {
        what: "runs",
        needed: 4,
        got: n_base + n_cur,
    })?;
    let delta = (t.inverse_cdf(1.0 - alpha / 2.0) + t.inverse_cdf(power)) * se;
    Ok(delta.exp_m1())
}

/// The effect size a change must reach to be called regressed or improved, and the half-width of the
/// "unchanged" band: `max(configured_min, noise floor)`, with the noise floor
/// [`min_detectable_effect`]`(noise_cv, n_base, n_cur, FLOOR_ALPHA, FLOOR_POWER)`.
///
/// Why the detectable effect and not the configured number alone: an effect smaller than the
/// runs can resolve at all is a coin flip near the noise floor, and calling it would make a flaky
/// gate. Raising the bar to what the data can resolve (at [`FLOOR_POWER`], see there) keeps a
/// noisy checkpoint from raising an alarm on a change smaller than its own jitter, and makes the
/// band wide enough that an unchanged build whose interval is as wide as the noise says can still
/// be judged "unchanged" instead of "inconclusive". The floor grows with the
/// noise and shrinks with more runs, so buying more runs is how one buys a smaller threshold.
///
/// Pass the noise of both sides (e.g. the larger of the baseline's and the current runs'
/// [`noise_cv`]). When intervals are widened for multiplicity, prefer [`effective_threshold_at`] with
/// the per-test level, so the floor matches the intervals [`judge`](super::judge) reads.
///
/// # Errors
/// As [`min_detectable_effect`]; [`StatsError::InvalidThreshold`] if `configured_min` is negative or
/// not finite.
pub fn effective_threshold(configured_min: f64, noise_cv: f64, n_base: usize, n_cur: usize) -> Result<f64, StatsError> {
    effective_threshold_at(configured_min, noise_cv, n_base, n_cur, FLOOR_ALPHA, FLOOR_POWER)
}

/// [`effective_threshold`] with the floor's level and power given: `per_test_alpha` is the level each
/// interval is computed at, `1 - `[`Correction::interval_confidence`](super::Correction::interval_confidence).
///
/// # Errors
/// As [`effective_threshold`].
pub fn effective_threshold_at(
    configured_min: f64,
    noise_cv: f64,
    n_base: usize,
    n_cur: usize,
    per_test_alpha: f64,
    power: f64,
) -> Result<f64, StatsError> {
    if !(configured_min.is_finite() && configured_min >= 0.0) {
        return Err(StatsError::InvalidThreshold { value: configured_min });
    }
    let floor = min_detectable_effect(noise_cv, n_base, n_cur, per_test_alpha, power)?;
    Ok(configured_min.max(floor))
}

/// The smallest relative effect a one-sided test at level `alpha` detects with probability `power`
/// when its estimate has standard error `se` on the log scale: `exp((z_(1-alpha) + z_power) se) - 1`.
/// This is what the gate's one-sided test resolves; `se` should come from the very test (the
/// rank tests' equivalent standard error, see [`Shift`](super::Shift)), so the promise and the test
/// read one spread.
///
/// # Errors
/// [`StatsError::InvalidProbability`] for `alpha` or `power` outside `(0, 1)`;
/// [`StatsError::InvalidNoise`] for a negative or non-finite `se`.
pub fn detectable_shift(se: f64, alpha: f64, power: f64) -> Result<f64, StatsError> {
    check_probability("alpha", alpha)?;
    check_probability("power", power)?;
    if !(se.is_finite() && se >= 0.0) {
        return Err(StatsError::InvalidNoise { value: se });
    }
    let n = statrs::distribution::Normal::new(0.0, 1.0).map_err(|_| StatsError::InvalidNoise { value: se })?;
    Ok(((n.inverse_cdf(1.0 - alpha) + n.inverse_cdf(power)) * se).exp_m1())
}

/// Variance between groups of a one-way random-effects model, by the method of moments
/// (ANOVA): `(MSB - MSW) / n0` with `n0 = (N - sum n_i^2 / N) / (k - 1)` for `k` groups of sizes
/// `n_i` and `N` values in all; clamped at 0. Unbiased before clamping, for any group sizes.
///
/// What it is for: the variance of a whole recording session's offset, from a baseline's per-run
/// log values grouped by the session that recorded them. With `k` groups it has only `k - 1`
/// degrees of freedom: an estimate from two or three sessions is rough, and callers should not let
/// it lower a configured prior.
///
/// # Errors
/// [`StatsError::TooFew`] for fewer than two groups or a group with fewer than one value, or fewer
/// than `k + 1` values in all (no within-group degree of freedom); [`StatsError::NonFinite`] for a
/// value that is not finite.
///
/// Time: `O(N)`.
pub fn between_group_var(groups: &[&[f64]]) -> Result<f64, StatsError> {
    let k = groups.len();
    if k < 2 {
        return Err(StatsError::TooFew { what: "groups", needed: 2, got: k });
    }
    if let Some(g) = groups.iter().find(|g| g.is_empty()) {
        return Err(StatsError::TooFew { what: "values in a group", needed: 1, got: g.len() });
    }
    let n: usize = groups.iter().map(|g| g.len()).sum();
    if n < k + 1 {
        return Err(StatsError::TooFew { what: "values", needed: k + 1, got: n });
    }
    for (index, &value) in groups.iter().flat_map(|g| g.iter()).enumerate() {
        if !value.is_finite() {
            return Err(StatsError::NonFinite { what: "values", index, value });
        }
    }
    let mean = |g: &[f64]| g.iter().sum::<f64>() / g.len() as f64;
    let grand = groups.iter().map(|g| g.iter().sum::<f64>()).sum::<f64>() / n as f64;
    let (mut ssb, mut ssw) = (0.0, 0.0);
    for g in groups {
        let m = mean(g);
        ssb += g.len() as f64 * (m - grand).powi(2);
        ssw += g.iter().map(|x| (x - m).powi(2)).sum::<f64>();
    }
    let msb = ssb / (k - 1) as f64;
    let msw = ssw / (n - k) as f64;
    let sum_sq: f64 = groups.iter().map(|g| (g.len() as f64).powi(2)).sum();
    let n0 = (n as f64 - sum_sq / n as f64) / (k - 1) as f64;
    Ok(((msb - msw) / n0).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_log_ratio_sd_known_values() {
        // ln ratios 0, ln 2: mean ln2/2, sd = ln2 / sqrt(2).
        let sd = log_ratio_sd(&[1.0, 1.0], &[1.0, 2.0]);
        assert!((sd - std::f64::consts::LN_2 / std::f64::consts::SQRT_2).abs() < 1e-12);
        assert_eq!(log_ratio_sd(&[3.0, 5.0], &[6.0, 10.0]), 0.0, "a constant ratio has no noise");
        assert_eq!(log_ratio_sd(&[1.0], &[2.0]), 0.0);
    }

    #[test]
    fn stats_between_group_var_known_values_and_errors() {
        // Hand-worked: means 2 and 6, MSB 24, MSW 1, n0 3: (24 - 1) / 3.
        close(between_group_var(&[&[1.0, 2.0, 3.0], &[5.0, 6.0, 7.0]]).unwrap(), 23.0 / 3.0, 1e-12);
        // Unequal sizes: MSB 8/3, MSW 2, n0 4/3: 0.5.
        close(between_group_var(&[&[1.0, 3.0], &[4.0]]).unwrap(), 0.5, 1e-12);
        // Groups that differ less than their spread predicts: clamped at 0, never negative.
        assert_eq!(between_group_var(&[&[1.0, 9.0], &[2.0, 8.0]]).unwrap(), 0.0);
        assert!(matches!(between_group_var(&[&[1.0, 2.0]]), Err(StatsError::TooFew { what: "groups", .. })));
        assert!(matches!(between_group_var(&[&[1.0], &[]]), Err(StatsError::TooFew { .. })));
        assert!(matches!(between_group_var(&[&[1.0], &[2.0]]), Err(StatsError::TooFew { what: "values", .. })));
        assert!(matches!(between_group_var(&[&[1.0, f64::NAN], &[2.0]]), Err(StatsError::NonFinite { .. })));
    }

    #[test]
    fn stats_between_group_var_is_unbiased_on_simulated_sessions() {
        // 6 sessions of 12 runs: session sd 3 %, run sd 5 % (logs). The mean of 400 estimates
        // (each clamped, so slightly biased up) lands within 15 % of 0.03^2.
        let mut rng = crate::stats::SplitMix64::new(7);
        let mut normal = || rng.normal();
        let mut sum = 0.0;
        for _ in 0..400 {
            let sessions: Vec<Vec<f64>> = (0..6)
                .map(|_| {
                    let offset = 0.03 * normal();
                    (0..12).map(|_| offset + 0.05 * normal()).collect()
                })
                .collect();
            let groups: Vec<&[f64]> = sessions.iter().map(Vec::as_slice).collect();
            sum += between_group_var(&groups).unwrap();
        }
        close(sum / 400.0, 0.03 * 0.03, 0.15);
    }

    #[track_caller]
    fn close(got: f64, want: f64, rel: f64) {
        assert!((got - want).abs() <= rel * want.abs(), "got {got}, want {want}");
    }

    #[test]
    fn stats_noise_cv_matches_scipy() {
        // Reference: scipy 1.17.1, v = [100, 103, 97, 101, 150, 99, 102, 98.5]:
        // stats.median_abs_deviation(v) = 1.75, np.median(v) = 100.5,
        // 1.4826 * 1.75 / 100.5 = 0.02581641791044776. The 150 outlier does not move it.
        let v = [100.0, 103.0, 97.0, 101.0, 150.0, 99.0, 102.0, 98.5];
        close(noise_cv(&v).unwrap(), 0.02581641791044776, 1e-14);
        assert_eq!(noise_cv(&[5.0, 5.0, 5.0]).unwrap(), 0.0);
        // n = 2: MAD = |a - b| / 2.
        close(noise_cv(&[90.0, 110.0]).unwrap(), 1.4826 * 10.0 / 100.0, 1e-14);
    }

    #[test]
    fn stats_noise_cv_errors() {
        assert!(matches!(noise_cv(&[]), Err(StatsError::TooFew { got: 0, .. })));
        assert!(matches!(noise_cv(&[1.0]), Err(StatsError::TooFew { got: 1, .. })));
        assert!(matches!(noise_cv(&[1.0, f64::NAN]), Err(StatsError::NonFinite { index: 1, .. })));
        assert!(matches!(noise_cv(&[0.0, 1.0]), Err(StatsError::NonPositive { index: 0, .. })));
    }

    #[test]
    fn stats_min_detectable_effect_matches_formula() {
        // Reference: scipy 1.17.1,
        // se = sqrt(log1p(cv**2)) * sqrt(1/nb + 1/nc); df = nb + nc - 2;
        // expm1((t.ppf(1 - alpha/2, df) + t.ppf(power, df)) * se):
        // (cv 0.03, 8, 8, 0.05, 0.8) -> 0.0462187341592191; (0.05, 5, 12, 0.001, 0.9) -> 0.15486610144514293.
        close(min_detectable_effect(0.03, 8, 8, 0.05, 0.8).unwrap(), 0.0462187341592191, 1e-9);
        close(min_detectable_effect(0.05, 5, 12, 0.001, 0.9).unwrap(), 0.15486610144514293, 1e-9);
        assert_eq!(min_detectable_effect(0.0, 8, 8, 0.05, 0.8).unwrap(), 0.0);
        // More runs, smaller effect; more noise, larger effect.
        let m = |cv, n| min_detectable_effect(cv, n, n, 0.05, 0.8).unwrap();
        assert!(m(0.03, 16) < m(0.03, 8) && m(0.06, 8) > m(0.03, 8));
    }

    #[test]
    fn stats_min_detectable_effect_errors() {
        assert!(matches!(
            min_detectable_effect(0.03, 1, 8, 0.05, 0.8),
            Err(StatsError::TooFew { what: "baseline", .. })
        ));
        assert!(matches!(
            min_detectable_effect(0.03, 8, 0, 0.05, 0.8),
            Err(StatsError::TooFew { what: "current", .. })
        ));
        assert!(matches!(min_detectable_effect(-0.1, 8, 8, 0.05, 0.8), Err(StatsError::InvalidNoise { .. })));
        assert!(matches!(min_detectable_effect(f64::NAN, 8, 8, 0.05, 0.8), Err(StatsError::InvalidNoise { .. })));
        assert!(matches!(
            min_detectable_effect(0.03, 8, 8, 1.0, 0.8),
            Err(StatsError::InvalidProbability { name: "alpha", .. })
        ));
        assert!(matches!(
            min_detectable_effect(0.03, 8, 8, 0.05, 0.0),
            Err(StatsError::InvalidProbability { name: "power", .. })
        ));
    }

    #[test]
    fn stats_paired_as_two_sample_cv_gives_the_paired_standard_error() {
        // Two-sample se with cv = sd/sqrt(2) on n rounds a side equals the paired sd/sqrt(n).
        let (sd, n) = (0.03_f64, 9.0_f64);
        let cv = paired_as_two_sample_cv(sd);
        assert!((cv * (2.0 / n).sqrt() - sd / n.sqrt()).abs() < 1e-15);
        assert_eq!(paired_as_two_sample_cv(0.0), 0.0);
    }

    #[test]
    fn stats_effective_threshold_is_the_larger() {
        let floor = min_detectable_effect(0.03, 8, 8, FLOOR_ALPHA, FLOOR_POWER).unwrap();
        assert_eq!(effective_threshold(0.10, 0.03, 8, 8).unwrap(), 0.10);
        assert_eq!(effective_threshold(0.01, 0.03, 8, 8).unwrap(), floor);
        assert_eq!(effective_threshold(0.02, 0.0, 8, 8).unwrap(), 0.02);
        let strict = effective_threshold_at(0.01, 0.03, 8, 8, 0.0005, 0.8).unwrap();
        assert!(strict > floor);
        assert!(matches!(effective_threshold(-0.01, 0.03, 8, 8), Err(StatsError::InvalidThreshold { .. })));
        assert!(matches!(effective_threshold(f64::NAN, 0.03, 8, 8), Err(StatsError::InvalidThreshold { .. })));
        assert!(effective_threshold(0.05, f64::INFINITY, 8, 8).is_err());
    }

    #[test]
    fn detectable_shift_matches_the_normal_quantiles() {
        // power 0.5: z_power = 0, so the shift is exp(z_(0.95) se) - 1 = exp(1.6449 * 0.01) - 1.
        let d = detectable_shift(0.01, 0.05, 0.5).unwrap();
        assert!((d - 0.016585).abs() < 1e-5, "{d}");
        // More power and a smaller alpha both need a larger shift; zero spread detects anything.
        assert!(detectable_shift(0.01, 0.01, 0.95).unwrap() > d);
        assert_eq!(detectable_shift(0.0, 0.05, 0.9).unwrap(), 0.0);
        assert!(detectable_shift(-0.1, 0.05, 0.9).is_err());
        assert!(detectable_shift(0.01, 1.0, 0.9).is_err());
    }
}
