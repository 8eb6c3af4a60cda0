//! Builds and revisions: cargo target directories, release builds of the scenario binaries, and
//! git worktrees of other revisions for paired comparisons.
//!
//! Worktrees live under `<target>/funcscope/worktrees/<sha>` and each arm of a comparison builds
//! into its own target directory under `<target>/funcscope/targets/` that is kept between calls,
//! so comparing again after a small change rebuilds incrementally.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::Config;
use crate::error::{Error, Result};

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The cargo target directory of the workspace at `root`.
pub fn target_dir(root: &Path) -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(root.join(d));
    }
    let out = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .map_err(|e| Error::io("running cargo metadata", e))?;
    if !out.status.success() {
        return Err(Error::Build(format!(
            "cargo metadata failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| Error::Build(format!("cargo metadata output: {e}")))?;
    v["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| Error::Build("cargo metadata: no target_directory".into()))
}

/// Where reports go by default: `<target>/funcscope`, or `<config dir>/target/funcscope` when the
/// configuration uses only prebuilt programs (no cargo workspace needed).
pub fn output_dir(cfg: &Config) -> PathBuf {
    let cargo_based = cfg.scenarios.iter().any(|s| s.bin.is_some());
    let target = if cargo_based { target_dir(&cfg.root).ok() } else { None };
    target.unwrap_or_else(|| cfg.root.join("target")).join("funcscope")
}

/// Builds the scenario binaries of `cfg` from the source tree at `src_root` into `target` (release)
/// and returns each scenario's program (`None` if its binary does not exist in that tree, e.g. a
/// scenario added later). `target = None` uses the tree's own target directory.
pub fn build_scenarios(
    cfg: &Config,
    src_root: &Path,
    target: Option<&Path>,
    no_build: bool,
    quiet: bool,
    what: &str,
) -> Result<Vec<Option<PathBuf>>> {
    let bins: Vec<&str> = cfg.scenarios.iter().filter_map(|s| s.bin.as_deref()).collect();
    let target = match target {
        Some(t) => t.to_path_buf(),
        None if bins.is_empty() => src_root.join("target"),
        None => target_dir(src_root)?,
    };
    if !bins.is_empty() && !no_build {
        if !quiet {
            eprintln!("building {what}: {} ({} binaries, release)...", cfg.run.package, bins.len());
        }
        // Build the whole package: a binary missing in an older revision must not fail the build.
        let mut cmd = Command::new(cargo());
        cmd.args(["build", "--release", "--quiet", "-p", &cfg.run.package, "--bins"])
            .current_dir(src_root)
            .env("CARGO_TARGET_DIR", &target);
        let st = cmd.status().map_err(|e| Error::io("running cargo build", e))?;
        if !st.success() {
            return Err(Error::Build(format!(
                "cargo build of {} ({what}) failed ({st}); fix the build and retry",
                cfg.run.package
            )));
        }
    }
    let mut programs = Vec::new();
    for s in &cfg.scenarios {
        let p = match (&s.bin, &s.path) {
            (Some(b), _) => target.join("release").join(b),
            (None, Some(p)) => src_root.join(p),
            (None, None) => unreachable!("validated by Config::parse"),
        };
        programs.push(p.is_file().then_some(p));
    }
    Ok(programs)
}

/// Runs git in `root`; stdout trimmed on success.
pub fn git(root: &Path, args: &[&str]) -> Result<String> {
    let o = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .map_err(|e| Error::io(format!("running git {}", args.join(" ")), e))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    } else {
        Err(Error::Git(format!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim())))
    }
}

/// The full commit id of `rev`, with a clear error if it does not name a commit.
pub fn resolve_rev(root: &Path, rev: &str) -> Result<String> {
    git(root, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])
        .map_err(|_| Error::UnknownRevision { rev: rev.to_owned(), repo: root.to_path_buf() })
}

/// The current commit, with `-dirty` when tracked files have uncommitted changes.
pub fn describe_head(root: &Path) -> String {
    let commit = git(root, &["rev-parse", "HEAD"]).unwrap_or_else(|_| "unknown".into());
    let dirty = git(root, &["status", "--porcelain", "--untracked-files=no"]).is_ok_and(|s| !s.is_empty());
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}

/// A checkout of `sha` under `<out>/worktrees/<sha>`, created with `git worktree add --detach` or
/// reused if already there at that commit. Returns its path.
pub fn worktree(repo: &Path, out: &Path, sha: &str) -> Result<PathBuf> {
    let dir = out.join("worktrees").join(sha);
    if dir.join(".git").exists() {
        if git(&dir, &["rev-parse", "HEAD"]).is_ok_and(|h| h == sha) {
            return Ok(dir);
        }
        let _ = git(repo, &["worktree", "remove", "--force", &dir.to_string_lossy()]);
    }
    let _ = git(repo, &["worktree", "prune"]);
    std::fs::create_dir_all(out.join("worktrees")).map_err(|e| Error::at("creating", out, e))?;
    git(repo, &["worktree", "add", "--detach", "--force", &dir.to_string_lossy(), sha])?;
    Ok(dir)
}

/// Repository root of `path`.
pub fn repo_root(path: &Path) -> Result<PathBuf> {
    git(path, &["rev-parse", "--show-toplevel"]).map(PathBuf::from)
}

/// One built revision of the scenarios: what to call it and each scenario's program.
#[derive(Clone, Debug)]
pub struct Revision {
    /// The revision's full commit id (`None`: the working tree, uncommitted changes included).
    pub sha: Option<String>,
    /// Per scenario (configuration order): its program (`None`: the scenario's binary does not
    /// exist in that revision, e.g. a scenario added later).
    pub programs: Vec<Option<PathBuf>>,
}

impl Revision {
    /// Every scenario's program, or an error naming the first scenario that has none: the working
    /// tree must build every scenario its own configuration names.
    pub fn require_all(&self, cfg: &Config) -> Result<Vec<Option<PathBuf>>> {
        for (s, p) in cfg.scenarios.iter().zip(&self.programs) {
            if p.is_none() {
                return Err(Error::Build(format!(
                    "scenario {}: its program was not built (check `bin`/`path` in {})",
                    s.name,
                    cfg.path.display()
                )));
            }
        }
        Ok(self.programs.clone())
    }
}

/// How to build a revision.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildFlags {
    /// Use the binaries already in the target directory.
    pub no_build: bool,
    /// No progress lines.
    pub quiet: bool,
}

/// Builds the scenarios of `rev` (`None`: the working tree, into its own target directory; a
/// revision: a git worktree of it under `<target>/funcscope/worktrees/<sha>`, built into
/// `<target>/funcscope/targets/<target_key>`, kept between calls so rebuilding is incremental).
/// `what` names the revision in progress lines. The one way every command builds code.
pub fn build_revision(
    cfg: &Config,
    rev: Option<&str>,
    target_key: &str,
    what: &str,
    flags: BuildFlags,
) -> Result<Revision> {
    let Some(rev) = rev else {
        let programs = build_scenarios(cfg, &cfg.root, None, flags.no_build, flags.quiet, what)?;
        return Ok(Revision { sha: None, programs });
    };
    let repo = repo_root(&cfg.root)?;
    let sha = resolve_rev(&repo, rev)?;
    let out_dir = output_dir(cfg);
    let tree = worktree(&repo, &out_dir, &sha)?;
    // The configuration may live in a subdirectory of the repository: build the same one there.
    let sub_root = cfg.root.strip_prefix(&repo).unwrap_or(Path::new(""));
    let programs = build_scenarios(
        cfg,
        &tree.join(sub_root),
        Some(&out_dir.join("targets").join(target_key)),
        flags.no_build,
        flags.quiet,
        what,
    )?;
    Ok(Revision { sha: Some(sha), programs })
}

/// The first 12 hex digits of a commit id, keeping a `-dirty` suffix: how reports name commits.
pub fn short_sha(sha: &str) -> String {
    let (id, dirty) = match sha.strip_suffix("-dirty") {
        Some(s) => (s, "-dirty"),
        None => (sha, ""),
    };
    format!("{}{dirty}", &id[..12.min(id.len())])
}
