//! The tick counter: RDTSC on x86_64, CNTVCT_EL0 on aarch64, CLOCK_MONOTONIC_RAW elsewhere.
//!
//! Ticks are stored raw; converting to nanoseconds is the reader's job, from the calibration
//! pairs (ticks, CLOCK_MONOTONIC_RAW ns) the writer puts in the header at init, at every attach
//! and at cleanup, so the frequency is derived over the whole run rather than a short window.
//!
//! Why plain `rdtsc` and not `lfence; rdtsc` or `rdtscp` by default: on the reference machine the
//! fenced forms cost twice as much (37 ns vs 18 ns for a pair) and funcscope measures regions of
//! tens of nanoseconds and more, where the few cycles of reordering at the edges are part of the
//! constant floor that the header records and reports show.
//!
//! # The fenced option
//! A plain `rdtsc` at EXIT executes as soon as it enters the out-of-order window, while the
//! region's last instructions (a long dependent computation, a cache miss) may still be running:
//! that tail is not counted, and how much of it is hidden depends on the code, so a slowdown at
//! the very end of a region can be partly invisible. [`ClockKind::TscFenced`] (chosen with
//! [`ClockChoice::Fenced`] or `FUNCSCOPE_CLOCK=fenced`) reads `lfence; rdtsc` at both ENTER and
//! EXIT: at ENTER the read does not start before earlier work has completed (work before the
//! region is not counted in it), at EXIT it waits for the region's work to complete. Instructions
//! after ENTER's read may still start before it executes, which can only hide a few cycles at the
//! start of a region, never its end. The cost is one `lfence` per read (about 6 ns each on the
//! reference machine) and the pipeline drain: a pair costs about twice the plain floor, which
//! [`Session::floor_ticks`](crate::Session::floor_ticks) measures on the chosen clock. Only on
//! x86_64; elsewhere `Fenced` keeps the plain hardware counter and says so in the decision.
//!
//! The default path does not change: [`ticks`] still compares the clock with one constant and
//! reads `rdtsc` when it is below it; the fenced read sits in the branch that already held
//! `CLOCK_MONOTONIC_RAW`.

use crate::layout::ClockKind;

/// Reads the hardware counter selected at build time. Only called when the session's clock is
/// [`ClockKind::Tsc`] or [`ClockKind::Cntvct`].
#[inline(always)]
pub fn hw_ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no memory effects and is available on every x86_64 CPU; user-mode
        // access can only be disabled by CR4.TSD, which Linux does not set for normal processes.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: CNTVCT_EL0 is readable from EL0 on Linux (the kernel sets CNTKCTL_EL1.EL0VCTEN
        // for the vDSO); the asm reads one system register and touches no memory.
        unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
        v
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        mono_raw_ns()
    }
}

/// Waits until every earlier instruction has completed (`lfence` on x86_64, `isb` on aarch64).
///
/// EXIT's tick read is not ordered after the measured code: an out-of-order core executes it as
/// soon as it enters the instruction window, while a long dependent computation before it may
/// still be running. Put `wait_for_completion()` right before EXIT when the end of a region must
/// be counted to the last cycle (it costs a few ns); funcscope's planted slowdowns use it so that
/// their extra work is measured in full.
#[inline(always)]
pub fn wait_for_completion() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: LFENCE is part of SSE2, which every x86_64 CPU has; it has no memory effects.
    unsafe {
        core::arch::x86_64::_mm_lfence()
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: ISB only flushes the pipeline; it touches no memory.
    unsafe {
        core::arch::asm!("isb", options(nomem, nostack, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// `CLOCK_MONOTONIC_RAW` in nanoseconds.
#[inline]
pub fn mono_raw_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_RAW, &mut ts) };
    debug_assert_eq!(rc, 0, "CLOCK_MONOTONIC_RAW exists on every Linux since 2.6.28");
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// Reads the hardware counter after every earlier instruction has completed: `lfence; rdtsc` on
/// x86_64 (the read of [`ClockKind::TscFenced`]). Elsewhere the barrier of
/// [`wait_for_completion`] and the plain counter.
#[inline(always)]
pub fn fenced_hw_ticks() -> u64 {
    wait_for_completion();
    hw_ticks()
}

/// Reads the given clock. The branch is perfectly predicted: a session uses one clock.
///
/// [`ClockKind::Tsc`] and [`ClockKind::Cntvct`] (1 and 2) take the first branch: one compare
/// with a constant, as before there was a fenced kind. The two slower kinds (3 and up) share the
/// other.
#[inline(always)]
pub fn ticks(kind: ClockKind) -> u64 {
    if (kind as u32) < ClockKind::MonotonicRaw as u32 {
        hw_ticks()
    } else if kind == ClockKind::MonotonicRaw {
        mono_raw_ns()
    } else {
        fenced_hw_ticks()
    }
}

/// What clock to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClockChoice {
    /// The hardware counter if it can be trusted (invariant TSC and the kernel uses it as its
    /// clocksource on x86_64; always on aarch64), else `CLOCK_MONOTONIC_RAW`. Overridable with
    /// `FUNCSCOPE_CLOCK=tsc|monotonic`.
    #[default]
    Auto,
    /// The hardware counter, even if the checks fail.
    Hardware,
    /// `CLOCK_MONOTONIC_RAW`: slower (~20 ns a read) but trustworthy everywhere.
    Monotonic,
    /// As `Auto`, but on x86_64 the TSC is read fenced ([`ClockKind::TscFenced`], see the
    /// [module docs](self)): EXIT waits for the region's work to complete. Also selected by
    /// `FUNCSCOPE_CLOCK=fenced`. Where the TSC cannot be trusted this is `CLOCK_MONOTONIC_RAW`
    /// (whose vDSO read is itself ordered); on other targets the plain hardware counter.
    Fenced,
}

/// Why the hardware counter was or was not chosen; reported by the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockDecision {
    /// The clock in use.
    pub kind: ClockKind,
    /// Human-readable reason.
    pub reason: String,
}

/// Resolves a [`ClockChoice`] on this machine.
pub fn decide(choice: ClockChoice) -> ClockDecision {
    let choice = match std::env::var(crate::env::CLOCK).as_deref() {
        Ok("tsc") | Ok("hardware") => ClockChoice::Hardware,
        Ok("monotonic") => ClockChoice::Monotonic,
        Ok("fenced") | Ok("tsc-fenced") => ClockChoice::Fenced,
        _ => choice,
    };
    let hw = if cfg!(target_arch = "x86_64") {
        Some(ClockKind::Tsc)
    } else if cfg!(target_arch = "aarch64") {
        Some(ClockKind::Cntvct)
    } else {
        None
    };
    match (choice, hw) {
        (ClockChoice::Monotonic, _) | (_, None) => ClockDecision {
            kind: ClockKind::MonotonicRaw,
            reason: "CLOCK_MONOTONIC_RAW (requested or no hardware counter on this target)".into(),
        },
        (ClockChoice::Hardware, Some(k)) => ClockDecision { kind: k, reason: "hardware counter (forced)".into() },
        (ClockChoice::Auto, Some(ClockKind::Tsc)) => match tsc_trust() {
            Ok(()) => ClockDecision { kind: ClockKind::Tsc, reason: "invariant TSC, kernel clocksource is tsc".into() },
            Err(why) => ClockDecision {
                kind: ClockKind::MonotonicRaw,
                reason: format!("CLOCK_MONOTONIC_RAW because the TSC cannot be trusted: {why}"),
            },
        },
        (ClockChoice::Auto, Some(k)) => ClockDecision { kind: k, reason: "aarch64 generic timer".into() },
        (ClockChoice::Fenced, Some(ClockKind::Tsc)) => match tsc_trust() {
            Ok(()) => ClockDecision {
                kind: ClockKind::TscFenced,
                reason: "invariant TSC, kernel clocksource is tsc; read fenced (lfence; rdtsc)".into(),
            },
            Err(why) => ClockDecision {
                kind: ClockKind::MonotonicRaw,
                reason: format!("CLOCK_MONOTONIC_RAW because the TSC cannot be trusted: {why}"),
            },
        },
        (ClockChoice::Fenced, Some(k)) => ClockDecision {
            kind: k,
            reason: "aarch64 generic timer (a fenced read is implemented on x86_64 only; reading it plain)".into(),
        },
    }
}

/// Checks that the TSC is invariant (CPUID 0x80000007 EDX bit 8) and that the kernel itself
/// trusts it as its clocksource (it demotes an unstable TSC at boot or at run time).
fn tsc_trust() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        // CPUID is safe to call on x86_64 (always available, no memory effects).
        let max_ext = __cpuid(0x8000_0000).eax;
        if max_ext < 0x8000_0007 {
            return Err("CPUID leaf 0x80000007 not available".into());
        }
        let edx = __cpuid(0x8000_0007).edx;
        if edx & (1 << 8) == 0 {
            return Err("CPU does not report an invariant TSC".into());
        }
    }
    let cs = std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .map_err(|e| format!("cannot read the kernel clocksource: {e}"))?;
    if cs.trim() != "tsc" {
        return Err(format!("kernel clocksource is {:?}, not tsc", cs.trim()));
    }
    Ok(())
}

/// Reads a calibration pair: (ticks, mono ns, uncertainty ns). Takes the tightest of a few
/// attempts so a preemption between the two reads does not skew the pair.
pub fn calibration_pair(kind: ClockKind) -> (u64, u64, u64) {
    let mut best = (0, 0, u64::MAX);
    for _ in 0..5 {
        let a = mono_raw_ns();
        let t = ticks(kind);
        let b = mono_raw_ns();
        let half = b.saturating_sub(a) / 2;
        if half < best.2 {
            best = (t, a + half, half);
        }
    }
    best
}

/// Estimates the tick frequency in Hz over `window`; used once at init for the header's
/// `init_freq_hz` (readers prefer the calibration pairs, which span the whole run).
pub fn estimate_freq_hz(kind: ClockKind, window: std::time::Duration) -> u64 {
    if kind == ClockKind::MonotonicRaw {
        return 1_000_000_000;
    }
    let (t0, n0, _) = calibration_pair(kind);
    std::thread::sleep(window);
    let (t1, n1, _) = calibration_pair(kind);
    let dn = n1.saturating_sub(n0);
    if dn == 0 {
        return 0;
    }
    ((t1.wrapping_sub(t0)) as u128 * 1_000_000_000 / dn as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_read_is_the_same_counter_in_order() {
        for _ in 0..1000 {
            let a = hw_ticks();
            let b = ticks(ClockKind::TscFenced);
            let c = ticks(ClockKind::Tsc);
            assert!(a <= b && b <= c, "{a} {b} {c}");
        }
    }

    #[test]
    fn fenced_choice_never_gives_the_plain_tsc() {
        if std::env::var_os(crate::env::CLOCK).is_some() {
            return; // an override wins over the program's choice
        }
        let d = decide(ClockChoice::Fenced);
        if cfg!(target_arch = "x86_64") {
            assert!(matches!(d.kind, ClockKind::TscFenced | ClockKind::MonotonicRaw), "{d:?}");
        }
        assert_ne!(decide(ClockChoice::Auto).kind, ClockKind::TscFenced);
    }
}
