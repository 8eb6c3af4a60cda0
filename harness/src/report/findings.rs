//! The gate's report as a flat list of findings, one per (scenario, checkpoint, metric): what the
//! CI-facing reporters (JUnit XML, GitHub annotations) show, each as one line with its numbers.
//!
//! Nothing is decided here: the verdict, whether the metric gates (`gate.metrics`), the mode and
//! `--strict` all come from the model; a finding only sorts them into what a CI system can show
//! (a failed test, a warning, a skipped test). A regression is a [`Kind::Regressed`] exactly when
//! it counts towards the report's exit code (see `judge::tally`): a gating metric, not
//! cross-machine unless strict.

use super::format;
use crate::model::{CheckpointResult, MetricResult, Mode, Presence, Report, ScenarioResult, ScenarioStatus};
use crate::stats::Verdict;

/// What a CI system should make of a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Unchanged or improved: a passed test.
    Pass,
    /// A regression that fails the gate.
    Regressed,
    /// Worth a look, does not fail the gate: inconclusive, or a regression that does not gate
    /// (report-only metric, cross-machine without `--strict`).
    Warning,
    /// Not compared: no baseline, a checkpoint on one side only, a measured-only run.
    NotCompared,
    /// The scenario failed to run (fails the gate).
    Error,
}

/// One (scenario, checkpoint, metric) finding, or one per failed scenario.
#[derive(Clone, Debug)]
pub(crate) struct Finding<'a> {
    /// The scenario.
    pub(crate) scenario: &'a ScenarioResult,
    /// The checkpoint (`None` for a failed scenario).
    pub(crate) checkpoint: Option<&'a CheckpointResult>,
    /// The metric (`None` for a failed scenario or a checkpoint that was not compared).
    pub(crate) metric: Option<&'a MetricResult>,
    /// What it means for CI.
    pub(crate) kind: Kind,
    /// One line with the numbers: `http_parse/parse_headers p50 regressed: +12.3% [+8.0%, +16.1%]
    /// at 99% confidence, 812.3 ns -> 912.2 ns, threshold ±2.0%, p(adj) 0.001; paired against ...`.
    pub(crate) message: String,
}

/// Every finding of `report`, in report order.
pub(crate) fn findings(report: &Report) -> Vec<Finding<'_>> {
    let mut out = Vec::new();
    for s in &report.scenarios {
        if let ScenarioStatus::Failed(why) = &s.status {
            out.push(Finding {
                scenario: s,
                checkpoint: None,
                metric: None,
                kind: Kind::Error,
                message: format!("{} failed to run: {}", s.name, why.lines().next().unwrap_or("")),
            });
            continue;
        }
        for c in &s.checkpoints {
            let not_compared = |why: &str| Finding {
                scenario: s,
                checkpoint: Some(c),
                metric: None,
                kind: Kind::NotCompared,
                message: format!("{}/{}: {why}", s.name, c.name),
            };
            if s.status != ScenarioStatus::Compared {
                out.push(not_compared(&format!("not compared ({})", format::status(&s.status))));
                continue;
            }
            match c.presence {
                Presence::Both => {}
                Presence::BaselineOnly => {
                    out.push(not_compared("only in the baseline (removed, renamed, or it never ran)"));
                    continue;
                }
                Presence::CurrentOnly => {
                    out.push(not_compared("new checkpoint, nothing to compare with"));
                    continue;
                }
            }
            for m in &c.metrics {
                out.push(metric_finding(report, s, c, m));
            }
        }
    }
    out
}

fn metric_finding<'a>(
    report: &Report,
    s: &'a ScenarioResult,
    c: &'a CheckpointResult,
    m: &'a MetricResult,
) -> Finding<'a> {
    let counts = m.gating && (s.mode != Mode::CrossMachine || report.strict);
    let accepted = c.accepted.as_deref();
    let kind = match m.verdict {
        Verdict::Regressed if counts && accepted.is_none() => Kind::Regressed,
        Verdict::Regressed | Verdict::Inconclusive => Kind::Warning,
        Verdict::Unchanged | Verdict::Improved => Kind::Pass,
    };
    let mut message = format!("{}/{} {} {}", s.name, c.name, m.metric.as_str(), m.verdict.as_str());
    if let Some(cmp) = &m.comparison {
        message.push_str(&format!(
            ": {} {} at {} confidence",
            format::change(cmp.ratio),
            format::interval(cmp),
            format::confidence(cmp.confidence)
        ));
    }
    message.push_str(&format!(
        ", {} -> {}, threshold {}, p(adj) {}",
        m.baseline_ns.map_or_else(|| format::NONE.into(), format::duration),
        m.current_ns.map_or_else(|| format::NONE.into(), format::duration),
        format::threshold(m.threshold),
        format::p_value(m.p_adjusted),
    ));
    if m.verdict == Verdict::Regressed {
        if let Some(reason) = accepted {
            message.push_str(&format!(" (accepted, not gating: {reason})"));
        } else if !m.gating {
            message.push_str(" (report-only metric, not gating)");
        } else if !counts {
            message.push_str(" (cross-machine, not gating without --strict)");
        }
    }
    message.push_str(&format!("; {} against {}", format::mode(s.mode), s.against.as_deref().unwrap_or("-")));
    Finding { scenario: s, checkpoint: Some(c), metric: Some(m), kind, message }
}
