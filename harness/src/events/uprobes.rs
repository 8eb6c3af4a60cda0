//! Uninstrumented functions as events: `--uprobe [NAME=]FILE:SYMBOL` creates, for the session,
//! an entry event `uprobe:NAME` (fields `arg1`..`arg6`: the first six integer arguments) and a
//! return event `uprobe:NAME_return` (field `ret`: the return value), which selectors use like any
//! tracepoint: filters, `key=`, `stack`, multi-trace pairs (`-e uprobe:NAME -e uprobe:NAME_return`
//! is the function's latency per thread), top.
//!
//! The symbol is resolved by snoop ([`crate::snoop::elf::resolve`]: `.symtab`/`.dynsym`, mangled
//! or demangled names, libraries by path or soname); the events are created in tracefs's
//! `uprobe_events` by [`crate::snoop::tracefs::TraceFs`], in a group private to this process,
//! and removed when the session ends. Tracefs uprobe events are tracepoints, so the stream opens
//! them per CPU or per thread like the others, inherited by the launched command's threads and
//! children.

use std::path::PathBuf;

use super::{EventsError, Scope};
use crate::snoop::elf;
use crate::snoop::tracefs::{TraceFs, ARG_FETCH, RET_FETCH};
use crate::snoop::SnoopError;

/// The selector system that names this session's uprobes.
pub const SYS: &str = "uprobe";

/// Suffix of a return event's name.
pub const RETURN_SUFFIX: &str = "_return";

/// One `--uprobe` argument, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The event name (`NAME`; default: the symbol, with characters tracefs refuses replaced).
    pub name: String,
    /// `FILE:SYMBOL`.
    pub target: String,
}

/// Parses `[NAME=]FILE:SYMBOL`. `NAME` is `[A-Za-z_][A-Za-z0-9_]*` (tracefs's rule); an `=`
/// after the first `:` belongs to the symbol (`operator=`).
pub fn parse(arg: &str) -> Result<Spec, EventsError> {
    let (name, target) = elf::split_named(arg);
    let (_, symbol) = elf::split_spec(target).map_err(|e| EventsError::Usage(format!("--uprobe {arg:?}: {e}")))?;
    let name = match name {
        Some(n) => {
            let ok = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(EventsError::Usage(format!(
                    "--uprobe {arg:?}: the name {n:?} must be letters, digits and _ (not starting with a digit)"
                )));
            }
            n.to_owned()
        }
        None => {
            let mut n: String = symbol.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
            if n.starts_with(|c: char| c.is_ascii_digit()) {
                n.insert(0, '_');
            }
            n
        }
    };
    Ok(Spec { name, target: target.to_owned() })
}

/// The uprobe events of one session; dropping it removes them from tracefs.
#[derive(Debug)]
pub struct Session {
    fs: TraceFs,
    /// The files probed, for messages.
    pub files: Vec<PathBuf>,
}

impl Session {
    /// Creates the entry and return events of every spec in `args`; `None` when there are none.
    ///
    /// # Errors
    /// A malformed argument or a duplicate name ([`EventsError::Usage`]), a symbol that cannot be
    /// resolved (snoop's message: missing symbol, stripped file, no code of its own), no tracefs
    /// with `uprobe_events`, or no privilege.
    pub fn create(args: &[String], scope: &Scope) -> Result<Option<Session>, EventsError> {
        if args.is_empty() {
            return Ok(None);
        }
        let specs = args.iter().map(|a| parse(a)).collect::<Result<Vec<_>, _>>()?;
        for (i, s) in specs.iter().enumerate() {
            if specs[..i].iter().any(|o| o.name == s.name) {
                return Err(EventsError::Usage(format!(
                    "--uprobe: the name {:?} is given twice; name one of them with NAME=FILE:SYMBOL",
                    s.name
                )));
            }
        }
        let pid = match scope {
            Scope::Attach { pid } => Some(*pid),
            _ => None,
        };
        let mut fs = TraceFs::open().map_err(EventsError::TraceFs)?;
        let mut files = Vec::new();
        for s in &specs {
            let t = elf::resolve(&s.target, pid).map_err(snoop_error)?;
            fs.add_with_fetch(&s.name, false, &t.path, t.offset, ARG_FETCH).map_err(snoop_error)?;
            fs.add_with_fetch(&format!("{}{RETURN_SUFFIX}", s.name), true, &t.path, t.offset, RET_FETCH)
                .map_err(snoop_error)?;
            files.push(t.path);
        }
        Ok(Some(Session { fs, files }))
    }

    /// The tracefs group that holds the events (what `uprobe:` stands for in selectors).
    pub fn group(&self) -> &str {
        self.fs.group()
    }
}

fn snoop_error(e: SnoopError) -> EventsError {
    match e {
        SnoopError::Privilege { paranoid, why } => EventsError::Privilege { paranoid, why },
        other => EventsError::Perf(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_to_the_symbol_and_an_equals_sign_in_the_symbol_stays_there() {
        let s = parse("/usr/lib/libz.so.1:inflate").unwrap();
        assert_eq!((s.name.as_str(), s.target.as_str()), ("inflate", "/usr/lib/libz.so.1:inflate"));
        let s = parse("inf=/usr/lib/libz.so.1:inflate").unwrap();
        assert_eq!((s.name.as_str(), s.target.as_str()), ("inf", "/usr/lib/libz.so.1:inflate"));
        let s = parse("/bin/x:Foo::operator=").unwrap();
        assert_eq!((s.name.as_str(), s.target.as_str()), ("Foo__operator_", "/bin/x:Foo::operator="));
        assert!(matches!(parse("9x=/bin/x:f"), Err(EventsError::Usage(m)) if m.contains("letters, digits")));
        assert!(
            matches!(parse("nocolon"), Err(EventsError::Usage(m)) if m.contains("FILE:SYMBOL") || m.contains("BINARY"))
        );
    }
}
