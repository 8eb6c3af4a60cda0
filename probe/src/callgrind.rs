//! Instruction counts per checkpoint under callgrind: the probe's side.
//!
//! When a program runs under `valgrind --tool=callgrind` and the harness asked for it (the
//! environment variable [`crate::env::CALLGRIND`] is `1`), ENTER and EXIT do not read the tick
//! counter: each one asks callgrind to dump its counters with a label, `enter:<idx>` or
//! `exit:<idx>` (the client request `CALLGRIND_DUMP_STATS_AT`). Every dump holds the events
//! (instructions, and cache misses with `--cache-sim=yes`) executed since the previous dump, so the
//! harness (`funcscope_harness::callgrind`) recovers the instructions between a checkpoint's ENTER
//! and its EXIT, nested checkpoints included, by summing the parts in between.
//!
//! At `init` the probe starts callgrind's instrumentation (the harness runs it with
//! `--instr-atstart=no`: every dump walks every instrumented block, so leaving the program's
//! start-up uninstrumented makes dumps cheaper) and dumps one part per checkpoint labelled `funcscope:cp:<idx>:<name>`,
//! so the harness learns the names (it does not attach in this mode) and can tell a program whose
//! probe started but never reached a checkpoint from one that never started the probe.
//!
//! # The decision is made once
//! [`mode`] runs the `RUNNING_ON_VALGRIND` client request and reads the environment once, at
//! `init`. In callgrind mode the published session has no recordable checkpoints, so ENTER and EXIT
//! take the out-of-range branch they already had (a cold, never-inlined call) and issue the dump
//! there: the time path executes exactly the instructions it did before (the `hot_path` bench
//! shows it).
//!
//! # Supported architectures
//! The client-request sequence is inline assembly copied from valgrind's `valgrind.h` (3.19):
//! x86_64 (`rol` of `rdi` by 3, 13, 61, 51, which leaves it unchanged, then `xchg rbx, rbx`;
//! argument block address in `rax`, result in `rdx`) and aarch64 (`ror` of `x12` by 3, 13, 51, 61,
//! then `orr x10, x10, x10`; block in `x4`, result in `x3`). Natively these are ordinary
//! instructions that leave every register as it was and return the default (0). On any other
//! architecture [`supported`] is false, [`running_on_valgrind`] returns 0 and the probe never
//! enters callgrind mode; the harness reports "unsupported".

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// Whether this build can issue valgrind client requests (x86_64 and aarch64).
pub const fn supported() -> bool {
    cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
}

/// `VG_USERREQ__RUNNING_ON_VALGRIND` (valgrind.h).
const RUNNING_ON_VALGRIND: u64 = 0x1001;
/// `VG_USERREQ_TOOL_BASE('C','T')`: callgrind's request base (callgrind.h).
const CALLGRIND_BASE: u64 = (b'C' as u64) << 24 | (b'T' as u64) << 16;
/// `VG_USERREQ__DUMP_STATS_AT`: dump with a label (a NUL-terminated string).
const DUMP_STATS_AT: u64 = CALLGRIND_BASE + 3;
/// `VG_USERREQ__START_INSTRUMENTATION`: full instrumentation from here (the harness may start
/// callgrind with `--instr-atstart=no`, so that what runs before `init` is not instrumented).
const START_INSTRUMENTATION: u64 = CALLGRIND_BASE + 4;

/// Issues one client request; returns `default` when not running under valgrind.
#[inline(always)]
fn client_request(default: u64, request: u64, arg1: u64) -> u64 {
    let args: [u64; 6] = [request, arg1, 0, 0, 0, 0];
    #[cfg(target_arch = "x86_64")]
    {
        let mut result = default;
        // SAFETY: the sequence is valgrind's documented "special instruction" preamble. Natively
        // the four rotations of rdi add up to 128 bits (rdi is unchanged) and `xchg rbx, rbx` is a
        // no-op, so the only effects are on the flags (not preserved: no `preserves_flags`) and
        // rdx, declared as the in/out operand. Under valgrind the core reads the six words at rax
        // (a live, initialised array on our stack: `args` outlives the asm) and writes rdx; a dump
        // request also reads the label string arg1 points to, which the caller keeps alive and
        // NUL-terminated. Memory is not written by the sequence itself, hence `readonly`.
        unsafe {
            core::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") result,
                options(nostack, readonly),
            );
        }
        result
    }
    #[cfg(target_arch = "aarch64")]
    {
        let mut result = default;
        // SAFETY: valgrind's aarch64 preamble: four rotations of x12 adding up to 128 bits (x12
        // unchanged) and `orr x10, x10, x10` (a no-op) natively; the request block address is in
        // x4 and the result in x3 (the in/out operand). Under valgrind the core reads the six
        // words of `args` (alive on our stack for the whole asm) and the label the caller keeps
        // alive; nothing is written to memory by the sequence.
        unsafe {
            core::arch::asm!(
                "ror x12, x12, #3",
                "ror x12, x12, #13",
                "ror x12, x12, #51",
                "ror x12, x12, #61",
                "orr x10, x10, x10",
                in("x4") args.as_ptr(),
                inout("x3") result,
                options(nostack, readonly),
            );
        }
        result
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (request, arg1, args);
        default
    }
}

/// How many valgrinds deep this process runs (0 natively, and always 0 on an unsupported
/// architecture): the `RUNNING_ON_VALGRIND` client request.
pub fn running_on_valgrind() -> u64 {
    client_request(0, RUNNING_ON_VALGRIND, 0)
}

/// The probe's measurement mode, decided once per process at `init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// ENTER/EXIT read the tick counter and record durations (the normal path).
    Time,
    /// ENTER/EXIT dump callgrind's counters with `enter:<idx>` / `exit:<idx>` labels.
    Callgrind,
}

/// 0 = not decided yet, 1 = time, 2 = callgrind.
static MODE: AtomicU8 = AtomicU8::new(0);

/// The mode for this process: callgrind when [`crate::env::CALLGRIND`] is `1` and the process runs
/// under valgrind on a supported architecture, time otherwise. Decided on the first call and cached.
pub fn mode() -> Mode {
    match MODE.load(Relaxed) {
        1 => Mode::Time,
        2 => Mode::Callgrind,
        _ => {
            let asked = std::env::var_os(crate::env::CALLGRIND).is_some_and(|v| v == "1");
            let m = if asked && supported() && running_on_valgrind() > 0 { Mode::Callgrind } else { Mode::Time };
            MODE.store(if m == Mode::Callgrind { 2 } else { 1 }, Relaxed);
            m
        }
    }
}

/// Longest label: "funcscope:cp:" + a 3-digit index + ":" + a 63-byte name + NUL fits.
const LABEL_MAX: usize = 96;

/// Asks callgrind to dump its counters, labelled `label` (truncated to fit the stack buffer).
fn dump_at(parts: &[&[u8]]) {
    let mut buf = [0u8; LABEL_MAX];
    let mut n = 0;
    for p in parts {
        for &b in *p {
            if n + 1 < LABEL_MAX {
                buf[n] = b;
                n += 1;
            }
        }
    }
    // buf[n] is 0: the label is NUL-terminated, and buf lives until the request returns.
    client_request(0, DUMP_STATS_AT, buf.as_ptr() as u64);
}

/// Decimal digits of `v` into `out`, returning the used tail.
fn decimal(mut v: usize, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &out[i..];
        }
    }
}

/// ENTER of checkpoint `idx` in callgrind mode: dump labelled `enter:<idx>`.
#[cold]
#[inline(never)]
pub(crate) fn enter(idx: usize) {
    let mut d = [0u8; 20];
    dump_at(&[b"enter:", decimal(idx, &mut d)]);
}

/// EXIT of checkpoint `idx` in callgrind mode: dump labelled `exit:<idx>`.
#[cold]
#[inline(never)]
pub(crate) fn exit(idx: usize) {
    let mut d = [0u8; 20];
    dump_at(&[b"exit:", decimal(idx, &mut d)]);
}

/// Announces the checkpoint names at `init`: one dump `funcscope:cp:<idx>:<name>` each.
pub(crate) fn announce(names: &[String]) {
    client_request(0, START_INSTRUMENTATION, 0);
    for (i, name) in names.iter().enumerate() {
        let mut d = [0u8; 20];
        dump_at(&[b"funcscope:cp:", decimal(i, &mut d), b":", name.as_bytes()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natively_not_on_valgrind_and_requests_are_harmless() {
        // The test runner itself does not run under valgrind: the request returns its default,
        // and a dump request is a sequence of no-ops.
        if supported() {
            assert_eq!(running_on_valgrind(), 0);
        }
        enter(3);
        exit(3);
        assert_eq!(client_request(7, RUNNING_ON_VALGRIND, 0), 7);
        assert_eq!(mode(), Mode::Time, "the test runner is not under valgrind");
    }

    #[test]
    fn decimal_digits() {
        let mut d = [0u8; 20];
        assert_eq!(decimal(0, &mut d), b"0");
        assert_eq!(decimal(127, &mut d), b"127");
        assert_eq!(decimal(usize::MAX, &mut d), usize::MAX.to_string().as_bytes());
    }
}
