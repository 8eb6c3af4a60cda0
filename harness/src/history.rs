//! The history file: one JSON line per gate run (`--history PATH.jsonl`), keyed by the commit
//! measured, holding every checkpoint's run-level values; and the trend of one checkpoint over
//! it with its change points ([`trend`], method in [`crate::stats::changepoint`]), which
//! `cargo xtask history SCENARIO/CHECKPOINT` prints and plots. A slow creep that no single pull
//! request shows, or a step that landed unnoticed, shows up there.
//!
//! **Format** (schema [`HISTORY_SCHEMA`]): JSON lines, appended in run order (the order is the
//! time axis; a commit measured twice appears twice), each an [`Entry`]. Appending is one
//! `write` of a whole line to a file opened in append mode, so concurrent appenders on one
//! machine do not interleave within a line; a torn last line (a crash mid-write) is reported
//! with its line number rather than silently skipped.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::model::{Entry, Point, Report, Trend, TrendRow, HISTORY_SCHEMA};
use crate::stats::changepoint::{change_points, ChangePoint};
use crate::stats::Metric;

/// Why the history could not be read or written. Names the file (and line).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The file could not be read or appended to.
    #[error("history file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line is not a history entry of this schema.
    #[error("history file {path}, line {line}: {why} (a line written by another funcscope version, or torn by a crash: remove it)")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// The history entry of `report`, measured at `commit`: every checkpoint of every scenario that
/// ran, with the current side's per-run values of every metric.
pub fn entry_of(report: &Report, commit: &str) -> Entry {
    let mut checkpoints = Vec::new();
    for s in &report.scenarios {
        let names: std::collections::BTreeSet<&String> =
            s.run_results.iter().flat_map(|r| r.checkpoints.keys()).collect();
        for name in names {
            let runs = Metric::ALL
                .iter()
                .map(|&m| {
                    let v: Vec<f64> = s
                        .run_results
                        .iter()
                        .filter_map(|r| r.checkpoints.get(name)?.summary.map(|x| x.get(m)))
                        .collect();
                    (m, v)
                })
                .filter(|(_, v)| !v.is_empty())
                .collect();
            let verdict =
                s.checkpoints.iter().find(|c| &c.name == name).filter(|c| !c.metrics.is_empty()).map(|c| c.verdict);
            checkpoints.push(Point { scenario: s.name.clone(), checkpoint: name.clone(), verdict, runs });
        }
    }
    Entry {
        schema: HISTORY_SCHEMA,
        commit: commit.to_owned(),
        date: report.started.clone(),
        command: report.command.clone(),
        cpu: report.machine.cpu_model.clone(),
        checkpoints,
    }
}

/// Appends `entry` to `path` as one line (the file and its directory are created if missing).
///
/// # Errors
/// [`HistoryError::Io`].
pub fn append(path: &Path, entry: &Entry) -> Result<(), HistoryError> {
    let io = |source| HistoryError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut line = serde_json::to_string(entry).map_err(|e| io(e.into()))?;
    line.push('\n');
    let mut f = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    f.write_all(line.as_bytes()).map_err(io)?;
    f.sync_data().map_err(io)
}

/// Every entry of `path`, in file order; blank lines are skipped.
///
/// # Errors
/// [`HistoryError::Io`], or [`HistoryError::Malformed`] naming the first bad line.
pub fn read(path: &Path) -> Result<Vec<Entry>, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Io { path: path.to_owned(), source })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| HistoryError::Malformed { path: path.to_owned(), line: i + 1, why };
        let e: Entry = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if e.schema != HISTORY_SCHEMA {
            return Err(bad(format!("schema {} (this funcscope reads {HISTORY_SCHEMA})", e.schema)));
        }
        out.push(e);
    }
    Ok(out)
}

/// The trend of `metric` of `scenario`/`checkpoint` over `entries`.
pub fn trend(entries: &[Entry], scenario: &str, checkpoint: &str, metric: Metric) -> Trend {
    let mut rows = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let Some(p) = e.checkpoints.iter().find(|p| p.scenario == scenario && p.checkpoint == checkpoint) else {
            continue;
        };
        let Some(values) = p.runs.get(&metric).filter(|v| !v.is_empty()) else { continue };
        let Some(median) = crate::stats::median(values) else { continue };
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        rows.push(TrendRow {
            entry: i,
            commit: e.commit.clone(),
            date: e.date.clone(),
            median_ns: median,
            range_ns: (lo, hi),
            runs: values.len(),
            verdict: p.verdict,
        });
    }
    let logs: Vec<f64> = rows.iter().map(|r| r.median_ns.max(f64::MIN_POSITIVE).ln()).collect();
    let change_points = change_points(&logs)
        .into_iter()
        .map(|c| ChangePoint { index: c.index, before: c.before.exp(), after: c.after.exp() })
        .collect();
    Trend { rows, change_points }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{SplitMix64, Verdict};

    fn entry(commit: &str, p50: &[f64]) -> Entry {
        Entry {
            schema: HISTORY_SCHEMA,
            commit: commit.into(),
            date: "2026-12-02T00:00:00Z".into(),
            command: "regress".into(),
            cpu: "test".into(),
            checkpoints: vec![Point {
                scenario: "s".into(),
                checkpoint: "parse".into(),
                verdict: Some(Verdict::Unchanged),
                runs: [(Metric::P50, p50.to_vec())].into_iter().collect(),
            }],
        }
    }

    #[test]
    fn appended_entries_read_back_in_order_and_a_torn_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/history.jsonl");
        append(&path, &entry("aaa", &[100.0, 101.0])).unwrap();
        append(&path, &entry("bbb", &[105.0])).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back, vec![entry("aaa", &[100.0, 101.0]), entry("bbb", &[105.0])]);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"schema\":1,\"comm").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("history.jsonl"), "{err}");
    }

    #[test]
    fn the_trend_finds_a_step_between_the_commits_where_it_happened() {
        let mut rng = SplitMix64::new(11);
        let entries: Vec<Entry> = (0..30)
            .map(|i| {
                let level = if i < 18 { 800.0 } else { 880.0 };
                let runs: Vec<f64> = (0..5).map(|_| level * (1.0 + 0.01 * rng.normal())).collect();
                entry(&format!("c{i:02}"), &runs)
            })
            .collect();
        let t = trend(&entries, "s", "parse", Metric::P50);
        assert_eq!(t.rows.len(), 30);
        assert_eq!(t.change_points.len(), 1, "{:?}", t.change_points);
        let cp = &t.change_points[0];
        assert_eq!(t.rows[cp.index].commit, "c18");
        assert!((cp.before / 800.0 - 1.0).abs() < 0.01 && (cp.after / 880.0 - 1.0).abs() < 0.01, "{cp:?}");
        assert!(trend(&entries, "s", "other", Metric::P50).rows.is_empty());
        assert!(trend(&entries, "s", "parse", Metric::P99).rows.is_empty());
    }
}
