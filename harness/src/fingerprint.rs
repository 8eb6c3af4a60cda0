//! What machine (and toolchain) a measurement was taken on.
//!
//! Two fingerprints are the *same machine* when the CPU model, the number of cores and the tick
//! frequency (to 1 MHz) agree: those decide what a nanosecond of code costs. A different kernel
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
    /// Tick frequency in Hz, as calibrated by the probe (0 if unknown).
    pub tick_hz: f64,
    /// `uname -r`.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// Target triple the scenarios were built for.
    pub target: String,
}

impl Fingerprint {
    /// Reads this machine's fingerprint; `tick_hz` is filled in later from the probe.
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
        let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("-V")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let target = format!("{}-unknown-{}", std::env::consts::ARCH, std::env::consts::OS);
        Fingerprint { cpu_model, cores, tick_hz: 0.0, kernel, rustc, target }
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
        if self.tick_hz > 0.0 && other.tick_hz > 0.0 && mhz(self.tick_hz) != mhz(other.tick_hz) {
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
        b.tick_hz = 2_596_300_000.0; // same MHz after rounding
        assert_eq!(a.machine_difference(&b), None);
        assert!(a.toolchain_difference(&b).unwrap().contains("6.19"));
        b.cores = 4;
        assert!(a.machine_difference(&b).unwrap().contains("2 vs 4 cores"));
        let mut c = a.clone();
        c.tick_hz = 3.0e9;
        assert!(a.machine_difference(&c).unwrap().contains("MHz"));
    }
}
