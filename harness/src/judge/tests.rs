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
        sessions: Vec::new(),
    };
    Against::Baseline(Box::new(Baseline::from_runs("s", runs, &pooled, on, recorded).unwrap()))
}

fn input(outcome: Result<Vec<RunResult>, String>, against: Against) -> ScenarioInput {
    ScenarioInput { name: "s".into(), outcome, against, reference: None }
}

/// The default gate on p50 only (one test per checkpoint), no report-only metrics, no session
/// offset (unless a test sets one).
fn gate() -> Config {
    let mut cfg = Config::ad_hoc();
    cfg.gate.metrics = vec![Metric::P50];
    cfg.gate.report_metrics = Vec::new();
    cfg.gate.session_cv = 0.0;
    cfg
}

/// Judges with `cfg` in one look, with `decisions` frozen earlier.
fn judge_cfg(cfg: &Config, strict: bool, decisions: &Decisions, inputs: Vec<ScenarioInput>) -> Report {
    let policy = Policy::from_config(cfg, Vec::new());
    let inv = Invocation {
        command: "test",
        policy: &policy,
        look: policy.single_look(),
        decisions,
        machine: machine("here"),
        compare: true,
        strict,
        started: String::new(),
        wall_s: 0.0,
    };
    judge(inv, inputs)
}

/// Judges with [`gate`] in one look.
fn judge_with(strict: bool, inputs: Vec<ScenarioInput>) -> Report {
    judge_cfg(&gate(), strict, &Decisions::default(), inputs)
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
fn judge_baseline_mode_allows_for_the_session_offset() {
    // Two sessions differ by a whole-session offset no number of runs averages away: with
    // session_cv = 3 % the same data can no longer be called unchanged within 3 %, but a +20 %
    // change is still a regression.
    let mut cfg = gate();
    cfg.gate.session_cv = 0.03;
    let base = runs("cp", jittered(100.0, 0));
    let same = judge_cfg(
        &cfg,
        false,
        &Decisions::default(),
        vec![input(Ok(runs("cp", jittered(100.0, 3))), baseline(&base, machine("here")))],
    );
    assert_eq!(verdict(&same, "cp"), Verdict::Inconclusive);
    let slower = judge_cfg(
        &cfg,
        false,
        &Decisions::default(),
        vec![input(Ok(runs("cp", jittered(120.0, 3))), baseline(&base, machine("here")))],
    );
    assert_eq!(verdict(&slower, "cp"), Verdict::Regressed);
}

#[test]
fn judge_baseline_mode_uses_the_session_spread_of_a_multi_session_baseline() {
    // The baseline holds two sessions 10 % apart: a whole session moves by several percent here,
    // so a +12 % current session is within what sessions do (not regressed), where the
    // configured prior alone (session_cv 0) would call it a regression.
    let low = runs("cp", jittered(100.0, 0));
    let high = runs("cp", jittered(110.0, 1));
    let (Against::Baseline(a), Against::Baseline(b)) =
        (baseline(&low, machine("here")), baseline(&high, machine("here")))
    else {
        unreachable!("baseline() gives a baseline")
    };
    let two = Against::Baseline(Box::new(a.append(*b).unwrap()));
    let cur = || Ok(runs("cp", jittered(112.0, 3)));
    let one = judge_with(false, vec![input(cur(), baseline(&low, machine("here")))]);
    assert_eq!(verdict(&one, "cp"), Verdict::Regressed);
    let r = judge_with(false, vec![input(cur(), two)]);
    assert_eq!(verdict(&r, "cp"), Verdict::Inconclusive);
    let against = r.scenarios[0].against.as_deref().unwrap_or_default();
    assert!(against.contains("in 2 sessions: session spread"), "{against}");
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
    assert_eq!(m.comparison.map(|c| c.method), Some(stats::Method::SignedRank), "pairing cancels the drift");
    // Ten rounds all slower: the exact signed-rank p-value is 1 / 2^10, doubled for the two tests.
    assert!(m.p_adjusted.unwrap() <= 2.0 / 1024.0 + 1e-15, "adjusted p {:?}", m.p_adjusted);
    assert_eq!(r.exit_code, crate::exit_code::REGRESSION);
}

#[test]
fn judge_paired_uses_the_paired_minimum_effect() {
    let (a, b) = drifting_pairs();
    let r = judge_with(false, vec![input(Ok(b), Against::Paired { label: "A".into(), runs: a })]);
    let m = &r.scenarios[0].checkpoints[0].metrics[0];
    // The pairs are far quieter than min_effect_paired, so it is the threshold.
    assert_eq!(m.threshold, gate().gate.min_effect_paired);
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

/// Paired rounds of one checkpoint: A at 100 ns, B at `100 * shift`, each run independently in a
/// slow mode (+30 %) with probability 0.3, and 0.5 % noise within a mode.
fn modal_pairs(rounds: usize, shift: f64, seed: u64) -> (Vec<RunResult>, Vec<RunResult>) {
    let mut rng = stats::SplitMix64::new(seed);
    let mut one = |level: f64| {
        let mode = if rng.uniform() < 0.3 { 1.3 } else { 1.0 };
        level * mode * (1.0 + 0.01 * (rng.uniform() - 0.5))
    };
    let a: Vec<f64> = (0..rounds).map(|_| one(100.0)).collect();
    let b: Vec<f64> = (0..rounds).map(|_| one(100.0 * shift)).collect();
    (runs("cp", a), runs("cp", b))
}

#[test]
fn judge_paired_sees_a_5_percent_shift_through_whole_process_modes() {
    // 40 % of rounds pair runs from different modes (30 % apart): they swamp the mean log ratio's
    // standard error; the rank test reads the rounds whose runs share a mode.
    let (a, b) = modal_pairs(60, 1.05, 11);
    let values = |rs: &[RunResult]| current_values(rs, "cp", Metric::P50);
    let t = stats::compare_paired(&values(&a), &values(&b), 0.99).unwrap();
    let rank = stats::compare_paired_rank(&values(&a), &values(&b), None, 0.99).unwrap();
    assert!(rank.log_std_err < 0.25 * t.log_std_err, "premise: the modes swamp the mean: {t:?} {rank:?}");
    assert_eq!(rank.method, stats::Method::RankSum, "the mode-robust interval is the narrower");
    let r = judge_with(false, vec![input(Ok(b), Against::Paired { label: "A".into(), runs: a })]);
    assert_eq!(verdict(&r, "cp"), Verdict::Regressed);
    // And the same design without a change is called unchanged, not a false alarm.
    let (a, b) = modal_pairs(60, 1.0, 12);
    let r = judge_with(false, vec![input(Ok(b), Against::Paired { label: "A".into(), runs: a })]);
    assert_eq!(verdict(&r, "cp"), Verdict::Unchanged);
}

#[test]
fn judge_report_only_metrics_never_gate() {
    // p99 doubles, p50 stays: p99 is judged and shown as regressed (report-only), the checkpoint
    // is unchanged and the exit code passes.
    let mut cfg = gate();
    cfg.gate.report_metrics = vec![Metric::P99];
    let uniform = |p50: f64, p99: f64| {
        let mut r = run(&[("cp", p50)]);
        if let Some(s) = r.checkpoints.get_mut("cp").and_then(|c| c.summary.as_mut()) {
            s.p99 = p99;
        }
        r
    };
    let a: Vec<RunResult> = jittered(100.0, 0).map(|v| uniform(v, 2.0 * v)).collect();
    let b: Vec<RunResult> = jittered(100.0, 3).map(|v| uniform(v, 4.0 * v)).collect();
    let r = judge_cfg(
        &cfg,
        false,
        &Decisions::default(),
        vec![input(Ok(b), Against::Paired { label: "A".into(), runs: a })],
    );
    let cp = &r.scenarios[0].checkpoints[0];
    let p99 = cp.metrics.iter().find(|m| m.metric == Metric::P99).unwrap();
    assert_eq!((p99.gating, p99.verdict), (false, Verdict::Regressed));
    assert_eq!(cp.verdict, Verdict::Unchanged);
    assert_eq!((r.tally.regressed, r.exit_code), (0, crate::exit_code::PASS));
    assert!(decided_scenarios(&r)["s"], "report-only verdicts do not hold the scenario back");
}

#[test]
fn judge_a_verdict_reached_at_one_look_is_frozen() {
    let (a, b) = drifting_pairs();
    let first = judge_with(false, vec![input(Ok(b), Against::Paired { label: "A".into(), runs: a.clone() })]);
    assert_eq!(verdict(&first, "cp"), Verdict::Regressed);
    let mut decisions = Decisions::default();
    decisions.record(&first);
    // A later look whose runs alone show nothing: the frozen regression stands, marked with the
    // rounds it was reached at.
    let later = judge_cfg(
        &gate(),
        false,
        &decisions,
        vec![input(Ok(a.clone()), Against::Paired { label: "A".into(), runs: a })],
    );
    let m = &later.scenarios[0].checkpoints[0].metrics[0];
    assert_eq!((m.verdict, m.decided_at), (Verdict::Regressed, Some(10)));
    assert_eq!(later.exit_code, crate::exit_code::REGRESSION);
}

/// A wide interval around "a little faster": inconclusive, yet no regression beyond the margin is
/// possible ("not slower"); sampling goes on all the same, since more rounds can still make it
/// unchanged. A wide interval that reaches past the margin is not "not slower".
#[test]
fn judge_marks_inconclusive_cells_that_rule_out_a_regression() {
    let base: Vec<f64> = (0..10).map(|i| 100.0 * (1.0 + 0.3 * (i % 3) as f64)).collect();
    let paired = |factor: f64, spread: f64| {
        let cur: Vec<f64> =
            base.iter().zip(JITTER.iter()).map(|(x, j)| x * factor * (1.0 + spread * (j - 1.0))).collect();
        let r = judge_with(
            false,
            vec![input(Ok(runs("cp", cur)), Against::Paired { label: "A".into(), runs: runs("cp", base.clone()) })],
        );
        let m = r.scenarios[0].checkpoints[0].metrics[0].clone();
        (m, decided_scenarios(&r)["s"])
    };
    let (m, decided) = paired(0.985, 2.5);
    let c = m.comparison.unwrap();
    assert_eq!(m.verdict, Verdict::Inconclusive, "{c:?}");
    assert!(m.no_regression && !decided, "{c:?}");
    // Five times the spread: the interval reaches past +3 %, so more rounds could still gate.
    let (m, decided) = paired(0.985, 12.0);
    assert_eq!(m.verdict, Verdict::Inconclusive);
    assert!(!m.no_regression && !decided, "{:?}", m.comparison);
}

/// Paired rounds of three checkpoints `x`, `y`, `z` (100, 200, 400 ns) whose processes share one
/// slow state (+40 % at every checkpoint together, probability 0.5 per run), with a round effect
/// both runs share (up to +-6 %: the machine's drift) and 0.5 % noise per checkpoint and run; B's
/// `x` is `x_shift` times A's.
fn shared_state_pairs(rounds: usize, x_shift: f64, seed: u64) -> (Vec<RunResult>, Vec<RunResult>) {
    let mut rng = stats::SplitMix64::new(seed);
    let one = |rng: &mut stats::SplitMix64, shift: f64, round: f64| {
        let state = round * if rng.uniform() < 0.5 { 1.4 } else { 1.0 };
        let mut noise = || state * (1.0 + 0.01 * (rng.uniform() - 0.5));
        run(&[("x", 100.0 * shift * noise()), ("y", 200.0 * noise()), ("z", 400.0 * noise())])
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let round = 1.0 + 0.12 * (rng.uniform() - 0.5);
        a.push(one(&mut rng, 1.0, round));
        b.push(one(&mut rng, x_shift, round));
    }
    (a, b)
}

#[test]
fn judge_paired_compares_rounds_that_shared_a_whole_process_state() {
    let paired = |(a, b): (Vec<RunResult>, Vec<RunResult>)| {
        judge_with(false, vec![input(Ok(b), Against::Paired { label: "A".into(), runs: a })])
    };
    let x_comparison = |r: &Report| {
        let c = r.scenarios[0].checkpoints.iter().find(|c| c.name == "x").unwrap();
        c.metrics[0].comparison.unwrap()
    };
    // +3 % at x only: the same-state rounds (about half) see it through a 40 % state.
    let r = paired(shared_state_pairs(40, 1.03, 21));
    assert_eq!(verdict(&r, "x"), Verdict::Regressed, "{:?}", x_comparison(&r));
    assert_eq!(x_comparison(&r).method, stats::Method::SameState);
    assert_eq!((verdict(&r, "y"), verdict(&r, "z")), (Verdict::Unchanged, Verdict::Unchanged));
    // x alone, with no other checkpoint to tell the state, falls back on its own modes.
    let (a, b) = shared_state_pairs(40, 1.03, 21);
    let only_x = |rs: Vec<RunResult>| -> Vec<RunResult> {
        rs.into_iter()
            .map(|mut r| {
                r.checkpoints.retain(|k, _| k == "x");
                r
            })
            .collect()
    };
    let p50 = |rs: &[RunResult]| -> Vec<f64> { rs.iter().map(|r| r.checkpoints["x"].summary.unwrap().p50).collect() };
    let all_rounds = stats::compare_paired_rank(&p50(&a), &p50(&b), None, 0.99).unwrap();
    let alone = paired((only_x(a), only_x(b)));
    assert_eq!(verdict(&alone, "x"), Verdict::Regressed, "{:?}", x_comparison(&alone));
    assert_eq!(x_comparison(&alone).method, stats::Method::SameState);
    // Premise: without same-state rounds the two rank tests' interval is far wider.
    assert!(all_rounds.ci_high - all_rounds.ci_low > 3.0 * (x_comparison(&r).ci_high - x_comparison(&r).ci_low));
    // No change: never a false alarm over many seeds, and mostly "unchanged", whether the state
    // is told by the other checkpoints or by x's own modes.
    let (mut unchanged, mut own) = (0, 0);
    for seed in 100..140 {
        let r = paired(shared_state_pairs(40, 1.0, seed));
        assert_ne!(verdict(&r, "x"), Verdict::Regressed, "seed {seed}");
        unchanged += usize::from(verdict(&r, "x") == Verdict::Unchanged);
        let (a, b) = shared_state_pairs(40, 1.0, seed);
        let alone = paired((only_x(a), only_x(b)));
        assert_ne!(verdict(&alone, "x"), Verdict::Regressed, "seed {seed}, x alone");
        own += usize::from(verdict(&alone, "x") == Verdict::Unchanged);
    }
    assert!(unchanged >= 36 && own >= 36, "{unchanged}/40 and {own}/40 unchanged");
}

#[test]
fn process_states_come_from_the_scenario_or_the_checkpoints_own_modes() {
    // Independent states per checkpoint: each checkpoint's own modes tell its states.
    let mut rng = stats::SplitMix64::new(5);
    let mut one = || {
        let mut s = || if rng.uniform() < 0.5 { 1.4 } else { 1.0 };
        run(&[("x", 100.0 * s()), ("y", 200.0 * s()), ("z", 400.0 * s())])
    };
    let a: Vec<RunResult> = (0..40).map(|_| one()).collect();
    let b: Vec<RunResult> = (0..40).map(|_| one()).collect();
    let states = modes::process_states(&a, &b);
    assert_eq!(states.len(), 3);
    let slow = |rs: &[RunResult], i: usize| rs[i].checkpoints["y"].summary.unwrap().p50 > 250.0;
    for (i, &same) in states["y"].iter().enumerate() {
        assert_eq!(same, slow(&a, i) == slow(&b, i), "round {i}");
    }
    // No modes at all: no states, no same-state test.
    let flat: Vec<RunResult> = (0..40).map(|i| run(&[("x", 100.0 + (i % 7) as f64)])).collect();
    assert!(modes::process_states(&flat, &flat).is_empty());
    // A shared state: every checkpoint gets its flags, one per round.
    let (a, b) = shared_state_pairs(40, 1.0, 6);
    let states = modes::process_states(&a, &b);
    assert_eq!(states.keys().map(String::as_str).collect::<Vec<_>>(), ["x", "y", "z"]);
    let same = states["x"].iter().filter(|&&s| s).count();
    assert!((10..=30).contains(&same), "about half the rounds share a state: {same}");
}

/// A baseline-mode report with one regressed checkpoint (`s/cp`, +20 %) that gates: for tests of
/// what happens after judging (acceptances).
pub(super) fn regressed_report() -> Report {
    let base = runs("cp", jittered(100.0, 0));
    judge_with(false, vec![input(Ok(runs("cp", jittered(120.0, 3))), baseline(&base, machine("here")))])
}
