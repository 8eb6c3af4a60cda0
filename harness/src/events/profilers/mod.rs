//! The profilers: each a small type implementing [`super::Profiler`], perf-prof's hooks
//! (`init`, `filter`, `sample`, `interval`, `deinit`). Adding one is one file here.
//!
//! * [`trace::Trace`]: every event with its fields (and stacks), as text or JSON lines.
//! * [`multi_trace::MultiTrace`]: latency from one event group to the next, by key.
//! * [`top::Top`]: per-key counts and field sums, at an interval.

pub mod heatmap;
pub mod multi_trace;
pub mod top;
pub mod trace;

use std::io::{self, Write};

/// Latency statistics of one event pair: count, min, max, sum, mean, variance (Welford, so
/// no precision is lost to a huge sum of squares) and a log2 histogram in ns.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyStats {
    /// Pairs.
    pub count: u64,
    /// Smallest latency, ns (0 when `count` is 0).
    pub min_ns: u64,
    /// Largest latency, ns.
    pub max_ns: u64,
    /// Sum of latencies, ns.
    pub sum_ns: u128,
    mean: f64,
    m2: f64,
    /// `log2[i]`: latencies with `64 - leading_zeros(ns) == i` (bcc's slots: [2^(i-1), 2^i)).
    pub log2: [u64; 65],
}

impl Default for LatencyStats {
    fn default() -> Self {
        LatencyStats { count: 0, min_ns: 0, max_ns: 0, sum_ns: 0, mean: 0.0, m2: 0.0, log2: [0; 65] }
    }
}

impl LatencyStats {
    /// Adds one latency.
    pub fn add(&mut self, ns: u64) {
        self.min_ns = if self.count == 0 { ns } else { self.min_ns.min(ns) };
        self.max_ns = self.max_ns.max(ns);
        self.count += 1;
        self.sum_ns += ns as u128;
        let d = ns as f64 - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (ns as f64 - self.mean);
        self.log2[(64 - ns.leading_zeros()) as usize] += 1;
    }

    /// Mean, ns (0 when empty).
    pub fn mean_ns(&self) -> f64 {
        self.mean
    }

    /// Sample variance, ns² (0 below two pairs).
    pub fn variance_ns2(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            self.m2 / (self.count - 1) as f64
        }
    }

    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let hist: Vec<serde_json::Value> = self
            .log2
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| serde_json::json!({"from_ns": if i == 0 { 0 } else { 1u64 << (i - 1) }, "to_ns": if i == 0 { 1 } else if i == 64 { u64::MAX } else { 1u64 << i }, "count": n}))
            .collect();
        serde_json::json!({
            "count": self.count, "min_ns": self.min_ns, "max_ns": self.max_ns, "sum_ns": self.sum_ns as f64,
            "mean_ns": self.mean, "variance_ns2": self.variance_ns2(), "log2_hist": hist,
        })
    }

    /// The histogram, bcc style, leading and trailing empty rows stripped.
    pub fn write_histogram(&self, w: &mut dyn Write) -> io::Result<()> {
        let Some(first) = self.log2.iter().position(|&n| n > 0) else { return Ok(()) };
        let last = self.log2.iter().rposition(|&n| n > 0).unwrap_or(first);
        let max = self.log2.iter().copied().max().unwrap_or(1).max(1);
        writeln!(w, "     {:>20} : {:<8} |{:<40}|", "nsecs", "count", "distribution")?;
        for i in first..=last {
            let (lo, hi) = if i == 0 { (0, 0) } else { (1u64 << (i - 1), (1u64 << (i - 1)).saturating_mul(2) - 1) };
            let bar = "*".repeat((self.log2[i] * 40 / max) as usize);
            writeln!(w, "     {:>9} -> {:<9} : {:<8} |{:<40}|", lo, hi, self.log2[i], bar)?;
        }
        Ok(())
    }
}

/// `ns` for people: `812 ns`, `3.20 us`, `15.0 ms`, `2.10 s` (one formatter with snoop's report).
pub use crate::snoop::report::fmt_ns as human_ns;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_stats_match_hand_computed_values() {
        let mut s = LatencyStats::default();
        for ns in [1u64, 2, 3, 4, 1000] {
            s.add(ns);
        }
        assert_eq!((s.count, s.min_ns, s.max_ns, s.sum_ns), (5, 1, 1000, 1010));
        assert!((s.mean_ns() - 202.0).abs() < 1e-9);
        // Sample variance of [1,2,3,4,1000]: (40401+40000+39601+39204+636804)/4 = 199002.5.
        assert!((s.variance_ns2() - 199_002.5).abs() < 1e-6, "{}", s.variance_ns2());
        // Slots: 1 -> 1, 2,3 -> 2, 4 -> 3, 1000 -> 10.
        assert_eq!((s.log2[1], s.log2[2], s.log2[3], s.log2[10]), (1, 2, 1, 1));
        let mut out = Vec::new();
        s.write_histogram(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("       512 -> 1023      : 1 "), "{text}");
        assert_eq!(LatencyStats::default().variance_ns2(), 0.0);
    }
}
