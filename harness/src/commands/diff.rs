//! `diff A.json B.json`: judges two saved JSON reports offline, without building or running
//! anything (e.g. two CI artifacts, or a report kept from last week).
//!
//! Each scenario of B is judged against the same scenario of A as if A's runs were its committed
//! baseline: the runs of two reports come from two sessions, so this is the baseline mode
//! (`gate.session_cv` allowed for; cross-machine when the two reports' machines differ, gating
//! then only under `--strict`). A paired report contributes its current arm's runs (a report keeps
//! only those). The configuration supplies the gate (metrics, thresholds, `gate.accept`);
//! `--accept` adds acceptances. A scenario A lacks is reported without comparison; one whose runs
//! cannot make a baseline (fewer than 2, or a checkpoint missing from some run) is reported as
//! failed, with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{failed_input, now_rfc3339, outputs, Selection};
use crate::baseline::{Baseline, Pooled, Recorded};
use crate::error::{Error, Result};
use crate::judge::{self, Accept, Against, Decisions, Invocation, Policy, ScenarioInput};
use crate::model::{Report, RunResult, REPORT_SCHEMA};
use crate::stats::Metric;

/// Options of `diff`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The configuration file (default: `funcscope.toml` from the current directory upwards).
    pub config: Option<PathBuf>,
    /// The reference report (the "baseline" side).
    pub a: PathBuf,
    /// The report judged against it.
    pub b: PathBuf,
    /// JSON report path (default `TARGET/funcscope/diff.json`).
    pub json: Option<PathBuf>,
    /// Markdown report path (default `TARGET/funcscope/diff.md`).
    pub markdown: Option<PathBuf>,
    /// JUnit XML report path (none by default).
    pub junit: Option<PathBuf>,
    /// HTML report path (none by default).
    pub html: Option<PathBuf>,
    /// Print GitHub Actions annotations after the report.
    pub github_annotations: bool,
    /// `SCENARIO/CHECKPOINT` regressions that do not gate.
    pub accept: Vec<String>,
    /// Regressions between reports from different machines gate too.
    pub strict: bool,
}

/// Runs `diff`; returns the exit code of the report.
///
/// # Errors
/// A configuration error, an unreadable report, one that is not a funcscope gate report of this
/// schema, a malformed acceptance.
pub fn run(o: &Options) -> Result<i32> {
    let started = now_rfc3339();
    let t0 = std::time::Instant::now();
    let cfg = Selection { config: o.config.clone(), ..Selection::default() }.load_config()?;
    let accepted = Accept::all(&o.accept, &cfg.gate.accept).map_err(Error::Usage)?;
    let a = read_report(&o.a)?;
    let b = read_report(&o.b)?;
    let mut report = diff(&cfg, &a, &o.a, &b, o.strict, &started, t0.elapsed().as_secs_f64());
    super::accept_all(&mut report, &accepted);
    carry_distributions(&mut report, &a, &b);
    if let (Some(ia), Some(ib)) = (&a.instructions, &b.instructions) {
        let ir = super::instructions::diff_section(ia, ib, &super::instructions::rule(&cfg), Some(&report));
        report.exit_code = report.exit_code.max(ir.exit_code);
        report.instructions = Some(ir);
    }
    let mut files = outputs(&cfg, "diff", &o.json, &o.markdown);
    files.junit = o.junit.clone();
    files.html = o.html.clone();
    files.github_annotations = o.github_annotations;
    super::finish(&report, files)
}

/// The saved per-call distributions of both reports, for the plots: each report's current side,
/// `a`'s as the baseline.
fn carry_distributions(report: &mut Report, a: &Report, b: &Report) {
    let find = |r: &Report, s: &str, c: &str| -> Option<crate::model::Distributions> {
        let cp = r.scenarios.iter().find(|x| x.name == s)?.checkpoints.iter().find(|x| x.name == c)?;
        Some(cp.distributions.clone())
    };
    for s in &mut report.scenarios {
        for c in &mut s.checkpoints {
            if let Some(da) = find(a, &s.name, &c.name) {
                c.distributions.baseline = da.current;
                c.distributions.baseline_deep = da.current_deep;
            }
            if let Some(db) = find(b, &s.name, &c.name) {
                c.distributions.current = db.current;
                c.distributions.current_deep = db.current_deep;
            }
        }
    }
}

/// Judges `b` against `a` (named `a_path` in the report): see the module documentation.
pub(crate) fn diff(
    cfg: &crate::config::Config,
    a: &Report,
    a_path: &Path,
    b: &Report,
    strict: bool,
    started: &str,
    wall_s: f64,
) -> Report {
    let mut inputs = Vec::new();
    let mut from_a = Vec::new();
    for s in &b.scenarios {
        if s.run_results.is_empty() {
            inputs.push(failed_input(&s.name, format!("{}: no runs of {} in it", b.command, s.name)));
            continue;
        }
        let against = match a.scenarios.iter().find(|x| x.name == s.name && !x.run_results.is_empty()) {
            None => Against::Nothing,
            Some(x) => match baseline_of(&x.run_results, a) {
                Ok(base) => {
                    from_a.push((s.name.clone(), x.run_results.len()));
                    Against::Baseline(Box::new(base))
                }
                Err(e) => {
                    inputs.push(failed_input(
                        &s.name,
                        format!("the runs of {} in {} cannot serve as a baseline: {e}", s.name, a_path.display()),
                    ));
                    continue;
                }
            },
        };
        inputs.push(ScenarioInput {
            name: s.name.clone(),
            outcome: Ok(s.run_results.clone()),
            against,
            reference: None,
        });
    }
    let policy = Policy::from_config(cfg, Vec::new());
    let decisions = Decisions::default();
    let inv = Invocation {
        command: "diff",
        policy: &policy,
        look: policy.single_look(),
        decisions: &decisions,
        machine: b.machine.clone(),
        compare: true,
        strict,
        started: started.to_owned(),
        wall_s,
    };
    let mut report = judge::judge(inv, inputs);
    for s in &mut report.scenarios {
        if let Some((_, n)) = from_a.iter().find(|(name, _)| *name == s.name) {
            s.against = Some(format!(
                "the saved report {} ({} of {}, {n} runs), offline",
                a_path.display(),
                a.command,
                a.started
            ));
        }
    }
    report
}

/// A baseline from a report's runs, on that report's machine. The pooled quantiles (informational
/// in a baseline, never judged) are the medians over runs: a report keeps no histograms.
fn baseline_of(runs: &[RunResult], a: &Report) -> std::result::Result<Baseline, crate::baseline::BaselineError> {
    let mut pooled = BTreeMap::new();
    for name in runs.iter().flat_map(|r| r.checkpoints.keys()) {
        let median = |m: Metric| {
            let mut v: Vec<f64> =
                runs.iter().filter_map(|r| r.checkpoints.get(name)?.summary.map(|s| s.get(m))).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        pooled.insert(name.clone(), Pooled::from_fn(median));
    }
    let mut machine = a.machine.clone();
    if let Some(r) = runs.first() {
        machine.tick_hz = r.tick_hz;
    }
    let recorded = Recorded {
        commit: "unknown".into(),
        date: a.started.clone(),
        runs: runs.len(),
        funcscope: a.tool_version.clone(),
        args: Vec::new(),
        sessions: Vec::new(),
    };
    Baseline::from_runs(&runs[0].scenario, runs, &pooled, machine, recorded)
}

/// Reads a saved gate report.
fn read_report(path: &Path) -> Result<Report> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::at("reading the report", path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!("{}: not JSON ({e}); expected a report written by --json", path.display()))
    })?;
    let schema = value.get("schema").and_then(|s| s.as_u64());
    if schema != Some(u64::from(REPORT_SCHEMA)) || value.get("scenarios").is_none() {
        return Err(Error::Usage(format!(
            "{}: not a funcscope gate report of schema {REPORT_SCHEMA} (schema {}); expected the JSON \
             of regress, compare, run or diff (--json)",
            path.display(),
            schema.map_or("missing".into(), |s| s.to_string())
        )));
    }
    serde_json::from_value(value)
        .map_err(|e| Error::Usage(format!("{}: a malformed funcscope report: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fingerprint::Fingerprint;
    use crate::stats::Verdict;

    /// Multiplicative run-to-run jitter (about 0.6 %).
    const JITTER: [f64; 8] = [1.0, 1.01, 0.99, 1.005, 0.995, 1.008, 0.992, 1.002];

    /// A saved `run` report of scenario `s` whose checkpoint `cp` took `level` ns (jittered), on
    /// the machine `cpu`, written as JSON to `dir/name` like `--json` does.
    fn saved(dir: &Path, name: &str, level: f64, shift: usize, cpu: &str) -> PathBuf {
        let cfg = Config::ad_hoc();
        let policy = Policy::from_config(&cfg, Vec::new());
        let runs: Vec<RunResult> = (0..JITTER.len())
            .map(|i| RunResult::uniform(&[("cp", level * JITTER[(i + shift) % JITTER.len()])]))
            .collect();
        let inv = Invocation {
            command: "run",
            policy: &policy,
            look: policy.single_look(),
            decisions: &Decisions::default(),
            machine: Fingerprint { cpu_model: cpu.into(), cores: 2, ..Fingerprint::default() },
            compare: false,
            strict: false,
            started: "2026-12-01T00:00:00Z".into(),
            wall_s: 1.0,
        };
        let r = judge::judge(
            inv,
            vec![ScenarioInput { name: "s".into(), outcome: Ok(runs), against: Against::Nothing, reference: None }],
        );
        let path = dir.join(name);
        crate::report::write_outputs(&r, &crate::report::Outputs { json: Some(path.clone()), ..Default::default() })
            .unwrap();
        path
    }

    fn judged(a: &Path, b: &Path, strict: bool) -> Report {
        let mut cfg = Config::ad_hoc();
        cfg.gate.metrics = vec![Metric::P50];
        cfg.gate.report_metrics = Vec::new();
        cfg.gate.session_cv = 0.0;
        diff(&cfg, &read_report(a).unwrap(), a, &read_report(b).unwrap(), strict, "now", 0.0)
    }

    #[test]
    fn diff_finds_a_slowdown_between_two_saved_reports_and_accept_makes_it_pass() {
        let dir = tempfile::tempdir().unwrap();
        let a = saved(dir.path(), "a.json", 100.0, 0, "here");
        let same = saved(dir.path(), "same.json", 100.0, 3, "here");
        let slow = saved(dir.path(), "slow.json", 130.0, 3, "here");

        let r = judged(&a, &same, false);
        assert_eq!(r.scenarios[0].checkpoints[0].verdict, Verdict::Unchanged);
        assert_eq!(r.exit_code, crate::exit_code::PASS);

        let mut r = judged(&a, &slow, false);
        assert_eq!(r.command, "diff");
        assert_eq!(r.scenarios[0].mode, crate::model::Mode::Baseline);
        assert_eq!(r.scenarios[0].checkpoints[0].verdict, Verdict::Regressed);
        assert_eq!(r.exit_code, crate::exit_code::REGRESSION);
        assert!(r.scenarios[0].against.as_deref().unwrap().contains("a.json"), "{:?}", r.scenarios[0].against);
        // Accepted: still regressed in the report, with the reason; the gate passes.
        let cfg_accept =
            [crate::config::Acceptance { checkpoint: "s/cp".into(), reason: "5x more work, intended".into() }];
        super::super::accept_all(&mut r, &Accept::all(&[], &cfg_accept).unwrap());
        assert_eq!(r.scenarios[0].checkpoints[0].verdict, Verdict::Regressed);
        assert_eq!(r.scenarios[0].checkpoints[0].accepted.as_deref(), Some("5x more work, intended"));
        assert_eq!(r.exit_code, crate::exit_code::PASS);
        // ... and the acceptance is in the rendered reports.
        let mut md = Vec::new();
        crate::report::render_markdown(&r, &mut md).unwrap();
        assert!(String::from_utf8(md).unwrap().contains("5x more work, intended"));
    }

    #[test]
    fn diff_across_machines_gates_only_when_strict() {
        let dir = tempfile::tempdir().unwrap();
        let a = saved(dir.path(), "a.json", 100.0, 0, "elsewhere");
        let slow = saved(dir.path(), "slow.json", 130.0, 3, "here");
        let r = judged(&a, &slow, false);
        assert_eq!(r.scenarios[0].mode, crate::model::Mode::CrossMachine);
        assert_eq!(r.exit_code, crate::exit_code::PASS);
        assert_eq!(judged(&a, &slow, true).exit_code, crate::exit_code::REGRESSION);
    }

    #[test]
    fn diff_refuses_files_that_are_not_reports_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [("garbage.json", "{ not json", "not JSON"), ("other.json", r#"{"schema": 99}"#, "schema 99")];
        for (name, text, expect) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            let e = read_report(&p).unwrap_err();
            assert_eq!(e.exit_code(), crate::exit_code::USAGE);
            let msg = e.to_string();
            assert!(msg.contains(name) && msg.contains(expect), "{msg}");
        }
        let missing = read_report(&dir.path().join("missing.json")).unwrap_err().to_string();
        assert!(missing.contains("missing.json"), "{missing}");
    }
}
