//! Intended regressions: `--accept SCENARIO/CHECKPOINT` and `gate.accept` make a known slowdown
//! non-gating. The checkpoint is still judged and shown as regressed; its
//! [`CheckpointResult::accepted`](crate::model::CheckpointResult::accepted) holds the reason, and
//! the tally's exit code ignores it. An acceptance is one checkpoint by name, never a pattern, so
//! it cannot hide a regression elsewhere; one that matches nothing is returned, for a warning
//! (a stale entry, or a typo).

use crate::config::Acceptance;
use crate::model::Report;

/// One accepted checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept {
    /// Scenario name.
    pub scenario: String,
    /// Checkpoint name.
    pub checkpoint: String,
    /// Why (shown in the report).
    pub reason: String,
}

impl Accept {
    /// Parses `SCENARIO/CHECKPOINT` (the first `/` splits; checkpoint names may contain more).
    ///
    /// # Errors
    /// A message naming `what` (the flag or configuration key) when either part is missing: a
    /// usage error for the caller (this layer sits beside `error`, not above it).
    pub fn parse(spec: &str, reason: &str, what: &str) -> Result<Accept, String> {
        match spec.split_once('/') {
            Some((s, c)) if !s.is_empty() && !c.is_empty() => {
                Ok(Accept { scenario: s.to_owned(), checkpoint: c.to_owned(), reason: reason.to_owned() })
            }
            _ => Err(format!("{what} {spec:?}: expected SCENARIO/CHECKPOINT, e.g. http_parse/parse_headers")),
        }
    }

    /// `--accept` values (reason: "accepted on the command line") followed by `gate.accept`.
    ///
    /// # Errors
    /// The first malformed entry.
    pub fn all(flags: &[String], config: &[Acceptance]) -> Result<Vec<Accept>, String> {
        let cli = flags.iter().map(|f| Accept::parse(f, "accepted on the command line (--accept)", "--accept"));
        let cfg = config.iter().map(|a| Accept::parse(&a.checkpoint, &a.reason, "gate.accept checkpoint"));
        cli.chain(cfg).collect()
    }
}

/// Marks the accepted checkpoints of `report` and recomputes its tally and exit code. Returns the
/// acceptances that matched no checkpoint of a scenario in the report.
pub fn accept(report: &mut Report, accepted: &[Accept]) -> Vec<Accept> {
    let mut unmatched = Vec::new();
    for a in accepted {
        let hit = report
            .scenarios
            .iter_mut()
            .filter(|s| s.name == a.scenario)
            .flat_map(|s| s.checkpoints.iter_mut())
            .find(|c| c.name == a.checkpoint);
        match hit {
            Some(c) => c.accepted = Some(a.reason.clone()),
            None => unmatched.push(a.clone()),
        }
    }
    let (tally, exit_code) = super::tally(&report.scenarios, report.strict);
    report.tally = tally;
    report.exit_code = exit_code;
    unmatched
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::tests::regressed_report;

    #[test]
    fn an_accepted_regression_is_shown_but_does_not_gate() {
        let mut r = regressed_report();
        assert_eq!(r.exit_code, crate::exit_code::REGRESSION);
        let (s, c) = (r.scenarios[0].name.clone(), r.scenarios[0].checkpoints[0].name.clone());
        let spec = format!("{s}/{c}");
        let unmatched = accept(
            &mut r,
            &[
                Accept::parse(&spec, "intended: 5x more work", "--accept").unwrap(),
                Accept::parse("s/nope", "x", "--accept").unwrap(),
            ],
        );
        assert_eq!(r.exit_code, crate::exit_code::PASS);
        assert_eq!(r.scenarios[0].checkpoints[0].verdict, crate::stats::Verdict::Regressed, "still shown");
        assert_eq!(r.scenarios[0].checkpoints[0].accepted.as_deref(), Some("intended: 5x more work"));
        assert_eq!(unmatched.len(), 1);
        assert_eq!(unmatched[0].checkpoint, "nope");
        // Another checkpoint's acceptance leaves the gate closed.
        let mut r = regressed_report();
        accept(&mut r, &[Accept::parse(&format!("{s}/other"), "x", "--accept").unwrap()]);
        assert_eq!(r.exit_code, crate::exit_code::REGRESSION);
    }

    #[test]
    fn malformed_acceptances_are_usage_errors_naming_the_source() {
        for bad in ["parse_headers", "/cp", "s/", ""] {
            let e = Accept::parse(bad, "r", "--accept").unwrap_err().to_string();
            assert!(e.contains("--accept") && e.contains("SCENARIO/CHECKPOINT"), "{e}");
        }
        let cfg = [Acceptance { checkpoint: "oops".into(), reason: "r".into() }];
        let e = Accept::all(&[], &cfg).unwrap_err().to_string();
        assert!(e.contains("gate.accept"), "{e}");
        let ok = Accept::all(&["a/b/c".into()], &[]).unwrap();
        assert_eq!((ok[0].scenario.as_str(), ok[0].checkpoint.as_str()), ("a", "b/c"));
    }
}
