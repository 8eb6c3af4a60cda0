//! Two real processes: this test binary re-executes itself as an instrumented child
//! (`FUNCSCOPE_TEST_CHILD` selects the workload), attaches over the Unix socket, drains while the
//! child runs and after it exits, and checks exact counts: read + lost == written.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use funcscope::reader::{attach, AttachError, Drain, ReadError};
use funcscope::{AttachStatus, Backing, Builder, Level};

const CHILD_ENV: &str = "FUNCSCOPE_TEST_CHILD";

fn temp_socket_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("funcscope-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn spawn_child(workload: &str, dir: &Path, calls: u64, capacity: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{workload}:{calls}:{capacity}"))
        .env(funcscope::env::SOCKET_DIR, dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn child")
}

fn wait_for_socket(dir: &Path, pid: u32) -> PathBuf {
    let p = dir.join(format!("{pid}.sock"));
    let t0 = Instant::now();
    while !p.exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "child never created {}", p.display());
        std::thread::sleep(Duration::from_millis(2));
    }
    p
}

/// The child's side. Not a test of its own: without the env var it returns at once.
#[test]
fn child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let mut it = spec.split(':');
    let workload = it.next().unwrap().to_owned();
    let calls: u64 = it.next().unwrap().parse().unwrap();
    let capacity: u64 = it.next().unwrap().parse().unwrap();
    let mut b = Builder::new(Level::Normal).checkpoints(&["known", "timed"]).ring_capacity(capacity);
    if workload == "truncate" {
        // A tmpfs file: it cannot be sealed, so its writer can shrink it under a reader.
        b = b.backing(Backing::TmpfsFile(std::env::temp_dir()));
    }
    let mut s = b.init().unwrap();
    // Wait for the reader so the whole run is observed.
    let t0 = Instant::now();
    while s.poll_attach().unwrap() != AttachStatus::Attached {
        assert!(t0.elapsed() < Duration::from_secs(20), "no reader attached");
        std::thread::sleep(Duration::from_millis(1));
    }
    if workload == "truncate" {
        // Give the reader time to map it, then shrink the file to nothing: a reader that
        // mapped it dies of SIGBUS at its next access.
        std::thread::sleep(Duration::from_millis(300));
        let fd = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .find(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().contains(".region")))
            .expect("the region's fd");
        let f = std::fs::OpenOptions::new().write(true).open(fd.path()).unwrap();
        f.set_len(0).unwrap();
        // The writer must not touch its region any more either (it would fault too): wait
        // for the reader to try, then leave without the session's cleanup.
        std::thread::sleep(Duration::from_millis(500));
        std::mem::forget(s);
        return;
    }
    for i in 0..calls {
        // Known values: the reader checks each sample equals its index + 1.
        funcscope::record_ticks(0, i + 1);
        funcscope::enter!(1);
        std::hint::black_box(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        funcscope::exit!(1);
        if workload == "paced" && i % 1000 == 999 {
            std::thread::sleep(Duration::from_millis(1));
            let _ = s.poll_attach();
        }
    }
    s.cleanup();
}

fn run_two_process(workload: &str, calls: u64, capacity: u64) -> (Vec<funcscope::reader::DrainCounts>, u64) {
    let dir = temp_socket_dir(workload);
    let mut child = spawn_child(workload, &dir, calls, capacity);
    let sock = wait_for_socket(&dir, child.id());
    let att = attach(&sock, Duration::from_secs(20)).expect("attach");
    let region = &att.region;
    assert_eq!(region.info().pid, child.id());
    assert_eq!(region.info().names, ["known", "timed"]);
    let mut drain = Drain::new(region);
    let mut next_known = vec![];
    let mut drains_while_running = 0;
    let mut check = |drain: &mut Drain| {
        drain
            .drain(region, |cp, s| {
                if cp == 0 {
                    assert_eq!(s.ticks, s.index + 1, "sample {} of `known` is corrupt", s.index);
                    next_known.push(s.index);
                }
            })
            .unwrap()
    };
    let t0 = Instant::now();
    while !region.exited() {
        check(&mut drain);
        drains_while_running += 1;
        assert!(t0.elapsed() < Duration::from_secs(60), "child never exited");
        std::thread::sleep(Duration::from_micros(200));
    }
    check(&mut drain); // after the exit flag: everything left
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
    // Indices of `known` delivered are strictly increasing (in order, no duplicates).
    assert!(next_known.windows(2).all(|w| w[0] < w[1]));
    for cp in 0..2 {
        let agg = region.aggregates(cp).unwrap();
        assert_eq!(agg.count, calls, "checkpoint {cp} count");
        assert_eq!(drain.counts()[cp].accounted(), calls, "read + lost == written for checkpoint {cp}");
    }
    let known = region.aggregates(0).unwrap();
    assert_eq!(known.sum, calls * (calls + 1) / 2);
    assert_eq!(known.min, Some(1));
    assert_eq!(known.max, calls);
    let hz = region.freq_hz().unwrap();
    assert!(hz > 1e6, "frequency {hz}");
    let _ = std::fs::remove_dir_all(&dir);
    (drain.counts().to_vec(), drains_while_running)
}

#[test]
fn drains_a_running_child_exactly() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    // Paced writer, ring larger than the run: nothing may be lost, every value exact.
    let (counts, drains) = run_two_process("paced", 20_000, 1 << 15);
    assert!(drains > 1, "the reader drained while the child ran");
    assert_eq!(counts[0].read, 20_000);
    assert_eq!(counts[0].lost(), 0);
}

#[test]
fn overrun_is_counted_not_hidden() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    // A full-speed writer into a 16-entry ring: most samples are lost, and every one is counted.
    let (counts, _) = run_two_process("fast", 200_000, 16);
    assert!(counts[0].lost() > 0, "a 16-entry ring cannot hold 200k calls: {:?}", counts[0]);
    assert!(counts[0].read >= 16, "at least the last ring-full is read after exit");
}

#[test]
fn never_attaching_program_times_out_clearly() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    // A listener that never polls: bind the socket ourselves and never accept.
    let dir = temp_socket_dir("silent");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("1.sock");
    let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let err = match attach(&path, Duration::from_millis(200)) {
        Err(e) => e,
        Ok(_) => panic!("attach to a silent socket succeeded"),
    };
    assert!(err.to_string().contains("poll_attach"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn writer_truncating_an_unsealed_region_cannot_kill_the_reader() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = temp_socket_dir("truncate");
    let mut child = spawn_child("truncate", &dir, 10, 16);
    let sock = wait_for_socket(&dir, child.id());
    match attach(&sock, Duration::from_secs(20)) {
        Err(AttachError::Region(ReadError::Unsealed)) => {}
        Err(e) => panic!("expected the unsealed region to be refused, got: {e}"),
        Ok(att) => {
            // Before the fix: mapped, and the child's truncation killed this process (SIGBUS).
            let mut drain = Drain::new(&att.region);
            while child.try_wait().unwrap().is_none() {
                let _ = drain.drain(&att.region, |_, _| {});
                std::thread::sleep(Duration::from_millis(5));
            }
            panic!("an unsealed region was mapped");
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "the child truncated its region and exited: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}
