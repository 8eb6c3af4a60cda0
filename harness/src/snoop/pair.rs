//! Pairing entries with returns, per thread, with a per-thread stack. Pure: no I/O.
//!
//! Events must arrive in time order per thread (the caller merges the per-CPU rings by time).
//! An entry pushes a frame on its thread's stack; a return of function `f` pairs with the
//! nearest frame of `f` from the top, so recursion and nesting pair right. Frames above it were
//! never returned from (a `longjmp`, an exception, a thread that exited in the middle): they are
//! discarded and counted as [`PairStats::unreturned`].
//!
//! **Losses never mis-pair.** When the kernel reports lost records, every frame open at that
//! moment, on every thread, is *poisoned* (the lost records may have been any thread's entries or
//! returns). A return that reaches a poisoned frame drops it and counts a call that spanned a gap
//! ([`PairStats::gap_dropped`]); a return with no frame (its entry was lost, or came before the
//! tracing started) counts [`PairStats::unmatched_returns`]. Frames pushed after the loss pair
//! normally: no record between them and their return was lost, or a later loss poisons them.

use std::collections::HashMap;

/// The integer arguments captured at entry (first six, in calling-convention order).
pub type Args = [u64; 6];

/// One paired call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// Index of the function among the targets.
    pub func: usize,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Entry time, ns of CLOCK_MONOTONIC.
    pub start_ns: u64,
    /// Return time minus entry time, ns.
    pub duration_ns: u64,
    /// First six integer arguments (0 where not captured).
    pub args: Args,
    /// The return value register (0 where not captured).
    pub ret: u64,
}

/// What the pairer could not pair, and why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairStats {
    /// Calls whose entry was before a loss and whose return after it: dropped.
    pub gap_dropped: u64,
    /// Returns with no open frame of their function (entry lost or before tracing started).
    pub unmatched_returns: u64,
    /// Frames discarded because a return of an outer call arrived first.
    pub unreturned: u64,
    /// Loss reports seen (`PERF_RECORD_LOST` records).
    pub loss_reports: u64,
    /// Records the kernel said it lost.
    pub lost_records: u64,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    func: usize,
    start_ns: u64,
    args: Args,
    poisoned: bool,
}

/// Per-thread stacks of open calls.
#[derive(Debug, Default)]
pub struct Pairer {
    stacks: HashMap<u32, Vec<Frame>>,
    /// The counters so far.
    pub stats: PairStats,
}

impl Pairer {
    /// A pairer with no open frames.
    pub fn new() -> Pairer {
        Pairer::default()
    }

    /// An entry of `func` on thread `tid` at `t_ns`.
    pub fn entry(&mut self, func: usize, tid: u32, t_ns: u64, args: Args) {
        self.stacks.entry(tid).or_default().push(Frame { func, start_ns: t_ns, args, poisoned: false });
    }

    /// A return of `func` on thread `tid` at `t_ns`; the paired call, if it pairs cleanly.
    pub fn ret(&mut self, func: usize, pid: u32, tid: u32, t_ns: u64, ret: u64) -> Option<Call> {
        let Some(stack) = self.stacks.get_mut(&tid) else {
            self.stats.unmatched_returns += 1;
            return None;
        };
        let Some(at) = stack.iter().rposition(|f| f.func == func) else {
            self.stats.unmatched_returns += 1;
            return None;
        };
        for above in stack.drain(at + 1..) {
            if above.poisoned {
                self.stats.gap_dropped += 1;
            } else {
                self.stats.unreturned += 1;
            }
        }
        let frame = stack.pop().expect("the frame found above");
        if stack.is_empty() {
            self.stacks.remove(&tid);
        }
        if frame.poisoned {
            self.stats.gap_dropped += 1;
            return None;
        }
        Some(Call {
            func,
            pid,
            tid,
            start_ns: frame.start_ns,
            duration_ns: t_ns.saturating_sub(frame.start_ns),
            args: frame.args,
            ret,
        })
    }

    /// The kernel lost `n` records: every frame open now may be missing its return, or have a
    /// lost entry of the same function above it.
    pub fn lost(&mut self, n: u64) {
        self.stats.loss_reports += 1;
        self.stats.lost_records += n;
        for f in self.stacks.values_mut().flatten() {
            f.poisoned = true;
        }
    }

    /// Calls still open (entered, not yet returned).
    pub fn open_calls(&self) -> usize {
        self.stacks.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: usize = 0;
    const G: usize = 1;

    fn durations(p: &mut Pairer, events: &[(char, usize, u64)]) -> Vec<u64> {
        let mut out = Vec::new();
        for &(kind, func, t) in events {
            match kind {
                'e' => p.entry(func, 7, t, [t; 6]),
                'r' => out.extend(p.ret(func, 1, 7, t, 0).map(|c| c.duration_ns)),
                'l' => p.lost(3),
                _ => unreachable!(),
            }
        }
        out
    }

    #[test]
    fn recursion_pairs_innermost_first() {
        let mut p = Pairer::new();
        let d =
            durations(&mut p, &[('e', F, 0), ('e', F, 10), ('e', F, 20), ('r', F, 25), ('r', F, 40), ('r', F, 100)]);
        assert_eq!(d, vec![5, 30, 100]);
        assert_eq!(p.stats, PairStats::default());
        assert_eq!(p.open_calls(), 0);
    }

    #[test]
    fn nesting_of_different_functions_pairs_by_function() {
        let mut p = Pairer::new();
        let d = durations(&mut p, &[('e', F, 0), ('e', G, 10), ('r', G, 15), ('r', F, 50)]);
        assert_eq!(d, vec![5, 50]);
    }

    #[test]
    fn threads_have_their_own_stacks() {
        let mut p = Pairer::new();
        p.entry(F, 1, 0, [0; 6]);
        p.entry(F, 2, 5, [0; 6]);
        assert_eq!(p.ret(F, 9, 1, 7, 0).unwrap().duration_ns, 7);
        assert_eq!(p.ret(F, 9, 2, 100, 0).unwrap().duration_ns, 95);
    }

    #[test]
    fn a_loss_drops_every_call_open_across_it_and_never_mispairs() {
        let mut p = Pairer::new();
        // Entries at 0 and 10; the kernel loses records (here: the inner return and a new
        // entry); after the gap two returns arrive. Neither may pair with a pre-gap entry.
        let d = durations(&mut p, &[('e', F, 0), ('e', F, 10), ('l', 0, 0), ('r', F, 60), ('r', F, 70)]);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(p.stats.gap_dropped, 2);
        assert_eq!(p.stats.lost_records, 3);
        // Calls entered after the gap pair normally.
        let d = durations(&mut p, &[('e', F, 80), ('r', F, 90)]);
        assert_eq!(d, vec![10]);
    }

    #[test]
    fn a_return_without_entry_is_counted_not_paired() {
        let mut p = Pairer::new();
        let d = durations(&mut p, &[('r', F, 5), ('e', G, 6), ('r', F, 7), ('r', G, 9)]);
        assert_eq!(d, vec![3]);
        assert_eq!(p.stats.unmatched_returns, 2);
    }

    #[test]
    fn frames_skipped_by_an_outer_return_are_counted() {
        let mut p = Pairer::new();
        // G never returns (longjmp out of it): F's return discards it.
        let d = durations(&mut p, &[('e', F, 0), ('e', G, 1), ('r', F, 10)]);
        assert_eq!(d, vec![10]);
        assert_eq!(p.stats.unreturned, 1);
    }
}
