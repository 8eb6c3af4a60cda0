//! Scenario `http_parse`: parse, route and answer a seeded corpus of HTTP/1.1 requests.
//!
//! Checkpoints, per request: `parse_request_line`, `parse_headers` (including framing and
//! persistence), `route_lookup`, `build_response`. See `funcscope_scenarios::http`.

#![forbid(unsafe_code)]

use funcscope_scenarios::http::{self, HeaderSpan, Router};
use funcscope_scenarios::{Meter, Plant, Scenario};

const PARSE_REQUEST_LINE: usize = 0;
const PARSE_HEADERS: usize = 1;
const ROUTE_LOOKUP: usize = 2;
const BUILD_RESPONSE: usize = 3;

/// Requests in the corpus: ~256 KiB, so the corpus stays in L2/L3 like a busy server's hot set.
const CORPUS: usize = 256;

struct HttpParse {
    corpus: Vec<Vec<u8>>,
    next: usize,
    router: Router,
    headers: Vec<HeaderSpan>,
    out: Vec<u8>,
    body: Vec<u8>,
}

impl Scenario for HttpParse {
    const NAME: &'static str = "http_parse";
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

fn main() {
    funcscope_scenarios::main::<HttpParse>();
}
