//! Per-call latency distributions for the plots: pooled sample histograms (and the probe's Deep
//! histograms) turned into the model's compact [`Ecdf`] and [`DeepHistogram`], and attached to a
//! judged report ([`attach`]). Nothing here feeds a verdict: the judge works on per-run values;
//! these only let a person see the shape behind them.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::baseline::Pooled;
use crate::model::{DeepHistogram, Ecdf, EcdfSource, ScenarioResult};
use crate::runner::{RunOutput, POOL_UNITS_PER_NS};

/// The probabilities an [`Ecdf`] keeps: every percent, plus the tails on both sides (where a
/// regression of p99 or p99.9 shows), plus the extremes. 109 points whatever the call count, so a
/// report stays small.
fn grid() -> Vec<f64> {
    let mut g = vec![0.0, 0.001, 0.002, 0.005];
    g.extend((1..100).map(|i| f64::from(i) / 100.0));
    g.extend([0.995, 0.998, 0.999, 0.9995, 1.0]);
    g
}

/// The ECDF of a pooled histogram in units of 1/[`POOL_UNITS_PER_NS`] ns; `None` if it is empty.
///
/// Time: `O(grid × buckets)`.
pub fn ecdf_of_pooled(h: &Histogram<u64>) -> Option<Ecdf> {
    if h.is_empty() {
        return None;
    }
    // Quantiles come back as the highest value equivalent to their bucket; the minimum too, so
    // that a constant sample is one step, not two a bucket apart.
    let ns = |q: f64| {
        let v = if q == 0.0 { h.highest_equivalent(h.min()) } else { h.value_at_quantile(q) };
        v as f64 / POOL_UNITS_PER_NS
    };
    let mut points: Vec<(f64, f64)> = Vec::new();
    for q in grid() {
        let v = ns(q).max(f64::MIN_POSITIVE);
        match points.last_mut() {
            // Equal values (a coarse tick grid): keep the highest fraction, so the curve steps.
            Some(last) if last.0 >= v => last.1 = last.1.max(q),
            _ => points.push((v, q)),
        }
    }
    Some(Ecdf { source: EcdfSource::Samples, calls: h.len(), points, p50: ns(0.5), p99: ns(0.99) })
}

/// The coarse outline a baseline file holds (its pooled p50, p90, p99, p99.9).
pub fn ecdf_of_baseline_quantiles(p: &Pooled) -> Ecdf {
    Ecdf {
        source: EcdfSource::BaselineQuantiles,
        calls: 0,
        points: vec![(p.p50, 0.5), (p.p90, 0.9), (p.p99, 0.99), (p.p999, 0.999)],
        p50: p.p50,
        p99: p.p99,
    }
}

/// Merges `(low ns, high ns, calls)` buckets of several runs (the same bucket bounds add up);
/// `None` if there are none.
pub fn merge_deep<'a>(runs: impl IntoIterator<Item = &'a [(f64, f64, u64)]>) -> Option<DeepHistogram> {
    let mut by_low: BTreeMap<u64, (f64, f64, u64)> = BTreeMap::new();
    for buckets in runs {
        for &(lo, hi, n) in buckets {
            if n == 0 || !(lo.is_finite() && hi.is_finite() && lo < hi) {
                continue;
            }
            by_low.entry(lo.to_bits()).or_insert((lo, hi, 0)).2 += n;
        }
    }
    let mut buckets: Vec<(f64, f64, u64)> = by_low.into_values().collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    (!buckets.is_empty()).then_some(DeepHistogram { buckets })
}

/// One arm's runs of one scenario, as [`attach`] needs them.
pub struct ArmRuns<'a> {
    /// The runs' outputs (pooled histograms, Deep histograms).
    pub runs: Vec<&'a RunOutput>,
}

impl ArmRuns<'_> {
    fn pooled(&self, cp: &str) -> Option<Ecdf> {
        let mut merged: Option<Histogram<u64>> = None;
        for r in &self.runs {
            if let Some(h) = r.pooled.get(cp) {
                match &mut merged {
                    // Both are auto-resizing histograms of the same precision: adding cannot fail
                    // short of memory, and a failure would only coarsen a plot.
                    Some(m) => {
                        let _ = m.add(h);
                    }
                    None => merged = Some(h.clone()),
                }
            }
        }
        ecdf_of_pooled(merged.as_ref()?)
    }

    fn deep(&self, cp: &str) -> Option<DeepHistogram> {
        merge_deep(self.runs.iter().filter_map(|r| r.deep.get(cp).map(Vec::as_slice)))
    }
}

/// The other side of a scenario's comparison, for [`attach`].
pub enum Side<'a> {
    /// A paired arm's runs.
    Arm(ArmRuns<'a>),
    /// A committed baseline's pooled quantiles, per checkpoint.
    Baseline(BTreeMap<String, Pooled>),
    /// Nothing to compare with.
    None,
}

/// Fills the distributions of every checkpoint of `s` from the current arm's runs and the other
/// side. Per-run values (set by the judge) are kept.
pub fn attach(s: &mut ScenarioResult, current: &ArmRuns<'_>, base: &Side<'_>) {
    for c in &mut s.checkpoints {
        let d = &mut c.distributions;
        d.current = current.pooled(&c.name);
        d.current_deep = current.deep(&c.name);
        match base {
            Side::Arm(a) => {
                d.baseline = a.pooled(&c.name);
                d.baseline_deep = a.deep(&c.name);
            }
            Side::Baseline(p) => d.baseline = p.get(&c.name).map(ecdf_of_baseline_quantiles),
            Side::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(ns: &[f64]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in ns {
            h.record((v * POOL_UNITS_PER_NS) as u64).unwrap();
        }
        h
    }

    #[test]
    fn the_ecdf_of_a_uniform_sample_has_its_quantiles_where_they_belong() {
        let values: Vec<f64> = (1..=1000).map(f64::from).collect();
        let e = ecdf_of_pooled(&histogram(&values)).unwrap();
        assert_eq!(e.calls, 1000);
        assert!((e.p50 - 500.0).abs() / 500.0 < 0.002, "p50 {}", e.p50);
        assert!((e.p99 - 990.0).abs() / 990.0 < 0.002, "p99 {}", e.p99);
        assert!(e.points.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "strictly ascending");
        assert_eq!(e.points.last().unwrap().1, 1.0);
        assert!((e.points[0].0 - 1.0).abs() < 0.01, "the minimum first");
    }

    #[test]
    fn equal_values_collapse_into_one_step() {
        let e = ecdf_of_pooled(&histogram(&[100.0; 50])).unwrap();
        assert_eq!(e.points.len(), 1);
        assert_eq!(e.points[0].1, 1.0);
        assert!(ecdf_of_pooled(&Histogram::<u64>::new(3).unwrap()).is_none());
    }

    #[test]
    fn deep_buckets_of_several_runs_add_up_and_empty_or_bad_ones_are_dropped() {
        let a = [(10.0, 11.0, 3), (20.0, 22.0, 0)];
        let b = [(10.0, 11.0, 2), (5.0, 6.0, 1), (f64::NAN, 1.0, 9)];
        let h = merge_deep([&a[..], &b[..]]).unwrap();
        assert_eq!(h.buckets, vec![(5.0, 6.0, 1), (10.0, 11.0, 5)]);
        assert!(merge_deep([&[][..]]).is_none());
    }
}
