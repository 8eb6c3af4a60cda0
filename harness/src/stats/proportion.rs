//! Intervals for a proportion (successes out of trials), for scoring the gate's own verdicts.

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The 95 % Wilson score interval `(low, high)` for `k` successes in `n` trials; `(0, 1)` for
/// `n = 0`. Unlike the normal approximation it stays inside `[0, 1]` and is valid for small `n`
/// and for 0 or `n` successes, which is where a verdict benchmark's rates live.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((center - half).max(0.0), (center + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn wilson_matches_known_values() {
        // Reference values: statsmodels proportion_confint(k, n, method="wilson").
        let (lo, hi) = wilson(0, 10);
        assert!(close(lo, 0.0) && close(hi, 0.277_53), "{lo} {hi}");
        let (lo, hi) = wilson(5, 10);
        assert!(close(lo, 0.236_59) && close(hi, 0.763_41), "{lo} {hi}");
        let (lo, hi) = wilson(10, 10);
        assert!(close(lo, 0.722_47) && close(hi, 1.0), "{lo} {hi}");
        let (lo, hi) = wilson(1, 100);
        assert!(close(lo, 0.001_77) && close(hi, 0.054_5), "{lo} {hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
