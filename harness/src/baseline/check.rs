//! Validation of a baseline, loaded or built: the invariants of the module documentation.

use std::ops::Range;

use super::write::key;
use super::{Baseline, CheckpointBaseline, BASELINE_SCHEMA, MIN_RUNS};
use crate::config::show_number;
use crate::stats::Metric;

/// A broken invariant, located by field path (as written in messages) and array index.
pub(super) struct Problem {
    /// Dotted path of the field, keys quoted as in the file (`checkpoints.a."p99.9"`).
    pub field: String,
    /// The array element, for per-run arrays.
    pub index: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Shortest duration a baseline may hold, in ns: one picosecond. Below it a value is not a
/// measurement (the finest tick is ~0.4 ns) and, as a reference, would turn every comparison
/// into "improved -100 %" and hide regressions.
pub(super) const MIN_DURATION_NS: f64 = 1e-3;

/// Longest duration a baseline may hold, in ns: a day (no run may last longer; see
/// `config::MAX_SECONDS`).
pub(super) const MAX_DURATION_NS: f64 = 86_400e9;

/// Largest calls-per-run figure: 2^53 (exact in an f64; 10^15 calls at 1 ns each is 11 days).
const MAX_CALLS_PER_RUN: f64 = 9_007_199_254_740_992.0;

/// Largest coefficient of variation accepted: 10 (1000 %). A noise figure beyond it is not a
/// measurement and would print as a percentage of hundreds of digits.
const MAX_NOISE_CV: f64 = 10.0;

/// Tick frequencies a baseline file may give, in Hz: 1 MHz to 100 GHz (real counters run at
/// 24 MHz - 5 GHz). Checked when a file is read ([`super::Baseline::parse`]); in memory 0 means
/// "unknown" (see `Fingerprint::machine_difference`).
pub(super) const TICK_HZ: std::ops::RangeInclusive<f64> = 1e6..=1e11;

/// Whether `v` is a duration a baseline may hold.
fn is_duration(v: f64) -> bool {
    (MIN_DURATION_NS..=MAX_DURATION_NS).contains(&v)
}

/// How a duration is out of range, for messages.
fn not_a_duration(v: f64) -> String {
    format!("{} is not a positive duration in [{MIN_DURATION_NS:e}, {MAX_DURATION_NS:e}] ns", show_number(v))
}

/// Checks the invariants listed in the module documentation; the first violation wins, in file
/// order, so a message points at the topmost problem.
pub(super) fn check(b: &Baseline) -> Result<(), Problem> {
    let problem = |field: String, index: Option<usize>, message: String| Err(Problem { field, index, message });
    if b.schema != BASELINE_SCHEMA {
        return problem("schema".into(), None, format!("version {} is not {BASELINE_SCHEMA}", b.schema));
    }
    if b.scenario.is_empty() {
        return problem("scenario".into(), None, "the scenario name is empty".into());
    }
    let runs = b.recorded.runs;
    if runs < MIN_RUNS {
        return problem(
            "recorded.runs".into(),
            None,
            format!("{runs} run(s) recorded, at least {MIN_RUNS} needed to measure run-to-run noise"),
        );
    }
    let sessions = &b.recorded.sessions;
    if sessions.is_empty() || sessions.contains(&0) || sessions.iter().sum::<usize>() != runs {
        return problem(
            "recorded.sessions".into(),
            None,
            format!(
                "{sessions:?} must be runs per recording session, each at least 1, summing to recorded.runs = {runs}"
            ),
        );
    }
    if !is_rfc3339_utc(&b.recorded.date) {
        return problem(
            "recorded.date".into(),
            None,
            format!("{:?} is not an RFC 3339 UTC date like 2026-05-04T09:12:44Z", b.recorded.date),
        );
    }
    if b.checkpoints.is_empty() {
        return problem("checkpoints".into(), None, "no checkpoints".into());
    }
    if let Some(r) = &b.reference {
        for m in Metric::ALL {
            let field = format!("reference.{}", key(m.as_str()));
            let Some(v) = r.runs.get(&m) else {
                return problem(field, None, "missing per-run array".into());
            };
            if v.len() != runs {
                return problem(field, None, format!("{} values for {runs} runs", v.len()));
            }
            if let Some(i) = v.iter().position(|x| !is_duration(*x)) {
                return problem(field, Some(i), not_a_duration(v[i]));
            }
        }
    }
    let (pairs, rule) = order();
    for (name, cp) in &b.checkpoints {
        let field = |k: &str| format!("checkpoints.{}.{}", key(name), key(k));
        if !(0.0..=MAX_CALLS_PER_RUN).contains(&cp.calls_per_run) {
            return problem(
                field("calls_per_run"),
                None,
                format!("{} is not a count in [0, 2^53]", show_number(cp.calls_per_run)),
            );
        }
        for m in Metric::ALL {
            match cp.noise_cv.get(&m) {
                None => return problem(field("noise_cv"), None, format!("no value for metric {m}")),
                Some(v) if !(0.0..=MAX_NOISE_CV).contains(v) => {
                    return problem(
                        format!("{}.{}", field("noise_cv"), key(m.as_str())),
                        None,
                        format!("{} is not a coefficient of variation in [0, {MAX_NOISE_CV}]", show_number(*v)),
                    )
                }
                Some(_) => {}
            }
        }
        for m in Metric::ALL {
            let Some(values) = cp.runs.get(&m) else {
                return problem(field(m.as_str()), None, "missing per-run array".into());
            };
            if values.len() != runs {
                return problem(
                    field(m.as_str()),
                    None,
                    format!(
                        "{} value(s), but recorded.runs = {runs}: every per-run array needs one value per run{}",
                        values.len(),
                        lengths(cp)
                    ),
                );
            }
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !is_duration(**v)) {
                return problem(
                    field(m.as_str()),
                    Some(i),
                    format!(
                        "value {} at index {i} (run {}) is not a positive duration in [{MIN_DURATION_NS:e}, {MAX_DURATION_NS:e}] ns",
                        show_number(*v),
                        i + 1
                    ),
                );
            }
        }
        // Order within each run: the metrics are order statistics of the same samples.
        for &(lo, hi) in &pairs {
            let (a, b) = (&cp.runs[&lo], &cp.runs[&hi]);
            if let Some(i) = (0..runs).find(|&i| a[i] > b[i]) {
                return problem(
                    field(hi.as_str()),
                    Some(i),
                    format!(
                        "at index {i} (run {}) {hi} = {} is below {lo} = {}; per-run values must satisfy {rule}",
                        i + 1,
                        b[i],
                        a[i]
                    ),
                );
            }
        }
        for m in Metric::POOLED {
            let v = cp.pooled.get(m).unwrap_or(f64::NAN);
            if !is_duration(v) {
                return problem(
                    format!("{}.{}", field("pooled"), key(m.as_str())),
                    None,
                    format!("value {}", not_a_duration(v)),
                );
            }
        }
    }
    Ok(())
}

/// The pairs `(lo, hi)` with `lo <= hi` in every run, derived from [`Metric::quantile`]: the
/// quantiles in increasing order, and each other metric (the mean) between the lowest and the
/// highest; and the rule as text (`min <= p50 <= ... <= max and min <= mean <= max`).
pub(super) fn order() -> (Vec<(Metric, Metric)>, String) {
    let mut chain: Vec<(f64, Metric)> = Metric::ALL.into_iter().filter_map(|m| Some((m.quantile()?, m))).collect();
    chain.sort_by(|a, b| a.0.total_cmp(&b.0));
    let chain: Vec<Metric> = chain.into_iter().map(|(_, m)| m).collect();
    let (Some(&lowest), Some(&highest)) = (chain.first(), chain.last()) else {
        return (Vec::new(), String::new());
    };
    let mut pairs: Vec<(Metric, Metric)> = chain.windows(2).map(|w| (w[0], w[1])).collect();
    let names: Vec<&str> = chain.iter().map(|m| m.as_str()).collect();
    let mut rules = vec![names.join(" <= ")];
    for m in Metric::ALL.into_iter().filter(|m| m.quantile().is_none()) {
        pairs.extend([(lowest, m), (m, highest)]);
        rules.push(format!("{lowest} <= {m} <= {highest}"));
    }
    (pairs, rules.join(" and "))
}

/// `" (min has 4, p50 has 3, ...)"` when the arrays of a checkpoint differ in length, else `""`.
fn lengths(cp: &CheckpointBaseline) -> String {
    let lens: Vec<usize> = cp.runs.values().map(Vec::len).collect();
    if lens.windows(2).all(|w| w[0] == w[1]) {
        return String::new();
    }
    let parts: Vec<String> = cp.runs.iter().map(|(m, v)| format!("{m} has {}", v.len())).collect();
    format!(" ({})", parts.join(", "))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`: the UTC form of RFC 3339 the recorder writes.
pub(super) fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let base = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && (at(10, b'T') || at(10, b't'))
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19);
    let rest = b.get(19..).unwrap_or_default();
    let rest = match rest.strip_prefix(b".") {
        Some(frac) => {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return false;
            }
            &frac[n..]
        }
        None => rest,
    };
    base && (rest == b"Z" || rest == b"z")
}
