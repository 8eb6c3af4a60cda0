//! `funcscope.toml`: which scenarios to run and how to judge them.
//!
//! ```toml
//! [gate]
//! alpha = 0.01              # false-alarm rate of the whole invocation (all gated tests, all looks)
//! correction = "holm"       # or "benjamini_hochberg", "none"
//! min_effect = 0.03         # smallest relative change that counts against a stored baseline
//! min_effect_paired = 0.01  # the same in paired mode (regress, compare): drift cancels
//! unchanged_within = 0.03   # "unchanged" claims every change is within this (equivalence margin)
//! session_cv = 0.03         # a stored baseline's session offset (baseline mode only)
//! metrics = ["p50"]         # gated metrics: tested one-sided for regressions
//! report_metrics = ["p90", "p99"]  # judged and shown, never gating
//! report_min_effect = 0.10  # margin of the report-only metrics
//!
//! [run]
//! runs = 10                 # measured process runs per scenario
//! warmup_runs = 1           # discarded runs before them
//! timeout_s = 60            # per run: kill and fail after this
//! attach_timeout_s = 10     # per run: fail if the program has not attached by then
//! baseline_dir = "baselines"
//! package = "funcscope-scenarios"  # cargo package whose binaries `bin` names
//! budget_s = 60             # adaptive sampling, per scenario: add rounds while undecided (0: off)
//! total_budget_s = 0        # adaptive sampling, the whole invocation at most this long (0: no cap)
//! max_runs = 768            # adaptive sampling: at most this many rounds
//! pin = true                # run every measured process on one CPU (repeatability)
//! fresh_copy = true         # run a private copy of the program per run (layout is per file)
//!
//! measure = ["time"]       # or ["time", "instructions"]: also count instructions under callgrind
//!
//! [instructions]            # the instruction-count pass (see `crate::callgrind`)
//! iterations = 500          # fixed work per run: scenarios get `--duration-ms 0 --iterations N`
//! runs = 3                  # runs per arm; zero spread in both arms decides exactly
//! max_runs = 8              # a scenario whose counts vary gets this many (a rank test needs ~8)
//! min_effect = 0.0025       # smallest relative change of mean instructions per call that counts
//! cache_sim = false         # also L1/LL misses and estimated cycles (about 2x slower)
//! timeout_s = 300           # per run under valgrind
//!
//! [[scenario]]
//! name = "http_parse"
//! bin = "http_parse"        # a binary of `run.package`, built in release; or:
//! # path = "target/release/my-instrumented-server"
//! args = ["--duration-ms", "600"]
//! env = { RUST_LOG = "off" }
//! measure = ["time", "instructions"]  # optional: overrides run.measure for this scenario
//!
//! [[scenario.uprobe]]       # optional: an uninstrumented function gated through uprobes,
//! name = "inflate"          # judged as checkpoint "uprobe:inflate" (see `snoop::gate`)
//! target = "libz.so.1:inflate"  # FILE:SYMBOL; or `symbol = "..."` in the scenario's program
//!
//! [[scenario.event_pair]]   # optional: the latency between two tracepoints of the scenario's
//! name = "read"             # process, judged as checkpoint "event:read" (see `events::gate`)
//! from = "syscalls:sys_enter_read"   # a perf-prof selector: sys:name[/filter/ATTR/...], or
//! to = "syscalls:sys_exit_read"      # several joined by ',' (alternatives)
//! key = "tid"               # what relates the two: tid (default), pid, cpu or a field name
//!
//! [checkpoint."http_parse/parse_headers"]   # optional per-checkpoint overrides
//! min_effect = 0.08
//! metrics = ["p50"]
//! ```
//! Every scenario of one invocation runs in the same interleaved rounds (see [`crate::rounds`]),
//! so the number of runs is set once, in `[run]` (or `--runs`), not per scenario.
//! Paths are relative to the directory of the configuration file. Unknown keys are errors, so
//! a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::stats::{Correction, Metric};

/// Most runs (`runs`, `warmup_runs`, `max_runs`) a configuration may ask for.
pub const MAX_RUNS: usize = 100_000;

/// Most seconds any time limit or budget may be (a day): larger values are typos, and a `Duration`
/// cannot hold every `f64`.
pub const MAX_SECONDS: f64 = 86_400.0;

/// `v` for a message: in exponent form where it would print with many digits (`1e300`, not 301
/// digits; `1e-300`, not 300 zeros).
pub fn show_number(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-3..1e9).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// The configuration file name looked up from the current directory upwards.
pub const CONFIG_FILE: &str = "funcscope.toml";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file does not exist.
    #[error("{path}: not found; create it (see the README's \"Adopting funcscope\" section) or pass --config")]
    NotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Syntax or schema error, with the line.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 if unknown).
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// `[gate]`: how verdicts are reached (see `judge::Policy`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Gate {
    /// False-alarm rate over the whole invocation: every gated test, every look.
    pub alpha: f64,
    /// Multiple-comparison correction.
    pub correction: Correction,
    /// Smallest relative change that counts against a stored baseline.
    pub min_effect: f64,
    /// Smallest relative change that counts in paired mode, where interleaving cancels machine
    /// drift and a smaller margin is safe.
    pub min_effect_paired: f64,
    /// Equivalence margin: "unchanged" means the interval lies within +-this.
    pub unchanged_within: f64,
    /// Relative spread of a whole session's offset, assumed when a stored baseline is compared
    /// with today's runs (baseline mode): runs of two sessions cannot average it away.
    pub session_cv: f64,
    /// Gated metrics: tested one-sided for regressions, in the family `alpha` protects.
    pub metrics: Vec<Metric>,
    /// Report-only metrics: judged in their own family at `report_min_effect`, shown, never gate.
    pub report_metrics: Vec<Metric>,
    /// Margin of the report-only metrics.
    pub report_min_effect: f64,
    /// Known, intended slowdowns: a regression of these checkpoints is shown but does not fail
    /// the gate (like `--accept`), with the reason in the report.
    pub accept: Vec<Acceptance>,
}

/// One entry of `gate.accept`: `{ checkpoint = "SCENARIO/CHECKPOINT", reason = "..." }`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// `SCENARIO/CHECKPOINT`.
    pub checkpoint: String,
    /// Why the slowdown is intended (shown in the report).
    pub reason: String,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            alpha: 0.01,
            correction: Correction::Holm,
            min_effect: 0.03,
            min_effect_paired: 0.01,
            unchanged_within: 0.03,
            session_cv: 0.03,
            metrics: vec![Metric::P50],
            report_metrics: vec![Metric::P90, Metric::P99],
            report_min_effect: 0.10,
            accept: Vec::new(),
        }
    }
}

/// `[run]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunOptions {
    /// Measured runs per scenario.
    pub runs: usize,
    /// Discarded warm-up runs per scenario.
    pub warmup_runs: usize,
    /// Per-run wall-clock limit in seconds.
    pub timeout_s: f64,
    /// Per-run attach limit in seconds.
    pub attach_timeout_s: f64,
    /// Directory of the baselines.
    pub baseline_dir: PathBuf,
    /// Cargo package holding the scenario binaries.
    pub package: String,
    /// Adaptive sampling: after `runs` rounds, keep adding rounds while some gated verdict of a
    /// scenario is undecided; the experiment may take this many seconds per scenario (counted from
    /// its first run, warm-up included; 0: off).
    pub budget_s: f64,
    /// Adaptive sampling: a cap on the whole invocation's sampling, in seconds (0: none). The
    /// scenarios share `budget_s` times their number; this caps that pool, for a CI step that must
    /// end in a known time. Scenarios decided early leave their time to the undecided ones.
    /// `--budget` on the command line lifts it.
    pub total_budget_s: f64,
    /// Adaptive sampling: never more than this many measured rounds per scenario.
    pub max_runs: usize,
    /// Pin every measured process to one CPU (the last one the harness may use): runs become far
    /// more repeatable (see `runner::measurement_cpu`).
    pub pin: bool,
    /// Run a private copy of each program, made for each run (see `runner::private_copy`): two
    /// files of one binary have different physical code layouts for a whole session, which an
    /// A/B would measure as a difference. Turn off for a program that must run from its place.
    pub fresh_copy: bool,
    /// What to measure by default: wall time through the rings, instruction counts under
    /// callgrind, or both (`--measure` overrides; a scenario's `measure` overrides this).
    pub measure: Vec<Measure>,
}

/// One kind of measurement (`[run] measure`, a scenario's `measure`, `--measure`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Per-call durations from the probe's rings (the default).
    Time,
    /// Per-call instruction counts under `valgrind --tool=callgrind` (see `crate::callgrind`).
    Instructions,
}

impl Measure {
    /// Parses `time` or `instructions` (the `--measure` values).
    pub fn parse(s: &str) -> Option<Measure> {
        match s {
            "time" => Some(Measure::Time),
            "instructions" => Some(Measure::Instructions),
            _ => None,
        }
    }
}

/// `[instructions]`: the instruction-count pass.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InstructionOptions {
    /// Iterations per run (`--duration-ms 0 --iterations N` appended to the scenario's args), so
    /// every run does the same work; >= 1.
    pub iterations: u64,
    /// Runs per arm (>= 2): instruction counts are nearly but not exactly deterministic (hash
    /// seeds, address-dependent paths); the spread over these runs is the noise allowed for.
    pub runs: usize,
    /// Runs per arm of a scenario whose counts vary between its first `runs` runs (>= `runs`):
    /// the rank test of 3 runs against 3 cannot reach the gate's alpha, 8 against 8 can.
    pub max_runs: usize,
    /// Smallest relative change of mean instructions per call that is a regression, in [0, 1).
    pub min_effect: f64,
    /// Simulate caches: L1/LL misses and estimated cycles per call.
    pub cache_sim: bool,
    /// Per-run limit under valgrind, seconds.
    pub timeout_s: f64,
}

impl Default for InstructionOptions {
    fn default() -> InstructionOptions {
        InstructionOptions {
            iterations: 500,
            runs: 3,
            max_runs: 8,
            min_effect: 0.0025,
            cache_sim: false,
            timeout_s: 300.0,
        }
    }
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            runs: 10,
            warmup_runs: 1,
            timeout_s: 60.0,
            attach_timeout_s: 10.0,
            baseline_dir: PathBuf::from("baselines"),
            package: "funcscope-scenarios".into(),
            budget_s: 0.0,
            total_budget_s: 0.0,
            max_runs: 30,
            pin: true,
            fresh_copy: true,
            measure: vec![Measure::Time],
        }
    }
}

/// One `[[scenario]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name; also the baseline's file name.
    pub name: String,
    /// A binary of `run.package` (built by cargo).
    #[serde(default)]
    pub bin: Option<String>,
    /// Or a path to an already built program.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// What to measure for this scenario (overrides `run.measure`).
    #[serde(default)]
    pub measure: Option<Vec<Measure>>,
    /// Uninstrumented functions measured through uprobes in every run (`[[scenario.uprobe]]`),
    /// judged as checkpoints `uprobe:<name>` (see `snoop::gate`).
    #[serde(default)]
    pub uprobe: Vec<UprobeCheckpoint>,
    /// Latencies between two tracepoints in every run (`[[scenario.event_pair]]`), judged as
    /// checkpoints `event:<name>` (see `events::gate`).
    #[serde(default)]
    pub event_pair: Vec<EventPairCheckpoint>,
}

/// One `[[scenario.event_pair]]`: `name`, `from` and `to` (perf-prof selectors, e.g.
/// `"syscalls:sys_enter_read"` and `"syscalls:sys_exit_read"`, each with an optional in-kernel
/// filter: `"syscalls:sys_enter_read/fd == 0/"`) and `key` (`tid` when absent; `pid`, `cpu` or a
/// field of both events). The syntax is checked here; that the events and fields exist is checked
/// against tracefs before anything runs (`commands`), both errors naming this file and [`line`].
///
/// [`line`]: EventPairCheckpoint::line
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EventPairCheckpoint {
    /// Checkpoint name (shown as `event:<name>`).
    pub name: String,
    /// The selector of the starting event(s).
    pub from: String,
    /// The selector of the ending event(s).
    pub to: String,
    /// What relates a start to its end: `tid`, `pid`, `cpu` or a field name.
    #[serde(default = "default_pair_key")]
    pub key: String,
    /// 1-based line of the entry in the file (0 if unknown), for later errors.
    #[serde(skip)]
    pub line: usize,
}

fn default_pair_key() -> String {
    "tid".into()
}

/// One `[[scenario.uprobe]]`: `name` and either `target = "FILE:SYMBOL"` (a library or another
/// binary; a relative FILE with a `/` starts at the configuration's directory, a bare name is a
/// soname or a PATH name) or `symbol = "..."` (a function of the scenario's own program).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UprobeCheckpoint {
    /// Checkpoint name (shown as `uprobe:<name>`).
    pub name: String,
    /// `FILE:SYMBOL`.
    #[serde(default)]
    pub target: Option<String>,
    /// A symbol of the scenario's program (mangled or demangled).
    #[serde(default)]
    pub symbol: Option<String>,
}

/// `[checkpoint."scenario/checkpoint"]` overrides.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckpointOverride {
    /// Override of `gate.min_effect`.
    #[serde(default)]
    pub min_effect: Option<f64>,
    /// Override of `gate.metrics`.
    #[serde(default)]
    pub metrics: Option<Vec<Metric>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    gate: Gate,
    #[serde(default)]
    run: RunOptions,
    #[serde(default)]
    instructions: InstructionOptions,
    #[serde(default, rename = "scenario")]
    scenarios: Vec<Scenario>,
    #[serde(default, rename = "checkpoint")]
    checkpoints: BTreeMap<String, CheckpointOverride>,
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Its directory: relative paths start here.
    pub root: PathBuf,
    /// `[gate]`.
    pub gate: Gate,
    /// `[run]`.
    pub run: RunOptions,
    /// `[instructions]`.
    pub instructions: InstructionOptions,
    /// Scenarios in file order.
    pub scenarios: Vec<Scenario>,
    /// Overrides keyed `scenario/checkpoint`.
    pub checkpoints: BTreeMap<String, CheckpointOverride>,
}

/// 1-based line of byte `offset` in `text`.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// The 1-based line where `key` is first assigned (`key =` at the start of a line), if any.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('=')))
        .map(|i| i + 1)
}

impl Config {
    /// Finds `funcscope.toml` in `start` or its ancestors.
    pub fn find(start: &Path) -> Result<PathBuf, ConfigError> {
        start
            .ancestors()
            .map(|d| d.join(CONFIG_FILE))
            .find(|p| p.is_file())
            .ok_or_else(|| ConfigError::NotFound { path: start.join(CONFIG_FILE) })
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::NotFound { path: path.to_path_buf() }
            } else {
                ConfigError::Io { path: path.to_path_buf(), source }
            }
        })?;
        Config::parse(&text, path)
    }

    /// Parses configuration text; `path` is used for messages and relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |line: usize, message: String| ConfigError::Invalid { path: path.to_path_buf(), line, message };
        let mut raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of_offset(text, s.start));
            invalid(line, e.message().trim().to_owned())
        })?;
        let key_line = |key: &str| line_of_key(text, key).unwrap_or(0);
        let g = &raw.gate;
        if !(g.alpha > 0.0 && g.alpha < 0.5) {
            return Err(invalid(key_line("alpha"), format!("gate.alpha = {} must be in (0, 0.5), e.g. 0.05", g.alpha)));
        }
        if !(g.min_effect_paired >= 0.0 && g.min_effect_paired < 1.0) {
            return Err(invalid(
                key_line("min_effect_paired"),
                format!("gate.min_effect_paired = {} must be in [0, 1), e.g. 0.02", g.min_effect_paired),
            ));
        }
        if !(g.min_effect >= 0.0 && g.min_effect < 1.0) {
            return Err(invalid(
                key_line("min_effect"),
                format!("gate.min_effect = {} must be in [0, 1), e.g. 0.05", g.min_effect),
            ));
        }
        for (key, v, hint) in [
            ("unchanged_within", g.unchanged_within, "0.03"),
            ("session_cv", g.session_cv, "0.03"),
            ("report_min_effect", g.report_min_effect, "0.10"),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(invalid(key_line(key), format!("gate.{key} = {v} must be in [0, 1), e.g. {hint}")));
            }
        }
        if g.metrics.is_empty() {
            return Err(invalid(key_line("metrics"), "gate.metrics is empty; judge at least p50".into()));
        }
        if raw.run.runs < 2 {
            return Err(invalid(
                key_line("runs"),
                format!(
                    "run.runs = {} must be at least 2 (statistics need repeated process runs; 8-12 is typical)",
                    raw.run.runs
                ),
            ));
        }
        for (key, v) in [("runs", raw.run.runs), ("warmup_runs", raw.run.warmup_runs), ("max_runs", raw.run.max_runs)] {
            if v > MAX_RUNS {
                return Err(invalid(key_line(key), format!("run.{key} = {v} is more than {MAX_RUNS}; use fewer")));
            }
        }
        for (key, v, max) in [
            ("budget_s", raw.run.budget_s, MAX_SECONDS),
            ("total_budget_s", raw.run.total_budget_s, MAX_SECONDS),
            ("timeout_s", raw.run.timeout_s, MAX_SECONDS),
            ("attach_timeout_s", raw.run.attach_timeout_s, MAX_SECONDS),
        ] {
            if v > max {
                return Err(invalid(
                    key_line(key),
                    format!("run.{key} = {} is more than {max} s (a day); use less", show_number(v)),
                ));
            }
        }
        if !(raw.run.budget_s >= 0.0 && raw.run.budget_s.is_finite()) {
            return Err(invalid(
                key_line("budget_s"),
                format!("run.budget_s = {} must be >= 0 (0 turns adaptive sampling off)", raw.run.budget_s),
            ));
        }
        if !(raw.run.total_budget_s >= 0.0 && raw.run.total_budget_s.is_finite()) {
            return Err(invalid(
                key_line("total_budget_s"),
                format!("run.total_budget_s = {} must be >= 0 (0: no cap)", raw.run.total_budget_s),
            ));
        }
        if raw.run.max_runs < raw.run.runs {
            return Err(invalid(
                key_line("max_runs"),
                format!("run.max_runs = {} is below run.runs = {}", raw.run.max_runs, raw.run.runs),
            ));
        }
        for (key, v) in [("timeout_s", raw.run.timeout_s), ("attach_timeout_s", raw.run.attach_timeout_s)] {
            if v.is_nan() || v <= 0.0 {
                return Err(invalid(key_line(key), format!("run.{key} = {v} must be a positive number of seconds")));
            }
        }
        let ins = &raw.instructions;
        if ins.iterations == 0 || ins.runs < 2 || ins.runs > MAX_RUNS {
            return Err(invalid(
                key_line("iterations"),
                format!(
                    "instructions.iterations = {} must be >= 1 and instructions.runs = {} in 2..={MAX_RUNS}",
                    ins.iterations, ins.runs
                ),
            ));
        }
        if ins.max_runs < ins.runs || ins.max_runs > MAX_RUNS {
            return Err(invalid(
                key_line("max_runs"),
                format!(
                    "instructions.max_runs = {} must be in instructions.runs ({})..={MAX_RUNS}",
                    ins.max_runs, ins.runs
                ),
            ));
        }
        if !((0.0..1.0).contains(&ins.min_effect) && ins.timeout_s > 0.0 && ins.timeout_s <= MAX_SECONDS) {
            return Err(invalid(
                key_line("min_effect"),
                format!(
                    "instructions.min_effect = {} must be in [0, 1) (e.g. 0.0025) and instructions.timeout_s = {} in (0, {MAX_SECONDS}]",
                    ins.min_effect, ins.timeout_s
                ),
            ));
        }
        if raw.scenarios.is_empty() {
            return Err(invalid(0, "no [[scenario]] defined".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        // The `[[scenario.event_pair]]` headers in file order: the n-th entry's line.
        let mut pair_lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with("[[scenario.event_pair]]"))
            .map(|(i, _)| i + 1);
        for s in &mut raw.scenarios {
            for p in &mut s.event_pair {
                p.line = pair_lines.next().unwrap_or(0);
            }
        }
        for s in &raw.scenarios {
            let line = text.find(&format!("\"{}\"", s.name)).map_or(0, |o| line_of_offset(text, o));
            if s.name.is_empty() || !s.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(invalid(line, format!("scenario name {:?} must be non-empty ASCII letters, digits, '_' or '-' (it names the baseline file)", s.name)));
            }
            if !seen.insert(s.name.clone()) {
                return Err(invalid(line, format!("scenario {:?} is defined twice", s.name)));
            }
            if s.bin.is_some() == s.path.is_some() {
                return Err(invalid(
                    line,
                    format!(
                        "scenario {:?} needs exactly one of `bin` (a binary of {}) or `path`",
                        s.name, raw.run.package
                    ),
                ));
            }
            let mut names = std::collections::BTreeSet::new();
            for u in &s.uprobe {
                let line = text.find(&format!("\"{}\"", u.name)).map_or(line, |o| line_of_offset(text, o));
                let bad = |why: String| invalid(line, format!("scenario {:?}: [[scenario.uprobe]] {why}", s.name));
                if u.name.is_empty()
                    || !u.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                {
                    return Err(bad(format!(
                        "name {:?} must be non-empty ASCII letters, digits, '_', '-' or '.'",
                        u.name
                    )));
                }
                if !names.insert(u.name.as_str()) {
                    return Err(bad(format!("name {:?} is used twice", u.name)));
                }
                match (&u.target, &u.symbol) {
                    (Some(t), None) if t.split_once(':').is_some_and(|(f, s)| !f.is_empty() && !s.is_empty()) => {}
                    (Some(t), None) => {
                        return Err(bad(format!(
                            "{:?}: target {t:?} is not FILE:SYMBOL (e.g. \"libc.so.6:malloc\")",
                            u.name
                        )))
                    }
                    (None, Some(sym)) if !sym.is_empty() => {}
                    _ => {
                        return Err(bad(format!(
                            "{:?} needs exactly one of `target = \"FILE:SYMBOL\"` or `symbol` (a function of the \
                             scenario's program)",
                            u.name
                        )))
                    }
                }
            }
            let mut names = std::collections::BTreeSet::new();
            for p in &s.event_pair {
                let bad =
                    |why: String| invalid(p.line, format!("scenario {:?}: [[scenario.event_pair]] {why}", s.name));
                if p.name.is_empty()
                    || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                {
                    return Err(bad(format!(
                        "name {:?} must be non-empty ASCII letters, digits, '_', '-' or '.'",
                        p.name
                    )));
                }
                if !names.insert(p.name.as_str()) {
                    return Err(bad(format!("name {:?} is used twice", p.name)));
                }
                for (k, v) in [("from", &p.from), ("to", &p.to), ("key", &p.key)] {
                    if v.trim().is_empty() {
                        return Err(bad(format!(
                            "{:?}: `{k}` is empty (e.g. from = \"syscalls:sys_enter_read\", to = \
                             \"syscalls:sys_exit_read\", key = \"tid\")",
                            p.name
                        )));
                    }
                }
            }
        }
        for (key, o) in &raw.checkpoints {
            let line = text.find(key.as_str()).map_or(0, |o| line_of_offset(text, o));
            let Some((scen, _)) = key.split_once('/') else {
                return Err(invalid(line, format!("[checkpoint.{key:?}] must be named \"scenario/checkpoint\"")));
            };
            if !seen.contains(scen) {
                return Err(invalid(line, format!("[checkpoint.{key:?}] names an unknown scenario {scen:?}")));
            }
            if o.min_effect.is_some_and(|m| !(0.0..1.0).contains(&m)) {
                return Err(invalid(line, format!("[checkpoint.{key:?}] min_effect must be in [0, 1)")));
            }
        }
        // A bare file name's parent is "", which no process can use as its directory.
        let root = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Config {
            path: path.to_path_buf(),
            root,
            gate: raw.gate,
            run: raw.run,
            instructions: raw.instructions,
            scenarios: raw.scenarios,
            checkpoints: raw.checkpoints,
        })
    }

    /// The defaults, for commands that need no file (`run`).
    pub fn ad_hoc() -> Config {
        Config {
            path: PathBuf::new(),
            root: PathBuf::new(),
            gate: Gate::default(),
            run: RunOptions::default(),
            instructions: InstructionOptions::default(),
            scenarios: Vec::new(),
            checkpoints: BTreeMap::new(),
        }
    }

    /// The baseline file of a scenario.
    pub fn baseline_path(&self, scenario: &str) -> PathBuf {
        self.root.join(&self.run.baseline_dir).join(format!("{scenario}.toml"))
    }

    /// The instruction-count baseline file of a scenario: `<baseline_dir>/instructions/<scenario>.toml`
    /// (a directory of its own: the time baselines' directory holds one format only).
    pub fn instruction_baseline_path(&self, scenario: &str) -> PathBuf {
        self.root.join(&self.run.baseline_dir).join("instructions").join(format!("{scenario}.toml"))
    }

    /// What to measure for `scenario`: `over` (from `--measure`) if given, else the scenario's
    /// own `measure`, else `run.measure`.
    pub fn measures(&self, scenario: &Scenario, over: Option<&[Measure]>) -> Vec<Measure> {
        over.map(<[Measure]>::to_vec).or_else(|| scenario.measure.clone()).unwrap_or_else(|| self.run.measure.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[gate]
alpha = 0.01
metrics = ["p50", "p99.9"]

[run]
runs = 6

[[scenario]]
name = "codec"
bin = "codec"
args = ["--duration-ms", "300"]

[[scenario]]
name = "ext"
path = "bin/ext"

[checkpoint."codec/crc32c"]
min_effect = 0.1
"#;

    #[test]
    fn event_pairs_parse_with_their_lines_and_bad_ones_name_the_line() {
        let text = "[[scenario]]\nname=\"a\"\nbin=\"a\"\n\n[[scenario.event_pair]]\nname = \"r\"\n\
                    from = \"syscalls:sys_enter_read\"\nto = \"syscalls:sys_exit_read\"\n\
                    [[scenario]]\nname=\"b\"\nbin=\"b\"\n[[scenario.event_pair]]\nname = \"w\"\n\
                    from = \"sched:sched_wakeup\"\nto = \"sched:sched_switch\"\nkey = \"pid\"\n";
        let c = Config::parse(text, Path::new("f.toml")).unwrap();
        let p = &c.scenarios[0].event_pair[0];
        assert_eq!((p.name.as_str(), p.key.as_str(), p.line), ("r", "tid", 5));
        let p = &c.scenarios[1].event_pair[0];
        assert_eq!((p.name.as_str(), p.key.as_str(), p.line), ("w", "pid", 12));
        let head = "[[scenario]]\nname=\"a\"\nbin=\"a\"\n[[scenario.event_pair]]\n";
        let e = err(&format!("{head}name = \"r\"\nfrom = \"x:y\"\nto = \" \"\n"));
        assert!(e.starts_with("f.toml:4:") && e.contains("`to` is empty"), "{e}");
        let e = err(&format!("{head}name = \"r w\"\nfrom = \"x:y\"\nto = \"x:z\"\n"));
        assert!(e.starts_with("f.toml:4:") && e.contains("must be non-empty ASCII"), "{e}");
        let e = err(&format!("{head}name = \"r\"\nfrom = \"x:y\"\n"));
        assert!(e.contains("missing field `to`"), "{e}");
        let e = err(&format!(
            "{head}name = \"r\"\nfrom = \"x:y\"\nto = \"x:z\"\n{head}name = \"r\"\nfrom = \"x:y\"\nto = \"x:z\"\n"
        ));
        assert!(e.contains("defined twice") || e.contains("used twice"), "{e}");
    }

    #[test]
    fn parses_defaults_and_overrides() {
        let c = Config::parse(GOOD, Path::new("/w/funcscope.toml")).unwrap();
        assert_eq!(c.gate.alpha, 0.01);
        assert_eq!(c.gate.min_effect, 0.03);
        assert_eq!(c.gate.metrics, [Metric::P50, Metric::P999]);
        assert_eq!(c.gate.report_metrics, [Metric::P90, Metric::P99], "the default report-only family");
        assert_eq!((c.gate.unchanged_within, c.gate.session_cv), (0.03, 0.03));
        assert_eq!(c.run.runs, 6);
        assert_eq!(c.checkpoints["codec/crc32c"].min_effect, Some(0.1));
        assert_eq!((c.gate.min_effect, c.gate.min_effect_paired), (0.03, 0.01));
        assert_eq!(c.baseline_path("codec"), Path::new("/w/baselines/codec.toml"));
    }

    #[test]
    fn a_bare_file_name_is_rooted_in_the_current_directory() {
        // `--config fs.toml`: the parent is "", which `cargo metadata` cannot run in.
        let c = Config::parse(GOOD, Path::new("fs.toml")).unwrap();
        assert_eq!(c.root, Path::new("."));
        assert_eq!(c.baseline_path("codec"), Path::new("./baselines/codec.toml"));
    }

    fn err(text: &str) -> String {
        Config::parse(text, Path::new("f.toml")).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_line_and_fix() {
        let e = err("[run]\ntotal_budget_s = -1\n[[scenario]]\nname=\"a\"\nbin=\"a\"\n");
        assert!(e.starts_with("f.toml:2:") && e.contains("total_budget_s"), "{e}");
        let e = err("[gate]\nalpha = 0.05\nmetrcs = [\"p50\"]\n[[scenario]]\nname=\"a\"\nbin=\"a\"\n");
        assert!(e.starts_with("f.toml:3:"), "{e}");
        assert!(e.contains("metrcs"), "{e}");
        let e = err("[gate]\nmetrics = [\"p42\"]\n[[scenario]]\nname=\"a\"\nbin=\"a\"\n");
        assert!(e.starts_with("f.toml:2:") && e.contains("p42"), "{e}");
        let e = err("[run]\n\nruns = 1\n[[scenario]]\nname=\"a\"\nbin=\"a\"\n");
        assert!(e.starts_with("f.toml:3:") && e.contains("at least 2"), "{e}");
        let e = err("[[scenario]]\nname=\"a\"\n");
        assert!(e.contains("exactly one of `bin`"), "{e}");
        let e = err("[[scenario]]\nname=\"a\"\nbin=\"a\"\n[[scenario]]\nname=\"a\"\nbin=\"b\"\n");
        assert!(e.contains("defined twice"), "{e}");
        let e = err("[[scenario]]\nname=\"a\"\nbin=\"a\"\n[checkpoint.\"zz/x\"]\nmin_effect=0.1\n");
        assert!(e.contains("unknown scenario"), "{e}");
        // Every scenario runs in the same interleaved rounds, so a per-scenario count is refused
        // rather than silently ignored.
        let e = err("[[scenario]]\nname=\"a\"\nbin=\"a\"\nruns = 3\n");
        assert!(e.starts_with("f.toml:4:") && e.contains("runs"), "{e}");
        let e = err("[gate\n");
        assert!(e.starts_with("f.toml:1:"), "{e}");
    }

    #[test]
    fn measures_run_default_scenario_override_and_flag() {
        let c = Config::parse(GOOD, Path::new("/w/funcscope.toml")).unwrap();
        assert_eq!(c.run.measure, [Measure::Time]);
        assert_eq!(c.instructions, InstructionOptions::default());
        let text = format!("{GOOD}\n[instructions]\niterations = 100\ncache_sim = true\n")
            .replace("[run]\nruns = 6", "[run]\nruns = 6\nmeasure = [\"time\", \"instructions\"]")
            .replace("name = \"ext\"", "name = \"ext\"\nmeasure = [\"instructions\"]");
        let c = Config::parse(&text, Path::new("/w/funcscope.toml")).unwrap();
        assert_eq!(c.instructions.iterations, 100);
        assert!(c.instructions.cache_sim);
        assert_eq!(c.measures(&c.scenarios[0], None), [Measure::Time, Measure::Instructions]);
        assert_eq!(c.measures(&c.scenarios[1], None), [Measure::Instructions]);
        assert_eq!(c.measures(&c.scenarios[1], Some(&[Measure::Time])), [Measure::Time]);
        assert_eq!(c.instruction_baseline_path("codec"), Path::new("/w/baselines/instructions/codec.toml"));
        assert!(err(&format!("{GOOD}\n[instructions]\nruns = 1\n")).contains("instructions.runs = 1"));
        assert!(err(&format!("{GOOD}\n[instructions]\nruns = 4\nmax_runs = 3\n")).contains("instructions.max_runs = 3"));
        assert!(err(&GOOD.replace("runs = 6", "runs = 6\nmeasure = [\"cycles\"]")).contains("unknown variant"));
    }
}
