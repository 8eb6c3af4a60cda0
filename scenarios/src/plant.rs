//! Planted slowdowns: real extra work inside a measured section, to test the regression gate.
//!
//! `FUNCSCOPE_PLANT=<checkpoint>=<percent>[,<checkpoint>=<percent>...]` (percent may be
//! fractional: `parse_headers=2.5`) makes a scenario execute extra work worth that percentage of
//! the checkpoint's normal cost between its ENTER and EXIT. The recorded numbers are never
//! touched: the gate must find the slowdown the way it would find a real one.
//!
//! # Why a dependent arithmetic chain
//! The extra work is a chain of `xorshift; multiply` steps in which each step needs the previous
//! result ([`chain`]). Unlike a sleep or a spin on the clock, it is ordinary CPU work: it speeds up
//! and slows down with the core's frequency and with neighbours' interference the way the real
//! work does, so a planted 5% stays about 5% of the call on a fast or a slow machine. Its seed
//! and result go through [`std::hint::black_box`], so the optimiser can neither precompute nor
//! delete it.
//!
//! # Sizing
//! The chain length of each planted checkpoint is `pct/100 × cost / per_iteration`, where `cost`
//! is the checkpoint's mean ENTER->EXIT time measured at startup on the scenario's own code (see
//! `crate::calibrate`), and `per_iteration` the chain's cost per step measured right after, both
//! in ticks of the probe's clock. The fixed cost of calling into the chain is measured too and
//! subtracted. Fractional lengths are honoured on average: each call runs `floor(n)` or
//! `floor(n) + 1` steps, chosen by a 16-bit fixed-point accumulator, so a plant of 0.3 steps per
//! call costs 0.3 steps per call on average.
//!
//! Out-of-order execution lets the tail of the body and the chain overlap, so the slowdown the
//! probe sees may differ from the planted percentage, by more for small plants on short calls.
//! Verify small plants by measurement; do not assume them.

use std::cell::Cell;
use std::fmt;
use std::hint::black_box;

use funcscope::clock;
use funcscope::ClockKind;

/// The environment variable that plants slowdowns ([`funcscope::env::PLANT`]).
pub const PLANT_ENV: &str = funcscope::env::PLANT;

/// The largest accepted percentage. A 10x slowdown is far beyond anything a gate needs to prove
/// it catches, and a bound keeps a typo (`50000`) from making a run take minutes.
pub const MAX_PERCENT: f64 = 1000.0;

/// Why a `FUNCSCOPE_PLANT` value was rejected. The message names the variable and the bad part.
#[derive(Clone, Debug, PartialEq)]
pub enum PlantError {
    /// An entry without `=` (or an empty entry between commas).
    Syntax(String),
    /// The percent is not a finite number in `0..=MAX_PERCENT`.
    BadPercent {
        /// The whole entry.
        entry: String,
        /// Its percent part.
        value: String,
    },
    /// The scenario has no checkpoint of that name.
    UnknownCheckpoint {
        /// The name given.
        name: String,
        /// The checkpoints this scenario has.
        known: Vec<String>,
    },
    /// The same checkpoint is planted twice.
    Duplicate(String),
}

impl fmt::Display for PlantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlantError::Syntax(e) => {
                write!(f, "{PLANT_ENV}: entry {e:?} is not <checkpoint>=<percent> (e.g. parse_headers=2.5)")
            }
            PlantError::BadPercent { entry, value } => {
                write!(f, "{PLANT_ENV}: entry {entry:?}: percent {value:?} is not a number between 0 and {MAX_PERCENT}")
            }
            PlantError::UnknownCheckpoint { name, known } => write!(
                f,
                "{PLANT_ENV}: this scenario has no checkpoint {name:?}; its checkpoints are {}",
                known.join(", ")
            ),
            PlantError::Duplicate(name) => write!(f, "{PLANT_ENV}: checkpoint {name:?} is planted twice"),
        }
    }
}

impl std::error::Error for PlantError {}

/// Parses a `FUNCSCOPE_PLANT` value against the scenario's checkpoint names: a list of
/// (checkpoint index, percent). An empty or all-blank value plants nothing.
pub fn parse_spec(value: &str, names: &[&str]) -> Result<Vec<(usize, f64)>, PlantError> {
    let mut out: Vec<(usize, f64)> = Vec::new();
    if value.trim().is_empty() {
        return Ok(out);
    }
    for entry in value.split(',') {
        let entry = entry.trim();
        let Some((name, pct)) = entry.split_once('=') else {
            return Err(PlantError::Syntax(entry.to_owned()));
        };
        let (name, pct_str) = (name.trim(), pct.trim());
        if name.is_empty() {
            return Err(PlantError::Syntax(entry.to_owned()));
        }
        let pct_str = pct_str.strip_suffix('%').unwrap_or(pct_str);
        let pct: f64 = match pct_str.parse() {
            Ok(p) if (0.0..=MAX_PERCENT).contains(&p) => p,
            _ => return Err(PlantError::BadPercent { entry: entry.to_owned(), value: pct.trim().to_owned() }),
        };
        let Some(idx) = names.iter().position(|n| *n == name) else {
            return Err(PlantError::UnknownCheckpoint {
                name: name.to_owned(),
                known: names.iter().map(|s| s.to_string()).collect(),
            });
        };
        if out.iter().any(|&(i, _)| i == idx) {
            return Err(PlantError::Duplicate(name.to_owned()));
        }
        out.push((idx, pct));
    }
    Ok(out)
}

/// One checkpoint's planted work: `whole + frac/65536` chain steps per call on average.
#[derive(Debug, Default)]
struct Slot {
    /// Planted percentage (0 = not planted).
    percent: f64,
    /// Whole chain steps per call.
    whole: u64,
    /// Fractional steps per call, in 1/65536ths; in `0..65536`.
    frac: u32,
    /// Fixed-point accumulator of the fractional steps; in `0..65536`.
    acc: Cell<u32>,
}

/// The planted slowdowns of one scenario run, indexed by checkpoint.
///
/// Created unsized (every checkpoint does zero extra steps) and sized once by [`Plant::size`].
/// [`Plant::extra`] is called inside every measured section, planted or not, so that planted and
/// unplanted runs execute the same code apart from the chain itself.
#[derive(Debug)]
pub struct Plant {
    slots: Vec<Slot>,
}

/// What [`Plant::size`] decided for one planted checkpoint (for the stderr line).
#[derive(Clone, Debug, PartialEq)]
pub struct Sizing {
    /// Checkpoint index.
    pub idx: usize,
    /// Planted percentage.
    pub percent: f64,
    /// The checkpoint's measured mean cost, ticks per call.
    pub cost_ticks: f64,
    /// Chain steps per call (fractional on average).
    pub steps: f64,
    /// Whether the target was smaller than the fixed cost of calling the chain (then 0 steps run
    /// and the plant is only that fixed cost).
    pub below_resolution: bool,
}

impl Plant {
    /// A plant for `n` checkpoints with nothing planted.
    pub fn none(n: usize) -> Plant {
        Plant { slots: (0..n).map(|_| Slot::default()).collect() }
    }

    /// A plant for `n` checkpoints with the given (index, percent) entries, not yet sized.
    ///
    /// # Panics
    /// If an index is `>= n` ([`parse_spec`] never returns one).
    pub fn new(n: usize, spec: &[(usize, f64)]) -> Plant {
        let mut p = Plant::none(n);
        for &(idx, pct) in spec {
            p.slots[idx].percent = pct;
        }
        p
    }

    /// Reads [`PLANT_ENV`]; on a malformed value prints the error and exits 2.
    pub fn from_env_or_exit(prog: &str, names: &[&str]) -> Plant {
        let value = match std::env::var(PLANT_ENV) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => String::new(),
            Err(std::env::VarError::NotUnicode(_)) => {
                eprintln!("{prog}: {PLANT_ENV} is not valid UTF-8");
                std::process::exit(2)
            }
        };
        match parse_spec(&value, names) {
            Ok(spec) => Plant::new(names.len(), &spec),
            Err(e) => {
                eprintln!("{prog}: {e}");
                std::process::exit(2)
            }
        }
    }

    /// The planted percentage of checkpoint `idx` (0 when not planted).
    pub fn percent(&self, idx: usize) -> f64 {
        self.slots.get(idx).map_or(0.0, |s| s.percent)
    }

    /// Whether any checkpoint is planted.
    pub fn any(&self) -> bool {
        self.slots.iter().any(|s| s.percent > 0.0)
    }

    /// Average chain steps per call of checkpoint `idx`.
    pub fn steps(&self, idx: usize) -> f64 {
        self.slots.get(idx).map_or(0.0, |s| s.whole as f64 + s.frac as f64 / 65536.0)
    }

    /// Sets checkpoint `idx` to run `steps` chain steps per call on average (negative = 0).
    pub fn set_steps(&mut self, idx: usize, steps: f64) {
        let steps = steps.max(0.0);
        let s = &mut self.slots[idx];
        s.whole = steps.floor() as u64;
        s.frac = (((steps - steps.floor()) * 65536.0).round() as u32).min(65535);
        s.acc.set(0);
    }

    /// Sizes every planted checkpoint from its measured mean cost (`cost_ticks[idx]`, ticks per
    /// call) and the chain's cost. Returns one [`Sizing`] per planted checkpoint.
    pub fn size(&mut self, cost_ticks: &[f64], chain: ChainCost) -> Vec<Sizing> {
        let mut out = Vec::new();
        for idx in 0..self.slots.len() {
            let pct = self.slots[idx].percent;
            if pct <= 0.0 {
                continue;
            }
            let cost = cost_ticks.get(idx).copied().unwrap_or(0.0);
            let target = pct / 100.0 * cost;
            let below = target < chain.fixed_ticks;
            let steps = if chain.per_step_ticks > 0.0 {
                (target - chain.fixed_ticks).max(0.0) / chain.per_step_ticks
            } else {
                0.0
            };
            // Below resolution the planted path still runs (with the least fraction of a step),
            // so the plant is the fixed cost as documented, not nothing.
            self.set_steps(idx, steps.max(1.0 / 65536.0));
            out.push(Sizing { idx, percent: pct, cost_ticks: cost, steps, below_resolution: below });
        }
        out
    }

    /// The planted work of checkpoint `idx`: call it inside the measured section, right before
    /// EXIT. Does nothing (one load and a branch) for an unplanted checkpoint.
    #[inline(always)]
    pub fn extra(&self, idx: usize) {
        if let Some(s) = self.slots.get(idx) {
            if s.whole != 0 || s.frac != 0 {
                run_slot(s, idx as u64);
            }
        }
    }
}

/// The planted path of [`Plant::extra`], inlined into the measured section so that its fixed
/// cost (the accumulator and the loop set-up) is a few cycles rather than two calls.
#[inline(always)]
fn run_slot(s: &Slot, seed: u64) {
    let acc = s.acc.get() + s.frac;
    s.acc.set(acc & 0xFFFF);
    let steps = s.whole + u64::from(acc >> 16);
    black_box(chain_inline(steps, seed));
    wait_for_completion();
}

/// Makes the planted work count in full. EXIT's `rdtsc` is not ordered after earlier
/// instructions: without a fence it executes as soon as it enters the out-of-order window, while
/// a dependent chain behind it may still run for hundreds of cycles, so most of a short plant was
/// never measured (measured 2026-11-23: a "10 %" plant moved the median by 4.4 %). `lfence`
/// waits until every earlier instruction has completed ([`funcscope::clock::wait_for_completion`]);
/// its own few cycles are part of the fixed cost that calibration measures and subtracts.
#[inline(always)]
fn wait_for_completion() {
    funcscope::clock::wait_for_completion();
}

/// `steps` dependent steps of `x ^= x >> 29; x *= K` over a black-boxed seed: about 5 cycles a
/// step (shift 1, xor 1, multiply 3), none of which can start before the previous one ends.
#[inline(always)]
fn chain_inline(steps: u64, seed: u64) -> u64 {
    let mut x = black_box(seed) | 1;
    for _ in 0..steps {
        x = (x ^ (x >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    x
}

/// The plant's chain as a function (the measured section inlines the same loop).
#[inline(never)]
pub fn chain(steps: u64, seed: u64) -> u64 {
    chain_inline(steps, seed)
}

/// The chain's measured cost in ticks of the probe's clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChainCost {
    /// Cost of one call of zero steps (call, accumulator, black boxes), ticks; >= 0.
    pub fixed_ticks: f64,
    /// Cost of one more step, ticks; > 0 on any real clock.
    pub per_step_ticks: f64,
}

/// Measures [`ChainCost`] on `kind`'s clock: the median over 9 repetitions of a long chain (per
/// step) and of many zero-step planted calls (fixed), each about 0.07-0.1 ms (1.5 ms in all, a
/// small part of a run's fixed cost next to the 10 ms calibration; at ~180 k ticks a repetition
/// is still far above the clock's ~26-tick resolution). The median, like the checkpoint costs it
/// is compared with (see `crate::calibrate`), so that one slow spell moves neither.
pub fn measure_chain(kind: ClockKind) -> ChainCost {
    const LONG: u64 = 50_000;
    const CALLS: u64 = 10_000;
    const REPS: usize = 9;
    let mut per = [0f64; REPS];
    let mut fixed = [0f64; REPS];
    // Four slots in turn, so the loop is not serialised on one accumulator's store-to-load
    // round trip, which a measured section (one planted call each) does not wait for either.
    // Called through `Plant::extra`, the very path a measured section runs, so that its dispatch
    // (a bounds check and a branch optimised; several calls in an unoptimised build) is counted
    // too: measured on `run_slot` alone, a debug build's 2 % plant delivered 3 %.
    let plant = Plant { slots: (0..4).map(|_| Slot { percent: 1.0, whole: 0, frac: 1, acc: Cell::new(0) }).collect() };
    for r in 0..REPS {
        let t0 = clock::ticks(kind);
        black_box(chain(LONG, 3));
        let t1 = clock::ticks(kind);
        per[r] = t1.wrapping_sub(t0) as f64 / LONG as f64;
        let t0 = clock::ticks(kind);
        for i in 0..CALLS {
            black_box(&plant).extra((i & 3) as usize);
        }
        let t1 = clock::ticks(kind);
        fixed[r] = t1.wrapping_sub(t0) as f64 / CALLS as f64;
    }
    ChainCost { fixed_ticks: median(&mut fixed).max(0.0), per_step_ticks: median(&mut per) }
}

/// The median of a non-empty slice (sorted in place; the upper middle for even lengths).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["parse_request_line", "parse_headers", "route_lookup"];

    #[test]
    fn parses_good_and_fractional() {
        assert_eq!(parse_spec("parse_headers=5", NAMES).unwrap(), vec![(1, 5.0)]);
        assert_eq!(parse_spec("parse_headers=2.5, route_lookup = 0.25%", NAMES).unwrap(), vec![(1, 2.5), (2, 0.25)]);
        assert!(parse_spec("", NAMES).unwrap().is_empty());
        assert!(parse_spec("  ", NAMES).unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_spec("parse_headers", NAMES), Err(PlantError::Syntax("parse_headers".into())));
        assert_eq!(parse_spec("parse_headers=5,", NAMES), Err(PlantError::Syntax("".into())));
        assert_eq!(parse_spec("=5", NAMES), Err(PlantError::Syntax("=5".into())));
        for bad in ["x", "", "-1", "NaN", "inf", "1e9", "5%%"] {
            let e = parse_spec(&format!("parse_headers={bad}"), NAMES).unwrap_err();
            assert!(matches!(e, PlantError::BadPercent { .. }), "{bad}: {e:?}");
            let msg = e.to_string();
            assert!(msg.contains(PLANT_ENV) && msg.contains(&format!("{bad:?}")), "{msg}");
        }
        assert_eq!(
            parse_spec("route_lookup=1,route_lookup=2", NAMES),
            Err(PlantError::Duplicate("route_lookup".into()))
        );
    }

    #[test]
    fn rejects_unknown_name() {
        let e = parse_spec("parse_body=5", NAMES).unwrap_err();
        assert!(matches!(&e, PlantError::UnknownCheckpoint { name, .. } if name == "parse_body"));
        let msg = e.to_string();
        assert!(msg.contains(PLANT_ENV) && msg.contains("parse_body") && msg.contains("parse_headers"), "{msg}");
    }

    #[test]
    fn sizing_and_fractional_steps() {
        let mut p = Plant::new(3, &[(1, 10.0), (2, 1.0)]);
        let chain = ChainCost { fixed_ticks: 2.0, per_step_ticks: 4.0 };
        let s = p.size(&[100.0, 1000.0, 100.0], chain);
        assert_eq!(s.len(), 2);
        // 10% of 1000 = 100 ticks, minus 2 fixed, over 4 per step.
        assert!((p.steps(1) - 24.5).abs() < 1e-3);
        // 1% of 100 = 1 tick < 2 fixed: below resolution, zero steps.
        assert!(s[1].below_resolution);
        assert!(p.steps(2) > 0.0 && p.steps(2) < 1e-4, "the planted path still runs");
        assert_eq!(p.steps(0), 0.0);
        assert!(p.any());
        assert!(!Plant::none(3).any());
    }

    #[test]
    fn fractional_accumulator_is_exact_on_average() {
        let mut p = Plant::none(1);
        p.set_steps(0, 2.25);
        let s = &p.slots[0];
        let mut total = 0u64;
        for _ in 0..400 {
            let acc = s.acc.get() + s.frac;
            s.acc.set(acc & 0xFFFF);
            total += s.whole + u64::from(acc >> 16);
        }
        assert_eq!(total, 900);
        p.extra(0); // runs without panicking
        p.extra(7); // out of range: nothing
    }

    #[test]
    fn chain_is_deterministic_and_depends_on_length() {
        assert_eq!(chain(100, 1), chain(100, 1));
        assert_ne!(chain(100, 1), chain(101, 1));
    }
}
