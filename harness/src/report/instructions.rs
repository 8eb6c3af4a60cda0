//! The instruction section of the gate's report (`--measure time,instructions`): one aligned
//! table, instructions per call beside time's verdict, then every disagreement with what it
//! means, then the pass's notes. The terminal writes it as is, Markdown inside a text fence.

use std::io::{self, Write};

use crate::model::InstructionReport;
use crate::stats::CountMethod;

/// Renders `ir` as text lines.
///
/// # Errors
/// Only those of `w`.
pub fn render(ir: &InstructionReport, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "Instructions per call under callgrind (mean; exact = zero spread in both arms, else the rank test; noise = run spread):"
    )?;
    let with_time = ir.rows.iter().any(|r| r.time.is_some());
    write!(
        w,
        "  {:<34} {:>12} {:>12} {:>9} {:>8} {:>5} {:<13}",
        "scenario/checkpoint", "baseline", "current", "change", "noise", "runs", "instructions"
    )?;
    if with_time {
        write!(w, " {:>9} {:<13}", "time p50", "time")?;
    }
    writeln!(w)?;
    for r in &ir.rows {
        let c = &r.comparison;
        write!(
            w,
            "  {:<34} {:>12.1} {:>12.1} {:>+8.3}% {:>7.3}% {:>5} {:<13}",
            format!("{}/{}", r.scenario, r.checkpoint),
            r.baseline,
            r.current,
            c.change * 100.0,
            c.noise * 100.0,
            format!("{}+{}", c.n_baseline, c.n_current),
            match c.method {
                CountMethod::Exact => format!("{} exact", c.verdict.as_str()),
                CountMethod::Rank(_) => c.verdict.as_str().to_owned(),
            }
        )?;
        if with_time {
            match &r.time {
                Some(t) => {
                    let ch = t.change.map_or_else(|| "-".to_owned(), |x| format!("{:+.1}%", x * 100.0));
                    write!(w, " {ch:>9} {:<13}", t.verdict.as_str())?;
                }
                None => write!(w, " {:>9} {:<13}", "-", "not judged")?,
            }
        }
        writeln!(w)?;
    }
    for r in &ir.rows {
        if let Some(d) = &r.disagreement {
            writeln!(w, "  DISAGREE {}/{}: {d}", r.scenario, r.checkpoint)?;
        }
    }
    for n in &ir.notes {
        writeln!(w, "  note: {n}")?;
    }
    Ok(())
}
