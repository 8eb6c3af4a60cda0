//! What does an empty ENTER/EXIT cost, next to the clock reads it is made of?
//!
//! One process run measures, side by side:
//! * `floor`: two bare tick reads (`funcscope::clock::hw_ticks()` twice, difference black-boxed),
//!   the least any ENTER/EXIT pair can cost;
//! * `lite`, `normal`, `deep`, `full`: `funcscope::enter(0); funcscope::exit(0);` around an empty
//!   body with a session at that level (default ring capacity, memfd backing);
//! * `floor_fenced`: two fenced tick reads (`funcscope::clock::fenced_hw_ticks()`, `lfence;
//!   rdtsc` on x86_64), the least a fenced pair can cost;
//! * `normal_fenced`: `normal` with the fenced clock (`ClockChoice::Fenced`, `ClockKind::TscFenced`),
//!   printed beside `normal` so the price of waiting for the region's work is visible;
//! * `std_instant`: a `std::time::Instant::now()` pair;
//! * `quanta_instant`: a `quanta::Instant::now()` pair (quanta's global `Clock`);
//! * `disabled`: ENTER+EXIT with no session.
//!
//! First the criterion group `hot_path` (its usual output, and `target/criterion/hot_path/*`),
//! then the deliverable: a ratio table from interleaved rounds. Each round runs every variant once
//! (a fixed number of iterations, the order rotating from round to round, a fresh session for a
//! level variant), so slow drift of the machine hits all variants alike; the table shows the
//! median ns per pair over the rounds, the median of the per-round ratios to `floor` (paired within
//! a round), and criterion's mean for comparison.
//!
//! ```text
//! cargo bench -p funcscope --bench hot_path                 # ~1.5 minutes (10 variants)
//! cargo bench -p funcscope --bench hot_path -- --quick      # a few seconds
//! FUNCSCOPE_BENCH_QUICK=1 cargo bench -p funcscope --bench hot_path
//! FUNCSCOPE_BENCH_ROUNDS=41 FUNCSCOPE_BENCH_ITERS=4000000 cargo bench -p funcscope --bench hot_path
//! ```
//!
//! A session can be initialised once per process at a time, so each level variant runs between
//! its own `init` and `cleanup`. Cleanup leaves the region mapped on purpose (see `record.rs`): the
//! interleaved rounds leak about 2 MiB of shared memory per round, which is fine for a benchmark.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::Criterion;
use funcscope::{Builder, ClockChoice, Level, Session};

/// Checkpoint index used throughout.
const CP: usize = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Floor,
    Lite,
    Normal,
    Deep,
    Full,
    FloorFenced,
    NormalFenced,
    StdInstant,
    QuantaInstant,
    Disabled,
}

const VARIANTS: [Variant; 10] = [
    Variant::Floor,
    Variant::Lite,
    Variant::Normal,
    Variant::NormalFenced,
    Variant::FloorFenced,
    Variant::Deep,
    Variant::Full,
    Variant::StdInstant,
    Variant::QuantaInstant,
    Variant::Disabled,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Floor => "floor",
            Variant::Lite => "lite",
            Variant::Normal => "normal",
            Variant::Deep => "deep",
            Variant::Full => "full",
            Variant::FloorFenced => "floor_fenced",
            Variant::NormalFenced => "normal_fenced",
            Variant::StdInstant => "std_instant",
            Variant::QuantaInstant => "quanta_instant",
            Variant::Disabled => "disabled",
        }
    }

    fn level(self) -> Option<Level> {
        match self {
            Variant::Lite => Some(Level::Lite),
            Variant::Normal | Variant::NormalFenced => Some(Level::Normal),
            Variant::Deep => Some(Level::Deep),
            Variant::Full => Some(Level::Full),
            _ => None,
        }
    }

    fn clock(self) -> ClockChoice {
        if self == Variant::NormalFenced {
            ClockChoice::Fenced
        } else {
            ClockChoice::Auto
        }
    }

    /// `iters` pairs in a tight loop; returns the elapsed wall time.
    fn run(self, iters: u64) -> Duration {
        match self {
            Variant::Floor => loop_floor(iters),
            Variant::FloorFenced => loop_floor_fenced(iters),
            Variant::StdInstant => loop_std_instant(iters),
            Variant::QuantaInstant => loop_quanta_instant(iters),
            Variant::Lite
            | Variant::Normal
            | Variant::NormalFenced
            | Variant::Deep
            | Variant::Full
            | Variant::Disabled => loop_probe(iters),
        }
    }
}

// One non-inlined loop per kind, so each is compiled on its own as user code would be.

#[inline(never)]
fn loop_floor(iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        let a = funcscope::clock::hw_ticks();
        let b = funcscope::clock::hw_ticks();
        black_box(b.wrapping_sub(a));
    }
    t.elapsed()
}

#[inline(never)]
fn loop_floor_fenced(iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        let a = funcscope::clock::fenced_hw_ticks();
        let b = funcscope::clock::fenced_hw_ticks();
        black_box(b.wrapping_sub(a));
    }
    t.elapsed()
}

#[inline(never)]
fn loop_probe(iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        funcscope::enter(CP);
        funcscope::exit(CP);
    }
    t.elapsed()
}

#[inline(never)]
fn loop_std_instant(iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        black_box(Instant::now());
        black_box(Instant::now());
    }
    t.elapsed()
}

#[inline(never)]
fn loop_quanta_instant(iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        black_box(quanta::Instant::now());
        black_box(quanta::Instant::now());
    }
    t.elapsed()
}

fn socket_dir() -> PathBuf {
    std::env::temp_dir().join(format!("funcscope-bench-{}", std::process::id()))
}

fn start(level: Level, clock: ClockChoice, dir: &Path) -> Session {
    let s = Builder::new(level).checkpoints(&["bench"]).socket_dir(dir).clock(clock).init().unwrap_or_else(|e| {
        eprintln!("funcscope init at {level:?} failed: {e}");
        std::process::exit(1);
    });
    assert_eq!(s.level(), level);
    s
}

/// Runs `f` with a session at `v`'s level active (or none for the other variants).
fn with_session<R>(v: Variant, dir: &Path, f: impl FnOnce() -> R) -> R {
    match v.level() {
        Some(level) => {
            let s = start(level, v.clock(), dir);
            let r = f();
            s.cleanup();
            r
        }
        None => f(),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Criterion's mean (ns) for `hot_path/<bench>`, from the estimates it just wrote, if found.
fn criterion_mean_ns(bench: &str) -> Option<f64> {
    let home = if let Some(h) = std::env::var_os("CRITERION_HOME") {
        PathBuf::from(h)
    } else if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        PathBuf::from(t).join("criterion")
    } else {
        // <target>/<profile>/deps/hot_path-<hash>
        std::env::current_exe().ok()?.parent()?.parent()?.parent()?.join("criterion")
    };
    let text = std::fs::read_to_string(home.join("hot_path").join(bench).join("new/estimates.json")).ok()?;
    let after_mean = &text[text.find("\"mean\"")?..];
    let after_key = &after_mean[after_mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = after_key.find([',', '}'])?;
    after_key[..end].trim().parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |a: &str| args.iter().any(|x| x == a);
    let env_quick = std::env::var("FUNCSCOPE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let quick = env_quick || has("--quick");
    // `cargo bench` passes --bench; `cargo test --benches` does not (criterion then runs each
    // benchmark once as a smoke test, and so do we).
    let bench_mode = has("--bench") && !has("--test") && !has("--list");
    let dir = socket_dir();

    let mut c = Criterion::default().warm_up_time(Duration::from_millis(1000)).measurement_time(Duration::from_secs(3));
    if env_quick {
        c = c.warm_up_time(Duration::from_millis(200)).measurement_time(Duration::from_millis(500)).sample_size(20);
    }
    let mut c = c.configure_from_args();
    {
        let mut g = c.benchmark_group("hot_path");
        for v in VARIANTS {
            with_session(v, &dir, || {
                match v {
                    Variant::Floor => g.bench_function(v.name(), |b| {
                        b.iter(|| {
                            let a = funcscope::clock::hw_ticks();
                            let b = funcscope::clock::hw_ticks();
                            b.wrapping_sub(a)
                        })
                    }),
                    Variant::FloorFenced => g.bench_function(v.name(), |b| {
                        b.iter(|| {
                            let a = funcscope::clock::fenced_hw_ticks();
                            let b = funcscope::clock::fenced_hw_ticks();
                            b.wrapping_sub(a)
                        })
                    }),
                    Variant::StdInstant => g.bench_function(v.name(), |b| b.iter(|| (Instant::now(), Instant::now()))),
                    Variant::QuantaInstant => {
                        g.bench_function(v.name(), |b| b.iter(|| (quanta::Instant::now(), quanta::Instant::now())))
                    }
                    Variant::Lite
                    | Variant::Normal
                    | Variant::NormalFenced
                    | Variant::Deep
                    | Variant::Full
                    | Variant::Disabled => g.bench_function(v.name(), |b| {
                        b.iter(|| {
                            funcscope::enter(CP);
                            funcscope::exit(CP);
                        })
                    }),
                };
            });
        }
        g.finish();
    }
    c.final_summary();

    if !has("--list") {
        interleaved(bench_mode, quick, &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ratio table: every variant once per round, order rotating, a fixed number of iterations.
fn interleaved(bench_mode: bool, quick: bool, dir: &Path) {
    let (rounds, iters) = if !bench_mode {
        (1, 1_000)
    } else if quick {
        (7, 500_000)
    } else {
        (21, 2_000_000)
    };
    let rounds = env_u64("FUNCSCOPE_BENCH_ROUNDS").filter(|&r| r > 0).unwrap_or(rounds) as usize;
    let iters = env_u64("FUNCSCOPE_BENCH_ITERS").filter(|&i| i > 0).unwrap_or(iters);
    // Enough to wrap the default 64 Ki-entry ring a few times, so its lines are warm.
    let warm = (iters / 4).max(1 << 18).min(iters * 4);

    // Touch quanta's global clock (it calibrates on first use) outside the timed loops.
    black_box(quanta::Instant::now());
    let t0 = Instant::now();
    let mut ns: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); VARIANTS.len()];
    for r in 0..rounds {
        for k in 0..VARIANTS.len() {
            let i = (k + r) % VARIANTS.len();
            let v = VARIANTS[i];
            let d = with_session(v, dir, || {
                v.run(warm);
                v.run(iters)
            });
            ns[i].push(d.as_nanos() as f64 / iters as f64);
        }
    }
    let took = t0.elapsed();
    if !bench_mode {
        println!("hot_path: test mode, ran every variant once ({iters} pairs); run `cargo bench` for the table");
        return;
    }

    let floor = 0;
    let per_round_ratio = |i: usize| -> f64 {
        let mut r: Vec<f64> = ns[i].iter().zip(&ns[floor]).map(|(v, f)| v / f).collect();
        median(&mut r)
    };
    let crit_floor = criterion_mean_ns(VARIANTS[floor].name());
    println!();
    println!(
        "funcscope hot path: {rounds} interleaved rounds x {iters} pairs per variant, {:.1} s (medians over rounds)",
        took.as_secs_f64()
    );
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>15} {:>14} {:>12}",
        "variant", "ns/pair", "min", "max", "ratio-to-floor", "criterion ns", "crit. ratio"
    );
    for (i, v) in VARIANTS.iter().enumerate() {
        let mut s = ns[i].clone();
        let med = median(&mut s);
        let (lo, hi) = (s[0], s[s.len() - 1]);
        let crit = criterion_mean_ns(v.name());
        let fmt_opt = |x: Option<f64>, prec: usize| x.map_or_else(|| "-".to_string(), |x| format!("{x:.prec$}"));
        let crit_ratio = match (crit, crit_floor) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        println!(
            "{:<16} {:>9.2} {:>9.2} {:>9.2} {:>14.3}x {:>14} {:>11}x",
            v.name(),
            med,
            lo,
            hi,
            per_round_ratio(i),
            fmt_opt(crit, 2),
            fmt_opt(crit_ratio, 3),
        );
    }
    let normal = per_round_ratio(VARIANTS.iter().position(|&v| v == Variant::Normal).expect("normal is a variant"));
    println!("normal / floor = {normal:.3}x ({} the 1.1x target)", if normal <= 1.1 { "within" } else { "ABOVE" });
    let fenced = per_round_ratio(VARIANTS.iter().position(|&v| v == Variant::NormalFenced).expect("a variant"));
    println!(
        "normal_fenced / floor = {fenced:.3}x, {:.2}x normal (the price of waiting for the region's work)",
        fenced / normal
    );
}
