//! `orders`: a toy order matcher instrumented as an adopter would instrument a real service.
//!
//! Two checkpoints per order: `parse_order` (text line to [`Order`], an explicit ENTER/EXIT pair)
//! and `match_order` (against the resting book, a scope guard that also covers the early return).
//! The probe is initialised once, the main loop polls for a reader, and, when the harness asks for
//! it (`FUNCSCOPE_WAIT_ATTACH_MS`), measurement starts only once the reader is attached.
//!
//! Usage: `orders [--duration-ms N]` (default 100).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use funcscope::{AttachStatus, Builder, Level};

/// Checkpoint indices, in the order of [`NAMES`].
const PARSE: usize = 0;
const MATCH: usize = 1;
/// Checkpoint names: stable, because baselines are keyed on them.
const NAMES: [&str; 2] = ["parse_order", "match_order"];

/// Ring entries per checkpoint (8 B each at `Normal`): a whole 100 ms run's calls (~250 k)
/// fit even if the reader drains late, so no sample is lost and `baseline` accepts the runs.
const RING: u64 = 1 << 19;

/// A limit order.
#[derive(Clone, Copy, Debug)]
struct Order {
    buy: bool,
    qty: u64,
    /// Price in ticks of 0.01.
    price: u64,
}

/// Parses `BUY 100 @ 10.25` / `SELL 5 @ 9.99`; `None` for anything else.
fn parse(line: &str) -> Option<Order> {
    let mut it = line.split_ascii_whitespace();
    let buy = match it.next()? {
        "BUY" => true,
        "SELL" => false,
        _ => return None,
    };
    let qty = it.next()?.parse().ok()?;
    if it.next()? != "@" {
        return None;
    }
    let (units, cents) = it.next()?.split_once('.')?;
    let price = units.parse::<u64>().ok()? * 100 + cents.parse::<u64>().ok()?;
    Some(Order { buy, qty, price })
}

/// Resting orders per price level: bids and asks.
#[derive(Default)]
struct Book {
    bids: BTreeMap<u64, u64>,
    asks: BTreeMap<u64, u64>,
}

impl Book {
    /// Matches `o` against the other side, rests what is left; returns the quantity traded.
    fn submit(&mut self, mut o: Order) -> u64 {
        funcscope::scope!(MATCH);
        let mut traded = 0;
        loop {
            let best = if o.buy { self.asks.iter_mut().next() } else { self.bids.iter_mut().next_back() };
            let Some((&price, qty)) = best else { break };
            let crosses = if o.buy { price <= o.price } else { price >= o.price };
            if !crosses || o.qty == 0 {
                break;
            }
            let n = (*qty).min(o.qty);
            *qty -= n;
            o.qty -= n;
            traded += n;
            if *qty == 0 {
                if o.buy {
                    self.asks.remove(&price);
                } else {
                    self.bids.remove(&price);
                }
            }
        }
        if o.qty == 0 {
            return traded; // the guard records this early return too
        }
        let side = if o.buy { &mut self.bids } else { &mut self.asks };
        *side.entry(o.price).or_default() += o.qty;
        traded
    }
}

/// Deterministic order lines (xorshift), so every run does the same work.
fn lines(n: usize) -> Vec<String> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let side = if x & 1 == 0 { "BUY" } else { "SELL" };
            let price = 1000 + (x >> 8) % 40;
            format!("{side} {} @ {}.{:02}", 1 + (x >> 20) % 50, price / 100, price % 100)
        })
        .collect()
}

fn main() {
    let mut duration = Duration::from_millis(100);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {}
        [flag, ms] if flag == "--duration-ms" => match ms.parse() {
            Ok(ms) => duration = Duration::from_millis(ms),
            Err(_) => {
                eprintln!("--duration-ms {ms}: expected milliseconds");
                std::process::exit(2);
            }
        },
        _ => {
            eprintln!("usage: orders [--duration-ms N]");
            std::process::exit(2);
        }
    }
    let mut session = match Builder::new(Level::Normal).checkpoints(&NAMES).ring_capacity(RING).init() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("funcscope init failed: {e}");
            std::process::exit(2);
        }
    };
    // Under the harness, wait (bounded) for its reader so that no call goes unobserved.
    if let Some(ms) = std::env::var(funcscope::env::WAIT_ATTACH_MS).ok().and_then(|v| v.parse::<u64>().ok()) {
        let t0 = Instant::now();
        while !matches!(session.poll_attach(), Ok(AttachStatus::Attached)) && t0.elapsed() < Duration::from_millis(ms) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let input = lines(4096);
    let mut book = Book::default();
    let (mut traded, mut rejected, mut i) = (0u64, 0u64, 0usize);
    let start = Instant::now();
    while start.elapsed() < duration {
        let at = i % input.len(); // 4096 lines, a multiple of the batch of 64
        for line in &input[at..at + 64] {
            funcscope::enter!(PARSE);
            let order = parse(line);
            funcscope::exit!(PARSE);
            match order {
                Some(o) => traded += book.submit(o),
                None => rejected += 1,
            }
        }
        i += 64;
        // Non-blocking, outside any ENTER/EXIT pair: lets a reader attach at any time.
        let _ = session.poll_attach();
    }
    println!("orders: {i} submitted, {traded} traded, {rejected} rejected");
    session.cleanup();
}
