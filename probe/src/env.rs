//! The environment contract between the harness, the probe and instrumented programs.
//!
//! Every variable funcscope's processes pass to each other is named here once, so the side that
//! sets one and the side that reads it cannot drift apart by a typo. Each constant says who sets
//! the variable and who reads it.

/// Directory for the attach sockets (`<dir>/<pid>.sock`).
///
/// Set by the harness's runner to a fresh private directory per run, so it finds every process
/// of the run and nothing else; users may set it too. Read by the probe when a session is created
/// without an explicit socket directory (see [`crate::attach::default_socket_dir`]); an empty
/// value counts as unset.
pub const SOCKET_DIR: &str = "FUNCSCOPE_SOCKET_DIR";

/// Milliseconds an instrumented program waits for a reader to attach before it starts measuring.
///
/// Set by the harness's runner to its attach timeout. Read by programs that support it (the
/// bundled scenarios and the harness's reference workload), not by the probe itself: a program
/// that ignores it is measured from whenever the reader attaches.
pub const WAIT_ATTACH_MS: &str = "FUNCSCOPE_WAIT_ATTACH_MS";

/// Planted slowdowns, `<checkpoint>=<percent>[,<checkpoint>=<percent>...]`: real extra work inside
/// a checkpoint, to rehearse a regression.
///
/// Set by the harness (its quality trials, or a user's per-arm environment). Read by the bundled
/// scenarios only; the probe ignores it.
pub const PLANT: &str = "FUNCSCOPE_PLANT";

/// Clock override: `tsc` or `hardware` forces the hardware counter, `monotonic` forces
/// `CLOCK_MONOTONIC_RAW`, `fenced` (or `tsc-fenced`) selects [`crate::ClockChoice::Fenced`] (the
/// TSC read as `lfence; rdtsc`, so EXIT waits for the region's work); anything else keeps the
/// program's [`crate::ClockChoice`].
///
/// Set by users (e.g. on a machine whose TSC the checks distrust). Read by the probe when a session
/// is created (see [`crate::clock::decide`]).
pub const CLOCK: &str = "FUNCSCOPE_CLOCK";

/// `1` asks a program running under `valgrind --tool=callgrind` to delimit its checkpoint regions
/// with labelled callgrind dumps instead of timing them (see [`crate::callgrind`]).
///
/// Set by the harness's instruction-count pass (`funcscope_harness::callgrind`). Read by the probe
/// once, at `init`; without valgrind underneath it has no effect.
pub const CALLGRIND: &str = "FUNCSCOPE_CALLGRIND";
