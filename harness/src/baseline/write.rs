//! Writing a baseline: the TOML text, by hand for a stable order and layout, and the atomic save.

use std::fmt::Write as _;
use std::path::Path;

use super::{Baseline, BaselineError};
use crate::fsutil;
use crate::stats::Metric;

/// Decimals kept for nanosecond values in the file: 0.01 ns is far below the probe's resolution
/// (one tick is ~0.3 ns at 3 GHz) and keeps the diff free of float noise.
const NS_DECIMALS: i32 = 2;

/// Significant digits kept for `noise_cv`: a cv is read as "about 1.2%", five digits are plenty.
const CV_SIGNIFICANT_DIGITS: usize = 5;

/// The comment above `[reference]`. Fixed text, so that re-writing a file reproduces it; it names
/// the checkpoint that [`crate::drift`] measures the speed with, and a test keeps the two in
/// step.
pub(crate) const REFERENCE_COMMENT: &str =
    "# Machine speed next to each run: the reference workload's ref_alu per run, in ns.";

impl Baseline {
    /// The file text: deterministic (same baseline, same bytes), keys in a fixed order, one array
    /// per line, values rounded as described in the module documentation.
    pub fn to_toml_string(&self) -> String {
        let mut s = String::new();
        // `writeln!` into a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(
            s,
            "# funcscope baseline for scenario {0}. Regenerate with: cargo xtask baseline --scenario {0}",
            self.scenario
        );
        let _ = writeln!(
            s,
            "# Per-run arrays (min ... mean) hold one value per process run, in ns; \
             pooled values are over all calls of all runs, in ns."
        );
        let _ = writeln!(s, "schema = {}", self.schema);
        let _ = writeln!(s, "scenario = {}", string(&self.scenario));
        let r = &self.recorded;
        let _ = writeln!(s, "\n[recorded]");
        let _ = writeln!(s, "commit = {}", string(&r.commit));
        let _ = writeln!(s, "date = {}", string(&r.date));
        let _ = writeln!(s, "runs = {}", r.runs);
        let _ = writeln!(s, "funcscope = {}", string(&r.funcscope));
        let args: Vec<String> = r.args.iter().map(|a| string(a)).collect();
        let _ = writeln!(s, "args = [{}]", args.join(", "));
        if r.sessions.len() > 1 {
            let sessions: Vec<String> = r.sessions.iter().map(usize::to_string).collect();
            let _ = writeln!(s, "sessions = [{}]", sessions.join(", "));
        }
        let _ = writeln!(s, "\n[machine]");
        // The fingerprint is a flat struct of scalars: serde writes `key = value` lines in field order.
        match toml::to_string(&self.machine) {
            Ok(machine) => s.push_str(&machine),
            Err(e) => {
                debug_assert!(false, "a Fingerprint always serializes: {e}");
            }
        }
        if let Some(r) = &self.reference {
            let _ = writeln!(s, "\n{REFERENCE_COMMENT}");
            let _ = writeln!(s, "[reference]");
            let _ = writeln!(s, "workload = {}", string(&r.workload));
            for m in Metric::ALL {
                if let Some(values) = r.runs.get(&m) {
                    let _ = writeln!(s, "{} = [{}]", key(m.as_str()), ns_array(values));
                }
            }
        }
        for (name, cp) in &self.checkpoints {
            let _ = writeln!(s, "\n[checkpoints.{}]", key(name));
            let _ = writeln!(s, "calls_per_run = {}", float(round_ns(cp.calls_per_run)));
            let _ = writeln!(s, "lost = {}", cp.lost);
            let cvs: Vec<String> = Metric::ALL
                .iter()
                .filter_map(|m| Some(format!("{} = {}", key(m.as_str()), float(round_cv(*cp.noise_cv.get(m)?)))))
                .collect();
            let _ = writeln!(s, "noise_cv = {{ {} }}", cvs.join(", "));
            for m in Metric::ALL {
                if let Some(values) = cp.runs.get(&m) {
                    let _ = writeln!(s, "{} = [{}]", key(m.as_str()), ns_array(values));
                }
            }
            let _ = writeln!(s, "\n[checkpoints.{}.pooled]", key(name));
            for m in Metric::POOLED {
                if let Some(v) = cp.pooled.get(m) {
                    let _ = writeln!(s, "{} = {}", key(m.as_str()), float(round_ns(v)));
                }
            }
        }
        s
    }

    /// Writes the baseline to `path` atomically ([`fsutil::write_atomic`]): a temporary file in
    /// the same directory (created if needed), written, fsynced, renamed over `path`, and the
    /// directory fsynced. Readers see the old file or the new one, never a partial one; on error no
    /// temporary file is left behind. The file is 0644 (less the umask), like any source file.
    ///
    /// # Errors
    /// [`BaselineError::Io`] naming the path and the step that failed.
    pub fn save_atomic(&self, path: &Path) -> Result<(), BaselineError> {
        let text = self.to_toml_string();
        fsutil::write_atomic(path, 0o644, |w| w.write_all(text.as_bytes())).map_err(|e| BaselineError::Io {
            path: e.path,
            action: e.action,
            source: e.source,
        })
    }
}

/// `x` rounded to [`NS_DECIMALS`] decimals.
pub(super) fn round_ns(x: f64) -> f64 {
    let scale = 10f64.powi(NS_DECIMALS);
    let r = (x * scale).round() / scale;
    // Values beyond ~1e15 ns lose nothing worth keeping, and `x * scale` could overflow to inf.
    if r.is_finite() {
        r
    } else {
        x
    }
}

/// `x` rounded to [`CV_SIGNIFICANT_DIGITS`] significant digits (through its decimal form, which is
/// exact and round-trips).
pub(super) fn round_cv(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{:.*e}", CV_SIGNIFICANT_DIGITS - 1, x).parse().unwrap_or(x)
}

/// A float as TOML: always with a decimal point or exponent (`1234.0`, not `1234`), so it reads
/// back as a float.
fn float(x: f64) -> String {
    toml::Value::Float(x).to_string()
}

/// `values` rounded to [`NS_DECIMALS`], as the inside of a one-line TOML array.
fn ns_array(values: &[f64]) -> String {
    let values: Vec<String> = values.iter().map(|v| float(round_ns(*v))).collect();
    values.join(", ")
}

/// A TOML basic string, escaped.
fn string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML key: bare when it can be (`parse_headers`), quoted otherwise (`"p99.9"`, `"http::parse"`).
pub(super) fn key(k: &str) -> String {
    if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        k.to_owned()
    } else {
        string(k)
    }
}
