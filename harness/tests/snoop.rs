//! `snoop` on a real C program (tests/snoop_fixture, built here with cc): exact call counts,
//! recursion, a sleeper, threads, a forked child, a shared library, arguments and return values,
//! attaching to a pid, and the resolution errors. Tests that need uprobes skip, saying why, when
//! the kernel refuses them (no privilege, no uprobe PMU); all skip when cc is missing.

#[allow(dead_code)] // only `text` is used here
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;
use std::time::Duration;

use funcscope_harness::snoop::{self, elf::Prologue, FuncStats, Options, Scope, SnoopError};

/// The fixture's directory with `prog` and `libsnooplib.so`, or None (and why) when cc is missing.
fn fixture() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snoop_fixture");
        // Under the target directory (removed by cargo clean), per test process.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("snoop-fixture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let cc = |args: &[&str]| Command::new("cc").args(args).current_dir(&dir).status();
        let lib = cc(&["-O2", "-fPIC", "-shared", "-o", "libsnooplib.so", src.join("lib.c").to_str().unwrap()]);
        match lib {
            Err(e) => {
                eprintln!("SKIP: no C compiler (cc: {e}); the snoop tests need one");
                return None;
            }
            Ok(s) => assert!(s.success(), "building libsnooplib.so failed"),
        }
        let rpath = format!("-Wl,-rpath,{}", dir.display());
        let prog = src.join("prog.c");
        let st = cc(&["-O2", "-pthread", "-o", "prog", prog.to_str().unwrap(), "-L.", "-lsnooplib", &rpath]).unwrap();
        assert!(st.success(), "building prog failed");
        let st = Command::new("strip").args(["-o", "prog.stripped", "prog"]).current_dir(&dir).status();
        if !st.is_ok_and(|s| s.success()) {
            eprintln!("note: strip is missing; the stripped-binary test will skip");
        }
        Some(dir)
    })
    .as_deref()
}

fn target(dir: &Path, file: &str, sym: &str) -> String {
    format!("{}:{sym}", dir.join(file).display())
}

/// Runs snoop; None (after saying why) when the kernel refuses uprobes here.
fn snoop(targets: Vec<String>, scope: Scope) -> Option<snoop::Outcome> {
    snoop_with(targets, scope, 256)
}

fn snoop_with(targets: Vec<String>, scope: Scope, ring_pages: usize) -> Option<snoop::Outcome> {
    let opts = Options { targets, names: Vec::new(), scope, ring_pages, interval: None, keep_calls: true, slow: None };
    match snoop::run(&opts, &AtomicBool::new(false), &mut |_| {}) {
        Ok(o) => Some(o),
        Err(e @ (SnoopError::Privilege { .. } | SnoopError::Perf(_))) => {
            eprintln!("SKIP: uprobes are not available here: {e}");
            None
        }
        Err(e) => panic!("snoop failed: {e}"),
    }
}

fn func<'a>(o: &'a snoop::Outcome, name: &str) -> &'a FuncStats {
    o.summary.funcs.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no stats for {name}"))
}

#[test]
fn a_launched_program_is_measured_exactly() {
    let Some(dir) = fixture() else { return };
    let names = ["add3", "push_fn", "recurse", "sleeper", "worker_fn", "child_fn"];
    let mut targets: Vec<String> = names.iter().map(|n| target(dir, "prog", n)).collect();
    targets.push(target(dir, "libsnooplib.so", "lib_fn"));
    let prog = dir.join("prog").display().to_string();
    let Some(o) = snoop(targets, Scope::Launch { program: prog, args: vec![] }) else { return };
    assert_eq!(o.exit_code, Some(0));
    let p = &o.summary.pairing;
    assert_eq!((p.lost_records, p.gap_dropped, p.unmatched_returns, p.unreturned), (0, 0, 0, 0), "{p:?}");
    assert_eq!(o.summary.open_calls, 0);

    // Exact counts: push_fn calls add3 too (13 more).
    let counts: Vec<u64> = names.iter().map(|n| func(&o, n).count).collect();
    assert_eq!(counts, vec![113, 13, 6, 1, 200, 3]);
    assert_eq!(func(&o, "lib_fn").count, 7);

    // Arguments and return values: the first add3 call is add3(0, 2, 3) = 5.
    let first = func(&o, "add3").first.unwrap();
    assert_eq!((&first.args[..3], first.ret), (&[0, 2, 3][..], 5));
    let lib = func(&o, "lib_fn").first.unwrap();
    assert_eq!((lib.args[0], lib.ret), (0, 0));

    // Recursion: the first call to return is the innermost recurse(0) = 0; the longest is the
    // outermost recurse(5) = 5, which contains all the others.
    let rec = func(&o, "recurse");
    let (inner, outer) = (rec.first.unwrap(), rec.slowest.unwrap());
    assert_eq!((inner.args[0], inner.ret), (0, 0));
    assert_eq!((outer.args[0], outer.ret), (5, 5));
    assert!(outer.start_ns < inner.start_ns);

    // The sleeper measures at least its 20 ms sleep.
    assert!(func(&o, "sleeper").min_ns >= 20_000_000, "{:?}", func(&o, "sleeper"));

    // Threads and the forked child have their own ids.
    let main_pid = first.pid;
    assert_ne!(func(&o, "worker_fn").first.unwrap().tid, main_pid);
    assert_ne!(func(&o, "child_fn").first.unwrap().pid, main_pid);

    // Prologues are classified: push_fn starts with push %rbp, add3 (a leaf) does not.
    if cfg!(target_arch = "x86_64") {
        let pro = |n: &str| o.targets.iter().find(|t| t.name == n).unwrap().prologue;
        assert_eq!(pro("push_fn"), Prologue::Emulated);
        assert_eq!(pro("add3"), Prologue::SingleStepped);
    }
}

#[test]
fn attaching_to_a_running_process_follows_its_threads() {
    let Some(dir) = fixture() else { return };
    // The program sleeps 1.5 s before working: time enough to attach.
    let mut child = Command::new(dir.join("prog")).args(["wait", "1500"]).spawn().expect("start prog");
    std::thread::sleep(Duration::from_millis(100));
    let targets = vec![target(dir, "prog", "add3"), target(dir, "prog", "worker_fn")];
    let out = snoop(targets, Scope::Attach { pid: child.id() as i32 });
    let _ = child.wait();
    let Some(o) = out else { return };
    assert_eq!(func(&o, "add3").count, 113);
    assert_eq!(func(&o, "worker_fn").count, 200);
}

fn resolve_err(spec: &str) -> SnoopError {
    snoop::resolve(spec, None).expect_err(spec)
}

#[test]
fn a_missing_symbol_names_near_ones() {
    let Some(dir) = fixture() else { return };
    match resolve_err(&target(dir, "prog", "add")) {
        SnoopError::MissingSymbol { near, .. } => assert!(near.contains(&"add3".to_owned()), "{near:?}"),
        e => panic!("{e}"),
    }
}

#[test]
fn unusable_symbols_say_why() {
    let Some(dir) = fixture() else { return };
    assert!(matches!(resolve_err(&target(dir, "prog", "zero_size")), SnoopError::NoCode { .. }));
    assert!(matches!(resolve_err(&target(dir, "prog", "nanosleep")), SnoopError::Imported { .. }));
    assert!(matches!(resolve_err(&target(dir, "nonexistent-file", "f")), SnoopError::File { .. }));
    assert!(matches!(resolve_err("no-colon"), SnoopError::BadTarget { .. }));
    if dir.join("prog.stripped").is_file() {
        let e = resolve_err(&target(dir, "prog.stripped", "add3"));
        assert!(matches!(e, SnoopError::Stripped { .. }), "{e}");
    }
}

#[test]
fn offsets_match_the_file_bytes_of_the_symbol() {
    let Some(dir) = fixture() else { return };
    // Shared object and PIE: the offset goes through the PT_LOAD segment; the bytes there are the
    // function's first bytes (a push for push_fn).
    for (file, sym) in [("prog", "push_fn"), ("libsnooplib.so", "lib_fn")] {
        let t = snoop::resolve(&target(dir, file, sym), None).unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert!(t.size > 0 && (t.offset + t.size) as usize <= bytes.len(), "{t:?}");
        if cfg!(target_arch = "x86_64") && sym == "push_fn" {
            assert_eq!(bytes[t.offset as usize], 0x55, "push %rbp at {t:?}");
        }
    }
}

/// A FuncSnoop-layout target file (display names, a library per group, `custom_sym` in the
/// launched program), slow-call records, the JSON-lines stream and the final JSON report.
#[test]
fn target_files_slow_calls_and_json_outputs() {
    let Some(dir) = fixture() else { return };
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("targets.json");
    let lib = dir.join("libsnooplib.so");
    std::fs::write(
        &file,
        format!(
            r#"{{
  "libraries": {{ "mylib": {lib:?} }},
  "custom_sym": {{ "adder": "add3", "sleepy": "sleeper" }},
  "mylib": {{ "libfn": "lib_fn" }}
}}"#,
            lib = lib.display().to_string()
        ),
    )
    .unwrap();
    let lines = work.path().join("events.jsonl");
    let last = work.path().join("final.json");
    let out = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["snoop", "--config"])
        .arg(&file)
        .args(["--slow-us", "10000", "--slow-keep", "3", "--json-lines"])
        .arg(&lines)
        .arg("--json")
        .arg(&last)
        .arg("--")
        .arg(dir.join("prog"))
        .output()
        .expect("run funcscope snoop");
    let text = common::text(&out);
    if text.contains("perf_event_open refused") || text.contains("no uprobe PMU") {
        eprintln!("SKIP: uprobes are not available here:\n{text}");
        return;
    }
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Slow calls of sleepy: 1 at or above 10.00 ms"), "{text}");
    // sleeper(20): one slow call, its argument captured.
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&last).unwrap()).unwrap();
    assert_eq!(report["type"], "report");
    assert_eq!(report["final"], true);
    let f = |name: &str| report["functions"].as_array().unwrap().iter().find(|f| f["name"] == name).cloned().unwrap();
    assert_eq!(f("adder")["count"], 113);
    assert_eq!(f("libfn")["count"], 7);
    // (No claim that add3 has no slow call: a loaded machine can preempt any call for 10 ms.)
    assert!(f("adder")["slow"]["count"].as_u64().unwrap() <= 113);
    let slow = &f("sleepy")["slow"];
    assert_eq!(slow["count"], 1);
    assert_eq!(slow["slowest"][0]["args"][0], 20);
    assert!(slow["slowest"][0]["duration_ns"].as_u64().unwrap() >= 20_000_000, "{slow}");
    // The stream: every call as it came, then the final report, one JSON object per line.
    let stream = std::fs::read_to_string(&lines).unwrap();
    let events: Vec<serde_json::Value> = stream.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let calls_of = |name: &str| events.iter().filter(|e| e["type"] == "call" && e["func"] == name).count();
    assert_eq!((calls_of("adder"), calls_of("sleepy"), calls_of("libfn")), (113, 1, 7));
    let adder: Vec<&serde_json::Value> = events.iter().filter(|e| e["func"] == "adder").collect();
    // add3(i, 2, 3) = i + 5 for i in 0..100, then push_fn's add3(x, x, x).
    assert_eq!((adder[7]["args"][0].as_u64(), adder[7]["ret"].as_u64()), (Some(7), Some(12)));
    assert_eq!(events.last().unwrap(), &report);

    // A wrong file names itself, the line and the key.
    std::fs::write(&file, "{\n  \"mine\": {\n    \"f\": \"f\"\n  }\n}\n").unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["snoop", "--pid", "1", "--config"])
        .arg(&file)
        .output()
        .expect("run funcscope snoop");
    assert_eq!(bad.status.code(), Some(2), "{}", common::text(&bad));
    assert!(common::text(&bad).contains("targets.json:2: mine: no library for this group"), "{}", common::text(&bad));
}

#[test]
fn the_cli_prints_a_funclatency_report() {
    let Some(dir) = fixture() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["snoop", &target(dir, "prog", "sleeper"), "--"])
        .arg(dir.join("prog"))
        .output()
        .expect("run funcscope snoop");
    let text = common::text(&out);
    if text.contains("perf_event_open refused") || text.contains("no uprobe PMU") {
        eprintln!("SKIP: uprobes are not available here:\n{text}");
        return;
    }
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Function = sleeper"), "{text}");
    // The one 20 ms sleep lands in a row at or above 16384-32767 us: at least its sleep, however
    // late a loaded machine wakes it (a fixed row was a timed assertion: it failed about 1 run
    // in 12 under load, when the sleep overran 32.8 ms). The unit follows the longest call.
    let scale = if text.contains("usecs               : count     distribution") {
        1
    } else if text.contains("msecs               : count     distribution") {
        1000
    } else {
        panic!("no usecs or msecs histogram: {text}")
    };
    let rows: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|l| {
            let (range, rest) = l.split_once(':')?;
            let (low, _) = range.split_once("->")?;
            let count = rest.split_whitespace().next()?.parse::<u64>().ok()?;
            Some((low.trim().parse::<u64>().ok()? * scale, count))
        })
        .collect();
    let counted: Vec<u64> = rows.iter().filter(|r| r.1 > 0).map(|r| r.0).collect();
    assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), 1, "one call: {text}");
    assert!(counted[0] >= 16384, "a 20 ms sleep lands at or above the 16-32 ms row: {text}");

    assert!(!text.contains("dominated by the probe"), "one call in 20 ms: {text}");

    // 20000 back-to-back calls of a single-stepped function: the probes are most of the traced
    // time, and snoop says so. (It warns while a call really costs under 5x the estimate, ~77 us;
    // the measured cost is 15 us at load 5.)
    let hot = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["snoop", &target(dir, "prog", "add3"), "--"])
        .arg(dir.join("prog"))
        .args(["many", "20000"])
        .output()
        .expect("run funcscope snoop");
    let hot_text = common::text(&hot);
    assert!(hot.status.success(), "{hot_text}");
    assert!(hot_text.contains("starts with an instruction the kernel single-steps"), "{hot_text}");
    assert!(hot_text.contains("20000 calls in") && hot_text.contains("dominated by the probe"), "{hot_text}");

    let bad = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["snoop", &target(dir, "prog", "add"), "--", "true"])
        .output()
        .expect("run funcscope snoop");
    assert_eq!(bad.status.code(), Some(2), "{}", common::text(&bad));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("near names: add3"), "{}", common::text(&bad));
}

#[test]
fn lost_records_drop_calls_and_never_mispair() {
    let Some(dir) = fixture() else { return };
    // A one-page ring (~40 samples) against 20000 calls between drains 10 ms apart: the kernel
    // must drop records. add3(i, 2, 3) returns i + 5, so a call paired with another call's
    // return shows as a wrong return value.
    let prog = dir.join("prog").display().to_string();
    let scope = Scope::Launch { program: prog, args: vec!["many".into(), "20000".into()] };
    let Some(o) = snoop_with(vec![target(dir, "prog", "add3")], scope, 1) else { return };
    let p = o.summary.pairing;
    assert!(p.lost_records > 0, "no loss provoked: {p:?}");
    let add3: Vec<_> = o.calls.iter().filter(|c| c.func == 0).collect();
    assert!(!add3.is_empty());
    for c in &add3 {
        assert_eq!(c.ret, c.args[0] + 5, "mis-paired: {c:?}");
    }
    // Every call is paired, dropped for a gap, or lost with its entry or return.
    assert!(add3.len() as u64 + p.gap_dropped <= 20_000, "{} paired, {p:?}", add3.len());
    assert_eq!(o.summary.funcs[0].count, add3.len() as u64);
}

#[test]
fn sigint_detaches_and_prints_the_final_report() {
    let Some(dir) = fixture() else { return };
    // The program sleeps 30 s before its work and is interrupted during that sleep: the sleeper
    // call is still open, and the final report must still come, quickly, with exit code 0.
    let snoop = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["snoop", &target(dir, "prog", "sleeper"), "--"])
        .arg(dir.join("prog"))
        .args(["wait", "30000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run funcscope snoop");
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(snoop.id() as i32), nix::sys::signal::Signal::SIGINT)
        .expect("send SIGINT");
    let started = std::time::Instant::now();
    let out = snoop.wait_with_output().expect("wait for snoop");
    let text = common::text(&out);
    if text.contains("perf_event_open refused") || text.contains("no uprobe PMU") {
        eprintln!("SKIP: uprobes are not available here:\n{text}");
        return;
    }
    assert!(started.elapsed() < Duration::from_secs(20), "snoop did not stop on SIGINT: {text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Detaching..."), "{text}");
    assert!(text.contains("sleeper") && text.contains("1 calls still open at the end"), "{text}");
}

#[test]
fn without_privilege_the_error_names_what_is_missing() {
    let Some(dir) = fixture() else { return };
    if !nix::unistd::geteuid().is_root() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIP: needs root and setpriv to run snoop as an unprivileged user");
        return;
    }
    // As nobody, without capabilities (the fixture is world-readable under target/tmp).
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(env!("CARGO_BIN_EXE_funcscope"))
        .args(["snoop", &target(dir, "prog", "push_fn"), "--"])
        .arg(dir.join("prog"))
        .output()
        .expect("run setpriv");
    let text = common::text(&out);
    if String::from_utf8_lossy(&out.stderr).contains("setpriv:") {
        eprintln!("SKIP: setpriv could not drop privileges here:\n{text}");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{text}");
    for needle in ["root", "CAP_PERFMON", "perf_event_paranoid"] {
        assert!(text.contains(needle), "the error names {needle}: {text}");
    }
}

#[test]
fn events_left_by_a_killed_snoop_are_removed_by_the_next() {
    let Some(dir) = fixture() else { return };
    let events = Path::new("/sys/kernel/tracing/uprobe_events");
    // A pid that has just exited stands for a snoop killed with SIGKILL.
    let mut gone = Command::new("true").spawn().expect("run true");
    let dead = gone.id();
    gone.wait().expect("wait for true");
    let t = snoop::resolve(&target(dir, "prog", "push_fn"), None).unwrap();
    let line = format!("p:funcscope_{dead}/stale {}:{:#x}\n", t.path.display(), t.offset);
    let written = std::fs::OpenOptions::new().append(true).open(events).and_then(|mut f| {
        use std::io::Write;
        f.write_all(line.as_bytes())
    });
    if let Err(e) = written {
        eprintln!("SKIP: cannot create a tracefs uprobe event here ({}: {e})", events.display());
        return;
    }
    let prog = dir.join("prog").display().to_string();
    let Some(_) = snoop(vec![target(dir, "prog", "push_fn")], Scope::Launch { program: prog, args: vec![] }) else {
        return;
    };
    let left = std::fs::read_to_string(events).unwrap();
    assert!(!left.contains(&format!("funcscope_{dead}/")), "stale event kept:\n{left}");
}

#[test]
fn periodic_reports_come_at_the_interval() {
    let Some(dir) = fixture() else { return };
    // The program sleeps 1 s before working; reports every 200 ms meanwhile.
    let prog = dir.join("prog").display().to_string();
    let opts = Options {
        targets: vec![target(dir, "prog", "sleeper")],
        scope: Scope::Launch { program: prog, args: vec!["wait".into(), "1000".into()] },
        ring_pages: 16,
        interval: Some(Duration::from_millis(200)),
        keep_calls: false,
        names: Vec::new(),
        slow: None,
    };
    let mut reports = Vec::new();
    match snoop::run(&opts, &AtomicBool::new(false), &mut |s| reports.push(s.funcs[0].count)) {
        Ok(o) => assert_eq!(o.summary.funcs[0].count, 2, "the 1 s wait and the 20 ms sleep"),
        Err(e @ (SnoopError::Privilege { .. } | SnoopError::Perf(_))) => {
            eprintln!("SKIP: uprobes are not available here: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    }
    // ~5 reports in 1 s; a loaded machine may deliver fewer, never none.
    assert!(reports.len() >= 2, "{reports:?}");
    assert_eq!(reports[0], 0, "no call has returned 200 ms into a 1 s sleep: {reports:?}");
}

/// `snoop-cost` runs both functions' loops (single-stepped `empty`, push-prologue `push_first`)
/// unprobed and under snoop (and bpftrace where it is installed), `--repeats` times, and prints
/// one row per function and mode with a column per repeat; snoop pairs every call. No claim on
/// the numbers.
#[test]
fn snoop_cost_prints_the_side_by_side_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["snoop-cost", "--calls", "300", "--repeats", "2"])
        .output()
        .expect("run funcscope snoop-cost");
    let text = common::text(&out);
    if text.contains("perf_event_open refused") || text.contains("no uprobe PMU") {
        eprintln!("SKIP: uprobes are not available here:\n{text}");
        return;
    }
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("snoop paired 300 of 300 calls of empty").count(), 2, "{text}");
    assert_eq!(text.matches("snoop paired 300 of 300 calls of push_first").count(), 2, "{text}");
    // The compiler decides the prologues; on x86_64 these two are the two classes.
    if cfg!(target_arch = "x86_64") {
        assert!(text.contains("push_first = ") && text.contains("first instruction: Emulated"), "{text}");
        assert!(text.contains("first instruction: SingleStepped"), "{text}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = |f: &str, mode: &str| {
        stdout.lines().find(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.first() == Some(&f) && w.get(2) == Some(&mode)
        })
    };
    for f in ["empty", "push_first"] {
        for mode in ["unprobed", "snoop"] {
            // function, class, mode, 2 repeats, median, range
            let r = row(f, mode).unwrap_or_else(|| panic!("no {f} {mode} row:\n{text}"));
            assert_eq!(r.split_whitespace().count(), 7, "{r}");
        }
    }
    // bpftrace: rows where it is installed (or its failure said), a note where it is not.
    let installed = Path::new("/usr/bin/bpftrace").is_file() || Path::new("/usr/local/bin/bpftrace").is_file();
    if installed {
        assert!(row("empty", "bpftrace").is_some() || text.contains("bpftrace failed"), "{text}");
        assert!(row("empty", "bpftrace").is_none() || text.contains("empty: snoop / bpftrace added cost"), "{text}");
    } else {
        assert!(text.contains("bpftrace: not on PATH"), "{text}");
    }
}
