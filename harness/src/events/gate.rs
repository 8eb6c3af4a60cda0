//! Event pairs under the regression gate: each `[[scenario.event_pair]]` of a scenario (two
//! selectors and a key) is traced in every run of that scenario, beside the probe's region, and
//! each pair's latency (ns, from the first event to its partner) becomes a sample of a
//! checkpoint named `event:<name>`, judged like any probe checkpoint.
//!
//! # How a run is traced
//! [`PairSpec::resolve`] reads the events' tracefs formats and checks the key and the filters'
//! fields (the same check validates the configuration before anything runs). The runner starts
//! the program, then [`PairSession::start`] opens the events on it ([`Scope::Attach`]: every
//! thread, `inherit` for later threads and children: the scenario's process, not the system), one
//! [`Stream`] per pair, paired by a [`MultiTrace`] that keeps every pair. The session is a
//! [`GateSource`], driven like the uprobes of [`crate::snoop::gate`]: polled every runner tick,
//! finished once the program has exited.
//!
//! # Window, losses, unpaired events
//! * Window: the same as uprobe checkpoints' ([`Window`]): pairs whose *first* event comes
//!   before the program's first probe region appeared are left out (start-up, calibration), in
//!   both arms alike.
//! * A pair whose two events have a kernel loss (`PERF_RECORD_LOST`) between them is dropped and
//!   counted ([`GateResult::dropped_by_loss`]); the records lost are the result's `lost`, which
//!   marks the run as lossy (such a run cannot be recorded as a baseline), as uprobe losses do.
//! * Events with no partner (a start replaced by a later start with the same key or still open
//!   at the end, an end with no start) are counted in [`GateResult::unpaired`] over the whole run.
//!
//! # Units
//! A sample is the time between the two records' timestamps (CLOCK_MONOTONIC, ns). The
//! tracepoints' own cost (writing a record, a few hundred ns on this VM kind) falls partly inside
//! the pair, the same in both arms.

use super::profilers::multi_trace::MultiTrace;
use super::stream::{self, Record, Stream};
use super::{EventDesc, EventsError, Profiler, Scope, TraceFsDir};
use crate::snoop::gate::{monotonic_ns, GateResult, GateSource, Window};

/// The prefix of event-pair checkpoints' names in run results, baselines and reports.
pub const CHECKPOINT_PREFIX: &str = "event:";

/// Data pages per CPU ring of one pair (1 MiB): at 1 ms polls, room for thousands of records.
const RING_PAGES: usize = 256;

/// One event pair a scenario gates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairSpec {
    /// Checkpoint name (without [`CHECKPOINT_PREFIX`]).
    pub name: String,
    /// Selector of the starting event(s).
    pub from: String,
    /// Selector of the ending event(s).
    pub to: String,
    /// `tid`, `pid`, `cpu` or a field name.
    pub key: String,
}

impl PairSpec {
    /// The checkpoint name in results: `event:<name>`.
    pub fn checkpoint(&self) -> String {
        format!("{CHECKPOINT_PREFIX}{}", self.name)
    }

    /// Parses the selectors, reads the events' formats from `fs` and checks the key and the
    /// filters' fields; returns the events (group 0: `from`, 1: `to`) and their pairer.
    pub fn resolve(&self, fs: &TraceFsDir) -> Result<(Vec<EventDesc>, MultiTrace), EventsError> {
        let mut events = super::resolve(fs, &[self.from.clone(), self.to.clone()])?;
        let mut pairer = MultiTrace::new(&self.key, false);
        pairer.keep = true;
        pairer.init(&events)?;
        for ev in &mut events {
            ev.filter = pairer.filter(ev);
        }
        Ok((events, pairer))
    }

    /// Checks it against this machine's tracefs (a selector that does not parse, an event that
    /// does not exist, a key or filter field the events lack), without opening anything.
    pub fn check(&self) -> Result<(), EventsError> {
        let fs = TraceFsDir::locate().map_err(EventsError::TraceFs)?;
        self.resolve(&fs).map(|_| ())
    }
}

/// One pair being traced.
struct Traced {
    checkpoint: String,
    events: Vec<EventDesc>,
    stream: Stream,
    pairer: MultiTrace,
}

impl Traced {
    fn feed(&mut self, records: Vec<Record>) {
        let sink = &mut std::io::sink();
        for r in records {
            match r {
                // Writes nothing (the sink): pairing only.
                Record::Sample(s) => {
                    let _ = self.pairer.sample(&self.events, &s, sink);
                }
                Record::Lost { time_ns, count, .. } => self.pairer.lost(time_ns, count),
            }
        }
    }
}

/// The event pairs of one run.
pub struct PairSession {
    pairs: Vec<Traced>,
    window: Window,
}

impl PairSession {
    /// Opens every pair of `specs` on the running process `pid` (its threads and, through
    /// `inherit`, its later threads and children).
    pub fn start(specs: &[PairSpec], pid: i32) -> Result<PairSession, EventsError> {
        let fs = TraceFsDir::locate().map_err(EventsError::TraceFs)?;
        let mut pairs = Vec::new();
        for spec in specs {
            let (events, pairer) = spec.resolve(&fs)?;
            let stream = Stream::open(&fs, &events, &Scope::Attach { pid }, RING_PAGES)?;
            pairs.push(Traced { checkpoint: spec.checkpoint(), events, stream, pairer });
        }
        Ok(PairSession { pairs, window: Window::default() })
    }
}

/// The latencies of the pairs (start, latency) that started inside `window`.
fn in_window(kept: &[(u64, u64)], window: &Window) -> Vec<u64> {
    kept.iter().filter(|&&(start, _)| window.admits(start)).map(|&(_, ns)| ns).collect()
}

/// The gate's result for one traced pair: the pairs inside `window`, the losses, the unpaired.
fn result(t: Traced, window: &Window) -> GateResult {
    let p = t.pairer.pairs.into_iter().next().unwrap_or_default();
    GateResult {
        checkpoint: t.checkpoint,
        durations_ns: in_window(&p.kept, window),
        lost: t.stream.stats.lost,
        unpaired: p.unpaired_starts + p.open_at_end + p.unpaired_ends,
        dropped_by_loss: p.dropped_by_loss,
    }
}

impl GateSource for PairSession {
    fn open_window(&mut self, t_ns: u64) {
        self.window.open(t_ns);
    }

    fn poll(&mut self) {
        // Records younger than HOLD_NS stay back: an older one may still be on its way into
        // another CPU's ring. Pairs are filtered by the window only at the end, so records are
        // paired as they come, window or not.
        let until = monotonic_ns().saturating_sub(stream::HOLD_NS);
        for t in &mut self.pairs {
            let records = t.stream.drain(Some(until));
            t.feed(records);
        }
    }

    fn finish(self: Box<Self>) -> Vec<GateResult> {
        let PairSession { pairs, window } = *self;
        pairs
            .into_iter()
            .map(|mut t| {
                let records = t.stream.drain(None);
                t.feed(records);
                // Counts the starts still open; writes nothing (the sink).
                let _ = t.pairer.deinit(&t.events, &t.stream.stats, &mut std::io::sink());
                result(t, &window)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_count_from_the_window_on_and_all_count_without_one() {
        let kept = [(100, 5), (199, 6), (200, 7), (300, 8)];
        let mut w = Window::default();
        assert_eq!(in_window(&kept, &w), [5, 6, 7, 8]);
        w.open(200);
        w.open(250); // the first opening wins
        assert_eq!(in_window(&kept, &w), [7, 8]);
    }

    #[test]
    fn checkpoint_names_carry_the_prefix() {
        let p = PairSpec { name: "read".into(), from: "a:b".into(), to: "a:c".into(), key: "tid".into() };
        assert_eq!(p.checkpoint(), "event:read");
    }
}
