//! `regress`: the CI gate. Build the working tree, run every scenario, judge it against its
//! committed baseline, and exit non-zero on a regression.
//!
//! Which comparison each scenario gets:
//! * **baseline mode** (the baseline comes from this machine): one arm plus reference runs for
//!   drift correction, judged against the committed run-level values;
//! * **paired** (the baseline comes from another machine, or `--paired`): the baseline's commit
//!   is rebuilt in a worktree and run interleaved with the working tree, because only a
//!   same-machine comparison can gate;
//! * **cross-machine** (paired wanted but the baseline's commit is not in the repository): judged
//!   against the baseline as it is, reported loudly and non-gating unless `--strict`.

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
    /// Regressions against a baseline from another machine gate too.
    pub strict: bool,
    /// Always compare paired against the baseline's commit.
    pub paired: bool,
    /// Do not run the reference workload (no drift correction).
    pub no_reference: bool,
}

/// Runs `regress`; returns the exit code of the report.
///
/// # Errors
/// Configuration, baseline, build and git errors (nothing judged).
pub fn run(o: &Options) -> Result<i32> {
    let started = now_rfc3339();
    let t0 = Instant::now();
    let cfg = o.select.load_config()?;
    // Baselines are read before anything runs: a malformed one stops here, with its line.
    let baselines = load_baselines(&cfg)?;
    let machine = Fingerprint::current();
    // Paired against the baseline's commit when asked, or when the baseline comes from another
    // machine (then only a same-machine comparison is meaningful). Grouped by that commit.
    let mut by_commit: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut baseline_ids = Vec::new();
    for (i, b) in baselines.iter().enumerate() {
        match b {
            Some(b) if o.paired || b.machine.machine_difference(&machine).is_some() => {
                by_commit.entry(b.recorded.commit.trim_end_matches("-dirty").to_owned()).or_default().push(i);
            }
            _ => baseline_ids.push(i),
        }
    }
    let current = o.select.build_working_tree(&cfg)?;
    let all_specs = specs(&cfg);
    let mut parts = Vec::new();
    for (commit, ids) in by_commit {
        let label_for = |sha: &str| format!("baseline commit {}", short_sha(sha));
        let old = match workspace::build_revision(
            &cfg,
            Some(&commit),
            "baseline",
            &label_for(&commit),
            o.select.build_flags(),
        ) {
            Ok(old) => old,
            Err(e @ Error::UnknownRevision { .. }) => {
                // Without the baseline's commit no same-machine comparison is possible: compare
                // with the baseline as it is, reported loudly as cross-machine (non-gating
                // unless --strict).
                eprintln!(
                    "warning: {e}: the baseline of {} was recorded from it on another machine; \
                     comparing cross-machine instead (fetch the commit, or record a baseline here)",
                    ids.iter().map(|&i| cfg.scenarios[i].name.as_str()).collect::<Vec<_>>().join(", ")
                );
                baseline_ids.extend(ids);
                continue;
            }
            Err(e) => return Err(e),
        };
        let label = label_for(old.sha.as_deref().unwrap_or(&commit));
        let arms = vec![
            Arm {
                label: label.clone(),
                programs: ids.iter().map(|&i| old.programs[i].clone()).collect(),
                env: Vec::new(),
            },
            Arm {
                label: "current".into(),
                programs: ids.iter().map(|&i| current[i].clone()).collect(),
                env: Vec::new(),
            },
        ];
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
        judge::judge(inv, inputs_of(parts, &cfg, &baselines))
    };
    let report = run_adaptive(&mut parts, &cfg, cfg.run.warmup_runs, &judge_now);
    super::finish(&report, outputs(&cfg, "regress", &o.json, &o.markdown))
}
