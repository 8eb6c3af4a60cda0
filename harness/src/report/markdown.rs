//! The Markdown reporter: GitHub-flavoured Markdown for a pull-request comment or a job summary
//! (`$GITHUB_STEP_SUMMARY`).
//!
//! A headline with the overall result and the exit code, then per scenario a heading, a loud
//! blockquote for a cross-machine comparison, the error of a failed scenario in a code block, and a
//! table with the same columns as the terminal table; at the end a collapsed `<details>` block with
//! the machine fingerprint, the statistical settings, each scenario's mode and every note. No emoji:
//! verdicts are words, a regression is bold.
//!
//! `calibrate` gets a heading, the noise table, the A/A verdicts and the machine; `verdict-bench`
//! a heading, its settings, the rates table and the targets as a list. Like every reporter, this
//! one computes nothing: it formats and escapes what the model holds.
//!
//! Everything that comes from outside (checkpoint and scenario names, notes, error messages) is
//! escaped: names go into code spans, free text gets its Markdown punctuation backslash-escaped,
//! and error output goes into a fenced block longer than any backtick run inside it.

use std::io::{self, Write};

use super::format::{self, NONE};
use super::table::Table;
use super::Document;
use crate::fingerprint::Fingerprint;
use crate::model::{
    BenchReport, CalibrationReport, CheckpointResult, Mode, Presence, Report, ScenarioResult, ScenarioStatus,
    TargetState,
};
use crate::stats::Verdict;

/// Renders `doc` as Markdown.
pub(crate) fn render(doc: Document<'_>, w: &mut dyn Write) -> io::Result<()> {
    match doc {
        Document::Gate(report) => render_gate(report, w),
        Document::Calibration(c) => render_calibration(c, w),
        Document::VerdictBench(b) => render_bench(b, w),
    }
}

/// Renders the gate's `report`. See the module documentation for the layout.
fn render_gate(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "## funcscope {}: {} (exit {})",
        text(&report.command),
        format::outcome(report.exit_code),
        report.exit_code
    )?;
    writeln!(w)?;
    writeln!(w, "**{}**", text(&format::summary(report)))?;
    for s in &report.scenarios {
        writeln!(w)?;
        render_scenario(report, s, w)?;
    }
    if let Some(ir) = &report.instructions {
        let mut table = Vec::new();
        super::instructions::render(ir, &mut table)?;
        let body = String::from_utf8_lossy(&table);
        let fence = fence_for(&body);
        writeln!(w, "\n### Instructions per call (callgrind)\n\n{fence}text\n{body}{fence}")?;
    }
    writeln!(w)?;
    render_details(report, w)
}

fn render_scenario(report: &Report, s: &ScenarioResult, w: &mut dyn Write) -> io::Result<()> {
    let mut heading = format!("### {}: {} ({})", code(&s.name), format::status(&s.status), format::mode(s.mode));
    if s.runs > 0 || !matches!(s.status, ScenarioStatus::Failed(_)) {
        heading.push_str(&format!(", {}", format::run_counts(s)));
    }
    if s.floor_ns.is_finite() && s.floor_ns > 0.0 {
        heading.push_str(&format!(", probe floor {}", format::duration(s.floor_ns)));
    }
    writeln!(w, "{heading}")?;

    if s.mode == Mode::CrossMachine {
        writeln!(w)?;
        let sentence = format::cross_machine(s.machine_note.as_deref(), report.strict);
        writeln!(w, "> **Warning: {}**", text(&sentence))?;
    }
    let context = format::context_lines(s);
    if !context.is_empty() {
        writeln!(w)?;
        for line in context {
            writeln!(w, "{}  ", text(&line))?;
        }
    }
    if let ScenarioStatus::Failed(message) = &s.status {
        writeln!(w)?;
        writeln!(w, "**Failed:**")?;
        writeln!(w)?;
        let fence = fence_for(message);
        writeln!(w, "{fence}text")?;
        writeln!(w, "{}", message.trim_end())?;
        writeln!(w, "{fence}")?;
    }
    if s.status == ScenarioStatus::NoBaseline {
        writeln!(w)?;
        writeln!(w, "No baseline: run `cargo xtask baseline` to record one (measured only, not judged).")?;
    }
    match s.mode {
        Mode::Measure => render_measure(s, w)?,
        Mode::Baseline | Mode::CrossMachine | Mode::Paired => render_comparison(s, w)?,
    }
    let modes = format::modes_lines(s);
    if !modes.is_empty() {
        writeln!(w)?;
        for line in modes {
            writeln!(w, "- {}", text(&line))?;
        }
    }
    Ok(())
}

fn render_comparison(s: &ScenarioResult, w: &mut dyn Write) -> io::Result<()> {
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
        checkpoint_rows(&mut table, c, common);
    }
    writeln!(w)?;
    table.write_markdown(w)?;
    let lost: Vec<String> = s
        .checkpoints
        .iter()
        .filter(|c| c.lost > 0)
        .map(|c| format!("{} {}", code(&c.name), format::count(c.lost)))
        .collect();
    let clamped: Vec<String> = s
        .checkpoints
        .iter()
        .filter(|c| c.clamped > 0)
        .map(|c| format!("{} {}", code(&c.name), format::count(c.clamped)))
        .collect();
    sample_notes(w, &lost, &clamped)
}

fn checkpoint_rows(table: &mut Table, c: &CheckpointResult, common: Option<f64>) {
    let one_sided = match c.presence {
        Presence::BaselineOnly => Some("only in baseline"),
        Presence::CurrentOnly => Some("new: no baseline"),
        Presence::Both if c.metrics.is_empty() => Some("no samples to compare"),
        Presence::Both => None,
    };
    if let Some(note) = one_sided {
        return table.span(vec![code(&c.name), NONE.into()], note.into());
    }
    for m in &c.metrics {
        let verdict = match m.verdict {
            Verdict::Regressed if m.gating => format!("**{}**", format::verdict_cell(m)),
            _ => format::verdict_cell(m),
        };
        let mut cells = vec![code(&c.name), m.metric.as_str().into()];
        cells.extend(format::metric_cells(m, common));
        cells.push(verdict);
        table.row(cells, None);
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
        let mut cells = vec![code(r.name), r.calls_per_run.map_or_else(|| NONE.into(), format::per_run)];
        cells.extend(r.metrics.iter().map(|v| v.map_or_else(|| NONE.into(), format::duration)));
        table.row(cells, None);
    }
    writeln!(w)?;
    table.write_markdown(w)?;
    if s.run_results.len() > 1 {
        writeln!(w)?;
        writeln!(w, "Median over {} runs.", s.run_results.len())?;
    }
    let lost: Vec<String> =
        rows.iter().filter(|r| r.lost > 0).map(|r| format!("{} {}", code(r.name), format::count(r.lost))).collect();
    let clamped: Vec<String> = rows
        .iter()
        .filter(|r| r.clamped > 0)
        .map(|r| format!("{} {}", code(r.name), format::count(r.clamped)))
        .collect();
    sample_notes(w, &lost, &clamped)
}

fn sample_notes(w: &mut dyn Write, lost: &[String], clamped: &[String]) -> io::Result<()> {
    if !lost.is_empty() {
        writeln!(w)?;
        writeln!(w, "Lost samples (ring overrun; statistics use the samples read): {}.", lost.join(", "))?;
    }
    if !clamped.is_empty() {
        writeln!(w)?;
        writeln!(w, "Clamped durations (too long for the sample field): {}.", clamped.join(", "))?;
    }
    Ok(())
}

fn render_details(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    let m = &report.machine;
    writeln!(w, "<details>")?;
    writeln!(w, "<summary>Machine, settings and notes</summary>")?;
    writeln!(w)?;
    let mut rows = machine_rows(m);
    rows.extend([
        ("alpha", format!("{}{}", report.alpha, format::looks(report.looks))),
        ("correction", format::correction(report.correction).into()),
        ("strict (cross-machine verdicts gate)", if report.strict { "yes" } else { "no" }.into()),
        ("funcscope", text(&report.tool_version)),
        ("started", text(&report.started)),
        ("wall time", format!("{:.1} s{}", report.wall_s, format::sampling(report.sampling_s))),
        ("report schema", report.schema.to_string()),
    ]);
    key_value_table(&rows).write_markdown(w)?;
    writeln!(w)?;
    writeln!(w, "Modes and notes:")?;
    writeln!(w)?;
    for s in &report.scenarios {
        let mut line = format!("- {}: {}", code(&s.name), format::mode(s.mode));
        if let Some(note) = &s.machine_note {
            line.push_str(&format!("; {}", text(note)));
        }
        writeln!(w, "{line}")?;
    }
    writeln!(w)?;
    writeln!(w, "</details>")
}

/// Renders `calibrate`'s result.
fn render_calibration(c: &CalibrationReport, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "## funcscope calibrate: noise and minimum detectable effect")?;
    writeln!(w)?;
    writeln!(w, "{}", text(&format::calibration_intro(c)))?;
    writeln!(w)?;
    let mut table = Table::new(&format::NOISE_HEADER, &format::NOISE_RIGHT);
    for r in &c.rows {
        let mut cells = vec![code(&r.scenario), code(&r.checkpoint)];
        cells.extend(format::noise_cells(r));
        table.row(cells, None);
    }
    table.write_markdown(w)?;
    writeln!(w)?;
    let aa = text(&format::aa_verdicts(&c.aa));
    if c.aa.false_alarms.is_empty() {
        writeln!(w, "{aa}")?;
    } else {
        writeln!(w, "**{aa}**")?;
    }
    if let Some(line) = format::session_offset(c) {
        writeln!(w)?;
        writeln!(w, "{}", text(&line))?;
    }
    for f in &c.failed {
        writeln!(w)?;
        writeln!(w, "**{} failed:**", code(&f.scenario))?;
        writeln!(w)?;
        let fence = fence_for(&f.error);
        writeln!(w, "{fence}text")?;
        writeln!(w, "{}", f.error.trim_end())?;
        writeln!(w, "{fence}")?;
    }
    writeln!(w)?;
    writeln!(w, "<details>")?;
    writeln!(w, "<summary>Machine</summary>")?;
    writeln!(w)?;
    let mut rows = machine_rows(&c.machine);
    rows.push(("started", text(&c.started)));
    key_value_table(&rows).write_markdown(w)?;
    writeln!(w)?;
    writeln!(w, "</details>")
}

/// Renders `verdict-bench`'s summary.
fn render_bench(b: &BenchReport, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "## funcscope verdict-bench")?;
    writeln!(w)?;
    writeln!(w, "{}; started {}.", text(&format::bench_settings(b)), text(&b.started))?;
    writeln!(w)?;
    let mut table = Table::new(&format::BENCH_HEADER, &format::BENCH_RIGHT);
    for r in &b.rows {
        table.row(format::bench_cells(r), None);
    }
    table.write_markdown(w)?;
    writeln!(w)?;
    writeln!(w, "Targets (met / not met / not resolvable, judged from the 95% Wilson interval):")?;
    writeln!(w)?;
    for t in &b.targets {
        let line = text(&format::target(t));
        if t.state == TargetState::NotMet {
            writeln!(w, "- {}: **{line}**", t.mode.as_str())?;
        } else {
            writeln!(w, "- {}: {line}", t.mode.as_str())?;
        }
    }
    Ok(())
}

/// The machine fingerprint as (key, Markdown value) rows.
fn machine_rows(m: &Fingerprint) -> Vec<(&'static str, String)> {
    let tick = if m.tick_hz > 0.0 { format!("{:.0} MHz", m.tick_hz / 1e6) } else { "unknown".into() };
    vec![
        ("CPU", text(&m.cpu_model)),
        ("cores", m.cores.to_string()),
        ("tick frequency", tick),
        ("kernel", code(&m.kernel)),
        ("rustc", code(&m.rustc)),
        ("target", code(&m.target)),
    ]
}

/// A two-column table without headings, for settings.
fn key_value_table(rows: &[(&str, String)]) -> Table {
    let mut table = Table::new(&["", ""], &[false, false]);
    for (k, v) in rows {
        table.row(vec![(*k).to_owned(), v.clone()], None);
    }
    table
}

/// `s` as an inline code span that survives a table cell: `|` escaped (GitHub unescapes it
/// inside code spans in tables) and a longer delimiter when `s` contains backticks.
fn code(s: &str) -> String {
    let s = s.replace('|', "\\|").replace('\n', " ");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// Free text with Markdown punctuation backslash-escaped and line breaks flattened, safe in a
/// paragraph, a heading or a table cell.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

/// A code fence longer than any backtick run in `body` (at least three backticks).
fn fence_for(body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}
