//! `snoop-cost`: what a uprobe costs per call on this machine, side by side in one invocation.
//!
//! The harness binary itself carries the measured loop ([`LOOP_SUBCOMMAND`], hidden): N calls of
//! [`empty`], an `#[inline(never)]` function that does nothing but return its argument, timed by
//! the loop itself and written to a file. The loop is run three ways, one after the other:
//! unprobed; under `snoop` (entry and return uprobes through `perf_event_open`); and, where
//! `bpftrace` is on `PATH` (Debian package `bpftrace`), under a bpftrace script doing the
//! same pairing in the kernel (`@start[tid]` at entry, `hist()` of the difference at return).
//! The added cost per call is the probed time per call minus the unprobed one.
//!
//! The first instruction of [`empty`] decides the kernel's path (emulated `push`/`nop` or
//! single-stepped, see `snoop::elf::Prologue`): it is printed, since it can change the cost
//! ~10x on this VM kind (machine-facts.md: 1.9 us vs 10-12 us per entry + return).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::exit_code;
use crate::snoop::{self, Scope};

/// The hidden subcommand that runs the measured loop: `__snoop_loop CALLS OUT_FILE`.
pub const LOOP_SUBCOMMAND: &str = "__snoop_loop";

/// The probed function's demangled name.
pub const EMPTY_SYMBOL: &str = "funcscope_harness::commands::snoop_cost::empty";

/// Options of `snoop-cost`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Calls per run (>= 1).
    pub calls: u64,
}

/// The probed function: returns its argument, kept out of line so that every call is a call.
#[inline(never)]
pub fn empty(x: u64) -> u64 {
    std::hint::black_box(x)
}

/// The measured loop (the hidden subcommand): `CALLS OUT_FILE`; writes the loop's ns.
pub fn loop_main(args: &[String]) -> i32 {
    let (Some(n), Some(out)) = (args.first().and_then(|a| a.parse::<u64>().ok()), args.get(1)) else {
        eprintln!("{LOOP_SUBCOMMAND}: expected CALLS OUT_FILE");
        return 2;
    };
    let t0 = Instant::now();
    let mut s = 0u64;
    for i in 0..n {
        s = s.wrapping_add(empty(i));
    }
    let ns = t0.elapsed().as_nanos();
    std::hint::black_box(s);
    match std::fs::write(out, ns.to_string()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{LOOP_SUBCOMMAND}: writing {out}: {e}");
            2
        }
    }
}

fn read_ns(p: &Path, what: &str) -> Result<f64> {
    let t = std::fs::read_to_string(p).map_err(|e| Error::io(format!("reading the {what} loop's time"), e))?;
    t.trim().parse().map_err(|_| Error::ScenarioFailed(format!("the {what} loop wrote {t:?}, not a time")))
}

/// One row of the result.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// How the loop ran.
    pub mode: String,
    /// Loop time per call, ns.
    pub ns_per_call: f64,
    /// Added over the unprobed loop, ns per call.
    pub added_ns: f64,
}

/// Runs the benchmark and prints the table; returns its rows.
pub fn measure(o: &Options) -> Result<Vec<Row>> {
    let exe = std::env::current_exe().map_err(|e| Error::io("locating the running binary", e))?;
    let dir = tempfile::tempdir().map_err(|e| Error::io("creating a temporary directory", e))?;
    let out = |name: &str| dir.path().join(name);
    let args = |file: &PathBuf| vec![LOOP_SUBCOMMAND.to_owned(), o.calls.to_string(), file.display().to_string()];
    let n = o.calls as f64;

    let plain = out("plain");
    let st = Command::new(&exe).args(args(&plain)).status().map_err(|e| Error::io("running the loop", e))?;
    if !st.success() {
        return Err(Error::ScenarioFailed(format!("the unprobed loop failed: {st}")));
    }
    let base = read_ns(&plain, "unprobed")? / n;
    let mut rows = vec![Row { mode: "unprobed".into(), ns_per_call: base, added_ns: 0.0 }];

    let spec = format!("{}:{EMPTY_SYMBOL}", exe.display());
    let target = snoop::resolve(&spec, None)?;
    eprintln!(
        "probed: {} at file offset {:#x}, first instruction: {:?}",
        target.symbol, target.offset, target.prologue
    );
    let probed = out("snoop");
    let opts = snoop::Options {
        targets: vec![spec],
        names: Vec::new(),
        scope: Scope::Launch { program: exe.display().to_string(), args: args(&probed) },
        ring_pages: snoop::perf::DEFAULT_RING_PAGES,
        interval: None,
        keep_calls: false,
        slow: None,
    };
    let got = snoop::run(&opts, &AtomicBool::new(false), &mut |_| {})?;
    let f = &got.summary.funcs[0];
    let t = read_ns(&probed, "snoop")? / n;
    rows.push(Row { mode: "snoop (perf_event_open uprobes)".into(), ns_per_call: t, added_ns: t - base });
    eprintln!(
        "snoop paired {} of {} calls (lost records {}); entry->return as reported: p50 {} ns, p99 {} ns",
        f.count,
        o.calls,
        got.summary.pairing.lost_records,
        f.quantile_ns(0.5),
        f.quantile_ns(0.99)
    );

    match which("bpftrace") {
        None => eprintln!("bpftrace: not on PATH (Debian: apt-get install bpftrace); no comparison"),
        Some(bt) => {
            let file = out("bpftrace");
            let sym = format!("uprobe:{}:{}", exe.display(), target.symbol);
            let ret = format!("uretprobe:{}:{}", exe.display(), target.symbol);
            let script = format!(
                "{sym} {{ @start[tid] = nsecs; }} {ret} /@start[tid]/ {{ @ns = hist(nsecs - @start[tid]); \
                 delete(@start[tid]); }}"
            );
            let cmd = args(&file).iter().fold(exe.display().to_string(), |c, a| format!("{c} {a}"));
            let r = Command::new(bt).args(["-e", &script, "-c", &cmd]).output();
            match r {
                Ok(r) if r.status.success() => {
                    let t = read_ns(&file, "bpftrace")? / n;
                    rows.push(Row {
                        mode: "bpftrace (uprobe + uretprobe, hist)".into(),
                        ns_per_call: t,
                        added_ns: t - base,
                    });
                }
                Ok(r) => eprintln!(
                    "bpftrace failed ({}); no comparison:\n{}",
                    r.status,
                    String::from_utf8_lossy(&r.stderr).lines().take(5).collect::<Vec<_>>().join("\n")
                ),
                Err(e) => eprintln!("bpftrace could not start ({e}); no comparison"),
            }
        }
    }
    Ok(rows)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Runs `snoop-cost`: prints the table (and the ratio to bpftrace where it ran).
pub fn run(o: &Options) -> Result<i32> {
    if o.calls == 0 {
        return Err(Error::Usage("snoop-cost: --calls must be at least 1".into()));
    }
    let rows = measure(o)?;
    println!("{} calls of an empty function per run", o.calls);
    println!("{:<40} {:>12} {:>14}", "mode", "ns/call", "added ns/call");
    for r in &rows {
        println!("{:<40} {:>12.1} {:>14.1}", r.mode, r.ns_per_call, r.added_ns);
    }
    if let (Some(s), Some(b)) =
        (rows.iter().find(|r| r.mode.starts_with("snoop")), rows.iter().find(|r| r.mode.starts_with("bpftrace")))
    {
        if b.added_ns > 0.0 {
            println!("snoop / bpftrace added cost: {:.2}x", s.added_ns / b.added_ns);
        }
    }
    Ok(exit_code::PASS)
}
