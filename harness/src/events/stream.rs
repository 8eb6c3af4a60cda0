//! Opening the selected tracepoints and reading them as one time-ordered stream.
//!
//! Every event is opened once per CPU (and per thread when a process is followed), its kernel
//! filter set before anything is enabled, and all events of a CPU are redirected into that CPU's
//! ring (`PERF_EVENT_IOC_SET_OUTPUT`). [`Stream::drain`] reads every ring, decodes the records
//! and returns them sorted by time; records younger than [`HOLD_NS`] stay back until the next
//! drain, because an older record may still be on its way into another CPU's ring (the same
//! rule as `snoop`'s).
//!
//! # Scope
//! * **System**: `pid = -1` on every online CPU: every task (root or CAP_PERFMON).
//! * **Launch**: the command starts under `/bin/sh -c 'kill -STOP $$; exec "$@"'`; the events
//!   are opened on the stopped shell with `enable_on_exec` and `inherit`, so recording starts at
//!   the command's `exec` and follows its threads and children.
//! * **Attach**: every thread of a running process, with `inherit`.

use std::collections::HashMap;
use std::ffi::CString;
use std::process::{Child, Command};

use funcscope::uprobe::tracepoint::{self, TracepointSpec};
use funcscope::uprobe::{self, PerfEvent, PerfRing};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::format::TraceFsDir;
use super::{EventDesc, EventsError};

/// How long records stay back before they are handed out (ns): far more than the microseconds
/// between a sample's timestamp and its write into a ring, far less than a report interval.
pub const HOLD_NS: u64 = 50_000_000;

/// Default data pages per CPU ring (4 KiB each: 4 MiB).
pub const DEFAULT_RING_PAGES: usize = 1024;

/// What to trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every task on every CPU.
    System,
    /// Launch this program with these arguments and follow it.
    Launch {
        /// Program (looked up on PATH).
        program: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// Attach to this running process.
    Attach {
        /// Its pid.
        pid: i32,
    },
}

/// One tracepoint hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Index of the event in the session's event list.
    pub event: usize,
    /// CLOCK_MONOTONIC ns.
    pub time_ns: u64,
    /// Process id of the task that hit it.
    pub pid: u32,
    /// Thread id of the task that hit it.
    pub tid: u32,
    /// CPU it happened on.
    pub cpu: u32,
    /// The raw record, laid out by the event's format.
    pub raw: Vec<u8>,
    /// The callchain (with context markers) when `stack` was asked for; else empty.
    pub callchain: Vec<u64>,
}

/// One record of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A tracepoint hit.
    Sample(Sample),
    /// The kernel dropped `count` records of CPU `cpu`'s ring (it was full).
    Lost {
        /// When the loss was noticed (CLOCK_MONOTONIC ns).
        time_ns: u64,
        /// The ring's CPU.
        cpu: u32,
        /// Records lost.
        count: u64,
    },
}

impl Record {
    /// The record's time.
    pub fn time_ns(&self) -> u64 {
        match self {
            Record::Sample(s) => s.time_ns,
            Record::Lost { time_ns, .. } => *time_ns,
        }
    }
}

/// Counts of what reached user space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Sample records read from the rings (after the kernel filters).
    pub samples: u64,
    /// Records the kernel reported lost (sum of PERF_RECORD_LOST counts).
    pub lost: u64,
    /// PERF_RECORD_LOST records seen.
    pub loss_records: u64,
    /// Records that could not be decoded (short, unknown id).
    pub undecodable: u64,
}

/// The open events and their rings.
pub struct Stream {
    rings: Vec<PerfRing>,
    owners: HashMap<i32, PerfEvent>,
    events: Vec<PerfEvent>,
    /// Kernel event id -> index in the session's event list.
    ids: HashMap<u64, usize>,
    /// Per event index: callchain sampled.
    callchain: Vec<bool>,
    pending: Vec<Record>,
    /// What reached user space so far.
    pub stats: StreamStats,
    /// The launched command, if any.
    pub child: Option<Child>,
}

/// The online CPUs.
pub fn online_cpus() -> Result<Vec<i32>, EventsError> {
    crate::snoop::perf::online_cpus().map_err(|e| EventsError::Perf(e.to_string()))
}

fn paranoid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_owned())
}

/// The kernel's reason for refusing `filter` on `sys:name`: written to the event's tracefs
/// `filter` file (where the kernel explains a parse error with a caret), then cleared. Only done
/// when that file holds no filter (`none`), so an ftrace user's filter is never replaced.
pub fn filter_reason(fs: &TraceFsDir, sys: &str, name: &str, filter: &str) -> Option<String> {
    let path = fs.event_dir(sys, name).join("filter");
    if read_once(&path)?.trim() != "none" {
        return None;
    }
    let _ = std::fs::write(&path, filter);
    let shown = read_once(&path);
    let _ = std::fs::write(&path, "0");
    // "FILTER\n   ^\nparse_error: Field not found\n": the filter, the caret under the problem,
    // the reason; a filter the kernel took shows only the filter (no reason then).
    let shown = shown?;
    let lines: Vec<String> = shown.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("  {l}")).collect();
    (lines.len() > 1).then(|| lines.join("\n"))
}

/// Reads a tracefs `filter` file in one `read`: the kernel answers only a read at offset 0
/// (`event_filter_read`), so `read_to_string`'s small first read truncates the text.
fn read_once(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut buf = vec![0u8; 64 * 1024];
    let n = std::fs::File::open(path).ok()?.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

impl Stream {
    /// Opens `events` in `scope`; in launch mode the command starts running.
    pub fn open(
        fs: &TraceFsDir,
        events: &[EventDesc],
        scope: &Scope,
        ring_pages: usize,
    ) -> Result<Stream, EventsError> {
        let cpus = online_cpus()?;
        let mut s = Stream {
            rings: Vec::new(),
            owners: HashMap::new(),
            events: Vec::new(),
            ids: HashMap::new(),
            callchain: events.iter().map(|e| e.sel.stack).collect(),
            pending: Vec::new(),
            stats: StreamStats::default(),
            child: None,
        };
        match scope {
            Scope::System => {
                s.open_all(fs, events, &[-1], &cpus, ring_pages, false)?;
                s.enable_all()?;
            }
            Scope::Launch { program, args } => {
                let child = Command::new("/bin/sh")
                    .arg("-c")
                    .arg("kill -STOP $$; exec \"$@\"")
                    .arg("sh")
                    .arg(program)
                    .args(args)
                    .spawn()
                    .map_err(|e| EventsError::Launch(format!("starting /bin/sh for {program}: {e}")))?;
                let pid = Pid::from_raw(child.id() as i32);
                s.child = Some(child);
                match waitpid(pid, Some(WaitPidFlag::WUNTRACED)) {
                    Ok(WaitStatus::Stopped(..)) => {}
                    other => {
                        return Err(EventsError::Launch(format!("{program}: the launcher did not stop: {other:?}")))
                    }
                }
                if let Err(e) = s.open_all(fs, events, &[pid.as_raw()], &cpus, ring_pages, true) {
                    s.kill_child();
                    return Err(e);
                }
                kill(pid, Signal::SIGCONT).map_err(|e| EventsError::Launch(format!("continuing {program}: {e}")))?;
            }
            Scope::Attach { pid } => {
                let tids = threads(*pid)?;
                s.open_all(fs, events, &tids, &cpus, ring_pages, false)?;
                s.enable_all()?;
            }
        }
        Ok(s)
    }

    fn enable_all(&self) -> Result<(), EventsError> {
        for e in self.owners.values().chain(&self.events) {
            e.enable().map_err(|e| EventsError::Perf(format!("enabling an event: {e}")))?;
        }
        Ok(())
    }

    fn open_all(
        &mut self,
        fs: &TraceFsDir,
        events: &[EventDesc],
        tids: &[i32],
        cpus: &[i32],
        ring_pages: usize,
        on_exec: bool,
    ) -> Result<(), EventsError> {
        for (k, ev) in events.iter().enumerate() {
            let filter = match &ev.filter {
                Some(f) => Some(CString::new(f.as_str()).map_err(|_| EventsError::Filter {
                    event: ev.sel.display_name(),
                    filter: f.clone(),
                    reason: "it holds a NUL byte".into(),
                })?),
                None => None,
            };
            let spec = TracepointSpec {
                id: ev.format.id,
                callchain: ev.sel.stack,
                max_stack: ev.sel.max_stack.unwrap_or(0),
                inherit: tids != [-1],
                enable_on_exec: on_exec,
                disabled: !on_exec,
            };
            for &tid in tids {
                for &cpu in cpus {
                    let pe = tracepoint::open(&spec, tid, cpu).map_err(|e| match e.raw_os_error() {
                        Some(libc::EACCES) | Some(libc::EPERM) => {
                            EventsError::Privilege { paranoid: paranoid(), why: e.to_string() }
                        }
                        _ => EventsError::Perf(format!(
                            "perf_event_open for {} on CPU {cpu}: {e}",
                            ev.sel.display_name()
                        )),
                    })?;
                    if let Some(f) = &filter {
                        if let Err(e) = pe.set_filter(f) {
                            let text = ev.filter.clone().unwrap_or_default();
                            let reason = filter_reason(fs, &ev.sel.sys, &ev.sel.name, &text)
                                .unwrap_or_else(|| format!("the kernel refused it: {e}"));
                            return Err(EventsError::Filter { event: ev.sel.display_name(), filter: text, reason });
                        }
                    }
                    self.ids.insert(pe.id(), k);
                    match self.owners.get(&cpu) {
                        None => {
                            let ring = PerfRing::map(&pe, ring_pages)
                                .map_err(|e| EventsError::Perf(format!("mapping the ring of CPU {cpu}: {e}")))?;
                            self.rings.push(ring);
                            self.owners.insert(cpu, pe);
                        }
                        Some(o) => {
                            pe.set_output(o).map_err(|e| {
                                EventsError::Perf(format!("redirecting an event into CPU {cpu}'s ring: {e}"))
                            })?;
                            self.events.push(pe);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the launched command (if any) and reaps it.
    pub fn kill_child(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Reads every ring; returns the records up to `until_ns` (all when `None`) in time order.
    pub fn drain(&mut self, until_ns: Option<u64>) -> Vec<Record> {
        let (ids, cc, stats, pending) = (&self.ids, &self.callchain, &mut self.stats, &mut self.pending);
        for ring in &mut self.rings {
            ring.drain(|kind, _misc, body| match decode(kind, body, ids, cc) {
                Some(r) => {
                    match &r {
                        Record::Sample(_) => stats.samples += 1,
                        Record::Lost { count, .. } => {
                            stats.lost += count;
                            stats.loss_records += 1;
                        }
                    }
                    pending.push(r);
                }
                None if kind == uprobe::PERF_RECORD_SAMPLE || kind == uprobe::PERF_RECORD_LOST => {
                    stats.undecodable += 1
                }
                None => {}
            });
        }
        // Stable: records of one ring with equal times keep their ring order.
        self.pending.sort_by_key(Record::time_ns);
        let cut = match until_ns {
            None => self.pending.len(),
            Some(t) => self.pending.partition_point(|r| r.time_ns() <= t),
        };
        let rest = self.pending.split_off(cut);
        std::mem::replace(&mut self.pending, rest)
    }
}

fn threads(pid: i32) -> Result<Vec<i32>, EventsError> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| EventsError::NoProcess { pid, why: e.to_string() })?;
    Ok(dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Decodes one record body (layout: [`funcscope::uprobe::tracepoint`]); None for other record
/// types, unknown ids and short records (untrusted: never read out of bounds).
pub fn decode(kind: u32, b: &[u8], ids: &HashMap<u64, usize>, callchain: &[bool]) -> Option<Record> {
    match kind {
        uprobe::PERF_RECORD_SAMPLE => {
            let event = *ids.get(&u64_at(b, 0)?)?;
            let (pid, tid, time_ns, cpu) = (u32_at(b, 8)?, u32_at(b, 12)?, u64_at(b, 16)?, u32_at(b, 24)?);
            let mut at = 32;
            let mut chain = Vec::new();
            if *callchain.get(event)? {
                let nr = usize::try_from(u64_at(b, at)?).ok()?;
                // A count larger than the record is a corrupt record, not an allocation size.
                if nr > b.len() / 8 {
                    return None;
                }
                chain = (0..nr).map(|i| u64_at(b, at + 8 + 8 * i)).collect::<Option<_>>()?;
                at += 8 + 8 * nr;
            }
            let size = u32_at(b, at)? as usize;
            let raw = b.get(at + 4..(at + 4).checked_add(size)?)?.to_vec();
            Some(Record::Sample(Sample { event, time_ns, pid, tid, cpu, raw, callchain: chain }))
        }
        uprobe::PERF_RECORD_LOST => {
            let count = u64_at(b, 8)?;
            let (time_ns, cpu) = (u64_at(b, 24)?, u32_at(b, 32)?);
            Some(Record::Lost { time_ns, cpu, count })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: u64, chain: &[u64], raw: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(id.to_ne_bytes());
        b.extend(10u32.to_ne_bytes());
        b.extend(11u32.to_ne_bytes());
        b.extend(5000u64.to_ne_bytes());
        b.extend(1u32.to_ne_bytes());
        b.extend(0u32.to_ne_bytes());
        if !chain.is_empty() {
            b.extend((chain.len() as u64).to_ne_bytes());
            for c in chain {
                b.extend(c.to_ne_bytes());
            }
        }
        b.extend((raw.len() as u32).to_ne_bytes());
        b.extend(raw);
        b
    }

    #[test]
    fn samples_with_and_without_callchains_and_losses_decode() {
        let ids: HashMap<u64, usize> = [(7, 0), (8, 1)].into();
        let cc = [false, true];
        let Some(Record::Sample(s)) = decode(uprobe::PERF_RECORD_SAMPLE, &sample(7, &[], &[1, 2, 3, 4]), &ids, &cc)
        else {
            panic!()
        };
        assert_eq!(
            (s.event, s.pid, s.tid, s.time_ns, s.cpu, s.raw.as_slice()),
            (0, 10, 11, 5000, 1, &[1u8, 2, 3, 4][..])
        );
        let Some(Record::Sample(s)) = decode(uprobe::PERF_RECORD_SAMPLE, &sample(8, &[0xaa, 0xbb], &[9; 4]), &ids, &cc)
        else {
            panic!()
        };
        assert_eq!((s.callchain.as_slice(), s.raw.as_slice()), (&[0xaa, 0xbb][..], &[9u8; 4][..]));
        // Unknown id, short record, a callchain count beyond the record, a raw size beyond it.
        assert_eq!(decode(uprobe::PERF_RECORD_SAMPLE, &sample(9, &[], &[]), &ids, &cc), None);
        assert_eq!(decode(uprobe::PERF_RECORD_SAMPLE, &[0; 12], &ids, &cc), None);
        let mut b = sample(8, &[1], &[]);
        b[32..40].copy_from_slice(&u64::MAX.to_ne_bytes());
        assert_eq!(decode(uprobe::PERF_RECORD_SAMPLE, &b, &ids, &cc), None);
        let mut b = sample(7, &[], &[1, 2, 3, 4]);
        b[32..36].copy_from_slice(&100u32.to_ne_bytes());
        assert_eq!(decode(uprobe::PERF_RECORD_SAMPLE, &b, &ids, &cc), None);
        let mut lost = Vec::new();
        for v in [7u64, 42] {
            lost.extend(v.to_ne_bytes());
        }
        lost.extend(1u32.to_ne_bytes());
        lost.extend(2u32.to_ne_bytes());
        lost.extend(6000u64.to_ne_bytes());
        lost.extend(1u32.to_ne_bytes());
        lost.extend(0u32.to_ne_bytes());
        lost.extend(7u64.to_ne_bytes());
        assert_eq!(
            decode(uprobe::PERF_RECORD_LOST, &lost, &ids, &cc),
            Some(Record::Lost { time_ns: 6000, cpu: 1, count: 42 })
        );
    }
}
