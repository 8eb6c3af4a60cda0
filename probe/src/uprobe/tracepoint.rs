//! Tracepoints (tracefs `events/SYS/NAME/id`) opened for the harness's `events` command: every
//! hit sampled with its raw record (`PERF_SAMPLE_RAW`), its CPU, and optionally its callchain,
//! and an in-kernel ftrace filter set with `PERF_EVENT_IOC_SET_FILTER`.
//!
//! A child module of [`crate::uprobe`] so that it shares the `perf_event_attr` layout, the
//! [`PerfEvent`] handle and the ring ([`super::PerfRing`]) instead of copying them.
//!
//! # Sample layout (fixed here, decoded by the harness)
//! `IDENTIFIER u64, pid u32, tid u32, time u64, cpu u32, res u32, [nr u64, ips[nr] u64],
//! raw_size u32, raw[raw_size]`: the bits are emitted in the kernel's fixed order
//! (IDENTIFIER, TID, TIME, CPU, CALLCHAIN, RAW). Non-sample records (LOST) carry the trailer
//! `pid u32, tid u32, time u64, cpu u32, res u32, identifier u64` (`sample_id_all`).

use std::ffi::CStr;
use std::io;
use std::os::fd::AsRawFd;

use super::{
    PerfEvent, PerfEventAttr, FLAG_DISABLED, FLAG_ENABLE_ON_EXEC, FLAG_INHERIT, FLAG_SAMPLE_ID_ALL, FLAG_USE_CLOCKID,
    PERF_SAMPLE_IDENTIFIER, PERF_SAMPLE_TID, PERF_SAMPLE_TIME, PERF_TYPE_TRACEPOINT,
};

/// `PERF_SAMPLE_CALLCHAIN`: the kernel and user stack of the hit.
pub const PERF_SAMPLE_CALLCHAIN: u64 = 1 << 5;
/// `PERF_SAMPLE_CPU`: the CPU the hit happened on (u32, then a reserved u32).
pub const PERF_SAMPLE_CPU: u64 = 1 << 7;
/// `PERF_SAMPLE_RAW`: the tracepoint's record as laid out by its tracefs `format` file.
pub const PERF_SAMPLE_RAW: u64 = 1 << 10;

/// Callchain entries at or above this value are context markers (`PERF_CONTEXT_KERNEL`,
/// `PERF_CONTEXT_USER`, ...), not addresses.
pub const PERF_CONTEXT_MAX: u64 = -4095i64 as u64;
/// `PERF_CONTEXT_KERNEL`: the following callchain entries are kernel addresses.
pub const PERF_CONTEXT_KERNEL: u64 = -128i64 as u64;
/// `PERF_CONTEXT_USER`: the following callchain entries are user addresses.
pub const PERF_CONTEXT_USER: u64 = -512i64 as u64;

// _IOW('$', 6, char *).
const PERF_EVENT_IOC_SET_FILTER: libc::c_ulong = 0x4008_2406;

/// How to open one tracepoint.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracepointSpec {
    /// The tracepoint's id (tracefs `events/SYS/NAME/id`).
    pub id: u64,
    /// Also sample the callchain (kernel and user stack).
    pub callchain: bool,
    /// `sample_max_stack`: the deepest callchain kept (0: the kernel's default,
    /// `kernel.perf_event_max_stack`).
    pub max_stack: u16,
    /// Follow threads and child processes created after the event is opened.
    pub inherit: bool,
    /// Start disabled and enable at the target's next `exec` (for a launched command).
    pub enable_on_exec: bool,
    /// Start disabled ([`PerfEvent::enable`] starts it): lets every event be opened and
    /// filtered before any of them records.
    pub disabled: bool,
}

/// The `sample_type` of every tracepoint opened here (see the module docs for the layout).
pub fn sample_type(callchain: bool) -> u64 {
    PERF_SAMPLE_IDENTIFIER
        | PERF_SAMPLE_TID
        | PERF_SAMPLE_TIME
        | PERF_SAMPLE_CPU
        | PERF_SAMPLE_RAW
        | if callchain { PERF_SAMPLE_CALLCHAIN } else { 0 }
}

/// Opens the tracepoint `spec.id` on `pid` (-1: every process, needs a CPU) and `cpu` (-1: any),
/// sampling every hit, timestamps in CLOCK_MONOTONIC ns.
pub fn open(spec: &TracepointSpec, pid: i32, cpu: i32) -> io::Result<PerfEvent> {
    let mut flags = FLAG_SAMPLE_ID_ALL | FLAG_USE_CLOCKID;
    if spec.inherit {
        flags |= FLAG_INHERIT;
    }
    if spec.enable_on_exec {
        flags |= FLAG_DISABLED | FLAG_ENABLE_ON_EXEC;
    }
    if spec.disabled {
        flags |= FLAG_DISABLED;
    }
    let attr = PerfEventAttr {
        kind: PERF_TYPE_TRACEPOINT,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: spec.id,
        sample_period: 1,
        sample_type: sample_type(spec.callchain),
        flags,
        // No wakeup per sample: the harness polls the rings and never waits on the fd, and each
        // wakeup is an irq_work (a self-IPI, a VM exit in a guest). With wakeup_events = 0 the
        // kernel wakes at its watermark (half the ring) only.
        wakeup_events: 0,
        clockid: libc::CLOCK_MONOTONIC,
        sample_max_stack: if spec.callchain { spec.max_stack } else { 0 },
        ..PerfEventAttr::default()
    };
    // SAFETY: for tracepoints no config word is a pointer: `attr` carries none.
    unsafe { super::open_attr(&attr, pid, cpu) }
}

impl PerfEvent {
    /// Sets the event's ftrace filter (`PERF_EVENT_IOC_SET_FILTER`); the kernel parses it and
    /// answers EINVAL for a filter it cannot parse or that names a field the event lacks (the
    /// reason itself is not returned by this ioctl; tracefs shows it, see the harness).
    pub fn set_filter(&self, filter: &CStr) -> io::Result<()> {
        // SAFETY: SET_FILTER reads a NUL-terminated string through the pointer; `filter` is a
        // CStr borrowed for the duration of the call, and the kernel copies it (strndup_user).
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), PERF_EVENT_IOC_SET_FILTER, filter.as_ptr()) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
