//! End to end: `compare` of two real revisions. A temporary git repository holds a copy of the
//! probe and the scenarios; its committed revision is A, and an uncommitted edit that makes the
//! codec scenario compute its frame checksum three times is B (the working tree). `compare HEAD`
//! must build A in a worktree and B from the working tree, run them interleaved, and find that
//! exactly `crc32c` regressed (an unambiguous ~3x slowdown, far beyond this machine's noise).

use std::path::{Path, PathBuf};
use std::process::Command;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "target" {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(["-c", "user.name=funcscope-test", "-c", "user.email=test@funcscope.invalid"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

/// A small workspace with the probe and the scenarios, built fast (no LTO).
fn make_repo() -> (tempfile::TempDir, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_tree(&root.join("probe"), &repo.join("probe"));
    copy_tree(&root.join("scenarios"), &repo.join("scenarios"));
    std::fs::copy(root.join("Cargo.lock"), repo.join("Cargo.lock")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    // Keep the workspace tables the members inherit from; replace members and profiles.
    let package_and_lints = manifest
        .split("\n[")
        .filter(|t| t.starts_with("workspace.package]") || t.starts_with("workspace.lints"))
        .map(|t| format!("[{t}\n"))
        .collect::<String>();
    std::fs::write(
        repo.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [\"probe\", \"scenarios\"]\n\n{package_and_lints}\n\
             [profile.release]\nopt-level = 2\nlto = false\ncodegen-units = 16\ndebug = false\n"
        ),
    )
    .unwrap();
    std::fs::write(repo.join(".gitignore"), "/target\n").unwrap();
    std::fs::write(
        repo.join("funcscope.toml"),
        r#"[gate]
min_effect = 0.5
min_effect_paired = 0.5
metrics = ["p50"]
report_metrics = []

[run]
# 8 rounds: the smallest sample whose rank tests can reach alpha over 3 checkpoints.
runs = 8
warmup_runs = 0
budget_s = 0
timeout_s = 30
attach_timeout_s = 5

[[scenario]]
name = "codec"
bin = "codec"
args = ["--duration-ms", "40"]
"#,
    )
    .unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "A"]);
    (tmp, repo)
}

/// Makes the working tree slower than HEAD: the receiver checks every frame's CRC three times.
fn slow_down_crc_uncommitted(repo: &Path) {
    let bin = repo.join("scenarios/src/bin/codec.rs");
    let src = std::fs::read_to_string(&bin).unwrap();
    let needle = "let payload = codec::check_frame(&self.frame);";
    assert!(src.contains(needle), "the codec scenario changed; update this test");
    let slow = "std::hint::black_box(codec::crc32c(std::hint::black_box(&self.frame)));\n        \
                std::hint::black_box(codec::crc32c(std::hint::black_box(&self.frame)));\n        "
        .to_string()
        + needle;
    std::fs::write(&bin, src.replace(needle, &slow)).unwrap();
}

fn regressed(report: &serde_json::Value) -> Vec<String> {
    report["scenarios"][0]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "regressed")
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn compare_finds_the_planted_slowdown_between_two_revisions() {
    let (_tmp, repo) = make_repo();
    slow_down_crc_uncommitted(&repo);

    let json = repo.join("compare.json");
    let out = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["compare", "HEAD", "--json"])
        .arg(&json)
        .current_dir(&repo)
        .env_remove("FUNCSCOPE_PLANT")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "compare should find a regression:\n{text}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["command"], "compare");
    assert_eq!(report["scenarios"][0]["mode"], "paired", "{text}");
    assert_eq!(regressed(&report), ["crc32c"], "{text}");
    assert!(text.contains("working tree"), "the report names the sides:\n{text}");
    // A's worktree was created under the target directory and is reused next time.
    let worktrees = repo.join("target/funcscope/worktrees");
    assert_eq!(std::fs::read_dir(&worktrees).unwrap().count(), 1);
}

#[test]
fn compare_of_an_unknown_revision_is_a_usage_error() {
    let (_tmp, repo) = make_repo();
    let out = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["compare", "no-such-branch", "--no-build"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-branch") && stderr.contains("not a commit"), "{stderr}");
}

#[test]
fn regress_against_a_baseline_from_another_machine_reruns_its_commit_paired() {
    let (_tmp, repo) = make_repo();
    let funcscope = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_funcscope"))
            .args(args)
            .current_dir(&repo)
            .env_remove("FUNCSCOPE_PLANT")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap()
    };
    let out = funcscope(&["baseline", "--no-reference"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Pretend the baseline was recorded elsewhere.
    let path = repo.join("baselines/codec.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let other: String =
        text.lines()
            .map(|l| {
                if l.starts_with("cpu_model = ") {
                    "cpu_model = \"Another CPU 9000\"".to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
    std::fs::write(&path, other + "\n").unwrap();
    slow_down_crc_uncommitted(&repo);

    let json = repo.join("regress.json");
    let out = funcscope(&["regress", "--json", json.to_str().unwrap()]);
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "a same-machine paired re-run gates:\n{text}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["scenarios"][0]["mode"], "paired", "{text}");
    assert!(report["scenarios"][0]["against"].as_str().unwrap().contains("baseline commit"), "{text}");
    assert_eq!(regressed(&report), ["crc32c"], "{text}");
}
