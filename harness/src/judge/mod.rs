//! From runs and baselines to a [`Report`]: the analysis layer that composes [`crate::stats`].
//!
//! One invocation has two families of tests (see [`Policy`]): the *gated* metrics of every
//! compared checkpoint (p50 by default), tested one-sided for regressions, whose chance of *any*
//! false alarm over all tests and all looks is `alpha`; and the *report-only* metrics (the tails),
//! judged the same way at a larger margin, never gating. Within a look the correction (Holm by
//! default) runs over the family at the look's share of `alpha`; a verdict reached at one look is
//! frozen in [`Decisions`] and carried to the later ones.
//!
//! Every test is rank-based ([`TestKind::compare`]): the Hodges–Lehmann shift with its interval
//! and the signed-rank (paired) or rank-sum (against a stored baseline, plus the session
//! variance) test. The threshold of a test is the larger of the configured minimum effect and the
//! smallest effect its own standard error lets it call significant, so the spread the verdict
//! reads, the one the threshold shows and the one `calibrate` reports are the same.

use std::collections::{BTreeMap, BTreeSet};

use crate::baseline::Baseline;
use crate::drift;
use crate::fingerprint::Fingerprint;
use crate::model::{
    CheckpointResult, Distributions, DriftCorrection, MetricResult, Mode, Presence, Report, RunResult, RunValues,
    ScenarioResult, ScenarioStatus, Tally, REPORT_SCHEMA,
};
use crate::stats::{self, Comparison, Metric, Verdict};

mod accept;
mod modes;
mod policy;
#[cfg(test)]
mod tests;

pub use accept::{accept, Accept};
pub use policy::{Look, Policy, TestKind};

/// Verdicts reached at earlier looks of an adaptive experiment, frozen: a later look reports them
/// as they were decided (with the rounds they were decided at), and a frozen regression counts as
/// already rejected in the later looks' corrections. Keyed by (scenario, checkpoint, metric).
#[derive(Clone, Debug, Default)]
pub struct Decisions {
    frozen: BTreeMap<(String, String, Metric), MetricResult>,
}

impl Decisions {
    /// Freezes every decided (not inconclusive) metric of `report` not frozen yet, noting the
    /// rounds its scenario had.
    pub fn record(&mut self, report: &Report) {
        for s in report.scenarios.iter().filter(|s| s.status == ScenarioStatus::Compared) {
            for c in &s.checkpoints {
                for m in c.metrics.iter().filter(|m| m.verdict != Verdict::Inconclusive) {
                    self.frozen.entry((s.name.clone(), c.name.clone(), m.metric)).or_insert_with(|| MetricResult {
                        decided_at: Some(m.decided_at.unwrap_or(s.runs)),
                        ..m.clone()
                    });
                }
            }
        }
    }

    fn get(&self, scenario: &str, checkpoint: &str, metric: Metric) -> Option<&MetricResult> {
        self.frozen.get(&(scenario.to_owned(), checkpoint.to_owned(), metric))
    }
}

/// Per scenario of `report` (by name): whether every gated verdict is decided (regressed,
/// improved or unchanged), so the scenario need not run again. A cell that is inconclusive but
/// already rules out a regression beyond the equivalence margin ("not slower") keeps its scenario
/// running: more rounds cannot make it gate, but they can make it *unchanged*, the answer a user
/// of an unchanged tree wants; the budget (`run.budget_s`, `run.total_budget_s`) bounds what that
/// costs. (Until stop 21 such cells retired their scenario: on an unchanged tree `regress` then
/// ended at 74 s of its 90 s with 8 of 19 p50 cells "not slower".) A scenario that is not
/// compared (failed, no baseline) has nothing to decide.
pub fn decided_scenarios(report: &Report) -> BTreeMap<String, bool> {
    report
        .scenarios
        .iter()
        .map(|s| {
            let decided = s.status != ScenarioStatus::Compared
                || s.checkpoints
                    .iter()
                    .flat_map(|c| &c.metrics)
                    .filter(|m| m.gating)
                    .all(|m| m.verdict != Verdict::Inconclusive);
            (s.name.clone(), decided)
        })
        .collect()
}

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
    /// How to judge (level, correction, planned looks, per-checkpoint metrics and effects).
    pub policy: &'a Policy,
    /// This look: the share of alpha it spends.
    pub look: Look,
    /// Verdicts frozen at earlier looks.
    pub decisions: &'a Decisions,
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

/// One test of a family.
struct Test {
    scenario: usize,
    checkpoint: usize,
    metric: usize,
    /// Baseline values (or arm A's, round by round).
    base: Vec<f64>,
    /// Current values (or arm B's).
    cur: Vec<f64>,
    kind: TestKind,
    /// In the gated family (else report-only).
    gating: bool,
    min_effect: f64,
    /// Equivalence margin of "unchanged".
    margin: f64,
    /// Session variance added to an unpaired comparison (log scale).
    session_var: f64,
    /// Paired only, aligned with `base`/`cur`: whether the round's two runs shared a whole-process
    /// state (see [`modes::process_states`]); `None` when the scenario has no such state.
    same_state: Option<Vec<bool>>,
    /// The verdict frozen at an earlier look, if any.
    frozen: Option<MetricResult>,
}

impl Test {
    fn compare(&self, confidence: f64) -> Option<Comparison> {
        self.kind.compare(&self.base, &self.cur, confidence, self.session_var, self.same_state.as_deref()).ok()
    }
}

fn current_values(runs: &[RunResult], cp: &str, metric: Metric) -> Vec<f64> {
    runs.iter().filter_map(|r| r.checkpoints.get(cp)?.summary.map(|s| s.get(metric))).collect()
}

/// Builds the report: classifies each scenario, collects its tests, decides the family, tallies.
pub fn judge(inv: Invocation<'_>, inputs: Vec<ScenarioInput>) -> Report {
    let policy = inv.policy;
    let mut scenarios = Vec::with_capacity(inputs.len());
    let mut tests: Vec<Test> = Vec::new();
    for (si, input) in inputs.iter().enumerate() {
        let runs = match &input.outcome {
            Ok(r) => r,
            Err(msg) => {
                scenarios.push(failed(&input.name, msg));
                continue;
            }
        };
        let c = classify(&inv, input, runs);
        let checkpoints = collect(policy, inv.decisions, si, &input.name, runs, &c, &mut tests);
        scenarios.push(ScenarioResult {
            name: input.name.clone(),
            status: c.status,
            mode: c.mode,
            runs: runs.len(),
            baseline_runs: match &c.partner {
                Partner::Baseline(b) => b.recorded.runs,
                Partner::Paired(_, a) => a.len(),
                Partner::None => 0,
            },
            machine_note: c.machine_note,
            against: c.against,
            drift: c.drift,
            floor_ns: c.floor_ns,
            checkpoints,
            modes: match &c.partner {
                Partner::Paired(_, a) => modes::analyse(a, runs),
                _ => None,
            },
            run_results: runs.clone(),
        });
    }
    decide(&mut scenarios, &tests, policy, inv.look);
    let (tally, exit_code) = tally(&scenarios, inv.strict);
    Report {
        schema: REPORT_SCHEMA,
        command: inv.command.to_owned(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        started: inv.started,
        wall_s: inv.wall_s,
        sampling_s: None,
        machine: inv.machine,
        alpha: policy.alpha,
        correction: policy.correction,
        strict: inv.strict,
        looks: policy.looks(),
        scenarios,
        tally,
        exit_code,
        instructions: None,
    }
}

/// The result of a scenario that did not run.
fn failed(name: &str, msg: &str) -> ScenarioResult {
    ScenarioResult {
        name: name.to_owned(),
        status: ScenarioStatus::Failed(msg.to_owned()),
        mode: Mode::Measure,
        runs: 0,
        baseline_runs: 0,
        machine_note: None,
        against: None,
        drift: None,
        floor_ns: 0.0,
        checkpoints: Vec::new(),
        modes: None,
        run_results: Vec::new(),
    }
}

/// What a scenario that ran is compared with, and how.
struct Classified<'a> {
    status: ScenarioStatus,
    mode: Mode,
    partner: Partner<'a>,
    machine_note: Option<String>,
    /// The partner in words.
    against: Option<String>,
    /// Drift correction: (baseline speeds, current speeds), one per run; see [`crate::drift`].
    speeds: Option<(Vec<f64>, Vec<f64>)>,
    drift: Option<DriftCorrection>,
    floor_ns: f64,
}

/// Status, mode, partner and drift correction of a scenario that ran.
fn classify<'a>(inv: &Invocation<'_>, input: &'a ScenarioInput, runs: &[RunResult]) -> Classified<'a> {
    let floor_ns = stats::median(&runs.iter().map(|r| r.floor_ns).collect::<Vec<_>>()).unwrap_or(0.0);
    let mut machine = inv.machine.clone();
    machine.tick_hz = stats::median(&runs.iter().map(|r| r.tick_hz).collect::<Vec<_>>()).unwrap_or(0.0);
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
    // same reference build. Every metric is judged relative to the same speed measure.
    let speeds = (|| -> Option<(Vec<f64>, Vec<f64>)> {
        let Partner::Baseline(b) = &partner else { return None };
        let refs = input.reference.as_ref().filter(|r| r.len() == runs.len())?;
        let cur: Option<Vec<f64>> = refs.iter().map(|r| drift::speed(r, drift::SPEED_METRIC)).collect();
        let base = drift::baseline_speed(b, drift::SPEED_METRIC).filter(|v| v.len() == b.recorded.runs)?;
        Some((base.to_vec(), cur?))
    })();
    // Speeds are positive (drift::speed, and baselines store what it gave), so both means exist.
    let drift = speeds.as_ref().and_then(|(base, cur)| {
        Some(DriftCorrection {
            factor: stats::geo_mean(cur)? / stats::geo_mean(base)?,
            current_runs: cur.len(),
            baseline_runs: base.len(),
        })
    });
    let against = match &partner {
        Partner::None => None,
        Partner::Baseline(b) => Some(format!(
            "baseline recorded {} from commit {} ({} runs{})",
            b.recorded.date,
            b.recorded.commit,
            b.recorded.runs,
            match b.session_var() {
                Some(v) => format!(
                    " in {} sessions: session spread {:.1}%, gate.session_cv {:.1}%",
                    b.recorded.sessions.len(),
                    (v.exp() - 1.0).sqrt() * 100.0,
                    (inv.policy.session_var().exp() - 1.0).sqrt() * 100.0
                ),
                None => String::new(),
            }
        )),
        Partner::Paired(label, _) => Some(format!("{label}, run interleaved with the current build")),
    };
    Classified { status, mode, partner, machine_note, against, speeds, drift, floor_ns }
}

/// The checkpoints of scenario `si` (every name seen on either side, sorted), with a metric row
/// per gated and report-only metric; appends a test to `tests` for every row with enough data on
/// both sides.
fn collect(
    policy: &Policy,
    decisions: &Decisions,
    si: usize,
    scenario: &str,
    runs: &[RunResult],
    c: &Classified<'_>,
    tests: &mut Vec<Test>,
) -> Vec<CheckpointResult> {
    let current_names: BTreeSet<&String> = runs.iter().flat_map(|r| r.checkpoints.keys()).collect();
    let mut names: BTreeSet<&String> = current_names.clone();
    match &c.partner {
        Partner::Baseline(b) => names.extend(b.checkpoints.keys()),
        Partner::Paired(_, a) => names.extend(a.iter().flat_map(|r| r.checkpoints.keys())),
        Partner::None => {}
    }
    let kind = match c.partner {
        Partner::Paired(..) => TestKind::Paired,
        _ => TestKind::Unpaired,
    };
    let session_var = match &c.partner {
        // Several recorded sessions measure the session offset; one session cannot, and the
        // configured prior is then the whole model. An estimate never lowers the prior: with a
        // few sessions it has a few degrees of freedom.
        Partner::Baseline(b) => policy.session_var().max(b.session_var().unwrap_or(0.0)),
        _ => 0.0,
    };
    let states = match &c.partner {
        Partner::Paired(_, a) => modes::process_states(a, runs),
        _ => BTreeMap::new(),
    };
    let mut checkpoints = Vec::new();
    for cp in names {
        let in_cur = current_names.contains(cp);
        let in_base = match &c.partner {
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
        let mut run_values = Vec::new();
        if presence == Presence::Both {
            let gated = policy.metrics(scenario, cp).iter().map(|&m| (m, true));
            let reported = policy.report_metrics(scenario, cp).into_iter().map(|m| (m, false));
            for (metric, gating) in gated.collect::<Vec<_>>().into_iter().chain(reported) {
                let min_effect = if gating {
                    policy.min_effect(scenario, cp, kind)
                } else {
                    policy.report_min_effect(scenario, cp, kind)
                };
                let mut same_state = None;
                let (base, cur) = match &c.partner {
                    Partner::Baseline(b) => (
                        b.values(cp, metric).map(<[f64]>::to_vec).unwrap_or_default(),
                        current_values(runs, cp, metric),
                    ),
                    // Only rounds where both arms measured the checkpoint form pairs.
                    Partner::Paired(_, a) => {
                        let state = states.get(cp);
                        let (pairs, same): (Vec<(f64, f64)>, Vec<bool>) = a
                            .iter()
                            .zip(runs)
                            .enumerate()
                            .filter_map(|(i, (ra, rb))| {
                                let x = ra.checkpoints.get(cp)?.summary?.get(metric);
                                let y = rb.checkpoints.get(cp)?.summary?.get(metric);
                                Some(((x, y), state.is_some_and(|s| s[i])))
                            })
                            .unzip();
                        same_state = state.map(|_| same);
                        pairs.into_iter().unzip()
                    }
                    Partner::None => (Vec::new(), Vec::new()),
                };
                // Plotted and shown values are raw; the test below may use drift-corrected ones.
                run_values.push(RunValues { metric, baseline: base.clone(), current: cur.clone() });
                metrics.push(MetricResult {
                    metric,
                    baseline_ns: stats::median(&base),
                    current_ns: stats::median(&cur),
                    comparison: None,
                    p_adjusted: None,
                    threshold: min_effect,
                    verdict: Verdict::Inconclusive,
                    gating,
                    decided_at: None,
                    no_regression: false,
                });
                let (base, cur) = match &c.speeds {
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
                        kind,
                        gating,
                        min_effect,
                        margin: if gating { policy.unchanged_within(scenario, cp, kind) } else { min_effect },
                        session_var,
                        same_state,
                        frozen: decisions.get(scenario, cp, metric).cloned(),
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
            accepted: None,
            distributions: Distributions { runs: run_values, ..Distributions::default() },
        });
    }
    checkpoints
}

/// Runs both families of tests at this look: one-sided p-values, the correction (a regression
/// frozen at an earlier look counts as rejected), intervals at the matching level, thresholds from
/// each test's own standard error, verdicts (frozen ones kept); writes them into `scenarios`.
fn decide(scenarios: &mut [ScenarioResult], tests: &[Test], policy: &Policy, look: Look) {
    for gating in [true, false] {
        let family: Vec<&Test> = tests.iter().filter(|t| t.gating == gating).collect();
        decide_family(scenarios, &family, policy, look);
    }
    for s in scenarios {
        for c in &mut s.checkpoints {
            c.verdict = overall(c.metrics.iter().filter(|m| m.gating).map(|m| m.verdict));
        }
    }
}

fn decide_family(scenarios: &mut [ScenarioResult], tests: &[&Test], policy: &Policy, look: Look) {
    let m = tests.len();
    if m == 0 {
        return;
    }
    let alpha = look.alpha;
    // Each side of the strict interval at the per-test level alpha / m (Bonferroni, which Holm's
    // first step equals): improvements and the shown interval read it.
    let per_test = alpha / m as f64;
    let strict_confidence = 1.0 - 2.0 * per_test;
    // One comparison per test gives both its interval and its one-sided "slower" p-value (which
    // does not depend on the interval's level). A frozen regression counts as already rejected.
    let frozen_regression = |t: &Test| t.frozen.as_ref().is_some_and(|f| f.verdict == Verdict::Regressed);
    let strict: Vec<Option<Comparison>> =
        tests.iter().map(|t| if frozen_regression(t) { None } else { t.compare(strict_confidence) }).collect();
    let p: Vec<f64> = tests
        .iter()
        .zip(&strict)
        .map(|(t, c)| if frozen_regression(t) { 0.0 } else { c.map_or(1.0, |c| c.p_slower) })
        .collect();
    let adjusted = policy.correction.adjust(&p);
    // "Unchanged" is an equivalence test per comparison: two one-sided tests at the family's
    // level, at every look. Its error is a missed change beyond the margin, never a false alarm,
    // so it needs no share of the false-alarm budget: spending it over looks and tests (as the
    // regression side must) kept every early look from ever saying "unchanged".
    let equivalence_confidence = 1.0 - 2.0 * policy.alpha;
    let z = statrs::distribution::Normal::new(0.0, 1.0)
        .map_or(f64::NAN, |n| statrs::distribution::ContinuousCDF::inverse_cdf(&n, 1.0 - per_test));
    for (i, t) in tests.iter().enumerate() {
        let mr = &mut scenarios[t.scenario].checkpoints[t.checkpoint].metrics[t.metric];
        if let Some(f) = &t.frozen {
            *mr = f.clone();
            continue;
        }
        let cmp = strict[i];
        let equivalence = t.compare(equivalence_confidence);
        // The smallest effect this test can call significant at this level, from its own spread.
        let floor = cmp.map_or(0.0, |c| (z * c.log_std_err).exp_m1());
        let threshold = if floor.is_finite() { t.min_effect.max(floor) } else { t.min_effect };
        mr.threshold = threshold;
        mr.p_adjusted = Some(adjusted[i]);
        mr.comparison = cmp;
        mr.verdict = match (cmp, equivalence) {
            (Some(c), Some(e)) => stats::judge_regression(&c, &e, adjusted[i], alpha, threshold, t.margin),
            _ => Verdict::Inconclusive,
        };
        mr.no_regression =
            mr.verdict == Verdict::Inconclusive && equivalence.is_some_and(|e| e.ci_high <= 1.0 + t.margin);
    }
}

/// Counts the checkpoint verdicts and maps them to the exit code: a failed scenario first, then
/// a gating regression (same machine, or any machine under `strict`; not accepted).
fn tally(scenarios: &[ScenarioResult], strict: bool) -> (Tally, i32) {
    let mut tally = Tally::default();
    let mut gating_regression = false;
    for s in scenarios {
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
                    // An accepted regression (`--accept`, `gate.accept`) is shown, never gates.
                    if (s.mode != Mode::CrossMachine || strict) && c.accepted.is_none() {
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
    (tally, exit_code)
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
