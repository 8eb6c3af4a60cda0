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
//!   version and the scenario's arguments: what a reader needs to reproduce the numbers. A baseline
//!   recorded over several sessions (`cargo xtask baseline --append`) also has `sessions = [12, 12]`,
//!   the runs of each session in run order ([`Baseline::session_var`] measures their spread).
//! * `[machine]`: the [`Fingerprint`]; the judge compares it with the current machine and reports a
//!   cross-machine comparison instead of gating on it.
//! * `[checkpoints.<name>]`: `calls_per_run` (mean calls per run, from the probe's exact counts),
//!   `lost` (samples lost over all runs), `noise_cv` (the run-to-run robust coefficient of
//!   variation of each metric, [`noise_cv`]) and one array per [`Metric`] with the metric's value in
//!   each run, in ns: the data the tests compare. `[checkpoints.<name>.pooled]` holds p50 ... p99.9
//!   over all calls of all runs pooled, for people reading the file (and for plots), never for tests.
//! * `[reference]` (optional, between `[machine]` and the checkpoints): `workload`, the build of the
//!   reference workload that measured it, and one array per [`Metric`] with the reference
//!   checkpoint's value in each run ([`ReferenceRuns`]). The file only stores them; which build is
//!   comparable and which metric is the machine's speed is decided by [`crate::drift`].
//!
//! # Code
//!
//! This module holds the types, [`Baseline::from_runs`] and the accessors; `parse` reads a file
//! (serde, spans, located errors), `check` validates a baseline (the invariants below, for both
//! loaded and built ones), `write` renders the text and saves it.
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
//!   from the rounded values, so the baseline in memory is exactly the one a later [`Baseline::load`]
//!   returns.
//! * **Atomic writes.** [`Baseline::save_atomic`] writes a temporary file in the target directory,
//!   fsyncs it and renames it over the old one ([`crate::fsutil::write_atomic`]): an interrupted
//!   `cargo xtask baseline` leaves the old baseline or the new one, never half a file.
//! * **Loud, located errors.** A baseline is edited by hand, merged and rebased; a broken one must
//!   say where. Every [`Baseline::load`] error names the file, the 1-based line and the field (e.g.
//!   `baselines/http_parse.toml:17: field checkpoints.parse_headers.p50: value -3 at index 1 (run 2)
//!   is not a positive duration; regenerate the baseline with cargo xtask baseline --scenario
//!   http_parse`). Lines come from the TOML parser's spans ([`toml::Spanned`]), exact to the value.
//! * **No partial data.** [`Baseline::from_runs`] refuses runs where a checkpoint is missing or has
//!   no samples in some run, and fewer than [`MIN_RUNS`] runs: a baseline recorded from incomplete
//!   runs would gate future builds against numbers that were never measured.
//!
//! Invariants of a [`Baseline`] returned by [`Baseline::load`] or [`Baseline::from_runs`]: `schema ==
//! BASELINE_SCHEMA`; `recorded.runs >= MIN_RUNS`; at least one checkpoint; every checkpoint has one
//! array per metric, each of length `recorded.runs`, with finite values `> 0` that satisfy, run by
//! run, `min <= p50 <= p90 <= p99 <= p99.9 <= max` and `min <= mean <= max`; `noise_cv` has every
//! metric, finite and `>= 0`; pooled values are finite and `> 0`.

mod check;
mod parse;
mod write;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::fingerprint::Fingerprint;
use crate::model::RunResult;
use crate::stats::{noise_cv, Metric};

use self::check::check;
use self::write::{key, round_cv, round_ns};

/// Version of the baseline file format. Bumped on any change an older reader would misread; files
/// of another version are refused (regenerate them), not converted.
pub const BASELINE_SCHEMA: u32 = 1;

/// The fewest process runs a baseline may hold: a run-to-run spread (and so [`noise_cv`] and every
/// test in [`crate::stats`]) needs at least two values.
pub const MIN_RUNS: usize = 2;

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
    /// Runs per recording session, in run order: one entry for a baseline recorded once, one per
    /// `cargo xtask baseline --append` after that. Each `>= 1`, summing to `runs`. Written to the
    /// file only when there is more than one session. [`Baseline::from_runs`] sets it to `[runs]`.
    pub sessions: Vec<usize>,
}

/// Statistics pooled over every call of every run of one checkpoint, in ns. Informational: tests
/// compare the per-run arrays, never these.
///
/// Fields rather than a map so that a pooled value is never missing; the file reads and writes
/// them through [`Metric::POOLED`] and [`Pooled::get`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pooled {
    /// Median call; `> 0`.
    pub p50: f64,
    /// 90th percentile; `> 0`.
    pub p90: f64,
    /// 99th percentile; `> 0`.
    pub p99: f64,
    /// 99.9th percentile; `> 0`.
    pub p999: f64,
}

impl Pooled {
    /// The pooled metrics, in file order: [`Metric::POOLED`].
    pub const METRICS: [Metric; 4] = Metric::POOLED;

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

    /// The pooled values `value(m)`, one per `m` in [`Metric::POOLED`].
    pub fn from_fn(mut value: impl FnMut(Metric) -> f64) -> Pooled {
        Pooled { p50: value(Metric::P50), p90: value(Metric::P90), p99: value(Metric::P99), p999: value(Metric::P999) }
    }

    /// Every value rounded like the file's ns values.
    fn rounded(self) -> Pooled {
        // `get` is `Some` for every pooled metric.
        Pooled::from_fn(|m| round_ns(self.get(m).unwrap_or(f64::NAN)))
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
/// reference workload in a run next to it. Stored as data: which build's values are comparable and
/// which metric measures the speed is the drift policy's to decide ([`crate::drift`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceRuns {
    /// The reference build that measured the values (e.g. `v1-release`, from
    /// [`crate::drift::reference_build`]); values of another build are not comparable.
    pub workload: String,
    /// Per metric (every one), per run (aligned with the checkpoints' per-run arrays): the
    /// reference checkpoint's value in ns.
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

/// The file stem of `path`, for "regenerate with `--scenario <stem>`" hints.
fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "<scenario>".into())
}

impl Baseline {
    /// The reference values per run for `metric`, if they were measured by the reference build
    /// `workload`; `None` for another build (its values are never mixed with the current one's) or
    /// a baseline without reference runs.
    pub fn reference_speed(&self, workload: &str, metric: Metric) -> Option<&[f64]> {
        self.reference.as_ref().filter(|r| r.workload == workload).and_then(|r| r.runs.get(&metric)).map(Vec::as_slice)
    }

    /// Attaches reference runs: one value per recorded run, in run order, for every metric. Values
    /// are rounded like other ns values, so the baseline in memory is the one a later load returns.
    ///
    /// # Errors
    /// [`BaselineError::Refused`] (field `reference...`) if a metric is missing, an array's length
    /// is not `recorded.runs`, or a value is not a positive duration.
    pub fn with_reference(mut self, mut reference: ReferenceRuns) -> Result<Baseline, BaselineError> {
        let refused =
            |field: String, message: String| BaselineError::Refused { scenario: self.scenario.clone(), field, message };
        for m in Metric::ALL {
            match reference.runs.get(&m) {
                None => return Err(refused("reference".into(), format!("no reference values for metric {m}"))),
                Some(v) if v.len() != self.recorded.runs => {
                    let message = format!("{} reference runs for {} runs", v.len(), self.recorded.runs);
                    return Err(refused("reference".into(), message));
                }
                Some(_) => {}
            }
        }
        reference.runs.values_mut().flatten().for_each(|v| *v = round_ns(*v));
        self.reference = Some(reference);
        check(&self).map_err(|p| refused(p.field, p.message))?;
        Ok(self)
    }

    /// Appends the runs of `newer`, the same scenario recorded in a later session from the same
    /// commit, with the same arguments, on the same machine and toolchain (`cargo xtask baseline
    /// --append`): the per-run arrays (and reference runs) are concatenated, `recorded.sessions`
    /// gains an entry, `lost` is summed, `calls_per_run` and the pooled quantiles become
    /// run-weighted means (pooled values stay informational: the calls of old sessions are not
    /// kept), `noise_cv` is recomputed over all runs, and the date becomes `newer`'s.
    ///
    /// Why: a baseline from one session cannot say how much a whole session moves (the machine's
    /// state that day, its neighbours, the binary's placement), which is what a comparison against
    /// stored values must allow for; several sessions measure it ([`Baseline::session_var`]).
    ///
    /// # Errors
    /// [`BaselineError::Refused`] naming the field that differs (scenario, commit, arguments,
    /// machine, checkpoints, reference workload) or a merged baseline that breaks an invariant.
    pub fn append(mut self, newer: Baseline) -> Result<Baseline, BaselineError> {
        let scenario = self.scenario.clone();
        let refused = |field: &str, message: String| BaselineError::Refused {
            scenario: scenario.clone(),
            field: field.to_owned(),
            message: format!("{message}; record a fresh baseline (without --append) instead"),
        };
        if newer.scenario != self.scenario {
            return Err(refused("scenario", format!("cannot append runs of scenario {:?}", newer.scenario)));
        }
        if newer.recorded.commit != self.recorded.commit {
            let message = format!(
                "the baseline was recorded at commit {} and the new runs at {}: sessions are appended only for the same code",
                self.recorded.commit, newer.recorded.commit
            );
            return Err(refused("recorded.commit", message));
        }
        if newer.recorded.args != self.recorded.args {
            let message =
                format!("arguments {:?} differ from the baseline's {:?}", newer.recorded.args, self.recorded.args);
            return Err(refused("recorded.args", message));
        }
        if let Some(d) = self
            .machine
            .machine_difference(&newer.machine)
            .or_else(|| self.machine.toolchain_difference(&newer.machine))
        {
            return Err(refused("machine", format!("the new runs come from another machine or toolchain ({d})")));
        }
        if !self.checkpoints.keys().eq(newer.checkpoints.keys()) {
            let names = |b: &Baseline| b.checkpoints.keys().cloned().collect::<Vec<_>>().join(", ");
            let message = format!("checkpoints [{}] differ from the baseline's [{}]", names(&newer), names(&self));
            return Err(refused("checkpoints", message));
        }
        self.reference = match (self.reference.take(), newer.reference) {
            (None, None) => None,
            (Some(mut old), Some(new)) if old.workload == new.workload => {
                for (m, v) in new.runs {
                    old.runs.entry(m).or_default().extend(v);
                }
                Some(old)
            }
            (old, new) => {
                let w = |r: &Option<ReferenceRuns>| r.as_ref().map_or("none".to_owned(), |r| r.workload.clone());
                let message = format!("reference workload {} differs from the baseline's {}", w(&new), w(&old));
                return Err(refused("reference", message));
            }
        };
        let (n_old, n_new) = (self.recorded.runs as f64, newer.recorded.runs as f64);
        let weighted = |a: f64, b: f64| round_ns((a * n_old + b * n_new) / (n_old + n_new));
        for (name, new) in newer.checkpoints {
            let Some(cp) = self.checkpoints.get_mut(&name) else { continue };
            cp.lost = cp.lost.saturating_add(new.lost);
            cp.calls_per_run = weighted(cp.calls_per_run, new.calls_per_run);
            let old_pooled = cp.pooled;
            cp.pooled =
                Pooled::from_fn(|m| weighted(old_pooled.get(m).unwrap_or(0.0), new.pooled.get(m).unwrap_or(0.0)));
            for (m, v) in new.runs {
                let all = cp.runs.entry(m).or_default();
                all.extend(v);
                let cv =
                    noise_cv(all).map_err(|e| refused(&format!("checkpoints.{}.{m}", key(&name)), e.to_string()))?;
                cp.noise_cv.insert(m, round_cv(cv));
            }
        }
        self.recorded.runs += newer.recorded.runs;
        self.recorded.sessions.extend(newer.recorded.sessions);
        self.recorded.date = newer.recorded.date;
        self.recorded.funcscope = newer.recorded.funcscope;
        check(&self).map_err(|p| refused(&p.field, p.message))?;
        Ok(self)
    }

    /// The variance (log scale) of a whole recording session's offset, estimated from the
    /// baseline's sessions ([`Recorded::sessions`]): per checkpoint the between-session variance of
    /// the log per-run p50 ([`crate::stats::between_group_var`]), averaged over the checkpoints
    /// (a session moves the whole machine, and one checkpoint's estimate has only `sessions - 1`
    /// degrees of freedom). `None` for a baseline recorded in one session, or sessions too small to
    /// separate within-session spread.
    pub fn session_var(&self) -> Option<f64> {
        let sessions = &self.recorded.sessions;
        if sessions.len() < 2 {
            return None;
        }
        let mut estimates = Vec::new();
        for cp in self.checkpoints.values() {
            let logs: Vec<f64> = cp.runs.get(&Metric::P50)?.iter().map(|v| v.ln()).collect();
            let mut groups = Vec::with_capacity(sessions.len());
            let mut start = 0;
            for &n in sessions {
                groups.push(logs.get(start..start + n)?);
                start += n;
            }
            estimates.push(crate::stats::between_group_var(&groups).ok()?);
        }
        (!estimates.is_empty()).then(|| estimates.iter().sum::<f64>() / estimates.len() as f64)
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
        let names: BTreeSet<&String> = runs.iter().flat_map(|r| r.checkpoints.keys()).collect();
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
            recorded: Recorded { runs: runs.len(), sessions: vec![runs.len()], ..recorded },
            machine,
            checkpoints,
            reference: None,
        };
        check(&baseline).map_err(|p| refused(&p.field, p.message))?;
        Ok(baseline)
    }
}
