//! Scenario `uprobe_gate`: a function that is *not* instrumented, gated through a uprobe.
//!
//! Checkpoint `step` (probe) wraps one call of [`gated_work`], a plain function with no
//! ENTER/EXIT of its own: `[[scenario.uprobe]] name = "gated_work", symbol =
//! "uprobe_gate::gated_work"` in `funcscope.toml` measures it from outside, as the harness would
//! measure a library function. `FUNCSCOPE_PLANT=step=<percent>` plants the extra work *inside*
//! `gated_work`, so the uprobe sees the slowdown and the gate can be tested on it.

#![forbid(unsafe_code)]

use std::hint::black_box;

use funcscope_scenarios::{Meter, Plant, Scenario};

const STEP: usize = 0;

/// Dependent arithmetic steps per call: a few microseconds, so that the probes' own cost per call
/// (about 2 us, more on a loaded VM) is not most of what is measured.
const WORK: u64 = 4000;

/// The gated function: `WORK` dependent xorshift steps, then the planted work of `step`.
#[inline(never)]
fn gated_work(seed: u64, plant: &Plant) -> u64 {
    let mut x = black_box(seed) | 1;
    for _ in 0..WORK {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    plant.extra(STEP);
    black_box(x)
}

struct Gate {
    seed: u64,
}

impl Scenario for Gate {
    const NAME: &'static str = "uprobe_gate";
    const CHECKPOINTS: &'static [&'static str] = &["step"];

    fn new(seed: u64) -> Self {
        Gate { seed }
    }

    fn step<M: Meter>(&mut self, m: &mut M, plant: &Plant) -> u64 {
        self.seed = self.seed.wrapping_add(1);
        m.enter(STEP);
        let r = gated_work(self.seed, plant);
        m.exit(STEP);
        r
    }
}

fn main() {
    funcscope_scenarios::main::<Gate>();
}
