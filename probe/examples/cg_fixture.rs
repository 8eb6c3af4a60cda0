//! A program with known work per checkpoint, for the callgrind tests (`harness/tests/callgrind.rs`).
//!
//! `cg_fixture [--calls C] [--loops N] [--inner M] [--thread-work W] [--fork]`:
//! * checkpoint `outer` (0) runs `N` steps of a dependent chain per call, `C` calls;
//! * with `--inner M`, checkpoint `inner` (1) runs `M` steps nested inside `outer`, after its own;
//! * with `--thread-work W`, inside each `outer` call a second thread runs `W` steps and is joined
//!   before EXIT (what callgrind attributes to a region while another thread works in it);
//! * with `--fork`, the work runs in a forked child that calls `init` itself (one output file
//!   per pid).
//!
//! The chain goes through `black_box`, so its instruction count is linear in its length.

use std::hint::black_box;

const OUTER: usize = 0;
const INNER: usize = 1;

#[inline(never)]
fn chain(steps: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15u64);
    for _ in 0..steps {
        x ^= x << 13;
        x ^= x >> 7;
        x = black_box(x);
    }
    x
}

fn arg(args: &[String], flag: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == flag)?;
    Some(args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        eprintln!("cg_fixture: {flag} needs a non-negative integer");
        std::process::exit(2)
    }))
}

fn work(calls: u64, loops: u64, inner: Option<u64>, thread_work: Option<u64>) -> u64 {
    let session =
        // Only the checkpoints this run reaches: one never reached is an error under callgrind.
        funcscope::Builder::new(funcscope::Level::Normal).checkpoints(if inner.is_some() { &["outer", "inner"][..] } else { &["outer"][..] }).init().unwrap_or_else(|e| {
            eprintln!("cg_fixture: funcscope init failed: {e}");
            std::process::exit(2)
        });
    let mut sink = 0u64;
    for _ in 0..calls {
        funcscope::enter!(OUTER);
        sink ^= chain(loops);
        if let Some(m) = inner {
            funcscope::enter!(INNER);
            sink ^= chain(m);
            funcscope::exit!(INNER);
        }
        if let Some(w) = thread_work {
            sink ^= std::thread::spawn(move || chain(w)).join().unwrap_or(0);
        }
        funcscope::exit!(OUTER);
    }
    session.cleanup();
    sink
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let calls = arg(&args, "--calls").unwrap_or(10);
    let loops = arg(&args, "--loops").unwrap_or(100);
    let inner = arg(&args, "--inner");
    let thread_work = arg(&args, "--thread-work");
    if args.iter().any(|a| a == "--fork") {
        // SAFETY: the process is single-threaded here; the child only runs ordinary Rust code and
        // exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let s = work(calls, loops, inner, thread_work);
            println!("cg_fixture child: {s:x}");
            std::process::exit(0);
        }
        let mut status = 0;
        // SAFETY: waiting for our own child with a valid status pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        std::process::exit(if status == 0 { 0 } else { 3 });
    }
    println!("cg_fixture: {:x}", work(calls, loops, inner, thread_work));
}
