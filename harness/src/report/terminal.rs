//! The terminal reporter: a header per scenario and an aligned table per scenario, written for a
//! person reading a CI log or a shell.
//!
//! Layout, top to bottom: one line naming the command and the settings; per scenario a `==` header
//! (name, status, mode, runs, probe floor), a loud `!!` line for a cross-machine comparison, the
//! error of a failed scenario (indented, every line of it), the table (comparison columns, or the
//! Measure columns for `run`), and notes on lost or clamped samples; finally the summary line with
//! the exit code.
//!
//! `calibrate` and `verdict-bench` get the same treatment: a settings line, one aligned table,
//! then the A/A verdicts (calibration) or the quality targets (verdict bench).
//!
//! Like every reporter, this one computes nothing: each number comes from the model, and only
//! formatting happens here.
//!
//! Every row of a comparison table repeats the checkpoint name so that `grep regressed` on a CI log
//! finds whole rows. Colour (in [`Style::Color`] only) marks verdicts and the summary; it is applied
//! after alignment, and only to the last cell of a row or to whole lines, so escapes never upset the
//! column widths.

use std::io::{self, Write};

use super::format::{self, NONE};
use super::table::{paint, Paint, Table};
use super::{Document, Style};
use crate::model::{
    BenchReport, CalibrationReport, CheckpointResult, Mode, Presence, Report, ScenarioResult, ScenarioStatus,
    TargetState,
};
use crate::stats::Verdict;

/// Renders `doc` as text.
pub(crate) fn render(doc: Document<'_>, w: &mut dyn Write, style: Style) -> io::Result<()> {
    match doc {
        Document::Gate(report) => render_gate(report, w, style),
        Document::Calibration(c) => render_calibration(c, w, style),
        Document::VerdictBench(b) => render_bench(b, w, style),
    }
}

/// Renders the gate's `report`. See the module documentation for the layout.
fn render_gate(report: &Report, w: &mut dyn Write, style: Style) -> io::Result<()> {
    let strict = if report.strict { ", --strict" } else { "" };
    let looks = format::looks(report.looks);
    let line = format!(
        "funcscope {} {}: {} scenario{}, alpha {}{looks}, correction {}{strict}, started {}, {:.1} s{}",
        report.tool_version,
        report.command,
        report.scenarios.len(),
        if report.scenarios.len() == 1 { "" } else { "s" },
        report.alpha,
        format::correction(report.correction),
        report.started,
        report.wall_s,
        format::sampling(report.sampling_s),
    );
    writeln!(w, "{}", paint(style, Paint::Bold, &line))?;
    for scenario in &report.scenarios {
        writeln!(w)?;
        render_scenario(report, scenario, w, style)?;
    }
    if let Some(ir) = &report.instructions {
        writeln!(w)?;
        super::instructions::render(ir, w)?;
    }
    writeln!(w)?;
    let summary = format::summary(report);
    let colour = match report.exit_code {
        crate::exit_code::PASS => Paint::BoldGreen,
        _ => Paint::BoldRed,
    };
    writeln!(w, "{}", paint(style, colour, &summary))
}

fn render_scenario(report: &Report, s: &ScenarioResult, w: &mut dyn Write, style: Style) -> io::Result<()> {
    let mut header = format!("== {}: {} ({})", s.name, format::status(&s.status), format::mode(s.mode));
    if s.runs > 0 || !matches!(s.status, ScenarioStatus::Failed(_)) {
        header.push_str(&format!(", {}", format::run_counts(s)));
    }
    if s.floor_ns.is_finite() && s.floor_ns > 0.0 {
        header.push_str(&format!(", probe floor {}", format::duration(s.floor_ns)));
    }
    let header_paint = if matches!(s.status, ScenarioStatus::Failed(_)) { Paint::BoldRed } else { Paint::Bold };
    writeln!(w, "{}", paint(style, header_paint, &header))?;

    if s.mode == Mode::CrossMachine {
        let loud = format!("!! {}", format::cross_machine(s.machine_note.as_deref(), report.strict));
        writeln!(w, "{}", paint(style, Paint::BoldYellow, &loud))?;
    } else if let Some(note) = &s.machine_note {
        writeln!(w, "  note: {note}")?;
    }
    for line in format::context_lines(s) {
        writeln!(w, "  {line}")?;
    }
    if let ScenarioStatus::Failed(message) = &s.status {
        write_indented(w, "  error: ", message, style)?;
    }
    if s.status == ScenarioStatus::NoBaseline {
        writeln!(w, "  no baseline: run `cargo xtask baseline` to record one (measured only, not judged)")?;
    }

    match s.mode {
        Mode::Measure => render_measure(s, w)?,
        Mode::Baseline | Mode::CrossMachine | Mode::Paired => render_comparison(s, w, style)?,
    }
    for line in format::modes_lines(s) {
        writeln!(w, "{}", paint(style, Paint::Dim, &format!("  {line}")))?;
    }
    Ok(())
}

/// Writes `first_prefix` + the first line, and every further line indented to the same column.
fn write_indented(w: &mut dyn Write, first_prefix: &str, text: &str, style: Style) -> io::Result<()> {
    let pad = " ".repeat(first_prefix.chars().count());
    let text = text.trim_end();
    if text.is_empty() {
        return writeln!(w, "{}", paint(style, Paint::Red, &format!("{first_prefix}(no message)")));
    }
    for (i, line) in text.lines().enumerate() {
        let prefix = if i == 0 { first_prefix } else { &pad };
        writeln!(w, "{}", paint(style, Paint::Red, format!("{prefix}{line}").trim_end()))?;
    }
    Ok(())
}

fn render_comparison(s: &ScenarioResult, w: &mut dyn Write, style: Style) -> io::Result<()> {
    if s.checkpoints.is_empty() {
        return Ok(());
    }
    let (ci_label, common) =
        format::interval_header(s.checkpoints.iter().flat_map(|c| &c.metrics).filter_map(|m| m.comparison.as_ref()));
    let mut table = Table::new(
        &["checkpoint", "metric", "baseline", "current", "change", &ci_label, "p(adj)", "threshold", "verdict"],
        &[false, false, true, true, true, false, true, true, false],
    );
    for c in &s.checkpoints {
        add_checkpoint_rows(&mut table, c, common);
    }
    table.write_text(w, style)?;

    let lost: Vec<String> =
        s.checkpoints.iter().filter(|c| c.lost > 0).map(|c| format!("{} {}", c.name, format::count(c.lost))).collect();
    let clamped: Vec<String> = s
        .checkpoints
        .iter()
        .filter(|c| c.clamped > 0)
        .map(|c| format!("{} {}", c.name, format::count(c.clamped)))
        .collect();
    write_sample_notes(w, &lost, &clamped, style)
}

fn add_checkpoint_rows(table: &mut Table, c: &CheckpointResult, common: Option<f64>) {
    match c.presence {
        Presence::BaselineOnly => table.span(vec![c.name.clone(), NONE.into()], "only in baseline".into()),
        Presence::CurrentOnly => table.span(vec![c.name.clone(), NONE.into()], "new: no baseline".into()),
        Presence::Both if c.metrics.is_empty() => {
            table.span(vec![c.name.clone(), NONE.into()], "no samples to compare".into())
        }
        Presence::Both => {
            for m in &c.metrics {
                let mut row = vec![c.name.clone(), m.metric.as_str().into()];
                row.extend(format::metric_cells(m, common));
                row.push(format::verdict_cell(m));
                table.row(row, Some(if m.gating { verdict_paint(m.verdict) } else { Paint::Dim }));
            }
        }
    }
}

fn render_measure(s: &ScenarioResult, w: &mut dyn Write) -> io::Result<()> {
    let rows = format::measure_rows(s);
    if rows.is_empty() {
        return Ok(());
    }
    let mut header = vec!["checkpoint", "calls/run"];
    header.extend(format::MEASURE_METRICS.iter().map(|m| m.as_str()));
    let mut right = vec![true; header.len()];
    right[0] = false;
    let mut table = Table::new(&header, &right);
    for r in &rows {
        let mut cells = vec![r.name.to_owned(), r.calls_per_run.map_or_else(|| NONE.into(), format::per_run)];
        cells.extend(r.metrics.iter().map(|v| v.map_or_else(|| NONE.into(), format::duration)));
        table.row(cells, None);
    }
    table.write_text(w, Style::Plain)?;
    if s.run_results.len() > 1 {
        writeln!(w, "  (median over {} runs)", s.run_results.len())?;
    }
    let lost: Vec<String> =
        rows.iter().filter(|r| r.lost > 0).map(|r| format!("{} {}", r.name, format::count(r.lost))).collect();
    let clamped: Vec<String> =
        rows.iter().filter(|r| r.clamped > 0).map(|r| format!("{} {}", r.name, format::count(r.clamped))).collect();
    write_sample_notes(w, &lost, &clamped, Style::Plain)
}

fn write_sample_notes(w: &mut dyn Write, lost: &[String], clamped: &[String], style: Style) -> io::Result<()> {
    if !lost.is_empty() {
        let line = format!("  lost samples (ring overrun; statistics use the samples read): {}", lost.join(", "));
        writeln!(w, "{}", paint(style, Paint::Yellow, &line))?;
    }
    if !clamped.is_empty() {
        let line = format!("  clamped durations (too long for the sample field): {}", clamped.join(", "));
        writeln!(w, "{}", paint(style, Paint::Yellow, &line))?;
    }
    Ok(())
}

fn verdict_paint(v: Verdict) -> Paint {
    match v {
        Verdict::Regressed => Paint::BoldRed,
        Verdict::Improved => Paint::Green,
        Verdict::Unchanged => Paint::Dim,
        Verdict::Inconclusive => Paint::Yellow,
    }
}

/// Renders `calibrate`'s result: what the numbers mean, the noise table, the A/A verdicts and the
/// scenarios that failed.
fn render_calibration(c: &CalibrationReport, w: &mut dyn Write, style: Style) -> io::Result<()> {
    writeln!(w, "{}", format::calibration_intro(c))?;
    let mut table = Table::new(&format::NOISE_HEADER, &format::NOISE_RIGHT);
    for r in &c.rows {
        let mut cells = vec![r.scenario.clone(), r.checkpoint.clone()];
        cells.extend(format::noise_cells(r));
        table.row(cells, None);
    }
    table.write_text(w, style)?;
    writeln!(w)?;
    let colour = if c.aa.false_alarms.is_empty() { Paint::Bold } else { Paint::BoldRed };
    writeln!(w, "{}", paint(style, colour, &format::aa_verdicts(&c.aa)))?;
    if let Some(line) = format::session_offset(c) {
        writeln!(w, "{line}")?;
    }
    for f in &c.failed {
        write_indented(w, &format!("{}: failed: ", f.scenario), &f.error, style)?;
    }
    Ok(())
}

/// Renders `verdict-bench`'s summary: the settings line, the rates table and the targets.
fn render_bench(b: &BenchReport, w: &mut dyn Write, style: Style) -> io::Result<()> {
    writeln!(w, "{}", paint(style, Paint::Bold, &format::bench_settings(b)))?;
    let mut table = Table::new(&format::BENCH_HEADER, &format::BENCH_RIGHT);
    for r in &b.rows {
        table.row(format::bench_cells(r), None);
    }
    table.write_text(w, style)?;
    writeln!(w)?;
    writeln!(w, "targets (met / not met / not resolvable, judged from the 95% Wilson interval):")?;
    for t in &b.targets {
        let line = format!("  {:<8} {}", t.mode.as_str(), format::target(t));
        let colour = match t.state {
            TargetState::Met => Paint::Green,
            TargetState::NotMet => Paint::BoldRed,
            TargetState::NotResolvable | TargetState::NoData => Paint::Yellow,
        };
        writeln!(w, "{}", paint(style, colour, &line))?;
    }
    Ok(())
}
