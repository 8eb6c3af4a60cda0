//! The region a reader receives must be read-only for real: not only the fd's flags, but every
//! way back to a writable view of the same memory (reopening `/proc/self/fd/N` for writing,
//! `write(2)`, a writable shared mapping, an `mprotect` upgrade, resizing).
//!
//! Two layers protect it (see `make_read_only_for_others` in `session.rs`), and the tests say
//! which stops what:
//! * the file mode 0400 stops a non-root reader's `open(O_RDWR)` (`EACCES`), but not root, and
//!   not the owner, who may `fchmod` it back;
//! * `F_SEAL_FUTURE_WRITE` stops every write path for everyone, root included (`EPERM`), while
//!   the writer's own mapping keeps recording.
//!
//! The first test runs as whoever runs the tests (root on CI and here); the second needs root to
//! start a writer and a reader as an unprivileged uid (`nobody`), and skips with a reason
//! otherwise.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use funcscope::reader::attach;
use funcscope::{AttachStatus, Builder, Level};

const CHILD_ENV: &str = "FUNCSCOPE_RO_TEST_CHILD";
const NOBODY: u32 = 65534;

static ONE_SESSION: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    ONE_SESSION.lock().unwrap_or_else(|p| p.into_inner())
}

fn errno_of(rc: i64) -> Result<(), i32> {
    if rc < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

/// Tries `open(path, O_RDWR)`: the fd, or the errno.
fn open_rw(path: &str) -> Result<OwnedFd, i32> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| e.raw_os_error().unwrap_or(0))
}

/// Every way to write through `fd`: (`pwrite` of the byte already there, a writable shared
/// mapping, a read-only shared mapping upgraded with `mprotect`, `ftruncate`), each as the errno
/// it failed with or `Ok`.
fn write_paths(fd: &OwnedFd) -> [(&'static str, Result<(), i32>); 4] {
    let raw = fd.as_raw_fd();
    let mut byte = [0u8; 1];
    // SAFETY: reading one byte into a local buffer from an fd we hold.
    let _ = unsafe { libc::pread(raw, byte.as_mut_ptr().cast(), 1, 0) };
    // SAFETY: writing one byte from a local buffer; it is the byte already there, so even a
    // successful write (the failure this test looks for) changes nothing.
    let pwrite = errno_of(unsafe { libc::pwrite(raw, byte.as_ptr().cast(), 1, 0) } as i64);
    let map = |prot: i32| {
        // SAFETY: a fresh shared mapping of one page at a kernel-chosen address; unmapped below.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, prot, libc::MAP_SHARED, raw, 0) };
        if p == libc::MAP_FAILED {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(p)
        }
    };
    let unmap = |p: *mut libc::c_void| {
        // SAFETY: p is a one-page mapping made by `map` above, unmapped once.
        unsafe { libc::munmap(p, 4096) };
    };
    let mmap_w = map(libc::PROT_READ | libc::PROT_WRITE).map(unmap);
    let mprotect = match map(libc::PROT_READ) {
        Ok(p) => {
            // SAFETY: changing the protection of the page we just mapped; nothing writes to it.
            let r = errno_of(unsafe { libc::mprotect(p, 4096, libc::PROT_READ | libc::PROT_WRITE) } as i64);
            unmap(p);
            r
        }
        Err(e) => Err(e),
    };
    // SAFETY: ftruncate on an fd we hold; a success (the failure looked for) would shrink the
    // region, which only this test's own session uses.
    let truncate = errno_of(unsafe { libc::ftruncate(raw, 0) } as i64);
    [
        ("pwrite", pwrite),
        ("mmap(PROT_WRITE, MAP_SHARED)", mmap_w),
        ("mprotect(PROT_WRITE)", mprotect),
        ("ftruncate", truncate),
    ]
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn received_region_cannot_be_reopened_or_mapped_writable() {
    let _g = lock();
    let dir = std::env::temp_dir().join(format!("funcscope-ro-{}", std::process::id()));
    let mut s = Builder::new(Level::Normal).checkpoints(&["x"]).ring_capacity(16).socket_dir(&dir).init().unwrap();
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    let path = s.socket_path().unwrap().to_path_buf();
    let t = std::thread::spawn(move || attach(&path, Duration::from_secs(10)));
    let t0 = Instant::now();
    while s.poll_attach().unwrap() != AttachStatus::Attached {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
    let att = t.join().unwrap().unwrap();
    let info = att.region.info();
    assert!(info.sealed && info.write_sealed, "sealed {} write_sealed {}", info.sealed, info.write_sealed);
    let fd = att.region.as_fd().try_clone_to_owned().unwrap();
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    // Layer 1: the mode.
    let mode = std::fs::metadata(&proc_path).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o400, "region file mode");
    // The received fd itself is O_RDONLY: no writable shared mapping from it.
    let direct = write_paths(&fd);
    assert_eq!(direct[1].1, Err(libc::EACCES), "mmap(PROT_WRITE) of the received fd");
    // Reopening it for writing: the mode stops a non-root reader; root passes the mode check
    // (CAP_DAC_OVERRIDE), and then the seal must stop every write.
    match open_rw(&proc_path) {
        Err(e) => {
            assert!(!is_root(), "root reopened nothing? errno {e}");
            assert_eq!(e, libc::EACCES, "a non-root reader's O_RDWR reopen");
        }
        Ok(rw) => {
            assert!(is_root(), "a non-root reader reopened the region O_RDWR despite mode 0400");
            for (what, r) in write_paths(&rw) {
                assert!(r.is_err(), "as root, {what} through an O_RDWR reopen succeeded: the region is writable");
                eprintln!("root, O_RDWR reopen: {what} -> errno {}", r.unwrap_err());
            }
            let [pwrite, mmap_w, _, truncate] = write_paths(&rw);
            assert_eq!(pwrite.1, Err(libc::EPERM), "write is stopped by F_SEAL_FUTURE_WRITE");
            assert_eq!(mmap_w.1, Err(libc::EPERM), "writable mapping is stopped by F_SEAL_FUTURE_WRITE");
            assert_eq!(truncate.1, Err(libc::EPERM), "shrinking is stopped by F_SEAL_SHRINK");
        }
    }
    // The writer's own mapping still records.
    funcscope::record_ticks(0, 7);
    assert_eq!(att.region.aggregates(0).unwrap().count, 1);
    s.cleanup();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child's side (not a test of its own: without the env var it returns at once).
/// `writer:<socket dir>`: an instrumented program that keeps polling until killed.
/// `probe`: a reader's helper holding the region on stdin; prints what each attempt gave.
#[test]
fn child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    if let Some(dir) = spec.strip_prefix("writer:") {
        let mut s = Builder::new(Level::Normal).checkpoints(&["x"]).ring_capacity(16).socket_dir(dir).init().unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            let _ = s.poll_attach();
            funcscope::record_ticks(0, 1);
            std::thread::sleep(Duration::from_millis(1));
        }
        return;
    }
    let stdin = std::io::stdin().as_fd().try_clone_to_owned().unwrap();
    let path = format!("/proc/self/fd/{}", stdin.as_raw_fd());
    let show = |r: Result<(), i32>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    println!("RESULT open_rw {}", show(open_rw(&path).map(drop)));
    // The owner may give itself write permission back: the mode is only a first fence.
    let chmod = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    println!("RESULT chmod {}", show(chmod.map_err(|e| e.raw_os_error().unwrap_or(0))));
    match open_rw(&path) {
        Err(e) => println!("RESULT open_rw_after_chmod {e}"),
        Ok(rw) => {
            println!("RESULT open_rw_after_chmod ok");
            for (what, r) in write_paths(&rw) {
                println!("RESULT {} {}", what.split('(').next().unwrap_or(what), show(r));
            }
        }
    }
}

/// Copies this test binary where `nobody` can execute it (the build tree may not be reachable).
fn runnable_copy(dir: &Path) -> PathBuf {
    let exe = dir.join("readonly_region");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    exe
}

fn child(exe: &Path, spec: &str) -> Command {
    let mut c = Command::new(exe);
    c.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"]).env(CHILD_ENV, spec).uid(NOBODY).gid(NOBODY);
    c
}

#[test]
fn unprivileged_reader_of_the_writers_uid_cannot_write_even_after_chmod() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to run a writer and a reader as uid {NOBODY}");
        return;
    }
    let base = tempfile_dir("nobody");
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    // nobody must be able to reach the copy: every directory above it searchable by others.
    if let Some(closed) = base.ancestors().skip(1).find(|d| std::fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 == 0)) {
        eprintln!("SKIPPED: {} is not searchable by uid {NOBODY} (set TMPDIR elsewhere)", closed.display());
        let _ = std::fs::remove_dir_all(&base);
        return;
    }
    let exe = runnable_copy(&base);
    let sock_dir = base.join("sock");
    std::fs::create_dir(&sock_dir).unwrap();
    std::os::unix::fs::chown(&sock_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&sock_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut writer = child(&exe, &format!("writer:{}", sock_dir.display()))
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the writer as nobody");
    let sock = sock_dir.join(format!("{}.sock", writer.id()));
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "the writer never listened");
        std::thread::sleep(Duration::from_millis(5));
    }
    let att = attach(&sock, Duration::from_secs(10)).expect("root attaches to nobody's program");
    assert!(att.region.info().write_sealed);
    // The region travels to an unprivileged reader of the writer's uid as its stdin.
    let fd = att.region.as_fd().try_clone_to_owned().unwrap();
    let out = child(&exe, "probe").stdin(Stdio::from(fd)).stdout(Stdio::piped()).output().unwrap();
    let _ = writer.kill();
    let _ = writer.wait();
    let results: Vec<(String, String)> = BufReader::new(&out.stdout[..])
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| {
            // libtest may print "test child_entry ... " on the same line first.
            let mut w = l.split_once("RESULT ")?.1.split(' ');
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect();
    let get = |k: &str| results.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("missing");
    eprintln!("nobody reader: {results:?}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    let eacces = libc::EACCES.to_string();
    let eperm = libc::EPERM.to_string();
    // Layer 1 stops the plain reopen...
    assert_eq!(get("open_rw"), eacces, "mode 0400 stops the owner's O_RDWR reopen");
    // ...but the owner can undo it,
    assert_eq!(get("chmod"), "ok");
    assert_eq!(get("open_rw_after_chmod"), "ok");
    // and then the seal stops every write.
    assert_eq!(get("pwrite"), eperm);
    assert_eq!(get("mmap"), eperm);
    assert_ne!(get("mprotect"), "ok");
    assert_eq!(get("ftruncate"), eperm);
    let _ = std::fs::remove_dir_all(&base);
}

fn tempfile_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("funcscope-ro-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
