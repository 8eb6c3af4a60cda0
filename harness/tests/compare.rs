//! End to end: `compare` of two real revisions. A temporary git repository holds a copy of the
//! probe and the scenarios; its committed revision is A, and an uncommitted edit that makes the
//! codec scenario compute its frame checksum three times is B (the working tree). `compare HEAD`
//! must build A in a worktree and B from the working tree, run them interleaved, and find that
//! exactly `crc32c` regressed (an unambiguous ~3x slowdown, far beyond this machine's noise).

use std::process::Command;

#[path = "common/repo.rs"]
mod repo;
use repo::{make_repo, regressed, slow_down_crc_uncommitted};

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
