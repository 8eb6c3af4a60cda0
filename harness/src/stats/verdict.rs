//! From a comparison to a verdict: regressed, improved, unchanged or inconclusive.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Comparison;

/// The judgement of one (checkpoint, metric) comparison. Serialized lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Significantly slower, by at least the threshold: fails the gate.
    Regressed,
    /// Significantly faster, by at least the threshold.
    Improved,
    /// The whole interval lies inside the equivalence band: any change is smaller than the threshold.
    Unchanged,
    /// Neither: the data cannot tell (too noisy, too few runs, or a significant change smaller than
    /// the threshold whose interval still reaches past the band).
    Inconclusive,
}

impl Verdict {
    /// The stable lowercase name: `"regressed"`, `"improved"`, `"unchanged"` or `"inconclusive"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Judges one comparison. `adjusted_p` is its p-value after the invocation-wide
/// [`Correction`](super::Correction); `threshold` is a relative effect (`0.05` = 5%), normally
/// [`effective_threshold`](super::effective_threshold); `cmp`'s interval should be computed at
/// [`Correction::interval_confidence`](super::Correction::interval_confidence).
///
/// With the band `[lo, hi] = [1 / (1 + threshold), 1 + threshold]` (symmetric on the log scale, so a
/// 5% threshold treats "5% slower" and "the inverse of 5% slower" alike):
///
/// | verdict        | rule (checked in this order)                                   |
/// |----------------|-----------------------------------------------------------------|
/// | `Regressed`    | `adjusted_p < alpha` and `ci_low > 1` and `ratio >= hi`          |
/// | `Improved`     | `adjusted_p < alpha` and `ci_high < 1` and `ratio <= lo`         |
/// | `Unchanged`    | `lo <= ci_low` and `ci_high <= hi`                               |
/// | `Inconclusive` | everything else, and any `NaN` or invalid `threshold`/`alpha`    |
///
/// Why each part:
/// * Significance alone is not enough: with many quiet runs a 0.3% change is significant and nobody
///   should fail a build for it. The point estimate must reach the threshold.
/// * Size alone is not enough: a 10% point estimate from noisy runs may be nothing. The adjusted
///   p-value must be below `alpha`, and the interval must exclude 1 (the interval and the p-value come
///   from the same t statistic; with multiplicity-adjusted intervals this check is the simultaneous
///   one, see [`Correction::interval_confidence`](super::Correction::interval_confidence)).
/// * "Unchanged" is an equivalence claim, so it needs positive evidence: the whole interval inside the
///   band (two one-sided tests, each at level `(1 - confidence) / 2`). An interval wider than the band
///   is "inconclusive", never "unchanged": absence of evidence is not evidence of absence. A significant
///   change smaller than the threshold with its interval inside the band is also "unchanged".
///
/// `Regressed` and `Improved` exclude each other (`ci_low > 1` vs `ci_high < 1`); a comparison that
/// qualifies as both `Regressed` and `Unchanged` (only when `ratio == ci_high == hi` exactly) is
/// `Regressed`.
pub fn judge(cmp: &Comparison, adjusted_p: f64, alpha: f64, threshold: f64) -> Verdict {
    let valid = threshold.is_finite() && threshold >= 0.0 && alpha > 0.0 && alpha < 1.0;
    if !valid {
        return Verdict::Inconclusive;
    }
    let hi = 1.0 + threshold;
    let lo = 1.0 / hi;
    let significant = adjusted_p < alpha;
    if significant && cmp.ci_low > 1.0 && cmp.ratio >= hi {
        Verdict::Regressed
    } else if significant && cmp.ci_high < 1.0 && cmp.ratio <= lo {
        Verdict::Improved
    } else if lo <= cmp.ci_low && cmp.ci_high <= hi {
        Verdict::Unchanged
    } else {
        Verdict::Inconclusive
    }
}

/// Like [`judge`], but "unchanged" is decided separately, as an equivalence test per comparison:
/// `equivalence`'s interval (normally at level `1 - 2 * alpha`, two one-sided tests) must lie
/// inside `[1 / (1 + margin), 1 + margin]`, where `margin` is the configured smallest effect that
/// matters (not the noise-inflated `threshold`).
///
/// Why two intervals: the family-wise correction protects against false *alarms*; a false
/// "unchanged" is a different error (a missed regression), controlled per comparison by the
/// equivalence test at its own level. Using the very wide simultaneous interval for both makes
/// "unchanged" nearly unreachable with a realistic number of runs, and using the noise-inflated
/// threshold as the equivalence margin would call a checkpoint "unchanged" within a band wider
/// than the effects the user cares about.
///
/// `Regressed` and `Improved` follow [`judge`] on `strict` exactly.
pub fn judge_with_equivalence(
    strict: &Comparison,
    equivalence: &Comparison,
    adjusted_p: f64,
    alpha: f64,
    threshold: f64,
    margin: f64,
) -> Verdict {
    match judge(strict, adjusted_p, alpha, threshold) {
        v @ (Verdict::Regressed | Verdict::Improved) => v,
        _ if margin.is_finite() && margin >= 0.0 => {
            let hi = 1.0 + margin;
            if 1.0 / hi <= equivalence.ci_low && equivalence.ci_high <= hi {
                Verdict::Unchanged
            } else {
                Verdict::Inconclusive
            }
        }
        _ => Verdict::Inconclusive,
    }
}

/// The gate's verdict: one-sided for regressions, with improvements reported and "unchanged" an
/// equivalence claim.
///
/// * `Regressed`: `adjusted_p_slower < alpha` (the one-sided "slower" p-value after the family's
///   correction) and the point estimate at least `1 + threshold`. Only regressions are tested
///   against the family's level, so a two-sided test's half of alpha is not wasted on improvements.
/// * `Improved` (never gates): `strict`'s interval (two-sided, each side at the family's per-test
///   level) lies below 1 and the estimate at most `1 / (1 + threshold)`.
/// * `Unchanged`: `equivalence`'s interval (normally at `1 - 2 * alpha`, two one-sided tests)
///   lies inside `[1 / (1 + margin), 1 + margin]`.
/// * `Inconclusive` otherwise, and for any `NaN` or invalid `alpha`, `threshold` or `margin`.
pub fn judge_regression(
    strict: &Comparison,
    equivalence: &Comparison,
    adjusted_p_slower: f64,
    alpha: f64,
    threshold: f64,
    margin: f64,
) -> Verdict {
    let valid = threshold.is_finite() && threshold >= 0.0 && margin.is_finite() && margin >= 0.0;
    if !(valid && alpha > 0.0 && alpha < 1.0) {
        return Verdict::Inconclusive;
    }
    let hi = 1.0 + threshold;
    let band = 1.0 + margin;
    if adjusted_p_slower < alpha && strict.ratio >= hi {
        Verdict::Regressed
    } else if strict.ci_high < 1.0 && strict.ratio <= 1.0 / hi {
        Verdict::Improved
    } else if 1.0 / band <= equivalence.ci_low && equivalence.ci_high <= band {
        Verdict::Unchanged
    } else {
        Verdict::Inconclusive
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Method;

    fn cmp(ratio: f64, ci_low: f64, ci_high: f64) -> Comparison {
        Comparison {
            ratio,
            ci_low,
            ci_high,
            confidence: 0.95,
            p_value: f64::NAN,
            p_slower: f64::NAN,
            df: 14.0,
            log_std_err: 0.01,
            n_baseline: 8,
            n_current: 8,
            method: Method::Welch,
            rank_p_value: None,
        }
    }

    #[test]
    fn stats_equivalence_uses_its_own_interval_and_the_margin() {
        use Verdict::*;
        let wide = cmp(1.01, 0.90, 1.13); // simultaneous interval: too wide for "unchanged"
        let narrow = cmp(1.01, 0.98, 1.04); // per-comparison equivalence interval
        assert_eq!(judge(&wide, 1.0, 0.05, 0.05), Inconclusive);
        assert_eq!(judge_with_equivalence(&wide, &narrow, 1.0, 0.05, 0.05, 0.05), Unchanged);
        // The margin is the configured effect, not the noise-inflated threshold.
        assert_eq!(judge_with_equivalence(&wide, &narrow, 1.0, 0.05, 0.30, 0.03), Inconclusive);
        // Regressions still need the strict interval and the threshold.
        let strict = cmp(1.10, 1.06, 1.14);
        assert_eq!(judge_with_equivalence(&strict, &strict, 0.001, 0.05, 0.05, 0.05), Regressed);
        assert_eq!(judge_with_equivalence(&strict, &strict, 0.2, 0.05, 0.05, 0.05), Inconclusive);
        assert_eq!(judge_with_equivalence(&narrow, &narrow, 1.0, 0.05, 0.05, f64::NAN), Inconclusive);
    }

    #[test]
    fn stats_judge_table() {
        use Verdict::*;
        let a = 0.05;
        let t = 0.05;
        let cases = [
            // (ratio, ci_low, ci_high, adjusted_p, expected)
            (1.10, 1.06, 1.14, 0.001, Regressed),
            (1.05, 1.01, 1.09, 0.001, Regressed),    // exactly at the threshold
            (1.10, 1.06, 1.14, 0.06, Inconclusive),  // not significant after adjustment
            (1.10, 0.99, 1.22, 0.001, Inconclusive), // interval reaches 1 (inconsistent p)
            (1.03, 1.01, 1.05, 0.001, Unchanged),    // significant but small, inside the band
            (1.03, 1.01, 1.07, 0.001, Inconclusive), // small, interval leaves the band
            (0.90, 0.87, 0.93, 0.001, Improved),
            (1.0 / 1.05, 0.93, 0.97, 0.001, Improved),
            (0.90, 0.87, 0.93, 0.2, Inconclusive),
            (1.00, 0.97, 1.03, 0.9, Unchanged),
            (1.00, 1.0 / 1.05, 1.05, 0.9, Unchanged), // band edges are inside
            (1.00, 0.90, 1.10, 0.9, Inconclusive),    // too noisy to claim anything
            (1.20, 1.20, 1.20, 0.0, Regressed),       // degenerate interval
            (1.00, 1.00, 1.00, 1.0, Unchanged),       // identical data
        ];
        for (ratio, lo, hi, p, want) in cases {
            let got = judge(&cmp(ratio, lo, hi), p, a, t);
            assert_eq!(got, want, "ratio {ratio} [{lo}, {hi}] p {p}");
        }
        // A zero threshold: any significant change counts; "unchanged" only for a point at 1.
        assert_eq!(judge(&cmp(1.002, 1.001, 1.003), 0.01, a, 0.0), Regressed);
        assert_eq!(judge(&cmp(1.0, 0.999, 1.001), 0.5, a, 0.0), Inconclusive);
    }

    #[test]
    fn stats_judge_invalid_inputs_are_inconclusive() {
        let c = cmp(1.5, 1.4, 1.6);
        assert_eq!(judge(&c, 0.001, 0.05, 0.05), Verdict::Regressed);
        assert_eq!(judge(&c, f64::NAN, 0.05, 0.05), Verdict::Inconclusive);
        assert_eq!(judge(&c, 0.001, 0.05, f64::NAN), Verdict::Inconclusive);
        assert_eq!(judge(&c, 0.001, 0.05, -0.5), Verdict::Inconclusive);
        assert_eq!(judge(&c, 0.001, 0.05, f64::INFINITY), Verdict::Inconclusive);
        assert_eq!(judge(&c, 0.001, 0.0, 0.05), Verdict::Inconclusive);
        assert_eq!(judge(&c, 0.001, f64::NAN, 0.05), Verdict::Inconclusive);
        assert_eq!(judge(&cmp(f64::NAN, f64::NAN, f64::NAN), 0.001, 0.05, 0.05), Verdict::Inconclusive);
    }

    #[test]
    fn stats_judge_regression_table() {
        use Verdict::*;
        let cases = [
            // (ratio, ci_low, ci_high, adjusted one-sided p, expected) at alpha 0.01, threshold 1 %,
            // margin 3 %; the same interval serves as strict and equivalence interval here.
            (1.05, 1.03, 1.07, 0.001, Regressed),
            (1.05, 0.99, 1.11, 0.001, Regressed), // the one-sided p decides, not a two-sided interval
            (1.05, 1.03, 1.07, 0.02, Inconclusive),
            (1.005, 1.001, 1.009, 0.001, Unchanged), // significant but below the minimum effect
            (0.95, 0.93, 0.97, 0.99, Improved),
            (0.95, 0.90, 1.01, 0.99, Inconclusive),
            (1.00, 0.98, 1.02, 0.5, Unchanged),
            (1.00, 0.96, 1.04, 0.5, Inconclusive),
        ];
        for (ratio, lo, hi, p, want) in cases {
            let c = cmp(ratio, lo, hi);
            assert_eq!(judge_regression(&c, &c, p, 0.01, 0.01, 0.03), want, "ratio {ratio} [{lo}, {hi}] p {p}");
        }
        let c = cmp(1.5, 1.4, 1.6);
        assert_eq!(judge_regression(&c, &c, 0.001, 0.01, f64::NAN, 0.03), Inconclusive);
        assert_eq!(judge_regression(&c, &c, f64::NAN, 0.01, 0.01, 0.03), Inconclusive);
        assert_eq!(judge_regression(&c, &c, 0.001, 0.0, 0.01, 0.03), Inconclusive);
    }

    #[test]
    fn stats_verdict_names() {
        for (v, name) in [
            (Verdict::Regressed, "regressed"),
            (Verdict::Improved, "improved"),
            (Verdict::Unchanged, "unchanged"),
            (Verdict::Inconclusive, "inconclusive"),
        ] {
            assert_eq!(v.as_str(), name);
            assert_eq!(v.to_string(), name);
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Verdict>(&format!("\"{name}\"")).unwrap(), v);
        }
    }
}
