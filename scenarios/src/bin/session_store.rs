//! Scenario `session_store`: a web/API server's session layer, with real code's variance.
//!
//! Checkpoints, per request: `parse_cookie` (parse the `Cookie:` header, find the `sid`),
//! `session_lookup` (check its signature, look it up in a `HashMap<String, Session>` with std's
//! per-process random hashing), then `session_update` (account the request in a live session) or
//! `session_create` (issue a new session, evicting the oldest). Requests are separately
//! heap-allocated buffers generated from the seed. See `funcscope_scenarios::session` for why.

#![forbid(unsafe_code)]

use funcscope_scenarios::session::{self, CookiePair, Lookup, Sid, Traffic};
use funcscope_scenarios::{Meter, Plant, Scenario};

const PARSE_COOKIE: usize = 0;
const SESSION_LOOKUP: usize = 1;
const SESSION_UPDATE: usize = 2;
const SESSION_CREATE: usize = 3;

struct SessionStore {
    t: Traffic,
    pairs: Vec<CookiePair>,
    set_cookie: String,
}

impl Scenario for SessionStore {
    const NAME: &'static str = "session_store";
    const CHECKPOINTS: &'static [&'static str] =
        &["parse_cookie", "session_lookup", "session_update", "session_create"];

    fn new(seed: u64) -> Self {
        SessionStore {
            t: Traffic::new(seed),
            pairs: Vec::with_capacity(session::MAX_COOKIES),
            set_cookie: String::with_capacity(160),
        }
    }

    // Mirrors `Traffic::handle` (which the unit tests run), with the checkpoints around it.
    fn step<M: Meter>(&mut self, m: &mut M, plant: &Plant) -> u64 {
        let t = &mut self.t;
        let req = t.next_request();
        let now = t.now;

        m.enter(PARSE_COOKIE);
        let sid = session::parse_cookie(&req.cookie, &mut self.pairs);
        plant.extra(PARSE_COOKIE);
        m.exit(PARSE_COOKIE);
        let mut out = self.pairs.len() as u64;

        let found = match sid {
            Ok(Sid::Present { id, sig }) => {
                m.enter(SESSION_LOOKUP);
                let found = t.store.lookup(&req.cookie[id], sig);
                plant.extra(SESSION_LOOKUP);
                m.exit(SESSION_LOOKUP);
                match found {
                    Lookup::Hit(s) => {
                        m.enter(SESSION_UPDATE);
                        let v = session::update(s, now, &req.path, req.len);
                        plant.extra(SESSION_UPDATE);
                        m.exit(SESSION_UPDATE);
                        return out ^ v << 8;
                    }
                    Lookup::Miss => 1,
                    Lookup::BadSignature => 2,
                }
            }
            Ok(Sid::Absent) => 3,
            Ok(Sid::Malformed) => 4,
            Err(_) => 5,
        };
        out |= found << 6;
        let user = t.new_user();

        m.enter(SESSION_CREATE);
        let sig = t.store.create(&mut t.rng, user, now, &mut self.set_cookie);
        plant.extra(SESSION_CREATE);
        m.exit(SESSION_CREATE);

        out ^ sig ^ (self.set_cookie.len() as u64) << 48
    }
}

fn main() {
    funcscope_scenarios::main::<SessionStore>();
}
