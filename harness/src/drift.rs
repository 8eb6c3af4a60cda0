//! Machine drift: how reference runs turn into the machine's speed, per metric.
//!
//! The reference workload ([`crate::reference`]) runs in its own process next to every scenario
//! run. In baseline mode, each checkpoint metric of a run is divided by the median call
//! duration ([`SPEED_METRIC`]) of the reference checkpoint [`REFERENCE_CHECKPOINT`] in the run
//! next to it, on both sides, before the test; the report states the resulting factor (speed now
//! / speed when the baseline was recorded). The median and not the same metric as the one judged:
//! the reference's own tail (p99: 214-320 ns across runs on the reference machine) is far
//! noisier than its median (198-210 ns), and dividing by it widened the p99 intervals of every
//! checkpoint (measured: thresholds of ±50-95 % instead of ±40-60 %).
//!
//! Why `ref_alu` alone: measured on the reference machine (2026-11-23), its p50 varied 0.1-1.7 %
//! between runs, while `ref_cache` (a 1 MiB pointer chase at the edge of L2) was bimodal across
//! processes (110-145 ns or 250-300 ns) and made the correction worse, and `ref_branchy` also
//! showed process-to-process modes. Dividing by `ref_alu` halved the run-to-run spread of
//! checkpoint *means* under interference (e.g. 38 % -> 17 %; log correlation 0.8-0.9) and left
//! p50 about as it was (its spread is mostly per-process layout effects, which no reference can
//! cancel).
//!
//! The speed comes only from code the change under test cannot touch: a regression that slows
//! every checkpoint of a scenario is still a regression.

use std::collections::BTreeMap;

use crate::baseline::{Baseline, BaselineError, ReferenceRuns};
use crate::model::RunResult;
use crate::stats::Metric;

/// Version of the reference workload. Bumped whenever its code changes.
pub const REFERENCE_VERSION: u32 = 1;

/// The reference checkpoint whose metrics measure the machine's speed.
pub const REFERENCE_CHECKPOINT: &str = "ref_alu";

/// Measured duration of one reference run, in ms: over a hundred thousand calls of each
/// checkpoint, enough for a stable median, short next to a scenario run.
pub const REFERENCE_RUN_MS: u64 = 100;

/// The reference metric that measures the machine's speed.
pub const SPEED_METRIC: Metric = Metric::P50;

/// The identity of the reference workload's build: its version and whether it was compiled with
/// debug assertions (the harness binary that runs it may be a dev or a release build, and the two
/// run the same code at different speeds). Baselines store it; values of another build are
/// ignored (no correction, said in the report), never mixed.
pub fn reference_build() -> String {
    format!("v{REFERENCE_VERSION}-{}", if cfg!(debug_assertions) { "dev" } else { "release" })
}

/// The machine speed in one reference run for `metric` (ns of [`REFERENCE_CHECKPOINT`]), or
/// `None` if the checkpoint has no samples.
pub fn speed(run: &RunResult, metric: Metric) -> Option<f64> {
    let v = run.checkpoints.get(REFERENCE_CHECKPOINT)?.summary?.get(metric);
    (v.is_finite() && v > 0.0).then_some(v)
}

/// `baseline` with the reference runs `runs` attached (one per recorded run, in run order): every
/// metric's [`speed`] in each run, tagged with the current [`reference_build`].
///
/// # Errors
/// [`BaselineError::Refused`] (field `reference`) if a run has no [`REFERENCE_CHECKPOINT`] samples
/// or the number of runs is not the baseline's; see [`Baseline::with_reference`].
pub fn attach_reference(baseline: Baseline, runs: &[RunResult]) -> Result<Baseline, BaselineError> {
    let mut by_metric = BTreeMap::new();
    for m in Metric::ALL {
        let Some(v) = runs.iter().map(|r| speed(r, m)).collect::<Option<Vec<f64>>>() else {
            return Err(BaselineError::Refused {
                scenario: baseline.scenario.clone(),
                field: "reference".into(),
                message: format!("a reference run has no {REFERENCE_CHECKPOINT} samples"),
            });
        };
        by_metric.insert(m, v);
    }
    baseline.with_reference(ReferenceRuns { workload: reference_build(), runs: by_metric })
}

/// The machine speed per recorded run of `baseline` for `metric`, if its reference runs were
/// measured by the current [`reference_build`]: values of another build are not comparable, so
/// they are ignored (no correction), never used.
pub fn baseline_speed(baseline: &Baseline, metric: Metric) -> Option<&[f64]> {
    baseline.reference_speed(&reference_build(), metric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CheckpointRun;
    use crate::stats::RunSummary;

    /// A committed baseline without its reference runs.
    fn baseline() -> Baseline {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../baselines/codec.toml");
        Baseline { reference: None, ..Baseline::load(&path).unwrap() }
    }

    /// A reference run whose `REFERENCE_CHECKPOINT` takes about `ns` per call (no samples if `None`).
    fn reference_run(ns: Option<f64>) -> RunResult {
        let summary = ns.map(|ns| {
            let mut x: Vec<f64> = (0..100).map(|i| ns + f64::from(i) / 7.0).collect();
            RunSummary::from_samples(&mut x).unwrap()
        });
        let cp = CheckpointRun { count: 100, lost: 0, clamped: 0, summary, totals: None };
        RunResult {
            scenario: "reference".into(),
            wall_s: 0.1,
            processes: 1,
            tick_hz: 3e9,
            floor_ns: 6.0,
            bad_index: 0,
            checkpoints: [(REFERENCE_CHECKPOINT.to_owned(), cp)].into_iter().collect(),
        }
    }

    #[test]
    fn drift_attach_reference_and_baseline_speed() {
        let b = baseline();
        let n = b.recorded.runs;
        let runs: Vec<RunResult> = (0..n).map(|i| reference_run(Some(200.0 + i as f64))).collect();
        let b = attach_reference(b, &runs).unwrap();
        let r = b.reference.as_ref().unwrap();
        assert_eq!(r.workload, reference_build());
        assert!(Metric::ALL.iter().all(|m| r.runs[m].len() == n));
        let speed = baseline_speed(&b, SPEED_METRIC).unwrap();
        let want: Vec<f64> = runs.iter().map(|r| (speed_of(r) * 100.0).round() / 100.0).collect();
        assert_eq!(speed, &want[..]);
        // Another reference build's values are never used.
        let mut other = b.clone();
        other.reference.as_mut().unwrap().workload = "v0-release".into();
        assert!(baseline_speed(&other, SPEED_METRIC).is_none());

        // A run without samples, or a run too few, is refused.
        let mut partial = runs.clone();
        partial[1] = reference_run(None);
        let err = attach_reference(baseline(), &partial).unwrap_err();
        assert!(err.to_string().contains(&format!("a reference run has no {REFERENCE_CHECKPOINT} samples")), "{err}");
        let err = attach_reference(baseline(), &runs[1..]).unwrap_err();
        assert!(err.to_string().contains(&format!("{} reference runs for {n} runs", n - 1)), "{err}");
    }

    fn speed_of(r: &RunResult) -> f64 {
        speed(r, SPEED_METRIC).unwrap()
    }
}
