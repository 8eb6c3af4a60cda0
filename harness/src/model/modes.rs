//! Whole-process modes and the sources of run-to-run variance of a paired comparison: what the
//! report says about *why* a checkpoint is noisy, next to its verdict.
//!
//! Computed by `judge` from the per-run p50 of each checkpoint (log scale) with the pure functions
//! of [`crate::stats`] (`detect_modes`, `fisher_exact`, `shared_state`, `decompose_variance`).
//! Fractions are fractions (`0.05` is 5 %).

use serde::{Deserialize, Serialize};

/// Modes and variance sources of one paired scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModesReport {
    /// Per checkpoint (sorted by name), those with at least 3 rounds.
    pub checkpoints: Vec<CheckpointModes>,
    /// Whether the slow mode is shared by the scenario's checkpoints (`None`: fewer than two
    /// checkpoints have modes).
    pub shared: Option<SharedMode>,
    /// What the numbers suggest, in words (empty when nothing stands out).
    pub advice: Vec<String>,
}

/// One checkpoint's modes and variance parts (its per-run p50).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointModes {
    /// Checkpoint name.
    pub checkpoint: String,
    /// Two well-separated groups of whole processes, if found (both arms pooled).
    pub modes: Option<ModeCounts>,
    /// Where the run-to-run variance comes from.
    pub variance: Option<VarianceShare>,
}

/// How many processes of each arm ran in the slow mode, and the effect within a mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModeCounts {
    /// The slow mode's centre over the fast one's (geometric means, > 1).
    pub slow_ratio: f64,
    /// Arm A (baseline side): slow runs, and runs.
    pub a_slow: usize,
    /// Arm A's runs.
    pub a_runs: usize,
    /// Arm B (current side): slow runs.
    pub b_slow: usize,
    /// Arm B's runs.
    pub b_runs: usize,
    /// Fisher's exact test, two-sided: did the change alter how often processes are slow?
    pub frequency_p: f64,
    /// Rounds whose two runs were in the same mode (comparable rounds).
    pub same_mode_rounds: usize,
    /// The change B/A estimated on the comparable rounds only (Hodges-Lehmann, as a ratio), with
    /// its 95 % interval; `None` with fewer than 3 such rounds.
    pub same_mode_change: Option<[f64; 3]>,
}

/// Run-to-run variance of a checkpoint's log p50, split by source (fractions of the total).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VarianceShare {
    /// Shared by the two runs of a round (the machine at that moment); pairing cancels it.
    pub round: f64,
    /// Each process's own speed (seeds, placement, modes); only more runs average it.
    pub process: f64,
    /// Sampling noise of each run's median; more calls per run shrink it.
    pub within: f64,
    /// The between-process standard deviation (log scale, about the relative spread).
    pub process_sd: f64,
    /// A part was estimated negative and set to 0.
    pub clamped: bool,
}

/// Agreement of slow-mode membership across the checkpoints that have modes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharedMode {
    /// Mean pairwise phi coefficient (1: every run slow at all of them or at none).
    pub mean_phi: Option<f64>,
    /// Checkpoints compared.
    pub checkpoints: usize,
    /// `mean_phi` at or above the scenario-wide level: one slow state of the whole process.
    pub scenario_wide: bool,
}
