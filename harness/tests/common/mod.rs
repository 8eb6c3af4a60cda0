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
