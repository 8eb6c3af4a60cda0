//! The commands: one module each, each a `run(&Options) -> Result<i32>` over a plain options
//! struct (never clap's types, so other front ends and tests call them directly).
//!
//! | command | module | experiment | judged against |
//! |---|---|---|---|
//! | `regress` | [`regress`] | the working tree, 1 arm (+ reference runs), or paired with the baseline's commit | committed baselines |
//! | `baseline` | [`baseline`] | the working tree, 1 arm + reference runs | nothing (writes baselines) |
//! | `compare` | [`compare`] | two revisions, 2 arms interleaved | arm A |
//! | `calibrate` | [`calibrate`] | the working tree twice, 2 arms (A/A) | itself (noise, false alarms) |
//! | `verdict-bench` | [`verdict_bench`] | many trials with planted slowdowns | in-memory baselines / arm A |
//! | `run` | [`run`] | any program | nothing (measure only) |
//! | `snoop` | [`snoop`] | any program or pid, through uprobes | nothing (measure only) |
//! | `events` | [`events`] | tracepoints (a command, a pid, or the system) | nothing (measure only) |
//! | `diff` | [`diff`] | nothing: two saved JSON reports | report A's runs, as a baseline |
//! | `history` | [`history`] | nothing: the `--history` file | its own earlier runs (change points) |
//!
//! This module holds what they share: loading the configuration ([`Selection`]), building
//! ([`crate::workspace::build_revision`]), setting up an [`Experiment`], adaptive sampling
//! (`run_adaptive`), turning rounds into judge inputs (`inputs_of`), recording a baseline from
//! rounds (`record_baseline`) and writing the report ([`finish`]). Everything measured goes
//! through [`crate::rounds`], everything judged through [`crate::judge`], everything shown through
//! [`crate::report`].

pub mod baseline;
pub mod calibrate;
pub mod compare;
pub mod diff;
pub mod events;
pub mod history;
pub mod instructions;
pub mod regress;
pub mod run;
pub mod snoop;
pub mod snoop_cost;
pub mod verdict_bench;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::baseline::{Baseline, BaselineError, Pooled, Recorded};
use crate::config::{Config, Scenario};
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::judge::{self, Against, Decisions, Look, Policy, ScenarioInput};
use crate::model::{Report, RunResult};
use crate::reference;
use crate::report::{self, Outputs, Style};
use crate::rounds::{look_schedule, Arm, Experiment, ReferenceSpec, Round, ScenarioSpec};
use crate::runner::{self, RunOutput};
use crate::stats::Metric;
use crate::workspace::{self, BuildFlags, Revision};

/// Which configuration, which of its scenarios, and how to build and run them: the options every
/// configuration-based command shares.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Configuration file (default: `funcscope.toml` found from the current directory upwards).
    pub config: Option<PathBuf>,
    /// Only these scenarios (empty: all).
    pub scenarios: Vec<String>,
    /// Override of the measured runs (rounds) per scenario; at least 2.
    pub runs: Option<usize>,
    /// Override of the adaptive sampling budget, seconds (0: a fixed number of rounds).
    pub budget_s: Option<f64>,
    /// Use the binaries already built instead of building.
    pub no_build: bool,
    /// No progress lines.
    pub quiet: bool,
}

impl Selection {
    /// Loads the configuration and applies the overrides and the scenario filter.
    ///
    /// # Errors
    /// A missing or malformed configuration, fewer than 2 runs, an unknown scenario name.
    pub fn load_config(&self) -> Result<Config> {
        let path = match &self.config {
            Some(p) => p.clone(),
            None => Config::find(&std::env::current_dir().map_err(|e| Error::io("the current directory", e))?)?,
        };
        let mut cfg = Config::load(&path)?;
        if let Some(r) = self.runs {
            if r < 2 {
                return Err(Error::Usage(format!("--runs {r}: at least 2 runs are needed")));
            }
            if r > crate::config::MAX_RUNS {
                return Err(Error::Usage(format!("--runs {r}: more than {}; use fewer", crate::config::MAX_RUNS)));
            }
            cfg.run.runs = r;
        }
        if let Some(b) = self.budget_s {
            if !(0.0..=crate::config::MAX_SECONDS).contains(&b) {
                return Err(Error::Usage(format!(
                    "--budget {b}: expected seconds in [0, {}] (0: a fixed number of rounds)",
                    crate::config::MAX_SECONDS
                )));
            }
            cfg.run.budget_s = b;
            // An explicit per-scenario budget is what the caller wants: no configured cap cuts it.
            cfg.run.total_budget_s = 0.0;
        }
        if !self.scenarios.is_empty() {
            for want in &self.scenarios {
                if !cfg.scenarios.iter().any(|s| &s.name == want) {
                    let known: Vec<&str> = cfg.scenarios.iter().map(|s| s.name.as_str()).collect();
                    return Err(Error::Usage(format!(
                        "--scenario {want}: no such scenario in {} (known: {})",
                        cfg.path.display(),
                        known.join(", ")
                    )));
                }
            }
            cfg.scenarios.retain(|s| self.scenarios.contains(&s.name));
        }
        check_event_pairs(&cfg)?;
        Ok(cfg)
    }

    /// How builds run under these options.
    pub fn build_flags(&self) -> BuildFlags {
        BuildFlags { no_build: self.no_build, quiet: self.quiet }
    }

    /// Builds the working tree; every scenario of the configuration must have its program.
    pub(crate) fn build_working_tree(&self, cfg: &Config) -> Result<Vec<Option<PathBuf>>> {
        workspace::build_revision(cfg, None, "", "the working tree", self.build_flags())?.require_all(cfg)
    }
}

pub(crate) fn specs(cfg: &Config) -> Vec<ScenarioSpec> {
    cfg.scenarios
        .iter()
        .map(|s| ScenarioSpec {
            name: s.name.clone(),
            args: s.args.clone(),
            env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            uprobes: s.uprobe.iter().map(|u| gate_probe(cfg, u)).collect(),
            event_pairs: s.event_pair.iter().map(pair_spec).collect(),
        })
        .collect()
}

/// A `[[scenario.event_pair]]` as the runner takes it.
fn pair_spec(p: &crate::config::EventPairCheckpoint) -> crate::events::gate::PairSpec {
    crate::events::gate::PairSpec { name: p.name.clone(), from: p.from.clone(), to: p.to.clone(), key: p.key.clone() }
}

/// Checks every `[[scenario.event_pair]]` of `cfg` against this machine's tracefs before anything
/// is built or run: a selector that does not parse, an event that does not exist, a key or
/// filter field the events lack is a configuration error naming the file and the entry's line.
/// Other failures (tracefs unreadable, no privilege) are left to the run, which reports them.
fn check_event_pairs(cfg: &Config) -> Result<()> {
    use crate::events::EventsError;
    for s in &cfg.scenarios {
        for p in &s.event_pair {
            if let Err(
                e @ (EventsError::Selector(_)
                | EventsError::NoEvent { .. }
                | EventsError::UnknownField { .. }
                | EventsError::Usage(_)),
            ) = pair_spec(p).check()
            {
                return Err(crate::config::ConfigError::Invalid {
                    path: cfg.path.clone(),
                    line: p.line,
                    message: format!("scenario {:?}: [[scenario.event_pair]] {:?}: {e}", s.name, p.name),
                }
                .into());
            }
        }
    }
    Ok(())
}

/// A `[[scenario.uprobe]]` as the runner takes it: `target`'s FILE split off (a relative path
/// with a `/` starts at the configuration's directory), or `symbol` in the program itself.
pub(crate) fn gate_probe(cfg: &Config, u: &crate::config::UprobeCheckpoint) -> crate::snoop::gate::GateProbe {
    let (file, symbol) = match (&u.target, &u.symbol) {
        (Some(t), _) => match crate::snoop::elf::split_spec(t) {
            Ok((f, s)) => {
                let f = PathBuf::from(f);
                let f = if f.is_relative() && f.components().count() > 1 { cfg.root.join(f) } else { f };
                (Some(f), s.to_owned())
            }
            // Validated by the configuration; a leftover is resolved (and refused) at the run.
            Err(_) => (Some(PathBuf::from(t)), String::new()),
        },
        (None, s) => (None, s.clone().unwrap_or_default()),
    };
    crate::snoop::gate::GateProbe { name: u.name.clone(), file, symbol }
}

/// The reference workload: this very binary's hidden `__reference` subcommand (`None` when
/// `disabled`).
pub(crate) fn reference_spec(disabled: bool) -> Result<Option<ReferenceSpec>> {
    if disabled {
        return Ok(None);
    }
    let program = std::env::current_exe().map_err(|e| Error::io("locating the running binary", e))?;
    Ok(Some(ReferenceSpec {
        program,
        args: vec![
            reference::REFERENCE_SCENARIO.into(),
            "--duration-ms".into(),
            crate::drift::REFERENCE_RUN_MS.to_string(),
        ],
    }))
}

pub(crate) fn new_experiment(
    cfg: &Config,
    scenarios: Vec<ScenarioSpec>,
    arms: Vec<Arm>,
    reference: Option<ReferenceSpec>,
    quiet: bool,
) -> Experiment {
    let mut e = Experiment::new(scenarios, arms, reference);
    e.timeout = Duration::from_secs_f64(cfg.run.timeout_s);
    e.attach_timeout = Duration::from_secs_f64(cfg.run.attach_timeout_s);
    e.quiet = quiet;
    e.cpu = if cfg.run.pin { runner::measurement_cpu() } else { None };
    e.fresh_copy = cfg.run.fresh_copy;
    e
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The report files of `command`: the given paths, else `TARGET/funcscope/<command>.{json,md}`.
pub(crate) fn outputs(cfg: &Config, command: &str, json: &Option<PathBuf>, markdown: &Option<PathBuf>) -> Outputs {
    let dir = workspace::output_dir(cfg);
    Outputs {
        json: Some(json.clone().unwrap_or_else(|| dir.join(format!("{command}.json")))),
        markdown: Some(markdown.clone().unwrap_or_else(|| dir.join(format!("{command}.md")))),
        junit: None,
        html: None,
        history: None,
        github_annotations: false,
    }
}

/// Marks the accepted regressions in `report` (see [`judge::accept`]); warns about acceptances that
/// match nothing (a stale `gate.accept` entry, or a typo).
pub(crate) fn accept_all(report: &mut Report, accepted: &[judge::Accept]) {
    for u in judge::accept(report, accepted) {
        eprintln!("warning: accepted {}/{} matches no checkpoint of this run ({})", u.scenario, u.checkpoint, u.reason);
    }
}

/// Prints the report and writes its files; returns its exit code.
pub fn finish(report: &Report, outputs: Outputs) -> Result<i32> {
    let mut stdout = std::io::stdout().lock();
    report::render_terminal(report, &mut stdout, Style::detect()).map_err(|e| Error::io("writing the report", e))?;
    if outputs.github_annotations {
        report::render_github_annotations(report, &mut stdout).map_err(|e| Error::io("writing the annotations", e))?;
    }
    report::write_outputs(report, &outputs).map_err(|e| Error::io("writing the report files", e))?;
    for p in outputs.json.iter().chain(&outputs.markdown).chain(&outputs.junit).chain(&outputs.html) {
        eprintln!("wrote {}", p.display());
    }
    if let Some((p, commit)) = &outputs.history {
        crate::history::append(p, &crate::history::entry_of(report, commit))
            .map_err(|e| Error::Usage(format!("appending to the history: {e}")))?;
        eprintln!("appended {} to {}", workspace::short_sha(commit), p.display());
    }
    Ok(report.exit_code)
}

/// One experiment of a gate invocation and the scenarios (indices into the configuration) it
/// covers.
pub(crate) struct Part {
    pub(crate) exp: Experiment,
    pub(crate) scenario_ids: Vec<usize>,
    /// Paired: the label of arm A; baseline mode: None.
    pub(crate) paired_label: Option<String>,
}

/// A scenario that failed (or could not be set up): its judge input.
pub(crate) fn failed_input(name: &str, message: String) -> ScenarioInput {
    ScenarioInput { name: name.to_owned(), outcome: Err(message), against: Against::Nothing, reference: None }
}

/// The judge inputs of every part, in configuration order.
pub(crate) fn inputs_of(parts: &[Part], cfg: &Config, baselines: &[Option<Baseline>]) -> Vec<ScenarioInput> {
    let mut by_id: BTreeMap<usize, ScenarioInput> = BTreeMap::new();
    for part in parts {
        for (k, &id) in part.scenario_ids.iter().enumerate() {
            let name = cfg.scenarios[id].name.clone();
            let input = match (&part.exp.results[k], &part.paired_label) {
                (Err(e), _) => failed_input(&name, e.clone()),
                (Ok(rounds), Some(label)) => ScenarioInput {
                    name,
                    outcome: Ok(arm_runs(rounds, 1)),
                    against: Against::Paired { label: label.clone(), runs: arm_runs(rounds, 0) },
                    reference: None,
                },
                (Ok(rounds), None) => ScenarioInput {
                    name,
                    outcome: Ok(arm_runs(rounds, 0)),
                    against: match &baselines[id] {
                        Some(b) => Against::Baseline(Box::new(b.clone())),
                        None => Against::Nothing,
                    },
                    reference: reference_runs(rounds),
                },
            };
            by_id.insert(id, input);
        }
    }
    by_id.into_values().collect()
}

/// Attaches the per-call distributions of every scenario the parts ran to `report` (for the
/// plots; see [`crate::distribution`]): the current arm's pooled samples against arm A's
/// (paired) or the baseline's pooled quantiles.
pub(crate) fn attach_distributions(report: &mut Report, parts: &[Part], cfg: &Config, baselines: &[Option<Baseline>]) {
    use crate::distribution::{attach, ArmRuns, Side};
    for part in parts {
        for (k, &id) in part.scenario_ids.iter().enumerate() {
            let Ok(rounds) = &part.exp.results[k] else { continue };
            let Some(s) = report.scenarios.iter_mut().find(|s| s.name == cfg.scenarios[id].name) else { continue };
            let arm = |a: usize| ArmRuns { runs: rounds.iter().map(|r| &r.arms[a]).collect() };
            match &part.paired_label {
                Some(_) => attach(s, &arm(1), &Side::Arm(arm(0))),
                None => {
                    let base = match baselines.get(id) {
                        Some(Some(b)) => {
                            Side::Baseline(b.checkpoints.iter().map(|(n, c)| (n.clone(), c.pooled)).collect())
                        }
                        _ => Side::None,
                    };
                    attach(s, &arm(0), &base)
                }
            }
        }
    }
}

/// The runs of arm `arm` over the rounds.
pub(crate) fn arm_runs(rounds: &[Round], arm: usize) -> Vec<RunResult> {
    rounds.iter().map(|r| r.arms[arm].result.clone()).collect()
}

/// The reference run of every round, if every round has one.
pub(crate) fn reference_runs(rounds: &[Round]) -> Option<Vec<RunResult>> {
    rounds.iter().map(|r| r.reference.clone()).collect()
}

/// The judge of one look: the parts so far, the policy, the look, the verdicts frozen earlier.
pub(crate) type JudgeNow<'a> = dyn Fn(&[Part], &Policy, Look, &Decisions) -> Report + 'a;

/// Runs the parts' rounds look by look (see [`look_schedule`]), judging after each, until every
/// scenario's gated verdicts are decided, the schedule ends, or the budget ([`sampling_budget`],
/// counted from the first run) is spent. A scenario whose gated verdicts are all decided
/// stops running; decided verdicts are frozen. Whether a look is the last, and so spends the rest
/// of alpha (see [`Policy`]), is settled from the clock before its verdicts are computed: if the
/// rounds to the next look would not fit in the budget at the pace so far, this look is the last.
pub(crate) fn run_adaptive(parts: &mut [Part], cfg: &Config, warmup: usize, judge_now: &JudgeNow<'_>) -> Report {
    let initial = cfg.run.runs;
    let max_rounds = cfg.run.max_runs.max(initial);
    let adaptive = cfg.run.budget_s > 0.0 && max_rounds > initial;
    let schedule = if adaptive { look_schedule(initial, max_rounds) } else { vec![initial] };
    let policy = Policy::from_config(cfg, schedule.clone());
    let scenarios: usize = parts.iter().map(|p| p.scenario_ids.len()).sum();
    let t0 = Instant::now();
    let deadline = adaptive.then(|| t0 + sampling_budget(&cfg.run, scenarios));
    let mut decisions = Decisions::default();
    let mut report = None;
    let mut done_rounds = 0;
    // The planned looks; the last one may be moved earlier to what the budget can still pay for.
    let mut plan = schedule.clone();
    let mut k = 0;
    while k < plan.len() {
        let target = plan[k];
        let looked = Instant::now();
        for p in parts.iter_mut() {
            let more = target.saturating_sub(p.exp.rounds_done());
            p.exp.run_rounds(if k == 0 { warmup } else { 0 }, more, if k == 0 { None } else { deadline });
        }
        let rounds_now = parts.iter().map(|p| p.exp.rounds_done()).max().unwrap_or(0);
        // Is there time for the next look? Projected from this look's pace (rounds per second).
        let pace = looked.elapsed().as_secs_f64() / rounds_now.saturating_sub(done_rounds).max(1) as f64;
        done_rounds = rounds_now;
        let next_fits = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now()).as_secs_f64();
                match next_look(&plan[k + 1..], rounds_now, pace, left) {
                    NextLook::Planned => true,
                    NextLook::Sooner(n) => {
                        plan.truncate(k + 1);
                        plan.push(n);
                        true
                    }
                    NextLook::None => false,
                }
            }
            None => false,
        };
        let any_active = parts.iter().any(|p| p.exp.any_active());
        let look = policy.look(k, !next_fits || !any_active);
        let r = judge_now(parts, &policy, look, &decisions);
        decisions.record(&r);
        let decided = judge::decided_scenarios(&r);
        for p in parts.iter_mut() {
            for (local, &id) in p.scenario_ids.iter().enumerate() {
                if decided.get(&cfg.scenarios[id].name).copied().unwrap_or(false) {
                    p.exp.retire(local);
                }
            }
        }
        let stop = look.last || !parts.iter().any(|p| p.exp.any_active());
        report = Some(r);
        if stop {
            break;
        }
        k += 1;
    }
    let mut report = report.unwrap_or_else(|| judge_now(parts, &policy, policy.single_look(), &decisions));
    report.sampling_s = Some(t0.elapsed().as_secs_f64());
    report
}

/// What comes after a look of adaptive sampling (see [`next_look`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NextLook {
    /// The next planned look fits in the budget.
    Planned,
    /// It does not, but this many rounds (in all) do, and they add enough to be worth a look:
    /// that becomes the last look.
    Sooner(usize),
    /// This look is the last.
    None,
}

/// Whether adaptive sampling goes on after a look at `rounds_now` rounds, given the looks still
/// planned (`rest`), the pace (seconds per round) and the seconds left in the budget.
///
/// Why a sooner last look: the planned looks double, so when the next one does not fit, up to
/// half of the budget would be left unspent; the rounds it can pay for still narrow every
/// interval (an eighth more rounds: about 6 % narrower), so they get a last look of their own.
/// (With a quarter as the floor, a `regress` of this repository stopped at 72 s of its 90 s
/// when 23 more rounds fitted and 24 were needed.)
pub(crate) fn next_look(rest: &[usize], rounds_now: usize, pace_s: f64, left_s: f64) -> NextLook {
    let Some(&next) = rest.first() else { return NextLook::None };
    let affordable = if pace_s > 0.0 && left_s.is_finite() { (left_s / pace_s).floor().max(0.0) } else { 0.0 };
    let wanted = next.saturating_sub(rounds_now);
    if (wanted as f64) <= affordable {
        return NextLook::Planned;
    }
    // Worth a look: at least an eighth more rounds (and at least 4).
    let extra = affordable as usize;
    if extra >= (rounds_now / 8).max(4) {
        NextLook::Sooner(rounds_now + extra)
    } else {
        NextLook::None
    }
}

/// How long adaptive sampling may take for `scenarios` scenarios: `budget_s` each, pooled (a
/// scenario decided early leaves its time to the others), capped by `total_budget_s` when set.
pub(crate) fn sampling_budget(run: &crate::config::RunOptions, scenarios: usize) -> Duration {
    let pooled = run.budget_s * scenarios.max(1) as f64;
    let s = if run.total_budget_s > 0.0 { pooled.min(run.total_budget_s) } else { pooled };
    Duration::from_secs_f64(s)
}

/// Every scenario's committed baseline (`None` where there is none); a malformed one is an error
/// naming its file and line.
pub(crate) fn load_baselines(cfg: &Config) -> Result<Vec<Option<Baseline>>> {
    cfg.scenarios
        .iter()
        .map(|s| match Baseline::load(&cfg.baseline_path(&s.name)) {
            Ok(b) => Ok(Some(b)),
            Err(BaselineError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        })
        .collect()
}

/// Why no baseline could be recorded from an experiment's rounds.
#[derive(Debug)]
pub(crate) enum NotRecorded {
    /// The scenario failed to run.
    Failed(String),
    /// Samples were lost, so the runs are partial.
    Lost(u64),
    /// The runs do not make a valid baseline.
    Invalid(BaselineError),
}

impl fmt::Display for NotRecorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotRecorded::Failed(e) => write!(f, "the scenario failed:\n{e}"),
            NotRecorded::Lost(n) => write!(
                f,
                "{n} samples were lost (ring overrun), so the runs are partial; raise the ring capacity or lower \
                 the call rate"
            ),
            NotRecorded::Invalid(e) => write!(f, "{e}"),
        }
    }
}

/// The baseline of `scenario` from the rounds of a one-arm experiment (arm 0, plus its reference
/// runs when every round has one). Refused from a failed or partial run: nothing is ever recorded
/// from a crash, a timeout or lost samples. `baseline` writes it; `verdict-bench` keeps it in
/// memory.
pub(crate) fn record_baseline(
    scenario: &Scenario,
    outcome: &std::result::Result<Vec<Round>, String>,
    machine: &Fingerprint,
    commit: &str,
) -> std::result::Result<Baseline, NotRecorded> {
    let rounds = outcome.as_ref().map_err(|e| NotRecorded::Failed(e.clone()))?;
    let outs: Vec<&RunOutput> = rounds.iter().map(|r| &r.arms[0]).collect();
    let results: Vec<RunResult> = outs.iter().map(|o| o.result.clone()).collect();
    let lost: u64 = results.iter().flat_map(|r| r.checkpoints.values()).map(|c| c.lost).sum();
    if lost > 0 {
        return Err(NotRecorded::Lost(lost));
    }
    let mut machine = machine.clone();
    machine.tick_hz = results.first().map_or(0.0, |r| r.tick_hz);
    let recorded = Recorded {
        commit: commit.to_owned(),
        date: now_rfc3339(),
        runs: results.len(),
        funcscope: env!("CARGO_PKG_VERSION").to_owned(),
        args: scenario.args.clone(),
        sessions: Vec::new(),
    };
    let b =
        Baseline::from_runs(&scenario.name, &results, &pool(&outs), machine, recorded).map_err(NotRecorded::Invalid)?;
    match reference_runs(rounds) {
        Some(refs) => crate::drift::attach_reference(b, &refs).map_err(NotRecorded::Invalid),
        None => Ok(b),
    }
}

/// Pooled quantiles per checkpoint over all samples of all runs.
fn pool(runs: &[&RunOutput]) -> BTreeMap<String, Pooled> {
    let mut merged: BTreeMap<String, hdrhistogram::Histogram<u64>> = BTreeMap::new();
    for r in runs {
        for (cp, h) in &r.pooled {
            match merged.get_mut(cp) {
                Some(m) => {
                    let _ = m.add(h);
                }
                None => {
                    merged.insert(cp.clone(), h.clone());
                }
            }
        }
    }
    merged
        .into_iter()
        .map(|(cp, h)| {
            // Every pooled metric is a quantile.
            let q = |m: Metric| h.value_at_quantile(m.quantile().unwrap_or(0.5)) as f64 / runner::POOL_UNITS_PER_NS;
            (cp, Pooled::from_fn(q))
        })
        .collect()
}

/// Labels a built revision for reports: `working tree (<head>)` or `<rev> (<sha>)`.
pub(crate) fn revision_label(cfg: &Config, rev: Option<&str>, built: &Revision) -> String {
    match (rev, &built.sha) {
        (Some(rev), Some(sha)) => format!("{rev} ({})", workspace::short_sha(sha)),
        _ => format!(
            "working tree ({})",
            workspace::short_sha(&workspace::describe_head(&cfg.root, &cfg.run.baseline_dir))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampling_budget_is_pooled_per_scenario_and_capped_by_the_total() {
        let mut run = crate::config::RunOptions { budget_s: 60.0, ..Default::default() };
        assert_eq!(sampling_budget(&run, 5), Duration::from_secs(300), "60 s each, pooled");
        assert_eq!(sampling_budget(&run, 0), Duration::from_secs(60), "never below one scenario's");
        run.total_budget_s = 90.0;
        assert_eq!(sampling_budget(&run, 5), Duration::from_secs(90), "the cap");
        assert_eq!(sampling_budget(&run, 1), Duration::from_secs(60), "a cap above the pool changes nothing");
    }

    #[test]
    fn a_look_that_does_not_fit_is_moved_to_what_the_budget_can_pay_for() {
        // 48 rounds done at 0.5 s each, next look at 96: 24 s needed.
        assert_eq!(next_look(&[96, 192], 48, 0.5, 30.0), NextLook::Planned);
        assert_eq!(next_look(&[96, 192], 48, 0.5, 10.0), NextLook::Sooner(68), "20 more rounds fit");
        assert_eq!(next_look(&[96, 192], 48, 0.5, 5.0), NextLook::Sooner(58), "10 more is over an eighth of 48");
        assert_eq!(next_look(&[192], 96, 0.5, 5.0), NextLook::None, "10 more is under an eighth of 96");
        assert_eq!(next_look(&[96], 12, 0.5, 2.0), NextLook::Sooner(16), "at least 4 rounds");
        assert_eq!(next_look(&[96], 12, 0.5, 1.0), NextLook::None);
        assert_eq!(next_look(&[], 384, 0.5, 1e6), NextLook::None, "the schedule's end");
        assert_eq!(next_look(&[96], 48, 0.0, 10.0), NextLook::None, "no pace measured: no projection");
    }

    #[test]
    fn an_explicit_budget_lifts_the_configured_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("funcscope.toml");
        std::fs::write(&path, "[run]\nbudget_s = 60\ntotal_budget_s = 90\n[[scenario]]\nname = \"a\"\nbin = \"a\"\n")
            .unwrap();
        let load = |budget_s| Selection { config: Some(path.clone()), budget_s, ..Selection::default() }.load_config();
        let cfg = load(None).unwrap();
        assert_eq!((cfg.run.budget_s, cfg.run.total_budget_s), (60.0, 90.0));
        let cfg = load(Some(30.0)).unwrap();
        assert_eq!((cfg.run.budget_s, cfg.run.total_budget_s), (30.0, 0.0));
    }
}
