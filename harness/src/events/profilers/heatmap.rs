//! The latency heat map of a multi-trace pair: time (columns of `bucket_ns`) against log2
//! latency (rows), each cell coloured by how many pairs ended in it, written as an SVG.
//!
//! Memory is the number of non-empty cells (at most 65 per time column), not the number of
//! pairs, so a long run at millions of pairs stays small.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::human_ns;

/// Counts per (time column, log2 latency slot).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeatMap {
    /// Column width, ns (> 0).
    pub bucket_ns: u64,
    /// The time of the first pair (column 0 starts here).
    pub origin_ns: Option<u64>,
    /// (column, slot) -> pairs; slot as in [`super::LatencyStats::log2`].
    pub cells: BTreeMap<(u64, u8), u64>,
}

impl HeatMap {
    /// An empty map with columns `bucket_ns` wide (0 is taken as 1 ns).
    pub fn new(bucket_ns: u64) -> HeatMap {
        HeatMap { bucket_ns: bucket_ns.max(1), origin_ns: None, cells: BTreeMap::new() }
    }

    /// Adds a pair that ended at `end_ns` after `latency_ns`.
    pub fn add(&mut self, end_ns: u64, latency_ns: u64) {
        let origin = *self.origin_ns.get_or_insert(end_ns);
        // max(1): a Default map has no width yet.
        let col = end_ns.saturating_sub(origin) / self.bucket_ns.max(1);
        let slot = (64 - latency_ns.leading_zeros()) as u8;
        *self.cells.entry((col, slot)).or_insert(0) += 1;
    }

    /// The map as an SVG document titled `title`.
    pub fn to_svg(&self, title: &str) -> String {
        let cols = self.cells.keys().map(|k| k.0).max().map_or(1, |m| m + 1);
        let (lo, hi) = match (self.cells.keys().map(|k| k.1).min(), self.cells.keys().map(|k| k.1).max()) {
            (Some(a), Some(b)) => (a, b),
            _ => (0, 0),
        };
        let rows = (hi - lo) as u64 + 1;
        let max = self.cells.values().copied().max().unwrap_or(1).max(1);
        // Cells 2-20 px wide so that any run fits about 800 px.
        let cw = (800 / cols).clamp(2, 20);
        let ch = 14;
        let (left, top, bottom) = (110, 30, 40);
        // At least 640 px wide so the title fits.
        let (w, h) = ((left + cols * cw + 20).max(640), top + rows * ch + bottom);
        let mut s = String::new();
        let esc = title.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="monospace" font-size="11">"#
        );
        let _ = writeln!(s, r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#);
        let _ = writeln!(s, r#"<text x="{left}" y="18">{esc} (pairs per cell; max {max})</text>"#);
        for slot in lo..=hi {
            // Highest latency on top.
            let y = top + (hi - slot) as u64 * ch;
            let from = if slot == 0 { 0.0 } else { (1u64 << (slot - 1)) as f64 };
            let _ = writeln!(s, r#"<text x="4" y="{}">&gt;= {}</text>"#, y + ch - 3, human_ns(from));
        }
        for (&(col, slot), &n) in &self.cells {
            // Logarithmic shading: one pair is visible next to a million.
            let i = ((1 + n) as f64).ln() / ((1 + max) as f64).ln();
            let g = (255.0 * (1.0 - i)).round() as u8;
            let (x, y) = (left + col * cw, top + (hi - slot) as u64 * ch);
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="{y}" width="{cw}" height="{ch}" fill="rgb(255,{g},{g})"><title>{n}</title></rect>"#
            );
        }
        let span = cols * self.bucket_ns.max(1);
        let _ = writeln!(
            s,
            r#"<text x="{left}" y="{}">time: 0 .. {} in columns of {}</text>"#,
            top + rows * ch + 25,
            human_ns(span as f64),
            human_ns(self.bucket_ns as f64)
        );
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_count_pairs_by_time_column_and_latency_slot() {
        let mut m = HeatMap::new(1_000);
        m.add(10_000, 5); // origin, column 0, slot 3
        m.add(10_500, 6); // column 0, slot 3
        m.add(12_100, 1_000); // column 2, slot 10
        assert_eq!(m.cells.len(), 2);
        assert_eq!(m.cells[&(0, 3)], 2);
        assert_eq!(m.cells[&(2, 10)], 1);
        let svg = m.to_svg("a -> <b>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a -&gt; &lt;b&gt;"));
        // Background + one rect per cell; the fullest cell is the darkest.
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains(r#"fill="rgb(255,0,0)"><title>2</title>"#), "{svg}");
        assert!(HeatMap::new(1).to_svg("empty").contains("</svg>"));
    }
}
