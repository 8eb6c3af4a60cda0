//! The command line: argument parsing and dispatch only. Each subcommand's arguments become the
//! plain options struct of its module in [`crate::commands`], whose `run` does the work; errors
//! become exit codes through [`Error::exit_code`].
//!
//! Another workspace adopts funcscope with a `funcscope.toml` and an xtask whose `main` is
//! `std::process::exit(funcscope_harness::cli::main())`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::commands::{self, verdict_bench, Selection};
use crate::config::Measure;
use crate::error::{Error, Result};
use crate::exit_code;
use crate::report::{ColorChoice, Outputs};

/// funcscope: per-call latency of instrumented code, and a regression gate for CI.
#[derive(Parser, Debug)]
#[command(name = "funcscope", bin_name = "cargo xtask", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// Colour the report: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
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
    /// Judge two saved JSON reports offline (B against A's runs, as a baseline); runs nothing.
    /// Same exit codes as regress.
    Diff(DiffArgs),
    /// The trend of one checkpoint over the history that --history appends to: a table and an
    /// SVG, with change points flagged (PELT on log values, BIC-style penalty). Runs nothing.
    History(HistoryArgs),
    /// Benchmark the gate's verdicts on this machine: A/A and planted-slowdown trials in
    /// baseline and paired mode; prints detection and false-alarm rates against the targets.
    VerdictBench(VerdictBenchArgs),
    /// Per-call latency of uninstrumented functions through uprobes: launch a command or attach
    /// to a pid, print count, mean, min, p50, p99, max and a log2 histogram per function.
    ///
    /// Exit codes: 0 traced, 2 bad target or no privilege, 3 the launched command failed.
    Snoop(SnoopArgs),
    /// Tracepoints in perf-prof's model: `-e sys:name/filter/ATTR/` selectors with in-kernel
    /// filters, and the profilers trace, multi-trace (two-event latency by key) and top.
    ///
    /// Exit codes: 0 traced, 2 bad selector, filter, field or no privilege, 3 the launched
    /// command failed.
    #[command(subcommand)]
    Events(EventsCommand),
    /// What a uprobe costs per call here: an empty function's loop unprobed, under snoop and
    /// (where installed) under bpftrace, side by side.
    SnoopCost {
        /// Calls of the empty function per run.
        #[arg(long, default_value_t = 200_000)]
        calls: u64,
        /// Repeat the whole set of runs this many times (median and range per figure).
        #[arg(long, default_value_t = 1)]
        repeats: usize,
    },
    /// snoop-cost's measured loop (run by the harness itself).
    #[command(name = "__snoop_loop", hide = true)]
    SnoopLoop {
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
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
    /// What to measure: time, instructions (under callgrind), or both, comma-separated
    /// (default: `run.measure` of the configuration). Instructions: regress, baseline, compare
    /// (both revisions under callgrind, paired) and calibrate (the spread of the counts).
    #[arg(long, value_delimiter = ',', value_parser = parse_measure)]
    pub measure: Option<Vec<Measure>>,
}

/// Report outputs and gating options.
#[derive(Args, Debug, Clone)]
pub struct Judging {
    /// Write the JSON report here (default: TARGET/funcscope/COMMAND.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the Markdown report here (default: TARGET/funcscope/COMMAND.md).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Also write a JUnit XML report here: a test case per checkpoint metric, a failure per
    /// regression that fails the gate.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Also write a self-contained HTML report here: the verdict tables and SVG plots of each
    /// checkpoint's distributions (no external resources).
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Append this run's per-checkpoint values to a JSON-lines history, keyed by the commit
    /// measured (see `cargo xtask history`).
    #[arg(long, value_name = "PATH.jsonl")]
    pub history: Option<PathBuf>,
    /// Adaptive sampling budget in seconds: keep adding rounds while some verdict is
    /// inconclusive (0: fixed number of runs). Default: run.budget_s of the configuration.
    #[arg(long)]
    pub budget: Option<f64>,
    /// An intended slowdown, SCENARIO/CHECKPOINT (repeatable): judged and shown, but its
    /// regression does not fail the gate; recorded in the report (see also gate.accept).
    #[arg(long = "accept", value_name = "SCENARIO/CHECKPOINT")]
    pub accept: Vec<String>,
    /// Print GitHub Actions annotations (::error per regression, ::warning per inconclusive
    /// checkpoint) after the report.
    #[arg(long)]
    pub github_annotations: bool,
}

/// `history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// SCENARIO/CHECKPOINT.
    pub target: String,
    /// The history file (default: TARGET/funcscope/history.jsonl).
    #[arg(long, value_name = "PATH.jsonl")]
    pub file: Option<PathBuf>,
    /// The metric to follow (p50, p90, p99, p99.9, min, max, mean).
    #[arg(long, default_value = "p50")]
    pub metric: String,
    /// Write the SVG here (default: history-SCENARIO-CHECKPOINT.svg next to the history file).
    #[arg(long, value_name = "PATH")]
    pub svg: Option<PathBuf>,
    /// The configuration file, for the default paths (default: funcscope.toml in this
    /// directory or above).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The reference report (JSON written by --json).
    pub a: PathBuf,
    /// The report judged against it.
    pub b: PathBuf,
    /// The configuration file, for the gate's settings (default: funcscope.toml in this
    /// directory or above).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Write the JSON report here (default: TARGET/funcscope/diff.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the Markdown report here (default: TARGET/funcscope/diff.md).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Also write a JUnit XML report here.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Also write a self-contained HTML report here (tables and run-level plots).
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// An intended slowdown, SCENARIO/CHECKPOINT (repeatable): shown, not gating.
    #[arg(long = "accept", value_name = "SCENARIO/CHECKPOINT")]
    pub accept: Vec<String>,
    /// Let regressions between reports from different machines fail.
    #[arg(long)]
    pub strict: bool,
    /// Print GitHub Actions annotations after the report.
    #[arg(long)]
    pub github_annotations: bool,
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
    /// Judge against the committed baseline values instead of running the baseline's commit
    /// interleaved (the default). Only on the machine that recorded them, and only worth it where
    /// `calibrate` shows a small session offset: it cannot resolve changes below
    /// `gate.session_cv`.
    #[arg(long)]
    pub against_baseline: bool,
    /// Do not run the reference workload (no machine-drift correction).
    #[arg(long)]
    pub no_reference: bool,
    /// Compare paired against this revision instead of the baselines' commits: in CI, the pull
    /// request's base commit (`--base ${{ github.event.pull_request.base.sha }}`), so changes
    /// merged since the baselines were recorded are not blamed on it. Needs the full history.
    #[arg(long, value_name = "REV", conflicts_with = "against_baseline")]
    pub base: Option<String>,
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
    /// Add this session's runs to the existing baselines (same commit, arguments and machine)
    /// instead of replacing them: baselines recorded over several sessions measure how much a
    /// whole session moves, which `--against-baseline` then allows for.
    #[arg(long)]
    pub append: bool,
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
    /// What to measure: time (default), instructions (under callgrind; pass the program a fixed
    /// amount of work), or time,instructions.
    #[arg(long, value_delimiter = ',', value_parser = parse_measure)]
    pub measure: Option<Vec<Measure>>,
    /// With instructions: simulate caches (L1/LL misses, estimated cycles).
    #[arg(long)]
    pub cache_sim: bool,
    /// Also measure an uninstrumented function in every run through uprobes (instructions: from
    /// callgrind's call graph), reported as checkpoint `uprobe:NAME` (default NAME: SYMBOL).
    /// Repeatable.
    #[arg(long, value_name = "[NAME=]FILE:SYMBOL")]
    pub uprobe: Vec<String>,
    /// The instrumented program and its arguments.
    #[arg(required = true, last = true, value_name = "PROGRAM [ARGS]")]
    pub program: Vec<String>,
}

/// `snoop`.
#[derive(Args, Debug)]
pub struct SnoopArgs {
    /// Attach to this running process (all its threads) instead of launching a command.
    #[arg(long, conflicts_with = "command")]
    pub pid: Option<i32>,
    /// Also print the report every this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<f64>,
    /// Data pages (4 KiB) per CPU ring; raise it if records are lost.
    #[arg(long, default_value_t = crate::snoop::perf::DEFAULT_RING_PAGES)]
    pub ring_pages: usize,
    /// Functions to probe: BINARY_OR_LIBRARY:SYMBOL (mangled or demangled, Rust or C++).
    #[arg(value_name = "TARGET", required_unless_present = "config")]
    pub targets: Vec<String>,
    /// Calls at least this long (microseconds) are slow: counted per function, and the slowest
    /// kept with time, thread, arguments and return value.
    #[arg(long, value_name = "US")]
    pub slow_us: Option<f64>,
    /// How many of the slowest slow calls to keep per function.
    #[arg(long, value_name = "K", default_value_t = 10, requires = "slow_us")]
    pub slow_keep: usize,
    /// Stream events (every paired call) and the periodic and final reports as JSON lines to
    /// this file, or to stdout with `-` (the text report then goes to stderr).
    #[arg(long, value_name = "PATH|-")]
    pub json_lines: Option<PathBuf>,
    /// Write the final report as one JSON document to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// A target file: FuncSnoop's JSON layout, or the same in TOML (`.toml`); see
    /// `snoop::targets`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The command to launch and follow (threads and children), after `--`.
    #[arg(last = true, value_name = "CMD [ARGS]")]
    pub command: Vec<String>,
}

/// `events` subcommands.
#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Print every event (after the kernel filter) with its fields and stack.
    Trace {
        /// The session.
        #[command(flatten)]
        session: EventsSession,
        /// One JSON object per event and line.
        #[arg(long)]
        json: bool,
    },
    /// Latency from each `-e` group's events to the next group's, related by a key: count, min,
    /// max, mean, sum, stddev, log2 histogram, unpaired events.
    MultiTrace {
        /// The session.
        #[command(flatten)]
        session: EventsSession,
        /// What relates the events: tid, pid, cpu, or a field (an event's key=FIELD wins).
        #[arg(short = 'k', long, default_value = "tid")]
        key: String,
        /// The final report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Also write each pair's latency heat map (time x log2 latency) to this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        heatmap: Option<PathBuf>,
        /// The heat map's column width.
        #[arg(long, value_name = "SECONDS", default_value_t = 0.1)]
        heatmap_bucket: f64,
    },
    /// Per key, counts of each event and sums of its top-by=/top-add= fields, every --interval.
    Top {
        /// The session.
        #[command(flatten)]
        session: EventsSession,
        /// The key: tid, pid, cpu, or a field (an event's key=FIELD wins).
        #[arg(short = 'k', long, default_value = "tid")]
        key: String,
    },
    /// Cost per event and events/s of `funcscope events` on syscalls:sys_enter_read (a dd
    /// workload), next to `perf stat -e` and `perf record -e` on the same tracepoint.
    Bench {
        /// Reads the workload makes (one event each).
        #[arg(long, default_value_t = 200_000)]
        calls: u64,
        /// Runs per tool (the best is kept).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Data pages (4 KiB) per CPU ring.
        #[arg(long, default_value_t = crate::events::stream::DEFAULT_RING_PAGES)]
        ring_pages: usize,
    },
    /// The tracepoints whose sys:name contains PATTERN, with their fields when a pattern is given.
    List {
        /// A substring of sys:name (e.g. sched:, sys_enter_read).
        pattern: Option<String>,
        /// Show fields even without a pattern.
        #[arg(long)]
        fields: bool,
    },
}

/// What an `events` profiler traces.
#[derive(Args, Debug)]
pub struct EventsSession {
    /// EVENT,EVENT,... with EVENT = sys:name[/filter/ATTR/ATTR/.../]; repeat -e for the groups of
    /// multi-trace. ATTRs: stack, max-stack=N, alias=STR, key=FIELD, top-by=FIELD, top-add=FIELD,
    /// untraced.
    #[arg(short = 'e', long = "event", required = true, value_name = "SELECTOR")]
    pub events: Vec<String>,
    /// Follow this running process (all its threads) instead of the whole system.
    #[arg(long, conflicts_with = "command")]
    pub pid: Option<i32>,
    /// Report every this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<f64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Data pages (4 KiB) per CPU ring; raise it if records are lost.
    #[arg(long, default_value_t = crate::events::stream::DEFAULT_RING_PAGES)]
    pub ring_pages: usize,
    /// A function as events (repeatable): `[NAME=]FILE:SYMBOL` creates `uprobe:NAME` (entry,
    /// fields arg1..arg6) and `uprobe:NAME_return` (return, field ret) for the -e selectors.
    #[arg(long = "uprobe", value_name = "[NAME=]FILE:SYMBOL")]
    pub uprobes: Vec<String>,
    /// The command to launch and follow (threads and children), after `--`; without it and
    /// --pid, every task on every CPU.
    #[arg(last = true, value_name = "CMD [ARGS]")]
    pub command: Vec<String>,
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
    #[arg(long, default_value = "1,2,5,10", value_parser = verdict_bench::parse_sizes)]
    pub sizes: std::vec::Vec<f64>,
    /// Which gate modes to benchmark.
    #[arg(long, value_enum, default_value = "both")]
    pub mode: verdict_bench::ModeChoice,
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
    // The reference workload is a measured child: it has nothing to clean up.
    // snoop takes SIGINT itself: Ctrl-C detaches and prints its final report.
    if !matches!(
        cli.command,
        Command::Reference { .. }
            | Command::Snoop(_)
            | Command::Events(_)
            | Command::SnoopCost { .. }
            | Command::SnoopLoop { .. }
    ) {
        if let Err(e) = crate::cleanup::install() {
            eprintln!("warning: no cleanup on Ctrl-C (signal handling could not be set up: {e})");
        }
    }
    run_cli(cli)
}

fn selection(c: &Common, budget_s: Option<f64>) -> Selection {
    Selection {
        config: c.config.clone(),
        scenarios: c.scenarios.clone(),
        runs: c.runs,
        budget_s,
        no_build: c.no_build,
        quiet: c.quiet,
    }
}

/// Runs a parsed command; returns the process exit code.
pub fn run_cli(cli: Cli) -> i32 {
    crate::report::set_color_choice(cli.color);
    let r = match cli.command {
        Command::Regress(a) => commands::instructions::regress_measures(
            &commands::regress::Options {
                select: selection(&a.common, a.judging.budget),
                json: a.judging.json,
                markdown: a.judging.markdown,
                junit: a.judging.junit,
                html: a.judging.html,
                history: a.judging.history,
                accept: a.judging.accept,
                github_annotations: a.judging.github_annotations,
                strict: a.strict,
                against_baseline: a.against_baseline,
                no_reference: a.no_reference,
                base: a.base,
            },
            a.common.measure.as_deref(),
        ),
        Command::Baseline(a) => commands::instructions::baseline_measures(
            &commands::baseline::Options {
                select: selection(&a.common, None),
                no_reference: a.no_reference,
                append: a.append,
            },
            a.common.measure.as_deref(),
        ),
        Command::Compare(a) => parse_env(&a.env_b).and_then(|env_b| {
            let measure = a.common.measure.clone();
            commands::instructions::compare_measures(
                &commands::compare::Options {
                    select: selection(&a.common, a.judging.budget),
                    json: a.judging.json,
                    markdown: a.judging.markdown,
                    junit: a.judging.junit,
                    html: a.judging.html,
                    history: a.judging.history,
                    accept: a.judging.accept,
                    github_annotations: a.judging.github_annotations,
                    rev_a: a.rev_a,
                    rev_b: a.rev_b,
                    env_b,
                },
                measure.as_deref(),
            )
        }),
        Command::Calibrate(a) => commands::instructions::calibrate_measures(
            &commands::calibrate::Options {
                select: selection(&a.common, None),
                write: a.write,
                no_reference: a.no_reference,
            },
            a.common.measure.as_deref(),
        ),
        Command::Run(a) => {
            let measure = a.measure.clone().unwrap_or_else(|| vec![Measure::Time]);
            let cache_sim = a.cache_sim;
            run_options(a).and_then(|o| {
                let tc = if measure.contains(&Measure::Time) { commands::run::run(&o)? } else { 0 };
                let ic = if measure.contains(&Measure::Instructions) {
                    commands::instructions::run_program(&o, cache_sim)?
                } else {
                    0
                };
                Ok(tc.max(ic))
            })
        }
        Command::Diff(a) => commands::diff::run(&commands::diff::Options {
            config: a.config,
            a: a.a,
            b: a.b,
            json: a.json,
            markdown: a.markdown,
            junit: a.junit,
            html: a.html,
            accept: a.accept,
            strict: a.strict,
            github_annotations: a.github_annotations,
        }),
        Command::History(a) => match crate::stats::Metric::parse(&a.metric) {
            Some(metric) => commands::history::run(&commands::history::Options {
                target: a.target,
                file: a.file,
                metric,
                svg: a.svg,
                config: a.config,
            }),
            None => Err(Error::Usage(format!(
                "--metric {}: expected one of p50, p90, p99, p99.9, min, max, mean",
                a.metric
            ))),
        },
        Command::VerdictBench(a) => count("--trials", a.trials, MAX_TRIALS).and_then(|trials| {
            commands::verdict_bench::run(&verdict_bench::Options {
                select: Selection {
                    config: a.config,
                    scenarios: a.scenarios,
                    runs: a.runs,
                    budget_s: a.budget,
                    no_build: a.no_build,
                    quiet: a.quiet,
                },
                trials,
                sizes: a.sizes,
                mode: a.mode,
                json: a.json,
            })
        }),
        Command::Snoop(a) => snoop_options(a).and_then(|o| commands::snoop::run(&o)),
        Command::Events(c) => events_command(c),
        Command::SnoopCost { calls, repeats } => {
            commands::snoop_cost::run(&commands::snoop_cost::Options { calls, repeats })
        }
        Command::SnoopLoop { args } => return commands::snoop_cost::loop_main(&args),
        Command::Reference { args } => return crate::reference::reference_main(&args),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn parse_measure(s: &str) -> std::result::Result<Measure, String> {
    Measure::parse(s).ok_or_else(|| format!("{s:?} is not a measure: use time, instructions, or time,instructions"))
}

fn parse_env(kv: &[String]) -> Result<Vec<(String, String)>> {
    kv.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| Error::Usage(format!("--env-b {s:?}: expected KEY=VALUE")))
        })
        .collect()
}

fn seconds(flag: &str, s: f64) -> Result<Duration> {
    let max = crate::config::MAX_SECONDS;
    Duration::try_from_secs_f64(s).ok().filter(|_| s <= max).ok_or_else(|| {
        Error::Usage(format!("{flag} {}: expected seconds in [0, {max}]", crate::config::show_number(s)))
    })
}

/// Most trials `verdict-bench --trials` may ask for (each is a whole gate run).
const MAX_TRIALS: usize = 10_000;

/// `n` checked against `[1, max]` for `flag` (a huge count would run forever).
fn count(flag: &str, n: usize, max: usize) -> Result<usize> {
    (1..=max).contains(&n).then_some(n).ok_or_else(|| Error::Usage(format!("{flag} {n}: expected 1 to {max}")))
}

fn run_options(a: RunArgs) -> Result<commands::run::Options> {
    let (program, args) = a.program.split_first().ok_or_else(|| Error::Usage("no program given".into()))?;
    Ok(commands::run::Options {
        program: program.clone(),
        args: args.to_vec(),
        runs: count("--runs", a.runs, crate::config::MAX_RUNS)?,
        timeout: seconds("--timeout", a.timeout)?,
        attach_timeout: seconds("--attach-timeout", a.attach_timeout)?,
        pin: !a.no_pin,
        outputs: Outputs { json: a.json, markdown: a.markdown, ..Outputs::default() },
        uprobes: a.uprobe.iter().map(|u| commands::run::parse_uprobe(u)).collect::<Result<_>>()?,
    })
}

fn snoop_options(a: SnoopArgs) -> Result<commands::snoop::Options> {
    let scope = match (a.pid, a.command.split_first()) {
        (Some(pid), _) => crate::snoop::Scope::Attach { pid },
        (None, Some((program, args))) => crate::snoop::Scope::Launch { program: program.clone(), args: args.to_vec() },
        (None, None) => return Err(Error::Usage("snoop: give --pid N, or the command to launch after `--`".into())),
    };
    let (mut targets, mut names) = (Vec::new(), Vec::new());
    if let Some(file) = &a.config {
        // custom_sym's default library is the traced program itself.
        let program = match &scope {
            crate::snoop::Scope::Attach { pid } => Some(PathBuf::from(format!("/proc/{pid}/exe"))),
            crate::snoop::Scope::Launch { program, .. } => Some(PathBuf::from(program)),
        };
        for t in crate::snoop::targets::load(file, program.as_deref())? {
            names.push(t.name);
            targets.push(t.spec);
        }
    }
    targets.extend(a.targets);
    let slow = match a.slow_us {
        Some(us) if us.is_finite() && (0.0..=crate::config::MAX_SECONDS * 1e6).contains(&us) => {
            Some(crate::snoop::report::SlowOptions { threshold_ns: (us * 1e3).round() as u64, keep: a.slow_keep })
        }
        Some(us) => {
            return Err(Error::Usage(format!(
                "--slow-us {}: must be a number of microseconds >= 0",
                crate::config::show_number(us)
            )))
        }
        None => None,
    };
    let tracer = crate::snoop::Options {
        targets,
        names,
        slow,
        scope,
        ring_pages: a.ring_pages,
        interval: a.interval.map(|s| seconds("--interval", s)).transpose()?,
        // Every paired call kept grows with the run: the command reports summaries only.
        keep_calls: false,
    };
    Ok(commands::snoop::Options { tracer, json_lines: a.json_lines, json: a.json })
}

fn events_command(c: EventsCommand) -> Result<i32> {
    use commands::events::{Options, ProfilerChoice};
    let (session, profiler) = match c {
        EventsCommand::List { pattern, fields } => {
            let fields = fields || pattern.is_some();
            return commands::events::list(pattern.as_deref().unwrap_or(""), fields);
        }
        EventsCommand::Bench { calls, repeats, ring_pages } => {
            return commands::events::bench(calls, repeats, ring_pages)
        }
        EventsCommand::Trace { session, json } => (session, ProfilerChoice::Trace { json }),
        EventsCommand::MultiTrace { session, key, json, heatmap, heatmap_bucket } => {
            let bucket = seconds("--heatmap-bucket", heatmap_bucket)?.as_nanos() as u64;
            (session, ProfilerChoice::MultiTrace { key, json, heatmap: heatmap.map(|h| (h, bucket.max(1))) })
        }
        EventsCommand::Top { session, key } => (session, ProfilerChoice::Top { key }),
    };
    let scope = match (session.pid, session.command.split_first()) {
        (Some(pid), _) => crate::events::Scope::Attach { pid },
        (None, Some((program, args))) => crate::events::Scope::Launch { program: program.clone(), args: args.to_vec() },
        (None, None) => crate::events::Scope::System,
    };
    let session = crate::events::Options {
        selectors: session.events,
        scope,
        ring_pages: session.ring_pages,
        interval: session.interval.map(|s| seconds("--interval", s)).transpose()?,
        duration: session.duration.map(|s| seconds("--duration", s)).transpose()?,
        uprobes: session.uprobes,
    };
    commands::events::run(&Options { session, profiler })
}
