//! A web/API server's session layer (the `session_store` scenario).
//!
//! # Why this scenario exists
//! The other scenarios are deliberately reproducible down to the memory layout: fixed hashes,
//! inputs generated once into buffers of the same sizes, so that two processes do nearly the same
//! thing at nearly the same addresses. Real server code is not like that, and the gate must cope
//! with the run-to-run (process-to-process) variance real code has:
//! * **Per-process hash seeds.** The session table is a `std::collections::HashMap<String,
//!   Session>` with std's default `RandomState` (SipHash-1-3 keyed from the OS at startup): every
//!   process places the same keys in different buckets, so probe lengths, which keys share a
//!   group and which cache lines and sets the hot sessions land on differ from run to run. Do not
//!   replace it with a fixed hasher: that variance is what this scenario is for.
//! * **Heap placement.** Every request arrives as freshly allocated `Vec<u8>`/`String` buffers
//!   of data-dependent sizes, session ids and keys are separate heap strings, and sessions keep
//!   heap-allocated per-session history; where all of that lands depends on the allocator and
//!   on the process's history (and ASLR).
//! * **Data-dependent cost.** Cookie headers carry 0-7 unrelated cookies of very different
//!   lengths besides the session id, some quoted, some malformed.
//!
//! The *work* is still deterministic given the seed: the requests, the session ids, which
//! sessions are created and evicted and every value folded into the checksum depend only on the
//! seed, never on the hash seed (nothing iterates over the map; eviction follows creation order,
//! kept in a ring beside the map). So the printed checksum with `--iterations N` is the same in
//! every process, while the timings carry real code's per-process variance.
//!
//! # The model
//! [`parse_cookie`] parses a `Cookie:` header line as RFC 6265 section 4.2 describes (with the
//! usual leniency about trailing separators) into name/value ranges and finds the `sid` cookie,
//! `<32 lowercase hex id>.<16 lowercase hex signature>`. [`SessionStore::lookup`] checks the
//! signature ([`sign`], a keyed mix standing in for an HMAC) and looks the id up;
//! [`update`] accounts the request in the session (counters, a token-bucket rate limit, a route
//! histogram, the last few paths); [`SessionStore::create`] issues a new session, evicting the
//! oldest one, and builds the `Set-Cookie` header. The store holds [`Traffic::SESSIONS`] sessions
//! at all times: every creation evicts one.
//!
//! [`Traffic`] generates the requests: mostly live sessions (half of them recent ones), some
//! expired or absent ids (a new session is issued), tampered signatures, malformed ids and a few
//! malformed headers.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::ops::Range;

use crate::rng::Rng;

/// Name of the session cookie.
pub const SID_COOKIE: &[u8] = b"sid";

/// Hex digits of a session id (128 random bits).
pub const ID_HEX: usize = 32;

/// Hex digits of a session id's signature (64 bits).
pub const SIG_HEX: usize = 16;

/// Most cookies a header may carry; more is an error (a bound every real server has).
pub const MAX_COOKIES: usize = 32;

/// Paths a session remembers (its "recently viewed" list).
pub const RECENT: usize = 4;

/// Route classes counted per session; see [`route_of`].
pub const ROUTES: usize = 8;

/// Token-bucket size of the per-session rate limit (requests).
pub const RATE_BURST: u32 = 8;

/// Ticks per refilled token of the per-session rate limit.
pub const RATE_REFILL_TICKS: u64 = 64;

/// Why a `Cookie:` header line was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieError {
    /// The line is not a `Cookie:` header field (no colon, or another field name).
    NotCookie,
    /// A cookie name is empty or has a byte that is not a token character.
    BadName,
    /// A cookie name is not followed by `=`.
    MissingEquals,
    /// A cookie value has a byte outside `cookie-octet`, an unterminated quote, or is followed
    /// by something other than `;`.
    BadValue,
    /// More than [`MAX_COOKIES`] cookies.
    TooManyCookies,
}

/// One cookie: ranges of its name and its value (without quotes) in the header line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookiePair {
    /// The name.
    pub name: Range<usize>,
    /// The value, without surrounding double quotes.
    pub value: Range<usize>,
}

/// What the `sid` cookie says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sid {
    /// No `sid` cookie: an anonymous client.
    Absent,
    /// A `sid` cookie whose value is not `<32 lowercase hex>.<16 lowercase hex>`.
    Malformed,
    /// A well-formed `sid` cookie.
    Present {
        /// Range of the 32 hex digits of the id in the header line.
        id: Range<usize>,
        /// The signature, decoded.
        sig: u64,
    },
}

const TCHAR: u8 = 1;
const OCTET: u8 = 2;

/// Byte classes: `TCHAR` for RFC 9110 token characters, `OCTET` for RFC 6265 `cookie-octet`s.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let tchar = c.is_ascii_alphanumeric()
            || matches!(c, b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_')
            || matches!(c, b'`' | b'|' | b'~');
        let octet = matches!(c, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
        t[b] = (if tchar { TCHAR } else { 0 }) | (if octet { OCTET } else { 0 });
        b += 1;
    }
    t
};

#[inline]
fn is(b: u8, class: u8) -> bool {
    CLASS[b as usize] & class != 0
}

/// Parses a `Cookie:` header line (`Cookie: a=1; b="x"`, field name case-insensitive, an optional
/// trailing CRLF) into `out` (cleared first): RFC 6265 section 4.2's `cookie-string`, accepting a
/// trailing `;` and optional whitespace around the field value as browsers' peers do. Values may
/// be empty or double-quoted; names are tokens.
pub fn parse_cookie_header(line: &[u8], out: &mut Vec<CookiePair>) -> Result<(), CookieError> {
    out.clear();
    let colon = line.iter().position(|&b| b == b':').ok_or(CookieError::NotCookie)?;
    if !line[..colon].eq_ignore_ascii_case(b"cookie") {
        return Err(CookieError::NotCookie);
    }
    let mut end = line.len();
    if line.ends_with(b"\r\n") {
        end -= 2;
    }
    while end > colon + 1 && matches!(line[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    let mut i = colon + 1;
    while i < end && matches!(line[i], b' ' | b'\t') {
        i += 1;
    }
    while i < end {
        let name_start = i;
        while i < end && is(line[i], TCHAR) {
            i += 1;
        }
        let name = name_start..i;
        if i == end || line[i] == b';' {
            return Err(if name.is_empty() { CookieError::BadName } else { CookieError::MissingEquals });
        }
        if name.is_empty() || line[i] != b'=' {
            return Err(CookieError::BadName);
        }
        i += 1;
        let value = if i < end && line[i] == b'"' {
            let start = i + 1;
            i = start;
            while i < end && is(line[i], OCTET) {
                i += 1;
            }
            if i == end || line[i] != b'"' {
                return Err(CookieError::BadValue);
            }
            i += 1;
            start..i - 1
        } else {
            let start = i;
            while i < end && is(line[i], OCTET) {
                i += 1;
            }
            start..i
        };
        if out.len() == MAX_COOKIES {
            return Err(CookieError::TooManyCookies);
        }
        out.push(CookiePair { name, value });
        if i == end {
            break;
        }
        if line[i] != b';' {
            return Err(CookieError::BadValue);
        }
        i += 1;
        if i < end && line[i] == b' ' {
            i += 1;
        }
    }
    Ok(())
}

#[inline]
fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        _ => None,
    }
}

/// The `sid` cookie among `pairs` (the first one if several), checked for shape.
pub fn find_sid(line: &[u8], pairs: &[CookiePair]) -> Sid {
    let Some(p) = pairs.iter().find(|p| &line[p.name.clone()] == SID_COOKIE) else {
        return Sid::Absent;
    };
    let v = &line[p.value.clone()];
    if v.len() != ID_HEX + 1 + SIG_HEX || v[ID_HEX] != b'.' {
        return Sid::Malformed;
    }
    if !v[..ID_HEX].iter().all(|&b| hex_value(b).is_some()) {
        return Sid::Malformed;
    }
    let mut sig = 0u64;
    for &b in &v[ID_HEX + 1..] {
        match hex_value(b) {
            Some(d) => sig = sig << 4 | d,
            None => return Sid::Malformed,
        }
    }
    Sid::Present { id: p.value.start..p.value.start + ID_HEX, sig }
}

/// [`parse_cookie_header`] then [`find_sid`]: the `parse_cookie` checkpoint.
pub fn parse_cookie(line: &[u8], pairs: &mut Vec<CookiePair>) -> Result<Sid, CookieError> {
    parse_cookie_header(line, pairs)?;
    Ok(find_sid(line, pairs))
}

/// The server's signing key (fixed: signatures must be the same in every process).
const SERVER_KEY: [u64; 2] = [0x6a09_e667_f3bc_c908, 0xbb67_ae85_84ca_a73b];

/// Signature of a session id: a keyed multiply-rotate mix over its bytes, standing in for the
/// HMAC a real server computes (same shape of cost: a pass over the id; NOT cryptographic).
pub fn sign(id: &[u8]) -> u64 {
    let mut h = SERVER_KEY[0] ^ id.len() as u64;
    for chunk in id.chunks(8) {
        let mut w = 0u64;
        for &b in chunk {
            w = w << 8 | u64::from(b);
        }
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ SERVER_KEY[1];
    }
    h ^= h >> 31;
    h.wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ (h >> 29)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `v` as `digits` lowercase hex digits (the low `4 * digits` bits, most significant
/// first).
pub fn push_hex(out: &mut String, v: u64, digits: usize) {
    for k in (0..digits).rev() {
        out.push(char::from(HEX[(v >> (4 * k) & 0xF) as usize]));
    }
}

/// A session's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The user it belongs to.
    pub user: u64,
    /// Time of creation (the caller's ticks).
    pub created: u64,
    /// Time of the latest request; >= created.
    pub last_seen: u64,
    /// Requests accounted.
    pub requests: u64,
    /// Bytes of those requests.
    pub bytes: u64,
    /// Requests refused by the rate limit.
    pub throttled: u64,
    /// Tokens left in the rate limit's bucket; <= [`RATE_BURST`].
    pub tokens: u32,
    /// Requests per route class ([`route_of`]).
    pub route_hits: [u32; ROUTES],
    /// The last [`RECENT`] paths (without query), oldest at `recent_next` once full.
    pub recent: Vec<String>,
    /// Where the next path goes in `recent` once it is full; < [`RECENT`].
    pub recent_next: usize,
}

impl Session {
    /// A fresh session of `user` at `now`.
    pub fn new(user: u64, now: u64) -> Session {
        Session {
            user,
            created: now,
            last_seen: now,
            requests: 0,
            bytes: 0,
            throttled: 0,
            tokens: RATE_BURST,
            route_hits: [0; ROUTES],
            recent: Vec::new(),
            recent_next: 0,
        }
    }

    /// A fingerprint of the state (for checksums and [`SessionStore::digest`]).
    pub fn fingerprint(&self) -> u64 {
        let mut h = self.user ^ self.created << 20 ^ self.last_seen << 40;
        for v in [self.requests, self.bytes, self.throttled, u64::from(self.tokens)] {
            h = (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
        }
        for (i, &c) in self.route_hits.iter().enumerate() {
            h ^= u64::from(c) << (i * 7);
        }
        for p in &self.recent {
            h = (h ^ p.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        h
    }
}

/// Route class of a path (query included or not): one of [`ROUTES`], by prefix.
pub fn route_of(path: &str) -> usize {
    const PREFIXES: [&str; ROUTES - 1] =
        ["/api/v1/users/", "/api/v1/orders", "/api/v1/search", "/cart", "/static/", "/login", "/account/"];
    PREFIXES.iter().position(|p| path.starts_with(p)).unwrap_or(ROUTES - 1)
}

/// Accounts a request of `len` bytes for `path` at `now` in `s`: the `session_update`
/// checkpoint. Returns a value for the checksum.
pub fn update(s: &mut Session, now: u64, path: &str, len: u64) -> u64 {
    let refill = now.saturating_sub(s.last_seen) / RATE_REFILL_TICKS;
    s.tokens = (u64::from(s.tokens) + refill).min(u64::from(RATE_BURST)) as u32;
    let allowed = s.tokens > 0;
    if allowed {
        s.tokens -= 1;
    } else {
        s.throttled += 1;
    }
    s.last_seen = now;
    s.requests += 1;
    s.bytes += len;
    let route = route_of(path);
    s.route_hits[route] += 1;
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if s.recent.len() < RECENT {
        s.recent.push(path.to_owned());
    } else {
        let slot = &mut s.recent[s.recent_next];
        slot.clear();
        slot.push_str(path);
        s.recent_next = (s.recent_next + 1) % RECENT;
    }
    s.requests ^ s.bytes << 24 ^ (route as u64) << 56 ^ u64::from(allowed) << 63
}

/// What [`SessionStore::lookup`] found.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A live session with a valid signature.
    Hit(&'a mut Session),
    /// A valid signature but no such session (expired, evicted, or never issued here).
    Miss,
    /// The signature does not match the id (tampered, or from another key).
    BadSignature,
}

/// The session table: a `HashMap<String, Session>` with std's per-process random hashing, plus a
/// ring of the live ids in creation order (eviction follows it, so it never depends on the hash
/// seed) and a ring of recently evicted ids (clients come back with those).
#[derive(Debug)]
pub struct SessionStore {
    map: HashMap<String, Session>,
    /// Live ids in creation order; the oldest is at `next` once full. Same set as the map's keys.
    ring: Vec<String>,
    next: usize,
    capacity: usize,
    /// Recently evicted ids, oldest at `stale_next` once full.
    stale: Vec<String>,
    stale_next: usize,
    stale_capacity: usize,
}

impl SessionStore {
    /// An empty store that keeps `capacity` sessions and remembers `stale_capacity` evicted ids.
    ///
    /// # Panics
    /// If `capacity` is 0.
    pub fn new(capacity: usize, stale_capacity: usize) -> SessionStore {
        assert!(capacity > 0, "SessionStore::new: capacity must be at least 1");
        SessionStore {
            map: HashMap::new(),
            ring: Vec::with_capacity(capacity),
            next: 0,
            capacity,
            stale: Vec::with_capacity(stale_capacity),
            stale_next: 0,
            stale_capacity,
        }
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Sessions kept at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Checks `sig` against `id` (hex digits, as in the cookie) and looks the session up: the
    /// `session_lookup` checkpoint.
    pub fn lookup(&mut self, id: &[u8], sig: u64) -> Lookup<'_> {
        if sign(id) != sig {
            return Lookup::BadSignature;
        }
        let Ok(id) = std::str::from_utf8(id) else { return Lookup::Miss };
        match self.map.get_mut(id) {
            Some(s) => Lookup::Hit(s),
            None => Lookup::Miss,
        }
    }

    /// The session of `id`, if live (no signature check).
    pub fn get(&self, id: &str) -> Option<&Session> {
        self.map.get(id)
    }

    /// Issues a new session for `user` at `now` with an id drawn from `rng`, evicting the oldest
    /// session if the store is full; writes the `Set-Cookie` header value into `set_cookie`
    /// (cleared first): the `session_create` checkpoint. Returns the new id's signature.
    pub fn create(&mut self, rng: &mut Rng, user: u64, now: u64, set_cookie: &mut String) -> u64 {
        let mut id = String::with_capacity(ID_HEX);
        push_hex(&mut id, rng.next_u64(), 16);
        push_hex(&mut id, rng.next_u64(), 16);
        let sig = sign(id.as_bytes());
        set_cookie.clear();
        set_cookie.push_str("sid=");
        set_cookie.push_str(&id);
        set_cookie.push('.');
        push_hex(set_cookie, sig, SIG_HEX);
        let _ = write!(set_cookie, "; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax", 86_400 - now % 3600);
        // A 128-bit collision with a live id is impossible in practice; keep the ring and the
        // map in step anyway by replacing the session in place.
        if let Some(s) = self.map.get_mut(&id) {
            *s = Session::new(user, now);
            return sig;
        }
        self.map.insert(id.clone(), Session::new(user, now));
        if self.ring.len() < self.capacity {
            self.ring.push(id);
        } else {
            let old = std::mem::replace(&mut self.ring[self.next], id);
            self.next = (self.next + 1) % self.capacity;
            self.map.remove(&old);
            self.remember_stale(old);
        }
        sig
    }

    fn remember_stale(&mut self, id: String) {
        if self.stale_capacity == 0 {
            return;
        }
        if self.stale.len() < self.stale_capacity {
            self.stale.push(id);
        } else {
            self.stale[self.stale_next] = id;
            self.stale_next = (self.stale_next + 1) % self.stale_capacity;
        }
    }

    /// The `age`-th newest live id (0 = newest), or `None` if there are not that many.
    pub fn live_id(&self, age: usize) -> Option<&str> {
        if age >= self.ring.len() {
            return None;
        }
        let newest = if self.ring.len() < self.capacity { self.ring.len() } else { self.next };
        let i = (newest + self.ring.len() - 1 - age) % self.ring.len();
        Some(&self.ring[i])
    }

    /// An evicted id remembered by the store (`k` modulo their number), if any.
    pub fn stale_id(&self, k: usize) -> Option<&str> {
        (!self.stale.is_empty()).then(|| self.stale[k % self.stale.len()].as_str())
    }

    /// Whether the map and the ring agree: the same set of ids, none of them stale.
    pub fn consistent(&self) -> bool {
        self.ring.len() == self.map.len()
            && self.ring.iter().all(|id| self.map.contains_key(id))
            && self.stale.iter().all(|id| !self.map.contains_key(id))
    }

    /// An order-independent digest of every session and its id: equal for equal contents
    /// whatever the hash seed (a wrapping sum over the entries, never their order).
    pub fn digest(&self) -> u64 {
        self.map.iter().fold(0u64, |acc, (id, s)| {
            acc.wrapping_add((sign(id.as_bytes()) ^ s.fingerprint()).wrapping_mul(0xD6E8_FEB8_6659_FD93))
        })
    }

    /// The live ids in the map's iteration order (which depends on the hash seed; for tests).
    pub fn iteration_order(&self) -> Vec<&str> {
        self.map.keys().map(String::as_str).collect()
    }
}

/// One request as the session layer sees it: each field a separate heap allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The `Cookie:` header line, without CRLF.
    pub cookie: Vec<u8>,
    /// The request target (path and query).
    pub path: String,
    /// Bytes of the whole request, for accounting.
    pub len: u64,
}

/// Cookies real sites set besides the session id, with generators of their values.
fn push_other_cookie(out: &mut String, rng: &mut Rng) {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let push_random = |out: &mut String, rng: &mut Rng, n: u64, alphabet: &[u8]| {
        for _ in 0..n {
            out.push(char::from(*rng.pick(alphabet)));
        }
    };
    match rng.below(8) {
        0 => {
            let _ = write!(out, "_ga=GA1.2.{}.{}", rng.below(1 << 31), 1_600_000_000 + rng.below(1 << 27));
        }
        1 => out.push_str(if rng.chance(1, 2) { "theme=dark" } else { "theme=light" }),
        2 => {
            out.push_str("lang=");
            let lang: &&str = rng.pick(&["en-US", "de-DE", "fr-FR", "ja-JP", "pt-BR"]);
            out.push_str(lang);
        }
        3 => {
            out.push_str("csrftoken=");
            push_random(out, rng, 32, ALNUM);
        }
        4 => {
            out.push_str("cart=");
            let n = rng.range(16, 240);
            push_random(out, rng, n, B64URL);
        }
        5 => {
            out.push_str("prefs=\"");
            let n = rng.range(4, 24);
            push_random(out, rng, n, ALNUM);
            out.push('"');
        }
        6 => {
            let _ = write!(out, "_fbp=fb.1.{}.{}", 1_600_000_000_000 + rng.below(1 << 40), rng.below(1 << 31));
        }
        _ => {
            let _ = write!(out, "consent=v2:ads={}:analytics={}", rng.below(2), rng.below(2));
        }
    }
}

/// A request path, with a query string one time in four.
fn push_path(out: &mut String, rng: &mut Rng) {
    match rng.below(10) {
        0 | 1 => {
            let _ = write!(out, "/api/v1/users/{}", rng.range(1, 9_999_999));
        }
        2 => {
            let _ = write!(out, "/api/v1/orders/{}", rng.range(1, 9_999_999));
        }
        3 => {
            let _ = write!(out, "/api/v1/search?q=item{}&page={}", rng.below(5000), rng.range(1, 40));
        }
        4 => out.push_str("/cart"),
        5 => {
            let _ = write!(out, "/static/app.{:08x}.js", rng.next_u64() as u32);
        }
        6 => out.push_str("/login"),
        7 => out.push_str("/account/settings"),
        _ => out.push('/'),
    }
    if rng.chance(1, 4) && !out.contains('?') {
        let _ = write!(out, "?utm_source=news&ref={}", rng.below(100_000));
    }
}

/// The session layer in its steady state and the clients that drive it: the state of the
/// `session_store` scenario.
#[derive(Debug)]
pub struct Traffic {
    /// The sessions.
    pub store: SessionStore,
    /// Source of requests, new ids and users.
    pub rng: Rng,
    /// Current time, ticks (one per request).
    pub now: u64,
    /// Requests generated but not yet handled (a server's accepted backlog), oldest first.
    queue: VecDeque<Request>,
}

impl Traffic {
    /// Live sessions in the steady state (the table has 16 Ki buckets: a ~2 MB working set of
    /// entries, keys and per-session strings, spread over the heap).
    pub const SESSIONS: usize = 8192;
    /// Evicted ids remembered for "expired cookie" requests.
    pub const STALE: usize = 256;
    /// Requests generated ahead of handling.
    pub const QUEUE: usize = 16;

    /// The store filled to [`Traffic::SESSIONS`] (and [`Traffic::STALE`] evictions past it) from
    /// `seed`, with a full request queue.
    pub fn new(seed: u64) -> Traffic {
        let mut t = Traffic {
            store: SessionStore::new(Self::SESSIONS, Self::STALE),
            rng: Rng::new(seed),
            now: 0,
            queue: VecDeque::with_capacity(Self::QUEUE + 1),
        };
        let mut set_cookie = String::with_capacity(160);
        for _ in 0..Self::SESSIONS + Self::STALE {
            t.now += 1;
            let user = t.rng.below(1 << 20);
            t.store.create(&mut t.rng, user, t.now, &mut set_cookie);
        }
        for _ in 0..Self::QUEUE {
            let r = t.generate();
            t.queue.push_back(r);
        }
        t
    }

    /// Advances time by one tick and returns the next request to handle (generating a new one
    /// into the queue: requests refer to the sessions live when they were generated).
    pub fn next_request(&mut self) -> Request {
        self.now += 1;
        let r = self.generate();
        self.queue.push_back(r);
        self.queue.pop_front().expect("the queue is never empty")
    }

    /// A fresh user id for a new session.
    pub fn new_user(&mut self) -> u64 {
        self.rng.below(1 << 20)
    }

    /// Generates one request: its cookie header (0-7 other cookies, the `sid` at a random place)
    /// and its path.
    fn generate(&mut self) -> Request {
        let rng = &mut self.rng;
        let others = rng.below(8) as usize;
        let sid_at = rng.below(others as u64 + 1) as usize;
        let kind = rng.below(100);
        let mut c = String::with_capacity(64 + 48 * others);
        c.push_str(if rng.chance(1, 8) { "cookie: " } else { "Cookie: " });
        for k in 0..=others {
            if k > 0 {
                c.push_str("; ");
            }
            if k != sid_at {
                push_other_cookie(&mut c, rng);
                continue;
            }
            let id = match kind {
                // Live: half of them among the newest 1/16 (active users), half anywhere.
                0..=79 => {
                    let n = self.store.ring.len();
                    let age = if rng.chance(1, 2) { rng.below((n / 16).max(1) as u64) } else { rng.below(n as u64) };
                    self.store.live_id(age as usize).map(str::to_owned)
                }
                // Expired: an id evicted a while ago.
                80..=85 => self.store.stale_id(rng.below(Self::STALE as u64) as usize).map(str::to_owned),
                // Anonymous: no sid at all.
                86..=91 => None,
                // Tampered signature.
                92..=95 => {
                    let age = rng.below(self.store.ring.len() as u64) as usize;
                    let id = self.store.live_id(age).unwrap_or("0").to_owned();
                    let sig = sign(id.as_bytes()) ^ 1 << rng.below(64);
                    c.push_str("sid=");
                    c.push_str(&id);
                    c.push('.');
                    push_hex(&mut c, sig, SIG_HEX);
                    continue;
                }
                // Malformed sid: truncated or with an uppercase digit.
                96..=97 => {
                    c.push_str("sid=");
                    push_hex(&mut c, rng.next_u64(), 16);
                    push_hex(&mut c, rng.next_u64(), if rng.chance(1, 2) { 15 } else { 16 });
                    c.push_str(".DEADBEEF0000FFFF");
                    continue;
                }
                // Malformed header: a cookie without `=`, or a space inside a value.
                _ => {
                    c.push_str(if rng.chance(1, 2) { "sid" } else { "sid=broken value" });
                    continue;
                }
            };
            match id {
                Some(id) => {
                    c.push_str("sid=");
                    c.push_str(&id);
                    c.push('.');
                    push_hex(&mut c, sign(id.as_bytes()), SIG_HEX);
                }
                None => {
                    let _ = write!(c, "seen={}", rng.below(1000));
                }
            }
        }
        let mut path = String::with_capacity(48);
        push_path(&mut path, rng);
        let len = (c.len() + path.len() + 180 + rng.below(400) as usize) as u64;
        Request { cookie: c.into_bytes(), path, len }
    }

    /// Handles one request the way the scenario does (parse, look up, then update or create),
    /// unmeasured. Returns the value the scenario folds into its checksum; `set_cookie` and
    /// `pairs` are scratch buffers.
    pub fn handle(&mut self, req: &Request, pairs: &mut Vec<CookiePair>, set_cookie: &mut String) -> u64 {
        let sid = parse_cookie(&req.cookie, pairs);
        let mut out = pairs.len() as u64;
        let found = match sid {
            Ok(Sid::Present { id, sig }) => match self.store.lookup(&req.cookie[id], sig) {
                Lookup::Hit(s) => return out ^ update(s, self.now, &req.path, req.len) << 8,
                Lookup::Miss => 1,
                Lookup::BadSignature => 2,
            },
            Ok(Sid::Absent) => 3,
            Ok(Sid::Malformed) => 4,
            Err(_) => 5,
        };
        out |= found << 6;
        let user = self.new_user();
        out ^ self.store.create(&mut self.rng, user, self.now, set_cookie) ^ (set_cookie.len() as u64) << 48
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, value) byte strings.
    type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

    fn pairs_of(line: &[u8]) -> Result<Pairs<'_>, CookieError> {
        let mut v = Vec::new();
        parse_cookie_header(line, &mut v)?;
        Ok(v.into_iter().map(|p| (&line[p.name], &line[p.value])).collect())
    }

    #[test]
    fn parses_known_headers() {
        let sid = "0123456789abcdef0123456789abcdef.fedcba9876543210";
        let line = format!("Cookie: theme=dark; prefs=\"a1b2\"; sid={sid}; empty=; lang=en-US");
        let got = pairs_of(line.as_bytes()).unwrap();
        let want: Pairs = vec![
            (b"theme", b"dark"),
            (b"prefs", b"a1b2"),
            (b"sid", sid.as_bytes()),
            (b"empty", b""),
            (b"lang", b"en-US"),
        ];
        assert_eq!(got, want);
        let mut pairs = Vec::new();
        match parse_cookie(line.as_bytes(), &mut pairs).unwrap() {
            Sid::Present { id, sig } => {
                assert_eq!(&line.as_bytes()[id], b"0123456789abcdef0123456789abcdef");
                assert_eq!(sig, 0xfedc_ba98_7654_3210);
            }
            other => panic!("expected a sid, got {other:?}"),
        }
        // Case-insensitive field name, no space after the colon, trailing separator, OWS and CRLF.
        assert_eq!(pairs_of(b"COOKIE:a=1; b=2; \t\r\n").unwrap(), vec![(&b"a"[..], &b"1"[..]), (b"b", b"2")]);
        assert_eq!(pairs_of(b"Cookie:   ").unwrap(), vec![]);
        assert_eq!(pairs_of(b"Cookie: c=v2:ads=0").unwrap(), vec![(&b"c"[..], &b"v2:ads=0"[..])]);
    }

    #[test]
    fn rejects_malformed_headers() {
        assert_eq!(pairs_of(b"Set-Cookie: a=1"), Err(CookieError::NotCookie));
        assert_eq!(pairs_of(b"Cookie a=1"), Err(CookieError::NotCookie));
        assert_eq!(pairs_of(b"Cookie: sid"), Err(CookieError::MissingEquals));
        assert_eq!(pairs_of(b"Cookie: a=1; sid; b=2"), Err(CookieError::MissingEquals));
        assert_eq!(pairs_of(b"Cookie: =1"), Err(CookieError::BadName));
        assert_eq!(pairs_of(b"Cookie: a=1;; b=2"), Err(CookieError::BadName));
        assert_eq!(pairs_of(b"Cookie: a b=1"), Err(CookieError::BadName));
        assert_eq!(pairs_of(b"Cookie: a(=1"), Err(CookieError::BadName));
        assert_eq!(pairs_of(b"Cookie: sid=broken value"), Err(CookieError::BadValue));
        assert_eq!(pairs_of(b"Cookie: a=\"open"), Err(CookieError::BadValue));
        assert_eq!(pairs_of(b"Cookie: a=x,y"), Err(CookieError::BadValue));
        assert_eq!(pairs_of(b"Cookie: a=\"x\"y"), Err(CookieError::BadValue));
        assert_eq!(pairs_of(b"Cookie: a=\x01"), Err(CookieError::BadValue));
        let many: Vec<String> = (0..=MAX_COOKIES).map(|i| format!("c{i}=v")).collect();
        let line = format!("Cookie: {}", many.join("; "));
        assert_eq!(pairs_of(line.as_bytes()), Err(CookieError::TooManyCookies));
        let line = format!("Cookie: {}", many[..MAX_COOKIES].join("; "));
        assert_eq!(pairs_of(line.as_bytes()).unwrap().len(), MAX_COOKIES);
    }

    #[test]
    fn sid_shapes() {
        let sid = |v: &str| {
            let line = format!("Cookie: a=1; sid={v}");
            let mut p = Vec::new();
            parse_cookie(line.as_bytes(), &mut p).unwrap()
        };
        let id = "0123456789abcdef0123456789abcdef";
        assert!(matches!(sid(&format!("{id}.0000000000000001")), Sid::Present { sig: 1, .. }));
        assert_eq!(sid(&format!("{}.0000000000000001", &id[1..])), Sid::Malformed);
        assert_eq!(sid(&format!("{id}.000000000000001")), Sid::Malformed);
        assert_eq!(sid(&format!("{id}-0000000000000001")), Sid::Malformed);
        assert_eq!(sid(&format!("{}A.0000000000000001", &id[1..])), Sid::Malformed);
        assert_eq!(sid(&format!("{id}.DEADBEEF0000FFFF")), Sid::Malformed);
        let mut p = Vec::new();
        assert_eq!(parse_cookie(b"Cookie: SID=x; sids=y", &mut p), Ok(Sid::Absent));
    }

    #[test]
    fn store_signs_looks_up_and_evicts_in_creation_order() {
        let mut rng = Rng::new(1);
        let mut st = SessionStore::new(4, 2);
        let mut sc = String::new();
        let mut ids = Vec::new();
        for t in 0..6 {
            let sig = st.create(&mut rng, 100 + t, t, &mut sc);
            let id = sc[4..4 + ID_HEX].to_owned();
            assert_eq!(sign(id.as_bytes()), sig);
            assert!(sc.starts_with("sid=") && sc.contains("; HttpOnly"), "{sc}");
            ids.push(id);
        }
        assert_eq!(st.len(), 4);
        assert!(st.consistent());
        // The two oldest are gone (and remembered as stale); the newest is live_id(0).
        for (k, id) in ids.iter().enumerate() {
            assert_eq!(st.get(id).is_some(), k >= 2, "id {k}");
        }
        assert_eq!(st.live_id(0), Some(ids[5].as_str()));
        assert_eq!(st.live_id(3), Some(ids[2].as_str()));
        assert_eq!(st.live_id(4), None);
        assert_eq!(st.stale_id(0), Some(ids[0].as_str()));
        let live = ids[3].as_bytes();
        match st.lookup(live, sign(live)) {
            Lookup::Hit(s) => assert_eq!(s.user, 103),
            other => panic!("{other:?}"),
        }
        assert!(matches!(st.lookup(live, sign(live) ^ 1), Lookup::BadSignature));
        let dead = ids[0].as_bytes();
        assert!(matches!(st.lookup(dead, sign(dead)), Lookup::Miss));
    }

    #[test]
    fn update_accounts_and_rate_limits() {
        let mut s = Session::new(7, 0);
        for k in 0..RATE_BURST as u64 + 2 {
            update(&mut s, 1 + k, "/api/v1/search?q=x", 100);
        }
        assert_eq!((s.requests, s.bytes, s.throttled, s.tokens), (10, 1000, 2, 0));
        assert_eq!(s.route_hits[route_of("/api/v1/search")], 10);
        // One refill period later one request passes again.
        update(&mut s, 10 + RATE_REFILL_TICKS, "/cart", 1);
        assert_eq!((s.throttled, s.tokens), (2, 0));
        for p in ["/a", "/b?x=1", "/c", "/d"] {
            update(&mut s, 10 + RATE_REFILL_TICKS, p, 1);
        }
        let mut recent = s.recent.clone();
        recent.sort();
        assert_eq!(recent, ["/a", "/b", "/c", "/d"]);
        assert_eq!(route_of("/"), ROUTES - 1);
        assert_eq!(route_of("/cart?x"), 3);
    }

    #[test]
    fn traffic_stays_in_a_steady_state() {
        let mut t = Traffic::new(3);
        assert_eq!(t.store.len(), Traffic::SESSIONS);
        assert!(t.store.consistent());
        let (mut pairs, mut sc) = (Vec::new(), String::new());
        let (mut hits, mut bad_headers, mut others) = (0, 0, 0);
        for _ in 0..20_000 {
            let r = t.next_request();
            match parse_cookie(&r.cookie, &mut pairs) {
                Ok(Sid::Present { id, sig })
                    if matches!(t.store.lookup(&r.cookie[id.clone()], sig), Lookup::Hit(_)) =>
                {
                    hits += 1
                }
                Err(_) => bad_headers += 1,
                _ => others += 1,
            }
            t.handle(&r, &mut pairs, &mut sc);
            assert_eq!(t.store.len(), Traffic::SESSIONS);
        }
        assert!(t.store.consistent());
        // ~80 % live sessions (a few evicted while queued), ~2 % malformed headers.
        assert!((14_000..17_000).contains(&hits), "hits {hits}");
        assert!((200..700).contains(&bad_headers), "bad headers {bad_headers}");
        assert!(others > 2000, "others {others}");
    }

    #[test]
    fn checksum_does_not_depend_on_the_hash_seed() {
        // Two instances in one process get different `RandomState` keys, as two processes do.
        let mut a = Traffic::new(11);
        let mut b = Traffic::new(11);
        assert_ne!(
            a.store.iteration_order(),
            b.store.iteration_order(),
            "the table must use per-instance random hashing (std's RandomState)"
        );
        assert_eq!(a.store.digest(), b.store.digest());
        let (mut pa, mut pb, mut sa, mut sb) = (Vec::new(), Vec::new(), String::new(), String::new());
        let (mut ca, mut cb) = (0u64, 0u64);
        for _ in 0..5000 {
            let (ra, rb) = (a.next_request(), b.next_request());
            assert_eq!(ra, rb);
            ca = (ca ^ a.handle(&ra, &mut pa, &mut sa)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            cb = (cb ^ b.handle(&rb, &mut pb, &mut sb)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        assert_eq!(ca, cb);
        assert_eq!(a.store.digest(), b.store.digest());
        // And another seed does other work.
        let mut c = Traffic::new(12);
        assert_ne!(c.next_request(), Traffic::new(11).next_request());
    }
}
