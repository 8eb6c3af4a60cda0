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
use super::heatmap::HeatMap;
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
    /// Latency over time (filled when [`MultiTrace::heatmap`] is set).
    pub heat: HeatMap,
    /// Every pair as (start time, latency), ns, in order (filled when [`MultiTrace::keep`] is
    /// set: the regression gate needs the samples, not only their statistics).
    pub kept: Vec<(u64, u64)>,
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
    /// Write each pair's latency heat map to this SVG file (`NAME.svg`; the second pair's to
    /// `NAME.2.svg`, ...), with columns this many ns wide.
    pub heatmap: Option<(std::path::PathBuf, u64)>,
    /// Keep every pair in [`PairResult::kept`].
    pub keep: bool,
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
            heatmap: None,
            keep: false,
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
        let bucket = self.heatmap.as_ref().map_or(1, |h| h.1);
        self.pairs = (0..self.groups - 1)
            .map(|g| PairResult {
                from: names(g),
                to: names(g + 1),
                heat: HeatMap::new(bucket),
                ..PairResult::default()
            })
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
                Some((t0, _, false)) => {
                    let ns = s.time_ns.saturating_sub(t0);
                    pair.stats.add(ns);
                    if self.heatmap.is_some() {
                        pair.heat.add(s.time_ns, ns);
                    }
                    if self.keep {
                        pair.kept.push((t0, ns));
                    }
                }
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
        if let Some((path, _)) = &self.heatmap {
            for (i, p) in self.pairs.iter().enumerate() {
                let file = if i == 0 { path.clone() } else { path.with_extension(format!("{}.svg", i + 1)) };
                std::fs::write(&file, p.heat.to_svg(&format!("{} -> {}", p.from, p.to)))
                    .map_err(|e| io::Error::new(e.kind(), format!("writing the heat map {}: {e}", file.display())))?;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Format, Sample, Selector};

    fn desc(name: &str, group: usize, key: Option<&str>) -> EventDesc {
        let format = Format::parse(&format!(
            "name: {name}\nID: 1\nformat:\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\tfield:int obj;\toffset:8;\tsize:4;\tsigned:1;\n"
        ))
        .unwrap();
        let sel = Selector { sys: "t".into(), name: name.into(), key: key.map(str::to_owned), ..Selector::default() };
        EventDesc { sel, format, group, filter: None }
    }

    fn hit(event: usize, tid: u32, time_ns: u64, obj: i32) -> Sample {
        let mut raw = vec![0u8; 12];
        raw[8..12].copy_from_slice(&obj.to_ne_bytes());
        Sample { event, time_ns, pid: tid, tid, cpu: 0, raw, callchain: Vec::new() }
    }

    #[test]
    fn pairs_by_tid_with_unpaired_and_loss_accounting() {
        let events = [desc("a", 0, None), desc("b", 1, None)];
        let mut mt = MultiTrace::new("tid", false);
        mt.init(&events).unwrap();
        let out = &mut Vec::new();
        for s in [
            hit(0, 1, 100, 0), // start tid 1
            hit(0, 2, 110, 0), // start tid 2
            hit(1, 1, 150, 0), // end tid 1: 50 ns
            hit(1, 3, 160, 0), // end tid 3: no start
            hit(0, 2, 170, 0), // tid 2 again: the 110 start is unpaired
            hit(1, 2, 200, 0), // end tid 2: 30 ns
            hit(0, 4, 210, 0), // start tid 4, then a loss
        ] {
            mt.sample(&events, &s, out).unwrap();
        }
        mt.lost(220, 5);
        mt.sample(&events, &hit(1, 4, 300, 0), out).unwrap(); // spans the loss: dropped
        mt.sample(&events, &hit(0, 5, 400, 0), out).unwrap(); // open at the end
        mt.deinit(&events, &StreamStats::default(), out).unwrap();
        let p = &mt.pairs[0];
        assert_eq!((p.stats.count, p.stats.min_ns, p.stats.max_ns), (2, 30, 50));
        assert_eq!((p.unpaired_starts, p.open_at_end, p.unpaired_ends, p.dropped_by_loss), (1, 1, 1, 1));
        assert_eq!(p.start_examples[0], Unpaired { event: "t:a".into(), key: Value::Int(2), time_ns: 110 });
        assert_eq!(p.end_examples[0].key, Value::Int(3));
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("1 pairs dropped because records were lost"), "{text}");
    }

    #[test]
    fn field_keys_and_chains() {
        // a -> b -> c keyed by the field obj (an allocation-like object id), not by thread.
        let events = [desc("a", 0, Some("obj")), desc("b", 1, Some("obj")), desc("c", 2, Some("obj"))];
        let mut mt = MultiTrace::new("tid", true);
        mt.init(&events).unwrap();
        let out = &mut Vec::new();
        for s in [hit(0, 1, 0, 7), hit(1, 2, 10, 7), hit(0, 1, 20, 8), hit(2, 3, 40, 7)] {
            mt.sample(&events, &s, out).unwrap();
        }
        mt.deinit(&events, &StreamStats::default(), out).unwrap();
        assert_eq!((mt.pairs[0].stats.count, mt.pairs[0].stats.sum_ns), (1, 10));
        assert_eq!((mt.pairs[1].stats.count, mt.pairs[1].stats.sum_ns), (1, 30));
        // Object 8 was allocated and never went further: "only one of the pair happened".
        assert_eq!(mt.pairs[0].open_at_end, 1);
        let v: serde_json::Value = serde_json::from_slice(out).unwrap();
        assert_eq!(v["pairs"][1]["latency"]["count"], 1);
        // One group is not a pair.
        let mut one = MultiTrace::new("tid", false);
        assert!(one.init(&events[..1]).unwrap_err().to_string().contains("two event groups"));
        let mut bad = MultiTrace::new("nope", false);
        assert!(bad
            .init(&[desc("a", 0, None), desc("b", 1, None)])
            .unwrap_err()
            .to_string()
            .contains("no field \"nope\""));
    }
}
