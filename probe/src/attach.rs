//! The attach handshake over a Unix domain socket: the writer's server side and the wire format
//! both sides share.
//!
//! **API boundary** (versioned with [`crate::layout::ABI_VERSION`]). A reader connects to
//! `<socket dir>/<pid>.sock` and immediately sends a [`Hello`]. The writer notices the connection
//! the next time its main loop calls `poll_attach` (the listener is non-blocking: with nobody
//! there, the call is one failed `accept`), checks the peer's uid with `SO_PEERCRED` (same uid
//! or root only), reads the hello and answers with a [`Reply`]; when the status is `OK`, the reply
//! carries a read-only fd of the region (`SCM_RIGHTS`), opened afresh through
//! `/proc/self/fd/N` with `O_RDONLY` so the reader cannot map it writable (the session also
//! seals the memfd against writes through any new fd or mapping; see `session.rs`).
//!
//! **The program's loop never waits for a client.** Accepted connections are non-blocking and
//! their hellos are collected across calls (a small state machine in `Server`); a client that
//! connects and says nothing is turned away after [`HELLO_DEADLINE`] or when newer ones push it
//! out of the [`MAX_PENDING`] slots, at no cost to the loop. The bound per call is stated on
//! [`crate::Session::poll_attach`].
//!
//! One reader at a time: while the connection of an attached reader stays open, another gets
//! [`status::BUSY`] and the holder's pid. Readers keep their connection open while attached and
//! close it when done; a closed connection (seen by `poll(2)` as a hang-up, whatever the reader
//! sent before closing) frees the slot.

use std::collections::VecDeque;
use std::io::{IoSlice, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{getsockopt, sendmsg, sockopt, ControlMessage, MsgFlags};

use crate::layout::ABI_VERSION;
use crate::Error;

/// First word of a [`Hello`].
pub const HELLO_MAGIC: u64 = u64::from_le_bytes(*b"FSHELLO1");
/// First word of a [`Reply`].
pub const REPLY_MAGIC: u64 = u64::from_le_bytes(*b"FSREPLY1");

/// Reply status codes.
pub mod status {
    /// Attached: the region's fd comes with the reply.
    pub const OK: u32 = 0;
    /// Another reader is attached; `holder_pid` says which.
    pub const BUSY: u32 = 1;
    /// The reader speaks another ABI version; `abi_version` says which the writer speaks.
    pub const VERSION: u32 = 2;
    /// The reader's uid is neither the writer's nor root.
    pub const DENIED: u32 = 3;
    /// The hello was malformed or did not arrive in time.
    pub const PROTOCOL: u32 = 4;
}

/// Reader → writer, 16 bytes little-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The reader's ABI version.
    pub abi_version: u32,
    /// The reader's pid (for the writer's busy replies).
    pub reader_pid: u32,
}

impl Hello {
    /// Wire size in bytes.
    pub const SIZE: usize = 16;

    /// Encodes.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..8].copy_from_slice(&HELLO_MAGIC.to_le_bytes());
        b[8..12].copy_from_slice(&self.abi_version.to_le_bytes());
        b[12..16].copy_from_slice(&self.reader_pid.to_le_bytes());
        b
    }

    /// Decodes; `None` if the magic is wrong.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Option<Hello> {
        let magic = u64::from_le_bytes(b[0..8].try_into().ok()?);
        (magic == HELLO_MAGIC).then(|| Hello {
            abi_version: u32::from_le_bytes(b[8..12].try_into().unwrap_or_default()),
            reader_pid: u32::from_le_bytes(b[12..16].try_into().unwrap_or_default()),
        })
    }
}

/// Writer → reader, 32 bytes little-endian, plus the fd when `status == OK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The writer's ABI version.
    pub abi_version: u32,
    /// One of [`status`].
    pub status: u32,
    /// The writer's pid.
    pub writer_pid: u32,
    /// With [`status::BUSY`]: the attached reader's pid.
    pub holder_pid: u32,
    /// Size of the region in bytes.
    pub region_size: u64,
}

impl Reply {
    /// Wire size in bytes.
    pub const SIZE: usize = 32;

    /// Encodes.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..8].copy_from_slice(&REPLY_MAGIC.to_le_bytes());
        b[8..12].copy_from_slice(&self.abi_version.to_le_bytes());
        b[12..16].copy_from_slice(&self.status.to_le_bytes());
        b[16..20].copy_from_slice(&self.writer_pid.to_le_bytes());
        b[20..24].copy_from_slice(&self.holder_pid.to_le_bytes());
        b[24..32].copy_from_slice(&self.region_size.to_le_bytes());
        b
    }

    /// Decodes; `None` if the magic is wrong.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Option<Reply> {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let magic = u64::from_le_bytes(b[0..8].try_into().ok()?);
        (magic == REPLY_MAGIC).then(|| Reply {
            abi_version: u32_at(8),
            status: u32_at(12),
            writer_pid: u32_at(16),
            holder_pid: u32_at(20),
            region_size: u64::from_le_bytes(b[24..32].try_into().unwrap_or_default()),
        })
    }
}

/// Result of one [`crate::Session::poll_attach`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachStatus {
    /// A reader connected and received the region.
    Attached,
    /// Nobody was waiting (the common case: one failed `accept`).
    NoClient,
    /// A reader connected but was turned away (busy, wrong version, wrong uid, bad or missing
    /// hello, or it left); the program keeps running unaffected.
    Refused,
    /// A reader is connected but its hello has not arrived yet; a later call answers it (or
    /// turns it away after [`HELLO_DEADLINE`]). Nothing waited for it.
    Pending,
}

/// How long a connected reader has to deliver its hello before it is turned away. The writer
/// never waits for it: each `poll_attach` looks once, without blocking, so this is a deadline
/// across calls, not a stall. Readers send the hello right after `connect`, so normally it is
/// already queued when the connection is accepted.
pub const HELLO_DEADLINE: Duration = Duration::from_secs(2);

/// Connections accepted per `poll_attach` call. With [`MAX_PENDING`] this bounds the work of
/// one call whatever clients do (see [`crate::Session::poll_attach`]).
pub const MAX_ACCEPTS_PER_POLL: usize = 4;

/// Handshakes kept in progress at once. A new connection beyond that turns away the oldest
/// pending one, so silent clients can neither grow the writer's memory nor lock out a real
/// reader (whose hello is queued when it is accepted, and is answered in that same call).
pub const MAX_PENDING: usize = 8;

/// Where sockets go when the caller does not say: `FUNCSCOPE_SOCKET_DIR`, else
/// `$XDG_RUNTIME_DIR/funcscope`, else `<temp dir>/funcscope-<uid>`, created 0700.
pub fn default_socket_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(crate::env::SOCKET_DIR).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("funcscope");
    }
    std::env::temp_dir().join(format!("funcscope-{}", nix::unistd::geteuid()))
}

/// The socket path of process `pid` in `dir`.
pub fn socket_path(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("{pid}.sock"))
}

/// Creates `dir` (0700) if needed and checks that it is a directory owned by us that no one else
/// can write into, so nobody can plant a socket that impersonates ours.
pub(crate) fn prepare_socket_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let err = |why: String| Error::SocketDir { dir: dir.to_path_buf(), why };
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) => return Err(err(format!("cannot create it: {e}"))),
    }
    let md = std::fs::symlink_metadata(dir).map_err(|e| err(format!("cannot stat it: {e}")))?;
    if !md.is_dir() {
        return Err(err("it is not a directory (a symlink?)".into()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if md.uid() != me && me != 0 {
        return Err(err(format!("it belongs to uid {}, not to us (uid {me})", md.uid())));
    }
    if md.mode() & 0o022 != 0 && md.mode() & 0o1000 == 0 {
        return Err(err(format!("it is writable by others (mode {:o}); use a private directory", md.mode() & 0o7777)));
    }
    Ok(())
}

/// Removes sockets of processes that no longer exist (`<pid>.sock` whose pid is gone), and our
/// own pid's socket left by an earlier process that had the same pid.
pub(crate) fn remove_stale_sockets(dir: &Path, own_pid: u32) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_suffix(".sock")).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let gone = pid as u32 == own_pid
            || matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Err(nix::errno::Errno::ESRCH));
        if gone {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Binds the non-blocking listener.
///
/// The socket is bound under a hidden temporary name and renamed into place once it listens, so
/// `<pid>.sock` never exists without a listener behind it: a reader that sees the file can connect
/// (between bind and listen, a connect would be refused and look like a dead process).
pub(crate) fn listen(path: &Path) -> Result<UnixListener, Error> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let l =
        UnixListener::bind(&tmp).map_err(|e| Error::io(format!("binding the attach socket {}", tmp.display()), e))?;
    l.set_nonblocking(true).map_err(|e| Error::io("making the attach socket non-blocking", e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("moving the attach socket into place at {}", path.display()), e)
    })?;
    Ok(l)
}

/// A connection whose hello is still arriving.
struct Handshake {
    stream: UnixStream,
    hello: [u8; Hello::SIZE],
    got: usize,
    since: Instant,
}

/// The writer's side of the handshake, kept by the session: a non-blocking state machine.
///
/// Every socket the server touches is non-blocking (the listener, and each accepted connection
/// from the moment it is accepted), so no call waits for a client. One [`Server::poll`] does at
/// most [`MAX_ACCEPTS_PER_POLL`] `accept`s, one liveness `poll(2)` of the attached reader, and
/// for each of at most [`MAX_PENDING`] + [`MAX_ACCEPTS_PER_POLL`] handshakes one `getsockopt`,
/// non-blocking reads of at most the 16 hello bytes (normally one `recv`) and one
/// `send`/`sendmsg` (plus the `open` of the read-only fd when one is handed out): a few dozen
/// non-blocking syscalls, tens of microseconds, whatever clients do.
pub(crate) struct Server {
    pub(crate) listener: UnixListener,
    pub(crate) path: PathBuf,
    /// The connection of the attached reader, kept open while it is attached.
    pub(crate) reader: Option<(UnixStream, u32)>,
    /// Handshakes in progress, oldest first; at most [`MAX_PENDING`] between calls.
    pending: VecDeque<Handshake>,
}

impl Server {
    /// A server over a listener made by [`listen`].
    pub(crate) fn new(listener: UnixListener, path: PathBuf) -> Server {
        Server { listener, path, reader: None, pending: VecDeque::new() }
    }

    /// Handshakes in progress (at most [`MAX_PENDING`] between calls).
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// One non-blocking poll; see [`crate::Session::poll_attach`]. `region` is the writable fd;
    /// a read-only one is opened per attach.
    pub(crate) fn poll(&mut self, region: BorrowedFd<'_>, region_size: u64) -> Result<AttachStatus, Error> {
        let mut accepted = false;
        for _ in 0..MAX_ACCEPTS_PER_POLL {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => break,
                // The client gave up between connect and accept: nothing to answer.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(Error::io("accepting an attach connection", e)),
            };
            // An accepted socket does not inherit the listener's O_NONBLOCK. If it cannot be made
            // non-blocking, drop it rather than risk a blocking read.
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            accepted = true;
            self.pending.push_back(Handshake { stream, hello: [0; Hello::SIZE], got: 0, since: Instant::now() });
        }
        if self.pending.is_empty() {
            return Ok(if accepted { AttachStatus::Refused } else { AttachStatus::NoClient });
        }
        let now = Instant::now();
        let mut result = AttachStatus::NoClient;
        let mut note = |st: AttachStatus| {
            // Attached > Refused > Pending > NoClient.
            let rank = |s: AttachStatus| match s {
                AttachStatus::Attached => 3,
                AttachStatus::Refused => 2,
                AttachStatus::Pending => 1,
                AttachStatus::NoClient => 0,
            };
            if rank(st) > rank(result) {
                result = st;
            }
        };
        let mut waiting = VecDeque::with_capacity(self.pending.len());
        while let Some(h) = self.pending.pop_front() {
            match self.step(h, now, region, region_size)? {
                Ok(h) => {
                    note(AttachStatus::Pending);
                    waiting.push_back(h);
                }
                Err(st) => note(st),
            }
        }
        // Between calls at most MAX_PENDING wait: the oldest beyond that are turned away.
        while waiting.len() > MAX_PENDING {
            if let Some(oldest) = waiting.pop_front() {
                refuse(&oldest.stream, status::PROTOCOL, 0);
                note(AttachStatus::Refused);
            }
        }
        self.pending = waiting;
        Ok(result)
    }

    /// Advances one handshake by at most one non-blocking read and one answer: `Ok(h)` if it is
    /// still waiting for its hello, `Err(status)` once it is answered or gone.
    fn step(
        &mut self,
        mut h: Handshake,
        now: Instant,
        region: BorrowedFd<'_>,
        region_size: u64,
    ) -> Result<Result<Handshake, AttachStatus>, Error> {
        let refused = Ok(Err(AttachStatus::Refused));
        let creds = getsockopt(&h.stream, sockopt::PeerCredentials);
        let me = nix::unistd::geteuid().as_raw();
        if !matches!(&creds, Ok(c) if c.uid() == me || c.uid() == 0) {
            refuse(&h.stream, status::DENIED, 0);
            return refused;
        }
        while h.got < Hello::SIZE {
            match (&h.stream).read(&mut h.hello[h.got..]) {
                Ok(0) => return refused, // it left before saying hello
                Ok(n) => h.got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if now.saturating_duration_since(h.since) < HELLO_DEADLINE {
                        return Ok(Ok(h));
                    }
                    refuse(&h.stream, status::PROTOCOL, 0);
                    return refused;
                }
                Err(_) => return refused,
            }
        }
        let Some(hello) = Hello::from_bytes(&h.hello) else {
            refuse(&h.stream, status::PROTOCOL, 0);
            return refused;
        };
        if hello.abi_version != ABI_VERSION {
            refuse(&h.stream, status::VERSION, 0);
            return refused;
        }
        if let Some(holder) = self.live_reader() {
            refuse(&h.stream, status::BUSY, holder);
            return refused;
        }
        let ro = open_read_only(region)?;
        let bytes = reply(status::OK, 0, region_size).to_bytes();
        let iov = [IoSlice::new(&bytes)];
        let fds = [ro.as_raw_fd()];
        let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
        match sendmsg::<()>(h.stream.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], flags, None) {
            Ok(n) if n == bytes.len() => {
                self.reader = Some((h.stream, hello.reader_pid));
                Ok(Err(AttachStatus::Attached))
            }
            // A short send, or a reader that went away between connect and reply: not the
            // program's problem (a fresh socket's buffer takes 32 bytes, so this is rare).
            _ => refused,
        }
    }

    /// The pid of the attached reader if its connection is still open.
    ///
    /// Asks `poll(2)` for a hang-up with a zero timeout instead of peeking at the data: a reader
    /// that sent stray bytes and then closed would otherwise look alive forever (the peeked byte
    /// stays queued), and every later attach would be BUSY until the program restarts.
    fn live_reader(&mut self) -> Option<u32> {
        let (s, pid) = self.reader.as_ref()?;
        let mut fds = [PollFd::new(s.as_fd(), PollFlags::POLLIN)];
        let alive = match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => {
                let ev = fds[0].revents().unwrap_or(PollFlags::empty());
                !ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
            }
            Err(_) => false,
        };
        if alive {
            Some(*pid)
        } else {
            self.reader = None;
            None
        }
    }
}

/// The writer's reply with `code`.
fn reply(code: u32, holder_pid: u32, region_size: u64) -> Reply {
    Reply { abi_version: ABI_VERSION, status: code, writer_pid: std::process::id(), holder_pid, region_size }
}

/// Sends a refusal without waiting (a client that does not read it loses nothing but the
/// reason) and without SIGPIPE.
fn refuse(stream: &UnixStream, code: u32, holder_pid: u32) {
    let bytes = reply(code, holder_pid, 0).to_bytes();
    let _ = nix::sys::socket::send(stream.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT);
}

/// Opens a new read-only file description of the region, so the reader cannot map it writable.
fn open_read_only(region: BorrowedFd<'_>) -> Result<OwnedFd, Error> {
    let path = format!("/proc/self/fd/{}", region.as_fd().as_raw_fd());
    std::fs::OpenOptions::new()
        .read(true)
        .open(&path)
        .map(OwnedFd::from)
        .map_err(|e| Error::io(format!("reopening the region read-only through {path}"), e))
}
