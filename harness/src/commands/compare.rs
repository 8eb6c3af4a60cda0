//! `compare REV_A [REV_B]`: a paired A/B experiment of two revisions built side by side (git
//! worktrees, one target directory per arm kept between calls) and run interleaved (A B, B A, ...)
//! on this machine. REV_B defaults to the working tree, uncommitted changes included.

use std::path::PathBuf;
use std::time::Instant;

use super::{failed_input, inputs_of, new_experiment, now_rfc3339, outputs, revision_label, run_adaptive, specs};
use super::{Part, Selection};
use crate::baseline::Baseline;
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::judge::{self, Decisions, Invocation, Look, Policy};
use crate::rounds::Arm;
use crate::workspace;

/// Options of `compare`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Configuration, scenarios, runs, budget, build.
    pub select: Selection,
    /// JSON report path (default `TARGET/funcscope/compare.json`).
    pub json: Option<PathBuf>,
    /// Markdown report path (default `TARGET/funcscope/compare.md`).
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
    /// Revision A (the reference side): a branch, tag or commit.
    pub rev_a: String,
    /// Revision B (None: the working tree, uncommitted changes included).
    pub rev_b: Option<String>,
    /// Extra environment for arm B only (e.g. `FUNCSCOPE_PLANT=...` to rehearse a regression).
    pub env_b: Vec<(String, String)>,
}

/// Runs `compare`; returns the exit code of the report.
///
/// # Errors
/// Configuration, build and git errors (an unknown revision among them).
pub fn run(o: &Options) -> Result<i32> {
    let (report, files) = report(o)?;
    super::finish(&report, files)
}

/// The time experiment of `compare` and where its report goes, not yet written (the instruction
/// pass adds to it).
///
/// # Errors
/// As [`run`].
pub(crate) fn report(o: &Options) -> Result<(crate::model::Report, crate::report::Outputs)> {
    let started = now_rfc3339();
    let t0 = Instant::now();
    let cfg = o.select.load_config()?;
    let accepted = crate::judge::Accept::all(&o.accept, &cfg.gate.accept).map_err(Error::Usage)?;
    let flags = o.select.build_flags();
    // Resolved and built one after the other: the label of a side is known only once its commit is.
    let side = |rev: Option<&str>, key: &str| -> Result<(String, workspace::Revision)> {
        let what = rev.unwrap_or("the working tree");
        let built = workspace::build_revision(&cfg, rev, key, what, flags)?;
        Ok((revision_label(&cfg, rev, &built), built))
    };
    let (label_a, a) = side(Some(&o.rev_a), "a")?;
    let (label_b, b) = side(o.rev_b.as_deref(), "b")?;
    // A scenario missing on one side cannot be compared: report it as failed, run the rest.
    let mut ids = Vec::new();
    let mut missing = Vec::new();
    for (i, s) in cfg.scenarios.iter().enumerate() {
        match (&a.programs[i], &b.programs[i]) {
            (Some(_), Some(_)) => ids.push(i),
            (pa, _) => missing
                .push((i, format!("{}: no program on {}", s.name, if pa.is_none() { &label_a } else { &label_b }))),
        }
    }
    let all_specs = specs(&cfg);
    let arms = vec![
        Arm {
            label: format!("A {label_a}"),
            programs: ids.iter().map(|&i| a.programs[i].clone()).collect(),
            env: Vec::new(),
        },
        Arm {
            label: format!("B {label_b}"),
            programs: ids.iter().map(|&i| b.programs[i].clone()).collect(),
            env: o.env_b.clone(),
        },
    ];
    let exp = new_experiment(&cfg, ids.iter().map(|&i| all_specs[i].clone()).collect(), arms, None, o.select.quiet);
    let mut parts = vec![Part { exp, scenario_ids: ids, paired_label: Some(format!("A = {label_a}; B = {label_b}")) }];
    let no_baselines: Vec<Option<Baseline>> = cfg.scenarios.iter().map(|_| None).collect();
    let machine = Fingerprint::current();
    let judge_now = |parts: &[Part], policy: &Policy, look: Look, decisions: &Decisions| {
        let mut inputs = inputs_of(parts, &cfg, &no_baselines);
        for (i, msg) in &missing {
            inputs.insert((*i).min(inputs.len()), failed_input(&cfg.scenarios[*i].name, msg.clone()));
        }
        let inv = Invocation {
            command: "compare",
            policy,
            look,
            decisions,
            machine: machine.clone(),
            compare: true,
            strict: false,
            started: started.clone(),
            wall_s: t0.elapsed().as_secs_f64(),
        };
        judge::judge(inv, inputs)
    };
    let mut report = run_adaptive(&mut parts, &cfg, cfg.run.warmup_runs, &judge_now);
    super::accept_all(&mut report, &accepted);
    super::attach_distributions(&mut report, &parts, &cfg, &no_baselines);
    let mut files = outputs(&cfg, "compare", &o.json, &o.markdown);
    files.junit = o.junit.clone();
    files.html = o.html.clone();
    // Keyed by arm B: the revision measured against A.
    let commit_b = b.sha.clone().unwrap_or_else(|| workspace::describe_head(&cfg.root, &cfg.run.baseline_dir));
    files.history = o.history.clone().map(|p| (p, commit_b));
    files.github_annotations = o.github_annotations;
    Ok((report, files))
}
