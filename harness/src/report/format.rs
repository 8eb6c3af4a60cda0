//! Formatting shared by the human-readable reporters (terminal and Markdown): durations, signed
//! percents, confidence levels, p-values, counts, the one-line summary, and the cells and sentences
//! of the calibration and verdict-bench documents. Pure functions from
//! numbers to text; nothing here decides anything.

use crate::model::{
    AaVerdicts, BenchReport, BenchRow, CalibrationReport, Mode, NoiseRow, Proportion, Report, ScenarioStatus, Tally,
    Target, TargetState,
};
use crate::stats::{Comparison, Correction, Metric};

/// Placeholder for a value that does not exist (no baseline, no comparison, a `NaN`).
pub(crate) const NONE: &str = "-";

/// A duration in nanoseconds with 3-4 significant digits and the largest unit that keeps the
/// number at or above 1: `7.20 ns`, `812.3 ns`, `12.41 µs`, `3.20 ms`, `1.50 s`.
///
/// Two decimals below 100 in the chosen unit, one from 100 up. A value that would round up to
/// `1000.0` moves to the next unit (`999.97 ns` is `1.00 µs`, not `1000.0 ns`).
pub(crate) fn duration(ns: f64) -> String {
    if !ns.is_finite() {
        return NONE.to_owned();
    }
    const UNITS: [(f64, &str); 4] = [(1.0, "ns"), (1e3, "µs"), (1e6, "ms"), (1e9, "s")];
    let mut i = UNITS.iter().rposition(|&(scale, _)| ns.abs() >= scale).unwrap_or(0);
    // Carry into the next unit when one decimal would show 1000.0.
    if i + 1 < UNITS.len() && (ns.abs() / UNITS[i].0) >= 999.95 {
        i += 1;
    }
    let (scale, unit) = UNITS[i];
    let v = ns / scale;
    if v.abs() < 99.995 {
        format!("{v:.2} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// A ratio current / baseline as a signed percent change with one decimal: `1.041` is `+4.1%`,
/// `0.88` is `-12.0%`. A change that rounds to zero is `+0.0%` (never `-0.0%`).
pub(crate) fn change(ratio: f64) -> String {
    if !ratio.is_finite() {
        return NONE.to_owned();
    }
    let pct = (ratio - 1.0) * 100.0;
    if pct.abs() < 0.05 {
        "+0.0%".to_owned()
    } else {
        format!("{pct:+.1}%")
    }
}

/// A comparison's interval as signed percent changes: `[+2.0%, +6.3%]`.
pub(crate) fn interval(cmp: &Comparison) -> String {
    format!("[{}, {}]", change(cmp.ci_low), change(cmp.ci_high))
}

/// A confidence level (`0.95`) as a percent label (`95%`), with as many decimals (up to 4) as it
/// takes not to round a level such as Holm's `1 - 0.05 / 14 = 0.99643` to `100%`: `99.64%`.
/// Trailing zeros are dropped.
pub(crate) fn confidence(level: f64) -> String {
    if !level.is_finite() {
        return NONE.to_owned();
    }
    let pct = level * 100.0;
    let mut text = format!("{pct:.4}");
    for decimals in 0..=4 {
        let t = format!("{pct:.decimals$}");
        let rounded: f64 = t.parse().unwrap_or(pct);
        // Enough decimals once the label neither reaches 100 (unless it is 100) nor is off by more
        // than a hundredth of a point.
        if (rounded < 100.0 || pct >= 100.0) && (rounded - pct).abs() < 0.005 {
            text = t;
            break;
        }
    }
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{text}%")
}

/// The label of the interval column: `95% CI` when every comparison in `cmps` has the same
/// level, `CI` when they differ (each cell then carries its own level, see [`interval_cell`]).
/// The common level, if any, is returned too.
pub(crate) fn interval_header<'a>(cmps: impl IntoIterator<Item = &'a Comparison>) -> (String, Option<f64>) {
    let mut level: Option<f64> = None;
    let mut mixed = false;
    for c in cmps {
        match level {
            None => level = Some(c.confidence),
            Some(l) if l.to_bits() != c.confidence.to_bits() => mixed = true,
            Some(_) => {}
        }
    }
    match level {
        Some(l) if !mixed => (format!("{} CI", confidence(l)), Some(l)),
        Some(_) => ("CI".to_owned(), None),
        None => ("CI".to_owned(), None),
    }
}

/// One interval cell: `[+2.0%, +6.3%]`, prefixed with its own level (`99%: [...]`) when the column
/// has no common level.
pub(crate) fn interval_cell(cmp: &Comparison, common: Option<f64>) -> String {
    match common {
        Some(_) => interval(cmp),
        None => format!("{}: {}", confidence(cmp.confidence), interval(cmp)),
    }
}

/// A p-value: three decimals from `0.001` up, scientific below (`2.1e-5`), `-` if absent.
pub(crate) fn p_value(p: Option<f64>) -> String {
    match p {
        Some(p) if p.is_finite() && p >= 0.0005 => format!("{p:.3}"),
        Some(p) if p.is_finite() && p > 0.0 => format!("{p:.1e}"),
        Some(p) if p.is_finite() && p >= 0.0 => "0".to_owned(),
        _ => NONE.to_owned(),
    }
}

/// A relative threshold as a symmetric band: `0.03` is `±3.0%`.
pub(crate) fn threshold(t: f64) -> String {
    if t.is_finite() {
        format!("±{:.1}%", t * 100.0)
    } else {
        NONE.to_owned()
    }
}

/// An integer with thousands separators: `1234567` is `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A calls-per-run figure: an integer with separators when whole, else one decimal.
pub(crate) fn per_run(n: f64) -> String {
    if !n.is_finite() || n < 0.0 {
        NONE.to_owned()
    } else if n.fract() == 0.0 && n < u64::MAX as f64 {
        count(n as u64)
    } else {
        format!("{n:.1}")
    }
}

/// Median of the per-run values of one metric, for the Measure table (values without a number
/// skipped): the only statistic the reporters take, and only to display what `run` measured;
/// verdicts never come from it.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    crate::stats::median(&v)
}

/// Human name of a correction.
pub(crate) fn correction(c: crate::stats::Correction) -> &'static str {
    match c {
        Correction::Holm => "Holm (family-wise error rate)",
        Correction::BenjaminiHochberg => "Benjamini-Hochberg (false discovery rate)",
        Correction::None => "none",
    }
}

/// Short name of a mode.
pub(crate) fn mode(m: Mode) -> &'static str {
    match m {
        Mode::Baseline => "vs baseline",
        Mode::CrossMachine => "vs baseline, CROSS-MACHINE",
        Mode::Paired => "paired A/B, same machine",
        Mode::Measure => "measure only",
    }
}

/// Lines saying what a scenario was compared with and how drift was handled (may be empty).
pub(crate) fn context_lines(s: &crate::model::ScenarioResult) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(a) = &s.against {
        v.push(format!("against: {a}"));
    }
    if let Some(d) = &s.drift {
        v.push(format!(
            "machine speed: the reference workload ran {} than when the baseline was recorded \
             ({} vs {} reference runs); checkpoints were judged relative to it",
            if d.factor >= 1.0 {
                format!("{:.1}% slower", (d.factor - 1.0) * 100.0)
            } else {
                format!("{:.1}% faster", (1.0 / d.factor - 1.0) * 100.0)
            },
            d.current_runs,
            d.baseline_runs
        ));
    }
    for c in &s.checkpoints {
        if let Some(reason) = &c.accepted {
            v.push(format!("accepted (a regression of {} does not gate): {reason}", c.name));
        }
    }
    v
}

/// The session-offset line of `calibrate` (`None` without same-machine baselines).
pub(crate) fn session_offset(c: &crate::model::CalibrationReport) -> Option<String> {
    let s = c.session.as_ref()?;
    let verdict = if s.session_cv > s.configured {
        "more than gate.session_cv allows: baseline mode (--against-baseline) would raise false alarms here; keep the default paired mode, or raise gate.session_cv"
    } else {
        "within gate.session_cv: baseline mode is calibrated on this machine"
    };
    Some(format!(
        "session offset against the stored baselines: {:.1}% estimated session spread over {} checkpoints (largest {:+.1}% at {}); gate.session_cv = {:.1}%: {verdict}",
        s.session_cv * 100.0,
        s.checkpoints,
        s.largest * 100.0,
        s.largest_at,
        s.configured * 100.0
    ))
}

/// The modes and variance lines of a paired scenario (empty when there is no analysis).
pub(crate) fn modes_lines(s: &crate::model::ScenarioResult) -> Vec<String> {
    let Some(m) = &s.modes else { return Vec::new() };
    let pct = |x: f64| format!("{:.0}", x * 100.0);
    let signed = |r: f64| format!("{:+.1}%", (r - 1.0) * 100.0);
    let mut v = Vec::new();
    let parts: Vec<String> = m
        .checkpoints
        .iter()
        .filter_map(|c| {
            let p = c.variance.as_ref()?;
            Some(format!("{} {}/{}/{}", c.checkpoint, pct(p.round), pct(p.process), pct(p.within)))
        })
        .collect();
    if !parts.is_empty() {
        v.push(format!("variance of p50 by source (round/process/within, %): {}", parts.join(", ")));
    }
    for c in &m.checkpoints {
        if let Some(k) = &c.modes {
            let mut line = format!(
                "modes: {}: a slow mode {}: A {}/{} runs, B {}/{} (frequency change: Fisher p {:.2})",
                c.checkpoint,
                signed(k.slow_ratio),
                k.a_slow,
                k.a_runs,
                k.b_slow,
                k.b_runs,
                k.frequency_p
            );
            if let Some([est, lo, hi]) = k.same_mode_change {
                line.push_str(&format!(
                    "; within a mode ({} rounds): {} [{}, {}]",
                    k.same_mode_rounds,
                    signed(est),
                    signed(lo),
                    signed(hi)
                ));
            }
            v.push(line);
        }
    }
    if let Some(sh) = &m.shared {
        v.push(format!(
            "slow mode across {} checkpoints: phi {}{}",
            sh.checkpoints,
            sh.mean_phi.map_or("-".into(), |p| format!("{p:.2}")),
            if sh.scenario_wide { " (scenario-wide)" } else { " (per checkpoint)" }
        ));
    }
    v.extend(m.advice.iter().map(|a| format!("hint: {a}")));
    v
}

/// The run counts of a scenario header: `8 runs vs 8 baseline runs` or `12 paired rounds`.
pub(crate) fn run_counts(s: &crate::model::ScenarioResult) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    match s.mode {
        Mode::Paired => format!("{} paired round{}", s.runs, plural(s.runs)),
        Mode::Measure => format!("{} run{}", s.runs, plural(s.runs)),
        _ => format!("{} run{} vs {} baseline run{}", s.runs, plural(s.runs), s.baseline_runs, plural(s.baseline_runs)),
    }
}

/// The value cells of one metric row, shared by the terminal and Markdown tables: baseline,
/// current, change, interval, p(adj), threshold.
pub(crate) fn metric_cells(m: &crate::model::MetricResult, common: Option<f64>) -> [String; 6] {
    let cmp = m.comparison.as_ref();
    [
        m.baseline_ns.map_or_else(|| NONE.into(), duration),
        m.current_ns.map_or_else(|| NONE.into(), duration),
        cmp.map_or_else(|| NONE.into(), |c| change(c.ratio)),
        cmp.map_or_else(|| NONE.into(), |c| interval_cell(c, common)),
        p_value(m.p_adjusted),
        threshold(m.threshold),
    ]
}

/// The verdict cell: the verdict, `" (report)"` after a report-only metric's, and the rounds it
/// was decided at when adaptive sampling froze it earlier (`"regressed @24"`).
pub(crate) fn verdict_cell(m: &crate::model::MetricResult) -> String {
    let mut s = m.verdict.as_str().to_owned();
    if let Some(n) = m.decided_at {
        s.push_str(&format!(" @{n}"));
    }
    if m.no_regression {
        s.push_str(" (not slower)");
    }
    if !m.gating {
        s.push_str(" (report)");
    }
    s
}

/// `" (sampling S s)"`: the part of the wall time the sampling budget bounds (the rest is
/// building and setup); `""` when nothing was sampled.
pub(crate) fn sampling(s: Option<f64>) -> String {
    s.map_or_else(String::new, |s| format!(" (sampling {s:.1} s)"))
}

/// `""` for a fixed design, else `" over N looks (adaptive)"`.
pub(crate) fn looks(n: usize) -> String {
    if n > 1 {
        format!(" over {n} looks (adaptive sampling)")
    } else {
        String::new()
    }
}

/// Short name of a status (the failure message is rendered separately).
pub(crate) fn status(s: &ScenarioStatus) -> &'static str {
    match s {
        ScenarioStatus::Compared => "compared",
        ScenarioStatus::NoBaseline => "no baseline",
        ScenarioStatus::Measured => "measured",
        ScenarioStatus::Failed(_) => "FAILED",
    }
}

/// The cross-machine warning sentence (without the `!!` marker).
pub(crate) fn cross_machine(note: Option<&str>, strict: bool) -> String {
    let note = note.unwrap_or("the baseline was recorded on another machine");
    if strict {
        format!("cross-machine comparison: {note}; verdicts gate anyway (--strict)")
    } else {
        format!("cross-machine comparison: {note}; verdicts do not gate (use --strict)")
    }
}

/// The word for an exit code: `PASS`, `FAIL` or `ERROR`.
pub(crate) fn outcome(exit_code: i32) -> &'static str {
    match exit_code {
        crate::exit_code::PASS => "PASS",
        crate::exit_code::REGRESSION | crate::exit_code::SCENARIO_FAILED => "FAIL",
        _ => "ERROR",
    }
}

/// The counts of a tally, non-zero ones only, most severe first:
/// `1 scenario failed to run, 1 checkpoint regressed, 14 unchanged, 2 inconclusive`.
pub(crate) fn tally(t: &Tally, scenarios: usize) -> String {
    let mut parts = Vec::new();
    if t.failed_scenarios > 0 {
        let s = if t.failed_scenarios == 1 { "scenario" } else { "scenarios" };
        parts.push(format!("{} {s} failed to run", t.failed_scenarios));
    }
    let verdicts = [
        (t.regressed, "regressed"),
        (t.improved, "improved"),
        (t.unchanged, "unchanged"),
        (t.inconclusive, "inconclusive"),
        (t.one_sided, "on one side only"),
    ];
    let mut noun_said = false;
    for (n, what) in verdicts {
        if n == 0 {
            continue;
        }
        if noun_said {
            parts.push(format!("{n} {what}"));
        } else {
            let noun = if n == 1 { "checkpoint" } else { "checkpoints" };
            parts.push(format!("{n} {noun} {what}"));
            noun_said = true;
        }
    }
    if parts.is_empty() {
        let s = if scenarios == 1 { "scenario" } else { "scenarios" };
        parts.push(format!("{scenarios} {s} measured, nothing compared"));
    }
    parts.join(", ")
}

/// The closing line: outcome, tally and exit code, e.g.
/// `FAIL: 1 checkpoint regressed, 14 unchanged (exit 1)`. A passing report with regressions
/// (possible only when they came from a cross-machine comparison) says why they did not gate.
pub(crate) fn summary(report: &Report) -> String {
    let mut line = format!(
        "{}: {} (exit {})",
        outcome(report.exit_code),
        tally(&report.tally, report.scenarios.len()),
        report.exit_code
    );
    if report.exit_code == crate::exit_code::PASS && report.tally.regressed > 0 {
        line.push_str("; regressions on a cross-machine comparison do not gate (use --strict)");
    }
    line
}

/// The metrics of the Measure table, in display order (their names are the column labels).
pub(crate) const MEASURE_METRICS: [Metric; Metric::ALL.len()] = Metric::ALL;

/// Per-checkpoint figures of a Measure-mode scenario: the median over runs of each run's count
/// and of each metric, plus lost/clamped samples summed over runs.
pub(crate) struct MeasureRow<'a> {
    /// Checkpoint name.
    pub name: &'a str,
    /// Median calls per run.
    pub calls_per_run: Option<f64>,
    /// Median over runs of each of [`MEASURE_METRICS`], in ns (`None`: no run had samples).
    pub metrics: [Option<f64>; Metric::ALL.len()],
    /// Samples lost over all runs.
    pub lost: u64,
    /// Durations clamped over all runs.
    pub clamped: u64,
}

/// The Measure table's rows of a scenario, sorted by checkpoint name (the union over its runs).
pub(crate) fn measure_rows(s: &crate::model::ScenarioResult) -> Vec<MeasureRow<'_>> {
    let mut names: Vec<&str> = s.run_results.iter().flat_map(|r| r.checkpoints.keys()).map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let runs: Vec<_> = s.run_results.iter().filter_map(|r| r.checkpoints.get(name)).collect();
            let counts: Vec<f64> = runs.iter().map(|c| c.count as f64).collect();
            let mut metrics = [None; Metric::ALL.len()];
            for (slot, metric) in metrics.iter_mut().zip(MEASURE_METRICS) {
                let values: Vec<f64> = runs.iter().filter_map(|c| c.summary.as_ref()).map(|s| s.get(metric)).collect();
                *slot = median(&values);
                // Without samples (level Lite) the probe's exact min, max and mean still are.
                if values.is_empty() {
                    let exact = |t: &crate::model::Totals| match metric {
                        Metric::Min => Some(t.min_ns),
                        Metric::Max => Some(t.max_ns),
                        Metric::Mean => Some(t.mean_ns),
                        _ => None,
                    };
                    let values: Vec<f64> = runs.iter().filter_map(|c| c.totals.as_ref()).filter_map(exact).collect();
                    *slot = median(&values);
                }
            }
            MeasureRow {
                name,
                calls_per_run: median(&counts),
                metrics,
                lost: runs.iter().map(|c| c.lost).sum(),
                clamped: runs.iter().map(|c| c.clamped).sum(),
            }
        })
        .collect()
}

/// A fraction as a percent with one decimal (`0.0123` is `1.2%`), `-` when not finite.
pub(crate) fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", x * 100.0)
    } else {
        NONE.to_owned()
    }
}

/// Seconds with one decimal and a unit: `12.3s`, `-` when not finite.
pub(crate) fn seconds(s: f64) -> String {
    if s.is_finite() {
        format!("{s:.1}s")
    } else {
        NONE.to_owned()
    }
}

/// Columns of the calibration table (scenario and checkpoint first, then [`noise_cells`]).
pub(crate) const NOISE_HEADER: [&str; 8] =
    ["scenario", "checkpoint", "metric", "cv raw", "cv drift-corr.", "sd paired", "MDE baseline", "MDE paired"];

/// Right alignment of [`NOISE_HEADER`]: names left, numbers right.
pub(crate) const NOISE_RIGHT: [bool; 8] = [false, false, false, true, true, true, true, true];

/// The metric and value cells of one calibration row (after scenario and checkpoint).
pub(crate) fn noise_cells(r: &NoiseRow) -> [String; 6] {
    [
        r.metric.as_str().to_owned(),
        percent(r.cv_raw),
        r.cv_corrected.map_or_else(|| NONE.into(), percent),
        percent(r.sd_paired),
        percent(r.mde_baseline),
        percent(r.mde_paired),
    ]
}

/// The sentence above the calibration table: what it shows and at which level and power.
pub(crate) fn calibration_intro(c: &CalibrationReport) -> String {
    format!(
        "noise per process run, and the smallest regression detectable with {} runs a side at per-test alpha \
         {:.2e} and {:.0}% power:",
        c.runs,
        c.per_test_alpha,
        c.mde_power * 100.0
    )
}

/// The A/A verdicts line: `A/A paired verdicts: 1 regressed (false alarms): s/cp; 3 unchanged, 0
/// inconclusive`.
pub(crate) fn aa_verdicts(aa: &AaVerdicts) -> String {
    let alarms = if aa.false_alarms.is_empty() { String::new() } else { format!(": {}", aa.false_alarms.join(", ")) };
    format!(
        "A/A paired verdicts: {} regressed (false alarms){alarms}; {} unchanged, {} inconclusive",
        aa.false_alarms.len(),
        aa.unchanged,
        aa.inconclusive
    )
}

/// `k/n rate [low, high]` with percents (`1/3 33.3% [6.1%, 79.2%]`); `-` without trials.
pub(crate) fn proportion(p: &Proportion) -> String {
    match p.rate {
        Some(rate) if p.n > 0 => {
            format!("{}/{} {} [{}, {}]", p.k, p.n, percent(rate), percent(p.ci_low), percent(p.ci_high))
        }
        _ => NONE.to_owned(),
    }
}

/// A plant size: `A/A` for 0, else the percent as given (`5%`, `2.5%`).
pub(crate) fn plant_size(size_pct: f64) -> String {
    if size_pct == 0.0 {
        "A/A".into()
    } else {
        format!("{size_pct}%")
    }
}

/// The settings line of a verdict benchmark.
pub(crate) fn bench_settings(b: &BenchReport) -> String {
    format!(
        "verdict-bench: {} trials, {} scenario(s), runs {} (max {}), budget {} s, min_effect {}, alpha {}, total \
         wall {:.1} min",
        b.trials,
        b.scenarios,
        b.runs,
        b.max_runs,
        b.budget_s,
        b.min_effect,
        b.alpha,
        b.wall_s / 60.0
    )
}

/// Columns of the verdict-bench table ([`bench_cells`]).
pub(crate) const BENCH_HEADER: [&str; 9] = [
    "mode",
    "size",
    "trials",
    "detected [95% Wilson]",
    "inconc.",
    "false alarm [95% Wilson]",
    "med wall",
    "max wall",
    "p50 ratio",
];

/// Right alignment of [`BENCH_HEADER`].
pub(crate) const BENCH_RIGHT: [bool; 9] = [false, true, true, false, true, false, true, true, true];

/// The cells of one verdict-bench row; trials that failed to run show as `+NF`.
pub(crate) fn bench_cells(r: &BenchRow) -> Vec<String> {
    let trials = if r.failed > 0 { format!("{}+{}F", r.trials, r.failed) } else { r.trials.to_string() };
    vec![
        r.mode.as_str().to_owned(),
        plant_size(r.size_pct),
        trials,
        r.detected.as_ref().map_or_else(|| NONE.into(), proportion),
        r.inconclusive.map_or_else(|| NONE.into(), |n| n.to_string()),
        proportion(&r.false_alarms),
        seconds(r.median_wall_s),
        seconds(r.max_wall_s),
        r.median_p50_ratio.map_or_else(|| NONE.into(), |x| format!("{x:.4}")),
    ]
}

/// The word for a target's state; `n` is the number of trials behind it.
pub(crate) fn target_state(state: TargetState, n: usize) -> String {
    match state {
        TargetState::Met => "met".to_owned(),
        TargetState::NotMet => "NOT MET".to_owned(),
        TargetState::NotResolvable => format!("not resolvable with {n} trials"),
        TargetState::NoData => "no data".to_owned(),
    }
}

/// One target without its mode: `5% caught in >= 95% of trials within 60 s: measured 1/3 33.3%
/// [6.1%, 79.2%] -> NOT MET`, or `...: no 5% trials`.
pub(crate) fn target(t: &Target) -> String {
    match t.state {
        TargetState::NoData => format!("{}: no {} trials", t.what, plant_size(t.size_pct)),
        state => {
            format!("{}: measured {} -> {}", t.what, proportion(&t.measured), target_state(state, t.measured.n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_unit_and_precision() {
        assert_eq!(duration(7.2), "7.20 ns");
        assert_eq!(duration(812.34), "812.3 ns");
        assert_eq!(duration(999.97), "1.00 µs");
        assert_eq!(duration(12_410.0), "12.41 µs");
        assert_eq!(duration(123_456.0), "123.5 µs");
        assert_eq!(duration(3_200_000.0), "3.20 ms");
        assert_eq!(duration(1.5e9), "1.50 s");
        assert_eq!(duration(0.4), "0.40 ns");
        assert_eq!(duration(f64::NAN), "-");
    }

    #[test]
    fn changes_are_signed_percents() {
        assert_eq!(change(1.041), "+4.1%");
        assert_eq!(change(0.88), "-12.0%");
        assert_eq!(change(1.0), "+0.0%");
        assert_eq!(change(0.99999), "+0.0%");
        assert_eq!(change(2.5), "+150.0%");
    }

    #[test]
    fn confidence_levels_keep_their_decimals() {
        assert_eq!(confidence(0.95), "95%");
        assert_eq!(confidence(0.99), "99%");
        assert_eq!(confidence(1.0 - 0.05 / 14.0), "99.64%");
        assert_eq!(confidence(1.0 - 0.05 / 1000.0), "99.995%");
        assert_eq!(confidence(0.975), "97.5%");
    }

    #[test]
    fn p_values_and_counts() {
        assert_eq!(p_value(Some(0.0123)), "0.012");
        assert_eq!(p_value(Some(2.1e-5)), "2.1e-5");
        assert_eq!(p_value(Some(1.0)), "1.000");
        assert_eq!(p_value(None), "-");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(per_run(2500.5), "2500.5");
        assert_eq!(threshold(0.03), "±3.0%");
    }

    #[test]
    fn median_of_few() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
