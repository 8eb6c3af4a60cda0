//! SVG plots of one checkpoint, written by hand (the shapes are a few paths, circles and text; a
//! plotting crate would bring a font rasteriser and a layout engine for three charts):
//!
//! * [`ecdf`]: the per-call latency ECDF of both sides on a log axis, p50 (circle) and p99
//!   (diamond) marked on each curve and stated in the legend;
//! * [`deep`]: the probe's exact Deep histograms of both sides (density per log-ns), when present;
//! * [`runs`]: the run-level values of every judged metric, both sides side by side, one dot per
//!   run and a bar at the median.
//!
//! **No text overlaps or is cut off, by construction:** all text is in one monospace font whose
//! advance is at most [`CHAR_EM`] of its size, so every label's width is known before it is placed;
//! margins are sized from the widest label, tick labels are thinned until neighbours are at least
//! [`GAP`] apart, values at markers go into the legend rather than next to the markers, and the
//! canvas widens to fit its longest line. The tests check every text box against every other and
//! against the canvas. Like every reporter, this computes nothing about the data: the points come
//! from the model ([`crate::model::Distributions`]).

use std::fmt::Write as _;

use super::junit::escape;
use crate::model::{CheckpointResult, DeepHistogram, Ecdf, EcdfSource, RunValues};

/// The font of every text: monospace, so that a label's width is its length times [`CHAR_EM`].
pub(crate) const FONT: &str = "DejaVu Sans Mono, Menlo, Consolas, monospace";
/// Advance width of one character in em, a bound for common monospace fonts (DejaVu Sans Mono
/// and Menlo 0.602, Consolas 0.55).
pub(crate) const CHAR_EM: f64 = 0.62;
/// Font size of tick labels and legends, px.
const SMALL: f64 = 12.0;
/// Font size of titles, px.
const TITLE: f64 = 14.0;
/// Least horizontal space between two labels, px.
pub(crate) const GAP: f64 = 8.0;
/// Outer padding, px.
const PAD: f64 = 12.0;
/// Plot area width, px (the canvas widens for long titles or legends, never narrows).
const PLOT_W: f64 = 600.0;

/// Colour of the baseline (arm A) side.
const BASE_COLOR: &str = "#4c72b0";
/// Colour of the current (arm B) side.
const CUR_COLOR: &str = "#dd8452";

/// What the two sides are called in legends: `baseline`/`current`, or `A`/`B` when paired.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sides<'a> {
    /// The baseline side (or arm A).
    pub base: &'a str,
    /// The current side (or arm B).
    pub current: &'a str,
}

/// Width in px of `text` at font size `size`.
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * CHAR_EM * size
}

/// A canvas collecting SVG elements and the extent they need.
struct Canvas {
    body: String,
    width: f64,
    height: f64,
}

impl Canvas {
    fn new() -> Canvas {
        Canvas { body: String::new(), width: 0.0, height: 0.0 }
    }

    /// A text at `(x, y)` (the baseline), anchored `start`, `middle` or `end`.
    fn text(&mut self, x: f64, y: f64, size: f64, anchor: &str, text: &str, extra: &str) {
        let w = text_width(text, size);
        let right = match anchor {
            "middle" => x + w / 2.0,
            "end" => x,
            _ => x + w,
        };
        self.width = self.width.max(right);
        // Descenders reach about 0.25 em below the baseline.
        self.height = self.height.max(y + 0.25 * size);
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}"{extra}>{}</text>"#,
            escape(text)
        );
    }

    fn raw(&mut self, element: &str) {
        self.body.push_str(element);
        self.body.push('\n');
    }

    fn finish(self, title: &str) -> String {
        let w = (self.width + PAD).ceil();
        let h = (self.height + PAD).ceil();
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
             font-family=\"{FONT}\" role=\"img\">\n<title>{}</title>\n<rect width=\"{w}\" height=\"{h}\" \
             fill=\"white\"/>\n{}</svg>\n",
            escape(title),
            self.body
        )
    }
}

/// A logarithmic x axis from `lo` to `hi` (ns) drawn over pixels `x0..x1`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogAxis {
    lo: f64,
    hi: f64,
    x0: f64,
    x1: f64,
}

impl LogAxis {
    /// The axis over `values` (positive, finite ones; others are ignored), padded by 5% on each side
    /// so no marker sits on the frame; `None` if there are none.
    pub(crate) fn over(values: impl IntoIterator<Item = f64>, x0: f64, x1: f64) -> Option<LogAxis> {
        let (mut lo, mut hi) = (f64::INFINITY, 0.0_f64);
        for v in values.into_iter().filter(|v| v.is_finite() && *v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            return None;
        }
        // A single value still gets a visible span.
        if hi / lo < 1.2 {
            let mid = (hi * lo).sqrt();
            lo = mid / 1.1;
            hi = mid * 1.1;
        }
        let pad = (hi / lo).powf(0.05);
        Some(LogAxis { lo: lo / pad, hi: hi * pad, x0, x1 })
    }

    /// The pixel of `v`.
    pub(crate) fn x(&self, v: f64) -> f64 {
        let f = (v.max(self.lo).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln());
        self.x0 + f.clamp(0.0, 1.0) * (self.x1 - self.x0)
    }

    /// Tick values and labels: the densest of 1-9, 1-2-5, 1 per decade, every 2nd, 5th, 10th
    /// decade whose labels keep [`GAP`] apart; at least the two ends when no round value fits.
    pub(crate) fn ticks(&self) -> Vec<(f64, String)> {
        let d0 = self.lo.log10().floor() as i32;
        let d1 = self.hi.log10().ceil() as i32;
        let sets: [(&[f64], i32); 6] = [
            (&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 1),
            (&[1.0, 2.0, 5.0], 1),
            (&[1.0], 1),
            (&[1.0], 2),
            (&[1.0], 5),
            (&[1.0], 10),
        ];
        for (mantissas, every) in sets {
            let mut ticks = Vec::new();
            for d in d0..=d1 {
                if d.rem_euclid(every) != 0 {
                    continue;
                }
                for m in mantissas {
                    let v = m * 10f64.powi(d);
                    if v >= self.lo && v <= self.hi {
                        ticks.push((v, tick_label(v)));
                    }
                }
            }
            if ticks.len() >= 2 && self.fits(&ticks) {
                return ticks;
            }
            if ticks.len() < 2 && mantissas.len() == 9 {
                // Not even two round values in range (a narrow distribution): label the ends.
                let ends = vec![(self.lo, tick_label(self.lo)), (self.hi, tick_label(self.hi))];
                if self.fits(&ends) {
                    return ends;
                }
            }
        }
        Vec::new()
    }

    fn fits(&self, ticks: &[(f64, String)]) -> bool {
        ticks.windows(2).all(|w| {
            let room = self.x(w[1].0) - self.x(w[0].0);
            room >= (text_width(&w[0].1, SMALL) + text_width(&w[1].1, SMALL)) / 2.0 + GAP
        })
    }

    /// Draws the axis line at `y`, ticks and their labels below it; returns the y below the labels.
    fn draw(&self, c: &mut Canvas, y: f64, grid_top: Option<f64>) -> f64 {
        c.raw(&format!(r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#333"/>"##, self.x0, self.x1));
        for (v, label) in self.ticks() {
            let x = self.x(v);
            if let Some(top) = grid_top {
                c.raw(&format!(r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{y:.1}" stroke="#eee"/>"##));
            }
            c.raw(&format!(r##"<line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333"/>"##, y + 4.0));
            c.text(x, y + 6.0 + SMALL, SMALL, "middle", &label, "");
        }
        y + 6.0 + SMALL + 4.0
    }
}

/// A round tick value with its unit and no trailing zeros: `500 ns`, `2 µs`, `1.5 ms`.
pub(crate) fn tick_label(ns: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1.0, "ns"), (1e3, "µs"), (1e6, "ms"), (1e9, "s")];
    let i = UNITS.iter().rposition(|&(scale, _)| ns >= scale * 0.9995).unwrap_or(0);
    let (scale, unit) = UNITS[i];
    let v = ns / scale;
    let digits = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let digits = if digits.contains('.') { digits.trim_end_matches('0').trim_end_matches('.') } else { &digits };
    format!("{digits} {unit}")
}

/// The title line shared by the plots.
fn title(c: &mut Canvas, text: &str) -> f64 {
    c.text(PAD, PAD + TITLE, TITLE, "start", text, r#" font-weight="bold""#);
    PAD + TITLE + 10.0
}

/// Legend lines at `y`, one per `(colour, text)`, with a swatch; returns the y below them.
fn legend(c: &mut Canvas, x: f64, mut y: f64, lines: &[(&str, String)]) -> f64 {
    for (color, text) in lines {
        y += SMALL + 6.0;
        c.raw(&format!(
            r#"<rect x="{x:.1}" y="{:.1}" width="14" height="4" fill="{color}"/>"#,
            y - SMALL / 2.0 + 1.0 - 2.0
        ));
        c.text(x + 20.0, y, SMALL, "start", text, "");
    }
    y + 4.0
}

fn ecdf_legend(side: &str, e: &Ecdf) -> String {
    let calls = if e.calls > 0 { format!(", {} calls", super::format::count(e.calls)) } else { String::new() };
    let source = match e.source {
        EcdfSource::Samples => "",
        EcdfSource::BaselineQuantiles => " (baseline file: p50/p90/p99/p99.9 only)",
    };
    format!("{side}: ● p50 {}  ◆ p99 {}{calls}{source}", super::format::duration(e.p50), super::format::duration(e.p99))
}

/// The ECDF plot of one checkpoint; `None` if neither side has a distribution.
pub(crate) fn ecdf(name: &str, cp: &CheckpointResult, sides: Sides<'_>) -> Option<String> {
    let d = &cp.distributions;
    let curves: Vec<(&Ecdf, &str, &str)> =
        [(d.baseline.as_ref(), BASE_COLOR, sides.base), (d.current.as_ref(), CUR_COLOR, sides.current)]
            .into_iter()
            .filter_map(|(e, color, side)| Some((e?, color, side)))
            .collect();
    if curves.is_empty() {
        return None;
    }
    let mut c = Canvas::new();
    let top = title(&mut c, &format!("{name}: per-call latency, cumulative (log axis)"));
    let ylabels = ["0%", "25%", "50%", "75%", "100%"];
    let ylabel_w = ylabels.iter().map(|l| text_width(l, SMALL)).fold(0.0, f64::max);
    let x0 = PAD + ylabel_w + 6.0;
    let plot_h = 220.0;
    // The axis spans the body of the distributions, 0.1% to 99.9% of calls (and the markers): one
    // preempted call of milliseconds would otherwise squeeze every curve into a corner. The curves
    // run on to the frame where they leave it.
    let body = |e: &Ecdf| -> Vec<f64> {
        let inner: Vec<f64> = e.points.iter().filter(|p| (0.001..=0.999).contains(&p.1)).map(|p| p.0).collect();
        let mut v = if inner.len() >= 2 { inner } else { e.points.iter().map(|p| p.0).collect() };
        v.extend([e.p50, e.p99]);
        v
    };
    let axis = LogAxis::over(curves.iter().flat_map(|(e, ..)| body(e)), x0, x0 + PLOT_W)?;
    let y = |f: f64| top + plot_h * (1.0 - f);
    for (i, l) in ylabels.iter().enumerate() {
        let f = i as f64 / 4.0;
        c.raw(&format!(
            r##"<line x1="{x0:.1}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#eee"/>"##,
            y(f),
            x0 + PLOT_W
        ));
        c.text(x0 - 6.0, y(f) + SMALL * 0.35, SMALL, "end", l, "");
    }
    c.raw(&format!(r##"<line x1="{x0:.1}" y1="{top:.1}" x2="{x0:.1}" y2="{:.1}" stroke="#333"/>"##, y(0.0)));
    for (e, color, _) in &curves {
        // A step curve: flat until the next value, then up.
        let mut path = format!("M{:.1},{:.1}", axis.x(e.points[0].0), y(0.0));
        let mut prev = 0.0;
        for &(v, f) in &e.points {
            let _ = write!(path, " H{:.1} V{:.1}", axis.x(v), y(f.max(prev)));
            prev = f.max(prev);
        }
        let _ = write!(path, " H{:.1}", x0 + PLOT_W);
        c.raw(&format!(r#"<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>"#));
        let (x50, x99) = (axis.x(e.p50), axis.x(e.p99));
        c.raw(&format!(
            r#"<line x1="{x50:.1}" y1="{:.1}" x2="{x50:.1}" y2="{:.1}" stroke="{color}" stroke-dasharray="3,3"/>"#,
            y(0.5),
            y(0.0)
        ));
        c.raw(&format!(
            r#"<line x1="{x99:.1}" y1="{:.1}" x2="{x99:.1}" y2="{:.1}" stroke="{color}" stroke-dasharray="3,3"/>"#,
            y(0.99),
            y(0.0)
        ));
        c.raw(&format!(r#"<circle cx="{x50:.1}" cy="{:.1}" r="4.5" fill="{color}" stroke="white"/>"#, y(0.5)));
        let yd = y(0.99);
        c.raw(&format!(r#"<path d="M{x99:.1},{:.1} l5,5 l-5,5 l-5,-5 z" fill="{color}" stroke="white"/>"#, yd - 5.0));
    }
    let below = axis.draw(&mut c, y(0.0), None);
    let lines: Vec<(&str, String)> = curves.iter().map(|(e, color, side)| (*color, ecdf_legend(side, e))).collect();
    legend(&mut c, x0, below, &lines);
    c.width = c.width.max(x0 + PLOT_W);
    Some(c.finish(&format!("{name}: per-call latency ECDF")))
}

/// The Deep histograms of one checkpoint; `None` if neither side has one.
pub(crate) fn deep(name: &str, cp: &CheckpointResult, sides: Sides<'_>) -> Option<String> {
    let d = &cp.distributions;
    let hists: Vec<(&DeepHistogram, &str, &str)> =
        [(d.baseline_deep.as_ref(), BASE_COLOR, sides.base), (d.current_deep.as_ref(), CUR_COLOR, sides.current)]
            .into_iter()
            .filter_map(|(h, color, side)| Some((h?, color, side)))
            .collect();
    if hists.is_empty() {
        return None;
    }
    let mut c = Canvas::new();
    let top = title(&mut c, &format!("{name}: every call (probe Deep histogram), density per log-ns"));
    let x0 = PAD + 6.0;
    let plot_h = 160.0;
    let axis = LogAxis::over(
        hists.iter().flat_map(|(h, ..)| h.buckets.iter().flat_map(|b| [b.0.max(0.5), b.1])),
        x0,
        x0 + PLOT_W,
    )?;
    // Each side's density: its share of calls per unit of ln(ns), scaled to the tallest bucket.
    let density = |h: &DeepHistogram| -> Vec<(f64, f64, f64)> {
        let total: u64 = h.buckets.iter().map(|b| b.2).sum();
        h.buckets
            .iter()
            .map(|&(lo, hi, n)| (lo.max(0.5), hi, n as f64 / total.max(1) as f64 / (hi / lo.max(0.5)).ln()))
            .collect()
    };
    let all: Vec<Vec<(f64, f64, f64)>> = hists.iter().map(|(h, ..)| density(h)).collect();
    let peak = all.iter().flatten().map(|b| b.2).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let base_y = top + plot_h;
    for ((_, color, _), bars) in hists.iter().zip(&all) {
        let mut path = String::new();
        for &(lo, hi, dens) in bars {
            let h = plot_h * dens / peak;
            let _ = write!(path, "M{:.1},{base_y:.1} V{:.1} H{:.1} V{base_y:.1} ", axis.x(lo), base_y - h, axis.x(hi));
        }
        c.raw(&format!(r#"<path d="{path}" fill="{color}" fill-opacity="0.35" stroke="{color}" stroke-width="1"/>"#));
    }
    let below = axis.draw(&mut c, base_y, None);
    let lines: Vec<(&str, String)> = hists
        .iter()
        .map(|(h, color, side)| {
            (
                *color,
                format!(
                    "{side}: {} calls in {} buckets",
                    super::format::count(h.buckets.iter().map(|b| b.2).sum()),
                    h.buckets.len()
                ),
            )
        })
        .collect();
    legend(&mut c, x0, below, &lines);
    c.width = c.width.max(x0 + PLOT_W);
    Some(c.finish(&format!("{name}: Deep histogram")))
}

/// The run-level values of every judged metric of one checkpoint; `None` if there are none.
pub(crate) fn runs(name: &str, cp: &CheckpointResult, sides: Sides<'_>) -> Option<String> {
    let rows: Vec<&RunValues> =
        cp.distributions.runs.iter().filter(|r| !r.baseline.is_empty() || !r.current.is_empty()).collect();
    if rows.is_empty() {
        return None;
    }
    let mut c = Canvas::new();
    let top = title(&mut c, &format!("{name}: run-level values (dot = one run, bar = median)"));
    let labels: Vec<(String, String)> = rows
        .iter()
        .map(|r| (format!("{} {}", r.metric.as_str(), sides.base), format!("{} {}", r.metric.as_str(), sides.current)))
        .collect();
    let label_w = labels.iter().flat_map(|(a, b)| [text_width(a, SMALL), text_width(b, SMALL)]).fold(0.0, f64::max);
    let x0 = PAD + label_w + 10.0;
    let axis = LogAxis::over(rows.iter().flat_map(|r| r.baseline.iter().chain(&r.current).copied()), x0, x0 + PLOT_W)?;
    let row_h = 20.0;
    let mut y = top + 4.0;
    for (r, (lb, lc)) in rows.iter().zip(&labels) {
        for (values, color, label) in [(&r.baseline, BASE_COLOR, lb), (&r.current, CUR_COLOR, lc)] {
            let mid = y + row_h / 2.0;
            c.raw(&format!(
                r##"<line x1="{x0:.1}" y1="{mid:.1}" x2="{:.1}" y2="{mid:.1}" stroke="#f0f0f0"/>"##,
                x0 + PLOT_W
            ));
            c.text(x0 - 10.0, mid + SMALL * 0.35, SMALL, "end", label, "");
            for (i, &v) in values.iter().enumerate() {
                // Alternate dots above and below the line so equal runs stay countable.
                let dy = [-3.0, 3.0, 0.0][i % 3];
                c.raw(&format!(
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}" fill-opacity="0.6"/>"#,
                    axis.x(v),
                    mid + dy
                ));
            }
            if let Some(m) = super::format::median(values) {
                let x = axis.x(m);
                c.raw(&format!(
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"/>"#,
                    mid - 8.0,
                    mid + 8.0
                ));
            }
            y += row_h;
        }
        y += 6.0;
    }
    axis.draw(&mut c, y, Some(top + 4.0));
    c.width = c.width.max(x0 + PLOT_W);
    Some(c.finish(&format!("{name}: run-level values")))
}

/// The trend of one checkpoint over the history: per row `(label, median, fastest, slowest)` a dot
/// at the median and a line over the run range, on a log y axis (equal steps are equal ratios);
/// the level of each segment `(from, to, ns)` between change points, and a dashed line before each
/// change point's row. The x labels (short commits) are thinned to keep [`GAP`] apart.
pub(crate) fn trend(
    title_text: &str,
    rows: &[(String, f64, f64, f64)],
    segments: &[(usize, usize, f64)],
    changes: &[usize],
) -> Option<String> {
    if rows.is_empty() {
        return None;
    }
    let mut c = Canvas::new();
    let top = title(&mut c, title_text);
    let plot_h = 240.0;
    // The y axis is a log axis drawn vertically: reuse LogAxis over pixels, flipped.
    let y_axis = LogAxis::over(rows.iter().flat_map(|r| [r.1, r.2, r.3]), 0.0, plot_h)?;
    let ticks = y_axis.ticks();
    let label_w = ticks.iter().map(|(_, l)| text_width(l, SMALL)).fold(0.0, f64::max);
    let x0 = PAD + label_w + 8.0;
    let n = rows.len();
    let step = (PLOT_W / n as f64).clamp(4.0, 40.0);
    let plot_w = step * n as f64;
    let x = |i: f64| x0 + step * (i + 0.5);
    let y = |v: f64| top + plot_h - y_axis.x(v);
    for (v, l) in &ticks {
        c.raw(&format!(
            r##"<line x1="{x0:.1}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#eee"/>"##,
            y(*v),
            x0 + plot_w
        ));
        c.text(x0 - 6.0, y(*v) + SMALL * 0.35, SMALL, "end", l, "");
    }
    for &(a, b, level) in segments {
        c.raw(&format!(
            r#"<line x1="{:.1}" y1="{2:.1}" x2="{:.1}" y2="{2:.1}" stroke="{CUR_COLOR}" stroke-width="2" stroke-opacity="0.7"/>"#,
            x(a as f64) - step / 2.0,
            x(b as f64) - step / 2.0,
            y(level)
        ));
    }
    for &i in changes {
        let xc = x(i as f64) - step / 2.0;
        c.raw(&format!(
            r##"<line x1="{xc:.1}" y1="{top:.1}" x2="{xc:.1}" y2="{:.1}" stroke="#c00" stroke-dasharray="4,3"/>"##,
            top + plot_h
        ));
    }
    for (i, (_, med, lo, hi)) in rows.iter().enumerate() {
        let xi = x(i as f64);
        c.raw(&format!(
            r#"<line x1="{xi:.1}" y1="{:.1}" x2="{xi:.1}" y2="{:.1}" stroke="{BASE_COLOR}"/>"#,
            y(*lo),
            y(*hi)
        ));
        c.raw(&format!(r#"<circle cx="{xi:.1}" cy="{:.1}" r="3" fill="{BASE_COLOR}"/>"#, y(*med)));
    }
    let base = top + plot_h;
    c.raw(&format!(r##"<line x1="{x0:.1}" y1="{base:.1}" x2="{:.1}" y2="{base:.1}" stroke="#333"/>"##, x0 + plot_w));
    // Commit labels: every k-th, k the smallest that keeps neighbours GAP apart.
    let widest = rows.iter().map(|r| text_width(&r.0, SMALL)).fold(0.0, f64::max);
    let every = ((widest + GAP) / step).ceil().max(1.0) as usize;
    for (i, r) in rows.iter().enumerate().filter(|(i, _)| i % every == 0) {
        c.text(x(i as f64), base + 6.0 + SMALL, SMALL, "middle", &r.0, "");
    }
    let below = base + 6.0 + SMALL + 4.0;
    legend(
        &mut c,
        x0,
        below,
        &[
            (BASE_COLOR, "median of a run's values (line: fastest to slowest run)".to_owned()),
            (CUR_COLOR, "level between change points".to_owned()),
            ("#c00", "change point".to_owned()),
        ],
    );
    c.width = c.width.max(x0 + plot_w);
    Some(c.finish(title_text))
}

/// Every plot of one checkpoint, in display order.
pub(crate) fn checkpoint_plots(cp: &CheckpointResult, sides: Sides<'_>) -> Vec<String> {
    [ecdf(&cp.name, cp, sides), deep(&cp.name, cp, sides), runs(&cp.name, cp, sides)].into_iter().flatten().collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Distributions, Presence};
    use crate::stats::{Metric, Verdict};

    /// A text element's box: (left, top, right, bottom) and its text.
    pub(crate) type TextBox = (f64, f64, f64, f64, String);

    /// The boxes of every `<text>` in `svg`, from the same width rule the layout uses, and the
    /// canvas size.
    pub(crate) fn text_boxes(svg: &str) -> (Vec<TextBox>, f64, f64) {
        use quick_xml::events::Event;
        let mut r = quick_xml::Reader::from_str(svg);
        let mut boxes = Vec::new();
        let (mut w, mut h) = (0.0, 0.0);
        let mut open: Option<(f64, f64, f64, String)> = None;
        loop {
            match r.read_event().expect("well-formed SVG") {
                Event::Start(e) | Event::Empty(e) => {
                    let attr = |k: &str| -> Option<String> {
                        e.attributes()
                            .flatten()
                            .find(|a| a.key.as_ref() == k.as_bytes())
                            .map(|a| String::from_utf8(a.value.to_vec()).unwrap())
                    };
                    let num = |k: &str| attr(k).unwrap().parse::<f64>().unwrap();
                    match e.name().as_ref() {
                        b"svg" => {
                            w = num("width");
                            h = num("height");
                        }
                        b"text" => {
                            open = Some((num("x"), num("y"), num("font-size"), attr("text-anchor").unwrap()));
                        }
                        _ => {}
                    }
                }
                Event::Text(t) => {
                    if let Some((x, y, size, anchor)) = open.take() {
                        let text = t.decode().unwrap().into_owned();
                        let text = quick_xml::escape::unescape(&text).unwrap().into_owned();
                        let tw = text_width(&text, size);
                        let left = match anchor.as_str() {
                            "middle" => x - tw / 2.0,
                            "end" => x - tw,
                            _ => x,
                        };
                        boxes.push((left, y - 0.8 * size, left + tw, y + 0.25 * size, text));
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        (boxes, w, h)
    }

    /// Panics naming the texts if any two boxes overlap or one leaves the canvas.
    pub(crate) fn assert_no_overlap(svg: &str) {
        let (boxes, w, h) = text_boxes(svg);
        assert!(!boxes.is_empty(), "no text at all in\n{svg}");
        for b in &boxes {
            assert!(b.0 >= 0.0 && b.1 >= 0.0 && b.2 <= w && b.3 <= h, "{:?} is cut off by the {w}x{h} canvas", b.4);
        }
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                let apart = a.2 <= b.0 || b.2 <= a.0 || a.3 <= b.1 || b.3 <= a.1;
                assert!(apart, "{:?} overlaps {:?}", a.4, b.4);
            }
        }
    }

    fn ecdf_of(values: &[f64]) -> Ecdf {
        let n = values.len() as f64;
        Ecdf {
            source: EcdfSource::Samples,
            calls: values.len() as u64,
            points: values.iter().enumerate().map(|(i, &v)| (v, (i + 1) as f64 / n)).collect(),
            p50: values[values.len() / 2],
            p99: values[values.len() * 99 / 100],
        }
    }

    pub(crate) fn plotted(name: &str, scale: f64) -> CheckpointResult {
        let base: Vec<f64> = (0..200).map(|i| 800.0 * (1.0 + f64::from(i) / 200.0).powi(3)).collect();
        let cur: Vec<f64> = base.iter().map(|v| v * scale).collect();
        CheckpointResult {
            name: name.into(),
            presence: Presence::Both,
            calls_per_run: 1000.0,
            lost: 0,
            clamped: 0,
            metrics: Vec::new(),
            verdict: Verdict::Regressed,
            accepted: None,
            distributions: Distributions {
                baseline: Some(ecdf_of(&base)),
                current: Some(ecdf_of(&cur)),
                baseline_deep: Some(DeepHistogram {
                    buckets: vec![(768.0, 800.0, 10), (800.0, 832.0, 50), (1024.0, 1088.0, 5)],
                }),
                current_deep: Some(DeepHistogram { buckets: vec![(832.0, 864.0, 40), (1088.0, 1152.0, 9)] }),
                runs: vec![
                    RunValues {
                        metric: Metric::P50,
                        baseline: vec![1500.0, 1510.0, 1490.0],
                        current: vec![1600.0, 1620.0, 1610.0],
                    },
                    RunValues { metric: Metric::P99, baseline: vec![5500.0, 5600.0], current: vec![6100.0, 6000.0] },
                ],
            },
        }
    }

    const SIDES: Sides<'static> = Sides { base: "baseline", current: "current" };

    #[test]
    fn every_plot_is_well_formed_and_no_text_overlaps_or_is_cut_off() {
        for name in ["parse", "a/very_long::checkpoint::name<with, generics>::and_more_and_more_of_it_to_widen"] {
            let cp = plotted(name, 1.07);
            let plots = checkpoint_plots(&cp, SIDES);
            assert_eq!(plots.len(), 3, "ECDF, Deep and runs");
            for svg in &plots {
                assert_no_overlap(svg);
            }
        }
    }

    #[test]
    fn the_trend_plot_keeps_its_commit_labels_apart() {
        for n in [1, 7, 40, 300] {
            let rows: Vec<(String, f64, f64, f64)> =
                (0..n).map(|i| (format!("{:07x}", i * 7919), 800.0 + f64::from(i), 790.0, 900.0)).collect();
            let k = n as usize;
            let svg =
                trend("s/parse p50 over 40 commits", &rows, &[(0, k / 2, 800.0), (k / 2, k, 850.0)], &[k / 2]).unwrap();
            assert_no_overlap(&svg);
        }
        assert!(trend("t", &[], &[], &[]).is_none());
    }

    #[test]
    fn a_checkpoint_without_distributions_has_no_plots() {
        let mut cp = plotted("x", 1.0);
        cp.distributions = Distributions::default();
        assert!(checkpoint_plots(&cp, SIDES).is_empty());
    }

    #[test]
    fn log_ticks_are_round_thinned_to_fit_and_cover_narrow_ranges() {
        let wide = LogAxis::over([3.0, 4e9], 0.0, 600.0).unwrap();
        let t = wide.ticks();
        assert!(t.len() >= 3, "{t:?}");
        assert!(wide.fits(&t));
        let narrow = LogAxis::over([812.0, 815.0], 0.0, 600.0).unwrap();
        let t = narrow.ticks();
        assert!(t.len() >= 2, "{t:?}");
        assert_eq!(tick_label(500.0), "500 ns");
        assert_eq!(tick_label(2000.0), "2 µs");
        assert_eq!(tick_label(1.5e6), "1.5 ms");
        assert_eq!(tick_label(3e9), "3 s");
    }

    #[test]
    fn a_single_value_still_gets_an_axis_and_nonpositive_values_are_ignored() {
        let a = LogAxis::over([0.0, -1.0, 100.0, f64::NAN], 0.0, 100.0).unwrap();
        assert!(a.x(100.0) > 0.0 && a.x(100.0) < 100.0);
        assert!(LogAxis::over([0.0], 0.0, 100.0).is_none());
    }
}
