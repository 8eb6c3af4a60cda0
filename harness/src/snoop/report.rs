//! Per-function statistics of paired calls and their text report: count, mean, min, max, p50,
//! p99, and a log2 histogram printed the way bcc's `funclatency` prints it.

use std::io::{self, Write};

use super::pair::{Call, PairStats};

/// Significant digits of the quantile histogram: p50/p99 within 0.1 %; count, sum, min and max
/// are kept exactly beside it.
const SIGFIGS: u8 = 3;

/// The calls of one function.
#[derive(Clone, Debug)]
pub struct FuncStats {
    /// The name shown (the target's readable name).
    pub name: String,
    /// The target as given.
    pub spec: String,
    /// Paired calls.
    pub count: u64,
    /// Sum of durations, ns.
    pub sum_ns: u128,
    /// Shortest call, ns (0 when count is 0).
    pub min_ns: u64,
    /// Longest call, ns.
    pub max_ns: u64,
    /// `log2[u][i]`: calls with `64 - leading_zeros(duration) == i` (bcc's `bpf_log2l` slots),
    /// the duration in ns (`u` = 0), us (1) or ms (2), so each unit's histogram is exact.
    pub log2: [[u64; 65]; 3],
    /// The first paired call (arguments and return value as captured).
    pub first: Option<Call>,
    /// The slowest call.
    pub slowest: Option<Call>,
    /// Slow calls, when asked for ([`FuncStats::with_slow`]).
    pub slow: Option<SlowCalls>,
    quantiles: hdrhistogram::Histogram<u64>,
}

impl FuncStats {
    /// No calls yet.
    pub fn new(name: &str, spec: &str) -> FuncStats {
        FuncStats {
            name: name.to_owned(),
            spec: spec.to_owned(),
            count: 0,
            sum_ns: 0,
            min_ns: 0,
            max_ns: 0,
            log2: [[0; 65]; 3],
            first: None,
            slowest: None,
            slow: None,
            quantiles: hdrhistogram::Histogram::new(SIGFIGS).expect("3 significant figures are valid"),
        }
    }

    /// Adds one call.
    pub fn add(&mut self, c: &Call) {
        let d = c.duration_ns;
        self.min_ns = if self.count == 0 { d } else { self.min_ns.min(d) };
        self.max_ns = self.max_ns.max(d);
        self.count += 1;
        self.sum_ns += u128::from(d);
        for (u, div) in [1, 1_000, 1_000_000].into_iter().enumerate() {
            self.log2[u][(64 - (d / div).leading_zeros()) as usize] += 1;
        }
        // An auto-resizing histogram takes any u64.
        let _ = self.quantiles.record(d);
        if self.first.is_none() {
            self.first = Some(*c);
        }
        if self.slowest.is_none_or(|s| d > s.duration_ns) {
            self.slowest = Some(*c);
        }
        if let Some(s) = self.slow.as_mut() {
            s.add(c);
        }
    }

    /// Also records slow calls (`None`: no).
    pub fn with_slow(mut self, o: Option<SlowOptions>) -> FuncStats {
        self.slow = o.map(SlowCalls::new);
        self
    }

    /// Mean duration, ns (0 without calls).
    pub fn mean_ns(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.count as f64
        }
    }

    /// The `q` quantile, ns (0 without calls).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.quantiles.value_at_quantile(q)
        }
    }
}

/// What counts as a slow call and how many to keep (`--slow-us`, `--slow-keep`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowOptions {
    /// Calls at least this long are slow, ns.
    pub threshold_ns: u64,
    /// The slowest this many slow calls are kept per function, with time, tid, args and return.
    pub keep: usize,
}

/// The slow calls of one function: how many, and the slowest few in full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlowCalls {
    /// The options.
    pub opts: SlowOptions,
    /// Calls at or above the threshold.
    pub count: u64,
    /// The slowest of them, slowest first, at most `opts.keep` (ties: the earlier call first).
    pub slowest: Vec<Call>,
}

impl SlowCalls {
    /// None yet.
    pub fn new(opts: SlowOptions) -> SlowCalls {
        SlowCalls { opts, count: 0, slowest: Vec::new() }
    }

    /// Counts `c` if it is slow, and keeps it if it is among the slowest. Time: O(keep).
    pub fn add(&mut self, c: &Call) {
        if c.duration_ns < self.opts.threshold_ns {
            return;
        }
        self.count += 1;
        if self.opts.keep == 0 {
            return;
        }
        if self.slowest.len() == self.opts.keep && self.slowest.last().is_some_and(|l| l.duration_ns >= c.duration_ns) {
            return;
        }
        let at = self.slowest.partition_point(|s| s.duration_ns >= c.duration_ns);
        self.slowest.insert(at, *c);
        self.slowest.truncate(self.opts.keep);
    }
}

/// Everything a snoop session measured.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Per target, in command-line order.
    pub funcs: Vec<FuncStats>,
    /// What could not be paired.
    pub pairing: PairStats,
    /// Calls still open at the end (entered, never returned while traced).
    pub open_calls: usize,
    /// Traced time, s.
    pub elapsed_s: f64,
    /// When tracing started, ns of CLOCK_MONOTONIC (the calls' `start_ns` clock).
    pub started_ns: u64,
}

/// `ns` for people: `812 ns`, `3.20 us`, `15.0 ms`, `2.10 s` (snoop's and events' reports).
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Writes the final report: one table line per function, then each histogram.
pub fn render(s: &Summary, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "Traced {:.2} s.", s.elapsed_s)?;
    writeln!(
        w,
        "{:<32} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "function", "count", "mean", "min", "p50", "p99", "max"
    )?;
    for f in &s.funcs {
        writeln!(
            w,
            "{:<32} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11}",
            f.name,
            f.count,
            fmt_ns(f.mean_ns()),
            fmt_ns(f.min_ns as f64),
            fmt_ns(f.quantile_ns(0.5) as f64),
            fmt_ns(f.quantile_ns(0.99) as f64),
            fmt_ns(f.max_ns as f64)
        )?;
    }
    let p = &s.pairing;
    if p.lost_records > 0 || p.gap_dropped > 0 {
        writeln!(
            w,
            "LOST: {} records in {} reports; {} calls spanning a gap dropped (never mis-paired).",
            p.lost_records, p.loss_reports, p.gap_dropped
        )?;
    }
    if p.unmatched_returns > 0 || p.unreturned > 0 || s.open_calls > 0 {
        writeln!(
            w,
            "Unpaired: {} returns without entry, {} entries without return, {} calls still open at the end.",
            p.unmatched_returns, p.unreturned, s.open_calls
        )?;
    }
    write_slow(s, w)?;
    for f in &s.funcs {
        if f.count == 0 {
            continue;
        }
        writeln!(w)?;
        writeln!(w, "Function = {} [{}]", f.name, f.spec)?;
        write_log2(f, w)?;
        writeln!(w, "avg = {:.0} nsecs, total: {} nsecs, count: {}", f.mean_ns(), f.sum_ns, f.count)?;
    }
    Ok(())
}

/// Per function with slow calls: how many, then the slowest, one line each.
fn write_slow(s: &Summary, w: &mut dyn Write) -> io::Result<()> {
    for f in &s.funcs {
        let Some(slow) = &f.slow else { continue };
        if slow.count == 0 {
            continue;
        }
        writeln!(
            w,
            "Slow calls of {}: {} at or above {} ({:.2}% of {} calls); slowest:",
            f.name,
            slow.count,
            fmt_ns(slow.opts.threshold_ns as f64),
            100.0 * slow.count as f64 / f.count.max(1) as f64,
            f.count
        )?;
        for c in &slow.slowest {
            let args: Vec<String> = c.args.iter().map(|a| format!("{a:#x}")).collect();
            writeln!(
                w,
                "  {:>11}  at +{:.6} s  tid {}  args ({})  ret {:#x}",
                fmt_ns(c.duration_ns as f64),
                c.start_ns.saturating_sub(s.started_ns) as f64 / 1e9,
                c.tid,
                args.join(", "),
                c.ret
            )?;
        }
    }
    Ok(())
}

/// The histogram in the unit that keeps its rows short: nsecs below 100 us, usecs below
/// 100 ms, else msecs (funclatency's `-u` / `-m`), with bcc's row format and star scaling; leading
/// empty rows are left out.
fn write_log2(f: &FuncStats, w: &mut dyn Write) -> io::Result<()> {
    let (label, unit) = if f.max_ns < 100_000 {
        ("nsecs", 0)
    } else if f.max_ns < 100_000_000 {
        ("usecs", 1)
    } else {
        ("msecs", 2)
    };
    write_log2_rows(&f.log2[unit], label, w)
}

/// bcc's `print_log2_hist`, with leading empty rows stripped.
fn write_log2_rows(vals: &[u64; 65], label: &str, w: &mut dyn Write) -> io::Result<()> {
    let idx_max = vals.iter().rposition(|&v| v > 0).unwrap_or(0);
    let val_max = vals.iter().copied().max().unwrap_or(0);
    if idx_max == 0 {
        return Ok(());
    }
    let wide = idx_max > 32;
    let width: u64 = if wide { 20 } else { 40 };
    if wide {
        writeln!(w, "               {label:<29} : count     distribution")?;
    } else {
        writeln!(w, "     {label:<19} : count     distribution")?;
    }
    let mut leading = true;
    for (i, &val) in vals.iter().enumerate().take(idx_max + 1).skip(1) {
        if leading && val == 0 {
            continue;
        }
        leading = false;
        let mut low = (1u64 << i) >> 1;
        let high = if i == 64 { u64::MAX } else { (1u64 << i) - 1 };
        if low == high {
            low -= 1;
        }
        // bcc: a star per i while i < val * width / val_max - 1 and i < width - 1, so the
        // largest row has width - 1 stars and a space.
        let x = val as f64 * width as f64 / val_max as f64 - 1.0;
        let stars = if x <= 0.0 { 0 } else { (x.ceil() as u64).min(width - 1) } as usize;
        let bar = format!("{}{}", "*".repeat(stars), " ".repeat(width as usize - stars));
        if wide {
            writeln!(w, "{low:>20} -> {high:<20} : {val:<8} |{bar}|")?;
        } else {
            writeln!(w, "{low:>10} -> {high:<10} : {val:<8} |{bar}|")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(d: u64) -> Call {
        Call { func: 0, pid: 1, tid: 1, start_ns: 0, duration_ns: d, args: [0; 6], ret: 0 }
    }

    #[test]
    fn stats_are_exact_where_they_can_be() {
        let mut f = FuncStats::new("f", "bin:f");
        for d in [100, 200, 300, 400, 10_000] {
            f.add(&call(d));
        }
        assert_eq!((f.count, f.min_ns, f.max_ns, f.sum_ns), (5, 100, 10_000, 11_000));
        assert_eq!(f.mean_ns(), 2200.0);
        assert_eq!(f.quantile_ns(0.5), 300);
        assert_eq!(f.slowest.unwrap().duration_ns, 10_000);
        // 100 -> slot 7 (64..127), 200 -> 8, 300 and 400 -> 9, 10000 -> 14.
        assert_eq!((f.log2[0][7], f.log2[0][8], f.log2[0][9], f.log2[0][14]), (1, 1, 2, 1));
        assert_eq!((f.log2[1][0], f.log2[1][4]), (4, 1));
    }

    #[test]
    fn slow_calls_are_counted_and_the_slowest_kept_in_order() {
        let mut f = FuncStats::new("f", "bin:f").with_slow(Some(SlowOptions { threshold_ns: 1000, keep: 2 }));
        for (i, d) in [500, 1000, 3000, 999, 2000, 5000, 3000].into_iter().enumerate() {
            f.add(&Call { start_ns: i as u64, ..call(d) });
        }
        let s = f.slow.as_ref().unwrap();
        assert_eq!(s.count, 5, "1000, 3000, 2000, 5000, 3000");
        let kept: Vec<(u64, u64)> = s.slowest.iter().map(|c| (c.duration_ns, c.start_ns)).collect();
        assert_eq!(kept, vec![(5000, 5), (3000, 2)], "the earlier of two equal calls stays");
        let summary =
            Summary { funcs: vec![f], pairing: Default::default(), open_calls: 0, elapsed_s: 1.0, started_ns: 0 };
        let mut out = Vec::new();
        render(&summary, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Slow calls of f: 5 at or above 1.00 us (71.43% of 7 calls); slowest:"), "{text}");
        assert!(
            text.contains("5.00 us  at +0.000000 s  tid 1  args (0x0, 0x0, 0x0, 0x0, 0x0, 0x0)  ret 0x0"),
            "{text}"
        );
    }

    #[test]
    fn the_histogram_is_printed_like_funclatency() {
        let mut f = FuncStats::new("f", "bin:f");
        for _ in 0..4 {
            f.add(&call(300));
        }
        f.add(&call(1000));
        let mut out = Vec::new();
        write_log2(&f, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let expected = "     nsecs               : count     distribution\n\
        \x20      256 -> 511        : 4        |*************************************** |\n\
        \x20      512 -> 1023       : 1        |*********                               |\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn long_calls_switch_to_microseconds() {
        let mut f = FuncStats::new("f", "bin:f");
        f.add(&call(5_000_000));
        let mut out = Vec::new();
        write_log2(&f, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("     usecs"), "{text}");
        // 5 ms = 5000 us: slot 4096 -> 8191.
        assert!(text.contains("4096 -> 8191"), "{text}");
    }
}
