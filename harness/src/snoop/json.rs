//! snoop's machine-readable output: one JSON object per event for `--json-lines` (for forwarding
//! to other systems: one line each, flushed as it comes) and the final report for `--json`.
//!
//! Every object has `"type"`: `"call"` (one paired call), `"lost"` (records the kernel lost),
//! `"report"` (periodic, `"final": false`, or the last one, `"final": true`). Durations and
//! times are integers in ns; `start_ns` is CLOCK_MONOTONIC. `schema` versions the layout.

use serde_json::{json, Value};

use super::pair::Call;
use super::report::{FuncStats, Summary};

/// Version of the layout below.
pub const SCHEMA: u32 = 1;

/// One paired call of function `name`.
pub fn call(c: &Call, name: &str) -> Value {
    json!({
        "type": "call",
        "func": name,
        "pid": c.pid,
        "tid": c.tid,
        "start_ns": c.start_ns,
        "duration_ns": c.duration_ns,
        "args": c.args,
        "ret": c.ret,
    })
}

/// A loss of `records` records.
pub fn lost(records: u64) -> Value {
    json!({ "type": "lost", "records": records })
}

fn func(f: &FuncStats) -> Value {
    // The ns histogram's non-empty log2 slots as [low, high, count] (bcc's slot bounds).
    let hist: Vec<Value> = f.log2[0]
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .map(|(i, &n)| {
            let low = if i == 0 { 0 } else { 1u64 << (i - 1) };
            let high = if i == 0 {
                0
            } else if i == 64 {
                u64::MAX
            } else {
                (1u64 << i) - 1
            };
            json!([low, high, n])
        })
        .collect();
    let slow = f.slow.as_ref().map(|s| {
        json!({
            "threshold_ns": s.opts.threshold_ns,
            "count": s.count,
            "slowest": s.slowest.iter().map(|c| call(c, &f.name)).collect::<Vec<_>>(),
        })
    });
    json!({
        "name": f.name,
        "target": f.spec,
        "count": f.count,
        "sum_ns": f.sum_ns as f64,
        "mean_ns": f.mean_ns(),
        "min_ns": f.min_ns,
        "max_ns": f.max_ns,
        "p50_ns": f.quantile_ns(0.5),
        "p99_ns": f.quantile_ns(0.99),
        "log2_ns": hist,
        "slow": slow,
    })
}

/// A report: periodic (`last` false) or final.
pub fn report(s: &Summary, last: bool) -> Value {
    let p = &s.pairing;
    json!({
        "type": "report",
        "schema": SCHEMA,
        "final": last,
        "elapsed_s": s.elapsed_s,
        "functions": s.funcs.iter().map(func).collect::<Vec<_>>(),
        "pairing": {
            "lost_records": p.lost_records,
            "loss_reports": p.loss_reports,
            "gap_dropped": p.gap_dropped,
            "unmatched_returns": p.unmatched_returns,
            "unreturned": p.unreturned,
            "open_calls": s.open_calls,
        },
    })
}
