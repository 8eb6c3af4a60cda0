//! `cargo xtask verdict-bench`: measures the verdict quality of the gate on this machine.
//!
//! # What is measured
//! For each mode (baseline and paired) and each scenario, many *trials* of the gate are run with
//! the gate's own machinery (`run_adaptive`, [`judge::judge`]) and the verdicts are
//! scored against the truth we planted:
//!
//! * **A/A trials** (size 0): nothing is changed. Any checkpoint judged `regressed` is a false
//!   alarm.
//! * **Planted trials** (size `s` %): `FUNCSCOPE_PLANT=<cp>=<s>` makes the scenario do real extra
//!   work worth `s` % of checkpoint `cp`'s cost inside it. The planted checkpoint judged
//!   `regressed` is a *detection*; any *other* checkpoint judged `regressed` is a false alarm. The
//!   planted checkpoint rotates through the scenario's checkpoints trial by trial.
//!
//! **Baseline mode** mirrors `regress` against a baseline recorded on this machine: at the start
//! one baseline per scenario is recorded in memory exactly as `cargo xtask baseline` does (one
//! arm plus the reference workload, `runs` rounds, [`Baseline::from_runs`] +
//! [`Baseline::with_reference`]); nothing is written to `baselines/`. Each trial is then a fresh
//! experiment of the current build (one arm, with reference runs for drift correction), extended
//! adaptively up to the budget, judged against that baseline. All trials of a scenario share the
//! one baseline, as all CI runs share one committed baseline.
//!
//! **Paired mode** mirrors `compare`: each trial is an experiment with two arms of the *same*
//! binary (A: no plant; B: the plant, or nothing for A/A), run interleaved A B / B A and judged on
//! per-round ratios ([`judge::Against::Paired`]).
//!
//! Trial types are interleaved (A/A, 1 %, 2 %, 5 %, 10 %, A/A, ...; baseline and paired trials of
//! a type next to each other), so slow drift of the machine over the benchmark hits all types and
//! both modes alike.
//!
//! # What the numbers mean
//! * *detection*: fraction of planted trials whose planted checkpoint was judged `regressed`,
//!   with a 95 % Wilson score interval (valid for small n and for 0 or n successes).
//! * *false alarm*: fraction of trials in which some checkpoint other than the planted one (any
//!   checkpoint, for A/A) was judged `regressed`: a trial counts once however many checkpoints
//!   alarmed, which is how a CI run fails.
//! * *wall*: the whole trial (warm-up, rounds, adaptive extension, judging); the one-off baseline
//!   recording is not included.
//! * The targets are judged from the interval, not the point estimate: *met* when the whole 95 %
//!   interval is on the right side of the target, *not met* when it is wholly on the wrong side,
//!   otherwise *not resolvable with N trials* (e.g. showing a false-alarm rate <= 1 % needs ~370
//!   alarm-free A/A trials).
//!
//! # Output
//! Every trial is a [`TrialRecord`] in the per-trial JSON (TARGET/funcscope/verdict-bench.json by
//! default), rewritten after each trial. At the end the summary, a [`BenchReport`] (rates with
//! their intervals and the targets), is printed and written as Markdown next to that JSON
//! (`verdict-bench.md`).
//!
//! # Limitations
//! * Plants are sized per process from that process's own calibration, so the planted
//!   nanoseconds vary from run to run, and out-of-order overlap makes the slowdown the probe sees
//!   differ from the nominal percentage (more for small plants on short calls). The measured
//!   ratio of each trial is recorded next to its nominal size: read detection against it.
//! * A trial is one scenario, so its family of tests (and the Holm correction) is smaller than a
//!   full `regress` over all scenarios: per-trial false-alarm rates here are for one scenario.
//! * The baseline is recorded once, at the start: baseline-mode trials late in the benchmark see
//!   more drift than early ones (that is the realistic case the drift correction is for), and one
//!   unlucky baseline biases every baseline-mode trial of its scenario.
//! * The machine is shared: other processes (builds) running during the benchmark add noise to
//!   some trials and not others. The JSON records each trial's start time, so bursts can be
//!   matched with what else ran.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::{arm_runs, inputs_of, new_experiment, now_rfc3339, record_baseline, reference_spec, run_adaptive, specs};
use super::{Part, Selection};
use crate::baseline::Baseline;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::judge::{self, Decisions, Invocation, Look, Policy};
use crate::model::{BenchReport, BenchRow, Proportion, Report, RunResult, ScenarioStatus, Target, BENCH_SCHEMA};
use crate::report::{self, Document, Format, Style};
use crate::rounds::{Arm, ReferenceSpec, ScenarioSpec};
use crate::stats::{self, Metric, Verdict};
use crate::workspace;

/// The mode of one trial, and whether a rate target is met (defined in the model).
pub use crate::model::{BenchMode, TargetState};

/// The environment variable the scenarios read planted slowdowns from.
pub const PLANT_ENV: &str = funcscope::env::PLANT;

/// Which gate modes to benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeChoice {
    /// Against an in-memory baseline recorded at the start (like `regress`).
    Baseline,
    /// Two arms of the same binary, interleaved (like `compare`).
    Paired,
    /// Both.
    Both,
}

impl ModeChoice {
    fn modes(self) -> Vec<BenchMode> {
        match self {
            ModeChoice::Baseline => vec![BenchMode::Baseline],
            ModeChoice::Paired => vec![BenchMode::Paired],
            ModeChoice::Both => vec![BenchMode::Baseline, BenchMode::Paired],
        }
    }
}

/// Options of `verdict-bench`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Configuration, scenarios, rounds per trial (and for the baselines), budget per trial, build.
    pub select: Selection,
    /// Trials per plant size, and A/A trials, per mode and scenario.
    pub trials: usize,
    /// Plant sizes in percent.
    pub sizes: Vec<f64>,
    /// Modes.
    pub mode: ModeChoice,
    /// Where the per-trial JSON goes (default TARGET/funcscope/verdict-bench.json).
    pub json: Option<PathBuf>,
}

/// Parses `--sizes`: comma-separated positive percentages, e.g. `1,2,5,10` or `2.5, 5%`.
pub fn parse_sizes(s: &str) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let p = part.trim();
        let p = p.strip_suffix('%').unwrap_or(p).trim();
        if p.is_empty() {
            return Err(format!("--sizes {s:?}: empty entry (expected e.g. 1,2,5,10)"));
        }
        match p.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 && v <= 1000.0 => {
                if out.contains(&v) {
                    return Err(format!("--sizes {s:?}: {v} is given twice"));
                }
                out.push(v);
            }
            _ => return Err(format!("--sizes {s:?}: {part:?} is not a percentage in (0, 1000]")),
        }
    }
    Ok(out)
}

/// The result of one trial: one row of the JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrialRecord {
    /// 1-based order in which the trial ran.
    pub seq: usize,
    /// Mode.
    pub mode: BenchMode,
    /// Scenario.
    pub scenario: String,
    /// Planted percent; 0 for A/A.
    pub size: f64,
    /// Planted checkpoint (None for A/A).
    pub planted: Option<String>,
    /// The planted checkpoint was judged `regressed`.
    pub detected: bool,
    /// Some checkpoint other than the planted one (any, for A/A) was judged `regressed`.
    pub false_alarm: bool,
    /// The checkpoints that raised a false alarm.
    pub false_alarm_checkpoints: Vec<String>,
    /// Verdict of the planted checkpoint.
    pub planted_verdict: Option<Verdict>,
    /// Measured ratio current/baseline (B/A when paired) of the planted checkpoint, per judged
    /// metric (`comparison.ratio`, drift-corrected in baseline mode).
    pub planted_ratio: BTreeMap<String, f64>,
    /// Raw ratio of geometric means of the per-run mean durations of the planted checkpoint
    /// (not drift-corrected; the mean is usually not a judged metric).
    pub planted_mean_ratio: Option<f64>,
    /// Threshold used for the planted checkpoint, per judged metric.
    pub planted_threshold: BTreeMap<String, f64>,
    /// Every checkpoint's verdict.
    pub verdicts: BTreeMap<String, Verdict>,
    /// Every checkpoint's measured ratio per judged metric (`comparison.ratio`): the evidence
    /// behind false alarms and the bias of A/A comparisons.
    pub ratios: BTreeMap<String, BTreeMap<String, f64>>,
    /// Drift factor applied (baseline mode).
    pub drift_factor: Option<f64>,
    /// Measured rounds used.
    pub rounds: usize,
    /// Wall time of the trial, s.
    pub wall_s: f64,
    /// Seconds since the benchmark started, at the trial's start.
    pub started_at_s: f64,
    /// Why the trial produced no verdicts (a scenario failure), if it did not.
    pub error: Option<String>,
}

/// The counts of one mode × size, before intervals are computed ([`bench_row`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Mode.
    pub mode: BenchMode,
    /// Size (0: A/A).
    pub size: f64,
    /// Trials that produced verdicts.
    pub trials: usize,
    /// Trials that failed to run.
    pub failed: usize,
    /// Planted checkpoint regressed.
    pub detected: usize,
    /// Planted checkpoint regressed within [`DETECT_WITHIN_S`].
    pub detected_in_time: usize,
    /// Detected within [`DETECT_SMALL_WITHIN_S`].
    pub detected_small_in_time: usize,
    /// Planted checkpoint inconclusive.
    pub inconclusive: usize,
    /// Trials with a false alarm.
    pub false_alarms: usize,
    /// Median wall time per trial, s.
    pub median_wall_s: f64,
    /// Max wall time per trial, s.
    pub max_wall_s: f64,
    /// Median over trials of the planted checkpoint's p50 ratio.
    pub median_p50_ratio: Option<f64>,
}

/// The time limit of the detection target, per scenario.
pub const DETECT_WITHIN_S: f64 = 60.0;

/// The time limit of the small-plant (2 %) detection target, per scenario.
pub const DETECT_SMALL_WITHIN_S: f64 = 120.0;

/// Aggregates trial records into rows, by mode then size.
pub fn aggregate(trials: &[TrialRecord]) -> Vec<Row> {
    let mut groups: BTreeMap<(BenchMode, u64), Vec<&TrialRecord>> = BTreeMap::new();
    for t in trials {
        groups.entry((t.mode, t.size.to_bits())).or_default().push(t);
    }
    let mut rows: Vec<Row> = groups
        .into_iter()
        .map(|((mode, size), ts)| {
            let ok: Vec<&&TrialRecord> = ts.iter().filter(|t| t.error.is_none()).collect();
            let walls: Vec<f64> = ok.iter().map(|t| t.wall_s).collect();
            let ratios: Vec<f64> = ok.iter().filter_map(|t| t.planted_ratio.get("p50").copied()).collect();
            Row {
                mode,
                size: f64::from_bits(size),
                trials: ok.len(),
                failed: ts.len() - ok.len(),
                detected: ok.iter().filter(|t| t.detected).count(),
                detected_in_time: ok.iter().filter(|t| t.detected && t.wall_s <= DETECT_WITHIN_S).count(),
                detected_small_in_time: ok.iter().filter(|t| t.detected && t.wall_s <= DETECT_SMALL_WITHIN_S).count(),
                inconclusive: ok.iter().filter(|t| t.planted_verdict == Some(Verdict::Inconclusive)).count(),
                false_alarms: ok.iter().filter(|t| t.false_alarm).count(),
                median_wall_s: stats::median(&walls).unwrap_or(f64::NAN),
                max_wall_s: walls.iter().copied().fold(f64::NAN, f64::max),
                median_p50_ratio: stats::median(&ratios),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.mode.cmp(&b.mode).then(a.size.total_cmp(&b.size)));
    rows
}

/// Judges `k / n` against "rate <= target" (`at_most`) or "rate >= target".
pub fn target_state(k: usize, n: usize, target: f64, at_most: bool) -> TargetState {
    if n == 0 {
        return TargetState::NoData;
    }
    let (lo, hi) = stats::wilson(k, n);
    let (good, bad) = if at_most { (hi <= target, lo > target) } else { (lo >= target, hi < target) };
    if good {
        TargetState::Met
    } else if bad {
        TargetState::NotMet
    } else {
        TargetState::NotResolvable
    }
}

/// `k` out of `n` with its 95 % Wilson interval.
fn proportion(k: usize, n: usize) -> Proportion {
    let (ci_low, ci_high) = stats::wilson(k, n);
    Proportion { k, n, rate: (n > 0).then(|| k as f64 / n as f64), ci_low, ci_high }
}

/// The report row of an aggregated row, intervals computed; A/A rows have no detection columns.
pub fn bench_row(r: &Row) -> BenchRow {
    let planted = r.size != 0.0;
    BenchRow {
        mode: r.mode,
        size_pct: r.size,
        trials: r.trials,
        failed: r.failed,
        detected: planted.then(|| proportion(r.detected, r.trials)),
        inconclusive: planted.then_some(r.inconclusive),
        false_alarms: proportion(r.false_alarms, r.trials),
        median_wall_s: r.median_wall_s,
        max_wall_s: r.max_wall_s,
        median_p50_ratio: r.median_p50_ratio,
    }
}

/// One quality target, before it is judged.
struct Goal {
    /// Plant size of the trials it is judged on (0: A/A).
    size: f64,
    /// The target rate.
    rate: f64,
    /// "rate <= goal" rather than "rate >= goal".
    at_most: bool,
    /// The target in words, with trials and (shorter, as it always read) without.
    what: String,
    what_missing: String,
    /// The successes of a row.
    successes: fn(&Row) -> usize,
}

/// The quality targets per mode that has rows: false alarms at most 1 % of A/A trials; 5 % caught
/// in at least 95 % of trials within [`DETECT_WITHIN_S`]; 10 % in at least 99 %; in paired mode
/// also 2 % caught in at least 80 % within [`DETECT_SMALL_WITHIN_S`].
pub fn targets(rows: &[Row]) -> Vec<Target> {
    let mut out = Vec::new();
    for mode in [BenchMode::Baseline, BenchMode::Paired] {
        if !rows.iter().any(|r| r.mode == mode) {
            continue;
        }
        let mut goals = vec![
            Goal {
                size: 0.0,
                rate: 0.01,
                at_most: true,
                what: "false alarms <= 1% of A/A trials".into(),
                what_missing: "false alarms <= 1% of A/A trials".into(),
                successes: |r| r.false_alarms,
            },
            Goal {
                size: 5.0,
                rate: 0.95,
                at_most: false,
                what: format!("5% caught in >= 95% of trials within {DETECT_WITHIN_S:.0} s"),
                what_missing: format!("5% caught in >= 95% within {DETECT_WITHIN_S:.0} s"),
                successes: |r| r.detected_in_time,
            },
            Goal {
                size: 10.0,
                rate: 0.99,
                at_most: false,
                what: "10% caught in >= 99% of trials".into(),
                what_missing: "10% caught in >= 99%".into(),
                successes: |r| r.detected,
            },
        ];
        if mode == BenchMode::Paired {
            goals.push(Goal {
                size: 2.0,
                rate: 0.80,
                at_most: false,
                what: format!("2% caught in >= 80% of trials within {DETECT_SMALL_WITHIN_S:.0} s"),
                what_missing: format!("2% caught in >= 80% within {DETECT_SMALL_WITHIN_S:.0} s"),
                successes: |r| r.detected_small_in_time,
            });
        }
        for g in goals {
            let row = rows.iter().find(|r| r.mode == mode && r.size == g.size).filter(|r| r.trials > 0);
            let (what, k, n) = match row {
                Some(r) => (g.what, (g.successes)(r), r.trials),
                None => (g.what_missing, 0, 0),
            };
            out.push(Target {
                mode,
                what,
                size_pct: g.size,
                goal: g.rate,
                at_most: g.at_most,
                measured: proportion(k, n),
                state: target_state(k, n, g.rate, g.at_most),
            });
        }
    }
    out
}

/// Scores a judged report of one single-scenario trial.
fn score(report: &Report, planted: Option<&str>) -> Result<ScoredTrial, String> {
    let sc = report.scenarios.first().ok_or("the report has no scenario")?;
    if let ScenarioStatus::Failed(msg) = &sc.status {
        return Err(msg.clone());
    }
    let mut t = ScoredTrial { drift_factor: sc.drift.as_ref().map(|d| d.factor), ..ScoredTrial::default() };
    for c in &sc.checkpoints {
        t.verdicts.insert(c.name.clone(), c.verdict);
        let ratios = c
            .metrics
            .iter()
            .filter_map(|m| Some((m.metric.as_str().to_owned(), m.comparison.as_ref()?.ratio)))
            .collect();
        t.ratios.insert(c.name.clone(), ratios);
        let is_planted = planted == Some(c.name.as_str());
        if c.verdict == Verdict::Regressed && !is_planted {
            t.false_alarm_checkpoints.push(c.name.clone());
        }
        if is_planted {
            t.planted_verdict = Some(c.verdict);
            for m in &c.metrics {
                if let Some(cmp) = &m.comparison {
                    t.planted_ratio.insert(m.metric.as_str().to_owned(), cmp.ratio);
                }
                t.planted_threshold.insert(m.metric.as_str().to_owned(), m.threshold);
            }
        }
    }
    Ok(t)
}

#[derive(Default)]
struct ScoredTrial {
    verdicts: BTreeMap<String, Verdict>,
    ratios: BTreeMap<String, BTreeMap<String, f64>>,
    false_alarm_checkpoints: Vec<String>,
    planted_verdict: Option<Verdict>,
    planted_ratio: BTreeMap<String, f64>,
    planted_threshold: BTreeMap<String, f64>,
    drift_factor: Option<f64>,
}

fn means(runs: &[RunResult], cp: &str) -> Vec<f64> {
    runs.iter().filter_map(|r| r.checkpoints.get(cp)?.summary.map(|s| s.get(Metric::Mean))).collect()
}

/// Everything a trial needs that does not change between trials.
struct Setup<'a> {
    cfg: &'a Config,
    machine: Fingerprint,
    reference: Option<ReferenceSpec>,
    specs: Vec<ScenarioSpec>,
    programs: Vec<Option<PathBuf>>,
    /// Per configuration index (baseline mode only).
    baselines: Vec<Option<Baseline>>,
}

/// One trial to run.
struct Plan {
    mode: BenchMode,
    scenario: usize,
    size: f64,
    planted: Option<String>,
}

fn run_trial(setup: &Setup<'_>, plan: &Plan, seq: usize, bench_t0: Instant) -> TrialRecord {
    let cfg = setup.cfg;
    let id = plan.scenario;
    let t0 = Instant::now();
    let started_at_s = bench_t0.elapsed().as_secs_f64();
    let plant_env: Vec<(String, String)> = match &plan.planted {
        Some(cp) => vec![(PLANT_ENV.to_owned(), format!("{cp}={}", plan.size))],
        None => Vec::new(),
    };
    let spec = vec![setup.specs[id].clone()];
    let program = vec![setup.programs[id].clone()];
    let mut parts = match plan.mode {
        BenchMode::Baseline => {
            let arm = Arm { label: "current".into(), programs: program, env: plant_env };
            vec![Part {
                exp: new_experiment(cfg, spec, vec![arm], setup.reference.clone(), true),
                scenario_ids: vec![id],
                paired_label: None,
            }]
        }
        BenchMode::Paired => {
            let arms = vec![
                Arm { label: "A".into(), programs: program.clone(), env: Vec::new() },
                Arm { label: "B".into(), programs: program, env: plant_env },
            ];
            vec![Part {
                exp: new_experiment(cfg, spec, arms, None, true),
                scenario_ids: vec![id],
                paired_label: Some("A = same build; B = same build + plant".into()),
            }]
        }
    };
    let started = now_rfc3339();
    let judge_now = |parts: &[Part], policy: &Policy, look: Look, decisions: &Decisions| {
        let inv = Invocation {
            command: "verdict-bench",
            policy,
            look,
            decisions,
            machine: setup.machine.clone(),
            compare: true,
            strict: false,
            started: started.clone(),
            wall_s: t0.elapsed().as_secs_f64(),
        };
        judge::judge(inv, inputs_of(parts, cfg, &setup.baselines))
    };
    let report = run_adaptive(&mut parts, cfg, cfg.run.warmup_runs, &judge_now);
    let wall_s = t0.elapsed().as_secs_f64();
    let exp = &parts[0].exp;
    let mut rec = TrialRecord {
        seq,
        mode: plan.mode,
        scenario: cfg.scenarios[id].name.clone(),
        size: plan.size,
        planted: plan.planted.clone(),
        detected: false,
        false_alarm: false,
        false_alarm_checkpoints: Vec::new(),
        planted_verdict: None,
        planted_ratio: BTreeMap::new(),
        planted_mean_ratio: None,
        planted_threshold: BTreeMap::new(),
        verdicts: BTreeMap::new(),
        ratios: BTreeMap::new(),
        drift_factor: None,
        rounds: exp.rounds_done(),
        wall_s,
        started_at_s,
        error: None,
    };
    match score(&report, plan.planted.as_deref()) {
        Err(e) => rec.error = Some(e),
        Ok(s) => {
            rec.detected = s.planted_verdict == Some(Verdict::Regressed);
            rec.false_alarm = !s.false_alarm_checkpoints.is_empty();
            rec.false_alarm_checkpoints = s.false_alarm_checkpoints;
            rec.planted_verdict = s.planted_verdict;
            rec.planted_ratio = s.planted_ratio;
            rec.planted_threshold = s.planted_threshold;
            rec.verdicts = s.verdicts;
            rec.ratios = s.ratios;
            rec.drift_factor = s.drift_factor;
        }
    }
    if let (Some(cp), Ok(rounds)) = (&plan.planted, &exp.results[0]) {
        let cur = arm_runs(rounds, exp.arms.len() - 1);
        let base = match plan.mode {
            BenchMode::Paired => means(&arm_runs(rounds, 0), cp),
            BenchMode::Baseline => setup.baselines[id]
                .as_ref()
                .and_then(|b| b.values(cp, Metric::Mean))
                .map(<[f64]>::to_vec)
                .unwrap_or_default(),
        };
        rec.planted_mean_ratio = stats::geo_mean(&means(&cur, cp)).zip(stats::geo_mean(&base)).map(|(c, b)| c / b);
    }
    rec
}

/// Records the in-memory baseline of scenario `id`, as `baseline` does (nothing is written).
fn record_in_memory(setup: &Setup<'_>, id: usize) -> Result<Baseline> {
    let cfg = setup.cfg;
    let s = &cfg.scenarios[id];
    let arm = Arm { label: "current".into(), programs: vec![setup.programs[id].clone()], env: Vec::new() };
    let mut exp = new_experiment(cfg, vec![setup.specs[id].clone()], vec![arm], setup.reference.clone(), true);
    exp.run_rounds(cfg.run.warmup_runs, cfg.run.runs, None);
    record_baseline(s, &exp.results[0], &setup.machine, &workspace::describe_head(&cfg.root, &cfg.run.baseline_dir))
        .map_err(|why| Error::ScenarioFailed(format!("{}: recording the in-memory baseline: {why}", s.name)))
}

/// The trial schedule: for each trial index, each type (A/A then the sizes), each mode, each
/// scenario. The planted checkpoint rotates per (mode, scenario) through `checkpoints`.
fn schedule(
    trials: usize,
    sizes: &[f64],
    modes: &[BenchMode],
    scenarios: &[usize],
    checkpoints: &BTreeMap<usize, Vec<String>>,
) -> Vec<Plan> {
    let mut next: BTreeMap<(BenchMode, usize), usize> = BTreeMap::new();
    let mut plans = Vec::new();
    for _ in 0..trials {
        for size in std::iter::once(0.0).chain(sizes.iter().copied()) {
            for &mode in modes {
                for &id in scenarios {
                    let planted = if size == 0.0 {
                        None
                    } else {
                        let cps = &checkpoints[&id];
                        let k = next.entry((mode, id)).or_insert(0);
                        let cp = cps[*k % cps.len()].clone();
                        *k += 1;
                        Some(cp)
                    };
                    plans.push(Plan { mode, scenario: id, size, planted });
                }
            }
        }
    }
    plans
}

#[derive(Serialize)]
struct JsonOut<'a> {
    command: String,
    started: &'a str,
    config: String,
    runs: usize,
    max_runs: usize,
    budget_s: f64,
    min_effect: f64,
    alpha: f64,
    metrics: Vec<&'static str>,
    machine: &'a Fingerprint,
    trials_planned: usize,
    wall_s: f64,
    trials: &'a [TrialRecord],
}

/// Runs `verdict-bench`; returns 0 (the measured rates are the result, not a gate).
///
/// # Errors
/// Bad options, configuration and build errors, a baseline that cannot be recorded, the JSON
/// file that cannot be written.
pub fn run(o: &Options) -> Result<i32> {
    if o.trials == 0 {
        return Err(Error::Usage("--trials must be at least 1".into()));
    }
    let bench_t0 = Instant::now();
    let started = now_rfc3339();
    let cfg = o.select.load_config()?;
    let modes = o.mode.modes();
    let out_dir = workspace::output_dir(&cfg);
    let json_path = o.json.clone().unwrap_or_else(|| out_dir.join("verdict-bench.json"));
    let programs = o.select.build_working_tree(&cfg)?;
    let mut setup = Setup {
        cfg: &cfg,
        machine: Fingerprint::current(),
        reference: reference_spec(false)?,
        specs: specs(&cfg),
        programs,
        baselines: cfg.scenarios.iter().map(|_| None).collect(),
    };
    // Baselines (and with them each scenario's checkpoint names).
    let ids: Vec<usize> = (0..cfg.scenarios.len()).collect();
    let mut checkpoints = BTreeMap::new();
    for &id in &ids {
        let t = Instant::now();
        eprintln!(
            "verdict-bench: recording the in-memory baseline of {} ({} rounds)",
            cfg.scenarios[id].name, cfg.run.runs
        );
        let b = record_in_memory(&setup, id)?;
        eprintln!(
            "verdict-bench: baseline of {} recorded in {:.1} s",
            cfg.scenarios[id].name,
            t.elapsed().as_secs_f64()
        );
        checkpoints.insert(id, b.checkpoints.keys().cloned().collect::<Vec<String>>());
        if modes.contains(&BenchMode::Baseline) {
            setup.baselines[id] = Some(b);
        }
    }
    let plans = schedule(o.trials, &o.sizes, &modes, &ids, &checkpoints);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut records = Vec::new();
    let write_json = |records: &[TrialRecord]| -> Result<()> {
        let out = JsonOut {
            command: command.clone(),
            started: &started,
            config: cfg.path.display().to_string(),
            runs: cfg.run.runs,
            max_runs: cfg.run.max_runs,
            budget_s: cfg.run.budget_s,
            min_effect: cfg.gate.min_effect,
            alpha: cfg.gate.alpha,
            metrics: cfg.gate.metrics.iter().map(|m| m.as_str()).collect(),
            machine: &setup.machine,
            trials_planned: plans.len(),
            wall_s: bench_t0.elapsed().as_secs_f64(),
            trials: records,
        };
        let text = serde_json::to_string_pretty(&out)
            .map_err(|e| Error::io(format!("serializing {}", json_path.display()), e.into()))?;
        if let Some(dir) = json_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::at("creating", dir, e))?;
        }
        std::fs::write(&json_path, text).map_err(|e| Error::at("writing", &json_path, e))
    };
    for (i, plan) in plans.iter().enumerate() {
        let r = run_trial(&setup, plan, i + 1, bench_t0);
        if !o.select.quiet {
            let what = match &r.planted {
                Some(cp) => format!("{}% {cp}", r.size),
                None => "A/A".into(),
            };
            let outcome = match (&r.error, r.planted_verdict) {
                (Some(e), _) => format!("FAILED: {}", e.lines().next().unwrap_or("")),
                (None, Some(v)) => format!("{v:?}").to_lowercase(),
                (None, None) => "-".into(),
            };
            eprintln!(
                "[{}/{}] {:<8} {} {:<20} -> {:<12} p50 {} false alarm: {} ({} rounds, {:.1} s)",
                i + 1,
                plans.len(),
                r.mode.as_str(),
                r.scenario,
                what,
                outcome,
                r.planted_ratio.get("p50").map_or("-".into(), |x| format!("{x:.4}")),
                if r.false_alarm { r.false_alarm_checkpoints.join(",") } else { "no".into() },
                r.rounds,
                r.wall_s,
            );
        }
        records.push(r);
        write_json(&records)?;
    }
    let rows = aggregate(&records);
    let summary = BenchReport {
        schema: BENCH_SCHEMA,
        started: started.clone(),
        trials: records.len(),
        scenarios: ids.len(),
        runs: cfg.run.runs,
        max_runs: cfg.run.max_runs,
        budget_s: cfg.run.budget_s,
        min_effect: cfg.gate.min_effect,
        alpha: cfg.gate.alpha,
        detect_within_s: DETECT_WITHIN_S,
        wall_s: bench_t0.elapsed().as_secs_f64(),
        rows: rows.iter().map(bench_row).collect(),
        targets: targets(&rows),
    };
    let doc = Document::VerdictBench(&summary);
    report::render(doc, Format::Terminal(Style::detect()), &mut std::io::stdout().lock())
        .map_err(|e| Error::io("writing the verdict-bench summary", e))?;
    // The Markdown summary goes next to the per-trial JSON it summarizes.
    let md_path = json_path.with_extension("md");
    report::write_document(doc, Format::Markdown, &md_path)
        .map_err(|e| Error::io("writing the verdict-bench summary", e))?;
    eprintln!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(crate::exit_code::PASS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn quality_target_states() {
        assert_eq!(target_state(0, 10, 0.01, true), TargetState::NotResolvable);
        assert_eq!(target_state(0, 400, 0.01, true), TargetState::Met);
        assert_eq!(target_state(5, 10, 0.01, true), TargetState::NotMet);
        assert_eq!(target_state(10, 10, 0.95, false), TargetState::NotResolvable);
        assert_eq!(target_state(100, 100, 0.95, false), TargetState::Met);
        assert_eq!(target_state(2, 10, 0.95, false), TargetState::NotMet);
        assert_eq!(target_state(0, 0, 0.95, false), TargetState::NoData);
    }

    #[test]
    fn quality_parse_sizes() {
        assert_eq!(parse_sizes("1,2,5,10").unwrap(), vec![1.0, 2.0, 5.0, 10.0]);
        assert_eq!(parse_sizes(" 2.5 , 5% ").unwrap(), vec![2.5, 5.0]);
        assert!(parse_sizes("").is_err());
        assert!(parse_sizes("1,,2").is_err());
        assert!(parse_sizes("0").is_err());
        assert!(parse_sizes("-1").is_err());
        assert!(parse_sizes("x").is_err());
        assert!(parse_sizes("5,5").is_err());
        assert!(parse_sizes("nan").is_err());
    }

    /// The terminal summary of `rows`, with fixed settings.
    fn render(rows: &[Row]) -> String {
        let summary = bench_report(rows);
        let mut out = Vec::new();
        report::render(Document::VerdictBench(&summary), Format::Terminal(Style::Plain), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn bench_report(rows: &[Row]) -> BenchReport {
        BenchReport {
            schema: BENCH_SCHEMA,
            started: "2026-05-01T12:00:00Z".into(),
            trials: rows.iter().map(|r| r.trials + r.failed).sum(),
            scenarios: 1,
            runs: 8,
            max_runs: 32,
            budget_s: 60.0,
            min_effect: 0.03,
            alpha: 0.05,
            detect_within_s: DETECT_WITHIN_S,
            wall_s: 300.0,
            rows: rows.iter().map(bench_row).collect(),
            targets: targets(rows),
        }
    }

    fn rec(mode: BenchMode, size: f64, detected: bool, false_alarm: bool, wall_s: f64) -> TrialRecord {
        let planted = (size > 0.0).then(|| "cp".to_owned());
        TrialRecord {
            seq: 0,
            mode,
            scenario: "s".into(),
            size,
            planted: planted.clone(),
            detected,
            false_alarm,
            false_alarm_checkpoints: if false_alarm { vec!["other".into()] } else { Vec::new() },
            planted_verdict: planted.map(|_| if detected { Verdict::Regressed } else { Verdict::Inconclusive }),
            planted_ratio: BTreeMap::from([("p50".to_owned(), 1.0 + size / 100.0)]),
            planted_mean_ratio: None,
            planted_threshold: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            ratios: BTreeMap::new(),
            drift_factor: None,
            rounds: 8,
            wall_s,
            started_at_s: 0.0,
            error: None,
        }
    }

    #[test]
    fn quality_aggregate_synthetic_trials() {
        use BenchMode::*;
        let mut trials = vec![
            rec(Paired, 5.0, true, false, 30.0),
            rec(Baseline, 0.0, false, false, 10.0),
            rec(Baseline, 0.0, false, true, 20.0),
            rec(Baseline, 0.0, false, false, 40.0),
            rec(Baseline, 5.0, true, false, 30.0),
            rec(Baseline, 5.0, true, true, 70.0), // detected, but too late for the target
            rec(Baseline, 5.0, false, false, 50.0),
        ];
        let mut failed = rec(Baseline, 5.0, false, false, 1.0);
        failed.error = Some("crashed".into());
        trials.push(failed);
        let rows = aggregate(&trials);
        assert_eq!(rows.len(), 3);
        let aa = &rows[0];
        assert_eq!((aa.mode, aa.size, aa.trials, aa.false_alarms), (Baseline, 0.0, 3, 1));
        assert_eq!((aa.median_wall_s, aa.max_wall_s), (20.0, 40.0));
        let five = &rows[1];
        assert_eq!((five.mode, five.size, five.trials, five.failed), (Baseline, 5.0, 3, 1));
        assert_eq!((five.detected, five.detected_in_time, five.inconclusive, five.false_alarms), (2, 1, 1, 1));
        assert_eq!((five.median_wall_s, five.max_wall_s), (50.0, 70.0));
        assert!(close(five.median_p50_ratio.unwrap(), 1.05));
        assert_eq!((rows[2].mode, rows[2].detected, rows[2].trials), (Paired, 1, 1));
        let table = render(&rows);
        assert!(table.contains("1/3 33.3%"), "{table}");
        assert!(table.contains("5% caught in >= 95% of trials within 60 s: measured 1/3"), "{table}");
        assert!(table.contains("paired   2% caught in >= 80% within 120 s: no 2% trials"), "{table}");
        assert!(table.contains("10% caught in >= 99%: no 10% trials"), "{table}");
    }

    #[test]
    fn quality_schedule_interleaves_and_rotates() {
        let cps = BTreeMap::from([(0, vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])]);
        let plans = schedule(2, &[1.0, 5.0], &[BenchMode::Baseline, BenchMode::Paired], &[0], &cps);
        assert_eq!(plans.len(), 2 * 3 * 2);
        let sizes: Vec<f64> = plans.iter().map(|p| p.size).collect();
        assert_eq!(sizes, vec![0.0, 0.0, 1.0, 1.0, 5.0, 5.0, 0.0, 0.0, 1.0, 1.0, 5.0, 5.0]);
        let base: Vec<Option<&str>> =
            plans.iter().filter(|p| p.mode == BenchMode::Baseline).map(|p| p.planted.as_deref()).collect();
        assert_eq!(base, vec![None, Some("a"), Some("b"), None, Some("c"), Some("a")]);
    }
}
