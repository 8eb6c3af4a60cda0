//! End to end through real processes: the `funcscope` CLI binary runs a real instrumented
//! scenario (the `codec` scenario, built here), records a baseline into a temporary directory,
//! and judges a planted slowdown; failing programs and malformed baselines get their exit codes.
//!
//! No test depends on the machine being quiet: the planted slowdown is +200 % and the minimum
//! effect 40 %, far beyond this machine's run-to-run drift (up to ~35 % over minutes).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::text;
use std::sync::OnceLock;

/// Builds the codec scenario once.
fn codec_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::scenario_binary("codec"))
}

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `funcscope.toml` with one scenario `codec` running `program`.
    fn config(&self, program: &Path, args: &[&str], env: &str, extra: &str) {
        let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        let text = format!(
            r#"[gate]
alpha = 0.05
min_effect = 0.4
metrics = ["p50", "p99"]

[run]
runs = 4
warmup_runs = 0
timeout_s = 20
attach_timeout_s = 3

[[scenario]]
name = "codec"
path = {program:?}
args = [{args}]
env = {{ {env} }}
{extra}
"#,
            program = program.display().to_string(),
            args = args.join(", "),
        );
        std::fs::write(self.path().join("funcscope.toml"), text).unwrap();
    }

    fn funcscope(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_funcscope"));
        cmd.args(args).arg("--config").arg(self.path().join("funcscope.toml")).current_dir(self.path());
        cmd.env_remove("FUNCSCOPE_PLANT");
        cmd.output().unwrap()
    }

    fn baseline_file(&self) -> PathBuf {
        self.path().join("baselines").join("codec.toml")
    }
}

#[test]
fn planted_slowdown_is_a_regression_of_exactly_that_checkpoint() {
    let ws = Workspace::new();
    let bin = codec_binary();
    ws.config(bin, &["--duration-ms", "250"], "", "");
    let out = ws.funcscope(&["baseline"]);
    assert_eq!(out.status.code(), Some(0), "baseline failed:\n{}", text(&out));
    let recorded = std::fs::read_to_string(ws.baseline_file()).unwrap();
    assert!(recorded.contains("[checkpoints.crc32c]"), "{recorded}");

    // Unchanged code: no regression (the 40 % minimum effect absorbs machine drift).
    let json = ws.path().join("aa.json");
    let out = ws.funcscope(&["regress", "--json", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "A/A regress should pass:\n{}", text(&out));

    // +200 % planted inside crc32c only.
    ws.config(bin, &["--duration-ms", "250"], r#"FUNCSCOPE_PLANT = "crc32c=200""#, "");
    let json = ws.path().join("planted.json");
    let out = ws.funcscope(&["regress", "--json", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "planted regress should exit 1:\n{}", text(&out));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let cps = report["scenarios"][0]["checkpoints"].as_array().unwrap();
    let regressed: Vec<&str> =
        cps.iter().filter(|c| c["verdict"] == "regressed").map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(regressed, ["crc32c"], "{}", text(&out));
    assert_eq!(report["exit_code"], 1);
    // The sampling the budget bounds is part of the wall time, which also holds the build.
    let (wall, sampling) = (report["wall_s"].as_f64().unwrap(), report["sampling_s"].as_f64().unwrap());
    assert!(sampling > 0.0 && sampling <= wall, "sampling {sampling} s, wall {wall} s");
    // The baseline is never touched by regress.
    assert_eq!(std::fs::read_to_string(ws.baseline_file()).unwrap(), recorded);
}

#[test]
fn baseline_append_records_a_second_session_that_regress_reports() {
    let ws = Workspace::new();
    ws.config(codec_binary(), &["--duration-ms", "60"], "", "");
    let out = ws.funcscope(&["baseline", "--no-reference"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = ws.funcscope(&["baseline", "--no-reference", "--append"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("(8 runs in 2 sessions)"), "{}", text(&out));
    let recorded = std::fs::read_to_string(ws.baseline_file()).unwrap();
    assert!(recorded.contains("\nruns = 8\n") && recorded.contains("\nsessions = [4, 4]\n"), "{recorded}");
    let out = ws.funcscope(&["regress", "--against-baseline"]);
    assert!(text(&out).contains("in 2 sessions: session spread"), "{}", text(&out));
    // Other arguments are another experiment: refused, the file untouched, the fix named.
    ws.config(codec_binary(), &["--duration-ms", "70"], "", "");
    let out = ws.funcscope(&["baseline", "--no-reference", "--append"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("recorded.args") && text(&out).contains("without --append"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(ws.baseline_file()).unwrap(), recorded);
}

fn assert_scenario_failure(program: &Path, args: &[&str], expect: &str) {
    let ws = Workspace::new();
    // A valid baseline from a real run first, so we can check it stays untouched.
    ws.config(codec_binary(), &["--duration-ms", "100"], "", "");
    let out = ws.funcscope(&["baseline"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = std::fs::read(ws.baseline_file()).unwrap();

    ws.config(program, args, "", "");
    for cmd in ["regress", "baseline"] {
        let out = ws.funcscope(&[cmd]);
        assert_eq!(out.status.code(), Some(3), "{cmd} with a failing program:\n{}", text(&out));
        assert!(text(&out).contains(expect), "{cmd}: expected {expect:?} in:\n{}", text(&out));
        assert_eq!(std::fs::read(ws.baseline_file()).unwrap(), before, "{cmd} touched the baseline");
    }
}

#[test]
fn crashing_scenario_exits_3_naming_the_signal() {
    assert_scenario_failure(Path::new("/bin/sh"), &["-c", "echo about to crash >&2; kill -SEGV $$"], "SIGSEGV");
}

#[test]
fn scenario_that_never_attaches_exits_3() {
    assert_scenario_failure(Path::new("/bin/sleep"), &["30"], "no process attached");
}

#[test]
fn uninstrumented_program_exits_3() {
    assert_scenario_failure(Path::new("/bin/true"), &[], "exited before attaching");
}

#[test]
fn malformed_baseline_exits_2_naming_file_and_line() {
    let ws = Workspace::new();
    ws.config(codec_binary(), &["--duration-ms", "100"], "", "");
    std::fs::create_dir_all(ws.baseline_file().parent().unwrap()).unwrap();
    std::fs::write(ws.baseline_file(), "schema = 1\nscenario = \"codec\"\n[recorded\ncommit = \"x\"\n").unwrap();
    let out = ws.funcscope(&["regress"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("codec.toml:3"), "expected file:line in {stderr}");
}

#[test]
fn bad_configuration_exits_2() {
    let ws = Workspace::new();
    ws.config(codec_binary(), &[], "", "runs = 1");
    let out = ws.funcscope(&["regress"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("funcscope.toml:"), "{}", text(&out));
}

/// Out-of-range flag values are usage errors (exit 2) naming the flag, never a panic.
#[test]
fn out_of_range_flags_exit_2_naming_the_flag() {
    let ws = Workspace::new();
    ws.config(codec_binary(), &[], "", "");
    for (args, flag) in [
        (&["regress", "--budget=-1"][..], "--budget"),
        (&["regress", "--budget", "1e12"][..], "--budget"),
        (&["regress", "--runs", "1000000"][..], "--runs"),
    ] {
        let out = ws.funcscope(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(flag), "{args:?}: {}", text(&out));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["run", "--timeout", "1e300", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"), "{}", text(&out));
}

/// Huge, infinite and NaN numbers in funcscope.toml and on the command line are usage errors
/// (exit 2) naming the key or flag, in a message of sane length, never a panic (rc 101) or a run
/// that never ends. Nothing is run: each is refused before the first build or run.
#[test]
fn absurd_numbers_exit_2_naming_the_key() {
    let ws = Workspace::new();
    for (line, key) in [
        ("timeout_s = inf", "run.timeout_s"),
        ("timeout_s = nan", "run.timeout_s"),
        ("timeout_s = 1e300", "run.timeout_s"),
        ("attach_timeout_s = 1e20", "run.attach_timeout_s"),
        ("attach_timeout_s = -inf", "run.attach_timeout_s"),
        ("budget_s = 1e300", "run.budget_s"),
        ("budget_s = nan", "run.budget_s"),
        ("warmup_runs = 9223372036854775807", "run.warmup_runs"),
        ("runs = 9223372036854775807", "run.runs"),
        ("max_runs = 9223372036854775807", "run.max_runs"),
    ] {
        let (k, _) = line.split_once(" = ").unwrap();
        let toml = format!("[run]\n{line}\n[[scenario]]\nname = \"codec\"\npath = \"/bin/true\"\n");
        std::fs::write(ws.path().join("funcscope.toml"), toml).unwrap();
        let out = ws.funcscope(&["regress", "--no-build"]);
        assert_eq!(out.status.code(), Some(2), "{line}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("funcscope.toml:2:") && stderr.contains(key), "{line} ({k}): {stderr}");
        assert!(stderr.len() < 300, "{line}: {stderr}");
    }
    for args in [
        &["run", "--timeout", "nan", "--", "/bin/true"][..],
        &["run", "--timeout", "inf", "--", "/bin/true"][..],
        &["run", "--attach-timeout", "1e300", "--", "/bin/true"][..],
        &["run", "--runs", "9223372036854775807", "--", "/bin/true"][..],
        &["run", "--runs", "0", "--", "/bin/true"][..],
        &["verdict-bench", "--trials", "9223372036854775807", "--no-build"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_funcscope")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let flag = args.iter().find(|a| a.starts_with("--")).unwrap();
        assert!(stderr.contains(flag) && stderr.len() < 300, "{args:?}: {stderr}");
    }
}

/// A scenario without a baseline is never a silent pass: `--strict` refuses (exit 2) before
/// running anything, and every mode says how to record one.
#[test]
fn missing_baseline_is_said_and_fails_with_strict() {
    let ws = Workspace::new();
    ws.config(codec_binary(), &["--duration-ms", "100"], "", "");
    let out = ws.funcscope(&["regress", "--strict"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no baseline: run `cargo xtask baseline`"), "{}", text(&out));
    assert!(!ws.path().join("baselines").exists(), "--strict recorded something");
    let out = ws.funcscope(&["regress", "--no-reference"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = text(&out);
    assert!(all.matches("no baseline: run `cargo xtask baseline`").count() >= 2, "stderr and report: {all}");
}

#[test]
fn run_command_measures_any_instrumented_program() {
    let out = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["run", "--", codec_binary().to_str().unwrap(), "--duration-ms", "100"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for cp in ["encode_frame", "decode_frame", "crc32c"] {
        assert!(stdout.contains(cp), "{cp} missing from:\n{stdout}");
    }
}
