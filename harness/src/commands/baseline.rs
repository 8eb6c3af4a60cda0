//! `baseline`: record `baselines/<scenario>.toml` from fresh runs of the working tree (one arm
//! plus reference runs, a fixed number of rounds). A scenario that fails, or loses samples, is not
//! written: its old baseline stays as it was.

use std::time::Instant;

use super::{
    arm_runs, failed_input, new_experiment, now_rfc3339, record_baseline, reference_spec, specs, NotRecorded, Selection,
};
use crate::baseline::{Baseline, BaselineError};
use crate::error::{Error, Result};
use crate::exit_code;
use crate::fingerprint::Fingerprint;
use crate::judge::{self, Against, Decisions, Invocation, Policy, ScenarioInput};
use crate::report::{self, Style};
use crate::rounds::Arm;
use crate::workspace;

/// Options of `baseline`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Configuration, scenarios, runs, build (`budget_s` is ignored: a baseline is a fixed design).
    pub select: Selection,
    /// Do not run the reference workload (the baseline then allows no drift correction).
    pub no_reference: bool,
    /// Append this session's runs to each existing baseline ([`crate::baseline::Baseline::append`]);
    /// a scenario without one is recorded fresh.
    pub append: bool,
}

/// Runs `baseline`; returns 0, or 3 if some scenario could not be recorded.
///
/// # Errors
/// Configuration, build and file-writing errors.
pub fn run(o: &Options) -> Result<i32> {
    let started = now_rfc3339();
    let t0 = Instant::now();
    let cfg = o.select.load_config()?;
    let programs = o.select.build_working_tree(&cfg)?;
    let arm = Arm { label: "current".into(), programs, env: Vec::new() };
    let mut exp = new_experiment(&cfg, specs(&cfg), vec![arm], reference_spec(o.no_reference)?, o.select.quiet);
    exp.run_rounds(cfg.run.warmup_runs, cfg.run.runs, None);
    let commit = workspace::describe_head(&cfg.root, &cfg.run.baseline_dir);
    let machine = Fingerprint::current();
    let mut code = exit_code::PASS;
    let mut inputs = Vec::new();
    for (k, s) in cfg.scenarios.iter().enumerate() {
        let path = cfg.baseline_path(&s.name);
        let recorded = record_baseline(s, &exp.results[k], &machine, &commit).and_then(|b| {
            if !o.append {
                return Ok(b);
            }
            match Baseline::load(&path) {
                Ok(old) => old.append(b).map_err(NotRecorded::Invalid),
                Err(BaselineError::NotFound { .. }) => Ok(b),
                Err(e) => Err(NotRecorded::Invalid(e)),
            }
        });
        let written = match recorded {
            Ok(b) => {
                b.save_atomic(&path)?;
                let sessions = b.recorded.sessions.len();
                let how = if sessions > 1 {
                    format!(" ({} runs in {sessions} sessions)", b.recorded.runs)
                } else {
                    String::new()
                };
                eprintln!("{}: wrote {}{how}", s.name, path.display());
                Ok(())
            }
            Err(why) => {
                eprintln!("{}: not written: {why}", s.name);
                code = exit_code::SCENARIO_FAILED;
                Err(why.to_string())
            }
        };
        let runs = exp.results[k].as_ref().map(|rounds| arm_runs(rounds, 0)).map_err(Clone::clone);
        inputs.push(input_after_recording(&s.name, runs, written));
    }
    let policy = &Policy::from_config(&cfg, Vec::new());
    let inv = Invocation {
        command: "baseline",
        policy,
        look: policy.single_look(),
        decisions: &Decisions::default(),
        machine,
        compare: false,
        strict: false,
        started,
        wall_s: t0.elapsed().as_secs_f64(),
    };
    let report = judge::judge(inv, inputs);
    let mut stdout = std::io::stdout().lock();
    report::render_terminal(&report, &mut stdout, Style::detect()).map_err(|e| Error::io("writing the report", e))?;
    Ok(code.max(report.exit_code))
}

/// The report's input for one scenario: its runs, or, when its baseline was not written, a
/// failure saying why, so that the summary line and the exit code agree (a refused baseline once
/// printed "PASS ... exit 0" while the process exited 3).
fn input_after_recording(
    name: &str,
    runs: std::result::Result<Vec<crate::model::RunResult>, String>,
    written: std::result::Result<(), String>,
) -> ScenarioInput {
    match (runs, written) {
        (Err(e), _) => failed_input(name, e),
        (Ok(_), Err(why)) => failed_input(name, format!("baseline not written: {why}")),
        (Ok(runs), Ok(())) => {
            ScenarioInput { name: name.to_owned(), outcome: Ok(runs), against: Against::Nothing, reference: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::RunResult;

    fn report_of(input: ScenarioInput) -> String {
        let cfg = Config::ad_hoc();
        let policy = &Policy::from_config(&cfg, Vec::new());
        let inv = Invocation {
            command: "baseline",
            policy,
            look: policy.single_look(),
            decisions: &Decisions::default(),
            machine: Fingerprint::default(),
            compare: false,
            strict: false,
            started: String::new(),
            wall_s: 0.0,
        };
        let report = judge::judge(inv, vec![input]);
        let mut out = Vec::new();
        report::render_terminal(&report, &mut out, Style::Plain).unwrap();
        format!("exit {}\n{}", report.exit_code, String::from_utf8(out).unwrap())
    }

    /// A baseline refused for lost samples is a failure in the report too: never "PASS" beside
    /// exit 3.
    #[test]
    fn a_refused_baseline_is_reported_as_a_failure() {
        let runs = vec![RunResult::uniform(&[("a", 100.0)]); 3];
        let text = report_of(input_after_recording("codec", Ok(runs.clone()), Err("12 samples were lost".into())));
        assert!(text.starts_with("exit 3"), "{text}");
        assert!(text.contains("baseline not written: 12 samples were lost"), "{text}");
        assert!(!text.contains("PASS"), "{text}");
        let text = report_of(input_after_recording("codec", Ok(runs), Ok(())));
        assert!(text.starts_with("exit 0") && text.contains("PASS"), "{text}");
    }
}
