//! Hostile and unlucky attach clients against a real session in this process: the program's
//! loop (`poll_attach`) must never wait for a client, and a reader that leaves must free the slot
//! whatever it sent before leaving. One session per process, so the tests take a lock.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use funcscope::attach::{status, Hello, Reply, HELLO_DEADLINE, MAX_PENDING};
use funcscope::layout::{self, Level};
use funcscope::reader::{attach, AttachError, Attachment};
use funcscope::{AttachStatus, Builder, Session};

static ONE_SESSION: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    ONE_SESSION.lock().unwrap_or_else(|p| p.into_inner())
}

/// A session whose socket directory is removed when the test ends.
struct Sess {
    s: Session,
    dir: PathBuf,
}

impl std::ops::Deref for Sess {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.s
    }
}

impl std::ops::DerefMut for Sess {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.s
    }
}

impl Drop for Sess {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn session(tag: &str) -> Sess {
    let dir: PathBuf = std::env::temp_dir().join(format!("funcscope-hostile-{}-{tag}", std::process::id()));
    let s = Builder::new(Level::Normal).checkpoints(&["x"]).ring_capacity(16).socket_dir(&dir).init().unwrap();
    Sess { s, dir }
}

/// A real `reader::attach` from a helper thread while this thread plays the program's loop.
fn attach_while_polling(s: &mut Session) -> Result<Attachment, AttachError> {
    let path = s.socket_path().unwrap().to_path_buf();
    let t = std::thread::spawn(move || attach(&path, Duration::from_secs(10)));
    let t0 = Instant::now();
    while !t.is_finished() {
        s.poll_attach().unwrap();
        assert!(t0.elapsed() < Duration::from_secs(20), "attach never finished");
        std::thread::sleep(Duration::from_millis(1));
    }
    t.join().unwrap()
}

fn hello() -> [u8; Hello::SIZE] {
    Hello { abi_version: layout::ABI_VERSION, reader_pid: std::process::id() }.to_bytes()
}

/// Reads a reply if one has arrived (the stream is non-blocking).
fn reply_of(c: &mut UnixStream) -> Option<Reply> {
    let mut b = [0u8; Reply::SIZE];
    match c.read(&mut b) {
        Ok(n) if n == Reply::SIZE => Reply::from_bytes(&b),
        _ => None,
    }
}

fn connect(p: &Path) -> UnixStream {
    UnixStream::connect(p).unwrap()
}

#[test]
fn reader_that_sends_a_byte_and_leaves_frees_the_slot() {
    let _g = lock();
    let mut s = session("byte-leave");
    let path = s.socket_path().unwrap().to_path_buf();
    // A raw reader completes the handshake (its hello is queued before the poll)...
    let mut c = connect(&path);
    c.write_all(&hello()).unwrap();
    assert_eq!(s.poll_attach().unwrap(), AttachStatus::Attached);
    // ...then sends a stray byte and disconnects: the byte stays queued on the writer's side.
    c.write_all(b"!").unwrap();
    drop(c);
    // A normal reader must now attach (before the fix: BUSY until the program restarted,
    // because a MSG_PEEK liveness check saw the stray byte forever).
    match attach_while_polling(&mut s) {
        Ok(a) => assert_eq!(a.region.info().names, ["x"]),
        Err(e) => panic!("attach after a reader sent a byte and left: {e}"),
    }
}

#[test]
fn client_that_sends_half_a_hello_and_leaves_does_not_block_the_next() {
    let _g = lock();
    let mut s = session("half-hello");
    let path = s.socket_path().unwrap().to_path_buf();
    let mut c = connect(&path);
    c.write_all(&hello()[..1]).unwrap();
    drop(c);
    assert_eq!(s.poll_attach().unwrap(), AttachStatus::Refused, "a client that left is turned away");
    assert_eq!(s.pending_attaches(), 0);
    assert!(attach_while_polling(&mut s).is_ok());
}

#[test]
fn hello_split_across_polls_is_assembled_without_waiting() {
    let _g = lock();
    let mut s = session("split");
    let path = s.socket_path().unwrap().to_path_buf();
    let mut c = connect(&path);
    c.write_all(&hello()[..5]).unwrap();
    assert_eq!(s.poll_attach().unwrap(), AttachStatus::Pending);
    assert_eq!(s.pending_attaches(), 1);
    c.write_all(&hello()[5..]).unwrap();
    assert_eq!(s.poll_attach().unwrap(), AttachStatus::Attached);
    assert_eq!(s.pending_attaches(), 0);
    let mut b = [0u8; Reply::SIZE];
    c.read_exact(&mut b).unwrap();
    assert_eq!(Reply::from_bytes(&b).unwrap().status, status::OK);
}

#[test]
fn hundred_silent_clients_do_not_stall_the_loop_and_a_real_reader_still_attaches() {
    let _g = lock();
    let mut s = session("silent");
    let path = s.socket_path().unwrap().to_path_buf();
    const SILENT: usize = 100;
    let mut silent: Vec<UnixStream> = (0..SILENT).map(|_| connect(&path)).collect();
    for c in &silent {
        c.set_nonblocking(true).unwrap();
    }
    // The state machine parks silent clients instead of waiting for them: after every call at
    // most MAX_PENDING are in progress, and every call returns without waiting. Before the fix
    // each silent client cost one 50 ms blocking read: 100 calls took ~5 s.
    let t0 = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..SILENT {
        statuses.push(s.poll_attach().unwrap());
        assert!(s.pending_attaches() <= MAX_PENDING, "{} handshakes pending", s.pending_attaches());
    }
    let took = t0.elapsed();
    eprintln!("100 poll_attach calls with {SILENT} silent clients: {took:?}");
    assert!(statuses.iter().all(|st| matches!(st, AttachStatus::Pending | AttachStatus::Refused)), "{statuses:?}");
    assert_eq!(s.pending_attaches(), MAX_PENDING, "the newest silent clients wait in the slots");
    // Generous: the work is a few dozen non-blocking syscalls per call.
    assert!(took < Duration::from_secs(1), "100 polls with 100 silent clients took {took:?}");
    // Every silent client pushed out of the slots was told why.
    let refused = silent.iter_mut().filter_map(reply_of).filter(|r| r.status == status::PROTOCOL).count();
    assert_eq!(refused, SILENT - MAX_PENDING);
    // A real reader attaches while the silent ones are still connected.
    match attach_while_polling(&mut s) {
        Ok(a) => assert_eq!(a.region.info().names, ["x"]),
        Err(e) => panic!("a real reader behind {SILENT} silent clients: {e}"),
    }
    drop(silent);
}

#[test]
fn silent_client_is_turned_away_after_the_hello_deadline() {
    let _g = lock();
    let mut s = session("deadline");
    let path = s.socket_path().unwrap().to_path_buf();
    let mut c = connect(&path);
    c.set_nonblocking(true).unwrap();
    assert_eq!(s.poll_attach().unwrap(), AttachStatus::Pending);
    // Still within the deadline: kept, not answered.
    assert_eq!(s.poll_attach().unwrap(), AttachStatus::Pending);
    assert!(reply_of(&mut c).is_none());
    std::thread::sleep(HELLO_DEADLINE + Duration::from_millis(100));
    assert_eq!(s.poll_attach().unwrap(), AttachStatus::Refused);
    assert_eq!(s.pending_attaches(), 0);
    assert_eq!(reply_of(&mut c).map(|r| r.status), Some(status::PROTOCOL));
}
