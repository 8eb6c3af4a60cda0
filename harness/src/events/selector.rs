//! Event selectors in perf-prof's syntax:
//!
//! ```text
//! EVENT,EVENT,...
//! EVENT:  sys:name[/filter/ATTR/ATTR/.../]
//! filter: an ftrace filter, applied in the kernel (may be empty: sys:name//ATTR/)
//! ATTR:   stack | max-stack=N | alias=STR | key=FIELD | top-by=FIELD | top-add=FIELD | untraced
//! ```
//! ATTRs stack (`top-add` and `top-by` may repeat; the others keep their last value). A `/` or
//! `,` inside a double-quoted filter string does not end the filter. Every syntax error is a
//! [`SelectorError`] with the byte position in the selector and the fix.

use std::fmt;

/// One parsed `sys:name[/filter/ATTR/.../]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// The tracepoint's system (`syscalls`, `sched`, ...).
    pub sys: String,
    /// The tracepoint's name within `sys`.
    pub name: String,
    /// The ftrace filter (None: no filter given, or an empty one).
    pub filter: Option<String>,
    /// `stack`: sample the callchain.
    pub stack: bool,
    /// `max-stack=N`: the deepest callchain kept (implies nothing by itself; used with `stack`).
    pub max_stack: Option<u16>,
    /// `alias=STR`: the name shown instead of `sys:name`.
    pub alias: Option<String>,
    /// `key=FIELD`: the field that relates this event to its partner (multi-trace, top).
    pub key: Option<String>,
    /// `top-by=FIELD`: summed per key by `top`, and sorted by.
    pub top_by: Vec<String>,
    /// `top-add=FIELD`: summed per key by `top`.
    pub top_add: Vec<String>,
    /// `untraced`: auxiliary in multi-trace (shown, not paired).
    pub untraced: bool,
}

impl Selector {
    /// `alias`, else `sys:name`.
    pub fn display_name(&self) -> String {
        self.alias.clone().unwrap_or_else(|| format!("{}:{}", self.sys, self.name))
    }
}

/// Why a selector does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    /// The whole selector as given.
    pub input: String,
    /// Byte offset of the problem in `input`.
    pub pos: usize,
    /// What is wrong and how to write it instead.
    pub why: String,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The caret line points at the problem under the selector.
        let col = self.input.get(..self.pos).map_or(self.pos, |s| s.chars().count());
        write!(f, "event selector at position {}: {}\n  {}\n  {}^", self.pos, self.why, self.input, " ".repeat(col))
    }
}

impl std::error::Error for SelectorError {}

/// The ATTRs this parser knows, for messages.
pub const KNOWN_ATTRS: &str = "stack, max-stack=N, alias=STR, key=FIELD, top-by=FIELD, top-add=FIELD, untraced";

/// perf-prof ATTRs that belong to its profilers funcscope does not have.
const OTHER_PROFILER_ATTRS: &[(&str, &str)] = &[("ptr", "kmemleak"), ("size", "kmemleak"), ("delay", "mpdelay")];

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// Parses `EVENT,EVENT,...`.
pub fn parse(input: &str) -> Result<Vec<Selector>, SelectorError> {
    let err = |pos: usize, why: String| SelectorError { input: input.to_owned(), pos, why };
    let b = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    if input.trim().is_empty() {
        return Err(err(0, "empty selector: give at least one event, e.g. syscalls:sys_enter_read".into()));
    }
    loop {
        let mut sel = Selector::default();
        // sys
        let start = i;
        while i < b.len() && is_name_char(b[i] as char) {
            i += 1;
        }
        if i == start {
            let what = input[i..].chars().next().map_or("the end".to_owned(), |c| format!("{c:?}"));
            return Err(err(i, format!("expected an event `sys:name` here, found {what}")));
        }
        sel.sys = input[start..i].to_owned();
        if i >= b.len() || b[i] != b':' {
            return Err(err(i, format!("{:?} lacks its system: write sys:name, e.g. syscalls:{}", sel.sys, sel.sys)));
        }
        i += 1;
        let start = i;
        while i < b.len() && is_name_char(b[i] as char) {
            i += 1;
        }
        if i == start {
            return Err(err(i, format!("no event name after {:?}: write {}:NAME", format!("{}:", sel.sys), sel.sys)));
        }
        sel.name = input[start..i].to_owned();
        if i < b.len() && b[i] == b'/' {
            // filter up to the next '/' outside double quotes
            let fstart = i + 1;
            let mut j = fstart;
            let mut quoted = false;
            while j < b.len() {
                match b[j] {
                    b'\\' if quoted => j += 1,
                    b'"' => quoted = !quoted,
                    b'/' if !quoted => break,
                    _ => {}
                }
                j += 1;
            }
            if j >= b.len() {
                let why = if quoted {
                    "a double quote in the filter is not closed"
                } else {
                    "the filter is not closed by '/'"
                };
                return Err(err(
                    fstart,
                    format!("{why}: write {}:{}/FILTER/ (or // for no filter)", sel.sys, sel.name),
                ));
            }
            let f = input[fstart..j].trim();
            sel.filter = (!f.is_empty()).then(|| f.to_owned());
            i = j + 1;
            // ATTRs, '/'-separated, up to ',' or the end
            loop {
                let astart = i;
                while i < b.len() && b[i] != b'/' && b[i] != b',' {
                    i += 1;
                }
                let attr = &input[astart..i];
                if !attr.is_empty() {
                    apply_attr(&mut sel, attr).map_err(|why| err(astart, why))?;
                }
                if i < b.len() && b[i] == b'/' {
                    i += 1;
                    continue;
                }
                break;
            }
        }
        out.push(sel);
        if i >= b.len() {
            break;
        }
        if b[i] != b',' {
            let c = input[i..].chars().next().unwrap_or(' ');
            return Err(err(
                i,
                format!(
                    "unexpected {c:?} after an event: separate events with ',', and put a filter and ATTRs in /.../"
                ),
            ));
        }
        i += 1;
    }
    Ok(out)
}

fn field_value(attr: &str, name: &str, value: &str) -> Result<String, String> {
    let ok = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!("{attr:?}: {name}= takes a field name ([A-Za-z0-9_]+), e.g. {name}=pid"))
    }
}

fn apply_attr(sel: &mut Selector, attr: &str) -> Result<(), String> {
    let (name, value) = match attr.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (attr, None),
    };
    match (name, value) {
        ("stack", None) => sel.stack = true,
        ("untraced", None) => sel.untraced = true,
        ("stack" | "untraced", Some(_)) => return Err(format!("{attr:?}: {name} takes no value; write {name}")),
        ("max-stack", Some(v)) => {
            let n = v
                .parse::<u16>()
                .map_err(|_| format!("{attr:?}: max-stack= takes a number 0-65535, e.g. max-stack=16"))?;
            sel.max_stack = Some(n);
        }
        ("alias", Some(v)) if !v.is_empty() => sel.alias = Some(v.to_owned()),
        ("key", Some(v)) => sel.key = Some(field_value(attr, name, v)?),
        ("top-by", Some(v)) => sel.top_by.push(field_value(attr, name, v)?),
        ("top-add", Some(v)) => sel.top_add.push(field_value(attr, name, v)?),
        ("max-stack" | "alias" | "key" | "top-by" | "top-add", _) => {
            return Err(format!("{attr:?}: {name} needs a value: write {name}=VALUE"))
        }
        _ => {
            if let Some((_, prof)) = OTHER_PROFILER_ATTRS.iter().find(|(a, _)| *a == name) {
                return Err(format!(
                    "{attr:?} belongs to perf-prof's {prof} profiler, which funcscope does not have; ATTRs here: {KNOWN_ATTRS}"
                ));
            }
            return Err(format!("unknown ATTR {attr:?}; known: {KNOWN_ATTRS}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_events_and_lists_parse() {
        let s = parse("sched:sched_switch").unwrap();
        assert_eq!((s[0].sys.as_str(), s[0].name.as_str(), &s[0].filter), ("sched", "sched_switch", &None));
        let s = parse("sched:sched_wakeup,sched:sched_switch").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].name, "sched_switch");
    }

    #[test]
    fn filters_and_attrs_stack() {
        let s = parse(
            "syscalls:sys_enter_read/fd == 3 && count > 10/stack/max-stack=8/alias=rd/key=common_pid/top-by=count/top-add=fd/top-by=fd/untraced/",
        )
        .unwrap();
        let e = &s[0];
        assert_eq!(e.filter.as_deref(), Some("fd == 3 && count > 10"));
        assert!(e.stack && e.untraced);
        assert_eq!(e.max_stack, Some(8));
        assert_eq!(e.alias.as_deref(), Some("rd"));
        assert_eq!(e.display_name(), "rd");
        assert_eq!(e.key.as_deref(), Some("common_pid"));
        assert_eq!(e.top_by, ["count", "fd"]);
        assert_eq!(e.top_add, ["fd"]);
        // Empty filter, no trailing slash, then another event.
        let s = parse("sched:sched_wakeup//key=pid,sched:sched_switch//key=next_pid/").unwrap();
        assert_eq!((s[0].filter.as_ref(), s[0].key.as_deref()), (None, Some("pid")));
        assert_eq!(s[1].key.as_deref(), Some("next_pid"));
    }

    #[test]
    fn quoted_slashes_and_commas_stay_in_the_filter() {
        let s =
            parse(r#"sched:sched_switch/prev_comm == "a/b,c" || next_comm ~ "x\"y"/,raw_syscalls:sys_enter"#).unwrap();
        assert_eq!(s[0].filter.as_deref(), Some(r#"prev_comm == "a/b,c" || next_comm ~ "x\"y""#));
        assert_eq!(s[1].sys, "raw_syscalls");
    }

    fn bad(input: &str) -> SelectorError {
        parse(input).expect_err(input)
    }

    #[test]
    fn errors_name_the_position_and_the_fix() {
        let e = bad("sys_enter_read");
        assert_eq!(e.pos, 14);
        assert!(e.why.contains("write sys:name"), "{e}");
        let e = bad("syscalls:");
        assert!(e.why.contains("no event name"), "{e}");
        let e = bad("syscalls:sys_enter_read/fd == 3");
        assert_eq!(e.pos, 24);
        assert!(e.why.contains("not closed by '/'"), "{e}");
        let e = bad("sched:sched_switch//stak/");
        assert_eq!(e.pos, 20);
        assert!(e.why.contains("unknown ATTR \"stak\"") && e.why.contains("max-stack=N"), "{e}");
        let e = bad("sched:sched_switch//max-stack=lots/");
        assert!(e.why.contains("takes a number"), "{e}");
        let e = bad("sched:sched_switch//key/");
        assert!(e.why.contains("needs a value"), "{e}");
        let e = bad("sched:sched_switch//key=a b/");
        assert!(e.why.contains("field name"), "{e}");
        let e = bad("kmem:kmalloc//ptr=ptr/");
        assert!(e.why.contains("kmemleak"), "{e}");
        let e = bad("sched:sched_switch sched:sched_wakeup");
        assert_eq!(e.pos, 18);
        assert!(e.why.contains("separate events with ','"), "{e}");
        let e = bad("sched:sched_switch,,");
        assert_eq!(e.pos, 19);
        let e = bad(r#"sched:sched_switch/prev_comm == "a/"#);
        assert!(e.why.contains("double quote"), "{e}");
        assert!(bad("  ").why.contains("empty selector"));
        // The rendered message points at the position.
        let shown = bad("sched:sched_switch//stak/").to_string();
        assert!(shown.ends_with(&format!("\n  {}^", " ".repeat(20))), "{shown}");
    }
}
