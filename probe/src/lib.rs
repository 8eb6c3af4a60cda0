//! funcscope: how long did this piece of code really take, per call?
//!
//! This crate is what an instrumented program links. It records, for each *checkpoint* (a named
//! ENTER/EXIT site), the duration of every call in CPU ticks, into a shared-memory region that a
//! separate reader process (the `funcscope-harness`, or anything using [`reader`]) maps
//! read-only. The measured process only writes; all statistics happen elsewhere.
//!
//! # Brief overview
//! * [`init`] / [`Builder`] create the region (memfd, tmpfs file or hugetlbfs file) and an attach
//!   socket `<dir>/<pid>.sock`, and return a [`Session`]. Dropping it raises the exit flag.
//! * [`enter!`] / [`exit!`] (the original pair) and [`scope!`] (an RAII guard) mark a checkpoint.
//!   ENTER reads the tick counter ([`clock`]); EXIT writes the elapsed ticks into the
//!   checkpoint's cache line and its ring ([`record`]).
//! * [`Session::poll_attach`], called from the main loop, hands the region's fd to a reader over
//!   the socket ([`attach`]). It never blocks when nobody is there.
//! * [`layout`] is the one definition of the region's format (the ABI); [`reader`] maps a
//!   received region, validates it as untrusted input, and drains it without losing count.
//! * [`callgrind`]: under `valgrind --tool=callgrind`, when the harness asks for it, ENTER/EXIT
//!   delimit checkpoint regions with labelled counter dumps instead of reading the clock, so the
//!   harness gets exact instruction counts per call (decided once at `init`; the time path is
//!   unchanged).
//! * [`uprobe`]: `perf_event_open` uprobes and their sample rings, the unsafe half of the
//!   harness's `snoop` command (uninstrumented functions); [`uprobe::tracepoint`]: tracepoints
//!   with raw records and kernel filters, for its `events` command.
//! * [`env`](mod@env) names the environment variables the harness, the probe and instrumented programs
//!   pass to each other.
//!
//! Data flows one way: instrumented code -> region -> reader -> samples -> statistics (harness).
//!
//! # Example
//! ```no_run
//! use funcscope::{Builder, Level};
//!
//! const PARSE: usize = 0;
//! const DISPATCH: usize = 1;
//!
//! let mut session = Builder::new(Level::Normal)
//!     .checkpoints(&["parse", "dispatch"])
//!     .init()
//!     .expect("funcscope init");
//! for _ in 0..1000 {
//!     funcscope::enter!(PARSE);
//!     // ... parse a message ...
//!     funcscope::exit!(PARSE);
//!     {
//!         funcscope::scope!(DISPATCH); // exits at the end of the block, even on early return
//!         // ... dispatch it ...
//!     }
//!     let _ = session.poll_attach(); // never between ENTER and EXIT
//! }
//! session.cleanup();
//! ```
//!
//! # Levels and costs
//! See [`Level`]. The hot path never locks, never issues a read-modify-write atomic, never makes
//! a syscall, and touches two cache lines at [`Level::Normal`]; an empty ENTER/EXIT pair costs
//! about as much as two bare tick reads (the benchmark `cargo bench -p funcscope` prints the
//! ratios, and the README records them).
//!
//! # Fenced reads
//! By default ENTER and EXIT read a plain `rdtsc`, which the CPU may execute before the region's
//! last instructions have completed: the tail of a long dependent computation at the end of a
//! region can go uncounted. `Builder::new(level).clock(ClockChoice::Fenced)`, or
//! `FUNCSCOPE_CLOCK=fenced` in the environment of an unmodified program, selects
//! [`ClockKind::TscFenced`]: `lfence; rdtsc` at ENTER (earlier work completes before the start is
//! read) and at EXIT (the region's work completes before the end is read). It roughly doubles
//! the cost of an empty pair (see the benchmark's `normal_fenced` row); the header records the
//! clock kind and the floor measured on it, so readers and reports know. x86_64 only; the default
//! path is unchanged. Details in [`clock`].
//!
//! # Rules
//! * One checkpoint must not nest or recurse (ENTER 3, ENTER 3, EXIT 3): the start tick lives in
//!   the checkpoint's line. Different checkpoints may nest freely. Debug builds panic on misuse.
//! * One thread at a time per checkpoint. Misuse gives wrong numbers, never undefined behaviour.
//! * An index `>= num_checkpoints` records nothing and is counted (`bad_index` in the header).
//! * Each process calls `init` itself; after `fork` the child records nothing until it does.

#![warn(missing_docs)]

pub mod attach;
pub mod callgrind;
pub mod clock;
pub mod env;
pub mod layout;
pub mod reader;
pub mod record;
mod session;
pub mod uprobe;

pub use attach::AttachStatus;
pub use clock::ClockChoice;
pub use layout::{ClockKind, Level, MAX_CHECKPOINTS};
pub use record::{enter, exit, measure, now_ticks, record_ticks, ScopeGuard};
pub use session::{init, Backing, Builder, Session, DEFAULT_HUGETLBFS_DIR, DEFAULT_RING_CAPACITY};

use std::path::PathBuf;

/// Marks the start of checkpoint `idx` (a `usize`). Pair it with [`exit!`] on every path.
#[macro_export]
macro_rules! enter {
    ($idx:expr) => {
        $crate::enter($idx)
    };
}

/// Marks the end of checkpoint `idx` and records its duration.
#[macro_export]
macro_rules! exit {
    ($idx:expr) => {
        $crate::exit($idx)
    };
}

/// Measures from here to the end of the enclosing block (early returns and unwinding included).
#[macro_export]
macro_rules! scope {
    ($idx:expr) => {
        let _funcscope_scope_guard = $crate::ScopeGuard::new($idx);
    };
}

/// Why the probe could not start or attach. Every variant names the thing and the fix.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The checkpoint count is outside 1..=128.
    Checkpoints {
        /// What was asked for.
        requested: usize,
    },
    /// A checkpoint name is unusable.
    CheckpointName {
        /// Its index.
        index: usize,
        /// The name.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The ring capacity is not a power of two in 16..=16 Mi.
    RingCapacity {
        /// What was asked for.
        requested: u64,
    },
    /// `init` was called while a session is active in this process.
    AlreadyInitialized,
    /// Not enough free huge pages for a hugetlbfs backing.
    HugePages {
        /// The hugetlbfs directory.
        dir: PathBuf,
        /// 2 MiB pages needed.
        needed: u64,
        /// 2 MiB pages free.
        free: u64,
        /// The OS error, if one was returned.
        os: Option<String>,
    },
    /// The hugetlbfs directory is not a hugetlbfs mount.
    NotHugetlbfs {
        /// The directory.
        dir: PathBuf,
    },
    /// The socket directory cannot be used.
    SocketDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An operating-system call failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { what: what.into(), source }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Checkpoints { requested } => write!(
                f,
                "funcscope supports 1 to {MAX_CHECKPOINTS} checkpoints per process, {requested} were requested; \
                 split the instrumentation or remove checkpoints"
            ),
            Error::CheckpointName { index, name, why } => {
                write!(f, "checkpoint {index} has an unusable name {name:?}: {why} (names must be unique, 1-63 bytes, without whitespace)")
            }
            Error::RingCapacity { requested } => write!(
                f,
                "ring capacity {requested} is not a power of two between {} and {}; use e.g. {}",
                layout::MIN_RING_CAPACITY,
                layout::MAX_RING_CAPACITY,
                DEFAULT_RING_CAPACITY
            ),
            Error::AlreadyInitialized => {
                write!(f, "funcscope is already initialised in this process; drop or clean up the first Session before calling init again")
            }
            Error::HugePages { dir, needed, free, os } => {
                write!(
                    f,
                    "not enough huge pages for the region on {}: {needed} free 2 MiB page(s) needed, {free} free",
                    dir.display()
                )?;
                if let Some(os) = os {
                    write!(f, " ({os})")?;
                }
                write!(f, "; reserve them with `echo {needed} > /proc/sys/vm/nr_hugepages` (as root), or use the memfd backing")
            }
            Error::NotHugetlbfs { dir } => write!(
                f,
                "{} is not a hugetlbfs mount; mount one with `mount -t hugetlbfs none {}` (as root), or use the memfd backing",
                dir.display(),
                dir.display()
            ),
            Error::SocketDir { dir, why } => write!(
                f,
                "cannot use {} for the attach socket: {why}; set {} to a private directory",
                dir.display(),
                crate::env::SOCKET_DIR
            ),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
