//! The history trend of one checkpoint ([`crate::history::Trend`]) as a text table with the change
//! points marked, and as an SVG ([`super::plot::trend`]).

use std::io::{self, Write};

use super::format;
use super::table::Table;
use super::Style;
use crate::model::Trend;
use crate::stats::Metric;

/// The first 12 characters of a commit id (and `-dirty`, which follows the full id, is dropped
/// from the short form only when cut).
fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

/// Writes the table: one row per run (commit, date, median, change against the previous row, run
/// range, runs, verdict), a `<- change` mark on the first row of each new level, then one line per
/// change point with the levels before and after it.
pub(crate) fn render(trend: &Trend, what: &str, metric: Metric, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "{what} {} over {} runs", metric.as_str(), trend.rows.len())?;
    if trend.rows.is_empty() {
        return writeln!(w, "  (no run in the history measured it)");
    }
    let mut table = Table::new(
        &["#", "commit", "date", metric.as_str(), "vs prev", "range", "runs", "verdict", ""],
        &[true, false, false, true, true, false, true, false, false],
    );
    for (i, r) in trend.rows.iter().enumerate() {
        let prev =
            if i == 0 { format::NONE.to_owned() } else { format::change(r.median_ns / trend.rows[i - 1].median_ns) };
        let mark = if trend.change_points.iter().any(|c| c.index == i) { "<- change" } else { "" };
        table.row(
            vec![
                r.entry.to_string(),
                short(&r.commit),
                r.date.clone(),
                format::duration(r.median_ns),
                prev,
                format!("{} .. {}", format::duration(r.range_ns.0), format::duration(r.range_ns.1)),
                r.runs.to_string(),
                r.verdict.map_or(format::NONE, |v| v.as_str()).to_owned(),
                mark.to_owned(),
            ],
            None,
        );
    }
    table.write_text(w, Style::Plain)?;
    if trend.change_points.is_empty() {
        writeln!(w, "no change point (levels steady within the noise)")?;
    }
    for c in &trend.change_points {
        let r = &trend.rows[c.index];
        writeln!(
            w,
            "change point at {} (#{}): {} -> {} ({})",
            short(&r.commit),
            r.entry,
            format::duration(c.before),
            format::duration(c.after),
            format::change(c.after / c.before)
        )?;
    }
    Ok(())
}

/// The trend as an SVG: medians, run ranges, segment levels and change points.
pub(crate) fn svg(trend: &Trend, what: &str, metric: Metric) -> Option<String> {
    let rows: Vec<(String, f64, f64, f64)> =
        trend.rows.iter().map(|r| (short(&r.commit), r.median_ns, r.range_ns.0, r.range_ns.1)).collect();
    let mut bounds = vec![0];
    bounds.extend(trend.change_points.iter().map(|c| c.index));
    bounds.push(rows.len());
    // Each segment's level: the mean the change points report (geometric, back in ns).
    let level = |k: usize| match (trend.change_points.get(k), k.checked_sub(1).and_then(|j| trend.change_points.get(j)))
    {
        (Some(c), _) => c.before,
        (None, Some(c)) => c.after,
        (None, None) => {
            let logs: Vec<f64> = rows.iter().map(|r| r.1.ln()).collect();
            (logs.iter().sum::<f64>() / logs.len().max(1) as f64).exp()
        }
    };
    let segments: Vec<(usize, usize, f64)> =
        bounds.windows(2).enumerate().map(|(k, b)| (b[0], b[1], level(k))).collect();
    let changes: Vec<usize> = trend.change_points.iter().map(|c| c.index).collect();
    super::plot::trend(&format!("{what} {} over the history", metric.as_str()), &rows, &segments, &changes)
}
