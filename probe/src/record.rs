//! The recording path: what ENTER and EXIT execute inside the measured program.
//!
//! **Invariants.** No lock, no read-modify-write atomic, no syscall, no allocation. ENTER touches
//! the checkpoint's line; EXIT touches the line and one ring entry (plus one histogram word at
//! `Deep` and above). Every shared word is an [`AtomicU64`] written with Relaxed stores and one
//! Release store of `write_pos`, which are plain `mov`s on x86_64 and `str`/`stlr` on aarch64.
//!
//! The active session is published through one global pointer, `ACTIVE`. ENTER and EXIT load
//! it (Acquire, a plain load on x86_64), and do nothing when it is null: the disabled path
//! branches before it reads the clock, because reading it is the whole cost. The pointee and the
//! mapping it points into are leaked on purpose: they stay valid until the process exits, so a
//! thread that loaded the pointer just before `cleanup` can never touch freed or unmapped memory.
//!
//! **Single writer per checkpoint.** Two threads using one checkpoint at once produce wrong
//! numbers (a lost update of `sum`, a torn start/end pairing) but never undefined behaviour,
//! because every access is atomic. Different checkpoints may be used from different threads.

use core::ptr::null_mut;
use core::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering::*};

use crate::clock;
use crate::layout::{
    hist_bucket, pack_entry, ring_entry_word, CheckpointLine, ClockKind, Header, Level, DURATION_MAX, ENTRY_START_WORD,
    HIST_BUCKETS,
};

/// The session the hot path writes to, or null. Set by `init`, cleared by cleanup and in a forked
/// child (see `session`).
pub(crate) static ACTIVE: AtomicPtr<Active> = AtomicPtr::new(null_mut());

/// Everything the hot path needs, in process-private memory (one read-mostly line, always in L1
/// while the program records).
pub(crate) struct Active {
    pub(crate) header: *const Header,
    pub(crate) lines: *const CheckpointLine,
    pub(crate) n: usize,
    pub(crate) level: Level,
    pub(crate) clock: ClockKind,
    /// First word of checkpoint 0's ring (null at `Lite`).
    pub(crate) rings: *const AtomicU64,
    /// Words from one checkpoint's ring to the next: `Geometry::ring_stride_words`.
    pub(crate) ring_stride: usize,
    /// capacity - 1.
    pub(crate) cap_mask: u64,
    /// log2(capacity).
    pub(crate) cap_log2: u32,
    /// First word of checkpoint 0's histogram (null below `Deep`).
    pub(crate) hist: *const AtomicU64,
    /// In callgrind mode the program's checkpoint count, and `n` is 0 (so every ENTER/EXIT takes
    /// the cold out-of-range branch, which dumps instead); 0 in time mode. See `callgrind`.
    pub(crate) callgrind_n: usize,
}

// SAFETY: `Active` only holds pointers into a mapping that is never unmapped and whose words are
// all atomics; sharing those pointers between threads gives shared access to atomics only.
unsafe impl Sync for Active {}
// SAFETY: as for Sync: the pointees are atomics in memory that lives until process exit.
unsafe impl Send for Active {}

impl Active {
    /// The line of checkpoint `idx`, or `None` if out of range (then nothing is written).
    #[inline(always)]
    fn line(&self, idx: usize) -> Option<&CheckpointLine> {
        if idx < self.n {
            // SAFETY: `lines` points to `n` initialised, 64-byte-aligned `CheckpointLine`s in a
            // mapping that lives until process exit (never unmapped), and idx < n.
            Some(unsafe { &*self.lines.add(idx) })
        } else {
            None
        }
    }

    /// ENTER outside the recordable range: a callgrind dump, or a bad index.
    #[cold]
    #[inline(never)]
    fn enter_off_path(&self, idx: usize) {
        if idx < self.callgrind_n {
            crate::callgrind::enter(idx);
        } else {
            self.bad_index();
        }
    }

    /// EXIT outside the recordable range: a callgrind dump, or a bad index.
    #[cold]
    #[inline(never)]
    fn exit_off_path(&self, idx: usize) {
        if idx < self.callgrind_n {
            crate::callgrind::exit(idx);
        } else {
            self.bad_index();
        }
    }

    #[cold]
    #[inline(never)]
    fn bad_index(&self) {
        // SAFETY: `header` points to the initialised header of the leaked mapping.
        let h = unsafe { &*self.header };
        h.bad_index.store(h.bad_index.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// ENTER: remember the start tick in the checkpoint's line.
    #[inline(always)]
    pub(crate) fn enter(&self, idx: usize) {
        match self.line(idx) {
            Some(line) => {
                #[cfg(debug_assertions)]
                nesting_check_enter(line, idx);
                line.start.store(clock::ticks(self.clock), Relaxed);
            }
            None => self.enter_off_path(idx),
        }
    }

    /// EXIT: read the clock first (the end of the measured region), then record.
    #[inline(always)]
    pub(crate) fn exit(&self, idx: usize) {
        let end = clock::ticks(self.clock);
        match self.line(idx) {
            Some(line) => {
                #[cfg(debug_assertions)]
                nesting_check_exit(line, idx);
                let start = line.start.load(Relaxed);
                self.record(idx, line, start, end.wrapping_sub(start));
            }
            None => self.exit_off_path(idx),
        }
    }

    /// Records one duration; `idx` must be in range and `line` its line.
    #[inline(always)]
    pub(crate) fn record(&self, idx: usize, line: &CheckpointLine, start: u64, ticks: u64) {
        // A duration that does not fit (or a clock that went backwards, which wraps to a huge
        // value) is clamped and counted: never wrapped silently.
        let d = if ticks > DURATION_MAX {
            line.clamped.store(line.clamped.load(Relaxed).wrapping_add(1), Relaxed);
            DURATION_MAX
        } else {
            ticks
        };
        let pos = line.write_pos.load(Relaxed);
        line.sum.store(line.sum.load(Relaxed).wrapping_add(d), Relaxed);
        if d < line.min.load(Relaxed) {
            line.min.store(d, Relaxed);
        }
        if d > line.max.load(Relaxed) {
            line.max.store(d, Relaxed);
        }
        if self.level >= Level::Normal {
            // The same formula as the reader's `Geometry::entry_offset`, on the cached geometry.
            let slot =
                ring_entry_word(idx as u64, pos & self.cap_mask, self.ring_stride as u64, self.level.entry_words())
                    as usize;
            // SAFETY: idx < n and (pos & cap_mask) < capacity, so `slot` (+ENTRY_START_WORD at
            // Full) is inside checkpoint idx's ring of capacity × entry-words words within the
            // leaked mapping (which also makes the u64 -> usize conversion lossless).
            let e = unsafe { &*self.rings.add(slot) };
            e.store(pack_entry(pos, self.cap_log2, d), Relaxed);
            if self.level == Level::Full {
                // The tagged duration first, then the start tick: a reader that sees the new
                // start also sees the new tag (Release/Acquire fences) and discards the entry.
                fence(Release);
                // SAFETY: at Full each entry has two words; ENTRY_START_WORD (1) is the second
                // (see above).
                unsafe { &*self.rings.add(slot + ENTRY_START_WORD as usize) }.store(start, Relaxed);
            }
            if self.level >= Level::Deep {
                // SAFETY: idx < n and hist_bucket(d) < HIST_BUCKETS because d <= DURATION_MAX, so
                // the word lies in checkpoint idx's histogram within the leaked mapping.
                let b = unsafe { &*self.hist.add(idx * HIST_BUCKETS + hist_bucket(d)) };
                b.store(b.load(Relaxed).wrapping_add(1), Relaxed);
            }
        }
        // Publishes the entry: a reader that loads write_pos with Acquire sees everything above.
        line.write_pos.store(pos.wrapping_add(1), Release);
    }
}

#[cfg(debug_assertions)]
fn nesting_check_enter(line: &CheckpointLine, idx: usize) {
    if line.open.load(Relaxed) != 0 {
        panic!(
            "funcscope: checkpoint {idx} entered twice without an exit (the same checkpoint must \
             not nest or recurse; use scope! so early returns exit too)"
        );
    }
    line.open.store(1, Relaxed);
}

#[cfg(debug_assertions)]
fn nesting_check_exit(line: &CheckpointLine, idx: usize) {
    if line.open.load(Relaxed) == 0 {
        panic!("funcscope: checkpoint {idx} exited without a matching enter");
    }
    line.open.store(0, Relaxed);
}

/// The active session, if any.
#[inline(always)]
fn active() -> Option<&'static Active> {
    let p = ACTIVE.load(Acquire);
    // SAFETY: a non-null ACTIVE always points to a leaked (never freed) Active whose fields were
    // written before the Release store that published it.
    unsafe { p.as_ref() }
}

/// Marks the start of checkpoint `idx`. Prefer [`crate::enter!`] or [`crate::scope!`].
///
/// Does nothing without an active session. An index `>= num_checkpoints` records nothing and is
/// counted in the header's `bad_index`.
#[inline(always)]
pub fn enter(idx: usize) {
    if let Some(a) = active() {
        a.enter(idx);
    }
}

/// Marks the end of checkpoint `idx` and records the elapsed ticks since its [`enter`].
#[inline(always)]
pub fn exit(idx: usize) {
    if let Some(a) = active() {
        a.exit(idx);
    }
}

/// Records a duration measured by the caller, in ticks of the session's clock, as if ENTER/EXIT
/// had measured it. Useful for durations that span callbacks, and for tests that need known
/// values.
#[inline]
pub fn record_ticks(idx: usize, ticks: u64) {
    if let Some(a) = active() {
        match a.line(idx) {
            Some(line) => a.record(idx, line, 0, ticks),
            // In callgrind mode there is no duration to record.
            None if idx < a.callgrind_n => {}
            None => a.bad_index(),
        }
    }
}

/// Reads the active session's clock (0 without a session): the tick counter ENTER/EXIT use.
#[inline(always)]
pub fn now_ticks() -> u64 {
    match active() {
        Some(a) => clock::ticks(a.clock),
        None => 0,
    }
}

/// An RAII guard: ENTER when created, EXIT when dropped (also on early return and unwinding).
#[must_use = "the guard measures until it is dropped; bind it with `let _g = ...`"]
pub struct ScopeGuard {
    idx: usize,
}

impl ScopeGuard {
    /// ENTER `idx` now; EXIT when the guard is dropped.
    #[inline(always)]
    pub fn new(idx: usize) -> ScopeGuard {
        enter(idx);
        ScopeGuard { idx }
    }
}

impl Drop for ScopeGuard {
    #[inline(always)]
    fn drop(&mut self) {
        exit(self.idx);
    }
}

/// Runs `f` between ENTER and EXIT of checkpoint `idx` and returns its result.
#[inline(always)]
pub fn measure<R>(idx: usize, f: impl FnOnce() -> R) -> R {
    let _g = ScopeGuard::new(idx);
    f()
}
