//! The JSON reporter: a whole document as pretty-printed JSON, for machines (dashboards, bots,
//! later comparisons). The schema is the model's serde form, versioned by its `schema` field
//! ([`crate::model::REPORT_SCHEMA`], [`crate::model::CALIBRATION_SCHEMA`],
//! [`crate::model::BENCH_SCHEMA`]); this module adds nothing, drops nothing and computes nothing, so
//! a document read back with `serde_json::from_str` equals the one written.
//!
//! One caveat of JSON itself: it has no `NaN` or infinity. `serde_json` writes a non-finite `f64` as
//! `null`, which does not read back into an `f64` field unless the model says so (the calibration
//! and verdict-bench fields that may be `NaN` read `null` back as `NaN`); the gate's model is
//! expected to hold finite numbers (or `None`) wherever a value may be missing.

use std::io::{self, Write};

use super::Document;

/// Writes `doc` as pretty JSON followed by a newline.
pub(crate) fn render(doc: Document<'_>, w: &mut dyn Write) -> io::Result<()> {
    match doc {
        Document::Gate(report) => serde_json::to_writer_pretty(&mut *w, report)?,
        Document::Calibration(c) => serde_json::to_writer_pretty(&mut *w, c)?,
        Document::VerdictBench(b) => serde_json::to_writer_pretty(&mut *w, b)?,
    }
    writeln!(w)
}
