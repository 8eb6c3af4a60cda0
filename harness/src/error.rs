//! The harness's error type: everything that stops a command before or instead of a verdict.
//!
//! Each variant maps to one documented exit code ([`Error::exit_code`]), so the CLI never decides
//! an exit code by reading a message. A scenario that fails *during* an experiment is not an
//! `Error`: it is a result ([`crate::model::ScenarioStatus::Failed`]) reported with the others,
//! because the other scenarios' verdicts are still worth having. [`Error::Run`] is for commands
//! that have nothing else to report (e.g. recording a baseline from a failed run).

use std::path::PathBuf;

use crate::baseline::BaselineError;
use crate::callgrind::CallgrindError;
use crate::config::ConfigError;
use crate::exit_code;
use crate::runner::RunError;

/// A command's failure; [`Error::exit_code`] gives its exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad arguments or options (the message names the option and what it expects).
    #[error("{0}")]
    Usage(String),
    /// `funcscope.toml` is missing or malformed (the message names the file and line).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A committed baseline is malformed or could not be written (file, line, field).
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    /// A `cargo build` (or locating what it built) failed.
    #[error("{0}")]
    Build(String),
    /// A git operation failed.
    #[error("{0}")]
    Git(String),
    /// A revision (branch, tag, commit) does not name a commit of the repository.
    #[error("{rev:?} is not a commit in {repo} (a branch, tag or commit id)")]
    UnknownRevision {
        /// The revision as given.
        rev: String,
        /// The repository searched.
        repo: PathBuf,
    },
    /// A file or directory could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A program the command needed could not be run to completion (crash, timeout, no attach).
    #[error(transparent)]
    Run(#[from] RunError),
    /// An instruction-count run under callgrind could not be made or failed (the message names
    /// the fix; [`CallgrindError::exit_code`] decides 2 or 3).
    #[error(transparent)]
    Callgrind(#[from] CallgrindError),
    /// A scenario failed in a way that leaves the command nothing to report (the message says
    /// which scenario and why).
    #[error("{0}")]
    ScenarioFailed(String),
}

impl Error {
    /// The documented exit code ([`crate::exit_code`]): 3 for a run that failed, 2 for
    /// everything else (nothing was judged).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Run(_) | Error::ScenarioFailed(_) => exit_code::SCENARIO_FAILED,
            Error::Callgrind(e) => e.exit_code(),
            _ => exit_code::USAGE,
        }
    }

    /// An I/O error with what was being done (naming the path).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    /// An I/O error on `path` while `doing` something with it ("writing", "creating", ...).
    pub fn at(doing: &str, path: &std::path::Path, source: std::io::Error) -> Error {
        Error::io(format!("{doing} {}", path.display()), source)
    }
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
