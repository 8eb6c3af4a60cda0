//! Machine drift: how a reference run turns into one number, the machine's *speed index*.
//!
//! The reference workload ([`crate::reference`]) runs in its own process next to every scenario
//! run. Its speed index is the geometric mean over its checkpoints of their per-run median call
//! duration (ns): larger means the machine is slower right now. In baseline mode each checkpoint
//! value is divided by the speed index of the run next to it, on both sides, before the test;
//! the report states the resulting factor (speed now / speed at baseline time).
//!
//! The index comes only from code the change under test cannot touch: a regression that slows
//! every checkpoint of a scenario is still a regression.

use crate::model::RunResult;
use crate::stats::Metric;

/// Version of the reference workload and of the speed index. Baselines store it; reference
/// values of another version are ignored (no correction, with a note), never mixed.
pub const REFERENCE_VERSION: u32 = 1;

/// Measured duration of one reference run, in ms: long enough for a stable median of each
/// checkpoint (hundreds of thousands of calls), short next to a scenario run.
pub const REFERENCE_RUN_MS: u64 = 200;

/// The metric of each reference checkpoint that enters the index.
pub const SPEED_METRIC: Metric = Metric::P50;

/// The speed index of one reference run: the geometric mean of its checkpoints' [`SPEED_METRIC`]
/// in ns, or `None` if a reference checkpoint is missing or has no samples.
pub fn speed_index(run: &RunResult) -> Option<f64> {
    let mut log_sum = 0.0;
    for cp in crate::reference::REFERENCE_CHECKPOINTS {
        let v = run.checkpoints.get(cp)?.summary?.get(SPEED_METRIC);
        if !(v.is_finite() && v > 0.0) {
            return None;
        }
        log_sum += v.ln();
    }
    Some((log_sum / crate::reference::REFERENCE_CHECKPOINTS.len() as f64).exp())
}
