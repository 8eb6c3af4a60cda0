//! `regress`: the CI gate. Build the working tree, run every scenario, judge it against its
//! committed baseline, and exit non-zero on a regression.
//!
//! Which comparison each scenario gets:
//! * **paired** (the default): the baseline's commit is built (once; its binaries are cached by
//!   commit) and run interleaved with the working tree in balanced, randomized A/B blocks. Only
//!   this cancels what moves between sessions (host speed, neighbours, frequency), so it is the
//!   one comparison that resolves a few per cent on a shared VM. The committed baseline then
//!   names the commit and serves as the fallback.
//! * **baseline mode** (`--against-baseline` on the machine that recorded the baseline, or the
//!   fallback when the baseline's commit cannot be found): one arm plus reference runs for drift
//!   correction, judged against the committed run-level values, with the session offset
//!   (`gate.session_cv`) in the model: it gates only beyond that margin, said in the report.
//!   Also for prebuilt programs (`path` in the configuration), which cannot be rebuilt.
//! * **cross-machine** (the baseline comes from another machine and its commit is not in the
//!   repository): judged against the baseline as it is, reported loudly and non-gating unless
//!   `--strict`.
//! * **paired against `--base REV`** (CI on a pull request: its base commit): every buildable
//!   scenario runs interleaved with `REV` instead of its baseline's commit, so changes merged since
//!   the baselines were recorded are not blamed on the pull request; no baseline is needed. `REV`'s
//!   binaries are built once and cached by commit like a baseline commit's
//!   (`TARGET/funcscope/bin/<sha>`). A `REV` that cannot be built is an error, never a fallback:
//!   the caller named it. Prebuilt programs (`path`) stay in baseline mode.
//!
//! **Planted slowdowns** (`FUNCSCOPE_PLANT` in the harness's environment, to rehearse the gate):
//! every process inherits the harness's environment, so in a paired comparison the plant would
//! slow both arms alike and measure nothing. It goes to the current arm (the working tree) only:
//! the other arm runs with the variable set empty, which plants nothing (`plant_envs`), and the
//! report's `against` says so. In baseline mode the one arm is the current one, planted as before.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use super::{
    inputs_of, load_baselines, new_experiment, now_rfc3339, outputs, reference_spec, run_adaptive, specs, Part,
    Selection,
};
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::judge::{self, Decisions, Invocation, Look, Policy};
use crate::model::Report;
use crate::report::Outputs;
use crate::rounds::Arm;
use crate::workspace::{self, short_sha};

/// Options of `regress`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Configuration, scenarios, runs, budget, build.
    pub select: Selection,
    /// JSON report path (default `TARGET/funcscope/regress.json`).
    pub json: Option<PathBuf>,
    /// Markdown report path (default `TARGET/funcscope/regress.md`).
    pub markdown: Option<PathBuf>,
    /// JUnit XML report path (none by default).
    pub junit: Option<PathBuf>,
    /// HTML report path (none by default).
    pub html: Option<PathBuf>,
    /// JSON-lines history to append to (none by default).
    pub history: Option<PathBuf>,
    /// Print GitHub Actions annotations after the report.
    pub github_annotations: bool,
    /// `SCENARIO/CHECKPOINT` regressions that do not gate (besides `gate.accept`).
    pub accept: Vec<String>,
    /// Regressions against a baseline from another machine gate too.
    pub strict: bool,
    /// Judge against the committed baseline values instead of rebuilding the baseline's commit
    /// (only on the machine that recorded them; elsewhere the comparison stays paired).
    pub against_baseline: bool,
    /// Do not run the reference workload (no drift correction).
    pub no_reference: bool,
    /// Compare paired against this revision (a commit, branch or tag) instead of the baselines'
    /// commits.
    pub base: Option<String>,
}

/// Runs `regress`; returns the exit code of the report.
///
/// # Errors
/// Configuration, baseline, build and git errors (nothing judged).
pub fn run(o: &Options) -> Result<i32> {
    let (report, outputs) = report(o)?;
    super::finish(&report, outputs)
}

/// `regress` up to its report (not printed), and where its files go.
///
/// # Errors
/// As [`run`].
pub(crate) fn report(o: &Options) -> Result<(Report, Outputs)> {
    let started = now_rfc3339();
    let t0 = Instant::now();
    let cfg = o.select.load_config()?;
    let accepted = crate::judge::Accept::all(&o.accept, &cfg.gate.accept).map_err(Error::Usage)?;
    // Baselines are read before anything runs: a malformed one stops here, with its line.
    let baselines = load_baselines(&cfg)?;
    no_baseline_check(&cfg, &baselines, o.strict)?;
    let machine = Fingerprint::current();
    // Paired against the baseline's commit unless baseline mode was asked for on the baseline's
    // own machine (elsewhere only a same-machine comparison is meaningful). Grouped by commit.
    let mut by_commit: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut baseline_ids = Vec::new();
    let mut fallback_ids = Vec::new();
    for (i, b) in baselines.iter().enumerate() {
        if let (Some(base), Some(_)) = (&o.base, &cfg.scenarios[i].bin) {
            by_commit.entry(base.clone()).or_default().push(i);
            continue;
        }
        match b {
            // A prebuilt program (`path`) cannot be rebuilt at another commit: baseline mode.
            Some(b)
                if cfg.scenarios[i].bin.is_some()
                    && (!o.against_baseline || b.machine.machine_difference(&machine).is_some()) =>
            {
                by_commit.entry(b.recorded.commit.trim_end_matches("-dirty").to_owned()).or_default().push(i);
            }
            _ => baseline_ids.push(i),
        }
    }
    if let Some(base) = &o.base {
        // A mistyped or unfetched base fails now, not after building the working tree.
        workspace::resolve_rev(&workspace::repo_root(&cfg.root)?, base)?;
    }
    let current = o.select.build_working_tree(&cfg)?;
    let all_specs = specs(&cfg);
    let mut parts = Vec::new();
    for (commit, ids) in by_commit {
        let label_for = |sha: &str| match &o.base {
            Some(base) => format!("base {base} ({})", short_sha(sha)),
            None => format!("baseline commit {}", short_sha(sha)),
        };
        let what = match &o.base {
            Some(base) => format!("base {base}"),
            None => label_for(&commit),
        };
        let old = match workspace::build_revision(&cfg, Some(&commit), "baseline", &what, o.select.build_flags()) {
            Ok(old) => old,
            // The caller named this revision: no fallback to stored values.
            Err(e) if o.base.is_some() => return Err(e),
            Err(e @ (Error::UnknownRevision { .. } | Error::Git(_) | Error::Build(_))) => {
                // Without the baseline's commit no paired comparison is possible: compare with the
                // baseline as it is, in baseline mode (session offset in the model) on its own
                // machine, cross-machine (non-gating unless --strict) elsewhere.
                eprintln!(
                    "warning: the baseline commit {} of {} cannot be built ({e}); judging against \
                     the stored values instead, which resolves only large changes (fetch the \
                     commit, e.g. `git fetch --unshallow`, or fix its build, to compare paired)",
                    short_sha(&commit),
                    ids.iter().map(|&i| cfg.scenarios[i].name.as_str()).collect::<Vec<_>>().join(", ")
                );
                fallback_ids.extend(ids.iter().copied());
                baseline_ids.extend(ids);
                continue;
            }
            Err(e) => return Err(e),
        };
        // A scenario the base does not have yet (added by the change under test) has nothing to
        // pair with: judged against its committed baseline, if any, like a prebuilt program.
        let (ids, absent): (Vec<usize>, Vec<usize>) = ids.into_iter().partition(|&i| old.programs[i].is_some());
        baseline_ids.extend(absent);
        if ids.is_empty() {
            continue;
        }
        let label = label_for(old.sha.as_deref().unwrap_or(&commit));
        let (env_old, env_current, plant_note) = plant_envs(std::env::var(funcscope::env::PLANT).ok());
        let arms = vec![
            Arm {
                label: label.clone(),
                programs: ids.iter().map(|&i| old.programs[i].clone()).collect(),
                env: env_old,
            },
            Arm {
                label: "current".into(),
                programs: ids.iter().map(|&i| current[i].clone()).collect(),
                env: env_current,
            },
        ];
        let label = label + &plant_note;
        let sc = ids.iter().map(|&i| all_specs[i].clone()).collect();
        parts.push(Part {
            exp: new_experiment(&cfg, sc, arms, None, o.select.quiet),
            scenario_ids: ids,
            paired_label: Some(label),
        });
    }
    // Baseline mode, plus paired candidates whose commit is unavailable (cross-machine).
    baseline_ids.sort_unstable();
    if !baseline_ids.is_empty() {
        let arm = Arm {
            label: "current".into(),
            programs: baseline_ids.iter().map(|&i| current[i].clone()).collect(),
            env: Vec::new(),
        };
        let sc = baseline_ids.iter().map(|&i| all_specs[i].clone()).collect();
        parts.push(Part {
            exp: new_experiment(&cfg, sc, vec![arm], reference_spec(o.no_reference)?, o.select.quiet),
            scenario_ids: baseline_ids,
            paired_label: None,
        });
    }
    let judge_now = |parts: &[Part], policy: &Policy, look: Look, decisions: &Decisions| {
        let inv = Invocation {
            command: "regress",
            policy,
            look,
            decisions,
            machine: machine.clone(),
            compare: true,
            strict: o.strict,
            started: started.clone(),
            wall_s: t0.elapsed().as_secs_f64(),
        };
        let mut report = judge::judge(inv, inputs_of(parts, &cfg, &baselines));
        // Said in the report, next to the verdicts it qualifies, not only on stderr.
        for s in &mut report.scenarios {
            if fallback_ids.iter().any(|&i| cfg.scenarios[i].name == s.name) {
                let note = format!(
                    "FALLBACK: the baseline's commit could not be built (see the log), so this is judged against \
                     stored values from another session; a session offset of +-{:.0} % \
                     (gate.session_cv) is allowed for and smaller changes cannot gate (fetch the \
                     commit to compare paired)",
                    cfg.gate.session_cv * 100.0
                );
                s.machine_note = Some(match s.machine_note.take() {
                    Some(m) => format!("{note}; {m}"),
                    None => note,
                });
            }
        }
        report
    };
    let mut report = run_adaptive(&mut parts, &cfg, cfg.run.warmup_runs, &judge_now);
    super::accept_all(&mut report, &accepted);
    super::attach_distributions(&mut report, &parts, &cfg, &baselines);
    let mut files = outputs(&cfg, "regress", &o.json, &o.markdown);
    files.junit = o.junit.clone();
    files.html = o.html.clone();
    files.history = o.history.clone().map(|p| (p, workspace::describe_head(&cfg.root, &cfg.run.baseline_dir)));
    files.github_annotations = o.github_annotations;
    Ok((report, files))
}

/// A scenario without a baseline is measured, not judged: said up front in every mode, and an
/// error (exit 2) with `--strict`, which promises that every scenario is judged.
fn no_baseline_check(
    cfg: &crate::config::Config,
    baselines: &[Option<crate::baseline::Baseline>],
    strict: bool,
) -> Result<()> {
    let missing: Vec<&str> =
        cfg.scenarios.iter().zip(baselines).filter(|(_, b)| b.is_none()).map(|(s, _)| s.name.as_str()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let msg = format!("no baseline: run `cargo xtask baseline` (none for {})", missing.join(", "));
    if strict {
        return Err(Error::Usage(format!("{msg}; --strict judges every scenario against its baseline")));
    }
    eprintln!("warning: {msg}; measured only, not judged");
    Ok(())
}

/// Extra environment of one arm.
type Env = Vec<(String, String)>;

/// The environment of the two arms of a paired comparison given the harness's own
/// `FUNCSCOPE_PLANT` (`plant`): (other arm, current arm, a note for the report). A plant goes to
/// the current arm only; the other arm gets the variable set empty, which the scenarios read as
/// "nothing planted" (an inherited variable cannot be removed per arm, only overridden). An unset
/// or blank plant changes nothing.
pub(crate) fn plant_envs(plant: Option<String>) -> (Env, Env, String) {
    match plant {
        Some(p) if !p.trim().is_empty() => {
            let var = funcscope::env::PLANT.to_owned();
            let note = format!(" ({var}={p} planted in the current arm only)");
            (vec![(var.clone(), String::new())], vec![(var, p)], note)
        }
        _ => (Vec::new(), Vec::new(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::plant_envs;

    #[test]
    fn a_plant_reaches_the_current_arm_only() {
        let (old, current, note) = plant_envs(Some("crc32c=20".into()));
        // The other arm overrides the inherited variable with an empty value (plants nothing).
        assert_eq!(old, [(funcscope::env::PLANT.to_owned(), String::new())]);
        assert_eq!(current, [(funcscope::env::PLANT.to_owned(), "crc32c=20".to_owned())]);
        assert!(note.contains("current arm only") && note.contains("crc32c=20"), "{note}");
        for unset in [None, Some(String::new()), Some("  ".into())] {
            assert_eq!(plant_envs(unset), (Vec::new(), Vec::new(), String::new()));
        }
    }
}
