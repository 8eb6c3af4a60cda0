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
use crate::drift;
use crate::fingerprint::Fingerprint;
use crate::model::{
    CheckpointResult, DriftCorrection, MetricResult, Mode, Presence, Report, RunResult, ScenarioResult, ScenarioStatus,
    Tally, REPORT_SCHEMA,
};
use crate::stats::{self, Comparison, Metric, Verdict};

/// Power at which the noise floor of a threshold is computed. At 0.5 the floor is the smallest
/// effect that can be significant at all (critical t times the standard error): requiring the
/// estimate to reach it costs no power beyond the test itself, while the reported threshold says
/// honestly what this comparison could resolve. (At 0.8 the floor would demand effects well above
/// significance and halve the detection of regressions near it.)
const FLOOR_POWER: f64 = 0.5;

/// What the current runs of a scenario are compared with.
pub enum Against {
    /// Nothing (measure only, or no baseline exists).
    Nothing,
    /// A committed baseline.
    Baseline(Box<Baseline>),
    /// The other arm of a paired experiment: its runs, aligned round by round with the current
    /// runs (`runs[i]` and the current `i`-th run come from the same round).
    Paired {
        /// What it is, in words (e.g. `main@1a2b3c4`).
        label: String,
        /// Its runs.
        runs: Vec<RunResult>,
    },
}

/// What the runner produced for one scenario, and what to compare it with.
pub struct ScenarioInput {
    /// Scenario name.
    pub name: String,
    /// The measured runs, or why the scenario failed.
    pub outcome: Result<Vec<RunResult>, String>,
    /// The comparison partner.
    pub against: Against,
    /// Baseline mode only: the reference workload's run next to each current run (aligned with
    /// `outcome`), for drift correction; see [`crate::drift`].
    pub reference: Option<Vec<RunResult>>,
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
    /// Interim analyses planned (adaptive sampling); each tests at `alpha / looks`.
    pub looks: usize,
}

/// One test of the family.
struct Test {
    scenario: usize,
    checkpoint: usize,
    metric: usize,
    /// Baseline values (or arm A's, round by round).
    base: Vec<f64>,
    /// Current values (or arm B's).
    cur: Vec<f64>,
    paired: bool,
    min_effect: f64,
    /// Noise stored in the baseline (measured by `calibrate`, or at recording): the threshold
    /// follows the larger of it and the noise seen now.
    stored_noise: f64,
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
                    against: None,
                    drift: None,
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
        let partner = if inv.compare { Partner::of(&input.against) } else { Partner::None };
        let (status, mode, machine_note) = match &partner {
            Partner::None if inv.compare => (ScenarioStatus::NoBaseline, Mode::Measure, None),
            Partner::None => (ScenarioStatus::Measured, Mode::Measure, None),
            Partner::Paired(..) => (ScenarioStatus::Compared, Mode::Paired, None),
            Partner::Baseline(b) => match b.machine.machine_difference(&machine) {
                Some(note) => (ScenarioStatus::Compared, Mode::CrossMachine, Some(note)),
                None => (ScenarioStatus::Compared, Mode::Baseline, b.machine.toolchain_difference(&machine)),
            },
        };
        // Drift correction: both sides must have reference runs aligned with their runs, from the
        // same reference build: (baseline speeds, current speeds), one per run. Every metric is
        // judged relative to the same speed measure (see crate::drift).
        let speeds = (|| -> Option<(Vec<f64>, Vec<f64>)> {
            let Partner::Baseline(b) = &partner else { return None };
            let refs = input.reference.as_ref().filter(|r| r.len() == runs.len())?;
            let cur: Option<Vec<f64>> = refs.iter().map(|r| drift::speed(r, drift::SPEED_METRIC)).collect();
            let base = b.reference_speed(drift::SPEED_METRIC).filter(|v| v.len() == b.recorded.runs)?;
            Some((base.to_vec(), cur?))
        })();
        let drift = speeds.as_ref().map(|(base, cur)| DriftCorrection {
            factor: geo_mean(cur) / geo_mean(base),
            current_runs: cur.len(),
            baseline_runs: base.len(),
        });
        let against = match &partner {
            Partner::None => None,
            Partner::Baseline(b) => Some(format!(
                "baseline recorded {} from commit {} ({} runs)",
                b.recorded.date, b.recorded.commit, b.recorded.runs
            )),
            Partner::Paired(label, _) => Some(format!("{label}, run interleaved with the current build")),
        };
        let mut names: BTreeSet<&String> = current_names.clone();
        match &partner {
            Partner::Baseline(b) => names.extend(b.checkpoints.keys()),
            Partner::Paired(_, a) => names.extend(a.iter().flat_map(|r| r.checkpoints.keys())),
            Partner::None => {}
        }
        let mut checkpoints = Vec::new();
        for cp in names {
            let in_cur = current_names.contains(cp);
            let in_base = match &partner {
                Partner::Baseline(b) => b.checkpoints.contains_key(cp),
                Partner::Paired(_, a) => a.iter().any(|r| r.checkpoints.contains_key(cp)),
                Partner::None => false,
            };
            let presence = match (in_base, in_cur) {
                (true, true) => Presence::Both,
                (true, false) => Presence::BaselineOnly,
                _ => Presence::CurrentOnly,
            };
            let cps: Vec<_> = runs.iter().filter_map(|r| r.checkpoints.get(cp)).collect();
            let calls_per_run =
                if cps.is_empty() { 0.0 } else { cps.iter().map(|c| c.count as f64).sum::<f64>() / cps.len() as f64 };
            let mut metrics = Vec::new();
            if presence == Presence::Both {
                for metric in cfg.metrics(&input.name, cp) {
                    let (base, cur, paired) = match &partner {
                        Partner::Baseline(b) => {
                            let base = b.values(cp, metric).map(<[f64]>::to_vec).unwrap_or_default();
                            let cur = current_values(runs, cp, metric);
                            (base, cur, false)
                        }
                        Partner::Paired(_, a) => {
                            // Only rounds where both arms measured the checkpoint form pairs.
                            let (av, bv): (Vec<f64>, Vec<f64>) = a
                                .iter()
                                .zip(runs.iter())
                                .filter_map(|(ra, rb)| {
                                    let x = ra.checkpoints.get(cp)?.summary?.get(metric);
                                    let y = rb.checkpoints.get(cp)?.summary?.get(metric);
                                    Some((x, y))
                                })
                                .unzip();
                            (av, bv, true)
                        }
                        Partner::None => (Vec::new(), Vec::new(), false),
                    };
                    // Shown values are raw medians; the test below may use drift-corrected ones.
                    metrics.push(MetricResult {
                        metric,
                        baseline_ns: median(&base),
                        current_ns: median(&cur),
                        comparison: None,
                        p_adjusted: None,
                        threshold: cfg.min_effect(&input.name, cp, paired),
                        verdict: Verdict::Inconclusive,
                    });
                    let (base, cur) = match &speeds {
                        Some((sb, sc)) if base.len() == sb.len() && cur.len() == sc.len() => (
                            base.iter().zip(sb).map(|(v, s)| v / s).collect(),
                            cur.iter().zip(sc).map(|(v, s)| v / s).collect(),
                        ),
                        _ => (base, cur),
                    };
                    if base.len() >= 2 && cur.len() >= 2 {
                        tests.push(Test {
                            scenario: si,
                            checkpoint: checkpoints.len(),
                            metric: metrics.len() - 1,
                            base,
                            cur,
                            paired,
                            min_effect: cfg.min_effect(&input.name, cp, paired),
                            stored_noise: match &partner {
                                Partner::Baseline(b) => b.noise(cp, metric).unwrap_or(0.0),
                                _ => 0.0,
                            },
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
            baseline_runs: match &partner {
                Partner::Baseline(b) => b.recorded.runs,
                Partner::Paired(_, a) => a.len(),
                Partner::None => 0,
            },
            machine_note,
            against,
            drift,
            floor_ns,
            checkpoints,
            run_results: runs.clone(),
        });
    }

    decide(&mut scenarios, &tests, cfg, inv.looks.max(1));

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
                    if s.mode != Mode::CrossMachine || inv.strict {
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
        looks: inv.looks.max(1),
        scenarios,
        tally,
        exit_code,
    }
}

/// Runs the family of tests: p-values, correction, intervals at the matching level, thresholds,
/// verdicts; writes them into `scenarios`.
fn decide(scenarios: &mut [ScenarioResult], tests: &[Test], cfg: &Config, looks: usize) {
    // Alpha spent evenly over the planned looks (a Bonferroni bound over interim analyses).
    let alpha = cfg.gate.alpha / looks as f64;
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
        // "Unchanged" is an equivalence test per comparison (two one-sided tests at the per-look
        // alpha), against the configured margin: see stats::judge_with_equivalence.
        let equivalence_confidence = 1.0 - 2.0 * alpha;
        for (i, t) in tests.iter().enumerate() {
            let cmp = t.compare(confidence);
            let equivalence = t.compare(equivalence_confidence);
            let noise = t.noise();
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
            mr.verdict = match (cmp, equivalence) {
                (Some(c), Some(e)) => {
                    stats::judge_with_equivalence(&c, &e, adjusted[i], alpha, threshold, t.min_effect)
                }
                _ => Verdict::Inconclusive,
            };
        }
    }
    for s in scenarios {
        for c in &mut s.checkpoints {
            c.verdict = overall(c.metrics.iter().map(|m| m.verdict));
        }
    }
}

impl Test {
    fn compare(&self, confidence: f64) -> Option<Comparison> {
        if self.paired {
            stats::compare_paired(&self.base, &self.cur, confidence).ok()
        } else {
            stats::compare_runs(&self.base, &self.cur, confidence).ok()
        }
    }

    /// Run-to-run noise as a relative spread of one side's values. For paired data, the spread
    /// of the per-round log ratios divided by sqrt(2), so that the two-sample detectable-effect
    /// formula gives the paired one (sd/sqrt(n)).
    fn noise(&self) -> f64 {
        self.live_noise().max(self.stored_noise)
    }

    fn live_noise(&self) -> f64 {
        if self.paired {
            stats::log_ratio_sd(&self.base, &self.cur) / std::f64::consts::SQRT_2
        } else {
            stats::noise_cv(&self.base).unwrap_or(0.0).max(stats::noise_cv(&self.cur).unwrap_or(0.0))
        }
    }
}

/// The comparison partner, borrowed.
enum Partner<'a> {
    None,
    Baseline(&'a Baseline),
    Paired(&'a str, &'a [RunResult]),
}

impl<'a> Partner<'a> {
    fn of(a: &'a Against) -> Partner<'a> {
        match a {
            Against::Nothing => Partner::None,
            Against::Baseline(b) => Partner::Baseline(b),
            Against::Paired { label, runs } => Partner::Paired(label, runs),
        }
    }
}

fn geo_mean(v: &[f64]) -> f64 {
    (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp()
}

/// Whether every comparable (checkpoint, metric) of the report is decided (not inconclusive):
/// the stopping rule of adaptive sampling.
pub fn all_decided(report: &Report) -> bool {
    report
        .scenarios
        .iter()
        .filter(|s| s.status == ScenarioStatus::Compared)
        .flat_map(|s| &s.checkpoints)
        .flat_map(|c| &c.metrics)
        .all(|m| m.verdict != Verdict::Inconclusive)
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
