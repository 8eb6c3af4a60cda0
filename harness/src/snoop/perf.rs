//! The perf plumbing: one entry and one return uprobe per target function on every online CPU,
//! for a launched command or for every thread of a running process; per-CPU rings decoded into
//! time-ordered [`Event`]s.
//!
//! # Scope
//! * **Launch**: the command runs under `/bin/sh -c 'kill -STOP $$; exec "$@"'`: the shell stops
//!   itself, the events are opened on it with `enable_on_exec` and `inherit`, and `SIGCONT` lets
//!   it `exec` the command: counting starts exactly at the command's `exec`, and threads and
//!   child processes it creates inherit the events. No `unsafe` pre-exec hook is needed.
//! * **Attach**: events on every thread of the process (`/proc/PID/task`), enabled at once,
//!   with `inherit` for the threads and children they create later. Threads are listed again
//!   until no new one appears while the events are opened.
//!
//! Per-task events only place breakpoints in the traced processes: other processes that map the
//! same file are not probed at all (the kernel's uprobe filter), so nothing needs filtering here.
//!
//! # Order
//! Each CPU has its own ring, so the merged stream is sorted by time before pairing, and events
//! younger than [`HOLD_NS`] stay back until the next drain: a record is written microseconds after
//! its timestamp is taken, and an older one could still arrive in another CPU's ring.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, Command};

use funcscope::uprobe::{self, PerfEvent, PerfRing, UprobePmu, UprobeSpec};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::elf::Target;
use super::pair::Args;
use super::tracefs::TraceFs;
use super::SnoopError;

/// How long events stay back before being paired (ns): far more than the microseconds between a
/// sample's timestamp and its write into a ring, far less than a report interval.
pub const HOLD_NS: u64 = 50_000_000;

/// Default data pages per CPU ring (4 KiB each: 4 MiB). At the measured ~1.9 us per probed call,
/// one CPU fills at most ~100 MB/s of 96-byte samples; the loop drains every few ms.
pub const DEFAULT_RING_PAGES: usize = 1024;

/// What one decoded record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Entry of target `func` with its first six integer arguments.
    Entry {
        /// Target index.
        func: usize,
        /// Arguments (0 where registers are not sampled on this architecture).
        args: Args,
    },
    /// Return of target `func` with the return-value register.
    Return {
        /// Target index.
        func: usize,
        /// Return value (0 where not sampled).
        ret: u64,
    },
    /// The kernel lost this many records in this event's ring.
    Lost(u64),
}

/// One decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// CLOCK_MONOTONIC ns.
    pub time_ns: u64,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// What happened.
    pub kind: EventKind,
}

/// Sampled registers: (`sample_regs_user` bits in perf's register numbering, and for each
/// argument position the index of its register among the sampled ones, which come in bit order).
#[cfg(target_arch = "x86_64")]
mod regs {
    // perf_regs.h (x86): AX 0, CX 2, DX 3, SI 4, DI 5, R8 16, R9 17.
    pub const ENTRY: u64 = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 16) | (1 << 17);
    /// Sampled in bit order CX DX SI DI R8 R9; the SysV order is DI SI DX CX R8 R9.
    pub const ARG_SLOT: [usize; 6] = [3, 2, 1, 0, 4, 5];
    pub const RETURN: u64 = 1 << 0;
}
#[cfg(target_arch = "aarch64")]
mod regs {
    // perf_regs.h (arm64): X0..X5 are bits 0..5, the arguments in order; X0 is the return value.
    pub const ENTRY: u64 = 0x3f;
    pub const ARG_SLOT: [usize; 6] = [0, 1, 2, 3, 4, 5];
    pub const RETURN: u64 = 1;
}
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod regs {
    pub const ENTRY: u64 = 0;
    pub const ARG_SLOT: [usize; 6] = [0, 1, 2, 3, 4, 5];
    pub const RETURN: u64 = 0;
}

/// What to trace.
#[derive(Clone, Debug)]
pub enum Scope {
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

/// The open events and their rings.
pub struct Tracer {
    rings: Vec<PerfRing>,
    /// The event that owns each CPU's ring.
    owners: HashMap<i32, PerfEvent>,
    /// The other events, kept open for as long as the tracer lives.
    events: Vec<PerfEvent>,
    /// Event id -> (target index, is return).
    ids: HashMap<u64, (usize, bool)>,
    regs_entry: u64,
    regs_return: u64,
    pending: Vec<Event>,
    /// The launched command, if any.
    pub child: Option<Child>,
    /// How the probes were made, for the report (tracefs mounted, or the PMU fallback).
    pub notes: Vec<String>,
    /// Declared last: dropped after the events, which must be closed before their tracefs
    /// uprobe events can be removed.
    tracefs: Option<TraceFs>,
}

/// The online CPUs (`/sys/devices/system/cpu/online`, e.g. `0-3,6`).
pub fn online_cpus() -> Result<Vec<i32>, SnoopError> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_err(|e| SnoopError::Perf(format!("reading /sys/devices/system/cpu/online: {e}")))?;
    parse_cpu_list(text.trim()).ok_or_else(|| SnoopError::Perf(format!("unreadable CPU list {text:?}")))
}

fn parse_cpu_list(s: &str) -> Option<Vec<i32>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<i32>().ok()?..=b.parse::<i32>().ok()?),
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// The error for a refused `perf_event_open`: privilege is named, anything else passed on.
fn open_error(e: std::io::Error, t: &Target) -> SnoopError {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => {
            let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into());
            SnoopError::Privilege { paranoid, why: e.to_string() }
        }
        _ => SnoopError::Perf(format!("perf_event_open for {} at {:#x}: {e}", t.path.display(), t.offset)),
    }
}

impl Tracer {
    /// Opens the probes for `targets` in `scope`; in launch mode the command starts running.
    pub fn start(targets: &[Target], scope: &Scope, ring_pages: usize) -> Result<Tracer, SnoopError> {
        let pmu = UprobePmu::detect()
            .map_err(|e| SnoopError::Perf(format!("no uprobe PMU (/sys/bus/event_source/devices/uprobe/type): {e}")))?;
        let cpus = online_cpus()?;
        let mut t = Tracer {
            rings: Vec::new(),
            owners: HashMap::new(),
            events: Vec::new(),
            ids: HashMap::new(),
            regs_entry: regs::ENTRY,
            regs_return: regs::RETURN,
            pending: Vec::new(),
            child: None,
            notes: Vec::new(),
            tracefs: None,
        };
        match TraceFs::open() {
            Ok(mut fs) => {
                t.notes.extend(fs.note.take());
                t.tracefs = Some(fs);
            }
            Err(why) => t.notes.push(format!(
                "{why}; using the uprobe PMU, which does not follow threads or children created after the start"
            )),
        }
        match scope {
            Scope::Launch { program, args } => {
                let child = Command::new("/bin/sh")
                    .arg("-c")
                    .arg("kill -STOP $$; exec \"$@\"")
                    .arg("sh")
                    .arg(program)
                    .args(args)
                    .spawn()
                    .map_err(|e| SnoopError::Launch(format!("starting /bin/sh for {program}: {e}")))?;
                let pid = Pid::from_raw(child.id() as i32);
                t.child = Some(child);
                match waitpid(pid, Some(WaitPidFlag::WUNTRACED)) {
                    Ok(WaitStatus::Stopped(..)) => {}
                    other => {
                        return Err(SnoopError::Launch(format!("{program}: the launcher did not stop: {other:?}")))
                    }
                }
                let opened = t.open_all(&pmu, targets, &[pid.as_raw()], &cpus, ring_pages, true);
                if let Err(e) = opened {
                    t.kill_child();
                    return Err(e);
                }
                kill(pid, Signal::SIGCONT).map_err(|e| SnoopError::Launch(format!("continuing {program}: {e}")))?;
            }
            Scope::Attach { pid } => {
                let mut done: Vec<i32> = Vec::new();
                // Threads created while the events are being opened are caught by the next pass
                // (or by `inherit`, when their creator was already traced).
                for _ in 0..16 {
                    let tids: Vec<i32> = threads(*pid)?.into_iter().filter(|x| !done.contains(x)).collect();
                    if tids.is_empty() {
                        break;
                    }
                    t.open_all(&pmu, targets, &tids, &cpus, ring_pages, false)?;
                    done.extend(tids);
                }
            }
        }
        Ok(t)
    }

    fn open_all(
        &mut self,
        pmu: &UprobePmu,
        targets: &[Target],
        tids: &[i32],
        cpus: &[i32],
        ring_pages: usize,
        on_exec: bool,
    ) -> Result<(), SnoopError> {
        let paths: Vec<CString> = targets
            .iter()
            .map(|t| CString::new(t.path.as_os_str().as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|e| SnoopError::Perf(format!("a target path holds a NUL byte: {e}")))?;
        // tracefs events: one entry and one return event per target, shared by every task and CPU.
        let mut tp_ids: Vec<[Option<u64>; 2]> = vec![[None, None]; targets.len()];
        if let Some(fs) = self.tracefs.as_mut() {
            for (k, target) in targets.iter().enumerate() {
                for (r, retprobe) in [false, true].into_iter().enumerate() {
                    let name = format!("f{k}_{}_{}", if retprobe { "return" } else { "entry" }, tids[0]);
                    tp_ids[k][r] = Some(fs.add(&name, retprobe, &target.path, target.offset)?);
                }
            }
        }
        for &tid in tids {
            for &cpu in cpus {
                for (k, target) in targets.iter().enumerate() {
                    for retprobe in [false, true] {
                        let spec = UprobeSpec {
                            path: &paths[k],
                            offset: target.offset,
                            retprobe,
                            regs_user: if retprobe { self.regs_return } else { self.regs_entry },
                            inherit: true,
                            enable_on_exec: on_exec,
                            wakeup_bytes: wakeup_bytes(ring_pages),
                        };
                        let ev = match tp_ids[k][usize::from(retprobe)] {
                            Some(id) => uprobe::open_tracepoint(id, &spec, tid, cpu),
                            None => uprobe::open_uprobe(pmu, &spec, tid, cpu),
                        }
                        .map_err(|e| open_error(e, target))?;
                        self.ids.insert(ev.id(), (k, retprobe));
                        // One ring per CPU: events of any task on that CPU may share it (the
                        // kernel allows redirection between per-CPU events of one CPU).
                        match self.owners.get(&cpu) {
                            None => {
                                let ring = PerfRing::map(&ev, ring_pages)
                                    .map_err(|e| SnoopError::Perf(format!("mapping the ring of CPU {cpu}: {e}")))?;
                                self.rings.push(ring);
                                self.owners.insert(cpu, ev);
                            }
                            Some(o) => {
                                ev.set_output(o).map_err(|e| {
                                    SnoopError::Perf(format!("redirecting an event into CPU {cpu}'s ring: {e}"))
                                })?;
                                self.events.push(ev);
                            }
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

    /// Reads every ring; returns the events up to `until_ns` (all when `None`), in time order.
    /// Younger events stay pending for the next call.
    pub fn drain(&mut self, until_ns: Option<u64>) -> Vec<Event> {
        let (ids, re, rr) = (&self.ids, self.regs_entry, self.regs_return);
        for ring in &mut self.rings {
            ring.drain(|kind, _misc, body| {
                if let Some(ev) = decode(kind, body, ids, re, rr) {
                    self.pending.push(ev);
                }
            });
        }
        // Stable sort: events of one ring with equal times keep their ring order.
        self.pending.sort_by_key(|e| e.time_ns);
        let cut = match until_ns {
            None => self.pending.len(),
            Some(t) => self.pending.partition_point(|e| e.time_ns <= t),
        };
        let rest = self.pending.split_off(cut);
        std::mem::replace(&mut self.pending, rest)
    }
}

/// The wakeup watermark of a ring of `ring_pages` data pages: a quarter of its data area. The
/// reader is woken (see [`Tracer::wait`]) well before the ring fills, and not once per sample:
/// a wakeup per sample (`wakeup_events = 1`) is an `irq_work` self-IPI per probe hit, a VM exit
/// in a guest, and roughly tripled snoop's cost per probed call (snoop-cost, 2026-12).
pub fn wakeup_bytes(ring_pages: usize) -> u32 {
    u32::try_from(PerfRing::data_bytes(ring_pages) / 4).unwrap_or(u32::MAX)
}

impl Tracer {
    /// Waits until a ring reaches its wakeup watermark ([`wakeup_bytes`]) or `timeout` passes,
    /// whichever comes first: the timeout bounds how long a quiet ring's records wait and how
    /// late a stop request or the command's exit is noticed.
    ///
    /// A ring whose event's task is gone reports `POLLHUP` at once and for ever; then the wait
    /// is a plain sleep of `timeout`, never a busy loop.
    pub fn wait(&self, timeout: std::time::Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let mut fds: Vec<PollFd<'_>> = self.rings.iter().map(|r| PollFd::new(r.as_fd(), PollFlags::POLLIN)).collect();
        let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let readable = match poll(&mut fds, ms) {
            Ok(0) => return,
            Ok(_) => fds.iter().any(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN))),
            Err(_) => false,
        };
        if !readable {
            std::thread::sleep(timeout);
        }
    }
}

/// The threads of process `pid`.
fn threads(pid: i32) -> Result<Vec<i32>, SnoopError> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| SnoopError::NoProcess { pid, why: e.to_string() })?;
    Ok(dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes one record (body after the header). Samples: identifier, pid, tid, time, then
/// `abi` and the registers when sampled. LOST: id, count, then the sample_id trailer (pid, tid,
/// time, identifier). Anything else, or a short record, is skipped.
fn decode(kind: u32, b: &[u8], ids: &HashMap<u64, (usize, bool)>, re: u64, rr: u64) -> Option<Event> {
    match kind {
        uprobe::PERF_RECORD_SAMPLE => {
            let &(func, is_ret) = ids.get(&u64_at(b, 0)?)?;
            let (pid, tid, time_ns) = (u32_at(b, 8)?, u32_at(b, 12)?, u64_at(b, 16)?);
            let mask = if is_ret { rr } else { re };
            let regs: Vec<u64> = if mask != 0 && u64_at(b, 24)? != 0 {
                (0..mask.count_ones() as usize).map(|i| u64_at(b, 32 + 8 * i)).collect::<Option<_>>()?
            } else {
                Vec::new()
            };
            let kind = if is_ret {
                EventKind::Return { func, ret: regs.first().copied().unwrap_or(0) }
            } else {
                let mut args = [0u64; 6];
                if regs.len() == 6 {
                    for (a, &slot) in args.iter_mut().zip(regs::ARG_SLOT.iter()) {
                        *a = regs[slot];
                    }
                }
                EventKind::Entry { func, args }
            };
            Some(Event { time_ns, pid, tid, kind })
        }
        uprobe::PERF_RECORD_LOST => {
            let lost = u64_at(b, 8)?;
            let (pid, tid, time_ns) = (u32_at(b, 16)?, u32_at(b, 20)?, u64_at(b, 24)?);
            Some(Event { time_ns, pid, tid, kind: EventKind::Lost(lost) })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list("x"), None);
    }

    fn sample(id: u64, tid: u32, time: u64, regs: &[u64]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(id.to_ne_bytes());
        b.extend(100u32.to_ne_bytes());
        b.extend(tid.to_ne_bytes());
        b.extend(time.to_ne_bytes());
        b.extend(2u64.to_ne_bytes()); // PERF_SAMPLE_REGS_ABI_64
        for r in regs {
            b.extend(r.to_ne_bytes());
        }
        b
    }

    #[test]
    fn samples_and_losses_decode() {
        let ids: HashMap<u64, (usize, bool)> = [(11, (0, false)), (12, (0, true))].into();
        let e =
            decode(uprobe::PERF_RECORD_SAMPLE, &sample(11, 7, 1000, &[10, 20, 30, 40, 50, 60]), &ids, 0x3f, 1).unwrap();
        assert_eq!((e.pid, e.tid, e.time_ns), (100, 7, 1000));
        let EventKind::Entry { func: 0, args } = e.kind else { panic!("{e:?}") };
        let expect: Vec<u64> = regs::ARG_SLOT.iter().map(|&s| [10, 20, 30, 40, 50, 60][s]).collect();
        assert_eq!(args.to_vec(), expect);
        let r = decode(uprobe::PERF_RECORD_SAMPLE, &sample(12, 7, 2000, &[99]), &ids, 0x3f, 1).unwrap();
        assert_eq!(r.kind, EventKind::Return { func: 0, ret: 99 });
        // Unknown ids and short records are skipped, not trusted.
        assert!(decode(uprobe::PERF_RECORD_SAMPLE, &sample(13, 7, 1, &[]), &ids, 0, 0).is_none());
        assert!(decode(uprobe::PERF_RECORD_SAMPLE, &[0; 10], &ids, 0, 0).is_none());
        let mut lost = Vec::new();
        for v in [11u64, 42] {
            lost.extend(v.to_ne_bytes());
        }
        lost.extend(1u32.to_ne_bytes());
        lost.extend(2u32.to_ne_bytes());
        lost.extend(5000u64.to_ne_bytes());
        lost.extend(11u64.to_ne_bytes());
        let l = decode(uprobe::PERF_RECORD_LOST, &lost, &ids, 0, 0).unwrap();
        assert_eq!((l.kind, l.time_ns), (EventKind::Lost(42), 5000));
    }
}
