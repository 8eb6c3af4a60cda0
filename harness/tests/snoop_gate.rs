//! Uprobe checkpoints under the regression gate, end to end through the `funcscope` binary: the
//! `uprobe_gate` scenario's uninstrumented `gated_work` is listed in `[[scenario.uprobe]]`, gets
//! a baseline beside the probe's checkpoint, is judged unchanged on the same build, and
//! regressed when `FUNCSCOPE_PLANT` puts extra work inside it. Skips, saying why, where the
//! kernel refuses uprobes (no privilege, no uprobe PMU).
//!
//! Margins: the plant is +500 % of the step's cost and the minimum effect 40 %, far beyond this
//! VM's run-to-run drift, so the verdicts do not depend on a quiet machine.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::text;

fn config(dir: &Path, program: &Path, env: &str, uprobe: &str) {
    common::write_gate_config(dir, "uprobe_gate", program, env, uprobe);
}

fn funcscope(dir: &Path, args: &[&str]) -> Output {
    common::funcscope_in(dir, args)
}

const GATED: &str = "[[scenario.uprobe]]\nname = \"gated_work\"\nsymbol = \"uprobe_gate::gated_work\"\n";

/// Whether uprobes work here; says why not.
fn uprobes_refused(out: &Output) -> bool {
    common::refused(out, "uprobes", &["perf_event_open refused", "no uprobe PMU"])
}

fn verdicts(json: &Path) -> Vec<(String, String)> {
    common::checkpoint_verdicts(json)
}

#[test]
fn a_uprobe_checkpoint_gets_a_baseline_and_verdicts() {
    let bin = common::scenario_binary("uprobe_gate");
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &bin, "", GATED);
    let out = funcscope(dir.path(), &["baseline", "--no-reference"]);
    if uprobes_refused(&out) {
        return;
    }
    assert_eq!(out.status.code(), Some(0), "baseline failed:\n{}", text(&out));
    let recorded = std::fs::read_to_string(dir.path().join("baselines/uprobe_gate.toml")).unwrap();
    assert!(recorded.contains("[checkpoints.\"uprobe:gated_work\"]"), "{recorded}");
    assert!(recorded.contains("[checkpoints.step]"), "{recorded}");
    // Every call of the step calls gated_work once (and calibration calls it before the probe's
    // measured phase), so the uprobe sees at least as many calls as the probe.
    let calls = |cp: &str| -> f64 {
        let b: toml::Value = toml::from_str(&recorded).unwrap();
        b["checkpoints"][cp]["calls_per_run"].as_float().unwrap()
    };
    assert!(calls("uprobe:gated_work") >= calls("step") && calls("step") > 0.0, "{recorded}");

    let json = dir.path().join("aa.json");
    let out = funcscope(dir.path(), &["regress", "--no-reference", "--json", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "A/A regress should pass:\n{}", text(&out));
    let v = verdicts(&json);
    assert!(v.iter().any(|(n, v)| n == "uprobe:gated_work" && v != "regressed"), "{v:?}\n{}", text(&out));

    // Extra work planted inside gated_work: its uprobe checkpoint regresses.
    config(dir.path(), &bin, r#"FUNCSCOPE_PLANT = "step=500""#, GATED);
    let json = dir.path().join("planted.json");
    let out = funcscope(dir.path(), &["regress", "--no-reference", "--json", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "planted regress should exit 1:\n{}", text(&out));
    let v = verdicts(&json);
    assert!(v.iter().any(|(n, v)| n == "uprobe:gated_work" && v == "regressed"), "{v:?}\n{}", text(&out));
}

#[test]
fn a_wrong_uprobe_target_fails_the_run_naming_it() {
    let bin = common::scenario_binary("uprobe_gate");
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &bin, "", "[[scenario.uprobe]]\nname = \"nope\"\nsymbol = \"no_such_function_here\"\n");
    let out = funcscope(dir.path(), &["baseline", "--no-reference"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("no_such_function_here"), "{}", text(&out));
    assert!(!dir.path().join("baselines/uprobe_gate.toml").exists());
    // A malformed entry is a configuration error with the file and line.
    config(dir.path(), &bin, "", "[[scenario.uprobe]]\nname = \"x\"\ntarget = \"nocolon\"\n");
    let out = funcscope(dir.path(), &["baseline", "--no-reference"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("funcscope.toml:") && text(&out).contains("FILE:SYMBOL"), "{}", text(&out));
}

/// `funcscope run --uprobe NAME=FILE:SYMBOL`: the uninstrumented `gated_work` is measured in
/// every run beside the probe's `step` and reported as checkpoint `uprobe:gated`, with at least
/// as many calls as `step` (every step calls it once; calibration calls it before the window
/// opens, and those calls are left out). A symbol that does not exist fails the run (3) naming
/// it; a malformed value is a usage error (2).
#[test]
fn run_reports_uprobe_checkpoints_beside_the_probes() {
    let bin = common::scenario_binary("uprobe_gate");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let run = |uprobe: &str, json: &Path| {
        Command::new(env!("CARGO_BIN_EXE_funcscope"))
            .args(["run", "--runs", "2", "--no-pin", "--json"])
            .arg(json)
            .args(["--uprobe", uprobe, "--"])
            .arg(&bin)
            .args(["--duration-ms", "80"])
            .env_remove("FUNCSCOPE_PLANT")
            .output()
            .unwrap()
    };
    let out = run(&format!("gated={}:uprobe_gate::gated_work", bin.display()), &json);
    if uprobes_refused(&out) {
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("uprobe:gated"), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let calls = |name: &str| -> f64 {
        let cps = report["scenarios"][0]["checkpoints"].as_array().unwrap();
        let c = cps.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name}: {report}"));
        c["calls_per_run"].as_f64().unwrap()
    };
    assert!(calls("uprobe:gated") >= calls("step") && calls("step") > 0.0, "{report}");

    let out = run(&format!("{}:no_such_function_here", bin.display()), &dir.path().join("bad.json"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("no_such_function_here"), "{}", text(&out));
    let out = run("nocolon", &dir.path().join("bad2.json"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("[NAME=]FILE:SYMBOL"), "{}", text(&out));
}
