//! How an invocation judges: everything the judge needs from the configuration, resolved once.

use std::collections::BTreeMap;

use crate::config::{CheckpointOverride, Config};
use crate::stats::{self, Comparison, Correction, Metric, StatsError};

/// Which test compares a (checkpoint, metric): the one place that chooses between them, so the
/// p-value, the interval and the noise floor of a test always come from the same design.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestKind {
    /// Interleaved A/B rounds: signed-rank test and Hodges–Lehmann shift of per-round log ratios
    /// ([`stats::compare_paired_rank`]); `base[i]` and `cur[i]` are from the same round.
    Paired,
    /// Independent runs (a baseline against today's runs): rank-sum test and shift of the logs
    /// plus the session variance ([`stats::compare_runs_rank`]).
    Unpaired,
}

impl TestKind {
    /// Compares `cur` with `base` by this kind's test, the interval at `confidence`; `session_var`
    /// is added for unpaired data from two sessions (see [`Policy::session_var`]); `same_state`
    /// (paired only, per round) marks the rounds whose two runs shared a whole-process state.
    ///
    /// Both tests are rank-based (Hodges–Lehmann shift with Wilcoxon / Mann–Whitney): whole
    /// processes land in speed modes, and a mean would count every mode switch as noise.
    ///
    /// # Errors
    /// As [`stats::compare_paired_rank`] / [`stats::compare_runs_rank`].
    pub fn compare(
        self,
        base: &[f64],
        cur: &[f64],
        confidence: f64,
        session_var: f64,
        same_state: Option<&[bool]>,
    ) -> Result<Comparison, StatsError> {
        match self {
            TestKind::Paired => stats::compare_paired_rank(base, cur, same_state, confidence),
            TestKind::Unpaired => stats::compare_runs_rank(base, cur, confidence, session_var),
        }
    }
}

/// The judging rules of one invocation, built once from the [`Config`]: the family-wise level and
/// how it is spent over the looks, the correction, and per checkpoint the gated and report-only
/// metrics and the effects that matter.
///
/// **Two families.** The *gated* metrics (`gate.metrics`, p50 by default) form the family whose
/// false-alarm rate `alpha` bounds; they are tested one-sided for regressions, because only a
/// regression fails a build (improvements are reported, never gate). The *report-only* metrics
/// (`gate.report_metrics`: the tails, whose run-to-run spread cannot resolve a few percent in any
/// budget) are judged in a second family at the same level and a larger margin, shown, and never
/// gate nor stop the sampling.
///
/// **Looks.** Adaptive sampling looks after the planned numbers of rounds in `schedule` (doubling).
/// Look `k` spends `alpha * (n_k - n_(k-1)) / n_L` (linear in the information fraction: small
/// early looks catch only large effects, most of `alpha` stays for the full sample); the look known
/// to be the last (the schedule's end, or the budget cannot pay for another) spends whatever is
/// left. The looks' levels sum to `alpha`, so by the union bound the false-alarm rate over all
/// looks stays below `alpha` however the looks are correlated; a verdict, once reached, is frozen
/// (see [`super::Decisions`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// False-alarm rate over the whole invocation (`gate.alpha`), all looks together.
    pub alpha: f64,
    /// Multiple-comparison correction within a look (`gate.correction`).
    pub correction: Correction,
    /// Rounds after which the looks are planned (at least one entry).
    pub schedule: Vec<usize>,
    metrics: Vec<Metric>,
    report_metrics: Vec<Metric>,
    min_effect: f64,
    min_effect_paired: f64,
    report_min_effect: f64,
    unchanged_within: f64,
    session_cv: f64,
    /// `[checkpoint."scenario/checkpoint"]` overrides, keyed as in the file.
    overrides: BTreeMap<String, CheckpointOverride>,
}

/// One look of an experiment: how much of `alpha` it spends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    /// 0-based index among the looks taken.
    pub index: usize,
    /// The level this look spends (see [`Policy`]).
    pub alpha: f64,
    /// Whether it is the last (it spent the rest of `alpha`).
    pub last: bool,
}

impl Policy {
    /// The policy of `cfg` for an experiment that looks after the rounds in `schedule` (empty:
    /// one look).
    pub fn from_config(cfg: &Config, schedule: Vec<usize>) -> Policy {
        Policy {
            alpha: cfg.gate.alpha,
            correction: cfg.gate.correction,
            schedule: if schedule.is_empty() { vec![cfg.run.runs] } else { schedule },
            metrics: cfg.gate.metrics.clone(),
            report_metrics: cfg.gate.report_metrics.clone(),
            min_effect: cfg.gate.min_effect,
            min_effect_paired: cfg.gate.min_effect_paired,
            report_min_effect: cfg.gate.report_min_effect,
            unchanged_within: cfg.gate.unchanged_within,
            session_cv: cfg.gate.session_cv,
            overrides: cfg.checkpoints.clone(),
        }
    }

    /// Planned looks.
    pub fn looks(&self) -> usize {
        self.schedule.len()
    }

    /// The level look `index` spends: the growth of `alpha * n_index / n_L` since the previous look,
    /// or everything left when `last` (or at the schedule's end).
    pub fn look(&self, index: usize, last: bool) -> Look {
        let n_last = *self.schedule.last().unwrap_or(&1) as f64;
        let at = |k: usize| -> f64 {
            match self.schedule.get(k) {
                Some(&n) => self.alpha * (n as f64 / n_last).min(1.0),
                None => self.alpha,
            }
        };
        let spent = if index == 0 { 0.0 } else { at(index - 1) };
        let until = if last || index + 1 >= self.schedule.len() { self.alpha } else { at(index) };
        Look { index, alpha: (until - spent).max(0.0), last: last || index + 1 >= self.schedule.len() }
    }

    /// A single look spending all of `alpha` (commands that do not sample adaptively).
    pub fn single_look(&self) -> Look {
        Look { index: 0, alpha: self.alpha, last: true }
    }

    fn overrides(&self, scenario: &str, checkpoint: &str) -> Option<&CheckpointOverride> {
        self.overrides.get(&format!("{scenario}/{checkpoint}"))
    }

    /// Gated metrics of one checkpoint: its override, else `gate.metrics`.
    pub fn metrics(&self, scenario: &str, checkpoint: &str) -> &[Metric] {
        self.overrides(scenario, checkpoint).and_then(|o| o.metrics.as_deref()).unwrap_or(&self.metrics)
    }

    /// Report-only metrics of one checkpoint: `gate.report_metrics` less its gated ones.
    pub fn report_metrics(&self, scenario: &str, checkpoint: &str) -> Vec<Metric> {
        let gated = self.metrics(scenario, checkpoint);
        self.report_metrics.iter().copied().filter(|m| !gated.contains(m)).collect()
    }

    /// Minimum effect of a gated metric: the checkpoint's override, else `gate.min_effect` (or
    /// `gate.min_effect_paired` for a paired test, where interleaving cancels drift).
    pub fn min_effect(&self, scenario: &str, checkpoint: &str, kind: TestKind) -> f64 {
        let default = match kind {
            TestKind::Paired => self.min_effect_paired,
            TestKind::Unpaired => self.min_effect,
        };
        self.overrides(scenario, checkpoint).and_then(|o| o.min_effect).unwrap_or(default)
    }

    /// Margin of the report-only family (`gate.report_min_effect`), never below the gated one.
    pub fn report_min_effect(&self, scenario: &str, checkpoint: &str, kind: TestKind) -> f64 {
        self.report_min_effect.max(self.min_effect(scenario, checkpoint, kind))
    }

    /// Equivalence margin: "unchanged" claims every change is within it (`gate.unchanged_within`),
    /// never below the minimum effect.
    pub fn unchanged_within(&self, scenario: &str, checkpoint: &str, kind: TestKind) -> f64 {
        self.unchanged_within.max(self.min_effect(scenario, checkpoint, kind))
    }

    /// Variance (log scale) of a whole session's offset, added when runs from two sessions are
    /// compared (a committed baseline against today): from `gate.session_cv`.
    pub fn session_var(&self) -> f64 {
        let cv = self.session_cv;
        cv.mul_add(cv, 1.0).ln()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn policy_resolves_like_the_config() {
        let text = r#"
[gate]
alpha = 0.01
metrics = ["p50", "p99.9"]
report_metrics = ["p90", "p99.9"]
[[scenario]]
name = "codec"
bin = "codec"
[checkpoint."codec/crc32c"]
min_effect = 0.1
metrics = ["p99"]
"#;
        let cfg = Config::parse(text, Path::new("/w/funcscope.toml")).unwrap();
        let p = Policy::from_config(&cfg, vec![10, 20, 40]);
        assert_eq!((p.alpha, p.looks()), (0.01, 3));
        assert_eq!(p.metrics("codec", "crc32c"), [Metric::P99], "the checkpoint's override");
        assert_eq!(p.metrics("codec", "other"), [Metric::P50, Metric::P999], "gate.metrics");
        assert_eq!(p.report_metrics("codec", "other"), [Metric::P90], "gated ones are not reported twice");
        assert_eq!(p.min_effect("codec", "crc32c", TestKind::Unpaired), 0.1, "the override, both modes");
        assert_eq!(p.min_effect("codec", "crc32c", TestKind::Paired), 0.1);
        assert_eq!(p.min_effect("codec", "other", TestKind::Unpaired), cfg.gate.min_effect);
        assert_eq!(p.min_effect("codec", "other", TestKind::Paired), cfg.gate.min_effect_paired);
        assert_eq!(p.unchanged_within("codec", "crc32c", TestKind::Paired), 0.1, "never below the min effect");
        assert_eq!(Policy::from_config(&cfg, Vec::new()).schedule, [cfg.run.runs]);
    }

    #[test]
    fn looks_spend_alpha_linearly_and_the_last_spends_the_rest() {
        let text = "[gate]\nalpha = 0.01\n[[scenario]]\nname = \"c\"\nbin = \"c\"\n";
        let cfg = Config::parse(text, Path::new("/w/funcscope.toml")).unwrap();
        let p = Policy::from_config(&cfg, vec![10, 20, 40, 80]);
        let spent: Vec<f64> = (0..4).map(|k| p.look(k, false).alpha).collect();
        let want = [0.01 / 8.0, 0.01 / 8.0, 0.01 / 4.0, 0.01 / 2.0];
        for (g, w) in spent.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{spent:?}");
        }
        assert!((spent.iter().sum::<f64>() - 0.01).abs() < 1e-15, "the planned looks spend exactly alpha");
        assert!(p.look(3, false).last, "the schedule's end is the last look");
        // Cut short after the second look: it spends everything left.
        let cut = p.look(1, true);
        assert!(cut.last && (cut.alpha - (0.01 - 0.01 / 8.0)).abs() < 1e-15, "{cut:?}");
        assert_eq!(p.single_look().alpha, 0.01);
    }
}
