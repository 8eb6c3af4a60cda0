//! In-process sessions (one at a time: a process has at most one active session, so these tests
//! take a lock) and the reader against crafted, untrusted regions.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use funcscope::layout::{self, Geometry, Level, DURATION_MAX};
use funcscope::reader::{attach, attach_with, AttachError, Attachment, Drain, ReadError, Region, Unsealed};
use funcscope::{AttachStatus, Backing, Builder, ClockChoice, ClockKind, Error, Session};

static ONE_SESSION: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    ONE_SESSION.lock().unwrap_or_else(|p| p.into_inner())
}

fn socket_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("funcscope-rt-{}-{tag}", std::process::id()))
}

fn session(level: Level, names: &[&str], cap: u64, tag: &str) -> Session {
    Builder::new(level).checkpoints(names).ring_capacity(cap).socket_dir(socket_dir(tag)).init().unwrap()
}

/// Attaches from a helper thread while this thread plays the program's main loop.
fn attach_in_process(s: &mut Session) -> Attachment {
    let path = s.socket_path().unwrap().to_path_buf();
    let t = std::thread::spawn(move || attach(&path, Duration::from_secs(10)));
    let t0 = Instant::now();
    while s.poll_attach().unwrap() != AttachStatus::Attached {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
    t.join().unwrap().unwrap()
}

#[test]
fn full_speed_writer_against_concurrent_reader_has_no_corrupt_sample() {
    let _g = lock();
    let mut s = session(Level::Normal, &["seq"], 1024, "race");
    let att = attach_in_process(&mut s);
    const N: u64 = 3_000_000;
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..N {
            funcscope::record_ticks(0, i); // value == call index: any mix-up is visible
        }
        d2.store(true, Ordering::Release);
    });
    let mut drain = Drain::new(&att.region);
    let mut corrupt = 0u64;
    let mut rounds = 0;
    loop {
        let finished = done.load(Ordering::Acquire);
        drain
            .drain(&att.region, |_, smp| {
                if smp.ticks != smp.index {
                    corrupt += 1;
                }
            })
            .unwrap();
        rounds += 1;
        if finished {
            break;
        }
    }
    writer.join().unwrap();
    let c = drain.counts()[0];
    assert_eq!(corrupt, 0, "corrupt samples");
    assert_eq!(c.accounted(), N, "read + lost == written: {c:?}");
    assert!(c.read > 0 && rounds > 1);
    s.cleanup();
    assert!(att.region.exited());
}

#[test]
fn levels_record_what_they_promise() {
    let _g = lock();
    for level in [Level::Lite, Level::Normal, Level::Deep, Level::Full] {
        let mut s = session(level, &["a", "b"], 64, "levels");
        assert_eq!(s.level(), level);
        let att = attach_in_process(&mut s);
        for v in [5u64, 40, 40, 1000, 123_456] {
            funcscope::record_ticks(1, v);
        }
        funcscope::enter(0);
        funcscope::exit(0);
        s.cleanup();
        let r = &att.region;
        assert_eq!(r.info().level, level);
        let agg = r.aggregates(1).unwrap();
        assert_eq!((agg.count, agg.sum, agg.min, agg.max), (5, 124_541, Some(5), 123_456));
        assert_eq!(r.aggregates(0).unwrap().count, 1);
        let mut samples = vec![];
        Drain::new(r).drain(r, |cp, smp| samples.push((cp, smp))).unwrap();
        if level == Level::Lite {
            assert!(samples.is_empty());
            assert!(r.histogram(1).is_none());
            continue;
        }
        let b: Vec<u64> = samples.iter().filter(|(cp, _)| *cp == 1).map(|(_, s)| s.ticks).collect();
        assert_eq!(b, [5, 40, 40, 1000, 123_456]);
        let starts_present = samples.iter().all(|(_, s)| s.start.is_some());
        assert_eq!(starts_present, level == Level::Full);
        if level >= Level::Deep {
            let h = r.histogram(1).unwrap();
            assert_eq!(h.iter().sum::<u64>(), 5);
            assert_eq!(h[layout::hist_bucket(40)], 2);
            assert_eq!(h[layout::hist_bucket(123_456)], 1);
        }
    }
}

#[test]
fn fenced_clock_is_chosen_and_records() {
    let _g = lock();
    let mut s = Builder::new(Level::Normal)
        .checkpoints(&["fenced"])
        .ring_capacity(256)
        .socket_dir(socket_dir("fenced"))
        .clock(ClockChoice::Fenced)
        .init()
        .unwrap();
    let kind = s.clock().kind;
    if std::env::var_os(funcscope::env::CLOCK).is_none() && cfg!(target_arch = "x86_64") {
        // TscFenced where the TSC is trusted, else the (ordered) vDSO clock; never the plain TSC.
        assert!(matches!(kind, ClockKind::TscFenced | ClockKind::MonotonicRaw), "{:?}", s.clock());
    }
    let (floor_min, floor_p50) = s.floor_ticks();
    assert!(floor_min > 0 && floor_p50 >= floor_min, "floor measured on the fenced clock: {floor_min} {floor_p50}");
    let att = attach_in_process(&mut s);
    const N: u64 = 200;
    let mut x = 1u64;
    for i in 0..N {
        funcscope::enter(0);
        // A dependent chain whose result is only used after EXIT: the fenced EXIT waits for it.
        for _ in 0..50 {
            x = (x ^ (x >> 29) ^ i).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        }
        funcscope::exit(0);
    }
    std::hint::black_box(x);
    s.cleanup();
    let r = &att.region;
    assert_eq!(r.info().clock, kind, "the header names the fenced clock");
    assert_eq!(r.info().floor_min_ticks, floor_min);
    assert!(r.freq_hz().unwrap() > 0.0);
    let agg = r.aggregates(0).unwrap();
    assert_eq!(agg.count, N);
    let mut samples = vec![];
    Drain::new(r).drain(r, |_, smp| samples.push(smp.ticks)).unwrap();
    assert_eq!(samples.len() as u64, N);
    assert!(samples.iter().all(|&t| t > 0), "a fenced pair around 50 multiplies takes time: {samples:?}");
}

#[test]
fn out_of_range_index_and_overlong_duration_are_counted() {
    let _g = lock();
    let mut s = session(Level::Normal, &["only"], 16, "bad-index");
    let att = attach_in_process(&mut s);
    funcscope::enter(7);
    funcscope::exit(7);
    funcscope::record_ticks(128, 1);
    funcscope::record_ticks(usize::MAX, 1);
    funcscope::record_ticks(0, DURATION_MAX + 5);
    s.cleanup();
    let r = &att.region;
    assert_eq!(r.bad_index_count(), 4);
    let agg = r.aggregates(0).unwrap();
    assert_eq!((agg.count, agg.clamped, agg.max), (1, 1, DURATION_MAX));
    assert!(matches!(r.aggregates(1), Err(ReadError::NoCheckpoint { index: 1, count: 1 })));
}

#[test]
fn second_concurrent_reader_is_refused_with_the_holders_pid() {
    let _g = lock();
    let mut s = session(Level::Normal, &["x"], 16, "busy");
    let first = attach_in_process(&mut s);
    let path = s.socket_path().unwrap().to_path_buf();
    let t = std::thread::spawn(move || attach(&path, Duration::from_secs(10)));
    let t0 = Instant::now();
    while !t.is_finished() {
        assert_ne!(s.poll_attach().unwrap(), AttachStatus::Attached);
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
    match t.join().unwrap() {
        Err(AttachError::Busy { holder_pid }) => assert_eq!(holder_pid, std::process::id()),
        Err(e) => panic!("expected Busy, got {e}"),
        Ok(_) => panic!("a second reader attached"),
    }
    // Once the first reader leaves, another may attach.
    drop(first);
    let again = attach_in_process(&mut s);
    assert_eq!(again.region.info().names, ["x"]);
}

#[test]
fn received_fd_is_read_only() {
    let _g = lock();
    let mut s = session(Level::Normal, &["x"], 16, "ro");
    let att = attach_in_process(&mut s);
    assert!(att.region.info().sealed, "the memfd is sealed against shrinking");
    // The reader's own fd cannot be reopened for writing.
    let pid = std::process::id();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
    let mut found_ro = false;
    for e in fds.flatten() {
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        if target.to_string_lossy().contains("memfd:funcscope") {
            let fdinfo = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", e.file_name().to_string_lossy()))
                .unwrap_or_default();
            let flags = fdinfo.lines().find(|l| l.starts_with("flags:")).unwrap_or("");
            let octal = u32::from_str_radix(flags.trim_start_matches("flags:").trim(), 8).unwrap_or(0);
            if octal & 0o3 == 0 {
                found_ro = true; // O_RDONLY: the reader's copy
            }
        }
    }
    assert!(found_ro, "the reader holds an O_RDONLY fd of the region");
}

#[test]
fn checkpoint_counts_and_names_are_validated() {
    let _g = lock();
    for n in [0usize, 129] {
        match funcscope::init(n, Level::Normal) {
            Err(e @ Error::Checkpoints { .. }) => assert!(e.to_string().contains("1 to 128"), "{e}"),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("{n} checkpoints accepted"),
        }
    }
    let dup = Builder::new(Level::Normal).checkpoints(&["a", "a"]).init();
    assert!(matches!(dup, Err(Error::CheckpointName { index: 1, .. })));
    let ws = Builder::new(Level::Normal).checkpoints(&["has space"]).init();
    assert!(matches!(ws, Err(Error::CheckpointName { index: 0, .. })));
    let cap = Builder::new(Level::Normal).checkpoints(&["a"]).ring_capacity(1000).init();
    assert!(matches!(cap, Err(Error::RingCapacity { requested: 1000 })));
    // A second init while one is active is refused, and the first keeps working.
    let s = session(Level::Lite, &["a"], 16, "twice");
    assert!(matches!(funcscope::init(1, Level::Lite), Err(Error::AlreadyInitialized)));
    drop(s);
    let s2 = session(Level::Lite, &["a"], 16, "twice");
    drop(s2);
}

#[test]
fn unavailable_huge_pages_give_a_clear_error_or_a_documented_fallback() {
    let _g = lock();
    let dir = PathBuf::from(funcscope::DEFAULT_HUGETLBFS_DIR);
    let free: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("HugePages_Free:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let b = || {
        Builder::new(Level::Normal)
            .checkpoints(&["a"])
            .backing(Backing::HugetlbfsFile(dir.clone()))
            .socket_dir(socket_dir("huge"))
    };
    if free == 0 {
        let err = match b().init() {
            Err(e) => e,
            Ok(_) => panic!("hugetlbfs backing without huge pages succeeded"),
        };
        let msg = err.to_string();
        assert!(msg.contains("nr_hugepages") || msg.contains("mount -t hugetlbfs"), "{msg}");
        let s = b().hugepage_fallback(true).init().unwrap();
        assert_eq!(s.backing(), &Backing::Memfd);
        assert!(s.warnings()[0].contains("falling back"), "{:?}", s.warnings());
    }
    // A non-hugetlbfs directory is named as such.
    let err = Builder::new(Level::Normal)
        .checkpoints(&["a"])
        .backing(Backing::HugetlbfsFile(std::env::temp_dir()))
        .socket_dir(socket_dir("huge"))
        .init();
    assert!(matches!(err, Err(Error::NotHugetlbfs { .. })));
}

#[test]
fn tmpfs_file_backing_works_and_is_rounded_to_pages() {
    let _g = lock();
    let dir = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let mut s = Builder::new(Level::Normal)
        .checkpoints(&["a"])
        .ring_capacity(16)
        .backing(Backing::TmpfsFile(dir))
        .socket_dir(socket_dir("tmpfs"))
        .init()
        .unwrap();
    assert_eq!(s.region_size() % 4096, 0);
    // A tmpfs file cannot be sealed: readers refuse it unless they accept the SIGBUS risk.
    let path = s.socket_path().unwrap().to_path_buf();
    let t = std::thread::spawn(move || attach(&path, Duration::from_secs(10)));
    while !t.is_finished() {
        s.poll_attach().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(t.join().unwrap(), Err(AttachError::Region(ReadError::Unsealed))));
    let path = s.socket_path().unwrap().to_path_buf();
    let t = std::thread::spawn(move || attach_with(&path, Duration::from_secs(10), Unsealed::Accept));
    while s.poll_attach().unwrap() != AttachStatus::Attached {
        std::thread::sleep(Duration::from_millis(1));
    }
    let att = t.join().unwrap().unwrap();
    assert!(!att.region.info().sealed);
    funcscope::record_ticks(0, 99);
    assert_eq!(att.region.aggregates(0).unwrap().max, 99);
}

#[test]
fn forked_child_does_not_write_into_the_parents_region() {
    let _g = lock();
    let mut s = session(Level::Normal, &["a"], 16, "fork");
    let att = attach_in_process(&mut s);
    // SAFETY: the child only performs atomic loads/stores (ENTER/EXIT, which are no-ops after the
    // atfork handler) and then _exit, all async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        funcscope::record_ticks(0, 1);
        funcscope::enter(0);
        funcscope::exit(0);
        // SAFETY: terminating the forked child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for the child we just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(att.region.aggregates(0).unwrap().count, 0, "the child wrote into the parent's region");
    funcscope::record_ticks(0, 1);
    assert_eq!(att.region.aggregates(0).unwrap().count, 1, "the parent still records");
}

// ---- the reader against crafted regions --------------------------------------------------

/// Builds a valid region image by hand from the layout constants (an independent check of the
/// ABI), so tests can corrupt it field by field.
fn craft(level: Level, n: u64, cap: u64) -> Vec<u8> {
    let g = Geometry::new(level, n, cap).unwrap();
    let size = g.used_size.div_ceil(4096) * 4096;
    let mut b = vec![0u8; size as usize];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(0, layout::MAGIC);
    put(8, layout::ABI_VERSION as u64 | (layout::HEADER_SIZE as u64) << 32);
    put(16, size);
    put(24, 4242);
    put(32, level as u64);
    put(40, layout::ClockKind::Tsc as u64);
    put(48, n);
    put(56, g.ring_capacity);
    put(64, g.names_offset);
    put(72, g.lines_offset);
    put(80, g.hist_offset);
    put(88, g.rings_offset);
    for i in 0..n {
        let o = g.name_offset(i) as usize;
        let name = format!("c{i}");
        b[o] = name.len() as u8;
        b[o + 1..o + 1 + name.len()].copy_from_slice(name.as_bytes());
        let l = g.line_offset(i) as usize;
        b[l + 24..l + 32].copy_from_slice(&u64::MAX.to_le_bytes()); // min
    }
    b
}

/// A memfd holding `bytes`, sealed against shrinking (as the writer's is) if `seal`.
fn memfd_with(bytes: &[u8], seal: bool) -> OwnedFd {
    // SAFETY: memfd_create with a valid name; the fd is owned right away.
    let fd = unsafe { libc::memfd_create(c"crafted".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    assert!(fd >= 0);
    // SAFETY: fd is a fresh fd we own.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    f.write_all(bytes).unwrap();
    if seal {
        // SAFETY: fcntl on an fd we own, with an integer argument.
        assert_eq!(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SHRINK | libc::F_SEAL_GROW) }, 0);
    }
    OwnedFd::from(f)
}

fn region_from_bytes(bytes: &[u8]) -> Result<Region, ReadError> {
    Region::from_fd(memfd_with(bytes, true))
}

#[test]
fn crafted_valid_region_is_accepted() {
    let r = region_from_bytes(&craft(Level::Normal, 3, 16)).unwrap();
    assert_eq!(r.info().names, ["c0", "c1", "c2"]);
    assert_eq!(r.info().pid, 4242);
    assert!(!r.exited());
}

#[test]
fn truncated_or_foreign_regions_are_errors_not_panics() {
    let good = craft(Level::Normal, 3, 16);
    // Truncated below the header, and below the rings.
    assert!(matches!(region_from_bytes(&good[..100]), Err(ReadError::TooSmall { .. })));
    assert!(matches!(region_from_bytes(&good[..8192]), Err(ReadError::TooSmall { .. } | ReadError::BadHeader { .. })));
    let mutate = |off: usize, v: u64| {
        let mut b = good.clone();
        b[off..off + 8].copy_from_slice(&v.to_le_bytes());
        region_from_bytes(&b)
    };
    assert!(matches!(mutate(0, 0), Err(ReadError::BadMagic { .. })));
    match mutate(8, 99 | (layout::HEADER_SIZE as u64) << 32) {
        Err(e @ ReadError::Version { found: 99, .. }) => assert!(e.to_string().contains("version 99")),
        other => panic!("wrong-version region: {:?}", other.err()),
    }
    assert!(matches!(mutate(32, 9), Err(ReadError::BadHeader { .. })), "unknown level");
    assert!(matches!(mutate(40, 0), Err(ReadError::BadHeader { .. })), "unknown clock");
    assert!(matches!(mutate(48, 0), Err(ReadError::BadHeader { .. })), "0 checkpoints");
    assert!(matches!(mutate(48, 1 << 40), Err(ReadError::BadHeader { .. })), "huge checkpoint count");
    assert!(matches!(mutate(56, 17), Err(ReadError::BadHeader { .. })), "capacity not a power of two");
    assert!(matches!(mutate(56, 1 << 30), Err(ReadError::BadHeader { .. })), "capacity beyond the mapping");
    assert!(matches!(mutate(88, 8), Err(ReadError::BadHeader { .. })), "rings offset pointing into the header");
    assert!(matches!(mutate(16, u64::MAX), Err(ReadError::TooSmall { .. })), "claims to be larger than it is");
    // A name with a bad length.
    let g = Geometry::new(Level::Normal, 3, 16).unwrap();
    let mut b = good.clone();
    b[g.name_offset(1) as usize] = 200;
    assert!(matches!(region_from_bytes(&b), Err(ReadError::BadHeader { .. })));
}

#[test]
fn hostile_write_positions_never_cause_out_of_bounds_reads() {
    let g = Geometry::new(Level::Full, 2, 16).unwrap();
    let mut b = craft(Level::Full, 2, 16);
    let wp = g.line_offset(0) as usize + 8;
    // Far beyond the ring but possible (a million calls): counted as overrun, nothing read
    // outside the ring.
    b[wp..wp + 8].copy_from_slice(&(1u64 << 20).to_le_bytes());
    let r = region_from_bytes(&b).unwrap();
    let mut d = Drain::new(&r);
    let mut n = 0;
    d.drain(&r, |_, _| n += 1).unwrap();
    let c = d.counts()[0];
    // Every sample but the last ring-full is overrun; the ring's zeroed entries carry wrong laps.
    assert_eq!(c.accounted(), 1 << 20);
    assert_eq!(c.overrun, (1 << 20) - 16);
    assert_eq!(n, 0);
}

#[test]
fn impossible_call_counts_are_errors_not_numbers() {
    // 1.8e19 calls: more than any process could make since boot.
    for level in [Level::Lite, Level::Normal] {
        let g = Geometry::new(level, 2, 16).unwrap();
        let mut b = craft(level, 2, 16);
        let wp = g.line_offset(1) as usize + 8;
        b[wp..wp + 8].copy_from_slice(&(u64::MAX - 7).to_le_bytes());
        let r = region_from_bytes(&b).unwrap();
        match Drain::new(&r).drain(&r, |_, _| {}) {
            Err(e @ ReadError::Implausible { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("checkpoint 1 (c1)") && msg.contains("18446744073709551608 calls"), "{msg}");
            }
            other => panic!("{level:?}: a count of 1.8e19 drained as {other:?}"),
        }
        assert!(matches!(r.aggregates(1), Err(ReadError::Implausible { .. })), "{level:?}");
        assert!(r.aggregates(0).is_ok(), "the other checkpoint is fine");
    }
}

#[test]
fn impossible_durations_are_errors() {
    let g = Geometry::new(Level::Normal, 1, 16).unwrap();
    let mut b = craft(Level::Normal, 1, 16);
    let l = g.line_offset(0) as usize;
    b[l + 8..l + 16].copy_from_slice(&1u64.to_le_bytes()); // write_pos
    b[l + 32..l + 40].copy_from_slice(&(DURATION_MAX + 1).to_le_bytes()); // max
    let r = region_from_bytes(&b).unwrap();
    assert!(matches!(r.aggregates(0), Err(ReadError::Implausible { .. })));
}

#[test]
fn impossible_tick_frequencies_are_errors() {
    let off = std::mem::offset_of!(layout::Header, init_freq_hz);
    for hz in [0u64, 999, u64::MAX] {
        let mut b = craft(Level::Normal, 1, 16);
        b[off..off + 8].copy_from_slice(&hz.to_le_bytes());
        let r = region_from_bytes(&b).unwrap();
        match r.freq_hz() {
            Err(e @ ReadError::Implausible { .. }) => assert!(e.to_string().contains("tick frequency"), "{e}"),
            other => panic!("frequency {hz} read as {other:?}"),
        }
    }
    let mut b = craft(Level::Normal, 1, 16);
    b[off..off + 8].copy_from_slice(&2_596_122_000u64.to_le_bytes());
    assert_eq!(region_from_bytes(&b).unwrap().freq_hz().unwrap(), 2_596_122_000.0);
}

#[test]
fn hostile_checkpoint_names_are_refused_like_the_writer_refuses_them() {
    let g = Geometry::new(Level::Normal, 2, 16).unwrap();
    let with_name = |i: u64, name: &[u8]| {
        let mut b = craft(Level::Normal, 2, 16);
        let o = g.name_offset(i) as usize;
        b[o] = name.len() as u8;
        b[o + 1..o + 1 + name.len()].copy_from_slice(name);
        region_from_bytes(&b)
    };
    let cases: [&[u8]; 6] = [
        b"\x1b[2J\x1b[Hall good", // clears the screen
        b"ok\nPASS parse -0.0%",  // forges a report line
        b"tab\tname",
        b"bell\x07",
        "rtl\u{202E}evil".as_bytes(), // prints reversed
        "zero\u{200B}width".as_bytes(),
    ];
    for name in cases {
        match with_name(0, name) {
            Err(e @ ReadError::BadHeader { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("checkpoint 0's name") && !msg.contains('\x1b') && !msg.contains('\n'), "{msg:?}");
                // The writer refuses the same name.
                let s = String::from_utf8(name.to_vec()).unwrap();
                assert!(funcscope::layout::name_problem(&s).is_some());
            }
            other => {
                panic!("name {:?} accepted: {:?}", String::from_utf8_lossy(name), other.map(|r| r.info().names.clone()))
            }
        }
    }
    // A duplicate: both checkpoints called "c0" (before: merged silently by name downstream).
    match with_name(1, b"c0") {
        Err(e @ ReadError::BadHeader { .. }) => assert!(e.to_string().contains("same name"), "{e}"),
        other => panic!("duplicate names accepted: {:?}", other.map(|r| r.info().names.clone())),
    }
    // The writer refuses invisible characters too.
    let w = Builder::new(Level::Normal).checkpoints(&["a\u{202E}b"]).init();
    assert!(matches!(w, Err(Error::CheckpointName { index: 0, .. })));
}

#[test]
fn unsealed_regions_are_refused_unless_accepted() {
    let bytes = craft(Level::Normal, 1, 16);
    // Before the fix this was mapped: a writer truncating it afterwards killed the reader.
    match Region::from_fd(memfd_with(&bytes, false)) {
        Err(e @ ReadError::Unsealed) => assert!(e.to_string().contains("SIGBUS"), "{e}"),
        other => panic!("an unsealed region was accepted: {:?}", other.map(|r| r.info().clone())),
    }
    let r = Region::from_fd_with(memfd_with(&bytes, false), Unsealed::Accept).unwrap();
    assert!(!r.info().sealed);
    // A sealed one cannot be shrunk under the reader at all.
    let fd = memfd_with(&bytes, true);
    let r = Region::from_fd(fd.try_clone().unwrap()).unwrap();
    assert!(r.info().sealed);
    let f = std::fs::File::from(fd);
    assert_eq!(f.set_len(0).unwrap_err().raw_os_error(), Some(libc::EPERM));
    assert_eq!(r.aggregates(0).unwrap().count, 0, "still readable");
}
