//! Event pairs under the regression gate, end to end through the `funcscope` binary on real
//! tracepoints: the `pipe_reads` scenario's `read`s are traced as
//! `[[scenario.event_pair]] syscalls:sys_enter_read -> syscalls:sys_exit_read`, get a baseline
//! beside the probe's checkpoint, are judged unchanged on the same build, and regressed when
//! `FUNCSCOPE_PLANT` makes the pipe's writer slower (the wait falls between the two events). A bad
//! selector, an unknown event or an unknown key field is a configuration error naming the file
//! and line. Skips, saying why, where the kernel refuses tracepoints (no privilege, no tracefs).
//!
//! Margins: the plant is +500 % of a read's cost and the minimum effect 40 %, far beyond this
//! VM's run-to-run drift, so the verdicts do not depend on a quiet machine.

mod common;

use std::path::Path;
use std::process::Output;

use common::text;

/// Writes the configuration; returns the line of its `[[scenario.event_pair]]` (0: none).
fn config(dir: &Path, program: &Path, env: &str, pair: &str) -> usize {
    let text = common::write_gate_config(dir, "pipe_reads", program, env, pair);
    text.lines().position(|l| l.starts_with("[[scenario.event_pair]]")).map_or(0, |i| i + 1)
}

fn funcscope(dir: &Path, args: &[&str]) -> Output {
    common::funcscope_in(dir, args)
}

fn pair(from: &str, to: &str, key: &str) -> String {
    format!("[[scenario.event_pair]]\nname = \"read\"\nfrom = {from:?}\nto = {to:?}\n{key}")
}

fn reads() -> String {
    pair("syscalls:sys_enter_read", "syscalls:sys_exit_read", "key = \"tid\"\n")
}

/// Whether tracepoints work here; says why not.
fn tracepoints_refused(out: &Output) -> bool {
    common::refused(
        out,
        "tracepoints",
        &["perf_event_open refused", "is not readable by this user", "tracefs is not mounted"],
    )
}

fn verdicts(json: &Path) -> Vec<(String, String)> {
    common::checkpoint_verdicts(json)
}

#[test]
fn an_event_pair_gets_a_baseline_and_verdicts() {
    let bin = common::scenario_binary("pipe_reads");
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &bin, "", &reads());
    let out = funcscope(dir.path(), &["baseline", "--no-reference"]);
    if tracepoints_refused(&out) {
        return;
    }
    assert_eq!(out.status.code(), Some(0), "baseline failed:\n{}", text(&out));
    let recorded = std::fs::read_to_string(dir.path().join("baselines/pipe_reads.toml")).unwrap();
    assert!(recorded.contains("[checkpoints.\"event:read\"]"), "{recorded}");
    assert!(recorded.contains("[checkpoints.read]"), "{recorded}");
    // Every call of the probe's `read` checkpoint holds exactly one read(2), the measured phase
    // does no other, and the window leaves out the reads of start-up and calibration: the pair
    // counts exactly the probe's calls.
    let b: toml::Value = toml::from_str(&recorded).unwrap();
    let calls = |cp: &str| b["checkpoints"][cp]["calls_per_run"].as_float().unwrap();
    let (pairs, probe) = (calls("event:read"), calls("read"));
    assert!(probe > 0.0 && pairs == probe, "pairs {pairs}, probe {probe}\n{recorded}");

    let json = dir.path().join("aa.json");
    let out = funcscope(dir.path(), &["regress", "--no-reference", "--json", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "A/A regress should pass:\n{}", text(&out));
    let v = verdicts(&json);
    assert!(v.iter().any(|(n, v)| n == "event:read" && v != "regressed"), "{v:?}\n{}", text(&out));
    assert!(text(&out).contains("event:read"), "the report names the checkpoint:\n{}", text(&out));

    // The pipe's writer made slower: the wait inside each read(2) grows and the pair regresses.
    config(dir.path(), &bin, r#"FUNCSCOPE_PLANT = "read=500""#, &reads());
    let json = dir.path().join("planted.json");
    let out = funcscope(dir.path(), &["regress", "--no-reference", "--json", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "planted regress should exit 1:\n{}", text(&out));
    let v = verdicts(&json);
    assert!(v.iter().any(|(n, v)| n == "event:read" && v == "regressed"), "{v:?}\n{}", text(&out));
}

#[test]
fn bad_event_pairs_are_configuration_errors_naming_file_and_line() {
    let bin = common::scenario_binary("pipe_reads");
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // A selector that does not parse.
        (pair("syscalls:sys_enter_read/fd==0", "syscalls:sys_exit_read", ""), "sys_enter_read"),
        // No such tracepoint.
        (pair("syscalls:sys_enter_nope", "syscalls:sys_exit_read", ""), "sys_enter_nope"),
        // A key field the events do not have.
        (pair("syscalls:sys_enter_read", "syscalls:sys_exit_read", "key = \"nosuchfield\"\n"), "nosuchfield"),
        // A filter on a field the event does not have.
        (pair("syscalls:sys_enter_read/nosuchfield == 1/", "syscalls:sys_exit_read", ""), "nosuchfield"),
        // A syntax error caught before tracefs is read: an empty `to`.
        (pair("syscalls:sys_enter_read", "", ""), "`to` is empty"),
    ];
    for (entry, named) in cases {
        let line = config(dir.path(), &bin, "", &entry);
        let out = funcscope(dir.path(), &["baseline", "--no-reference"]);
        if out.status.code() != Some(2) && tracepoints_refused(&out) {
            return;
        }
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{entry}\n{t}");
        assert!(t.contains(&format!("funcscope.toml:{line}:")), "{entry}: no file:line {line}\n{t}");
        assert!(t.contains(named) && t.contains("event_pair"), "{entry}: {named} not named\n{t}");
        assert!(!dir.path().join("baselines/pipe_reads.toml").exists());
    }
}
