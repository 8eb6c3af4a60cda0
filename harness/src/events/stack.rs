//! Callchains (`stack` ATTR): kernel addresses named through `/proc/kallsyms`, user addresses
//! through the traced process's `/proc/PID/maps` (file and file offset) and that file's symbols
//! (`.symtab` and `.dynsym`, read by [`crate::snoop::elf::FileSymbols`], demangled like snoop's
//! targets): `name+0xOFF (FILE)`, or `FILE+0xOFFSET` where no function symbol covers the address
//! (a stripped file, code between symbols), which `addr2line -e FILE` may still resolve.
//!
//! Kernel symbols are read once (about 120k lines here, a few ms); each file's symbols once per
//! session, whichever processes map it.
//!
//! # When the maps are read
//! A process's maps are read at the first sample with a user stack the profiler handles for it
//! (about [`super::stream::HOLD_NS`] after the event), and read again when an address falls in
//! no known mapping (a library loaded since), at most [`MAP_REREADS`] times per process. A
//! process that has already exited by its first handled sample (a short-lived child, or one that
//! exits within the hold time) has no maps left to read: its user frames are printed as bare
//! addresses (`0x7f...`), since nothing else can say which file held them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use funcscope::uprobe::tracepoint::{PERF_CONTEXT_KERNEL, PERF_CONTEXT_MAX, PERF_CONTEXT_USER};

use crate::snoop::elf::FileSymbols;

/// How many times a process's maps are read again after a miss (an address in no mapping).
pub const MAP_REREADS: u32 = 4;

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

/// Parses `/proc/PID/maps` text, keeping executable mappings (paths may hold spaces).
fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(6, ' ');
            let (s, e) = it.next()?.split_once('-')?;
            let perms = it.next()?;
            let offset = u64::from_str_radix(it.next()?, 16).ok()?;
            let path = it.nth(2)?.trim_start().to_owned();
            (perms.contains('x') && !path.is_empty()).then_some(())?;
            Some(Mapping {
                start: u64::from_str_radix(s, 16).ok()?,
                end: u64::from_str_radix(e, 16).ok()?,
                offset,
                path,
            })
        })
        .collect()
}

/// A process's mappings as read, and how many more times they may be read again.
#[derive(Debug, Default)]
struct ProcMaps {
    maps: Vec<Mapping>,
    rereads_left: u32,
}

/// Names frames of callchains.
#[derive(Debug, Default)]
pub struct Symbolizer {
    kernel: Option<KernelSymbols>,
    maps: HashMap<u32, ProcMaps>,
    /// Symbols by mapped path; None: unreadable or not an ELF file (then `file+offset`).
    files: HashMap<String, Option<FileSymbols>>,
}

fn read_maps(pid: u32) -> Vec<Mapping> {
    parse_maps(&std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default())
}

impl Symbolizer {
    /// A symbolizer; kernel symbols are loaded at the first kernel frame.
    pub fn new() -> Symbolizer {
        Symbolizer::default()
    }

    /// The mapping of `pid` holding `ip` (the maps read at first sight, read again on a miss).
    fn mapping(&mut self, pid: u32, ip: u64) -> Option<Mapping> {
        let pm = self.maps.entry(pid).or_insert_with(|| ProcMaps { maps: read_maps(pid), rereads_left: MAP_REREADS });
        let find = |maps: &[Mapping]| maps.iter().find(|m| (m.start..m.end).contains(&ip)).cloned();
        if let Some(m) = find(&pm.maps) {
            return Some(m);
        }
        if pm.rereads_left == 0 {
            return None;
        }
        pm.rereads_left -= 1;
        let fresh = read_maps(pid);
        if !fresh.is_empty() {
            pm.maps = fresh;
        }
        find(&pm.maps)
    }

    /// The symbols of the file `m` maps (parsed once per path). A file deleted or replaced since
    /// it was mapped (`PATH (deleted)`) is read through `/proc/PID/map_files/`, which still holds
    /// the mapped inode.
    fn file(&mut self, pid: u32, m: &Mapping) -> Option<&FileSymbols> {
        self.files
            .entry(m.path.clone())
            .or_insert_with(|| {
                if m.path.starts_with('[') {
                    return None; // [vdso], [vsyscall]: not files
                }
                FileSymbols::load(Path::new(&m.path)).ok().or_else(|| {
                    let via = PathBuf::from(format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end));
                    FileSymbols::load(&via).ok()
                })
            })
            .as_ref()
    }

    /// One user frame: `name+0xOFF (FILE)`, `FILE+0xOFFSET`, or None (no mapping known).
    fn user_frame(&mut self, pid: u32, ip: u64) -> Option<String> {
        let m = self.mapping(pid, ip)?;
        let offset = ip - m.start + m.offset;
        let named = self
            .file(pid, &m)
            .and_then(|f| f.at_file_offset(offset))
            .map(|(name, off)| format!("{name}+{off:#x} ({})", m.path));
        Some(named.unwrap_or_else(|| format!("{}+{offset:#x}", m.path)))
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
                self.user_frame(pid, ip)
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

    #[test]
    fn maps_keep_executable_file_mappings_with_spaces_in_paths() {
        let m = parse_maps(
            "55d0a000-55d0b000 r--p 00000000 08:01 42      /usr/bin/a b\n\
             55d0b000-55d0c000 r-xp 00001000 08:01 42      /usr/bin/a b\n\
             7ffd1000-7ffd2000 r-xp 00000000 00:00 0       [vdso]\n\
             7f000000-7f001000 r-xp 00000000 00:00 0 \n",
        );
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!((m[0].start, m[0].offset, m[0].path.as_str()), (0x55d0b000, 0x1000, "/usr/bin/a b"));
        assert_eq!(m[1].path, "[vdso]");
    }

    #[test]
    fn this_test_binary_names_its_own_function() {
        // A real file and a real address: this function's, mapped into this process.
        let pid = std::process::id();
        let ip = this_test_binary_names_its_own_function as *const () as usize as u64 + 1;
        let mut s = Symbolizer::new();
        let f = s.frames(pid, &[PERF_CONTEXT_USER, ip]);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].starts_with("funcscope_harness::events::stack::tests::this_test_binary_names_its_own_function+0x1 ("),
            "{f:?}"
        );
    }
}
