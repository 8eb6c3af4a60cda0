//! Rounds of process runs: the experimental design shared by `regress`, `baseline`, `compare`
//! and `calibrate`.
//!
//! A *round* runs every scenario once on every *arm* (one arm in baseline mode, two in a paired
//! A/B comparison), in a scenario order shuffled per round, with the arms of one scenario run
//! back to back and their order alternating between rounds (A B, B A, A B, ...), so slow drift of
//! the machine hits both arms alike. Optionally a run of the harness's reference workload sits
//! next to each scenario's runs (before them in even rounds, after in odd ones): it measures how
//! fast the machine is at that moment (see [`crate::reference`]).
//!
//! Rounds can be added incrementally ([`Experiment::run_rounds`]), which is how adaptive sampling
//! extends an experiment until its verdicts are decided or its time budget is spent; the rounds at
//! which it looks are [`look_schedule`].
//!
//! Every process run goes through the experiment's [`Launcher`] ([`runner::run_once`] unless
//! replaced), so the design can be tested without processes.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::model::RunResult;
use crate::report::progress::Progress;
use crate::runner::{self, Launch, RunError, RunOutput};
use crate::stats::SplitMix64;

/// Adaptive sampling doubles the rounds at each look (`runs`, 2 `runs`, 4 `runs`, ... up to
/// `max_runs`; 10, 20, 40 with the bundled `funcscope.toml`): the
/// number of looks, over which alpha is split, grows only with the logarithm of the budget.
pub const ADAPTIVE_GROWTH: usize = 2;

/// The rounds after which the looks of an adaptive experiment happen: `initial`, then growing by
/// [`ADAPTIVE_GROWTH`] up to `max_rounds`.
pub fn look_schedule(initial: usize, max_rounds: usize) -> Vec<usize> {
    let mut v = vec![initial.max(1)];
    while *v.last().expect("non-empty") < max_rounds {
        let next = (v.last().expect("non-empty") * ADAPTIVE_GROWTH).min(max_rounds);
        v.push(next);
    }
    v
}

/// Planned looks of an adaptive experiment (see [`look_schedule`]). With no budget, one.
pub fn planned_looks(initial: usize, max_rounds: usize, budget_s: f64) -> usize {
    if budget_s <= 0.0 || max_rounds <= initial {
        1
    } else {
        look_schedule(initial, max_rounds).len()
    }
}

/// Runs one process and measures it: [`runner::run_once`] in real experiments.
pub type Launcher = Box<dyn Fn(&Launch) -> Result<RunOutput, RunError> + Send + Sync>;

/// One arm: a build of the scenarios (one program per scenario) plus environment.
#[derive(Clone, Debug)]
pub struct Arm {
    /// Label for progress and reports (e.g. `A (main@1a2b3c4)`).
    pub label: String,
    /// Per scenario: its program on this arm (`None`: the scenario does not exist there).
    pub programs: Vec<Option<PathBuf>>,
    /// Extra environment for every run of this arm (e.g. a planted slowdown).
    pub env: Vec<(String, String)>,
}

/// What to run per scenario (arm-independent).
#[derive(Clone, Debug)]
pub struct ScenarioSpec {
    /// Name.
    pub name: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment from the configuration.
    pub env: Vec<(String, String)>,
    /// Functions measured through uprobes in every run (`[[scenario.uprobe]]`).
    pub uprobes: Vec<crate::snoop::gate::GateProbe>,
    /// Event pairs traced in every run (`[[scenario.event_pair]]`).
    pub event_pairs: Vec<crate::events::gate::PairSpec>,
}

/// One round of one scenario: a run per arm (same order as the arms) and the adjacent reference
/// run, if the experiment has a reference.
pub struct Round {
    /// Per arm.
    pub arms: Vec<RunOutput>,
    /// The reference run next to them.
    pub reference: Option<RunResult>,
}

/// The reference workload's launch (program + arguments), if used.
#[derive(Clone, Debug)]
pub struct ReferenceSpec {
    /// Program (normally the running harness binary itself).
    pub program: PathBuf,
    /// Arguments (the hidden subcommand and its duration).
    pub args: Vec<String>,
}

/// An experiment in progress.
pub struct Experiment {
    /// Scenarios.
    pub scenarios: Vec<ScenarioSpec>,
    /// Arms.
    pub arms: Vec<Arm>,
    /// Reference workload, if any.
    pub reference: Option<ReferenceSpec>,
    /// Per-run limits.
    pub timeout: Duration,
    /// Per-run attach limit.
    pub attach_timeout: Duration,
    /// Less output.
    pub quiet: bool,
    /// CPU every run is pinned to (scenario and reference runs alike); see
    /// [`runner::measurement_cpu`].
    pub cpu: Option<usize>,
    /// Run a private copy of each program per run ([`runner::private_copy`]).
    pub fresh_copy: bool,
    /// Runs every launch, scenario and reference alike (default [`runner::run_once`]; tests put a
    /// fake here).
    pub launcher: Launcher,
    /// Per scenario: its measured rounds, or the first failure (a failed scenario is not run
    /// again).
    pub results: Vec<Result<Vec<Round>, String>>,
    rng: SplitMix64,
    rounds_done: usize,
    started: Instant,
    /// Per scenario: retired (its verdicts are decided), so no longer run.
    retired: Vec<bool>,
    /// Whether arm A runs first in the current block of two rounds.
    a_first: bool,
}

impl Experiment {
    /// A new experiment with no rounds yet.
    pub fn new(scenarios: Vec<ScenarioSpec>, arms: Vec<Arm>, reference: Option<ReferenceSpec>) -> Experiment {
        let n = scenarios.len();
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Experiment {
            scenarios,
            arms,
            reference,
            timeout: Duration::from_secs(60),
            attach_timeout: Duration::from_secs(10),
            quiet: false,
            cpu: runner::measurement_cpu(),
            fresh_copy: true,
            launcher: Box::new(runner::run_once),
            results: (0..n).map(|_| Ok(Vec::new())).collect(),
            rng: SplitMix64::new(seed),
            rounds_done: 0,
            started: Instant::now(),
            retired: vec![false; n],
            a_first: true,
        }
    }

    /// Stops running scenario `si` (its verdicts are decided): later rounds skip it, its rounds so
    /// far stay in [`Experiment::results`].
    pub fn retire(&mut self, si: usize) {
        if let Some(r) = self.retired.get_mut(si) {
            *r = true;
        }
    }

    /// Whether some scenario is still run (neither failed nor retired).
    pub fn any_active(&self) -> bool {
        (0..self.scenarios.len()).any(|si| !self.retired[si] && self.results[si].is_ok())
    }

    /// Measured rounds completed so far.
    pub fn rounds_done(&self) -> usize {
        self.rounds_done
    }

    /// Seconds since the experiment started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn launch(&self, si: usize, program: &std::path::Path, extra_env: &[(String, String)]) -> Launch {
        let s = &self.scenarios[si];
        Launch {
            name: s.name.clone(),
            program: program.to_path_buf(),
            args: s.args.clone(),
            env: s.env.iter().chain(extra_env).cloned().collect(),
            timeout: self.timeout,
            attach_timeout: self.attach_timeout,
            cpu: self.cpu,
            fresh_copy: self.fresh_copy,
            uprobes: s.uprobes.clone(),
            event_pairs: s.event_pairs.clone(),
        }
    }

    /// Runs `warmup` discarded rounds (first call only) and then `rounds` measured rounds of every
    /// scenario that has not failed, unless `deadline` passes (checked before each measured round:
    /// a round under way completes; warm-up rounds are not cut).
    /// Returns the measured rounds actually completed by this call.
    pub fn run_rounds(&mut self, warmup: usize, rounds: usize, deadline: Option<Instant>) -> usize {
        let n = self.scenarios.len();
        let mut completed = 0;
        // A bar with an ETA on a terminal, plain lines in a CI log; over the scenario rounds
        // planned by this call (a deadline or a failure may end it early).
        let active = (0..n).filter(|&si| self.results[si].is_ok() && !self.retired[si]).count();
        let progress = Progress::new(((warmup + rounds) * active) as u64, self.quiet);
        for r in 0..warmup + rounds {
            let measured = r >= warmup;
            if measured && deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let round_no = self.rounds_done + 1;
            // Balanced, randomized arm order: each block of two rounds runs A B then B A, or B A
            // then A B, chosen at random, so neither arm systematically runs first or after the
            // other, and a periodic disturbance cannot line up with one arm.
            if round_no % 2 == 1 {
                self.a_first = self.rng.below(2) == 0;
            } else {
                self.a_first = !self.a_first;
            }
            let mut order: Vec<usize> = (0..n).collect();
            self.rng.shuffle(&mut order);
            for si in order {
                if self.results[si].is_err() || self.retired[si] {
                    continue;
                }
                let what = if measured { format!("round {round_no}") } else { "warm-up".into() };
                progress.step(&format!("{} {what}", self.scenarios[si].name));
                let outcome = self.one_round(si, round_no);
                progress.inc();
                match outcome {
                    Ok(round) if measured => {
                        if let Ok(v) = &mut self.results[si] {
                            v.push(round);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => self.results[si] = Err(e),
                }
            }
            if measured {
                self.rounds_done += 1;
                completed += 1;
            }
        }
        progress.finish();
        completed
    }

    /// One scenario on every arm, in alternating order, plus the reference run.
    fn one_round(&self, si: usize, round_no: usize) -> Result<Round, String> {
        let k = self.arms.len();
        // A B or B A as the block decided (reversed for more arms).
        let order: Vec<usize> = (0..k).map(|i| if self.a_first { i } else { k - 1 - i }).collect();
        let reference_first = round_no % 2 == 0;
        let run_reference = |me: &Experiment| -> Result<Option<RunResult>, String> {
            match &me.reference {
                None => Ok(None),
                Some(r) => {
                    let l = Launch {
                        name: crate::reference::REFERENCE_SCENARIO.into(),
                        program: r.program.clone(),
                        args: r.args.clone(),
                        env: Vec::new(),
                        timeout: me.timeout,
                        attach_timeout: me.attach_timeout,
                        cpu: me.cpu,
                        fresh_copy: false, // the harness's own large binary, one file for both arms
                        uprobes: Vec::new(),
                        event_pairs: Vec::new(),
                    };
                    (me.launcher)(&l).map(|o| Some(o.result)).map_err(|e| format!("reference workload: {e}"))
                }
            }
        };
        let mut reference = None;
        if reference_first {
            reference = run_reference(self)?;
        }
        let mut outs: Vec<Option<RunOutput>> = (0..k).map(|_| None).collect();
        for ai in order {
            let arm = &self.arms[ai];
            let program = arm.programs[si]
                .as_ref()
                .ok_or_else(|| format!("scenario {} does not exist on arm {}", self.scenarios[si].name, arm.label))?;
            let out = (self.launcher)(&self.launch(si, program, &arm.env)).map_err(|e| {
                if k > 1 {
                    format!("[{}] {e}", arm.label)
                } else {
                    e.to_string()
                }
            })?;
            outs[ai] = Some(out);
        }
        if !reference_first {
            reference = run_reference(self)?;
        }
        Ok(Round { arms: outs.into_iter().map(|o| o.expect("every arm ran")).collect(), reference })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn looks_double_the_rounds_up_to_the_maximum() {
        assert_eq!(look_schedule(12, 60), [12, 24, 48, 60]);
        assert_eq!(look_schedule(8, 8), [8]);
        assert_eq!(planned_looks(12, 60, 30.0), 4);
        assert_eq!(planned_looks(12, 60, 0.0), 1, "no budget: a fixed design");
    }

    /// The launches an experiment made, as program paths (`A/s0`, `B/s1`, `ref`), in order.
    type Log = Arc<Mutex<Vec<String>>>;

    fn output(name: &str) -> RunOutput {
        RunOutput {
            result: RunResult {
                scenario: name.to_owned(),
                wall_s: 0.0,
                processes: 1,
                tick_hz: 1e9,
                floor_ns: 0.0,
                bad_index: 0,
                checkpoints: BTreeMap::new(),
            },
            pooled: BTreeMap::new(),
            deep: BTreeMap::new(),
            stdout_tail: String::new(),
        }
    }

    /// An experiment over `scenarios` scenarios (`s0`, `s1`, ...) and the named arms, with a
    /// reference if asked, whose launcher logs each launch and fails the scenarios in `failing`.
    fn experiment(scenarios: usize, arms: &[&str], reference: bool, failing: &[&str]) -> (Experiment, Log) {
        let specs = (0..scenarios)
            .map(|i| ScenarioSpec {
                name: format!("s{i}"),
                args: Vec::new(),
                env: Vec::new(),
                uprobes: Vec::new(),
                event_pairs: Vec::new(),
            })
            .collect();
        let arms = arms
            .iter()
            .map(|a| Arm {
                label: (*a).to_owned(),
                programs: (0..scenarios).map(|i| Some(PathBuf::from(format!("{a}/s{i}")))).collect(),
                env: Vec::new(),
            })
            .collect();
        let reference = reference.then(|| ReferenceSpec { program: PathBuf::from("ref"), args: Vec::new() });
        let mut e = Experiment::new(specs, arms, reference);
        e.quiet = true;
        let log: Log = Arc::default();
        let (l, failing): (Log, Vec<String>) = (log.clone(), failing.iter().map(|s| (*s).to_owned()).collect());
        e.launcher = Box::new(move |launch: &Launch| {
            l.lock().unwrap().push(launch.program.display().to_string());
            if failing.contains(&launch.name) {
                return Err(RunError::Failed { name: launch.name.clone(), code: 101, stderr: String::new() });
            }
            Ok(output(&launch.name))
        });
        (e, log)
    }

    fn launches(log: &Log) -> Vec<String> {
        log.lock().unwrap().clone()
    }

    #[test]
    fn arm_order_is_balanced_in_random_blocks_and_the_reference_alternates() {
        let (mut e, log) = experiment(1, &["A", "B"], true, &[]);
        e.rng = SplitMix64::new(5);
        assert_eq!(e.run_rounds(0, 40, None), 40);
        let got = launches(&log);
        let rounds: Vec<Vec<&str>> = got.chunks(3).map(|c| c.iter().map(String::as_str).collect()).collect();
        let arms = |r: &[&str]| -> Vec<String> { r.iter().filter(|p| **p != "ref").map(|p| p.to_string()).collect() };
        let mut a_first_blocks = 0;
        for (b, block) in rounds.chunks(2).enumerate() {
            // Within a block the two orders are mirror images: A B then B A, or B A then A B.
            let (x, y) = (arms(&block[0]), arms(&block[1]));
            assert_eq!(x.iter().rev().cloned().collect::<Vec<_>>(), y, "block {b}: {block:?}");
            a_first_blocks += usize::from(x[0] == "A/s0");
            // The reference run sits after the arms in odd rounds, before them in even ones.
            assert_eq!(block[0][2], "ref", "round {}", 2 * b + 1);
            assert_eq!(block[1][0], "ref", "round {}", 2 * b + 2);
        }
        assert!((4..=16).contains(&a_first_blocks), "random block orders: {a_first_blocks} of 20 A-first");
        // Results keep the arms' order whatever order they ran in, with the reference attached.
        let Ok(r) = &e.results[0] else { panic!("scenario failed") };
        assert_eq!(r.len(), 40);
        assert!(r.iter().all(|round| round.arms.len() == 2 && round.reference.is_some()));
    }

    #[test]
    fn a_retired_scenario_is_no_longer_run() {
        let (mut e, log) = experiment(2, &["A"], false, &[]);
        e.run_rounds(0, 2, None);
        e.retire(0);
        e.run_rounds(0, 3, None);
        let got = launches(&log);
        assert_eq!(got.iter().filter(|p| p.ends_with("/s0")).count(), 2, "{got:?}");
        assert_eq!(got.iter().filter(|p| p.ends_with("/s1")).count(), 5);
        assert!(e.any_active());
        e.retire(1);
        assert!(!e.any_active());
    }

    #[test]
    fn warmup_rounds_run_but_are_not_kept() {
        let (mut e, log) = experiment(2, &["A"], false, &[]);
        assert_eq!(e.run_rounds(1, 2, None), 2);
        assert_eq!(launches(&log).len(), 6, "one warm-up and two measured rounds of two scenarios");
        assert_eq!(e.rounds_done(), 2);
        assert!(e.results.iter().all(|r| r.as_ref().is_ok_and(|v| v.len() == 2)));
    }

    #[test]
    fn shuffled_order_covers_every_scenario_each_round() {
        let n = 5;
        let (mut e, log) = experiment(n, &["A"], false, &[]);
        e.rng = SplitMix64::new(42); // deterministic shuffles
        e.run_rounds(0, 8, None);
        let got = launches(&log);
        let want: Vec<String> = (0..n).map(|i| format!("A/s{i}")).collect();
        let mut orders = std::collections::BTreeSet::new();
        for round in got.chunks(n) {
            let mut sorted = round.to_vec();
            sorted.sort();
            assert_eq!(sorted, want, "every scenario exactly once per round: {round:?}");
            orders.insert(round.to_vec());
        }
        assert_eq!(got.len(), 8 * n);
        assert!(orders.len() > 1, "the order is shuffled between rounds");
    }

    #[test]
    fn a_failing_scenario_is_not_run_again() {
        let (mut e, log) = experiment(3, &["A", "B"], false, &["s1"]);
        assert_eq!(e.run_rounds(0, 3, None), 3);
        let got = launches(&log);
        assert_eq!(got.iter().filter(|p| p.ends_with("/s1")).count(), 1, "{got:?}");
        assert_eq!(got.len(), 1 + 3 * 2 * 2);
        match &e.results[1] {
            // Whichever arm ran first in that block failed it.
            Err(msg) => assert!(msg.contains("] s1: exited with code 101"), "{msg}"),
            Ok(_) => panic!("s1 should have failed"),
        }
        assert!(e.results[0].as_ref().is_ok_and(|v| v.len() == 3));
        assert!(e.results[2].as_ref().is_ok_and(|v| v.len() == 3));
    }

    #[test]
    fn a_failing_reference_fails_the_scenario() {
        let (mut e, _) = experiment(1, &["A"], true, &[crate::reference::REFERENCE_SCENARIO]);
        e.run_rounds(0, 2, None);
        match &e.results[0] {
            Err(msg) => assert!(msg.starts_with("reference workload: "), "{msg}"),
            Ok(_) => panic!("the scenario should have failed"),
        }
    }

    #[test]
    fn a_past_deadline_runs_no_measured_round_but_the_warmup() {
        let (mut e, log) = experiment(2, &["A"], false, &[]);
        assert_eq!(e.run_rounds(1, 3, Some(Instant::now())), 0);
        assert_eq!(launches(&log).len(), 2, "the warm-up round is not cut by the deadline");
        assert_eq!(e.rounds_done(), 0);
    }

    #[test]
    fn the_deadline_stops_before_the_next_round_not_within_one() {
        let (mut e, log) = experiment(2, &["A"], false, &[]);
        let deadline = Instant::now() + Duration::from_millis(20);
        // Every launch outlasts the deadline: the round under way completes, no other starts.
        e.launcher = {
            let l = log.clone();
            Box::new(move |launch: &Launch| {
                while Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                l.lock().unwrap().push(launch.program.display().to_string());
                Ok(output(&launch.name))
            })
        };
        assert_eq!(e.run_rounds(0, 5, Some(deadline)), 1);
        assert_eq!(launches(&log).len(), 2, "both scenarios of the first round ran");
        assert!(e.results.iter().all(|r| r.as_ref().is_ok_and(|v| v.len() == 1)));
    }
}
