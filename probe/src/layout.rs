//! The shared-memory layout: the one definition of funcscope's ABI.
//!
//! **API boundary.** Everything in this module is read by another process (the harness, through
//! [`crate::reader`]) and must change only together with [`ABI_VERSION`]. The writer (the
//! instrumented program) and the reader agree on nothing else.
//!
//! ```text
//! offset 0            Header (4 KiB): magic, ABI version, pid, clock, calibration pairs, level,
//!                     counts, capacity, offsets of the areas below, exit flag, heartbeat, floor
//! names_offset        n × 64 B   checkpoint names (u8 length + UTF-8 bytes)
//! lines_offset        n × 64 B   one cache line per checkpoint: start tick, write position and
//!                                the exact aggregates (count, sum, min, max, clamped)
//! hist_offset         n × HIST_BUCKETS × 8 B   log-linear histograms (Deep and Full only)
//! rings_offset        n × capacity × entry_words × 8 B   rings (Normal and above)
//! ```
//!
//! Every word is a little-endian `u64` accessed as an [`AtomicU64`]: the writer uses Relaxed
//! stores plus one Release store of `write_pos` per sample, the reader uses Acquire loads. On
//! x86_64 and aarch64 these compile to plain moves, so the hot path pays nothing for them, and
//! misuse (two threads writing one checkpoint) produces a wrong number at worst, never undefined
//! behaviour.
//!
//! ## Ring entries and the lap tag
//! A ring entry is one word: `lap << DURATION_BITS | duration`, where `lap = index / capacity`
//! truncated to [`LAP_BITS`]. A reader that wants sample `i` reads slot `i % capacity` and accepts
//! it only if its lap tag equals `i / capacity`; a newer tag means the writer overwrote the entry
//! before the reader got there, and the sample is counted as lost, never misread. In `Full` mode
//! each entry has a second word, the call's start tick, guarded seqlock-style by re-reading the
//! first word (see [`crate::reader`]). [`Geometry::entry_offset`] is where an entry lies; the
//! writer's hot path computes the same place with [`ring_entry_word`].
//!
//! ## Durations
//! [`DURATION_BITS`] = 40 bits of ticks hold 423 s at 2.6 GHz. A longer duration (or a clock that
//! went backwards) is stored as [`DURATION_MAX`] and counted in the line's `clamped` word: it never
//! wraps silently.

use core::sync::atomic::AtomicU64;

/// `b"FUNCSCP1"` read as a little-endian u64: the first word of every region.
pub const MAGIC: u64 = u64::from_le_bytes(*b"FUNCSCP1");

/// Version of this layout and of the attach handshake. Bumped on any change to either.
pub const ABI_VERSION: u32 = 1;

/// Cache line size assumed for alignment (x86_64 and most aarch64 cores).
pub const CACHE_LINE: usize = 64;

/// Size of the header area; the names table starts right after it.
pub const HEADER_SIZE: usize = 4096;

/// Most checkpoints one process may declare (the original tool's limit: indices fit a `u8`).
pub const MAX_CHECKPOINTS: usize = 128;

/// Bytes per name slot: one length byte plus up to 63 bytes of UTF-8.
pub const NAME_SLOT: usize = 64;

/// Longest checkpoint name in bytes.
pub const MAX_NAME_LEN: usize = NAME_SLOT - 1;

/// Why `name` cannot be a checkpoint name, or `None` if it can. The one rule, applied by the
/// writer at `init` and by the reader to every name in a region (a region is untrusted input,
/// and names end up in terminals, logs and baseline files): 1 to [`MAX_NAME_LEN`] bytes, no
/// whitespace, no control characters (ESC sequences, newlines: log spoofing), and no invisible
/// Unicode format characters (bidirectional overrides, zero-width characters) that make a name
/// print as another. Uniqueness is checked by the callers, over all names.
pub fn name_problem(name: &str) -> Option<&'static str> {
    // Bidi embeddings/overrides/isolates, zero-width space/joiners, marks, word joiner, BOM.
    let invisible =
        |c: char| matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}');
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 63 bytes")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains whitespace or control characters")
    } else if name.chars().any(invisible) {
        Some("it contains invisible Unicode format characters (bidirectional or zero-width)")
    } else {
        None
    }
}

/// Bits of a ring entry that hold the duration in ticks.
pub const DURATION_BITS: u32 = 40;

/// Bits of a ring entry that hold the lap tag.
pub const LAP_BITS: u32 = 64 - DURATION_BITS;

/// Largest storable duration; longer ones are clamped to it and counted.
pub const DURATION_MAX: u64 = (1 << DURATION_BITS) - 1;

/// Mask of the lap tag after shifting it down.
pub const LAP_MASK: u64 = (1 << LAP_BITS) - 1;

/// Smallest ring capacity (entries per checkpoint); capacities are powers of two.
pub const MIN_RING_CAPACITY: u64 = 16;

/// Largest ring capacity (entries per checkpoint): 16 Mi entries is 128 MiB per checkpoint.
pub const MAX_RING_CAPACITY: u64 = 1 << 24;

/// Histogram: values below `2^HIST_SUB_BITS` get one bucket each; above, every power of two is
/// split into `2^(HIST_SUB_BITS-1)` equal buckets, so a bucket's width is at most 1/16 = 6.25 %
/// of its lower bound (3.1 % of its midpoint).
pub const HIST_SUB_BITS: u32 = 5;

/// Number of histogram buckets per checkpoint; covers every value up to [`DURATION_MAX`].
pub const HIST_BUCKETS: usize = hist_bucket(DURATION_MAX) + 1;

/// The instrumentation level: what EXIT records besides the exact aggregates.
///
/// Costs are for an empty ENTER/EXIT pair relative to two bare tick reads (19.6 ns on the
/// reference machine, an AMD EPYC guest), measured side by side by
/// `cargo bench -p funcscope --bench hot_path` (the README has the table).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// Exact aggregates only (count, sum, min, max): one cache line, no ring. 1.01x the floor.
    Lite = 1,
    /// Aggregates plus a ring of per-call durations: two cache lines (the original model).
    /// 1.01x the floor: the stores hide behind the tick reads.
    Normal = 2,
    /// Normal plus a lossless log-linear histogram of every call, so the distribution survives
    /// ring overwrite: three cache lines. 1.27x the floor (+5 ns): the bucket update's
    /// dependent load/store sits between EXIT's tick read and the next ENTER's.
    Deep = 3,
    /// Deep plus each call's start tick in the ring (a timeline, e.g. to see warm-up).
    /// 1.27x the floor, like Deep.
    Full = 4,
}

impl Level {
    /// Decodes the header's level word.
    pub fn from_u32(v: u32) -> Option<Level> {
        match v {
            1 => Some(Level::Lite),
            2 => Some(Level::Normal),
            3 => Some(Level::Deep),
            4 => Some(Level::Full),
            _ => None,
        }
    }

    /// Whether this level keeps a ring of per-call samples.
    pub fn has_ring(self) -> bool {
        self >= Level::Normal
    }

    /// Whether this level keeps a histogram of every call.
    pub fn has_histogram(self) -> bool {
        self >= Level::Deep
    }

    /// Words per ring entry: 1 (tagged duration), or 2 in `Full` (plus the start tick).
    #[inline(always)]
    pub fn entry_words(self) -> u64 {
        if self == Level::Full {
            2
        } else {
            1
        }
    }

    /// Lowercase name, as used in configuration and reports.
    pub fn name(self) -> &'static str {
        match self {
            Level::Lite => "lite",
            Level::Normal => "normal",
            Level::Deep => "deep",
            Level::Full => "full",
        }
    }
}

impl PartialOrd for Level {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Level {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        (*self as u32).cmp(&(*other as u32))
    }
}

/// Which counter the ticks come from.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClockKind {
    /// x86_64 `RDTSC` (invariant TSC required).
    Tsc = 1,
    /// aarch64 `CNTVCT_EL0` (generic timer, fixed frequency).
    Cntvct = 2,
    /// `clock_gettime(CLOCK_MONOTONIC_RAW)` in nanoseconds: one tick is one nanosecond.
    MonotonicRaw = 3,
    /// x86_64 `lfence; rdtsc` at ENTER and at EXIT (the same counter and frequency as [`Tsc`]):
    /// each read waits until every earlier instruction has completed, so EXIT counts the
    /// region's work to its last cycle. Chosen with [`crate::ClockChoice::Fenced`] or
    /// `FUNCSCOPE_CLOCK=fenced`; see [`crate::clock`].
    ///
    /// [`Tsc`]: ClockKind::Tsc
    TscFenced = 4,
}

impl ClockKind {
    /// Decodes the header's clock word.
    pub fn from_u32(v: u32) -> Option<ClockKind> {
        match v {
            1 => Some(ClockKind::Tsc),
            2 => Some(ClockKind::Cntvct),
            3 => Some(ClockKind::MonotonicRaw),
            4 => Some(ClockKind::TscFenced),
            _ => None,
        }
    }

    /// Lowercase name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ClockKind::Tsc => "tsc",
            ClockKind::Cntvct => "cntvct",
            ClockKind::MonotonicRaw => "monotonic_raw",
            ClockKind::TscFenced => "tsc_fenced",
        }
    }
}

/// Index of a calibration pair in [`Header::calib`].
pub mod calib_slot {
    /// Written by `init`.
    pub const INIT: usize = 0;
    /// Rewritten at every successful attach.
    pub const ATTACH: usize = 1;
    /// Written by cleanup (or drop of the session).
    pub const CLEANUP: usize = 2;
    /// Number of slots.
    pub const COUNT: usize = 3;
}

/// One (ticks, CLOCK_MONOTONIC_RAW ns) pair, guarded by a sequence word.
///
/// The writer sets `seq` odd, writes both values, then sets `seq` to the next even number
/// (Release). A reader accepts the pair only if it reads the same even, non-zero `seq` before and
/// after. `seq == 0` means the slot was never written.
///
/// Byte offsets within a pair (the pairs follow each other in [`Header::calib`]):
/// ```text
/// +0   seq
/// +8   ticks
/// +16  mono_ns
/// +24  uncertainty_ns
/// ```
#[repr(C)]
pub struct CalibPair {
    /// Sequence word: odd while being written, 0 if never written.
    pub seq: AtomicU64,
    /// Tick counter value.
    pub ticks: AtomicU64,
    /// `CLOCK_MONOTONIC_RAW` in nanoseconds, read right after `ticks`.
    pub mono_ns: AtomicU64,
    /// Half the time the two reads took, in ns: the pair's uncertainty.
    pub uncertainty_ns: AtomicU64,
}

/// The region's first 4 KiB. Fields marked *fixed* are written once by `init` before the region
/// is shared and never change; the reader validates all of them.
#[repr(C)]
pub struct Header {
    /// *fixed* [`MAGIC`].
    pub magic: AtomicU64,
    /// *fixed* [`ABI_VERSION`] in the low 32 bits, [`HEADER_SIZE`] in the high 32 bits.
    pub version_and_header_size: AtomicU64,
    /// *fixed* Total region size in bytes (a multiple of the page size used).
    pub region_size: AtomicU64,
    /// *fixed* Process id of the writer.
    pub pid: AtomicU64,
    /// *fixed* [`Level`] as u32.
    pub level: AtomicU64,
    /// *fixed* [`ClockKind`] as u32.
    pub clock: AtomicU64,
    /// *fixed* Number of checkpoints, 1..=[`MAX_CHECKPOINTS`].
    pub num_checkpoints: AtomicU64,
    /// *fixed* Ring entries per checkpoint: a power of two in
    /// [`MIN_RING_CAPACITY`]..=[`MAX_RING_CAPACITY`], or 0 at `Lite`.
    pub ring_capacity: AtomicU64,
    /// *fixed* Offset of the names table.
    pub names_offset: AtomicU64,
    /// *fixed* Offset of the checkpoint lines.
    pub lines_offset: AtomicU64,
    /// *fixed* Offset of the histograms (0 below `Deep`).
    pub hist_offset: AtomicU64,
    /// *fixed* Offset of the rings (0 at `Lite`).
    pub rings_offset: AtomicU64,
    /// *fixed* Tick frequency in Hz estimated at init over a short interval (0 if unknown); the
    /// reader should prefer the calibration pairs, which span the whole run.
    pub init_freq_hz: AtomicU64,
    /// *fixed* Minimum ticks of an empty ENTER/EXIT pair measured at init: the probe's floor.
    pub floor_min_ticks: AtomicU64,
    /// *fixed* Median ticks of an empty ENTER/EXIT pair measured at init.
    pub floor_p50_ticks: AtomicU64,
    /// Non-zero once the writer called cleanup (or dropped its session).
    pub exit_flag: AtomicU64,
    /// Incremented by the writer at every `poll_attach` call: shows the main loop is alive.
    pub heartbeat: AtomicU64,
    /// Incremented by the writer at every successful attach.
    pub attach_generation: AtomicU64,
    /// ENTER/EXIT calls with an index `>= num_checkpoints`; they record nothing.
    pub bad_index: AtomicU64,
    /// Calibration pairs, indexed by [`calib_slot`].
    pub calib: [CalibPair; calib_slot::COUNT],
}

/// One checkpoint's hot cache line. ENTER writes `start`; EXIT reads it and writes the rest.
///
/// Byte offsets within the line:
/// ```text
/// +0   start
/// +8   write_pos
/// +16  sum
/// +24  min
/// +32  max
/// +40  clamped
/// +48  open
/// +56  reserved
/// ```
#[repr(C, align(64))]
pub struct CheckpointLine {
    /// Tick of the last ENTER.
    pub start: AtomicU64,
    /// Samples written so far (monotonic): the ring index of the next sample, and the exact call
    /// count. Stored with Release after the entry, so a reader that loads it with Acquire sees
    /// every entry below it.
    pub write_pos: AtomicU64,
    /// Sum of all durations in ticks (wrapping only after 2^64 ticks: 224 years at 2.6 GHz).
    pub sum: AtomicU64,
    /// Smallest duration (`u64::MAX` until the first sample).
    pub min: AtomicU64,
    /// Largest duration.
    pub max: AtomicU64,
    /// Durations that did not fit [`DURATION_BITS`] (or ran backwards) and were clamped.
    pub clamped: AtomicU64,
    /// Debug builds only: 1 between ENTER and EXIT, to detect nesting of one checkpoint.
    pub open: AtomicU64,
    /// Reserved, zero.
    pub reserved: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<Header>() <= HEADER_SIZE);
const _: () = assert!(core::mem::size_of::<CheckpointLine>() == CACHE_LINE);
const _: () = assert!(core::mem::align_of::<CheckpointLine>() == CACHE_LINE);
const _: () = assert!(NAME_SLOT % CACHE_LINE == 0);
// The reader addresses the region in 8-byte words: every field it reads by offset must be one
// whole, aligned word, and the calibration pairs must follow each other without padding.
const _: () = assert!(core::mem::size_of::<CalibPair>() == 4 * 8);
const _: () = assert!(core::mem::offset_of!(Header, calib) % 8 == 0);
const _: () = assert!(core::mem::size_of::<[CalibPair; calib_slot::COUNT]>() == calib_slot::COUNT * 4 * 8);

/// Histogram bucket of a duration (see [`HIST_SUB_BITS`]). Pure integer arithmetic, a handful of
/// instructions, so it can sit on the `Deep` hot path.
#[inline(always)]
pub const fn hist_bucket(v: u64) -> usize {
    let sub = 1u64 << HIST_SUB_BITS; // 32: values below get exact buckets
    if v < sub {
        return v as usize;
    }
    // msb >= HIST_SUB_BITS here; keep the top HIST_SUB_BITS bits of v.
    let msb = 63 - v.leading_zeros();
    let shift = msb + 1 - HIST_SUB_BITS; // >= 1
    let top = (v >> shift) as usize; // in [16, 32)
    let half = (sub / 2) as usize; // 16 buckets per power of two
    sub as usize + (shift as usize - 1) * half + (top - half)
}

/// Smallest value that falls in bucket `b` (inverse of [`hist_bucket`]).
pub const fn hist_bucket_low(b: usize) -> u64 {
    let sub = 1usize << HIST_SUB_BITS;
    if b < sub {
        return b as u64;
    }
    let half = sub / 2;
    let shift = (b - sub) / half + 1;
    let top = (b - sub) % half + half;
    (top as u64) << shift
}

/// Largest value that falls in bucket `b`.
pub const fn hist_bucket_high(b: usize) -> u64 {
    if b + 1 >= HIST_BUCKETS {
        return DURATION_MAX;
    }
    hist_bucket_low(b + 1) - 1
}

/// Byte offsets and sizes of every area, computed from the fixed header fields. The writer uses
/// it to build a region; the reader recomputes it and rejects a region whose header disagrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Level.
    pub level: Level,
    /// Number of checkpoints.
    pub num_checkpoints: u64,
    /// Ring entries per checkpoint (0 at `Lite`).
    pub ring_capacity: u64,
    /// Offset of the names table.
    pub names_offset: u64,
    /// Offset of the checkpoint lines.
    pub lines_offset: u64,
    /// Offset of the histograms (0 if none).
    pub hist_offset: u64,
    /// Offset of the rings (0 if none).
    pub rings_offset: u64,
    /// Bytes needed before rounding up to the page size.
    pub used_size: u64,
}

/// Why a geometry cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeometryError {
    /// Checkpoint count outside 1..=128.
    Checkpoints(u64),
    /// Ring capacity not a power of two in range.
    Capacity(u64),
}

impl Geometry {
    /// Computes the layout. `ring_capacity` is ignored (stored as 0) at `Lite`.
    pub fn new(level: Level, num_checkpoints: u64, ring_capacity: u64) -> Result<Self, GeometryError> {
        if num_checkpoints == 0 || num_checkpoints > MAX_CHECKPOINTS as u64 {
            return Err(GeometryError::Checkpoints(num_checkpoints));
        }
        let ring_capacity = if level.has_ring() { ring_capacity } else { 0 };
        if level.has_ring()
            && (!ring_capacity.is_power_of_two() || !(MIN_RING_CAPACITY..=MAX_RING_CAPACITY).contains(&ring_capacity))
        {
            return Err(GeometryError::Capacity(ring_capacity));
        }
        let n = num_checkpoints;
        let names_offset = HEADER_SIZE as u64;
        let lines_offset = names_offset + n * NAME_SLOT as u64;
        let mut end = lines_offset + n * CACHE_LINE as u64;
        let hist_offset = if level.has_histogram() {
            let off = end;
            end += n * HIST_BUCKETS as u64 * 8;
            off
        } else {
            0
        };
        let rings_offset = if level.has_ring() {
            // Rings start on a page so the hot ring writes never share a page with the header.
            let off = end.div_ceil(4096) * 4096;
            end = off + n * ring_capacity * level.entry_words() * 8;
            off
        } else {
            0
        };
        Ok(Geometry {
            level,
            num_checkpoints,
            ring_capacity,
            names_offset,
            lines_offset,
            hist_offset,
            rings_offset,
            used_size: end,
        })
    }

    /// Offset of checkpoint `i`'s name slot.
    pub fn name_offset(&self, i: u64) -> u64 {
        self.names_offset + i * NAME_SLOT as u64
    }

    /// Offset of checkpoint `i`'s line.
    pub fn line_offset(&self, i: u64) -> u64 {
        self.lines_offset + i * CACHE_LINE as u64
    }

    /// Offset of checkpoint `i`'s histogram (only meaningful at `Deep` and above).
    pub fn hist_offset_of(&self, i: u64) -> u64 {
        self.hist_offset + i * HIST_BUCKETS as u64 * 8
    }

    /// Words from one checkpoint's ring to the next: capacity × entry words (0 at `Lite`).
    pub fn ring_stride_words(&self) -> u64 {
        self.ring_capacity * self.level.entry_words()
    }

    /// Offset of checkpoint `i`'s ring (only meaningful at `Normal` and above).
    pub fn ring_offset_of(&self, i: u64) -> u64 {
        self.entry_offset(i, 0)
    }

    /// Offset of the first word of entry `slot` (`< ring_capacity`, i.e. a sample index modulo
    /// the capacity) in checkpoint `checkpoint`'s ring; at `Full` the start tick follows at word
    /// [`ENTRY_START_WORD`]. Only meaningful at `Normal` and above.
    pub fn entry_offset(&self, checkpoint: u64, slot: u64) -> u64 {
        debug_assert!(slot == 0 || slot < self.ring_capacity, "slot {slot} of a {}-entry ring", self.ring_capacity);
        self.rings_offset + 8 * ring_entry_word(checkpoint, slot, self.ring_stride_words(), self.level.entry_words())
    }
}

/// Word of a `Full` ring entry that holds the call's start tick; word 0 holds the tagged duration.
pub const ENTRY_START_WORD: u64 = 1;

/// Index, in words from the start of the rings area, of entry `slot` of checkpoint `checkpoint`'s
/// ring, given [`Geometry::ring_stride_words`] and [`Level::entry_words`].
///
/// The one formula for where an entry lies: the writer's hot path calls it with the values it
/// cached from the [`Geometry`], and the reader through [`Geometry::entry_offset`], so the two
/// cannot disagree.
#[inline(always)]
pub const fn ring_entry_word(checkpoint: u64, slot: u64, ring_stride_words: u64, entry_words: u64) -> u64 {
    checkpoint * ring_stride_words + slot * entry_words
}

/// Packs a ring entry: the lap tag of sample index `pos` and a duration already clamped to
/// [`DURATION_MAX`].
#[inline(always)]
pub const fn pack_entry(pos: u64, capacity_log2: u32, duration: u64) -> u64 {
    (((pos >> capacity_log2) & LAP_MASK) << DURATION_BITS) | duration
}

/// The lap tag the entry of sample index `pos` must carry.
#[inline(always)]
pub const fn expected_lap(pos: u64, capacity_log2: u32) -> u64 {
    (pos >> capacity_log2) & LAP_MASK
}

/// Splits an entry into (lap tag, duration).
#[inline(always)]
pub const fn unpack_entry(entry: u64) -> (u64, u64) {
    (entry >> DURATION_BITS, entry & DURATION_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_kinds_round_trip_through_the_header_word() {
        for k in [ClockKind::Tsc, ClockKind::Cntvct, ClockKind::MonotonicRaw, ClockKind::TscFenced] {
            assert_eq!(ClockKind::from_u32(k as u32), Some(k), "{}", k.name());
        }
        assert_eq!(ClockKind::from_u32(0), None);
        assert_eq!(ClockKind::from_u32(5), None);
    }

    #[test]
    fn histogram_buckets_are_contiguous_and_bounded() {
        // Every bucket's low edge maps back to the bucket, and buckets tile the value range.
        for b in 0..HIST_BUCKETS {
            assert_eq!(hist_bucket(hist_bucket_low(b)), b, "bucket {b}");
            assert_eq!(hist_bucket(hist_bucket_high(b)), b, "bucket {b}");
            if b + 1 < HIST_BUCKETS {
                assert_eq!(hist_bucket_high(b) + 1, hist_bucket_low(b + 1));
            }
            // Relative width bound documented on HIST_SUB_BITS.
            let (lo, hi) = (hist_bucket_low(b), hist_bucket_high(b));
            if lo >= 32 {
                assert!((hi - lo + 1) as f64 / lo as f64 <= 1.0 / 16.0 + 1e-12);
            }
        }
        assert_eq!(hist_bucket(0), 0);
        assert_eq!(hist_bucket(31), 31);
        assert_eq!(hist_bucket(32), 32);
        assert_eq!(hist_bucket(33), 32);
        assert_eq!(hist_bucket(34), 33);
        assert_eq!(hist_bucket(DURATION_MAX), HIST_BUCKETS - 1);
        assert_eq!(HIST_BUCKETS, 32 + 35 * 16);
    }

    #[test]
    fn geometry_validates_counts_and_capacity() {
        assert_eq!(Geometry::new(Level::Normal, 0, 1024), Err(GeometryError::Checkpoints(0)));
        assert_eq!(Geometry::new(Level::Normal, 129, 1024), Err(GeometryError::Checkpoints(129)));
        assert_eq!(Geometry::new(Level::Normal, 4, 1000), Err(GeometryError::Capacity(1000)));
        assert_eq!(Geometry::new(Level::Normal, 4, 8), Err(GeometryError::Capacity(8)));
        let g = Geometry::new(Level::Lite, 128, 1000).unwrap();
        assert_eq!(g.ring_capacity, 0);
        assert_eq!(g.rings_offset, 0);
        let g = Geometry::new(Level::Full, 3, 1024).unwrap();
        assert_eq!(g.rings_offset % 4096, 0);
        assert_eq!(g.used_size, g.rings_offset + 3 * 1024 * 16);
        assert!(g.hist_offset >= g.lines_offset + 3 * 64);
    }

    /// The `+offset field` lines of the doc comment right above `item` (e.g. `pub struct
    /// CheckpointLine`) in this file: the byte map written for readers in other languages.
    fn documented_offsets(item: &str) -> Vec<(&'static str, usize)> {
        let src: &'static str = include_str!("layout.rs");
        let lines: Vec<&'static str> = src.lines().collect();
        let at = lines.iter().position(|l| l.starts_with(item)).unwrap_or_else(|| panic!("{item} not found"));
        let mut map: Vec<(&'static str, usize)> = lines[..at]
            .iter()
            .rev()
            .take_while(|l| l.starts_with("///") || l.starts_with("#["))
            .filter_map(|l| {
                let mut words = l.strip_prefix("/// +")?.split_whitespace();
                let offset = words.next()?.parse().ok()?;
                Some((words.next()?, offset))
            })
            .collect();
        map.reverse();
        map
    }

    #[test]
    fn field_offsets_match_the_documented_maps() {
        use core::mem::{offset_of, size_of};
        let line = [
            ("start", offset_of!(CheckpointLine, start)),
            ("write_pos", offset_of!(CheckpointLine, write_pos)),
            ("sum", offset_of!(CheckpointLine, sum)),
            ("min", offset_of!(CheckpointLine, min)),
            ("max", offset_of!(CheckpointLine, max)),
            ("clamped", offset_of!(CheckpointLine, clamped)),
            ("open", offset_of!(CheckpointLine, open)),
            ("reserved", offset_of!(CheckpointLine, reserved)),
        ];
        assert_eq!(documented_offsets("pub struct CheckpointLine"), line);
        // Every word of the line is listed.
        assert_eq!(line.len() * 8, size_of::<CheckpointLine>());
        let pair = [
            ("seq", offset_of!(CalibPair, seq)),
            ("ticks", offset_of!(CalibPair, ticks)),
            ("mono_ns", offset_of!(CalibPair, mono_ns)),
            ("uncertainty_ns", offset_of!(CalibPair, uncertainty_ns)),
        ];
        assert_eq!(documented_offsets("pub struct CalibPair"), pair);
        assert_eq!(pair.len() * 8, size_of::<CalibPair>());
    }

    #[test]
    fn geometry_matches_the_documented_map() {
        // The module's map: header (4 KiB), names n × 64 B, lines n × 64 B, histograms
        // n × HIST_BUCKETS × 8 B (Deep and Full), rings from a page boundary,
        // n × capacity × entry_words × 8 B (Normal and above).
        let cap = 1024;
        for level in [Level::Lite, Level::Normal, Level::Deep, Level::Full] {
            for n in [1u64, 3, 128] {
                let g = Geometry::new(level, n, cap).unwrap();
                assert_eq!(g.names_offset, 4096);
                assert_eq!(g.lines_offset, 4096 + n * 64);
                let mut end = g.lines_offset + n * 64;
                if level.has_histogram() {
                    assert_eq!(g.hist_offset, end);
                    end += n * HIST_BUCKETS as u64 * 8;
                } else {
                    assert_eq!(g.hist_offset, 0);
                }
                if !level.has_ring() {
                    assert_eq!((g.rings_offset, g.used_size), (0, end));
                    continue;
                }
                let words = if level == Level::Full { 2 } else { 1 };
                assert_eq!(g.rings_offset, end.div_ceil(4096) * 4096);
                assert_eq!(g.used_size, g.rings_offset + n * cap * words * 8);
                for (i, slot) in [(0, 0), (0, 1), (n - 1, 0), (n / 2, 17), (n - 1, cap - 1)] {
                    let want = g.rings_offset + (i * cap + slot) * words * 8;
                    assert_eq!(g.entry_offset(i, slot), want, "{level:?} n={n} entry ({i}, {slot})");
                }
                assert_eq!(g.ring_offset_of(n - 1), g.entry_offset(n - 1, 0));
                // The last entry ends exactly where the region's used part does.
                assert_eq!(g.entry_offset(n - 1, cap - 1) + words * 8, g.used_size);
            }
        }
    }

    #[test]
    fn entries_round_trip_with_lap_tags() {
        let log2 = 4; // capacity 16
        for pos in [0u64, 15, 16, 17, 1 << 30, u64::MAX] {
            let e = pack_entry(pos, log2, 12345);
            assert_eq!(unpack_entry(e), (expected_lap(pos, log2), 12345));
        }
        assert_ne!(expected_lap(3, log2), expected_lap(3 + 16, log2));
    }
}
