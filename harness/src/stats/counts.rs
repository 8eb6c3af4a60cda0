//! Verdicts on nearly deterministic measurements: instruction counts under callgrind.
//!
//! # Design, and why
//! Instruction counts are judged by **the time gate's model**: per checkpoint, one value per run
//! (mean instructions per call; the median call is reported beside it), a rank test of the two
//! arms' runs on the log scale, one-sided for regressions, with the family's `alpha` and
//! [`Correction`] across the invocation's tested checkpoints, the Hodges–Lehmann interval at the
//! family's level, and "unchanged" as an equivalence claim (the interval at `1 - 2 alpha` inside
//! `±min_effect`): [`super::judge_regression`]. Arms measured in the same invocation (a paired
//! re-run, `compare`) use [`super::compare_paired_rank`]; a stored baseline against today's runs
//! uses [`super::compare_runs_rank`] with no session variance (counts do not depend on the
//! machine's speed, so there is no session offset to allow for).
//!
//! **The deterministic floor.** Most checkpoints execute exactly the same instructions in every
//! run of the same build (15 of 19 bundled checkpoints, 2026-12): both arms then have zero
//! spread and no rank test is needed or possible (the ranks of two constant arms carry one bit).
//! When *both* arms hold at least [`MIN_EXACT_RUNS`] runs and each arm's runs are identical, the
//! change is known exactly: equal counts are **unchanged**, a change of at least `min_effect`
//! (relative, default 0.25 %) is **regressed** or **improved**, and a real change smaller than
//! that is **unchanged** (inside the band, as the time gate treats a significant change smaller
//! than its threshold). These comparisons are measurements, not tests: they spend none of
//! `alpha` and do not join the correction's family.
//!
//! **False alarms.** For a checkpoint whose counts vary between runs (std's random hash seed,
//! address-dependent paths), runs of one build are exchangeable, so the rank test's one-sided
//! level holds exactly and the correction bounds the probability of *any* false "regressed"
//! among the invocation's varying checkpoints at `alpha` (0.01 by default); the unit tests
//! measure it on synthetic A/A data. For a deterministic checkpoint an unchanged build is never
//! flagged. The one gap: a checkpoint that varies in fewer than about one run in `N` can show
//! zero spread in both arms at two different values; the floor then reports the difference if it
//! reaches `min_effect`. Rare-path variation that large has not been seen in the bundled
//! scenarios (the varying ones vary in every run).
//!
//! **How many runs.** A rank test of 3 runs against 3 cannot reach `alpha = 0.01` (its smallest
//! one-sided p is 0.05), so a varying checkpoint measured 3 times per arm is at best unchanged or
//! inconclusive; 8 runs per arm reach p = 0.0005 when the arms separate completely. The caller
//! measures 3 runs per arm and extends a scenario to more only when one of its checkpoints varies
//! (`instructions.max_runs`): deterministic scenarios stay cheap, varying ones get a real test.

use super::{Comparison, Correction, Method, Verdict};

/// Fewest runs per arm for the deterministic floor: zero spread must be observed, not assumed.
pub const MIN_EXACT_RUNS: usize = 2;

/// How a count comparison was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountMethod {
    /// Both arms had zero spread: the change is exact (the deterministic floor).
    Exact,
    /// A rank test of the runs ([`Method::SignedRank`] / [`Method::RankSum`]), as time's.
    Rank(Method),
}

/// One comparison of per-run values (e.g. mean instructions per call) and its verdict.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CountComparison {
    /// Estimated relative change, `ratio - 1` (`> 0`: more instructions): the exact change for
    /// [`CountMethod::Exact`], else the Hodges–Lehmann estimate.
    pub change: f64,
    /// Lower end of the interval of `change` (at the family's per-test level); `== change` when exact.
    pub ci_low: f64,
    /// Upper end of the interval of `change`.
    pub ci_high: f64,
    /// Largest relative distance of a run from its arm's median, over both arms (>= 0): what
    /// "the counts vary" means.
    pub noise: f64,
    /// One-sided p-value of "more instructions", after the family's correction; `None` when exact.
    pub p_adjusted: Option<f64>,
    /// The relative effect a change must reach to be regressed or improved (>= `min_effect`).
    pub threshold: f64,
    /// Runs of the baseline arm.
    pub n_baseline: usize,
    /// Runs of the current arm.
    pub n_current: usize,
    /// How it was decided.
    pub method: CountMethod,
    /// The decision.
    pub verdict: Verdict,
}

/// The rules of one family of count comparisons: the gate's level and correction and the
/// smallest relative change that counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CountRule {
    /// Family-wise false-alarm rate (the gate's `alpha`), in `(0, 0.5)`.
    pub alpha: f64,
    /// Correction across the family's tested (varying) checkpoints.
    pub correction: Correction,
    /// Smallest relative change that is a regression (`instructions.min_effect`), `>= 0`.
    pub min_effect: f64,
}

/// One comparison of a family: the baseline arm's per-run values, the current arm's, and
/// whether the arms were measured here as a pair (run `i` of each in the same round: the paired
/// rank test) or not (a stored baseline: the two-sample test).
pub type CountInput<'a> = (&'a [f64], &'a [f64], bool);

/// Relative spread of `xs` around its median: the largest `|x / median - 1|`.
fn spread(xs: &[f64]) -> Option<f64> {
    let m = super::median(xs)?;
    (m > 0.0).then(|| xs.iter().map(|x| (x / m - 1.0).abs()).fold(0.0, f64::max))
}

/// Whether every value is usable (finite, > 0) and there is at least one.
fn usable(xs: &[f64]) -> bool {
    !xs.is_empty() && xs.iter().all(|x| x.is_finite() && *x > 0.0)
}

/// The exact verdict of two zero-spread arms (see the module docs).
fn exact(base: f64, new: f64, min_effect: f64) -> Verdict {
    let change = new / base - 1.0;
    if change >= min_effect && change > 0.0 {
        Verdict::Regressed
    } else if change <= -min_effect && change < 0.0 {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    }
}

/// Judges a family of comparisons ([`CountInput`] per checkpoint) under `rule`.
///
/// Entries with an empty arm, a NaN or a non-positive value give `None`. Entries whose arms both
/// have zero spread (and at least [`MIN_EXACT_RUNS`] runs) are decided exactly; the others form
/// the family: each is compared by the rank test, its one-sided "more instructions" p-value
/// adjusted across the family, its strict interval computed at `1 - 2 alpha / m` and its
/// equivalence interval at `1 - 2 alpha`, and judged by [`super::judge_regression`] with the
/// threshold `min_effect` raised to what the test can resolve (as the time gate does). A paired
/// input with arms of different lengths falls back to the two-sample test.
///
/// Time: `O(sum n^2)` for the Hodges–Lehmann estimates.
pub fn judge_counts(family: &[CountInput<'_>], rule: &CountRule) -> Vec<Option<CountComparison>> {
    let mut out: Vec<Option<CountComparison>> = vec![None; family.len()];
    let mut tested: Vec<usize> = Vec::new();
    for (i, &(b, c, _)) in family.iter().enumerate() {
        if !(usable(b) && usable(c)) {
            continue;
        }
        let (Some(nb), Some(nc)) = (spread(b), spread(c)) else { continue };
        let noise = nb.max(nc);
        if nb == 0.0 && nc == 0.0 && b.len() >= MIN_EXACT_RUNS && c.len() >= MIN_EXACT_RUNS {
            let change = c[0] / b[0] - 1.0;
            out[i] = Some(CountComparison {
                change,
                ci_low: change,
                ci_high: change,
                noise,
                p_adjusted: None,
                threshold: rule.min_effect,
                n_baseline: b.len(),
                n_current: c.len(),
                method: CountMethod::Exact,
                verdict: exact(b[0], c[0], rule.min_effect),
            });
        } else {
            tested.push(i);
        }
    }
    let m = tested.len();
    if m == 0 {
        return out;
    }
    let per_test = rule.alpha / m as f64;
    let compare = |i: usize, confidence: f64| -> Option<Comparison> {
        let (b, c, paired) = family[i];
        let r = if paired && b.len() == c.len() {
            super::compare_paired_rank(b, c, None, confidence)
        } else {
            super::compare_runs_rank(b, c, confidence, 0.0)
        };
        r.ok()
    };
    let strict: Vec<Option<Comparison>> = tested.iter().map(|&i| compare(i, 1.0 - 2.0 * per_test)).collect();
    let p: Vec<f64> = strict.iter().map(|c| c.map_or(1.0, |c| c.p_slower)).collect();
    let adjusted = rule.correction.adjust(&p);
    let z = statrs::distribution::Normal::new(0.0, 1.0)
        .map_or(f64::NAN, |n| statrs::distribution::ContinuousCDF::inverse_cdf(&n, 1.0 - per_test));
    for (k, &i) in tested.iter().enumerate() {
        let (b, c, _) = family[i];
        let noise = spread(b).unwrap_or(0.0).max(spread(c).unwrap_or(0.0));
        let Some(s) = strict[k] else {
            continue;
        };
        let equivalence = compare(i, 1.0 - 2.0 * rule.alpha);
        // The smallest effect this test can call significant at this level, from its own spread.
        let floor = (z * s.log_std_err).exp_m1();
        let threshold = if floor.is_finite() { rule.min_effect.max(floor) } else { rule.min_effect };
        let verdict = match equivalence {
            Some(e) => super::judge_regression(&s, &e, adjusted[k], rule.alpha, threshold, rule.min_effect),
            None => Verdict::Inconclusive,
        };
        out[i] = Some(CountComparison {
            change: s.ratio - 1.0,
            ci_low: s.ci_low - 1.0,
            ci_high: s.ci_high - 1.0,
            noise,
            p_adjusted: Some(adjusted[k]),
            threshold,
            n_baseline: b.len(),
            n_current: c.len(),
            method: CountMethod::Rank(s.method),
            verdict,
        });
    }
    out
}

/// Judges one comparison on its own (a family of one): see [`judge_counts`].
pub fn compare_counts(base: &[f64], new: &[f64], paired: bool, rule: &CountRule) -> Option<CountComparison> {
    judge_counts(&[(base, new, paired)], rule).pop().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    const RULE: CountRule = CountRule { alpha: 0.01, correction: Correction::Holm, min_effect: 0.0025 };

    /// `n` runs around `level` with multiplicative noise of relative sd `cv`.
    fn noisy(rng: &mut SplitMix64, n: usize, level: f64, cv: f64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let g = rng.normal();
                (level * (cv * g).exp() * 1000.0).round() / 1000.0
            })
            .collect()
    }

    #[test]
    fn exact_equal_is_unchanged() {
        for paired in [false, true] {
            let c = compare_counts(&[1000.0; 3], &[1000.0; 3], paired, &RULE).unwrap();
            assert_eq!((c.change, c.noise, c.verdict, c.method), (0.0, 0.0, Verdict::Unchanged, CountMethod::Exact));
            assert_eq!(c.p_adjusted, None, "the floor is not a test");
        }
    }

    #[test]
    fn exact_half_percent_is_regressed_and_the_floor_is_min_effect() {
        let half = compare_counts(&[1000.0; 3], &[1005.0; 3], false, &RULE).unwrap();
        assert_eq!(half.verdict, Verdict::Regressed);
        assert!((half.change - 0.005).abs() < 1e-12);
        assert_eq!(compare_counts(&[1000.0; 3], &[990.0; 3], false, &RULE).unwrap().verdict, Verdict::Improved);
        // Real but below the 0.25 % that matters: unchanged, as inside the time gate's band.
        assert_eq!(compare_counts(&[1000.0; 3], &[1002.0; 3], false, &RULE).unwrap().verdict, Verdict::Unchanged);
        assert_eq!(compare_counts(&[1000.0; 3], &[1002.6; 3], false, &RULE).unwrap().verdict, Verdict::Regressed);
        let zero = CountRule { min_effect: 0.0, ..RULE };
        assert_eq!(compare_counts(&[1000.0; 2], &[1000.001; 2], false, &zero).unwrap().verdict, Verdict::Regressed);
        // One run per arm shows no spread it could have shown: not the floor, and no test either.
        let one = compare_counts(&[1000.0], &[1005.0], false, &RULE);
        assert!(one.is_none_or(|c| c.verdict != Verdict::Regressed), "{one:?}");
    }

    #[test]
    fn noisy_a_a_false_alarm_rate_is_within_alpha() {
        // 2,000 A/A comparisons of 8 runs per arm with 0.3 % noise, each its own family of one at
        // alpha = 0.01: the false "regressed" rate must stay within alpha (binomial sd 0.22 %).
        let mut rng = SplitMix64::new(9);
        for paired in [false, true] {
            let mut regressed = 0;
            let trials = 2000;
            for _ in 0..trials {
                let b = noisy(&mut rng, 8, 1000.0, 0.003);
                let c = noisy(&mut rng, 8, 1000.0, 0.003);
                if compare_counts(&b, &c, paired, &RULE).unwrap().verdict == Verdict::Regressed {
                    regressed += 1;
                }
            }
            let rate = regressed as f64 / trials as f64;
            assert!(rate <= 0.015, "paired={}: {regressed} of {trials} A/A flagged", paired);
        }
        // Three runs per arm cannot reach alpha = 0.01 at all: never regressed.
        for _ in 0..500 {
            let b = noisy(&mut rng, 3, 1000.0, 0.003);
            let c = noisy(&mut rng, 3, 1000.0, 0.003);
            assert_ne!(compare_counts(&b, &c, false, &RULE).unwrap().verdict, Verdict::Regressed);
        }
    }

    #[test]
    fn noisy_three_percent_is_regressed_with_eight_runs() {
        let mut rng = SplitMix64::new(3);
        for paired in [false, true] {
            for trial in 0..200 {
                let b = noisy(&mut rng, 8, 1000.0, 0.005);
                let c = noisy(&mut rng, 8, 1030.0, 0.005);
                let r = compare_counts(&b, &c, paired, &RULE).unwrap();
                assert_eq!(r.verdict, Verdict::Regressed, "paired={} trial {trial}: {r:?}", paired);
                assert!(matches!(r.method, CountMethod::Rank(_)));
                assert!(r.ci_low > 0.0 && r.change > 0.02 && r.change < 0.04, "{r:?}");
            }
        }
        // The same change with 3 runs per arm: the test cannot reach alpha; never a false verdict.
        let b = noisy(&mut rng, 3, 1000.0, 0.005);
        let c = noisy(&mut rng, 3, 1030.0, 0.005);
        assert_eq!(compare_counts(&b, &c, false, &RULE).unwrap().verdict, Verdict::Inconclusive);
    }

    #[test]
    fn noisy_a_a_with_small_noise_is_unchanged() {
        // 0.01 % noise (std's hash seed), 8 runs: the equivalence interval is well inside 0.25 %.
        let mut rng = SplitMix64::new(5);
        let b = noisy(&mut rng, 8, 100_000.0, 0.0001);
        let c = noisy(&mut rng, 8, 100_000.0, 0.0001);
        assert_eq!(compare_counts(&b, &c, false, &RULE).unwrap().verdict, Verdict::Unchanged);
    }

    #[test]
    fn only_varying_checkpoints_form_the_family() {
        let exact_b = [500.0; 8];
        let exact_c = [510.0; 8];
        let mut rng = SplitMix64::new(11);
        let b = noisy(&mut rng, 8, 1000.0, 0.005);
        let c = noisy(&mut rng, 8, 1000.0, 0.005);
        let r = judge_counts(&[(&exact_b, &exact_c, false), (&b, &c, false), (&[], &[1.0], false)], &RULE);
        assert_eq!(r[0].unwrap().method, CountMethod::Exact);
        assert_eq!(r[0].unwrap().verdict, Verdict::Regressed);
        assert!(r[1].unwrap().p_adjusted.is_some());
        assert!(r[2].is_none());
    }

    #[test]
    fn degenerate_inputs() {
        assert!(compare_counts(&[], &[1.0], false, &RULE).is_none());
        assert!(compare_counts(&[0.0], &[1.0], false, &RULE).is_none());
        assert!(compare_counts(&[f64::NAN], &[1.0], false, &RULE).is_none());
    }
}
