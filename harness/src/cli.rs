//! The commands: `regress`, `baseline`, `run`. Argument parsing and orchestration only; the work
//! is in [`crate::runner`], [`crate::judge`], [`crate::baseline`] and [`crate::report`].
//!
//! Another workspace adopts funcscope with a `funcscope.toml` and an xtask whose `main` is
//! `std::process::exit(funcscope_harness::cli::main())`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use clap::{Args, Parser, Subcommand};

use crate::baseline::{Baseline, BaselineError, Pooled, Recorded};
use crate::config::{Config, Scenario};
use crate::exit_code;
use crate::fingerprint::Fingerprint;
use crate::judge::{self, Invocation, ScenarioInput};
use crate::model::{Report, RunResult};
use crate::report::{self, Outputs, Style};
use crate::runner::{self, Launch, RunOutput};

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
    /// Run any instrumented program and print per-checkpoint statistics (no baseline needed).
    Run(RunArgs),
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
    /// Measured runs per scenario (overrides the configuration).
    #[arg(long)]
    pub runs: Option<usize>,
    /// Do not build: use the binaries already in the target directory.
    #[arg(long)]
    pub no_build: bool,
    /// Less progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `regress`.
#[derive(Args, Debug)]
pub struct RegressArgs {
    /// Common options.
    #[command(flatten)]
    pub common: Common,
    /// Write the JSON report here (default: TARGET/funcscope/regress.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the Markdown report here (default: TARGET/funcscope/regress.md).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Let regressions against a baseline from a different machine fail the build.
    #[arg(long)]
    pub strict: bool,
}

/// `baseline`.
#[derive(Args, Debug)]
pub struct BaselineArgs {
    /// Common options.
    #[command(flatten)]
    pub common: Common,
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
    /// The instrumented program and its arguments.
    #[arg(required = true, last = true, value_name = "PROGRAM [ARGS]")]
    pub program: Vec<String>,
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

/// Runs a parsed command.
pub fn run_cli(cli: Cli) -> i32 {
    let r = match cli.command {
        Command::Regress(a) => regress(a),
        Command::Baseline(a) => baseline(a),
        Command::Run(a) => run_program(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            exit_code::USAGE
        }
    }
}

/// A setup error: configuration, build, baseline. Always exit code 2.
type SetupResult<T> = Result<T, String>;

fn load_config(c: &Common) -> SetupResult<Config> {
    let path = match &c.config {
        Some(p) => p.clone(),
        None => Config::find(&std::env::current_dir().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?,
    };
    let mut cfg = Config::load(&path).map_err(|e| e.to_string())?;
    if let Some(r) = c.runs {
        if r < 2 {
            return Err(format!("--runs {r}: at least 2 runs are needed"));
        }
        cfg.run.runs = r;
        for s in &mut cfg.scenarios {
            s.runs = None;
        }
    }
    if !c.scenarios.is_empty() {
        for want in &c.scenarios {
            if !cfg.scenarios.iter().any(|s| &s.name == want) {
                let known: Vec<&str> = cfg.scenarios.iter().map(|s| s.name.as_str()).collect();
                return Err(format!(
                    "--scenario {want}: no such scenario in {} (known: {})",
                    cfg.path.display(),
                    known.join(", ")
                ));
            }
        }
        cfg.scenarios.retain(|s| c.scenarios.contains(&s.name));
    }
    Ok(cfg)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The cargo target directory of the workspace at `root`.
fn target_dir(root: &Path) -> SetupResult<PathBuf> {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(root.join(d));
    }
    let out = std::process::Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    v["target_directory"].as_str().map(PathBuf::from).ok_or_else(|| "cargo metadata: no target_directory".into())
}

/// Builds the scenario binaries in release and returns each scenario's program path.
fn prepare(cfg: &Config, no_build: bool, quiet: bool) -> SetupResult<(PathBuf, Vec<PathBuf>)> {
    let bins: Vec<&str> = cfg.scenarios.iter().filter_map(|s| s.bin.as_deref()).collect();
    // Only a cargo workspace has a target directory to ask for; path-only configurations write
    // their reports under <config dir>/target.
    let target = if bins.is_empty() { cfg.root.join("target") } else { target_dir(&cfg.root)? };
    if !bins.is_empty() && !no_build {
        if !quiet {
            eprintln!("building {} ({} binaries, release)...", cfg.run.package, bins.len());
        }
        let mut cmd = std::process::Command::new(cargo());
        cmd.args(["build", "--release", "--quiet", "-p", &cfg.run.package]).current_dir(&cfg.root);
        for b in &bins {
            cmd.args(["--bin", b]);
        }
        let st = cmd.status().map_err(|e| format!("running cargo build: {e}"))?;
        if !st.success() {
            return Err(format!("cargo build of {} failed ({st}); fix the build and retry", cfg.run.package));
        }
    }
    let mut programs = Vec::new();
    for s in &cfg.scenarios {
        let p = match (&s.bin, &s.path) {
            (Some(b), _) => target.join("release").join(b),
            (None, Some(p)) => cfg.root.join(p),
            (None, None) => unreachable!("validated by Config::parse"),
        };
        if !p.is_file() {
            return Err(format!(
                "scenario {}: program {} does not exist (build it, or fix `bin`/`path`)",
                s.name,
                p.display()
            ));
        }
        programs.push(p);
    }
    Ok((target, programs))
}

/// splitmix64: a tiny deterministic generator for shuffling run order.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Per scenario: its runs (with pooled histograms) or the first failure.
type Collected = Vec<Result<Vec<RunOutput>, String>>;

/// Runs every scenario `warmup + runs` times: warm-up rounds first, then measured rounds with the
/// scenario order shuffled per round. A scenario that fails is not run again.
fn run_rounds(cfg: &Config, programs: &[PathBuf], quiet: bool) -> Collected {
    let n = cfg.scenarios.len();
    let mut out: Collected = (0..n).map(|_| Ok(Vec::new())).collect();
    let max_runs = cfg.scenarios.iter().map(|s| cfg.runs_for(s)).max().unwrap_or(0);
    let rounds = cfg.run.warmup_runs + max_runs;
    let mut seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let total: usize = cfg.scenarios.iter().map(|s| cfg.run.warmup_runs + cfg.runs_for(s)).sum();
    let mut done = 0;
    let t0 = Instant::now();
    let tty = std::io::stderr().is_terminal();
    for round in 0..rounds {
        let warmup = round < cfg.run.warmup_runs;
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, (splitmix(&mut seed) % (i as u64 + 1)) as usize);
        }
        for si in order {
            let s: &Scenario = &cfg.scenarios[si];
            let measured_round = round.checked_sub(cfg.run.warmup_runs);
            if measured_round.is_some_and(|r| r >= cfg.runs_for(s)) || out[si].is_err() {
                continue;
            }
            done += 1;
            if !quiet {
                let what = if warmup {
                    "warm-up".to_string()
                } else {
                    format!("run {}/{}", measured_round.unwrap_or(0) + 1, cfg.runs_for(s))
                };
                let line = format!("[{done}/{total}] {} {what} ({:.0} s)", s.name, t0.elapsed().as_secs_f64());
                if tty {
                    eprint!("\r\x1b[2K{line}");
                } else {
                    eprintln!("{line}");
                }
            }
            let launch = Launch {
                name: s.name.clone(),
                program: programs[si].clone(),
                args: s.args.clone(),
                env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                timeout: Duration::from_secs_f64(cfg.run.timeout_s),
                attach_timeout: Duration::from_secs_f64(cfg.run.attach_timeout_s),
            };
            match runner::run_once(&launch) {
                Ok(o) if !warmup => {
                    if let Ok(v) = &mut out[si] {
                        v.push(o);
                    }
                }
                Ok(_) => {}
                Err(e) => out[si] = Err(e.to_string()),
            }
        }
    }
    if !quiet && tty {
        eprintln!();
    }
    out
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn finish(report: &Report, outputs: Outputs) -> SetupResult<i32> {
    let mut stdout = std::io::stdout().lock();
    report::render_terminal(report, &mut stdout, Style::detect()).map_err(|e| format!("writing the report: {e}"))?;
    report::write_outputs(report, &outputs).map_err(|e| format!("writing the report files: {e}"))?;
    if let Some(j) = &outputs.json {
        eprintln!("wrote {}", j.display());
    }
    if let Some(m) = &outputs.markdown {
        eprintln!("wrote {}", m.display());
    }
    Ok(report.exit_code)
}

fn regress(a: RegressArgs) -> SetupResult<i32> {
    let t0 = Instant::now();
    let started = now_rfc3339();
    let cfg = load_config(&a.common)?;
    // Baselines are read before anything runs: a malformed one stops here, with its line.
    let mut baselines = Vec::new();
    for s in &cfg.scenarios {
        match Baseline::load(&cfg.baseline_path(&s.name)) {
            Ok(b) => baselines.push(Some(b)),
            Err(BaselineError::NotFound { .. }) => baselines.push(None),
            Err(e) => return Err(e.to_string()),
        }
    }
    let (target, programs) = prepare(&cfg, a.common.no_build, a.common.quiet)?;
    let collected = run_rounds(&cfg, &programs, a.common.quiet);
    let inputs = cfg
        .scenarios
        .iter()
        .zip(collected)
        .zip(baselines)
        .map(|((s, c), baseline)| ScenarioInput {
            name: s.name.clone(),
            outcome: c.map(|runs| runs.into_iter().map(|o| o.result).collect()),
            baseline,
        })
        .collect();
    let inv = Invocation {
        command: "regress",
        config: &cfg,
        machine: Fingerprint::current(),
        compare: true,
        strict: a.strict,
        started,
        wall_s: t0.elapsed().as_secs_f64(),
    };
    let report = judge::judge(inv, inputs);
    let dir = target.join("funcscope");
    finish(
        &report,
        Outputs {
            json: Some(a.json.unwrap_or_else(|| dir.join("regress.json"))),
            markdown: Some(a.markdown.unwrap_or_else(|| dir.join("regress.md"))),
        },
    )
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let o = std::process::Command::new("git").args(args).current_dir(root).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

fn baseline(a: BaselineArgs) -> SetupResult<i32> {
    let t0 = Instant::now();
    let started = now_rfc3339();
    let cfg = load_config(&a.common)?;
    let (_, programs) = prepare(&cfg, a.common.no_build, a.common.quiet)?;
    let collected = run_rounds(&cfg, &programs, a.common.quiet);
    let commit = git(&cfg.root, &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&cfg.root, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let commit = if dirty { format!("{commit}-dirty") } else { commit };
    let mut machine = Fingerprint::current();
    let mut code = exit_code::PASS;
    let mut inputs = Vec::new();
    for (s, c) in cfg.scenarios.iter().zip(collected) {
        let runs = match c {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}: not written: the scenario failed:\n{e}", s.name);
                code = exit_code::SCENARIO_FAILED;
                inputs.push(ScenarioInput { name: s.name.clone(), outcome: Err(e), baseline: None });
                continue;
            }
        };
        let results: Vec<RunResult> = runs.iter().map(|o| o.result.clone()).collect();
        let lost: u64 = results.iter().flat_map(|r| r.checkpoints.values()).map(|c| c.lost).sum();
        if lost > 0 {
            eprintln!(
                "{}: not written: {lost} samples were lost (ring overrun), so the runs are partial; \
                 raise the ring capacity or lower the call rate",
                s.name
            );
            code = exit_code::SCENARIO_FAILED;
            inputs.push(ScenarioInput { name: s.name.clone(), outcome: Ok(results), baseline: None });
            continue;
        }
        machine.tick_hz = results.first().map_or(0.0, |r| r.tick_hz);
        let pooled = pool(&runs);
        let recorded = Recorded {
            commit: commit.clone(),
            date: now_rfc3339(),
            runs: results.len(),
            funcscope: env!("CARGO_PKG_VERSION").to_owned(),
            args: s.args.clone(),
        };
        let path = cfg.baseline_path(&s.name);
        match Baseline::from_runs(&s.name, &results, &pooled, machine.clone(), recorded) {
            Ok(b) => {
                b.save_atomic(&path).map_err(|e| e.to_string())?;
                eprintln!("{}: wrote {}", s.name, path.display());
            }
            Err(e) => {
                eprintln!("{}: not written: {e}", s.name);
                code = exit_code::SCENARIO_FAILED;
            }
        }
        inputs.push(ScenarioInput { name: s.name.clone(), outcome: Ok(results), baseline: None });
    }
    let inv = Invocation {
        command: "baseline",
        config: &cfg,
        machine,
        compare: false,
        strict: false,
        started,
        wall_s: t0.elapsed().as_secs_f64(),
    };
    let report = judge::judge(inv, inputs);
    let mut stdout = std::io::stdout().lock();
    report::render_terminal(&report, &mut stdout, Style::detect()).map_err(|e| e.to_string())?;
    Ok(code.max(report.exit_code))
}

/// Pooled quantiles per checkpoint over all samples of all runs.
fn pool(runs: &[RunOutput]) -> BTreeMap<String, Pooled> {
    let mut merged: BTreeMap<String, hdrhistogram::Histogram<u64>> = BTreeMap::new();
    for r in runs {
        for (cp, h) in &r.pooled {
            match merged.get_mut(cp) {
                Some(m) => {
                    let _ = m.add(h);
                }
                None => {
                    merged.insert(cp.clone(), h.clone());
                }
            }
        }
    }
    merged
        .into_iter()
        .map(|(cp, h)| {
            let q = |p: f64| h.value_at_quantile(p) as f64 / runner::POOL_UNITS_PER_NS;
            (cp, Pooled { p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999) })
        })
        .collect()
}

fn run_program(a: RunArgs) -> SetupResult<i32> {
    let t0 = Instant::now();
    let started = now_rfc3339();
    let (prog, args) = a.program.split_first().ok_or("no program given")?;
    let program = which(prog).ok_or_else(|| format!("{prog}: no such program (not a path, not on PATH)"))?;
    let name = Path::new(prog).file_name().map_or_else(|| prog.clone(), |n| n.to_string_lossy().into_owned());
    let launch = Launch {
        name: name.clone(),
        program,
        args: args.to_vec(),
        env: Vec::new(),
        timeout: Duration::from_secs_f64(a.timeout),
        attach_timeout: Duration::from_secs_f64(a.attach_timeout),
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
    let cfg = Config {
        path: PathBuf::new(),
        root: PathBuf::new(),
        gate: Default::default(),
        run: Default::default(),
        scenarios: Vec::new(),
        checkpoints: BTreeMap::new(),
    };
    let outcome = match failure {
        Some(e) => Err(e),
        None => Ok(runs),
    };
    let inv = Invocation {
        command: "run",
        config: &cfg,
        machine: Fingerprint::current(),
        compare: false,
        strict: false,
        started,
        wall_s: t0.elapsed().as_secs_f64(),
    };
    let report = judge::judge(inv, vec![ScenarioInput { name, outcome, baseline: None }]);
    finish(&report, Outputs { json: a.json, markdown: a.markdown })
}

/// Resolves a program name like a shell: a path if it contains '/', else the first match on PATH.
fn which(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(prog)).find(|p| p.is_file())
}
