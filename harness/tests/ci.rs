//! End to end: the CI path. A temporary git repository (see `common/repo.rs`) stands for a pull
//! request whose base is HEAD; `regress --base HEAD` must build HEAD, run it paired with the
//! working tree, and, with `FUNCSCOPE_PLANT` set in its own environment, plant into the working
//! tree's arm only (before, both arms inherited the plant and the gate passed).

use std::path::Path;
use std::process::{Command, Output};

#[path = "common/repo.rs"]
mod repo;

fn funcscope(repo: &Path, args: &[&str], plant: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_funcscope"));
    cmd.args(args).current_dir(repo).env_remove("FUNCSCOPE_PLANT").env_remove("CARGO_TARGET_DIR");
    if let Some(p) = plant {
        cmd.env("FUNCSCOPE_PLANT", p);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn regress_against_the_pr_base_plants_into_the_working_tree_only() {
    let (_tmp, repo) = repo::make_repo();
    let head = {
        let o = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(&repo).output().unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    };
    // No baselines at all: --base needs none.
    let (json, junit) = (repo.join("regress.json"), repo.join("junit.xml"));
    let (html, history) = (repo.join("report.html"), repo.join("history.jsonl"));
    let out = funcscope(
        &repo,
        &[
            "regress",
            "--base",
            "HEAD",
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
            "--history",
            history.to_str().unwrap(),
        ],
        Some("crc32c=200"),
    );
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "the plant in the current arm is a regression:\n{log}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let s = &report["scenarios"][0];
    assert_eq!(s["mode"], "paired", "{log}");
    let against = s["against"].as_str().unwrap();
    assert!(against.contains("base HEAD") && against.contains(&head[..12]), "the report names the base: {against}");
    assert!(against.contains("current arm only"), "the report says where the plant went: {against}");
    assert_eq!(repo::regressed(&report), ["crc32c"], "{log}");
    // The JUnit report fails the same checkpoint (its contents are tested in report::tests).
    let xml = std::fs::read_to_string(&junit).unwrap();
    let failing = xml.split("<testcase").filter(|t| t.contains("<failure")).collect::<Vec<_>>();
    assert_eq!(failing.len(), 1, "{xml}");
    assert!(failing[0].contains(r#"name="crc32c p50""#), "{xml}");
    // The plots' data: both arms' per-call ECDFs and the run values, in the JSON and in the
    // HTML page (whose structure is tested in report::tests).
    let d = &s["checkpoints"].as_array().unwrap().iter().find(|c| c["name"] == "crc32c").unwrap()["distributions"];
    assert!(d["baseline"]["points"].as_array().is_some_and(|p| p.len() > 10), "{d}");
    assert!(d["current"]["p50"].as_f64().unwrap() > d["baseline"]["p50"].as_f64().unwrap(), "planted: {d}");
    assert_eq!(d["runs"][0]["current"].as_array().unwrap().len(), s["runs"].as_u64().unwrap() as usize, "{d}");
    let page = std::fs::read_to_string(&html).unwrap();
    // FUNCSCOPE_HTML_OUT=DIR keeps this real page for a look (see report::tests for chromium).
    if let Some(dir) = std::env::var_os("FUNCSCOPE_HTML_OUT") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&html, Path::new(&dir).join("regress-paired.html")).unwrap();
    }
    assert!(page.contains(r#"data-checkpoint="crc32c""#) && page.contains("<svg"), "{page}");
    // One history line, keyed by the working tree's commit; the trend command reads it back.
    let lines = std::fs::read_to_string(&history).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains(&head), "keyed by the commit measured: {lines}");
    let svg = repo.join("trend.svg");
    let out = funcscope(
        &repo,
        &["history", "codec/crc32c", "--file", history.to_str().unwrap(), "--svg", svg.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("codec/crc32c p50 over 1 runs"), "{}", text(&out));
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"), "{}", text(&out));
    // Not a terminal: progress as plain counted lines, no escape sequences (no --color given).
    assert!(log.contains("] codec round 1 (") && log.contains("[1/"), "{log}");
    assert!(!log.contains('\x1b'), "{log}");

    // The saved report judged offline against itself: nothing runs, nothing changed.
    let diffed = repo.join("diff.json");
    let out = funcscope(
        &repo,
        &[
            "diff",
            json.to_str().unwrap(),
            json.to_str().unwrap(),
            "--json",
            diffed.to_str().unwrap(),
            "--color",
            "always",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\x1b["), "--color always colours a pipe too");
    let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&diffed).unwrap()).unwrap();
    assert_eq!(d["command"], "diff");
    assert!(d["scenarios"][0]["against"].as_str().unwrap().contains("regress.json"), "{d}");
    let out = funcscope(&repo, &["diff", json.to_str().unwrap(), json.to_str().unwrap(), "--color", "never"], None);
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\x1b'), "{}", text(&out));

    // The base's binaries are cached by commit for the next run.
    assert!(repo.join("target/funcscope/bin").join(&head).join("release/manifest").is_file(), "{log}");
}

#[test]
fn regress_against_an_unknown_base_is_a_usage_error_before_building() {
    let (_tmp, repo) = repo::make_repo();
    let out = funcscope(&repo, &["regress", "--base", "no-such-base"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-base"), "{stderr}");
    // Failed before building the working tree.
    assert!(!repo.join("target").exists(), "{stderr}");
}
