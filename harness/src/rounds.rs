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
//! extends an experiment until its verdicts are decided or its time budget is spent.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::model::RunResult;
use crate::runner::{self, Launch, RunOutput};

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
    /// Per scenario: its measured rounds, or the first failure (a failed scenario is not run
    /// again).
    pub results: Vec<Result<Vec<Round>, String>>,
    rng: u64,
    rounds_done: usize,
    started: Instant,
}

/// splitmix64: a tiny deterministic generator for shuffling.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
            results: (0..n).map(|_| Ok(Vec::new())).collect(),
            rng: seed,
            rounds_done: 0,
            started: Instant::now(),
        }
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
        }
    }

    fn progress(&self, line: &str) {
        if self.quiet {
            return;
        }
        if std::io::stderr().is_terminal() {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }

    /// Ends a progress line on a terminal.
    pub fn progress_done(&self) {
        if !self.quiet && std::io::stderr().is_terminal() {
            eprintln!();
        }
    }

    /// Runs `warmup` discarded rounds (first call only) and then `rounds` measured rounds of every
    /// scenario that has not failed, unless `deadline` passes (checked between scenario rounds).
    /// Returns the measured rounds actually completed by this call.
    pub fn run_rounds(&mut self, warmup: usize, rounds: usize, deadline: Option<Instant>) -> usize {
        let n = self.scenarios.len();
        let mut completed = 0;
        for r in 0..warmup + rounds {
            let measured = r >= warmup;
            if measured && deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let round_no = self.rounds_done + 1;
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, (splitmix(&mut self.rng) % (i as u64 + 1)) as usize);
            }
            for si in order {
                if self.results[si].is_err() {
                    continue;
                }
                let what = if measured { format!("round {round_no}") } else { "warm-up".into() };
                self.progress(&format!(
                    "{} {what} ({:.0} s)",
                    self.scenarios[si].name,
                    self.started.elapsed().as_secs_f64()
                ));
                match self.one_round(si, round_no) {
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
        completed
    }

    /// One scenario on every arm, in alternating order, plus the reference run.
    fn one_round(&self, si: usize, round_no: usize) -> Result<Round, String> {
        let k = self.arms.len();
        // A B in odd rounds, B A in even ones (and rotations for more arms).
        let order: Vec<usize> = (0..k).map(|i| if round_no % 2 == 1 { i } else { k - 1 - i }).collect();
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
                    };
                    runner::run_once(&l).map(|o| Some(o.result)).map_err(|e| format!("reference workload: {e}"))
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
            let out = runner::run_once(&self.launch(si, program, &arm.env)).map_err(|e| {
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
