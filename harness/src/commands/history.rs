//! `history SCENARIO/CHECKPOINT`: the trend of one checkpoint over the JSON-lines history that
//! `regress --history` / `compare --history` append to, as a table on stdout and an SVG file, with
//! its change points (see [`crate::history`] and [`crate::stats::changepoint`]). Runs nothing.
//! Always exits 0 when the history can be read: a change point is information, not a gate.

use std::path::PathBuf;

use super::Selection;
use crate::error::{Error, Result};
use crate::history;
use crate::report;
use crate::stats::Metric;
use crate::workspace;

/// Options of `history`.
#[derive(Clone, Debug)]
pub struct Options {
    /// `SCENARIO/CHECKPOINT`.
    pub target: String,
    /// The history file (default `TARGET/funcscope/history.jsonl`).
    pub file: Option<PathBuf>,
    /// The metric to follow.
    pub metric: Metric,
    /// Where to write the SVG (default `TARGET/funcscope/history-SCENARIO-CHECKPOINT.svg`).
    pub svg: Option<PathBuf>,
    /// The configuration file, for the default paths.
    pub config: Option<PathBuf>,
}

/// Runs `history`; returns 0.
///
/// # Errors
/// A target without a `/`, an unreadable or malformed history (naming the line), no
/// configuration when a default path needs one.
pub fn run(o: &Options) -> Result<i32> {
    let Some((scenario, checkpoint)) = o.target.split_once('/') else {
        return Err(Error::Usage(format!("history {}: expected SCENARIO/CHECKPOINT", o.target)));
    };
    let out_dir = || -> Result<PathBuf> {
        let cfg = Selection { config: o.config.clone(), ..Selection::default() }.load_config()?;
        Ok(workspace::output_dir(&cfg))
    };
    let file = match &o.file {
        Some(f) => f.clone(),
        None => out_dir()?.join("history.jsonl"),
    };
    let entries = history::read(&file).map_err(|e| Error::Usage(e.to_string()))?;
    let trend = history::trend(&entries, scenario, checkpoint, o.metric);
    let mut stdout = std::io::stdout().lock();
    report::render_trend(&trend, &o.target, o.metric, &mut stdout).map_err(|e| Error::io("writing the trend", e))?;
    if let Some(svg) = report::trend_svg(&trend, &o.target, o.metric) {
        let path = match &o.svg {
            Some(p) => p.clone(),
            None => {
                let safe: String =
                    o.target.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }).collect();
                file.parent().map_or_else(|| PathBuf::from("."), PathBuf::from).join(format!("history-{safe}.svg"))
            }
        };
        crate::fsutil::write_atomic(&path, 0o644, |w| w.write_all(svg.as_bytes()))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e.source))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(0)
}
