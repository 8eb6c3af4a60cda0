//! A throwaway git repository holding a copy of the probe and the scenarios, for end-to-end tests
//! of commands that build revisions (`compare`, `regress --base`). Included with
//! `#[path = "common/repo.rs"] mod repo;` (not through `common/mod.rs`, whose helpers these tests
//! do not use).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn copy_tree(from: &Path, to: &Path) {
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

pub fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(["-c", "user.name=funcscope-test", "-c", "user.email=test@funcscope.invalid"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

/// A small workspace with the probe and the scenarios, built fast (no LTO).
pub fn make_repo() -> (tempfile::TempDir, PathBuf) {
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
pub fn slow_down_crc_uncommitted(repo: &Path) {
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

/// The checkpoints of the first scenario whose verdict is `regressed`.
pub fn regressed(report: &serde_json::Value) -> Vec<String> {
    report["scenarios"][0]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "regressed")
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}
