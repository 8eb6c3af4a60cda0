//! The JSON reporter: the whole [`Report`] as pretty-printed JSON, for machines (dashboards, bots,
//! later comparisons). The schema is the model's serde form, versioned by its `schema` field
//! ([`crate::model::REPORT_SCHEMA`]); this module adds nothing and drops nothing, so a report read
//! back with `serde_json::from_str::<Report>` equals the one written.
//!
//! One caveat of JSON itself: it has no `NaN` or infinity. `serde_json` writes a non-finite `f64` as
//! `null`, which does not read back into an `f64` field; the model is expected to hold finite
//! numbers (or `None`) wherever a value may be missing.

use std::io::{self, Write};

use crate::model::Report;

/// Writes `report` as pretty JSON followed by a newline.
pub(crate) fn render(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, report)?;
    writeln!(w)
}
