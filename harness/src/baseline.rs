//! Committed baselines: one TOML file per scenario, `baselines/<scenario>.toml`.
//!
//! A baseline is what the gate compares against: for every checkpoint of a scenario, the run-level
//! statistics of each of the recorded process runs (one value per run and metric), how noisy they
//! were, on which machine and from which commit. It is committed next to the code, so a deliberate
//! slowdown is reviewed as a diff of this file in the same pull request.
//!
//! # The file
//!
//! ```toml
//! # funcscope baseline for scenario http_parse. Regenerate with: cargo xtask baseline --scenario http_parse
//! # Per-run arrays (min ... mean) hold one value per process run, in ns; pooled values are over all calls of all runs, in ns.
//! schema = 1
//! scenario = "http_parse"
//!
//! [recorded]
//! commit = "3f2a9c1e0b7d"
//! date = "2026-05-04T09:12:44Z"
//! runs = 4
//! funcscope = "0.1.0"
//! args = ["--requests", "200000"]
//!
//! [machine]
//! cpu_model = "AMD EPYC 9654 96-Core Processor"
//! cores = 16
//! tick_hz = 2596122000.0
//! kernel = "6.18.2"
//! rustc = "rustc 1.95.0 (2026-03-21)"
//! target = "x86_64-unknown-linux"
//!
//! [checkpoints.parse_headers]
//! calls_per_run = 200000.0
//! lost = 0
//! noise_cv = { min = 0.0088956, p50 = 0.010152, p90 = 0.013011, p99 = 0.02214, "p99.9" = 0.035871, max = 0.21, mean = 0.011 }
//! min = [81.25, 80.9, 81.6, 81.02]
//! p50 = [101.5, 100.75, 102.1, 101.0]
//! p90 = [130.0, 129.5, 131.25, 130.1]
//! p99 = [210.5, 208.0, 214.75, 209.9]
//! "p99.9" = [480.0, 470.25, 495.5, 478.0]
//! max = [15200.0, 9800.5, 21000.0, 12050.0]
//! mean = [108.4, 107.9, 109.3, 108.1]
//!
//! [checkpoints.parse_headers.pooled]
//! p50 = 101.3
//! p90 = 130.2
//! p99 = 211.0
//! "p99.9" = 481.5
//! ```
//!
//! * `schema` is [`BASELINE_SCHEMA`]. A file with another version is refused with an instruction to
//!   regenerate it, never reinterpreted: a silently misread baseline is a wrong verdict.
//! * `[recorded]`: the commit, the date (RFC 3339, UTC), the number of process runs, the funcscope
//!   version and the scenario's arguments: what a reader needs to reproduce the numbers.
//! * `[machine]`: the [`Fingerprint`]; the judge compares it with the current machine and reports a
//!   cross-machine comparison instead of gating on it.
//! * `[checkpoints.<name>]`: `calls_per_run` (mean calls per run, from the probe's exact counts),
//!   `lost` (samples lost over all runs), `noise_cv` (the run-to-run robust coefficient of
//!   variation of each metric, [`noise_cv`]) and one array per [`Metric`] with the metric's value in
//!   each run, in ns: the data the tests compare. `[checkpoints.<name>.pooled]` holds p50 ... p99.9
//!   over all calls of all runs pooled, for people reading the file (and for plots), never for tests.
//!
//! # Why it looks like this
//!
//! * **Per-run arrays, not one number.** The process run is the unit of replication (see
//!   [`crate::stats`]); the test needs the baseline's run-to-run spread, so every run's value is kept.
//! * **Stable text.** Keys are written in a fixed order (metrics in [`Metric::ALL`] order, checkpoints
//!   sorted by name), each array on one line, and values are rounded (ns to 2 decimals, cv to 5
//!   significant digits) so that regenerating an unchanged baseline changes only the numbers that
//!   moved, and a PR diff shows one line per changed metric. Writing the same [`Baseline`] twice gives
//!   identical bytes. The text is written by hand rather than through serde so that the order, the
//!   inline `noise_cv` table and the comment header are under our control.
//! * **Rounded in memory too.** [`Baseline::from_runs`] rounds as it builds, and computes `noise_cv`
//!   from the rounded values, so the baseline in memory is exactly the one a later [`load`] returns.
//! * **Atomic writes.** [`Baseline::save_atomic`] writes a temporary file in the target directory,
//!   fsyncs it and renames it over the old one: an interrupted `cargo xtask baseline` leaves the old
//!   baseline or the new one, never half a file.
//! * **Loud, located errors.** A baseline is edited by hand, merged and rebased; a broken one must
//!   say where. Every [`load`] error names the file, the 1-based line and the field (e.g.
//!   `baselines/http_parse.toml:17: field checkpoints.parse_headers.p50: value -3 at index 1 (run 2)
//!   is not a positive duration; regenerate the baseline with cargo xtask baseline --scenario
//!   http_parse`). Lines come from the TOML parser's spans ([`toml::Spanned`]), exact to the value.
//! * **No partial data.** [`Baseline::from_runs`] refuses runs where a checkpoint is missing or has
//!   no samples in some run, and fewer than [`MIN_RUNS`] runs: a baseline recorded from incomplete
//!   runs would gate future builds against numbers that were never measured.
//!
//! Invariants of a [`Baseline`] returned by [`load`] or [`Baseline::from_runs`]: `schema ==
//! BASELINE_SCHEMA`; `recorded.runs >= MIN_RUNS`; at least one checkpoint; every checkpoint has one
//! array per metric, each of length `recorded.runs`, with finite values `> 0` that satisfy, run by
//! run, `min <= p50 <= p90 <= p99 <= p99.9 <= max` and `min <= mean <= max`; `noise_cv` has every
//! metric, finite and `>= 0`; pooled values are finite and `> 0`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::fingerprint::Fingerprint;
use crate::model::RunResult;
use crate::stats::{noise_cv, Metric};

/// Version of the baseline file format. Bumped on any change an older reader would misread; files
/// of another version are refused (regenerate them), not converted.
pub const BASELINE_SCHEMA: u32 = 1;

/// The fewest process runs a baseline may hold: a run-to-run spread (and so [`noise_cv`] and every
/// test in [`crate::stats`]) needs at least two values.
pub const MIN_RUNS: usize = 2;

/// Decimals kept for nanosecond values in the file: 0.01 ns is far below the probe's resolution
/// (one tick is ~0.3 ns at 3 GHz) and keeps the diff free of float noise.
const NS_DECIMALS: i32 = 2;

/// Significant digits kept for `noise_cv`: a cv is read as "about 1.2%", five digits are plenty.
const CV_SIGNIFICANT_DIGITS: usize = 5;

/// Where and from what a baseline was recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// The commit the scenario was built from (`git rev-parse HEAD`, possibly with a `-dirty` suffix).
    pub commit: String,
    /// When, RFC 3339 in UTC (`2026-05-04T09:12:44Z`).
    pub date: String,
    /// Measured process runs (warm-up excluded); `>= MIN_RUNS`. [`Baseline::from_runs`] sets it from
    /// the runs it is given.
    pub runs: usize,
    /// funcscope version that recorded it (`CARGO_PKG_VERSION`).
    pub funcscope: String,
    /// The scenario's arguments.
    pub args: Vec<String>,
}

/// Statistics pooled over every call of every run of one checkpoint, in ns. Informational: tests
/// compare the per-run arrays, never these.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pooled {
    /// Median call; `> 0`.
    pub p50: f64,
    /// 90th percentile; `> 0`.
    pub p90: f64,
    /// 99th percentile; `> 0`.
    pub p99: f64,
    /// 99.9th percentile; `> 0`.
    #[serde(rename = "p99.9")]
    pub p999: f64,
}

impl Pooled {
    /// The pooled metrics, in file order.
    pub const METRICS: [Metric; 4] = [Metric::P50, Metric::P90, Metric::P99, Metric::P999];

    /// The pooled value of `metric`; `None` for min, max and mean, which are not pooled.
    pub const fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::P50 => Some(self.p50),
            Metric::P90 => Some(self.p90),
            Metric::P99 => Some(self.p99),
            Metric::P999 => Some(self.p999),
            Metric::Min | Metric::Max | Metric::Mean => None,
        }
    }

    fn rounded(self) -> Pooled {
        Pooled { p50: round_ns(self.p50), p90: round_ns(self.p90), p99: round_ns(self.p99), p999: round_ns(self.p999) }
    }
}

/// One checkpoint of a baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointBaseline {
    /// Mean calls per run (the probe's exact counts); finite, `>= 0`.
    pub calls_per_run: f64,
    /// Samples lost to ring overrun over all runs.
    pub lost: u64,
    /// Run-to-run robust coefficient of variation of each metric ([`noise_cv`]); every metric,
    /// finite, `>= 0`.
    pub noise_cv: BTreeMap<Metric, f64>,
    /// Per-run values in ns, one array per metric, each of length `recorded.runs`.
    pub runs: BTreeMap<Metric, Vec<f64>>,
    /// Pooled quantiles in ns.
    pub pooled: Pooled,
}

/// A scenario's committed baseline. See the module documentation for the file and its invariants.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    /// [`BASELINE_SCHEMA`].
    pub schema: u32,
    /// Scenario name (the file is `baselines/<scenario>.toml`).
    pub scenario: String,
    /// Commit, date, runs, version, arguments.
    pub recorded: Recorded,
    /// The machine it was recorded on.
    pub machine: Fingerprint,
    /// Per checkpoint name; at least one.
    pub checkpoints: BTreeMap<String, CheckpointBaseline>,
    /// The reference workload's speed next to each run, for drift correction (absent in
    /// baselines recorded without it).
    pub reference: Option<ReferenceRuns>,
}

/// `[reference]`: how fast the machine was during each recorded run, measured by the harness's
/// reference workload in a run next to it (see [`crate::drift`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceRuns {
    /// The reference build ([`crate::drift::reference_build`]); values of another build are not
    /// comparable and are ignored, never used.
    pub workload: String,
    /// Per metric, per run (aligned with the checkpoints' per-run arrays): the reference
    /// checkpoint's value in ns.
    pub runs: BTreeMap<Metric, Vec<f64>>,
}

/// Why a baseline could not be loaded, built or saved. Every variant names the file (or, for
/// [`Baseline::from_runs`], the scenario) and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// There is no baseline file: the scenario has no baseline yet (not an error for `regress`,
    /// which reports "no baseline").
    #[error("{}: no baseline file; record one with cargo xtask baseline --scenario {}", path.display(), stem(path))]
    NotFound {
        /// The path looked for.
        path: PathBuf,
    },
    /// Reading, writing, syncing or renaming failed.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (`"read"`, `"create directory"`, `"write"`, ...).
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error(
        "{}:{line}:{column}: {}TOML syntax error: {message}; fix the file or regenerate it with cargo xtask baseline --scenario {}",
        path.display(),
        field.as_deref().map(|f| format!("field {f}: ")).unwrap_or_default(),
        stem(path)
    )]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// The field the error is in, when the line has one.
        field: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// Valid TOML with a field missing, of the wrong type, or unknown (e.g. a metric `p95`).
    #[error(
        "{}:{line}: field {field}: {message}; regenerate the baseline with cargo xtask baseline --scenario {scenario}",
        path.display()
    )]
    Field {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Dotted path of the field (`checkpoints.parse_headers.p50`).
        field: String,
        /// What is wrong (from the deserializer).
        message: String,
        /// The scenario, for the regeneration hint.
        scenario: String,
    },
    /// The file was written by a funcscope with another baseline format.
    #[error(
        "{}:{line}: field schema: baseline schema version {found} is not supported (this funcscope reads version {BASELINE_SCHEMA}); regenerate the baseline with cargo xtask baseline --scenario {scenario}",
        path.display()
    )]
    Schema {
        /// The file.
        path: PathBuf,
        /// 1-based line of `schema`.
        line: usize,
        /// The version found.
        found: i64,
        /// The scenario, for the regeneration hint.
        scenario: String,
    },
    /// Well-formed but semantically wrong: arrays of different lengths, a non-positive duration,
    /// fewer than [`MIN_RUNS`] runs, percentiles out of order...
    #[error(
        "{}:{line}: field {field}: {message}; regenerate the baseline with cargo xtask baseline --scenario {scenario}",
        path.display()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Dotted path of the field.
        field: String,
        /// What is wrong, with the checkpoint, metric and index where they apply.
        message: String,
        /// The scenario, for the regeneration hint.
        scenario: String,
    },
    /// [`Baseline::from_runs`]: a checkpoint is missing, or has no samples, in some run.
    #[error("scenario {scenario}: checkpoint {checkpoint}: {reason}; a baseline is never recorded from partial runs")]
    PartialRuns {
        /// The scenario.
        scenario: String,
        /// The checkpoint.
        checkpoint: String,
        /// What is missing and in which run.
        reason: String,
    },
    /// [`Baseline::from_runs`]: the runs cannot make a valid baseline (too few runs, a non-positive
    /// duration, a run of another scenario, ...).
    #[error("scenario {scenario}: cannot record a baseline: field {field}: {message}")]
    Refused {
        /// The scenario.
        scenario: String,
        /// Dotted path of the field that would be wrong.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// The file stem of `path`, for "regenerate with --scenario <stem>" hints.
fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "<scenario>".into())
}

/// `dir/<scenario>.toml`: where a scenario's baseline lives under the baselines directory.
pub fn path_for(dir: &Path, scenario: &str) -> PathBuf {
    dir.join(format!("{scenario}.toml"))
}

impl Baseline {
    /// The reference speed per run for `metric`, if recorded with the current reference build.
    pub fn reference_speed(&self, metric: Metric) -> Option<&[f64]> {
        self.reference
            .as_ref()
            .filter(|r| r.workload == crate::drift::reference_build())
            .and_then(|r| r.runs.get(&metric))
            .map(Vec::as_slice)
    }

    /// Attaches the reference runs (one per recorded run, in run order) measured by the current
    /// reference build. Values are rounded like other ns values.
    pub fn with_reference(mut self, runs: &[RunResult]) -> Result<Baseline, BaselineError> {
        let refuse = |message: String| BaselineError::Refused {
            scenario: self.scenario.clone(),
            field: "reference".into(),
            message,
        };
        if runs.len() != self.recorded.runs {
            return Err(refuse(format!("{} reference runs for {} runs", runs.len(), self.recorded.runs)));
        }
        let mut by_metric = BTreeMap::new();
        for m in Metric::ALL {
            let v: Option<Vec<f64>> = runs.iter().map(|r| crate::drift::speed(r, m).map(round_ns)).collect();
            let v = v.ok_or_else(|| {
                refuse(format!("a reference run has no {} samples", crate::drift::REFERENCE_CHECKPOINT))
            })?;
            by_metric.insert(m, v);
        }
        self.reference = Some(ReferenceRuns { workload: crate::drift::reference_build(), runs: by_metric });
        Ok(self)
    }

    /// The per-run values (ns) of `metric` at `checkpoint`, one per recorded run.
    pub fn values(&self, checkpoint: &str, metric: Metric) -> Option<&[f64]> {
        self.checkpoints.get(checkpoint)?.runs.get(&metric).map(Vec::as_slice)
    }

    /// The recorded run-to-run noise (robust cv) of `metric` at `checkpoint`.
    pub fn noise(&self, checkpoint: &str, metric: Metric) -> Option<f64> {
        self.checkpoints.get(checkpoint)?.noise_cv.get(&metric).copied()
    }

    /// The pooled value (ns) of `metric` at `checkpoint`; `None` for metrics that are not pooled.
    pub fn pooled(&self, checkpoint: &str, metric: Metric) -> Option<f64> {
        self.checkpoints.get(checkpoint)?.pooled.get(metric)
    }

    /// Builds a baseline from measured runs.
    ///
    /// Per checkpoint: the per-run arrays are each run's [`RunSummary`](crate::stats::RunSummary)
    /// values, rounded to 0.01 ns; `noise_cv` is [`noise_cv`] of each rounded array, rounded to 5
    /// significant digits; `lost` is summed over runs; `calls_per_run` is the mean of the probe's
    /// counts. `pooled` must have an entry for every checkpoint and no other. `recorded.runs` is set
    /// to `runs.len()`; `schema` to [`BASELINE_SCHEMA`].
    ///
    /// # Errors
    /// [`BaselineError::PartialRuns`] if a checkpoint is missing, or has no summary, in some run
    /// (naming the checkpoint and the run); [`BaselineError::Refused`] for fewer than [`MIN_RUNS`]
    /// runs, a run of another scenario, no checkpoints, a missing or extra pooled entry, or values
    /// that break the invariants (e.g. a zero duration).
    pub fn from_runs(
        scenario: &str,
        runs: &[RunResult],
        pooled: &BTreeMap<String, Pooled>,
        machine: Fingerprint,
        recorded: Recorded,
    ) -> Result<Baseline, BaselineError> {
        let refused = |field: &str, message: String| BaselineError::Refused {
            scenario: scenario.to_owned(),
            field: field.to_owned(),
            message,
        };
        if runs.len() < MIN_RUNS {
            return Err(refused(
                "recorded.runs",
                format!("{} run(s) given, at least {MIN_RUNS} needed to measure run-to-run noise", runs.len()),
            ));
        }
        if let Some((i, r)) = runs.iter().enumerate().find(|(_, r)| r.scenario != scenario) {
            return Err(refused("scenario", format!("run {} is of scenario {:?}", i + 1, r.scenario)));
        }
        let names: std::collections::BTreeSet<&String> = runs.iter().flat_map(|r| r.checkpoints.keys()).collect();
        if names.is_empty() {
            return Err(refused("checkpoints", "no run recorded any checkpoint".into()));
        }
        if let Some(extra) = pooled.keys().find(|k| !names.contains(k)) {
            return Err(refused(
                &format!("checkpoints.{}.pooled", key(extra)),
                "pooled statistics given for a checkpoint that no run recorded".into(),
            ));
        }
        let mut checkpoints = BTreeMap::new();
        for name in names {
            let mut per_metric: BTreeMap<Metric, Vec<f64>> = Metric::ALL.iter().map(|&m| (m, Vec::new())).collect();
            let (mut lost, mut count) = (0u64, 0f64);
            for (i, run) in runs.iter().enumerate() {
                let partial = |reason: String| BaselineError::PartialRuns {
                    scenario: scenario.to_owned(),
                    checkpoint: name.clone(),
                    reason,
                };
                let cp = run
                    .checkpoints
                    .get(name)
                    .ok_or_else(|| partial(format!("missing in run {} of {}", i + 1, runs.len())))?;
                let summary = cp.summary.as_ref().ok_or_else(|| {
                    partial(format!("no samples were read in run {} of {} (probe level Lite?)", i + 1, runs.len()))
                })?;
                for m in Metric::ALL {
                    per_metric.get_mut(&m).expect("every metric was inserted above").push(round_ns(summary.get(m)));
                }
                lost = lost.saturating_add(cp.lost);
                count += cp.count as f64;
            }
            let field = |k: &str| format!("checkpoints.{}.{k}", key(name));
            let mut cvs = BTreeMap::new();
            for (&m, values) in &per_metric {
                let cv = noise_cv(values).map_err(|e| refused(&field(m.as_str()), e.to_string()))?;
                cvs.insert(m, round_cv(cv));
            }
            let pooled = pooled
                .get(name)
                .ok_or_else(|| refused(&field("pooled"), "no pooled statistics given for this checkpoint".into()))?;
            checkpoints.insert(
                name.clone(),
                CheckpointBaseline {
                    calls_per_run: round_ns(count / runs.len() as f64),
                    lost,
                    noise_cv: cvs,
                    runs: per_metric,
                    pooled: pooled.rounded(),
                },
            );
        }
        let baseline = Baseline {
            schema: BASELINE_SCHEMA,
            scenario: scenario.to_owned(),
            recorded: Recorded { runs: runs.len(), ..recorded },
            machine,
            checkpoints,
            reference: None,
        };
        check(&baseline).map_err(|p| refused(&p.field, p.message))?;
        Ok(baseline)
    }

    /// The file text: deterministic (same baseline, same bytes), keys in a fixed order, one array
    /// per line, values rounded as described in the module documentation.
    pub fn to_toml_string(&self) -> String {
        let mut s = String::new();
        // `writeln!` into a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(
            s,
            "# funcscope baseline for scenario {0}. Regenerate with: cargo xtask baseline --scenario {0}",
            self.scenario
        );
        let _ = writeln!(
            s,
            "# Per-run arrays (min ... mean) hold one value per process run, in ns; \
             pooled values are over all calls of all runs, in ns."
        );
        let _ = writeln!(s, "schema = {}", self.schema);
        let _ = writeln!(s, "scenario = {}", string(&self.scenario));
        let r = &self.recorded;
        let _ = writeln!(s, "\n[recorded]");
        let _ = writeln!(s, "commit = {}", string(&r.commit));
        let _ = writeln!(s, "date = {}", string(&r.date));
        let _ = writeln!(s, "runs = {}", r.runs);
        let _ = writeln!(s, "funcscope = {}", string(&r.funcscope));
        let args: Vec<String> = r.args.iter().map(|a| string(a)).collect();
        let _ = writeln!(s, "args = [{}]", args.join(", "));
        let _ = writeln!(s, "\n[machine]");
        // The fingerprint is a flat struct of scalars: serde writes `key = value` lines in field order.
        match toml::to_string(&self.machine) {
            Ok(machine) => s.push_str(&machine),
            Err(e) => {
                debug_assert!(false, "a Fingerprint always serializes: {e}");
            }
        }
        if let Some(r) = &self.reference {
            let _ = writeln!(
                s,
                "\n# Machine speed next to each run: the reference workload's {} per run, in ns.",
                crate::drift::REFERENCE_CHECKPOINT
            );
            let _ = writeln!(s, "[reference]");
            let _ = writeln!(s, "workload = {}", string(&r.workload));
            for (m, values) in &r.runs {
                let values: Vec<String> = values.iter().map(|v| float(round_ns(*v))).collect();
                let _ = writeln!(s, "{} = [{}]", key(m.as_str()), values.join(", "));
            }
        }
        for (name, cp) in &self.checkpoints {
            let _ = writeln!(s, "\n[checkpoints.{}]", key(name));
            let _ = writeln!(s, "calls_per_run = {}", float(round_ns(cp.calls_per_run)));
            let _ = writeln!(s, "lost = {}", cp.lost);
            let cvs: Vec<String> =
                cp.noise_cv.iter().map(|(m, v)| format!("{} = {}", key(m.as_str()), float(round_cv(*v)))).collect();
            let _ = writeln!(s, "noise_cv = {{ {} }}", cvs.join(", "));
            for (m, values) in &cp.runs {
                let values: Vec<String> = values.iter().map(|v| float(round_ns(*v))).collect();
                let _ = writeln!(s, "{} = [{}]", key(m.as_str()), values.join(", "));
            }
            let _ = writeln!(s, "\n[checkpoints.{}.pooled]", key(name));
            for m in Pooled::METRICS {
                if let Some(v) = cp.pooled.get(m) {
                    let _ = writeln!(s, "{} = {}", key(m.as_str()), float(round_ns(v)));
                }
            }
        }
        s
    }

    /// Writes the baseline to `path` atomically: a temporary file in the same directory (created if
    /// needed), written, fsynced, renamed over `path`, and the directory fsynced. Readers see the old
    /// file or the new one, never a partial one; on error no temporary file is left behind.
    ///
    /// # Errors
    /// [`BaselineError::Io`] naming the path and the step that failed.
    pub fn save_atomic(&self, path: &Path) -> Result<(), BaselineError> {
        fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> BaselineError {
            let path = path.to_owned();
            move |source| BaselineError::Io { path, action, source }
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).map_err(io(dir, "create directory"))?;
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Dropping the NamedTempFile on any error path deletes it.
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io(dir, "create a temporary file in"))?;
        tmp.write_all(self.to_toml_string().as_bytes()).map_err(io(tmp.path(), "write"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // tempfile creates 0600; a committed file should be readable like any other source file.
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(io(tmp.path(), "set permissions of"))?;
        }
        tmp.as_file().sync_all().map_err(io(tmp.path(), "fsync"))?;
        tmp.persist(path).map_err(|e| BaselineError::Io {
            path: path.to_owned(),
            action: "rename onto",
            source: e.error,
        })?;
        // Make the rename itself durable. Best effort: not every platform can fsync a directory.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Reads and validates a baseline file; the same as [`Baseline::load`].
///
/// # Errors
/// [`BaselineError::NotFound`] if the file does not exist; [`BaselineError::Io`] if it cannot be
/// read; [`BaselineError::Syntax`] for invalid TOML; [`BaselineError::Schema`] for another schema
/// version; [`BaselineError::Field`] for a missing, mistyped or unknown field;
/// [`BaselineError::Invalid`] for a value that breaks the invariants in the module documentation.
/// Each names the file, the 1-based line and the field.
pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
    Baseline::load(path)
}

impl Baseline {
    /// Reads and validates a baseline file.
    ///
    /// # Errors
    /// [`BaselineError::NotFound`] if the file does not exist; [`BaselineError::Io`] if it cannot
    /// be read; otherwise as [`Baseline::parse`]. Each names the file, the 1-based line and the
    /// field.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BaselineError::NotFound { path: path.to_owned() })
            }
            Err(source) => return Err(BaselineError::Io { path: path.to_owned(), action: "read", source }),
        };
        Baseline::parse(&text, path)
    }

    /// Parses and validates baseline text; `path` is only used in error messages.
    ///
    /// # Errors
    /// [`BaselineError::Syntax`] for invalid TOML; [`BaselineError::Schema`] for another schema
    /// version; [`BaselineError::Field`] for a missing, mistyped or unknown field;
    /// [`BaselineError::Invalid`] for a value that breaks the invariants in the module documentation.
    pub fn parse(text: &str, path: &Path) -> Result<Baseline, BaselineError> {
        // 1. Syntax, separately from structure, so that the two get different variants.
        if let Err(e) = text.parse::<toml::Table>() {
            let offset = e.span().map_or(0, |s| s.start);
            let (line, column) = line_col(text, offset);
            let field = field_at(text, offset, e.message());
            return Err(BaselineError::Syntax {
                path: path.to_owned(),
                line,
                column,
                field,
                message: e.message().to_owned(),
            });
        }
        // 2. The schema version first: a file of another version may have any structure, and "regenerate
        // it" is the useful message, not "missing field".
        #[derive(Deserialize)]
        struct Head {
            schema: Option<Spanned<toml::Value>>,
            scenario: Option<toml::Value>,
        }
        let head: Head = toml::from_str(text).map_err(|e| serde_error(text, path, &stem(path), &e))?;
        let scenario = match head.scenario {
            Some(toml::Value::String(s)) if !s.is_empty() => s,
            _ => stem(path),
        };
        if let Some(schema) = &head.schema {
            if let toml::Value::Integer(found) = schema.get_ref() {
                if *found != i64::from(BASELINE_SCHEMA) {
                    return Err(BaselineError::Schema {
                        path: path.to_owned(),
                        line: line_col(text, schema.span().start).0,
                        found: *found,
                        scenario,
                    });
                }
            }
        }
        // 3. Structure: every field present, of the right type, none unknown.
        let raw: RawBaseline = toml::from_str(text).map_err(|e| serde_error(text, path, &scenario, &e))?;
        // 4. Meaning.
        let (baseline, spans) = raw.into_baseline();
        check(&baseline).map_err(|p| {
            let offset = spans
                .get(&p.field)
                .map(|s| p.index.and_then(|i| s.elems.get(i)).unwrap_or(&s.whole).start)
                .or_else(|| header_offset(text, &p.field))
                .unwrap_or(0);
            BaselineError::Invalid {
                path: path.to_owned(),
                line: line_col(text, offset).0,
                field: p.field,
                message: p.message,
                scenario: scenario.clone(),
            }
        })?;
        Ok(baseline)
    }
}

/// A broken invariant, located by field path (as written in messages) and array index.
struct Problem {
    field: String,
    index: Option<usize>,
    message: String,
}

/// Checks the invariants listed in the module documentation; the first violation wins, in file
/// order, so a message points at the topmost problem.
fn check(b: &Baseline) -> Result<(), Problem> {
    let problem = |field: String, index: Option<usize>, message: String| Err(Problem { field, index, message });
    if b.schema != BASELINE_SCHEMA {
        return problem("schema".into(), None, format!("version {} is not {BASELINE_SCHEMA}", b.schema));
    }
    if b.scenario.is_empty() {
        return problem("scenario".into(), None, "the scenario name is empty".into());
    }
    let runs = b.recorded.runs;
    if runs < MIN_RUNS {
        return problem(
            "recorded.runs".into(),
            None,
            format!("{runs} run(s) recorded, at least {MIN_RUNS} needed to measure run-to-run noise"),
        );
    }
    if !is_rfc3339_utc(&b.recorded.date) {
        return problem(
            "recorded.date".into(),
            None,
            format!("{:?} is not an RFC 3339 UTC date like 2026-05-04T09:12:44Z", b.recorded.date),
        );
    }
    if b.checkpoints.is_empty() {
        return problem("checkpoints".into(), None, "no checkpoints".into());
    }
    if let Some(r) = &b.reference {
        for (m, v) in &r.runs {
            let field = format!("reference.{}", key(m.as_str()));
            if v.len() != runs {
                return problem(field, None, format!("{} values for {runs} runs", v.len()));
            }
            if let Some(i) = v.iter().position(|x| !(x.is_finite() && *x > 0.0)) {
                return problem(field, Some(i), format!("{} is not a positive duration", v[i]));
            }
        }
    }
    for (name, cp) in &b.checkpoints {
        let field = |k: &str| format!("checkpoints.{}.{}", key(name), key(k));
        if !(cp.calls_per_run.is_finite() && cp.calls_per_run >= 0.0) {
            return problem(field("calls_per_run"), None, format!("{} is not a finite count >= 0", cp.calls_per_run));
        }
        for m in Metric::ALL {
            match cp.noise_cv.get(&m) {
                None => return problem(field("noise_cv"), None, format!("no value for metric {m}")),
                Some(v) if !(v.is_finite() && *v >= 0.0) => {
                    return problem(
                        format!("{}.{}", field("noise_cv"), key(m.as_str())),
                        None,
                        format!("{v} is not a finite coefficient of variation >= 0"),
                    )
                }
                Some(_) => {}
            }
        }
        for m in Metric::ALL {
            let Some(values) = cp.runs.get(&m) else {
                return problem(field(m.as_str()), None, "missing per-run array".into());
            };
            if values.len() != runs {
                return problem(
                    field(m.as_str()),
                    None,
                    format!(
                        "{} value(s), but recorded.runs = {runs}: every per-run array needs one value per run{}",
                        values.len(),
                        lengths(cp)
                    ),
                );
            }
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v > 0.0)) {
                return problem(
                    field(m.as_str()),
                    Some(i),
                    format!("value {v} at index {i} (run {}) is not a positive duration", i + 1),
                );
            }
        }
        // Order within each run: the metrics are order statistics of the same samples.
        let order = [
            (Metric::Min, Metric::P50),
            (Metric::P50, Metric::P90),
            (Metric::P90, Metric::P99),
            (Metric::P99, Metric::P999),
            (Metric::P999, Metric::Max),
            (Metric::Min, Metric::Mean),
            (Metric::Mean, Metric::Max),
        ];
        for (lo, hi) in order {
            let (a, b) = (&cp.runs[&lo], &cp.runs[&hi]);
            if let Some(i) = (0..runs).find(|&i| a[i] > b[i]) {
                return problem(
                    field(hi.as_str()),
                    Some(i),
                    format!(
                        "at index {i} (run {}) {hi} = {} is below {lo} = {}; per-run values must satisfy \
                         min <= p50 <= p90 <= p99 <= p99.9 <= max and min <= mean <= max",
                        i + 1,
                        b[i],
                        a[i]
                    ),
                );
            }
        }
        for m in Pooled::METRICS {
            let v = cp.pooled.get(m).unwrap_or(f64::NAN);
            if !(v.is_finite() && v > 0.0) {
                return problem(
                    format!("{}.{}", field("pooled"), key(m.as_str())),
                    None,
                    format!("value {v} is not a positive duration"),
                );
            }
        }
    }
    Ok(())
}

/// `" (min has 4, p50 has 3, ...)"` when the arrays of a checkpoint differ in length, else `""`.
fn lengths(cp: &CheckpointBaseline) -> String {
    let lens: Vec<usize> = cp.runs.values().map(Vec::len).collect();
    if lens.windows(2).all(|w| w[0] == w[1]) {
        return String::new();
    }
    let parts: Vec<String> = cp.runs.iter().map(|(m, v)| format!("{m} has {}", v.len())).collect();
    format!(" ({})", parts.join(", "))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`: the UTC form of RFC 3339 the recorder writes.
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let base = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && (at(10, b'T') || at(10, b't'))
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19);
    let rest = b.get(19..).unwrap_or_default();
    let rest = match rest.strip_prefix(b".") {
        Some(frac) => {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return false;
            }
            &frac[n..]
        }
        None => rest,
    };
    base && (rest == b"Z" || rest == b"z")
}

// ---------------------------------------------------------------------------------------------
// Reading: raw serde structs with spans, converted into the public types.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    schema: Spanned<u32>,
    scenario: Spanned<String>,
    recorded: RawRecorded,
    machine: Fingerprint,
    #[serde(default)]
    reference: Option<RawReference>,
    checkpoints: BTreeMap<String, RawCheckpoint>,
}

/// `[reference]`: `workload` plus one array per metric (explicit fields: spans do not survive
/// serde's `flatten`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReference {
    workload: String,
    min: RawArray,
    p50: RawArray,
    p90: RawArray,
    p99: RawArray,
    #[serde(rename = "p99.9")]
    p999: RawArray,
    max: RawArray,
    mean: RawArray,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecorded {
    commit: String,
    date: Spanned<String>,
    runs: Spanned<usize>,
    funcscope: String,
    args: Vec<String>,
}

type RawArray = Spanned<Vec<Spanned<f64>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpoint {
    calls_per_run: Spanned<f64>,
    lost: u64,
    noise_cv: Spanned<RawNoise>,
    min: RawArray,
    p50: RawArray,
    p90: RawArray,
    p99: RawArray,
    #[serde(rename = "p99.9")]
    p999: RawArray,
    max: RawArray,
    mean: RawArray,
    pooled: RawPooled,
}

/// `noise_cv`: one value per metric, unknown keys refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoise {
    min: Option<Spanned<f64>>,
    p50: Option<Spanned<f64>>,
    p90: Option<Spanned<f64>>,
    p99: Option<Spanned<f64>>,
    #[serde(rename = "p99.9")]
    p999: Option<Spanned<f64>>,
    max: Option<Spanned<f64>>,
    mean: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPooled {
    p50: Spanned<f64>,
    p90: Spanned<f64>,
    p99: Spanned<f64>,
    #[serde(rename = "p99.9")]
    p999: Spanned<f64>,
}

/// Byte ranges of a field's value and, for arrays, of each element.
struct SpanInfo {
    whole: Range<usize>,
    elems: Vec<Range<usize>>,
}

impl RawBaseline {
    /// The public baseline, and the spans of its fields keyed by the field paths [`check`] uses.
    fn into_baseline(self) -> (Baseline, HashMap<String, SpanInfo>) {
        let mut spans = HashMap::new();
        let mut span = |field: String, whole: Range<usize>, elems: Vec<Range<usize>>| {
            spans.insert(field, SpanInfo { whole, elems });
        };
        span("schema".into(), self.schema.span(), vec![]);
        span("scenario".into(), self.scenario.span(), vec![]);
        span("recorded.runs".into(), self.recorded.runs.span(), vec![]);
        span("recorded.date".into(), self.recorded.date.span(), vec![]);
        let mut checkpoints = BTreeMap::new();
        for (name, raw) in self.checkpoints {
            let field = |k: &str| format!("checkpoints.{}.{}", key(&name), key(k));
            span(field("calls_per_run"), raw.calls_per_run.span(), vec![]);
            span(field("noise_cv"), raw.noise_cv.span(), vec![]);
            let noise = raw.noise_cv.into_inner();
            let noise = [
                (Metric::Min, noise.min),
                (Metric::P50, noise.p50),
                (Metric::P90, noise.p90),
                (Metric::P99, noise.p99),
                (Metric::P999, noise.p999),
                (Metric::Max, noise.max),
                (Metric::Mean, noise.mean),
            ];
            let mut noise_cv = BTreeMap::new();
            for (m, v) in noise.into_iter().filter_map(|(m, v)| Some((m, v?))) {
                span(format!("{}.{}", field("noise_cv"), key(m.as_str())), v.span(), vec![]);
                noise_cv.insert(m, v.into_inner());
            }
            let arrays = [
                (Metric::Min, raw.min),
                (Metric::P50, raw.p50),
                (Metric::P90, raw.p90),
                (Metric::P99, raw.p99),
                (Metric::P999, raw.p999),
                (Metric::Max, raw.max),
                (Metric::Mean, raw.mean),
            ];
            let mut runs = BTreeMap::new();
            for (m, array) in arrays {
                let whole = array.span();
                let values = array.into_inner();
                span(field(m.as_str()), whole, values.iter().map(Spanned::span).collect());
                runs.insert(m, values.into_iter().map(Spanned::into_inner).collect());
            }
            let p = raw.pooled;
            for (m, v) in [(Metric::P50, &p.p50), (Metric::P90, &p.p90), (Metric::P99, &p.p99), (Metric::P999, &p.p999)]
            {
                span(format!("{}.{}", field("pooled"), key(m.as_str())), v.span(), vec![]);
            }
            let pooled = Pooled {
                p50: p.p50.into_inner(),
                p90: p.p90.into_inner(),
                p99: p.p99.into_inner(),
                p999: p.p999.into_inner(),
            };
            let cp = CheckpointBaseline {
                calls_per_run: raw.calls_per_run.into_inner(),
                lost: raw.lost,
                noise_cv,
                runs,
                pooled,
            };
            checkpoints.insert(name, cp);
        }
        let r = self.recorded;
        let baseline = Baseline {
            schema: self.schema.into_inner(),
            scenario: self.scenario.into_inner(),
            recorded: Recorded {
                commit: r.commit,
                date: r.date.into_inner(),
                runs: r.runs.into_inner(),
                funcscope: r.funcscope,
                args: r.args,
            },
            machine: self.machine,
            checkpoints,
            reference: self.reference.map(|r| {
                let mut runs = BTreeMap::new();
                let arrays = [
                    (Metric::Min, r.min),
                    (Metric::P50, r.p50),
                    (Metric::P90, r.p90),
                    (Metric::P99, r.p99),
                    (Metric::P999, r.p999),
                    (Metric::Max, r.max),
                    (Metric::Mean, r.mean),
                ];
                for (m, array) in arrays {
                    let whole = array.span();
                    let values = array.into_inner();
                    span(format!("reference.{}", key(m.as_str())), whole, values.iter().map(Spanned::span).collect());
                    runs.insert(m, values.into_iter().map(Spanned::into_inner).collect());
                }
                ReferenceRuns { workload: r.workload, runs }
            }),
        };
        (baseline, spans)
    }
}

/// A deserializer error (missing, mistyped or unknown field) as [`BaselineError::Field`].
fn serde_error(text: &str, path: &Path, scenario: &str, e: &toml::de::Error) -> BaselineError {
    let offset = e.span().map_or(0, |s| s.start);
    BaselineError::Field {
        path: path.to_owned(),
        line: line_col(text, offset).0,
        field: field_at(text, offset, e.message()).unwrap_or_else(|| "(top level)".into()),
        message: e.message().to_owned(),
        scenario: scenario.to_owned(),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The dotted field path at byte `offset`: the enclosing `[table]` header plus the key on that line,
/// or, for "missing field `x`" errors (whose span is the table header, or empty for the top
/// level), the table plus `x`. `None` if nothing can be named.
fn field_at(text: &str, offset: usize, message: &str) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let missing = message.strip_prefix("missing field `").and_then(|m| m.split_once('`')).map(|(name, _)| key(name));
    let join = |table: &str, k: &str| if table.is_empty() { k.to_owned() } else { format!("{table}.{k}") };
    if line.starts_with('[') {
        let table = header_name(line);
        return Some(match missing {
            Some(m) => join(&table, &m),
            None => table,
        });
    }
    // The nearest header above this line, if any.
    let table = text[..line_start].lines().rev().map(str::trim).find(|l| l.starts_with('[')).map(header_name);
    let table = table.unwrap_or_default();
    if let Some(m) = missing {
        return Some(join(&table, &m));
    }
    let k = line.split_once('=').map(|(k, _)| k.trim()).filter(|k| !k.is_empty() && !k.starts_with('#'));
    match k {
        Some(k) => Some(join(&table, k)),
        None if !table.is_empty() => Some(table),
        None => None,
    }
}

/// `checkpoints.a` from `[checkpoints.a]` (or `[[...]]`), comments stripped.
fn header_name(line: &str) -> String {
    let inner = line.trim_start_matches('[');
    let end = inner.rfind(']').unwrap_or(inner.len());
    inner[..end].trim_end_matches(']').trim().to_owned()
}

/// Byte offset of the `[table]` header that is the longest prefix of `field` (for problems that have
/// no span of their own, like an absent `noise_cv` entry).
fn header_offset(text: &str, field: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None; // (prefix length, offset)
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            let name = header_name(t);
            let is_prefix = field == name || field.starts_with(&format!("{name}."));
            if is_prefix && best.is_none_or(|(len, _)| name.len() > len) {
                best = Some((name.len(), offset));
            }
        }
        offset += line.len();
    }
    best.map(|(_, o)| o)
}

// ---------------------------------------------------------------------------------------------
// Writing helpers.

/// `x` rounded to [`NS_DECIMALS`] decimals.
fn round_ns(x: f64) -> f64 {
    let scale = 10f64.powi(NS_DECIMALS);
    let r = (x * scale).round() / scale;
    // Values beyond ~1e15 ns lose nothing worth keeping, and `x * scale` could overflow to inf.
    if r.is_finite() {
        r
    } else {
        x
    }
}

/// `x` rounded to [`CV_SIGNIFICANT_DIGITS`] significant digits (through its decimal form, which is
/// exact and round-trips).
fn round_cv(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{:.*e}", CV_SIGNIFICANT_DIGITS - 1, x).parse().unwrap_or(x)
}

/// A float as TOML: always with a decimal point or exponent (`1234.0`, not `1234`), so it reads
/// back as a float.
fn float(x: f64) -> String {
    toml::Value::Float(x).to_string()
}

/// A TOML basic string, escaped.
fn string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML key: bare when it can be (`parse_headers`), quoted otherwise (`"p99.9"`, `"http::parse"`).
fn key(k: &str) -> String {
    if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        k.to_owned()
    } else {
        string(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CheckpointRun;
    use crate::stats::RunSummary;

    fn machine() -> Fingerprint {
        Fingerprint {
            cpu_model: "AMD EPYC 9654 96-Core Processor".into(),
            cores: 16,
            tick_hz: 2_596_122_000.0,
            kernel: "6.18.2".into(),
            rustc: "rustc 1.95.0".into(),
            target: "x86_64-unknown-linux".into(),
        }
    }

    fn recorded() -> Recorded {
        Recorded {
            commit: "3f2a9c1e0b7d".into(),
            date: "2026-05-04T09:12:44Z".into(),
            runs: 0,
            funcscope: "0.1.0".into(),
            args: vec!["--requests".into(), "200000".into()],
        }
    }

    fn summary(scale: f64) -> RunSummary {
        let mut x: Vec<f64> = (1..=2000).map(|i| 80.0 * scale + f64::from(i).powf(1.3) * 0.0131 * scale).collect();
        RunSummary::from_samples(&mut x).unwrap()
    }

    fn run(i: usize, names: &[&str]) -> RunResult {
        let scale = 1.0 + 0.0137 * i as f64 - 0.004 * (i % 2) as f64;
        RunResult {
            scenario: "http_parse".into(),
            wall_s: 1.0,
            processes: 1,
            tick_hz: 2.6e9,
            floor_ns: 6.0,
            bad_index: 0,
            checkpoints: names
                .iter()
                .enumerate()
                .map(|(k, n)| {
                    let cp = CheckpointRun {
                        count: 200_000 + i as u64,
                        lost: i as u64,
                        clamped: 0,
                        summary: Some(summary(scale * (1.0 + k as f64))),
                    };
                    ((*n).to_owned(), cp)
                })
                .collect(),
        }
    }

    fn pooled(names: &[&str]) -> BTreeMap<String, Pooled> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), Pooled { p50: 101.333, p90: 130.2, p99: 211.0, p999: 481.456 }))
            .collect()
    }

    const NAMES: [&str; 2] = ["parse_headers", "http::route"];

    fn baseline() -> Baseline {
        let runs: Vec<RunResult> = (0..4).map(|i| run(i, &NAMES)).collect();
        Baseline::from_runs("http_parse", &runs, &pooled(&NAMES), machine(), recorded()).unwrap()
    }

    fn load_text(text: &str) -> (tempfile::TempDir, Result<Baseline, BaselineError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("http_parse.toml");
        std::fs::write(&path, text).unwrap();
        let r = load(&path);
        (dir, r)
    }

    /// A small valid file, written by hand, with known line numbers.
    const GOOD: &str = r#"# funcscope baseline for scenario http_parse. Regenerate with: cargo xtask baseline --scenario http_parse
schema = 1
scenario = "http_parse"

[recorded]
commit = "abc"
date = "2026-05-04T09:12:44Z"
runs = 3
funcscope = "0.1.0"
args = []

[machine]
cpu_model = "x"
cores = 2
tick_hz = 3000000000.0
kernel = "6.18"
rustc = "rustc 1.95.0"
target = "x86_64-unknown-linux"

[checkpoints.parse_headers]
calls_per_run = 1000.0
lost = 0
noise_cv = { min = 0.01, p50 = 0.01, p90 = 0.01, p99 = 0.02, "p99.9" = 0.03, max = 0.2, mean = 0.01 }
min = [80.0, 81.0, 80.5]
p50 = [100.0, 101.0, 100.5]
p90 = [130.0, 131.0, 130.5]
p99 = [200.0, 201.0, 200.5]
"p99.9" = [400.0, 401.0, 400.5]
max = [9000.0, 9001.0, 9000.5]
mean = [110.0, 111.0, 110.5]

[checkpoints.parse_headers.pooled]
p50 = 100.5
p90 = 130.5
p99 = 200.5
"p99.9" = 400.5
"#;

    #[test]
    fn baseline_good_text_loads() {
        let (_d, b) = load_text(GOOD);
        let b = b.unwrap();
        assert_eq!(b.values("parse_headers", Metric::P50), Some(&[100.0, 101.0, 100.5][..]));
        assert_eq!(b.noise("parse_headers", Metric::P999), Some(0.03));
        assert_eq!(b.pooled("parse_headers", Metric::P999), Some(400.5));
        assert_eq!(b.pooled("parse_headers", Metric::Max), None);
        assert_eq!(b.values("nope", Metric::P50), None);
        assert_eq!(b.recorded.runs, 3);
        assert_eq!(b.machine.cores, 2);
    }

    #[test]
    fn baseline_round_trip_and_stable_text() {
        let b = baseline();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/http_parse.toml");
        b.save_atomic(&path).unwrap();
        let first = std::fs::read(&path).unwrap();
        let back = load(&path).unwrap();
        // from_runs rounds as it builds, so the loaded baseline is exactly the built one.
        assert_eq!(back, b);
        b.save_atomic(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first, "saving twice must give identical bytes");
        back.save_atomic(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first, "load + save must give identical bytes");
        // No temporary file left behind.
        let entries: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("http_parse.toml")]);
    }

    #[test]
    fn baseline_reference_runs_round_trip_and_are_build_specific() {
        let b = baseline();
        let refs: Vec<RunResult> =
            (0..b.recorded.runs).map(|i| run(i, &[crate::drift::REFERENCE_CHECKPOINT])).collect();
        let b = b.with_reference(&refs).unwrap();
        let p50 = b.reference_speed(Metric::P50).unwrap().to_vec();
        assert_eq!(p50.len(), b.recorded.runs);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("http_parse.toml");
        b.save_atomic(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("[reference]") && text.contains("workload = \"v1-"), "{text}");
        let back = load(&path).unwrap();
        assert_eq!(back, b);
        // Values from another reference build are never used.
        let mut other = back.clone();
        other.reference.as_mut().unwrap().workload = "v0-release".into();
        assert!(other.reference_speed(Metric::P50).is_none());
        // Wrong counts are refused on write and on load.
        assert!(baseline().with_reference(&refs[..1]).is_err());
        let bad = text.replacen("p50 = [", "p50 = [1.0, ", 1);
        let (_d, r) = load_text(&bad);
        assert!(r.is_err());
    }

    #[test]
    fn baseline_text_looks_as_documented() {
        let b = baseline();
        let text = b.to_toml_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "# funcscope baseline for scenario http_parse. Regenerate with: cargo xtask baseline --scenario http_parse"
        );
        assert!(lines[1].starts_with("# Per-run arrays") && lines[1].contains("one value per process run, in ns"));
        assert_eq!(lines[2], "schema = 1");
        assert_eq!(lines[3], "scenario = \"http_parse\"");
        assert!(text.contains("\n[recorded]\ncommit = \"3f2a9c1e0b7d\"\ndate = \"2026-05-04T09:12:44Z\"\nruns = 4\n"));
        assert!(text.contains("args = [\"--requests\", \"200000\"]\n"));
        assert!(text.contains("\n[machine]\ncpu_model = \"AMD EPYC 9654 96-Core Processor\"\ncores = 16\n"));
        assert!(text.contains("tick_hz = 2596122000.0\n"));
        // Checkpoints sorted by name, names quoted only when they must be.
        let route = text.find("[checkpoints.\"http::route\"]").unwrap();
        let parse = text.find("[checkpoints.parse_headers]\n").unwrap();
        assert!(route < parse);
        assert!(text.contains(
            "[checkpoints.parse_headers.pooled]\np50 = 101.33\np90 = 130.2\np99 = 211.0\n\"p99.9\" = 481.46\n"
        ));
        // Metric keys in Metric::ALL order, one array per line.
        let section = &text[parse..];
        let keys: Vec<&str> = section.lines().skip(1).take(10).map(|l| l.split(" = ").next().unwrap()).collect();
        assert_eq!(keys, ["calls_per_run", "lost", "noise_cv", "min", "p50", "p90", "p99", "\"p99.9\"", "max", "mean"]);
        let p50 = section.lines().find(|l| l.starts_with("p50 = [")).unwrap();
        assert!(p50.ends_with(']') && p50.matches(", ").count() == 3, "{p50}");
        assert!(section.contains("\nlost = 6\n"));
        assert!(section.contains("\ncalls_per_run = 200001.5\n"));
        let noise = section.lines().find(|l| l.starts_with("noise_cv = { min = ")).unwrap();
        assert!(noise.contains("\"p99.9\" = ") && noise.ends_with(" }"), "{noise}");
        // Every ns value has at most two decimals.
        for l in section.lines().filter(|l| l.contains("= [")) {
            for v in l.split_once('[').unwrap().1.trim_end_matches(']').split(", ") {
                let decimals = v.split_once('.').map_or(0, |(_, d)| d.len());
                assert!(decimals <= 2, "{v} in {l}");
            }
        }
    }

    #[test]
    fn baseline_from_runs_values() {
        let runs: Vec<RunResult> = (0..4).map(|i| run(i, &NAMES)).collect();
        let b = baseline();
        assert_eq!(b.schema, BASELINE_SCHEMA);
        assert_eq!(b.recorded.runs, 4);
        for m in Metric::ALL {
            let got = b.values("parse_headers", m).unwrap();
            let want: Vec<f64> =
                runs.iter().map(|r| round_ns(r.checkpoints["parse_headers"].summary.unwrap().get(m))).collect();
            assert_eq!(got, &want[..], "{m}");
            let cv = b.noise("parse_headers", m).unwrap();
            assert_eq!(cv, round_cv(noise_cv(&want).unwrap()));
            assert!(cv > 0.0 && cv < 0.1, "{m}: {cv}");
        }
        assert_eq!(b.checkpoints["parse_headers"].lost, 6);
        assert_eq!(round_cv(0.0123456789), 0.012346);
        assert_eq!(round_ns(101.33333), 101.33);
    }

    #[test]
    fn baseline_from_runs_refuses_partial_runs() {
        let mut runs: Vec<RunResult> = (0..4).map(|i| run(i, &NAMES)).collect();
        runs[2].checkpoints.remove("parse_headers");
        let err = Baseline::from_runs("http_parse", &runs, &pooled(&NAMES), machine(), recorded()).unwrap_err();
        assert!(
            matches!(&err, BaselineError::PartialRuns { checkpoint, .. } if checkpoint == "parse_headers"),
            "{err:?}"
        );
        assert!(err.to_string().contains("run 3 of 4"), "{err}");

        let mut runs: Vec<RunResult> = (0..4).map(|i| run(i, &NAMES)).collect();
        runs[1].checkpoints.get_mut("http::route").unwrap().summary = None;
        let err = Baseline::from_runs("http_parse", &runs, &pooled(&NAMES), machine(), recorded()).unwrap_err();
        assert!(
            matches!(&err, BaselineError::PartialRuns { checkpoint, .. } if checkpoint == "http::route"),
            "{err:?}"
        );

        let runs: Vec<RunResult> = (0..1).map(|i| run(i, &NAMES)).collect();
        let err = Baseline::from_runs("http_parse", &runs, &pooled(&NAMES), machine(), recorded()).unwrap_err();
        assert!(matches!(&err, BaselineError::Refused { field, .. } if field == "recorded.runs"), "{err:?}");

        let runs: Vec<RunResult> = (0..3).map(|i| run(i, &NAMES)).collect();
        let err = Baseline::from_runs("http_parse", &runs, &pooled(&NAMES[..1]), machine(), recorded()).unwrap_err();
        assert!(matches!(&err, BaselineError::Refused { field, .. } if field.contains("http::route")), "{err:?}");

        let mut runs: Vec<RunResult> = (0..3).map(|i| run(i, &NAMES)).collect();
        let mut s = runs[0].checkpoints["parse_headers"].summary.unwrap();
        s.min = 0.0;
        runs[0].checkpoints.get_mut("parse_headers").unwrap().summary = Some(s);
        let err = Baseline::from_runs("http_parse", &runs, &pooled(&NAMES), machine(), recorded()).unwrap_err();
        assert!(
            matches!(&err, BaselineError::Refused { field, .. } if field == "checkpoints.parse_headers.min"),
            "{err:?}"
        );
    }

    /// `GOOD` with `from` replaced by `to` (which must occur exactly once).
    fn bad(from: &str, to: &str) -> String {
        assert_eq!(GOOD.matches(from).count(), 1, "{from}");
        GOOD.replace(from, to)
    }

    fn assert_msg(err: &BaselineError, line: usize, field: &str) {
        let msg = err.to_string();
        assert!(msg.contains(&format!("http_parse.toml:{line}:")), "line {line} expected: {msg}");
        assert!(msg.contains(field), "field {field} expected: {msg}");
        assert!(msg.contains("cargo xtask baseline --scenario http_parse"), "{msg}");
    }

    #[test]
    fn baseline_syntax_error_names_line_and_column() {
        let (_d, r) = load_text(&bad("funcscope = \"0.1.0\"", "funcscope = 0.1.0"));
        let err = r.unwrap_err();
        assert!(matches!(&err, BaselineError::Syntax { line: 9, .. }), "{err:?}");
        assert_msg(&err, 9, "recorded.funcscope");
        // An unterminated line 5: the table header.
        let (_d, r) = load_text(&bad("[recorded]", "[recorded"));
        let err = r.unwrap_err();
        assert!(matches!(&err, BaselineError::Syntax { line: 5, .. }), "{err:?}");
        assert!(err.to_string().contains("http_parse.toml:5:"), "{err}");
    }

    #[test]
    fn baseline_wrong_schema() {
        let (_d, r) = load_text(&bad("schema = 1", "schema = 2"));
        let err = r.unwrap_err();
        assert!(matches!(&err, BaselineError::Schema { found: 2, line: 2, .. }), "{err:?}");
        let msg = err.to_string();
        assert_msg(&err, 2, "schema");
        assert!(msg.contains("version 2") && msg.contains("regenerate"), "{msg}");
        // A newer schema with a different structure still says "schema", not "missing field".
        let (_d, r) = load_text("schema = 7\nscenario = \"http_parse\"\n[totally]\ndifferent = true\n");
        assert!(matches!(r.unwrap_err(), BaselineError::Schema { found: 7, line: 1, .. }));
    }

    #[test]
    fn baseline_negative_value_names_checkpoint_metric_index() {
        let (_d, r) = load_text(&bad("p50 = [100.0, 101.0, 100.5]", "p50 = [100.0, -3, 100.5]"));
        let err = r.unwrap_err();
        assert!(matches!(&err, BaselineError::Invalid { line: 25, .. }), "{err:?}");
        assert_msg(
            &err,
            25,
            "field checkpoints.parse_headers.p50: value -3 at index 1 (run 2) is not a positive duration",
        );
        let (_d, r) = load_text(&bad("\"p99.9\" = [400.0, 401.0, 400.5]", "\"p99.9\" = [400.0, 401.0, nan]"));
        let err = r.unwrap_err();
        assert_msg(&err, 28, "checkpoints.parse_headers.\"p99.9\": value NaN at index 2");
    }

    #[test]
    fn baseline_unequal_lengths() {
        let (_d, r) = load_text(&bad("p90 = [130.0, 131.0, 130.5]", "p90 = [130.0, 131.0]"));
        let err = r.unwrap_err();
        assert!(matches!(&err, BaselineError::Invalid { line: 26, .. }), "{err:?}");
        assert_msg(&err, 26, "checkpoints.parse_headers.p90: 2 value(s), but recorded.runs = 3");
        assert!(err.to_string().contains("p90 has 2"), "{err}");
    }

    #[test]
    fn baseline_too_few_runs_and_misordered_values() {
        let text = GOOD.replace(", 100.5]", "]").replace(", 101.0]", "]").replace(", 130.5]", "]");
        let text =
            text.replace(", 200.5]", "]").replace(", 400.5]", "]").replace(", 9000.5]", "]").replace(", 110.5]", "]");
        let text = text.replace("runs = 3", "runs = 1").replace("[80.0, 81.0, 80.5]", "[80.0]");
        let (_d, r) = load_text(&text);
        let err = r.unwrap_err();
        assert_msg(&err, 8, "field recorded.runs: 1 run(s) recorded, at least 2");

        let (_d, r) = load_text(&bad("p90 = [130.0, 131.0, 130.5]", "p90 = [130.0, 99.0, 130.5]"));
        let err = r.unwrap_err();
        assert_msg(&err, 26, "checkpoints.parse_headers.p90: at index 1 (run 2) p90 = 99 is below p50 = 101");
    }

    #[test]
    fn baseline_missing_mistyped_unknown_fields() {
        let (_d, r) = load_text(&bad("runs = 3\n", ""));
        let err = r.unwrap_err();
        assert!(matches!(&err, BaselineError::Field { line: 5, .. }), "{err:?}");
        assert_msg(&err, 5, "field recorded.runs: missing field `runs`");

        let (_d, r) = load_text(&bad("mean = [110.0, 111.0, 110.5]\n", ""));
        let err = r.unwrap_err();
        assert_msg(&err, 20, "field checkpoints.parse_headers.mean: missing field `mean`");

        let (_d, r) = load_text(&bad("lost = 0", "lost = \"none\""));
        let err = r.unwrap_err();
        assert!(matches!(&err, BaselineError::Field { line: 22, .. }), "{err:?}");
        assert_msg(&err, 22, "field checkpoints.parse_headers.lost: invalid type");

        let (_d, r) = load_text(&bad("mean = [", "p95 = [1.0]\nmean = ["));
        let err = r.unwrap_err();
        assert_msg(&err, 30, "field checkpoints.parse_headers.p95: unknown field `p95`");

        let (_d, r) = load_text(&bad("mean = 0.01 }", "mean = 0.01, p95 = 0.1 }"));
        let err = r.unwrap_err();
        assert_msg(&err, 23, "unknown field `p95`");

        let (_d, r) = load_text(&bad("\"p99.9\" = 0.03, ", ""));
        let err = r.unwrap_err();
        assert!(matches!(&err, BaselineError::Invalid { line: 23, .. }), "{err:?}");
        assert_msg(&err, 23, "field checkpoints.parse_headers.noise_cv: no value for metric p99.9");

        let (_d, r) = load_text(&bad("date = \"2026-05-04T09:12:44Z\"", "date = \"yesterday\""));
        assert_msg(&r.unwrap_err(), 7, "field recorded.date");
    }

    #[test]
    fn baseline_missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "http_parse");
        let err = load(&path).unwrap_err();
        assert!(matches!(&err, BaselineError::NotFound { path: p } if *p == path), "{err:?}");
        assert!(err.to_string().contains("no baseline"), "{err}");
    }

    #[test]
    fn baseline_save_failure_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails, and the temporary file must be gone.
        let path = dir.path().join("http_parse.toml");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), "x").unwrap();
        let err = baseline().save_atomic(&path).unwrap_err();
        assert!(matches!(err, BaselineError::Io { .. }), "{err:?}");
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("http_parse.toml")]);
    }

    #[test]
    fn baseline_rfc3339() {
        assert!(is_rfc3339_utc("2026-05-04T09:12:44Z"));
        assert!(is_rfc3339_utc("2026-05-04T09:12:44.123456Z"));
        assert!(!is_rfc3339_utc("2026-05-04T09:12:44+02:00"));
        assert!(!is_rfc3339_utc("2026-05-04 09:12:44Z"));
        assert!(!is_rfc3339_utc("2026-05-04T09:12:44.Z"));
        assert!(!is_rfc3339_utc(""));
    }
}
