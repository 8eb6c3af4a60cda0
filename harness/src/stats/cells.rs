//! Bounded-memory per-call durations: a run's samples are counted per distinct tick value as they
//! are drained ([`TickCounts`]) instead of being kept one by one, and the grid-aware percentiles
//! are computed from those counts ([`grouped_quantile_cells`], [`RunSummary::from_grid_cells`]).
//!
//! # Design, and why
//! Keeping every sample cost ~16 bytes per call (146 MB for 9 M calls; a 60 s run of a fast
//! scenario would need ~17 GB). The grid-aware percentiles ([`super::grouped_quantile_sorted`])
//! only need each distinct value and how many calls had it, and tick counters are coarse, so a
//! run of millions of calls has a few thousand distinct values:
//! * ticks below [`DENSE_TICKS`] (6.3 us at 2.6 GHz, where every fast checkpoint lives) are
//!   counted **exactly** in an array indexed by the tick value (O(1) per sample, at most
//!   128 KiB);
//! * larger ticks go to a sorted map, also exact until it holds [`SPARSE_CELLS`] distinct values;
//!   beyond that each value is rounded to fewer significant bits (never fewer than
//!   [`MIN_SIGNIFICANT_BITS`]: a cell is then at most 1/2048 of its value wide, and it is
//!   represented by its midpoint), so the map holds at most 26 x 2048 cells for 40-bit durations.
//!
//! Count, sum, minimum and maximum are exact whatever the resolution. While nothing was rounded
//! ([`TickCounts::exact`]) the summary equals the one computed from all samples.
//!
//! Memory: at most 128 KiB + ~4 MiB per checkpoint and process, whatever the run's length.

use std::collections::BTreeMap;

use super::summary::RunSummary;
use super::StatsError;

/// Tick values below this are counted exactly in a dense array. 2^14 ticks is 6.3 us at
/// 2.6 GHz; the array grows only up to the largest value seen, at most 128 KiB.
pub const DENSE_TICKS: u64 = 1 << 14;

/// Distinct larger values kept exactly before they are rounded (64 Ki cells, ~4 MiB).
pub const SPARSE_CELLS: usize = 1 << 16;

/// Rounding never goes below this many significant bits: a cell is at most 2^-11 (0.05 %) of its
/// value wide, and its midpoint is within 0.025 % of every value in it.
pub const MIN_SIGNIFICANT_BITS: u32 = 12;

/// Per-call tick durations of one checkpoint in one process, counted per distinct value.
///
/// Invariants: `count` is the number of recorded values; `min <= max` when `count > 0`; every
/// key of `sparse` is a value rounded to `bits` significant bits.
#[derive(Clone, Debug)]
pub struct TickCounts {
    dense: Vec<u64>,
    sparse: BTreeMap<u64, u64>,
    /// Significant bits kept in `sparse`: 64 (exact) down to [`MIN_SIGNIFICANT_BITS`].
    bits: u32,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for TickCounts {
    fn default() -> TickCounts {
        TickCounts { dense: Vec::new(), sparse: BTreeMap::new(), bits: 64, count: 0, sum: 0, min: u64::MAX, max: 0 }
    }
}

/// `t` with all but its `bits` most significant bits cleared.
fn round_down(t: u64, bits: u32) -> u64 {
    let len = 64 - t.leading_zeros();
    let s = len.saturating_sub(bits);
    (t >> s) << s
}

impl TickCounts {
    /// Counts one value. Time: O(1) below [`DENSE_TICKS`], O(log cells) above.
    pub fn record(&mut self, ticks: u64) {
        self.count += 1;
        self.sum += u128::from(ticks);
        self.min = self.min.min(ticks);
        self.max = self.max.max(ticks);
        if ticks < DENSE_TICKS {
            // Below DENSE_TICKS, so the index fits in usize and the array stays <= 128 KiB.
            let i = ticks as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, 0);
            }
            self.dense[i] += 1;
            return;
        }
        *self.sparse.entry(round_down(ticks, self.bits)).or_insert(0) += 1;
        while self.sparse.len() > SPARSE_CELLS && self.bits > MIN_SIGNIFICANT_BITS {
            self.bits -= 1;
            let old = std::mem::take(&mut self.sparse);
            for (k, c) in old {
                *self.sparse.entry(round_down(k, self.bits)).or_insert(0) += c;
            }
        }
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Exact sum of the recorded values.
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// Smallest and largest recorded value, `None` when empty.
    pub fn min_max(&self) -> Option<(u64, u64)> {
        (self.count > 0).then_some((self.min, self.max))
    }

    /// Whether every value is kept exactly (nothing was rounded).
    pub fn exact(&self) -> bool {
        self.bits == 64
    }

    /// Distinct cells held (a measure of the memory used).
    pub fn cells_held(&self) -> usize {
        self.dense.iter().filter(|&&c| c > 0).count() + self.sparse.len()
    }

    /// `(value, count)` per non-empty cell, ascending by value; a rounded cell is represented by
    /// its midpoint.
    pub fn cells(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let dense = self.dense.iter().enumerate().filter(|(_, &c)| c > 0).map(|(t, &c)| (t as f64, c));
        let bits = self.bits;
        let sparse = self.sparse.iter().map(move |(&k, &c)| {
            let s = (64 - k.leading_zeros()).saturating_sub(bits);
            // The cell holds the integers [k, k + 2^s - 1]: its midpoint (k itself when exact).
            (k as f64 + ((1u64 << s) - 1) as f64 / 2.0, c)
        });
        dense.chain(sparse)
    }
}

/// [`super::grouped_quantile_sorted`] over grouped data: `cells` holds each distinct value once
/// with its count, ascending by value. Gives the same result as the slice version over the
/// expanded data.
///
/// Returns `NaN` when there is no value or `q` is not in `[0, 1]`; never panics.
///
/// Time: `O(cells)`.
pub fn grouped_quantile_cells(cells: &[(f64, u64)], q: f64) -> f64 {
    let cells: Vec<(f64, u64)> = cells.iter().copied().filter(|&(_, c)| c > 0).collect();
    let n: u64 = cells.iter().map(|&(_, c)| c).sum();
    if n == 0 || !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let t = q * n as f64;
    let (first, last) = (cells[0].0, cells[cells.len() - 1].0);
    let mut start = 0u64;
    for (i, &(v, c)) in cells.iter().enumerate() {
        let end = start + c;
        if end as f64 >= t || i + 1 == cells.len() {
            let prev = i.checked_sub(1).map(|j| cells[j].0);
            let next = cells.get(i + 1).map(|x| x.0);
            let (lo, hi) = super::summary::grid_cell(v, prev, next);
            let frac = ((t - start as f64) / c as f64).clamp(0.0, 1.0);
            return (lo + frac * (hi - lo)).clamp(first, last);
        }
        start = end;
    }
    last
}

impl RunSummary {
    /// A summary from grouped data (see [`TickCounts`]): `cells` ascending by value with their
    /// counts, and the exact `min`, `max` and `mean` of the values. Percentiles are
    /// [`grouped_quantile_cells`], clamped to `[min, max]`.
    ///
    /// # Errors
    /// [`StatsError::Empty`] if the counts sum to 0, [`StatsError::NonFinite`] for a non-finite
    /// value, [`StatsError::NotSorted`] if the cells are not ascending.
    ///
    /// Time: `O(cells)`.
    pub fn from_grid_cells(cells: &[(f64, u64)], min: f64, max: f64, mean: f64) -> Result<RunSummary, StatsError> {
        let count: u64 = cells.iter().map(|&(_, c)| c).sum();
        if count == 0 {
            return Err(StatsError::Empty { what: "samples" });
        }
        for (index, &value) in [min, max, mean].iter().chain(cells.iter().map(|(v, _)| v)).enumerate() {
            if !value.is_finite() {
                return Err(StatsError::NonFinite { what: "samples", index, value });
            }
        }
        if let Some(i) = cells.windows(2).position(|w| w[0].0 > w[1].0) {
            return Err(StatsError::NotSorted { index: i + 1 });
        }
        let (min, max) = (min.min(max), max.max(min));
        let q = |q| grouped_quantile_cells(cells, q).clamp(min, max);
        Ok(RunSummary {
            count,
            min,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max,
            mean: mean.clamp(min, max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    fn summary_of(counts: &TickCounts) -> RunSummary {
        let cells: Vec<(f64, u64)> = counts.cells().collect();
        let (lo, hi) = counts.min_max().unwrap();
        RunSummary::from_grid_cells(&cells, lo as f64, hi as f64, counts.sum() as f64 / counts.count() as f64).unwrap()
    }

    /// While nothing is rounded, the summary from counts is the summary from all samples.
    #[test]
    fn exact_counts_give_the_same_summary_as_all_samples() {
        let mut rng = SplitMix64::new(7);
        for case in 0..20 {
            let mut counts = TickCounts::default();
            let mut all = Vec::new();
            let n = 1 + case * 137;
            for _ in 0..n {
                // Grid values (steps of 26 ticks) plus a sparse tail beyond DENSE_TICKS.
                let t = if rng.next_u64() % 50 == 0 {
                    20_000 + rng.next_u64() % 5_000
                } else {
                    26 * (3 + rng.next_u64() % 8)
                };
                counts.record(t);
                all.push(t as f64);
            }
            assert!(counts.exact());
            let want = RunSummary::from_grid_samples(&mut all).unwrap();
            let got = summary_of(&counts);
            assert_eq!(got.count, want.count);
            for m in crate::stats::Metric::ALL {
                let (g, w) = (got.get(m), want.get(m));
                assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "case {case} {m}: {g} vs {w}");
            }
        }
    }

    /// Known values: 4 calls at 10, 4 at 20 (cells [5, 15] and [15, 25]): the median is the
    /// shared edge, 15; p90 is 0.8 of the way through [15, 25] = 23, clamped to the maximum, 20.
    /// The slice version agrees at every q.
    #[test]
    fn grouped_quantile_known_values() {
        let cells = [(10.0, 4), (20.0, 4)];
        assert_eq!(grouped_quantile_cells(&cells, 0.5), 15.0);
        assert!((grouped_quantile_cells(&cells, 0.9) - 20.0).abs() < 1e-12, "clamped to the largest value");
        assert!(grouped_quantile_cells(&[], 0.5).is_nan());
        assert!(grouped_quantile_cells(&cells, f64::NAN).is_nan());
        let sorted = [10.0, 10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 20.0];
        for q in [0.0, 0.1, 0.3, 0.5, 0.6, 0.9, 1.0] {
            assert_eq!(grouped_quantile_cells(&cells, q), crate::stats::grouped_quantile_sorted(&sorted, q), "q {q}");
        }
    }

    /// Memory stays bounded however many distinct values arrive, and rounding moves no
    /// percentile by more than a cell's half width (0.025 %).
    #[test]
    fn distinct_values_are_bounded_and_rounding_is_fine() {
        let mut rng = SplitMix64::new(11);
        let mut counts = TickCounts::default();
        let mut all = Vec::new();
        for _ in 0..400_000 {
            let t = DENSE_TICKS + rng.next_u64() % (1 << 30);
            counts.record(t);
            all.push(t as f64);
        }
        assert!(!counts.exact());
        assert!(counts.cells_held() <= 26 * 2048 + DENSE_TICKS as usize, "{}", counts.cells_held());
        let got = summary_of(&counts);
        let want = RunSummary::from_grid_samples(&mut all).unwrap();
        assert_eq!((got.count, got.min, got.max), (want.count, want.min, want.max));
        for m in crate::stats::Metric::ALL {
            let (g, w) = (got.get(m), want.get(m));
            assert!((g - w).abs() <= 5e-4 * w, "{m}: {g} vs {w}");
        }
    }

    #[test]
    fn bad_cells_are_errors() {
        assert!(RunSummary::from_grid_cells(&[], 0.0, 0.0, 0.0).is_err());
        assert!(RunSummary::from_grid_cells(&[(2.0, 1), (1.0, 1)], 1.0, 2.0, 1.5).is_err());
        assert!(RunSummary::from_grid_cells(&[(f64::NAN, 1)], 1.0, 2.0, 1.5).is_err());
    }
}
