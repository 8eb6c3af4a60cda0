//! The command line: argument parsing and dispatch only. The work is in [`crate::commands`]
//! (and below it [`crate::rounds`], [`crate::judge`], [`crate::report`]).
//!
//! Another workspace adopts funcscope with a `funcscope.toml` and an xtask whose `main` is
//! `std::process::exit(funcscope_harness::cli::main())`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::commands::{self, CompareOptions, GateOptions};
use crate::config::Config;
use crate::exit_code;
use crate::fingerprint::Fingerprint;
use crate::judge::{self, Against, Invocation, ScenarioInput};
use crate::report::Outputs;
use crate::runner::{self, Launch};
use crate::workspace::SetupResult;

/// funcscope: per-call latency of instrumented code, and a regression gate for CI.
#[derive(Parser, Debug)]
#[command(name = "funcscope", bin_name = "cargo xtask", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build and run the scenarios, compare with the committed baselines, fail on a regression.
    ///
    /// Exit codes: 0 pass, 1 regression, 2 usage/configuration/build/baseline error,
    /// 3 a scenario failed to run.
    Regress(RegressArgs),
    /// Record (or update) baselines from fresh runs; refuses to write from a failed or partial run.
    Baseline(BaselineArgs),
    /// Paired A/B: build two revisions side by side and run them interleaved (A B B A ...).
    ///
    /// REV_B defaults to the working tree, uncommitted changes included. Same exit codes as
    /// regress.
    Compare(CompareArgs),
    /// A/A experiments: measure run-to-run noise per checkpoint and the smallest detectable
    /// regression; with --write, store the noise in the baselines so thresholds follow it.
    Calibrate(CalibrateArgs),
    /// Run any instrumented program and print per-checkpoint statistics (no baseline needed).
    Run(RunArgs),
    /// Benchmark the gate's verdicts on this machine: A/A and planted-slowdown trials in
    /// baseline and paired mode; prints detection and false-alarm rates against the targets.
    VerdictBench(VerdictBenchArgs),
    /// The harness's reference workload (run by the harness itself for drift correction).
    #[command(name = "__reference", hide = true)]
    Reference {
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Options shared by commands that use `funcscope.toml`.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The configuration file (default: funcscope.toml in this directory or above).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only these scenarios (repeatable).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Measured runs (rounds) per scenario (overrides the configuration).
    #[arg(long)]
    pub runs: Option<usize>,
    /// Do not build: use the binaries already in the target directory.
    #[arg(long)]
    pub no_build: bool,
    /// Less progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Report outputs and gating options.
#[derive(Args, Debug, Clone)]
pub struct Judging {
    /// Write the JSON report here (default: TARGET/funcscope/<command>.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the Markdown report here (default: TARGET/funcscope/<command>.md).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Adaptive sampling budget in seconds: keep adding rounds while some verdict is
    /// inconclusive (0: fixed number of runs). Default: run.budget_s of the configuration.
    #[arg(long)]
    pub budget: Option<f64>,
}

/// `regress`.
#[derive(Args, Debug)]
pub struct RegressArgs {
    /// Common options.
    #[command(flatten)]
    pub common: Common,
    /// Outputs and sampling.
    #[command(flatten)]
    pub judging: Judging,
    /// Let regressions against a baseline from a different machine fail the build.
    #[arg(long)]
    pub strict: bool,
    /// Always rebuild the baseline's commit and compare paired on this machine (automatic when
    /// the baseline was recorded on a different machine).
    #[arg(long)]
    pub paired: bool,
    /// Do not run the reference workload (no machine-drift correction).
    #[arg(long)]
    pub no_reference: bool,
}

/// `baseline`.
#[derive(Args, Debug)]
pub struct BaselineArgs {
    /// Common options.
    #[command(flatten)]
    pub common: Common,
    /// Do not run the reference workload (the baseline then allows no drift correction).
    #[arg(long)]
    pub no_reference: bool,
}

/// `calibrate`.
#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// Common options.
    #[command(flatten)]
    pub common: Common,
    /// Store the measured noise in the existing baselines.
    #[arg(long)]
    pub write: bool,
    /// Do not run the reference workload.
    #[arg(long)]
    pub no_reference: bool,
}

/// `compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Revision A (the reference side): a branch, tag or commit.
    pub rev_a: String,
    /// Revision B (default: the working tree, uncommitted changes included).
    pub rev_b: Option<String>,
    /// Common options.
    #[command(flatten)]
    pub common: Common,
    /// Outputs and sampling.
    #[command(flatten)]
    pub judging: Judging,
    /// Extra environment for side B only, KEY=VALUE (repeatable), e.g. to rehearse a planted
    /// slowdown: --env-b FUNCSCOPE_PLANT=parse_headers=5.
    #[arg(long = "env-b", value_name = "KEY=VALUE")]
    pub env_b: Vec<String>,
}

/// `run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Process runs.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Kill the program after this many seconds.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// Fail if it has not attached after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub attach_timeout: f64,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the Markdown report here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Do not pin the program to one CPU (by default it runs on the last CPU the harness may use,
    /// which makes runs far more repeatable).
    #[arg(long)]
    pub no_pin: bool,
    /// The instrumented program and its arguments.
    #[arg(required = true, last = true, value_name = "PROGRAM [ARGS]")]
    pub program: Vec<String>,
}

/// `verdict-bench`.
#[derive(Args, Debug)]
pub struct VerdictBenchArgs {
    /// The configuration file (default: funcscope.toml in this directory or above).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only these scenarios (repeatable; default: all).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Trials per plant size, and A/A trials, per mode and scenario.
    #[arg(long, default_value_t = 10)]
    pub trials: usize,
    /// Planted slowdowns in percent, comma-separated.
    #[arg(long, default_value = "1,2,5,10", value_parser = crate::quality::parse_sizes)]
    pub sizes: std::vec::Vec<f64>,
    /// Which gate modes to benchmark.
    #[arg(long, value_enum, default_value = "both")]
    pub mode: crate::quality::ModeChoice,
    /// Rounds per trial and for the baselines (default: the configuration's runs).
    #[arg(long)]
    pub runs: Option<usize>,
    /// Adaptive sampling budget per trial in seconds (default: run.budget_s).
    #[arg(long)]
    pub budget: Option<f64>,
    /// Per-trial results as JSON (default: TARGET/funcscope/verdict-bench.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Do not build: use the binaries already in the target directory.
    #[arg(long)]
    pub no_build: bool,
    /// Less progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Parses `std::env::args()` and runs the command; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit_code::USAGE } else { exit_code::PASS };
        }
    };
    run_cli(cli)
}

fn gate(c: &Common, j: Option<&Judging>) -> GateOptions {
    GateOptions {
        config: c.config.clone(),
        scenarios: c.scenarios.clone(),
        runs: c.runs,
        no_build: c.no_build,
        quiet: c.quiet,
        json: j.and_then(|j| j.json.clone()),
        markdown: j.and_then(|j| j.markdown.clone()),
        budget_s: j.and_then(|j| j.budget),
        ..GateOptions::default()
    }
}

/// Runs a parsed command.
pub fn run_cli(cli: Cli) -> i32 {
    let r = match cli.command {
        Command::Regress(a) => commands::regress(&GateOptions {
            strict: a.strict,
            paired: a.paired,
            no_reference: a.no_reference,
            ..gate(&a.common, Some(&a.judging))
        }),
        Command::Baseline(a) => {
            commands::baseline(&GateOptions { no_reference: a.no_reference, ..gate(&a.common, None) })
        }
        Command::Compare(a) => parse_env(&a.env_b).and_then(|env_b| {
            commands::compare(&CompareOptions {
                gate: gate(&a.common, Some(&a.judging)),
                rev_a: a.rev_a,
                rev_b: a.rev_b,
                env_b,
            })
        }),
        Command::Calibrate(a) => {
            crate::calibrate::calibrate(&GateOptions { no_reference: a.no_reference, ..gate(&a.common, None) }, a.write)
        }
        Command::Run(a) => run_program(a),
        Command::VerdictBench(a) => crate::quality::verdict_bench(&crate::quality::BenchOptions {
            config: a.config,
            scenarios: a.scenarios,
            trials: a.trials,
            sizes: a.sizes,
            mode: a.mode,
            runs: a.runs,
            budget_s: a.budget,
            json: a.json,
            no_build: a.no_build,
            quiet: a.quiet,
        }),
        Command::Reference { args } => return crate::reference::reference_main(&args),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            exit_code::USAGE
        }
    }
}

fn parse_env(kv: &[String]) -> SetupResult<Vec<(String, String)>> {
    kv.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("--env-b {s:?}: expected KEY=VALUE"))
        })
        .collect()
}

fn run_program(a: RunArgs) -> SetupResult<i32> {
    let t0 = Instant::now();
    let started = commands::now_rfc3339();
    let (prog, args) = a.program.split_first().ok_or("no program given")?;
    let program = which(prog).ok_or_else(|| format!("{prog}: no such program (not a path, not on PATH)"))?;
    let name =
        std::path::Path::new(prog).file_name().map_or_else(|| prog.clone(), |n| n.to_string_lossy().into_owned());
    let launch = Launch {
        name: name.clone(),
        program,
        args: args.to_vec(),
        env: Vec::new(),
        timeout: Duration::from_secs_f64(a.timeout),
        attach_timeout: Duration::from_secs_f64(a.attach_timeout),
        cpu: if a.no_pin { None } else { runner::measurement_cpu() },
    };
    let mut runs = Vec::new();
    let mut failure = None;
    for _ in 0..a.runs.max(1) {
        match runner::run_once(&launch) {
            Ok(o) => runs.push(o.result),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let cfg = Config::ad_hoc();
    let outcome = match failure {
        Some(e) => Err(e),
        None => Ok(runs),
    };
    let inv = Invocation {
        command: "run",
        policy: &judge::Policy::from_config(&cfg, 1),
        machine: Fingerprint::current(),
        compare: false,
        strict: false,
        started,
        wall_s: t0.elapsed().as_secs_f64(),
    };
    let input = ScenarioInput { name, outcome, against: Against::Nothing, reference: None };
    let report = judge::judge(inv, vec![input]);
    commands::finish(&report, Outputs { json: a.json, markdown: a.markdown })
}

/// Resolves a program name like a shell: a path if it contains '/', else the first match on PATH.
fn which(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(prog)).find(|p| p.is_file())
}
