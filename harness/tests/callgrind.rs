//! Instruction counts under callgrind, with real valgrind runs of real programs: the probe's
//! `cg_fixture` example (known work per checkpoint) and the bundled `codec` scenario.
//!
//! Every test skips, printing why, when valgrind is not installed (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use funcscope_harness::callgrind::{self, CgRun, Launch};
use funcscope_harness::commands::instructions::{instruction_args, judge, Arms, CountBaseline, CountFingerprint};
use funcscope_harness::snoop::gate::GateProbe;
use funcscope_harness::stats::{Correction, CountRule, Verdict};

/// The gate's defaults: alpha 0.01, Holm, 0.25 %.
const RULE: CountRule = CountRule { alpha: 0.01, correction: Correction::Holm, min_effect: 0.0025 };

fn arms<'a>(base: &'a CountBaseline, current: &'a CountBaseline) -> [Arms<'a>; 1] {
    [Arms { scenario: "codec", base, current, paired: false }]
}

mod common;
use common::text;

fn have_valgrind() -> bool {
    match callgrind::check_valgrind() {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            false
        }
    }
}

/// Builds the probe's `cg_fixture` example once.
fn fixture() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
        let st = Command::new(cargo)
            .args(["build", "--quiet", "-p", "funcscope", "--example", "cg_fixture"])
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(st.success(), "building cg_fixture failed");
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        target.join("debug/examples/cg_fixture")
    })
}

fn run_fixture(args: &[&str]) -> CgRun {
    run_program(fixture(), args, false)
}

fn run_program(program: &Path, args: &[&str], cache_sim: bool) -> CgRun {
    let l = Launch {
        name: "cg_fixture".into(),
        program: program.to_path_buf(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        cache_sim,
        timeout: Duration::from_secs(300),
        uprobes: Vec::new(),
    };
    callgrind::run(&l).unwrap_or_else(|e| panic!("{} {args:?}: {e}", program.display()))
}

/// (calls, min, max) instructions of checkpoint `name`.
fn counts(r: &CgRun, name: &str) -> (u64, u64, u64) {
    let c = r.checkpoints.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no {name} in {r:?}"));
    (c.calls, c.min_ir, c.max_ir)
}

/// Every call of a checkpoint around a loop of N steps costs exactly the same, and one more step
/// always costs the same number of instructions more.
#[test]
fn exact_counts_for_a_loop_of_known_length() {
    if !have_valgrind() {
        return;
    }
    let per_call = |n: u64| {
        let (calls, min, max) = counts(&run_fixture(&["--calls", "5", "--loops", &n.to_string()]), "outer");
        assert_eq!(calls, 5);
        assert_eq!(min, max, "N={n}: every call executes the same instructions");
        min
    };
    let (a, b, c, d) = (per_call(100), per_call(101), per_call(102), per_call(200));
    let step = b - a;
    assert!(step > 0);
    assert_eq!(c - b, step, "N -> N+1 adds a constant: {a} {b} {c}");
    assert_eq!(d - a, 100 * step, "100 more steps cost 100 steps: {a} {d}");
}

/// A checkpoint's count includes the checkpoints nested in it, exactly.
#[test]
fn nested_checkpoints_are_included() {
    if !have_valgrind() {
        return;
    }
    let r1 = run_fixture(&["--calls", "3", "--loops", "100", "--inner", "50"]);
    let r2 = run_fixture(&["--calls", "3", "--loops", "100", "--inner", "80"]);
    let (_, o1, o1max) = counts(&r1, "outer");
    let (_, i1, _) = counts(&r1, "inner");
    let (_, o2, _) = counts(&r2, "outer");
    let (calls, i2, _) = counts(&r2, "inner");
    assert_eq!(calls, 3);
    assert_eq!(o1, o1max);
    assert!(i2 > i1);
    assert_eq!(o2 - o1, i2 - i1, "outer grows by exactly what inner grows by");
    assert!(o1 > i1 + 100, "outer holds inner and its own loop: {o1} vs {i1}");
}

/// Threads: a region's count includes the instructions of a thread that works and is joined
/// inside it (callgrind serialises threads and a dump holds all threads' events).
#[test]
fn work_of_a_joined_thread_is_attributed_to_the_region() {
    if !have_valgrind() {
        return;
    }
    let step = counts(&run_fixture(&["--calls", "2", "--loops", "101"]), "outer").1
        - counts(&run_fixture(&["--calls", "2", "--loops", "100"]), "outer").1;
    let w1 = run_fixture(&["--calls", "2", "--loops", "10", "--thread-work", "20000"]);
    let w2 = run_fixture(&["--calls", "2", "--loops", "10", "--thread-work", "40000"]);
    let m = |r: &CgRun| r.checkpoints[0].mean_ir;
    let extra = m(&w2) - m(&w1);
    let expected = 20000.0 * step as f64;
    assert!(
        (extra / expected - 1.0).abs() < 0.01,
        "20000 more thread steps should add ~{expected} instructions to the region, added {extra}"
    );
}

/// Multi-process: a forked child that calls init reports from its own output file.
#[test]
fn a_forked_child_reports_its_own_counts() {
    if !have_valgrind() {
        return;
    }
    let r = run_fixture(&["--fork", "--calls", "4", "--loops", "100"]);
    let plain = run_fixture(&["--calls", "4", "--loops", "100"]);
    assert_eq!(r.processes, 1, "only the child starts the probe");
    assert_eq!(counts(&r, "outer"), counts(&plain, "outer"));
}

/// Children that exec are followed (`--trace-children=yes`): a program started through a shell,
/// by `exec` (same pid) or by fork + exec (a new pid), reports exactly the counts of a direct run.
#[test]
fn children_that_exec_are_followed() {
    if !have_valgrind() {
        return;
    }
    let plain = run_fixture(&["--calls", "3", "--loops", "100"]);
    let f = fixture().to_str().unwrap();
    for script in ["exec \"$0\" \"$@\"", "\"$0\" \"$@\"; exit $?"] {
        let r = run_program(Path::new("/bin/sh"), &["-c", script, f, "--calls", "3", "--loops", "100"], false);
        assert_eq!(r.processes, 1, "{script}: {r:?}");
        assert_eq!(counts(&r, "outer"), counts(&plain, "outer"), "{script}");
    }
}

/// Cache simulation end to end: L1 and last-level misses and estimated cycles appear, are
/// consistent (LL misses are a subset of L1 misses; cycles = Ir + 10 L1 + 100 LL) and plausible
/// (the first call's cold code misses; a call misses far less often than it executes
/// instructions), and do not change the instruction count; the CLI prints them.
#[test]
fn cache_simulation_gives_plausible_misses_and_cycles() {
    if !have_valgrind() {
        return;
    }
    let args = ["--calls", "4", "--loops", "2000"];
    let plain = run_fixture(&args);
    let sim = run_program(fixture(), &args, true);
    let (p, c) = (&plain.checkpoints[0], &sim.checkpoints[0]);
    assert_eq!((c.min_ir, c.max_ir), (p.min_ir, p.max_ir), "cache simulation does not change Ir");
    let (l1, ll, cy) = (c.mean_l1_misses.unwrap(), c.mean_ll_misses.unwrap(), c.mean_estimated_cycles.unwrap());
    assert!(l1 > 0.0, "the first call runs cold code: {c:?}");
    assert!(ll <= l1, "a last-level miss is also an L1 miss: {c:?}");
    assert!(l1 < c.mean_ir / 10.0, "a chain of register ops rarely misses: {c:?}");
    let want = c.mean_ir + 10.0 * l1 + 100.0 * ll;
    assert!((cy / want - 1.0).abs() < 1e-9 && cy > c.mean_ir, "{cy} vs {want}: {c:?}");
    assert_eq!(p.mean_l1_misses, None);

    let out = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["run", "--measure", "instructions", "--cache-sim", "--"])
        .arg(fixture())
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("L1 miss") && stdout.contains("est. cycles"), "{stdout}");
    let row: Vec<&str> =
        stdout.lines().find(|l| l.trim_start().starts_with("outer")).unwrap().split_whitespace().collect();
    let l1_cli: f64 = row[5].parse().unwrap_or_else(|_| panic!("{stdout}"));
    let cy_cli: f64 = row[7].parse().unwrap_or_else(|_| panic!("{stdout}"));
    assert!(l1_cli > 0.0 && cy_cli > c.mean_ir, "{stdout}");
}

/// The CLI's errors: valgrind missing (2, naming the install), a program without the probe (3),
/// a program failing under valgrind (3), a checkpoint never reached (3).
#[test]
fn errors_name_the_fix() {
    let cli = env!("CARGO_BIN_EXE_funcscope");
    let missing = Command::new(cli)
        .args(["run", "--measure", "instructions", "--"])
        .arg(fixture())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("apt-get install valgrind"), "{}", text(&missing));
    if !have_valgrind() {
        return;
    }
    let run =
        |args: &[&str]| Command::new(cli).args(["run", "--measure", "instructions", "--"]).args(args).output().unwrap();
    let no_probe = run(&["true"]);
    assert_eq!(no_probe.status.code(), Some(3), "{}", text(&no_probe));
    assert!(String::from_utf8_lossy(&no_probe.stderr).contains("no process started funcscope"), "{}", text(&no_probe));
    let fails = run(&["false"]);
    assert_eq!(fails.status.code(), Some(3), "{}", text(&fails));
    assert!(String::from_utf8_lossy(&fails.stderr).contains("failed under callgrind"), "{}", text(&fails));
    let f = fixture().to_str().unwrap();
    let never = run(&[f, "--calls", "0", "--inner", "5"]);
    assert_eq!(never.status.code(), Some(3), "{}", text(&never));
    assert!(String::from_utf8_lossy(&never.stderr).contains("never reached"), "{}", text(&never));
}

/// The gate on the `codec` scenario: a planted 1 % more work in `crc32c` is regressed in 10 of 10
/// trials, and an unchanged build is never flagged in 10 trials (3 runs per arm each).
#[test]
fn planted_one_percent_is_caught_and_unchanged_never_flagged() {
    if !have_valgrind() {
        return;
    }
    let codec = common::scenario_binary("codec");
    let args = instruction_args(&[], 60);
    let measure = |plant: Option<&str>| {
        let l = Launch {
            name: "codec".into(),
            program: codec.clone(),
            args: args.clone(),
            env: plant.map(|p| vec![("FUNCSCOPE_PLANT".to_owned(), p.to_owned())]).unwrap_or_default(),
            cache_sim: false,
            timeout: Duration::from_secs(300),
            uprobes: Vec::new(),
        };
        let runs: Vec<CgRun> = (0..3).map(|_| callgrind::run(&l).unwrap()).collect();
        CountBaseline::from_runs("codec", String::new(), CountFingerprint::default(), &runs)
    };
    let base = measure(None);
    for trial in 0..10 {
        let planted = measure(Some("crc32c=1"));
        let results = judge(&arms(&base, &planted), &RULE);
        let crc = results.iter().find(|r| r.checkpoint == "crc32c").unwrap();
        assert_eq!(crc.comparison.verdict, Verdict::Regressed, "trial {trial}: {crc:?}");
        assert!(crc.comparison.change > 0.005 && crc.comparison.change < 0.02, "trial {trial}: {crc:?}");
        for r in results.iter().filter(|r| r.checkpoint != "crc32c") {
            assert_ne!(r.comparison.verdict, Verdict::Regressed, "trial {trial}: {r:?}");
        }
        let same = measure(None);
        for r in judge(&arms(&base, &same), &RULE) {
            assert_eq!(r.comparison.verdict, Verdict::Unchanged, "A/A trial {trial}: {r:?}");
        }
    }
}

/// The CLI end to end on a configuration of its own: `baseline --measure instructions` records
/// `baselines/instructions/codec.toml`; `regress --measure instructions` passes on the same
/// build, fails (exit 1) with a planted 1 %, and does not gate a baseline whose toolchain
/// fingerprint differs when its commit cannot be rebuilt.
#[test]
fn baseline_and_regress_through_the_cli() {
    if !have_valgrind() {
        return;
    }
    let codec = common::scenario_binary("codec");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("funcscope.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nmeasure = [\"instructions\"]\n\n[instructions]\niterations = 40\nruns = 2\nmax_runs = 3\n\n\
             [[scenario]]\nname = \"codec\"\npath = {:?}\n",
            codec.display().to_string()
        ),
    )
    .unwrap();
    let cli = |args: &[&str], plant: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_funcscope"));
        c.args(args).arg("--config").arg(&cfg).arg("-q").current_dir(dir.path()).env_remove("FUNCSCOPE_PLANT");
        if let Some(p) = plant {
            c.env("FUNCSCOPE_PLANT", p);
        }
        c.output().unwrap()
    };
    let b = cli(&["baseline"], None);
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    let stored = dir.path().join("baselines/instructions/codec.toml");
    let toml = std::fs::read_to_string(&stored).unwrap();
    assert!(toml.contains("[checkpoints.crc32c.per_run]") && toml.contains("valgrind = \"valgrind-"), "{toml}");
    let same = cli(&["regress"], None);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    assert!(!String::from_utf8_lossy(&same.stdout).contains("regressed"), "{}", text(&same));
    let (json, junit) = (dir.path().join("r.json"), dir.path().join("r.xml"));
    let planted = cli(
        &["regress", "--json", json.to_str().unwrap(), "--junit", junit.to_str().unwrap(), "--github-annotations"],
        Some("crc32c=1"),
    );
    assert_eq!(planted.status.code(), Some(1), "{}", text(&planted));
    let out = String::from_utf8_lossy(&planted.stdout);
    let line = out.lines().find(|l| l.contains("codec/crc32c")).unwrap_or_else(|| panic!("{}", text(&planted)));
    assert!(line.contains("regressed"), "{line}");
    // The instruction verdicts are in the JSON report, the JUnit file and the annotations.
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["exit_code"], 1);
    let rows = report["instructions"]["rows"].as_array().unwrap_or_else(|| panic!("{report}"));
    let crc = rows.iter().find(|r| r["checkpoint"] == "crc32c").unwrap();
    assert_eq!(crc["comparison"]["verdict"], "regressed", "{crc}");
    assert_eq!(crc["current_runs"].as_array().unwrap().len(), 2, "{crc}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuite name="instructions""#)
            && xml.contains(r#"name="crc32c instructions">"#)
            && xml.contains(r#"failure type="regressed""#),
        "{xml}"
    );
    assert!(out.contains("::error title=funcscope%3A codec/crc32c instructions regressed::"), "{out}");
    // calibrate: the spread of every checkpoint's counts over max_runs runs.
    let cal = cli(&["calibrate"], None);
    assert_eq!(cal.status.code(), Some(0), "{}", text(&cal));
    let out = String::from_utf8_lossy(&cal.stdout);
    assert!(out.contains("codec: instructions per call under callgrind, 3 run(s)"), "{out}");
    let crc = out.lines().find(|l| l.trim_start().starts_with("crc32c")).unwrap_or_else(|| panic!("{out}"));
    assert!(crc.contains("exact"), "crc32c's counts do not vary: {crc}");
    assert!(out.contains("by the rank test with 3 runs per arm"), "{out}");
    // Another toolchain, and a commit that cannot be built here: reported, not gated.
    std::fs::write(&stored, toml.replace("rustc = \"", "rustc = \"other ")).unwrap();
    let other = cli(&["regress"], Some("crc32c=1"));
    assert_eq!(other.status.code(), Some(0), "{}", text(&other));
    assert!(
        String::from_utf8_lossy(&other.stdout).contains("NOT JUDGED: baseline fingerprint differs (rustc"),
        "{}",
        text(&other)
    );
}

/// `cg_fixture`'s `chain` (not instrumented) as a uprobe checkpoint of the program itself.
fn chain_probe() -> GateProbe {
    GateProbe { name: "chain".into(), file: None, symbol: "cg_fixture::chain".into() }
}

fn run_with_chain(args: &[&str]) -> CgRun {
    let l = Launch {
        name: "cg_fixture".into(),
        program: fixture().to_path_buf(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        cache_sim: false,
        timeout: Duration::from_secs(300),
        uprobes: vec![chain_probe()],
    };
    callgrind::run(&l).unwrap_or_else(|e| panic!("cg_fixture {args:?}: {e}"))
}

fn mean_ir(r: &CgRun, name: &str) -> f64 {
    r.checkpoints.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no {name} in {r:?}")).mean_ir
}

/// A uprobe checkpoint under callgrind: the inclusive instructions per call of an uninstrumented
/// function, from callgrind's call graph. `chain` runs N steps per call: its count is exact and
/// linear in N with the same step as the `outer` checkpoint that wraps it, it is less than
/// `outer`'s (which adds the loop and the probe's dump path), and two lengths average.
#[test]
fn a_uprobe_checkpoint_counts_a_functions_instructions_per_call() {
    if !have_valgrind() {
        return;
    }
    let per_call = |n: u64| {
        let r = run_with_chain(&["--calls", "5", "--loops", &n.to_string()]);
        let (calls, min, max) = counts(&r, "uprobe:chain");
        assert_eq!(calls, 5, "one chain call per outer call: {r:?}");
        assert_eq!(min, max);
        let (chain, outer) = (mean_ir(&r, "uprobe:chain"), mean_ir(&r, "outer"));
        assert_eq!(chain.fract(), 0.0, "every call executes the same instructions: {chain}");
        assert!(chain < outer, "outer holds chain: {chain} vs {outer}");
        (chain as u64, outer as u64)
    };
    let ((a, oa), (b, ob), (d, od)) = (per_call(100), per_call(101), per_call(200));
    let step = b - a;
    assert!(step > 0);
    assert_eq!(d - a, 100 * step, "100 more steps cost 100 steps: {a} {d}");
    assert_eq!((ob - oa, od - oa), (step, 100 * step), "outer grows exactly as chain does");
    // With --inner 200, chain runs twice per outer call (100 and 200 steps): twice the calls,
    // the mean of the two costs.
    let r = run_with_chain(&["--calls", "5", "--loops", "100", "--inner", "200"]);
    assert_eq!(counts(&r, "uprobe:chain").0, 10);
    assert_eq!(mean_ir(&r, "uprobe:chain") * 2.0, (a + d) as f64, "{r:?}");
}

/// The gate on a uprobe checkpoint's counts: one more step in `chain` (100 -> 101, about 1 %) is
/// regressed, the same build is unchanged (3 runs per arm).
#[test]
fn a_planted_change_in_a_uprobe_checkpoint_is_regressed() {
    if !have_valgrind() {
        return;
    }
    let measure = |loops: &str| {
        let runs: Vec<CgRun> = (0..3).map(|_| run_with_chain(&["--calls", "4", "--loops", loops])).collect();
        CountBaseline::from_runs("cg_fixture", String::new(), CountFingerprint::default(), &runs)
    };
    let (base, same, planted) = (measure("100"), measure("100"), measure("101"));
    let arms = |current| [Arms { scenario: "cg_fixture", base: &base, current, paired: false }];
    let got = judge(&arms(&planted), &RULE);
    let chain = got.iter().find(|r| r.checkpoint == "uprobe:chain").unwrap_or_else(|| panic!("{got:?}"));
    assert_eq!(chain.comparison.verdict, Verdict::Regressed, "{chain:?}");
    assert!(chain.comparison.change > 0.005 && chain.comparison.change < 0.02, "{chain:?}");
    for r in judge(&arms(&same), &RULE) {
        assert_eq!(r.comparison.verdict, Verdict::Unchanged, "A/A: {r:?}");
    }
}

/// A uprobe checkpoint whose symbol does not exist is a setup error (2) naming it, before
/// valgrind runs; through the CLI, `run --measure instructions --uprobe` reports the checkpoint.
#[test]
fn uprobe_checkpoints_through_run_and_their_errors() {
    if !have_valgrind() {
        return;
    }
    let l = Launch {
        name: "cg_fixture".into(),
        program: fixture().to_path_buf(),
        args: Vec::new(),
        env: Vec::new(),
        cache_sim: false,
        timeout: Duration::from_secs(300),
        uprobes: vec![GateProbe { name: "x".into(), file: None, symbol: "no_such_function_here".into() }],
    };
    let e = callgrind::run(&l).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("uprobe:x") && e.to_string().contains("no_such_function_here"), "{e}");
    let spec = format!("chain={}:cg_fixture::chain", fixture().display());
    let out = Command::new(env!("CARGO_BIN_EXE_funcscope"))
        .args(["run", "--measure", "instructions", "--uprobe", &spec, "--"])
        .arg(fixture())
        .args(["--calls", "3", "--loops", "50"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.contains("uprobe:chain")).unwrap_or_else(|| panic!("{}", text(&out)));
    assert!(line.split_whitespace().any(|w| w == "3"), "3 calls: {line}\n{}", text(&out));
}
