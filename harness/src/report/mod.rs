//! Reporters: one result model, many renderings.
//!
//! Three documents ([`Document`]): the gate's [`Report`], `calibrate`'s [`CalibrationReport`] and
//! `verdict-bench`'s [`BenchReport`], all in [`crate::model`]. Each format is one module that renders
//! all three ([`Format`]; [`render`] dispatches), and every table goes through one table writer
//! (aligned text or Markdown), so adding a format is one new file plus one dispatch line.
//!
//! For the gate's report, every reporter writes to any [`Write`]r:
//!
//! * [`render_terminal`]: aligned tables for a shell or a CI log, optionally coloured ([`Style`]).
//! * [`render_markdown`]: GitHub-flavoured Markdown for a pull-request comment or a job summary.
//! * [`render_json`]: the whole report, pretty-printed, in the versioned schema
//!   ([`crate::model::REPORT_SCHEMA`]); it reads back into an equal [`Report`].
//! * [`render_junit`]: JUnit XML, one test case per checkpoint metric, for CI systems that
//!   display tests.
//! * [`render_github_annotations`]: GitHub Actions `::error`/`::warning` lines.
//! * [`render_html`]: one self-contained HTML page, the verdict tables plus SVG plots of every
//!   checkpoint's distributions (hand-written SVG, see `plot.rs`).
//!
//! [`write_outputs`] is the fan-out point for files: it writes the JSON and Markdown reports a
//! command was asked for, atomically; [`write_document`] writes any document in any format the
//! same way.
//!
//! **Architecture invariant: reporters compute nothing.** Verdicts, ratios, intervals, adjusted
//! p-values, thresholds and the tally all come from the model; a reporter only formats and orders
//! them. The one exception is the Measure table (`run`), which shows the median over runs of each
//! run's summary: a display aggregate, never an input to a verdict. Because they compute nothing,
//! the three formats cannot disagree about a result.
//!
//! **Why writers, not stdout.** Rendering into `&mut dyn Write` lets tests render into a
//! `Vec<u8>` and compare with committed snapshots (`report/snapshots/*.snap`), and lets the CLI
//! send the same text to stdout, a file or `$GITHUB_STEP_SUMMARY`.
//!
//! # Example
//!
//! ```no_run
//! # fn demo(report: &funcscope_harness::model::Report) -> std::io::Result<()> {
//! use funcscope_harness::report::{self, Outputs, Style};
//!
//! report::render_terminal(report, &mut std::io::stdout().lock(), Style::detect())?;
//! let outputs = Outputs { json: Some("target/funcscope/report.json".into()), ..Outputs::default() };
//! report::write_outputs(report, &outputs)?;
//! # Ok(())
//! # }
//! ```

mod findings;
mod format;
mod github;
mod html;
mod instructions;
mod json;
mod junit;
mod markdown;
mod plot;
pub mod progress;
mod table;
mod terminal;
mod trend;

#[cfg(test)]
mod tests;

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::model::{BenchReport, CalibrationReport, Report};

/// A document the reporters can render.
#[derive(Clone, Copy, Debug)]
pub enum Document<'a> {
    /// The gate's report (`regress`, `compare`, `run`, `baseline`).
    Gate(&'a Report),
    /// `calibrate`'s noise measurement.
    Calibration(&'a CalibrationReport),
    /// `verdict-bench`'s summary.
    VerdictBench(&'a BenchReport),
}

/// Renders the instruction section of a gate report as text (what the terminal and the
/// Markdown report show; also printed on its own by an instructions-only pass).
///
/// # Errors
/// Only those of `w`.
pub fn render_instructions(ir: &crate::model::InstructionReport, w: &mut dyn Write) -> io::Result<()> {
    instructions::render(ir, w)
}

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for a shell or a CI log.
    Terminal(Style),
    /// GitHub-flavoured Markdown.
    Markdown,
    /// Pretty JSON of the model, with a final newline.
    Json,
}

/// Renders `doc` in `format` to `w`: the one dispatch point of the reporters.
///
/// # Errors
/// Only those of `w`.
pub fn render(doc: Document<'_>, format: Format, w: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Terminal(style) => terminal::render(doc, w, style),
        Format::Markdown => markdown::render(doc, w),
        Format::Json => json::render(doc, w),
    }
}

/// Writes `doc` in `format` to the file `path`, atomically (see [`write_outputs`]).
///
/// # Errors
/// The I/O error, naming the file.
pub fn write_document(doc: Document<'_>, format: Format, path: &Path) -> io::Result<()> {
    write_atomically(path, |w| render(doc, format, w))
}

/// Files to write a report to, besides the terminal. `None` skips that format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outputs {
    /// Where to write the JSON report ([`render_json`]).
    pub json: Option<PathBuf>,
    /// Where to write the Markdown report ([`render_markdown`]).
    pub markdown: Option<PathBuf>,
    /// Where to write the JUnit XML report ([`render_junit`]).
    pub junit: Option<PathBuf>,
    /// Where to write the self-contained HTML report with plots ([`render_html`]).
    pub html: Option<PathBuf>,
    /// Append the run's per-checkpoint values to this JSON-lines history, keyed by the commit
    /// measured: `(file, commit)`. Not written by [`write_outputs`]: the commands append it
    /// (`crate::history`), after the report files.
    pub history: Option<(PathBuf, String)>,
    /// Print GitHub Actions annotations to stdout after the report
    /// ([`render_github_annotations`]); not a file.
    pub github_annotations: bool,
}

/// Whether the terminal reporter may use colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// No escape sequences at all: for files, pipes, CI logs and snapshots.
    Plain,
    /// ANSI SGR colours: verdicts (regressed red, improved green, unchanged dim, inconclusive
    /// yellow), the cross-machine warning, failures and the summary line.
    Color,
}

/// Whether to colour the terminal report (`--color`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    /// Always colour (e.g. a CI log viewer that renders ANSI colours).
    Always,
    /// Never colour.
    Never,
}

/// The process's `--color` choice, read by [`Style::detect`]: 0 auto, 1 always, 2 never. A
/// process-wide setting, like the terminal it describes, set once by the CLI.
static COLOR: AtomicU8 = AtomicU8::new(0);

/// Sets the `--color` choice for every later [`Style::detect`].
pub fn set_color_choice(choice: ColorChoice) {
    let v = match choice {
        ColorChoice::Auto => 0,
        ColorChoice::Always => 1,
        ColorChoice::Never => 2,
    };
    COLOR.store(v, Ordering::Relaxed);
}

impl Style {
    /// With `--color always` [`Style::Color`], with `--color never` [`Style::Plain`]; otherwise
    /// (auto) [`Style::Color`] if stdout is a terminal and the `NO_COLOR` environment variable is
    /// unset or empty (<https://no-color.org>), else [`Style::Plain`].
    pub fn detect() -> Style {
        match COLOR.load(Ordering::Relaxed) {
            1 => return Style::Color,
            2 => return Style::Plain,
            _ => {}
        }
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if io::stdout().is_terminal() && !no_color {
            Style::Color
        } else {
            Style::Plain
        }
    }
}

/// Renders `report` for a terminal or a log: per scenario a header line and an aligned table, then
/// a summary line with the exit code. [`Style::Plain`] output is plain ASCII text plus `µ` and `±`.
///
/// # Errors
/// Only those of `w`.
pub fn render_terminal(report: &Report, w: &mut dyn Write, style: Style) -> io::Result<()> {
    render(Document::Gate(report), Format::Terminal(style), w)
}

/// Renders `report` as GitHub-flavoured Markdown (a pull-request comment or a job summary): a
/// headline with the result, a table per scenario, and a collapsed block with the machine
/// fingerprint and settings.
///
/// # Errors
/// Only those of `w`.
pub fn render_markdown(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    render(Document::Gate(report), Format::Markdown, w)
}

/// Writes `report` as pretty JSON (with a final newline) in the versioned report schema.
///
/// # Errors
/// Those of `w`. A non-finite `f64` in the model is written as `null` (JSON has no `NaN`), which
/// does not read back into an `f64`.
pub fn render_json(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    render(Document::Gate(report), Format::Json, w)
}

/// Renders `report` as JUnit XML: a test suite per scenario, a test case per checkpoint metric,
/// a `<failure>` (with the change, interval, values, threshold and p-value in its message) for
/// each regression that fails the gate, `<skipped>` for what does not gate, `<error>` for a
/// scenario that failed to run.
///
/// # Errors
/// Only those of `w`.
pub fn render_junit(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    junit::render(report, w)
}

/// Renders `report` as one self-contained HTML page: the verdict table of every scenario and,
/// per checkpoint, SVG plots of both sides' per-call latency ECDF (log axis, p50 and p99 marked),
/// the probe's Deep histograms when recorded, and the run-level values side by side. No script
/// and no external resource.
///
/// # Errors
/// Only those of `w`.
pub fn render_html(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    html::render(report, w)
}

/// Renders the history trend of one checkpoint (`what`, e.g. `scenario/checkpoint`) as a text
/// table with its change points marked.
///
/// # Errors
/// Only those of `w`.
pub fn render_trend(
    trend: &crate::model::Trend,
    what: &str,
    metric: crate::stats::Metric,
    w: &mut dyn Write,
) -> io::Result<()> {
    trend::render(trend, what, metric, w)
}

/// The history trend of one checkpoint as an SVG document; `None` if it has no rows.
pub fn trend_svg(trend: &crate::model::Trend, what: &str, metric: crate::stats::Metric) -> Option<String> {
    trend::svg(trend, what, metric)
}

/// Renders GitHub Actions annotations for `report`: an `::error` line per regression that fails
/// the gate and per failed scenario, a `::warning` line per inconclusive or non-gating
/// regression, each with the numbers.
///
/// # Errors
/// Only those of `w`.
pub fn render_github_annotations(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    github::render(report, w)
}

/// Writes the file reports `outputs` asks for. Each file is written to a temporary file in its
/// destination directory (created if missing), flushed to disk and renamed over the destination,
/// so a reader (or a crash) never sees a half-written report.
///
/// # Errors
/// The first I/O error, naming the file. A file written before the error stays written.
pub fn write_outputs(report: &Report, outputs: &Outputs) -> io::Result<()> {
    if let Some(path) = &outputs.json {
        write_atomically(path, |w| render_json(report, w))?;
    }
    if let Some(path) = &outputs.markdown {
        write_atomically(path, |w| render_markdown(report, w))?;
    }
    if let Some(path) = &outputs.junit {
        write_atomically(path, |w| render_junit(report, w))?;
    }
    if let Some(path) = &outputs.html {
        write_atomically(path, |w| render_html(report, w))?;
    }

    Ok(())
}

/// Writes one report file with [`crate::fsutil::write_atomic`]; errors name the report.
fn write_atomically(path: &Path, render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    // Reports are artifacts others read: the usual 0644 (less the umask), not a temporary file's 0600.
    crate::fsutil::write_atomic(path, 0o644, render)
        .map_err(|e| io::Error::new(e.source.kind(), format!("writing report {}: {}", path.display(), e.source)))
}
