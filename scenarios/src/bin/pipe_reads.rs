//! Scenario `pipe_reads`: blocking `read`s on a pipe, for gating the latency between two
//! tracepoints (`[[scenario.event_pair]]` `syscalls:sys_enter_read -> syscalls:sys_exit_read`).
//!
//! Each iteration does exactly [`READS_PER_STEP`] reads of one byte on a pipe, each inside
//! checkpoint `read`. A writer thread feeds the pipe: for each read the reader sends it a request
//! (a channel: futex calls, no `read`s, so the reader's thread is the only one whose reads are
//! traced), the writer lets the reader into its `read` first ([`std::thread::yield_now`]: on one
//! CPU the woken writer could otherwise run first and the read would find its byte already
//! there), does [`WORK`] dependent steps and writes one byte. So each `read` blocks for about the
//! writer's work plus two context switches: tens of microseconds, spent *between* the read's
//! entry and exit tracepoints.
//!
//! `FUNCSCOPE_PLANT=read=<percent>` plants the extra work in the writer, before its write, so it
//! lands inside the blocked `read` (and inside the probe's `read` checkpoint): the event pair
//! sees the slowdown, as it would see a slower peer. The program is meant for tests with their
//! own configuration; it is not in the repository's `funcscope.toml`.

#![forbid(unsafe_code)]

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;

use funcscope_scenarios::{plant, Meter, Plant, Scenario};

const READ: usize = 0;

/// Reads per iteration of the main loop.
pub const READS_PER_STEP: usize = 4;

/// Dependent xorshift steps the writer does before each write: about 20 us on this VM kind, so
/// that the pipe wait, not the syscalls' and tracepoints' own cost, is most of a read.
const WORK: u64 = 20_000;

struct PipeReads {
    rx: File,
    go: Option<Sender<u64>>,
    writer: Option<JoinHandle<()>>,
}

/// `n` dependent xorshift steps from `x`.
fn work(mut x: u64, n: u64) -> u64 {
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

impl Scenario for PipeReads {
    const NAME: &'static str = "pipe_reads";
    const CHECKPOINTS: &'static [&'static str] = &["read"];

    fn new(seed: u64) -> Self {
        let (r, w) = nix::unistd::pipe().unwrap_or_else(|e| {
            eprintln!("pipe_reads: pipe(2) failed: {e}");
            std::process::exit(2)
        });
        let (tx, requests) = mpsc::channel::<u64>();
        let mut out = File::from(w);
        let writer = std::thread::Builder::new()
            .name("pipe-writer".into())
            .spawn(move || {
                let mut x = black_box(seed) | 1;
                // One request per read; the planted chain steps come with it. Ends when the
                // reader drops its sender.
                while let Ok(planted) = requests.recv() {
                    std::thread::yield_now();
                    x = work(x, WORK);
                    if planted > 0 {
                        x ^= plant::chain(planted, x);
                    }
                    if out.write_all(&[x as u8]).is_err() {
                        break;
                    }
                }
            })
            .unwrap_or_else(|e| {
                eprintln!("pipe_reads: cannot start the writer thread: {e}");
                std::process::exit(2)
            });
        PipeReads { rx: File::from(r), go: Some(tx), writer: Some(writer) }
    }

    fn step<M: Meter>(&mut self, m: &mut M, plant: &Plant) -> u64 {
        // The planted work is done by the writer, inside the blocked read.
        let planted = plant.steps(READ).round() as u64;
        let mut sum = 0u64;
        for _ in 0..READS_PER_STEP {
            let mut b = [0u8; 1];
            m.enter(READ);
            let sent = self.go.as_ref().is_some_and(|g| g.send(planted).is_ok());
            let got = if sent { self.rx.read(&mut b).unwrap_or(0) } else { 0 };
            m.exit(READ);
            if got != 1 {
                eprintln!("pipe_reads: the writer is gone (read returned {got} bytes)");
                std::process::exit(1);
            }
            sum = sum.wrapping_mul(31).wrapping_add(u64::from(b[0]));
        }
        sum
    }
}

impl Drop for PipeReads {
    fn drop(&mut self) {
        // Dropping the sender ends the writer's loop.
        self.go = None;
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

fn main() {
    funcscope_scenarios::main::<PipeReads>();
}
