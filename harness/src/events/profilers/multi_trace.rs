//! `multi-trace`: latency between events of consecutive `-e` groups related by a key.
//!
//! `-e A -e B` measures A -> B; `-e A -e B -e C` chains A -> B -> C (one-to-one-to-one: each
//! B ends an A pair and starts a B pair). Several events in one group are alternatives
//! (many-to-one). The key is `--key` (default `tid`), or an event's own `key=FIELD`, resolved by
//! [`crate::events::Key::resolve`].
//!
//! # Pairing rules
//! * A start waits for the next event of the following group with the same key. A second start
//!   with that key before it replaces the first, which is counted **unpaired** (started, never
//!   ended); starts still waiting at the end are reported as **open**.
//! * An end with no waiting start is counted **unpaired** (ended, never started): its start was
//!   filtered out, happened before tracing, or is missing from the program.
//! * A loss (`PERF_RECORD_LOST`) marks every waiting start: its partner may be among the lost
//!   records, so a pair that spans a loss is **dropped** and counted, never mis-measured.
//! * `untraced` events are counted but never paired.

use std::collections::HashMap;
use std::io::{self, Write};

use super::super::{EventDesc, EventsError, Key, Profiler, Sample, StreamStats, Value};
use super::{human_ns, LatencyStats};

/// How many examples of unpaired events each pair keeps for the report.
const EXAMPLES: usize = 8;

/// One unpaired event kept as an example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpaired {
    /// Its event's name.
    pub event: String,
    /// Its key's value.
    pub key: Value,
    /// Its time, CLOCK_MONOTONIC ns.
    pub time_ns: u64,
}

/// The results for group `g` -> group `g + 1`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PairResult {
    /// The start group's event names.
    pub from: String,
    /// The end group's event names.
    pub to: String,
    /// Latencies of the pairs.
    pub stats: LatencyStats,
    /// Starts replaced by a later start with the same key before any end.
    pub unpaired_starts: u64,
    /// Starts still waiting when tracing ended.
    pub open_at_end: u64,
    /// Ends with no waiting start.
    pub unpaired_ends: u64,
    /// Pairs dropped because records were lost between start and end.
    pub dropped_by_loss: u64,
    /// A few unpaired starts (replaced or open at the end).
    pub start_examples: Vec<Unpaired>,
    /// A few unpaired ends.
    pub end_examples: Vec<Unpaired>,
}

/// The `multi-trace` profiler.
#[derive(Debug)]
pub struct MultiTrace {
    /// The default key (`tid`, `pid`, `cpu` or a field name).
    pub key: String,
    /// JSON report instead of text.
    pub json: bool,
    /// One per consecutive group pair.
    pub pairs: Vec<PairResult>,
    /// `untraced` events seen.
    pub untraced: u64,
    /// Records the kernel lost.
    pub lost: u64,
    keys: Vec<Key>,
    /// (start group, key) -> (time, start event, spans a loss).
    waiting: HashMap<(usize, Value), (u64, usize, bool)>,
    groups: usize,
}

impl MultiTrace {
    /// A multi-trace keyed by `key` unless an event says `key=`.
    pub fn new(key: &str, json: bool) -> MultiTrace {
        MultiTrace {
            key: key.to_owned(),
            json,
            pairs: Vec::new(),
            untraced: 0,
            lost: 0,
            keys: Vec::new(),
            waiting: HashMap::new(),
            groups: 0,
        }
    }
}

fn keep(v: &mut Vec<Unpaired>, u: Unpaired) {
    if v.len() < EXAMPLES {
        v.push(u);
    }
}

impl Profiler for MultiTrace {
    fn name(&self) -> &'static str {
        "multi-trace"
    }

    fn init(&mut self, events: &[EventDesc]) -> Result<(), EventsError> {
        self.groups = events.iter().map(|e| e.group + 1).max().unwrap_or(0);
        if self.groups < 2 {
            return Err(EventsError::Usage(
                "multi-trace needs at least two event groups: -e START_EVENTS -e END_EVENTS (e.g. -e \
                 syscalls:sys_enter_read -e syscalls:sys_exit_read)"
                    .into(),
            ));
        }
        self.keys = events
            .iter()
            .map(|e| match &e.sel.key {
                Some(k) => Key::resolve(e, k, "key="),
                None => Key::resolve(e, &self.key, "--key"),
            })
            .collect::<Result<_, _>>()?;
        let names = |g: usize| {
            events
                .iter()
                .filter(|e| e.group == g && !e.sel.untraced)
                .map(|e| e.sel.display_name())
                .collect::<Vec<_>>()
                .join(",")
        };
        self.pairs = (0..self.groups - 1)
            .map(|g| PairResult { from: names(g), to: names(g + 1), ..PairResult::default() })
            .collect();
        Ok(())
    }

    fn sample(&mut self, events: &[EventDesc], s: &Sample, _out: &mut dyn Write) -> io::Result<()> {
        let ev = &events[s.event];
        if ev.sel.untraced {
            self.untraced += 1;
            return Ok(());
        }
        let g = ev.group;
        let key = self.keys[s.event].value(ev, s);
        if g > 0 {
            let pair = &mut self.pairs[g - 1];
            match self.waiting.remove(&(g - 1, key.clone())) {
                Some((_, _, true)) => pair.dropped_by_loss += 1,
                Some((t0, _, false)) => pair.stats.add(s.time_ns.saturating_sub(t0)),
                None => {
                    pair.unpaired_ends += 1;
                    keep(
                        &mut pair.end_examples,
                        Unpaired { event: ev.sel.display_name(), key: key.clone(), time_ns: s.time_ns },
                    );
                }
            }
        }
        if g + 1 < self.groups {
            if let Some((t, e, _)) = self.waiting.insert((g, key.clone()), (s.time_ns, s.event, false)) {
                let pair = &mut self.pairs[g];
                pair.unpaired_starts += 1;
                keep(&mut pair.start_examples, Unpaired { event: events[e].sel.display_name(), key, time_ns: t });
            }
        }
        Ok(())
    }

    fn lost(&mut self, _time_ns: u64, count: u64) {
        self.lost += count;
        for w in self.waiting.values_mut() {
            w.2 = true;
        }
    }

    fn deinit(&mut self, events: &[EventDesc], stats: &StreamStats, out: &mut dyn Write) -> io::Result<()> {
        let mut open: Vec<_> = self.waiting.drain().collect();
        open.sort_by_key(|(_, (t, _, _))| *t);
        for ((g, key), (t, e, _)) in open {
            let pair = &mut self.pairs[g];
            pair.open_at_end += 1;
            keep(&mut pair.start_examples, Unpaired { event: events[e].sel.display_name(), key, time_ns: t });
        }
        if self.json {
            let pairs: Vec<serde_json::Value> = self
                .pairs
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "from": p.from, "to": p.to, "key": self.key, "latency": p.stats.to_json(),
                        "unpaired_starts": p.unpaired_starts, "open_at_end": p.open_at_end,
                        "unpaired_ends": p.unpaired_ends, "dropped_by_loss": p.dropped_by_loss,
                    })
                })
                .collect();
            let o = serde_json::json!({"pairs": pairs, "samples": stats.samples, "lost": stats.lost, "untraced": self.untraced});
            return writeln!(out, "{o}");
        }
        for p in &self.pairs {
            let st = &p.stats;
            writeln!(out, "{} -> {}  (key: {})", p.from, p.to, self.key)?;
            writeln!(
                out,
                "  count {}  min {}  max {}  mean {}  sum {}  stddev {}",
                st.count,
                human_ns(st.min_ns as f64),
                human_ns(st.max_ns as f64),
                human_ns(st.mean_ns()),
                human_ns(st.sum_ns as f64),
                human_ns(st.variance_ns2().sqrt())
            )?;
            st.write_histogram(out)?;
            if p.unpaired_starts + p.open_at_end + p.unpaired_ends + p.dropped_by_loss > 0 {
                writeln!(
                    out,
                    "  unpaired: {} starts never ended ({} replaced by a later start, {} still open at the end), {} ends \
                     without a start; {} pairs dropped because records were lost between them",
                    p.unpaired_starts + p.open_at_end,
                    p.unpaired_starts,
                    p.open_at_end,
                    p.unpaired_ends,
                    p.dropped_by_loss
                )?;
                for u in &p.start_examples {
                    writeln!(out, "    start without end: {} key={} at {:.6}", u.event, u.key, u.time_ns as f64 / 1e9)?;
                }
                for u in &p.end_examples {
                    writeln!(out, "    end without start: {} key={} at {:.6}", u.event, u.key, u.time_ns as f64 / 1e9)?;
                }
            }
        }
        writeln!(
            out,
            "{} events; {} lost by the kernel (ring full); {} untraced",
            stats.samples, stats.lost, self.untraced
        )
    }
}
