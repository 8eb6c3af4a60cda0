//! Tests of the baseline module: building, writing, reading and the located errors.

use std::collections::BTreeMap;
use std::path::Path;

use super::check::{is_rfc3339_utc, order};
use super::write::{round_cv, round_ns, REFERENCE_COMMENT};
use super::*;
use crate::model::CheckpointRun;
use crate::stats::RunSummary;

fn machine() -> Fingerprint {
    Fingerprint {
        cpu_model: "AMD EPYC 9654 96-Core Processor".into(),
        cores: 16,
        tick_hz: 2_596_122_000.0,
        kernel: "6.18.2".into(),
        rustc: "rustc 1.95.0".into(),
        target: "x86_64-unknown-linux".into(),
    }
}

fn recorded() -> Recorded {
    Recorded {
        commit: "3f2a9c1e0b7d".into(),
        date: "2026-05-04T09:12:44Z".into(),
        runs: 0,
        funcscope: "0.1.0".into(),
        args: vec!["--requests".into(), "200000".into()],
        sessions: Vec::new(),
    }
}

fn summary(scale: f64) -> RunSummary {
    let mut x: Vec<f64> = (1..=2000).map(|i| 80.0 * scale + f64::from(i).powf(1.3) * 0.0131 * scale).collect();
    RunSummary::from_samples(&mut x).unwrap()
}

fn run(i: usize, names: &[&str]) -> RunResult {
    let scale = 1.0 + 0.0137 * i as f64 - 0.004 * (i % 2) as f64;
    RunResult {
        scenario: "http_parse".into(),
        wall_s: 1.0,
        processes: 1,
        tick_hz: 2.6e9,
        floor_ns: 6.0,
        bad_index: 0,
        checkpoints: names
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let cp = CheckpointRun {
                    count: 200_000 + i as u64,
                    lost: i as u64,
                    clamped: 0,
                    summary: Some(summary(scale * (1.0 + k as f64))),
                    totals: None,
                };
                ((*n).to_owned(), cp)
            })
            .collect(),
    }
}

fn pooled(names: &[&str]) -> BTreeMap<String, Pooled> {
    names.iter().map(|n| ((*n).to_owned(), Pooled { p50: 101.333, p90: 130.2, p99: 211.0, p999: 481.456 })).collect()
}

const NAMES: [&str; 2] = ["parse_headers", "http::route"];

fn baseline() -> Baseline {
    let runs: Vec<RunResult> = (0..4).map(|i| run(i, &NAMES)).collect();
    Baseline::from_runs("http_parse", &runs, &pooled(&NAMES), machine(), recorded()).unwrap()
}

fn load_text(text: &str) -> (tempfile::TempDir, Result<Baseline, BaselineError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("http_parse.toml");
    std::fs::write(&path, text).unwrap();
    let r = Baseline::load(&path);
    (dir, r)
}

/// A small valid file, written by hand, with known line numbers.
const GOOD: &str = r#"# funcscope baseline for scenario http_parse. Regenerate with: cargo xtask baseline --scenario http_parse
schema = 1
scenario = "http_parse"

[recorded]
commit = "abc"
date = "2026-05-04T09:12:44Z"
runs = 3
funcscope = "0.1.0"
args = []

[machine]
cpu_model = "x"
cores = 2
tick_hz = 3000000000.0
kernel = "6.18"
rustc = "rustc 1.95.0"
target = "x86_64-unknown-linux"

[checkpoints.parse_headers]
calls_per_run = 1000.0
lost = 0
noise_cv = { min = 0.01, p50 = 0.01, p90 = 0.01, p99 = 0.02, "p99.9" = 0.03, max = 0.2, mean = 0.01 }
min = [80.0, 81.0, 80.5]
p50 = [100.0, 101.0, 100.5]
p90 = [130.0, 131.0, 130.5]
p99 = [200.0, 201.0, 200.5]
"p99.9" = [400.0, 401.0, 400.5]
max = [9000.0, 9001.0, 9000.5]
mean = [110.0, 111.0, 110.5]

[checkpoints.parse_headers.pooled]
p50 = 100.5
p90 = 130.5
p99 = 200.5
"p99.9" = 400.5
"#;

#[test]
fn baseline_good_text_loads() {
    let (_d, b) = load_text(GOOD);
    let b = b.unwrap();
    assert_eq!(b.values("parse_headers", Metric::P50), Some(&[100.0, 101.0, 100.5][..]));
    assert_eq!(b.noise("parse_headers", Metric::P999), Some(0.03));
    assert_eq!(b.pooled("parse_headers", Metric::P999), Some(400.5));
    assert_eq!(b.pooled("parse_headers", Metric::Max), None);
    assert_eq!(b.values("nope", Metric::P50), None);
    assert_eq!(b.recorded.runs, 3);
    assert_eq!(b.machine.cores, 2);
}

#[test]
fn baseline_round_trip_and_stable_text() {
    let b = baseline();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/http_parse.toml");
    b.save_atomic(&path).unwrap();
    let first = std::fs::read(&path).unwrap();
    let back = Baseline::load(&path).unwrap();
    // from_runs rounds as it builds, so the loaded baseline is exactly the built one.
    assert_eq!(back, b);
    b.save_atomic(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), first, "saving twice must give identical bytes");
    back.save_atomic(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), first, "load + save must give identical bytes");
    // No temporary file left behind.
    let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("http_parse.toml")]);
}

/// Reference runs as the drift policy would attach them: a value per metric and run.
fn reference(runs: usize, workload: &str) -> ReferenceRuns {
    let runs = Metric::ALL
        .iter()
        .enumerate()
        .map(|(k, &m)| (m, (0..runs).map(|i| 200.0 + 10.0 * k as f64 + i as f64 / 3.0).collect()))
        .collect();
    ReferenceRuns { workload: workload.into(), runs }
}

#[test]
fn baseline_reference_runs_round_trip_and_are_build_specific() {
    let b = baseline();
    let runs = b.recorded.runs;
    let b = b.with_reference(reference(runs, "v1-release")).unwrap();
    // Rounded as they are attached, like every ns value.
    let p50 = b.reference_speed("v1-release", Metric::P50).unwrap().to_vec();
    assert_eq!(p50, [200.0 + 10.0, 210.33, 210.67, 211.0]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("http_parse.toml");
    b.save_atomic(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(&format!("\n{REFERENCE_COMMENT}\n[reference]\nworkload = \"v1-release\"\nmin = [")),
        "{text}"
    );
    let back = Baseline::load(&path).unwrap();
    assert_eq!(back, b);
    // Values from another reference build are never used.
    assert!(back.reference_speed("v0-release", Metric::P50).is_none());
    // Wrong counts, missing metrics and bad values are refused on attach and on load.
    let err = baseline().with_reference(reference(1, "v1-release")).unwrap_err();
    assert!(err.to_string().contains("field reference: 1 reference runs for 4 runs"), "{err}");
    let mut missing = reference(4, "v1-release");
    missing.runs.remove(&Metric::P999);
    let err = baseline().with_reference(missing).unwrap_err();
    assert!(err.to_string().contains("no reference values for metric p99.9"), "{err}");
    let mut negative = reference(4, "v1-release");
    negative.runs.get_mut(&Metric::Max).unwrap()[2] = -1.0;
    let err = baseline().with_reference(negative).unwrap_err();
    assert!(err.to_string().contains("field reference.max: -1 is not a positive duration"), "{err}");
    let bad = text.replacen("p50 = [", "p50 = [1.0, ", 1);
    let (_d, r) = load_text(&bad);
    assert_msg(&r.unwrap_err(), 25, "field reference.p50: 5 values for 4 runs");
    let bad = text.replacen("\"p99.9\" = [", "p95 = [1.0]\n\"p99.9\" = [", 1);
    let (_d, r) = load_text(&bad);
    assert_msg(&r.unwrap_err(), 28, "field reference.p95: unknown field `p95`");
    let bad = text.replacen("workload = \"v1-release\"\n", "", 1);
    let (_d, r) = load_text(&bad);
    assert_msg(&r.unwrap_err(), 22, "field reference.workload: missing field `workload`");
}

#[test]
fn baseline_reference_comment_names_the_drift_checkpoint() {
    // The comment is fixed text for byte-stable files; it must describe what drift measures.
    assert!(REFERENCE_COMMENT.contains(&format!(" {} ", crate::drift::REFERENCE_CHECKPOINT)), "{REFERENCE_COMMENT}");
}

#[test]
fn baseline_order_rule_derives_from_metric_quantiles() {
    let (pairs, rule) = order();
    let want = [
        (Metric::Min, Metric::P50),
        (Metric::P50, Metric::P90),
        (Metric::P90, Metric::P99),
        (Metric::P99, Metric::P999),
        (Metric::P999, Metric::Max),
        (Metric::Min, Metric::Mean),
        (Metric::Mean, Metric::Max),
    ];
    assert_eq!(pairs, want);
    assert_eq!(rule, "min <= p50 <= p90 <= p99 <= p99.9 <= max and min <= mean <= max");
}

/// The committed baselines (`baselines/*.toml` at the workspace root).
fn committed_baselines() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../baselines");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn baseline_committed_files_load_and_rewrite_byte_identically() {
    let paths = committed_baselines();
    assert!(!paths.is_empty(), "no baselines/*.toml found");
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let b = Baseline::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.to_toml_string(), text, "{} does not re-write to the same bytes", path.display());
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(path.file_name().unwrap());
        b.save_atomic(&copy).unwrap();
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), text, "{}", path.display());
    }
}

#[test]
fn baseline_text_looks_as_documented() {
    let b = baseline();
    let text = b.to_toml_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "# funcscope baseline for scenario http_parse. Regenerate with: cargo xtask baseline --scenario http_parse"
    );
    assert!(lines[1].starts_with("# Per-run arrays") && lines[1].contains("one value per process run, in ns"));
    assert_eq!(lines[2], "schema = 1");
    assert_eq!(lines[3], "scenario = \"http_parse\"");
    assert!(text.contains("\n[recorded]\ncommit = \"3f2a9c1e0b7d\"\ndate = \"2026-05-04T09:12:44Z\"\nruns = 4\n"));
    assert!(text.contains("args = [\"--requests\", \"200000\"]\n"));
    assert!(text.contains("\n[machine]\ncpu_model = \"AMD EPYC 9654 96-Core Processor\"\ncores = 16\n"));
    assert!(text.contains("tick_hz = 2596122000.0\n"));
    // Checkpoints sorted by name, names quoted only when they must be.
    let route = text.find("[checkpoints.\"http::route\"]").unwrap();
    let parse = text.find("[checkpoints.parse_headers]\n").unwrap();
    assert!(route < parse);
    assert!(text
        .contains("[checkpoints.parse_headers.pooled]\np50 = 101.33\np90 = 130.2\np99 = 211.0\n\"p99.9\" = 481.46\n"));
    // Metric keys in Metric::ALL order, one array per line.
    let section = &text[parse..];
    let keys: Vec<&str> = section.lines().skip(1).take(10).map(|l| l.split(" = ").next().unwrap()).collect();
    assert_eq!(keys, ["calls_per_run", "lost", "noise_cv", "min", "p50", "p90", "p99", "\"p99.9\"", "max", "mean"]);
    let p50 = section.lines().find(|l| l.starts_with("p50 = [")).unwrap();
    assert!(p50.ends_with(']') && p50.matches(", ").count() == 3, "{p50}");
    assert!(section.contains("\nlost = 6\n"));
    assert!(section.contains("\ncalls_per_run = 200001.5\n"));
    let noise = section.lines().find(|l| l.starts_with("noise_cv = { min = ")).unwrap();
    assert!(noise.contains("\"p99.9\" = ") && noise.ends_with(" }"), "{noise}");
    // Every ns value has at most two decimals.
    for l in section.lines().filter(|l| l.contains("= [")) {
        for v in l.split_once('[').unwrap().1.trim_end_matches(']').split(", ") {
            let decimals = v.split_once('.').map_or(0, |(_, d)| d.len());
            assert!(decimals <= 2, "{v} in {l}");
        }
    }
}

#[test]
fn baseline_from_runs_values() {
    let runs: Vec<RunResult> = (0..4).map(|i| run(i, &NAMES)).collect();
    let b = baseline();
    assert_eq!(b.schema, BASELINE_SCHEMA);
    assert_eq!(b.recorded.runs, 4);
    for m in Metric::ALL {
        let got = b.values("parse_headers", m).unwrap();
        let want: Vec<f64> =
            runs.iter().map(|r| round_ns(r.checkpoints["parse_headers"].summary.unwrap().get(m))).collect();
        assert_eq!(got, &want[..], "{m}");
        let cv = b.noise("parse_headers", m).unwrap();
        assert_eq!(cv, round_cv(noise_cv(&want).unwrap()));
        assert!(cv > 0.0 && cv < 0.1, "{m}: {cv}");
    }
    assert_eq!(b.checkpoints["parse_headers"].lost, 6);
    assert_eq!(round_cv(0.0123456789), 0.012346);
    assert_eq!(round_ns(101.33333), 101.33);
}

#[test]
fn baseline_from_runs_refuses_partial_runs() {
    let mut runs: Vec<RunResult> = (0..4).map(|i| run(i, &NAMES)).collect();
    runs[2].checkpoints.remove("parse_headers");
    let err = Baseline::from_runs("http_parse", &runs, &pooled(&NAMES), machine(), recorded()).unwrap_err();
    assert!(matches!(&err, BaselineError::PartialRuns { checkpoint, .. } if checkpoint == "parse_headers"), "{err:?}");
    assert!(err.to_string().contains("run 3 of 4"), "{err}");

    let mut runs: Vec<RunResult> = (0..4).map(|i| run(i, &NAMES)).collect();
    runs[1].checkpoints.get_mut("http::route").unwrap().summary = None;
    let err = Baseline::from_runs("http_parse", &runs, &pooled(&NAMES), machine(), recorded()).unwrap_err();
    assert!(matches!(&err, BaselineError::PartialRuns { checkpoint, .. } if checkpoint == "http::route"), "{err:?}");

    let runs: Vec<RunResult> = (0..1).map(|i| run(i, &NAMES)).collect();
    let err = Baseline::from_runs("http_parse", &runs, &pooled(&NAMES), machine(), recorded()).unwrap_err();
    assert!(matches!(&err, BaselineError::Refused { field, .. } if field == "recorded.runs"), "{err:?}");

    let runs: Vec<RunResult> = (0..3).map(|i| run(i, &NAMES)).collect();
    let err = Baseline::from_runs("http_parse", &runs, &pooled(&NAMES[..1]), machine(), recorded()).unwrap_err();
    assert!(matches!(&err, BaselineError::Refused { field, .. } if field.contains("http::route")), "{err:?}");

    let mut runs: Vec<RunResult> = (0..3).map(|i| run(i, &NAMES)).collect();
    let mut s = runs[0].checkpoints["parse_headers"].summary.unwrap();
    s.min = 0.0;
    runs[0].checkpoints.get_mut("parse_headers").unwrap().summary = Some(s);
    let err = Baseline::from_runs("http_parse", &runs, &pooled(&NAMES), machine(), recorded()).unwrap_err();
    assert!(
        matches!(&err, BaselineError::Refused { field, .. } if field == "checkpoints.parse_headers.min"),
        "{err:?}"
    );
}

/// `GOOD` with `from` replaced by `to` (which must occur exactly once).
fn bad(from: &str, to: &str) -> String {
    assert_eq!(GOOD.matches(from).count(), 1, "{from}");
    GOOD.replace(from, to)
}

fn assert_msg(err: &BaselineError, line: usize, field: &str) {
    let msg = err.to_string();
    assert!(msg.contains(&format!("http_parse.toml:{line}:")), "line {line} expected: {msg}");
    assert!(msg.contains(field), "field {field} expected: {msg}");
    assert!(msg.contains("cargo xtask baseline --scenario http_parse"), "{msg}");
}

#[test]
fn baseline_syntax_error_names_line_and_column() {
    let (_d, r) = load_text(&bad("funcscope = \"0.1.0\"", "funcscope = 0.1.0"));
    let err = r.unwrap_err();
    assert!(matches!(&err, BaselineError::Syntax { line: 9, .. }), "{err:?}");
    assert_msg(&err, 9, "recorded.funcscope");
    // An unterminated line 5: the table header.
    let (_d, r) = load_text(&bad("[recorded]", "[recorded"));
    let err = r.unwrap_err();
    assert!(matches!(&err, BaselineError::Syntax { line: 5, .. }), "{err:?}");
    assert!(err.to_string().contains("http_parse.toml:5:"), "{err}");
}

#[test]
fn baseline_wrong_schema() {
    let (_d, r) = load_text(&bad("schema = 1", "schema = 2"));
    let err = r.unwrap_err();
    assert!(matches!(&err, BaselineError::Schema { found: 2, line: 2, .. }), "{err:?}");
    let msg = err.to_string();
    assert_msg(&err, 2, "schema");
    assert!(msg.contains("version 2") && msg.contains("regenerate"), "{msg}");
    // A newer schema with a different structure still says "schema", not "missing field".
    let (_d, r) = load_text("schema = 7\nscenario = \"http_parse\"\n[totally]\ndifferent = true\n");
    assert!(matches!(r.unwrap_err(), BaselineError::Schema { found: 7, line: 1, .. }));
}

#[test]
fn baseline_negative_value_names_checkpoint_metric_index() {
    let (_d, r) = load_text(&bad("p50 = [100.0, 101.0, 100.5]", "p50 = [100.0, -3, 100.5]"));
    let err = r.unwrap_err();
    assert!(matches!(&err, BaselineError::Invalid { line: 25, .. }), "{err:?}");
    assert_msg(&err, 25, "field checkpoints.parse_headers.p50: value -3 at index 1 (run 2) is not a positive duration");
    let (_d, r) = load_text(&bad("\"p99.9\" = [400.0, 401.0, 400.5]", "\"p99.9\" = [400.0, 401.0, nan]"));
    let err = r.unwrap_err();
    assert_msg(&err, 28, "checkpoints.parse_headers.\"p99.9\": value NaN at index 2");
}

#[test]
fn baseline_unequal_lengths() {
    let (_d, r) = load_text(&bad("p90 = [130.0, 131.0, 130.5]", "p90 = [130.0, 131.0]"));
    let err = r.unwrap_err();
    assert!(matches!(&err, BaselineError::Invalid { line: 26, .. }), "{err:?}");
    assert_msg(&err, 26, "checkpoints.parse_headers.p90: 2 value(s), but recorded.runs = 3");
    assert!(err.to_string().contains("p90 has 2"), "{err}");
}

#[test]
fn baseline_too_few_runs_and_misordered_values() {
    let text = GOOD.replace(", 100.5]", "]").replace(", 101.0]", "]").replace(", 130.5]", "]");
    let text =
        text.replace(", 200.5]", "]").replace(", 400.5]", "]").replace(", 9000.5]", "]").replace(", 110.5]", "]");
    let text = text.replace("runs = 3", "runs = 1").replace("[80.0, 81.0, 80.5]", "[80.0]");
    let (_d, r) = load_text(&text);
    let err = r.unwrap_err();
    assert_msg(&err, 8, "field recorded.runs: 1 run(s) recorded, at least 2");

    let (_d, r) = load_text(&bad("p90 = [130.0, 131.0, 130.5]", "p90 = [130.0, 99.0, 130.5]"));
    let err = r.unwrap_err();
    assert_msg(&err, 26, "checkpoints.parse_headers.p90: at index 1 (run 2) p90 = 99 is below p50 = 101");
}

#[test]
fn baseline_missing_mistyped_unknown_fields() {
    let (_d, r) = load_text(&bad("runs = 3\n", ""));
    let err = r.unwrap_err();
    assert!(matches!(&err, BaselineError::Field { line: 5, .. }), "{err:?}");
    assert_msg(&err, 5, "field recorded.runs: missing field `runs`");

    let (_d, r) = load_text(&bad("mean = [110.0, 111.0, 110.5]\n", ""));
    let err = r.unwrap_err();
    assert_msg(&err, 20, "field checkpoints.parse_headers.mean: missing field `mean`");

    let (_d, r) = load_text(&bad("lost = 0", "lost = \"none\""));
    let err = r.unwrap_err();
    assert!(matches!(&err, BaselineError::Field { line: 22, .. }), "{err:?}");
    assert_msg(&err, 22, "field checkpoints.parse_headers.lost: invalid type");

    let (_d, r) = load_text(&bad("mean = [", "p95 = [1.0]\nmean = ["));
    let err = r.unwrap_err();
    assert_msg(&err, 30, "field checkpoints.parse_headers.p95: unknown field `p95`");

    let (_d, r) = load_text(&bad("mean = 0.01 }", "mean = 0.01, p95 = 0.1 }"));
    let err = r.unwrap_err();
    assert_msg(&err, 23, "unknown field `p95`");

    let (_d, r) = load_text(&bad("\"p99.9\" = 0.03, ", ""));
    let err = r.unwrap_err();
    assert!(matches!(&err, BaselineError::Invalid { line: 23, .. }), "{err:?}");
    assert_msg(&err, 23, "field checkpoints.parse_headers.noise_cv: no value for metric p99.9");

    let (_d, r) = load_text(&bad("date = \"2026-05-04T09:12:44Z\"", "date = \"yesterday\""));
    assert_msg(&r.unwrap_err(), 7, "field recorded.date");
}

#[test]
fn baseline_missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("http_parse.toml");
    let err = Baseline::load(&path).unwrap_err();
    assert!(matches!(&err, BaselineError::NotFound { path: p } if *p == path), "{err:?}");
    assert!(err.to_string().contains("no baseline"), "{err}");
}

#[test]
fn baseline_save_failure_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // The target is a directory: the rename fails, and the temporary file must be gone.
    let path = dir.path().join("http_parse.toml");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("keep"), "x").unwrap();
    let err = baseline().save_atomic(&path).unwrap_err();
    assert!(matches!(err, BaselineError::Io { .. }), "{err:?}");
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("http_parse.toml")]);
}

#[test]
fn baseline_rfc3339() {
    assert!(is_rfc3339_utc("2026-05-04T09:12:44Z"));
    assert!(is_rfc3339_utc("2026-05-04T09:12:44.123456Z"));
    assert!(!is_rfc3339_utc("2026-05-04T09:12:44+02:00"));
    assert!(!is_rfc3339_utc("2026-05-04 09:12:44Z"));
    assert!(!is_rfc3339_utc("2026-05-04T09:12:44.Z"));
    assert!(!is_rfc3339_utc(""));
}

#[test]
fn baseline_append_adds_a_session_that_round_trips_and_measures_the_session_spread() {
    let first = baseline();
    assert_eq!(first.recorded.sessions, vec![4]);
    assert_eq!(first.session_var(), None, "one session says nothing about sessions");
    // A second session of the same code, 3 runs, every value 10 % slower.
    let slow: Vec<RunResult> = (0..3)
        .map(|i| {
            let mut r = run(i, &NAMES);
            let scale = 1.0 + 0.0137 * i as f64 - 0.004 * (i % 2) as f64;
            for (k, n) in NAMES.iter().enumerate() {
                r.checkpoints.get_mut(*n).unwrap().summary = Some(summary(1.1 * scale * (1.0 + k as f64)));
            }
            r
        })
        .collect();
    let mut later = recorded();
    later.date = "2026-05-05T10:00:00Z".into();
    let second = Baseline::from_runs("http_parse", &slow, &pooled(&NAMES), machine(), later).unwrap();
    let both = first.clone().append(second.clone()).unwrap();
    assert_eq!(both.recorded.runs, 7);
    assert_eq!(both.recorded.sessions, vec![4, 3]);
    assert_eq!(both.recorded.date, "2026-05-05T10:00:00Z");
    assert_eq!(both.values("parse_headers", Metric::P50).unwrap().len(), 7);
    assert_eq!(both.checkpoints["parse_headers"].lost, (0..4).sum::<u64>() + (0..3).sum::<u64>());
    // Two sessions `d = ln 1.1` apart estimate a session variance of d^2 / 2 (two draws of the
    // session offset differ by 2 * variance in expectation); the runs' own trend makes it inexact.
    let v = both.session_var().unwrap();
    assert!((v / (1.1f64.ln().powi(2) / 2.0) - 1.0).abs() < 0.25, "{v}");
    // Written with `sessions = [4, 3]` and read back identical.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("http_parse.toml");
    both.save_atomic(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\nsessions = [4, 3]\n"), "{text}");
    assert_eq!(Baseline::load(&path).unwrap(), both);
    // A single-session file does not gain the key: existing baselines stay byte-identical.
    first.save_atomic(&path).unwrap();
    assert!(!std::fs::read_to_string(&path).unwrap().contains("sessions"));
    // Another commit is refused, naming the field and the fix.
    let mut other = second.clone();
    other.recorded.commit = "0123456".into();
    let err = first.clone().append(other).unwrap_err().to_string();
    assert!(err.contains("recorded.commit") && err.contains("without --append"), "{err}");
    let mut other = second;
    other.checkpoints.remove("parse_headers");
    assert!(first.append(other).unwrap_err().to_string().contains("field checkpoints"));
}

#[test]
fn baseline_sessions_must_add_up_to_the_runs() {
    let text = GOOD.replace("args = []", "args = []\nsessions = [2, 2]");
    let (_d, r) = load_text(&text);
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains("http_parse.toml:11: field recorded.sessions") && err.contains("summing to recorded.runs = 3"),
        "{err}"
    );
    let (_d, r) = load_text(&GOOD.replace("args = []", "args = []\nsessions = [3, 0]"));
    assert!(r.unwrap_err().to_string().contains("recorded.sessions"));
    let (_d, r) = load_text(&GOOD.replace("args = []", "args = []\nsessions = [2, 1]"));
    assert_eq!(r.unwrap().recorded.sessions, vec![2, 1]);
}

/// Poisoned values: a reference of 1e-300 ns would turn every checkpoint into "improved -100 %",
/// a tick frequency of 0 or NaN is no machine, a file naming another scenario would judge one
/// scenario by another's numbers, a noise of 1e300 would print hundreds of digits.
#[test]
fn baseline_poisoned_values_name_line_and_field() {
    for (from, to, line, field) in [
        (
            "p50 = [100.0, 101.0, 100.5]",
            "p50 = [1e-300, 101.0, 100.5]",
            25,
            "value 1e-300 at index 0 (run 1) is not a positive duration",
        ),
        ("min = [80.0, 81.0, 80.5]", "min = [80.0, 81.0, 1e300]", 24, "checkpoints.parse_headers.min: value 1e300"),
        ("p50 = 100.5", "p50 = 1e-300", 33, "checkpoints.parse_headers.pooled.p50: value 1e-300 is not"),
        ("tick_hz = 3000000000.0", "tick_hz = 0.0", 15, "machine.tick_hz: 0 is not a tick frequency"),
        ("tick_hz = 3000000000.0", "tick_hz = nan", 15, "machine.tick_hz: NaN is not a tick frequency"),
        ("scenario = \"http_parse\"", "scenario = \"other\"", 3, "scenario: \"other\" does not match the file name"),
        ("p99 = 0.02,", "p99 = 1e300,", 23, "noise_cv.p99: 1e300 is not a coefficient of variation"),
        ("calls_per_run = 1000.0", "calls_per_run = 1.8e19", 21, "calls_per_run: 1.8e19 is not a count"),
    ] {
        let (_d, r) = load_text(&bad(from, to));
        let err = r.unwrap_err();
        assert!(matches!(&err, BaselineError::Invalid { .. }), "{to}: {err:?}");
        assert_msg(&err, line, field);
        assert!(err.to_string().len() < 400, "{to}: a long message: {err}");
    }
}
