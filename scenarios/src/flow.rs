//! A connection (flow) table keyed by the IPv4 5-tuple (the `flow_table` scenario).
//!
//! What a load balancer, NAT or firewall fast path keeps per connection: an open-addressing hash
//! table with linear probing and *backward-shift deletion* (no tombstones, so probe sequences
//! stay short however many flows come and go), a fixed FxHash-style hash (deterministic: no
//! per-process random seed, so every run lays the table out identically), and an incremental
//! expiry "clock hand" that examines a bounded number of slots per call, so expiry never stalls
//! the packet path.
//!
//! **Invariant.** Every flow is reachable from its home slot by a probe that crosses no empty
//! slot. Insertion keeps it by taking the first empty slot; deletion keeps it by shifting later
//! members of the cluster back into the hole.
//!
//! [`Traffic`] drives the table the way the scenario does: per tick a burst of packets of live
//! flows (hits), a burst of packets of unknown flows (misses), a few new flows and one expiry
//! step, in a steady state at about half load.

use crate::rng::Rng;

/// An IPv4 5-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FiveTuple {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol (6 TCP, 17 UDP).
    pub proto: u8,
}

/// FxHash's multiplier (from Firefox and rustc): odd, with well-spread bits.
const FX_K: u64 = 0x517c_c1b7_2722_0a95;

/// Hash of a 5-tuple: two FxHash rounds over the packed words. Use the TOP bits for indexing
/// (a multiplicative hash mixes upward).
#[inline]
pub fn hash(k: &FiveTuple) -> u64 {
    let a = (u64::from(k.src) << 32) | u64::from(k.dst);
    let b = (u64::from(k.sport) << 24) | (u64::from(k.dport) << 8) | u64::from(k.proto);
    let h = a.wrapping_mul(FX_K);
    (h.rotate_left(5) ^ b).wrapping_mul(FX_K)
}

/// Per-flow state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The key.
    pub key: FiveTuple,
    /// Time of the first packet (the caller's clock units).
    pub first_seen: u64,
    /// Time of the latest packet; >= first_seen.
    pub last_seen: u64,
    /// Packets seen; >= 1.
    pub packets: u64,
    /// Bytes seen.
    pub bytes: u64,
}

/// Why an insert failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

/// Open-addressing flow table with a power-of-two number of slots.
#[derive(Clone, Debug)]
pub struct FlowTable {
    slots: Vec<Option<Flow>>,
    /// slots.len() - 1.
    mask: usize,
    /// 64 - log2(slots.len()): the hash's top bits index the table.
    shift: u32,
    len: usize,
    /// Next slot the expiry hand examines; in 0..slots.len().
    hand: usize,
}

impl FlowTable {
    /// Largest load before inserts fail: 7/8. Linear probing degrades sharply above ~0.9.
    pub const MAX_LOAD_NUM: usize = 7;
    /// Denominator of the maximum load.
    pub const MAX_LOAD_DEN: usize = 8;

    /// A table of `2^log2` slots.
    ///
    /// # Panics
    /// If `log2` is not in 1..=30.
    pub fn new(log2: u32) -> FlowTable {
        assert!((1..=30).contains(&log2), "FlowTable::new({log2}): log2 must be in 1..=30");
        let n = 1usize << log2;
        FlowTable { slots: vec![None; n], mask: n - 1, shift: 64 - log2, len: 0, hand: 0 }
    }

    /// Flows in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn home(&self, k: &FiveTuple) -> usize {
        (hash(k) >> self.shift) as usize
    }

    #[inline]
    fn find(&self, k: &FiveTuple) -> Result<usize, usize> {
        let mut i = self.home(k);
        loop {
            match &self.slots[i] {
                None => return Err(i),
                Some(f) if f.key == *k => return Ok(i),
                Some(_) => i = (i + 1) & self.mask,
            }
        }
    }

    /// The flow of `k`, if present.
    #[inline]
    pub fn get(&self, k: &FiveTuple) -> Option<&Flow> {
        self.find(k).ok().and_then(|i| self.slots[i].as_ref())
    }

    /// The flow of `k`, if present, for updating.
    #[inline]
    pub fn get_mut(&mut self, k: &FiveTuple) -> Option<&mut Flow> {
        match self.find(k) {
            Ok(i) => self.slots[i].as_mut(),
            Err(_) => None,
        }
    }

    /// Accounts one packet of `bytes` at `now` to `k`'s flow; returns its packet count, or
    /// `None` if there is no such flow.
    #[inline]
    pub fn touch(&mut self, k: &FiveTuple, now: u64, bytes: u64) -> Option<u64> {
        let f = self.get_mut(k)?;
        f.packets += 1;
        f.bytes += bytes;
        f.last_seen = f.last_seen.max(now);
        Some(f.packets)
    }

    /// Adds a flow for `k` starting at `now` with one packet of `bytes`; if it exists, accounts
    /// the packet instead. Returns whether a new flow was created.
    pub fn insert(&mut self, k: FiveTuple, now: u64, bytes: u64) -> Result<bool, TableFull> {
        match self.find(&k) {
            Ok(i) => {
                if let Some(f) = self.slots[i].as_mut() {
                    f.packets += 1;
                    f.bytes += bytes;
                    f.last_seen = f.last_seen.max(now);
                }
                Ok(false)
            }
            Err(i) => {
                if (self.len + 1) * Self::MAX_LOAD_DEN > self.slots.len() * Self::MAX_LOAD_NUM {
                    return Err(TableFull);
                }
                self.slots[i] = Some(Flow { key: k, first_seen: now, last_seen: now, packets: 1, bytes });
                self.len += 1;
                Ok(true)
            }
        }
    }

    /// Removes `k`'s flow and returns it.
    pub fn remove(&mut self, k: &FiveTuple) -> Option<Flow> {
        let i = self.find(k).ok()?;
        Some(self.remove_at(i))
    }

    /// Empties slot `i` (which must be occupied) and shifts the rest of its cluster back.
    fn remove_at(&mut self, mut hole: usize) -> Flow {
        let removed = self.slots[hole].take().expect("remove_at is only called on an occupied slot");
        self.len -= 1;
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let Some(f) = &self.slots[j] else { break };
            let home = self.home(&f.key);
            // The member at j may move into the hole if the hole lies on its probe path, i.e.
            // cyclically in [home, j): then its distance from home is at least the hole's distance.
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
        }
        removed
    }

    /// Examines `scan` slots from the expiry hand onwards and removes flows idle for more than
    /// `idle` (`now - last_seen > idle`). Returns how many were removed.
    ///
    /// Cost: O(scan) slot examinations plus the shifts of the removals. After a removal the same
    /// slot is examined again (a later member may have shifted into it); since removals happen at
    /// the hand, members only shift into the hand's slot or beyond it, so none escapes a sweep.
    /// One sweep takes `capacity / scan` calls.
    pub fn expire(&mut self, now: u64, idle: u64, scan: usize) -> usize {
        let mut removed = 0;
        for _ in 0..scan {
            let i = self.hand;
            match &self.slots[i] {
                Some(f) if now.saturating_sub(f.last_seen) > idle => {
                    self.remove_at(i);
                    removed += 1;
                }
                _ => self.hand = (i + 1) & self.mask,
            }
        }
        removed
    }
}

/// The scenario's traffic model: a table of 2^16 slots at about half load, driven in bursts.
///
/// Time advances by one unit per [`Traffic::tick`]. Each tick brings a receive burst of
/// [`Traffic::BURST`] packets of live flows, a burst of as many packets of unknown flows, and
/// [`Traffic::NEW_PER_TICK`] new flows, as a DPDK-style fast path sees them; a flow is idle after
/// [`Traffic::IDLE`] ticks. Hits are drawn from the last [`Traffic::RECENT`] new flows, all
/// younger than `IDLE`, so they always hit; misses are UDP tuples while every flow is TCP, so they
/// always miss.
#[derive(Clone, Debug)]
pub struct Traffic {
    /// The table.
    pub table: FlowTable,
    rng: Rng,
    recent: Vec<FiveTuple>,
    recent_pos: usize,
    /// Current time.
    pub now: u64,
}

impl Traffic {
    /// log2 of the table's slots.
    pub const LOG2_SLOTS: u32 = 16;
    /// Packets per receive burst (hits, and separately misses).
    pub const BURST: usize = 8;
    /// New flows per tick.
    pub const NEW_PER_TICK: usize = 4;
    /// Idle timeout in ticks: NEW_PER_TICK x IDLE = 30 000 live flows, about half the slots.
    pub const IDLE: u64 = 7_500;
    /// How many of the latest new flows hits are drawn from: 2048 ticks' worth, < IDLE, so they
    /// are always live.
    pub const RECENT: usize = 8192;
    /// Slots the expiry hand examines per call: a sweep takes 2^16 / 64 = 1024 ticks, well
    /// under IDLE, so expiry keeps up with the arrivals.
    pub const SCAN: usize = 64;

    /// A model seeded with `seed`, already run to its steady state (IDLE + a few sweeps of ticks).
    pub fn new(seed: u64) -> Traffic {
        let mut t = Traffic {
            table: FlowTable::new(Self::LOG2_SLOTS),
            rng: Rng::new(seed),
            recent: Vec::with_capacity(Self::RECENT),
            recent_pos: 0,
            now: 0,
        };
        for _ in 0..Self::RECENT {
            let k = t.new_key();
            t.table.insert(k, 0, 60).expect("the table is sized for the model");
            t.recent.push(k);
        }
        let mut burst = [(FiveTuple::default(), 0); Self::BURST];
        for _ in 0..Self::IDLE + 4096 {
            t.tick();
            t.hit_burst(&mut burst);
            for (k, len) in &burst {
                t.table.touch(k, t.now, *len);
            }
            for _ in 0..Self::NEW_PER_TICK {
                let k = t.new_key();
                t.table.insert(k, t.now, 60).expect("the table is sized for the model");
                t.remember(k);
            }
            t.table.expire(t.now, Self::IDLE, Self::SCAN);
        }
        t
    }

    /// Advances time by one unit.
    pub fn tick(&mut self) {
        self.now += 1;
    }

    /// Fills `out` with keys of live flows and packet lengths.
    pub fn hit_burst(&mut self, out: &mut [(FiveTuple, u64)]) {
        for o in out {
            let k = self.recent[self.rng.below(self.recent.len() as u64) as usize];
            *o = (k, self.rng.range(40, 1500));
        }
    }

    /// A key that is in no table of this model (UDP).
    pub fn miss_key(&mut self) -> FiveTuple {
        let r = self.rng.next_u64();
        FiveTuple { src: r as u32, dst: (r >> 32) as u32, sport: self.rng.next_u64() as u16, dport: 53, proto: 17 }
    }

    /// A fresh TCP key: clients in 10.0.0.0/8 to a few hundred services.
    pub fn new_key(&mut self) -> FiveTuple {
        let r = self.rng.next_u64();
        FiveTuple {
            src: 0x0A00_0000 | (r as u32 & 0x00FF_FFFF),
            dst: 0xC0A8_0000 | ((r >> 24) as u32 & 0xFF),
            sport: (1024 + (r >> 32) % 64_000) as u16,
            dport: *self.rng.pick(&[80, 443, 8080, 5432, 6379]),
            proto: 6,
        }
    }

    /// Records a new flow's key as a future hit candidate (replacing the oldest).
    pub fn remember(&mut self, k: FiveTuple) {
        self.recent[self.recent_pos] = k;
        self.recent_pos = (self.recent_pos + 1) % self.recent.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> FiveTuple {
        FiveTuple { src: i, dst: !i, sport: i as u16, dport: 443, proto: 6 }
    }

    #[test]
    fn insert_lookup_remove() {
        let mut t = FlowTable::new(6);
        for i in 0..50 {
            assert_eq!(t.insert(key(i), u64::from(i), 100), Ok(true));
        }
        assert_eq!(t.len(), 50);
        assert_eq!(t.insert(key(7), 99, 10), Ok(false));
        let f = t.get(&key(7)).unwrap();
        assert_eq!((f.packets, f.bytes, f.first_seen, f.last_seen), (2, 110, 7, 99));
        assert_eq!(t.touch(&key(8), 100, 1), Some(2));
        assert_eq!(t.touch(&key(1000), 100, 1), None);
        assert!(t.get(&key(1000)).is_none());
        // 56 of 64 slots is the maximum load.
        for i in 50..56 {
            t.insert(key(i), 0, 1).unwrap();
        }
        assert_eq!(t.insert(key(56), 0, 1), Err(TableFull));
        for i in (0..56).step_by(2) {
            assert_eq!(t.remove(&key(i)).map(|f| f.key), Some(key(i)));
        }
        for i in 0..56 {
            assert_eq!(t.get(&key(i)).is_some(), i % 2 == 1, "key {i} after removals");
        }
        assert_eq!(t.len(), 28);
    }

    #[test]
    fn expire_removes_exactly_the_idle_flows() {
        let mut t = FlowTable::new(10);
        for i in 0..600 {
            t.insert(key(i), u64::from(i % 3), 1).unwrap();
        }
        // Flows last seen at 0 are idle at now = 10 with idle 9; those at 1 and 2 are not.
        // A removal re-examines its slot without advancing the hand: allow for two sweeps.
        let mut removed = 0;
        for _ in 0..2 * t.capacity() / 16 {
            removed += t.expire(10, 9, 16);
        }
        assert_eq!(removed, 200);
        for i in 0..600 {
            assert_eq!(t.get(&key(i)).is_some(), i % 3 != 0, "key {i}");
        }
    }

    #[test]
    fn traffic_is_steady_and_deterministic() {
        let mut t = Traffic::new(4);
        assert_eq!(t.table.len(), Traffic::new(4).table.len());
        let load = t.table.len() as f64 / t.table.capacity() as f64;
        assert!((0.3..0.7).contains(&load), "load {load}");
        let mut burst = [(FiveTuple::default(), 0); Traffic::BURST];
        for _ in 0..1000 {
            t.tick();
            t.hit_burst(&mut burst);
            for (k, len) in burst {
                assert!(t.table.touch(&k, t.now, len).is_some());
            }
            let m = t.miss_key();
            assert!(t.table.get(&m).is_none());
        }
    }
}
