//! GitHub Actions workflow commands: one `::error` per regression that fails the gate and per
//! scenario that failed to run, one `::warning` per inconclusive or non-gating regression
//! ([`super::findings`]); unchanged, improved and uncompared checkpoints say nothing. Printed to
//! stdout, where the runner turns them into annotations on the run and the pull request.
//! <https://docs.github.com/actions/reference/workflow-commands-for-github-actions>

use std::io::{self, Write};

use super::findings::{findings, Kind};
use crate::model::Report;
use crate::stats::Verdict;

/// Renders the annotations of `report`, one line each.
///
/// # Errors
/// Only those of `w`.
pub(crate) fn render(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    for f in findings(report) {
        let level = match f.kind {
            Kind::Regressed | Kind::Error => "error",
            Kind::Warning => "warning",
            Kind::Pass | Kind::NotCompared => continue,
        };
        let what = match f.kind {
            Kind::Error => "scenario failed".to_owned(),
            _ => f.metric.map_or("", |m| m.verdict.as_str()).to_owned(),
        };
        let subject = match (f.checkpoint, f.metric) {
            (Some(c), Some(m)) => format!("{}/{} {}", f.scenario.name, c.name, m.metric.as_str()),
            _ => f.scenario.name.clone(),
        };
        let title = format!("funcscope: {subject} {what}");
        writeln!(w, "::{level} title={}::{}", property(&title), data(&f.message))?;
    }
    // Instruction counts: an error per regression, a warning per inconclusive checkpoint.
    for r in report.instructions.iter().flat_map(|ir| &ir.rows) {
        let c = &r.comparison;
        let level = match c.verdict {
            Verdict::Regressed => "error",
            Verdict::Inconclusive => "warning",
            Verdict::Unchanged | Verdict::Improved => continue,
        };
        let title = format!("funcscope: {}/{} instructions {}", r.scenario, r.checkpoint, c.verdict.as_str());
        let message = format!(
            "{}/{} instructions {}: {:+.3}%, {:.1} -> {:.1} per call{}",
            r.scenario,
            r.checkpoint,
            c.verdict.as_str(),
            c.change * 100.0,
            r.baseline,
            r.current,
            r.disagreement.as_deref().map_or_else(String::new, |d| format!("; {d}"))
        );
        writeln!(w, "::{level} title={}::{}", property(&title), data(&message))?;
    }
    Ok(())
}

/// A command's message: `%`, CR and LF escaped, as the runner expects.
fn data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A command's property value: as [`data`], plus `:` and `,`, which end a property.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}
