//! The harness against a hostile writer: a real process that speaks the attach protocol but
//! hands over a region it crafted by hand (this test binary re-executed, `FUNCSCOPE_HOSTILE`
//! selecting the forgery). `funcscope run` must fail with exit 3 and say what is wrong, never
//! print the forged numbers or names.

use std::io::{Read, Write};
use std::mem::offset_of;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::time::Duration;

use funcscope::attach::{status, Hello, Reply};
use funcscope::layout::{self, CheckpointLine, ClockKind, Geometry, Header, Level};

#[allow(dead_code)] // the scenario builder is not needed here
mod common;
use common::text;

const HOSTILE_ENV: &str = "FUNCSCOPE_HOSTILE";

/// A valid Normal region with two checkpoints, with the forgery `kind` applied.
fn craft(kind: &str) -> Vec<u8> {
    let g = Geometry::new(Level::Normal, 2, 16).unwrap();
    let size = g.used_size.div_ceil(4096) * 4096;
    let mut b = vec![0u8; size as usize];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(offset_of!(Header, magic), layout::MAGIC);
    put(offset_of!(Header, version_and_header_size), layout::ABI_VERSION as u64 | (layout::HEADER_SIZE as u64) << 32);
    put(offset_of!(Header, region_size), size);
    put(offset_of!(Header, pid), std::process::id() as u64);
    put(offset_of!(Header, level), Level::Normal as u64);
    put(offset_of!(Header, clock), ClockKind::Tsc as u64);
    put(offset_of!(Header, num_checkpoints), 2);
    put(offset_of!(Header, ring_capacity), g.ring_capacity);
    put(offset_of!(Header, names_offset), g.names_offset);
    put(offset_of!(Header, lines_offset), g.lines_offset);
    put(offset_of!(Header, hist_offset), g.hist_offset);
    put(offset_of!(Header, rings_offset), g.rings_offset);
    put(offset_of!(Header, init_freq_hz), if kind == "freq0" { 0 } else { 2_000_000_000 });
    // The program has already finished: the harness drains once and reads the aggregates.
    put(offset_of!(Header, exit_flag), 1);
    for i in 0..2 {
        let l = g.line_offset(i) as usize;
        put(l + offset_of!(CheckpointLine, min), u64::MAX);
    }
    if kind == "calls" {
        // 1.8e19 calls in a run.
        put(g.line_offset(0) as usize + offset_of!(CheckpointLine, write_pos), u64::MAX - 7);
    }
    for i in 0..2u64 {
        let name: &[u8] = match (kind, i) {
            ("name", 1) => b"ok\x1b[2J\nPASS all",
            ("dup", 1) => b"parse",
            (_, 0) => b"parse",
            _ => b"emit",
        };
        let o = g.name_offset(i) as usize;
        b[o] = name.len() as u8;
        b[o + 1..o + 1 + name.len()].copy_from_slice(name);
    }
    b
}

/// The hostile program: serve one crafted, sealed region to the first reader, then wait for it
/// to leave.
#[test]
fn hostile_writer() {
    let Ok(kind) = std::env::var(HOSTILE_ENV) else { return };
    let dir = std::env::var_os(funcscope::env::SOCKET_DIR).expect("run under the harness");
    let bytes = craft(&kind);
    let fd: OwnedFd = nix::sys::memfd::memfd_create(
        c"hostile",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .unwrap();
    let mut f = std::fs::File::from(fd);
    f.write_all(&bytes).unwrap();
    let seals = nix::fcntl::SealFlag::F_SEAL_SHRINK | nix::fcntl::SealFlag::F_SEAL_GROW;
    nix::fcntl::fcntl(f.as_fd(), nix::fcntl::FcntlArg::F_ADD_SEALS(seals)).unwrap();
    let path = std::path::Path::new(&dir).join(format!("{}.sock", std::process::id()));
    let l = UnixListener::bind(&path).unwrap();
    let (mut conn, _) = l.accept().unwrap();
    let mut hello = [0u8; Hello::SIZE];
    conn.read_exact(&mut hello).unwrap();
    let reply = Reply {
        abi_version: layout::ABI_VERSION,
        status: status::OK,
        writer_pid: std::process::id(),
        holder_pid: 0,
        region_size: bytes.len() as u64,
    }
    .to_bytes();
    let fds = [f.as_raw_fd()];
    nix::sys::socket::sendmsg::<()>(
        conn.as_raw_fd(),
        &[std::io::IoSlice::new(&reply)],
        &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .unwrap();
    // Stay until the reader is done (it closes the connection), at most a few seconds.
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = conn.read(&mut [0u8; 1]);
}

#[test]
fn forged_regions_fail_the_run_with_a_reason_not_numbers() {
    if std::env::var_os(HOSTILE_ENV).is_some() {
        return;
    }
    let me = std::env::current_exe().unwrap();
    for (kind, expect) in [
        ("calls", "claims 18446744073709551608 calls"),
        ("freq0", "tick frequency 0 Hz"),
        ("name", "checkpoint 1's name"),
        ("dup", "same name"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_funcscope"))
            .args(["run", "--attach-timeout", "10", "--"])
            .arg(&me)
            .args(["--exact", "hostile_writer", "--nocapture", "--test-threads=1"])
            .env(HOSTILE_ENV, kind)
            .output()
            .unwrap();
        let all = text(&out);
        assert_eq!(out.status.code(), Some(3), "{kind}: {all}");
        assert!(all.contains(expect), "{kind}: expected {expect:?} in {all}");
        // Nothing forged reaches the terminal raw.
        assert!(!out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b), "{kind}: an ESC byte was printed: {all}");
        // The forged count appears only inside the error that rejects it, never as a result.
        let reported = all.lines().filter(|l| l.contains("18446744073709551608") && !l.contains("implausible"));
        assert_eq!(reported.count(), 0, "{kind}: the forged count was reported: {all}");
    }
}
