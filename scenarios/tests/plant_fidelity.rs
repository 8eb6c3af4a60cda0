//! Plant fidelity: a planted slowdown of P % must make its checkpoint measure about P % slower.
//!
//! Measured in-process, so that process-to-process differences (hash seeds, layout, which vCPU is
//! disturbed) do not enter: the plant is sized exactly as a scenario binary sizes it
//! ([`calibrate`] for [`CALIBRATION`], then [`Plant::size`]), and then blocks of the same work run
//! alternately with and without the plant, on one instance, each block timed with a
//! [`CalibMeter`] (the same clock reads as the probe). The verdict is the median over block pairs
//! of planted/unplanted - 1: a slow spell of the shared machine hits both halves of a pair, and a
//! pair an interrupt landed in is one outlier among many.
//!
//! Tolerance: +-25 % of nominal (a 2 % plant measures 1.5..2.5 %). A checkpoint of ~100-300 ns is
//! the realistic case: there the plant is a few ns and the fixed costs at EXIT (the fence, the
//! tail of the checkpoint's own work that an unfenced tick read does not wait for) matter.

use std::hint::black_box;

use funcscope::clock;
use funcscope::ClockChoice;
use funcscope_scenarios::http::{self, HeaderSpan, Router};
use funcscope_scenarios::{calibrate, CalibMeter, Meter, Plant, Scenario, CALIBRATION};

const PARSE_REQUEST_LINE: usize = 0;
const PARSE_HEADERS: usize = 1;
const ROUTE_LOOKUP: usize = 2;
const BUILD_RESPONSE: usize = 3;

/// Requests in the corpus; a block runs a whole number of corpus cycles, so every block does the
/// same work.
const CORPUS: usize = 64;

/// The `http_parse` scenario's step, as its binary writes it (binaries cannot be imported).
struct HttpParse {
    corpus: Vec<Vec<u8>>,
    next: usize,
    router: Router,
    headers: Vec<HeaderSpan>,
    out: Vec<u8>,
    body: Vec<u8>,
}

impl Scenario for HttpParse {
    const NAME: &'static str = "http_parse_test";
    const CHECKPOINTS: &'static [&'static str] =
        &["parse_request_line", "parse_headers", "route_lookup", "build_response"];

    fn new(seed: u64) -> Self {
        HttpParse {
            corpus: http::corpus(seed, CORPUS),
            next: 0,
            router: Router::default(),
            headers: Vec::with_capacity(http::MAX_HEADERS),
            out: Vec::with_capacity(1024),
            body: Vec::with_capacity(256),
        }
    }

    fn step<M: Meter>(&mut self, m: &mut M, plant: &Plant) -> u64 {
        let req = &self.corpus[self.next];
        self.next = (self.next + 1) % self.corpus.len();

        m.enter(PARSE_REQUEST_LINE);
        let line = http::parse_request_line(req);
        plant.extra(PARSE_REQUEST_LINE);
        m.exit(PARSE_REQUEST_LINE);
        let Ok((line, off)) = line else { return 1 };

        m.enter(PARSE_HEADERS);
        let head = http::parse_headers(req, off, line.version, &mut self.headers);
        plant.extra(PARSE_HEADERS);
        m.exit(PARSE_HEADERS);
        let Ok(head) = head else { return 2 };

        m.enter(ROUTE_LOOKUP);
        let route = self.router.lookup(line.method, &req[line.path.clone()]);
        plant.extra(ROUTE_LOOKUP);
        m.exit(ROUTE_LOOKUP);

        m.enter(BUILD_RESPONSE);
        let n = http::build_response(&mut self.out, &mut self.body, line.method, &route, &head);
        plant.extra(BUILD_RESPONSE);
        m.exit(BUILD_RESPONSE);

        (n as u64) ^ ((self.headers.len() as u64) << 16) ^ (head.body_start as u64) << 24
    }
}

/// Calibrate-then-measure repetitions per plant.
const REPS: usize = 121;
/// Block pairs measured after each calibration.
const PAIRS: usize = 32;
/// Corpus cycles per block.
const CYCLES: usize = 2;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

static KIND: std::sync::OnceLock<funcscope::ClockKind> = std::sync::OnceLock::new();

/// Mean ticks per call of checkpoint `idx` over one block of whole corpus cycles.
fn block<S: Scenario>(w: &mut S, plant: &Plant, idx: usize, sink: &mut u64) -> f64 {
    let kind = *KIND.get_or_init(|| clock::decide(ClockChoice::Auto).kind);
    let mut m = CalibMeter::new(S::CHECKPOINTS.len(), kind);
    for _ in 0..CORPUS * CYCLES {
        *sink = sink.rotate_left(7) ^ w.step(&mut m, plant);
    }
    m.mean_ticks()[idx]
}

/// What [`measure`] found for one plant.
struct Outcome {
    /// Median over repetitions of the repetition's median planted/unplanted - 1, in %.
    percent: f64,
    /// The repetitions' medians, in %, sorted.
    reps: Vec<f64>,
    /// Median over repetitions of calibrated / measured unplanted cost.
    calib_bias: f64,
}

/// Sizes a `percent` plant on checkpoint `idx` as a scenario binary does (calibrate a throwaway
/// instance for [`CALIBRATION`], then [`Plant::size`]), and right after it measures
/// [`PAIRS`] pairs of planted and unplanted blocks on a long-lived instance, alternating which
/// half comes first; [`REPS`] times, each with its own calibration, so the measurement sees the
/// conditions the calibration saw (this machine's speed drifts by tens of percent over a second).
fn measure<S: Scenario>(idx: usize, percent: f64) -> Outcome {
    let seed = 0x5eed;
    let none = Plant::none(S::CHECKPOINTS.len());
    let mut w = S::new(seed);
    let mut sink = 0u64;
    for _ in 0..10 {
        block(&mut w, &none, idx, &mut sink);
    }
    let mut reps = Vec::with_capacity(REPS);
    let mut bias = Vec::with_capacity(REPS);
    for _ in 0..REPS {
        let mut plant = Plant::new(S::CHECKPOINTS.len(), &[(idx, percent)]);
        let cal = calibrate::<S>(seed, CALIBRATION, &plant);
        plant.size(&cal.cost_ticks, cal.chain);
        let mut ratios = Vec::with_capacity(PAIRS);
        let mut base = Vec::with_capacity(PAIRS);
        for p in 0..PAIRS {
            let (a, b) = if p % 2 == 0 {
                let a = block(&mut w, &none, idx, &mut sink);
                (a, block(&mut w, &plant, idx, &mut sink))
            } else {
                let b = block(&mut w, &plant, idx, &mut sink);
                (block(&mut w, &none, idx, &mut sink), b)
            };
            ratios.push(b / a - 1.0);
            base.push(a);
        }
        reps.push(median(&mut ratios) * 100.0);
        bias.push(cal.cost_ticks[idx] / median(&mut base));
    }
    black_box(sink);
    let percent = median(&mut reps);
    Outcome { percent, reps, calib_bias: median(&mut bias) }
}

#[test]
fn plants_deliver_their_size() {
    let mut bad = Vec::new();
    for &pct in &[2.0, 5.0] {
        let o = measure::<HttpParse>(PARSE_HEADERS, pct);
        let reps: Vec<String> = o.reps.iter().step_by(4).map(|r| format!("{r:.2}")).collect();
        eprintln!(
            "plant parse_headers +{pct}%: measured {:.2}% (repetitions: {}), calibrated/measured cost {:.3}",
            o.percent,
            reps.join(" "),
            o.calib_bias
        );
        let within = |p: f64| (0.75 * pct..=1.25 * pct).contains(&p);
        if !within(o.percent) {
            // One measurement's median still moves by about +-0.3 points between processes of a
            // shared machine (2.0-2.6 % for the 2 % plant on the reference machine): outside the
            // band, measure twice more and judge the median of the three.
            let mut all = vec![o.percent, measure::<HttpParse>(PARSE_HEADERS, pct).percent];
            all.push(measure::<HttpParse>(PARSE_HEADERS, pct).percent);
            let m = median(&mut all);
            eprintln!(
                "plant parse_headers +{pct}%: outside the band once; three measurements {all:.2?}, median {m:.2}%"
            );
            if !within(m) {
                bad.push(format!("+{pct}% plant measured {m:.2}% (median of {all:.2?})"));
            }
        }
    }
    assert!(bad.is_empty(), "plants outside +-25 % of nominal: {}", bad.join("; "));
}
