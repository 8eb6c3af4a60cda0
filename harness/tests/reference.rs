//! The reference workload: deterministic work, sensible per-call costs, and one real measured run
//! of `reference_main` in a child process (this test binary re-executes itself; `REF_CHILD_ENV`
//! selects the child side) through `runner::run_once`, like the CLI's `__reference` will be.

use std::time::{Duration, Instant};

use funcscope_harness::reference::{self, Workload, REFERENCE_CHECKPOINTS, REFERENCE_SCENARIO, SEED};
use funcscope_harness::runner::{run_once, Launch};

const REF_CHILD_ENV: &str = "FUNCSCOPE_TEST_REFERENCE_CHILD";

#[test]
fn work_is_deterministic() {
    let a = reference::run_iterations(SEED, 2000);
    assert_eq!(a, reference::run_iterations(SEED, 2000));
    assert_eq!(a.iterations, 2000);
    assert_ne!(a.checksum, reference::run_iterations(SEED ^ 1, 2000).checksum);
    let (mut x, mut y) = (Workload::new(7), Workload::new(7));
    for _ in 0..500 {
        assert_eq!((x.alu(), x.cache(), x.branchy()), (y.alu(), y.cache(), y.branchy()));
    }
}

#[test]
fn run_for_stops_near_the_duration() {
    let t0 = Instant::now();
    let r = reference::run_for(Duration::from_millis(50));
    let el = t0.elapsed();
    assert!(r.iterations >= 256, "{r:?}");
    assert!(el >= Duration::from_millis(50) && el < Duration::from_secs(5), "{el:?}");
}

/// Each checkpoint costs tens of ns to a few us per call (very wide bounds: the machine is noisy
/// and this may run unoptimised).
#[test]
fn per_call_costs_are_in_range() {
    let mut w = Workload::new(SEED);
    let calls = 20_000u32;
    #[allow(clippy::type_complexity)]
    let ops: [(&str, fn(&mut Workload) -> u64); 3] =
        [("ref_alu", Workload::alu), ("ref_cache", Workload::cache), ("ref_branchy", Workload::branchy)];
    for (name, op) in ops {
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t0 = Instant::now();
            for _ in 0..calls {
                std::hint::black_box(op(&mut w));
            }
            best = best.min(t0.elapsed().as_secs_f64() * 1e9 / f64::from(calls));
        }
        eprintln!("{name}: {best:.0} ns/call");
        assert!((20.0..20_000.0).contains(&best), "{name}: {best:.0} ns/call");
    }
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(reference::reference_main(&["--duration-ms".into(), "soon".into()]), 2);
    assert_eq!(reference::reference_main(&["--frobnicate".into()]), 2);
}

/// The child's side of `measured_in_a_child_process`. Not a test of its own: without the
/// environment variable it returns at once.
#[test]
fn reference_child() {
    if std::env::var_os(REF_CHILD_ENV).is_none() {
        return;
    }
    let code = reference::reference_main(&["--duration-ms".into(), "200".into()]);
    assert_eq!(code, 0);
}

#[test]
fn measured_in_a_child_process() {
    let l = Launch {
        name: REFERENCE_SCENARIO.into(),
        program: std::env::current_exe().unwrap(),
        args: ["--exact", "reference_child", "--nocapture", "--test-threads=1"].map(String::from).to_vec(),
        env: vec![(REF_CHILD_ENV.into(), "1".into())],
        timeout: Duration::from_secs(60),
        attach_timeout: Duration::from_secs(20),
        cpu: None,
        // Exercised here: the program runs from a private copy made for the run.
        fresh_copy: true,
        uprobes: Vec::new(),
        event_pairs: Vec::new(),
    };
    let out = run_once(&l).unwrap_or_else(|e| panic!("{e}"));
    let r = &out.result;
    assert_eq!(r.processes, 1);
    assert!(out.stdout_tail.contains("__reference: iterations="), "{}", out.stdout_tail);
    for cp in REFERENCE_CHECKPOINTS {
        let c = r.checkpoints.get(cp).unwrap_or_else(|| panic!("{cp} missing: {:?}", r.checkpoints.keys()));
        assert!(c.count > 0, "{cp}: {c:?}");
        assert_eq!(c.lost, 0, "{cp}: {c:?}");
        let s = c.summary.as_ref().expect("samples were read");
        assert_eq!(s.count, c.count, "{cp}");
        assert!(s.p50 > 0.0 && s.p50 < 50_000.0, "{cp}: {s:?}");
        // The probe's exact aggregates (what level Lite shows) agree with the samples read:
        // nothing was lost, so the same calls.
        let t = c.totals.expect("aggregates are always read");
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(close(t.min_ns, s.min) && close(t.max_ns, s.max) && close(t.mean_ns, s.mean), "{cp}: {t:?} vs {s:?}");
    }
    // Every iteration calls each checkpoint once.
    let counts: Vec<u64> = REFERENCE_CHECKPOINTS.iter().map(|cp| r.checkpoints[*cp].count).collect();
    assert!(counts.iter().all(|&c| c == counts[0]), "{counts:?}");
}

#[test]
fn launch_builds_the_subcommand_line() {
    let l = reference::launch(
        "/bin/funcscope".into(),
        vec!["__reference".into()],
        Duration::from_millis(300),
        Duration::from_secs(60),
        Duration::from_secs(10),
    );
    assert_eq!(l.name, REFERENCE_SCENARIO);
    assert_eq!(l.args, ["__reference", "--duration-ms", "300"]);
}
