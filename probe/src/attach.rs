//! The attach handshake over a Unix domain socket: the writer's server side and the wire format
//! both sides share.
//!
//! **API boundary** (versioned with [`crate::layout::ABI_VERSION`]). A reader connects to
//! `<socket dir>/<pid>.sock` and immediately sends a [`Hello`]. The writer notices the connection
//! the next time its main loop calls `poll_attach` (the listener is non-blocking: with nobody
//! there, the call is one failed `accept`), checks the peer's uid with `SO_PEERCRED` (same uid
//! or root only), reads the hello and answers with a [`Reply`]; when the status is `OK`, the reply
//! carries a read-only fd of the region (`SCM_RIGHTS`), opened afresh through
//! `/proc/self/fd/N` with `O_RDONLY` so the reader cannot map it writable.
//!
//! One reader at a time: while the connection of an attached reader stays open, another gets
//! [`status::BUSY`] and the holder's pid. Readers keep their connection open while attached and
//! close it when done.

use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// A reader connected but was turned away (busy, wrong version, wrong uid, bad hello); the
    /// program keeps running unaffected.
    Refused,
}

/// How long the writer waits for a connected reader's hello. The reader sends it right after
/// `connect`, so it is normally already queued; this bounds the main-loop stall if a peer
/// connects and says nothing.
const HELLO_TIMEOUT: Duration = Duration::from_millis(50);

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

/// The writer's side of the handshake, kept by the session.
pub(crate) struct Server {
    pub(crate) listener: UnixListener,
    pub(crate) path: PathBuf,
    /// The connection of the attached reader, kept open while it is attached.
    pub(crate) reader: Option<(UnixStream, u32)>,
}

impl Server {
    /// One non-blocking poll; see [`crate::Session::poll_attach`]. `region` is the writable fd;
    /// a read-only one is opened per attach.
    pub(crate) fn poll(&mut self, region: BorrowedFd<'_>, region_size: u64) -> Result<AttachStatus, Error> {
        let mut stream = match self.listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(AttachStatus::NoClient),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(AttachStatus::NoClient),
            Err(e) => return Err(Error::io("accepting an attach connection", e)),
        };
        let pid = std::process::id();
        let mut reply =
            Reply { abi_version: ABI_VERSION, status: status::OK, writer_pid: pid, holder_pid: 0, region_size };
        // Blocking with a short timeout from here: the reader's hello is normally already queued.
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(HELLO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(HELLO_TIMEOUT));

        let creds = getsockopt(&stream, sockopt::PeerCredentials);
        let me = nix::unistd::geteuid().as_raw();
        let allowed = matches!(&creds, Ok(c) if c.uid() == me || c.uid() == 0);
        let mut hello_buf = [0u8; Hello::SIZE];
        let hello = stream.read_exact(&mut hello_buf).ok().and_then(|_| Hello::from_bytes(&hello_buf));

        if !allowed {
            reply.status = status::DENIED;
        } else if let Some(h) = hello {
            if h.abi_version != ABI_VERSION {
                reply.status = status::VERSION;
            } else if let Some(holder) = self.live_reader() {
                reply.status = status::BUSY;
                reply.holder_pid = holder;
            }
        } else {
            reply.status = status::PROTOCOL;
        }

        if reply.status != status::OK {
            let _ = stream.write_all(&reply.to_bytes());
            return Ok(AttachStatus::Refused);
        }
        let ro = open_read_only(region)?;
        let bytes = reply.to_bytes();
        let iov = [IoSlice::new(&bytes)];
        let fds = [ro.as_raw_fd()];
        match sendmsg::<()>(stream.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::MSG_NOSIGNAL, None)
        {
            Ok(_) => {
                self.reader = Some((stream, hello.map(|h| h.reader_pid).unwrap_or(0)));
                Ok(AttachStatus::Attached)
            }
            // The reader went away between connect and reply: not the program's problem.
            Err(_) => Ok(AttachStatus::Refused),
        }
    }

    /// The pid of the attached reader if its connection is still open.
    fn live_reader(&mut self) -> Option<u32> {
        let (s, pid) = self.reader.as_ref()?;
        let mut b = [0u8; 1];
        let _ = s.set_nonblocking(true);
        let alive = match nix::sys::socket::recv(s.as_raw_fd(), &mut b, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT) {
            Ok(0) => false,                         // orderly close
            Ok(_) => true,                          // it sent something; still there
            Err(nix::errno::Errno::EAGAIN) => true, // open, quiet
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

/// Opens a new read-only file description of the region, so the reader cannot map it writable.
fn open_read_only(region: BorrowedFd<'_>) -> Result<OwnedFd, Error> {
    let path = format!("/proc/self/fd/{}", region.as_fd().as_raw_fd());
    std::fs::OpenOptions::new()
        .read(true)
        .open(&path)
        .map(OwnedFd::from)
        .map_err(|e| Error::io(format!("reopening the region read-only through {path}"), e))
}
