//! Support for the `prefork` scenario: a parent that spawns N worker processes, each measured on
//! its own (one `funcscope::init`, one `<pid>.sock`), as nginx/haproxy-style servers run.
//!
//! What lives here is what the binary needs beyond the [`Scenario`](crate::Scenario) support and
//! what can be unit-tested: the command line ([`parse`]: the prefork flags, split from the
//! ordinary scenario flags that are passed to every worker), the response stream from a worker
//! to the parent ([`FrameWriter`], [`count_frames`]: length-prefixed frames, batched) and the
//! worker's summary line ([`summary_iterations`]).

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use crate::args::{self, ArgsError, Parsed};

/// Workers when `--workers` is not given.
pub const DEFAULT_WORKERS: u32 = 2;

/// Most workers accepted: each one holds a 1 Mi-entry ring per checkpoint (16 MiB).
pub const MAX_WORKERS: u32 = 64;

/// Exit code of the worker that `--fail-worker` makes fail.
pub const FAIL_EXIT_CODE: i32 = 7;

/// Bytes of responses a worker batches before one `write` to the parent.
pub const BATCH_BYTES: usize = 64 * 1024;

/// Which process this is and what it was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The parent (no `--worker`): spawns the workers, is not instrumented itself.
    Parent {
        /// Workers to spawn (`--workers`, 1..=[`MAX_WORKERS`]).
        workers: u32,
        /// Where to write the per-worker and total iteration counts (`--totals-file`).
        totals_file: Option<PathBuf>,
    },
    /// A worker (`--worker K`, passed by the parent; K counts from 0).
    Worker {
        /// Its index.
        index: u32,
    },
}

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreforkArgs {
    /// Parent or worker.
    pub role: Role,
    /// `--fail-worker K`: worker K exits with [`FAIL_EXIT_CODE`] mid-run, without cleanup.
    pub fail_worker: Option<u32>,
    /// The ordinary scenario arguments (`--duration-ms`, `--iterations`, `--seed`), validated.
    pub common: args::Args,
    /// The same, as given: the parent passes them on to each worker unchanged.
    pub passthrough: Vec<String>,
}

/// What [`parse`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParsedPrefork {
    /// Run with these arguments.
    Run(PreforkArgs),
    /// `-h` / `--help`: print [`usage`] and exit 0.
    Help,
}

/// Why the arguments were rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreforkError {
    /// One of the ordinary scenario arguments is wrong.
    Common(ArgsError),
    /// A prefork flag came last, without its value.
    MissingValue(&'static str),
    /// A prefork flag's value is not a number in range.
    BadNumber {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
    },
    /// `--fail-worker K` with K not below the number of workers.
    NoSuchWorker(u32),
}

impl fmt::Display for PreforkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreforkError::Common(e) => e.fmt(f),
            PreforkError::MissingValue(flag) => write!(f, "{flag} needs a value"),
            PreforkError::BadNumber { flag, value } => write!(f, "{flag}: {value:?} is not a valid number here"),
            PreforkError::NoSuchWorker(k) => write!(f, "--fail-worker {k}: there is no such worker"),
        }
    }
}

impl std::error::Error for PreforkError {}

/// The usage text.
pub fn usage(prog: &str) -> String {
    format!(
        "{}\nprefork:\n\
         \x20 --workers N       worker processes to spawn (default {DEFAULT_WORKERS}, at most {MAX_WORKERS})\n\
         \x20 --fail-worker K   worker K (from 0) exits with code {FAIL_EXIT_CODE} mid-run (for testing)\n\
         \x20 --totals-file P   write each worker's iteration count and the total to P\n\
         \x20 --worker K        internal: run as worker K (the parent passes it)",
        args::usage(prog)
    )
}

/// Parses the arguments after the program name: the prefork flags here, the rest by
/// [`args::parse`]. Both `--flag N` and `--flag=N` are accepted.
pub fn parse<I, S>(argv: I) -> Result<ParsedPrefork, PreforkError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut workers = DEFAULT_WORKERS;
    let mut worker = None;
    let mut fail_worker = None;
    let mut totals_file = None;
    let mut passthrough = Vec::new();
    let mut it = argv.into_iter().map(|a| a.as_ref().to_owned());
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let flag: &'static str = match name.as_str() {
            "--workers" => "--workers",
            "--worker" => "--worker",
            "--fail-worker" => "--fail-worker",
            "--totals-file" => "--totals-file",
            _ => {
                passthrough.push(arg);
                continue;
            }
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or(PreforkError::MissingValue(flag))?,
        };
        if flag == "--totals-file" {
            totals_file = Some(PathBuf::from(value));
            continue;
        }
        let n: u32 = value.parse().map_err(|_| PreforkError::BadNumber { flag, value: value.clone() })?;
        match flag {
            "--workers" if (1..=MAX_WORKERS).contains(&n) => workers = n,
            "--workers" => return Err(PreforkError::BadNumber { flag, value }),
            "--worker" => worker = Some(n),
            _ => fail_worker = Some(n),
        }
    }
    let common = match args::parse(&passthrough).map_err(PreforkError::Common)? {
        Parsed::Run(a) => a,
        Parsed::Help => return Ok(ParsedPrefork::Help),
    };
    let role = match worker {
        Some(index) => Role::Worker { index },
        None => {
            if let Some(k) = fail_worker.filter(|&k| k >= workers) {
                return Err(PreforkError::NoSuchWorker(k));
            }
            Role::Parent { workers, totals_file }
        }
    };
    Ok(ParsedPrefork::Run(PreforkArgs { role, fail_worker, common, passthrough }))
}

/// Batches length-prefixed frames (a little-endian `u32` length, then the bytes) and writes them
/// to `W` in chunks of about [`BATCH_BYTES`]: one `write` per ~100 responses rather than one each,
/// as a worker with a full output buffer would.
#[derive(Debug)]
pub struct FrameWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    frames: u64,
}

impl<W: Write> FrameWriter<W> {
    /// A writer on `out`.
    pub fn new(out: W) -> FrameWriter<W> {
        FrameWriter { out, buf: Vec::with_capacity(2 * BATCH_BYTES), frames: 0 }
    }

    /// Queues one frame; writes the batch once it reaches [`BATCH_BYTES`].
    ///
    /// # Errors
    /// The write's error (e.g. a broken pipe once the parent is gone).
    pub fn push(&mut self, frame: &[u8]) -> io::Result<()> {
        let len =
            u32::try_from(frame.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame > 4 GiB"))?;
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(frame);
        self.frames += 1;
        if self.buf.len() >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes whatever is queued.
    ///
    /// # Errors
    /// The write's error.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flushes and returns the inner writer.
    ///
    /// # Errors
    /// The write's error.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }
}

/// Reads frames written by a [`FrameWriter`] until end of stream; returns (frames, payload bytes).
///
/// # Errors
/// A read error, or a stream that ends inside a frame ([`io::ErrorKind::UnexpectedEof`]).
pub fn count_frames(r: impl Read) -> io::Result<(u64, u64)> {
    let mut r = BufReader::with_capacity(BATCH_BYTES, r);
    let (mut frames, mut bytes) = (0u64, 0u64);
    loop {
        if r.fill_buf()?.is_empty() {
            return Ok((frames, bytes));
        }
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let len = u64::from(u32::from_le_bytes(len));
        let skipped = io::copy(&mut (&mut r).take(len), &mut io::sink())?;
        if skipped != len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ends inside a frame"));
        }
        frames += 1;
        bytes += len;
    }
}

/// The iteration count in a [`run_loop`](crate::run_loop) summary line
/// (`<name>: iterations=N elapsed_ms=T checksum=X`), if `line` is one.
pub fn summary_iterations(line: &str) -> Option<u64> {
    line.split_whitespace().find_map(|w| w.strip_prefix("iterations=")).and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(a: &[&str]) -> PreforkArgs {
        match parse(a).unwrap() {
            ParsedPrefork::Run(p) => p,
            ParsedPrefork::Help => panic!("unexpected help"),
        }
    }

    #[test]
    fn parent_defaults_and_passthrough() {
        let p = run(&["--duration-ms", "300", "--seed=7"]);
        assert_eq!(p.role, Role::Parent { workers: DEFAULT_WORKERS, totals_file: None });
        assert_eq!(p.passthrough, ["--duration-ms", "300", "--seed=7"]);
        assert_eq!(p.common.seed, 7);
        assert_eq!(p.fail_worker, None);
    }

    #[test]
    fn prefork_flags_both_forms() {
        let p = run(&["--workers=3", "--fail-worker", "1", "--totals-file", "/tmp/t", "--iterations", "5"]);
        assert_eq!(p.role, Role::Parent { workers: 3, totals_file: Some("/tmp/t".into()) });
        assert_eq!(p.fail_worker, Some(1));
        assert_eq!(p.passthrough, ["--iterations", "5"]);
        let w = run(&["--worker", "2", "--fail-worker", "2"]);
        assert_eq!(w.role, Role::Worker { index: 2 });
    }

    #[test]
    fn errors() {
        assert_eq!(parse(["--workers", "0"]), Err(PreforkError::BadNumber { flag: "--workers", value: "0".into() }));
        assert_eq!(parse(["--workers"]), Err(PreforkError::MissingValue("--workers")));
        assert_eq!(parse(["--fail-worker", "2"]), Err(PreforkError::NoSuchWorker(2)));
        assert_eq!(parse(["--bogus"]), Err(PreforkError::Common(ArgsError::Unknown("--bogus".into()))));
        assert_eq!(parse(["--help"]), Ok(ParsedPrefork::Help));
    }

    #[test]
    fn frames_round_trip_across_batches() {
        let mut w = FrameWriter::new(Vec::new());
        let big = vec![b'x'; BATCH_BYTES / 3];
        for i in 0..10usize {
            w.push(&big[..i * 1000]).unwrap();
        }
        w.push(b"").unwrap();
        assert_eq!(w.frames(), 11);
        let bytes = w.finish().unwrap();
        assert_eq!(count_frames(&bytes[..]).unwrap(), (11, 45_000));
        assert_eq!(count_frames(&bytes[..bytes.len() - 1]).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(count_frames(&[][..]).unwrap(), (0, 0));
    }

    #[test]
    fn summary_line() {
        assert_eq!(summary_iterations("prefork: iterations=123 elapsed_ms=1.0 checksum=00ff"), Some(123));
        assert_eq!(summary_iterations("calib: something"), None);
    }
}
