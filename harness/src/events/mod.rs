//! `events`: perf-prof's model in Rust: tracepoints chosen by selectors (with in-kernel ftrace
//! filters), read through `perf_event_open` as one time-ordered stream and handed to a
//! *profiler*, a small type with perf-prof's hooks.
//!
//! # Data flow
//! ```text
//! "-e sys:name/filter/ATTR/" ──selector::parse──> Selector
//!     └─ format::Format (tracefs events/SYS/NAME/format) ──> EventDesc (fields, filter checked)
//!          └─ stream::Stream (one event per CPU [per thread], kernel filter, per-CPU rings)
//!               └─ Record stream, merged by time ──> Profiler::sample / lost / interval / deinit
//! ```
//! * [`selector`]: the selector syntax, with positioned errors.
//! * [`format`](mod@format): tracefs formats and field decoding; [`list`] for `events list`.
//! * [`stream`]: opening, filters, rings, the merge; the `unsafe` half is
//!   `funcscope::uprobe::tracepoint` in the probe crate (this crate forbids `unsafe`).
//! * [`uprobes`]: `--uprobe [NAME=]FILE:SYMBOL`, functions as events (`uprobe:NAME`,
//!   `uprobe:NAME_return`), created in tracefs through snoop's symbol resolution.
//! * [`profilers`]: `trace`, `multi-trace`, `top`; adding one is one file implementing
//!   [`Profiler`].
//! * [`gate`]: event pairs as regression-gate checkpoints (`[[scenario.event_pair]]`).
//!
//! [`run`] opens everything, feeds the profiler until the launched command exits, the attached
//! process disappears, the duration passes or `stop` is raised (Ctrl-C), then drains the rings
//! and calls `deinit` for the final report.

pub mod bench;
pub mod format;
pub mod gate;
pub mod profilers;
pub mod selector;
pub mod stack;
pub mod stream;
pub mod uprobes;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};

pub use format::{Field, Format, TraceFsDir, Value};
pub use selector::{Selector, SelectorError};
pub use stream::{Record, Sample, Scope, StreamStats};

/// Why `events` could not run; every variant names the thing and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventsError {
    /// A selector does not parse.
    #[error(transparent)]
    Selector(#[from] SelectorError),
    /// No such tracepoint.
    #[error("no tracepoint {event} in {dir}{}; `funcscope events list {pattern}` shows what exists", near_names(near))]
    NoEvent {
        /// `sys:name` as given.
        event: String,
        /// The tracefs events directory searched.
        dir: String,
        /// A pattern to list.
        pattern: String,
        /// Existing events with a similar name.
        near: Vec<String>,
    },
    /// An ATTR or a filter names a field the event does not have.
    #[error("{event}: no field {field:?} (used by {used_by}); its fields: {}", fields.join(", "))]
    UnknownField {
        /// The event.
        event: String,
        /// The field asked for.
        field: String,
        /// Where it was named (`key=`, `top-by=`, the filter).
        used_by: String,
        /// Fields the event has.
        fields: Vec<String>,
    },
    /// The kernel refused a filter.
    #[error("{event}: the kernel refused the filter {filter:?}:\n{reason}\n(ftrace filter syntax: FIELD OP VALUE joined by && and ||; OP is ==, !=, <, <=, >, >=, & or ~ for globs on strings)")]
    Filter {
        /// The event.
        event: String,
        /// The filter as given.
        filter: String,
        /// The kernel's reason (from tracefs), or the errno.
        reason: String,
    },
    /// Tracefs is missing or unreadable.
    #[error("{0}")]
    TraceFs(String),
    /// `perf_event_open` was refused for lack of privilege.
    #[error(
        "perf_event_open refused ({why}): tracepoints with raw records need root, or CAP_PERFMON, or \
         kernel.perf_event_paranoid = -1 (now {paranoid}); run as root"
    )]
    Privilege {
        /// kernel.perf_event_paranoid now.
        paranoid: String,
        /// The kernel's answer.
        why: String,
    },
    /// A bad option for the chosen profiler (e.g. multi-trace with one event group).
    #[error("{0}")]
    Usage(String),
    /// Any other perf failure.
    #[error("{0}")]
    Perf(String),
    /// The command could not be launched.
    #[error("{0}")]
    Launch(String),
    /// The process to attach to does not exist.
    #[error("no process {pid} to attach to: {why}")]
    NoProcess {
        /// The pid.
        pid: i32,
        /// Why.
        why: String,
    },
    /// Writing the report failed.
    #[error("writing the report: {0}")]
    Output(#[from] std::io::Error),
}

fn near_names(near: &[String]) -> String {
    if near.is_empty() {
        String::new()
    } else {
        format!(" (similar: {})", near.join(", "))
    }
}

/// One selected event, resolved against tracefs.
#[derive(Clone, Debug)]
pub struct EventDesc {
    /// As selected.
    pub sel: Selector,
    /// Its layout.
    pub format: Format,
    /// Which `-e` group it came from (multi-trace: the stage).
    pub group: usize,
    /// The kernel filter to set (the selector's, unless the profiler changed it).
    pub filter: Option<String>,
}

impl EventDesc {
    /// The field `name`, or an [`EventsError::UnknownField`] naming `used_by`.
    pub fn need_field(&self, name: &str, used_by: &str) -> Result<&Field, EventsError> {
        self.format.field(name).ok_or_else(|| EventsError::UnknownField {
            event: self.sel.display_name(),
            field: name.to_owned(),
            used_by: used_by.to_owned(),
            fields: self.format.own_field_names().into_iter().map(str::to_owned).collect(),
        })
    }
}

/// What relates two events: a field, or a property of the sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// The sample's thread id.
    Tid,
    /// The sample's process id.
    Pid,
    /// The sample's CPU.
    Cpu,
    /// A field of the record (by index in the event's format).
    Field(usize),
}

impl Key {
    /// Resolves `name` for `ev`: a field of that name if the event has one (so `key=pid` on
    /// `sched:sched_wakeup` is the woken task), else `tid`, `pid` or `cpu` of the sample.
    pub fn resolve(ev: &EventDesc, name: &str, used_by: &str) -> Result<Key, EventsError> {
        if let Some(i) = ev.format.fields.iter().position(|f| f.name == name) {
            return Ok(Key::Field(i));
        }
        match name {
            "tid" => Ok(Key::Tid),
            "pid" => Ok(Key::Pid),
            "cpu" => Ok(Key::Cpu),
            _ => ev.need_field(name, used_by).map(|_| Key::Tid),
        }
    }

    /// The key's value in `s` (numbers normalised to [`Value::Int`] so that a `pid_t` field
    /// matches a sample's tid).
    pub fn value(&self, ev: &EventDesc, s: &Sample) -> Value {
        let v = match self {
            Key::Tid => Value::Int(s.tid as i64),
            Key::Pid => Value::Int(s.pid as i64),
            Key::Cpu => Value::Int(s.cpu as i64),
            Key::Field(i) => ev.format.fields[*i].decode(&s.raw),
        };
        match v {
            Value::Uint(u) => Value::Int(u as i64),
            other => other,
        }
    }
}

/// A profiler: perf-prof's `struct monitor` hooks, over one time-ordered stream.
pub trait Profiler {
    /// Its name (`trace`, `multi-trace`, `top`).
    fn name(&self) -> &'static str;
    /// Checks the events (the fields its ATTRs name, the groups it needs) before anything is
    /// opened.
    fn init(&mut self, events: &[EventDesc]) -> Result<(), EventsError>;
    /// The kernel filter of `ev` (default: the selector's).
    fn filter(&self, ev: &EventDesc) -> Option<String> {
        ev.sel.filter.clone()
    }
    /// One sample, in time order.
    fn sample(&mut self, events: &[EventDesc], s: &Sample, out: &mut dyn Write) -> std::io::Result<()>;
    /// The kernel lost `count` records at `time_ns`.
    fn lost(&mut self, _time_ns: u64, _count: u64) {}
    /// Called every `--interval`.
    fn interval(&mut self, _events: &[EventDesc], _out: &mut dyn Write) -> std::io::Result<()> {
        Ok(())
    }
    /// The end: the final report.
    fn deinit(&mut self, events: &[EventDesc], stats: &StreamStats, out: &mut dyn Write) -> std::io::Result<()>;
}

/// What to trace and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// One selector string per `-e` (each a group of events).
    pub selectors: Vec<String>,
    /// Launch, attach, or the whole system.
    pub scope: Scope,
    /// Data pages per CPU ring.
    pub ring_pages: usize,
    /// Call the profiler's `interval` this often.
    pub interval: Option<Duration>,
    /// Stop after this long (None: at the command's exit, the process's end, or Ctrl-C).
    pub duration: Option<Duration>,
    /// Uprobes to create for the session (`[NAME=]FILE:SYMBOL`, see [`uprobes`]): selectors name
    /// them `uprobe:NAME` (entry, fields `arg1`..`arg6`) and `uprobe:NAME_return` (return,
    /// field `ret`).
    pub uprobes: Vec<String>,
}

/// What a finished session returns (the profiler keeps its own results).
#[derive(Debug)]
pub struct Outcome {
    /// The launched command's exit code (None: not launched, interrupted, or killed by a signal).
    pub exit_code: Option<i32>,
    /// What reached user space.
    pub stats: StreamStats,
    /// Things to tell the user (tracefs mounted).
    pub notes: Vec<String>,
    /// Wall time traced.
    pub elapsed: Duration,
}

/// How often the rings are read when they were empty last time.
const IDLE_POLL: Duration = Duration::from_millis(10);

fn monotonic_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// Parses and resolves the selectors against tracefs: each event must exist and every field a
/// filter compares must be one of its fields.
pub fn resolve(fs: &TraceFsDir, selectors: &[String]) -> Result<Vec<EventDesc>, EventsError> {
    resolve_with(fs, selectors, None)
}

/// [`resolve`], with the session's uprobes: a selector `uprobe:NAME` names the event `NAME` of
/// the tracefs group `uprobe_group` (see [`uprobes`]), shown as `uprobe:NAME`.
pub fn resolve_with(
    fs: &TraceFsDir,
    selectors: &[String],
    uprobe_group: Option<&str>,
) -> Result<Vec<EventDesc>, EventsError> {
    let mut out = Vec::new();
    for (group, text) in selectors.iter().enumerate() {
        for mut sel in selector::parse(text)? {
            if sel.sys == uprobes::SYS {
                let Some(g) = uprobe_group else {
                    return Err(EventsError::Usage(format!(
                        "{}:{}: no uprobe of that name in this session; create it with --uprobe {}=FILE:SYMBOL",
                        sel.sys, sel.name, sel.name
                    )));
                };
                sel.alias.get_or_insert_with(|| format!("{}:{}", uprobes::SYS, sel.name));
                sel.sys = g.to_owned();
            }
            let dir = fs.event_dir(&sel.sys, &sel.name);
            if !dir.join("format").exists() {
                let near = fs
                    .all_events()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(s, n)| *s == sel.sys || n.contains(&sel.name) || sel.name.contains(n.as_str()))
                    .map(|(s, n)| format!("{s}:{n}"))
                    .take(8)
                    .collect();
                return Err(EventsError::NoEvent {
                    event: format!("{}:{}", sel.sys, sel.name),
                    dir: fs.dir.join("events").display().to_string(),
                    pattern: sel.sys.clone(),
                    near,
                });
            }
            let format = Format::read(fs, &sel.sys, &sel.name).map_err(EventsError::TraceFs)?;
            let ev = EventDesc { filter: sel.filter.clone(), sel, format, group };
            if let Some(f) = &ev.filter {
                for name in filter_fields(f) {
                    if !FILTER_SPECIAL.contains(&name.as_str()) {
                        ev.need_field(&name, "the filter")?;
                    }
                }
            }
            out.push(ev);
        }
    }
    Ok(out)
}

/// Names ftrace filters accept besides the event's fields.
const FILTER_SPECIAL: &[&str] = &["CPU", "COMM", "common_cpu", "comm", "cpu"];

/// The identifiers a filter compares (an identifier followed by an operator), outside quotes.
pub fn filter_fields(filter: &str) -> Vec<String> {
    let b = filter.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let mut j = i;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            if j < b.len() && matches!(b[j], b'=' | b'!' | b'<' | b'>' | b'&' | b'~') && !filter[j..].starts_with("&&")
            {
                out.push(filter[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Runs a session with `profiler` until the end (see the module docs); `out` gets the reports.
pub fn run(
    opts: &Options,
    profiler: &mut dyn Profiler,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<Outcome, EventsError> {
    let fs = TraceFsDir::locate().map_err(EventsError::TraceFs)?;
    // Created before the stream opens and dropped (removed from tracefs) after it closes:
    // locals drop in reverse order.
    let probes = uprobes::Session::create(&opts.uprobes, &opts.scope)?;
    let mut events = resolve_with(&fs, &opts.selectors, probes.as_ref().map(uprobes::Session::group))?;
    profiler.init(&events)?;
    for ev in &mut events {
        ev.filter = profiler.filter(ev);
    }
    let mut stream = stream::Stream::open(&fs, &events, &opts.scope, opts.ring_pages)?;
    let attached = match opts.scope {
        Scope::Attach { pid } => Some(pid),
        _ => None,
    };
    let t0 = Instant::now();
    let end = opts.duration.map(|d| t0 + d);
    let mut next_report = opts.interval.map(|i| t0 + i);
    let mut exit_code = None;
    loop {
        let mut last = stop.load(Ordering::Relaxed) || end.is_some_and(|e| Instant::now() >= e);
        if let Some(c) = stream.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                exit_code = status.code();
                last = true;
            }
        } else if let Some(pid) = attached {
            last |= crate::snoop::process_gone(pid);
        }
        let until = if last { None } else { Some(monotonic_ns().saturating_sub(stream::HOLD_NS)) };
        let records = stream.drain(until);
        let idle = records.is_empty();
        for r in &records {
            match r {
                Record::Sample(s) => profiler.sample(&events, s, out)?,
                Record::Lost { time_ns, count, .. } => profiler.lost(*time_ns, *count),
            }
        }
        if last {
            stream.kill_child();
            profiler.deinit(&events, &stream.stats, out)?;
            out.flush()?;
            return Ok(Outcome {
                exit_code,
                stats: stream.stats,
                notes: fs.note.into_iter().collect(),
                elapsed: t0.elapsed(),
            });
        }
        if let (Some(at), Some(every)) = (next_report, opts.interval) {
            if Instant::now() >= at {
                profiler.interval(&events, out)?;
                out.flush()?;
                next_report = Some(at + every);
            }
        }
        if idle {
            std::thread::sleep(IDLE_POLL);
        }
    }
}

/// `events list [PATTERN]`: every tracepoint whose `sys:name` contains `pattern` (all when
/// empty), each with its fields (`type name; offset size signed`) when `fields` is set.
pub fn list(pattern: &str, fields: bool, out: &mut dyn Write) -> Result<usize, EventsError> {
    let fs = TraceFsDir::locate().map_err(EventsError::TraceFs)?;
    let all = fs.all_events().map_err(|e| EventsError::TraceFs(format!("{}: {e}", fs.dir.join("events").display())))?;
    let mut n = 0;
    for (sys, name) in all {
        let full = format!("{sys}:{name}");
        if !full.contains(pattern) {
            continue;
        }
        n += 1;
        writeln!(out, "{full}")?;
        if fields {
            match Format::read(&fs, &sys, &name) {
                Ok(f) => {
                    for fd in f.fields.iter().filter(|f| !f.name.starts_with("common_")) {
                        writeln!(
                            out,
                            "    {:<28} {:<24} offset {:>3} size {:>3}{}",
                            fd.name,
                            fd.ctype,
                            fd.offset,
                            fd.size,
                            if fd.signed { " signed" } else { "" }
                        )?;
                    }
                }
                Err(e) => writeln!(out, "    (format unreadable: {e})")?,
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_fields_are_the_compared_identifiers() {
        assert_eq!(filter_fields("fd == 3 && count > 10"), ["fd", "count"]);
        assert_eq!(filter_fields(r#"prev_comm == "a && b == c" || next_pid!=0"#), ["prev_comm", "next_pid"]);
        assert_eq!(filter_fields("(flags & 4) && common_pid < 10"), ["flags", "common_pid"]);
        assert_eq!(filter_fields("comm ~ \"bash*\""), ["comm"]);
    }
}
