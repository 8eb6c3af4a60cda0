//! `init`, the builder, the region's backing, and the session handle that owns the attach socket.
//!
//! `init` builds the whole region before anything can see it: it sizes it from the layout,
//! allocates the backing (memfd, a tmpfs file or a hugetlbfs file), reserves and prefaults every
//! page (so the hot path never page-faults and a full tmpfs is an error here, not a SIGBUS later),
//! writes the header, names and lines, measures the probe's floor, seals a memfd against
//! resizing, binds the socket, and only then publishes the session to the hot path.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Once;
use std::time::Duration;

use crate::attach::{self, AttachStatus, Server};
use crate::clock::{self, ClockChoice, ClockDecision};
use crate::layout::{self, calib_slot, CheckpointLine, ClockKind, Geometry, GeometryError, Header, Level};
use crate::record::{Active, ACTIVE};
use crate::Error;

/// Default ring capacity: 64 Ki entries (512 KiB per checkpoint at `Normal`). A reader draining
/// every 10 ms keeps up with 6.5 M calls/s per checkpoint.
pub const DEFAULT_RING_CAPACITY: u64 = 1 << 16;

/// Default mount point of hugetlbfs on most distributions.
pub const DEFAULT_HUGETLBFS_DIR: &str = "/dev/hugepages";

/// Size of a huge page used by the hugetlbfs backing.
pub const HUGE_PAGE_SIZE: u64 = 2 << 20;

/// Regular page size the other backings round to.
pub const PAGE_SIZE: u64 = 4096;

/// `HUGETLBFS_MAGIC` from `linux/magic.h`.
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;

/// Where the region's memory comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Backing {
    /// An anonymous `memfd` (4 KiB pages), sealed against resizing so a reader can never be hit
    /// by SIGBUS, and against new writes so no reader can write into it. The default.
    #[default]
    Memfd,
    /// A file in the given directory (meant for tmpfs such as `/dev/shm`), 4 KiB pages, size
    /// rounded up to 4 KiB. Unlinked right after creation: nothing is left behind on a crash.
    /// It cannot be sealed: readers refuse it unless they accept the SIGBUS risk
    /// (`reader::Unsealed::Accept`; the harness does not).
    TmpfsFile(PathBuf),
    /// A file on a hugetlbfs mount (2 MiB pages), size rounded up to 2 MiB. Needs free huge pages
    /// (`echo N > /proc/sys/vm/nr_hugepages`); see [`Builder::hugepage_fallback`]. Like
    /// [`Backing::TmpfsFile`], it cannot be sealed.
    HugetlbfsFile(PathBuf),
}

/// Options for [`init`]. Start with [`Builder::new`].
#[derive(Clone, Debug)]
pub struct Builder {
    level: Level,
    names: Option<Vec<String>>,
    num_checkpoints: usize,
    ring_capacity: u64,
    backing: Backing,
    hugepage_fallback: bool,
    socket_dir: Option<PathBuf>,
    clock: ClockChoice,
}

impl Builder {
    /// A builder with one checkpoint, `DEFAULT_RING_CAPACITY`, a memfd and the default socket
    /// directory.
    pub fn new(level: Level) -> Builder {
        Builder {
            level,
            names: None,
            num_checkpoints: 1,
            ring_capacity: DEFAULT_RING_CAPACITY,
            backing: Backing::Memfd,
            hugepage_fallback: false,
            socket_dir: None,
            clock: ClockChoice::Auto,
        }
    }

    /// Names the checkpoints; their count is the number of names. Names are what baselines key
    /// on: keep them stable. 1 to 63 bytes, unique, without whitespace, control characters or
    /// invisible Unicode format characters ([`layout::name_problem`] is the rule).
    pub fn checkpoints<S: AsRef<str>>(mut self, names: &[S]) -> Builder {
        self.names = Some(names.iter().map(|s| s.as_ref().to_owned()).collect());
        self.num_checkpoints = names.len();
        self
    }

    /// Number of checkpoints (1..=128) when no names are given; they are named `cp0`, `cp1`, ...
    pub fn num_checkpoints(mut self, n: usize) -> Builder {
        self.num_checkpoints = n;
        self.names = None;
        self
    }

    /// Ring entries per checkpoint: a power of two from 16 to 16 Mi. Ignored at `Lite`.
    pub fn ring_capacity(mut self, entries: u64) -> Builder {
        self.ring_capacity = entries;
        self
    }

    /// Where the region's memory comes from.
    pub fn backing(mut self, backing: Backing) -> Builder {
        self.backing = backing;
        self
    }

    /// With a hugetlbfs backing: fall back to a memfd (with a warning in
    /// [`Session::warnings`]) instead of failing when huge pages are not available.
    pub fn hugepage_fallback(mut self, yes: bool) -> Builder {
        self.hugepage_fallback = yes;
        self
    }

    /// Directory of the attach socket (default: see [`attach::default_socket_dir`]).
    pub fn socket_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.socket_dir = Some(dir.into());
        self
    }

    /// Which clock to use (default: the hardware counter when it can be trusted).
    pub fn clock(mut self, clock: ClockChoice) -> Builder {
        self.clock = clock;
        self
    }

    /// Creates the region and the attach socket and activates ENTER/EXIT.
    pub fn init(self) -> Result<Session, Error> {
        init_with(self)
    }
}

/// Initialises funcscope with `num_checkpoints` (1..=128) unnamed checkpoints (`cp0`...) at
/// `level`. See [`Builder`] for names and other options.
pub fn init(num_checkpoints: usize, level: Level) -> Result<Session, Error> {
    Builder::new(level).num_checkpoints(num_checkpoints).init()
}

/// The initialised probe. Dropping it (or [`Session::cleanup`]) raises the exit flag, writes the
/// final calibration pair, stops ENTER/EXIT and removes the socket.
#[must_use = "dropping the session ends the measurement"]
pub struct Session {
    header: &'static Header,
    region_fd: OwnedFd,
    region_size: u64,
    server: Option<Server>,
    pid: u32,
    level: Level,
    clock: ClockDecision,
    names: Vec<String>,
    backing: Backing,
    warnings: Vec<String>,
}

impl Session {
    /// Non-blocking: hands the region to a waiting reader, if any. Call it from the main loop,
    /// never between ENTER and EXIT. With nobody waiting it costs one failed `accept`.
    ///
    /// **Bound.** Whatever clients do (connect and stay silent, send half a hello, flood the
    /// socket, attach and leave), one call never waits: every socket it touches is non-blocking,
    /// and it makes at most [`attach::MAX_ACCEPTS_PER_POLL`] `accept`s, one `poll(2)` of the
    /// attached reader, and one `getsockopt`, reads of at most the 16 hello bytes (normally one
    /// `recv`) and one `send` for each of at most [`attach::MAX_PENDING`] +
    /// [`attach::MAX_ACCEPTS_PER_POLL`] handshakes, plus one `open` and `sendmsg` when it hands
    /// the region out: a few dozen non-blocking syscalls (tens of microseconds). A silent
    /// client costs the loop nothing; it is turned away after [`attach::HELLO_DEADLINE`].
    pub fn poll_attach(&mut self) -> Result<AttachStatus, Error> {
        let h = self.header;
        h.heartbeat.store(h.heartbeat.load(Relaxed).wrapping_add(1), Relaxed);
        let Some(server) = self.server.as_mut() else { return Ok(AttachStatus::NoClient) };
        // Refresh the attach calibration pair before handing the region out.
        let st = server.poll(self.region_fd.as_fd(), self.region_size)?;
        if st == AttachStatus::Attached {
            write_calib(h, calib_slot::ATTACH, self.clock.kind);
            h.attach_generation.store(h.attach_generation.load(Relaxed) + 1, Release);
        }
        Ok(st)
    }

    /// Raises the exit flag, writes the cleanup calibration pair, stops recording and removes the
    /// socket. The region stays mapped (a reader may still be draining it).
    pub fn cleanup(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        // A forked child inherits the parent's Session object: it must not end the parent's run.
        if std::process::id() != self.pid {
            self.server = None;
            return;
        }
        let Some(server) = self.server.take() else { return };
        ACTIVE.store(std::ptr::null_mut(), Release);
        write_calib(self.header, calib_slot::CLEANUP, self.clock.kind);
        self.header.exit_flag.store(1, Release);
        let _ = std::fs::remove_file(&server.path);
    }

    /// Attach handshakes in progress (connected readers whose hello has not arrived yet); at
    /// most [`attach::MAX_PENDING`] between calls of [`Session::poll_attach`].
    pub fn pending_attaches(&self) -> usize {
        self.server.as_ref().map_or(0, |s| s.pending())
    }

    /// Path of the attach socket.
    pub fn socket_path(&self) -> Option<&Path> {
        self.server.as_ref().map(|s| s.path.as_path())
    }

    /// The process id that owns this session.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The clock in use and why it was chosen.
    pub fn clock(&self) -> &ClockDecision {
        &self.clock
    }

    /// Checkpoint names, by index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The backing actually used (after a hugepage fallback, a memfd).
    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    /// Region size in bytes.
    pub fn region_size(&self) -> u64 {
        self.region_size
    }

    /// Things worth telling the user that did not stop `init` (e.g. a hugepage fallback).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The probe's floor: (min, median) ticks of an empty ENTER/EXIT measured at init.
    pub fn floor_ticks(&self) -> (u64, u64) {
        (self.header.floor_min_ticks.load(Relaxed), self.header.floor_p50_ticks.load(Relaxed))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.finish();
    }
}

fn write_calib(h: &Header, slot: usize, kind: ClockKind) {
    let p = &h.calib[slot];
    // Seqlock: even at rest, odd while writing (see CalibPair).
    let seq = p.seq.load(Relaxed);
    debug_assert!(seq % 2 == 0, "only this process writes the pair, and never concurrently");
    p.seq.store(seq + 1, Relaxed);
    std::sync::atomic::fence(Release);
    let (t, ns, unc) = clock::calibration_pair(kind);
    p.ticks.store(t, Relaxed);
    p.mono_ns.store(ns, Relaxed);
    p.uncertainty_ns.store(unc, Relaxed);
    p.seq.store(seq + 2, Release);
}

fn validate_names(names: &[String]) -> Result<(), Error> {
    for (i, n) in names.iter().enumerate() {
        let why = layout::name_problem(n)
            .or_else(|| names[..i].contains(n).then_some("another checkpoint has the same name"));
        if let Some(why) = why {
            return Err(Error::CheckpointName { index: i, name: n.clone(), why });
        }
    }
    Ok(())
}

static ATFORK: Once = Once::new();

/// In a forked child the inherited ACTIVE points into the parent's MAP_SHARED region: writing
/// there would corrupt the parent's numbers. The child handler disables recording until the child
/// calls `init` itself.
extern "C" fn atfork_child() {
    ACTIVE.store(std::ptr::null_mut(), Relaxed);
}

fn init_with(b: Builder) -> Result<Session, Error> {
    let names: Vec<String> = match b.names {
        Some(n) => n,
        None => (0..b.num_checkpoints).map(|i| format!("cp{i}")).collect(),
    };
    if names.is_empty() || names.len() > layout::MAX_CHECKPOINTS {
        return Err(Error::Checkpoints { requested: names.len() });
    }
    validate_names(&names)?;
    let geo = Geometry::new(b.level, names.len() as u64, b.ring_capacity).map_err(|e| match e {
        GeometryError::Checkpoints(n) => Error::Checkpoints { requested: n as usize },
        GeometryError::Capacity(c) => Error::RingCapacity { requested: c },
    })?;
    if !ACTIVE.load(Acquire).is_null() {
        return Err(Error::AlreadyInitialized);
    }
    ATFORK.call_once(|| {
        // SAFETY: registering a handler that only performs an atomic store is async-signal-safe,
        // which is all a fork child handler may do.
        unsafe { libc::pthread_atfork(None, None, Some(atfork_child)) };
    });

    let mut warnings = Vec::new();
    let clock = clock::decide(b.clock);
    let (fd, size, backing) = match create_backing(&b.backing, geo.used_size) {
        Ok(x) => x,
        Err(e @ (Error::HugePages { .. } | Error::NotHugetlbfs { .. })) if b.hugepage_fallback => {
            warnings.push(format!("{e}; falling back to a memfd with 4 KiB pages"));
            create_backing(&Backing::Memfd, geo.used_size)?
        }
        Err(e) => return Err(e),
    };
    // Raw libc rather than memmap2 (which the reader uses): this mapping is never unmapped (the
    // hot path holds 'static pointers into it, and a thread racing cleanup must never touch freed
    // memory), so memmap2's owner type would only be leaked to defeat its Drop, and the hugetlbfs
    // backing needs the page-stride prefault below rather than MAP_POPULATE's silent best effort.
    // SAFETY: mapping a file we just sized to `size` bytes, shared and writable; the kernel picks
    // the address, so no existing mapping is replaced. Checked for MAP_FAILED below.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        let e = std::io::Error::last_os_error();
        if matches!(backing, Backing::HugetlbfsFile(_)) {
            return Err(hugepage_error(&backing, size, Some(e)));
        }
        return Err(Error::io("mapping the region", e));
    }
    let base = base as *mut u8;
    // Prefault: touch every page now so the hot path never takes a page fault. The space was
    // reserved by fallocate, so this cannot SIGBUS on a full tmpfs.
    let page = if matches!(backing, Backing::HugetlbfsFile(_)) { HUGE_PAGE_SIZE } else { PAGE_SIZE };
    let mut off = 0u64;
    while off < size {
        // SAFETY: off < size, page-aligned, inside our fresh writable mapping; an AtomicU64 at a
        // page start is aligned, and the memory is zeroed by the kernel (a valid AtomicU64).
        unsafe { &*(base.add(off as usize) as *const AtomicU64) }.store(0, Relaxed);
        off += page;
    }
    // The mapping is never unmapped (see record.rs): its references may be 'static.
    // SAFETY: HEADER_SIZE <= size, base is page-aligned, and Header is all AtomicU64s, for which
    // the zeroed memory is a valid value.
    let header: &'static Header = unsafe { &*(base as *const Header) };
    // geo.lines_offset + n*64 <= used_size <= size, 64-aligned (HEADER_SIZE and NAME_SLOT are
    // multiples of 64), and zeroed memory is a valid CheckpointLine: the hot path relies on it.
    let lines = base.wrapping_add(geo.lines_offset as usize) as *const CheckpointLine;
    let pid = std::process::id();
    let n = names.len();
    // Names.
    for (i, name) in names.iter().enumerate() {
        // SAFETY: the name slot of checkpoint i < n lies inside the names table within `size`;
        // nothing else references these bytes yet (the region is not shared until attach).
        let slot =
            unsafe { std::slice::from_raw_parts_mut(base.add(geo.name_offset(i as u64) as usize), layout::NAME_SLOT) };
        slot[0] = name.len() as u8;
        slot[1..1 + name.len()].copy_from_slice(name.as_bytes());
    }
    for i in 0..n {
        // SAFETY: i < n lines, see `lines` above.
        unsafe { &*lines.add(i) }.min.store(u64::MAX, Relaxed);
    }
    let cap_log2 = if geo.ring_capacity > 0 { geo.ring_capacity.trailing_zeros() } else { 0 };
    // Decided once per process (cached): see `callgrind`. In callgrind mode no checkpoint is
    // recordable (n = 0), so ENTER/EXIT take their cold branch, which dumps.
    let callgrind = crate::callgrind::mode() == crate::callgrind::Mode::Callgrind;
    if callgrind {
        warnings.push(format!(
            "callgrind mode ({}=1 under valgrind): ENTER/EXIT dump instruction counts, no durations are recorded",
            crate::env::CALLGRIND
        ));
    }
    let active = Active {
        header,
        lines,
        n: if callgrind { 0 } else { n },
        callgrind_n: if callgrind { n } else { 0 },
        level: b.level,
        clock: clock.kind,
        // Offsets from the geometry lie within `size` (wrapping_add is plain address arithmetic;
        // the hot path's SAFETY arguments rely on the geometry). Unused areas stay null.
        rings: if geo.rings_offset > 0 {
            base.wrapping_add(geo.rings_offset as usize) as *const AtomicU64
        } else {
            std::ptr::null()
        },
        ring_stride: geo.ring_stride_words() as usize,
        cap_mask: geo.ring_capacity.wrapping_sub(1),
        cap_log2,
        hist: if geo.hist_offset > 0 {
            base.wrapping_add(geo.hist_offset as usize) as *const AtomicU64
        } else {
            std::ptr::null()
        },
    };
    let (floor_min, floor_p50) = measure_floor(b.level, clock.kind);
    let h = header;
    h.version_and_header_size.store(layout::ABI_VERSION as u64 | (layout::HEADER_SIZE as u64) << 32, Relaxed);
    h.region_size.store(size, Relaxed);
    h.pid.store(pid as u64, Relaxed);
    h.level.store(b.level as u64, Relaxed);
    h.clock.store(clock.kind as u64, Relaxed);
    h.num_checkpoints.store(n as u64, Relaxed);
    h.ring_capacity.store(geo.ring_capacity, Relaxed);
    h.names_offset.store(geo.names_offset, Relaxed);
    h.lines_offset.store(geo.lines_offset, Relaxed);
    h.hist_offset.store(geo.hist_offset, Relaxed);
    h.rings_offset.store(geo.rings_offset, Relaxed);
    h.floor_min_ticks.store(floor_min, Relaxed);
    h.floor_p50_ticks.store(floor_p50, Relaxed);
    // A short first estimate (readers prefer the calibration pairs, which span the whole run); every
    // millisecond here is paid by every process that calls init, and by every run of a gate (whose
    // precision comes from many short processes). 1 ms: measured on a KVM guest, 40 estimates
    // each against a 500 ms one, median error 3.3e-7, max 7.9e-7 (5 ms: 4.6e-8, 1.5e-7).
    h.init_freq_hz.store(clock::estimate_freq_hz(clock.kind, Duration::from_millis(1)), Relaxed);
    write_calib(h, calib_slot::INIT, clock.kind);
    h.magic.store(layout::MAGIC, Release);
    make_read_only_for_others(&fd, &backing, &mut warnings);

    let dir = b.socket_dir.unwrap_or_else(attach::default_socket_dir);
    attach::prepare_socket_dir(&dir)?;
    attach::remove_stale_sockets(&dir, pid);
    let path = attach::socket_path(&dir, pid);
    let listener = attach::listen(&path)?;

    let ptr = Box::into_raw(Box::new(active));
    if ACTIVE.compare_exchange(std::ptr::null_mut(), ptr, AcqRel, Acquire).is_err() {
        // Another thread initialised concurrently; ours loses (the Box and mapping are leaked,
        // a few KiB, rather than risk freeing memory a racing thread might see).
        let _ = std::fs::remove_file(&path);
        return Err(Error::AlreadyInitialized);
    }
    if callgrind {
        crate::callgrind::announce(&names);
    }
    Ok(Session {
        header,
        region_fd: fd,
        region_size: size,
        server: Some(Server::new(listener, path)),
        pid,
        level: b.level,
        clock,
        names,
        backing,
        warnings,
    })
}

/// Makes the region read-only for everyone but the mapping this process already holds, before
/// any reader can receive it. Three layers, each stopping something different:
///
/// * **mode 0400** (every backing): a non-root reader cannot reopen `/proc/<pid>/fd/N` (or its
///   own copy of the fd) for writing: `open(O_RDWR)` fails with `EACCES`. It does not stop root
///   (`CAP_DAC_OVERRIDE`), nor the file's owner, who may `fchmod` it back: a first fence only.
/// * **`F_SEAL_FUTURE_WRITE`** (memfd, Linux >= 5.1): no `write(2)` and no new writable shared
///   mapping (`mmap(PROT_WRITE, MAP_SHARED)` or an `mprotect` upgrade) through *any* fd, for
///   anyone, root included. Mappings made before the seal (ours, and those a fork inherits) keep
///   working, which is why it is added only now, after `init` mapped the region. This is the
///   layer that makes the region read-only for readers. On an older kernel (`EINVAL`) the other
///   seals are still added and a warning says that root could write into the region.
/// * **`F_SEAL_SHRINK | F_SEAL_GROW`** (memfd): the size is fixed, so a reader's mapping can
///   never hit SIGBUS; `F_SEAL_SEAL` then forbids changing the seals.
///
/// `F_SEAL_WRITE` cannot be used: it is refused while a writable shared mapping (ours) exists.
/// A tmpfs or hugetlbfs file cannot be sealed at all; readers refuse such regions unless told
/// to accept them (`reader::Unsealed::Accept`).
fn make_read_only_for_others(fd: &OwnedFd, backing: &Backing, warnings: &mut Vec<String>) {
    use nix::sys::stat::{fchmod, Mode};
    if let Err(e) = fchmod(fd, Mode::S_IRUSR) {
        warnings.push(format!("could not make the region file mode 0400: {e}"));
    }
    if !matches!(backing, Backing::Memfd) {
        return;
    }
    let size_seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    let add = |seals: libc::c_int| {
        // SAFETY: fcntl on an fd we own, with an integer argument.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    match add(size_seals | libc::F_SEAL_FUTURE_WRITE | libc::F_SEAL_SEAL) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            warnings.push(
                "the kernel does not support F_SEAL_FUTURE_WRITE (Linux >= 5.1): the region is mode 0400, \
                 but a reader running as root could reopen it writable"
                    .to_owned(),
            );
            if let Err(e) = add(size_seals | libc::F_SEAL_SEAL) {
                warnings.push(format!("could not seal the memfd against resizing: {e}"));
            }
        }
        Err(e) => warnings.push(format!("could not seal the memfd: {e}")),
    }
}

/// Measures an empty ENTER/EXIT through the real recording code on a private scratch
/// checkpoint: (min, median) ticks over 4096 pairs.
fn measure_floor(level: Level, clock: ClockKind) -> (u64, u64) {
    const N: usize = 4096;
    // SAFETY: all-zero bytes are a valid Header and CheckpointLine (they are all AtomicU64s).
    let header: Box<Header> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: as above.
    let line: Box<CheckpointLine> = Box::new(unsafe { std::mem::zeroed() });
    line.min.store(u64::MAX, Relaxed);
    let words = N * level.entry_words() as usize;
    let ring: Vec<AtomicU64> = (0..words).map(|_| AtomicU64::new(0)).collect();
    let hist: Vec<AtomicU64> = (0..layout::HIST_BUCKETS).map(|_| AtomicU64::new(0)).collect();
    let scratch = Active {
        header: &*header,
        lines: &*line,
        n: 1,
        // The floor does not depend on what EXIT does after reading the clock, but measure at
        // the real level anyway (Lite has no ring to read back, so use Normal there).
        level: if level == Level::Lite { Level::Normal } else { level },
        clock,
        rings: ring.as_ptr(),
        ring_stride: words,
        cap_mask: N as u64 - 1,
        cap_log2: N.trailing_zeros(),
        hist: hist.as_ptr(),
        callgrind_n: 0,
    };
    for _ in 0..N {
        scratch.enter(0);
        scratch.exit(0);
    }
    let step = level.entry_words().max(1) as usize;
    let mut d: Vec<u64> = (0..N).map(|i| layout::unpack_entry(ring[i * step].load(Relaxed)).1).collect();
    d.sort_unstable();
    (d[0], d[N / 2])
}

/// Creates and sizes the backing file: (fd, size rounded to its page size, backing used).
fn create_backing(backing: &Backing, used: u64) -> Result<(OwnedFd, u64, Backing), Error> {
    let (fd, size) = match backing {
        Backing::Memfd => {
            let name = c"funcscope";
            // SAFETY: a valid NUL-terminated name and flags; returns a new fd or -1.
            let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
            if raw < 0 {
                return Err(Error::io("memfd_create", std::io::Error::last_os_error()));
            }
            // SAFETY: raw is a fresh fd we own.
            (unsafe { OwnedFd::from_raw_fd(raw) }, used.div_ceil(PAGE_SIZE) * PAGE_SIZE)
        }
        Backing::TmpfsFile(dir) => (create_unlinked(dir)?, used.div_ceil(PAGE_SIZE) * PAGE_SIZE),
        Backing::HugetlbfsFile(dir) => {
            let size = used.div_ceil(HUGE_PAGE_SIZE) * HUGE_PAGE_SIZE;
            match nix::sys::statfs::statfs(dir.as_path()) {
                Ok(st) if st.filesystem_type().0 == HUGETLBFS_MAGIC => {}
                Ok(_) => return Err(Error::NotHugetlbfs { dir: dir.clone() }),
                Err(_) => return Err(Error::NotHugetlbfs { dir: dir.clone() }),
            }
            if let Some(free) = free_huge_pages() {
                if free * HUGE_PAGE_SIZE < size {
                    return Err(hugepage_error(backing, size, None));
                }
            }
            (create_unlinked(dir)?, size)
        }
    };
    let file = std::fs::File::from(fd);
    file.set_len(size).map_err(|e| match backing {
        Backing::HugetlbfsFile(_) => hugepage_error(backing, size, Some(e)),
        _ => Error::io("sizing the region", e),
    })?;
    if !matches!(backing, Backing::HugetlbfsFile(_)) {
        // Reserve the pages now: a full tmpfs fails here with ENOSPC instead of SIGBUS later.
        // SAFETY: fallocate on an fd we own, within the size we set.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, size as libc::off_t) };
        if rc != 0 {
            return Err(Error::io("reserving the region's memory (fallocate)", std::io::Error::last_os_error()));
        }
    }
    Ok((OwnedFd::from(file), size, backing.clone()))
}

fn create_unlinked(dir: &Path) -> Result<OwnedFd, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let path = dir.join(format!("funcscope-{}-{}.region", std::process::id(), SEQ.fetch_add(1, Relaxed)));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("creating the region file {}", path.display()), e))?;
    let _ = std::fs::remove_file(&path);
    Ok(OwnedFd::from(f))
}

fn free_huge_pages() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("HugePages_Free:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn hugepage_error(backing: &Backing, size: u64, os: Option<std::io::Error>) -> Error {
    let dir = match backing {
        Backing::HugetlbfsFile(d) => d.clone(),
        _ => PathBuf::from(DEFAULT_HUGETLBFS_DIR),
    };
    Error::HugePages {
        dir,
        needed: size / HUGE_PAGE_SIZE,
        free: free_huge_pages().unwrap_or(0),
        os: os.map(|e| e.to_string()),
    }
}
