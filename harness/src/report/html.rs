//! One self-contained HTML file for a person: the headline, per scenario the verdict table (the
//! same cells as the terminal and Markdown tables, from [`super::format`]) and per checkpoint its
//! plots ([`super::plot`]) inline as SVG. No script, no external stylesheet, font, image or link
//! target: the file is a CI artifact that must open offline and years later.
//!
//! Layout: `<h1>` outcome, summary line, then a `<section class="scenario">` per scenario with
//! its context lines, `<table class="verdicts">` and a `<section class="checkpoint"
//! data-checkpoint="NAME">` per checkpoint (heading, then its plots side by side where the page is
//! wide enough, wrapped below each other where not); the machine fingerprint last. Every text goes
//! through [`escape`].

use std::io::{self, Write};

use super::format::{self, NONE};
use super::junit::escape;
use super::plot::{self, Sides};
use crate::model::{CheckpointResult, Mode, Presence, Report, ScenarioResult, ScenarioStatus};
use crate::stats::Verdict;

/// Inline style: system fonts, a table readable at a glance, plots that scale down but never up
/// (an SVG wider than the page shrinks with its text rather than being cut).
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}\
table{border-collapse:collapse;margin:8px 0 16px}th,td{padding:3px 10px;border-bottom:1px solid #ddd;\
text-align:left;white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.regressed td{background:#fde2e1}tr.improved td{background:#e3f4e1}tr.inconclusive td{background:#fff6d6}\
.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}.plots svg{max-width:100%;height:auto;border:1px solid #eee}\
.warn{color:#a00;font-weight:bold}pre{background:#f6f6f6;padding:8px;overflow-x:auto}\
code{font-family:DejaVu Sans Mono,Menlo,Consolas,monospace}";

/// Renders `report` as one HTML document.
///
/// # Errors
/// Only those of `w`.
pub(crate) fn render(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    let outcome = format::outcome(report.exit_code);
    writeln!(w, "<!DOCTYPE html>")?;
    writeln!(w, r#"<html lang="en">"#)?;
    writeln!(w, r#"<head><meta charset="utf-8"/><meta name="viewport" content="width=device-width"/>"#)?;
    writeln!(w, "<title>funcscope {}: {outcome}</title>", escape(&report.command))?;
    writeln!(w, "<style>{STYLE}</style></head>")?;
    writeln!(w, "<body>")?;
    writeln!(w, "<h1>funcscope {}: {outcome} (exit {})</h1>", escape(&report.command), report.exit_code)?;
    writeln!(w, r#"<p class="summary"><strong>{}</strong></p>"#, escape(&format::summary(report)))?;
    for s in &report.scenarios {
        scenario(report, s, w)?;
    }
    details(report, w)?;
    writeln!(w, "</body>")?;
    writeln!(w, "</html>")
}

fn scenario(report: &Report, s: &ScenarioResult, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, r#"<section class="scenario" data-scenario="{}">"#, escape(&s.name))?;
    let mut heading = format!("{}: {} ({})", s.name, format::status(&s.status), format::mode(s.mode));
    if s.runs > 0 || !matches!(s.status, ScenarioStatus::Failed(_)) {
        heading.push_str(&format!(", {}", format::run_counts(s)));
    }
    writeln!(w, "<h2>{}</h2>", escape(&heading))?;
    if s.mode == Mode::CrossMachine {
        writeln!(
            w,
            r#"<p class="warn">Warning: {}</p>"#,
            escape(&format::cross_machine(s.machine_note.as_deref(), report.strict))
        )?;
    }
    for line in format::context_lines(s).iter().chain(&format::modes_lines(s)) {
        writeln!(w, "<p>{}</p>", escape(line))?;
    }
    if let ScenarioStatus::Failed(message) = &s.status {
        writeln!(w, "<p class=\"warn\">Failed:</p><pre>{}</pre>", escape(message.trim_end()))?;
    }
    if matches!(s.mode, Mode::Baseline | Mode::CrossMachine | Mode::Paired) && !s.checkpoints.is_empty() {
        table(s, w)?;
    }
    let sides = match s.mode {
        Mode::Paired => Sides { base: "A", current: "B" },
        _ => Sides { base: "baseline", current: "current" },
    };
    for c in &s.checkpoints {
        checkpoint(c, sides, w)?;
    }
    writeln!(w, "</section>")
}

fn table(s: &ScenarioResult, w: &mut dyn Write) -> io::Result<()> {
    let (ci_label, common) =
        format::interval_header(s.checkpoints.iter().flat_map(|c| &c.metrics).filter_map(|m| m.comparison.as_ref()));
    writeln!(w, r#"<table class="verdicts">"#)?;
    write!(w, "<tr>")?;
    for (h, numeric) in [
        ("checkpoint", false),
        ("metric", false),
        ("baseline", true),
        ("current", true),
        ("change", true),
        (ci_label.as_str(), false),
        ("p(adj)", true),
        ("threshold", true),
        ("verdict", false),
    ] {
        write!(w, r#"<th{}>{}</th>"#, if numeric { r#" class="n""# } else { "" }, escape(h))?;
    }
    writeln!(w, "</tr>")?;
    for c in &s.checkpoints {
        let one_sided = match c.presence {
            Presence::BaselineOnly => Some("only in baseline"),
            Presence::CurrentOnly => Some("new: no baseline"),
            Presence::Both if c.metrics.is_empty() => Some("no samples to compare"),
            Presence::Both => None,
        };
        if let Some(note) = one_sided {
            writeln!(
                w,
                r#"<tr><td><code>{}</code></td><td>{NONE}</td><td colspan="7">{note}</td></tr>"#,
                escape(&c.name)
            )?;
            continue;
        }
        for m in &c.metrics {
            let class = match m.verdict {
                Verdict::Regressed if m.gating && c.accepted.is_none() => "regressed",
                Verdict::Improved => "improved",
                Verdict::Inconclusive => "inconclusive",
                _ => "",
            };
            write!(
                w,
                r#"<tr class="{class}"><td><code>{}</code></td><td>{}</td>"#,
                escape(&c.name),
                m.metric.as_str()
            )?;
            let cells = format::metric_cells(m, common);
            for (i, cell) in cells.iter().enumerate() {
                // The interval (index 3) is text; the others are numbers.
                let attr = if i == 3 { "" } else { r#" class="n""# };
                write!(w, "<td{attr}>{}</td>", escape(cell))?;
            }
            writeln!(w, "<td>{}</td></tr>", escape(&format::verdict_cell(m)))?;
        }
    }
    writeln!(w, "</table>")
}

fn checkpoint(c: &CheckpointResult, sides: Sides<'_>, w: &mut dyn Write) -> io::Result<()> {
    let plots = plot::checkpoint_plots(c, sides);
    writeln!(w, r#"<section class="checkpoint" data-checkpoint="{}">"#, escape(&c.name))?;
    let accepted = if c.accepted.is_some() { " (accepted)" } else { "" };
    writeln!(w, "<h3><code>{}</code>: {}{accepted}</h3>", escape(&c.name), c.verdict.as_str())?;
    if plots.is_empty() {
        writeln!(w, "<p>No distributions recorded for this checkpoint.</p>")?;
    } else {
        writeln!(w, r#"<div class="plots">"#)?;
        for svg in plots {
            w.write_all(svg.as_bytes())?;
        }
        writeln!(w, "</div>")?;
    }
    writeln!(w, "</section>")
}

fn details(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    let m = &report.machine;
    writeln!(w, "<details><summary>machine and settings</summary><table>")?;
    let rows = [
        ("started", report.started.clone()),
        ("funcscope", report.tool_version.clone()),
        ("alpha", format!("{} ({})", report.alpha, format::correction(report.correction))),
        ("wall time", format!("{}{}", format::seconds(report.wall_s), format::sampling(report.sampling_s))),
        ("CPU", m.cpu_model.clone()),
        ("cores", m.cores.to_string()),
        ("tick frequency", if m.tick_hz > 0.0 { format!("{:.0} MHz", m.tick_hz / 1e6) } else { "unknown".into() }),
        ("kernel", m.kernel.clone()),
        ("rustc", m.rustc.clone()),
        ("target", m.target.clone()),
    ];
    for (k, v) in rows {
        writeln!(w, r#"<tr><th>{k}</th><td style="white-space:normal">{}</td></tr>"#, escape(&v))?;
    }
    writeln!(w, "</table></details>")
}
