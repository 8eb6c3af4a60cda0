//! Nothing the harness starts outlives it: real harness processes (the `funcscope` binary) run a
//! program that starts a `setsid()`'d grandchild (leaving the program's process group) and
//! sleeps; the harness is interrupted (SIGINT, SIGTERM) or the run ends normally, and the tests
//! check by pid in `/proc` that no process of the program survives, that the harness exits
//! 130/143 with one line saying what it cleaned, and that no `funcscope-run-*` directory is left
//! (the harness's TMPDIR is a private directory, so the check sees only its own).
//!
//! Needs `/bin/sh` and `setsid` (util-linux); a test without them says so and passes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private TMPDIR for the harness and the pid files of the program's processes.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        Scene { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn tmp(&self) -> PathBuf {
        let t = self.path().join("tmp");
        std::fs::create_dir_all(&t).unwrap();
        t
    }

    /// The shell script the harness runs: a `setsid()`'d sleeper (pid in `escaped`), a sleeper
    /// in the program's group (`grouped`), then the program's own pid (`program`), then it
    /// either sleeps or exits.
    fn script(&self, then: &str) -> String {
        let d = self.path().display();
        format!(
            "setsid sleep 9471 & echo $! > {d}/escaped.tmp && mv {d}/escaped.tmp {d}/escaped; \
             sleep 9472 & echo $! > {d}/grouped; echo $$ > {d}/program; {then}"
        )
    }

    fn harness(&self, script: &str, attach_timeout: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_funcscope"))
            .args(["run", "--no-pin", "--attach-timeout", attach_timeout, "--", "/bin/sh", "-c", script])
            .env("TMPDIR", self.tmp())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.path().join(name)).ok()?.trim().parse().ok()
    }

    /// Waits (bounded) until the program wrote every pid file.
    fn wait_started(&self) {
        let t0 = Instant::now();
        while ["escaped", "grouped", "program"].iter().any(|f| self.pid(f).is_none()) {
            assert!(t0.elapsed() < Duration::from_secs(60), "the program never started its processes");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pids of the program's processes that still run (zombies do not count).
    fn survivors(&self) -> Vec<(String, i32)> {
        ["escaped", "grouped", "program"]
            .iter()
            .filter_map(|f| self.pid(f).map(|p| (f.to_string(), p)))
            .filter(|&(_, p)| running(p))
            .collect()
    }

    fn leftover_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.tmp())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("funcscope-run-"))
            .collect()
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        // Never leave sleepers behind, even when an assertion failed.
        for (_, p) in self.survivors() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Whether `pid` runs (exists, not a zombie) and is one of our sleepers or the shell.
fn running(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let Some(i) = stat.rfind(')') else { return false };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = cmdline.windows(4).any(|w| w == b"947") || cmdline.starts_with(b"/bin/sh");
    ours && !stat[i + 1..].trim_start().starts_with('Z')
}

fn tools_present() -> bool {
    let ok = Command::new("sh").args(["-c", "command -v setsid"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: `setsid` (util-linux) is not installed");
    }
    ok
}

/// Waits for the harness (bounded: it is killed after 60 s and the test fails).
fn finish(mut child: Child) -> (Option<i32>, String) {
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the harness did not exit within 60 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn interrupt(sig: nix::sys::signal::Signal, code: i32) {
    if !tools_present() {
        return;
    }
    let s = Scene::new();
    let harness = s.harness(&s.script("sleep 9473"), "120");
    s.wait_started();
    assert!(!s.leftover_dirs().is_empty(), "the run's directory should exist while it runs");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(harness.id() as i32), sig).unwrap();
    let (rc, text) = finish(harness);
    assert_eq!(rc, Some(code), "{text}");
    assert!(text.contains(&format!("interrupted by {}", sig.as_str())) && text.contains("killed"), "{text}");
    // The escaped sleeper was re-parented to the harness (a subreaper) or is found by its
    // environment; either way it must be gone. Give the kernel a moment to finish the kills.
    let t0 = Instant::now();
    while !s.survivors().is_empty() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.survivors(), vec![], "processes of the program outlived the harness\n{text}");
    assert_eq!(s.leftover_dirs(), Vec::<String>::new(), "temporary run directories left\n{text}");
}

/// The gate's path (`regress`: rounds, the reference workload, a configured scenario) is
/// interrupted the same way.
#[test]
fn sigint_during_regress_ends_the_scenario_and_exits_130() {
    if !tools_present() {
        return;
    }
    let s = Scene::new();
    let script = s.script("sleep 9473");
    let toml = format!(
        "[run]\nruns = 2\nwarmup_runs = 0\ntimeout_s = 300\nattach_timeout_s = 120\n\n\
         [[scenario]]\nname = \"hang\"\npath = \"/bin/sh\"\nargs = [\"-c\", {script:?}]\n"
    );
    std::fs::write(s.path().join("funcscope.toml"), toml).unwrap();
    let harness = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["regress", "--no-build", "--config"])
        .arg(s.path().join("funcscope.toml"))
        .current_dir(s.path())
        .env("TMPDIR", s.tmp())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    s.wait_started();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(harness.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let (rc, text) = finish(harness);
    assert_eq!(rc, Some(130), "{text}");
    assert!(text.contains("interrupted by SIGINT"), "{text}");
    let t0 = Instant::now();
    while !s.survivors().is_empty() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.survivors(), vec![], "processes of the scenario outlived the harness\n{text}");
    assert_eq!(s.leftover_dirs(), Vec::<String>::new(), "temporary run directories left\n{text}");
}

#[test]
fn sigint_ends_every_process_removes_the_run_directory_and_exits_130() {
    interrupt(nix::sys::signal::Signal::SIGINT, 130);
}

#[test]
fn sigterm_ends_every_process_and_exits_143() {
    interrupt(nix::sys::signal::Signal::SIGTERM, 143);
}

/// A run that ends by itself (here: the program exits without ever attaching, exit 3) ends the
/// processes it started too, also the one that left its process group with `setsid()`.
#[test]
fn a_setsid_child_does_not_outlive_a_normal_run() {
    if !tools_present() {
        return;
    }
    let s = Scene::new();
    // The program waits until its escaped child has written its pid, then exits.
    let harness = s.harness(&s.script("exit 0"), "30");
    let (rc, text) = finish(harness);
    assert_eq!(rc, Some(3), "{text}");
    assert!(text.contains("exited before attaching"), "{text}");
    assert!(s.pid("escaped").is_some(), "the program did not start its escaped child\n{text}");
    assert_eq!(s.survivors(), vec![], "processes of the run outlived it\n{text}");
    assert_eq!(s.leftover_dirs(), Vec::<String>::new(), "temporary run directories left\n{text}");
}
