//! From runs and baselines to a [`Report`]: the analysis layer that composes [`crate::stats`].
//!
//! One invocation is one family of tests: every (scenario, checkpoint, metric) compared is a
//! test, and the correction (Holm by default) controls the chance of *any* false alarm across
//! all of them. Confidence intervals use the level that matches the correction
//! ([`Correction::interval_confidence`]), and the threshold of each test is the larger of the
//! configured minimum effect and the smallest effect its noise lets us detect at that level, so a
//! noisy checkpoint cannot raise an alarm on a change smaller than its own jitter.

use std::collections::BTreeSet;

use crate::baseline::Baseline;
use crate::config::Config;
use crate::fingerprint::Fingerprint;
use crate::model::{
    CheckpointResult, MetricResult, Mode, Presence, Report, RunResult, ScenarioResult, ScenarioStatus, Tally,
    REPORT_SCHEMA,
};
use crate::stats::{self, Comparison, Metric, Verdict};

/// Power at which the noise floor of a threshold is computed.
const FLOOR_POWER: f64 = 0.8;

/// What the runner produced for one scenario, and its baseline.
pub struct ScenarioInput {
    /// Scenario name.
    pub name: String,
    /// The measured runs, or why the scenario failed.
    pub outcome: Result<Vec<RunResult>, String>,
    /// The baseline to compare with (`None`: measure only, or no baseline exists).
    pub baseline: Option<Baseline>,
}

/// Invocation-wide facts for the report.
pub struct Invocation<'a> {
    /// The command name.
    pub command: &'a str,
    /// The configuration.
    pub config: &'a Config,
    /// This machine.
    pub machine: Fingerprint,
    /// Whether to compare at all (false for `run` and `baseline`).
    pub compare: bool,
    /// Whether cross-machine verdicts gate.
    pub strict: bool,
    /// Start time, RFC 3339.
    pub started: String,
    /// Wall time so far, s.
    pub wall_s: f64,
}

/// One test of the family.
struct Test {
    scenario: usize,
    checkpoint: usize,
    metric: usize,
    base: Vec<f64>,
    cur: Vec<f64>,
    min_effect: f64,
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some(stats::quantile_sorted(&s, 0.5))
}

fn current_values(runs: &[RunResult], cp: &str, metric: Metric) -> Vec<f64> {
    runs.iter().filter_map(|r| r.checkpoints.get(cp)?.summary.map(|s| s.get(metric))).collect()
}

/// Builds the report.
pub fn judge(inv: Invocation<'_>, inputs: Vec<ScenarioInput>) -> Report {
    let cfg = inv.config;
    let mut scenarios = Vec::new();
    let mut tests: Vec<Test> = Vec::new();
    for (si, input) in inputs.iter().enumerate() {
        let runs = match &input.outcome {
            Ok(r) => r,
            Err(msg) => {
                scenarios.push(ScenarioResult {
                    name: input.name.clone(),
                    status: ScenarioStatus::Failed(msg.clone()),
                    mode: Mode::Measure,
                    runs: 0,
                    baseline_runs: 0,
                    machine_note: None,
                    floor_ns: 0.0,
                    checkpoints: Vec::new(),
                    run_results: Vec::new(),
                });
                continue;
            }
        };
        let floor_ns = median(&runs.iter().map(|r| r.floor_ns).collect::<Vec<_>>()).unwrap_or(0.0);
        let mut machine = inv.machine.clone();
        machine.tick_hz = median(&runs.iter().map(|r| r.tick_hz).collect::<Vec<_>>()).unwrap_or(0.0);
        let current_names: BTreeSet<&String> = runs.iter().flat_map(|r| r.checkpoints.keys()).collect();
        let baseline = input.baseline.as_ref().filter(|_| inv.compare);
        let (status, mode, machine_note) = match baseline {
            None if inv.compare => (ScenarioStatus::NoBaseline, Mode::Measure, None),
            None => (ScenarioStatus::Measured, Mode::Measure, None),
            Some(b) => match b.machine.machine_difference(&machine) {
                Some(note) => (ScenarioStatus::Compared, Mode::CrossMachine, Some(note)),
                None => (ScenarioStatus::Compared, Mode::Baseline, b.machine.toolchain_difference(&machine)),
            },
        };
        let mut names: BTreeSet<&String> = current_names.clone();
        if let Some(b) = baseline {
            names.extend(b.checkpoints.keys());
        }
        let mut checkpoints = Vec::new();
        for cp in names {
            let in_cur = current_names.contains(cp);
            let in_base = baseline.is_some_and(|b| b.checkpoints.contains_key(cp));
            let presence = match (in_base, in_cur) {
                (true, true) => Presence::Both,
                (true, false) => Presence::BaselineOnly,
                _ => Presence::CurrentOnly,
            };
            let cps: Vec<_> = runs.iter().filter_map(|r| r.checkpoints.get(cp)).collect();
            let calls_per_run =
                if cps.is_empty() { 0.0 } else { cps.iter().map(|c| c.count as f64).sum::<f64>() / cps.len() as f64 };
            let mut metrics = Vec::new();
            if let (Presence::Both, Some(b)) = (presence, baseline) {
                for metric in cfg.metrics(&input.name, cp) {
                    let base = b.values(cp, metric).map(<[f64]>::to_vec).unwrap_or_default();
                    let cur = current_values(runs, cp, metric);
                    metrics.push(MetricResult {
                        metric,
                        baseline_ns: median(&base),
                        current_ns: median(&cur),
                        comparison: None,
                        p_adjusted: None,
                        threshold: cfg.min_effect(&input.name, cp),
                        verdict: Verdict::Inconclusive,
                    });
                    if base.len() >= 2 && cur.len() >= 2 {
                        tests.push(Test {
                            scenario: si,
                            checkpoint: checkpoints.len(),
                            metric: metrics.len() - 1,
                            base,
                            cur,
                            min_effect: cfg.min_effect(&input.name, cp),
                        });
                    }
                }
            }
            checkpoints.push(CheckpointResult {
                name: cp.clone(),
                presence,
                calls_per_run,
                lost: cps.iter().map(|c| c.lost).sum(),
                clamped: cps.iter().map(|c| c.clamped).sum(),
                metrics,
                verdict: Verdict::Inconclusive,
            });
        }
        scenarios.push(ScenarioResult {
            name: input.name.clone(),
            status,
            mode,
            runs: runs.len(),
            baseline_runs: baseline.map_or(0, |b| b.recorded.runs),
            machine_note,
            floor_ns,
            checkpoints,
            run_results: runs.clone(),
        });
    }

    decide(&mut scenarios, &tests, cfg);

    let mut tally = Tally::default();
    let mut gating_regression = false;
    for s in &scenarios {
        if matches!(s.status, ScenarioStatus::Failed(_)) {
            tally.failed_scenarios += 1;
        }
        if s.status != ScenarioStatus::Compared {
            continue;
        }
        for c in &s.checkpoints {
            if c.presence != Presence::Both {
                tally.one_sided += 1;
                continue;
            }
            match c.verdict {
                Verdict::Regressed => {
                    tally.regressed += 1;
                    if s.mode == Mode::Baseline || inv.strict {
                        gating_regression = true;
                    }
                }
                Verdict::Improved => tally.improved += 1,
                Verdict::Unchanged => tally.unchanged += 1,
                Verdict::Inconclusive => tally.inconclusive += 1,
            }
        }
    }
    let exit_code = if tally.failed_scenarios > 0 {
        crate::exit_code::SCENARIO_FAILED
    } else if gating_regression {
        crate::exit_code::REGRESSION
    } else {
        crate::exit_code::PASS
    };
    Report {
        schema: REPORT_SCHEMA,
        command: inv.command.to_owned(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        started: inv.started,
        wall_s: inv.wall_s,
        machine: inv.machine,
        alpha: cfg.gate.alpha,
        correction: cfg.gate.correction,
        strict: inv.strict,
        scenarios,
        tally,
        exit_code,
    }
}

/// Runs the family of tests: p-values, correction, intervals at the matching level, thresholds,
/// verdicts; writes them into `scenarios`.
fn decide(scenarios: &mut [ScenarioResult], tests: &[Test], cfg: &Config) {
    let alpha = cfg.gate.alpha;
    let correction = cfg.gate.correction;
    let m = tests.len();
    if m > 0 {
        // p-values do not depend on the interval level; compute them first.
        let first: Vec<Option<Comparison>> =
            tests.iter().map(|t| stats::compare_runs(&t.base, &t.cur, 0.95).ok()).collect();
        let p: Vec<f64> = first.iter().map(|c| c.map_or(1.0, |c| c.p_value)).collect();
        let adjusted = correction.adjust(&p);
        let selected = adjusted.iter().filter(|&&a| a < alpha).count();
        let confidence = correction.interval_confidence(alpha, m, selected).unwrap_or(1.0 - alpha / m as f64);
        for (i, t) in tests.iter().enumerate() {
            let cmp = stats::compare_runs(&t.base, &t.cur, confidence).ok();
            let noise = stats::noise_cv(&t.base).unwrap_or(0.0).max(stats::noise_cv(&t.cur).unwrap_or(0.0));
            let threshold = stats::effective_threshold_at(
                t.min_effect,
                noise,
                t.base.len(),
                t.cur.len(),
                1.0 - confidence,
                FLOOR_POWER,
            )
            .unwrap_or(t.min_effect);
            let mr = &mut scenarios[t.scenario].checkpoints[t.checkpoint].metrics[t.metric];
            mr.threshold = threshold;
            mr.p_adjusted = Some(adjusted[i]);
            mr.comparison = cmp;
            mr.verdict = cmp.map_or(Verdict::Inconclusive, |c| stats::judge(&c, adjusted[i], alpha, threshold));
        }
    }
    for s in scenarios {
        for c in &mut s.checkpoints {
            c.verdict = overall(c.metrics.iter().map(|m| m.verdict));
        }
    }
}

/// Regressed if any regressed; else improved if any improved; else unchanged if all unchanged
/// (and there was at least one); else inconclusive.
fn overall(vs: impl Iterator<Item = Verdict>) -> Verdict {
    let vs: Vec<Verdict> = vs.collect();
    if vs.contains(&Verdict::Regressed) {
        Verdict::Regressed
    } else if vs.contains(&Verdict::Improved) {
        Verdict::Improved
    } else if !vs.is_empty() && vs.iter().all(|&v| v == Verdict::Unchanged) {
        Verdict::Unchanged
    } else {
        Verdict::Inconclusive
    }
}
