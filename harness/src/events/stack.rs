//! Callchains (`stack` ATTR): kernel addresses named through `/proc/kallsyms`, user addresses
//! through the traced process's `/proc/PID/maps` (file and offset), read while it lives.
//!
//! Kernel symbols are read once (about 120k lines here, a few ms); user frames are shown as
//! `file+0xOFFSET`, which `addr2line -e FILE` resolves (symbolizing them with snoop's ELF code
//! is not done yet).

use std::collections::HashMap;

use funcscope::uprobe::tracepoint::{PERF_CONTEXT_KERNEL, PERF_CONTEXT_MAX, PERF_CONTEXT_USER};

/// Kernel symbols by address.
#[derive(Debug, Default)]
pub struct KernelSymbols {
    /// (address, name), sorted by address.
    syms: Vec<(u64, String)>,
}

impl KernelSymbols {
    /// Reads `/proc/kallsyms` (empty when unreadable, or all zero for lack of privilege).
    pub fn load() -> KernelSymbols {
        let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        KernelSymbols::parse(&text)
    }

    /// Parses kallsyms text (`ADDR TYPE NAME [module]`), keeping text symbols.
    pub fn parse(text: &str) -> KernelSymbols {
        let mut syms: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let addr = u64::from_str_radix(it.next()?, 16).ok()?;
                let kind = it.next()?;
                let name = it.next()?;
                (addr != 0 && matches!(kind, "T" | "t" | "W" | "w")).then(|| (addr, name.to_owned()))
            })
            .collect();
        syms.sort();
        KernelSymbols { syms }
    }

    /// `name+0xOFF` for `addr`, or None when below every symbol (or none are known).
    pub fn name(&self, addr: u64) -> Option<String> {
        let i = self.syms.partition_point(|(a, _)| *a <= addr).checked_sub(1)?;
        let (a, n) = &self.syms[i];
        Some(format!("{n}+{:#x}", addr - a))
    }
}

/// One executable mapping of a process: `[start, end)` at `offset` of `path`.
#[derive(Clone, Debug)]
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    path: String,
}

/// Names frames of callchains.
#[derive(Debug, Default)]
pub struct Symbolizer {
    kernel: Option<KernelSymbols>,
    maps: HashMap<u32, Vec<Mapping>>,
}

impl Symbolizer {
    /// A symbolizer; kernel symbols are loaded at the first kernel frame.
    pub fn new() -> Symbolizer {
        Symbolizer::default()
    }

    fn maps(&mut self, pid: u32) -> &[Mapping] {
        self.maps.entry(pid).or_insert_with(|| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
            text.lines()
                .filter_map(|l| {
                    let mut it = l.split_whitespace();
                    let (s, e) = it.next()?.split_once('-')?;
                    let perms = it.next()?;
                    let offset = u64::from_str_radix(it.next()?, 16).ok()?;
                    let path = it.nth(2)?.to_owned();
                    perms.contains('x').then_some(())?;
                    Some(Mapping {
                        start: u64::from_str_radix(s, 16).ok()?,
                        end: u64::from_str_radix(e, 16).ok()?,
                        offset,
                        path,
                    })
                })
                .collect()
        })
    }

    /// The frames of `chain` (sampled in process `pid`), innermost first, context markers
    /// dropped.
    pub fn frames(&mut self, pid: u32, chain: &[u64]) -> Vec<String> {
        let mut user = false;
        let mut out = Vec::new();
        for &ip in chain {
            if ip >= PERF_CONTEXT_MAX {
                user = ip == PERF_CONTEXT_USER;
                if ip == PERF_CONTEXT_KERNEL {
                    user = false;
                }
                continue;
            }
            let name = if user {
                self.maps(pid)
                    .iter()
                    .find(|m| (m.start..m.end).contains(&ip))
                    .map(|m| format!("{}+{:#x}", m.path, ip - m.start + m.offset))
            } else {
                self.kernel.get_or_insert_with(KernelSymbols::load).name(ip)
            };
            out.push(name.unwrap_or_else(|| format!("{ip:#x}")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_addresses_get_the_nearest_symbol_below() {
        let k = KernelSymbols::parse(
            "ffffffff81000100 T b\nffffffff81000000 T a\nffffffff81000050 d data\n0000000000000000 T zero\n",
        );
        assert_eq!(k.name(0xffffffff81000010).as_deref(), Some("a+0x10"));
        assert_eq!(k.name(0xffffffff81000180).as_deref(), Some("b+0x80"));
        assert_eq!(k.name(0x10), None);
    }
}
