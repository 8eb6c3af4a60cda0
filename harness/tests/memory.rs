//! Peak memory of the harness for a long run of a fast scenario: samples are counted per distinct
//! tick value as they are drained (`stats::TickCounts`), so the harness's memory does not grow
//! with the run's length (it was ~16 bytes per call: ~17 GB for 60 s of a fast scenario).
//!
//! A benchmark, not part of the normal test run (it takes a minute):
//! `cargo test -p funcscope-harness --test memory -- --ignored --nocapture`
//! (`FUNCSCOPE_MEM_SECONDS`, default 60; `FUNCSCOPE_MEM_SCENARIO`, default `http_parse`). It
//! prints the peak resident memory (`VmHWM` of this process, which does the draining; the
//! scenario is another process) and fails if it exceeds 256 MiB.

use std::time::Duration;

use funcscope_harness::runner::{run_once, Launch};

#[allow(dead_code)] // shared helpers; this benchmark uses only some
mod common;

/// `VmHWM` (peak resident set) of this process in KiB.
fn vm_hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
#[ignore = "benchmark: a 60 s run; run with --ignored --nocapture"]
fn peak_memory_of_a_long_run_is_bounded() {
    let secs: u64 = std::env::var("FUNCSCOPE_MEM_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let scenario = std::env::var("FUNCSCOPE_MEM_SCENARIO").unwrap_or_else(|_| "http_parse".into());
    let program = common::scenario_binary(&scenario);
    let before = vm_hwm_kib();
    let l = Launch {
        name: scenario.clone(),
        program,
        args: vec!["--duration-ms".into(), (secs * 1000).to_string()],
        env: Vec::new(),
        timeout: Duration::from_secs(secs + 120),
        attach_timeout: Duration::from_secs(20),
        cpu: funcscope_harness::runner::measurement_cpu(),
        fresh_copy: false,
        uprobes: Vec::new(),
        event_pairs: Vec::new(),
    };
    let out = run_once(&l).unwrap_or_else(|e| panic!("{e}"));
    let after = vm_hwm_kib();
    let calls: u64 = out.result.checkpoints.values().map(|c| c.count).sum();
    let lost: u64 = out.result.checkpoints.values().map(|c| c.lost).sum();
    println!(
        "memory: {scenario} for {secs} s: {calls} calls drained ({lost} lost) over {:.1} s; peak RSS (VmHWM) {:.1} MiB before the run, {:.1} MiB after; keeping every sample (16 B each) would have needed {:.0} MiB",
        out.result.wall_s,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        calls as f64 * 16.0 / 1048576.0
    );
    assert!(calls > 0);
    assert!(after < 256 * 1024, "peak RSS {after} KiB");
}
