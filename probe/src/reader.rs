//! The reader: attach to a running program, map its region read-only, validate it, drain it.
//!
//! **The region is untrusted input.** It comes from another process, which may be buggy, of
//! another funcscope version, or hostile. [`Region::from_fd`] checks the size, magic, ABI version,
//! and that every offset in the header equals what [`Geometry`] computes from the counts and lies
//! inside the mapping; afterwards every read goes through a bounds-checked accessor, and no value
//! read from the region is used as an index without a check. A bad region is an error, never a
//! panic or an out-of-bounds read.
//!
//! **Nothing is lost silently.** [`Drain`] keeps a cursor per checkpoint. Every sample the writer
//! wrote (its `write_pos`) is either delivered or counted as lost: `overrun` when the writer got
//! more than a ring's capacity ahead, `overwritten` when an entry's lap tag shows it was replaced
//! while being read. `read + overrun + overwritten == write_pos` after every drain.
//!
//! **SIGBUS.** A mapped file that shrinks under the reader raises SIGBUS on access, which kills
//! the reader. The writer seals its memfd against shrinking (`F_SEAL_SHRINK`), and the reader
//! refuses a region whose fd lacks that seal ([`ReadError::Unsealed`]): a tmpfs or hugetlbfs
//! backing cannot be sealed, so reading one is an explicit choice ([`Unsealed::Accept`], with
//! [`attach_with`] or [`Region::from_fd_with`]) that trusts the writer not to truncate it.
//!
//! **Absurd values are errors, not numbers.** Names are checked with the writer's own rule
//! ([`layout::name_problem`], plus uniqueness), so no escape sequence or newline from a region
//! reaches a terminal; a call count that no process could have reached since the region was
//! created, a duration beyond [`layout::DURATION_MAX`], or a tick frequency outside
//! [`MIN_FREQ_HZ`]..=[`MAX_FREQ_HZ`] is a [`ReadError::Implausible`].
//!
//! **The mapping** is a read-only shared `memmap2::MmapRaw`: it hands out raw pointers only,
//! never a `&[u8]` (the bytes change under us, written by another process, so a shared slice
//! reference would be unsound); every load is an atomic load through [`Region`]'s accessors.

use std::io::{IoSliceMut, Write};
use std::mem::offset_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{fence, AtomicU64, Ordering::*};
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::attach::{status, Hello, Reply};
use crate::clock;
use crate::layout::{
    self, calib_slot, expected_lap, unpack_entry, CalibPair, CheckpointLine, ClockKind, Geometry, Header, Level,
    ENTRY_START_WORD, HIST_BUCKETS,
};

/// Why a region cannot be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// An OS call failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The region is smaller than its header, or than its header claims.
    TooSmall {
        /// Actual size in bytes.
        size: u64,
        /// Size needed.
        needed: u64,
    },
    /// Not a funcscope region (or not yet initialised).
    BadMagic {
        /// The first word found.
        found: u64,
    },
    /// A region written by another version of funcscope.
    Version {
        /// The region's ABI version.
        found: u32,
        /// The version this reader understands.
        expected: u32,
    },
    /// The header is inconsistent (counts, offsets, level, clock).
    BadHeader {
        /// Which field and why.
        why: String,
    },
    /// The writer broke an invariant while running (e.g. a write position went backwards).
    Corrupt {
        /// What was seen.
        why: String,
    },
    /// The region's fd is not sealed against shrinking, so its writer could truncate it and kill
    /// this reader with SIGBUS. Refused unless [`Unsealed::Accept`] is given.
    Unsealed,
    /// A value no real run can produce (a call count beyond what the time since the region was
    /// created allows, a duration beyond the storable maximum, a tick frequency outside
    /// [`MIN_FREQ_HZ`]..=[`MAX_FREQ_HZ`]).
    Implausible {
        /// Which value, what it is, and the bound it breaks.
        why: String,
    },
    /// A checkpoint index beyond the region's checkpoints.
    NoCheckpoint {
        /// The index asked for.
        index: usize,
        /// The region's number of checkpoints.
        count: usize,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io { what, source } => write!(f, "{what}: {source}"),
            ReadError::TooSmall { size, needed } => {
                write!(f, "the region is truncated: {size} bytes, at least {needed} needed")
            }
            ReadError::BadMagic { found } => {
                write!(f, "not a funcscope region (first word {found:#018x}, expected {:#018x})", layout::MAGIC)
            }
            ReadError::Version { found, expected } => write!(
                f,
                "the region uses funcscope ABI version {found} but this reader understands version {expected}; \
                 rebuild the program and the harness from the same funcscope release"
            ),
            ReadError::BadHeader { why } => write!(f, "invalid region header: {why}"),
            ReadError::Corrupt { why } => write!(f, "the region was corrupted while running: {why}"),
            ReadError::Unsealed => write!(
                f,
                "the region's fd is not sealed against shrinking (a tmpfs or hugetlbfs backing, or a probe \
                 older than this reader), so its writer could truncate it and kill this reader with SIGBUS; \
                 use the memfd backing (the default), or accept the risk with reader::Unsealed::Accept"
            ),
            ReadError::Implausible { why } => write!(f, "implausible value in the region: {why}"),
            ReadError::NoCheckpoint { index, count } => {
                write!(f, "no checkpoint {index}: the region has {count} (indices 0 to {})", count.saturating_sub(1))
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// Why attaching to a program failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum AttachError {
    /// Could not connect to the socket.
    Connect {
        /// The socket.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The program did not answer in time (it does not call `poll_attach`, or is stuck).
    Timeout {
        /// How long we waited.
        waited: Duration,
    },
    /// Another reader is attached.
    Busy {
        /// Its pid.
        holder_pid: u32,
    },
    /// Writer and reader speak different ABI versions.
    Version {
        /// The writer's version.
        writer: u32,
        /// Ours.
        reader: u32,
    },
    /// The program refused us: our uid is neither its uid nor root.
    Denied,
    /// The answer was malformed or carried no fd.
    Protocol {
        /// What was wrong.
        why: String,
    },
    /// The received region is unusable.
    Region(ReadError),
}

impl std::fmt::Display for AttachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttachError::Connect { path, source } => write!(f, "cannot connect to {}: {source}", path.display()),
            AttachError::Timeout { waited } => write!(
                f,
                "the program did not answer within {waited:?}: does its main loop call poll_attach()?"
            ),
            AttachError::Busy { holder_pid } => {
                write!(f, "another reader (pid {holder_pid}) is already attached; only one reader at a time")
            }
            AttachError::Version { writer, reader } => write!(
                f,
                "the program speaks funcscope ABI version {writer}, this reader version {reader}; rebuild both from one release"
            ),
            AttachError::Denied => write!(f, "the program refused the attach: run the reader as the same user, or as root"),
            AttachError::Protocol { why } => write!(f, "attach protocol error: {why}"),
            AttachError::Region(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AttachError {}

impl AttachError {
    /// Whether the program could not be reached over its socket (an [`AttachError::Connect`]):
    /// nothing listens there, the socket is gone, or the connection broke during the handshake,
    /// as when the process exits before or while a reader attaches. Every other error means the
    /// program answered and something was wrong.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, AttachError::Connect { .. })
    }
}

/// Whether to read a region whose fd is not sealed against shrinking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unsealed {
    /// Refuse it with [`ReadError::Unsealed`] (the default): its writer could kill the reader.
    #[default]
    Refuse,
    /// Read it anyway (a tmpfs or hugetlbfs backing of a trusted program): if the writer
    /// truncates the file, the reader dies of SIGBUS.
    Accept,
}

/// Connects to `<socket>` and attaches: handshake, then map and validate the received region.
/// Keep the returned [`Attachment`] alive while reading: dropping it tells the program the
/// reader left (another may then attach). Refuses unsealed regions; see [`attach_with`].
pub fn attach(socket: &Path, timeout: Duration) -> Result<Attachment, AttachError> {
    attach_with(socket, timeout, Unsealed::Refuse)
}

/// [`attach`], choosing what to do with a region that is not sealed against shrinking.
pub fn attach_with(socket: &Path, timeout: Duration, unsealed: Unsealed) -> Result<Attachment, AttachError> {
    let connect_err = |source| AttachError::Connect { path: socket.to_path_buf(), source };
    let mut stream = UnixStream::connect(socket).map_err(connect_err)?;
    stream.set_read_timeout(Some(timeout)).map_err(connect_err)?;
    let hello = Hello { abi_version: layout::ABI_VERSION, reader_pid: std::process::id() };
    stream.write_all(&hello.to_bytes()).map_err(connect_err)?;

    let mut buf = [0u8; Reply::SIZE];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let (bytes, fds) = loop {
        match recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                let mut fds = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(v) = c {
                            // SAFETY: the kernel just installed these fds in our table for us; we
                            // take sole ownership of each exactly once.
                            fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                        }
                    }
                }
                break (msg.bytes, fds);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Err(AttachError::Timeout { waited: timeout }),
            Err(e) => return Err(connect_err(e.into())),
        }
    };
    if bytes != Reply::SIZE {
        return Err(AttachError::Protocol { why: format!("short reply ({bytes} of {} bytes)", Reply::SIZE) });
    }
    let reply = Reply::from_bytes(&buf).ok_or_else(|| AttachError::Protocol { why: "bad reply magic".into() })?;
    match reply.status {
        status::OK => {}
        status::BUSY => return Err(AttachError::Busy { holder_pid: reply.holder_pid }),
        status::VERSION => return Err(AttachError::Version { writer: reply.abi_version, reader: layout::ABI_VERSION }),
        status::DENIED => return Err(AttachError::Denied),
        s => return Err(AttachError::Protocol { why: format!("the program answered status {s}") }),
    }
    let mut fds = fds.into_iter();
    let fd = fds.next().ok_or_else(|| AttachError::Protocol { why: "the reply carried no fd".into() })?;
    let region = Region::from_fd_with(fd, unsealed).map_err(AttachError::Region)?;
    Ok(Attachment { region, _conn: stream })
}

/// A region received over the socket, with the connection that marks us as the attached reader.
pub struct Attachment {
    /// The mapped, validated region.
    pub region: Region,
    _conn: UnixStream,
}

/// Fixed facts about a region, read and validated once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// Writer's pid.
    pub pid: u32,
    /// Level.
    pub level: Level,
    /// Clock the ticks come from.
    pub clock: ClockKind,
    /// Checkpoint names by index.
    pub names: Vec<String>,
    /// Ring entries per checkpoint (0 at `Lite`).
    pub ring_capacity: u64,
    /// Region size in bytes.
    pub region_size: u64,
    /// Tick frequency estimated by the writer at init (Hz; 0 if unknown).
    pub init_freq_hz: u64,
    /// Probe floor: min ticks of an empty ENTER/EXIT.
    pub floor_min_ticks: u64,
    /// Probe floor: median ticks of an empty ENTER/EXIT.
    pub floor_p50_ticks: u64,
    /// Whether the fd is sealed against shrinking (no SIGBUS possible).
    pub sealed: bool,
    /// Whether the fd is sealed against new writes (`F_SEAL_FUTURE_WRITE`): nobody, root
    /// included, can write into the region through it or any fd reopened from it.
    pub write_sealed: bool,
}

/// A calibration pair as read from the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calibration {
    /// Tick counter value.
    pub ticks: u64,
    /// CLOCK_MONOTONIC_RAW ns.
    pub mono_ns: u64,
    /// Uncertainty of the pair in ns.
    pub uncertainty_ns: u64,
}

/// Exact aggregates of one checkpoint (exact once the writer has exited; while it runs they may
/// be one call apart from each other).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Aggregates {
    /// Calls recorded (= the writer's `write_pos`).
    pub count: u64,
    /// Sum of durations in ticks.
    pub sum: u64,
    /// Smallest duration (None before the first call).
    pub min: Option<u64>,
    /// Largest duration.
    pub max: u64,
    /// Durations clamped to the maximum storable value.
    pub clamped: u64,
}

/// One call, as drained from a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The call's sequence number within its checkpoint (0 = first call ever): gaps are lost
    /// calls, and the order of calls is the order of indices.
    pub index: u64,
    /// Duration in ticks.
    pub ticks: u64,
    /// Start tick (only at `Full`).
    pub start: Option<u64>,
}

/// Lowest tick frequency a region may claim: 1 MHz (the slowest generic timers on aarch64 boards
/// run at 1-25 MHz; `CLOCK_MONOTONIC_RAW` ticks at 1 GHz).
pub const MIN_FREQ_HZ: f64 = 1e6;
/// Highest tick frequency a region may claim: 100 GHz (TSCs run at 1-6 GHz).
pub const MAX_FREQ_HZ: f64 = 1e11;
/// Most calls per second one checkpoint can record: 1e10 (one every 0.1 ns; a real ENTER/EXIT
/// pair costs ~10-50 ns and even a bare `record_ticks` a few ns). A count beyond this rate over
/// the region's whole life is a forged or corrupt count, never a measurement.
pub const MAX_CALLS_PER_SEC: u64 = 10_000_000_000;

/// The most calls a checkpoint can have recorded, and why.
struct CallBound {
    max: u64,
    life_ns: u64,
    since: &'static str,
}

/// A read-only mapping of a region, validated.
pub struct Region {
    /// Read-only, shared. `MmapRaw` rather than `Mmap`: it never hands out `&[u8]`, which would
    /// be unsound over memory another process writes; we only make atomic loads through raw
    /// pointers. Unmapped when the region is dropped.
    map: memmap2::MmapRaw,
    len: usize,
    geo: Geometry,
    info: RegionInfo,
    _fd: OwnedFd,
}

impl std::os::fd::AsFd for Region {
    /// The region's fd as received (read-only).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self._fd.as_fd()
    }
}

impl Region {
    /// Maps `fd` read-only and validates it; refuses an fd not sealed against shrinking
    /// ([`ReadError::Unsealed`]).
    pub fn from_fd(fd: OwnedFd) -> Result<Region, ReadError> {
        Region::from_fd_with(fd, Unsealed::Refuse)
    }

    /// [`Region::from_fd`], choosing what to do with an fd not sealed against shrinking.
    pub fn from_fd_with(fd: OwnedFd, unsealed: Unsealed) -> Result<Region, ReadError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| ReadError::Io { what, source }
        };
        // Seals first: once F_SEAL_SHRINK is there it stays, so the size read next can only grow
        // (or not at all: the writer also seals against growing), and the mapping stays backed.
        // SAFETY: F_GET_SEALS on an fd we own; returns -1 for files that are not memfds.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        let sealed = seals >= 0 && seals & libc::F_SEAL_SHRINK != 0;
        let write_sealed = seals >= 0 && seals & (libc::F_SEAL_FUTURE_WRITE | libc::F_SEAL_WRITE) != 0;
        if !sealed && unsealed == Unsealed::Refuse {
            return Err(ReadError::Unsealed);
        }
        let file = std::fs::File::from(fd);
        let size = file.metadata().map_err(io("reading the region's size"))?.len();
        if size < layout::HEADER_SIZE as u64 {
            return Err(ReadError::TooSmall { size, needed: layout::HEADER_SIZE as u64 });
        }
        let len = usize::try_from(size).map_err(|_| ReadError::TooSmall { size, needed: size })?;
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw_read_only(&file)
            .map_err(io("mapping the region read-only"))?;
        let mut r = Region {
            map,
            len,
            geo: Geometry::new(Level::Lite, 1, 0).expect("1 checkpoint at Lite is a valid geometry"),
            info: RegionInfo {
                pid: 0,
                level: Level::Lite,
                clock: ClockKind::MonotonicRaw,
                names: Vec::new(),
                ring_capacity: 0,
                region_size: size,
                init_freq_hz: 0,
                floor_min_ticks: 0,
                floor_p50_ticks: 0,
                sealed,
                write_sealed,
            },
            _fd: OwnedFd::from(file),
        };
        r.validate()?;
        Ok(r)
    }

    /// The word at byte offset `off`, or `None` if outside the mapping or misaligned.
    fn word(&self, off: u64) -> Option<&AtomicU64> {
        let end = off.checked_add(8)?;
        if end > self.len as u64 || off % 8 != 0 {
            return None;
        }
        // SAFETY: [off, off+8) lies inside the mapping (checked; `len` is the mapping's length and
        // the mapping lives as long as `self`), the base is page-aligned so the address is
        // 8-aligned, and an AtomicU64 may alias shared memory another process writes. The
        // mapping is read-only: Rust permits atomic *loads* of up to 64 bits on read-only memory
        // on targets with native 64-bit atomics (std::sync::atomic docs, "Atomic accesses to
        // read-only memory"), and we only ever load. Nothing here can shrink it: the region was
        // sealed against shrinking, or the caller accepted the SIGBUS risk (Unsealed::Accept).
        Some(unsafe { &*(self.map.as_ptr().add(off as usize) as *const AtomicU64) })
    }

    fn load(&self, off: u64) -> u64 {
        self.word(off).map_or(0, |w| w.load(Acquire))
    }

    /// Loads a header field by its offset (the header is at offset 0, inside the mapping).
    fn header_word(&self, offset: usize) -> u64 {
        self.load(offset as u64)
    }

    fn validate(&mut self) -> Result<(), ReadError> {
        let bad = |why: String| ReadError::BadHeader { why };
        let magic = self.header_word(offset_of!(Header, magic));
        if magic != layout::MAGIC {
            return Err(ReadError::BadMagic { found: magic });
        }
        let vh = self.header_word(offset_of!(Header, version_and_header_size));
        let (version, hsize) = (vh as u32, (vh >> 32) as u32);
        if version != layout::ABI_VERSION {
            return Err(ReadError::Version { found: version, expected: layout::ABI_VERSION });
        }
        if hsize as usize != layout::HEADER_SIZE {
            return Err(bad(format!("header size {hsize}, expected {}", layout::HEADER_SIZE)));
        }
        let level_w = self.header_word(offset_of!(Header, level));
        let level = Level::from_u32(u32::try_from(level_w).unwrap_or(0))
            .ok_or_else(|| bad(format!("unknown level {level_w}")))?;
        let clock_w = self.header_word(offset_of!(Header, clock));
        let clock = ClockKind::from_u32(u32::try_from(clock_w).unwrap_or(0))
            .ok_or_else(|| bad(format!("unknown clock {clock_w}")))?;
        let n = self.header_word(offset_of!(Header, num_checkpoints));
        let cap = self.header_word(offset_of!(Header, ring_capacity));
        let geo = Geometry::new(level, n, cap).map_err(|e| bad(format!("{e:?}")))?;
        let claimed = [
            ("names_offset", self.header_word(offset_of!(Header, names_offset)), geo.names_offset),
            ("lines_offset", self.header_word(offset_of!(Header, lines_offset)), geo.lines_offset),
            ("hist_offset", self.header_word(offset_of!(Header, hist_offset)), geo.hist_offset),
            ("rings_offset", self.header_word(offset_of!(Header, rings_offset)), geo.rings_offset),
        ];
        for (name, got, want) in claimed {
            if got != want {
                return Err(bad(format!("{name} is {got}, the layout gives {want}")));
            }
        }
        let region_size = self.header_word(offset_of!(Header, region_size));
        if region_size < geo.used_size {
            return Err(bad(format!("region_size {region_size} is smaller than the layout's {} bytes", geo.used_size)));
        }
        if (self.len as u64) < region_size {
            return Err(ReadError::TooSmall { size: self.len as u64, needed: region_size });
        }
        let mut names = Vec::with_capacity(n as usize);
        for i in 0..n {
            let off = geo.name_offset(i);
            let mut bytes = [0u8; layout::NAME_SLOT];
            for (k, chunk) in bytes.chunks_mut(8).enumerate() {
                chunk.copy_from_slice(&self.load(off + 8 * k as u64).to_le_bytes());
            }
            let l = bytes[0] as usize;
            if l == 0 || l > layout::MAX_NAME_LEN {
                return Err(bad(format!("checkpoint {i} has a name length of {l}")));
            }
            let name = std::str::from_utf8(&bytes[1..1 + l])
                .map_err(|_| bad(format!("checkpoint {i}'s name is not UTF-8")))?;
            // The writer's rule: names are printed, logged and written to baselines. Debug
            // formatting escapes whatever the name holds, so the message itself is safe to print.
            if let Some(why) = layout::name_problem(name) {
                return Err(bad(format!("checkpoint {i}'s name {name:?} is unusable: {why}")));
            }
            if let Some(first) = names.iter().position(|n: &String| n == name) {
                return Err(bad(format!("checkpoints {first} and {i} have the same name {name:?}")));
            }
            names.push(name.to_owned());
        }
        self.geo = geo;
        self.info = RegionInfo {
            pid: u32::try_from(self.header_word(offset_of!(Header, pid)))
                .map_err(|_| bad("pid out of range".into()))?,
            level,
            clock,
            names,
            ring_capacity: geo.ring_capacity,
            region_size,
            init_freq_hz: self.header_word(offset_of!(Header, init_freq_hz)),
            floor_min_ticks: self.header_word(offset_of!(Header, floor_min_ticks)),
            floor_p50_ticks: self.header_word(offset_of!(Header, floor_p50_ticks)),
            sealed: self.info.sealed,
            write_sealed: self.info.write_sealed,
        };
        Ok(())
    }

    /// The validated fixed facts.
    pub fn info(&self) -> &RegionInfo {
        &self.info
    }

    /// Whether the writer has cleaned up (its session ended).
    pub fn exited(&self) -> bool {
        self.header_word(offset_of!(Header, exit_flag)) != 0
    }

    /// The writer's main-loop heartbeat (incremented at every `poll_attach`).
    pub fn heartbeat(&self) -> u64 {
        self.header_word(offset_of!(Header, heartbeat))
    }

    /// ENTER/EXIT calls with an out-of-range index.
    pub fn bad_index_count(&self) -> u64 {
        self.header_word(offset_of!(Header, bad_index))
    }

    /// Calibration pair `slot` (see [`calib_slot`]), if written and read consistently.
    pub fn calibration(&self, slot: usize) -> Option<Calibration> {
        if slot >= calib_slot::COUNT {
            return None;
        }
        let base = offset_of!(Header, calib) as u64 + (slot * std::mem::size_of::<CalibPair>()) as u64;
        let seq = base + offset_of!(CalibPair, seq) as u64;
        for _ in 0..100 {
            let s1 = self.load(seq);
            if s1 == 0 {
                return None;
            }
            if s1 % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let c = Calibration {
                ticks: self.load(base + offset_of!(CalibPair, ticks) as u64),
                mono_ns: self.load(base + offset_of!(CalibPair, mono_ns) as u64),
                uncertainty_ns: self.load(base + offset_of!(CalibPair, uncertainty_ns) as u64),
            };
            fence(Acquire);
            if self.load(seq) == s1 {
                return Some(c);
            }
        }
        None
    }

    /// Ticks per second, derived from the two calibration pairs furthest apart (init and the
    /// latest of cleanup/attach), when they span at least 20 ms; else the writer's init estimate.
    /// `CLOCK_MONOTONIC_RAW` ticks are nanoseconds: exactly 1e9. A frequency outside
    /// [`MIN_FREQ_HZ`]..=[`MAX_FREQ_HZ`] (0 from a writer that could not estimate it, or forged
    /// calibration pairs) is [`ReadError::Implausible`]: every duration would be wrong by it.
    pub fn freq_hz(&self) -> Result<f64, ReadError> {
        if self.info.clock == ClockKind::MonotonicRaw {
            return Ok(1e9);
        }
        let init = self.calibration(calib_slot::INIT);
        let last = self.calibration(calib_slot::CLEANUP).or_else(|| self.calibration(calib_slot::ATTACH));
        let (hz, source) = match (init, last) {
            (Some(a), Some(b)) if b.mono_ns.saturating_sub(a.mono_ns) >= 20_000_000 && b.ticks > a.ticks => {
                let dns = b.mono_ns - a.mono_ns;
                ((b.ticks - a.ticks) as f64 * 1e9 / dns as f64, "from the calibration pairs")
            }
            _ => (self.info.init_freq_hz as f64, "as estimated by the writer at init"),
        };
        if !(MIN_FREQ_HZ..=MAX_FREQ_HZ).contains(&hz) {
            return Err(ReadError::Implausible {
                why: format!(
                    "tick frequency {hz} Hz ({source}) is outside {MIN_FREQ_HZ:e}..={MAX_FREQ_HZ:e} Hz; \
                     durations cannot be converted to time"
                ),
            });
        }
        Ok(hz)
    }

    /// The most calls a checkpoint can have recorded by now: [`MAX_CALLS_PER_SEC`] over the time
    /// since the writer's init calibration (or since boot, without one), plus one second.
    fn max_plausible_calls(&self) -> CallBound {
        let now = clock::mono_raw_ns();
        let init = self.calibration(calib_slot::INIT).map(|c| c.mono_ns).filter(|&t| t <= now);
        let life_ns = now - init.unwrap_or(0) + 1_000_000_000;
        let max = (life_ns as u128 * MAX_CALLS_PER_SEC as u128 / 1_000_000_000).min(u64::MAX as u128) as u64;
        CallBound { max, life_ns, since: if init.is_some() { "the region was created" } else { "boot" } }
    }

    /// Checks that checkpoint `i` claims at most `bound.max` calls.
    fn check_count(&self, i: usize, count: u64, bound: &CallBound) -> Result<(), ReadError> {
        if count > bound.max {
            return Err(ReadError::Implausible {
                why: format!(
                    "checkpoint {i} ({}) claims {count} calls, more than the {} possible in the {:.1} s since {} \
                     (at most {MAX_CALLS_PER_SEC:e} calls/s)",
                    self.info.names[i],
                    bound.max,
                    bound.life_ns as f64 / 1e9,
                    bound.since
                ),
            });
        }
        Ok(())
    }

    /// Exact aggregates of checkpoint `i`, checked for plausibility: a call count no process
    /// could have reached since the region was created, or a maximum beyond
    /// [`layout::DURATION_MAX`], is [`ReadError::Implausible`].
    pub fn aggregates(&self, i: usize) -> Result<Aggregates, ReadError> {
        let n = self.info.names.len();
        if i >= n {
            return Err(ReadError::NoCheckpoint { index: i, count: n });
        }
        let field = |offset: usize| self.line_word(i, offset);
        let min = field(offset_of!(CheckpointLine, min));
        let agg = Aggregates {
            count: field(offset_of!(CheckpointLine, write_pos)),
            sum: field(offset_of!(CheckpointLine, sum)),
            min: (min != u64::MAX).then_some(min),
            max: field(offset_of!(CheckpointLine, max)),
            clamped: field(offset_of!(CheckpointLine, clamped)),
        };
        self.check_count(i, agg.count, &self.max_plausible_calls())?;
        if agg.max > layout::DURATION_MAX {
            return Err(ReadError::Implausible {
                why: format!(
                    "checkpoint {i} ({}) claims a longest call of {} ticks; the probe stores at most {}",
                    self.info.names[i],
                    agg.max,
                    layout::DURATION_MAX
                ),
            });
        }
        Ok(agg)
    }

    /// The histogram of checkpoint `i` (bucket counts; see [`layout::hist_bucket_low`]), or
    /// `None` below `Deep` or if `i` is out of range.
    pub fn histogram(&self, i: usize) -> Option<Vec<u64>> {
        if !self.info.level.has_histogram() || i as u64 >= self.geo.num_checkpoints {
            return None;
        }
        let off = self.geo.hist_offset_of(i as u64);
        Some((0..HIST_BUCKETS as u64).map(|b| self.load(off + 8 * b)).collect())
    }

    /// Loads the field at byte `offset` (from `offset_of!`) of checkpoint `i`'s line.
    fn line_word(&self, i: usize, offset: usize) -> u64 {
        self.load(self.geo.line_offset(i as u64) + offset as u64)
    }

    fn write_pos(&self, i: usize) -> u64 {
        self.line_word(i, offset_of!(CheckpointLine, write_pos))
    }
}

/// Per-checkpoint drain counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainCounts {
    /// Samples delivered.
    pub read: u64,
    /// Samples the writer overwrote before we could read them (it was > capacity ahead).
    pub overrun: u64,
    /// Samples overwritten while we were reading them (detected by the lap tag).
    pub overwritten: u64,
}

impl DrainCounts {
    /// All samples lost.
    pub fn lost(&self) -> u64 {
        self.overrun + self.overwritten
    }

    /// Samples accounted for: read + lost. Equals the writer's count after every drain.
    pub fn accounted(&self) -> u64 {
        self.read + self.lost()
    }
}

/// Incremental drainer: a cursor per checkpoint, starting at 0 (the first call ever).
pub struct Drain {
    cursors: Vec<u64>,
    counts: Vec<DrainCounts>,
}

impl Drain {
    /// A drainer for `region` that will deliver every sample still in the rings.
    pub fn new(region: &Region) -> Drain {
        let n = region.info.names.len();
        Drain { cursors: vec![0; n], counts: vec![DrainCounts::default(); n] }
    }

    /// Counters per checkpoint so far.
    pub fn counts(&self) -> &[DrainCounts] {
        &self.counts
    }

    /// Delivers every new sample of every checkpoint to `sink(checkpoint, sample)`, in order per
    /// checkpoint, and returns the number delivered. At `Lite` nothing is delivered (there is no
    /// ring), and counts stay zero: use [`Region::aggregates`]. A write position that no process
    /// could have reached since the region was created is [`ReadError::Implausible`] (at every
    /// level), not a count of lost samples.
    pub fn drain(&mut self, region: &Region, mut sink: impl FnMut(usize, Sample)) -> Result<u64, ReadError> {
        let geo = region.geo;
        // Counts are checked at every level (at `Lite` they are all there is).
        let bound = region.max_plausible_calls();
        if !geo.level.has_ring() {
            for i in 0..self.cursors.len() {
                region.check_count(i, region.write_pos(i), &bound)?;
            }
            return Ok(0);
        }
        let cap = geo.ring_capacity;
        let log2 = cap.trailing_zeros();
        let words = geo.level.entry_words();
        let mut delivered = 0;
        for i in 0..self.cursors.len() {
            let wp = region.write_pos(i);
            region.check_count(i, wp, &bound)?;
            let cursor = self.cursors[i];
            if wp < cursor {
                return Err(ReadError::Corrupt {
                    why: format!(
                        "checkpoint {} ({}) write position went back from {cursor} to {wp}",
                        i, region.info.names[i]
                    ),
                });
            }
            let counts = &mut self.counts[i];
            let mut from = cursor;
            if wp - cursor > cap {
                counts.overrun += wp - cursor - cap;
                from = wp - cap;
            }
            for pos in from..wp {
                let off = geo.entry_offset(i as u64, pos & (cap - 1));
                let e1 = region.load(off);
                // Full: the entry has a second word, the start tick.
                let start = if words > ENTRY_START_WORD {
                    let s = region.word(off + 8 * ENTRY_START_WORD).map_or(0, |w| w.load(Relaxed));
                    fence(Acquire);
                    // Seqlock check: if the tagged word changed, the start may be a newer call's.
                    if region.word(off).map_or(0, |w| w.load(Relaxed)) != e1 {
                        counts.overwritten += 1;
                        continue;
                    }
                    Some(s)
                } else {
                    None
                };
                let (lap, ticks) = unpack_entry(e1);
                if lap != expected_lap(pos, log2) {
                    counts.overwritten += 1;
                    continue;
                }
                counts.read += 1;
                delivered += 1;
                sink(i, Sample { index: pos, ticks, start });
            }
            self.cursors[i] = wp;
        }
        Ok(delivered)
    }
}
