//! `cargo xtask`: the project's task runner, a dispatcher over `funcscope-harness`.
//!
//! ```text
//! cargo xtask regress         build the scenarios, run them, compare with baselines/, gate
//! cargo xtask baseline        record baselines/<scenario>.toml from fresh runs
//! cargo xtask compare A [B]   paired A/B of two revisions (B: the working tree)
//! cargo xtask calibrate       A/A noise and minimum detectable effects (--write: store the noise)
//! cargo xtask verdict-bench   measured detection and false-alarm rates of the gate
//! cargo xtask run -- PROGRAM [ARGS]   measure any instrumented program
//! cargo xtask snoop BIN:SYM... -- CMD   per-call latency of uninstrumented functions (uprobes)
//! cargo xtask events trace|multi-trace|top -e SELECTOR [-- CMD]   tracepoints, perf-prof style
//! cargo xtask events list [PATTERN]   tracepoints and their fields
//! cargo xtask diff A.json B.json      judge two saved reports offline
//! cargo xtask history SCEN/CHECKPOINT  trend over the --history file, with change points
//! ```
//! **Invariant:** no logic lives here that the harness lacks; another workspace gets the same
//! commands with its own `funcscope.toml` and this one line of `main`.

#![forbid(unsafe_code)]

fn main() {
    std::process::exit(funcscope_harness::cli::main());
}
