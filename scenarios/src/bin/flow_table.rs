//! Scenario `flow_table`: a 5-tuple connection table in its steady state, driven in bursts.
//!
//! Checkpoints, per tick: `lookup_hit` (a burst of 8 packets of live flows: find and account),
//! `lookup_miss` (a burst of 8 packets of unknown flows), `insert` (4 new flows), `expire` (one
//! step of the idle-flow sweep). See `funcscope_scenarios::flow`.

#![forbid(unsafe_code)]

use funcscope_scenarios::flow::{FiveTuple, Traffic};
use funcscope_scenarios::{Meter, Plant, Scenario};

const LOOKUP_HIT: usize = 0;
const LOOKUP_MISS: usize = 1;
const INSERT: usize = 2;
const EXPIRE: usize = 3;

struct FlowTable {
    t: Traffic,
    hits: [(FiveTuple, u64); Traffic::BURST],
    misses: [FiveTuple; Traffic::BURST],
    new: [FiveTuple; Traffic::NEW_PER_TICK],
}

impl Scenario for FlowTable {
    const NAME: &'static str = "flow_table";
    const CHECKPOINTS: &'static [&'static str] = &["lookup_hit", "lookup_miss", "insert", "expire"];

    fn new(seed: u64) -> Self {
        FlowTable {
            t: Traffic::new(seed),
            hits: [(FiveTuple::default(), 0); Traffic::BURST],
            misses: [FiveTuple::default(); Traffic::BURST],
            new: [FiveTuple::default(); Traffic::NEW_PER_TICK],
        }
    }

    fn step<M: Meter>(&mut self, m: &mut M, plant: &Plant) -> u64 {
        let t = &mut self.t;
        t.tick();
        let now = t.now;
        t.hit_burst(&mut self.hits);
        for k in &mut self.misses {
            *k = t.miss_key();
        }
        for k in &mut self.new {
            *k = t.new_key();
        }

        m.enter(LOOKUP_HIT);
        let mut packets = 0;
        for (k, len) in &self.hits {
            packets += t.table.touch(k, now, *len).unwrap_or(0);
        }
        plant.extra(LOOKUP_HIT);
        m.exit(LOOKUP_HIT);

        m.enter(LOOKUP_MISS);
        let mut missed = 0;
        for k in &self.misses {
            missed += u64::from(t.table.get(k).is_none());
        }
        plant.extra(LOOKUP_MISS);
        m.exit(LOOKUP_MISS);

        m.enter(INSERT);
        let mut inserted = 0;
        for k in &self.new {
            inserted += u64::from(t.table.insert(*k, now, 60) == Ok(true));
        }
        plant.extra(INSERT);
        m.exit(INSERT);
        for k in self.new {
            t.remember(k);
        }

        m.enter(EXPIRE);
        let expired = t.table.expire(now, Traffic::IDLE, Traffic::SCAN);
        plant.extra(EXPIRE);
        m.exit(EXPIRE);

        packets ^ (missed << 32) ^ (inserted << 40) ^ ((expired as u64) << 48)
    }
}

fn main() {
    funcscope_scenarios::main::<FlowTable>();
}
