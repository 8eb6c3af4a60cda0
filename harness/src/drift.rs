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
