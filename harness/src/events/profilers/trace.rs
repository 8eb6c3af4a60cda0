//! `trace`: every event that passed the kernel filter, with its fields (common ones left out)
//! and its stack when `stack` was asked for; or one JSON object per line with `--json`.

use std::io::{self, Write};

use super::super::stack::Symbolizer;
use super::super::{EventDesc, EventsError, Profiler, Sample, StreamStats};

/// The `trace` profiler.
#[derive(Debug, Default)]
pub struct Trace {
    /// JSON lines instead of text.
    pub json: bool,
    /// Events printed.
    pub printed: u64,
    /// Losses seen.
    pub lost: u64,
    symbols: Symbolizer,
}

impl Trace {
    /// A trace printer (`json`: JSON lines).
    pub fn new(json: bool) -> Trace {
        Trace { json, ..Trace::default() }
    }
}

impl Profiler for Trace {
    fn name(&self) -> &'static str {
        "trace"
    }

    fn init(&mut self, _events: &[EventDesc]) -> Result<(), EventsError> {
        Ok(())
    }

    fn sample(&mut self, events: &[EventDesc], s: &Sample, out: &mut dyn Write) -> io::Result<()> {
        let ev = &events[s.event];
        let fields = ev.format.fields.iter().filter(|f| !f.name.starts_with("common_"));
        let stack = if s.callchain.is_empty() { Vec::new() } else { self.symbols.frames(s.pid, &s.callchain) };
        self.printed += 1;
        if self.json {
            let f: serde_json::Map<String, serde_json::Value> =
                fields.map(|f| (f.name.clone(), f.decode(&s.raw).to_json())).collect();
            let mut o = serde_json::json!({
                "time_ns": s.time_ns, "cpu": s.cpu, "pid": s.pid, "tid": s.tid,
                "event": ev.sel.display_name(), "fields": f,
            });
            if !stack.is_empty() {
                o["stack"] = stack.into();
            }
            return writeln!(out, "{o}");
        }
        let t = s.time_ns as f64 / 1e9;
        write!(out, "{t:>16.6} [{:03}] {:>7}/{:<7} {}:", s.cpu, s.pid, s.tid, ev.sel.display_name())?;
        for f in fields {
            write!(out, " {}={}", f.name, f.decode(&s.raw))?;
        }
        writeln!(out)?;
        for frame in stack {
            writeln!(out, "    {frame}")?;
        }
        Ok(())
    }

    fn lost(&mut self, _time_ns: u64, count: u64) {
        self.lost += count;
    }

    fn deinit(&mut self, _events: &[EventDesc], stats: &StreamStats, out: &mut dyn Write) -> io::Result<()> {
        if !self.json {
            writeln!(out, "{} events; {} lost by the kernel (ring full)", stats.samples, stats.lost)?;
        }
        Ok(())
    }
}
