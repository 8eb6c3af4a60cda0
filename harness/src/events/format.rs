//! Tracepoint record layouts from tracefs (`events/SYS/NAME/format`) and the decoding of raw
//! sample records (`PERF_SAMPLE_RAW`) into field values.
//!
//! A `format` file lists one `field:TYPE NAME[N]; offset:O; size:S; signed:0|1;` line per
//! field, the common fields (`common_type`, `common_pid`, ...) first. Offsets are relative to the
//! start of the raw record. Kinds decoded:
//! * integers of 1, 2, 4 or 8 bytes, signed or not (pointers are unsigned integers);
//! * `char NAME[N]`: a NUL-terminated string inside the record;
//! * `__data_loc TYPE[] NAME`: a u32 whose low 16 bits are the offset and high 16 bits the
//!   length of the data (a string for `char[]`) elsewhere in the record;
//! * other fixed arrays: a list of integers of `size / N` bytes each.
//!
//! The record is untrusted input: a field that does not fit in it decodes as
//! [`Value::Missing`], never a panic.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where tracefs is, or why there is none.
#[derive(Clone, Debug)]
pub struct TraceFsDir {
    /// The mount point (e.g. `/sys/kernel/tracing`).
    pub dir: PathBuf,
    /// Said once to the user (e.g. that tracefs was mounted).
    pub note: Option<String>,
}

/// The places tracefs is usually mounted at, the standard one first.
const PLACES: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

impl TraceFsDir {
    /// The mounted tracefs with an `events` directory; mounts it at `/sys/kernel/tracing` if
    /// it is not mounted (root only). Err says why none is usable and the fix.
    pub fn locate() -> Result<TraceFsDir, String> {
        if let Some(d) = PLACES.iter().map(Path::new).find(|d| d.join("events").is_dir()) {
            return Ok(TraceFsDir { dir: d.to_path_buf(), note: None });
        }
        // Not visible: either unmounted or not readable by this user.
        if PLACES
            .iter()
            .any(|d| matches!(std::fs::read_dir(d), Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied))
        {
            return Err(format!(
                "tracefs ({}) is not readable by this user: tracepoints need root (or CAP_PERFMON with a \
                 tracefs readable by you); run as root",
                PLACES[0]
            ));
        }
        let out = std::process::Command::new("mount")
            .args(["-t", "tracefs", "nodev", PLACES[0]])
            .output()
            .map_err(|e| format!("tracefs is not mounted and `mount` could not run: {e}"))?;
        if !out.status.success() || !Path::new(PLACES[0]).join("events").is_dir() {
            return Err(format!(
                "tracefs is not mounted and mounting it at {} failed: {}; mount it as root: mount -t tracefs nodev {}",
                PLACES[0],
                String::from_utf8_lossy(&out.stderr).trim(),
                PLACES[0]
            ));
        }
        Ok(TraceFsDir {
            dir: PathBuf::from(PLACES[0]),
            note: Some(format!("mounted tracefs at {} (it was not mounted)", PLACES[0])),
        })
    }

    /// `events/SYS/NAME`.
    pub fn event_dir(&self, sys: &str, name: &str) -> PathBuf {
        self.dir.join("events").join(sys).join(name)
    }

    /// Every `SYS:NAME` with an `id` (sorted).
    pub fn all_events(&self) -> std::io::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for sys in std::fs::read_dir(self.dir.join("events"))? {
            let sys = sys?;
            if !sys.file_type()?.is_dir() {
                continue;
            }
            let Ok(names) = std::fs::read_dir(sys.path()) else { continue };
            for n in names.flatten() {
                if n.path().join("id").exists() {
                    out.push((
                        sys.file_name().to_string_lossy().into_owned(),
                        n.file_name().to_string_lossy().into_owned(),
                    ));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// How a field's bytes are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// An integer of `size` bytes.
    Int,
    /// `char NAME[N]`: a NUL-terminated string of at most `size` bytes.
    Str,
    /// `__data_loc char[] NAME`: a string elsewhere in the record.
    DataLocStr,
    /// `__data_loc TYPE[] NAME` of another type: bytes elsewhere in the record.
    DataLocBytes,
    /// A fixed array of `count` integers of `size / count` bytes each.
    Array {
        /// Elements (>= 1).
        count: usize,
    },
}

/// One field of a tracepoint record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Its name (`common_pid`, `fd`, ...).
    pub name: String,
    /// The C type as tracefs writes it (`unsigned int`, `char[16]`, `__data_loc char[]`).
    pub ctype: String,
    /// Offset in the raw record, bytes.
    pub offset: usize,
    /// Size in the raw record, bytes.
    pub size: usize,
    /// Signed integer.
    pub signed: bool,
    /// How to read it.
    pub kind: FieldKind,
}

/// One tracepoint's layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    /// `name:` line.
    pub name: String,
    /// `ID:` line: the tracepoint id for `perf_event_open`.
    pub id: u64,
    /// Every field, common ones first.
    pub fields: Vec<Field>,
}

/// A decoded field value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (or pointer).
    Uint(u64),
    /// A string.
    Str(String),
    /// An array of integers.
    Array(Vec<i64>),
    /// Bytes of a non-string `__data_loc` field.
    Bytes(Vec<u8>),
    /// The record is too short for the field.
    Missing,
}

impl Value {
    /// The value as a number (strings and arrays: None).
    pub fn as_i128(&self) -> Option<i128> {
        match *self {
            Value::Int(v) => Some(v as i128),
            Value::Uint(v) => Some(v as i128),
            _ => None,
        }
    }

    /// As a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Int(v) => (*v).into(),
            Value::Uint(v) => (*v).into(),
            Value::Str(s) => s.clone().into(),
            Value::Array(a) => a.clone().into(),
            Value::Bytes(b) => b.clone().into(),
            Value::Missing => serde_json::Value::Null,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Uint(v) => write!(f, "{v}"),
            Value::Str(s) => write!(f, "{s}"),
            Value::Array(a) => write!(f, "{a:?}"),
            Value::Bytes(b) => write!(f, "{b:02x?}"),
            Value::Missing => write!(f, "?"),
        }
    }
}

/// Why a `format` file could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tracepoint format, line {line}: {why}")]
pub struct FormatError {
    /// 1-based line in the file.
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

impl Format {
    /// Parses the text of a `format` file.
    pub fn parse(text: &str) -> Result<Format, FormatError> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let bad = |why: String| FormatError { line: n + 1, why };
            let l = line.trim();
            if let Some(v) = l.strip_prefix("name:") {
                name = Some(v.trim().to_owned());
            } else if let Some(v) = l.strip_prefix("ID:") {
                id = Some(v.trim().parse::<u64>().map_err(|_| bad(format!("ID {v:?} is not a number")))?);
            } else if l.starts_with("field:") {
                fields.push(parse_field(l).map_err(bad)?);
            }
        }
        let name = name.ok_or(FormatError { line: 0, why: "no name: line".into() })?;
        let id = id.ok_or(FormatError { line: 0, why: "no ID: line".into() })?;
        Ok(Format { name, id, fields })
    }

    /// Reads `events/SYS/NAME/format`.
    pub fn read(fs: &TraceFsDir, sys: &str, name: &str) -> Result<Format, String> {
        let path = fs.event_dir(sys, name).join("format");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Format::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The names of the fields that are not common ones, for messages.
    pub fn own_field_names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.name.as_str()).filter(|n| !n.starts_with("common_")).collect()
    }
}

/// `field:TYPE NAME[N]; offset:O; size:S; signed:B;`
fn parse_field(l: &str) -> Result<Field, String> {
    let mut decl = None;
    let (mut offset, mut size, mut signed) = (None, None, false);
    for part in l.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(d) = part.strip_prefix("field:") {
            decl = Some(d.trim());
        } else if let Some(v) = part.strip_prefix("offset:") {
            offset = v.parse::<usize>().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.parse::<usize>().ok();
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = v == "1";
        }
    }
    let decl = decl.ok_or_else(|| format!("{l:?}: no field declaration"))?;
    let (offset, size) = offset.zip(size).ok_or_else(|| format!("{l:?}: no offset or size"))?;
    // The name is the last identifier; an array suffix `[N]` follows it.
    let (head, array) = match decl.strip_suffix(']').and_then(|d| d.rsplit_once('[')) {
        Some((h, n)) => (h.trim_end(), Some(n.trim())),
        None => (decl, None),
    };
    let split = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
    let name = head[split..].to_owned();
    let ctype = head[..split].trim().to_owned();
    if name.is_empty() {
        return Err(format!("{l:?}: no field name"));
    }
    let data_loc = ctype.starts_with("__data_loc");
    let is_char = ctype.trim_end_matches("[]").trim_end().ends_with("char");
    let kind = if data_loc {
        if is_char {
            FieldKind::DataLocStr
        } else {
            FieldKind::DataLocBytes
        }
    } else if let Some(n) = array {
        if is_char {
            FieldKind::Str
        } else {
            let count = n.parse::<usize>().ok().filter(|&c| c > 0 && size % c == 0).unwrap_or(1);
            FieldKind::Array { count }
        }
    } else {
        FieldKind::Int
    };
    let ctype = match array {
        Some(n) => format!("{ctype}[{n}]"),
        None => ctype,
    };
    Ok(Field { name, ctype, offset, size, signed, kind })
}

fn int_at(raw: &[u8], at: usize, size: usize, signed: bool) -> Option<Value> {
    let b = raw.get(at..at.checked_add(size)?)?;
    let (u, bits) = match size {
        1 => (b[0] as u64, 8),
        2 => (u16::from_ne_bytes(b.try_into().ok()?) as u64, 16),
        4 => (u32::from_ne_bytes(b.try_into().ok()?) as u64, 32),
        8 => (u64::from_ne_bytes(b.try_into().ok()?), 64),
        _ => return None,
    };
    Some(if signed {
        // Sign-extend from `bits`.
        let shift = 64 - bits;
        Value::Int(((u << shift) as i64) >> shift)
    } else {
        Value::Uint(u)
    })
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl Field {
    /// This field's value in `raw` (the sample's raw record).
    pub fn decode(&self, raw: &[u8]) -> Value {
        self.try_decode(raw).unwrap_or(Value::Missing)
    }

    fn try_decode(&self, raw: &[u8]) -> Option<Value> {
        match self.kind {
            FieldKind::Int => int_at(raw, self.offset, self.size, self.signed),
            FieldKind::Str => Some(Value::Str(cstr(raw.get(self.offset..self.offset.checked_add(self.size)?)?))),
            FieldKind::DataLocStr | FieldKind::DataLocBytes => {
                let Value::Uint(loc) = int_at(raw, self.offset, 4, false)? else { return None };
                let (at, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
                let b = raw.get(at..at + len)?;
                Some(if self.kind == FieldKind::DataLocStr { Value::Str(cstr(b)) } else { Value::Bytes(b.to_vec()) })
            }
            FieldKind::Array { count } => {
                let each = self.size / count;
                (0..count)
                    .map(|k| match int_at(raw, self.offset + k * each, each, self.signed)? {
                        Value::Int(v) => Some(v),
                        Value::Uint(v) => Some(v as i64),
                        _ => None,
                    })
                    .collect::<Option<Vec<i64>>>()
                    .map(Value::Array)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sched:sched_switch and syscalls:sys_enter_openat as kernel 6.18 writes them, plus a
    /// __data_loc string and an int array (from other events of the same kernel).
    const SWITCH: &str = "name: sched_switch
ID: 372
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:int prev_prio;\toffset:28;\tsize:4;\tsigned:1;
\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;
\tfield:__data_loc char[] name;\toffset:40;\tsize:4;\tsigned:0;
\tfield:u32 vals[2];\toffset:44;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:52;\tsize:8;\tsigned:0;

print fmt: \"prev_comm=%s\", REC->prev_comm
";

    #[test]
    fn formats_parse() {
        let f = Format::parse(SWITCH).unwrap();
        assert_eq!((f.name.as_str(), f.id, f.fields.len()), ("sched_switch", 372, 11));
        let pid = f.field("common_pid").unwrap();
        assert_eq!((pid.offset, pid.size, pid.signed, pid.kind), (4, 4, true, FieldKind::Int));
        let comm = f.field("prev_comm").unwrap();
        assert_eq!((comm.kind, comm.size, comm.ctype.as_str()), (FieldKind::Str, 16, "char[16]"));
        assert_eq!(f.field("name").unwrap().kind, FieldKind::DataLocStr);
        assert_eq!(f.field("vals").unwrap().kind, FieldKind::Array { count: 2 });
        let p = f.field("filename").unwrap();
        assert_eq!((p.ctype.as_str(), p.kind), ("const char *", FieldKind::Int));
        assert_eq!(f.own_field_names()[0], "prev_comm");
        assert!(Format::parse("name: x\n").is_err());
        assert!(Format::parse("name: x\nID: y\n").unwrap_err().why.contains("not a number"));
    }

    #[test]
    fn raw_records_decode_and_short_ones_do_not_panic() {
        let f = Format::parse(SWITCH).unwrap();
        let mut raw = vec![0u8; 60];
        raw[0..2].copy_from_slice(&372u16.to_ne_bytes());
        raw[4..8].copy_from_slice(&(-5i32).to_ne_bytes());
        raw[8..12].copy_from_slice(b"bash");
        raw[24..28].copy_from_slice(&4242i32.to_ne_bytes());
        raw[32..40].copy_from_slice(&(-1i64).to_ne_bytes());
        // __data_loc: "hi\0" at offset 56, length 3.
        raw[40..44].copy_from_slice(&((3u32 << 16) | 56).to_ne_bytes());
        raw[44..48].copy_from_slice(&7u32.to_ne_bytes());
        raw[48..52].copy_from_slice(&9u32.to_ne_bytes());
        raw[56..59].copy_from_slice(b"hi\0");
        let v = |n: &str| f.field(n).unwrap().decode(&raw);
        assert_eq!(v("common_type"), Value::Uint(372));
        assert_eq!(v("common_pid"), Value::Int(-5));
        assert_eq!(v("prev_comm"), Value::Str("bash".into()));
        assert_eq!(v("prev_pid"), Value::Int(4242));
        assert_eq!(v("prev_state"), Value::Int(-1));
        assert_eq!(v("name"), Value::Str("hi".into()));
        assert_eq!(v("vals"), Value::Array(vec![7, 9]));
        // filename (52..60) spans past the data_loc bytes: still in bounds here.
        assert!(matches!(v("filename"), Value::Uint(_)));
        // Truncated record, and a data_loc pointing outside it.
        assert_eq!(f.field("prev_state").unwrap().decode(&raw[..30]), Value::Missing);
        raw[40..44].copy_from_slice(&((200u32 << 16) | 56).to_ne_bytes());
        assert_eq!(f.field("name").unwrap().decode(&raw), Value::Missing);
    }
}
