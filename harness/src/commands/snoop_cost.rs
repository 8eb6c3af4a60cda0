//! `snoop-cost`: what a uprobe costs per call on this machine, side by side in one invocation.
//!
//! The harness binary itself carries the measured loop ([`LOOP_SUBCOMMAND`], hidden): N calls of
//! one of two `#[inline(never)]` functions, timed by the loop itself and written to a file:
//! * [`empty`], which does nothing but return its argument: its first instruction is a `mov`,
//!   which the kernel must **single-step** out of line at a uprobe;
//! * [`push_first`], which calls [`empty`] and keeps a value across the call, so it opens by
//!   saving a callee-saved register: its first instruction is a `push`, which the kernel
//!   **emulates** at the breakpoint.
//!
//! Each function's loop is run three ways, one after the other: unprobed; under `snoop` (entry
//! and return uprobes through `perf_event_open`); and, where `bpftrace` is on `PATH` (Debian
//! package `bpftrace`), under a bpftrace script doing the same pairing in the kernel
//! (`@start[tid]` at entry, `hist()` of the difference at return). The added cost per call is
//! the probed time per call minus the unprobed one of the same function. With `--repeats N` the
//! whole set runs N times and each figure is reported per repeat, with its median and range:
//! this machine drifts between runs (machine-facts.md), so one repeat is one sample.
//!
//! The first instruction of each function is printed as `snoop::elf::Prologue` classifies it:
//! the compiler decides it, and it changes the cost several-fold on this VM kind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::exit_code;
use crate::snoop::elf::Prologue;
use crate::snoop::{self, Scope};

/// The hidden subcommand that runs the measured loop: `__snoop_loop CALLS OUT_FILE [FUNCTION]`
/// (FUNCTION: a [`Probed::arg`], `empty` by default).
pub const LOOP_SUBCOMMAND: &str = "__snoop_loop";

/// The single-stepped function's demangled name.
pub const EMPTY_SYMBOL: &str = "funcscope_harness::commands::snoop_cost::empty";

/// The push-prologue function's demangled name.
pub const PUSH_FIRST_SYMBOL: &str = "funcscope_harness::commands::snoop_cost::push_first";

/// Options of `snoop-cost`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Calls per run (>= 1).
    pub calls: u64,
    /// How many times the whole set of runs is repeated (>= 1).
    pub repeats: usize,
}

/// The probed function: returns its argument, kept out of line so that every call is a call.
#[inline(never)]
pub fn empty(x: u64) -> u64 {
    std::hint::black_box(x)
}

/// The push-prologue function: `a` must survive the call of [`empty`], so the compiler keeps it
/// in a callee-saved register, which the function saves first (`push`).
#[inline(never)]
pub fn push_first(x: u64) -> u64 {
    let a = std::hint::black_box(x);
    a ^ empty(a)
}

/// The two functions measured, one per prologue class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probed {
    /// [`empty`]: first instruction single-stepped.
    Empty,
    /// [`push_first`]: first instruction (`push`) emulated.
    PushFirst,
}

impl Probed {
    /// Both, in report order.
    pub const ALL: [Probed; 2] = [Probed::Empty, Probed::PushFirst];

    /// The loop's argument naming it.
    pub fn arg(self) -> &'static str {
        match self {
            Probed::Empty => "empty",
            Probed::PushFirst => "push_first",
        }
    }

    /// Its demangled symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Probed::Empty => EMPTY_SYMBOL,
            Probed::PushFirst => PUSH_FIRST_SYMBOL,
        }
    }
}

/// The measured loop (the hidden subcommand): `CALLS OUT_FILE [FUNCTION]`; writes the loop's ns.
pub fn loop_main(args: &[String]) -> i32 {
    let (Some(n), Some(out)) = (args.first().and_then(|a| a.parse::<u64>().ok()), args.get(1)) else {
        eprintln!("{LOOP_SUBCOMMAND}: expected CALLS OUT_FILE [empty|push_first]");
        return 2;
    };
    let which = match args.get(2).map(String::as_str) {
        None => Probed::Empty,
        Some(a) => match Probed::ALL.into_iter().find(|p| p.arg() == a) {
            Some(p) => p,
            None => {
                eprintln!("{LOOP_SUBCOMMAND}: unknown function {a:?} (empty or push_first)");
                return 2;
            }
        },
    };
    // Called directly in each arm (not through a pointer), so that the loop is the same as a
    // program's ordinary call site.
    let t0 = Instant::now();
    let mut s = 0u64;
    match which {
        Probed::Empty => {
            for i in 0..n {
                s = s.wrapping_add(empty(i));
            }
        }
        Probed::PushFirst => {
            for i in 0..n {
                s = s.wrapping_add(push_first(i));
            }
        }
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

/// One measured figure of one repeat.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The function.
    pub func: Probed,
    /// How the loop ran: `unprobed`, `snoop` or `bpftrace`.
    pub mode: &'static str,
    /// Loop time per call, ns.
    pub ns_per_call: f64,
    /// Added over the same function's unprobed loop, ns per call.
    pub added_ns: f64,
}

/// What [`measure`] found.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// Every figure, repeat by repeat (`rows[r]` is repeat r).
    pub rows: Vec<Vec<Row>>,
    /// Each function's first instruction as classified.
    pub prologues: Vec<(Probed, Prologue)>,
}

/// The snoop row's mode.
pub const SNOOP: &str = "snoop";
/// The bpftrace row's mode.
pub const BPFTRACE: &str = "bpftrace";
/// The unprobed row's mode.
pub const UNPROBED: &str = "unprobed";

struct Runner {
    exe: PathBuf,
    dir: tempfile::TempDir,
    calls: u64,
    bpftrace: Option<PathBuf>,
    seq: usize,
}

impl Runner {
    fn args(&self, file: &Path, f: Probed) -> Vec<String> {
        vec![LOOP_SUBCOMMAND.to_owned(), self.calls.to_string(), file.display().to_string(), f.arg().to_owned()]
    }

    fn file(&mut self, what: &str) -> PathBuf {
        self.seq += 1;
        self.dir.path().join(format!("{what}-{}", self.seq))
    }

    fn unprobed(&mut self, f: Probed) -> Result<f64> {
        let file = self.file("plain");
        let st =
            Command::new(&self.exe).args(self.args(&file, f)).status().map_err(|e| Error::io("running the loop", e))?;
        if !st.success() {
            return Err(Error::ScenarioFailed(format!("the unprobed {} loop failed: {st}", f.arg())));
        }
        Ok(read_ns(&file, "unprobed")? / self.calls as f64)
    }

    fn snoop(&mut self, f: Probed) -> Result<f64> {
        let file = self.file("snoop");
        let opts = snoop::Options {
            targets: vec![format!("{}:{}", self.exe.display(), f.symbol())],
            names: Vec::new(),
            scope: Scope::Launch { program: self.exe.display().to_string(), args: self.args(&file, f) },
            ring_pages: snoop::perf::DEFAULT_RING_PAGES,
            interval: None,
            keep_calls: false,
            slow: None,
        };
        let got = snoop::run(&opts, &AtomicBool::new(false), &mut |_| {})?;
        let s = &got.summary.funcs[0];
        eprintln!(
            "snoop paired {} of {} calls of {} (lost records {}); entry->return as reported: p50 {} ns, p99 {} ns",
            s.count,
            self.calls,
            f.arg(),
            got.summary.pairing.lost_records,
            s.quantile_ns(0.5),
            s.quantile_ns(0.99)
        );
        Ok(read_ns(&file, "snoop")? / self.calls as f64)
    }

    /// `None` where bpftrace is missing or failed (said on stderr, once per failure).
    fn bpftrace(&mut self, f: Probed, symbol: &str) -> Result<Option<f64>> {
        let Some(bt) = self.bpftrace.clone() else { return Ok(None) };
        let file = self.file("bpftrace");
        let exe = self.exe.display();
        let script = format!(
            "uprobe:{exe}:{symbol} {{ @start[tid] = nsecs; }} uretprobe:{exe}:{symbol} /@start[tid]/ \
             {{ @ns = hist(nsecs - @start[tid]); delete(@start[tid]); }}"
        );
        let cmd = self.args(&file, f).iter().fold(exe.to_string(), |c, a| format!("{c} {a}"));
        match Command::new(bt).args(["-e", &script, "-c", &cmd]).output() {
            Ok(r) if r.status.success() => Ok(Some(read_ns(&file, "bpftrace")? / self.calls as f64)),
            Ok(r) => {
                eprintln!(
                    "bpftrace failed ({}); no comparison:\n{}",
                    r.status,
                    String::from_utf8_lossy(&r.stderr).lines().take(5).collect::<Vec<_>>().join("\n")
                );
                self.bpftrace = None;
                Ok(None)
            }
            Err(e) => {
                eprintln!("bpftrace could not start ({e}); no comparison");
                self.bpftrace = None;
                Ok(None)
            }
        }
    }
}

/// Runs the benchmark (every function unprobed, under snoop and under bpftrace, `o.repeats`
/// times); returns every figure.
pub fn measure(o: &Options) -> Result<Measured> {
    let exe = std::env::current_exe().map_err(|e| Error::io("locating the running binary", e))?;
    let dir = tempfile::tempdir().map_err(|e| Error::io("creating a temporary directory", e))?;
    let bpftrace = which("bpftrace");
    if bpftrace.is_none() {
        eprintln!("bpftrace: not on PATH (Debian: apt-get install bpftrace); no comparison");
    }
    let mut m = Measured::default();
    let mut symbols = Vec::new();
    for f in Probed::ALL {
        let target = snoop::resolve(&format!("{}:{}", exe.display(), f.symbol()), None)?;
        eprintln!(
            "probed: {} = {} at file offset {:#x}, first instruction: {:?}",
            f.arg(),
            target.symbol,
            target.offset,
            target.prologue
        );
        m.prologues.push((f, target.prologue));
        symbols.push(target.symbol);
    }
    let mut r = Runner { exe, dir, calls: o.calls, bpftrace, seq: 0 };
    for _ in 0..o.repeats.max(1) {
        let mut rows = Vec::new();
        for (f, symbol) in Probed::ALL.into_iter().zip(&symbols) {
            let base = r.unprobed(f)?;
            rows.push(Row { func: f, mode: UNPROBED, ns_per_call: base, added_ns: 0.0 });
            let t = r.snoop(f)?;
            rows.push(Row { func: f, mode: SNOOP, ns_per_call: t, added_ns: t - base });
            if let Some(t) = r.bpftrace(f, symbol)? {
                rows.push(Row { func: f, mode: BPFTRACE, ns_per_call: t, added_ns: t - base });
            }
        }
        m.rows.push(rows);
    }
    Ok(m)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Median (mean of the middle two for an even count), min and max; `None` when empty.
pub fn median_range(v: &[f64]) -> Option<(f64, f64, f64)> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let mid = match n {
        0 => return None,
        _ if n % 2 == 1 => s[n / 2],
        _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    };
    Some((mid, s[0], s[n - 1]))
}

fn class(p: Prologue) -> &'static str {
    match p {
        Prologue::Emulated => "emulated",
        Prologue::SingleStepped => "single-stepped",
        Prologue::Unknown => "unknown",
    }
}

/// Runs `snoop-cost`: prints the table (and the ratio to bpftrace where it ran).
pub fn run(o: &Options) -> Result<i32> {
    if o.calls == 0 {
        return Err(Error::Usage("snoop-cost: --calls must be at least 1".into()));
    }
    if o.repeats == 0 {
        return Err(Error::Usage("snoop-cost: --repeats must be at least 1".into()));
    }
    let m = measure(o)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "{} calls per run, {} repeat(s); load average {} at the end",
        o.calls,
        m.rows.len(),
        if load.is_empty() { "unknown".to_owned() } else { load.join(" ") }
    );
    let repeats: String = (1..=m.rows.len()).map(|r| format!(" {:>9}", format!("#{r}"))).collect();
    println!("{:<11} {:<15} {:<9}{repeats} {:>9} {:>19}", "function", "first instr", "mode", "median", "range");
    println!("(ns per call for unprobed; ns added per call over unprobed for snoop and bpftrace)");
    let mut medians = Vec::new();
    for (f, prologue) in &m.prologues {
        for mode in [UNPROBED, SNOOP, BPFTRACE] {
            let v: Vec<f64> = m
                .rows
                .iter()
                .filter_map(|rows| rows.iter().find(|x| x.func == *f && x.mode == mode))
                .map(|x| if mode == UNPROBED { x.ns_per_call } else { x.added_ns })
                .collect();
            let Some((med, lo, hi)) = median_range(&v) else { continue };
            let cells: String = v.iter().map(|x| format!(" {x:>9.1}")).collect();
            println!(
                "{:<11} {:<15} {:<9}{cells} {med:>9.1} {:>19}",
                f.arg(),
                class(*prologue),
                mode,
                format!("{lo:.1}-{hi:.1}")
            );
            medians.push((*f, mode, med));
        }
    }
    for (f, _) in &m.prologues {
        let get = |mode: &str| medians.iter().find(|x| x.0 == *f && x.1 == mode).map(|x| x.2);
        if let (Some(s), Some(b)) = (get(SNOOP), get(BPFTRACE)) {
            if b > 0.0 {
                println!("{}: snoop / bpftrace added cost (medians): {:.2}x", f.arg(), s / b);
            }
        }
    }
    Ok(exit_code::PASS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranges() {
        assert_eq!(median_range(&[]), None);
        assert_eq!(median_range(&[3.0]), Some((3.0, 3.0, 3.0)));
        assert_eq!(median_range(&[5.0, 1.0, 3.0]), Some((3.0, 1.0, 5.0)));
        assert_eq!(median_range(&[4.0, 1.0, 2.0, 10.0]), Some((3.0, 1.0, 10.0)));
    }

    #[test]
    fn the_loop_refuses_an_unknown_function() {
        let args = ["1".to_owned(), "/nonexistent/x".to_owned(), "nope".to_owned()];
        assert_eq!(loop_main(&args), 2);
    }
}
