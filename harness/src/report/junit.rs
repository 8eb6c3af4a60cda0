//! JUnit XML for CI systems that display test results (GitLab's test report, Jenkins, Azure, the
//! GitHub test-reporter actions): one `<testsuite>` per scenario, one `<testcase>` per
//! checkpoint metric ([`super::findings`]).
//!
//! | finding | JUnit |
//! |---|---|
//! | unchanged, improved | passed |
//! | regression that gates | `<failure type="regressed">`, the numbers in `message` |
//! | inconclusive, or a regression that does not gate (report-only metric, cross-machine, accepted) | `<skipped>` with the reason |
//! | checkpoint on one side only, scenario not compared | `<skipped>` |
//! | scenario failed to run | one test case `run` with `<error>` and the whole message |
//!
//! So the failures and errors of the file are exactly what makes the gate fail. Written by hand
//! (the format is a few elements); every text goes through [`escape`].

use std::io::{self, Write};

use super::findings::{findings, Finding, Kind};
use crate::model::Report;
use crate::stats::Verdict;

/// Renders `report` as JUnit XML.
///
/// # Errors
/// Only those of `w`.
pub(crate) fn render(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    let all = findings(report);
    let count = |of: &[Finding<'_>], k: Kind| of.iter().filter(|f| f.kind == k).count();
    let skipped = |of: &[Finding<'_>]| count(of, Kind::Warning) + count(of, Kind::NotCompared);
    let rows = report.instructions.as_ref().map_or(&[][..], |ir| &ir.rows[..]);
    let ir_failed = rows.iter().filter(|r| r.comparison.verdict == Verdict::Regressed).count();
    let ir_skipped = rows.iter().filter(|r| r.comparison.verdict == Verdict::Inconclusive).count();
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<testsuites name="funcscope {}" tests="{}" failures="{}" errors="{}" skipped="{}" time="{:.3}">"#,
        escape(&report.command),
        all.len() + rows.len(),
        count(&all, Kind::Regressed) + ir_failed,
        count(&all, Kind::Error),
        skipped(&all) + ir_skipped,
        report.wall_s.max(0.0),
    )?;
    for s in &report.scenarios {
        let mine: Vec<Finding<'_>> = all.iter().filter(|f| std::ptr::eq(f.scenario, s)).cloned().collect();
        writeln!(
            w,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}" skipped="{}">"#,
            escape(&s.name),
            mine.len(),
            count(&mine, Kind::Regressed),
            count(&mine, Kind::Error),
            skipped(&mine),
        )?;
        for f in &mine {
            testcase(f, w)?;
        }
        writeln!(w, "  </testsuite>")?;
    }
    if !rows.is_empty() {
        // Instruction counts: one test per checkpoint, failed when its instructions regressed.
        writeln!(
            w,
            r#"  <testsuite name="instructions" tests="{}" failures="{ir_failed}" errors="0" skipped="{ir_skipped}">"#,
            rows.len()
        )?;
        for r in rows {
            let c = &r.comparison;
            let open = format!(
                r#"    <testcase classname="funcscope.instructions.{}" name="{} instructions""#,
                escape(&r.scenario),
                escape(&r.checkpoint)
            );
            let message = escape(&format!(
                "{}/{} instructions {}: {:+.3}% [{:+.3}%, {:+.3}%], {:.1} -> {:.1} per call, threshold {:.2}%{}",
                r.scenario,
                r.checkpoint,
                c.verdict.as_str(),
                c.change * 100.0,
                c.ci_low * 100.0,
                c.ci_high * 100.0,
                r.baseline,
                r.current,
                c.threshold * 100.0,
                r.disagreement.as_deref().map_or_else(String::new, |d| format!("; {d}"))
            ));
            match c.verdict {
                Verdict::Regressed => writeln!(
                    w,
                    "{open}>\n      <failure type=\"regressed\" message=\"{message}\">{message}</failure>\n    </testcase>"
                )?,
                Verdict::Inconclusive => writeln!(w, "{open}>\n      <skipped message=\"{message}\"/>\n    </testcase>")?,
                Verdict::Unchanged | Verdict::Improved => writeln!(w, "{open}/>")?,
            }
        }
        writeln!(w, "  </testsuite>")?;
    }
    writeln!(w, "</testsuites>")
}

fn testcase(f: &Finding<'_>, w: &mut dyn Write) -> io::Result<()> {
    let name = match (f.checkpoint, f.metric) {
        (Some(c), Some(m)) => format!("{} {}", c.name, m.metric.as_str()),
        (Some(c), None) => c.name.clone(),
        _ => "run".to_owned(),
    };
    let open = format!(r#"    <testcase classname="funcscope.{}" name="{}""#, escape(&f.scenario.name), escape(&name));
    let message = escape(&f.message);
    match f.kind {
        Kind::Pass => writeln!(w, "{open}/>"),
        Kind::Regressed => writeln!(
            w,
            "{open}>\n      <failure type=\"regressed\" message=\"{message}\">{message}</failure>\n    </testcase>"
        ),
        Kind::Warning | Kind::NotCompared => {
            writeln!(w, "{open}>\n      <skipped message=\"{message}\"/>\n    </testcase>")
        }
        Kind::Error => {
            let full = match &f.scenario.status {
                crate::model::ScenarioStatus::Failed(why) => escape(why),
                _ => message.clone(),
            };
            writeln!(
                w,
                "{open}>\n      <error type=\"scenario failed\" message=\"{message}\">{full}</error>\n    </testcase>"
            )
        }
    }
}

/// `text` as XML character data or an attribute value: the five markup characters as entities,
/// line breaks and tabs as character references (an attribute would otherwise fold them into
/// spaces), other control characters (not allowed in XML 1.0) dropped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}
