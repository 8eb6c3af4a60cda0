//! How an invocation judges: everything the judge needs from the configuration, resolved once.

use std::collections::BTreeMap;

use crate::config::{CheckpointOverride, Config};
use crate::stats::{self, Comparison, Correction, Metric, StatsError};

/// Which test compares a (checkpoint, metric): the one place that chooses between them, so the
/// p-value, the interval and the noise floor of a test always come from the same design.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestKind {
    /// Interleaved A/B rounds: one-sample t-test on per-round log ratios
    /// ([`stats::compare_paired`]); `base[i]` and `cur[i]` are from the same round.
    Paired,
    /// Independent runs (a baseline against today's runs): Welch's t-test on the logs
    /// ([`stats::compare_runs`]).
    Unpaired,
}

impl TestKind {
    /// Compares `cur` with `base` by this kind's test, the interval at `confidence`.
    ///
    /// # Errors
    /// As [`stats::compare_paired`] / [`stats::compare_runs`].
    pub fn compare(self, base: &[f64], cur: &[f64], confidence: f64) -> Result<Comparison, StatsError> {
        match self {
            TestKind::Paired => stats::compare_paired(base, cur, confidence),
            TestKind::Unpaired => stats::compare_runs(base, cur, confidence),
        }
    }

    /// Run-to-run noise the data shows now, as a per-side relative spread (what
    /// [`stats::effective_threshold_at`] takes): for paired data the spread of the per-round log
    /// ratios ([`stats::paired_as_two_sample_cv`]), else the larger robust CV of the two sides.
    pub fn live_noise(self, base: &[f64], cur: &[f64]) -> f64 {
        match self {
            TestKind::Paired => stats::paired_as_two_sample_cv(stats::log_ratio_sd(base, cur)),
            TestKind::Unpaired => stats::noise_cv(base).unwrap_or(0.0).max(stats::noise_cv(cur).unwrap_or(0.0)),
        }
    }
}

/// The judging rules of one invocation, built once from the [`Config`]: the family-wise level,
/// its correction, the planned looks, and per checkpoint the metrics and minimum effects.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// False-alarm rate over the whole invocation (`gate.alpha`).
    pub alpha: f64,
    /// Multiple-comparison correction (`gate.correction`).
    pub correction: Correction,
    /// Interim analyses planned (adaptive sampling), at least 1; each tests at `alpha / looks`.
    pub looks: usize,
    metrics: Vec<Metric>,
    min_effect: f64,
    min_effect_paired: f64,
    /// `[checkpoint."scenario/checkpoint"]` overrides, keyed as in the file.
    overrides: BTreeMap<String, CheckpointOverride>,
}

impl Policy {
    /// The policy of `cfg` for an experiment with `looks` planned looks (0 counts as 1).
    pub fn from_config(cfg: &Config, looks: usize) -> Policy {
        Policy {
            alpha: cfg.gate.alpha,
            correction: cfg.gate.correction,
            looks: looks.max(1),
            metrics: cfg.gate.metrics.clone(),
            min_effect: cfg.gate.min_effect,
            min_effect_paired: cfg.gate.min_effect_paired,
            overrides: cfg.checkpoints.clone(),
        }
    }

    /// The level each look tests at: alpha spent evenly over the planned looks (a Bonferroni
    /// bound over interim analyses, so stopping early cannot inflate the false-alarm rate).
    pub fn per_look_alpha(&self) -> f64 {
        self.alpha / self.looks as f64
    }

    fn overrides(&self, scenario: &str, checkpoint: &str) -> Option<&CheckpointOverride> {
        self.overrides.get(&format!("{scenario}/{checkpoint}"))
    }

    /// Metrics judged for one checkpoint: its override, else `gate.metrics`.
    pub fn metrics(&self, scenario: &str, checkpoint: &str) -> &[Metric] {
        self.overrides(scenario, checkpoint).and_then(|o| o.metrics.as_deref()).unwrap_or(&self.metrics)
    }

    /// Minimum effect for one checkpoint: its override, else `gate.min_effect` (or
    /// `gate.min_effect_paired` for a paired test, where interleaving cancels drift).
    pub fn min_effect(&self, scenario: &str, checkpoint: &str, kind: TestKind) -> f64 {
        let default = match kind {
            TestKind::Paired => self.min_effect_paired,
            TestKind::Unpaired => self.min_effect,
        };
        self.overrides(scenario, checkpoint).and_then(|o| o.min_effect).unwrap_or(default)
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
[[scenario]]
name = "codec"
bin = "codec"
[checkpoint."codec/crc32c"]
min_effect = 0.1
metrics = ["p99"]
"#;
        let cfg = Config::parse(text, Path::new("/w/funcscope.toml")).unwrap();
        let p = Policy::from_config(&cfg, 4);
        assert_eq!((p.alpha, p.looks, p.per_look_alpha()), (0.01, 4, 0.0025));
        assert_eq!(p.metrics("codec", "crc32c"), [Metric::P99], "the checkpoint's override");
        assert_eq!(p.metrics("codec", "other"), [Metric::P50, Metric::P999], "gate.metrics");
        assert_eq!(p.min_effect("codec", "crc32c", TestKind::Unpaired), 0.1, "the override, both modes");
        assert_eq!(p.min_effect("codec", "crc32c", TestKind::Paired), 0.1);
        assert_eq!(p.min_effect("codec", "other", TestKind::Unpaired), 0.05, "gate.min_effect");
        assert_eq!(p.min_effect("codec", "other", TestKind::Paired), 0.02, "gate.min_effect_paired");
        assert_eq!(Policy::from_config(&cfg, 0).looks, 1);
    }
}
