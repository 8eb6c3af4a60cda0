//! The kernel side of uprobes, through `perf_event_open` and the dynamic `uprobe` PMU: open an
//! entry or return probe on a file offset, and read the per-CPU sample ring it writes into.
//!
//! This is the reader-side `unsafe` that `funcscope-harness` (which forbids `unsafe`) needs for
//! its `snoop` command: the `perf_event_open` syscall, three ioctls and the ring's `mmap`. It
//! knows nothing of symbols, pairing or statistics; the harness decodes the records
//! (`harness/src/snoop/perf.rs`).
//!
//! # The PMU (no tracefs, no BPF)
//! `/sys/bus/event_source/devices/uprobe/type` is the PMU's `type`; `format/retprobe` says which
//! bit of `config` makes a return probe (`config:0` on every kernel seen). `config1` points to the
//! probed file's path and `config2` is the probe's **file offset** (not its virtual address).
//!
//! # Rings
//! A ring is `1 + 2^n` pages: the control page (`perf_event_mmap_page`) and the data area. The
//! kernel advances `data_head` (read with Acquire, so the bytes before it are visible); the
//! reader advances `data_tail` (written with Release, so the kernel does not overwrite bytes still
//! being copied). A record may wrap around the end of the data area; [`PerfRing::drain`] hands
//! out each record contiguous (copied when it wraps).
//!
//! Inherited per-task events (`inherit = 1`, to follow threads and children) cannot be mapped
//! with `cpu = -1` (the kernel refuses, EINVAL), so the harness opens one event per CPU and
//! redirects all events of a CPU into one ring with [`PerfEvent::set_output`].

pub mod tracepoint;

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// `PERF_RECORD_LOST`: the kernel dropped records because the ring was full.
pub const PERF_RECORD_LOST: u32 = 2;
/// `PERF_RECORD_SAMPLE`: one probe hit.
pub const PERF_RECORD_SAMPLE: u32 = 9;
/// `PERF_SAMPLE_TID`: pid and tid (two u32).
pub const PERF_SAMPLE_TID: u64 = 1 << 1;
/// `PERF_SAMPLE_TIME`: the event's time (u64 ns, of the clock chosen with `clockid`).
pub const PERF_SAMPLE_TIME: u64 = 1 << 2;
/// `PERF_SAMPLE_REGS_USER`: the user registers selected by `sample_regs_user`.
pub const PERF_SAMPLE_REGS_USER: u64 = 1 << 12;
/// `PERF_SAMPLE_IDENTIFIER`: the event id, first in every sample and last in every trailer.
pub const PERF_SAMPLE_IDENTIFIER: u64 = 1 << 16;

/// The uprobe PMU of this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UprobePmu {
    /// `perf_event_attr.type` for uprobes.
    pub kind: u32,
    /// The bit of `config` that makes a return probe (0 on every kernel seen).
    pub retprobe_bit: u32,
}

impl UprobePmu {
    /// Reads the PMU from sysfs; `NotFound` when this kernel has no uprobe PMU.
    pub fn detect() -> io::Result<UprobePmu> {
        Self::detect_in(Path::new("/sys/bus/event_source/devices/uprobe"))
    }

    fn detect_in(dir: &Path) -> io::Result<UprobePmu> {
        let kind = std::fs::read_to_string(dir.join("type"))?;
        let kind = kind.trim().parse::<u32>().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // "config:0"; a missing file means the oldest layout, where it was bit 0 too.
        let retprobe_bit = match std::fs::read_to_string(dir.join("format/retprobe")) {
            Ok(s) => s
                .trim()
                .strip_prefix("config:")
                .and_then(|b| b.parse::<u32>().ok())
                .filter(|&b| b < 64)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("format/retprobe: {s:?}")))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(UprobePmu { kind, retprobe_bit })
    }
}

/// What to probe and what each hit records.
#[derive(Clone, Copy, Debug)]
pub struct UprobeSpec<'a> {
    /// The probed file (executable or shared object), as the kernel should open it.
    pub path: &'a CStr,
    /// The probe's file offset in `path`.
    pub offset: u64,
    /// A return probe (fires when the function returns) instead of an entry probe.
    pub retprobe: bool,
    /// `sample_regs_user`: the user registers each sample carries (0: none).
    pub regs_user: u64,
    /// Follow threads and child processes created after the event is opened.
    pub inherit: bool,
    /// Start disabled and enable at the target's next `exec` (for a launched command).
    pub enable_on_exec: bool,
    /// Wake a reader waiting on the ring (`poll`) once this many bytes are in it, not on every
    /// sample (`watermark` = 1, `wakeup_watermark`); 0: the kernel's default, half the ring.
    ///
    /// Each wakeup is an `irq_work` (a self-IPI: a VM exit in a guest), so waking per sample
    /// roughly tripled the cost of a probed call on the VMs measured (snoop-cost, 2026-12).
    pub wakeup_bytes: u32,
}

/// `struct perf_event_attr`, `PERF_ATTR_SIZE_VER8` (136 bytes), as the kernel headers lay it out.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved_2: u16,
    aux_sample_size: u32,
    reserved_3: u32,
    sig_data: u64,
    config3: u64,
}

const _: () = assert!(std::mem::size_of::<PerfEventAttr>() == 136);

// Bits of perf_event_attr's flag word (include/uapi/linux/perf_event.h).
const FLAG_DISABLED: u64 = 1 << 0;
const FLAG_INHERIT: u64 = 1 << 1;
const FLAG_ENABLE_ON_EXEC: u64 = 1 << 12;
const FLAG_WATERMARK: u64 = 1 << 14;
const FLAG_SAMPLE_ID_ALL: u64 = 1 << 18;
const FLAG_USE_CLOCKID: u64 = 1 << 25;

// ioctls: _IO('$', 0), _IO('$', 1), _IOR('$', 7, u64), _IO('$', 5).
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
const PERF_EVENT_IOC_ID: libc::c_ulong = 0x8008_2407;
const PERF_EVENT_IOC_SET_OUTPUT: libc::c_ulong = 0x2405;

/// The sample layout every event opened here uses: identifier, tid, time (CLOCK_MONOTONIC ns),
/// and the user registers when asked for. Non-sample records (LOST) carry the same fields in
/// their trailer (`sample_id_all`), so a loss has a time too.
pub fn sample_type(regs_user: u64) -> u64 {
    PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | if regs_user != 0 { PERF_SAMPLE_REGS_USER } else { 0 }
}

/// One open perf event (closed on drop).
#[derive(Debug)]
pub struct PerfEvent {
    fd: OwnedFd,
    id: u64,
}

/// Opens an entry or return uprobe on `pid` (-1: every process) and `cpu` (-1: any CPU) through
/// the uprobe PMU. Every hit is sampled (`sample_period = 1`).
///
/// **Not inherited correctly:** the kernel creates an inherited copy of a uprobe-PMU event by
/// reading `config1` (the path pointer) again, in the *traced* process's memory (kernel 6.18:
/// `perf_uprobe_init` -> `strndup_user`), so threads and children created later are not traced.
/// Use [`open_tracepoint`] over a tracefs uprobe event where they must be followed.
pub fn open_uprobe(pmu: &UprobePmu, spec: &UprobeSpec<'_>, pid: i32, cpu: i32) -> io::Result<PerfEvent> {
    let config = if spec.retprobe { 1 << pmu.retprobe_bit } else { 0 };
    open_event(pmu.kind, config, spec.path.as_ptr() as u64, spec.offset, spec, pid, cpu)
}

/// `PERF_TYPE_TRACEPOINT`.
const PERF_TYPE_TRACEPOINT: u32 = 2;

/// Opens the tracepoint with tracefs id `id` (e.g. a uprobe event created in
/// `tracing/uprobe_events`), sampling every hit like [`open_uprobe`]; `spec.path`, `offset` and
/// `retprobe` are ignored (the tracefs event defines them). Inherited copies work.
pub fn open_tracepoint(id: u64, spec: &UprobeSpec<'_>, pid: i32, cpu: i32) -> io::Result<PerfEvent> {
    open_event(PERF_TYPE_TRACEPOINT, id, 0, 0, spec, pid, cpu)
}

fn open_event(
    kind: u32,
    config: u64,
    config1: u64,
    config2: u64,
    spec: &UprobeSpec<'_>,
    pid: i32,
    cpu: i32,
) -> io::Result<PerfEvent> {
    let mut flags = FLAG_SAMPLE_ID_ALL | FLAG_USE_CLOCKID | FLAG_WATERMARK;
    if spec.inherit {
        flags |= FLAG_INHERIT;
    }
    if spec.enable_on_exec {
        flags |= FLAG_DISABLED | FLAG_ENABLE_ON_EXEC;
    }
    let attr = PerfEventAttr {
        kind,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config,
        sample_period: 1,
        sample_type: sample_type(spec.regs_user),
        flags,
        // With `watermark` set this word is `wakeup_watermark` (a union in the kernel's struct):
        // bytes, not samples.
        wakeup_events: spec.wakeup_bytes,
        config1,
        config2,
        sample_regs_user: spec.regs_user,
        clockid: libc::CLOCK_MONOTONIC,
        ..PerfEventAttr::default()
    };
    // SAFETY: for the uprobe PMU `config1` is `spec.path`'s pointer (`open_uprobe`), a CStr
    // borrowed for the duration of this call; for tracepoints it is 0 and unread.
    unsafe { open_attr(&attr, pid, cpu) }
}

/// `perf_event_open(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)`, then the event's id
/// (`PERF_EVENT_IOC_ID`): what every event opened in this module and in [`tracepoint`] shares.
///
/// # Safety
/// Every pointer `attr` carries (`config1` of a uprobe-PMU event: a NUL-terminated path) must be
/// valid for reads for the duration of the call.
unsafe fn open_attr(attr: &PerfEventAttr, pid: i32, cpu: i32) -> io::Result<PerfEvent> {
    let cloexec: libc::c_ulong = 1 << 3;
    // SAFETY: `attr` is a fully initialised perf_event_attr whose `size` matches its layout (its
    // constructors set it); the pointers it carries are valid, by this function's contract. The
    // syscall takes no other pointers.
    let fd = unsafe {
        libc::syscall(libc::SYS_perf_event_open, attr as *const PerfEventAttr, pid, cpu, -1 as libc::c_int, cloexec)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a new file descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut id: u64 = 0;
    // SAFETY: PERF_EVENT_IOC_ID writes one u64 through the pointer, which points to `id`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), PERF_EVENT_IOC_ID, &mut id as *mut u64) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PerfEvent { fd, id })
}

impl PerfEvent {
    /// The kernel's id of this event: the `IDENTIFIER` of its samples (also of those of its
    /// inherited copies, which report their parent's id).
    pub fn id(&self) -> u64 {
        self.id
    }

    fn ioctl(&self, request: libc::c_ulong, arg: libc::c_int) -> io::Result<()> {
        // SAFETY: ENABLE, DISABLE and SET_OUTPUT take an integer argument, no pointer.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), request, arg) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Starts counting (sampling).
    pub fn enable(&self) -> io::Result<()> {
        self.ioctl(PERF_EVENT_IOC_ENABLE, 0)
    }

    /// Stops counting; records already in the ring stay there.
    pub fn disable(&self) -> io::Result<()> {
        self.ioctl(PERF_EVENT_IOC_DISABLE, 0)
    }

    /// Sends this event's records into `ring_owner`'s ring (same CPU, or the kernel refuses).
    pub fn set_output(&self, ring_owner: &PerfEvent) -> io::Result<()> {
        self.ioctl(PERF_EVENT_IOC_SET_OUTPUT, ring_owner.fd.as_raw_fd())
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Offsets in `struct perf_event_mmap_page` (the ABI's fixed part is 1024 bytes).
const DATA_HEAD: usize = 1024;
const DATA_TAIL: usize = 1032;

/// The mapped sample ring of one event (and of every event redirected into it).
#[derive(Debug)]
pub struct PerfRing {
    base: *mut u8,
    /// Bytes mapped: one control page + `data_size`.
    len: usize,
    page: usize,
    /// The data area's size, a power of two.
    data_size: usize,
    /// A record that wraps around the end of the data area is copied here.
    scratch: Vec<u8>,
    _event_fd: OwnedFd,
}

// SAFETY: the mapping is owned by this value alone (it is unmapped on drop), and every access goes
// through `&mut self` (drain) or atomics; moving it to another thread moves that ownership.
unsafe impl Send for PerfRing {}

impl AsFd for PerfRing {
    /// The ring's event: `poll` it for `POLLIN` (the ring reached its wakeup watermark) or
    /// `POLLHUP` (the event's task is gone).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self._event_fd.as_fd()
    }
}

impl PerfRing {
    /// The data area's size in bytes (a power of two of pages).
    pub fn data_size(&self) -> usize {
        self.data_size
    }

    /// The data area's size in bytes that [`PerfRing::map`] gives `data_pages` (rounded up to a
    /// power of two of pages, at least one page): to size a wakeup watermark before the events
    /// are opened.
    pub fn data_bytes(data_pages: usize) -> usize {
        data_pages.max(1).next_power_of_two() * page_size()
    }

    /// Maps `event`'s ring with `data_pages` data pages (rounded up to a power of two, at least 1).
    pub fn map(event: &PerfEvent, data_pages: usize) -> io::Result<PerfRing> {
        let page = page_size();
        let data_size = Self::data_bytes(data_pages);
        let len = data_size + page;
        let fd = event.fd.try_clone()?;
        // SAFETY: a fresh shared mapping of a perf event fd: the kernel validates the length
        // (1 + 2^n pages) and returns MAP_FAILED on any error, checked below. Nothing else
        // references the new mapping.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(PerfRing { base: base.cast(), len, page, data_size, scratch: Vec::new(), _event_fd: fd })
    }

    fn head_tail(&self) -> (&AtomicU64, &AtomicU64) {
        // SAFETY: both offsets lie inside the control page, are 8-byte aligned (the page is page
        // aligned), and the kernel only ever accesses these words atomically (u64 stores on
        // 64-bit targets); the references live no longer than `self`, which keeps the mapping.
        unsafe { (&*(self.base.add(DATA_HEAD) as *const AtomicU64), &*(self.base.add(DATA_TAIL) as *const AtomicU64)) }
    }

    /// Calls `f(type, misc, body)` for every record the kernel has written since the last drain,
    /// in ring order, then frees their space. `body` is the record after its 8-byte header.
    /// Returns the number of records.
    ///
    /// A record whose header claims a size the ring cannot hold ends the drain (the rest of the
    /// ring is skipped and freed) rather than reading out of bounds.
    pub fn drain(&mut self, mut f: impl FnMut(u32, u16, &[u8])) -> usize {
        let head = self.head_tail().0.load(Ordering::Acquire);
        let mut tail = self.head_tail().1.load(Ordering::Relaxed);
        let mut scratch = std::mem::take(&mut self.scratch);
        // SAFETY: the data area is `data_size` bytes right after the control page, inside the
        // mapping; the kernel does not write the bytes between tail and head until data_tail moves
        // past them (the Release store below), so reading them as a shared slice is sound.
        let data = unsafe { std::slice::from_raw_parts(self.base.add(self.page), self.data_size) };
        let mask = self.data_size as u64 - 1;
        let mut n = 0;
        while head.wrapping_sub(tail) >= 8 {
            let at = (tail & mask) as usize;
            let mut hdr = [0u8; 8];
            for (k, b) in hdr.iter_mut().enumerate() {
                *b = data[(at + k) & mask as usize];
            }
            let kind = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let misc = u16::from_ne_bytes([hdr[4], hdr[5]]);
            let size = u16::from_ne_bytes([hdr[6], hdr[7]]) as u64;
            if size < 8 || size > head.wrapping_sub(tail) {
                tail = head;
                break;
            }
            let start = (at + 8) & mask as usize;
            let body_len = size as usize - 8;
            if start + body_len <= self.data_size {
                f(kind, misc, &data[start..start + body_len]);
            } else {
                let first = self.data_size - start;
                scratch.clear();
                scratch.extend_from_slice(&data[start..]);
                scratch.extend_from_slice(&data[..body_len - first]);
                f(kind, misc, &scratch);
            }
            tail = tail.wrapping_add(size);
            n += 1;
        }
        self.scratch = scratch;
        self.head_tail().1.store(tail, Ordering::Release);
        n
    }
}

impl Drop for PerfRing {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the mapping made in `map`, unmapped once, here; no
        // slice into it outlives `drain`.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pmu_is_read_from_sysfs_files() {
        let d = std::env::temp_dir().join(format!("funcscope-pmu-{}", std::process::id()));
        std::fs::create_dir_all(d.join("format")).unwrap();
        std::fs::write(d.join("type"), "8\n").unwrap();
        std::fs::write(d.join("format/retprobe"), "config:0\n").unwrap();
        assert_eq!(UprobePmu::detect_in(&d).unwrap(), UprobePmu { kind: 8, retprobe_bit: 0 });
        std::fs::write(d.join("format/retprobe"), "garbage\n").unwrap();
        assert!(UprobePmu::detect_in(&d).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
