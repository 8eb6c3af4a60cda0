//! Launch an instrumented program, attach to every process it starts, drain while it runs and
//! after it exits, and turn what was drained into one [`RunResult`].
//!
//! The program gets `FUNCSCOPE_SOCKET_DIR` (a fresh private directory), so each of its processes
//! (each calls `funcscope::init`) creates `<dir>/<pid>.sock` there; the runner attaches to every
//! socket that appears, one thread per process. `FUNCSCOPE_WAIT_ATTACH_MS` tells programs that
//! support it (the bundled scenarios) to start measuring only once attached.
//!
//! Every failure is a [`RunError`] naming what happened (the signal of a crash, the exit code,
//! the timeout) with the tail of the program's stderr. A run is *complete* only if every
//! attached process raised its exit flag and the program exited 0.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use funcscope::reader::{self, Drain, Region};

use crate::cleanup;
use crate::events::gate::{PairSession, PairSpec};
use crate::model::{CheckpointRun, RunResult, Totals};
use crate::snoop::gate::{GateProbe, GateResult, GateSession, GateSource};
use crate::stats::{RunSummary, TickCounts};

/// How often the runner drains each process and looks for new ones. At 10 M calls/s a 1 Mi-entry
/// ring fills in 100 ms, so 1 ms leaves a wide margin.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Bytes of stderr/stdout kept for error messages.
const TAIL_BYTES: usize = 4096;

/// Resolution of pooled histograms: values are recorded in units of 10 ps (1/100 ns).
pub const POOL_UNITS_PER_NS: f64 = 100.0;

/// What to launch.
#[derive(Clone, Debug)]
pub struct Launch {
    /// Name used in messages.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Kill and fail after this long.
    pub timeout: Duration,
    /// Fail if no process attached within this long.
    pub attach_timeout: Duration,
    /// Pin the program (and every process it starts) to this CPU; see [`measurement_cpu`].
    pub cpu: Option<usize>,
    /// Run a private copy of the program made for this run (see [`private_copy`]).
    pub fresh_copy: bool,
    /// Uninstrumented functions measured through uprobes in this run, beside the region
    /// (see [`crate::snoop::gate`]).
    pub uprobes: Vec<GateProbe>,
    /// Event pairs traced in this run, beside the region (see [`crate::events::gate`]).
    pub event_pairs: Vec<PairSpec>,
}

/// Copies `program` into `dir` (the run's private directory) and returns the copy's path.
///
/// Why: two byte-identical files of one binary ran one checkpoint (`http_parse` /
/// `build_response`) 3-4.5 % apart, consistently over 3 x 400 interleaved runs and a 384-round
/// paired A/A (p = 1.5e-6), while a third copy sat in between: the code's physical pages (which
/// physically indexed caches see) belong to the file and stay put for the whole session, so each
/// file has its own layout and an A/B of two files measures it. A fresh copy per run gets fresh
/// pages, which turns that fixed bias into per-process noise that the rounds average out. Costs
/// one file copy per run (about 2 ms for 5 MB).
pub fn private_copy(program: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    let name = program.file_name().unwrap_or(std::ffi::OsStr::new("program"));
    let copy = dir.join(name);
    std::fs::copy(program, &copy)?;
    Ok(copy)
}

/// The CPU to pin measured programs to: the highest CPU this process may run on, when it may
/// run on at least two (the harness's own threads then have the others).
///
/// Why: measured on the reference machine (2 vCPUs, 2026-11-23), the codec scenario's per-run
/// `encode_frame` median ranged 594-834 ns (+40 %) across unpinned runs and 594-646 ns when the
/// process was pinned to one CPU, whichever CPU and wherever the harness ran: the spread came
/// from the scheduler moving the process between CPUs mid-run (cold caches after each move),
/// and it dominated the run-to-run noise that limits the gate.
pub fn measurement_cpu() -> Option<usize> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    let allowed: Vec<usize> = (0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect();
    (allowed.len() >= 2).then(|| *allowed.last().expect("two or more"))
}

/// Runs `f` (a spawn) with the calling thread pinned to `cpu`, so the child inherits the pin from
/// its first instruction (pinning it after the spawn would race with its own forks), then
/// restores the thread's mask.
fn with_cpu<T>(cpu: Option<usize>, f: impl FnOnce() -> T) -> T {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    let me = nix::unistd::Pid::from_raw(0);
    let Some(cpu) = cpu else { return f() };
    let old = sched_getaffinity(me).ok();
    let mut set = CpuSet::new();
    let pinned = set.set(cpu).is_ok() && sched_setaffinity(me, &set).is_ok();
    let r = f();
    if let (true, Some(old)) = (pinned, old) {
        let _ = sched_setaffinity(me, &old);
    }
    r
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started.
    #[error("{name}: cannot start {program}: {source}")]
    Spawn {
        /// Scenario.
        name: String,
        /// Program path.
        program: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Killed by a signal.
    #[error("{name}: crashed with signal {signal}{}", tail_block(.stderr))]
    Crashed {
        /// Scenario.
        name: String,
        /// Signal name, e.g. SIGSEGV.
        signal: String,
        /// Tail of stderr.
        stderr: String,
    },
    /// Exited with a non-zero code.
    #[error("{name}: exited with code {code}{}", tail_block(.stderr))]
    Failed {
        /// Scenario.
        name: String,
        /// Exit code.
        code: i32,
        /// Tail of stderr.
        stderr: String,
    },
    /// Exited (successfully) without any process ever attaching.
    #[error("{name}: exited before attaching: no process called funcscope::init and poll_attach (is it instrumented?){}", tail_block(.stderr))]
    ExitedBeforeAttach {
        /// Scenario.
        name: String,
        /// Tail of stderr.
        stderr: String,
    },
    /// Running, but no process attached in time.
    #[error("{name}: no process attached within {} (does the main loop call poll_attach()?); killed it{}", seconds(.waited), tail_block(.stderr))]
    NeverAttached {
        /// Scenario.
        name: String,
        /// Time waited.
        waited: Duration,
        /// Tail of stderr.
        stderr: String,
    },
    /// Ran past the time limit.
    #[error("{name}: still running after {}; killed it (raise run.timeout_s if it is just slow){}", seconds(.limit), tail_block(.stderr))]
    Timeout {
        /// Scenario.
        name: String,
        /// The limit.
        limit: Duration,
        /// Tail of stderr.
        stderr: String,
    },
    /// A process's region was unusable or its attach failed.
    #[error("{name}: process {pid}: {message}")]
    Reader {
        /// Scenario.
        name: String,
        /// The process.
        pid: u32,
        /// What went wrong.
        message: String,
    },
    /// A process exited without raising its exit flag (no cleanup): the data may be partial.
    #[error(
        "{name}: process {pid} ended without funcscope cleanup (dropped Session / cleanup()); its data may be partial"
    )]
    NoCleanup {
        /// Scenario.
        name: String,
        /// The process.
        pid: u32,
    },
    /// Setup failed (temporary directory).
    #[error("{name}: {message}")]
    Setup {
        /// Scenario.
        name: String,
        /// What went wrong.
        message: String,
    },
}

/// A duration for messages, to the millisecond: "3 s", "2.5 s" (a time limit converted from
/// seconds once printed as "2.999999795s").
pub fn seconds(d: &Duration) -> String {
    format!("{} s", (d.as_secs_f64() * 1e3).round() / 1e3)
}

fn tail_block(s: &str) -> String {
    if s.trim().is_empty() {
        String::new()
    } else {
        let body: Vec<String> = s.trim_end().lines().map(|l| format!("    | {l}")).collect();
        format!("\n    stderr (last lines):\n{}", body.join("\n"))
    }
}

/// What one process contributed.
struct ProcessData {
    pid: u32,
    names: Vec<String>,
    tick_hz: f64,
    floor_ticks: u64,
    bad_index: u64,
    /// Per local checkpoint index: the samples' ticks, counted per distinct value (bounded
    /// memory, see [`TickCounts`]).
    samples: Vec<TickCounts>,
    counts: Vec<reader::DrainCounts>,
    aggregates: Vec<reader::Aggregates>,
    /// Per local checkpoint index: the probe's histogram of every call (level Deep and above).
    deep: Vec<Option<Vec<u64>>>,
    exited_cleanly: bool,
}

/// The result of one run, plus pooled histograms for baselines.
pub struct RunOutput {
    /// The run's statistics.
    pub result: RunResult,
    /// Per checkpoint: a histogram of all samples in units of 1/[`POOL_UNITS_PER_NS`] ns.
    pub pooled: BTreeMap<String, hdrhistogram::Histogram<u64>>,
    /// Per checkpoint, at level Deep and above: the probe's histogram of every call, as
    /// `(low ns, high ns, calls)` per non-empty bucket (empty below Deep). For plots only.
    pub deep: BTreeMap<String, Vec<(f64, f64, u64)>>,
    /// Tail of the program's stdout.
    pub stdout_tail: String,
}

/// Collects the tail of a pipe in a background thread.
fn tail_reader(mut pipe: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b2 = buf.clone();
    let h = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            let mut b = b2.lock().unwrap_or_else(|p| p.into_inner());
            b.extend_from_slice(&chunk[..n]);
            if b.len() > 4 * TAIL_BYTES {
                let cut = b.len() - TAIL_BYTES;
                b.drain(..cut);
            }
        }
    });
    (buf, h)
}

fn tail_text(buf: &Mutex<Vec<u8>>) -> String {
    let b = buf.lock().unwrap_or_else(|p| p.into_inner());
    let start = b.len().saturating_sub(TAIL_BYTES);
    let s = String::from_utf8_lossy(&b[start..]).into_owned();
    // Keep whole lines, at most the last 20.
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str().to_owned()).unwrap_or_else(|_| format!("{sig}"))
}

/// Whether process `pid` still exists (a zombie counts as existing until reaped).
fn alive(pid: u32) -> bool {
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None), Err(nix::errno::Errno::ESRCH))
}

/// Why following one process failed. Typed so that the runner can tell a process that was gone
/// before it could be attached (not an error by itself) from a real failure without reading
/// messages; the Display is the message a [`RunError::Reader`] carries.
#[derive(Debug, thiserror::Error)]
enum FollowError {
    /// Attaching failed.
    #[error("{0}")]
    Attach(#[from] reader::AttachError),
    /// Draining the attached region failed.
    #[error("{0}")]
    Read(#[from] reader::ReadError),
    /// The follower thread panicked.
    #[error("reader thread panicked")]
    Panicked,
}

impl FollowError {
    /// Whether the process could not be reached at all (it exited before we connected, and its
    /// socket was already removed or no longer listened): it recorded nothing we could read, which
    /// is an error only if no process of the run attached.
    fn process_gone(&self) -> bool {
        matches!(self, FollowError::Attach(e) if e.is_unreachable())
    }
}

/// Attaches to one process, retrying while its listener refuses (a probe older than the
/// rename-into-place of its socket can be seen between bind and listen), until it is attached,
/// the socket disappears (the process exited before we got there), or `attach_timeout` passes.
fn attach_retrying(sock: &std::path::Path, attach_timeout: Duration) -> Result<reader::Attachment, FollowError> {
    let t0 = Instant::now();
    loop {
        match reader::attach(sock, attach_timeout.saturating_sub(t0.elapsed()).max(Duration::from_millis(10))) {
            Ok(a) => return Ok(a),
            Err(reader::AttachError::Connect { source, .. })
                if source.kind() == std::io::ErrorKind::ConnectionRefused && t0.elapsed() < attach_timeout =>
            {
                std::thread::sleep(POLL_INTERVAL);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Attaches to one process and drains it until it raises its exit flag, until it is gone
/// (then its data may be partial: `exited_cleanly` is false), or until `stop` (the run was
/// aborted). Runs in its own thread.
fn follow_process(sock: PathBuf, attach_timeout: Duration, stop: Arc<Mutex<bool>>) -> Result<ProcessData, FollowError> {
    let att = attach_retrying(&sock, attach_timeout)?;
    let region: &Region = &att.region;
    let info = region.info().clone();
    let n = info.names.len();
    let mut samples: Vec<TickCounts> = vec![TickCounts::default(); n];
    let mut drain = Drain::new(region);
    let mut sink = |i: usize, s: reader::Sample| samples[i].record(s.ticks);
    let exited_cleanly = loop {
        let aborted = *stop.lock().unwrap_or_else(|p| p.into_inner());
        let gone = !alive(info.pid);
        let exited = region.exited();
        drain.drain(region, &mut sink)?;
        if exited {
            // The flag is raised after the last EXIT: this drain saw everything.
            break true;
        }
        if gone || aborted {
            break false;
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    Ok(ProcessData {
        pid: info.pid,
        names: info.names.clone(),
        tick_hz: region.freq_hz()?,
        floor_ticks: info.floor_p50_ticks,
        bad_index: region.bad_index_count(),
        counts: drain.counts().to_vec(),
        aggregates: (0..n).map(|i| region.aggregates(i)).collect::<Result<_, _>>()?,
        deep: (0..n).map(|i| region.histogram(i)).collect(),
        samples,
        exited_cleanly,
    })
}

/// Kills the program's whole process group (it runs in its own), so that children holding its
/// pipes or its sockets do not outlive the run, and reaps the program.
///
/// Then [`cleanup::end_run`] ends what escaped the group (a `setsid()`'d child, or a grandchild
/// re-parented after its parent died): every process holding this run's `FUNCSCOPE_SOCKET_DIR`
/// and its descendants. While a signal is being handled, the calling thread stops here for good
/// (the signal thread reports and exits).
fn kill_group(child: &mut Child, dir: &Path) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
    let _ = child.kill();
    cleanup::halt_if_closing();
    let _ = child.wait();
    cleanup::end_run(child.id(), funcscope::env::SOCKET_DIR, dir);
}

/// Joins a pipe-tail thread, but gives up after `limit` (a process that escaped the process
/// group may hold the pipe open forever; what was read so far is kept).
fn join_within(h: JoinHandle<()>, limit: Duration) {
    let t0 = Instant::now();
    while !h.is_finished() && t0.elapsed() < limit {
        std::thread::sleep(POLL_INTERVAL);
    }
    if h.is_finished() {
        let _ = h.join();
    }
}

/// Launches the program once and measures it.
pub fn run_once(l: &Launch) -> Result<RunOutput, RunError> {
    use std::os::unix::process::CommandExt;
    let name = l.name.clone();
    let dir = tempfile::Builder::new()
        .prefix("funcscope-run-")
        .tempdir()
        .map_err(|e| RunError::Setup { name: name.clone(), message: format!("creating a socket directory: {e}") })?;
    // Registered so that a signal removes it (with the sockets in it); see `cleanup`.
    let mut guard = cleanup::RunGuard::new(dir.path());
    let t0 = Instant::now();
    let program = if l.fresh_copy {
        private_copy(&l.program, dir.path()).map_err(|e| RunError::Setup {
            name: name.clone(),
            message: format!(
                "copying {} for this run: {e} (set run.fresh_copy = false to run it in place)",
                l.program.display()
            ),
        })?
    } else {
        l.program.clone()
    };
    // Resolved before the start, so that a wrong target fails the run before anything runs.
    let gate_targets = l
        .uprobes
        .iter()
        .map(|u| u.resolve(&program))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RunError::Setup { name: name.clone(), message: format!("uprobe checkpoint: {e}") })?;
    let mut cmd = Command::new(&program);
    // The program sees its own file name, not the copy's path, and not the path it was built at:
    // the two arms of a paired comparison live at paths of different lengths
    // (`target/funcscope/bin/<sha>/...` and `target/funcscope/targets/current/...`), and a
    // program that copies argv[0] to the heap at start (Rust's `std::env::args()` does) then
    // places every later allocation at another offset in one arm than in the other. Measured:
    // byte-identical http_parse binaries gave parse_request_line -12 % (CI -15 %..-7 %, 48
    // rounds) between the arms with full paths.
    cmd.arg0(l.program.file_name().unwrap_or(l.program.as_os_str()));
    cmd.args(&l.args)
        .env(funcscope::env::SOCKET_DIR, dir.path())
        .env(funcscope::env::WAIT_ATTACH_MS, l.attach_timeout.as_millis().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout kills every process it started.
        .process_group(0);
    for (k, v) in &l.env {
        cmd.env(k, v);
    }
    // A copy just written can be briefly "busy" (ETXTBSY) if another thread forked while its
    // write handle was open; the handle closes at that child's exec, so retry a few times.
    let spawn = |cmd: &mut Command| {
        let mut tries = 0;
        loop {
            match with_cpu(l.cpu, || cmd.spawn()) {
                Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(2));
                }
                r => return r,
            }
        }
    };
    let mut child =
        spawn(&mut cmd).map_err(|source| RunError::Spawn { name: name.clone(), program: l.program.clone(), source })?;
    if !guard.spawned(child.id()) {
        // A signal arrived while it was being started: end it; the signal thread exits.
        kill_group(&mut child, dir.path());
    }
    // The gate checkpoints measured beside the region: uprobes, event pairs.
    let mut gate: Vec<Box<dyn GateSource>> = Vec::new();
    if !gate_targets.is_empty() {
        let names: Vec<String> = l.uprobes.iter().map(GateProbe::checkpoint).collect();
        match GateSession::start(&gate_targets, &names, child.id() as i32) {
            Ok(g) => gate.push(Box::new(g)),
            Err(e) => {
                kill_group(&mut child, dir.path());
                return Err(RunError::Setup { name, message: format!("attaching the uprobe checkpoints: {e}") });
            }
        }
    }
    if !l.event_pairs.is_empty() {
        match PairSession::start(&l.event_pairs, child.id() as i32) {
            Ok(p) => gate.push(Box::new(p)),
            Err(e) => {
                kill_group(&mut child, dir.path());
                return Err(RunError::Setup { name, message: format!("opening the event-pair checkpoints: {e}") });
            }
        }
    }
    let (err_buf, err_thread) = tail_reader(child.stderr.take().expect("stderr is piped"));
    let (out_buf, out_thread) = tail_reader(child.stdout.take().expect("stdout is piped"));
    let stop = Arc::new(Mutex::new(false));
    let set_stop = |stop: &Arc<Mutex<bool>>| *stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
    let mut f = Followers { seen: HashSet::new(), running: Vec::new(), done: Vec::new() };
    let grace = Duration::from_millis(500);

    // Phase 1: until the launched program exits.
    let status = loop {
        let before_scan = (!gate.is_empty()).then(crate::snoop::gate::monotonic_ns);
        f.scan(dir.path(), l.attach_timeout, &stop);
        for g in &mut gate {
            // The probe's window opens when the program's first region appears (after its
            // start-up, e.g. a scenario's calibration): uprobe calls and event pairs count from
            // then on too.
            if f.attached() > 0 {
                g.open_window(before_scan.unwrap_or(0));
            }
            g.poll();
        }
        if let Some((pid, e)) = f.collect_finished() {
            kill_group(&mut child, dir.path());
            set_stop(&stop);
            return Err(RunError::Reader { name, pid, message: e.to_string() });
        }
        cleanup::halt_if_closing();
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => {
                kill_group(&mut child, dir.path());
                set_stop(&stop);
                return Err(RunError::Setup { name, message: format!("waiting for the program: {e}") });
            }
        }
        let elapsed = t0.elapsed();
        if elapsed > l.timeout {
            kill_group(&mut child, dir.path());
            set_stop(&stop);
            join_within(err_thread, grace);
            return Err(RunError::Timeout { name, limit: l.timeout, stderr: tail_text(&err_buf) });
        }
        if f.attached() == 0 && elapsed > l.attach_timeout {
            kill_group(&mut child, dir.path());
            set_stop(&stop);
            join_within(err_thread, grace);
            return Err(RunError::NeverAttached { name, waited: l.attach_timeout, stderr: tail_text(&err_buf) });
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    // Phase 2: instrumented processes it started may still be running (workers finishing): follow
    // them until they are done, within the same time limit. Then nothing of the run may linger.
    loop {
        f.scan(dir.path(), l.attach_timeout, &stop);
        for g in &mut gate {
            g.poll();
        }
        if let Some((pid, e)) = f.collect_finished() {
            kill_group(&mut child, dir.path());
            set_stop(&stop);
            return Err(RunError::Reader { name, pid, message: e.to_string() });
        }
        if f.running.is_empty() {
            break;
        }
        if t0.elapsed() > l.timeout {
            kill_group(&mut child, dir.path());
            set_stop(&stop);
            join_within(err_thread, grace);
            return Err(RunError::Timeout { name, limit: l.timeout, stderr: tail_text(&err_buf) });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    kill_group(&mut child, dir.path());
    set_stop(&stop);
    join_within(err_thread, grace);
    join_within(out_thread, grace);
    let stderr = tail_text(&err_buf);
    if let Some(sig) = status.signal() {
        return Err(RunError::Crashed { name, signal: signal_name(sig), stderr });
    }
    if let Some(code) = status.code().filter(|&c| c != 0) {
        return Err(RunError::Failed { name, code, stderr });
    }
    let mut procs = Vec::new();
    for (pid, r) in f.done {
        match r {
            Ok(p) => procs.push(p),
            // A process that exited before we could connect (its socket was already removed)
            // recorded nothing we could read; it is only an error if nothing attached at all.
            Err(e) if e.process_gone() => {}
            Err(e) => return Err(RunError::Reader { name, pid, message: e.to_string() }),
        }
    }
    if procs.is_empty() {
        return Err(RunError::ExitedBeforeAttach { name, stderr });
    }
    if let Some(p) = procs.iter().find(|p| !p.exited_cleanly) {
        return Err(RunError::NoCleanup { name, pid: p.pid });
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let gated: Vec<GateResult> = gate.into_iter().flat_map(|g| g.finish()).collect();
    Ok(assemble(&name, wall_s, procs, &gated, tail_text(&out_buf)))
}

type Follower = (u32, JoinHandle<Result<ProcessData, FollowError>>);

/// The per-process reader threads of one run.
struct Followers {
    seen: HashSet<PathBuf>,
    running: Vec<Follower>,
    done: Vec<(u32, Result<ProcessData, FollowError>)>,
}

impl Followers {
    /// Starts a reader thread for every new `<pid>.sock`.
    fn scan(&mut self, dir: &Path, attach_timeout: Duration, stop: &Arc<Mutex<bool>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "sock") && self.seen.insert(p.clone()) {
                let pid = p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).unwrap_or(0);
                let stop = stop.clone();
                self.running.push((pid, std::thread::spawn(move || follow_process(p, attach_timeout, stop))));
            }
        }
    }

    /// Joins finished threads; returns the first real failure (a process that was gone before
    /// it could be attached is not one yet: see [`FollowError::process_gone`]).
    fn collect_finished(&mut self) -> Option<(u32, FollowError)> {
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].1.is_finished() {
                let (pid, h) = self.running.swap_remove(i);
                match h.join().unwrap_or(Err(FollowError::Panicked)) {
                    Err(e) if !e.process_gone() => return Some((pid, e)),
                    r => self.done.push((pid, r)),
                }
            } else {
                i += 1;
            }
        }
        None
    }

    /// Processes seen so far (attached or attaching).
    fn attached(&self) -> usize {
        self.running.len() + self.done.iter().filter(|(_, r)| r.is_ok()).count()
    }
}

/// One checkpoint merged over the processes of a run: `(ns, count)` cells, exact sum, min, max.
struct Merged {
    run: CheckpointRun,
    /// The probe's aggregates (every call, also at level Lite), in ns.
    agg_sum_ns: f64,
    agg_min_ns: f64,
    agg_max_ns: f64,
    cells: Vec<(f64, u64)>,
    sum_ns: f64,
    min_ns: f64,
    max_ns: f64,
}

impl Merged {
    fn new() -> Merged {
        Merged {
            run: CheckpointRun { count: 0, lost: 0, clamped: 0, summary: None, totals: None },
            agg_sum_ns: 0.0,
            agg_min_ns: f64::INFINITY,
            agg_max_ns: f64::NEG_INFINITY,
            cells: Vec::new(),
            sum_ns: 0.0,
            min_ns: f64::INFINITY,
            max_ns: f64::NEG_INFINITY,
        }
    }
}

/// Merges processes by checkpoint name and converts ticks to nanoseconds.
fn assemble(name: &str, wall_s: f64, procs: Vec<ProcessData>, gated: &[GateResult], stdout_tail: String) -> RunOutput {
    let tick_hz = procs[0].tick_hz;
    let floor_ns = procs[0].floor_ticks as f64 * 1e9 / tick_hz;
    let mut merged: BTreeMap<String, Merged> = BTreeMap::new();
    let mut deep: BTreeMap<String, Vec<(f64, f64, u64)>> = BTreeMap::new();
    let mut bad_index = 0;
    for p in &procs {
        bad_index += p.bad_index;
        let ns_per_tick = 1e9 / p.tick_hz;
        for (i, cp) in p.names.iter().enumerate() {
            if let Some(Some(counts)) = p.deep.get(i) {
                let buckets = deep.entry(cp.clone()).or_default();
                for (b, &n) in counts.iter().enumerate().filter(|&(_, &n)| n > 0) {
                    // A bucket holds ticks low..=high: as ns, [low, high + 1).
                    let lo = funcscope::layout::hist_bucket_low(b) as f64 * ns_per_tick;
                    let hi = (funcscope::layout::hist_bucket_high(b) + 1) as f64 * ns_per_tick;
                    buckets.push((lo, hi, n));
                }
            }
            let e = merged.entry(cp.clone()).or_insert_with(Merged::new);
            e.run.count += p.aggregates[i].count;
            e.run.clamped += p.aggregates[i].clamped;
            e.run.lost += p.counts[i].lost();
            let a = &p.aggregates[i];
            if let (true, Some(lo)) = (a.count > 0, a.min) {
                e.agg_sum_ns += a.sum as f64 * ns_per_tick;
                e.agg_min_ns = e.agg_min_ns.min(lo as f64 * ns_per_tick);
                e.agg_max_ns = e.agg_max_ns.max(a.max as f64 * ns_per_tick);
            }
            let t = &p.samples[i];
            e.cells.extend(t.cells().map(|(v, c)| (v * ns_per_tick, c)));
            e.sum_ns += t.sum() as f64 * ns_per_tick;
            if let Some((lo, hi)) = t.min_max() {
                e.min_ns = e.min_ns.min(lo as f64 * ns_per_tick);
                e.max_ns = e.max_ns.max(hi as f64 * ns_per_tick);
            }
        }
    }
    // Uprobe and event-pair checkpoints: durations already in ns, every call paired (exact
    // aggregates); kernel losses make the run lossy.
    for g in gated {
        let mut t = TickCounts::default();
        for &d in &g.durations_ns {
            t.record(d);
        }
        let e = merged.entry(g.checkpoint.clone()).or_insert_with(Merged::new);
        e.run.count += t.count();
        e.run.lost += g.lost;
        e.cells.extend(t.cells());
        e.sum_ns += t.sum() as f64;
        e.agg_sum_ns += t.sum() as f64;
        if let Some((lo, hi)) = t.min_max() {
            e.min_ns = e.min_ns.min(lo as f64);
            e.max_ns = e.max_ns.max(hi as f64);
            e.agg_min_ns = e.agg_min_ns.min(lo as f64);
            e.agg_max_ns = e.agg_max_ns.max(hi as f64);
        }
    }
    let mut checkpoints = BTreeMap::new();
    let mut pooled = BTreeMap::new();
    for (cp, mut m) in merged {
        // Processes of one tick frequency give equal ns values for equal ticks: one cell each.
        m.cells.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut cells: Vec<(f64, u64)> = Vec::with_capacity(m.cells.len());
        for (v, c) in m.cells {
            match cells.last_mut() {
                Some(last) if last.0 == v => last.1 += c,
                _ => cells.push((v, c)),
            }
        }
        let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant figures is valid");
        for &(v, c) in &cells {
            let _ = h.record_n((v * POOL_UNITS_PER_NS).round().max(1.0) as u64, c);
        }
        let n: u64 = cells.iter().map(|&(_, c)| c).sum();
        // Tick counters are coarse (10 ns steps on AMD Zen): grid-aware percentiles, see
        // stats::grouped_quantile_sorted.
        m.run.summary = RunSummary::from_grid_cells(&cells, m.min_ns, m.max_ns, m.sum_ns / n.max(1) as f64).ok();
        if m.run.count > 0 && m.agg_min_ns <= m.agg_max_ns {
            let mean_ns = (m.agg_sum_ns / m.run.count as f64).clamp(m.agg_min_ns, m.agg_max_ns);
            m.run.totals = Some(Totals { sum_ns: m.agg_sum_ns, min_ns: m.agg_min_ns, max_ns: m.agg_max_ns, mean_ns });
        }
        checkpoints.insert(cp.clone(), m.run);
        pooled.insert(cp, h);
    }
    RunOutput {
        result: RunResult {
            scenario: name.to_owned(),
            wall_s,
            processes: procs.len(),
            tick_hz,
            floor_ns,
            bad_index,
            checkpoints,
        },
        pooled,
        deep,
        stdout_tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_messages_are_rounded_to_the_millisecond() {
        let e = RunError::NeverAttached {
            name: "x".into(),
            waited: Duration::from_secs_f64(2.999999795),
            stderr: String::new(),
        };
        assert!(e.to_string().contains("within 3 s ("), "{e}");
        let e = RunError::Timeout { name: "x".into(), limit: Duration::from_millis(2500), stderr: String::new() };
        assert!(e.to_string().contains("after 2.5 s;"), "{e}");
    }
}
