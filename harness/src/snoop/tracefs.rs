//! Uprobe events created in tracefs (`uprobe_events`), opened as tracepoints.
//!
//! Why not only the uprobe PMU: the kernel builds an *inherited* copy of a uprobe-PMU event by
//! reading the path pointer again in the traced process's memory, so threads and children created
//! after the start are silently not traced (seen on kernel 6.18: 0 hits from 4 threads). A tracefs
//! uprobe event is a tracepoint, whose inherited copies need nothing from user memory.
//!
//! The events live in a group named after this process (`funcscope_<pid>`) and are removed on
//! drop, after the perf events that use them are closed (the kernel refuses to remove an event
//! in use). Where tracefs is not mounted it is mounted at `/sys/kernel/tracing`, its standard
//! place (root only; the caller falls back to the PMU when this fails).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::SnoopError;

/// The uprobe events this process created.
#[derive(Debug)]
pub struct TraceFs {
    dir: PathBuf,
    group: String,
    created: Vec<String>,
    /// Said once, for the report (e.g. that tracefs was mounted).
    pub note: Option<String>,
}

/// Fetch arguments for an entry probe: the first six integer arguments of the platform's C
/// calling convention, as fields `arg1` .. `arg6` (u64).
#[cfg(target_arch = "x86_64")]
pub const ARG_FETCH: &str = "arg1=%di:u64 arg2=%si:u64 arg3=%dx:u64 arg4=%cx:u64 arg5=%r8:u64 arg6=%r9:u64";
/// Fetch arguments for an entry probe: the first six integer arguments of the platform's C
/// calling convention, as fields `arg1` .. `arg6` (u64).
#[cfg(target_arch = "aarch64")]
pub const ARG_FETCH: &str = "arg1=%x0:u64 arg2=%x1:u64 arg3=%x2:u64 arg4=%x3:u64 arg5=%x4:u64 arg6=%x5:u64";
/// Fetch arguments for an entry probe (none known on this architecture).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const ARG_FETCH: &str = "";
/// Fetch argument for a return probe: the return value, as field `ret` (u64).
pub const RET_FETCH: &str = "ret=$retval:u64";

const PLACES: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

impl TraceFs {
    /// The tracefs with `uprobe_events`, mounted if needed; Err says why none is usable.
    pub fn open() -> Result<TraceFs, String> {
        let mut note = None;
        let found = PLACES.iter().map(Path::new).find(|d| d.join("uprobe_events").exists());
        let dir = match found {
            Some(d) => d.to_path_buf(),
            None => {
                let out = std::process::Command::new("mount")
                    .args(["-t", "tracefs", "nodev", PLACES[0]])
                    .output()
                    .map_err(|e| format!("tracefs is not mounted and `mount` could not run: {e}"))?;
                if !out.status.success() || !Path::new(PLACES[0]).join("uprobe_events").exists() {
                    return Err(format!(
                        "tracefs is not mounted and mounting it at {} failed: {}",
                        PLACES[0],
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                note = Some(format!("mounted tracefs at {} (it was not mounted)", PLACES[0]));
                PathBuf::from(PLACES[0])
            }
        };
        let fs = TraceFs { dir, group: format!("funcscope_{}", std::process::id()), created: Vec::new(), note };
        fs.remove_stale();
        Ok(fs)
    }

    /// Removes the events of earlier funcscope processes that died without removing them (killed
    /// with SIGKILL): groups `funcscope_<pid>` whose pid is gone. Best effort.
    fn remove_stale(&self) {
        let Ok(list) = std::fs::read_to_string(self.dir.join("uprobe_events")) else { return };
        for line in list.lines() {
            // "p:funcscope_123/f0_entry_456 /path:0x..."
            let Some(event) = line.split_whitespace().next().and_then(|e| e.split_once(':')).map(|(_, e)| e) else {
                continue;
            };
            let Some(pid) = event.strip_prefix("funcscope_").and_then(|r| r.split_once('/')).map(|(p, _)| p) else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                let _ = self.write(&format!("-:{event}\n"));
            }
        }
    }

    /// Creates the event `name` (`[A-Za-z0-9_]`) probing `path` at file `offset`, a return probe
    /// if `retprobe`; returns its tracepoint id.
    pub fn add(&mut self, name: &str, retprobe: bool, path: &Path, offset: u64) -> Result<u64, SnoopError> {
        self.add_with_fetch(name, retprobe, path, offset, "")
    }

    /// Like [`TraceFs::add`], with fetch arguments (`NAME=FETCHARG:TYPE ...`, e.g.
    /// [`ARG_FETCH`] or [`RET_FETCH`]) that become the event's fields in its `format`.
    pub fn add_with_fetch(
        &mut self,
        name: &str,
        retprobe: bool,
        path: &Path,
        offset: u64,
        fetch: &str,
    ) -> Result<u64, SnoopError> {
        let p = path.to_str().filter(|p| !p.chars().any(char::is_whitespace)).ok_or_else(|| {
            SnoopError::Perf(format!("{}: a path tracefs cannot take (spaces or not UTF-8)", path.display()))
        })?;
        let kind = if retprobe { 'r' } else { 'p' };
        let line = format!("{kind}:{}/{name} {p}:{offset:#x} {fetch}\n", self.group);
        self.write(&line).map_err(|e| match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => SnoopError::Privilege {
                paranoid: std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                    .map_or_else(|_| "unknown".into(), |s| s.trim().to_owned()),
                why: format!("creating a uprobe event in {}: {e}", self.dir.display()),
            },
            _ => SnoopError::Perf(format!("creating uprobe event {}: {e}", line.trim())),
        })?;
        self.created.push(name.to_owned());
        let id_file = self.dir.join("events").join(&self.group).join(name).join("id");
        let id =
            std::fs::read_to_string(&id_file).map_err(|e| SnoopError::Perf(format!("{}: {e}", id_file.display())))?;
        id.trim().parse().map_err(|_| SnoopError::Perf(format!("{}: not an id: {id:?}", id_file.display())))
    }

    /// The tracefs group the events are created in (`funcscope_<pid>`): their tracepoints are
    /// `GROUP:NAME`.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The tracefs directory (its `events/` holds the created events' formats).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write(&self, line: &str) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().append(true).open(self.dir.join("uprobe_events"))?;
        f.write_all(line.as_bytes())
    }
}

impl Drop for TraceFs {
    fn drop(&mut self) {
        for name in std::mem::take(&mut self.created) {
            let _ = self.write(&format!("-:{}/{}\n", self.group, name));
        }
    }
}
