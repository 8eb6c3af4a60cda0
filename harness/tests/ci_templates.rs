//! The CI templates under `ci/` are checked like code: each parses as YAML, has the settings a
//! gate needs (full history, the PR's base, caches, a time limit, reports-only artifacts...), and
//! every `cargo xtask ...` command line in it parses with the harness's own CLI, so a renamed flag
//! or subcommand fails here rather than in an adopter's first pipeline. Nothing is run.

use std::path::{Path, PathBuf};

use clap::Parser;
use funcscope_harness::cli::Cli;
use serde_norway::Value;

fn ci_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("ci")
}

fn load(name: &str) -> Value {
    let path = ci_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: not valid YAML: {e}", path.display()))
}

/// Every string in `v` under a key named `key` (`run`, `script`), lists flattened.
fn strings_under(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, val) in m {
                if k.as_str() == Some(key) {
                    match val {
                        Value::String(s) => out.push(s.clone()),
                        Value::Sequence(items) => {
                            out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
                        }
                        _ => {}
                    }
                }
                strings_under(val, key, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| strings_under(i, key, out)),
        _ => {}
    }
}

/// The `cargo xtask` command lines in shell text: continuation lines joined, each line from
/// `cargo xtask` on, split into words (quotes removed; variables and `${{ }}` expressions become a
/// placeholder word).
fn xtask_calls(shell: &str) -> Vec<Vec<String>> {
    let joined = shell.replace("\\\n", " ");
    let mut calls = Vec::new();
    for line in joined.lines() {
        let Some(at) = line.find("cargo xtask") else { continue };
        let rest = &line[at + "cargo xtask".len()..];
        let rest = rest.split(['|', ';', '&', '>']).next().unwrap_or("");
        let words: Vec<String> = rest
            .split_whitespace()
            .map(|w| {
                let w = w.trim_matches(|c| c == '"' || c == '\'');
                if w.contains('$') {
                    "PLACEHOLDER".to_owned()
                } else {
                    w.to_owned()
                }
            })
            .collect();
        calls.push(words);
    }
    calls
}

/// Every `cargo xtask` call of a template parses with the harness's CLI; returns them.
fn calls_parse(doc: &Value, key: &str, template: &str) -> Vec<Vec<String>> {
    let mut shells = Vec::new();
    strings_under(doc, key, &mut shells);
    let calls: Vec<Vec<String>> = shells.iter().flat_map(|s| xtask_calls(s)).collect();
    assert!(!calls.is_empty(), "{template}: no cargo xtask call found");
    for words in &calls {
        let argv = std::iter::once("cargo xtask".to_owned()).chain(words.iter().cloned());
        if let Err(e) = Cli::try_parse_from(argv) {
            panic!("{template}: `cargo xtask {}` does not parse:\n{e}", words.join(" "));
        }
    }
    calls
}

fn has_call(calls: &[Vec<String>], words: &[&str]) -> bool {
    calls.iter().any(|c| words.iter().all(|w| c.iter().any(|x| x == w)))
}

/// The steps of a GitHub job.
fn steps<'a>(doc: &'a Value, job: &str) -> &'a Vec<Value> {
    doc["jobs"][job]["steps"].as_sequence().unwrap_or_else(|| panic!("job {job} has no steps"))
}

fn step_using<'a>(steps: &'a [Value], action: &str) -> Vec<&'a Value> {
    steps.iter().filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action))).collect()
}

#[test]
fn github_gate_compares_paired_against_the_pr_base_with_caches_limits_and_reports_only() {
    let t = "ci/github-regress.yml";
    let doc = load("github-regress.yml");
    assert!(doc["on"].get("pull_request").is_some(), "{t}: runs on pull requests");
    assert!(doc["concurrency"]["cancel-in-progress"].as_bool() == Some(true), "{t}: concurrency");
    assert_eq!(doc["permissions"]["contents"].as_str(), Some("read"), "{t}: least privilege");
    let job = &doc["jobs"]["regress"];
    assert!(job["timeout-minutes"].as_u64().is_some_and(|m| m > 0 && m <= 120), "{t}: a time limit");
    assert!(job["env"]["BASE_SHA"].as_str().unwrap_or("").contains("github.event.pull_request.base.sha"), "{t}");
    let steps = steps(&doc, "regress");
    let checkout = step_using(steps, "actions/checkout");
    assert_eq!(checkout[0]["with"]["fetch-depth"].as_u64(), Some(0), "{t}: full history, for the base");
    let cached: String = step_using(steps, "actions/cache").iter().filter_map(|s| s["with"]["path"].as_str()).collect();
    for path in ["target/funcscope/bin", "~/.cargo/registry"] {
        assert!(cached.contains(path), "{t}: {path} is not cached");
    }
    let calls = calls_parse(&doc, "run", t);
    assert!(has_call(&calls, &["regress", "--base", "--junit", "--github-annotations"]), "{t}: {calls:?}");
    let mut runs = Vec::new();
    strings_under(&doc, "run", &mut runs);
    assert!(runs.iter().any(|r| r.contains("GITHUB_STEP_SUMMARY")), "{t}: a job summary");
    assert!(
        runs.iter().any(|r| r.contains("<!-- funcscope-regress -->") && r.contains("PATCH")),
        "{t}: sticky comment"
    );
    // Artifacts: named report files only, never a directory such as the worktrees or target/.
    let upload = step_using(steps, "actions/upload-artifact");
    let paths = upload[0]["with"]["path"].as_str().unwrap();
    for p in paths.lines().map(str::trim).filter(|p| !p.is_empty()) {
        assert!([".json", ".md", ".xml", ".svg", ".html"].iter().any(|ext| p.ends_with(ext)), "{t}: uploads {p}");
    }
    assert!(upload[0]["if"].as_str() == Some("always()"), "{t}: reports are kept when the gate fails");
}

#[test]
fn github_baseline_workflow_records_on_push_or_by_hand_and_opens_a_pr() {
    let t = "ci/github-baselines.yml";
    let doc = load("github-baselines.yml");
    assert!(doc["on"].get("push").is_some() && doc["on"].get("workflow_dispatch").is_some(), "{t}");
    let job = &doc["jobs"]["record"];
    assert!(job["timeout-minutes"].as_u64().is_some(), "{t}: a time limit");
    let calls = calls_parse(&doc, "run", t);
    assert!(has_call(&calls, &["baseline"]), "{t}: {calls:?}");
    assert!(!step_using(steps(&doc, "record"), "peter-evans/create-pull-request").is_empty(), "{t}: opens a PR");
}

#[test]
fn gitlab_snippet_compares_against_the_merge_request_base_and_reports_junit() {
    let t = "ci/gitlab-regress.yml";
    let doc = load("gitlab-regress.yml");
    let job = &doc["funcscope-regress"];
    assert_eq!(job["variables"]["GIT_DEPTH"].as_str(), Some("0"), "{t}: full history");
    assert!(job["timeout"].as_str().is_some(), "{t}: a time limit");
    let calls = calls_parse(&doc, "script", t);
    assert!(has_call(&calls, &["regress", "--base", "--junit"]), "{t}: {calls:?}");
    let script = job["script"][0].as_str().unwrap();
    assert!(script.contains("CI_MERGE_REQUEST_DIFF_BASE_SHA"), "{t}: {script}");
    assert_eq!(job["artifacts"]["reports"]["junit"].as_str(), Some("target/funcscope/junit.xml"), "{t}");
}

#[test]
fn a_misspelled_flag_in_a_template_would_be_caught() {
    // The check itself: a call the CLI does not know fails to parse.
    let calls = xtask_calls("cargo xtask regress --bsae \"$BASE_SHA\" \\\n  --junit x.xml");
    assert_eq!(calls, [vec!["regress", "--bsae", "PLACEHOLDER", "--junit", "x.xml"]]);
    let argv = std::iter::once("cargo xtask".to_owned()).chain(calls[0].iter().cloned());
    assert!(Cli::try_parse_from(argv).is_err());
}
