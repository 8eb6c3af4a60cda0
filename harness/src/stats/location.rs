//! Central values of a handful of run-level numbers: what reports show and what drift factors
//! are made of.

use super::summary::quantile_sorted;

/// The median of `values` (type-7, as [`quantile_sorted`] at 0.5: the mean of the two middle
/// values for an even count), in any order.
///
/// `None` for an empty slice or when any value is `NaN` (a `NaN` has no rank, and a median that
/// silently sorted it to one end would be wrong without saying so).
///
/// Time: `O(n log n)`; memory: `O(n)`.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(quantile_sorted(&sorted, 0.5))
}

/// The geometric mean `exp(mean(ln v))` of positive values: the central value on the log scale
/// the tests work on, so a ratio of two geometric means is the ratio [`compare_runs`] estimates.
///
/// `None` for an empty slice or when any value is not a positive finite number (zero, negative,
/// infinite, `NaN`): its logarithm is undefined or swamps the rest.
///
/// [`compare_runs`]: super::compare_runs
///
/// Time: `O(n)`.
pub fn geo_mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() || !values.iter().all(|v| v.is_finite() && *v > 0.0) {
        return None;
    }
    Some((values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_median_known_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5), "even count: mean of the middle two");
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[-1.0, -3.0]), Some(-2.0), "any finite values, not only durations");
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN, 2.0]), None);
    }

    #[test]
    fn stats_geo_mean_known_values() {
        let close = |got: Option<f64>, want: f64| {
            let g = got.expect("defined");
            assert!((g - want).abs() <= 1e-12 * want, "got {g}, want {want}");
        };
        close(geo_mean(&[1.0, 4.0]), 2.0);
        close(geo_mean(&[2.0, 8.0, 4.0]), 4.0);
        close(geo_mean(&[5.0]), 5.0);
        // Reference: scipy.stats.gmean([100, 110, 121]) = 110.0 (a geometric sequence).
        close(geo_mean(&[100.0, 110.0, 121.0]), 110.0);
        assert_eq!(geo_mean(&[]), None);
        assert_eq!(geo_mean(&[1.0, 0.0]), None);
        assert_eq!(geo_mean(&[1.0, -2.0]), None);
        assert_eq!(geo_mean(&[1.0, f64::NAN]), None);
        assert_eq!(geo_mean(&[1.0, f64::INFINITY]), None);
    }
}
