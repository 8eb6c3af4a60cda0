//! HTTP/1.1 request parsing, routing and response building (the `http_parse` scenario).
//!
//! A zero-copy request parser in the style of `httparse` and of hand-written server front ends:
//! [`parse_request_line`] and [`parse_headers`] validate the bytes as RFC 9112 says (tokens are
//! `tchar`s, values are visible ASCII, obs-text, space or tab) and return byte ranges into the
//! request instead of copies; [`parse_headers`] also decides the body framing (Content-Length,
//! chunked, or none), rejecting the ambiguous combinations request smuggling relies on.
//! [`Router`] matches the path against a small table of segment patterns, and
//! [`build_response`] writes a status line, headers and a small JSON body with a hand-written
//! integer formatter. [`corpus`] generates the seeded, varied requests the scenario parses.

use std::ops::Range;

use crate::rng::Rng;

/// Most headers a request may have; more is an error (a bound every real server has).
pub const MAX_HEADERS: usize = 64;

/// Why a request was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The buffer ends before the part being parsed does.
    Incomplete,
    /// The method is empty or not a token.
    BadMethod,
    /// The request target is empty or has a byte outside visible ASCII.
    BadTarget,
    /// The version is not `HTTP/1.0` or `HTTP/1.1`.
    BadVersion,
    /// A header name is empty or not a token (or has whitespace before the colon).
    BadHeaderName,
    /// A header value has a forbidden byte.
    BadHeaderValue,
    /// More than [`MAX_HEADERS`] headers.
    TooManyHeaders,
    /// A Content-Length that is not a decimal number, or several that disagree.
    BadContentLength,
    /// Both Transfer-Encoding and Content-Length, or a Transfer-Encoding whose last coding is not
    /// chunked: rejected, as RFC 9112 section 6.1 allows, because proxies disagree on them.
    AmbiguousFraming,
}

/// The request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// PATCH
    Patch,
    /// OPTIONS
    Options,
    /// Any other token.
    Other,
}

impl Method {
    fn from_token(t: &[u8]) -> Method {
        match t {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"PATCH" => Method::Patch,
            b"OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// HTTP/1.0 or HTTP/1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: connections close unless the client asks for keep-alive.
    Http10,
    /// HTTP/1.1: connections persist unless the client says close.
    Http11,
}

/// A parsed request line; ranges index the request buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLine {
    /// The method.
    pub method: Method,
    /// The path, up to (not including) `?`.
    pub path: Range<usize>,
    /// The query after `?`, if any (possibly empty).
    pub query: Option<Range<usize>>,
    /// The version.
    pub version: Version,
}

/// One header: ranges of its name and of its value (without surrounding whitespace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderSpan {
    /// The name.
    pub name: Range<usize>,
    /// The value.
    pub value: Range<usize>,
}

/// How the body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes.
    ContentLength(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// What [`parse_headers`] learned about the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The Host header's value, if present.
    pub host: Option<Range<usize>>,
    /// Offset of the first body byte (just past the empty line).
    pub body_start: usize,
}

/// `tchar` from RFC 9110 section 5.6.2, as a 256-entry table.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            );
        c += 1;
    }
    t
};

/// Bytes allowed in a header value: VCHAR, obs-text, SP and HTAB.
#[inline]
fn value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// Parses the request line at the start of `buf`: the line and the offset just past its CRLF.
///
/// Cost: O(line length), one pass.
pub fn parse_request_line(buf: &[u8]) -> Result<(RequestLine, usize), ParseError> {
    let mut i = 0;
    while i < buf.len() && TCHAR[buf[i] as usize] {
        i += 1;
    }
    if i == 0 {
        return Err(if buf.is_empty() { ParseError::Incomplete } else { ParseError::BadMethod });
    }
    match buf.get(i) {
        None => return Err(ParseError::Incomplete),
        Some(b' ') => {}
        Some(_) => return Err(ParseError::BadMethod),
    }
    let method = Method::from_token(&buf[..i]);
    let target_start = i + 1;
    let mut j = target_start;
    let mut qmark = None;
    while j < buf.len() {
        let b = buf[j];
        if b == b' ' {
            break;
        }
        if !(0x21..0x7f).contains(&b) {
            return Err(ParseError::BadTarget);
        }
        if b == b'?' && qmark.is_none() {
            qmark = Some(j);
        }
        j += 1;
    }
    if j == buf.len() {
        return Err(ParseError::Incomplete);
    }
    if j == target_start {
        return Err(ParseError::BadTarget);
    }
    let rest = &buf[j + 1..];
    if rest.len() < 10 {
        return Err(if b"HTTP/1.1\r\n".starts_with(rest) { ParseError::Incomplete } else { ParseError::BadVersion });
    }
    let version = match &rest[..10] {
        b"HTTP/1.1\r\n" => Version::Http11,
        b"HTTP/1.0\r\n" => Version::Http10,
        _ => return Err(ParseError::BadVersion),
    };
    let (path, query) = match qmark {
        Some(q) => (target_start..q, Some(q + 1..j)),
        None => (target_start..j, None),
    };
    Ok((RequestLine { method, path, query, version }, j + 11))
}

/// Case-insensitive comparison of a header name with a lower-case constant.
#[inline]
fn name_is(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len() && name.iter().zip(lower).all(|(a, b)| a.to_ascii_lowercase() == *b)
}

/// Whether the comma-separated `value` contains the token `lower` (case-insensitively).
fn has_token(value: &[u8], lower: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|t| name_is(t.trim_ascii(), lower))
}

/// Parses the header block starting at `start` (just past the request line) into `headers`
/// (cleared first) and decides framing and persistence.
///
/// Cost: O(header block length), one pass over each byte plus the comparisons of a few names.
pub fn parse_headers(
    buf: &[u8],
    start: usize,
    version: Version,
    headers: &mut Vec<HeaderSpan>,
) -> Result<Head, ParseError> {
    headers.clear();
    let mut pos = start;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut te_seen = false;
    let mut keep_alive = version == Version::Http11;
    let mut host = None;
    loop {
        match buf.get(pos..pos + 2) {
            None => return Err(ParseError::Incomplete),
            Some(b"\r\n") => {
                pos += 2;
                break;
            }
            Some(_) => {}
        }
        let name_start = pos;
        while pos < buf.len() && TCHAR[buf[pos] as usize] {
            pos += 1;
        }
        match buf.get(pos) {
            None => return Err(ParseError::Incomplete),
            Some(b':') if pos > name_start => {}
            Some(_) => return Err(ParseError::BadHeaderName),
        }
        let name = name_start..pos;
        pos += 1;
        while pos < buf.len() && (buf[pos] == b' ' || buf[pos] == b'\t') {
            pos += 1;
        }
        let value_start = pos;
        loop {
            match buf.get(pos) {
                None => return Err(ParseError::Incomplete),
                Some(b'\r') => break,
                Some(&b) if value_byte(b) => pos += 1,
                Some(_) => return Err(ParseError::BadHeaderValue),
            }
        }
        match buf.get(pos + 1) {
            None => return Err(ParseError::Incomplete),
            Some(b'\n') => {}
            Some(_) => return Err(ParseError::BadHeaderValue),
        }
        let mut value_end = pos;
        while value_end > value_start && (buf[value_end - 1] == b' ' || buf[value_end - 1] == b'\t') {
            value_end -= 1;
        }
        pos += 2;
        if headers.len() == MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        let (n, v) = (&buf[name.clone()], &buf[value_start..value_end]);
        // Dispatch on length first: most headers are none of the four and cost one compare.
        match n.len() {
            14 if name_is(n, b"content-length") => {
                let len = parse_decimal(v).ok_or(ParseError::BadContentLength)?;
                if content_length.is_some_and(|c| c != len) {
                    return Err(ParseError::BadContentLength);
                }
                content_length = Some(len);
            }
            17 if name_is(n, b"transfer-encoding") => {
                te_seen = true;
                let last = v.rsplit(|&b| b == b',').next().unwrap_or(b"").trim_ascii();
                chunked = name_is(last, b"chunked");
            }
            10 if name_is(n, b"connection") => {
                if has_token(v, b"close") {
                    keep_alive = false;
                } else if has_token(v, b"keep-alive") {
                    keep_alive = true;
                }
            }
            4 if name_is(n, b"host") => host = Some(value_start..value_end),
            _ => {}
        }
        headers.push(HeaderSpan { name, value: value_start..value_end });
    }
    let framing = match (te_seen, chunked, content_length) {
        (true, _, Some(_)) | (true, false, _) => return Err(ParseError::AmbiguousFraming),
        (true, true, None) => BodyFraming::Chunked,
        (false, _, Some(0)) | (false, _, None) => BodyFraming::None,
        (false, _, Some(n)) => BodyFraming::ContentLength(n),
    };
    Ok(Head { framing, keep_alive, host, body_start: pos })
}

/// A non-empty run of ASCII digits that fits in a u64.
fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0')))
}

/// One path segment pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg {
    /// Exactly this text.
    Lit(&'static str),
    /// A decimal id (captured).
    Id,
    /// Anything, including further segments; must be last.
    Rest,
}

/// One route: a method (None = any) and segment patterns.
#[derive(Clone, Debug)]
pub struct Route {
    /// Method it answers, or any.
    pub method: Option<Method>,
    /// The segments, e.g. `/api/v1/users/{id}` is `[Lit("api"), Lit("v1"), Lit("users"), Id]`.
    pub segs: &'static [Seg],
}

/// The outcome of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteMatch {
    /// Route number `route` matched with up to two captured ids (0 when absent).
    Found {
        /// Index in the table.
        route: u16,
        /// Captured ids, in order.
        ids: [u64; 2],
    },
    /// A route matched the path but not the method.
    MethodNotAllowed,
    /// No route matched the path.
    NotFound,
}

/// Most path segments examined; longer paths can only match a `Rest` route.
pub const MAX_SEGS: usize = 8;

/// A small routing table, matched in order (first match wins).
#[derive(Clone, Debug)]
pub struct Router {
    routes: Vec<Route>,
}

impl Default for Router {
    /// The table the scenario serves (a typical small JSON API plus static files).
    fn default() -> Router {
        use Seg::*;
        const API: [Seg; 2] = [Lit("api"), Lit("v1")];
        let r = |method, segs| Route { method, segs };
        Router {
            routes: vec![
                r(Some(Method::Get), &[Lit("health")]),
                r(Some(Method::Post), &[Lit("login")]),
                r(Some(Method::Get), &[API[0], API[1], Lit("users"), Id]),
                r(Some(Method::Put), &[API[0], API[1], Lit("users"), Id]),
                r(Some(Method::Delete), &[API[0], API[1], Lit("users"), Id]),
                r(Some(Method::Get), &[API[0], API[1], Lit("users"), Id, Lit("orders")]),
                r(Some(Method::Post), &[API[0], API[1], Lit("users"), Id, Lit("orders")]),
                r(Some(Method::Get), &[API[0], API[1], Lit("orders"), Id]),
                r(Some(Method::Patch), &[API[0], API[1], Lit("orders"), Id]),
                r(Some(Method::Get), &[API[0], API[1], Lit("items"), Id, Lit("reviews"), Id]),
                r(Some(Method::Get), &[API[0], API[1], Lit("search")]),
                r(None, &[Lit("static"), Rest]),
            ],
        }
    }
}

impl Router {
    /// A router over the given table.
    pub fn new(routes: Vec<Route>) -> Router {
        Router { routes }
    }

    /// Matches `path` (must start with `/`; no query) and `method`.
    ///
    /// Cost: one pass to split the path into at most [`MAX_SEGS`] segments, then per route at most
    /// one comparison per segment.
    pub fn lookup(&self, method: Method, path: &[u8]) -> RouteMatch {
        let mut segs: [&[u8]; MAX_SEGS] = [&[]; MAX_SEGS];
        let mut n = 0;
        let mut too_long = false;
        let body = path.strip_prefix(b"/").unwrap_or(path);
        if !body.is_empty() {
            for s in body.split(|&b| b == b'/') {
                if n == MAX_SEGS {
                    too_long = true;
                    break;
                }
                segs[n] = s;
                n += 1;
            }
        }
        let mut path_matched = false;
        for (ri, route) in self.routes.iter().enumerate() {
            let mut ids = [0u64; 2];
            let mut nid = 0;
            let mut ok = true;
            let mut rest = false;
            for (k, pat) in route.segs.iter().enumerate() {
                match *pat {
                    Seg::Rest => {
                        // At least one segment must be left for the wildcard.
                        rest = k < n;
                        ok = rest;
                        break;
                    }
                    _ if k >= n => {
                        ok = false;
                        break;
                    }
                    Seg::Lit(l) => {
                        if segs[k] != l.as_bytes() {
                            ok = false;
                            break;
                        }
                    }
                    Seg::Id => match parse_decimal(segs[k]) {
                        Some(v) if nid < 2 => {
                            ids[nid] = v;
                            nid += 1;
                        }
                        _ => {
                            ok = false;
                            break;
                        }
                    },
                }
            }
            if !ok || (!rest && (route.segs.len() != n || too_long)) {
                continue;
            }
            if route.method.is_none_or(|m| m == method) {
                return RouteMatch::Found { route: ri as u16, ids };
            }
            path_matched = true;
        }
        if path_matched {
            RouteMatch::MethodNotAllowed
        } else {
            RouteMatch::NotFound
        }
    }
}

/// Appends the decimal digits of `v` to `out`.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Writes a complete response for a routed request into `out` (cleared first), using `body` as
/// scratch for the JSON body; returns the response's length.
///
/// The status follows the match (200, 201 for a POST, 204 for a DELETE, 404, 405); the body
/// echoes the route and ids, and the request's framing and Host length, as a JSON object.
pub fn build_response(out: &mut Vec<u8>, body: &mut Vec<u8>, method: Method, m: &RouteMatch, head: &Head) -> usize {
    out.clear();
    body.clear();
    let status: &[u8] = match (m, method) {
        (RouteMatch::Found { .. }, Method::Post) => b"201 Created",
        (RouteMatch::Found { .. }, Method::Delete) => b"204 No Content",
        (RouteMatch::Found { .. }, _) => b"200 OK",
        (RouteMatch::MethodNotAllowed, _) => b"405 Method Not Allowed",
        (RouteMatch::NotFound, _) => b"404 Not Found",
    };
    match m {
        RouteMatch::Found { route, ids } => {
            body.extend_from_slice(b"{\"route\":");
            push_u64(body, u64::from(*route));
            body.extend_from_slice(b",\"ids\":[");
            push_u64(body, ids[0]);
            body.push(b',');
            push_u64(body, ids[1]);
            body.extend_from_slice(b"],\"framing\":\"");
            body.extend_from_slice(match head.framing {
                BodyFraming::None => b"none".as_slice(),
                BodyFraming::ContentLength(_) => b"length",
                BodyFraming::Chunked => b"chunked",
            });
            body.extend_from_slice(b"\",\"host_len\":");
            push_u64(body, head.host.as_ref().map_or(0, |h| h.len() as u64));
            body.extend_from_slice(b",\"ok\":true}");
        }
        _ => body.extend_from_slice(b"{\"ok\":false,\"error\":\"no such resource\"}"),
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status);
    out.extend_from_slice(b"\r\nServer: funcscope-scenario\r\nDate: Mon, 23 Nov 2026 09:27:00 GMT\r\n");
    let no_body = method == Method::Head || status.starts_with(b"204");
    if !no_body {
        out.extend_from_slice(b"Content-Type: application/json\r\nContent-Length: ");
        push_u64(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Cache-Control: no-store\r\nConnection: ");
    out.extend_from_slice(if head.keep_alive { b"keep-alive".as_slice() } else { b"close" });
    out.extend_from_slice(b"\r\n\r\n");
    if !no_body {
        out.extend_from_slice(body);
    }
    out.len()
}

const USER_AGENTS: &[&str] = &[
    "curl/8.5.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
];

/// Appends `n` characters of the alphabet chosen by `rng`.
fn push_random(out: &mut Vec<u8>, rng: &mut Rng, n: u64, alphabet: &[u8]) {
    for _ in 0..n {
        out.push(*rng.pick(alphabet));
    }
}

/// Writes a header name, lower-cased one time in four (as HTTP/2-to-1 proxies send them).
fn push_name(out: &mut Vec<u8>, rng: &mut Rng, name: &str) {
    if rng.chance(1, 4) {
        out.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(b": ");
}

/// One seeded request: varied methods and paths (most routable, some 404/405), 5-14 headers of
/// which a few are long (cookies, bearer tokens: 100-700 bytes), and a body with Content-Length
/// or chunked framing for the methods that carry one.
pub fn generate_request(rng: &mut Rng) -> Vec<u8> {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const HEX: &[u8] = b"0123456789abcdef";
    const WORD: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    let mut r = Vec::with_capacity(1024);
    let (method, with_body): (&str, bool) = match rng.below(20) {
        0..=11 => ("GET", false),
        12..=14 => ("POST", true),
        15 => ("PUT", true),
        16 => ("DELETE", false),
        17 => ("PATCH", true),
        18 => ("HEAD", false),
        _ => ("OPTIONS", false),
    };
    r.extend_from_slice(method.as_bytes());
    r.push(b' ');
    let id = |rng: &mut Rng| rng.range(1, 9_999_999);
    match rng.below(10) {
        0 => r.extend_from_slice(b"/health"),
        1 => r.extend_from_slice(b"/login"),
        2 | 3 => r.extend_from_slice(format!("/api/v1/users/{}", id(rng)).as_bytes()),
        4 => r.extend_from_slice(format!("/api/v1/users/{}/orders", id(rng)).as_bytes()),
        5 => r.extend_from_slice(format!("/api/v1/orders/{}", id(rng)).as_bytes()),
        6 => r.extend_from_slice(format!("/api/v1/items/{}/reviews/{}", id(rng), id(rng)).as_bytes()),
        7 => {
            r.extend_from_slice(b"/api/v1/search?q=");
            let n = rng.range(3, 24);
            push_random(&mut r, rng, n, WORD);
            r.extend_from_slice(format!("&page={}&sort=relevance", rng.range(1, 40)).as_bytes());
        }
        8 => {
            r.extend_from_slice(b"/static/assets/");
            let n = rng.range(6, 20);
            push_random(&mut r, rng, n, HEX);
            r.extend_from_slice(b".js");
        }
        _ => r.extend_from_slice(b"/wp-admin/setup-config.php"),
    }
    r.extend_from_slice(if rng.chance(1, 16) { b" HTTP/1.0\r\n" } else { b" HTTP/1.1\r\n" });
    push_name(&mut r, rng, "Host");
    r.extend_from_slice(b"api.example.com\r\n");
    push_name(&mut r, rng, "User-Agent");
    r.extend_from_slice(rng.pick(USER_AGENTS).as_bytes());
    r.extend_from_slice(b"\r\n");
    push_name(&mut r, rng, "Accept");
    r.extend_from_slice(b"application/json, text/plain;q=0.9, */*;q=0.8\r\n");
    if rng.chance(3, 4) {
        push_name(&mut r, rng, "Accept-Encoding");
        r.extend_from_slice(b"gzip, deflate, br, zstd\r\n");
    }
    if rng.chance(1, 2) {
        push_name(&mut r, rng, "Accept-Language");
        r.extend_from_slice(b"en-US,en;q=0.9,de;q=0.7\r\n");
    }
    if rng.chance(1, 2) {
        push_name(&mut r, rng, "Cookie");
        for k in 0..rng.range(2, 12) {
            if k > 0 {
                r.extend_from_slice(b"; ");
            }
            let n = rng.range(3, 10);
            push_random(&mut r, rng, n, WORD);
            r.push(b'=');
            let n = rng.range(8, 48);
            push_random(&mut r, rng, n, B64);
        }
        r.extend_from_slice(b"\r\n");
    }
    if rng.chance(2, 3) {
        push_name(&mut r, rng, "Authorization");
        r.extend_from_slice(b"Bearer ");
        let n = rng.range(120, 400);
        push_random(&mut r, rng, n, B64);
        r.extend_from_slice(b"\r\n");
    }
    push_name(&mut r, rng, "X-Request-Id");
    push_random(&mut r, rng, 32, HEX);
    r.extend_from_slice(b"\r\n");
    if rng.chance(1, 3) {
        push_name(&mut r, rng, "X-Forwarded-For");
        for k in 0..rng.range(1, 4) {
            if k > 0 {
                r.extend_from_slice(b", ");
            }
            let ip = format!("{}.{}.{}.{}", rng.range(1, 223), rng.below(256), rng.below(256), rng.range(1, 254));
            r.extend_from_slice(ip.as_bytes());
        }
        r.extend_from_slice(b"\r\n");
    }
    if rng.chance(1, 2) {
        push_name(&mut r, rng, "Connection");
        r.extend_from_slice(if rng.chance(1, 5) { b"close\r\n" } else { b"keep-alive\r\n" });
    }
    let body_len = if with_body { rng.range(2, 300) } else { 0 };
    let chunked = with_body && rng.chance(1, 4);
    if with_body {
        push_name(&mut r, rng, "Content-Type");
        r.extend_from_slice(b"application/json\r\n");
        if chunked {
            push_name(&mut r, rng, "Transfer-Encoding");
            r.extend_from_slice(b"chunked\r\n");
        } else {
            push_name(&mut r, rng, "Content-Length");
            push_u64(&mut r, body_len);
            r.extend_from_slice(b"\r\n");
        }
    }
    r.extend_from_slice(b"\r\n");
    if with_body {
        let mut body = Vec::new();
        body.extend_from_slice(b"{\"v\":\"");
        push_random(&mut body, rng, body_len.saturating_sub(8).max(1), WORD);
        body.extend_from_slice(b"\"}");
        if chunked {
            r.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            r.extend_from_slice(&body);
            r.extend_from_slice(b"\r\n0\r\n\r\n");
        } else {
            body.truncate(body_len as usize);
            r.extend_from_slice(&body);
        }
    }
    r
}

/// `n` seeded requests (see [`generate_request`]).
pub fn corpus(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| generate_request(&mut rng)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"POST /api/v1/users/42/orders?dry=1 HTTP/1.1\r\n\
        Host: api.example.com\r\n\
        content-length:  17 \r\n\
        Connection: keep-alive\r\n\
        X-Empty:\r\n\
        \r\n\
        {\"item\":\"widget\"}";

    #[test]
    fn parses_a_known_request() {
        let (rl, off) = parse_request_line(REQ).unwrap();
        assert_eq!(rl.method, Method::Post);
        assert_eq!(&REQ[rl.path.clone()], b"/api/v1/users/42/orders");
        assert_eq!(&REQ[rl.query.clone().unwrap()], b"dry=1");
        assert_eq!(rl.version, Version::Http11);
        let mut hs = Vec::new();
        let head = parse_headers(REQ, off, rl.version, &mut hs).unwrap();
        assert_eq!(hs.len(), 4);
        assert_eq!(&REQ[hs[1].name.clone()], b"content-length");
        assert_eq!(&REQ[hs[1].value.clone()], b"17");
        assert_eq!(&REQ[hs[3].value.clone()], b"");
        assert_eq!(head.framing, BodyFraming::ContentLength(17));
        assert!(head.keep_alive);
        assert_eq!(&REQ[head.host.clone().unwrap()], b"api.example.com");
        assert_eq!(&REQ[head.body_start..], b"{\"item\":\"widget\"}");

        let router = Router::default();
        assert_eq!(router.lookup(rl.method, &REQ[rl.path]), RouteMatch::Found { route: 6, ids: [42, 0] });
    }

    #[test]
    fn framing_and_persistence() {
        let mut hs = Vec::new();
        let mut head = |s: &[u8]| {
            let (rl, off) = parse_request_line(s)?;
            parse_headers(s, off, rl.version, &mut hs)
        };
        let h = head(b"GET / HTTP/1.0\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n").unwrap();
        assert_eq!(h.framing, BodyFraming::Chunked);
        assert!(!h.keep_alive);
        let h = head(b"GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        assert_eq!(h.framing, BodyFraming::None);
        assert_eq!(
            head(b"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(ParseError::AmbiguousFraming)
        );
        assert_eq!(head(b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), Err(ParseError::AmbiguousFraming));
        assert_eq!(
            head(b"GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            Err(ParseError::BadContentLength)
        );
        assert_eq!(head(b"GET / HTTP/1.1\r\nContent-Length: 3x\r\n\r\n"), Err(ParseError::BadContentLength));
    }

    #[test]
    fn rejects_bad_requests() {
        assert_eq!(parse_request_line(b"GET /x HTTP/1.1").unwrap_err(), ParseError::Incomplete);
        assert_eq!(parse_request_line(b"GET /x HTTP/2.0\r\n").unwrap_err(), ParseError::BadVersion);
        assert_eq!(parse_request_line(b"G(T /x HTTP/1.1\r\n").unwrap_err(), ParseError::BadMethod);
        assert_eq!(parse_request_line(b"GET /\x01 HTTP/1.1\r\n").unwrap_err(), ParseError::BadTarget);
        assert_eq!(parse_request_line(b"GET  HTTP/1.1\r\n").unwrap_err(), ParseError::BadTarget);
        let mut hs = Vec::new();
        let h = |s: &[u8], hs: &mut Vec<HeaderSpan>| parse_headers(s, 0, Version::Http11, hs);
        assert_eq!(h(b"Host : x\r\n\r\n", &mut hs), Err(ParseError::BadHeaderName));
        assert_eq!(h(b": x\r\n\r\n", &mut hs), Err(ParseError::BadHeaderName));
        assert_eq!(h(b"Host: a\x00b\r\n\r\n", &mut hs), Err(ParseError::BadHeaderValue));
        assert_eq!(h(b"Host: a\r\n", &mut hs), Err(ParseError::Incomplete));
        let many: Vec<u8> = (0..=MAX_HEADERS).flat_map(|i| format!("X-{i}: v\r\n").into_bytes()).collect();
        assert_eq!(h(&many, &mut hs), Err(ParseError::TooManyHeaders));
    }

    #[test]
    fn routes() {
        let r = Router::default();
        assert_eq!(r.lookup(Method::Get, b"/health"), RouteMatch::Found { route: 0, ids: [0, 0] });
        assert_eq!(r.lookup(Method::Post, b"/health"), RouteMatch::MethodNotAllowed);
        assert_eq!(r.lookup(Method::Get, b"/api/v1/items/7/reviews/99"), RouteMatch::Found { route: 9, ids: [7, 99] });
        assert_eq!(r.lookup(Method::Get, b"/api/v1/users/abc"), RouteMatch::NotFound);
        assert_eq!(r.lookup(Method::Get, b"/static/a/b/c.js"), RouteMatch::Found { route: 11, ids: [0, 0] });
        assert_eq!(r.lookup(Method::Get, b"/static"), RouteMatch::NotFound);
        assert_eq!(r.lookup(Method::Get, b"/"), RouteMatch::NotFound);
        assert_eq!(r.lookup(Method::Get, b"/a/b/c/d/e/f/g/h/i/j"), RouteMatch::NotFound);
    }

    #[test]
    fn response() {
        let (mut out, mut body) = (Vec::new(), Vec::new());
        let head = Head { framing: BodyFraming::None, keep_alive: true, host: Some(0..15), body_start: 0 };
        let m = RouteMatch::Found { route: 2, ids: [1234, 0] };
        let n = build_response(&mut out, &mut body, Method::Get, &m, &head);
        let s = std::str::from_utf8(&out).unwrap();
        assert_eq!(n, out.len());
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        let json = "{\"route\":2,\"ids\":[1234,0],\"framing\":\"none\",\"host_len\":15,\"ok\":true}";
        assert!(
            s.ends_with(&format!(
                "Content-Length: {}\r\nCache-Control: no-store\r\nConnection: keep-alive\r\n\r\n{json}",
                json.len()
            )),
            "{s}"
        );
        build_response(&mut out, &mut body, Method::Delete, &m, &head);
        assert!(out.starts_with(b"HTTP/1.1 204 No Content\r\n") && out.ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn corpus_parses_and_is_deterministic() {
        let c = corpus(1, 300);
        assert_eq!(c, corpus(1, 300));
        let router = Router::default();
        let mut hs = Vec::new();
        let (mut found, mut chunked) = (0, 0);
        for req in &c {
            let (rl, off) = parse_request_line(req).unwrap();
            let head = parse_headers(req, off, rl.version, &mut hs).unwrap();
            assert!(hs.len() >= 4); // Host, User-Agent, Accept, X-Request-Id
            match head.framing {
                BodyFraming::Chunked => {
                    chunked += 1;
                    assert!(req.ends_with(b"\r\n0\r\n\r\n"));
                }
                BodyFraming::ContentLength(n) => assert_eq!(req.len() - head.body_start, n as usize),
                BodyFraming::None => assert_eq!(req.len(), head.body_start),
            }
            if matches!(router.lookup(rl.method, &req[rl.path]), RouteMatch::Found { .. }) {
                found += 1;
            }
        }
        assert!(found > 150 && chunked > 5, "found {found}, chunked {chunked}");
    }
}
