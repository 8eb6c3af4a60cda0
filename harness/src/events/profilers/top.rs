//! `top`: per key (`--key`: tid, pid, cpu or a field; an event's own `key=` wins), the count
//! of each event and the sums of its `top-by=` and `top-add=` fields, sorted by the first
//! `top-by` sum (else by the total count). Every `--interval` the interval's table is printed
//! and restarted; the final report is the whole run's.

use std::collections::HashMap;
use std::io::{self, Write};

use super::super::{EventDesc, EventsError, Key, Profiler, Sample, StreamStats, Value};

/// Rows shown per report.
const ROWS: usize = 20;

/// One key's row: per event, its count and its field sums (`top-by` fields first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// Per event index: hits.
    pub counts: Vec<u64>,
    /// Per event index: sums of its `top-by` then `top-add` fields.
    pub sums: Vec<Vec<i128>>,
}

/// The `top` profiler.
#[derive(Debug)]
pub struct Top {
    /// The default key.
    pub key: String,
    /// The whole run's rows.
    pub total: HashMap<Value, Row>,
    interval: HashMap<Value, Row>,
    keys: Vec<Key>,
    /// Per event: field indexes summed (top-by then top-add).
    summed: Vec<Vec<usize>>,
}

impl Top {
    /// A top keyed by `key`.
    pub fn new(key: &str) -> Top {
        Top {
            key: key.to_owned(),
            total: HashMap::new(),
            interval: HashMap::new(),
            keys: Vec::new(),
            summed: Vec::new(),
        }
    }

    fn render(&self, rows: &HashMap<Value, Row>, events: &[EventDesc], out: &mut dyn Write) -> io::Result<()> {
        // The sort column: the first event with a top-by field, else the total count.
        let by = events.iter().position(|e| !e.sel.top_by.is_empty());
        let mut v: Vec<(&Value, &Row)> = rows.iter().collect();
        v.sort_by(|a, b| {
            let score = |r: &Row| match by {
                Some(e) => r.sums[e][0],
                None => r.counts.iter().sum::<u64>() as i128,
            };
            score(b.1).cmp(&score(a.1)).then_with(|| a.0.cmp(b.0))
        });
        write!(out, "{:>12}", self.key.to_uppercase())?;
        for e in events {
            write!(out, " {:>14}", e.sel.display_name())?;
            for f in e.sel.top_by.iter().chain(&e.sel.top_add) {
                write!(out, " {:>14}", format!("{}.{f}", e.sel.display_name()))?;
            }
        }
        writeln!(out)?;
        for (k, r) in v.into_iter().take(ROWS) {
            write!(out, "{:>12}", k.to_string())?;
            for (i, e) in events.iter().enumerate() {
                write!(out, " {:>14}", r.counts[i])?;
                for s in r.sums[i].iter().take(e.sel.top_by.len() + e.sel.top_add.len()) {
                    write!(out, " {s:>14}")?;
                }
            }
            writeln!(out)?;
        }
        Ok(())
    }
}

impl Profiler for Top {
    fn name(&self) -> &'static str {
        "top"
    }

    fn init(&mut self, events: &[EventDesc]) -> Result<(), EventsError> {
        self.keys = events
            .iter()
            .map(|e| match &e.sel.key {
                Some(k) => Key::resolve(e, k, "key="),
                None => Key::resolve(e, &self.key, "--key"),
            })
            .collect::<Result<_, _>>()?;
        self.summed = events
            .iter()
            .map(|e| {
                let by = e.sel.top_by.iter().map(|f| (f, "top-by="));
                let add = e.sel.top_add.iter().map(|f| (f, "top-add="));
                by.chain(add)
                    .map(|(f, used)| {
                        e.need_field(f, used)?;
                        Ok(e.format.fields.iter().position(|x| x.name == *f).unwrap_or(0))
                    })
                    .collect::<Result<Vec<_>, EventsError>>()
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    fn sample(&mut self, events: &[EventDesc], s: &Sample, _out: &mut dyn Write) -> io::Result<()> {
        let ev = &events[s.event];
        let key = self.keys[s.event].value(ev, s);
        let n = events.len();
        let vals: Vec<i128> =
            self.summed[s.event].iter().map(|&f| ev.format.fields[f].decode(&s.raw).as_i128().unwrap_or(0)).collect();
        for table in [&mut self.total, &mut self.interval] {
            let row = table.entry(key.clone()).or_insert_with(|| Row { counts: vec![0; n], sums: vec![Vec::new(); n] });
            row.counts[s.event] += 1;
            let sums = &mut row.sums[s.event];
            sums.resize(vals.len().max(1), 0);
            for (acc, v) in sums.iter_mut().zip(&vals) {
                *acc += v;
            }
        }
        Ok(())
    }

    fn interval(&mut self, events: &[EventDesc], out: &mut dyn Write) -> io::Result<()> {
        self.render(&self.interval, events, out)?;
        writeln!(out)?;
        self.interval.clear();
        Ok(())
    }

    fn deinit(&mut self, events: &[EventDesc], stats: &StreamStats, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "whole run:")?;
        self.render(&self.total, events, out)?;
        writeln!(out, "{} events; {} lost by the kernel (ring full)", stats.samples, stats.lost)
    }
}
