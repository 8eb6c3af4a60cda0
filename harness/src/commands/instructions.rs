//! `--measure instructions`: exact per-checkpoint instruction counts under callgrind, recorded in
//! baselines beside time and judged against them.
//!
//! Each scenario runs [`InstructionOptions::runs`] times under callgrind
//! ([`crate::callgrind::run`]) with a fixed amount of work (`--duration-ms 0 --iterations N`
//! appended to its arguments). Per run and checkpoint the statistics are the mean and the median
//! instructions per call; the runs' spread is the noise [`crate::stats::compare_counts`] allows
//! for. The gated metric is the mean (all the work a call does, rare paths included); the median
//! is reported.
//!
//! **Baselines that travel.** The count of the same code built by the same toolchain for the same
//! target does not depend on the machine's speed, so `instructions/<scenario>.toml` (in the baseline directory) holds a
//! fingerprint of what *does* change it (funcscope version, `rustc -V`, target, valgrind version,
//! arguments, iterations, cache simulation) and no machine identity: a baseline committed from a
//! laptop gates on a CI runner of the same architecture. When the fingerprint differs, `regress`
//! rebuilds the baseline's commit and measures both builds here (a paired re-run); when that
//! commit cannot be built, the scenario is reported as not comparable and does not gate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{now_rfc3339, Selection};
use crate::callgrind::{self, CgRun};
use crate::config::{Config, InstructionOptions, Measure};
use crate::error::{Error, Result};
use crate::fingerprint::{rustc_version, Fingerprint};
use crate::model::{InstructionReport, InstructionRow, Report, TimeBeside};
use crate::stats::{judge_counts, CountComparison, CountInput, CountRule, Metric, Verdict};
use crate::workspace::{self, short_sha};

/// Version of the instruction baseline file format.
pub const SCHEMA: u32 = 1;

/// The arguments of an instruction run: the scenario's, then a fixed iteration count with no
/// time limit (the last occurrence of a flag wins in the bundled scenarios' parser).
pub fn instruction_args(args: &[String], iterations: u64) -> Vec<String> {
    let mut v = args.to_vec();
    v.extend(["--duration-ms".to_owned(), "0".to_owned(), "--iterations".to_owned(), iterations.to_string()]);
    v
}

/// What makes instruction counts comparable: everything that changes the executed code or the
/// work, nothing about the machine's speed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountFingerprint {
    /// funcscope's version (the probe's dump path is inside every region).
    pub funcscope: String,
    /// `rustc -V`.
    pub rustc: String,
    /// Target the scenarios were built for.
    pub target: String,
    /// `valgrind --version`.
    pub valgrind: String,
    /// Scenario arguments as run (iteration count included).
    pub args: Vec<String>,
    /// Whether caches were simulated.
    pub cache_sim: bool,
}

impl CountFingerprint {
    /// The fingerprint of runs made here, now, with `args`.
    pub fn current(root: &Path, valgrind: &str, args: &[String], cache_sim: bool) -> CountFingerprint {
        CountFingerprint {
            funcscope: env!("CARGO_PKG_VERSION").to_owned(),
            rustc: rustc_version(root),
            target: Fingerprint::current().target,
            valgrind: valgrind.to_owned(),
            args: args.to_vec(),
            cache_sim,
        }
    }

    /// The first field that differs, as `field: stored -> here`, or `None`.
    pub fn difference(&self, here: &CountFingerprint) -> Option<String> {
        let f = |name: &str, a: &str, b: &str| (a != b).then(|| format!("{name}: {a:?} -> {b:?}"));
        f("funcscope", &self.funcscope, &here.funcscope)
            .or_else(|| f("rustc", &self.rustc, &here.rustc))
            .or_else(|| f("target", &self.target, &here.target))
            .or_else(|| f("valgrind", &self.valgrind, &here.valgrind))
            .or_else(|| f("args", &self.args.join(" "), &here.args.join(" ")))
            .or_else(|| f("cache_sim", &self.cache_sim.to_string(), &here.cache_sim.to_string()))
    }
}

/// One checkpoint in an instruction baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountCheckpoint {
    /// Calls per run (median over runs).
    pub calls_per_run: f64,
    /// Per-run values keyed by [`Metric::as_str`] (`mean`, `p50`: instructions per call) and,
    /// with cache simulation, [`ESTIMATED_CYCLES`], [`L1_MISSES`], [`LL_MISSES`] (per call);
    /// one value per run.
    pub per_run: BTreeMap<String, Vec<f64>>,
}

/// `<baseline_dir>/instructions/<scenario>.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountBaseline {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The scenario.
    pub scenario: String,
    /// The commit measured (`-dirty` when the tree had changes).
    pub commit: String,
    /// When (RFC 3339).
    pub date: String,
    /// What the counts depend on.
    pub fingerprint: CountFingerprint,
    /// By checkpoint name.
    pub checkpoints: BTreeMap<String, CountCheckpoint>,
}

/// Key of the cache-simulation metric in [`CountCheckpoint::per_run`]: estimated cycles per call.
pub const ESTIMATED_CYCLES: &str = "estimated_cycles";
/// Key of L1 misses per call (instruction fetch + data read + write) with cache simulation.
pub const L1_MISSES: &str = "l1_misses";
/// Key of last-level misses per call with cache simulation.
pub const LL_MISSES: &str = "ll_misses";

impl CountBaseline {
    /// Builds a baseline from runs.
    pub fn from_runs(scenario: &str, commit: String, fingerprint: CountFingerprint, runs: &[CgRun]) -> CountBaseline {
        let mut checkpoints: BTreeMap<String, CountCheckpoint> = BTreeMap::new();
        for r in runs {
            for c in &r.checkpoints {
                let e = checkpoints
                    .entry(c.name.clone())
                    .or_insert_with(|| CountCheckpoint { calls_per_run: c.calls as f64, per_run: BTreeMap::new() });
                e.per_run.entry(Metric::Mean.as_str().to_owned()).or_default().push(round3(c.mean_ir));
                e.per_run.entry(Metric::P50.as_str().to_owned()).or_default().push(c.p50_ir as f64);
                let sim = [
                    (ESTIMATED_CYCLES, c.mean_estimated_cycles),
                    (L1_MISSES, c.mean_l1_misses),
                    (LL_MISSES, c.mean_ll_misses),
                ];
                for (key, v) in sim {
                    if let Some(v) = v {
                        e.per_run.entry(key.to_owned()).or_default().push(round3(v));
                    }
                }
            }
        }
        CountBaseline {
            schema: SCHEMA,
            scenario: scenario.to_owned(),
            commit,
            date: now_rfc3339(),
            fingerprint,
            checkpoints,
        }
    }

    /// Reads one; `Ok(None)` if the file does not exist.
    ///
    /// # Errors
    /// Unreadable or malformed (the message names the file and the fix).
    pub fn load(path: &Path) -> Result<Option<CountBaseline>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::at("reading", path, e)),
        };
        let b: CountBaseline = toml::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "{}: not an instruction baseline ({}); re-record it with `cargo xtask baseline --measure instructions`",
                path.display(),
                e.message().trim()
            ))
        })?;
        if b.schema != SCHEMA {
            return Err(Error::Usage(format!(
                "{}: schema {} (this funcscope writes {SCHEMA}); re-record it with `cargo xtask baseline --measure instructions`",
                path.display(),
                b.schema
            )));
        }
        Ok(Some(b))
    }

    /// Writes it atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = toml::to_string(self).map_err(|e| Error::Usage(format!("serializing {}: {e}", path.display())))?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::at("creating", d, e))?;
        }
        let header = format!(
            "# funcscope instruction-count baseline for scenario {}: per-run mean/p50 instructions per call under callgrind.\n\
             # Regenerate with: cargo xtask baseline --measure instructions --scenario {}\n",
            self.scenario, self.scenario
        );
        crate::fsutil::write_atomic(path, 0o644, |w| {
            w.write_all(header.as_bytes())?;
            w.write_all(text.as_bytes())
        })
        .map_err(|e| Error::Usage(e.to_string()))
    }

    /// The per-run values of `metric` of `checkpoint`.
    pub fn values(&self, checkpoint: &str, metric: &str) -> Option<&[f64]> {
        self.checkpoints.get(checkpoint)?.per_run.get(metric).map(Vec::as_slice)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Runs `program` `runs` times under callgrind, with progress on stderr unless `quiet`.
///
/// # Errors
/// The first failed run ([`crate::callgrind::CallgrindError`]).
pub fn measure(launch: &callgrind::Launch, runs: usize, quiet: bool) -> Result<Vec<CgRun>> {
    let mut out = Vec::with_capacity(runs);
    for i in 0..runs {
        let r = callgrind::run(launch)?;
        if !quiet {
            eprintln!("callgrind: {} run {}/{runs}: {:.2} s", launch.name, i + 1, r.wall.as_secs_f64());
        }
        out.push(r);
    }
    Ok(out)
}

/// Runs every launch `runs` times under callgrind, on as many CPUs as this process may use:
/// counts do not depend on what else runs (callgrind simulates one CPU), so parallel runs cost
/// nothing in accuracy. Results in `launches` order.
///
/// # Errors
/// Each launch's first failed run.
pub fn measure_many(launches: &[callgrind::Launch], runs: usize, quiet: bool) -> Vec<Result<Vec<CgRun>>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let jobs: Vec<(usize, usize)> = (0..launches.len()).flat_map(|i| (0..runs).map(move |r| (i, r))).collect();
    type Slot = Option<std::result::Result<CgRun, callgrind::CallgrindError>>;
    let slots: Vec<Mutex<Vec<Slot>>> = launches.iter().map(|_| Mutex::new((0..runs).map(|_| None).collect())).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len()).max(1);
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| {
                while let Some(&(i, r)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let out = callgrind::run(&launches[i]);
                    if !quiet {
                        if let Ok(o) = &out {
                            eprintln!(
                                "callgrind: {} run {}/{runs}: {:.2} s",
                                launches[i].name,
                                r + 1,
                                o.wall.as_secs_f64()
                            );
                        }
                    }
                    slots[i].lock().unwrap_or_else(|e| e.into_inner())[r] = Some(out);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .into_iter()
                .map(|r| r.expect("every job ran").map_err(Error::from))
                .collect()
        })
        .collect()
}

/// Whether any checkpoint's mean instructions per call differ between `runs`.
pub fn varies(runs: &[CgRun]) -> bool {
    let mut first: BTreeMap<&str, f64> = BTreeMap::new();
    runs.iter().flat_map(|r| &r.checkpoints).any(|c| *first.entry(c.name.as_str()).or_insert(c.mean_ir) != c.mean_ir)
}

/// [`measure_many`] with `o.runs` runs per launch, extended to `o.max_runs` for each launch
/// whose counts vary ([`varies`]): a deterministic scenario is decided exactly from a few runs,
/// a varying one needs enough runs for the rank test to reach the gate's level
/// (see [`crate::stats::judge_counts`]).
///
/// # Errors
/// Each launch's first failed run.
pub fn measure_adaptive(
    launches: &[callgrind::Launch],
    o: &InstructionOptions,
    quiet: bool,
) -> Vec<Result<Vec<CgRun>>> {
    measure_adaptive_grouped(launches, 1, o, quiet)
}

/// [`measure_adaptive`] where each `group` consecutive launches (the arms of one scenario) are
/// extended together when any of them varies, so paired arms keep equal lengths.
fn measure_adaptive_grouped(
    launches: &[callgrind::Launch],
    group: usize,
    o: &InstructionOptions,
    quiet: bool,
) -> Vec<Result<Vec<CgRun>>> {
    let mut out = measure_many(launches, o.runs, quiet);
    let group = group.max(1);
    let vary: Vec<bool> = out.iter().map(|r| r.as_ref().is_ok_and(|r| varies(r))).collect();
    let more: Vec<usize> = (0..launches.len())
        .filter(|&i| {
            o.max_runs > o.runs && vary[i / group * group..((i / group + 1) * group).min(vary.len())].contains(&true)
        })
        .collect();
    if more.is_empty() {
        return out;
    }
    if !quiet {
        let names: Vec<&str> = more.iter().map(|&i| launches[i].name.as_str()).collect();
        eprintln!("callgrind: counts vary in {}: {} runs each", names.join(", "), o.max_runs);
    }
    let subset: Vec<callgrind::Launch> = more.iter().map(|&i| launches[i].clone()).collect();
    for (&i, extra) in more.iter().zip(measure_many(&subset, o.max_runs - o.runs, quiet)) {
        match (extra, &mut out[i]) {
            (Ok(e), Ok(v)) => v.extend(e),
            (Err(e), slot) => *slot = Err(e),
            (Ok(_), Err(_)) => {}
        }
    }
    out
}

/// The verdict of one checkpoint's instructions.
#[derive(Clone, Debug, PartialEq)]
pub struct CountResult {
    /// Scenario.
    pub scenario: String,
    /// Checkpoint.
    pub checkpoint: String,
    /// Median over the baseline's runs of mean instructions per call.
    pub baseline: f64,
    /// The same over the current runs.
    pub current: f64,
    /// The comparison of the gated metric (mean per call).
    pub comparison: CountComparison,
    /// The same for the median call, reported only (its own family).
    pub p50: Option<CountComparison>,
    /// Mean instructions per call of each baseline run.
    pub baseline_runs: Vec<f64>,
    /// The same of each current run.
    pub current_runs: Vec<f64>,
    /// Whether the arms were measured here as pairs.
    pub paired: bool,
}

/// One scenario's two arms for [`judge`].
#[derive(Clone, Copy, Debug)]
pub struct Arms<'a> {
    /// The scenario.
    pub scenario: &'a str,
    /// The baseline arm (stored, or re-measured here).
    pub base: &'a CountBaseline,
    /// The current arm.
    pub current: &'a CountBaseline,
    /// Whether both arms were measured here, run `i` of each in the same round (the paired test).
    pub paired: bool,
}

/// The gate's rule for instruction counts: `gate.alpha`, `gate.correction` and
/// `instructions.min_effect`.
pub fn rule(cfg: &Config) -> CountRule {
    CountRule { alpha: cfg.gate.alpha, correction: cfg.gate.correction, min_effect: cfg.instructions.min_effect }
}

/// Judges every checkpoint of every scenario's arms as one family per metric (the mean gates,
/// the median is reported): [`crate::stats::judge_counts`]. A checkpoint missing from either
/// side is skipped (the time report shows presence changes).
pub fn judge(arms: &[Arms<'_>], rule: &CountRule) -> Vec<CountResult> {
    let mean = Metric::Mean.as_str();
    let p50 = Metric::P50.as_str();
    let mut keys = Vec::new();
    let mut means: Vec<CountInput<'_>> = Vec::new();
    let mut p50s: Vec<CountInput<'_>> = Vec::new();
    for a in arms {
        for name in a.current.checkpoints.keys() {
            let (Some(b), Some(c)) = (a.base.values(name, mean), a.current.values(name, mean)) else { continue };
            keys.push((a.scenario, name.as_str(), b, c, a.paired));
            means.push((b, c, a.paired));
            p50s.push((a.base.values(name, p50).unwrap_or(&[]), a.current.values(name, p50).unwrap_or(&[]), a.paired));
        }
    }
    let gated = judge_counts(&means, rule);
    let reported = judge_counts(&p50s, rule);
    keys.into_iter()
        .zip(gated.into_iter().zip(reported))
        .filter_map(|((scenario, checkpoint, b, c, paired), (comparison, p50))| {
            Some(CountResult {
                scenario: scenario.to_owned(),
                checkpoint: checkpoint.to_owned(),
                baseline: crate::stats::median(b)?,
                current: crate::stats::median(c)?,
                comparison: comparison?,
                p50,
                baseline_runs: b.to_vec(),
                current_runs: c.to_vec(),
                paired,
            })
        })
        .collect()
}

/// The time verdict and change (p50 ratio - 1) of a checkpoint in a time report, if judged.
fn time_of(report: &Report, scenario: &str, checkpoint: &str) -> Option<(Verdict, Option<f64>)> {
    let s = report.scenarios.iter().find(|s| s.name == scenario)?;
    let c = s.checkpoints.iter().find(|c| c.name == checkpoint)?;
    let change = c
        .metrics
        .iter()
        .find(|m| m.metric == Metric::P50)
        .and_then(|m| m.comparison.as_ref())
        .map(|cmp| cmp.ratio - 1.0);
    Some((c.verdict, change))
}

/// What it means when time and instructions disagree, or `None` when they agree.
pub fn disagreement(time: Verdict, instructions: Verdict) -> Option<&'static str> {
    use Verdict::*;
    match (instructions, time) {
        (Unchanged, Regressed) | (Unchanged, Improved) => {
            Some("a micro-architectural effect (layout, cache, branch prediction), or noise")
        }
        (Regressed, Inconclusive) | (Improved, Inconclusive) => {
            Some("the machine is too noisy to see what the code does")
        }
        (Regressed, Unchanged) | (Improved, Unchanged) => {
            Some("the extra work is cheap or hidden (overlapped, cached)")
        }
        (Regressed, Improved) | (Improved, Regressed) => Some("fewer but slower instructions (or the reverse)"),
        _ => None,
    }
}

/// The disagreement flag of one checkpoint, with both changes: e.g. `instructions unchanged,
/// time +8.0%: a micro-architectural effect ...` or `instructions +3.00%, time inconclusive:
/// the machine is too noisy ...`; `None` when time and instructions agree.
pub fn disagreement_line(time: Verdict, time_change: Option<f64>, instructions: &CountComparison) -> Option<String> {
    let why = disagreement(time, instructions.verdict)?;
    let ic = match instructions.verdict {
        Verdict::Unchanged => "unchanged".to_owned(),
        _ => format!("{:+.2}%", instructions.change * 100.0),
    };
    let tc = match (time, time_change) {
        (Verdict::Unchanged | Verdict::Inconclusive, _) | (_, None) => time.as_str().to_owned(),
        (_, Some(x)) => format!("{:+.1}%", x * 100.0),
    };
    Some(format!("instructions {ic}, time {tc}: {why}"))
}

/// A checkpoint's time verdict and p50 change, by (scenario, checkpoint), if it was judged.
pub type TimeLookup<'a> = dyn Fn(&str, &str) -> Option<(Verdict, Option<f64>)> + 'a;

/// The instruction section of the report: one row per result with time's verdict beside it
/// when `time` is given (`time(scenario, checkpoint)`: the checkpoint's time verdict and p50
/// change), every disagreement explained ([`disagreement_line`]), and the pass's notes.
pub fn section(results: &[CountResult], notes: &[String], time: Option<&TimeLookup<'_>>) -> InstructionReport {
    let rows = results
        .iter()
        .map(|r| {
            let t = time.and_then(|t| t(&r.scenario, &r.checkpoint));
            InstructionRow {
                scenario: r.scenario.clone(),
                checkpoint: r.checkpoint.clone(),
                baseline: r.baseline,
                current: r.current,
                baseline_runs: r.baseline_runs.clone(),
                current_runs: r.current_runs.clone(),
                paired: r.paired,
                comparison: r.comparison,
                p50: r.p50,
                time: t.map(|(verdict, change)| TimeBeside { verdict, change }),
                disagreement: t.and_then(|(v, ch)| disagreement_line(v, ch, &r.comparison)),
            }
        })
        .collect();
    InstructionReport { rows, notes: notes.to_vec(), exit_code: exit_code(results) }
}

/// Exit code of instruction verdicts: 1 if any gated checkpoint regressed, else 0.
pub fn exit_code(results: &[CountResult]) -> i32 {
    if results.iter().any(|r| r.comparison.verdict == Verdict::Regressed) {
        crate::exit_code::REGRESSION
    } else {
        0
    }
}

/// The configuration's scenarios that measure instructions (under `over` from `--measure`).
fn selected(cfg: &Config, over: Option<&[Measure]>) -> Vec<usize> {
    (0..cfg.scenarios.len())
        .filter(|&i| cfg.measures(&cfg.scenarios[i], over).contains(&Measure::Instructions))
        .collect()
}

fn launch(cfg: &Config, i: usize, program: PathBuf, o: &InstructionOptions) -> callgrind::Launch {
    let s = &cfg.scenarios[i];
    callgrind::Launch {
        name: s.name.clone(),
        program,
        args: instruction_args(&s.args, o.iterations),
        env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        cache_sim: o.cache_sim,
        timeout: Duration::from_secs_f64(o.timeout_s),
        uprobes: s.uprobe.iter().map(|u| super::gate_probe(cfg, u)).collect(),
    }
}

/// `baseline --measure instructions`: measures every selected scenario that measures
/// instructions and writes its instruction baseline. Returns 0.
///
/// # Errors
/// valgrind missing or too old (2), a build failure (2), a scenario failing under callgrind (3).
pub fn baseline(sel: &Selection, over: Option<&[Measure]>) -> Result<i32> {
    let cfg = sel.load_config()?;
    let ids = selected(&cfg, over);
    if ids.is_empty() {
        return Ok(0);
    }
    let valgrind = callgrind::check_valgrind()?;
    let programs = sel.build_working_tree(&cfg)?;
    let commit = workspace::describe_head(&cfg.root, &cfg.run.baseline_dir);
    let t0 = Instant::now();
    let launches: Vec<_> =
        ids.iter().map(|&i| launch(&cfg, i, programs[i].clone().expect("require_all"), &cfg.instructions)).collect();
    for (l, runs) in launches.iter().zip(measure_adaptive(&launches, &cfg.instructions, sel.quiet)) {
        let runs = runs?;
        let fp = CountFingerprint::current(&cfg.root, &valgrind, &l.args, l.cache_sim);
        let b = CountBaseline::from_runs(&l.name, commit.clone(), fp, &runs);
        let path = cfg.instruction_baseline_path(&l.name);
        b.write(&path)?;
        eprintln!("wrote {}", path.display());
    }
    eprintln!("instruction pass: {:.1} s", t0.elapsed().as_secs_f64());
    Ok(0)
}

/// `regress --measure instructions`: measures the working tree and judges each selected scenario
/// against its instruction baseline (paired with a rebuild of the baseline's commit when the
/// fingerprint differs), beside `time`'s verdicts when given. `None` when no selected scenario
/// measures instructions.
///
/// # Errors
/// A scenario without an instruction baseline (2, naming the command that records it), valgrind
/// missing or too old (2), a build failure (2), a scenario failing under callgrind (3).
pub fn regress(sel: &Selection, over: Option<&[Measure]>, time: Option<&Report>) -> Result<Option<InstructionReport>> {
    let cfg = sel.load_config()?;
    let ids = selected(&cfg, over);
    if ids.is_empty() {
        return Ok(None);
    }
    let mut baselines = Vec::new();
    for &i in &ids {
        let name = &cfg.scenarios[i].name;
        let path = cfg.instruction_baseline_path(name);
        let b = CountBaseline::load(&path)?.ok_or_else(|| {
            Error::Usage(format!(
                "scenario {name}: no instruction baseline ({} is missing); record one with `cargo xtask baseline --measure instructions --scenario {name}`",
                path.display()
            ))
        })?;
        baselines.push(b);
    }
    let valgrind = callgrind::check_valgrind()?;
    let programs = sel.build_working_tree(&cfg)?;
    let t0 = Instant::now();
    let mut notes = Vec::new();
    let mut judged: Vec<(CountBaseline, CountBaseline, bool)> = Vec::new();
    let launches: Vec<_> =
        ids.iter().map(|&i| launch(&cfg, i, programs[i].clone().expect("require_all"), &cfg.instructions)).collect();
    let measured = measure_adaptive(&launches, &cfg.instructions, sel.quiet);
    for (((&i, stored), l), runs) in ids.iter().zip(&baselines).zip(&launches).zip(measured) {
        let fp = CountFingerprint::current(&cfg.root, &valgrind, &l.args, l.cache_sim);
        let runs = runs?;
        let current = CountBaseline::from_runs(&l.name, String::new(), fp.clone(), &runs);
        let (base, paired) = match stored.fingerprint.difference(&fp) {
            None => (stored.clone(), false),
            Some(diff) => {
                // Counts from another toolchain or setup are not comparable: measure the
                // baseline's commit here too (paired), if it can be built.
                let commit = stored.commit.trim_end_matches("-dirty");
                match workspace::build_revision(
                    &cfg,
                    Some(commit),
                    "baseline",
                    &format!("baseline commit {}", short_sha(commit)),
                    sel.build_flags(),
                ) {
                    Ok(old) if old.programs[i].is_some() => {
                        notes.push(format!(
                            "{}: baseline fingerprint differs ({diff}); re-measured its commit {} here (paired)",
                            l.name,
                            short_sha(commit)
                        ));
                        let lo = callgrind::Launch { program: old.programs[i].clone().expect("checked"), ..l.clone() };
                        // As many runs as the current arm (extended if it varies): one pair per round.
                        let old_runs = measure(&lo, runs.len(), sel.quiet)?;
                        (CountBaseline::from_runs(&l.name, commit.to_owned(), fp.clone(), &old_runs), true)
                    }
                    _ => {
                        notes.push(format!(
                            "{}: NOT JUDGED: baseline fingerprint differs ({diff}) and its commit {} cannot be built here; re-record with `cargo xtask baseline --measure instructions --scenario {}`",
                            l.name,
                            short_sha(commit),
                            l.name
                        ));
                        continue;
                    }
                }
            }
        };
        judged.push((base, current, paired));
    }
    let arms: Vec<Arms<'_>> = judged
        .iter()
        .map(|(base, current, paired)| Arms { scenario: &current.scenario, base, current, paired: *paired })
        .collect();
    let results = judge(&arms, &rule(&cfg));
    notes.push(format!("instruction pass: {:.1} s", t0.elapsed().as_secs_f64()));
    Ok(Some(with_time(&results, &notes, time)))
}

/// [`section`] beside the time report's verdicts, if any.
fn with_time(results: &[CountResult], notes: &[String], time: Option<&Report>) -> InstructionReport {
    let lookup = time.map(|rep| move |s: &str, c: &str| time_of(rep, s, c));
    section(results, notes, lookup.as_ref().map(|f| f as &TimeLookup<'_>))
}

/// `diff A.json B.json` for instructions: each checkpoint of `b`'s instruction section judged
/// against the same checkpoint of `a`'s, current runs against current runs (two sessions: the
/// two-sample test, or the exact floor), beside the time verdicts of `time` (the diff report).
pub fn diff_section(
    a: &InstructionReport,
    b: &InstructionReport,
    rule: &CountRule,
    time: Option<&Report>,
) -> InstructionReport {
    let pairs: Vec<(&InstructionRow, &InstructionRow)> = b
        .rows
        .iter()
        .filter_map(|rb| {
            a.rows.iter().find(|ra| ra.scenario == rb.scenario && ra.checkpoint == rb.checkpoint).map(|ra| (ra, rb))
        })
        .collect();
    let family: Vec<CountInput<'_>> =
        pairs.iter().map(|(ra, rb)| (&ra.current_runs[..], &rb.current_runs[..], false)).collect();
    let results: Vec<CountResult> = pairs
        .iter()
        .zip(judge_counts(&family, rule))
        .filter_map(|((ra, rb), c)| {
            Some(CountResult {
                scenario: rb.scenario.clone(),
                checkpoint: rb.checkpoint.clone(),
                baseline: ra.current,
                current: rb.current,
                comparison: c?,
                p50: None,
                baseline_runs: ra.current_runs.clone(),
                current_runs: rb.current_runs.clone(),
                paired: false,
            })
        })
        .collect();
    let missing = b.rows.len() - pairs.len();
    let mut notes = vec!["instructions: each report's current runs, judged as two sessions".to_owned()];
    if missing > 0 {
        notes.push(format!("{missing} checkpoint(s) of B have no instruction counts in A: not judged"));
    }
    with_time(&results, &notes, time)
}

/// Where an invocation's report goes.
struct Destination<'a> {
    command: &'a str,
    json: &'a Option<PathBuf>,
    markdown: &'a Option<PathBuf>,
    junit: &'a Option<PathBuf>,
    github_annotations: bool,
}

/// Writes the invocation's report: the time report with the instruction section added (exit code
/// the worse of the two), or, instructions only, a report holding just the section. Returns the
/// exit code.
fn finish_measures(
    sel: &Selection,
    time: Option<(Report, crate::report::Outputs)>,
    ir: Option<InstructionReport>,
    dest: &Destination<'_>,
    started: String,
    t0: Instant,
) -> Result<i32> {
    match (time, ir) {
        (Some((mut report, outputs)), ir) => {
            if let Some(ir) = ir {
                report.exit_code = report.exit_code.max(ir.exit_code);
                report.instructions = Some(ir);
            }
            super::finish(&report, outputs)
        }
        (None, Some(ir)) => {
            let cfg = sel.load_config()?;
            let report = Report {
                schema: crate::model::REPORT_SCHEMA,
                command: dest.command.to_owned(),
                tool_version: env!("CARGO_PKG_VERSION").to_owned(),
                started,
                wall_s: t0.elapsed().as_secs_f64(),
                sampling_s: None,
                machine: Fingerprint::current(),
                alpha: cfg.gate.alpha,
                correction: cfg.gate.correction,
                strict: false,
                looks: 1,
                scenarios: Vec::new(),
                tally: crate::model::Tally::default(),
                exit_code: ir.exit_code,
                instructions: Some(ir),
            };
            let mut outputs = super::outputs(&cfg, dest.command, dest.json, dest.markdown);
            outputs.junit = dest.junit.clone();
            outputs.github_annotations = dest.github_annotations;
            super::finish(&report, outputs)
        }
        (None, None) => Ok(0),
    }
}

/// `compare --measure instructions REV_A [REV_B]`: both revisions built (as `compare` builds
/// them), each selected scenario measured under callgrind on both, as pairs (the paired rank
/// test; arms extended together when either varies), judged like `regress`; `None` when no
/// selected scenario measures instructions.
///
/// # Errors
/// valgrind missing or too old (2), an unknown revision or a build failure (2), a scenario
/// failing under callgrind (3).
fn compare_to(
    o: &super::compare::Options,
    over: Option<&[Measure]>,
    time: Option<&Report>,
) -> Result<Option<InstructionReport>> {
    let cfg = o.select.load_config()?;
    let ids = selected(&cfg, over);
    if ids.is_empty() {
        return Ok(None);
    }
    callgrind::check_valgrind()?;
    let flags = o.select.build_flags();
    let a = workspace::build_revision(&cfg, Some(&o.rev_a), "a", &o.rev_a, flags)?;
    let what_b = o.rev_b.as_deref().unwrap_or("the working tree");
    let b = workspace::build_revision(&cfg, o.rev_b.as_deref(), "b", what_b, flags)?;
    let (label_a, label_b) =
        (super::revision_label(&cfg, Some(&o.rev_a), &a), super::revision_label(&cfg, o.rev_b.as_deref(), &b));
    let t0 = Instant::now();
    let mut notes = vec![format!("A = {label_a}; B = {label_b}: both measured here, paired")];
    let mut launches = Vec::new();
    for &i in &ids {
        let name = &cfg.scenarios[i].name;
        match (&a.programs[i], &b.programs[i]) {
            (Some(pa), Some(pb)) => {
                launches.push(launch(&cfg, i, pa.clone(), &cfg.instructions));
                let mut lb = launch(&cfg, i, pb.clone(), &cfg.instructions);
                // An explicit plant (--env-b) goes to arm B only, as in the time experiment.
                lb.env.extend(o.env_b.iter().cloned());
                launches.push(lb);
            }
            (pa, _) => notes
                .push(format!("{name}: NOT JUDGED: no program on {}", if pa.is_none() { &label_a } else { &label_b })),
        }
    }
    let measured = measure_adaptive_grouped(&launches, 2, &cfg.instructions, o.select.quiet);
    let mut pairs = Vec::new();
    let mut it = launches.iter().zip(measured);
    while let (Some((la, ra)), Some((_, rb))) = (it.next(), it.next()) {
        let fp = CountFingerprint::default();
        let base = CountBaseline::from_runs(&la.name, label_a.clone(), fp.clone(), &ra?);
        let current = CountBaseline::from_runs(&la.name, label_b.clone(), fp, &rb?);
        pairs.push((base, current));
    }
    let arms: Vec<Arms<'_>> =
        pairs.iter().map(|(base, current)| Arms { scenario: &base.scenario, base, current, paired: true }).collect();
    let results = judge(&arms, &rule(&cfg));
    notes.push(format!("instruction pass: {:.1} s", t0.elapsed().as_secs_f64()));
    Ok(Some(with_time(&results, &notes, time)))
}

/// `compare` with the measures asked for: the time experiment, then the instruction comparison,
/// in one report (instructions beside time). The exit code is the worse of the two.
///
/// # Errors
/// As [`super::compare::run`] and the instruction pass (valgrind missing or too old: 2; a
/// scenario failing under callgrind: 3).
pub fn compare_measures(o: &super::compare::Options, over: Option<&[Measure]>) -> Result<i32> {
    let (started, t0) = (now_rfc3339(), Instant::now());
    let time = if wants_time(&o.select, over)? { Some(super::compare::report(o)?) } else { None };
    let ir = compare_to(o, over, time.as_ref().map(|t| &t.0))?;
    let dest = Destination {
        command: "compare",
        json: &o.json,
        markdown: &o.markdown,
        junit: &o.junit,
        github_annotations: o.github_annotations,
    };
    finish_measures(&o.select, time, ir, &dest, started, t0)
}

/// `calibrate` with the measures asked for: the time A/A experiment, then, for instructions,
/// `instructions.max_runs` runs of each selected scenario under callgrind and the spread of its
/// counts per checkpoint: which checkpoints are exact (decided by the deterministic floor) and
/// which vary (judged by the rank test, with `max_runs` runs per arm).
///
/// # Errors
/// As [`super::calibrate::run`]; valgrind missing or too old (2); a scenario failing under
/// callgrind (3).
pub fn calibrate_measures(o: &super::calibrate::Options, over: Option<&[Measure]>) -> Result<i32> {
    let tc = if wants_time(&o.select, over)? { super::calibrate::run(o)? } else { 0 };
    let cfg = o.select.load_config()?;
    let ids = selected(&cfg, over);
    if ids.is_empty() {
        return Ok(tc);
    }
    callgrind::check_valgrind()?;
    let programs = o.select.build_working_tree(&cfg)?;
    let launches: Vec<_> =
        ids.iter().map(|&i| launch(&cfg, i, programs[i].clone().expect("require_all"), &cfg.instructions)).collect();
    let t0 = Instant::now();
    let mut out = std::io::stdout().lock();
    for (l, runs) in launches.iter().zip(measure_many(&launches, cfg.instructions.max_runs, o.select.quiet)) {
        let b = CountBaseline::from_runs(&l.name, String::new(), CountFingerprint::default(), &runs?);
        print_counts(&l.name, &b, &mut out).map_err(|e| Error::io("writing the report", e))?;
    }
    use std::io::Write;
    writeln!(
        out,
        "spread = largest relative distance of a run's mean from the median run; exact checkpoints are judged exactly (any change >= {:.2}% counts), varying ones by the rank test with {} runs per arm\ninstruction pass: {:.1} s",
        cfg.instructions.min_effect * 100.0,
        cfg.instructions.max_runs,
        t0.elapsed().as_secs_f64()
    )
    .map_err(|e| Error::io("writing the report", e))?;
    Ok(tc)
}

/// `run --measure instructions -- PROGRAM ARGS`: counts per checkpoint over `o.runs` runs, no
/// baseline. The program gets its arguments as given (no iteration count is appended: give it a
/// fixed amount of work yourself).
///
/// # Errors
/// The program does not exist, valgrind is missing or too old (2); the program fails under
/// callgrind (3).
pub fn run_program(o: &super::run::Options, cache_sim: bool) -> Result<i32> {
    let program = super::run::which(&o.program)
        .ok_or_else(|| Error::Usage(format!("{}: no such program (not a path, not on PATH)", o.program)))?;
    let name =
        Path::new(&o.program).file_name().map_or_else(|| o.program.clone(), |n| n.to_string_lossy().into_owned());
    callgrind::check_valgrind()?;
    let l = callgrind::Launch {
        name: name.clone(),
        program,
        args: o.args.clone(),
        env: Vec::new(),
        cache_sim,
        timeout: o.timeout,
        uprobes: o.uprobes.clone(),
    };
    let name = name.as_str();
    let runs = measure(&l, o.runs.max(1), false)?;
    let b = CountBaseline::from_runs(name, String::new(), CountFingerprint::default(), &runs);
    print_counts(name, &b, &mut std::io::stdout().lock()).map_err(|e| Error::io("writing the report", e))?;
    Ok(0)
}

/// Prints one scenario's counts per checkpoint over its runs: calls, mean and median
/// instructions per call, the runs' spread (`exact` when zero), and with cache simulation L1/LL
/// misses and estimated cycles per call.
fn print_counts(name: &str, b: &CountBaseline, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let runs = b.checkpoints.values().next().map_or(0, |c| c.per_run.get(Metric::Mean.as_str()).map_or(0, Vec::len));
    writeln!(out, "{name}: instructions per call under callgrind, {runs} run(s)")?;
    writeln!(
        out,
        "  {:<24} {:>10} {:>14} {:>12} {:>9} {:>10} {:>10} {:>14}",
        "checkpoint", "calls", "mean", "p50", "spread", "L1 miss", "LL miss", "est. cycles"
    )?;
    for (cp, c) in &b.checkpoints {
        let mean = &c.per_run[Metric::Mean.as_str()];
        let p50 = &c.per_run[Metric::P50.as_str()];
        let m = crate::stats::median(mean).unwrap_or(f64::NAN);
        let spread = mean.iter().map(|x| (x / m - 1.0).abs()).fold(0.0, f64::max);
        let spread = if spread == 0.0 { "exact".to_owned() } else { format!("{:.4}%", spread * 100.0) };
        let sim = |key: &str| {
            c.per_run.get(key).and_then(|v| crate::stats::median(v)).map_or("-".to_owned(), |x| format!("{x:.1}"))
        };
        writeln!(
            out,
            "  {:<24} {:>10} {:>14.1} {:>12} {:>9} {:>10} {:>10} {:>14}",
            cp,
            c.calls_per_run,
            m,
            crate::stats::median(p50).unwrap_or(f64::NAN),
            spread,
            sim(L1_MISSES),
            sim(LL_MISSES),
            sim(ESTIMATED_CYCLES)
        )?;
    }
    Ok(())
}

/// Whether the time pass runs: `over` (from `--measure`) names time, or, without it,
/// `run.measure` does.
fn wants_time(sel: &Selection, over: Option<&[Measure]>) -> Result<bool> {
    Ok(match over {
        Some(m) => m.contains(&Measure::Time),
        None => sel.load_config()?.run.measure.contains(&Measure::Time),
    })
}

/// `regress` with the measures asked for: the time gate, then the instruction gate, in one
/// report (terminal, JSON, Markdown, JUnit, annotations) with instructions beside time. The exit
/// code is the worse of the two (3 > 1 > 0).
///
/// # Errors
/// As [`super::regress::run`] and [`regress`].
pub fn regress_measures(o: &super::regress::Options, over: Option<&[Measure]>) -> Result<i32> {
    let (started, t0) = (now_rfc3339(), Instant::now());
    let time = if wants_time(&o.select, over)? { Some(super::regress::report(o)?) } else { None };
    let ir = regress(&o.select, over, time.as_ref().map(|t| &t.0))?;
    let dest = Destination {
        command: "regress",
        json: &o.json,
        markdown: &o.markdown,
        junit: &o.junit,
        github_annotations: o.github_annotations,
    };
    finish_measures(&o.select, time, ir, &dest, started, t0)
}

/// `baseline` with the measures asked for: the time baseline, then the instruction baseline.
///
/// # Errors
/// As [`super::baseline::run`] and [`baseline`].
pub fn baseline_measures(o: &super::baseline::Options, over: Option<&[Measure]>) -> Result<i32> {
    let tc = if wants_time(&o.select, over)? { super::baseline::run(o)? } else { 0 };
    let ic = baseline(&o.select, over)?;
    Ok(tc.max(ic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callgrind::CheckpointCounts;
    use crate::stats::CountMethod;

    fn run(mean: f64) -> CgRun {
        CgRun {
            checkpoints: vec![CheckpointCounts {
                name: "parse".into(),
                calls: 10,
                mean_ir: mean,
                p50_ir: mean as u64,
                min_ir: 1,
                max_ir: 2,
                mean_l1_misses: None,
                mean_ll_misses: None,
                mean_estimated_cycles: None,
            }],
            processes: 1,
            unmatched: 0,
            wall: Duration::ZERO,
        }
    }

    fn fp() -> CountFingerprint {
        CountFingerprint {
            funcscope: "0.1.0".into(),
            rustc: "rustc 1.95.0".into(),
            target: "x86_64-unknown-linux".into(),
            valgrind: "valgrind-3.19.0".into(),
            args: vec!["--iterations".into(), "500".into()],
            cache_sim: false,
        }
    }

    #[test]
    fn baseline_round_trips_and_judges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b/instructions/codec.toml");
        let b = CountBaseline::from_runs("codec", "abc".into(), fp(), &[run(1000.0), run(1000.2), run(999.9)]);
        b.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("[checkpoints.parse.per_run]") || text.contains("per_run"), "{text}");
        assert_eq!(CountBaseline::load(&path).unwrap().as_ref(), Some(&b));
        assert_eq!(CountBaseline::load(&dir.path().join("none.toml")).unwrap(), None);
        let rule = CountRule { alpha: 0.01, correction: crate::stats::Correction::Holm, min_effect: 0.0025 };
        let arms = |base, current| [Arms { scenario: "codec", base, current, paired: false }];
        // Exact arms: +0.5 % is regressed by the deterministic floor.
        let exact = CountBaseline::from_runs("codec", "abc".into(), fp(), &[run(1000.0), run(1000.0), run(1000.0)]);
        let slower = CountBaseline::from_runs("codec", String::new(), fp(), &[run(1005.0), run(1005.0), run(1005.0)]);
        let r = judge(&arms(&exact, &slower), &rule);
        assert_eq!((r[0].comparison.verdict, r[0].comparison.method), (Verdict::Regressed, CountMethod::Exact));
        assert_eq!(exit_code(&r), crate::exit_code::REGRESSION);
        // Varying arms of 3 runs: the rank test cannot reach alpha, never a false regression.
        let noisy = CountBaseline::from_runs("codec", String::new(), fp(), &[run(1005.0), run(1005.1), run(1004.9)]);
        assert_ne!(judge(&arms(&b, &noisy), &rule)[0].comparison.verdict, Verdict::Regressed);
        let same = judge(&arms(&exact, &exact), &rule);
        assert_eq!(same[0].comparison.verdict, Verdict::Unchanged);
        assert_eq!(exit_code(&same), 0);
        let mut out = Vec::new();
        crate::report::render_instructions(&section(&r, &["n".into()], None), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("codec/parse") && out.contains("+0.500%") && out.contains("regressed exact"), "{out}");
        // Beside time: instructions unchanged while time regressed is flagged and explained.
        let time = |_: &str, c: &str| (c == "parse").then_some((Verdict::Regressed, Some(0.08)));
        let mut out = Vec::new();
        let sec = section(&same, &[], Some(&time));
        assert!(sec.rows[0].disagreement.as_deref().unwrap().starts_with("instructions unchanged, time +8.0%"));
        crate::report::render_instructions(&sec, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("+8.0%")
                && out.contains("DISAGREE codec/parse: instructions unchanged, time +8.0%: a micro-architectural"),
            "{out}"
        );
        std::fs::write(&path, "schema = 1\n").unwrap();
        assert!(CountBaseline::load(&path).unwrap_err().to_string().contains("baseline --measure instructions"));
    }

    #[test]
    fn diff_rejudges_the_current_runs_of_two_saved_sections() {
        let rule = CountRule { alpha: 0.01, correction: crate::stats::Correction::Holm, min_effect: 0.0025 };
        let of = |level: f64| {
            let b = CountBaseline::from_runs("codec", String::new(), fp(), &[run(level), run(level), run(level)]);
            section(&judge(&[Arms { scenario: "codec", base: &b, current: &b, paired: false }], &rule), &[], None)
        };
        let (a, slow) = (of(1000.0), of(1010.0));
        let json = serde_json::to_string(&slow).unwrap();
        let slow: InstructionReport = serde_json::from_str(&json).unwrap();
        let d = diff_section(&a, &slow, &rule, None);
        assert_eq!(d.rows[0].comparison.verdict, Verdict::Regressed, "{d:?}");
        assert!((d.rows[0].comparison.change - 0.01).abs() < 1e-9);
        assert_eq!(d.exit_code, crate::exit_code::REGRESSION);
        assert_eq!(diff_section(&a, &a, &rule, None).rows[0].comparison.verdict, Verdict::Unchanged);
    }

    #[test]
    fn fingerprint_ignores_the_machine_and_names_what_differs() {
        assert_eq!(fp().difference(&fp()), None);
        let other = CountFingerprint { rustc: "rustc 1.96.0".into(), ..fp() };
        assert_eq!(fp().difference(&other).unwrap(), "rustc: \"rustc 1.95.0\" -> \"rustc 1.96.0\"");
    }

    #[test]
    fn disagreements_are_explained() {
        let c = crate::stats::compare_counts(
            &[1000.0; 3],
            &[1030.0; 3],
            false,
            &CountRule { alpha: 0.01, correction: crate::stats::Correction::Holm, min_effect: 0.0025 },
        )
        .unwrap();
        assert_eq!(
            disagreement_line(Verdict::Inconclusive, Some(0.02), &c).unwrap(),
            "instructions +3.00%, time inconclusive: the machine is too noisy to see what the code does"
        );
        assert_eq!(disagreement_line(Verdict::Regressed, Some(0.03), &c), None);
        assert!(disagreement(Verdict::Regressed, Verdict::Unchanged).unwrap().contains("micro-architectural"));
        assert!(disagreement(Verdict::Inconclusive, Verdict::Regressed).unwrap().contains("too noisy"));
        assert_eq!(disagreement(Verdict::Regressed, Verdict::Regressed), None);
        assert_eq!(disagreement(Verdict::Unchanged, Verdict::Unchanged), None);
    }

    #[test]
    fn instruction_args_fix_the_work() {
        assert_eq!(
            instruction_args(&["--duration-ms".into(), "30".into()], 7),
            ["--duration-ms", "30", "--duration-ms", "0", "--iterations", "7"]
        );
    }
}
