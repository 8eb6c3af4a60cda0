//! End to end, instruction counts across revisions (real git, real builds, real valgrind): a
//! temporary repository holds a copy of the probe and the scenarios; its commit is A, and an
//! uncommitted edit that makes the codec scenario compute its frame checksum three times is B.
//!
//! * `regress --measure instructions` against an instruction baseline whose fingerprint names
//!   another toolchain falls back to a paired re-run of the baseline's commit, and says so;
//! * `compare HEAD --measure instructions` measures both revisions under callgrind, paired.
//!
//! Skips, printing why, when valgrind is not installed (`.ci/run` installs it).

use std::process::Command;

#[path = "common/repo.rs"]
mod repo;
use repo::{make_repo, slow_down_crc_uncommitted};

#[test]
fn another_toolchain_falls_back_to_a_paired_rerun_and_compare_counts_both_revisions() {
    if let Err(e) = funcscope_harness::callgrind::check_valgrind() {
        eprintln!("SKIPPED: {e}");
        return;
    }
    let (_tmp, repo) = make_repo();
    // Few iterations and runs: the checksum triples, so any count shows it.
    let cfg = repo.join("funcscope.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}\n[instructions]\niterations = 40\nruns = 2\nmax_runs = 4\n")).unwrap();
    repo::git(&repo, &["commit", "-q", "-am", "instructions"]);
    let funcscope = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_funcscope"))
            .args(args)
            .args(["--measure", "instructions", "-q"])
            .current_dir(&repo)
            .env_remove("FUNCSCOPE_PLANT")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap();
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code(), text)
    };
    let (code, text) = funcscope(&["baseline"]);
    assert_eq!(code, Some(0), "{text}");
    let stored = repo.join("baselines/instructions/codec.toml");
    let toml = std::fs::read_to_string(&stored).unwrap();
    assert!(toml.contains("rustc = \"rustc "), "{toml}");
    // The baseline travels to a machine with another toolchain: counts are not comparable.
    std::fs::write(&stored, toml.replace("rustc = \"rustc ", "rustc = \"rustc 0.0.1-other ")).unwrap();
    slow_down_crc_uncommitted(&repo);

    let (code, text) = funcscope(&["regress"]);
    assert_eq!(code, Some(1), "the paired re-run gates:\n{text}");
    assert!(
        text.contains("codec: baseline fingerprint differs (rustc: \"rustc 0.0.1-other")
            && text.contains("re-measured its commit")
            && text.contains("here (paired)"),
        "the fallback is said, naming what differs:\n{text}"
    );
    let line = text.lines().find(|l| l.contains("codec/crc32c")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("regressed"), "{line}");

    let (code, text) = funcscope(&["compare", "HEAD"]);
    assert_eq!(code, Some(1), "compare finds the tripled checksum:\n{text}");
    assert!(text.contains("both measured here, paired"), "{text}");
    let line = text.lines().find(|l| l.contains("codec/crc32c")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("regressed"), "{line}");
    // Checkpoints that do not run the checksum are not flagged.
    for l in text.lines().filter(|l| l.trim_start().starts_with("codec/") && !l.contains("crc32c")) {
        assert!(!l.contains("improved"), "{l}\n{text}");
    }
}
