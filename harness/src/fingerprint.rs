//! What machine (and toolchain) a measurement was taken on.
//!
//! Two fingerprints are the *same machine* when the CPU model, the number of cores and the tick
//! frequency (within [`TICK_TOLERANCE`]) agree: those decide what a nanosecond of code costs.
//! Guests of one cloud machine type can share a CPU model string and still run on hosts of
//! different clock speeds (measured: two AMD EPYC guests of this project's machine kind, TSC at
//! 2596 and 2445 MHz), so the frequency is part of the identity, and [`Fingerprint::current`]
//! measures it before anything runs: `regress` decides from it whether a baseline can be judged
//! directly or must be re-run paired. A different kernel
//! or rustc is reported as a note but does not make the comparison cross-machine: a compiler
//! upgrade is a change under test like any other.

use serde::{Deserialize, Serialize};

/// A machine fingerprint, stored in every baseline and report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// Online CPUs.
    pub cores: usize,
    /// Tick frequency in Hz (0 if unknown): measured by [`Fingerprint::current`], then replaced
    /// by the probe's own calibration over the runs where there are runs.
    pub tick_hz: f64,
    /// `uname -r`.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// Target triple the scenarios were built for.
    pub target: String,
}

/// Relative difference of tick frequencies beyond which two machines differ: far above the error
/// of a 20 ms calibration (~1e-5 here) and of the probe's whole-run one, far below the gap between
/// hosts of different clock speeds (6 % between the two EPYC hosts above).
pub const TICK_TOLERANCE: f64 = 1e-3;

/// How long [`Fingerprint::current`] calibrates the tick counter against `CLOCK_MONOTONIC_RAW`.
const TICK_CALIBRATION: std::time::Duration = std::time::Duration::from_millis(20);

/// `rustc -V` as run in `dir` (where a `rust-toolchain` file may pick the toolchain), or
/// `"unknown"`. Honours `RUSTC`.
pub fn rustc_version(dir: &std::path::Path) -> String {
    std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-V")
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

impl Fingerprint {
    /// Reads this machine's fingerprint, measuring the tick frequency of the clock an instrumented
    /// program here would use (20 ms).
    pub fn current() -> Fingerprint {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name") || l.starts_with("Model") || l.starts_with("CPU part"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into());
        let rustc = rustc_version(std::path::Path::new("."));
        let target = format!("{}-unknown-{}", std::env::consts::ARCH, std::env::consts::OS);
        let clock = funcscope::clock::decide(funcscope::clock::ClockChoice::Auto);
        let tick_hz = funcscope::clock::estimate_freq_hz(clock.kind, TICK_CALIBRATION) as f64;
        Fingerprint { cpu_model, cores, tick_hz, kernel, rustc, target }
    }

    /// `None` if `self` (the baseline's) and `other` (this run's) are the same machine, else a
    /// sentence naming every difference that makes it a different one.
    pub fn machine_difference(&self, other: &Fingerprint) -> Option<String> {
        let mut d = Vec::new();
        if self.cpu_model != other.cpu_model {
            d.push(format!("CPU {:?} vs {:?}", self.cpu_model, other.cpu_model));
        }
        if self.cores != other.cores {
            d.push(format!("{} vs {} cores", self.cores, other.cores));
        }
        let mhz = |hz: f64| (hz / 1e6).round() as i64;
        if self.tick_hz > 0.0
            && other.tick_hz > 0.0
            && (self.tick_hz - other.tick_hz).abs() > TICK_TOLERANCE * self.tick_hz
        {
            d.push(format!("tick {} MHz vs {} MHz", mhz(self.tick_hz), mhz(other.tick_hz)));
        }
        (!d.is_empty()).then(|| format!("baseline machine differs: {}", d.join(", ")))
    }

    /// Differences that do not make it another machine but are worth a note.
    pub fn toolchain_difference(&self, other: &Fingerprint) -> Option<String> {
        let mut d = Vec::new();
        if self.kernel != other.kernel {
            d.push(format!("kernel {} vs {}", self.kernel, other.kernel));
        }
        if self.rustc != other.rustc {
            d.push(format!("{} vs {}", self.rustc, other.rustc));
        }
        (!d.is_empty()).then(|| d.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_machine_ignores_toolchain_but_not_cpu_or_frequency() {
        let a = Fingerprint {
            cpu_model: "AMD EPYC".into(),
            cores: 2,
            tick_hz: 2_596_122_000.0,
            kernel: "6.18".into(),
            rustc: "rustc 1.95.0".into(),
            target: "x86_64-unknown-linux".into(),
        };
        let mut b = a.clone();
        b.kernel = "6.19".into();
        b.tick_hz = 2_596_300_000.0; // a calibration error, not another host
        assert_eq!(a.machine_difference(&b), None);
        b.tick_hz = 2_597_400_000.0; // 1.3 MHz off but within 0.1 %, across a MHz boundary
        assert_eq!(a.machine_difference(&b), None);
        assert!(a.toolchain_difference(&b).unwrap().contains("6.19"));
        b.cores = 4;
        assert!(a.machine_difference(&b).unwrap().contains("2 vs 4 cores"));
        let mut c = a.clone();
        c.tick_hz = 2_445_000_000.0; // the same CPU model on a slower host
        assert!(a.machine_difference(&c).unwrap().contains("2596 MHz vs 2445 MHz"));
        c.tick_hz = 0.0;
        assert_eq!(a.machine_difference(&c), None, "an unknown frequency is no evidence");
    }

    #[test]
    fn the_current_fingerprint_knows_the_tick_frequency() {
        let f = Fingerprint::current();
        // Any real counter runs between 1 MHz (slow aarch64 timers) and 10 GHz.
        assert!(f.tick_hz > 1e6 && f.tick_hz < 1e10, "{}", f.tick_hz);
        assert_eq!(f.machine_difference(&Fingerprint::current()), None, "two calibrations agree");
    }
}
