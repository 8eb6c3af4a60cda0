//! Whole-process modes and variance sources of a paired scenario ([`crate::model::ModesReport`]),
//! reported next to the verdicts, and the per-round process states ([`process_states`]) that let
//! a paired test compare only rounds whose two runs shared a state.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{CheckpointModes, ModeCounts, ModesReport, RunResult, SharedMode, VarianceShare};
use crate::stats::{self, Metric};

/// A variance part this large (fraction of the total) is called dominant in the advice.
const DOMINANT: f64 = 0.5;

/// Standard normal quantile of 0.9: `ln(p90 / p50) / Z90` estimates a run's log-scale spread.
const Z90: f64 = 1.281_551_565_545_155;

/// Per round: whether its (A, B) runs were in the slow mode (`None`: the round lacks the value).
type RoundModes = Vec<Option<(bool, bool)>>;

/// One round's log p50 of a checkpoint on both arms, and the sampling variance of each.
struct Pair {
    a: f64,
    b: f64,
    a_within: f64,
    b_within: f64,
}

/// The log p50 of `cp` in run `r` and its sampling variance as a median of the run's calls
/// (spread from p90/p50, robust to the tail beyond).
fn log_p50(r: &RunResult, cp: &str) -> Option<(f64, f64)> {
    let s = r.checkpoints.get(cp)?.summary?;
    let p50 = s.get(Metric::P50);
    let p90 = s.get(Metric::P90);
    if !(p50 > 0.0 && p90 >= p50 && s.count > 0) {
        return None;
    }
    let sd = (p90 / p50).ln() / Z90;
    let within = stats::median_sampling_var(s.count, sd * stats::IQR_TO_SD);
    Some((p50.ln(), within))
}

/// Modes and variance parts of a paired scenario: `a[i]` and `b[i]` are round `i`'s runs.
/// `None` with fewer than 3 rounds.
pub(crate) fn analyse(a: &[RunResult], b: &[RunResult]) -> Option<ModesReport> {
    if a.len() < 3 || a.len() != b.len() {
        return None;
    }
    let names: BTreeSet<&String> = a.iter().chain(b).flat_map(|r| r.checkpoints.keys()).collect();
    let mut report = ModesReport::default();
    // Slow-mode membership per checkpoint with modes, over the rounds every such checkpoint has.
    let mut memberships: Vec<RoundModes> = Vec::new();
    for cp in names {
        let rounds = round_pairs(a, b, cp);
        let pairs: Vec<&Pair> = rounds.iter().flatten().collect();
        if pairs.len() < 3 {
            continue;
        }
        let col = |f: fn(&Pair) -> f64| pairs.iter().map(|p| f(p)).collect::<Vec<f64>>();
        let (av, bv, aw, bw) = (col(|p| p.a), col(|p| p.b), col(|p| p.a_within), col(|p| p.b_within));
        let variance = stats::decompose_variance(&av, &bv, &aw, &bw).ok().map(|v| VarianceShare {
            round: v.round_fraction,
            process: v.process_fraction,
            within: v.within_fraction,
            process_sd: v.process_sd(),
            clamped: v.clamped,
        });
        let modes = round_modes(a, b, cp).map(|(split, by_round)| {
            let n = av.len();
            let (a_slow, b_slow) = (&split.slow[..n], &split.slow[n..]);
            let count = |v: &[bool]| v.iter().filter(|&&s| s).count();
            let same: Vec<f64> = (0..n).filter(|&i| a_slow[i] == b_slow[i]).map(|i| bv[i] - av[i]).collect();
            let same_mode_change = stats::signed_rank_shift(&same, 0.95)
                .ok()
                .filter(|_| same.len() >= 3)
                .map(|s| [s.estimate.exp(), s.low.exp(), s.high.exp()]);
            let frequency_p = stats::fisher_exact(count(a_slow) as u64, n as u64, count(b_slow) as u64, n as u64)
                .map_or(1.0, |f| f.two_sided);
            memberships.push(by_round);
            ModeCounts {
                slow_ratio: split.ratio(),
                a_slow: count(a_slow),
                a_runs: n,
                b_slow: count(b_slow),
                b_runs: n,
                frequency_p,
                same_mode_rounds: same.len(),
                same_mode_change,
            }
        });
        report.checkpoints.push(CheckpointModes { checkpoint: cp.clone(), modes, variance });
    }
    if let Some(s) = shared(&memberships.iter().collect::<Vec<_>>(), a.len()) {
        report.shared = Some(SharedMode {
            mean_phi: s.mean_phi,
            checkpoints: memberships.len(),
            scenario_wide: s.is_scenario_wide(),
        });
    }
    report.advice = advice(&report);
    Some(report)
}

/// Per checkpoint of a paired scenario with whole-process modes: per round (aligned with `a` and
/// `b`), whether its two runs were in the same state (both slow or both fast). Where the slow
/// state is scenario-wide (mean phi at least [`stats::SCENARIO_WIDE_PHI`] over two or more
/// checkpoints with modes), the state is what the scenario's *other* checkpoints with modes see by
/// majority (`false` when they are split evenly or lack the round); otherwise a checkpoint whose
/// own runs split into modes (e.g. a per-process hash seed that only it feels) uses its own
/// membership. Checkpoints without either get no entry.
///
/// Why the others first: a regression of the tested checkpoint moves its own values, not theirs,
/// so it cannot change which of its rounds are kept. Its own modes are the fallback: a shift much
/// smaller than the gap between modes (a mode is at least [`stats::min_separation`] apart) rarely
/// moves a run across, and the all-rounds tests still see a shift that does. Why both are valid
/// under "no change": the states come from both arms' runs pooled, so swapping the runs of a round
/// swaps their states and keeps the round's same-state flag: the flags do not depend on the signs
/// a signed-rank test permutes.
pub(crate) fn process_states(a: &[RunResult], b: &[RunResult]) -> BTreeMap<String, Vec<bool>> {
    if a.len() < 3 || a.len() != b.len() {
        return BTreeMap::new();
    }
    let names: BTreeSet<&String> = a.iter().chain(b).flat_map(|r| r.checkpoints.keys()).collect();
    let memberships: Vec<(&String, RoundModes)> =
        names.iter().filter_map(|&cp| Some((cp, round_modes(a, b, cp)?.1))).collect();
    let by_checkpoint: Vec<&RoundModes> = memberships.iter().map(|(_, m)| m).collect();
    if !shared(&by_checkpoint, a.len()).is_some_and(|s| s.is_scenario_wide()) {
        let same = |m: &RoundModes| m.iter().map(|r| r.is_some_and(|(x, y)| x == y)).collect();
        return memberships.iter().map(|(cp, m)| ((*cp).clone(), same(m))).collect();
    }
    // Majority state of one arm's run in round `i` among the other checkpoints: `None` on a tie.
    let vote = |cp: &str, i: usize, arm: fn((bool, bool)) -> bool| -> Option<bool> {
        let (mut slow, mut fast) = (0, 0);
        for (_, m) in memberships.iter().filter(|(name, _)| name.as_str() != cp) {
            match m[i].map(arm) {
                Some(true) => slow += 1,
                Some(false) => fast += 1,
                None => {}
            }
        }
        (slow != fast).then_some(slow > fast)
    };
    names
        .iter()
        .map(|&cp| {
            let same = (0..a.len())
                .map(|i| match (vote(cp, i, |p| p.0), vote(cp, i, |p| p.1)) {
                    (Some(x), Some(y)) => x == y,
                    _ => false,
                })
                .collect();
            (cp.clone(), same)
        })
        .collect()
}

/// How strongly the slow-mode memberships of a scenario's checkpoints (by round, `rounds` long)
/// agree, over the runs (both arms) of the rounds every one of them has; `None` with fewer than
/// two checkpoints or too few such runs.
fn shared(memberships: &[&RoundModes], rounds: usize) -> Option<stats::SharedState> {
    if memberships.len() < 2 {
        return None;
    }
    let common: Vec<usize> = (0..rounds).filter(|&i| memberships.iter().all(|m| m[i].is_some())).collect();
    let flat: Vec<Vec<bool>> = memberships
        .iter()
        .map(|m| common.iter().flat_map(|&i| m[i].map_or([false, false], |(x, y)| [x, y])).collect())
        .collect();
    stats::shared_state(&flat).ok()
}

/// One checkpoint's log p50 pairs by round (`None` where a run lacks it), and, when its pooled
/// per-run values split into two modes, the split and each round's (A, B) slow-mode membership.
fn round_modes(a: &[RunResult], b: &[RunResult], cp: &str) -> Option<(stats::ModeSplit, RoundModes)> {
    let rounds = round_pairs(a, b, cp);
    let pairs: Vec<&Pair> = rounds.iter().flatten().collect();
    if pairs.len() < 3 {
        return None;
    }
    let pooled: Vec<f64> = pairs.iter().map(|p| p.a).chain(pairs.iter().map(|p| p.b)).collect();
    let split = stats::detect_modes(&pooled).ok().flatten()?;
    let n = pairs.len();
    let mut it = split.slow[..n].iter().zip(&split.slow[n..]);
    let by_round = rounds.iter().map(|r| r.as_ref().and_then(|_| it.next().map(|(&x, &y)| (x, y)))).collect();
    Some((split, by_round))
}

/// Per round, the checkpoint's [`Pair`] (`None` where either run lacks it).
fn round_pairs(a: &[RunResult], b: &[RunResult], cp: &str) -> Vec<Option<Pair>> {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let (av, aw) = log_p50(x, cp)?;
            let (bv, bw) = log_p50(y, cp)?;
            Some(Pair { a: av, b: bv, a_within: aw, b_within: bw })
        })
        .collect()
}

/// What stands out, in words.
fn advice(r: &ModesReport) -> Vec<String> {
    let mut out = Vec::new();
    let process: Vec<String> = r
        .checkpoints
        .iter()
        .filter_map(|c| {
            let v = c.variance.as_ref()?;
            (v.process >= DOMINANT)
                .then(|| format!("{} ({:.0} %, sd {:.1} %)", c.checkpoint, v.process * 100.0, v.process_sd * 100.0))
        })
        .collect();
    if !process.is_empty() {
        out.push(format!(
            "between-process variance dominates at {}: whole processes differ (per-process random \
             seeds such as std's HashMap RandomState, heap and page placement, code layout); more, \
             shorter runs average it, longer runs do not; fix the seed in the scenario if that \
             state is not what you mean to measure",
            process.join(", ")
        ));
    }
    if let Some(s) = &r.shared {
        if s.scenario_wide {
            out.push(format!(
                "the slow mode is shared by {} checkpoints (phi {:.2}): a whole-process state (the \
                 machine, placement, a neighbour), not one code path",
                s.checkpoints,
                s.mean_phi.unwrap_or(f64::NAN)
            ));
        }
    }
    for c in &r.checkpoints {
        if let Some(m) = &c.modes {
            if m.frequency_p < 0.01 {
                out.push(format!(
                    "{}: the change altered how often processes are slow ({}/{} -> {}/{}, Fisher p {:.2e})",
                    c.checkpoint, m.a_slow, m.a_runs, m.b_slow, m.b_runs, m.frequency_p
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    /// Rounds of one checkpoint `cp` whose processes are slow (+30 %) with probability `p_slow`
    /// (arm B: `p_slow_b`), with 1 % per-process noise and a 2 % round effect.
    fn rounds(n: usize, p_slow: f64, p_slow_b: f64, seed: u64) -> (Vec<RunResult>, Vec<RunResult>) {
        let mut rng = SplitMix64::new(seed);
        let side = |p: f64, round: f64, rng: &mut SplitMix64| {
            let slow = if rng.uniform() < p { 1.3 } else { 1.0 };
            RunResult::uniform(&[("cp", 100.0 * slow * round * (1.0 + 0.01 * rng.normal()))])
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..n {
            let round = 1.0 + 0.02 * rng.normal();
            a.push(side(p_slow, round, &mut rng));
            b.push(side(p_slow_b, round, &mut rng));
        }
        (a, b)
    }

    #[test]
    fn finds_the_modes_and_counts_each_arm() {
        let (a, b) = rounds(100, 0.3, 0.3, 1);
        let r = analyse(&a, &b).unwrap();
        let m = r.checkpoints[0].modes.as_ref().expect("a 70/30 mixture 30 % apart");
        assert!((m.slow_ratio - 1.3).abs() < 0.03, "{m:?}");
        assert_eq!(m.a_runs, 100);
        assert!((15..=45).contains(&m.a_slow) && (15..=45).contains(&m.b_slow), "{m:?}");
        assert!(m.frequency_p > 0.001, "same frequency: {m:?}");
        // Same code: no change within a mode.
        let [est, lo, hi] = m.same_mode_change.unwrap();
        assert!(lo < 1.0 && 1.0 < hi && (est - 1.0).abs() < 0.01, "{m:?}");
        // The modes are process variance, and it dominates.
        let v = r.checkpoints[0].variance.as_ref().unwrap();
        assert!(v.process > 0.8, "{v:?}");
        assert!(r.advice.iter().any(|s| s.contains("between-process variance dominates")), "{:?}", r.advice);
    }

    #[test]
    fn a_change_in_mode_frequency_is_flagged() {
        let (a, b) = rounds(200, 0.1, 0.6, 2);
        let r = analyse(&a, &b).unwrap();
        let m = r.checkpoints[0].modes.as_ref().unwrap();
        assert!(m.b_slow > m.a_slow + 50, "{m:?}");
        assert!(m.frequency_p < 1e-6, "{m:?}");
        assert!(r.advice.iter().any(|s| s.contains("how often processes are slow")), "{:?}", r.advice);
    }

    #[test]
    fn unimodal_runs_have_no_modes_and_too_few_rounds_no_report() {
        let (a, b) = rounds(100, 0.0, 0.0, 3);
        let r = analyse(&a, &b).unwrap();
        assert!(r.checkpoints[0].modes.is_none());
        assert!(r.shared.is_none());
        assert!(analyse(&a[..2], &b[..2]).is_none());
    }
}
