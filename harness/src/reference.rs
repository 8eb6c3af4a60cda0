//! The reference workload: fixed code, built into the harness, that measures how fast the machine
//! is *right now*, so that scenario runs can be judged relative to it.
//!
//! # Why
//! On the machines funcscope runs on, the same binary's per-call times drift by 10-35% over
//! minutes (CPU frequency, neighbours on the host, cache contention) and the guest cannot see it.
//! A baseline recorded days ago then says little about today's runs on its own. The harness runs
//! this workload as its own process (scenario [`REFERENCE_SCENARIO`], launched as the hidden
//! subcommand `__reference` of the binary that runs the CLI) right next to each scenario run; a
//! checkpoint can then be judged by `checkpoint_metric / reference_metric` per run, which cancels
//! the drift that slows both down.
//!
//! # Why a separate process that the code under test cannot influence
//! A correction is only sound if a regression in the code under test cannot move it. This code
//! links nothing of the scenarios or of the user's crates, so a slower checkpoint cannot make the
//! reference slower and hide itself. A factor computed from the checkpoints under test (their
//! common shift) would do exactly that: a change that slows all of them would be "drift". Running
//! it in its own process, with its own memory layout and its own probe region, also keeps it from
//! disturbing the scenario's caches, branch predictors or allocator, and makes each reference run
//! one more unit of replication measured exactly like a scenario run (same probe, same reader).
//!
//! # The three checkpoints
//! Drift does not slow everything alike: a frequency drop slows pure computation, a noisy
//! neighbour mostly slows what misses in the caches. Each checkpoint (a few hundred ns per call,
//! the range funcscope users measure) resembles one kind of code:
//! * `ref_alu`: a dependent integer multiply/xor/shift chain over a 64-word array (a hash or mix
//!   function): core clock speed only, no memory traffic.
//! * `ref_cache`: 32 dependent loads chasing a random single-cycle permutation over 1 MiB: L2/L3
//!   latency and contention on the shared cache. (1 MiB sits at the edge of this machine's L2: most
//!   runs read ~120-145 ns per call, a few ~250-300 ns; 8 MiB was tried and was worse, 1.7-4.7 us
//!   per call from process to process.)
//! * `ref_branchy`: parsing one seeded text record (numbers, words, `key=value`, `-` signs,
//!   delimiters): data-dependent branches and byte-at-a-time work, like protocol parsers.
//!
//! Inputs come from fixed seeds; the measured sections do not allocate; every result is folded
//! into a checksum that goes through [`black_box`].

use crate::stats::SplitMix64;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use funcscope::{AttachStatus, Level};

use crate::runner::Launch;

/// The scenario name reference runs are reported under (also the hidden subcommand's name).
pub const REFERENCE_SCENARIO: &str = "__reference";

/// The reference workload's checkpoints, by probe index.
pub const REFERENCE_CHECKPOINTS: [&str; 3] = ["ref_alu", "ref_cache", "ref_branchy"];

/// Environment variable with the time, in ms, to wait for a reader before measuring (the runner
/// sets it): [`funcscope::env::WAIT_ATTACH_MS`], under the name this module has always exported.
pub use funcscope::env::WAIT_ATTACH_MS as WAIT_ATTACH_ENV;

/// Default measured duration when neither `--duration-ms` nor `--iterations` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_millis(300);

/// Unmeasured iterations before the probe starts (caches, TLB, branch predictors): ~10-20 ms.
pub const WARMUP_ITERATIONS: u64 = 10_000;

/// The fixed seed of every reference run.
pub const SEED: u64 = 0x5EED_F0CA_11AB_1E00;

const ALU_WORDS: usize = 64;
const ALU_ROUNDS: usize = 128;
/// 256 Ki `u32` = 1 MiB.
const CACHE_ENTRIES: usize = 1 << 18;
const CACHE_HOPS: usize = 32;
const TEXT_BYTES: usize = 64 * 1024;
/// Iterations between limit checks and `poll_attach` calls (~0.2-0.5 ms).
const CHECK_EVERY: u64 = 256;

/// The reference workload's state: all inputs, built once from a seed.
#[derive(Clone, Debug)]
pub struct Workload {
    mix: [u64; ALU_WORDS],
    alu_state: u64,
    next: Vec<u32>,
    cursor: u32,
    text: Vec<u8>,
    text_pos: usize,
}

impl Workload {
    /// Builds the inputs from `seed` (deterministically; allocates ~1.1 MiB).
    pub fn new(seed: u64) -> Workload {
        let mut rng = SplitMix64::new(seed);
        let mut mix = [0u64; ALU_WORDS];
        for m in &mut mix {
            *m = rng.next_u64();
        }
        // Sattolo's algorithm: a random permutation that is one single cycle through every entry.
        let mut next: Vec<u32> = (0..CACHE_ENTRIES as u32).collect();
        for i in (1..CACHE_ENTRIES).rev() {
            let j = rng.below(i as u64) as usize;
            next.swap(i, j);
        }
        let mut text = Vec::with_capacity(TEXT_BYTES + 256);
        while text.len() < TEXT_BYTES {
            push_record(&mut rng, &mut text);
        }
        Workload { mix, alu_state: rng.next_u64(), next, cursor: 0, text, text_pos: 0 }
    }

    /// `ref_alu`: a dependent multiply/xor/shift chain over a 64-word array.
    #[inline(never)]
    pub fn alu(&mut self) -> u64 {
        let mut x = self.alu_state;
        for i in 0..ALU_ROUNDS {
            let j = i % ALU_WORDS;
            x = (x ^ self.mix[j]).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            x ^= x >> 29;
            self.mix[j] = self.mix[j].wrapping_add(x);
        }
        self.alu_state = x;
        x
    }

    /// `ref_cache`: 32 dependent loads around a random cycle over 1 MiB, continuing where the last
    /// call stopped.
    #[inline(never)]
    pub fn cache(&mut self) -> u64 {
        let mut p = self.cursor;
        let mut sum = 0u64;
        for _ in 0..CACHE_HOPS {
            p = self.next[p as usize];
            sum = sum.wrapping_add(u64::from(p));
        }
        self.cursor = p;
        sum
    }

    /// `ref_branchy`: parses the next text record (one line), returning a fold of its fields.
    #[inline(never)]
    pub fn branchy(&mut self) -> u64 {
        let buf = &self.text[..];
        let mut i = self.text_pos;
        let (mut acc, mut num, mut word, mut fields) = (0u64, 0u64, 0u64, 0u64);
        let mut neg = false;
        loop {
            let b = buf[i];
            i += 1;
            match b {
                b'0'..=b'9' => num = num.wrapping_mul(10).wrapping_add(u64::from(b - b'0')),
                b'-' => neg = true,
                b'=' => {
                    acc = acc.rotate_left(7) ^ word;
                    word = 0;
                }
                b',' | b'\n' => {
                    let v = if neg { num.wrapping_neg() } else { num };
                    acc = acc.rotate_left(5) ^ v ^ word;
                    (num, word, neg) = (0, 0, false);
                    fields += 1;
                    if b == b'\n' {
                        break;
                    }
                }
                _ => word = word.wrapping_mul(31).wrapping_add(u64::from(b)),
            }
        }
        self.text_pos = if i >= buf.len() { 0 } else { i };
        acc ^ fields
    }

    /// One iteration: the three checkpoints in order, bracketed with the probe's ENTER/EXIT when
    /// `PROBE` (indices as in [`REFERENCE_CHECKPOINTS`]). Returns a fold of the results.
    #[inline(always)]
    pub fn step<const PROBE: bool>(&mut self) -> u64 {
        if PROBE {
            funcscope::enter!(0);
        }
        let a = black_box(self.alu());
        if PROBE {
            funcscope::exit!(0);
            funcscope::enter!(1);
        }
        let c = black_box(self.cache());
        if PROBE {
            funcscope::exit!(1);
            funcscope::enter!(2);
        }
        let b = black_box(self.branchy());
        if PROBE {
            funcscope::exit!(2);
        }
        a ^ c.rotate_left(21) ^ b.rotate_left(42)
    }
}

/// One seeded text record: 4-10 comma-separated fields (numbers, words, `key=value`), then `\n`.
fn push_record(rng: &mut SplitMix64, out: &mut Vec<u8>) {
    let fields = 4 + rng.below(7);
    for f in 0..fields {
        if f > 0 {
            out.push(b',');
        }
        let kind = rng.below(3);
        if kind >= 1 {
            for _ in 0..2 + rng.below(8) {
                out.push(b'a' + rng.below(26) as u8);
            }
        }
        if kind == 1 {
            continue;
        }
        if kind == 2 {
            out.push(b'=');
        }
        if rng.below(4) == 0 {
            out.push(b'-');
        }
        for _ in 0..1 + rng.below(9) {
            out.push(b'0' + rng.below(10) as u8);
        }
    }
    out.push(b'\n');
}

/// What an unprobed run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunCounts {
    /// Iterations (each calls every checkpoint once).
    pub iterations: u64,
    /// Fold of every iteration's result.
    pub checksum: u64,
}

fn fold(checksum: u64, v: u64) -> u64 {
    (checksum ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Runs exactly `n` iterations on a fresh [`Workload`] from `seed`, without the probe.
pub fn run_iterations(seed: u64, n: u64) -> RunCounts {
    let mut w = Workload::new(seed);
    let mut checksum = 0;
    for _ in 0..n {
        checksum = fold(checksum, w.step::<false>());
    }
    RunCounts { iterations: n, checksum: black_box(checksum) }
}

/// Runs the workload (seed [`SEED`]) for about `dur`, without the probe.
pub fn run_for(dur: Duration) -> RunCounts {
    let mut w = Workload::new(SEED);
    let t0 = Instant::now();
    let (mut n, mut checksum) = (0u64, 0u64);
    loop {
        for _ in 0..CHECK_EVERY {
            checksum = fold(checksum, w.step::<false>());
        }
        n += CHECK_EVERY;
        if t0.elapsed() >= dur {
            break;
        }
    }
    RunCounts { iterations: n, checksum: black_box(checksum) }
}

/// The [`Launch`] of one reference run: `program [leading...] --duration-ms N`, where `program`
/// is normally `std::env::current_exe()` and `leading` is `["__reference"]`.
pub fn launch(
    program: PathBuf,
    leading: Vec<String>,
    duration: Duration,
    timeout: Duration,
    attach_timeout: Duration,
) -> Launch {
    let mut args = leading;
    args.extend(["--duration-ms".to_owned(), duration.as_millis().to_string()]);
    Launch {
        name: REFERENCE_SCENARIO.to_owned(),
        program,
        args,
        env: Vec::new(),
        timeout,
        attach_timeout,
        cpu: crate::runner::measurement_cpu(),
        // It is the harness's own (large) binary, and the same file on both sides of a session.
        fresh_copy: false,
        uprobes: Vec::new(),
        event_pairs: Vec::new(),
    }
}

/// Limits of one reference process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Opts {
    duration: Option<Duration>,
    iterations: Option<u64>,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts { duration: None, iterations: None };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or_else(|| format!("{name} needs a value"))?;
            v.parse::<u64>().map_err(|_| format!("{name}: {v:?} is not a non-negative integer"))
        };
        match a.as_str() {
            "--duration-ms" => o.duration = Some(Duration::from_millis(value("--duration-ms")?)),
            "--iterations" => o.iterations = Some(value("--iterations")?),
            other => return Err(format!("unknown argument {other:?} (expected --duration-ms N, --iterations N)")),
        }
    }
    if o.duration.is_none() && o.iterations.is_none() {
        o.duration = Some(DEFAULT_DURATION);
    }
    Ok(o)
}

/// The reference process's entry point (the hidden subcommand `__reference`; `args` are the
/// arguments after it): `--duration-ms N` (default 300) and/or `--iterations N`, whichever limit
/// comes first.
///
/// Builds the inputs, warms up for [`WARMUP_ITERATIONS`] unmeasured iterations, starts the probe
/// with [`REFERENCE_CHECKPOINTS`], waits up to [`WAIT_ATTACH_ENV`] ms for a reader, then runs the
/// three checkpoints in a loop, polling for readers every 256 iterations. Prints
/// `__reference: iterations=N elapsed_ms=T checksum=X` on stdout. Returns the exit code: 0, or 2
/// for bad arguments, a bad [`WAIT_ATTACH_ENV`] or a probe that could not start.
pub fn reference_main(args: &[String]) -> i32 {
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(m) => {
            eprintln!("{REFERENCE_SCENARIO}: {m}");
            return 2;
        }
    };
    let wait = match std::env::var(WAIT_ATTACH_ENV) {
        Err(_) => None,
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => {
                eprintln!("{REFERENCE_SCENARIO}: {WAIT_ATTACH_ENV}: {v:?} is not a number of milliseconds");
                return 2;
            }
        },
    };
    let mut w = Workload::new(SEED);
    let mut checksum = 0u64;
    for _ in 0..WARMUP_ITERATIONS {
        checksum = fold(checksum, w.step::<false>());
    }
    let mut session = match funcscope::Builder::new(Level::Normal)
        .checkpoints(&REFERENCE_CHECKPOINTS)
        .ring_capacity(1 << 20)
        .init()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{REFERENCE_SCENARIO}: funcscope init failed: {e}");
            return 2;
        }
    };
    for warning in session.warnings() {
        eprintln!("{REFERENCE_SCENARIO}: funcscope: {warning}");
    }
    if let Some(wait) = wait {
        let t0 = Instant::now();
        loop {
            if let Ok(AttachStatus::Attached) = session.poll_attach() {
                break;
            }
            if t0.elapsed() >= wait {
                eprintln!("{REFERENCE_SCENARIO}: no reader attached within {} ms; measuring anyway", wait.as_millis());
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let cap = opts.iterations.unwrap_or(u64::MAX);
    let t0 = Instant::now();
    let mut n = 0u64;
    let mut reported = false;
    while n < cap {
        checksum = fold(checksum, w.step::<true>());
        n += 1;
        if n % CHECK_EVERY != 0 {
            continue;
        }
        if let Err(e) = session.poll_attach() {
            if !reported {
                eprintln!("{REFERENCE_SCENARIO}: poll_attach: {e} (further errors not shown)");
                reported = true;
            }
        }
        if opts.duration.is_some_and(|d| t0.elapsed() >= d) {
            break;
        }
    }
    let elapsed = t0.elapsed();
    println!(
        "{REFERENCE_SCENARIO}: iterations={n} elapsed_ms={:.1} checksum={:016x}",
        elapsed.as_secs_f64() * 1e3,
        black_box(checksum)
    );
    session.cleanup();
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn args() {
        assert_eq!(parse_args(&[]).unwrap().duration, Some(DEFAULT_DURATION));
        let o = parse_args(&s(&["--duration-ms", "200", "--iterations", "5"])).unwrap();
        assert_eq!(o, Opts { duration: Some(Duration::from_millis(200)), iterations: Some(5) });
        assert!(parse_args(&s(&["--duration-ms"])).is_err());
        assert!(parse_args(&s(&["--duration-ms", "x"])).is_err());
        assert!(parse_args(&s(&["--bogus"])).is_err());
    }

    #[test]
    fn records_are_well_formed() {
        let w = Workload::new(1);
        assert!(w.text.len() >= TEXT_BYTES);
        assert_eq!(w.text.last(), Some(&b'\n'));
        assert!(w.text.iter().all(|b| b.is_ascii_alphanumeric() || b",=-\n".contains(b)));
    }

    #[test]
    fn permutation_is_one_cycle() {
        let w = Workload::new(2);
        let (mut p, mut steps) = (0u32, 0usize);
        loop {
            p = w.next[p as usize];
            steps += 1;
            if p == 0 {
                break;
            }
            assert!(steps <= CACHE_ENTRIES);
        }
        assert_eq!(steps, CACHE_ENTRIES);
    }
}
