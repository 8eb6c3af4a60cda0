//! Exact instruction counts per checkpoint: one run of a program under callgrind.
//!
//! The program runs under `valgrind --tool=callgrind --dump-instr=no --instr-atstart=no
//! --combine-dumps=yes --callgrind-out-file=<tmp>/cg.%p` with [`funcscope::env::CALLGRIND`]`=1`, so its probe dumps
//! callgrind's counters at every ENTER (`enter:<idx>`) and EXIT (`exit:<idx>`) and announces its
//! checkpoint names at `init` (`funcscope:cp:<idx>:<name>`; see [`funcscope::callgrind`]). Each
//! dump ("part") holds the events executed since the previous one. [`parse`] reads the parts in
//! order: a part's cost goes to every checkpoint open when it ended (so a checkpoint's count
//! includes the checkpoints nested in it), then its label opens or closes a checkpoint. One call
//! of a checkpoint = the events between its ENTER and its EXIT, plus a constant few dozen
//! instructions of the probe's own dump path.
//!
//! **Processes.** `%p` gives one output file per process; each is parsed on its own and the
//! checkpoints are merged by name (fork children that call `init` report too). With
//! `--trace-children=yes` children that `exec` run under callgrind too: a fork + exec child
//! writes its own file, and an `exec` in place (same pid) replaces the file of the image it
//! replaced, so a program started through `sh -c 'exec prog'` reports as if run directly.
//!
//! **Threads.** callgrind runs one thread at a time and, without `--separate-threads`, a dump
//! holds the events of *all* threads since the previous dump. So a call's count includes the
//! instructions every thread executed between its ENTER and its EXIT (work handed to a thread and
//! joined inside the region is counted; work of an unrelated thread that happens to run then is
//! counted too). Two threads using checkpoints at once still pair each `enter:i` with the next
//! `exit:i`. `harness/tests/callgrind.rs` checks the joined-thread case.
//!
//! **Uprobe checkpoints** (`[[scenario.uprobe]]`, [`Launch::uprobes`]): a function nobody
//! instrumented has no ENTER/EXIT dumps, so its count comes from callgrind's own call graph:
//! valgrind runs with `--demangle=no`, each function is resolved to its mangled symbol (as
//! `snoop` resolves it), and [`parse_with`] sums, over every part, the call lines (`calls=`) to
//! that function from any *other* function: their count is the calls, their cost the inclusive
//! cost of those calls. Instructions per call = inclusive Ir / calls. Direct recursion (the
//! function calling itself, or `'2` recursion levels) is counted once, by its outermost call;
//! indirect recursion (F -> G -> F) counts the inner call again. callgrind gives a function's
//! total over its calls, not each call, so such a checkpoint's p50, min and max are its mean.
//! Only calls made while instrumentation is on count: from the probe's `init` on, as for the
//! probe's checkpoints.
//!
//! **Cache simulation** (`--cache-sim=yes`): each part also carries L1 and last-level misses;
//! [`Events::estimated_cycles`] folds them as `Ir + 10 × L1 misses + 100 × LL misses` (the weights
//! gungraun/iai-callgrind use for its "estimated cycles"). It is a model, not a measurement.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::snoop::gate::GateProbe;

/// The oldest valgrind accepted: `CALLGRIND_DUMP_STATS_AT`, `--instr-atstart` and `--combine-dumps` are
/// much older, but 3.15 is the oldest release tested with current Rust binaries (DWARF 5 support).
pub const MIN_VALGRIND: (u32, u32) = (3, 15);

/// Why an instruction-count run could not give counts. [`CallgrindError::exit_code`] says whether
/// it is a setup problem (2) or a failed run (3).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallgrindError {
    /// `valgrind` is not on `PATH`.
    #[error("valgrind is not installed (not on PATH): install it (`apt-get install valgrind`) or measure time only (--measure time)")]
    Missing,
    /// `valgrind --version` names a release older than [`MIN_VALGRIND`], or is unreadable.
    #[error("valgrind {found} is too old for instruction counts (need {}.{} or newer): upgrade it (`apt-get install valgrind`)", MIN_VALGRIND.0, MIN_VALGRIND.1)]
    TooOld {
        /// What `valgrind --version` printed.
        found: String,
    },
    /// This harness was built for an architecture the probe's client requests do not support.
    #[error("instruction counts are unsupported on this architecture (the probe's valgrind client requests exist for x86_64 and aarch64 only); measure time only (--measure time)")]
    Unsupported,
    /// The program failed under valgrind (a non-zero exit, a signal, or valgrind itself failed).
    #[error("{name}: failed under callgrind ({status}); run `valgrind --tool=callgrind {cmd}` to see why. Last output:\n{tail}")]
    ProgramFailed {
        /// The program's display name.
        name: String,
        /// How it ended.
        status: String,
        /// The command line, for reproducing it.
        cmd: String,
        /// The end of its stderr.
        tail: String,
    },
    /// The program ran longer than its timeout under callgrind (it runs ~50× slower than natively).
    #[error("{name}: still running under callgrind after {}s and was killed; lower --iterations or raise --timeout", .timeout.as_secs())]
    Timeout {
        /// The program's display name.
        name: String,
        /// The limit.
        timeout: Duration,
    },
    /// No process of the program started the probe in callgrind mode.
    #[error("{name}: no process started funcscope in callgrind mode (no `funcscope:cp` dump in {n_files} callgrind output file(s)); is the program instrumented with funcscope and does it call init?")]
    NoProbe {
        /// The program's display name.
        name: String,
        /// Output files read.
        n_files: usize,
    },
    /// The probe started but some checkpoints never completed a call under callgrind.
    #[error("{name}: checkpoint(s) {} never reached (no ENTER/EXIT pair under callgrind); raise --iterations or check the scenario's arguments", .missing.join(", "))]
    NeverReached {
        /// The program's display name.
        name: String,
        /// The checkpoints without a call.
        missing: Vec<String>,
    },
    /// A uprobe checkpoint's function could not be resolved to a symbol of its file.
    #[error("{name}: uprobe checkpoint {checkpoint}: {why}")]
    Uprobe {
        /// The program's display name.
        name: String,
        /// The checkpoint (`uprobe:<name>`).
        checkpoint: String,
        /// Why (from the symbol lookup: says which file and symbol, and what exists).
        why: String,
    },
    /// A callgrind output file is not in the expected format.
    #[error("{}:{line}: {why}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl CallgrindError {
    /// 2 for a setup problem (nothing was measured: valgrind missing, too old, unsupported), 3 for
    /// a program that failed or never reached its checkpoints under callgrind.
    pub fn exit_code(&self) -> i32 {
        match self {
            CallgrindError::Missing
            | CallgrindError::TooOld { .. }
            | CallgrindError::Unsupported
            | CallgrindError::Io { .. }
            | CallgrindError::Uprobe { .. } => crate::exit_code::USAGE,
            _ => crate::exit_code::SCENARIO_FAILED,
        }
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CallgrindError {
    let context = context.into();
    move |source| CallgrindError::Io { context, source }
}

/// Events of one callgrind part or one checkpoint call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// Instructions executed (`Ir`).
    pub ir: u64,
    /// L1 misses: instruction fetch + data read + data write (`I1mr + D1mr + D1mw`); 0 without
    /// cache simulation.
    pub l1_misses: u64,
    /// Last-level misses (`ILmr + DLmr + DLmw`); 0 without cache simulation.
    pub ll_misses: u64,
}

impl Events {
    fn add(&mut self, o: &Events) {
        self.ir += o.ir;
        self.l1_misses += o.l1_misses;
        self.ll_misses += o.ll_misses;
    }

    /// `Ir + 10 × L1 misses + 100 × LL misses` (gungraun's weights); equals `ir` without cache
    /// simulation.
    pub fn estimated_cycles(&self) -> u64 {
        self.ir + 10 * self.l1_misses + 100 * self.ll_misses
    }
}

/// What one output file (one process) says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessCounts {
    /// The process id (from the file's `pid:` line).
    pub pid: u64,
    /// Checkpoint names announced by the probe, by index (empty: the probe never started in
    /// callgrind mode in this process).
    pub names: Vec<String>,
    /// Events of every completed call, by checkpoint index, in call order.
    pub calls: Vec<Vec<Events>>,
    /// EXITs without an open ENTER, and ENTERs of an already open checkpoint (the second replaces
    /// the first): misuse of the API, counted.
    pub unmatched: u64,
    /// Whether the dumps carried cache-miss events.
    pub cache_sim: bool,
    /// Calls and inclusive events of each function asked of [`parse_with`], in the order asked.
    pub functions: Vec<FunctionCounts>,
}

/// What callgrind's call graph says of one function over a whole process (module docs: uprobe
/// checkpoints).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FunctionCounts {
    /// Calls from other functions (recursive calls of itself not counted).
    pub calls: u64,
    /// The inclusive events of those calls, summed.
    pub inclusive: Events,
}

/// A function name as callgrind writes it, without its recursion-level suffix (`f'2` -> `f`).
fn base_name(name: &str) -> &str {
    match name.rsplit_once('\'') {
        Some((b, lvl)) if !lvl.is_empty() && lvl.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => name,
    }
}

/// Resolves a compressed name (`(12) name` defines id 12, `(12)` reuses it) through `table`.
fn name_of<'t>(v: &str, table: &'t mut BTreeMap<u64, String>) -> Option<&'t str> {
    let v = v.trim();
    let Some(rest) = v.strip_prefix('(') else {
        // Uncompressed: kept under a key no compressed id uses.
        table.insert(u64::MAX, v.to_owned());
        return table.get(&u64::MAX).map(String::as_str);
    };
    let (id, name) = rest.split_once(')')?;
    let id: u64 = id.trim().parse().ok()?;
    let name = name.trim();
    if !name.is_empty() {
        table.insert(id, name.to_owned());
    }
    table.get(&id).map(String::as_str)
}

/// The indices of `events:` names: (Ir, L1 miss columns, LL miss columns).
fn event_columns(names: &[&str]) -> Option<(usize, Vec<usize>, Vec<usize>)> {
    let ir = names.iter().position(|&n| n == "Ir")?;
    let l1 = names.iter().enumerate().filter(|(_, &n)| matches!(n, "I1mr" | "D1mr" | "D1mw")).map(|(i, _)| i);
    let ll = names.iter().enumerate().filter(|(_, &n)| matches!(n, "ILmr" | "DLmr" | "DLmw")).map(|(i, _)| i);
    Some((ir, l1.collect(), ll.collect()))
}

/// Parses one callgrind output file written with `--combine-dumps=yes` (the parts in dump order)
/// and attributes each part's events to the checkpoints open at its end (module docs).
///
/// Reads only the `pid:`, `events:`, `desc: Trigger:` and `totals:` lines (summary lines are
/// ignored: `totals:` is the part's own cost). Time: `O(lines)`; memory: one [`Events`] per call.
///
/// # Errors
/// A line that cannot be read, or a `totals:` line that does not match its `events:`.
pub fn parse(path: &Path, input: impl BufRead) -> Result<ProcessCounts, CallgrindError> {
    parse_with(path, input, &[])
}

/// [`parse`], and also the calls and inclusive events of each function named in `functions`
/// (mangled names, as written with `--demangle=no`), into [`ProcessCounts::functions`] (module
/// docs: uprobe checkpoints). Also reads the `positions:`, `fn=`, `cfn=` and `calls=` lines and
/// the cost line after each `calls=`.
///
/// # Errors
/// As [`parse`]; also a call's cost line that cannot be read.
pub fn parse_with(path: &Path, input: impl BufRead, functions: &[String]) -> Result<ProcessCounts, CallgrindError> {
    let err = |line: usize, why: String| CallgrindError::Parse { path: path.to_path_buf(), line, why };
    let mut out = ProcessCounts { functions: vec![FunctionCounts::default(); functions.len()], ..Default::default() };
    let mut columns: Option<(usize, Vec<usize>, Vec<usize>)> = None;
    let mut trigger: Option<String> = None;
    let mut open: Vec<Option<Events>> = Vec::new();
    // Call graph state (only when functions are asked for): the fn/cfn name table, the current
    // function, the callee of the next calls= line, and the pending call (callee index, count).
    let want = !functions.is_empty();
    let mut names: BTreeMap<u64, String> = BTreeMap::new();
    let mut positions = 1usize;
    let mut current = String::new();
    let mut callee: Option<(usize, bool)> = None;
    let mut pending: Option<(usize, u64)> = None;
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(io(format!("reading {}", path.display())))?;
        let n = i + 1;
        if want {
            if let Some((k, calls)) = pending.take() {
                // The line after calls= is the call's inclusive cost: positions, then events.
                let (ir, l1, ll) = columns.as_ref().ok_or_else(|| err(n, "a call before events:".into()))?;
                let vals: Vec<u64> = line
                    .split_whitespace()
                    .skip(positions)
                    .map(|x| x.parse::<u64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| err(n, format!("bad call cost line {line:?}")))?;
                let col = |k: usize| vals.get(k).copied().unwrap_or(0);
                let f = &mut out.functions[k];
                f.calls += calls;
                f.inclusive.add(&Events {
                    ir: col(*ir),
                    l1_misses: l1.iter().map(|&k| col(k)).sum(),
                    ll_misses: ll.iter().map(|&k| col(k)).sum(),
                });
                continue;
            }
            if let Some(v) = line.strip_prefix("positions:") {
                positions = v.split_whitespace().count().max(1);
                continue;
            }
            if let Some(v) = line.strip_prefix("fn=") {
                current = name_of(v, &mut names).map(|s| base_name(s).to_owned()).unwrap_or_default();
                continue;
            }
            if let Some(v) = line.strip_prefix("cfn=") {
                callee = name_of(v, &mut names).and_then(|s| {
                    let b = base_name(s);
                    functions.iter().position(|f| f == b).map(|k| (k, b == current))
                });
                continue;
            }
            if let Some(v) = line.strip_prefix("calls=") {
                let count = v.split_whitespace().next().and_then(|c| c.parse::<u64>().ok());
                let count = count.ok_or_else(|| err(n, format!("bad calls line {v:?}")))?;
                // A recursive call's cost is inside its outer call's already: its cost line is
                // left alone (cost lines are otherwise unread).
                if let Some((k, false)) = callee.take() {
                    pending = Some((k, count));
                }
                continue;
            }
        }
        if let Some(v) = line.strip_prefix("pid:") {
            out.pid = v.trim().parse().map_err(|_| err(n, format!("bad pid {v:?}")))?;
        } else if let Some(v) = line.strip_prefix("events:") {
            let names: Vec<&str> = v.split_whitespace().collect();
            let c = event_columns(&names).ok_or_else(|| err(n, format!("no Ir event in {v:?}")))?;
            out.cache_sim = !c.1.is_empty();
            columns = Some(c);
        } else if let Some(v) = line.strip_prefix("desc: Trigger:") {
            trigger = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("totals:") {
            let (ir, l1, ll) = columns.as_ref().ok_or_else(|| err(n, "totals before events".into()))?;
            let vals: Vec<u64> = v
                .split_whitespace()
                .map(|x| x.parse::<u64>())
                .collect::<Result<_, _>>()
                .map_err(|_| err(n, format!("bad totals {v:?}")))?;
            // callgrind omits trailing zero columns.
            let col = |k: usize| vals.get(k).copied().unwrap_or(0);
            let part = Events {
                ir: col(*ir),
                l1_misses: l1.iter().map(|&k| col(k)).sum(),
                ll_misses: ll.iter().map(|&k| col(k)).sum(),
            };
            for e in open.iter_mut().flatten() {
                e.add(&part);
            }
            let label = trigger.take().unwrap_or_default();
            let label = label.strip_prefix("Client Request:").map(str::trim).unwrap_or("");
            apply_label(&mut out, &mut open, label);
        }
    }
    Ok(out)
}

/// Opens or closes a checkpoint, or records a name, as a part's label says.
fn apply_label(out: &mut ProcessCounts, open: &mut Vec<Option<Events>>, label: &str) {
    let idx = |s: &str| s.parse::<usize>().ok().filter(|&i| i < funcscope::MAX_CHECKPOINTS);
    let grow = |v: &mut Vec<Option<Events>>, calls: &mut Vec<Vec<Events>>, i: usize| {
        if v.len() <= i {
            v.resize(i + 1, None);
        }
        if calls.len() <= i {
            calls.resize(i + 1, Vec::new());
        }
    };
    if let Some(i) = label.strip_prefix("enter:").and_then(idx) {
        grow(open, &mut out.calls, i);
        if open[i].is_some() {
            out.unmatched += 1;
        }
        open[i] = Some(Events::default());
    } else if let Some(i) = label.strip_prefix("exit:").and_then(idx) {
        grow(open, &mut out.calls, i);
        match open[i].take() {
            Some(e) => out.calls[i].push(e),
            None => out.unmatched += 1,
        }
    } else if let Some((i, name)) = label.strip_prefix("funcscope:cp:").and_then(|r| r.split_once(':')) {
        if let Some(i) = idx(i) {
            if out.names.len() <= i {
                out.names.resize(i + 1, String::new());
            }
            out.names[i] = name.to_owned();
        }
    }
}

/// Per-call statistics of one checkpoint over one run (all processes merged by name).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointCounts {
    /// The checkpoint's name.
    pub name: String,
    /// Completed calls.
    pub calls: u64,
    /// Mean instructions per call.
    pub mean_ir: f64,
    /// Median instructions per call (lower median).
    pub p50_ir: u64,
    /// Fewest instructions of one call.
    pub min_ir: u64,
    /// Most instructions of one call.
    pub max_ir: u64,
    /// Mean L1 misses per call (cache simulation), else `None`.
    pub mean_l1_misses: Option<f64>,
    /// Mean LL misses per call (cache simulation), else `None`.
    pub mean_ll_misses: Option<f64>,
    /// Mean estimated cycles per call (cache simulation), else `None`.
    pub mean_estimated_cycles: Option<f64>,
}

/// One run of a program under callgrind.
#[derive(Clone, Debug, PartialEq)]
pub struct CgRun {
    /// Checkpoints by name, in the order the first process announced them.
    pub checkpoints: Vec<CheckpointCounts>,
    /// Processes whose probe ran in callgrind mode.
    pub processes: usize,
    /// Unmatched ENTER/EXIT labels over all processes.
    pub unmatched: u64,
    /// Wall time of the valgrind run.
    pub wall: Duration,
}

/// Merges processes by checkpoint name and computes per-call statistics.
///
/// # Errors
/// No process announced checkpoints ([`CallgrindError::NoProbe`]), or an announced checkpoint
/// has no completed call ([`CallgrindError::NeverReached`]).
pub fn summarize(name: &str, procs: &[ProcessCounts], wall: Duration) -> Result<CgRun, CallgrindError> {
    let mut order: Vec<String> = Vec::new();
    let mut by_name: BTreeMap<String, Vec<Events>> = BTreeMap::new();
    let mut processes = 0;
    let mut cache_sim = false;
    for p in procs.iter().filter(|p| !p.names.is_empty()) {
        processes += 1;
        cache_sim |= p.cache_sim;
        for (i, n) in p.names.iter().enumerate() {
            if !by_name.contains_key(n) {
                order.push(n.clone());
            }
            let v = by_name.entry(n.clone()).or_default();
            if let Some(c) = p.calls.get(i) {
                v.extend_from_slice(c);
            }
        }
    }
    if processes == 0 {
        return Err(CallgrindError::NoProbe { name: name.to_owned(), n_files: procs.len() });
    }
    let missing: Vec<String> = order.iter().filter(|n| by_name[*n].is_empty()).cloned().collect();
    if !missing.is_empty() {
        return Err(CallgrindError::NeverReached { name: name.to_owned(), missing });
    }
    let checkpoints = order
        .iter()
        .map(|n| {
            let calls = &by_name[n];
            let k = calls.len() as f64;
            let mut ir: Vec<u64> = calls.iter().map(|e| e.ir).collect();
            ir.sort_unstable();
            let mean = |f: &dyn Fn(&Events) -> u64| calls.iter().map(|e| f(e) as f64).sum::<f64>() / k;
            CheckpointCounts {
                name: n.clone(),
                calls: calls.len() as u64,
                mean_ir: mean(&|e| e.ir),
                p50_ir: ir[(ir.len() - 1) / 2],
                min_ir: ir[0],
                max_ir: ir[ir.len() - 1],
                mean_l1_misses: cache_sim.then(|| mean(&|e| e.l1_misses)),
                mean_ll_misses: cache_sim.then(|| mean(&|e| e.ll_misses)),
                mean_estimated_cycles: cache_sim.then(|| mean(&|e| e.estimated_cycles())),
            }
        })
        .collect();
    let unmatched = procs.iter().map(|p| p.unmatched).sum();
    Ok(CgRun { checkpoints, processes, unmatched, wall })
}

/// Checks that `valgrind` is on `PATH`, new enough, and that this architecture is supported;
/// returns its version string (`valgrind-3.19.0`).
///
/// # Errors
/// [`CallgrindError::Missing`], [`CallgrindError::TooOld`], [`CallgrindError::Unsupported`].
pub fn check_valgrind() -> Result<String, CallgrindError> {
    if !funcscope::callgrind::supported() {
        return Err(CallgrindError::Unsupported);
    }
    let out = match Command::new("valgrind").arg("--version").stdin(Stdio::null()).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CallgrindError::Missing),
        Err(e) => return Err(CallgrindError::Io { context: "running valgrind --version".into(), source: e }),
    };
    let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    match parse_version(&found) {
        Some(v) if v >= MIN_VALGRIND => Ok(found),
        _ => Err(CallgrindError::TooOld { found }),
    }
}

/// `valgrind-3.19.0` -> (3, 19).
fn parse_version(s: &str) -> Option<(u32, u32)> {
    let v = s.strip_prefix("valgrind-")?;
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// One program to run under callgrind.
#[derive(Clone, Debug)]
pub struct Launch {
    /// Display name (scenario name or program file name).
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments (including the fixed iteration count).
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Simulate caches (`--cache-sim=yes`).
    pub cache_sim: bool,
    /// Kill the run after this long.
    pub timeout: Duration,
    /// Uninstrumented functions counted from callgrind's call graph, reported as checkpoints
    /// `uprobe:<name>` after the probe's (module docs: uprobe checkpoints).
    pub uprobes: Vec<GateProbe>,
}

/// The valgrind arguments of a run writing into `dir`.
fn valgrind_args(l: &Launch, dir: &Path) -> Vec<String> {
    let mut v = vec![
        "--tool=callgrind".to_owned(),
        "--dump-instr=no".to_owned(),
        // Function names as in the symbol table, so that uprobe checkpoints match their
        // resolved (mangled) symbols exactly; the probe's labels are not names.
        "--demangle=no".to_owned(),
        // The probe starts instrumentation at init: what runs before (calibration, input
        // generation) is not instrumented, which makes every dump ~1.7x cheaper (a dump walks
        // every instrumented block; codec, 1000 iterations: 3.9 s -> 2.2 s CPU, same counts).
        "--instr-atstart=no".to_owned(),
        "--combine-dumps=yes".to_owned(),
        // Follow children that exec (a launcher script, a server spawning workers): those
        // without the probe write files without checkpoint names, which are ignored.
        "--trace-children=yes".to_owned(),
        format!("--callgrind-out-file={}/cg.%p", dir.display()),
    ];
    if l.cache_sim {
        v.push("--cache-sim=yes".to_owned());
    }
    v
}

/// Runs `l` under callgrind once and returns its per-checkpoint counts.
///
/// The environment is the harness's, plus [`funcscope::env::CALLGRIND`]`=1` and `l.env`, minus
/// [`funcscope::env::WAIT_ATTACH_MS`] (nobody attaches in this mode).
///
/// # Errors
/// See [`CallgrindError`]; the caller should have called [`check_valgrind`] first.
pub fn run(l: &Launch) -> Result<CgRun, CallgrindError> {
    // Resolved before anything runs: a wrong symbol is a setup error naming it.
    let symbols: Vec<String> = l
        .uprobes
        .iter()
        .map(|u| {
            u.resolve(&l.program).map(|t| t.symbol).map_err(|e| CallgrindError::Uprobe {
                name: l.name.clone(),
                checkpoint: u.checkpoint(),
                why: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    let dir = tempfile::tempdir().map_err(io("creating a directory for callgrind output"))?;
    let vargs = valgrind_args(l, dir.path());
    let cmd_line = format!("{} {}", l.program.display(), l.args.join(" "));
    let stderr_path = dir.path().join("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path).map_err(io("creating the callgrind stderr file"))?;
    let t0 = Instant::now();
    let mut child = Command::new("valgrind")
        .args(&vargs)
        .arg(&l.program)
        .args(&l.args)
        .env(funcscope::env::CALLGRIND, "1")
        .env_remove(funcscope::env::WAIT_ATTACH_MS)
        .envs(l.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CallgrindError::Missing,
            _ => CallgrindError::Io { context: format!("starting valgrind for {}", l.name), source: e },
        })?;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(io("waiting for valgrind"))? {
            break s;
        }
        if t0.elapsed() > l.timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CallgrindError::Timeout { name: l.name.clone(), timeout: l.timeout });
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = t0.elapsed();
    if !status.success() {
        let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(12)..].join("\n");
        return Err(CallgrindError::ProgramFailed {
            name: l.name.clone(),
            status: status.to_string(),
            cmd: cmd_line,
            tail,
        });
    }
    let mut procs = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .map_err(io("listing callgrind output"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("cg.")))
        .collect();
    files.sort();
    for f in &files {
        let file = std::fs::File::open(f).map_err(io(format!("opening {}", f.display())))?;
        procs.push(parse_with(f, std::io::BufReader::with_capacity(1 << 16, file), &symbols)?);
    }
    // Parent first, then children: pids grow in this short run.
    procs.sort_by_key(|p| p.pid);
    let mut run = summarize(&l.name, &procs, wall)?;
    let names: Vec<String> = l.uprobes.iter().map(GateProbe::checkpoint).collect();
    run.checkpoints.extend(function_checkpoints(&l.name, &names, &procs)?);
    Ok(run)
}

/// The uprobe checkpoints of a run: `names[k]` is the checkpoint of the k-th function asked of
/// [`parse_with`], summed over the processes. callgrind gives totals, not each call, so p50,
/// min and max are the mean (rounded).
///
/// # Errors
/// A function never called while instrumentation was on ([`CallgrindError::NeverReached`]).
pub fn function_checkpoints(
    name: &str,
    names: &[String],
    procs: &[ProcessCounts],
) -> Result<Vec<CheckpointCounts>, CallgrindError> {
    let cache_sim = procs.iter().any(|p| p.cache_sim);
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for (k, n) in names.iter().enumerate() {
        let mut f = FunctionCounts::default();
        for p in procs {
            if let Some(c) = p.functions.get(k) {
                f.calls += c.calls;
                f.inclusive.add(&c.inclusive);
            }
        }
        if f.calls == 0 {
            missing.push(n.clone());
            continue;
        }
        let per = |x: u64| x as f64 / f.calls as f64;
        let mean = per(f.inclusive.ir);
        let rounded = mean.round() as u64;
        out.push(CheckpointCounts {
            name: n.clone(),
            calls: f.calls,
            mean_ir: mean,
            p50_ir: rounded,
            min_ir: rounded,
            max_ir: rounded,
            mean_l1_misses: cache_sim.then(|| per(f.inclusive.l1_misses)),
            mean_ll_misses: cache_sim.then(|| per(f.inclusive.ll_misses)),
            mean_estimated_cycles: cache_sim.then(|| per(f.inclusive.estimated_cycles())),
        });
    }
    if !missing.is_empty() {
        return Err(CallgrindError::NeverReached { name: name.to_owned(), missing });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written file in callgrind's combined format: names, then outer{inner{}} twice.
    const NESTED: &str = "# callgrind format\nversion: 1\npid: 42\ncmd: x\npart: 1\n\
        desc: Trigger: Client Request: funcscope:cp:0:outer\npositions: line\nevents: Ir\nsummary: 1000\n\
        fn=(1) main\n3 1000\ntotals: 1000\n\
        part: 2\ndesc: Trigger: Client Request: funcscope:cp:1:inner\nevents: Ir\ntotals: 5\n\
        part: 3\ndesc: Trigger: Client Request: enter:0\nevents: Ir\ntotals: 77\n\
        part: 4\ndesc: Trigger: Client Request: enter:1\nevents: Ir\ntotals: 100\n\
        part: 5\ndesc: Trigger: Client Request: exit:1\nevents: Ir\ntotals: 30\n\
        part: 6\ndesc: Trigger: Client Request: exit:0\nevents: Ir\ntotals: 20\n\
        part: 7\ndesc: Trigger: Client Request: enter:0\nevents: Ir\ntotals: 9\n\
        part: 8\ndesc: Trigger: Client Request: enter:1\nevents: Ir\ntotals: 101\n\
        part: 9\ndesc: Trigger: Client Request: exit:1\nevents: Ir\ntotals: 31\n\
        part: 10\ndesc: Trigger: Client Request: exit:0\nevents: Ir\ntotals: 20\n\
        part: 11\ndesc: Trigger: Program termination\nevents: Ir\ntotals: 500\n";

    #[test]
    fn nested_checkpoints_include_their_children() {
        let p = parse(Path::new("t"), NESTED.as_bytes()).unwrap();
        assert_eq!(p.pid, 42);
        assert_eq!(p.names, ["outer", "inner"]);
        let ir = |i: usize| p.calls[i].iter().map(|e| e.ir).collect::<Vec<_>>();
        assert_eq!(ir(0), [150, 152]);
        assert_eq!(ir(1), [30, 31]);
        assert_eq!(p.unmatched, 0);
        let run = summarize("t", &[p], Duration::ZERO).unwrap();
        assert_eq!(run.checkpoints[0].mean_ir, 151.0);
        assert_eq!(run.checkpoints[0].p50_ir, 150);
        assert_eq!(run.checkpoints[1].calls, 2);
        assert_eq!(run.checkpoints[1].mean_estimated_cycles, None);
    }

    #[test]
    fn cache_columns_and_missing_trailing_zeros() {
        let f = "pid: 7\nevents: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\n\
            desc: Trigger: Client Request: funcscope:cp:0:a\ntotals: 1\n\
            desc: Trigger: Client Request: enter:0\ntotals: 1\n\
            desc: Trigger: Client Request: exit:0\ntotals: 100 40 20 1 2 3 0 1\n";
        let p = parse(Path::new("t"), f.as_bytes()).unwrap();
        assert!(p.cache_sim);
        assert_eq!(p.calls[0], [Events { ir: 100, l1_misses: 6, ll_misses: 1 }]);
        assert_eq!(p.calls[0][0].estimated_cycles(), 100 + 60 + 100);
    }

    #[test]
    fn unmatched_labels_are_counted_and_silent_programs_reported() {
        let f = "pid: 1\nevents: Ir\ndesc: Trigger: Client Request: funcscope:cp:0:a\ntotals: 1\n\
            desc: Trigger: Client Request: exit:0\ntotals: 3\n";
        let p = parse(Path::new("t"), f.as_bytes()).unwrap();
        assert_eq!(p.unmatched, 1);
        let e = summarize("prog", &[p], Duration::ZERO).unwrap_err();
        assert!(matches!(&e, CallgrindError::NeverReached { missing, .. } if missing == &["a"]), "{e}");
        assert_eq!(e.exit_code(), 3);
        let none = summarize("prog", &[ProcessCounts::default()], Duration::ZERO).unwrap_err();
        assert!(matches!(none, CallgrindError::NoProbe { .. }));
    }

    #[test]
    fn bad_input_is_an_error_naming_the_line() {
        let e = parse(Path::new("f"), "events: Ir\ntotals: x\n".as_bytes()).unwrap_err();
        assert_eq!(e.to_string(), "f:2: bad totals \" x\"");
        let e = parse(Path::new("f"), "events: Dr\n".as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("f:1: no Ir event"));
    }

    /// A hand-written call graph: main calls f twice (inclusive 100 and 140 over two parts), f
    /// calls itself (`f'2`, not counted again) and g; g's calls from f count for g.
    const GRAPH: &str = "pid: 9\npositions: line\nevents: Ir\n\
        fn=(1) main\n1 5\ncfn=(2) f\ncalls=1 10\n3 100\n\
        fn=(2)\n10 20\ncfn=(3) f'2\ncalls=1 10\n11 30\ncfn=(4) g\ncalls=2 20\n12 50\n\
        totals: 175\n\
        fn=(1)\ncfn=(2)\ncalls=1 10\n4 140\nfn=(4)\n20 7\ntotals: 147\n";

    #[test]
    fn function_calls_and_inclusive_costs_come_from_call_lines() {
        let want = ["f".to_owned(), "g".to_owned(), "h".to_owned()];
        let p = parse_with(Path::new("t"), GRAPH.as_bytes(), &want).unwrap();
        assert_eq!(p.functions[0], FunctionCounts { calls: 2, inclusive: Events { ir: 240, ..Events::default() } });
        assert_eq!(p.functions[1], FunctionCounts { calls: 2, inclusive: Events { ir: 50, ..Events::default() } });
        assert_eq!(p.functions[2], FunctionCounts::default());
        let names: Vec<String> = ["uprobe:f", "uprobe:g"].map(String::from).to_vec();
        let c = function_checkpoints("t", &names, std::slice::from_ref(&p)).unwrap();
        assert_eq!((c[0].calls, c[0].mean_ir, c[0].p50_ir), (2, 120.0, 120));
        assert_eq!((c[1].calls, c[1].mean_ir), (2, 25.0));
        let e = function_checkpoints(
            "t",
            &["uprobe:h".to_owned(), "uprobe:h".to_owned()][..1],
            &[ProcessCounts { functions: vec![FunctionCounts::default()], ..ProcessCounts::default() }],
        )
        .unwrap_err();
        assert!(matches!(&e, CallgrindError::NeverReached { missing, .. } if missing == &["uprobe:h"]), "{e}");
        // Without functions asked for, call lines are not read at all.
        assert!(parse(Path::new("t"), GRAPH.as_bytes()).unwrap().functions.is_empty());
        assert_eq!(base_name("f'2"), "f");
        assert_eq!(base_name("a'b"), "a'b");
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("valgrind-3.19.0"), Some((3, 19)));
        assert_eq!(parse_version("valgrind-3.22.0.GIT"), Some((3, 22)));
        assert_eq!(parse_version("nonsense"), None);
    }
}
