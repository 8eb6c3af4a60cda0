//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Builds a scenario binary of `funcscope-scenarios` (debug profile: the tests need real
/// processes doing real work, not speed) and returns its path.
pub fn scenario_binary(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let st = Command::new(&cargo)
        .args(["build", "--quiet", "-p", "funcscope-scenarios", "--bin", name])
        .current_dir(&root)
        .status()
        .expect("run cargo build");
    assert!(st.success(), "building the {name} scenario failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join(name);
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

/// A process's stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!("--- stdout\n{}\n--- stderr\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Writes `dir/funcscope.toml` for the gate tests of one scenario program: a lenient gate (alpha
/// 5 %, minimum effect 40 %, p50), 4 rounds, the scenario `name` at `program` with `env` (TOML
/// inline-table body) and `extra` (its sub-tables, e.g. `[[scenario.uprobe]]`) appended. Returns
/// the text written.
#[allow(dead_code)] // the gate tests only
pub fn write_gate_config(dir: &Path, name: &str, program: &Path, env: &str, extra: &str) -> String {
    let text = format!(
        r#"[gate]
alpha = 0.05
min_effect = 0.4
metrics = ["p50"]

[run]
runs = 4
warmup_runs = 0
timeout_s = 30
attach_timeout_s = 5

[[scenario]]
name = "{name}"
path = {program:?}
args = ["--duration-ms", "80"]
env = {{ {env} }}

{extra}
"#,
        program = program.display().to_string(),
    );
    std::fs::write(dir.join("funcscope.toml"), &text).unwrap();
    text
}

/// Runs the `funcscope` binary with `args` and `--config dir/funcscope.toml` in `dir`, with no
/// plant inherited from the caller's environment.
#[allow(dead_code)] // the gate tests only
pub fn funcscope_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(args)
        .arg("--config")
        .arg(dir.join("funcscope.toml"))
        .current_dir(dir)
        .env_remove("FUNCSCOPE_PLANT")
        .output()
        .unwrap()
}

/// Whether `out` failed because the kernel refuses what the test needs (any of `markers` in its
/// output); says so, naming `what`, so the test can skip.
#[allow(dead_code)] // the gate tests only
pub fn refused(out: &Output, what: &str, markers: &[&str]) -> bool {
    let t = text(out);
    let refused = markers.iter().any(|m| t.contains(m));
    if refused {
        eprintln!("SKIP: {what} are not available here:\n{t}");
    }
    refused
}

/// (checkpoint, verdict) of the first scenario of a JSON report.
#[allow(dead_code)] // the gate tests only
pub fn checkpoint_verdicts(json: &Path) -> Vec<(String, String)> {
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    report["scenarios"][0]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["verdict"].as_str().unwrap().to_owned()))
        .collect()
}
