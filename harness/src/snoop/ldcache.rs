//! Sonames through the dynamic loader's cache, `/etc/ld.so.cache`, as `ld.so` finds them.
//!
//! # Why the file, not `ldconfig -p`
//! `ldconfig -p` only prints this file; reading it directly needs no process, works when
//! `ldconfig` is not on `PATH` (it lives in `/sbin`, often missing from a user's `PATH`), and
//! gives the entries' architecture flags, so a 32-bit library of the same name is never picked
//! for a 64-bit process. The format is glibc's `cache_file_new` (`sysdeps/generic/dl-cache.h`),
//! the only one glibc writes since 2.32; files that start with the older `ld.so-1.7.0` table
//! (written for compatibility by older glibc) carry the new table after it, and that is read.
//! No cache (musl, a minimal container) is not an error: the caller falls back to the library
//! directories.
//!
//! The file is untrusted input: every offset is bounds-checked, and a malformed file reads as
//! an empty cache.

use std::path::PathBuf;

/// Where glibc's loader keeps its cache.
pub const CACHE_FILE: &str = "/etc/ld.so.cache";

const MAGIC_NEW: &[u8] = b"glibc-ld.so.cache1.1";
const MAGIC_OLD: &[u8] = b"ld.so-1.7.0";
/// `struct cache_file_new`: magic + version (20), nlibs, len_strings, flags + 3 pad,
/// extension_offset, 3 unused u32.
const NEW_HEADER: usize = 48;
/// `struct file_entry_new`: flags (i32), key, value (u32 string offsets), osversion (u32),
/// hwcap (u64).
const NEW_ENTRY: usize = 24;
/// `struct file_entry` of the old format: flags, key, value (i32 each).
const OLD_ENTRY: usize = 12;

/// `FLAG_REQUIRED_MASK` bits that name the architecture, and this machine's value.
const ARCH_MASK: i32 = 0xff00;
#[cfg(target_arch = "x86_64")]
const ARCH_FLAG: Option<i32> = Some(0x0300); // FLAG_X8664_LIB64
#[cfg(target_arch = "aarch64")]
const ARCH_FLAG: Option<i32> = Some(0x0a00); // FLAG_AARCH64_LIB64
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH_FLAG: Option<i32> = None;
/// `FLAG_ELF_LIBC6`: the type bits of a glibc ELF library.
const TYPE_MASK: i32 = 0x00ff;
const ELF_LIBC6: i32 = 0x0003;

/// One library of the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The soname (`libc.so.6`).
    pub soname: String,
    /// Its file.
    pub path: PathBuf,
    /// Its flags (type and architecture).
    pub flags: i32,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn cstr_at(b: &[u8], at: usize) -> Option<String> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

/// The entries of a cache file's bytes (empty when it is not a cache this code knows).
pub fn parse(b: &[u8]) -> Vec<Entry> {
    let start = if b.starts_with(MAGIC_NEW) {
        0
    } else if b.starts_with(MAGIC_OLD) {
        // Old header: magic (11) padded to 12, nlibs; then nlibs 12-byte entries; then the new
        // table, aligned to 8 (the alignment of cache_file_new).
        let Some(n) = u32_at(b, 12) else { return Vec::new() };
        let Some(end) = (n as usize).checked_mul(OLD_ENTRY).and_then(|x| x.checked_add(16)) else { return Vec::new() };
        let at = end.next_multiple_of(8);
        if !b.get(at..).is_some_and(|r| r.starts_with(MAGIC_NEW)) {
            return Vec::new();
        }
        at
    } else {
        return Vec::new();
    };
    let Some(n) = u32_at(b, start + 20) else { return Vec::new() };
    let mut out = Vec::new();
    for i in 0..n as usize {
        let Some(e) = i.checked_mul(NEW_ENTRY).and_then(|x| x.checked_add(start + NEW_HEADER)) else { break };
        let (Some(flags), Some(key), Some(value)) = (u32_at(b, e), u32_at(b, e + 4), u32_at(b, e + 8)) else {
            break;
        };
        // String offsets count from the new table's start.
        let (Some(soname), Some(path)) = (cstr_at(b, start + key as usize), cstr_at(b, start + value as usize)) else {
            continue;
        };
        out.push(Entry { soname, path: PathBuf::from(path), flags: flags as i32 });
    }
    out
}

/// Whether an entry is a library this process's architecture can load.
fn loadable_here(flags: i32) -> bool {
    flags & TYPE_MASK == ELF_LIBC6 && ARCH_FLAG.is_none_or(|a| flags & ARCH_MASK == a)
}

/// The file of `name` in `entries`: the exact soname, else the first `name.*` (so `libcudart.so`
/// finds `libcudart.so.12`), for this architecture.
pub fn lookup_in(entries: &[Entry], name: &str) -> Option<PathBuf> {
    let ok = |e: &&Entry| loadable_here(e.flags);
    entries
        .iter()
        .filter(ok)
        .find(|e| e.soname == name)
        .or_else(|| entries.iter().filter(ok).find(|e| e.soname.strip_prefix(name).is_some_and(|r| r.starts_with('.'))))
        .map(|e| e.path.clone())
}

/// Looks `name` up in [`CACHE_FILE`] (None: not there, or no cache).
pub fn lookup(name: &str) -> Option<PathBuf> {
    let b = std::fs::read(CACHE_FILE).ok()?;
    lookup_in(&parse(&b), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new-format cache with these (flags, soname, path) entries.
    fn cache(entries: &[(i32, &str, &str)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let base = NEW_HEADER + entries.len() * NEW_ENTRY;
        let mut table = Vec::new();
        for &(flags, k, v) in entries {
            let key = base + strings.len();
            strings.extend(k.as_bytes());
            strings.push(0);
            let value = base + strings.len();
            strings.extend(v.as_bytes());
            strings.push(0);
            table.extend(flags.to_ne_bytes());
            table.extend((key as u32).to_ne_bytes());
            table.extend((value as u32).to_ne_bytes());
            table.extend([0u8; 12]);
        }
        let mut b = MAGIC_NEW.to_vec();
        b.extend((entries.len() as u32).to_ne_bytes());
        b.extend((strings.len() as u32).to_ne_bytes());
        b.extend([0u8; 20]);
        assert_eq!(b.len(), NEW_HEADER);
        b.extend(table);
        b.extend(strings);
        b
    }

    #[test]
    fn entries_parse_and_the_architecture_is_respected() {
        let Some(arch) = ARCH_FLAG else { return };
        let other = if arch == 0x0300 { 0x0a00 } else { 0x0300 };
        let b = cache(&[
            (ELF_LIBC6 | other, "libz.so.1", "/other/libz.so.1"),
            (ELF_LIBC6 | arch, "libz.so.1", "/here/libz.so.1"),
            (ELF_LIBC6 | arch, "libcudart.so.12", "/cuda/libcudart.so.12"),
        ]);
        let e = parse(&b);
        assert_eq!(e.len(), 3);
        assert_eq!(lookup_in(&e, "libz.so.1"), Some(PathBuf::from("/here/libz.so.1")));
        assert_eq!(lookup_in(&e, "libcudart.so"), Some(PathBuf::from("/cuda/libcudart.so.12")));
        assert_eq!(lookup_in(&e, "libcuda"), None, "a prefix must end at a dot");
    }

    #[test]
    fn old_format_files_are_read_through_their_new_table() {
        let new = cache(&[(ELF_LIBC6 | ARCH_FLAG.unwrap_or(0), "liba.so.1", "/x/liba.so.1")]);
        let mut b = MAGIC_OLD.to_vec();
        b.push(0);
        b.extend(1u32.to_ne_bytes());
        b.extend([0u8; OLD_ENTRY]);
        b.resize(b.len().next_multiple_of(8), 0);
        b.extend(new);
        assert_eq!(parse(&b)[0].soname, "liba.so.1");
    }

    #[test]
    fn malformed_caches_are_empty_never_a_panic() {
        let good = cache(&[(3, "liba.so.1", "/x/liba.so.1")]);
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        let mut huge = good.clone();
        huge[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse(&huge).len() <= 1);
        let mut wild = good;
        let at = NEW_HEADER + 4;
        wild[at..at + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse(&wild).is_empty());
        assert!(parse(b"junk").is_empty());
    }

    /// The machine's own cache: libc.so.6 is where `ldconfig -p` says (when both exist).
    #[test]
    fn libc_is_found_in_this_machines_cache() {
        let Some(found) = lookup("libc.so.6") else {
            eprintln!("SKIP: no {CACHE_FILE} with libc.so.6 here (musl or a minimal image)");
            return;
        };
        assert!(found.is_file(), "{}", found.display());
        // A bare soname target resolves to the cache's file.
        let t = crate::snoop::elf::resolve("libc.so.6:getpid", None).unwrap();
        assert_eq!(t.path, std::fs::canonicalize(&found).unwrap());
        if let Ok(out) = std::process::Command::new("ldconfig").arg("-p").output() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains(&format!("=> {}", found.display())),
                "{} not in ldconfig -p:\n{text}",
                found.display()
            );
        }
    }
}
