//! Builds and revisions: cargo target directories, release builds of the scenario binaries, and
//! git worktrees of other revisions for paired comparisons.
//!
//! Worktrees live under `<target>/funcscope/worktrees/<sha>` and each arm of a comparison builds
//! into its own target directory under `<target>/funcscope/targets/` that is kept between calls,
//! so comparing again after a small change rebuilds incrementally. The working tree builds into
//! `<target>/funcscope/targets/current`, apart from a plain `cargo build`, because its flags differ.
//!
//! # Identical sources, identical binaries
//! Every build remaps its workspace root to one fixed name (`--remap-path-prefix`), so the same
//! sources built in the working tree and in a worktree elsewhere give byte-identical binaries
//! (checked: without the remap two checkouts of one commit differed in 1.6 M bytes of
//! `http_parse`, through the embedded path and what follows from it). A paired comparison of an
//! unchanged tree is thus a true A/A, not a comparison of two layouts.
//!
//! # Binaries of a commit, cached
//! A commit's binaries are copied to `<target>/funcscope/bin/<sha>/release/` with a manifest (the
//! toolchain, the flags, which binaries the commit has); the next comparison against that commit
//! uses them without a worktree or a build.

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

/// The fixed name every build gives its workspace root (see the module docs).
pub const REMAPPED_ROOT: &str = "/funcscope-src";

/// The cargo workspace root of `src_root` (where rustc runs and which paths are relative to).
fn workspace_root(src_root: &Path) -> PathBuf {
    Command::new(cargo())
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .current_dir(src_root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).parent().map(Path::to_path_buf))
        .unwrap_or_else(|| src_root.to_path_buf())
}

/// Adds the path remap of `src_root` to a cargo command without dropping the user's own flags:
/// appended to `CARGO_ENCODED_RUSTFLAGS` or `RUSTFLAGS` when either is set (they override the
/// configuration files' flags), else given as `--config build.rustflags`, which cargo joins with
/// the files' `build.rustflags` (a `target.<triple>.rustflags` still wins; then no remap).
fn add_remap(cmd: &mut Command, src_root: &Path) {
    let root = workspace_root(src_root);
    let flag = format!("--remap-path-prefix={}={REMAPPED_ROOT}", root.display());
    let encoded = std::env::var("CARGO_ENCODED_RUSTFLAGS")
        .ok()
        .or_else(|| std::env::var("RUSTFLAGS").ok().map(|f| f.split_whitespace().collect::<Vec<_>>().join("\x1f")));
    match encoded {
        Some(e) if !e.is_empty() => {
            cmd.env("CARGO_ENCODED_RUSTFLAGS", format!("{e}\x1f{flag}"));
        }
        Some(_) => {
            cmd.env("CARGO_ENCODED_RUSTFLAGS", &flag);
        }
        None => {
            cmd.arg("--config").arg(format!("build.rustflags=[{}]", toml::Value::String(flag)));
        }
    }
}

/// Builds the scenario binaries of `cfg` from the source tree at `src_root` into `target` (release)
/// and returns each scenario's program (`None` if its binary does not exist in that tree, e.g. a
/// scenario added later). `target = None` uses `<target>/funcscope/targets/current`.
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
        None => target_dir(src_root)?.join("funcscope").join("targets").join("current"),
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
        add_remap(&mut cmd, src_root);
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

/// The current commit, with `-dirty` when tracked files other than those under `data` (the
/// baselines directory, relative to `root`) have uncommitted changes.
///
/// Why `data` does not count: the commit names the code that was measured, and baseline files are
/// not code; `baseline --measure time,instructions` writes the time baselines before the
/// instruction pass describes the tree, which would otherwise call it dirty.
pub fn describe_head(root: &Path, data: &Path) -> String {
    let commit = git(root, &["rev-parse", "HEAD"]).unwrap_or_else(|_| "unknown".into());
    let mut args = vec!["status".to_owned(), "--porcelain".into(), "--untracked-files=no".into()];
    // A baselines directory outside the repository excludes nothing.
    if let Some(rel) = if data.is_absolute() { data.strip_prefix(root).ok() } else { Some(data) } {
        args.extend(["--".into(), ".".into(), format!(":(exclude){}", rel.display())]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let dirty = git(root, &args).is_ok_and(|s| !s.is_empty());
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}

/// A checkout of `sha` under `<out>/worktrees/<sha>`, created with `git worktree add --detach` or
/// reused if already there at that commit with its tracked files intact. Returns its path.
///
/// Why the check: a harness interrupted while `git worktree add` checked out files leaves a
/// worktree at the right commit with files missing; it is re-created rather than built.
pub fn worktree(repo: &Path, out: &Path, sha: &str) -> Result<PathBuf> {
    let dir = out.join("worktrees").join(sha);
    if dir.join(".git").exists() {
        let intact = || git(&dir, &["status", "--porcelain", "--untracked-files=no"]).is_ok_and(|s| s.is_empty());
        if git(&dir, &["rev-parse", "HEAD"]).is_ok_and(|h| h == sha) && intact() {
            return Ok(dir);
        }
        let _ = git(repo, &["worktree", "remove", "--force", &dir.to_string_lossy()]);
    }
    // A directory without `.git` (interrupted before git wrote it) would make `worktree add` fail.
    if dir.exists() && !dir.join(".git").exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::at("removing the broken worktree", &dir, e))?;
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

/// Builds the scenarios of `rev` (`None`: the working tree, into `<target>/funcscope/targets/current`;
/// a revision: its cached binaries if `<target>/funcscope/bin/<sha>/release` has them, else a git
/// worktree of it under `<target>/funcscope/worktrees/<sha>`, built into
/// `<target>/funcscope/targets/<target_key>` (kept between calls so rebuilding is incremental) and
/// then cached). `what` names the revision in progress lines. The one way every command builds
/// code.
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
    let cache = BinCache::new(cfg, &out_dir, &sha);
    if let Some(programs) = cache.lookup(cfg) {
        if !flags.quiet {
            eprintln!("using the cached binaries of {what} ({})", cache.dir.display());
        }
        return Ok(Revision { sha: Some(sha), programs });
    }
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
    // A cache that cannot be written costs a rebuild next time, nothing else.
    let programs = match cache.store(cfg, &programs) {
        Ok(cached) => cached,
        Err(e) => {
            eprintln!("warning: not caching the binaries of {what}: {e}");
            programs
        }
    };
    Ok(Revision { sha: Some(sha), programs })
}

/// The cached release binaries of one commit: `<out>/bin/<sha>/release/` and its `manifest`.
struct BinCache {
    dir: PathBuf,
    /// What must match for the binaries to be reused: toolchain, flags, package.
    key: String,
}

impl BinCache {
    fn new(cfg: &Config, out_dir: &Path, sha: &str) -> BinCache {
        let toolchain = crate::fingerprint::rustc_version(&cfg.root);
        let flags = [
            std::env::var("RUSTFLAGS").unwrap_or_default(),
            std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default(),
        ]
        .join("|");
        let key = format!("toolchain {toolchain}\nflags {flags}\npackage {}\n", cfg.run.package);
        BinCache { dir: out_dir.join("bin").join(sha).join("release"), key }
    }

    /// Every scenario's program from the cache, if the manifest matches and lists every binary.
    fn lookup(&self, cfg: &Config) -> Option<Vec<Option<PathBuf>>> {
        let manifest = std::fs::read_to_string(self.dir.join("manifest")).ok()?;
        let listed = manifest.strip_prefix(&self.key)?;
        cfg.scenarios
            .iter()
            .map(|s| match &s.bin {
                Some(b) => {
                    let p = self.dir.join(b);
                    if listed.lines().any(|l| l == format!("bin {b}")) {
                        p.is_file().then_some(Some(p))
                    } else if listed.lines().any(|l| l == format!("absent {b}")) {
                        Some(None)
                    } else {
                        None
                    }
                }
                // A prebuilt program is not part of the commit's build.
                None => None,
            })
            .collect()
    }

    /// Copies the built binaries into the cache, writes the manifest last, and returns the cached
    /// paths (so a later build of another commit into the same target cannot change them).
    fn store(&self, cfg: &Config, built: &[Option<PathBuf>]) -> Result<Vec<Option<PathBuf>>> {
        if cfg.scenarios.iter().any(|s| s.bin.is_none()) {
            return Ok(built.to_vec());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::at("creating", &self.dir, e))?;
        let mut manifest = self.key.clone();
        let mut out = Vec::new();
        for (s, p) in cfg.scenarios.iter().zip(built) {
            let b = s.bin.as_deref().unwrap_or_default();
            match p {
                Some(p) => {
                    let dest = self.dir.join(b);
                    std::fs::copy(p, &dest).map_err(|e| Error::at("copying into", &dest, e))?;
                    manifest.push_str(&format!("bin {b}\n"));
                    out.push(Some(dest));
                }
                None => {
                    manifest.push_str(&format!("absent {b}\n"));
                    out.push(None);
                }
            }
        }
        let path = self.dir.join("manifest");
        crate::fsutil::write_atomic(&path, 0o644, |w| w.write_all(manifest.as_bytes()))
            .map_err(|e| Error::Build(e.to_string()))?;
        Ok(out)
    }
}

/// The first 12 hex digits of a commit id, keeping a `-dirty` suffix: how reports name commits.
pub fn short_sha(sha: &str) -> String {
    let (id, dirty) = match sha.strip_suffix("-dirty") {
        Some(s) => (s, "-dirty"),
        None => (sha, ""),
    };
    format!("{}{dirty}", &id[..12.min(id.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, bins: &[&str]) -> Config {
        let mut text = String::from("[run]\npackage = \"p\"\n");
        for b in bins {
            text.push_str(&format!("[[scenario]]\nname = \"{b}\"\nbin = \"{b}\"\n"));
        }
        Config::parse(&text, &dir.join("funcscope.toml")).unwrap()
    }

    /// Changed baselines do not make the code dirty; changed code does.
    #[test]
    fn describe_head_ignores_the_baselines_directory() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        let g = |args: &[&str]| git(repo, args).unwrap();
        g(&["init", "-q"]);
        std::fs::create_dir_all(repo.join("baselines")).unwrap();
        std::fs::write(repo.join("baselines/s.toml"), "old").unwrap();
        std::fs::write(repo.join("code.rs"), "fn a() {}").unwrap();
        g(&["add", "."]);
        g(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"]);
        let sha = g(&["rev-parse", "HEAD"]);
        std::fs::write(repo.join("baselines/s.toml"), "new").unwrap();
        assert_eq!(describe_head(repo, Path::new("baselines")), sha);
        assert_eq!(describe_head(repo, &repo.join("baselines")), sha, "an absolute baselines path");
        std::fs::write(repo.join("code.rs"), "fn b() {}").unwrap();
        assert_eq!(describe_head(repo, Path::new("baselines")), format!("{sha}-dirty"));
    }

    /// A worktree left broken by an interrupted harness (files missing, or no `.git` yet) is
    /// re-created, not reused.
    #[test]
    fn an_interrupted_worktree_is_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let g = |args: &[&str]| git(&repo, args).unwrap();
        g(&["init", "-q"]);
        std::fs::write(repo.join("a.txt"), "a").unwrap();
        g(&["add", "a.txt"]);
        g(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"]);
        let sha = g(&["rev-parse", "HEAD"]);
        let out = dir.path().join("out");
        let wt = worktree(&repo, &out, &sha).unwrap();
        assert!(wt.join("a.txt").is_file());
        // Interrupted mid-checkout: the commit is right, a file is missing.
        std::fs::remove_file(wt.join("a.txt")).unwrap();
        let wt = worktree(&repo, &out, &sha).unwrap();
        assert!(wt.join("a.txt").is_file(), "a broken worktree was reused");
        // Interrupted before `.git` was written: a bare directory is in the way.
        g(&["worktree", "remove", "--force", &wt.to_string_lossy()]);
        std::fs::create_dir_all(wt.join("partial")).unwrap();
        let wt = worktree(&repo, &out, &sha).unwrap();
        assert!(wt.join("a.txt").is_file());
    }

    #[test]
    fn cached_binaries_are_reused_only_with_a_matching_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &["a", "b"]);
        let built = dir.path().join("built-a");
        std::fs::write(&built, b"binary a").unwrap();
        let cache = BinCache::new(&cfg, dir.path(), "0123abcd");
        assert!(cache.lookup(&cfg).is_none(), "empty cache");
        // `b` does not exist at that commit: remembered as absent, not as missing.
        let stored = cache.store(&cfg, &[Some(built.clone()), None]).unwrap();
        let cached_a = dir.path().join("bin/0123abcd/release/a");
        assert_eq!(stored, vec![Some(cached_a.clone()), None]);
        assert_eq!(std::fs::read(&cached_a).unwrap(), b"binary a");
        assert_eq!(cache.lookup(&cfg), Some(vec![Some(cached_a.clone()), None]));
        // A scenario the manifest does not know means a rebuild.
        assert!(cache.lookup(&config(dir.path(), &["a", "b", "c"])).is_none());
        // Another toolchain or flags: a rebuild.
        let other = BinCache { dir: cache.dir.clone(), key: format!("{}x", cache.key) };
        assert!(other.lookup(&cfg).is_none());
        // A cached binary deleted by hand: a rebuild, not a missing program.
        std::fs::remove_file(&cached_a).unwrap();
        assert!(cache.lookup(&cfg).is_none());
    }
}
