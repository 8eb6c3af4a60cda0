//! `events` on real tracepoints of this kernel, with small C programs (tests/events_fixture,
//! built here with cc): exact read counts and latencies at least the programmed delays, wakeup
//! latency of a sleeper, a kernel filter that provably reduces what reaches user space, unpaired
//! events, and the errors (bad selector, bad filter, unknown field, no privilege). Tests skip,
//! saying why, when cc is missing or the kernel refuses perf_event_open.

#[allow(dead_code)] // only `text` is used here
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use funcscope_harness::events::profilers::multi_trace::MultiTrace;
use funcscope_harness::events::profilers::top::Top;
use funcscope_harness::events::profilers::trace::Trace;
use funcscope_harness::events::{self, EventsError, Options, Outcome, Profiler, Scope};

/// The fixture directory with `reads` and `sleeper`, or None (and why) when cc is missing.
fn fixture() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events_fixture");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("events-fixture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        for (out, file, extra) in [
            ("reads", "reads.c", "-pthread"),
            ("sleeper", "sleeper.c", "-Wall"),
            ("stacky", "stacky.c", "-fno-omit-frame-pointer"),
        ] {
            let st = Command::new("cc")
                .args(["-O2", extra, "-o", out, src.join(file).to_str().unwrap()])
                .current_dir(&dir)
                .status();
            match st {
                Err(e) => {
                    eprintln!("SKIP: no C compiler (cc: {e}); the events tests need one");
                    return None;
                }
                Ok(s) => assert!(s.success(), "building {out} failed"),
            }
        }
        Some(dir)
    })
    .as_deref()
}

fn opts(selectors: &[&str], scope: Scope) -> Options {
    Options {
        selectors: selectors.iter().map(|s| s.to_string()).collect(),
        scope,
        ring_pages: 256,
        interval: None,
        duration: None,
        uprobes: Vec::new(),
    }
}

fn launch(dir: &Path, prog: &str, args: &[&str]) -> Scope {
    Scope::Launch { program: dir.join(prog).display().to_string(), args: args.iter().map(|a| a.to_string()).collect() }
}

/// The `stack` of every JSON line `trace` printed.
fn json_stacks(lines: &str) -> Vec<Vec<String>> {
    lines
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["stack"].as_array().expect("a stack").iter().map(|f| f.as_str().unwrap().to_owned()).collect()
        })
        .collect()
}

/// Runs a session; None (after saying why) when the kernel refuses tracepoints here.
fn session(o: &Options, p: &mut dyn Profiler, stop: &AtomicBool) -> Option<(Outcome, String)> {
    let mut out = Vec::new();
    match events::run(o, p, stop, &mut out) {
        Ok(r) => Some((r, String::from_utf8(out).unwrap())),
        Err(e @ (EventsError::Privilege { .. } | EventsError::TraceFs(_))) => {
            eprintln!("SKIP: tracepoints are not available here: {e}");
            None
        }
        Err(e) => panic!("events failed: {e}"),
    }
}

const READS: u64 = 12;
const DELAY_MS: u64 = 4;

#[test]
fn read_latency_by_tid_counts_every_read_and_is_at_least_the_delay() {
    let Some(dir) = fixture() else { return };
    let o = opts(
        &["syscalls:sys_enter_read/count == 77/", "syscalls:sys_exit_read"],
        launch(dir, "reads", &[&READS.to_string(), &DELAY_MS.to_string()]),
    );
    let mut mt = MultiTrace::new("tid", false);
    let svg = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("events-heatmap-{}.svg", std::process::id()));
    mt.heatmap = Some((svg.clone(), 10_000_000));
    let Some((r, text)) = session(&o, &mut mt, &AtomicBool::new(false)) else { return };
    assert_eq!(r.exit_code, Some(0), "{text}");
    // The heat map holds every pair: its cells' counts (the <title>s) add up to the reads.
    let map = std::fs::read_to_string(&svg).expect("the heat map was written");
    let in_cells: u64 =
        map.split("<title>").skip(1).map(|t| t.split('<').next().unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(in_cells, READS, "{map}");
    let _ = std::fs::remove_file(&svg);
    assert_eq!(r.stats.lost, 0);
    let p = &mt.pairs[0];
    assert_eq!(p.stats.count, READS, "{text}");
    assert!(p.stats.min_ns >= DELAY_MS * 1_000_000, "a read shorter than the writer's delay: {text}");
    // The writer thread's and the loader's reads were filtered out at entry: their exits are the
    // unpaired ends, reported with examples; no start is left without its end.
    assert!(p.unpaired_ends > 0 && !p.end_examples.is_empty(), "{text}");
    assert_eq!((p.unpaired_starts, p.open_at_end, p.dropped_by_loss), (0, 0, 0), "{text}");
    assert!(text.contains("count 12") && text.contains("ends without a start"), "{text}");
}

/// A function as events: `--uprobe rd=libc.so.6:read` gives `uprobe:rd` (with the arguments)
/// and `uprobe:rd_return` (with the return value), paired per thread like tracepoints; the
/// entry filter on the third argument keeps only the main thread's 77-byte reads.
#[test]
fn a_uprobe_pair_times_a_library_function_with_its_arguments() {
    let Some(dir) = fixture() else { return };
    let mut o = opts(
        &["uprobe:rd/arg3 == 77/", "uprobe:rd_return"],
        launch(dir, "reads", &[&READS.to_string(), &DELAY_MS.to_string()]),
    );
    o.uprobes = vec!["rd=libc.so.6:read".into()];
    let mut mt = MultiTrace::new("tid", false);
    let Some((r, text)) = session(&o, &mut mt, &AtomicBool::new(false)) else { return };
    assert_eq!(r.exit_code, Some(0), "{text}");
    let p = &mt.pairs[0];
    assert_eq!(p.stats.count, READS, "{text}");
    assert!(p.stats.min_ns >= DELAY_MS * 1_000_000, "a read shorter than the writer's delay: {text}");
    assert!(text.contains("uprobe:rd -> uprobe:rd_return"), "{text}");
    // The session's events are gone from tracefs once it ends.
    let left = std::fs::read_to_string("/sys/kernel/tracing/uprobe_events").unwrap_or_default();
    assert!(!left.contains(&format!("funcscope_{}/rd", std::process::id())), "{left}");

    // The arguments and the return value are fields: printed by trace.
    let mut o = opts(&["uprobe:rd/arg3 == 77/", "uprobe:rd_return/ret == 1/"], launch(dir, "reads", &["2", "1"]));
    o.uprobes = vec!["rd=libc.so.6:read".into()];
    let mut tr = Trace::new(false);
    let Some((_, text)) = session(&o, &mut tr, &AtomicBool::new(false)) else { return };
    assert_eq!(text.matches("uprobe:rd: ").count(), 2, "{text}");
    assert_eq!(text.matches("arg3=77").count(), 2, "{text}");
    assert_eq!(text.matches("ret=1\n").count(), 2, "{text}");

    // A selector naming a uprobe the session did not create, and a symbol that does not exist.
    let o = opts(&["uprobe:nothere"], launch(dir, "reads", &["1", "1"]));
    let e = events::run(&o, &mut Trace::new(false), &AtomicBool::new(false), &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("--uprobe nothere=FILE:SYMBOL"), "{e}");
    let mut o = opts(&["uprobe:x"], launch(dir, "reads", &["1", "1"]));
    o.uprobes = vec!["x=libc.so.6:no_such_function_here".into()];
    let e = events::run(&o, &mut Trace::new(false), &AtomicBool::new(false), &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("no_such_function_here"), "{e}");
}

#[test]
fn a_kernel_filter_reduces_the_records_that_reach_user_space() {
    let Some(dir) = fixture() else { return };
    let args = ["5", "1"];
    let mut all = Trace::new(true);
    let Some((unfiltered, _)) =
        session(&opts(&["syscalls:sys_enter_read"], launch(dir, "reads", &args)), &mut all, &AtomicBool::new(false))
    else {
        return;
    };
    let mut some = Trace::new(true);
    let (filtered, lines) = session(
        &opts(&["syscalls:sys_enter_read/count == 77/"], launch(dir, "reads", &args)),
        &mut some,
        &AtomicBool::new(false),
    )
    .unwrap();
    // Exactly the program's 5 reads of 77 bytes arrive; without the filter, the writer's /proc
    // reads and the loader's reads arrive too.
    assert_eq!(filtered.stats.samples, 5, "{lines}");
    assert!(
        unfiltered.stats.samples > filtered.stats.samples + 5,
        "{} vs {}",
        unfiltered.stats.samples,
        filtered.stats.samples
    );
    for l in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("JSON lines");
        assert_eq!(v["event"], "syscalls:sys_enter_read");
        assert_eq!(v["fields"]["count"], 77, "{l}");
    }
}

/// A profiler that forwards to another and raises `armed` at its first interval: the events are
/// open and enabled by then, so a workload started after it is traced from its first event.
struct Armed<'a> {
    inner: &'a mut dyn Profiler,
    armed: Arc<AtomicBool>,
}

impl Profiler for Armed<'_> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn init(&mut self, events: &[events::EventDesc]) -> Result<(), EventsError> {
        self.inner.init(events)
    }
    fn filter(&self, ev: &events::EventDesc) -> Option<String> {
        self.inner.filter(ev)
    }
    fn sample(
        &mut self,
        ev: &[events::EventDesc],
        s: &events::Sample,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        self.inner.sample(ev, s, out)
    }
    fn lost(&mut self, time_ns: u64, count: u64) {
        self.inner.lost(time_ns, count)
    }
    fn interval(&mut self, _: &[events::EventDesc], _: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.armed.store(true, Ordering::Relaxed);
        Ok(())
    }
    fn deinit(
        &mut self,
        ev: &[events::EventDesc],
        stats: &events::StreamStats,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        self.inner.deinit(ev, stats, out)
    }
}

/// Runs `f` with the calling thread pinned to `cpu` (a child spawned in `f` inherits the pin),
/// then restores the thread's mask.
fn on_cpu<T>(cpu: usize, f: impl FnOnce() -> T) -> T {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    let me = nix::unistd::Pid::from_raw(0);
    let old = sched_getaffinity(me).expect("the thread's CPU mask");
    let mut set = CpuSet::new();
    set.set(cpu).expect("a CPU number within the mask's size");
    sched_setaffinity(me, &set).expect("pinning the thread");
    let r = f();
    sched_setaffinity(me, &old).expect("restoring the thread's mask");
    r
}

#[test]
fn wakeup_to_switch_latency_of_a_sleeper() {
    let Some(dir) = fixture() else { return };
    // The wakeup is raised by whoever wakes the task (a timer interrupt on any CPU), so this
    // traces the whole system, filtered in the kernel to the sleeper's pid. The sleeper waits for
    // a byte on stdin, sent once the events are enabled: a fixed head start lost the race on a
    // loaded machine (a whole session traced after the sleeps were over).
    //
    // Why a spinner: on a quiet machine of this VM kind, about one run in two saw only the first
    // of the sleeper's wakeups paired (count 1): when the sleeper's CPU was otherwise idle, its
    // wakeups went through a path whose sched_wakeup/sched_switch records this session did not
    // see (on a busy machine every run passed). With a busy thread pinned to the sleeper's CPU,
    // and the sleeper pinned there too, every wakeup puts the sleeper on a busy CPU and is
    // followed by a switch from the spinner to it, as on a loaded machine: the test no longer
    // depends on how busy the machine happens to be.
    let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).expect("this thread's CPU mask");
    let cpu = (0..nix::sched::CpuSet::count()).rfind(|&c| cpus.is_set(c).unwrap_or(false)).expect("a CPU");
    let spinning = Arc::new(AtomicBool::new(true));
    let spinner = {
        let spinning = spinning.clone();
        std::thread::spawn(move || {
            on_cpu(cpu, || {
                while spinning.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
    };
    let mut child = on_cpu(cpu, || {
        Command::new(dir.join("sleeper"))
            .args(["-", "10", "5"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("start sleeper")
    });
    let pid = child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let armed = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (stop, armed) = (stop.clone(), armed.clone());
        std::thread::spawn(move || {
            let t0 = std::time::Instant::now();
            while !armed.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(5));
            }
            {
                use std::io::Write;
                let mut stdin = child.stdin.take().expect("piped stdin");
                let _ = stdin.write_all(b"g");
            }
            let _ = child.wait();
            // Let the last switch reach the rings before the final drain.
            std::thread::sleep(Duration::from_millis(20));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let mut o = opts(
        &[
            &format!("sched:sched_wakeup/pid == {pid}/key=pid/"),
            &format!("sched:sched_switch/next_pid == {pid}/key=next_pid/"),
        ],
        Scope::System,
    );
    o.interval = Some(Duration::from_millis(10));
    let mut mt = MultiTrace::new("tid", false);
    let got = session(&o, &mut Armed { inner: &mut mt, armed: armed.clone() }, &stop);
    if got.is_none() {
        armed.store(true, Ordering::Relaxed);
    }
    waiter.join().unwrap();
    spinning.store(false, Ordering::Relaxed);
    spinner.join().unwrap();
    let Some((_, text)) = got else { return };
    let p = &mt.pairs[0];
    // 10 sleeps, each one wakeup then one switch to the sleeper, plus the wakeup from the read
    // of stdin.
    assert!((10..=11).contains(&p.stats.count), "{text}");
    assert!(p.stats.max_ns < 1_000_000_000, "{text}");
    assert!(p.stats.mean_ns() > 0.0);
}

#[test]
fn errors_name_the_problem_and_the_fix() {
    let Some(dir) = fixture() else { return };
    let run = |sel: &[&str]| {
        let mut t = Trace::new(false);
        events::run(&opts(sel, launch(dir, "reads", &["1", "0"])), &mut t, &AtomicBool::new(false), &mut Vec::new())
    };
    match run(&["syscalls:sys_enter_read/fd == 3"]) {
        Err(EventsError::Selector(e)) => assert!(e.to_string().contains("not closed by '/'"), "{e}"),
        other => panic!("{other:?}"),
    }
    let e = run(&["syscalls:sys_enter_raed"]).unwrap_err();
    assert!(matches!(e, EventsError::NoEvent { .. }) && e.to_string().contains("events list"), "{e}");
    if matches!(e, EventsError::TraceFs(_)) {
        eprintln!("SKIP: no tracefs: {e}");
        return;
    }
    let e = run(&["syscalls:sys_enter_read/bogus == 3/"]).unwrap_err();
    assert!(
        matches!(&e, EventsError::UnknownField { field, .. } if field == "bogus") && e.to_string().contains("count"),
        "{e}"
    );
    let mut mt = MultiTrace::new("tid", false);
    let o = opts(&["syscalls:sys_enter_read//key=nope/", "syscalls:sys_exit_read"], launch(dir, "reads", &["1", "0"]));
    let e = events::run(&o, &mut mt, &AtomicBool::new(false), &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("no field \"nope\" (used by key=)"), "{e}");
    // A filter whose fields exist but whose syntax the kernel refuses: the kernel's reason.
    match run(&["syscalls:sys_enter_read/fd = = 3/"]) {
        Err(EventsError::Filter { reason, .. }) => {
            assert!(reason.contains("parse_error: Invalid operator"), "{reason}")
        }
        Err(e @ EventsError::Privilege { .. }) => eprintln!("SKIP: {e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_privilege_the_error_says_root() {
    let Some(dir) = fixture() else { return };
    if !nix::unistd::geteuid().is_root() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIP: needs root and setpriv to run events as an unprivileged user");
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(env!("CARGO_BIN_EXE_funcscope"))
        .args(["events", "trace", "-e", "syscalls:sys_enter_read", "--"])
        .arg(dir.join("reads"))
        .args(["1", "0"])
        .output()
        .expect("run setpriv");
    let text = common::text(&out);
    if String::from_utf8_lossy(&out.stderr).contains("setpriv:") {
        eprintln!("SKIP: setpriv could not drop privileges here:\n{text}");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("root"), "the error says root: {text}");
}

#[test]
fn list_shows_events_and_their_fields() {
    let mut out = Vec::new();
    match events::list("sched:sched_switch", true, &mut out) {
        Ok(n) => assert!(n >= 1),
        Err(e) => {
            eprintln!("SKIP: {e}");
            return;
        }
    }
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("sched:sched_switch\n"), "{text}");
    for f in ["prev_comm", "next_pid", "char[16]"] {
        assert!(text.contains(f), "{text}");
    }
}

#[test]
fn top_counts_and_sums_per_tid() {
    let Some(dir) = fixture() else { return };
    let o = opts(&["syscalls:sys_enter_read/count == 77/top-add=count/"], launch(dir, "reads", &["7", "0"]));
    let mut top = Top::new("tid");
    let Some((_, text)) = session(&o, &mut top, &AtomicBool::new(false)) else { return };
    // One thread made all the 77-byte reads.
    assert_eq!(top.total.len(), 1, "{text}");
    let row = top.total.values().next().unwrap();
    assert_eq!((row.counts[0], row.sums[0][0]), (7, 7 * 77), "{text}");
    assert!(text.contains("syscalls:sys_enter_read.count"), "{text}");
}

#[test]
fn stacks_name_kernel_functions_and_user_files() {
    let Some(dir) = fixture() else { return };
    let mut child = Command::new(dir.join("sleeper")).args(["300", "10", "50"]).spawn().expect("start sleeper");
    let pid = child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let waiter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = child.wait();
            stop.store(true, Ordering::Relaxed);
        })
    };
    let o =
        opts(&[&format!("sched:sched_switch/prev_pid == {pid} && prev_state == 1/stack/max-stack=32/")], Scope::System);
    let mut t = Trace::new(true);
    let got = session(&o, &mut t, &stop);
    waiter.join().unwrap();
    let Some((_, lines)) = got else { return };
    let stacks = json_stacks(&lines);
    assert!(!stacks.is_empty(), "no switch of the sleeper");
    // Switches out to sleep (state S; a preemption could come from anywhere): the kernel's
    // scheduler, called from the nanosleep in libc. User frames are named from /proc/PID/maps,
    // read at the first sample the harness handles: while the sleeper still lives (it sleeps
    // 10 more times after that), so some stack names libc.
    assert!(
        stacks.iter().all(|fr| fr.iter().any(|f| f.starts_with("schedule+") || f.starts_with("__schedule+"))),
        "{stacks:?}"
    );
    assert!(stacks.iter().any(|fr| fr.iter().any(|f| f.contains("libc"))), "{stacks:?}");
}

#[test]
fn ctrl_c_ends_cleanly_with_the_final_report() {
    let Some(dir) = fixture() else { return };
    let child = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args([
            "events",
            "multi-trace",
            "-e",
            "syscalls:sys_enter_read/count == 77/",
            "-e",
            "syscalls:sys_exit_read",
            "--",
        ])
        .arg(dir.join("reads"))
        .args(["1000", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start funcscope");
    std::thread::sleep(Duration::from_millis(700));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = common::text(&out);
    if text.contains("need root") || text.contains("not readable") {
        eprintln!("SKIP: {text}");
        return;
    }
    // Interrupted before the command's end: exit 0 (the command was ended by funcscope) and the
    // report of the reads so far.
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("syscalls:sys_enter_read -> syscalls:sys_exit_read") && text.contains("count "), "{text}");
}

#[test]
fn the_benchmark_counts_every_event_of_its_workload() {
    if fixture().is_none() {
        return;
    }
    let mut out = Vec::new();
    let rows = match events::bench::run(3000, 1, 1024, &mut out) {
        Ok(r) => r,
        Err(e @ (EventsError::Privilege { .. } | EventsError::TraceFs(_))) => {
            eprintln!("SKIP: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let text = String::from_utf8(out).unwrap();
    let fs = rows.iter().find(|r| r.tool == "funcscope events").expect("a funcscope row");
    // dd's 3000 one-byte reads, plus the few of its start (locale, libc).
    assert!(fs.events.is_some_and(|n| (3000..3100).contains(&n)), "{text}");
    assert_eq!(fs.lost, Some(0), "{text}");
    assert!(text.contains("cost/event"), "{text}");
}

#[test]
fn user_frames_are_named_by_function_symbol() {
    let Some(dir) = fixture() else { return };
    // stacky reads 55 bytes through named_reader() -> read_once() -> read(), 8 times 30 ms apart:
    // it lives well past the first sample the harness handles, when its maps are read.
    let o = opts(&["syscalls:sys_enter_read/count == 55/stack/"], launch(dir, "stacky", &["8", "30"]));
    let mut t = Trace::new(true);
    let Some((r, lines)) = session(&o, &mut t, &AtomicBool::new(false)) else { return };
    assert_eq!(r.exit_code, Some(0), "{lines}");
    let stacks = json_stacks(&lines);
    assert_eq!(stacks.len(), 8, "{lines}");
    // The fixture's own function, by its .symtab name, with the offset into it and the file:
    // `named_reader+0x.. (/path/to/stacky)`. Before symbolization this frame read
    // `/path/to/stacky+0x1234`, which this assertion rejects.
    let exe = dir.join("stacky").display().to_string();
    for fr in &stacks {
        assert!(fr.iter().any(|f| f.starts_with("named_reader+0x") && f.ends_with(&format!("({exe})"))), "{fr:?}");
        // The innermost user frame is libc's read wrapper, named from libc's symbols.
        assert!(fr.iter().any(|f| f.contains("read") && f.contains("libc")), "{fr:?}");
    }
}

#[test]
fn interval_reports_appear_at_the_interval_and_split_the_events() {
    let Some(dir) = fixture() else { return };
    // 20 reads, each lasting at least 25 ms (the writer's delay): a run of at least 500 ms,
    // reported every 50 ms, so about 10 interval tables; at least 4 are asked for (generous:
    // a loaded machine may run late, and late reports are caught up, never skipped).
    let mut o = opts(&["syscalls:sys_enter_read/count == 77/"], launch(dir, "reads", &["20", "25"]));
    o.interval = Some(Duration::from_millis(50));
    let mut top = Top::new("tid");
    let Some((r, text)) = session(&o, &mut top, &AtomicBool::new(false)) else { return };
    assert!(r.elapsed >= Duration::from_millis(500), "{:?}", r.elapsed);
    let (periodic, _) = text.split_once("whole run:").expect("the final report");
    let headers = periodic.lines().filter(|l| l.trim_start().starts_with("TID ")).count();
    assert!(headers >= 4, "{headers} interval reports in {:?}:\n{text}", r.elapsed);
    // Each interval table holds only its own interval's reads (a table that kept the earlier
    // ones would sum past 20); the reads after the last interval are in the whole run's only.
    let in_intervals: u64 = periodic
        .lines()
        .filter(|l| !l.trim_start().starts_with("TID ") && !l.trim().is_empty())
        .map(|l| l.split_whitespace().nth(1).expect("a count column").parse::<u64>().expect("a count"))
        .sum();
    assert!((1..=20).contains(&in_intervals), "{in_intervals} reads in the interval tables:\n{text}");
}
