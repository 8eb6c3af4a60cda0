//! Reporter tests: a hand-built [`Report`] covering every row kind (and a calibration and a
//! verdict-bench document), rendered into `Vec<u8>` and
//! compared with committed insta snapshots (`snapshots/*.snap`; review changes with
//! `cargo insta review`, or `INSTA_UPDATE=always cargo test` and `git diff`).

use std::collections::BTreeMap;
use std::fs;

use super::*;
use crate::fingerprint::Fingerprint;
use crate::model::{
    AaVerdicts, BenchMode, BenchReport, BenchRow, CalibrationReport, CheckpointResult, CheckpointRun, MetricResult,
    Mode, NoiseRow, Presence, Proportion, RunResult, ScenarioFailure, ScenarioResult, ScenarioStatus, Tally, Target,
    TargetState, Totals, BENCH_SCHEMA, CALIBRATION_SCHEMA, REPORT_SCHEMA,
};
use crate::stats::{Comparison, Correction, Method, Metric, RunSummary, Verdict};

/// Holm's simultaneous interval level for 14 tests at alpha 0.05: `1 - 0.05 / 14`, a float that
/// does not print short, so the JSON round trip is a real test.
const HOLM_14: f64 = 1.0 - 0.05 / 14.0;

fn comparison(ratio: f64, ci_low: f64, ci_high: f64, confidence: f64, p_value: f64) -> Comparison {
    Comparison {
        ratio,
        ci_low,
        ci_high,
        confidence,
        p_value,
        p_slower: p_value / 2.0,
        df: 13.7,
        log_std_err: 0.0123,
        n_baseline: 8,
        n_current: 8,
        method: Method::Welch,
        rank_p_value: Some(0.0011),
    }
}

#[allow(clippy::too_many_arguments)]
fn metric(
    metric: Metric,
    baseline_ns: f64,
    current_ns: f64,
    (ratio, lo, hi): (f64, f64, f64),
    confidence: f64,
    p_adjusted: f64,
    threshold: f64,
    verdict: Verdict,
) -> MetricResult {
    MetricResult {
        metric,
        baseline_ns: Some(baseline_ns),
        current_ns: Some(current_ns),
        comparison: Some(comparison(ratio, lo, hi, confidence, p_adjusted / 3.0)),
        p_adjusted: Some(p_adjusted),
        threshold,
        verdict,
        gating: true,
        decided_at: None,
        no_regression: false,
    }
}

fn checkpoint(name: &str, metrics: Vec<MetricResult>, verdict: Verdict, lost: u64) -> CheckpointResult {
    CheckpointResult {
        name: name.into(),
        presence: Presence::Both,
        calls_per_run: 250_000.0,
        lost,
        clamped: 0,
        metrics,
        verdict,
        accepted: None,
        distributions: Default::default(),
    }
}

fn one_sided(name: &str, presence: Presence) -> CheckpointResult {
    CheckpointResult {
        name: name.into(),
        presence,
        calls_per_run: if presence == Presence::CurrentOnly { 1200.0 } else { 0.0 },
        lost: 0,
        clamped: 0,
        metrics: Vec::new(),
        verdict: Verdict::Inconclusive,
        accepted: None,
        distributions: Default::default(),
    }
}

fn summary(count: u64, scale: f64) -> RunSummary {
    RunSummary {
        count,
        min: 410.0 * scale,
        p50: 812.3 * scale,
        p90: 1_190.0 * scale,
        p99: 4_020.0 * scale,
        p999: 12_410.0 * scale,
        max: 3_200_000.0 * scale,
        mean: 905.25 * scale,
    }
}

fn run(index: u64, scale: f64) -> RunResult {
    let mut checkpoints = BTreeMap::new();
    checkpoints.insert(
        "encode".to_owned(),
        CheckpointRun {
            count: 100_000 + index,
            lost: 0,
            clamped: 0,
            summary: Some(summary(100_000 + index, scale)),
            totals: None,
        },
    );
    // A checkpoint at level Lite: counted, no samples read (its exact min, mean and max come
    // from the probe's aggregates); it also lost some.
    let totals = Totals { sum_ns: 20_000.0, min_ns: 1_500.0, max_ns: 3_000.0, mean_ns: 2_000.0 };
    checkpoints.insert(
        "flush".to_owned(),
        CheckpointRun { count: 10, lost: 5, clamped: 1, summary: None, totals: Some(totals) },
    );
    RunResult {
        scenario: "codec_run".into(),
        wall_s: 1.25,
        processes: 1,
        tick_hz: 2.45e9,
        floor_ns: 7.2,
        bad_index: 0,
        checkpoints,
    }
}

/// A report with a regressed, an improved, an unchanged and an inconclusive checkpoint, one only
/// in the baseline and one new, lost samples, a cross-machine scenario, a failed scenario with a
/// multi-line stderr tail, and a Measure-mode scenario.
fn fixture() -> Report {
    let http = ScenarioResult {
        name: "http_parse".into(),
        status: ScenarioStatus::Compared,
        mode: Mode::Baseline,
        runs: 8,
        baseline_runs: 8,
        machine_note: None,
        against: Some("baseline recorded 2026-04-30T10:00:00Z from commit 1a2b3c4d5e6f (8 runs)".into()),
        drift: Some(crate::model::DriftCorrection { factor: 1.034, current_runs: 8, baseline_runs: 8 }),
        floor_ns: 7.2,
        checkpoints: vec![
            checkpoint(
                "decode_body",
                vec![metric(
                    Metric::P50,
                    3_200_000.0,
                    3_209_600.0,
                    (1.003, 0.991, 1.016),
                    HOLM_14,
                    1.0,
                    0.03,
                    Verdict::Unchanged,
                )],
                Verdict::Unchanged,
                0,
            ),
            one_sided("legacy_auth", Presence::BaselineOnly),
            checkpoint(
                "parse_headers",
                vec![
                    metric(Metric::P50, 812.3, 845.6, (1.041, 1.020, 1.063), HOLM_14, 0.0012, 0.03, Verdict::Regressed),
                    metric(
                        Metric::P99,
                        4_020.0,
                        4_100.4,
                        (1.02, 0.97, 1.08),
                        HOLM_14,
                        0.41,
                        0.05,
                        Verdict::Inconclusive,
                    ),
                ],
                Verdict::Regressed,
                1_234,
            ),
            checkpoint(
                "route",
                vec![metric(
                    Metric::P50,
                    12_410.0,
                    10_920.8,
                    (0.88, 0.86, 0.90),
                    HOLM_14,
                    2.1e-5,
                    0.03,
                    Verdict::Improved,
                )],
                Verdict::Improved,
                0,
            ),
            one_sided("tls_resume", Presence::CurrentOnly),
        ],
        modes: None,
        run_results: Vec::new(),
    };
    let conn = ScenarioResult {
        name: "conn_table".into(),
        status: ScenarioStatus::Compared,
        mode: Mode::CrossMachine,
        runs: 8,
        baseline_runs: 10,
        machine_note: Some("baseline machine differs: 8 vs 16 cores".into()),
        against: None,
        drift: None,
        floor_ns: 6.9,
        checkpoints: vec![
            checkpoint(
                "insert",
                vec![metric(Metric::P50, 95.0, 104.5, (1.10, 1.07, 1.13), 0.99, 0.003, 0.05, Verdict::Regressed)],
                Verdict::Regressed,
                0,
            ),
            checkpoint(
                "lookup",
                vec![metric(Metric::Mean, 41.37, 42.0, (1.015, 0.94, 1.09), 0.99, 0.8, 0.05, Verdict::Inconclusive)],
                Verdict::Inconclusive,
                0,
            ),
        ],
        modes: None,
        run_results: Vec::new(),
    };
    let crashy = ScenarioResult {
        name: "crashy".into(),
        status: ScenarioStatus::Failed(
            "`target/release/crashy --iters 1000` killed by signal 11 (SIGSEGV) in run 3\n\
             stderr (last 3 lines):\n\
             thread 'main' panicked at scenarios/src/bin/crashy.rs:10:5:\n\
             index out of bounds: the len is 3 but the index is 7\n\
             note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
                .into(),
        ),
        mode: Mode::Baseline,
        runs: 0,
        baseline_runs: 8,
        machine_note: None,
        against: None,
        drift: None,
        floor_ns: 0.0,
        checkpoints: Vec::new(),
        modes: None,
        run_results: Vec::new(),
    };
    let codec = ScenarioResult {
        name: "codec_run".into(),
        status: ScenarioStatus::Measured,
        mode: Mode::Measure,
        runs: 3,
        baseline_runs: 0,
        machine_note: None,
        against: None,
        drift: None,
        floor_ns: 7.2,
        checkpoints: Vec::new(),
        modes: None,
        run_results: vec![run(0, 1.0), run(1, 1.1), run(2, 0.9)],
    };
    Report {
        looks: 1,
        schema: REPORT_SCHEMA,
        command: "regress".into(),
        tool_version: "0.1.0".into(),
        started: "2026-05-01T12:00:00Z".into(),
        wall_s: 93.4,
        sampling_s: Some(88.2),
        machine: Fingerprint {
            cpu_model: "AMD EPYC 7B13 64-Core Processor".into(),
            cores: 16,
            tick_hz: 2_450_123_000.0,
            kernel: "6.18.2".into(),
            rustc: "rustc 1.95.0 (f2d3ce0bd 2026-03-21)".into(),
            target: "x86_64-unknown-linux".into(),
        },
        alpha: 0.05,
        correction: Correction::Holm,
        strict: false,
        scenarios: vec![http, conn, crashy, codec],
        tally: Tally { regressed: 2, improved: 1, unchanged: 1, inconclusive: 2, one_sided: 2, failed_scenarios: 1 },
        exit_code: crate::exit_code::SCENARIO_FAILED,
        instructions: None,
    }
}

fn terminal(report: &Report, style: Style) -> String {
    let mut out = Vec::new();
    render_terminal(report, &mut out, style).unwrap();
    String::from_utf8(out).unwrap()
}

fn markdown(report: &Report) -> String {
    let mut out = Vec::new();
    render_markdown(report, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn report_terminal_plain_snapshot() {
    insta::assert_snapshot!("terminal_plain", terminal(&fixture(), Style::Plain));
}

#[test]
fn report_markdown_snapshot() {
    insta::assert_snapshot!("markdown", markdown(&fixture()));
}

#[test]
fn report_terminal_passing_snapshot() {
    // Only unchanged and inconclusive: exit 0; and a strict run's cross-machine line.
    let mut report = fixture();
    report.scenarios.retain(|s| s.name == "conn_table");
    report.scenarios[0].checkpoints.remove(0);
    report.strict = true;
    report.tally = Tally { unchanged: 14, inconclusive: 2, ..Tally::default() };
    report.exit_code = crate::exit_code::PASS;
    insta::assert_snapshot!("terminal_passing", terminal(&report, Style::Plain));
}

#[test]
fn report_summary_lines() {
    let mut report = fixture();
    report.tally = Tally { regressed: 1, ..Tally::default() };
    report.exit_code = crate::exit_code::REGRESSION;
    assert_eq!(format::summary(&report), "FAIL: 1 checkpoint regressed (exit 1)");
    report.tally = Tally { unchanged: 14, inconclusive: 2, ..Tally::default() };
    report.exit_code = crate::exit_code::PASS;
    assert_eq!(format::summary(&report), "PASS: 14 checkpoints unchanged, 2 inconclusive (exit 0)");
    report.tally = Tally { regressed: 1, unchanged: 3, ..Tally::default() };
    assert!(format::summary(&report)
        .ends_with("(exit 0); regressions on a cross-machine comparison do not gate (use --strict)"));
    report.tally = Tally::default();
    assert_eq!(format::summary(&report), "PASS: 4 scenarios measured, nothing compared (exit 0)");
}

#[test]
fn report_json_round_trips() {
    let report = fixture();
    let mut out = Vec::new();
    render_json(&report, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("}\n"), "pretty JSON with a final newline");
    assert!(text.contains(&format!("\"schema\": {REPORT_SCHEMA}")));
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
}

#[test]
fn report_color_only_when_asked() {
    let report = fixture();
    let plain = terminal(&report, Style::Plain);
    let color = terminal(&report, Style::Color);
    assert!(!plain.contains('\x1b'), "plain output has no escape sequences");
    assert!(!markdown(&report).contains('\x1b'), "markdown has no escape sequences");
    assert!(color.contains("\x1b[1;31mregressed\x1b[0m"), "regressed is bold red");
    assert!(color.contains("\x1b[32mimproved\x1b[0m"), "improved is green");
    assert!(color.contains("\x1b[2munchanged\x1b[0m"), "unchanged is dim");
    assert!(color.contains("\x1b[33minconclusive\x1b[0m"), "inconclusive is yellow");
    // Same text once the escapes are removed: colour never changes the layout.
    let stripped = strip_ansi(&color);
    assert_eq!(stripped, plain);
}

/// Removes ANSI SGR sequences (`ESC [ ... m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn report_confidence_level_comes_from_the_comparison() {
    let mut report = fixture();
    let text = terminal(&report, Style::Plain);
    assert!(text.contains("99.64% CI"), "Holm level for 14 tests");
    assert!(text.contains("99% CI"), "the cross-machine scenario's own level");
    // Mixed levels in one table: each cell names its level.
    if let Some(cmp) = report.scenarios[1].checkpoints[1].metrics[0].comparison.as_mut() {
        cmp.confidence = 0.95;
    }
    let text = terminal(&report, Style::Plain);
    assert!(text.contains("99%: [+7.0%, +13.0%]"), "{text}");
    assert!(text.contains("95%: [-6.0%, +9.0%]"), "{text}");
}

#[test]
fn report_write_outputs_creates_dirs_and_leaves_no_temp_files() {
    let report = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("nested/funcscope");
    let outputs = Outputs {
        json: Some(out_dir.join("report.json")),
        markdown: Some(out_dir.join("summary.md")),
        ..Outputs::default()
    };
    write_outputs(&report, &outputs).unwrap();
    // Twice: the second write replaces the first.
    write_outputs(&report, &outputs).unwrap();

    let json = fs::read_to_string(out_dir.join("report.json")).unwrap();
    assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
    assert_eq!(fs::read_to_string(out_dir.join("summary.md")).unwrap(), markdown(&report));
    let mut names: Vec<_> =
        fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["report.json", "summary.md"]);

    // Nothing asked, nothing written.
    write_outputs(&report, &Outputs::default()).unwrap();
}

#[test]
fn report_write_outputs_names_the_file_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, "x").unwrap();
    let outputs = Outputs { json: Some(blocker.join("report.json")), ..Outputs::default() };
    let err = write_outputs(&fixture(), &outputs).unwrap_err();
    assert!(err.to_string().contains("not-a-dir/report.json"), "{err}");
}

fn machine() -> Fingerprint {
    fixture().machine
}

/// A calibration with raw and drift-corrected noise, a row without reference runs, a value that
/// could not be computed, one false alarm and a failed scenario.
fn calibration() -> CalibrationReport {
    let row = |scenario: &str, checkpoint: &str, metric, cv_raw, cv_corrected, sd_paired, mde_baseline, mde_paired| {
        NoiseRow {
            scenario: scenario.into(),
            checkpoint: checkpoint.into(),
            metric,
            runs: 16,
            cv_raw,
            cv_corrected,
            sd_paired,
            mde_baseline,
            mde_paired,
        }
    };
    CalibrationReport {
        schema: CALIBRATION_SCHEMA,
        started: "2026-05-01T12:00:00Z".into(),
        machine: machine(),
        runs: 8,
        per_test_alpha: 0.05 / 14.0,
        mde_power: 0.95,
        rows: vec![
            row("http_parse", "decode_body", Metric::P50, 0.0412, Some(0.0123), 0.0087, 0.0301, 0.0152),
            row("http_parse", "decode_body", Metric::P99, 0.0921, Some(0.0645), 0.0712, 0.1425, 0.1201),
            row("http_parse", "parse_headers", Metric::P50, 0.0233, Some(0.0215), f64::NAN, 0.0498, f64::NAN),
            row("conn_table", "insert", Metric::Mean, 0.0150, None, 0.0101, 0.0341, 0.0170),
        ],
        aa: AaVerdicts { false_alarms: vec!["http_parse/decode_body".into()], unchanged: 2, inconclusive: 1 },
        failed: vec![ScenarioFailure {
            scenario: "crashy".into(),
            error: "`target/release/crashy` killed by signal 11 (SIGSEGV) in run 3\nstderr (last line):\nboom\n".into(),
        }],
        session: None,
    }
}

fn proportion(k: usize, n: usize, ci_low: f64, ci_high: f64) -> Proportion {
    Proportion { k, n, rate: (n > 0).then(|| k as f64 / n as f64), ci_low, ci_high }
}

/// A verdict benchmark with both modes, A/A and planted rows, a failed trial, and every target
/// state (the intervals are statsmodels' Wilson values for these counts).
fn bench() -> BenchReport {
    let row = |mode, size_pct, trials, failed, detected: Option<Proportion>, false_alarms, ratio| BenchRow {
        mode,
        size_pct,
        trials,
        failed,
        detected,
        inconclusive: detected.map(|d| trials - d.k),
        false_alarms,
        median_wall_s: 21.25,
        max_wall_s: 58.5,
        median_p50_ratio: ratio,
    };
    let target = |mode, what: &str, size_pct, goal, at_most, measured: Proportion, state| Target {
        mode,
        what: what.into(),
        size_pct,
        goal,
        at_most,
        measured,
        state,
    };
    let none = proportion(0, 0, 0.0, 1.0);
    let aa = proportion(0, 10, 0.0, 0.2775);
    let five = proportion(10, 10, 0.7225, 1.0);
    let two = proportion(2, 10, 0.0567, 0.5098);
    BenchReport {
        schema: BENCH_SCHEMA,
        started: "2026-05-01T12:00:00Z".into(),
        trials: 41,
        scenarios: 1,
        runs: 8,
        max_runs: 32,
        budget_s: 60.0,
        min_effect: 0.03,
        alpha: 0.05,
        detect_within_s: 60.0,
        wall_s: 1834.0,
        rows: vec![
            row(BenchMode::Baseline, 0.0, 10, 0, None, aa, None),
            row(BenchMode::Baseline, 5.0, 10, 1, Some(five), proportion(1, 10, 0.0179, 0.4042), Some(1.0512)),
            row(BenchMode::Paired, 2.0, 10, 0, Some(two), aa, Some(1.0187)),
        ],
        targets: vec![
            target(
                BenchMode::Baseline,
                "false alarms <= 1% of A/A trials",
                0.0,
                0.01,
                true,
                aa,
                TargetState::NotResolvable,
            ),
            target(
                BenchMode::Baseline,
                "5% caught in >= 95% of trials within 60 s",
                5.0,
                0.95,
                false,
                five,
                TargetState::NotResolvable,
            ),
            target(BenchMode::Paired, "false alarms <= 1% of A/A trials", 0.0, 0.01, true, none, TargetState::NoData),
            target(BenchMode::Paired, "2% caught in >= 90% of trials", 2.0, 0.90, false, two, TargetState::NotMet),
        ],
    }
}

fn rendered(doc: Document<'_>, format: Format) -> String {
    let mut out = Vec::new();
    render(doc, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn report_calibration_terminal_snapshot() {
    insta::assert_snapshot!(
        "calibration_terminal",
        rendered(Document::Calibration(&calibration()), Format::Terminal(Style::Plain))
    );
}

#[test]
fn report_calibration_markdown_snapshot() {
    insta::assert_snapshot!("calibration_markdown", rendered(Document::Calibration(&calibration()), Format::Markdown));
}

#[test]
fn report_bench_terminal_snapshot() {
    insta::assert_snapshot!(
        "bench_terminal",
        rendered(Document::VerdictBench(&bench()), Format::Terminal(Style::Plain))
    );
}

#[test]
fn report_bench_markdown_snapshot() {
    insta::assert_snapshot!("bench_markdown", rendered(Document::VerdictBench(&bench()), Format::Markdown));
}

#[test]
fn report_gate_dispatch_matches_the_named_functions() {
    let report = fixture();
    assert_eq!(rendered(Document::Gate(&report), Format::Terminal(Style::Plain)), terminal(&report, Style::Plain));
    assert_eq!(rendered(Document::Gate(&report), Format::Markdown), markdown(&report));
}

#[test]
fn report_calibration_and_bench_json_round_trip() {
    let c = calibration();
    let back: CalibrationReport = serde_json::from_str(&rendered(Document::Calibration(&c), Format::Json)).unwrap();
    // NaN is written as null and read back as NaN; NaN != NaN, so compare the debug text.
    assert_eq!(format!("{back:?}"), format!("{c:?}"));
    assert!(back.rows[2].sd_paired.is_nan());
    let b = bench();
    let back: BenchReport = serde_json::from_str(&rendered(Document::VerdictBench(&b), Format::Json)).unwrap();
    assert_eq!(back, b);
}

#[test]
fn report_calibration_and_bench_colour_only_when_asked() {
    for doc in [Document::Calibration(&calibration()), Document::VerdictBench(&bench())] {
        let plain = rendered(doc, Format::Terminal(Style::Plain));
        let color = rendered(doc, Format::Terminal(Style::Color));
        assert!(!plain.contains('\x1b'));
        assert!(color.contains('\x1b'));
        assert_eq!(strip_ansi(&color), plain);
    }
}

/// A parsed JUnit test case: (suite, name, outcome element or "passed", its message).
type JunitCase = (String, String, String, String);

/// The test cases of a JUnit file as a real XML parser reads them, plus the root's attributes.
fn parse_junit(xml: &str) -> (Vec<JunitCase>, BTreeMap<String, String>) {
    use quick_xml::events::{BytesStart, Event};
    let attrs = |e: &BytesStart<'_>| -> BTreeMap<String, String> {
        e.attributes()
            .map(|a| {
                let a = a.expect("well-formed attribute");
                let v = a.normalized_value(quick_xml::XmlVersion::Explicit1_0).expect("valid escapes").into_owned();
                (String::from_utf8(a.key.as_ref().to_vec()).unwrap(), v)
            })
            .collect()
    };
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut cases, mut root) = (Vec::new(), BTreeMap::new());
    let mut suite = String::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let a = attrs(&e);
                match e.name().as_ref() {
                    b"testsuites" => root = a,
                    b"testsuite" => suite = a["name"].clone(),
                    b"testcase" => cases.push((suite.clone(), a["name"].clone(), "passed".into(), String::new())),
                    other => {
                        let last = cases.last_mut().expect("outcome inside a test case");
                        last.2 = String::from_utf8(other.to_vec()).unwrap();
                        last.3 = a.get("message").cloned().unwrap_or_default();
                    }
                }
            }
            _ => {}
        }
    }
    (cases, root)
}

#[test]
fn report_junit_has_a_test_case_per_checkpoint_metric_and_fails_exactly_the_gating_regressions() {
    let mut report = fixture();
    // Markup characters in a name must survive the trip through a real parser.
    report.scenarios[0].checkpoints[3].name = r#"route<&"'>"#.into();
    let mut out = Vec::new();
    crate::report::render_junit(&report, &mut out).unwrap();
    let xml = String::from_utf8(out).unwrap();
    let (cases, root) = parse_junit(&xml);
    let find = |suite: &str, name: &str| {
        cases
            .iter()
            .find(|c| c.0 == suite && c.1 == name)
            .unwrap_or_else(|| panic!("no test case {suite}/{name} in\n{xml}"))
            .clone()
    };
    // The gating regression fails, with its numbers in the message.
    let (_, _, kind, msg) = find("http_parse", "parse_headers p50");
    assert_eq!(kind, "failure", "{xml}");
    for part in ["+4.1%", "[+2.0%, +6.3%]", "812.3 ns -> 845.6 ns", "±3.0%", "p(adj) 0.001"] {
        assert!(msg.contains(part), "{part:?} missing from {msg:?}");
    }
    assert_eq!(find("http_parse", "parse_headers p99").2, "skipped", "inconclusive does not fail");
    assert_eq!(find("http_parse", "decode_body p50").2, "passed");
    assert_eq!(find("http_parse", r#"route<&"'> p50"#).2, "passed");
    assert_eq!(find("http_parse", "legacy_auth").2, "skipped");
    // A cross-machine regression does not gate without --strict: skipped, saying why.
    let (_, _, kind, msg) = find("conn_table", "insert p50");
    assert_eq!(kind, "skipped");
    assert!(msg.contains("cross-machine"), "{msg}");
    let (_, _, kind, msg) = find("crashy", "run");
    assert_eq!(kind, "error");
    assert!(msg.contains("SIGSEGV"), "{msg}");
    assert_eq!((root["failures"].as_str(), root["errors"].as_str()), ("1", "1"), "{xml}");
    assert_eq!(root["tests"], cases.len().to_string());

    // Under --strict the cross-machine regression is a failure too.
    report.strict = true;
    let mut out = Vec::new();
    crate::report::render_junit(&report, &mut out).unwrap();
    let (cases, root) = parse_junit(&String::from_utf8(out).unwrap());
    assert_eq!(root["failures"], "2");
    assert!(cases.iter().any(|c| c.0 == "conn_table" && c.1 == "insert p50" && c.2 == "failure"));
}

#[test]
fn report_github_annotations_are_one_escaped_line_per_finding_worth_a_look() {
    let mut report = fixture();
    report.scenarios[0].checkpoints[2].name = "parse,headers: 100%".into();
    let mut out = Vec::new();
    render_github_annotations(&report, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("::error ")).collect();
    let warnings: Vec<&&str> = lines.iter().filter(|l| l.starts_with("::warning ")).collect();
    // The gating regression and the crashed scenario; the inconclusive p99, the cross-machine
    // regression and the inconclusive lookup.
    assert_eq!((errors.len(), warnings.len(), lines.len()), (2, 3, 5), "{text}");
    // Property values escape ',' and ':' (they would end the property), data escapes '%'.
    assert!(
        errors[0].starts_with("::error title=funcscope%3A http_parse/parse%2Cheaders%3A 100%25 p50 regressed::"),
        "{text}"
    );
    assert!(errors[0].contains("+4.1%25") && errors[0].contains("812.3 ns -> 845.6 ns"), "{text}");
    assert!(errors[1].contains("crashy") && errors[1].contains("SIGSEGV"), "{text}");
    // One line each: the crash message's line breaks never split an annotation.
    assert!(lines.iter().all(|l| l.starts_with("::")), "{text}");
}

/// The fixture with plot data on every checkpoint present on both sides (distributions as the
/// commands attach them, scaled per checkpoint so the curves differ).
fn fixture_with_plots() -> Report {
    let mut r = fixture();
    let mut k = 0.0;
    for s in &mut r.scenarios {
        for c in &mut s.checkpoints {
            if c.presence == Presence::Both && !c.metrics.is_empty() {
                k += 1.0;
                c.distributions = super::plot::tests::plotted(&c.name, 1.0 + 0.04 * k).distributions;
            }
        }
    }
    r
}

fn html(report: &Report) -> String {
    let mut out = Vec::new();
    render_html(report, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Every element name and attribute of a well-formed document (panics if it is not).
fn xml_elements(doc: &str) -> Vec<(String, Vec<(String, String)>)> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(doc);
    r.config_mut().check_end_names = true;
    let mut out = Vec::new();
    loop {
        match r.read_event().unwrap_or_else(|e| panic!("not well-formed at {}: {e}", r.buffer_position())) {
            Event::Start(e) | Event::Empty(e) => {
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            String::from_utf8(a.value.to_vec()).unwrap(),
                        )
                    })
                    .collect();
                out.push((String::from_utf8(e.name().as_ref().to_vec()).unwrap(), attrs));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

#[test]
fn report_html_is_well_formed_self_contained_and_shows_every_checkpoint() {
    let report = fixture_with_plots();
    let doc = html(&report);
    assert!(doc.starts_with("<!DOCTYPE html>"));
    let elements = xml_elements(&doc);
    let shown: Vec<&str> = elements
        .iter()
        .filter(|(n, _)| n == "section")
        .flat_map(|(_, a)| a.iter().filter(|(k, _)| k == "data-checkpoint").map(|(_, v)| v.as_str()))
        .collect();
    let expected: Vec<&str> =
        report.scenarios.iter().flat_map(|s| s.checkpoints.iter().map(|c| c.name.as_str())).collect();
    assert_eq!(shown, expected, "one section per checkpoint, in report order");
    let svgs = elements.iter().filter(|(n, _)| n == "svg").count();
    assert!(svgs >= 3, "plots inline: {svgs} svg elements");
    // Nothing loaded from elsewhere: no link, script, image, frame or stylesheet reference, and
    // no URL but the SVG namespace name (an identifier, never fetched).
    for (name, attrs) in &elements {
        assert!(
            !["script", "link", "img", "iframe", "object", "embed", "image", "use"].contains(&name.as_str()),
            "<{name}>"
        );
        for (k, v) in attrs {
            assert!(k != "src" && k != "href" && k != "xlink:href", "<{name} {k}={v:?}>");
        }
    }
    let urls = doc.matches("://").count();
    let namespaces = doc.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
    assert_eq!(urls, namespaces, "every :// is an SVG namespace");
    assert!(!doc.contains("url(") && !doc.contains("@import"));
    // Every verdict row of the tables is there.
    let rows = elements.iter().filter(|(n, _)| n == "tr").count();
    let metric_rows: usize = report.scenarios.iter().flat_map(|s| &s.checkpoints).map(|c| c.metrics.len().max(1)).sum();
    assert!(rows >= metric_rows, "{rows} rows for {metric_rows} checkpoint metrics");
    // And every plot's text keeps clear of every other and of its edges.
    for svg in doc.split("<svg").skip(1) {
        let svg = format!("<svg{}", &svg[..svg.find("</svg>").unwrap() + "</svg>".len()]);
        super::plot::tests::assert_no_overlap(&svg);
    }
}

#[test]
fn report_html_escapes_names() {
    let mut report = fixture_with_plots();
    report.scenarios[0].checkpoints[0].name = "a<b>&\"c\"".into();
    let doc = html(&report);
    xml_elements(&doc);
    assert!(doc.contains("a&lt;b&gt;&amp;&quot;c&quot;"));
    assert!(!doc.contains("a<b>"));
}

/// The person check, automated as far as a test can: renders the fixture's HTML in headless
/// Chromium (Debian's `chromium`) and checks a screenshot came out. Set `FUNCSCOPE_HTML_OUT=DIR`
/// to keep the page and the screenshot for looking at them. Skipped, saying so, without chromium.
#[test]
fn report_html_renders_in_headless_chromium() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| std::process::Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
    else {
        eprintln!("skipped: no chromium on PATH (Debian: apt-get install chromium)");
        return;
    };
    let keep = std::env::var_os("FUNCSCOPE_HTML_OUT").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let dir = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    let shot = dir.join("report.png");
    let _ = fs::remove_file(&shot);
    write_outputs(&fixture_with_plots(), &Outputs { html: Some(page.clone()), ..Outputs::default() }).unwrap();
    let out = std::process::Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,3000"])
        .arg(format!("--user-data-dir={}", tmp.path().join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&page)
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let png = fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    // A blank page compresses to a few kB; tables and plots do not.
    assert!(png.len() > 30_000, "screenshot only {} bytes: nothing rendered?", png.len());
}
