//! A tiny instrumented event loop: the shape of program funcscope is made for.
//!
//! Each turn of the loop polls for events (here: synthetic request lines pushed onto a
//! `VecDeque`), parses and handles every queued message against a small key-value store, fires
//! due timers, and calls `session.poll_attach()` so a reader can attach at any moment. Four
//! checkpoints are instrumented:
//!
//! | index | name             | marked with                         |
//! |-------|------------------|-------------------------------------|
//! | 0     | `poll_events`    | `scope!` (RAII guard)               |
//! | 1     | `parse`          | `enter!`/`exit!`, nested in 2       |
//! | 2     | `handle_message` | `enter!`/`exit!`, once per message  |
//! | 3     | `timers`         | `scope!`                            |
//!
//! # Run it
//! ```text
//! cargo run --release -p funcscope --example event_loop -- --seconds 30
//! ```
//! Options: `--seconds N` (default 5), `--level lite|normal|deep|full` (default normal),
//! `--idle-us N` (sleep per turn, standing in for a blocking poll; default 100).
//! It prints its attach socket first, e.g. `socket: /run/user/0/funcscope/4242.sock`
//! (the directory is `$FUNCSCOPE_SOCKET_DIR`, else `$XDG_RUNTIME_DIR/funcscope`, else
//! `/tmp/funcscope-<uid>`).
//!
//! # Attach a reader
//! From another terminal, while it runs (the same binary has a small reader mode built on
//! `funcscope::reader`):
//! ```text
//! cargo run --release -p funcscope --example event_loop -- --attach /run/user/0/funcscope/4242.sock
//! ```
//! It prints, once a second, each checkpoint's calls and mean duration over that second (the first
//! line also covers the calls made before the attach that are still in the rings), until
//! the program exits (or `--seconds N` of reading pass). In your own reader the core is:
//! ```text
//! let att = funcscope::reader::attach(socket_path, Duration::from_secs(2))?; // keep it alive
//! let mut drain = funcscope::reader::Drain::new(&att.region);
//! drain.drain(&att.region, |checkpoint, sample| { /* sample.ticks; att.region.freq_hz()? */ })?;
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use funcscope::reader::{attach, Drain};
use funcscope::{AttachStatus, Builder, Level};

const POLL_EVENTS: usize = 0;
const PARSE: usize = 1;
const HANDLE_MESSAGE: usize = 2;
const TIMERS: usize = 3;
const CHECKPOINTS: [&str; 4] = ["poll_events", "parse", "handle_message", "timers"];

/// A parsed request.
#[derive(Debug, PartialEq)]
enum Request<'a> {
    Set { key: &'a str, value: i64 },
    Get { key: &'a str },
    Del { key: &'a str },
    Ping,
}

fn parse(line: &str) -> Result<Request<'_>, String> {
    let mut words = line.split_ascii_whitespace();
    let verb = words.next().ok_or("empty line")?;
    let arg = words.next();
    let req = match (verb, arg) {
        ("SET", Some(kv)) => {
            let (key, value) = kv.split_once('=').ok_or_else(|| format!("SET wants key=value, got {kv:?}"))?;
            let value = value.parse().map_err(|e| format!("bad value {value:?}: {e}"))?;
            Request::Set { key, value }
        }
        ("GET", Some(key)) => Request::Get { key },
        ("DEL", Some(key)) => Request::Del { key },
        ("PING", None) => Request::Ping,
        _ => return Err(format!("unknown request {line:?}")),
    };
    match words.next() {
        Some(extra) => Err(format!("trailing {extra:?} in {line:?}")),
        None => Ok(req),
    }
}

/// Deterministic xorshift, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// "The network": 0 to 7 request lines per turn, a few of them malformed.
fn poll_events(rng: &mut Rng, queue: &mut VecDeque<String>) {
    funcscope::scope!(POLL_EVENTS);
    for _ in 0..rng.next() % 8 {
        let r = rng.next();
        let key = format!("k{}", r % 64);
        queue.push_back(match (r >> 8) % 10 {
            0..=3 => format!("SET {key}={}", (r >> 16) % 10_000),
            4..=7 => format!("GET {key}"),
            8 => format!("DEL {key}"),
            _ if r & 1 == 0 => "PING".to_string(),
            _ => format!("SET {key}=oops"),
        });
    }
}

#[derive(Default)]
struct Stats {
    handled: u64,
    errors: u64,
    hits: u64,
    timers_fired: u64,
    checksum: i64,
}

fn handle_message(line: &str, store: &mut HashMap<String, i64>, stats: &mut Stats) {
    funcscope::enter!(PARSE);
    let req = parse(line);
    funcscope::exit!(PARSE);
    match req {
        Ok(Request::Set { key, value }) => {
            store.insert(key.to_owned(), value);
        }
        Ok(Request::Get { key }) => {
            if let Some(v) = store.get(key) {
                stats.hits += 1;
                stats.checksum = stats.checksum.wrapping_add(*v);
            }
        }
        Ok(Request::Del { key }) => {
            store.remove(key);
        }
        Ok(Request::Ping) => {}
        Err(_) => stats.errors += 1,
    }
    stats.handled += 1;
}

/// Timers keyed by deadline (and an id, to keep equal deadlines apart); each has a period.
fn fire_timers(
    now: Instant,
    start: Instant,
    timers: &mut BTreeMap<(Duration, u32), Duration>,
    store: &mut HashMap<String, i64>,
    stats: &mut Stats,
) {
    funcscope::scope!(TIMERS);
    let elapsed = now - start;
    while let Some(entry) = timers.first_entry() {
        let (deadline, id) = *entry.key();
        if deadline > elapsed {
            break;
        }
        let period = entry.remove();
        stats.timers_fired += 1;
        match id {
            // Expire: forget a few keys.
            0 => store.retain(|k, _| !k.ends_with('7')),
            // Compact: clamp big values.
            1 => store.values_mut().for_each(|v| *v = (*v).min(5_000)),
            // Heartbeat: nothing to do.
            _ => {}
        }
        timers.insert((deadline + period, id), period);
    }
}

struct Options {
    /// `--seconds`: how long to run (default 5), or in reader mode how long to read (default:
    /// until the program exits).
    seconds: Option<f64>,
    level: Level,
    idle: Duration,
    attach: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut o = Options { seconds: None, level: Level::Normal, idle: Duration::from_micros(100), attach: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--seconds" => {
                let s: f64 = value()?.parse().map_err(|e| format!("--seconds: {e}"))?;
                o.seconds = Some(s);
                if !(s >= 0.0 && s.is_finite()) {
                    return Err("--seconds must be a finite number >= 0".into());
                }
            }
            "--idle-us" => o.idle = Duration::from_micros(value()?.parse().map_err(|e| format!("--idle-us: {e}"))?),
            "--level" => {
                o.level = match value()?.as_str() {
                    "lite" => Level::Lite,
                    "normal" => Level::Normal,
                    "deep" => Level::Deep,
                    "full" => Level::Full,
                    l => return Err(format!("unknown level {l:?} (lite, normal, deep, full)")),
                }
            }
            "--attach" => o.attach = Some(value()?),
            "-h" | "--help" => {
                println!(
                    "usage: event_loop [--seconds N] [--level lite|normal|deep|full] [--idle-us N]\n       event_loop --attach SOCKET [--seconds N]"
                );
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {a:?} (try --help)")),
        }
    }
    Ok(o)
}

fn main() {
    let o = options().unwrap_or_else(|e| {
        eprintln!("event_loop: {e}");
        std::process::exit(2);
    });
    let result = match &o.attach {
        Some(socket) => read(Path::new(socket), &o),
        None => run(&o),
    };
    if let Err(e) = result {
        eprintln!("event_loop: {e}");
        std::process::exit(1);
    }
}

/// The instrumented program.
fn run(o: &Options) -> Result<(), String> {
    let mut session =
        Builder::new(o.level).checkpoints(&CHECKPOINTS).init().map_err(|e| format!("funcscope init: {e}"))?;
    match session.socket_path() {
        Some(p) => println!("socket: {}", p.display()),
        None => println!("socket: none"),
    }
    println!("pid {}, level {}, clock: {}", session.pid(), o.level.name(), session.clock().reason);
    for w in session.warnings() {
        eprintln!("warning: {w}");
    }

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut queue = VecDeque::new();
    let mut store = HashMap::new();
    let mut stats = Stats::default();
    let mut timers = BTreeMap::new();
    for (id, period_ms) in [(0u32, 50u64), (1, 200), (2, 10)] {
        let period = Duration::from_millis(period_ms);
        timers.insert((period, id), period);
    }

    let start = Instant::now();
    let run_for = Duration::from_secs_f64(o.seconds.unwrap_or(5.0));
    let mut turns = 0u64;
    loop {
        let now = Instant::now();
        if now - start >= run_for {
            break;
        }
        poll_events(&mut rng, &mut queue);
        while let Some(line) = queue.pop_front() {
            funcscope::enter!(HANDLE_MESSAGE);
            handle_message(&line, &mut store, &mut stats);
            funcscope::exit!(HANDLE_MESSAGE);
        }
        fire_timers(now, start, &mut timers, &mut store, &mut stats);
        // Outside every checkpoint, as the rules require.
        match session.poll_attach() {
            Ok(AttachStatus::Attached) => println!("a reader attached"),
            Ok(_) => {}
            Err(e) => eprintln!("poll_attach: {e}"),
        }
        turns += 1;
        if !o.idle.is_zero() {
            std::thread::sleep(o.idle);
        }
    }
    println!(
        "{turns} turns, {} messages ({} errors, {} hits), {} timers fired, {} keys, checksum {}",
        stats.handled,
        stats.errors,
        stats.hits,
        stats.timers_fired,
        store.len(),
        stats.checksum
    );
    session.cleanup();
    Ok(())
}

/// The reader mode: attach, then print per-second means until the program exits.
fn read(socket: &Path, o: &Options) -> Result<(), String> {
    let att = attach(socket, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    let region = &att.region;
    let info = region.info().clone();
    println!("attached to pid {} ({:?}, {:?} clock, checkpoints {:?})", info.pid, info.level, info.clock, info.names);
    if !info.level.has_ring() {
        println!("level lite has no ring: showing the exact aggregates instead");
    }
    let n = info.names.len();
    let mut drain = Drain::new(region);
    // Per checkpoint: (calls, sum of ticks) since the last print; aggregates at Lite.
    let mut window = vec![(0u64, 0u64); n];
    let mut last_agg = vec![(0u64, 0u64); n];
    let start = Instant::now();
    let limit = o.seconds.map(Duration::from_secs_f64);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let exited = region.exited();
        if info.level.has_ring() {
            drain
                .drain(region, |cp, s| {
                    window[cp].0 += 1;
                    window[cp].1 += s.ticks;
                })
                .map_err(|e| e.to_string())?;
        } else {
            for (i, w) in window.iter_mut().enumerate() {
                let a = region.aggregates(i).map_err(|e| e.to_string())?;
                *w = (a.count - last_agg[i].0, a.sum - last_agg[i].1);
                last_agg[i] = (a.count, a.sum);
            }
        }
        let ghz = region.freq_hz().map_err(|e| e.to_string())? / 1e9;
        let line: Vec<String> = window
            .iter()
            .zip(&info.names)
            .map(|(&(calls, sum), name)| {
                let mean = if calls > 0 && ghz > 0.0 { sum as f64 / calls as f64 / ghz } else { 0.0 };
                format!("{name} {calls} x {mean:.0} ns")
            })
            .collect();
        println!("[{:>4.0} s] {}", start.elapsed().as_secs_f64(), line.join(" | "));
        window.iter_mut().for_each(|w| *w = (0, 0));
        if exited || limit.is_some_and(|l| start.elapsed() >= l) {
            break;
        }
    }
    let lost: u64 = drain.counts().iter().map(|c| c.lost()).sum();
    println!("{} (lost {lost} samples to overruns)", if region.exited() { "program exited" } else { "detaching" });
    Ok(())
}
