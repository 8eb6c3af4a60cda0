//! Nothing the harness starts outlives it: every process a run launched (with its descendants,
//! also those that left its process group with `setsid()`) ends with the run, and on SIGINT,
//! SIGTERM or SIGHUP the harness ends everything it started, removes its temporary run
//! directories (with the sockets in them), prints one line saying what it cleaned and exits
//! 128 + the signal (130, 143, 129).
//!
//! # How processes are found
//! * **Process group**: each program runs in its own group (see [`crate::runner`]).
//! * **Environment marker**: every process of a run inherits `FUNCSCOPE_SOCKET_DIR=<the run's
//!   private directory>`, unique per run; a process that called `setsid()` keeps it.
//! * **Descendants**: any process whose parent chain reaches one found above.
//! * **Subreaper**: [`install`] makes the harness a child subreaper (`PR_SET_CHILD_SUBREAPER`),
//!   so an orphan whose parent died is re-parented to the harness rather than to init; on a
//!   signal every descendant of the harness is ended, even one that cleared its environment.
//!   The harness then reaps the orphans it adopted.
//!
//! A run's sweep ([`end_run`]) kills only that run's processes (other runs may be going on in the
//! same process, e.g. tests); the interrupt path kills every descendant of the harness. Once the
//! harness is a subreaper, a run's sweep reads only the harness's descendants (through the
//! kernel's per-thread `children` lists), not all of `/proc`: every process of a run is one of
//! them, and the sweep runs between every two runs of a measurement.
//!
//! # Signals without `unsafe`
//! [`install`] blocks the signals in the calling thread before any other thread exists (threads
//! inherit the mask; `std::process::Command` clears it in every child) and a dedicated thread
//! takes them with `sigwait`, so no async-signal-safety rules apply to the cleanup code.
//!
//! Limits: a process of a run that called `setsid()`, cleared its environment and whose parent
//! is still alive when its run ends, but dies before the sweep, is invisible; an adopted orphan
//! that exits on its own between sweeps stays a zombie until the harness exits (it holds no
//! memory or CPU; reaping unknown zombies could steal another thread's `wait`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What is alive now that the harness may have to end.
#[derive(Default)]
struct Registry {
    /// Set once a signal arrived: nothing new may be started.
    closing: bool,
    /// Temporary directories of runs in progress (each holds the run's sockets).
    dirs: BTreeSet<PathBuf>,
    /// Process groups of programs in progress.
    groups: BTreeSet<i32>,
}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { closing: false, dirs: BTreeSet::new(), groups: BTreeSet::new() });

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a run in progress: its private directory and (once spawned) its process group.
/// Dropping it forgets both; [`end_run`] does the killing.
#[derive(Debug)]
pub struct RunGuard {
    dir: PathBuf,
    group: Option<i32>,
}

impl RunGuard {
    /// Registers `dir`, the run's private directory (removed if a signal arrives).
    pub fn new(dir: &Path) -> RunGuard {
        registry().dirs.insert(dir.to_path_buf());
        RunGuard { dir: dir.to_path_buf(), group: None }
    }

    /// Registers the process group of the program just spawned. Returns false when a signal
    /// arrived meanwhile: the caller must end the program now (the signal thread may have swept
    /// before the group was known).
    pub fn spawned(&mut self, pgid: u32) -> bool {
        let mut r = registry();
        r.groups.insert(pgid as i32);
        self.group = Some(pgid as i32);
        !r.closing
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let mut r = registry();
        r.dirs.remove(&self.dir);
        if let Some(g) = self.group {
            r.groups.remove(&g);
        }
    }
}

/// Whether a signal is being handled: callers stop reporting (the process is about to exit).
pub fn closing() -> bool {
    registry().closing
}

/// Blocks the calling thread for good when a signal is being handled, so that it does not
/// report the failures the cleanup itself causes (the signal thread exits the process).
pub fn halt_if_closing() {
    if closing() {
        loop {
            std::thread::park();
        }
    }
}

/// One line of `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgrp: i32,
}

/// Where a sweep looks for processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Every process in `/proc`.
    All,
    /// The harness's descendants only, found through `/proc/<pid>/task/<tid>/children`. Sound
    /// only while the harness is a child subreaper: then every process a run started, whatever
    /// its session or group, and however its parents died, has the harness as an ancestor.
    Descendants,
}

/// Set by [`install`] once the harness is a child subreaper.
static SUBREAPER: AtomicBool = AtomicBool::new(false);

/// The cheapest sound scope for sweeping one run: the harness's descendants when it is a
/// subreaper and the kernel lists children (`CONFIG_PROC_CHILDREN`), else all of `/proc`.
/// A run's sweep used to read `stat` and `environ` of every process on the machine, twice:
/// 3-4 ms per run with 133 processes on this VM (measured with strace), several times that on a
/// busy CI host, between every two runs of a measurement.
fn sweep_scope() -> Scope {
    if SUBREAPER.load(Relaxed)
        && std::path::Path::new(&format!("/proc/self/task/{}/children", std::process::id())).exists()
    {
        Scope::Descendants
    } else {
        Scope::All
    }
}

/// Parses `/proc/<pid>/stat` (a process that vanished gives `None`).
fn read_proc(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the name: state ppid pgrp ...
    Some(Proc { pid, ppid: f.get(1)?.parse().ok()?, pgrp: f.get(2)?.parse().ok()? })
}

/// The children of every thread of `pid` (`/proc/<pid>/task/<tid>/children`).
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
        }
    }
    out
}

/// The processes in `scope` (those that vanish while read are skipped).
fn processes(scope: Scope) -> Vec<Proc> {
    match scope {
        Scope::All => {
            let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
                .filter_map(read_proc)
                .collect()
        }
        Scope::Descendants => {
            // The kernel's children lists can miss a child forked or re-parented while they
            // are read; `kill_all` sweeps again until a sweep finds nothing new.
            let mut out = Vec::new();
            let mut seen = BTreeSet::new();
            let mut todo = children_of(std::process::id() as i32);
            while let Some(pid) = todo.pop() {
                if seen.insert(pid) {
                    if let Some(p) = read_proc(pid) {
                        out.push(p);
                        todo.extend(children_of(pid));
                    }
                }
            }
            out
        }
    }
}

/// Whether `pid`'s initial environment holds exactly `entry` (`KEY=value`).
fn has_env(pid: i32, entry: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| env.split(|&b| b == 0).any(|e| e == entry))
}

/// The processes matching `seed` and all their descendants, never the harness itself.
fn closure(procs: &[Proc], seed: impl Fn(&Proc) -> bool) -> BTreeSet<i32> {
    let me = std::process::id() as i32;
    let mut set: BTreeSet<i32> = procs.iter().filter(|p| p.pid != me && seed(p)).map(|p| p.pid).collect();
    let children: BTreeMap<i32, Vec<i32>> = procs.iter().fold(BTreeMap::new(), |mut m, p| {
        m.entry(p.ppid).or_default().push(p.pid);
        m
    });
    let mut todo: Vec<i32> = set.iter().copied().collect();
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if c != me && set.insert(c) {
                todo.push(c);
            }
        }
    }
    set
}

/// Kills (SIGKILL) what `select` finds, again until it finds nothing (a process may fork while
/// its family is being killed), and reaps those that were the harness's children. Returns how
/// many distinct processes were killed.
fn kill_all(scope: Scope, select: impl Fn(&[Proc]) -> BTreeSet<i32>, keep_unreaped: &BTreeSet<i32>) -> usize {
    let me = std::process::id() as i32;
    let mut killed = BTreeSet::new();
    // 100 rounds: a family forking faster than it is killed is not a real program; a bound
    // keeps the harness from spinning forever on one.
    for _ in 0..100 {
        let procs = processes(scope);
        let found = select(&procs);
        let fresh: Vec<i32> = found.iter().copied().filter(|p| !killed.contains(p) || is_running(*p)).collect();
        if fresh.is_empty() {
            break;
        }
        for &p in &fresh {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            killed.insert(p);
        }
        // Reap those that are (or became, as orphans) the harness's children; for any other
        // pid `waitpid` fails at once (ECHILD).
        for &p in fresh.iter().filter(|p| !keep_unreaped.contains(p)) {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(p), None);
        }
    }
    // An orphan re-parented to the harness after its round's reaping (its parent died later).
    for p in
        processes(scope).iter().filter(|p| p.ppid == me && killed.contains(&p.pid) && !keep_unreaped.contains(&p.pid))
    {
        let _ = nix::sys::wait::waitpid(Pid::from_raw(p.pid), None);
    }
    killed.len()
}

/// Whether `pid` exists and is not a zombie.
fn is_running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// Ends every process of one run: its process group `pgid`, every process whose environment
/// holds `env_key=dir` (those that called `setsid()` keep it), and all their descendants. The
/// program itself must already be reaped by its `Child`. Returns how many processes were killed.
pub fn end_run(pgid: u32, env_key: &str, dir: &Path) -> usize {
    let mut entry = OsString::from(format!("{env_key}="));
    entry.push(dir.as_os_str());
    let entry = entry.as_bytes().to_vec();
    let pgid = pgid as i32;
    kill_all(sweep_scope(), |procs| closure(procs, |p| p.pgrp == pgid || has_env(p.pid, &entry)), &BTreeSet::new())
}

/// Makes the harness a child subreaper and starts the thread that handles SIGINT, SIGTERM and
/// SIGHUP. Call it first thing in `main`, before any thread is started (threads started before
/// it would still get the default action: exit without cleanup).
pub fn install() -> std::io::Result<()> {
    use nix::sys::signal::SigSet;
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().map_err(std::io::Error::from)?;
    // Orphans of the runs become the harness's children, so that they can be found and reaped.
    // Not fatal where refused (a sandbox): the environment marker still finds them.
    if nix::sys::prctl::set_child_subreaper(true).is_ok() {
        SUBREAPER.store(true, Relaxed);
    }
    std::thread::Builder::new().name("funcscope-signals".into()).spawn(move || {
        // `wait` fails only for an invalid set; then the signals stay blocked and the harness
        // runs on without cleanup on signals, as before.
        if let Ok(sig) = set.wait() {
            interrupted(sig);
        }
    })?;
    Ok(())
}

/// The cleanup of the signal path: stop new runs, kill every descendant of the harness, remove
/// the runs' directories, say so in one line and exit 128 + the signal.
fn interrupted(sig: Signal) -> ! {
    let (dirs, groups) = {
        let mut r = registry();
        r.closing = true;
        (r.dirs.clone(), r.groups.clone())
    };
    let me = std::process::id() as i32;
    // Held until the process exits: no other thread prints the failures this cleanup causes
    // (a killed build, a killed program) after the decision to exit.
    let _out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    // The runner threads stop for good before they look at their killed programs
    // (`halt_if_closing`), so reaping those here is safe.
    let killed = kill_all(
        Scope::All,
        |procs| {
            let mut all = closure(procs, |p| p.ppid == me || groups.contains(&p.pgrp));
            all.retain(|&p| p != me);
            all
        },
        &BTreeSet::new(),
    );
    // Wait briefly for the killed programs to be gone, so that nothing holds the directories.
    for _ in 0..100 {
        if groups.iter().all(|&g| !is_running(g)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let removed = dirs.iter().filter(|d| std::fs::remove_dir_all(d).is_ok()).count();
    let line = format!(
        "funcscope: interrupted by {}: killed {killed} process(es) it had started, removed {removed} temporary run director{} with their sockets\n",
        sig.as_str(),
        if removed == 1 { "y" } else { "ies" }
    );
    use std::io::Write;
    let _ = err.write_all(line.as_bytes());
    let _ = err.flush();
    std::process::exit(128 + sig as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_takes_descendants_never_the_harness() {
        let me = std::process::id() as i32;
        let procs = [
            Proc { pid: 10, ppid: me, pgrp: 10 },
            Proc { pid: 11, ppid: 10, pgrp: 11 }, // setsid()'d child
            Proc { pid: 12, ppid: 11, pgrp: 11 },
            Proc { pid: 20, ppid: 1, pgrp: 20 },
            Proc { pid: me, ppid: 1, pgrp: me },
        ];
        let s = closure(&procs, |p| p.pgrp == 10);
        assert_eq!(s.into_iter().collect::<Vec<_>>(), vec![10, 11, 12]);
        let s = closure(&procs, |p| p.ppid == me || p.pid == me);
        assert!(!s.contains(&me) && !s.contains(&20), "{s:?}");
    }

    #[test]
    fn descendants_scope_finds_children_and_grandchildren() {
        if !std::path::Path::new(&format!("/proc/self/task/{}/children", std::process::id())).exists() {
            eprintln!("skipped: this kernel has no /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN)");
            return;
        }
        // A shell that starts a grandchild and waits; it prints the grandchild's pid.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(sh.stdout.take().unwrap()), &mut line).unwrap();
        let grandchild: i32 = line.trim().parse().expect("a pid");
        let found = processes(Scope::Descendants);
        let _ = kill(Pid::from_raw(grandchild), Signal::SIGKILL);
        let _ = sh.kill();
        let _ = sh.wait();
        let pids: Vec<i32> = found.iter().map(|p| p.pid).collect();
        assert!(pids.contains(&(sh.id() as i32)), "child {} missing from {pids:?}", sh.id());
        let g = found.iter().find(|p| p.pid == grandchild).unwrap_or_else(|| panic!("grandchild missing: {pids:?}"));
        assert_eq!(g.ppid, sh.id() as i32);
        // Nothing that is not a descendant (init, the test runner's parent).
        assert!(!pids.contains(&1), "{pids:?}");
        assert!(!pids.contains(&(std::os::unix::process::parent_id() as i32)), "{pids:?}");
    }
}
