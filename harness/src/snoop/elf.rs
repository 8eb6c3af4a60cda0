//! Targets: `BINARY_OR_LIBRARY:SYMBOL` resolved to the file and file offset a uprobe needs.
//!
//! The file is found by path, in the attached process's mappings, by name on `PATH`
//! (executables) or `LD_LIBRARY_PATH`, in the loader's cache (`/etc/ld.so.cache`, see
//! [`super::ldcache`]: a soname such as `libc.so.6`, or `libcudart.so` for `libcudart.so.12`), or
//! in the usual library directories. Its symbols come
//! from `.symtab` and `.dynsym` (the `object` crate); a symbol is matched by its mangled name or
//! by its demangled one (Rust with or without the hash, C++ with or without the parameter list).
//!
//! The uprobe's offset is a **file** offset: the symbol's virtual address minus the `p_vaddr` of
//! the `PT_LOAD` segment that contains it, plus that segment's `p_offset`. This is right for
//! executables (whose addresses are absolute), PIE and shared objects (relative to their load
//! base) alike, because the kernel maps each segment from its file offset.
//!
//! Errors say which: no such file, not an ELF, no such symbol (with near names), a stripped file
//! (no `.symtab`: only exported symbols are visible), a symbol that is only imported here, one
//! that has no code of its own (size 0), one that is data, and ambiguous demangled names.

use std::path::{Path, PathBuf};

use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

use super::SnoopError;

/// One function to probe, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The target as written on the command line.
    pub spec: String,
    /// The file the probe is placed in (absolute, symlinks resolved).
    pub path: PathBuf,
    /// The symbol's name as in the file (mangled).
    pub symbol: String,
    /// The readable name: demangled without hash or parameters where that applies.
    pub name: String,
    /// The symbol's virtual address in the file's address space.
    pub vaddr: u64,
    /// The symbol's size in bytes (> 0).
    pub size: u64,
    /// The uprobe's file offset.
    pub offset: u64,
    /// The first instruction's cost class on x86_64 (see [`Prologue`]).
    pub prologue: Prologue,
}

/// How the kernel handles the probed instruction: some are emulated at the breakpoint, others
/// must be single-stepped out of line, which costs ~10x more per hit in the VMs measured here
/// (10-12 us instead of ~1.9 us per entry+return, machine-facts.md, 2026-11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prologue {
    /// `push` or `nop`: emulated, the cheap case.
    Emulated,
    /// Anything else (`endbr64`, `sub`, `mov`, `lea`, ...): single-stepped, the slow case.
    SingleStepped,
    /// Not x86_64, or the bytes could not be read.
    Unknown,
}

/// Splits `BINARY_OR_LIBRARY:SYMBOL` at the first single `:` (C++ and Rust symbols contain `::`).
pub fn split_spec(spec: &str) -> Result<(&str, &str), SnoopError> {
    let b = spec.as_bytes();
    let at = (0..b.len()).find(|&i| b[i] == b':' && b.get(i + 1) != Some(&b':') && (i == 0 || b[i - 1] != b':'));
    match at {
        Some(i) if i > 0 && i + 1 < b.len() => Ok((&spec[..i], &spec[i + 1..])),
        _ => Err(SnoopError::BadTarget {
            spec: spec.to_owned(),
            why: "expected BINARY_OR_LIBRARY:SYMBOL, e.g. /usr/bin/gzip:deflate or libc.so.6:malloc".into(),
        }),
    }
}

/// Splits an optional `NAME=` prefix off `[NAME=]BINARY_OR_LIBRARY:SYMBOL` (the `--uprobe` values
/// of `run` and `events`). The prefix holds no `:`, so an `=` in a symbol (`operator=`) stays
/// in the symbol.
pub fn split_named(arg: &str) -> (Option<&str>, &str) {
    match arg.split_once('=') {
        Some((name, rest)) if !name.contains(':') => (Some(name), rest),
        _ => (None, arg),
    }
}

/// Resolves a target; `pid` (attach mode) lets a bare library name match that process's mappings.
pub fn resolve(spec: &str, pid: Option<i32>) -> Result<Target, SnoopError> {
    let (file, symbol) = split_spec(spec)?;
    let path = find_file(file, pid)?;
    let data = std::fs::read(&path).map_err(|e| SnoopError::File { path: path.clone(), why: e.to_string() })?;
    let obj = object::File::parse(&*data).map_err(|e| SnoopError::File {
        path: path.clone(),
        why: format!("not an ELF file this tool can read: {e}"),
    })?;
    let sym = find_symbol(&obj, &path, symbol)?;
    let offset = file_offset(&obj, sym.vaddr).ok_or_else(|| SnoopError::NoCode {
        path: path.clone(),
        symbol: sym.name.clone(),
        why: format!("address {:#x} lies in no loadable segment of the file", sym.vaddr),
    })?;
    let prologue = match obj.architecture() {
        object::Architecture::X86_64 => data.get(offset as usize..).map_or(Prologue::Unknown, classify_x86_64),
        _ => Prologue::Unknown,
    };
    Ok(Target {
        spec: spec.to_owned(),
        path,
        symbol: sym.mangled,
        name: sym.name,
        vaddr: sym.vaddr,
        size: sym.size,
        offset,
        prologue,
    })
}

/// The x86_64 instructions the kernel emulates at a uprobe instead of single-stepping:
/// `push reg` (with or without a REX prefix) and `nop`.
fn classify_x86_64(code: &[u8]) -> Prologue {
    match code {
        [0x50..=0x57, ..] | [0x41, 0x50..=0x57, ..] | [0x90, ..] => Prologue::Emulated,
        [] => Prologue::Unknown,
        _ => Prologue::SingleStepped,
    }
}

/// The directories searched for a bare library name, after the attached process's mappings.
const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

fn find_file(file: &str, pid: Option<i32>) -> Result<PathBuf, SnoopError> {
    let canonical =
        |p: &Path| std::fs::canonicalize(p).map_err(|e| SnoopError::File { path: p.to_path_buf(), why: e.to_string() });
    if file.contains('/') {
        return canonical(Path::new(file));
    }
    if let Some(pid) = pid {
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            for line in maps.lines() {
                let Some(p) = line.split_whitespace().nth(5) else { continue };
                let base = Path::new(p).file_name().and_then(|n| n.to_str()).unwrap_or("");
                if base == file || base.starts_with(&format!("{file}.")) || base.starts_with(&format!("{file}-")) {
                    return canonical(Path::new(p));
                }
            }
        }
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for var in ["PATH", "LD_LIBRARY_PATH"] {
        if let Some(v) = std::env::var_os(var) {
            dirs.extend(std::env::split_paths(&v));
        }
    }
    for d in &dirs {
        let p = d.join(file);
        if p.is_file() {
            return canonical(&p);
        }
    }
    // The loader's own order: LD_LIBRARY_PATH, then its cache, then the default directories.
    if let Some(p) = super::ldcache::lookup(file).filter(|p| p.is_file()) {
        return canonical(&p);
    }
    for d in LIBRARY_DIRS {
        let p = Path::new(d).join(file);
        if p.is_file() {
            return canonical(&p);
        }
    }
    let local = Path::new(file);
    if local.is_file() {
        return canonical(local);
    }
    Err(SnoopError::File {
        path: PathBuf::from(file),
        why: "no such file here, on PATH, in LD_LIBRARY_PATH or the library directories (give a path)".into(),
    })
}

/// A symbol that matched.
struct Found {
    mangled: String,
    name: String,
    vaddr: u64,
    size: u64,
}

/// The names a symbol answers to: mangled, and the demangled forms.
fn names_of(mangled: &str) -> Vec<String> {
    let mut names = vec![mangled.to_owned()];
    if let Ok(d) = rustc_demangle::try_demangle(mangled) {
        names.push(format!("{d:#}"));
        names.push(d.to_string());
    } else if mangled.starts_with("_Z") {
        if let Ok(s) = cpp_demangle::Symbol::new(mangled) {
            if let Ok(full) = s.demangle() {
                names.push(full);
            }
            let opts = cpp_demangle::DemangleOptions::new().no_params().no_return_type();
            if let Ok(short) = s.demangle_with_options(&opts) {
                names.push(short);
            }
        }
    }
    names
}

fn readable(mangled: &str) -> String {
    names_of(mangled).into_iter().nth(1).unwrap_or_else(|| mangled.to_owned())
}

fn find_symbol(obj: &object::File<'_>, path: &Path, want: &str) -> Result<Found, SnoopError> {
    let has_symtab = obj.symbol_table().is_some();
    let mut hits: Vec<Found> = Vec::new();
    let mut imported = false;
    let mut data_hit = None;
    let mut empty_hit = None;
    let mut all: Vec<String> = Vec::new();
    for sym in obj.symbols().chain(obj.dynamic_symbols()) {
        let Ok(mangled) = sym.name() else { continue };
        if mangled.is_empty() {
            continue;
        }
        let names = names_of(mangled);
        if !names.iter().any(|n| n == want) {
            if sym.kind() == SymbolKind::Text && !sym.is_undefined() {
                all.push(names.get(1).cloned().unwrap_or_else(|| mangled.to_owned()));
            }
            continue;
        }
        if sym.is_undefined() {
            imported = true;
        } else if sym.kind() != SymbolKind::Text {
            data_hit = Some(format!("{:?}", sym.kind()).to_lowercase());
        } else if sym.size() == 0 {
            empty_hit = Some(mangled.to_owned());
        } else if !hits.iter().any(|h| h.vaddr == sym.address()) {
            hits.push(Found {
                mangled: mangled.to_owned(),
                name: readable(mangled),
                vaddr: sym.address(),
                size: sym.size(),
            });
        }
    }
    match hits.len() {
        1 => return Ok(hits.pop().expect("one hit")),
        n if n > 1 => {
            return Err(SnoopError::Ambiguous {
                path: path.to_path_buf(),
                symbol: want.to_owned(),
                candidates: hits.iter().map(|h| format!("{} ({})", h.mangled, h.name)).collect(),
            })
        }
        _ => {}
    }
    if let Some(kind) = data_hit {
        return Err(SnoopError::NoCode {
            path: path.to_path_buf(),
            symbol: want.to_owned(),
            why: format!("it is a {kind} symbol, not a function"),
        });
    }
    if let Some(m) = empty_hit {
        return Err(SnoopError::NoCode {
            path: path.to_path_buf(),
            symbol: m,
            why: "its size is 0 (a label or alias without code of its own); probe the function that contains it".into(),
        });
    }
    if imported {
        return Err(SnoopError::Imported { path: path.to_path_buf(), symbol: want.to_owned() });
    }
    if !has_symtab {
        return Err(SnoopError::Stripped {
            path: path.to_path_buf(),
            symbol: want.to_owned(),
            exported: obj.dynamic_symbols().filter(|s| s.kind() == SymbolKind::Text && !s.is_undefined()).count(),
        });
    }
    all.sort();
    all.dedup();
    Err(SnoopError::MissingSymbol { path: path.to_path_buf(), symbol: want.to_owned(), near: near_names(want, &all) })
}

/// Up to five names close to `want`: those containing it (or contained in it), then the
/// smallest edit distances.
fn near_names(want: &str, names: &[String]) -> Vec<String> {
    let lw = want.to_lowercase();
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|n| {
            let ln = n.to_lowercase();
            let score = if ln.contains(&lw) || (ln.len() >= 3 && lw.contains(&ln)) {
                ln.len().abs_diff(lw.len()) / 8
            } else {
                levenshtein(&lw, &ln)
            };
            (score, n)
        })
        .filter(|(s, _)| *s <= want.len().max(4) / 2)
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, n)| n.clone()).collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The function symbols of one ELF file, for naming addresses (the `stack` ATTR of `events`):
/// every defined text symbol with a size, from `.symtab` and `.dynsym`, and the `PT_LOAD`
/// segments that turn a file offset (what `/proc/PID/maps` gives) into a virtual address.
#[derive(Clone, Debug, Default)]
pub struct FileSymbols {
    /// (vaddr, size, readable name), sorted by address; aliases at one address keep the name
    /// with the fewest leading underscores (`read` rather than `__libc_read`).
    syms: Vec<(u64, u64, String)>,
    /// (file offset, file size, vaddr) of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
}

impl FileSymbols {
    /// Reads and parses `path` (a typed error naming the file when it is missing or no ELF).
    pub fn load(path: &Path) -> Result<FileSymbols, SnoopError> {
        let data =
            std::fs::read(path).map_err(|e| SnoopError::File { path: path.to_path_buf(), why: e.to_string() })?;
        let obj = object::File::parse(&*data).map_err(|e| SnoopError::File {
            path: path.to_path_buf(),
            why: format!("not an ELF file this tool can read: {e}"),
        })?;
        let mut syms: Vec<(u64, u64, String)> = obj
            .symbols()
            .chain(obj.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && !s.is_undefined() && s.size() > 0)
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok().filter(|n| !n.is_empty())?.to_owned())))
            .collect();
        let underscores = |n: &str| n.len() - n.trim_start_matches('_').len();
        syms.sort_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| (underscores(&a.2), a.2.len()).cmp(&(underscores(&b.2), b.2.len())))
        });
        syms.dedup_by_key(|s| s.0);
        for s in &mut syms {
            s.2 = readable(&s.2);
        }
        let segments = obj
            .segments()
            .map(|seg| {
                let (off, filesz) = seg.file_range();
                (off, filesz, seg.address())
            })
            .collect();
        Ok(FileSymbols { syms, segments })
    }

    /// The function containing file offset `offset` and the distance into it: `(name, off)`;
    /// None when no loadable segment maps that offset or no sized symbol covers its address.
    pub fn at_file_offset(&self, offset: u64) -> Option<(&str, u64)> {
        let vaddr = self
            .segments
            .iter()
            .find_map(|&(off, size, vaddr)| (offset >= off && offset < off + size).then(|| offset - off + vaddr))?;
        let i = self.syms.partition_point(|s| s.0 <= vaddr);
        // Symbols rarely nest; look back a few for one whose extent covers the address.
        self.syms[..i].iter().rev().take(8).find(|s| vaddr < s.0 + s.1).map(|s| (s.2.as_str(), vaddr - s.0))
    }

    /// How many function symbols the file has.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// Whether the file has no function symbols (stripped of both tables).
    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }
}

/// The file offset of `vaddr`: through the `PT_LOAD` segment whose file-backed part contains it.
fn file_offset(obj: &object::File<'_>, vaddr: u64) -> Option<u64> {
    obj.segments().find_map(|seg| {
        let (off, filesz) = seg.file_range();
        let start = seg.address();
        (vaddr >= start && vaddr < start + filesz).then(|| vaddr - start + off)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_split_at_the_single_colon() {
        assert_eq!(split_spec("libc.so.6:malloc").unwrap(), ("libc.so.6", "malloc"));
        assert_eq!(split_spec("/bin/x:a::b::c").unwrap(), ("/bin/x", "a::b::c"));
        assert_eq!(split_spec("./t:ns::f(int)").unwrap(), ("./t", "ns::f(int)"));
        assert!(split_spec("nocolon").is_err());
        assert!(split_spec("a::b").is_err());
        assert!(split_spec(":f").is_err());
        assert!(split_spec("f:").is_err());
    }

    #[test]
    fn rust_and_cpp_names_demangle() {
        let rust = names_of("_ZN4core3fmt5write17h0123456789abcdefE");
        assert!(rust.contains(&"core::fmt::write".to_owned()), "{rust:?}");
        let cpp = names_of("_ZN5torch2nn10LinearImpl7forwardERKN2at6TensorE");
        assert!(cpp.contains(&"torch::nn::LinearImpl::forward".to_owned()), "{cpp:?}");
        assert!(cpp.contains(&"torch::nn::LinearImpl::forward(at::Tensor const&)".to_owned()), "{cpp:?}");
        assert_eq!(names_of("malloc"), vec!["malloc".to_owned()]);
    }

    #[test]
    fn prologues_are_classified() {
        assert_eq!(classify_x86_64(&[0x55, 0x48, 0x89, 0xe5]), Prologue::Emulated);
        assert_eq!(classify_x86_64(&[0x41, 0x57]), Prologue::Emulated);
        assert_eq!(classify_x86_64(&[0xf3, 0x0f, 0x1e, 0xfa]), Prologue::SingleStepped);
        assert_eq!(classify_x86_64(&[0x48, 0x8d, 0x04, 0x37]), Prologue::SingleStepped);
    }

    #[test]
    fn near_names_prefer_containing_and_close_names() {
        let names: Vec<String> = ["sleeper_fn", "add3", "recurse", "worker", "totally_else"].map(String::from).into();
        assert_eq!(near_names("sleeper", &names)[0], "sleeper_fn");
        assert_eq!(near_names("recurs", &names)[0], "recurse");
        assert!(near_names("zzzzzzzzzz", &names).is_empty());
    }
}
