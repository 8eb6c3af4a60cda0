//! Verdicts on nearly deterministic measurements: instruction counts under callgrind.
//!
//! # Design, and why
//! The rank tests of [`super::compare`] need a dozen runs per arm to reach the gate's alpha, and
//! time needs them because its noise is several percent. Instruction counts of the same build
//! differ between runs by ~0.01 % (std's random hash seed, address-dependent paths), so three runs
//! per arm show their whole noise, and a change a hundred times that size is not noise. The model
//! is the same shape as the time verdicts (an interval around the relative change of the arms'
//! central values, a threshold, an equivalence band), with the interval from the observed spread
//! instead of a sampling distribution:
//!
//! * `change = median(new) / median(base) - 1`;
//! * `noise` = the largest relative distance of any run from its own arm's median (half the
//!   relative range for two or three runs);
//! * the interval is `change ± NOISE_FACTOR × noise`;
//! * **regressed** when the interval lies above 0 and `change >= min_effect`; **improved**
//!   symmetrically; **unchanged** when the whole interval lies within `±min_effect`; otherwise
//!   **inconclusive** (the runs disagree too much to tell).
//!
//! It is a decision rule, not a test with a stated false-alarm rate: an A/A difference of medians
//! cannot exceed the arms' own spread unless a run is an outlier in one arm only, and
//! `NOISE_FACTOR = 3` leaves room for that. `harness/tests/callgrind.rs` measures it (a planted
//! 1 % caught in 10 of 10 trials, an unchanged build never flagged).

use super::{median, Verdict};

/// How many times the observed spread the change must clear to count as real (see module docs).
pub const NOISE_FACTOR: f64 = 3.0;

/// One comparison of per-run values (e.g. mean instructions per call).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CountComparison {
    /// `median(new) / median(base) - 1`.
    pub change: f64,
    /// Largest relative distance of a run from its arm's median, over both arms (>= 0).
    pub noise: f64,
    /// The interval's half-width: `NOISE_FACTOR × noise`.
    pub margin: f64,
    /// The decision.
    pub verdict: Verdict,
}

/// Compares `new` runs with `base` runs at threshold `min_effect` (relative, >= 0).
///
/// Returns `None` when an arm is empty, holds a NaN, or its median is not positive.
/// Time: `O(n log n)`.
pub fn compare_counts(base: &[f64], new: &[f64], min_effect: f64) -> Option<CountComparison> {
    let mb = median(base)?;
    let mn = median(new)?;
    if mb <= 0.0 || mn <= 0.0 {
        return None;
    }
    let spread = |xs: &[f64], m: f64| xs.iter().map(|x| (x / m - 1.0).abs()).fold(0.0, f64::max);
    let noise = spread(base, mb).max(spread(new, mn));
    let change = mn / mb - 1.0;
    let margin = NOISE_FACTOR * noise;
    let verdict = if change - margin > 0.0 && change >= min_effect {
        Verdict::Regressed
    } else if change + margin < 0.0 && change <= -min_effect {
        Verdict::Improved
    } else if change.abs() + margin <= min_effect {
        Verdict::Unchanged
    } else {
        Verdict::Inconclusive
    };
    Some(CountComparison { change, noise, margin, verdict })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_counts() {
        let same = compare_counts(&[1000.0; 3], &[1000.0; 3], 0.0025).unwrap();
        assert_eq!((same.change, same.noise, same.verdict), (0.0, 0.0, Verdict::Unchanged));
        let half = compare_counts(&[1000.0; 3], &[1005.0; 3], 0.0025).unwrap();
        assert_eq!(half.verdict, Verdict::Regressed);
        assert!((half.change - 0.005).abs() < 1e-12);
        let faster = compare_counts(&[1000.0; 3], &[990.0; 3], 0.0025).unwrap();
        assert_eq!(faster.verdict, Verdict::Improved);
        // Below the threshold but clearly real: neither regressed nor (within the band) unchanged.
        let small = compare_counts(&[1000.0; 3], &[1002.0; 3], 0.0025).unwrap();
        assert_eq!(small.verdict, Verdict::Unchanged);
        let edge = compare_counts(&[1000.0; 3], &[1002.6; 3], 0.0025).unwrap();
        assert_eq!(edge.verdict, Verdict::Regressed);
    }

    #[test]
    fn noise_widens_the_interval() {
        // Runs spread by +-0.1 %: the 0.5 % change clears 0 by more than 3 x 0.1 % and is at
        // least the 0.25 % threshold: regressed.
        let base = [999.0, 1000.0, 1001.0];
        let new = [1004.0, 1005.0, 1006.0];
        let c = compare_counts(&base, &new, 0.0025).unwrap();
        assert!((c.noise - 0.001).abs() < 1e-6, "{c:?}");
        assert_eq!(c.verdict, Verdict::Regressed);
        // Spread of +-0.5 %: the same change is inconclusive.
        let noisy = compare_counts(&[995.0, 1000.0, 1005.0], &[1000.0, 1005.0, 1010.0], 0.0025).unwrap();
        assert_eq!(noisy.verdict, Verdict::Inconclusive);
        // A/A with spread: never regressed.
        let aa = compare_counts(&[995.0, 1000.0, 1005.0], &[1001.0, 996.0, 1004.0], 0.0025).unwrap();
        assert_ne!(aa.verdict, Verdict::Regressed);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(compare_counts(&[], &[1.0], 0.01).is_none());
        assert!(compare_counts(&[0.0], &[1.0], 0.01).is_none());
        assert!(compare_counts(&[f64::NAN], &[1.0], 0.01).is_none());
    }
}
