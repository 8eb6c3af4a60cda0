//! `calibrate`: A/A experiments that measure this machine's run-to-run noise per checkpoint and
//! metric, the smallest regression the gate can then detect, and store the noise in the
//! baselines so thresholds follow it.
//!
//! Design: two arms running the *same* build, interleaved in rounds (A B, B A, ...) with a
//! reference run next to each scenario's pair. From the `2 x rounds` runs of each checkpoint:
//! * raw noise: the robust coefficient of variation of the run-level values ([`stats::noise_cv`]);
//! * drift-corrected noise: the same after dividing each value by the reference speed of its
//!   round (what baseline mode judges, see [`crate::drift`]);
//! * paired noise: the spread of the per-round log ratios A/B *as the gate's test sees it*: the
//!   signed-rank test's equivalent standard error times `sqrt(rounds)` (for normal data the
//!   standard deviation; for runs that fall into whole-process modes much less, because the rank
//!   test is driven by the rounds whose runs landed in the same mode).
//!
//! The minimum detectable effect (MDE) is [`stats::detectable_shift`] (one-sided, as the gate
//! tests) at the per-test level of the gate's last planned look (its share of alpha over the
//! gated tests of the configuration) and 95 % power, for `run.max_runs` rounds (paired) or runs a
//! side (baseline mode, with the rank-sum test's spread plus `gate.session_cv`). The thresholds
//! and the verdicts read the same spreads. The A/A pairs are also judged exactly like `compare` would: any "regressed" is
//! a false alarm, reported.
//!
//! The result is a [`CalibrationReport`]: printed to the terminal and written to
//! `TARGET/funcscope/calibrate.{json,md}`.
//!
//! With `--write`, each existing baseline's `noise_cv` gets the measured noise (drift-corrected
//! if the baseline has reference runs, raw otherwise); the judge uses the larger of it and the
//! noise it sees in the runs it compares, so a checkpoint that is noisier on this machine than its
//! last baseline showed gets a threshold that says so.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{arm_runs, inputs_of, load_baselines, new_experiment, now_rfc3339, reference_spec, specs};
use super::{Part, Selection};
use crate::baseline::Baseline;
use crate::config::Config;
use crate::drift;
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::judge::{self, Decisions, Invocation, Policy};
use crate::model::{AaVerdicts, CalibrationReport, RunResult, ScenarioFailure, SessionOffset, CALIBRATION_SCHEMA};
use crate::report::{self, Document, Format, Style};
use crate::rounds::{Arm, Round};
use crate::stats::{self, Metric, Verdict};
use crate::workspace;

/// One row of the calibration table (defined in the model, [`crate::model::NoiseRow`]).
pub use crate::model::NoiseRow;

/// Power at which the minimum detectable effect is reported.
pub const MDE_POWER: f64 = 0.95;

/// How the minimum detectable effects of [`noise_rows`] are sized.
#[derive(Clone, Copy, Debug)]
pub struct MdeSizing {
    /// The one-sided alpha one test gets at the last look.
    pub per_test_alpha: f64,
    /// Rounds (paired) or runs a side (baseline mode) the gate may use.
    pub runs: usize,
    /// Session-offset variance (log scale) baseline mode must allow for.
    pub session_var: f64,
}

/// Computes the noise rows of one scenario from its A/A rounds: `a[i]`, `b[i]` and `speed[i]`
/// come from round `i`; `sizing` sizes the MDEs.
pub fn noise_rows(
    scenario: &str,
    a: &[RunResult],
    b: &[RunResult],
    speed: Option<&[f64]>,
    metrics: &[Metric],
    sizing: MdeSizing,
) -> Vec<NoiseRow> {
    let MdeSizing { per_test_alpha, runs, session_var } = sizing;
    let mut names: Vec<&String> = a.iter().flat_map(|r| r.checkpoints.keys()).collect();
    names.sort();
    names.dedup();
    let mut rows = Vec::new();
    for cp in names {
        for &metric in metrics {
            let get = |r: &RunResult| r.checkpoints.get(cp).and_then(|c| c.summary).map(|s| s.get(metric));
            let pairs: Vec<(f64, f64, Option<f64>)> = a
                .iter()
                .zip(b)
                .enumerate()
                .filter_map(|(i, (x, y))| Some((get(x)?, get(y)?, speed.map(|s| s[i]))))
                .collect();
            if pairs.len() < 2 {
                continue;
            }
            let all: Vec<f64> = pairs.iter().flat_map(|&(x, y, _)| [x, y]).collect();
            let cv_raw = stats::noise_cv(&all).unwrap_or(f64::NAN);
            let cv_corrected = speed.map(|_| {
                let v: Vec<f64> =
                    pairs.iter().flat_map(|&(x, y, s)| [x / s.unwrap_or(1.0), y / s.unwrap_or(1.0)]).collect();
                stats::noise_cv(&v).unwrap_or(f64::NAN)
            });
            let (xs, ys): (Vec<f64>, Vec<f64>) = pairs.iter().map(|&(x, y, _)| (x, y)).unzip();
            let n = xs.len() as f64;
            // The gate's own spreads: the rank tests' equivalent standard errors, per run.
            let sd_paired =
                stats::compare_paired_rank(&xs, &ys, None, 0.95).map_or(f64::NAN, |c| c.log_std_err * n.sqrt());
            let (bx, by): (Vec<f64>, Vec<f64>) = match speed {
                Some(_) => pairs.iter().map(|&(x, y, s)| (x / s.unwrap_or(1.0), y / s.unwrap_or(1.0))).unzip(),
                None => (xs.clone(), ys.clone()),
            };
            // Rank-sum of n against n: se = sd * sqrt(2 / n), so the per-run spread is se * sqrt(n / 2).
            let sd_runs =
                stats::compare_runs_rank(&bx, &by, 0.95, 0.0).map_or(f64::NAN, |c| c.log_std_err * (n / 2.0).sqrt());
            let mde = |se: f64| stats::detectable_shift(se, per_test_alpha, MDE_POWER).unwrap_or(f64::NAN);
            let r = runs.max(2) as f64;
            rows.push(NoiseRow {
                scenario: scenario.to_owned(),
                checkpoint: cp.clone(),
                metric,
                runs: all.len(),
                cv_raw,
                cv_corrected,
                sd_paired,
                mde_baseline: mde((sd_runs * sd_runs * 2.0 / r + session_var).sqrt()),
                mde_paired: mde(sd_paired / r.sqrt()),
            });
        }
    }
    rows
}

/// This session's p50 values against the stored baselines of this machine: the session offset
/// that baseline mode has to allow for (`gate.session_cv`). Per checkpoint the log offset of the
/// medians (drift-corrected where both sides have reference runs), less the sampling variance of
/// the two medians; the root mean square over checkpoints estimates the session spread.
pub fn session_offset(
    cfg: &Config,
    results: &[std::result::Result<Vec<Round>, String>],
    baselines: &[Option<Baseline>],
    machine: &Fingerprint,
) -> Option<SessionOffset> {
    // Sampling variance of the median of log values: (pi / 2) sd^2 / n, sd from the robust CV.
    let median_var = |raw: &[f64]| {
        stats::noise_cv(raw).map(|cv| std::f64::consts::FRAC_PI_2 * cv * cv / raw.len() as f64).unwrap_or(f64::NAN)
    };
    let mut excess = Vec::new();
    let mut largest = (0.0f64, String::new());
    for (k, s) in cfg.scenarios.iter().enumerate() {
        let (Some(Ok(rounds)), Some(Some(b))) = (results.get(k), baselines.get(k)) else { continue };
        if b.machine.machine_difference(machine).is_some() {
            continue;
        }
        let cur_speed: Option<Vec<f64>> =
            rounds.iter().map(|r| r.reference.as_ref().and_then(|x| drift::speed(x, drift::SPEED_METRIC))).collect();
        let base_speed = drift::baseline_speed(b, drift::SPEED_METRIC).filter(|v| v.len() == b.recorded.runs);
        let speeds = cur_speed.zip(base_speed);
        let speeds = speeds.as_ref();
        for (cp, cb) in &b.checkpoints {
            let Some(base_runs) = cb.runs.get(&Metric::P50) else { continue };
            let base: Vec<f64> =
                base_runs.iter().enumerate().map(|(i, v)| speeds.map_or(*v, |(_, bs)| v / bs[i])).collect();
            let cur: Vec<f64> = rounds
                .iter()
                .enumerate()
                .flat_map(|(i, r)| {
                    r.arms.iter().filter_map(move |arm| {
                        let v = arm.result.checkpoints.get(cp)?.summary?.get(Metric::P50);
                        Some(speeds.map_or(v, |(cs, _)| v / cs[i]))
                    })
                })
                .collect();
            let (Some(mb), Some(mc)) = (stats::median(&base), stats::median(&cur)) else { continue };
            if base.len() < 3 || cur.len() < 3 || mb <= 0.0 || mc <= 0.0 {
                continue;
            }
            let off = (mc / mb).ln();
            let e = off * off - median_var(&base) - median_var(&cur);
            if e.is_finite() {
                excess.push(e);
            }
            if off.abs() > largest.0.abs() {
                largest = (off, format!("{}/{cp}", s.name));
            }
        }
    }
    if excess.is_empty() {
        return None;
    }
    let mean = excess.iter().sum::<f64>() / excess.len() as f64;
    Some(SessionOffset {
        checkpoints: excess.len(),
        session_cv: mean.max(0.0).sqrt(),
        largest: largest.0.exp_m1(),
        largest_at: largest.1,
        configured: cfg.gate.session_cv,
    })
}

/// Options of `calibrate`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Configuration, scenarios, runs, build.
    pub select: Selection,
    /// Store the measured noise in the existing baselines.
    pub write: bool,
    /// Do not run the reference workload.
    pub no_reference: bool,
}

/// Runs `calibrate`; returns 0, or 3 if a scenario failed.
///
/// # Errors
/// Configuration, baseline, build and file-writing errors.
pub fn run(o: &Options) -> Result<i32> {
    let started = now_rfc3339();
    let t0 = Instant::now();
    let cfg = o.select.load_config()?;
    let programs = o.select.build_working_tree(&cfg)?;
    let arms = vec![
        Arm { label: "A".into(), programs: programs.clone(), env: Vec::new() },
        Arm { label: "A'".into(), programs, env: Vec::new() },
    ];
    let ids: Vec<usize> = (0..cfg.scenarios.len()).collect();
    let mut exp = new_experiment(&cfg, specs(&cfg), arms, reference_spec(o.no_reference)?, o.select.quiet);
    exp.run_rounds(cfg.run.warmup_runs, cfg.run.runs, None);

    // The per-test alpha the gate uses: alpha over every test of the configuration and every look.
    let mut baselines = load_baselines(&cfg)?;
    let policy = Policy::from_config(&cfg, crate::rounds::look_schedule(cfg.run.runs, cfg.run.max_runs));
    let mut tests = 0usize;
    for (k, s) in cfg.scenarios.iter().enumerate() {
        if let Ok(rounds) = &exp.results[k] {
            let cps: std::collections::BTreeSet<&String> =
                rounds.iter().flat_map(|r| r.arms[0].result.checkpoints.keys()).collect();
            tests += cps.iter().map(|cp| policy.metrics(&s.name, cp).len()).sum::<usize>();
        }
    }
    let per_test_alpha = policy.look(policy.looks() - 1, true).alpha / tests.max(1) as f64;

    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (k, s) in cfg.scenarios.iter().enumerate() {
        let rounds = match &exp.results[k] {
            Ok(r) => r,
            Err(e) => {
                failed.push(ScenarioFailure { scenario: s.name.clone(), error: e.to_string() });
                continue;
            }
        };
        let (a, b) = (arm_runs(rounds, 0), arm_runs(rounds, 1));
        let speed: Option<Vec<f64>> =
            rounds.iter().map(|r| r.reference.as_ref().and_then(|x| drift::speed(x, drift::SPEED_METRIC))).collect();
        // min and max are single calls: too quantised and too wild to gate on; not shown.
        let metrics: Vec<Metric> =
            Metric::ALL.into_iter().filter(|m| !matches!(m, Metric::Min | Metric::Max)).collect();
        rows.extend(noise_rows(
            &s.name,
            &a,
            &b,
            speed.as_deref(),
            &metrics,
            MdeSizing { per_test_alpha, runs: cfg.run.max_runs, session_var: policy.session_var() },
        ));
    }

    // The A/A pairs judged like `compare`: every "regressed" is a false alarm.
    let parts = [Part { exp, scenario_ids: ids, paired_label: Some("A/A: the same build twice".into()) }];
    let no_baselines: Vec<Option<Baseline>> = cfg.scenarios.iter().map(|_| None).collect();
    let inv = Invocation {
        command: "calibrate",
        policy: &policy,
        look: policy.single_look(),
        decisions: &Decisions::default(),
        machine: Fingerprint::current(),
        compare: true,
        strict: true,
        started,
        wall_s: t0.elapsed().as_secs_f64(),
    };
    let machine = inv.machine.clone();
    let report = judge::judge(inv, inputs_of(&parts, &cfg, &no_baselines));
    let false_alarms: Vec<String> = report
        .scenarios
        .iter()
        .flat_map(|s| {
            s.checkpoints
                .iter()
                .filter(|c| c.verdict == Verdict::Regressed)
                .map(move |c| format!("{}/{}", s.name, c.name))
        })
        .collect();
    let session = session_offset(&cfg, &parts[0].exp.results, &baselines, &machine);
    let calibration = CalibrationReport {
        schema: CALIBRATION_SCHEMA,
        started: report.started.clone(),
        machine,
        runs: cfg.run.max_runs,
        per_test_alpha,
        mde_power: MDE_POWER,
        rows,
        aa: AaVerdicts { false_alarms, unchanged: report.tally.unchanged, inconclusive: report.tally.inconclusive },
        failed,
        session,
    };
    let doc = Document::Calibration(&calibration);
    report::render(doc, Format::Terminal(Style::detect()), &mut std::io::stdout().lock())
        .map_err(|e| Error::io("writing the calibration report", e))?;
    let out_dir = workspace::output_dir(&cfg);
    for (name, format) in [("calibrate.json", Format::Json), ("calibrate.md", Format::Markdown)] {
        report::write_document(doc, format, &out_dir.join(name))
            .map_err(|e| Error::io("writing the calibration report files", e))?;
    }
    let rows = &calibration.rows;

    if o.write {
        let by_scenario: BTreeMap<&str, Vec<&NoiseRow>> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
            m.entry(r.scenario.as_str()).or_insert_with(Vec::new).push(r);
            m
        });
        for (k, s) in cfg.scenarios.iter().enumerate() {
            let (Some(b), Some(rs)) = (baselines[k].as_mut(), by_scenario.get(s.name.as_str())) else {
                if baselines[k].is_none() {
                    eprintln!("{}: no baseline to store the noise in (record one with cargo xtask baseline)", s.name);
                }
                continue;
            };
            let corrected = drift::baseline_speed(b, drift::SPEED_METRIC).is_some();
            for r in rs {
                let v = if corrected { r.cv_corrected.unwrap_or(r.cv_raw) } else { r.cv_raw };
                if let (Some(cp), true) = (b.checkpoints.get_mut(&r.checkpoint), v.is_finite()) {
                    cp.noise_cv.insert(r.metric, v);
                }
            }
            let path = cfg.baseline_path(&s.name);
            b.save_atomic(&path)?;
            eprintln!("{}: stored the measured noise in {}", s.name, path.display());
        }
    }
    Ok(if calibration.failed.is_empty() { crate::exit_code::PASS } else { crate::exit_code::SCENARIO_FAILED })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: f64) -> RunResult {
        RunResult::uniform(&[("cp", v)])
    }

    #[test]
    fn drift_that_moves_both_arms_is_removed_by_the_reference() {
        // The machine speed alternates 100 / 110 by round; both arms follow it exactly.
        let speed: Vec<f64> = (0..8).map(|i| if i % 2 == 0 { 100.0 } else { 110.0 }).collect();
        let a: Vec<RunResult> = speed.iter().map(|s| run(2.0 * s)).collect();
        let b: Vec<RunResult> = speed.iter().map(|s| run(2.0 * s)).collect();
        let rows = noise_rows(
            "s",
            &a,
            &b,
            Some(&speed),
            &[Metric::P50],
            MdeSizing { per_test_alpha: 0.001, runs: 8, session_var: 0.0 },
        );
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert!(r.cv_raw > 0.05, "raw values follow the drift: {}", r.cv_raw);
        assert!(r.cv_corrected.unwrap() < 1e-12, "corrected values are constant");
        assert!(r.sd_paired < 1e-12, "paired ratios are exactly 1");
        assert!(r.mde_paired < r.mde_baseline || r.mde_baseline < 1e-9);
        let calibration = CalibrationReport {
            schema: CALIBRATION_SCHEMA,
            started: "2026-05-01T12:00:00Z".into(),
            machine: Fingerprint::default(),
            runs: 8,
            per_test_alpha: 0.001,
            mde_power: MDE_POWER,
            rows,
            aa: AaVerdicts::default(),
            failed: Vec::new(),
            session: None,
        };
        let mut out = Vec::new();
        report::render(Document::Calibration(&calibration), Format::Terminal(Style::Plain), &mut out).unwrap();
        let table = String::from_utf8(out).unwrap();
        assert!(table.contains("cp") && table.contains("MDE paired"), "{table}");
    }

    /// A session 5 % off the stored baseline, with 1 % run-to-run jitter: the estimate is the
    /// offset, not the jitter; the same session as the baseline estimates about 0.
    #[test]
    fn session_offset_measures_the_shift_beyond_run_to_run_noise() {
        use crate::baseline::{Pooled, Recorded};
        let jitter = |i: usize| 1.0 + 0.01 * [0.0, 1.0, -1.0, 0.5, -0.5, 0.8, -0.8, 0.2, -0.2, 0.0][i % 10];
        let run = |v: f64| RunResult::uniform(&[("cp", v)]);
        let base_runs: Vec<RunResult> = (0..20).map(|i| run(100.0 * jitter(i))).collect();
        let pooled = [("cp".to_owned(), Pooled { p50: 100.0, p90: 100.0, p99: 100.0, p999: 100.0 })].into();
        let recorded = Recorded {
            commit: "c".into(),
            date: "2026-01-01T00:00:00Z".into(),
            runs: 20,
            funcscope: "0".into(),
            args: Vec::new(),
            sessions: Vec::new(),
        };
        let b = Baseline::from_runs("s", &base_runs, &pooled, Fingerprint::default(), recorded).unwrap();
        let cfg = Config::parse(
            "[[scenario]]\nname = \"s\"\npath = \"/bin/true\"\n",
            std::path::Path::new("/x/funcscope.toml"),
        )
        .unwrap();
        let session = |level: f64| -> Vec<Round> {
            (0..20)
                .map(|i| Round {
                    arms: (0..2)
                        .map(|a| crate::runner::RunOutput {
                            result: run(level * jitter(i + 3 * a)),
                            pooled: BTreeMap::new(),
                            deep: BTreeMap::new(),
                            stdout_tail: String::new(),
                        })
                        .collect(),
                    reference: None,
                })
                .collect()
        };
        let baselines = [Some(b)];
        let shifted = session_offset(&cfg, &[Ok(session(105.0))], &baselines, &Fingerprint::default()).unwrap();
        assert_eq!(shifted.checkpoints, 1);
        assert!((shifted.session_cv - 0.0488).abs() < 0.004, "{shifted:?}");
        assert!((shifted.largest - 0.05).abs() < 0.003, "{shifted:?}");
        assert_eq!(shifted.largest_at, "s/cp");
        let same = session_offset(&cfg, &[Ok(session(100.0))], &baselines, &Fingerprint::default()).unwrap();
        assert!(same.session_cv < 0.005, "{same:?}");
        // A baseline from another machine says nothing about this one's sessions.
        let other = Fingerprint { cpu_model: "other".into(), ..Fingerprint::default() };
        assert!(session_offset(&cfg, &[Ok(session(105.0))], &baselines, &other).is_none());
    }
}
