//! End to end: the adopter example (`examples/adopter`), as another workspace would use funcscope.
//! A copy of it (path dependencies pointed back at this checkout, so nothing is written into the
//! source tree) is built by the harness through its `funcscope.toml` (`run.package`), measured with
//! `run`, recorded with `baseline` and gated with `regress`, which writes the HTML report and the
//! history. The example's xtask is left unbuilt (it is this harness, built here already); the
//! workspace still resolves with it as a member.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "target" || name == "baselines" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// The first regular file called `name` under `dir`.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let t = e.file_type().ok()?;
        if t.is_file() && e.file_name() == name {
            return Some(e.path());
        }
        if t.is_dir() {
            if let Some(p) = find(&e.path(), name) {
                return Some(p);
            }
        }
    }
    None
}

fn funcscope(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(args)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("FUNCSCOPE_PLANT")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn the_adopter_example_builds_runs_records_a_baseline_and_gates() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("adopter");
    copy_dir(&checkout().join("examples/adopter"), &ws);
    let root = checkout();
    for manifest in ["app/Cargo.toml", "xtask/Cargo.toml"] {
        let p = ws.join(manifest);
        let t = std::fs::read_to_string(&p).unwrap().replace("../../../", &format!("{}/", root.display()));
        std::fs::write(&p, t).unwrap();
    }

    // The harness builds the program through funcscope.toml and records a baseline.
    let out = funcscope(&ws, &["baseline", "--runs", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(ws.join("baselines/orders.toml").is_file(), "{}", text(&out));
    // Built through run.package, somewhere under the workspace's target directory.
    let bin = find(&ws.join("target"), "orders").unwrap_or_else(|| panic!("no orders binary: {}", text(&out)));

    // Any instrumented program, no baseline needed: both checkpoints seen.
    let out = funcscope(&ws, &["run", "--runs", "2", "--", bin.to_str().unwrap(), "--duration-ms", "50"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("parse_order") && stdout.contains("match_order"), "{}", text(&out));

    // The gate against the fresh baseline. Same code, but a verdict on a busy machine is a
    // measurement, not something a test may assert: a pass or a regression (0 or 1), never a
    // usage, build or run failure (2, 3).
    let (html, history) = (ws.join("report.html"), ws.join("history.jsonl"));
    let out = funcscope(
        &ws,
        &[
            "regress",
            "--runs",
            "3",
            "--against-baseline",
            "--html",
            html.to_str().unwrap(),
            "--history",
            history.to_str().unwrap(),
        ],
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("orders: compared (vs baseline)"), "{}", text(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains(r#"data-checkpoint="parse_order""#) && page.contains("<svg"), "{page}");
    assert_eq!(std::fs::read_to_string(&history).unwrap().lines().count(), 1);
}
