//! Monte Carlo properties of the whole pipeline with a fixed-seed generator: false-alarm rates,
//! power, interval coverage and family-wise control. Deterministic: the same seed gives the same
//! numbers on every machine, so a failure can be replayed exactly; the tolerances are a few Monte
//! Carlo standard errors around the theoretical rates.

use super::*;

/// Draws for the simulations, on the harness's one generator.
trait Draw {
    fn lognormal(&mut self, n: usize, median: f64, sigma: f64) -> Vec<f64>;
}

impl Draw for SplitMix64 {
    /// `n` log-normal run-level values around `median` with log-scale spread `sigma`.
    fn lognormal(&mut self, n: usize, median: f64, sigma: f64) -> Vec<f64> {
        (0..n).map(|_| median * (sigma * self.normal()).exp()).collect()
    }
}

const ALPHA: f64 = 0.05;
const TRIALS: usize = 2000;

/// Monte Carlo standard error of a rate `p` estimated from `n` trials.
fn mc_se(p: f64, n: usize) -> f64 {
    (p * (1.0 - p) / n as f64).sqrt()
}

fn rate(hits: usize, n: usize) -> f64 {
    hits as f64 / n as f64
}

/// One test, no multiplicity: interval at `1 - ALPHA`, raw p.
fn verdict_single(base: &[f64], cur: &[f64], threshold: f64) -> (Verdict, Comparison) {
    let cmp = compare_runs(base, cur, 1.0 - ALPHA).unwrap();
    (judge(&cmp, cmp.p_value, ALPHA, threshold), cmp)
}

#[test]
fn stats_prop_generator_is_sane() {
    let mut rng = SplitMix64::new(1);
    let n = 20_000;
    let x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let mean = x.iter().sum::<f64>() / n as f64;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.04, "{mean} {var}");
}

#[test]
fn stats_prop_aa_false_alarms_are_controlled() {
    // A/A: both sides from the same log-normal (4% run-to-run spread), 8 runs each.
    let mut rng = SplitMix64::new(0x5EED_0001);
    let (mut significant, mut regressed_t0, mut regressed_gate) = (0, 0, 0);
    for _ in 0..TRIALS {
        let base = rng.lognormal(8, 250.0, 0.04);
        let cur = rng.lognormal(8, 250.0, 0.04);
        let (v0, cmp) = verdict_single(&base, &cur, 0.0);
        significant += usize::from(cmp.p_value < ALPHA);
        regressed_t0 += usize::from(v0 == Verdict::Regressed);
        let threshold = effective_threshold(0.05, noise_cv(&base).unwrap().max(noise_cv(&cur).unwrap()), 8, 8).unwrap();
        regressed_gate += usize::from(judge(&cmp, cmp.p_value, ALPHA, threshold) == Verdict::Regressed);
    }
    // The t-test on logs of log-normal data is exact: two-sided rejections at alpha, half of them
    // "regressed".
    let s = rate(significant, TRIALS);
    assert!((s - ALPHA).abs() < 3.0 * mc_se(ALPHA, TRIALS), "A/A significant rate {s}");
    let r = rate(regressed_t0, TRIALS);
    assert!(r < ALPHA / 2.0 + 3.0 * mc_se(ALPHA / 2.0, TRIALS), "A/A regressed rate {r}");
    // With the noise-derived threshold, an A/A comparison essentially never fails the gate.
    let g = rate(regressed_gate, TRIALS);
    eprintln!("A/A: significant {s}, regressed (t=0) {r}, gate failures {g}");
    assert!(g < 0.01, "A/A gate failure rate {g}");
}

#[test]
fn stats_prop_aa_with_disturbed_processes_stays_under_two_alpha() {
    // A rougher, non-normal model of this machine: 3% log-normal spread, and each process with
    // probability 0.2 lands in a "slow layout" 3-9% slower (the fixed per-process offsets seen in
    // machine-facts.md). Still A/A, so any "regressed" is a false alarm.
    let mut rng = SplitMix64::new(0x5EED_0002);
    let draw = |rng: &mut SplitMix64| -> Vec<f64> {
        (0..8)
            .map(|_| {
                let slow = if rng.uniform() < 0.2 { 1.03 + 0.06 * rng.uniform() } else { 1.0 };
                180.0 * slow * (0.03 * rng.normal()).exp()
            })
            .collect()
    };
    let mut regressed = 0;
    for _ in 0..TRIALS {
        let base = draw(&mut rng);
        let cur = draw(&mut rng);
        regressed += usize::from(verdict_single(&base, &cur, 0.0).0 == Verdict::Regressed);
    }
    let r = rate(regressed, TRIALS);
    eprintln!("disturbed A/A: regressed {r}");
    assert!(r < 2.0 * ALPHA + 3.0 * mc_se(2.0 * ALPHA, TRIALS), "disturbed A/A regressed rate {r}");
    assert!(r < ALPHA, "disturbed A/A regressed rate {r}");
}

#[test]
fn stats_prop_planted_regression_is_found() {
    // +20% with 2% noise, 8 runs a side, a 5% threshold: found essentially every time.
    let mut rng = SplitMix64::new(0x5EED_0003);
    let mut regressed = 0;
    for _ in 0..TRIALS {
        let base = rng.lognormal(8, 1000.0, 0.02);
        let cur = rng.lognormal(8, 1200.0, 0.02);
        regressed += usize::from(verdict_single(&base, &cur, 0.05).0 == Verdict::Regressed);
    }
    let r = rate(regressed, TRIALS);
    eprintln!("planted +20%: regressed {r}");
    assert!(r > 0.99, "planted +20% found in {r} of trials");
    // And a planted -20% is an improvement, not a regression.
    let mut improved = 0;
    for _ in 0..200 {
        let base = rng.lognormal(8, 1000.0, 0.02);
        let cur = rng.lognormal(8, 800.0, 0.02);
        improved += usize::from(verdict_single(&base, &cur, 0.05).0 == Verdict::Improved);
    }
    assert!(improved >= 198, "planted -20% improved in {improved}/200");
}

#[test]
fn stats_prop_welch_interval_covers_the_true_ratio() {
    let mut rng = SplitMix64::new(0x5EED_0004);
    for (conf, nb, nc, sb, sc) in [
        (0.95, 8, 8, 0.03, 0.03),
        (0.90, 5, 12, 0.02, 0.06), // unequal sizes and spreads: what Welch is for
        (0.99, 10, 4, 0.05, 0.01),
    ] {
        let true_ratio = 1.07;
        let mut covered = 0;
        for _ in 0..TRIALS {
            let base = rng.lognormal(nb, 100.0, sb);
            let cur = rng.lognormal(nc, 100.0 * true_ratio, sc);
            let c = compare_runs(&base, &cur, conf).unwrap();
            assert!(c.ci_low <= c.ratio && c.ratio <= c.ci_high);
            covered += usize::from(c.ci_low <= true_ratio && true_ratio <= c.ci_high);
        }
        let cov = rate(covered, TRIALS);
        eprintln!("Welch coverage {cov} at {conf} ({nb}/{nc})");
        // Welch's df is an approximation; allow 3 Monte Carlo SEs plus 0.5% for it.
        let tol = 3.0 * mc_se(conf, TRIALS) + 0.005;
        assert!((cov - conf).abs() < tol, "coverage {cov} for {conf} ({nb}/{nc})");
    }
}

#[test]
fn stats_prop_paired_interval_covers_and_pairing_cancels_drift() {
    // Rounds share a large drift (10% log spread: the machine's slow and fast spells); within a
    // round A and B differ only by 1% noise and a planted +3%.
    let mut rng = SplitMix64::new(0x5EED_0005);
    let true_ratio = 1.03;
    let (mut covered, mut paired_found, mut welch_found) = (0, 0, 0);
    for _ in 0..TRIALS {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            let drift = (0.10 * rng.normal()).exp();
            a.push(300.0 * drift * (0.01 * rng.normal()).exp());
            b.push(300.0 * true_ratio * drift * (0.01 * rng.normal()).exp());
        }
        let c = compare_paired(&a, &b, 0.95).unwrap();
        covered += usize::from(c.ci_low <= true_ratio && true_ratio <= c.ci_high);
        paired_found += usize::from(judge(&c, c.p_value, ALPHA, 0.02) == Verdict::Regressed);
        let w = compare_runs(&a, &b, 0.95).unwrap();
        welch_found += usize::from(judge(&w, w.p_value, ALPHA, 0.02) == Verdict::Regressed);
    }
    let cov = rate(covered, TRIALS);
    eprintln!("paired: coverage {cov}, paired found {paired_found}, welch found {welch_found}");
    assert!((cov - 0.95).abs() < 3.0 * mc_se(0.95, TRIALS), "paired coverage {cov}");
    assert!(rate(paired_found, TRIALS) > 0.95, "paired power {paired_found}");
    assert!(rate(welch_found, TRIALS) < 0.2, "unpaired power {welch_found}");
}

#[test]
fn stats_prop_paired_aa_false_alarms() {
    let mut rng = SplitMix64::new(0x5EED_0006);
    let (mut significant, mut rank_significant) = (0, 0);
    for _ in 0..TRIALS {
        let a = rng.lognormal(8, 50.0, 0.03);
        let b = rng.lognormal(8, 50.0, 0.03);
        let c = compare_paired(&a, &b, 0.95).unwrap();
        significant += usize::from(c.p_value < ALPHA);
        rank_significant += usize::from(c.rank_p_value.unwrap() < ALPHA);
    }
    let s = rate(significant, TRIALS);
    assert!((s - ALPHA).abs() < 3.0 * mc_se(ALPHA, TRIALS), "paired A/A rate {s}");
    // The exact signed-rank test with 8 pairs can only reach p = 0.039 or 0.055 near 0.05: it is
    // conservative, never liberal.
    let r = rate(rank_significant, TRIALS);
    eprintln!("paired A/A: t {s}, signed-rank {r}");
    assert!(r < ALPHA + 3.0 * mc_se(ALPHA, TRIALS), "signed-rank A/A rate {r}");
}

#[test]
fn stats_prop_power_at_the_min_detectable_effect() {
    // Plant exactly the MDE for 3% noise and 8/8 runs: the test should reject about 80% of the time.
    let cv: f64 = 0.03;
    let sigma = (1.0 + cv * cv).ln().sqrt();
    let mde = min_detectable_effect(cv, 8, 8, ALPHA, 0.8).unwrap();
    let mut rng = SplitMix64::new(0x5EED_0007);
    let mut rejected = 0;
    for _ in 0..TRIALS {
        let base = rng.lognormal(8, 400.0, sigma);
        let cur = rng.lognormal(8, 400.0 * (1.0 + mde), sigma);
        rejected += usize::from(compare_runs(&base, &cur, 0.95).unwrap().p_value < ALPHA);
    }
    let p = rate(rejected, TRIALS);
    eprintln!("power at MDE {mde}: {p}");
    // The t approximation to power is close: allow 3 Monte Carlo SEs below and a little above.
    assert!(p > 0.8 - 3.0 * mc_se(0.8, TRIALS) && p < 0.86, "power at MDE {p}");
}

#[test]
fn stats_prop_family_wise_false_alarms_are_controlled() {
    // One invocation = 20 unchanged (checkpoint, metric) tests. With Holm and Bonferroni intervals
    // the chance of *any* false regressed/improved verdict stays under alpha; without correction
    // it is about 1 - 0.95^20 = 64%.
    let mut rng = SplitMix64::new(0x5EED_0008);
    let (m, invocations) = (20, 1000);
    let (mut any_holm, mut any_raw) = (0, 0);
    for _ in 0..invocations {
        let data: Vec<(Vec<f64>, Vec<f64>)> =
            (0..m).map(|_| (rng.lognormal(8, 90.0, 0.04), rng.lognormal(8, 90.0, 0.04))).collect();
        let confidence = Correction::Holm.interval_confidence(ALPHA, m, 0).unwrap();
        let cmps: Vec<Comparison> = data.iter().map(|(b, c)| compare_runs(b, c, confidence).unwrap()).collect();
        let raw: Vec<f64> = cmps.iter().map(|c| c.p_value).collect();
        let adjusted = Correction::Holm.adjust(&raw);
        let changed = |v: Verdict| matches!(v, Verdict::Regressed | Verdict::Improved);
        any_holm += usize::from(cmps.iter().zip(&adjusted).any(|(c, &p)| changed(judge(c, p, ALPHA, 0.0))));
        any_raw += usize::from(data.iter().any(|(b, c)| changed(verdict_single(b, c, 0.0).0)));
    }
    let fwer = rate(any_holm, invocations);
    assert!(fwer < ALPHA + 3.0 * mc_se(ALPHA, invocations), "FWER with Holm {fwer}");
    let raw = rate(any_raw, invocations);
    eprintln!("FWER: Holm {fwer}, uncorrected {raw}");
    assert!(raw > 0.5, "uncorrected FWER {raw}");
}

#[test]
fn stats_prop_unchanged_needs_a_narrow_interval() {
    // A/A with few, noisy runs: the interval is wider than a 2% band, so the verdict must be
    // inconclusive, not unchanged. With many quiet runs it is unchanged.
    let mut rng = SplitMix64::new(0x5EED_0009);
    let mut unchanged_noisy = 0;
    let mut unchanged_quiet = 0;
    for _ in 0..500 {
        let (v, _) = verdict_single(&rng.lognormal(3, 10.0, 0.08), &rng.lognormal(3, 10.0, 0.08), 0.02);
        unchanged_noisy += usize::from(v == Verdict::Unchanged);
        let (v, _) = verdict_single(&rng.lognormal(30, 10.0, 0.01), &rng.lognormal(30, 10.0, 0.01), 0.02);
        unchanged_quiet += usize::from(v == Verdict::Unchanged);
    }
    eprintln!("unchanged: noisy {unchanged_noisy}/500, quiet {unchanged_quiet}/500");
    assert!(unchanged_noisy < 5, "noisy A/A called unchanged {unchanged_noisy}/500");
    assert!(unchanged_quiet > 490, "quiet A/A unchanged only {unchanged_quiet}/500");
}
