//! File-system helpers shared by the writers of baselines and reports.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A failed [`write_atomic`]: which path, which step, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot {action}: {source}", path.display())]
pub struct WriteError {
    /// The path the step failed on: the directory, the temporary file or the destination.
    pub path: PathBuf,
    /// The step: `"create directory"`, `"create a temporary file in"`, `"write"`, `"fsync"` or
    /// `"rename onto"`.
    pub action: &'static str,
    /// The OS error (or the one `render` returned).
    #[source]
    pub source: io::Error,
}

/// Writes `path` atomically: `render` writes into a temporary file in `path`'s directory (created
/// if missing), which is flushed, fsynced and renamed over `path`; then the directory is fsynced.
/// A reader, or a crash or SIGKILL at any point, sees the old file or the new one, never a partial
/// one, and on error no temporary file is left behind. The new file gets `mode` (unix permission
/// bits, less the umask; ignored elsewhere) rather than the temporary file's private 0600.
///
/// # Errors
/// The first step that failed, naming its path, including an error returned by `render`.
pub fn write_atomic(
    path: &Path,
    mode: u32,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), WriteError> {
    let fail = |path: &Path, action: &'static str| {
        let path = path.to_owned();
        move |source| WriteError { path, action, source }
    };
    // Same directory, hence same file system: that is what makes the rename atomic.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(fail(dir, "create directory"))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{file_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(mode));
    #[cfg(not(unix))]
    let _ = mode;
    // Dropping the NamedTempFile on any error path deletes it.
    let mut tmp = builder.tempfile_in(dir).map_err(fail(dir, "create a temporary file in"))?;
    let written = {
        let mut w = BufWriter::new(tmp.as_file_mut());
        render(&mut w).and_then(|()| w.flush())
    };
    written.map_err(fail(tmp.path(), "write"))?;
    tmp.as_file().sync_all().map_err(fail(tmp.path(), "fsync"))?;
    tmp.persist(path).map_err(|e| WriteError { path: path.to_owned(), action: "rename onto", source: e.error })?;
    // Make the rename itself durable. Best effort: not every platform can fsync a directory.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn fsutil_write_atomic_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/out.txt");
        write_atomic(&path, 0o644, |w| w.write_all(b"one")).unwrap();
        write_atomic(&path, 0o644, |w| w.write_all(b"two")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(names(path.parent().unwrap()), ["out.txt"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            // 0644 less whatever umask the test runs under: never more than asked, never 0600.
            assert_eq!(mode & !0o644, 0, "{mode:o}");
            assert_ne!(mode & 0o044, 0, "{mode:o}");
        }
    }

    #[test]
    fn fsutil_write_atomic_failures_keep_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        fs::write(&path, "old").unwrap();
        let err = write_atomic(&path, 0o644, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("render failed"))
        })
        .unwrap_err();
        assert_eq!(err.action, "write");
        assert!(err.to_string().contains("render failed"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(names(dir.path()), ["out.txt"]);

        // The destination is a directory: the rename fails, naming it.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("keep"), "x").unwrap();
        let err = write_atomic(&blocked, 0o644, |w| w.write_all(b"new")).unwrap_err();
        assert_eq!((err.action, err.path.as_path()), ("rename onto", blocked.as_path()));
        assert_eq!(names(dir.path()), ["blocked", "out.txt"]);
    }
}
