//! The history file's lines ([`Entry`], written by `--history`) and the trend of one checkpoint
//! over them ([`Trend`], shown by `history`). **API boundary**: the lines are a versioned JSON
//! format ([`HISTORY_SCHEMA`]); see `crate::history` for reading, writing and the trend.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::changepoint::ChangePoint;
use crate::stats::{Metric, Verdict};

/// Version of the history line format.
pub const HISTORY_SCHEMA: u32 = 1;

/// One run of the gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// [`HISTORY_SCHEMA`].
    pub schema: u32,
    /// The commit measured (`-dirty` when the tree had uncommitted changes).
    pub commit: String,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    /// The command (`regress`, `compare`).
    pub command: String,
    /// The machine's CPU model (a trend across machines is not one trend).
    pub cpu: String,
    /// Per scenario and checkpoint measured.
    pub checkpoints: Vec<Point>,
}

/// One checkpoint in one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Scenario name.
    pub scenario: String,
    /// Checkpoint name.
    pub checkpoint: String,
    /// The gate's verdict in this run, if it judged the checkpoint.
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// Per metric, the current side's value in each run, ns.
    pub runs: BTreeMap<Metric, Vec<f64>>,
}

/// One run of one checkpoint in a [`Trend`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrendRow {
    /// Position in the history file (0-based, entries only).
    pub entry: usize,
    /// The commit.
    pub commit: String,
    /// When.
    pub date: String,
    /// Median over the run's values, ns.
    pub median_ns: f64,
    /// Fastest and slowest run, ns.
    pub range_ns: (f64, f64),
    /// Runs.
    pub runs: usize,
    /// The gate's verdict then.
    pub verdict: Option<Verdict>,
}

/// A checkpoint's metric over the history, and where its level changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Trend {
    /// The runs that measured it, in history order.
    pub rows: Vec<TrendRow>,
    /// Change points of `ln(median)` (indices into `rows`); `before`/`after` are back in ns.
    pub change_points: Vec<ChangePoint>,
}
