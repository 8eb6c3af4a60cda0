//! The commands' orchestration: which builds run, in which experimental design, judged how.
//! Everything measured goes through [`crate::rounds`], everything judged through
//! [`crate::judge`], everything shown through [`crate::report`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::baseline::{Baseline, BaselineError, Pooled, Recorded};
use crate::config::Config;
use crate::exit_code;
use crate::fingerprint::Fingerprint;
use crate::judge::{self, Against, Invocation, ScenarioInput};
use crate::model::{Report, RunResult};
use crate::reference;
use crate::report::{self, Outputs, Style};
use crate::rounds::{Arm, Experiment, ReferenceSpec, Round, ScenarioSpec};
use crate::runner::{self, RunOutput};
use crate::workspace::{self, SetupResult};

pub(crate) use crate::rounds::{planned_looks, ADAPTIVE_GROWTH};

/// Options shared by the gate commands.
#[derive(Clone, Debug, Default)]
pub struct GateOptions {
    /// Configuration file (default: found from the current directory).
    pub config: Option<PathBuf>,
    /// Only these scenarios.
    pub scenarios: Vec<String>,
    /// Override of measured runs (rounds).
    pub runs: Option<usize>,
    /// Use prebuilt binaries.
    pub no_build: bool,
    /// Less output.
    pub quiet: bool,
    /// JSON report path.
    pub json: Option<PathBuf>,
    /// Markdown report path.
    pub markdown: Option<PathBuf>,
    /// Cross-machine regressions gate.
    pub strict: bool,
    /// Always compare paired against the baseline's commit.
    pub paired: bool,
    /// Time budget for adaptive sampling, seconds (None: from the configuration).
    pub budget_s: Option<f64>,
    /// Do not run the reference workload (no drift correction).
    pub no_reference: bool,
}

/// Loads and narrows the configuration.
pub fn load_config(o: &GateOptions) -> SetupResult<Config> {
    let path = match &o.config {
        Some(p) => p.clone(),
        None => Config::find(&std::env::current_dir().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?,
    };
    let mut cfg = Config::load(&path).map_err(|e| e.to_string())?;
    if let Some(r) = o.runs {
        if r < 2 {
            return Err(format!("--runs {r}: at least 2 runs are needed"));
        }
        cfg.run.runs = r;
        for s in &mut cfg.scenarios {
            s.runs = None;
        }
    }
    if let Some(b) = o.budget_s {
        cfg.run.budget_s = b;
    }
    if !o.scenarios.is_empty() {
        for want in &o.scenarios {
            if !cfg.scenarios.iter().any(|s| &s.name == want) {
                let known: Vec<&str> = cfg.scenarios.iter().map(|s| s.name.as_str()).collect();
                return Err(format!(
                    "--scenario {want}: no such scenario in {} (known: {})",
                    cfg.path.display(),
                    known.join(", ")
                ));
            }
        }
        cfg.scenarios.retain(|s| o.scenarios.contains(&s.name));
    }
    Ok(cfg)
}

pub(crate) fn specs(cfg: &Config) -> Vec<ScenarioSpec> {
    cfg.scenarios
        .iter()
        .map(|s| ScenarioSpec {
            name: s.name.clone(),
            args: s.args.clone(),
            env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
        .collect()
}

/// The reference workload: this very binary's hidden `__reference` subcommand.
pub fn reference_spec() -> SetupResult<ReferenceSpec> {
    let program = std::env::current_exe().map_err(|e| format!("locating the running binary: {e}"))?;
    Ok(ReferenceSpec {
        program,
        args: vec![
            reference::REFERENCE_SCENARIO.into(),
            "--duration-ms".into(),
            crate::drift::REFERENCE_RUN_MS.to_string(),
        ],
    })
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
    e.cpu = if cfg.run.pin { crate::runner::measurement_cpu() } else { None };
    e
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Prints the report and writes its files; returns its exit code.
pub fn finish(report: &Report, outputs: Outputs) -> SetupResult<i32> {
    let mut stdout = std::io::stdout().lock();
    report::render_terminal(report, &mut stdout, Style::detect()).map_err(|e| format!("writing the report: {e}"))?;
    report::write_outputs(report, &outputs).map_err(|e| format!("writing the report files: {e}"))?;
    for p in outputs.json.iter().chain(outputs.markdown.iter()) {
        eprintln!("wrote {}", p.display());
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

/// The judge inputs of every part, in configuration order.
pub(crate) fn inputs_of(parts: &[Part], cfg: &Config, baselines: &[Option<Baseline>]) -> Vec<ScenarioInput> {
    let mut by_id: BTreeMap<usize, ScenarioInput> = BTreeMap::new();
    for part in parts {
        for (k, &id) in part.scenario_ids.iter().enumerate() {
            let name = cfg.scenarios[id].name.clone();
            let input = match (&part.exp.results[k], &part.paired_label) {
                (Err(e), _) => {
                    ScenarioInput { name, outcome: Err(e.clone()), against: Against::Nothing, reference: None }
                }
                (Ok(rounds), Some(label)) => ScenarioInput {
                    name,
                    outcome: Ok(rounds.iter().map(|r| r.arms[1].result.clone()).collect()),
                    against: Against::Paired {
                        label: label.clone(),
                        runs: rounds.iter().map(|r| r.arms[0].result.clone()).collect(),
                    },
                    reference: None,
                },
                (Ok(rounds), None) => ScenarioInput {
                    name,
                    outcome: Ok(rounds.iter().map(|r| r.arms[0].result.clone()).collect()),
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

/// The reference run of every round, if every round has one.
pub(crate) fn reference_runs(rounds: &[Round]) -> Option<Vec<RunResult>> {
    rounds.iter().map(|r| r.reference.clone()).collect()
}

/// Runs the parts' initial rounds, judges, and keeps adding rounds while some verdict is
/// inconclusive and the budget lasts.
pub(crate) fn run_adaptive(
    parts: &mut [Part],
    cfg: &Config,
    warmup: usize,
    judge_now: &dyn Fn(&[Part], usize) -> Report,
) -> Report {
    let initial = cfg.run.runs;
    let max_rounds = cfg.run.max_runs.max(initial);
    let looks = planned_looks(initial, max_rounds, cfg.run.budget_s);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(cfg.run.budget_s.max(0.0));
    for p in parts.iter_mut() {
        p.exp.run_rounds(warmup, initial, None);
    }
    let mut report = judge_now(parts, looks);
    while looks > 1
        && !judge::all_decided(&report)
        && Instant::now() < deadline
        && parts.iter().any(|p| p.exp.rounds_done() < max_rounds)
    {
        for p in parts.iter_mut() {
            let done = p.exp.rounds_done();
            let more = (done * ADAPTIVE_GROWTH).min(max_rounds).saturating_sub(done);
            if more > 0 {
                p.exp.run_rounds(0, more, Some(deadline));
            }
        }
        report = judge_now(parts, looks);
    }
    for p in parts.iter() {
        p.exp.progress_done();
    }
    report
}

/// Builds the scenarios of the working tree; every scenario must have its program.
pub(crate) fn build_working_tree(cfg: &Config, o: &GateOptions) -> SetupResult<Vec<Option<PathBuf>>> {
    let programs = workspace::build_scenarios(cfg, &cfg.root, None, o.no_build, o.quiet, "the working tree")?;
    for (s, p) in cfg.scenarios.iter().zip(&programs) {
        if p.is_none() {
            return Err(format!(
                "scenario {}: its program was not built (check `bin`/`path` in {})",
                s.name,
                cfg.path.display()
            ));
        }
    }
    Ok(programs)
}

/// Every scenario's committed baseline (`None` where there is none); a malformed one is an error
/// naming its file and line.
pub(crate) fn load_baselines(cfg: &Config) -> SetupResult<Vec<Option<Baseline>>> {
    cfg.scenarios
        .iter()
        .map(|s| match Baseline::load(&cfg.baseline_path(&s.name)) {
            Ok(b) => Ok(Some(b)),
            Err(BaselineError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        })
        .collect()
}

/// `regress`.
pub fn regress(o: &GateOptions) -> SetupResult<i32> {
    let started = now_rfc3339();
    let t0 = Instant::now();
    let cfg = load_config(o)?;
    // Baselines are read before anything runs: a malformed one stops here, with its line.
    let baselines = load_baselines(&cfg)?;
    let machine = Fingerprint::current();
    // Paired against the baseline's commit when asked, or when the baseline comes from another
    // machine (then only a same-machine comparison is meaningful).
    let mut paired_ids = Vec::new();
    let mut baseline_ids = Vec::new();
    for (i, b) in baselines.iter().enumerate() {
        let other_machine = b.as_ref().is_some_and(|b| b.machine.machine_difference(&machine).is_some());
        if b.is_some() && (o.paired || other_machine) {
            paired_ids.push(i);
        } else {
            baseline_ids.push(i);
        }
    }
    let out_dir = workspace::output_dir(&cfg);
    let current = build_working_tree(&cfg, o)?;
    let reference = if o.no_reference { None } else { Some(reference_spec()?) };
    let all_specs = specs(&cfg);
    let mut parts = Vec::new();
    // Paired scenarios, grouped by the commit their baseline was recorded from.
    let mut by_commit: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for &i in &paired_ids {
        let b = baselines[i].as_ref().expect("paired scenarios have a baseline");
        by_commit.entry(b.recorded.commit.trim_end_matches("-dirty").to_owned()).or_default().push(i);
    }
    let repo = if by_commit.is_empty() { None } else { Some(workspace::repo_root(&cfg.root)?) };
    let mut unavailable = Vec::new();
    for (commit, ids) in by_commit {
        let repo = repo.as_deref().expect("set when there are paired scenarios");
        let sha = match workspace::resolve_rev(repo, &commit) {
            Ok(sha) => sha,
            Err(e) => {
                // Without the baseline's commit no same-machine comparison is possible: compare
                // with the baseline as it is, reported loudly as cross-machine (non-gating
                // unless --strict).
                eprintln!(
                    "warning: {e}: the baseline of {} was recorded from it on another machine; \
                     comparing cross-machine instead (fetch the commit, or record a baseline here)",
                    ids.iter().map(|&i| cfg.scenarios[i].name.as_str()).collect::<Vec<_>>().join(", ")
                );
                unavailable.extend(ids);
                continue;
            }
        };
        let tree = workspace::worktree(repo, &out_dir, &sha)?;
        let sub_root = cfg.root.strip_prefix(repo).unwrap_or(Path::new(""));
        let old = workspace::build_scenarios(
            &cfg,
            &tree.join(sub_root),
            Some(&out_dir.join("targets").join("baseline")),
            o.no_build,
            o.quiet,
            &format!("baseline commit {}", &sha[..12.min(sha.len())]),
        )?;
        let label = format!("baseline commit {}", &sha[..12.min(sha.len())]);
        let arms = vec![
            Arm { label: label.clone(), programs: ids.iter().map(|&i| old[i].clone()).collect(), env: Vec::new() },
            Arm {
                label: "current".into(),
                programs: ids.iter().map(|&i| current[i].clone()).collect(),
                env: Vec::new(),
            },
        ];
        let sc = ids.iter().map(|&i| all_specs[i].clone()).collect();
        parts.push(Part {
            exp: new_experiment(&cfg, sc, arms, None, o.quiet),
            scenario_ids: ids,
            paired_label: Some(label),
        });
    }
    // Baseline mode, plus paired candidates whose commit is unavailable (cross-machine).
    baseline_ids.extend(unavailable);
    baseline_ids.sort_unstable();
    if !baseline_ids.is_empty() {
        let arm = Arm {
            label: "current".into(),
            programs: baseline_ids.iter().map(|&i| current[i].clone()).collect(),
            env: Vec::new(),
        };
        let sc = baseline_ids.iter().map(|&i| all_specs[i].clone()).collect();
        parts.push(Part {
            exp: new_experiment(&cfg, sc, vec![arm], reference.clone(), o.quiet),
            scenario_ids: baseline_ids.clone(),
            paired_label: None,
        });
    }
    let judge_now = |parts: &[Part], looks: usize| {
        let inv = Invocation {
            command: "regress",
            policy: &judge::Policy::from_config(&cfg, looks),
            machine: machine.clone(),
            compare: true,
            strict: o.strict,
            started: started.clone(),
            wall_s: t0.elapsed().as_secs_f64(),
        };
        judge::judge(inv, inputs_of(parts, &cfg, &baselines))
    };
    let report = run_adaptive(&mut parts, &cfg, cfg.run.warmup_runs, &judge_now);
    finish(
        &report,
        Outputs {
            json: Some(o.json.clone().unwrap_or_else(|| out_dir.join("regress.json"))),
            markdown: Some(o.markdown.clone().unwrap_or_else(|| out_dir.join("regress.md"))),
        },
    )
}

/// `baseline`: record baselines (with reference runs) from a fixed number of rounds.
pub fn baseline(o: &GateOptions) -> SetupResult<i32> {
    let started = now_rfc3339();
    let t0 = Instant::now();
    let cfg = load_config(o)?;
    let programs = build_working_tree(&cfg, o)?;
    let reference = if o.no_reference { None } else { Some(reference_spec()?) };
    let arm = Arm { label: "current".into(), programs, env: Vec::new() };
    let mut exp = new_experiment(&cfg, specs(&cfg), vec![arm], reference, o.quiet);
    exp.run_rounds(cfg.run.warmup_runs, cfg.run.runs, None);
    exp.progress_done();
    let commit = workspace::describe_head(&cfg.root);
    let mut machine = Fingerprint::current();
    let mut code = exit_code::PASS;
    let mut inputs = Vec::new();
    for (k, s) in cfg.scenarios.iter().enumerate() {
        let rounds = match &exp.results[k] {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}: not written: the scenario failed:\n{e}", s.name);
                code = exit_code::SCENARIO_FAILED;
                inputs.push(ScenarioInput {
                    name: s.name.clone(),
                    outcome: Err(e.clone()),
                    against: Against::Nothing,
                    reference: None,
                });
                continue;
            }
        };
        let outs: Vec<&RunOutput> = rounds.iter().map(|r| &r.arms[0]).collect();
        let results: Vec<RunResult> = outs.iter().map(|o| o.result.clone()).collect();
        inputs.push(ScenarioInput {
            name: s.name.clone(),
            outcome: Ok(results.clone()),
            against: Against::Nothing,
            reference: None,
        });
        let lost: u64 = results.iter().flat_map(|r| r.checkpoints.values()).map(|c| c.lost).sum();
        if lost > 0 {
            eprintln!(
                "{}: not written: {lost} samples were lost (ring overrun), so the runs are partial; \
                 raise the ring capacity or lower the call rate",
                s.name
            );
            code = exit_code::SCENARIO_FAILED;
            continue;
        }
        machine.tick_hz = results.first().map_or(0.0, |r| r.tick_hz);
        let recorded = Recorded {
            commit: commit.clone(),
            date: now_rfc3339(),
            runs: results.len(),
            funcscope: env!("CARGO_PKG_VERSION").to_owned(),
            args: s.args.clone(),
        };
        let path = cfg.baseline_path(&s.name);
        let built = Baseline::from_runs(&s.name, &results, &pool(&outs), machine.clone(), recorded).and_then(|b| {
            match reference_runs(rounds) {
                Some(refs) => b.with_reference(&refs),
                None => Ok(b),
            }
        });
        match built {
            Ok(b) => {
                b.save_atomic(&path).map_err(|e| e.to_string())?;
                eprintln!("{}: wrote {}", s.name, path.display());
            }
            Err(e) => {
                eprintln!("{}: not written: {e}", s.name);
                code = exit_code::SCENARIO_FAILED;
            }
        }
    }
    let inv = Invocation {
        command: "baseline",
        policy: &judge::Policy::from_config(&cfg, 1),
        machine,
        compare: false,
        strict: false,
        started,
        wall_s: t0.elapsed().as_secs_f64(),
    };
    let report = judge::judge(inv, inputs);
    let mut stdout = std::io::stdout().lock();
    report::render_terminal(&report, &mut stdout, Style::detect()).map_err(|e| e.to_string())?;
    Ok(code.max(report.exit_code))
}

/// Pooled quantiles per checkpoint over all samples of all runs.
pub(crate) fn pool(runs: &[&RunOutput]) -> BTreeMap<String, Pooled> {
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
            let q = |p: f64| h.value_at_quantile(p) as f64 / runner::POOL_UNITS_PER_NS;
            (cp, Pooled { p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999) })
        })
        .collect()
}

/// Options of `compare`.
#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    /// Shared options (json, markdown, runs, budget...).
    pub gate: GateOptions,
    /// Revision A.
    pub rev_a: String,
    /// Revision B (None: the working tree, uncommitted changes included).
    pub rev_b: Option<String>,
    /// Extra environment for arm B only (e.g. `FUNCSCOPE_PLANT=...` to rehearse a regression).
    pub env_b: Vec<(String, String)>,
}

/// `compare`: build two revisions side by side and run them interleaved (A B B A ...).
pub fn compare(o: &CompareOptions) -> SetupResult<i32> {
    let started = now_rfc3339();
    let t0 = Instant::now();
    let cfg = load_config(&o.gate)?;
    let repo = workspace::repo_root(&cfg.root)?;
    let out_dir = workspace::output_dir(&cfg);
    let sub_root = cfg.root.strip_prefix(&repo).unwrap_or(Path::new("")).to_path_buf();
    let side = |rev: Option<&str>, key: &str| -> SetupResult<(String, Vec<Option<PathBuf>>)> {
        match rev {
            None => {
                let label = format!("working tree ({})", short(&workspace::describe_head(&repo)));
                let progs = workspace::build_scenarios(&cfg, &cfg.root, None, o.gate.no_build, o.gate.quiet, &label)?;
                Ok((label, progs))
            }
            Some(rev) => {
                let sha = workspace::resolve_rev(&repo, rev)?;
                let label = format!("{rev} ({})", short(&sha));
                let tree = workspace::worktree(&repo, &out_dir, &sha)?;
                let progs = workspace::build_scenarios(
                    &cfg,
                    &tree.join(&sub_root),
                    Some(&out_dir.join("targets").join(key)),
                    o.gate.no_build,
                    o.gate.quiet,
                    &label,
                )?;
                Ok((label, progs))
            }
        }
    };
    let (label_a, progs_a) = side(Some(&o.rev_a), "a")?;
    let (label_b, progs_b) = side(o.rev_b.as_deref(), "b")?;
    // A scenario missing on one side cannot be compared: report it as failed, run the rest.
    let mut ids = Vec::new();
    let mut missing = Vec::new();
    for (i, s) in cfg.scenarios.iter().enumerate() {
        match (&progs_a[i], &progs_b[i]) {
            (Some(_), Some(_)) => ids.push(i),
            (a, _) => missing
                .push((i, format!("{}: no program on {}", s.name, if a.is_none() { &label_a } else { &label_b }))),
        }
    }
    let all_specs = specs(&cfg);
    let arms = vec![
        Arm {
            label: format!("A {label_a}"),
            programs: ids.iter().map(|&i| progs_a[i].clone()).collect(),
            env: Vec::new(),
        },
        Arm {
            label: format!("B {label_b}"),
            programs: ids.iter().map(|&i| progs_b[i].clone()).collect(),
            env: o.env_b.clone(),
        },
    ];
    let exp = new_experiment(&cfg, ids.iter().map(|&i| all_specs[i].clone()).collect(), arms, None, o.gate.quiet);
    let mut parts = vec![Part { exp, scenario_ids: ids, paired_label: Some(format!("A = {label_a}; B = {label_b}")) }];
    let no_baselines: Vec<Option<Baseline>> = cfg.scenarios.iter().map(|_| None).collect();
    let judge_now = |parts: &[Part], looks: usize| {
        let mut inputs = inputs_of(parts, &cfg, &no_baselines);
        for (i, msg) in &missing {
            inputs.insert(
                (*i).min(inputs.len()),
                ScenarioInput {
                    name: cfg.scenarios[*i].name.clone(),
                    outcome: Err(msg.clone()),
                    against: Against::Nothing,
                    reference: None,
                },
            );
        }
        let inv = Invocation {
            command: "compare",
            policy: &judge::Policy::from_config(&cfg, looks),
            machine: Fingerprint::current(),
            compare: true,
            strict: o.gate.strict,
            started: started.clone(),
            wall_s: t0.elapsed().as_secs_f64(),
        };
        judge::judge(inv, inputs)
    };
    let report = run_adaptive(&mut parts, &cfg, cfg.run.warmup_runs, &judge_now);
    finish(
        &report,
        Outputs {
            json: Some(o.gate.json.clone().unwrap_or_else(|| out_dir.join("compare.json"))),
            markdown: Some(o.gate.markdown.clone().unwrap_or_else(|| out_dir.join("compare.md"))),
        },
    )
}

fn short(sha: &str) -> String {
    let (id, dirty) = match sha.strip_suffix("-dirty") {
        Some(s) => (s, "-dirty"),
        None => (sha, ""),
    };
    format!("{}{dirty}", &id[..12.min(id.len())])
}
