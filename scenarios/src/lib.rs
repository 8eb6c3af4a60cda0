//! Instrumented workloads from the code funcscope is for, and what they share.
//!
//! Each binary in `src/bin/` is one *scenario*: a latency-sensitive workload (HTTP parsing, an
//! event loop, a flow table, a codec, a web session store) with 2-6 named checkpoints around its
//! hot operations.
//! `cargo xtask regress` runs each one many times under the harness and compares the per-call
//! durations with the committed baselines. The workload logic lives in this library ([`http`],
//! [`evloop`], [`flow`], [`codec`], [`session`]) where it is unit-tested; a binary only says which operations
//! are checkpoints and in what order they run.
//!
//! # Brief overview
//! * A binary implements [`Scenario`]: its name, its checkpoint names, how to build its state from
//!   a seed, and one iteration of its main loop ([`Scenario::step`]), which brackets each
//!   measured operation with [`Meter::enter`]/[`Meter::exit`] and calls [`Plant::extra`] right
//!   before each exit. `fn main() { funcscope_scenarios::main::<MyScenario>() }` does the rest.
//! * [`main`] parses the [`args`], reads the planted slowdowns ([`plant`], `FUNCSCOPE_PLANT`),
//!   calibrates (below), then [`start`]s the probe, waits for the reader, and hands the loop to
//!   [`run_loop`], which polls for readers, stops at the limit and prints a one-line summary.
//! * The inputs come from [`rng::Rng`] with a fixed default seed: every run does the same work.
//!   `session_store` deliberately keeps what real code has on top: std's per-process random
//!   `HashMap` seed and separately heap-allocated inputs, so its processes differ as real ones do.
//!
//! Data flows one way: scenario -> probe region -> harness reader -> samples -> statistics.
//!
//! # Why a `Meter` and not the probe's macros directly
//! A planted slowdown must be sized as a percentage of the checkpoint's *normal* cost, as the
//! probe sees it. [`Scenario::step`] is generic over [`Meter`]: with [`Probe`] (a zero-sized type
//! whose methods are `funcscope::enter!`/`exit!`, inlined: the same machine code as writing the
//! macros in place) it records through funcscope; with [`CalibMeter`] it accumulates the same
//! ENTER->EXIT tick differences on the same clock in process-private memory. Calibration thus runs
//! the very code that will be measured, in context (same inputs, same neighbours, same caches),
//! and records nothing in the region: it runs on a throwaway instance before `init`.
//!
//! # Calibration, always
//! Every run calibrates for [`CALIBRATION`] (10 ms), planted or not, so that planted and
//! unplanted runs have the same warm-up and the same history before the measured phase. The
//! measured phase then starts on a fresh instance built from the same seed, so with
//! `--iterations N` its work (and the printed checksum) is identical on every run.
//!
//! # Exit codes
//! 0 success; 2 bad arguments, a bad `FUNCSCOPE_PLANT` or `FUNCSCOPE_WAIT_ATTACH_MS`, or a probe
//! that could not start.

#![forbid(unsafe_code)]

pub mod args;
pub mod codec;
pub mod evloop;
pub mod flow;
pub mod http;
pub mod plant;
pub mod prefork;
pub mod rng;
pub mod session;

use std::hint::black_box;
use std::time::{Duration, Instant};

use funcscope::{clock, AttachStatus, ClockKind, Level, Session};

pub use args::Args;
pub use plant::Plant;
pub use rng::Rng;

/// Environment variable with the time, in ms, to wait for a reader to attach before measuring
/// ([`funcscope::env::WAIT_ATTACH_MS`]).
pub const WAIT_ATTACH_ENV: &str = funcscope::env::WAIT_ATTACH_MS;

/// Ring entries per checkpoint: 64 Ki (512 KiB each at `Normal`), the probe's default: the
/// harness drains every 1 ms, so at the busiest bundled checkpoint's 1.2 M calls/s a ring has
/// 54 ms of headroom (lost samples would be counted, reported and refused by `baseline`).
/// Prefaulting is paid by every run: 256 Ki-entry rings cost 8-11 ms of a 70 ms run here
/// (allocating and zeroing 2 MiB of shared memory per checkpoint), 64 Ki about a quarter of it.
pub const RING_CAPACITY: u64 = funcscope::DEFAULT_RING_CAPACITY;

/// How long calibration runs the scenario. Long enough that every checkpoint is called about a
/// thousand times (the slowest iteration is ~10 us; each of the [`CALIBRATION_BLOCKS`] blocks of
/// 1.25 ms still sees over a hundred calls), short enough to add little to a run: the gate's
/// precision comes from many short process runs (the process is the unit of replication), so
/// every fixed millisecond per run costs replicates. `tests/plant_fidelity.rs` checks that plants
/// sized from this much calibration still deliver their size (+-25 %).
pub const CALIBRATION: Duration = Duration::from_millis(10);

/// Blocks calibration is cut into (see [`calibrate`]).
pub const CALIBRATION_BLOCKS: u32 = 8;

/// Calibration samples above this many ticks (~0.4 ms at 2.6 GHz) are dropped: they are
/// preemptions or page faults, not the checkpoint's cost, and one of them would move the mean.
const CALIBRATION_OUTLIER_TICKS: u64 = 1_000_000;

/// Upper bound on the time between two `poll_attach` calls (and limit checks) in the loop.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Initialises the probe at `Level::Normal` with the given checkpoint names and
/// [`RING_CAPACITY`]; prints the error and exits 2 if it cannot.
///
/// If [`WAIT_ATTACH_ENV`] is set (the harness sets it), polls for a reader every 1 ms until one
/// attaches or that many ms pass (then warns on stderr and continues), so that measurement starts
/// only once the reader is there.
pub fn start(names: &[&str]) -> Session {
    let wait = match std::env::var(WAIT_ATTACH_ENV) {
        Err(_) => None,
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => {
                eprintln!("{WAIT_ATTACH_ENV}: {v:?} is not a number of milliseconds");
                std::process::exit(2)
            }
        },
    };
    let mut session =
        match funcscope::Builder::new(Level::Normal).checkpoints(names).ring_capacity(RING_CAPACITY).init() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("funcscope init failed: {e}");
                std::process::exit(2)
            }
        };
    for w in session.warnings() {
        eprintln!("funcscope: {w}");
    }
    if let Some(wait) = wait {
        let t0 = Instant::now();
        let mut reported = false;
        loop {
            match session.poll_attach() {
                Ok(AttachStatus::Attached) => break,
                Ok(_) => {}
                Err(e) if !reported => {
                    eprintln!("funcscope: poll_attach failed while waiting for a reader: {e}");
                    reported = true;
                }
                Err(_) => {}
            }
            if t0.elapsed() >= wait {
                eprintln!(
                    "funcscope: no reader attached within {} ms ({WAIT_ATTACH_ENV}); measuring anyway",
                    wait.as_millis()
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    session
}

/// Brackets measured sections. See the crate docs for why scenarios go through this trait.
pub trait Meter {
    /// ENTER checkpoint `idx`.
    fn enter(&mut self, idx: usize);
    /// EXIT checkpoint `idx`.
    fn exit(&mut self, idx: usize);
}

/// The real meter: `funcscope::enter!`/`exit!`, inlined.
#[derive(Clone, Copy, Debug, Default)]
pub struct Probe;

impl Meter for Probe {
    #[inline(always)]
    fn enter(&mut self, idx: usize) {
        funcscope::enter!(idx);
    }
    #[inline(always)]
    fn exit(&mut self, idx: usize) {
        funcscope::exit!(idx);
    }
}

/// The calibration meter: the same clock reads as the probe, accumulated privately.
#[derive(Clone, Debug)]
pub struct CalibMeter {
    kind: ClockKind,
    start: Vec<u64>,
    sum: Vec<u64>,
    count: Vec<u64>,
}

impl CalibMeter {
    /// A meter for `n` checkpoints on `kind`'s clock.
    pub fn new(n: usize, kind: ClockKind) -> CalibMeter {
        CalibMeter { kind, start: vec![0; n], sum: vec![0; n], count: vec![0; n] }
    }

    /// Mean ticks per call of each checkpoint (0 for one never called).
    pub fn mean_ticks(&self) -> Vec<f64> {
        self.sum.iter().zip(&self.count).map(|(&s, &c)| if c == 0 { 0.0 } else { s as f64 / c as f64 }).collect()
    }

    /// Calls counted per checkpoint.
    pub fn counts(&self) -> &[u64] {
        &self.count
    }
}

impl Meter for CalibMeter {
    #[inline(always)]
    fn enter(&mut self, idx: usize) {
        self.start[idx] = clock::ticks(self.kind);
    }
    #[inline(always)]
    fn exit(&mut self, idx: usize) {
        let d = clock::ticks(self.kind).wrapping_sub(self.start[idx]);
        if d < CALIBRATION_OUTLIER_TICKS {
            self.sum[idx] += d;
            self.count[idx] += 1;
        }
    }
}

/// One instrumented workload. Implemented by each binary in `src/bin/`.
pub trait Scenario: Sized {
    /// The binary's name, for messages and the summary line.
    const NAME: &'static str;
    /// Checkpoint names by index: stable snake_case, unique; baselines key on them.
    const CHECKPOINTS: &'static [&'static str];

    /// Builds the workload's state and inputs from `seed` (deterministically).
    fn new(seed: u64) -> Self;

    /// One iteration of the main loop. Brackets each measured operation with `m.enter(IDX)` /
    /// `m.exit(IDX)` (never nested for the same index) and calls `plant.extra(IDX)` right before
    /// each exit. Returns a value folded into the run's checksum, so the work cannot be optimised
    /// away.
    fn step<M: Meter>(&mut self, m: &mut M, plant: &Plant) -> u64;
}

/// What calibration measured.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// ENTER->EXIT ticks per call, by checkpoint: the median of the blocks' means.
    pub cost_ticks: Vec<f64>,
    /// Calls seen, by checkpoint.
    pub calls: Vec<u64>,
    /// Tick frequency over the calibration, Hz (for printing in ns only).
    pub freq_hz: f64,
    /// The plant chain's cost.
    pub chain: plant::ChainCost,
}

impl Calibration {
    /// Converts ticks to ns at the measured frequency.
    pub fn ns(&self, ticks: f64) -> f64 {
        if self.freq_hz > 0.0 {
            ticks * 1e9 / self.freq_hz
        } else {
            f64::NAN
        }
    }
}

/// Runs a throwaway instance of `S` (seeded with `seed`) for `dur` under a [`CalibMeter`], then
/// measures the plant chain. Nothing is recorded in a probe region.
///
/// The time is cut into [`CALIBRATION_BLOCKS`] blocks and each checkpoint's cost is the median of
/// its per-block means: on a machine whose speed drifts (see the machine notes), one slow spell
/// during calibration then does not inflate a plant.
pub fn calibrate<S: Scenario>(seed: u64, dur: Duration, plant: &Plant) -> Calibration {
    let kind = clock::decide(funcscope::ClockChoice::Auto).kind;
    let n = S::CHECKPOINTS.len();
    let mut w = S::new(seed);
    let mut blocks: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut calls = vec![0u64; n];
    let (t0, n0, _) = clock::calibration_pair(kind);
    let block = dur / CALIBRATION_BLOCKS;
    let mut sink = 0u64;
    for _ in 0..CALIBRATION_BLOCKS {
        let mut m = CalibMeter::new(n, kind);
        let deadline = Instant::now() + block;
        loop {
            for _ in 0..16 {
                sink = sink.rotate_left(7) ^ w.step(&mut m, plant);
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        for (i, (&mean, &c)) in m.mean_ticks().iter().zip(m.counts()).enumerate() {
            if c > 0 {
                blocks[i].push(mean);
                calls[i] += c;
            }
        }
    }
    black_box(sink);
    let (t1, n1, _) = clock::calibration_pair(kind);
    let freq_hz = if n1 > n0 { t1.wrapping_sub(t0) as f64 * 1e9 / (n1 - n0) as f64 } else { 0.0 };
    let cost_ticks = blocks.iter_mut().map(|b| if b.is_empty() { 0.0 } else { plant::median(b) }).collect();
    Calibration { cost_ticks, calls, freq_hz, chain: plant::measure_chain(kind) }
}

/// What [`run_loop`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Iterations of the body.
    pub iterations: u64,
    /// Wall time of the loop.
    pub elapsed: Duration,
    /// Fold of the body's return values.
    pub checksum: u64,
}

/// Runs `body` until `args`' duration or iteration limit, polling for readers at least every
/// [`POLL_INTERVAL`]; prints `<name>: iterations=N elapsed_ms=T checksum=X` on stdout and cleans
/// the session up.
///
/// The limit is checked, and `poll_attach` called, every K iterations, where K adapts so that a
/// check comes every 0.25-1 ms whatever an iteration costs: outside measured sections, and rarely
/// enough that its cost (a clock read and one failed `accept`) is negligible.
pub fn run_loop(mut session: Session, args: &Args, name: &str, mut body: impl FnMut() -> u64) -> Summary {
    let t0 = Instant::now();
    let mut last = t0;
    let mut k: u64 = 1;
    let mut since = 0u64;
    let mut n = 0u64;
    let mut checksum = 0u64;
    let mut reported = false;
    let cap = args.iterations.unwrap_or(u64::MAX);
    while n < cap {
        // Multiplying mixes every iteration's value into all later bits (a rotate-xor fold cancels
        // out over a corpus cycle of a multiple of 64 inputs).
        checksum = (checksum ^ body()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        n += 1;
        since += 1;
        if since < k {
            continue;
        }
        since = 0;
        if let Err(e) = session.poll_attach() {
            if !reported {
                eprintln!("{name}: poll_attach: {e} (further errors not shown)");
                reported = true;
            }
        }
        let now = Instant::now();
        let gap = now - last;
        last = now;
        if args.duration.is_some_and(|d| now - t0 >= d) {
            break;
        }
        if gap < POLL_INTERVAL / 4 {
            k = k.saturating_mul(2);
        } else if gap > POLL_INTERVAL && k > 1 {
            k /= 2;
        }
    }
    let elapsed = t0.elapsed();
    let checksum = black_box(checksum);
    println!("{name}: iterations={n} elapsed_ms={:.1} checksum={checksum:016x}", elapsed.as_secs_f64() * 1e3);
    session.cleanup();
    Summary { iterations: n, elapsed, checksum }
}

/// The whole life of a scenario binary: arguments, plant, calibration, probe, loop. Exits 2 on
/// bad input (see the crate docs).
pub fn main<S: Scenario>() {
    let args = args::from_env_or_exit(S::NAME);
    let mut plant = Plant::from_env_or_exit(S::NAME, S::CHECKPOINTS);
    let cal = calibrate::<S>(args.seed, CALIBRATION, &plant);
    let costs: Vec<String> =
        S::CHECKPOINTS.iter().zip(&cal.cost_ticks).map(|(n, &t)| format!("{n}={:.1}ns", cal.ns(t))).collect();
    eprintln!("calib: {} {} (chain {:.2} ns/step)", S::NAME, costs.join(" "), cal.ns(cal.chain.per_step_ticks));
    if let Some(i) = cal.calls.iter().position(|&c| c == 0) {
        eprintln!("calib: warning: checkpoint {} was never called during calibration", S::CHECKPOINTS[i]);
    }
    for s in plant.size(&cal.cost_ticks, cal.chain) {
        let planted = s.steps * cal.chain.per_step_ticks + cal.chain.fixed_ticks;
        eprintln!(
            "plant: {} +{}% = {:.1} chain iterations (~{:.1} ns on a {:.1} ns call){}",
            S::CHECKPOINTS[s.idx],
            s.percent,
            s.steps,
            cal.ns(planted),
            cal.ns(s.cost_ticks),
            if s.below_resolution { "; below resolution: only the call into the chain remains" } else { "" }
        );
    }
    let mut w = S::new(args.seed);
    let session = start(S::CHECKPOINTS);
    run_loop(session, &args, S::NAME, || w.step(&mut Probe, &plant));
}
