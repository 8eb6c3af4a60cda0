//! `judge` on synthetic runs: no processes, no files.

use std::collections::BTreeMap;

use super::*;
use crate::baseline::{Pooled, Recorded};
use crate::config::Config;

/// Multiplicative run-to-run jitter (about 0.6 %), in a fixed order.
const JITTER: [f64; 10] = [1.0, 1.01, 0.99, 1.005, 0.995, 1.008, 0.992, 1.002, 0.998, 1.0];

/// One run in which every call of each named checkpoint took the given ns.
fn run(cps: &[(&str, f64)]) -> RunResult {
    RunResult::uniform(cps)
}

/// Runs of one checkpoint `cp`, one per value.
fn runs(cp: &str, values: impl IntoIterator<Item = f64>) -> Vec<RunResult> {
    values.into_iter().map(|v| run(&[(cp, v)])).collect()
}

/// `level` with the jitter, in the jitter's order rotated by `shift` (so two sides differ).
fn jittered(level: f64, shift: usize) -> impl Iterator<Item = f64> {
    (0..JITTER.len()).map(move |i| level * JITTER[(i + shift) % JITTER.len()])
}

fn machine(cpu: &str) -> Fingerprint {
    Fingerprint { cpu_model: cpu.into(), cores: 2, ..Fingerprint::default() }
}

fn baseline(runs: &[RunResult], on: Fingerprint) -> Against {
    let names: BTreeSet<&String> = runs.iter().flat_map(|r| r.checkpoints.keys()).collect();
    let pooled: BTreeMap<String, Pooled> =
        names.into_iter().map(|n| (n.clone(), Pooled { p50: 1.0, p90: 1.0, p99: 1.0, p999: 1.0 })).collect();
    let recorded = Recorded {
        commit: "abc".into(),
        date: "2026-01-01T00:00:00Z".into(),
        runs: 0,
        funcscope: "0".into(),
        args: Vec::new(),
    };
    Against::Baseline(Box::new(Baseline::from_runs("s", runs, &pooled, on, recorded).unwrap()))
}

fn input(outcome: Result<Vec<RunResult>, String>, against: Against) -> ScenarioInput {
    ScenarioInput { name: "s".into(), outcome, against, reference: None }
}

/// Judges with the default gate on p50 only (one test per checkpoint).
fn judge_with(strict: bool, inputs: Vec<ScenarioInput>) -> Report {
    let mut cfg = Config::ad_hoc();
    cfg.gate.metrics = vec![Metric::P50];
    let policy = Policy::from_config(&cfg, 1);
    let inv = Invocation {
        command: "test",
        policy: &policy,
        machine: machine("here"),
        compare: true,
        strict,
        started: String::new(),
        wall_s: 0.0,
    };
    judge(inv, inputs)
}

/// The verdict of the only scenario's checkpoint `cp`.
fn verdict(r: &Report, cp: &str) -> Verdict {
    r.scenarios[0].checkpoints.iter().find(|c| c.name == cp).expect("checkpoint reported").verdict
}

#[test]
fn judge_baseline_mode_regressed() {
    let base = runs("cp", jittered(100.0, 0));
    let r = judge_with(false, vec![input(Ok(runs("cp", jittered(120.0, 3))), baseline(&base, machine("here")))]);
    assert_eq!(r.scenarios[0].mode, Mode::Baseline);
    assert_eq!(verdict(&r, "cp"), Verdict::Regressed);
    assert_eq!((r.tally.regressed, r.exit_code), (1, crate::exit_code::REGRESSION));
}

#[test]
fn judge_baseline_mode_unchanged() {
    let base = runs("cp", jittered(100.0, 0));
    let r = judge_with(false, vec![input(Ok(runs("cp", jittered(100.0, 3))), baseline(&base, machine("here")))]);
    assert_eq!(verdict(&r, "cp"), Verdict::Unchanged);
    assert_eq!((r.tally.unchanged, r.exit_code), (1, crate::exit_code::PASS));
}

#[test]
fn judge_baseline_mode_inconclusive_when_noise_hides_the_answer() {
    let base = runs("cp", jittered(100.0, 0));
    // Runs that swing by a factor of 2: neither a change nor its absence can be shown.
    let cur = runs("cp", (0..10).map(|i| if i % 2 == 0 { 70.0 } else { 140.0 }));
    let r = judge_with(false, vec![input(Ok(cur), baseline(&base, machine("here")))]);
    assert_eq!(verdict(&r, "cp"), Verdict::Inconclusive);
    assert_eq!((r.tally.inconclusive, r.exit_code), (1, crate::exit_code::PASS));
}

/// Paired rounds whose level swings between rounds (the machine drifting) while B / A is a
/// constant +10 % with tiny noise.
fn drifting_pairs() -> (Vec<RunResult>, Vec<RunResult>) {
    let drift = [1.0, 1.5, 0.7, 1.3, 0.8, 1.6, 0.6, 1.2, 0.9, 1.4];
    let a: Vec<f64> = drift.iter().map(|d| 100.0 * d).collect();
    let b: Vec<f64> = a.iter().zip(JITTER.iter().rev()).map(|(x, j)| x * 1.10 * (1.0 + (j - 1.0) / 4.0)).collect();
    (runs("cp", a), runs("cp", b))
}

/// Fails before the fix: the family's p-values were all Welch's, so a paired comparison was gated
/// by an unpaired p-value that the drift between rounds swamps.
#[test]
fn judge_paired_verdict_uses_the_paired_p_value() {
    let (a, b) = drifting_pairs();
    // The premise: Welch sees nothing, the paired test a clear +10 %.
    let values = |rs: &[RunResult]| current_values(rs, "cp", Metric::P50);
    assert!(stats::compare_runs(&values(&a), &values(&b), 0.95).unwrap().p_value > 0.3);
    assert!(stats::compare_paired(&values(&a), &values(&b), 0.95).unwrap().p_value < 1e-9);

    let r = judge_with(false, vec![input(Ok(b), Against::Paired { label: "A".into(), runs: a })]);
    assert_eq!(r.scenarios[0].mode, Mode::Paired);
    // Before the fix: Inconclusive (Welch's p gated the paired interval).
    assert_eq!(verdict(&r, "cp"), Verdict::Regressed);
    let m = &r.scenarios[0].checkpoints[0].metrics[0];
    assert_eq!(m.comparison.map(|c| c.method), Some(stats::Method::Paired));
    assert!(m.p_adjusted.unwrap() < 1e-9, "adjusted p {:?}", m.p_adjusted);
    assert_eq!(r.exit_code, crate::exit_code::REGRESSION);
}

#[test]
fn judge_paired_uses_the_paired_minimum_effect() {
    let (a, b) = drifting_pairs();
    let r = judge_with(false, vec![input(Ok(b), Against::Paired { label: "A".into(), runs: a })]);
    let m = &r.scenarios[0].checkpoints[0].metrics[0];
    // Default min_effect_paired is 2 %, and the pairs are far quieter than that.
    assert_eq!(m.threshold, 0.02);
}

#[test]
fn judge_failed_scenario_exits_3_before_a_regression() {
    let base = runs("cp", jittered(100.0, 0));
    let r = judge_with(
        false,
        vec![
            input(Err("crashed with signal SIGSEGV".into()), Against::Nothing),
            input(Ok(runs("cp", jittered(120.0, 3))), baseline(&base, machine("here"))),
        ],
    );
    assert_eq!(r.scenarios[0].status, ScenarioStatus::Failed("crashed with signal SIGSEGV".into()));
    assert_eq!((r.tally.failed_scenarios, r.tally.regressed), (1, 1));
    assert_eq!(r.exit_code, crate::exit_code::SCENARIO_FAILED);
}

#[test]
fn judge_reports_checkpoints_found_on_one_side_only() {
    let base: Vec<RunResult> = jittered(100.0, 0).map(|v| run(&[("cp", v), ("old", v)])).collect();
    let cur: Vec<RunResult> = jittered(100.0, 3).map(|v| run(&[("cp", v), ("new", v)])).collect();
    let r = judge_with(false, vec![input(Ok(cur), baseline(&base, machine("here")))]);
    let cps: Vec<(&str, Presence, usize)> =
        r.scenarios[0].checkpoints.iter().map(|c| (c.name.as_str(), c.presence, c.metrics.len())).collect();
    assert_eq!(cps, [("cp", Presence::Both, 1), ("new", Presence::CurrentOnly, 0), ("old", Presence::BaselineOnly, 0)]);
    assert_eq!((r.tally.one_sided, r.tally.unchanged), (2, 1));
    assert_eq!(r.exit_code, crate::exit_code::PASS);
}

#[test]
fn judge_cross_machine_regression_gates_only_when_strict() {
    let base = runs("cp", jittered(100.0, 0));
    let cur = || runs("cp", jittered(120.0, 3));
    let lenient = judge_with(false, vec![input(Ok(cur()), baseline(&base, machine("elsewhere")))]);
    assert_eq!(lenient.scenarios[0].mode, Mode::CrossMachine);
    assert!(lenient.scenarios[0].machine_note.as_deref().is_some_and(|n| n.contains("elsewhere")));
    assert_eq!((verdict(&lenient, "cp"), lenient.tally.regressed), (Verdict::Regressed, 1));
    assert_eq!(lenient.exit_code, crate::exit_code::PASS);
    let strict = judge_with(true, vec![input(Ok(cur()), baseline(&base, machine("elsewhere")))]);
    assert_eq!(strict.exit_code, crate::exit_code::REGRESSION);
}

#[test]
fn judge_without_a_partner_measures_only() {
    let r = judge_with(false, vec![input(Ok(runs("cp", jittered(100.0, 0))), Against::Nothing)]);
    assert_eq!((&r.scenarios[0].status, r.scenarios[0].mode), (&ScenarioStatus::NoBaseline, Mode::Measure));
    assert_eq!(r.scenarios[0].floor_ns, 10.0);
    assert_eq!(r.exit_code, crate::exit_code::PASS);
}
