//! The architecture invariants of ARCHITECTURE.md, checked on the source tree (like
//! rust-analyzer's tidy tests): each test reads files and fails naming the file that breaks the
//! rule. They check imports and spellings, not behaviour: behaviour has its own tests.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the harness is one level below the workspace").to_path_buf()
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("a directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.retain(|p| !is_test_module(p));
    out.sort();
    out
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The file without its `#[cfg(test)]` module (by convention the last item of a file) and
/// without comment lines: the code that ships.
fn shipped_code(text: &str) -> String {
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end].lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Whether `f` is a test-only module file: its parent `mod.rs` declares it under `#[cfg(test)]`.
fn is_test_module(f: &Path) -> bool {
    let (Some(dir), Some(stem)) = (f.parent(), f.file_stem().and_then(|s| s.to_str())) else { return false };
    let Ok(parent) = fs::read_to_string(dir.join("mod.rs")) else { return false };
    let lines: Vec<&str> = parent.lines().map(str::trim).collect();
    lines.windows(2).any(|w| w[0] == "#[cfg(test)]" && w[1] == format!("mod {stem};"))
}

fn rel(p: &Path) -> String {
    p.strip_prefix(workspace()).unwrap_or(p).display().to_string()
}

#[test]
fn unsafe_lives_only_in_the_probe_and_every_other_root_forbids_it() {
    let ws = workspace();
    let roots = ["harness/src/lib.rs", "harness/src/bin/funcscope.rs", "scenarios/src/lib.rs", "xtask/src/main.rs"];
    let mut roots: Vec<PathBuf> = roots.iter().map(|r| ws.join(r)).collect();
    roots.extend(rust_files(&ws.join("scenarios/src/bin")));
    for r in &roots {
        assert!(read(r).contains("#![forbid(unsafe_code)]"), "{} must be #![forbid(unsafe_code)]", rel(r));
    }
    for dir in ["harness/src", "scenarios/src", "xtask/src"] {
        for f in rust_files(&ws.join(dir)) {
            let code = shipped_code(&read(&f));
            assert!(
                !code.contains("unsafe {") && !code.contains("unsafe fn") && !code.contains("unsafe impl"),
                "{}: unsafe code outside the probe",
                rel(&f)
            );
        }
    }
}

#[test]
fn statistics_do_no_io_and_know_nothing_of_the_rest() {
    for f in rust_files(&workspace().join("harness/src/stats")) {
        let code = shipped_code(&read(&f));
        for banned in ["std::fs", "std::io", "std::process", "std::net", "println!", "eprintln!"] {
            assert!(!code.contains(banned), "{}: statistics do no I/O, found {banned}", rel(&f));
        }
        for line in code.lines().filter(|l| l.contains("crate::")) {
            assert!(line.contains("crate::stats"), "{}: stats imports from outside stats: {line}", rel(&f));
        }
    }
}

#[test]
fn reporters_read_the_model_only() {
    for f in rust_files(&workspace().join("harness/src/report")) {
        let code = shipped_code(&read(&f));
        for banned in
            ["crate::judge", "crate::runner", "crate::rounds", "crate::commands", "crate::baseline", "crate::drift"]
        {
            assert!(!code.contains(banned), "{}: a reporter reaches into {banned}", rel(&f));
        }
    }
}

#[test]
fn the_baseline_file_format_sits_below_policy() {
    let dir = workspace().join("harness/src/baseline");
    let files = if dir.is_dir() { rust_files(&dir) } else { vec![workspace().join("harness/src/baseline.rs")] };
    for f in files {
        let code = shipped_code(&read(&f));
        for banned in ["crate::judge", "crate::drift", "crate::commands", "crate::rounds", "crate::runner"] {
            assert!(!code.contains(banned), "{}: the baseline format depends on {banned}", rel(&f));
        }
    }
}

/// The harness's layers, bottom first (ARCHITECTURE.md, "Layers"): a module may use modules of
/// lower layers only. `exit_code` (in lib.rs) is a set of constants anyone may name.
const LAYERS: &[&[&str]] = &[
    &["stats", "fingerprint", "fsutil", "cleanup"],
    &["model", "config"],
    &["baseline", "report", "snoop", "history"],
    &["drift", "callgrind", "events"],
    &["runner"],
    &["reference", "judge", "error", "distribution"],
    &["rounds", "workspace"],
    &["commands"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = workspace().join("harness/src");
    for f in rust_files(&src) {
        let r = f.strip_prefix(&src).expect("under src").to_string_lossy().into_owned();
        let module = r.split('/').next().expect("a path").trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "bin" {
            continue;
        }
        let own =
            layer_of(&module).unwrap_or_else(|| panic!("harness/src/{r}: module {module} has no layer in LAYERS"));
        let code = shipped_code(&read(&f));
        let mut rest = code.as_str();
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let used: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if used == module || used == "exit_code" {
                continue;
            }
            let theirs = layer_of(&used).unwrap_or_else(|| panic!("harness/src/{r}: crate::{used} has no layer"));
            assert!(theirs < own, "harness/src/{r}: {module} (layer {own}) uses {used} (layer {theirs}), not below it");
        }
    }
}

#[test]
fn only_the_commands_and_the_cli_orchestrate() {
    // Lower layers never call up into the commands or the CLI.
    for f in rust_files(&workspace().join("harness/src")) {
        let r = rel(&f);
        if r.contains("/commands/") || r.ends_with("cli.rs") || r.ends_with("lib.rs") || r.contains("/bin/") {
            continue;
        }
        let code = shipped_code(&read(&f));
        assert!(
            !code.contains("crate::commands") && !code.contains("crate::cli"),
            "{r}: a lower layer calls into the commands"
        );
    }
}

#[test]
fn the_environment_contract_is_spelled_once() {
    // FUNCSCOPE_* variables shared by harness, probe and scenarios are named in funcscope::env.
    let ws = workspace();
    for dir in ["harness/src", "scenarios/src", "probe/src"] {
        for f in rust_files(&ws.join(dir)) {
            if f.ends_with("probe/src/env.rs") {
                continue;
            }
            let code = shipped_code(&read(&f));
            for var in ["\"FUNCSCOPE_SOCKET_DIR\"", "\"FUNCSCOPE_WAIT_ATTACH_MS\"", "\"FUNCSCOPE_PLANT\""] {
                assert!(!code.contains(var), "{}: spells {var}; use funcscope::env", rel(&f));
            }
        }
    }
}

#[test]
fn xtask_is_a_dispatcher() {
    let main = shipped_code(&read(&workspace().join("xtask/src/main.rs")));
    assert!(main.contains("funcscope_harness::cli::main()"), "xtask dispatches to the harness CLI");
    let code_lines = main.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("#!")).count();
    assert!(code_lines <= 3, "xtask/src/main.rs holds logic ({code_lines} lines of code)");
}
