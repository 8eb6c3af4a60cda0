//! A single-threaded event loop: a hashed timer wheel, framed messages over a Unix socketpair,
//! and per-type dispatch to connection state (the `event_loop` scenario).
//!
//! The shape of a reactor such as a game server's or a broker's: each turn of the loop a peer's
//! batch of messages is framed ([`EventLoop::encode_batch`]), goes through the kernel over a real
//! `UnixStream::pair()` ([`EventLoop::roundtrip`]: non-blocking `write` on one end, `read` on
//! the other, in the same thread), is parsed and dispatched to handlers that update connection
//! state and re-arm idle timers ([`EventLoop::dispatch`]), and the timer wheel advances one tick
//! and fires what is due ([`EventLoop::timer_tick`]).
//!
//! Timers are cancelled lazily, as most wheels do: re-arming bumps the connection's generation
//! and schedules a new timer; a fired timer whose generation is stale is dropped. The wheel thus
//! also carries the cost of dead timers, like real ones do.
//!
//! Wire format of one message: `len: u16 LE (payload bytes) | kind: u8 | conn: u16 LE | payload`.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;

use crate::rng::Rng;

/// Bytes of a message header.
pub const HEADER_LEN: usize = 5;

/// A timer in the wheel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    /// Tick at which it fires; > the wheel's time when scheduled.
    pub deadline: u64,
    /// What it is for (the connection index).
    pub id: u32,
    /// The connection's generation when it was armed (stale if the connection moved on).
    pub generation: u32,
}

/// A hashed timing wheel: `2^log2` buckets, a timer lives in bucket `deadline mod size` and fires
/// when the wheel's time reaches its deadline (timers further out than one revolution stay in
/// their bucket for the extra rounds).
#[derive(Clone, Debug)]
pub struct TimerWheel {
    buckets: Vec<Vec<Timer>>,
    mask: u64,
    now: u64,
    len: usize,
}

impl TimerWheel {
    /// A wheel of `2^log2` buckets at time 0.
    ///
    /// # Panics
    /// If `log2 > 24`.
    pub fn new(log2: u32) -> TimerWheel {
        assert!(log2 <= 24, "TimerWheel::new({log2}): at most 2^24 buckets");
        TimerWheel { buckets: vec![Vec::new(); 1 << log2], mask: (1 << log2) - 1, now: 0, len: 0 }
    }

    /// Current time in ticks.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Timers pending, stale ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `t`; a deadline not after now fires at the next tick.
    pub fn schedule(&mut self, mut t: Timer) {
        t.deadline = t.deadline.max(self.now + 1);
        self.buckets[(t.deadline & self.mask) as usize].push(t);
        self.len += 1;
    }

    /// Advances one tick and appends the timers now due to `fired` (in no particular order).
    pub fn tick(&mut self, fired: &mut Vec<Timer>) -> usize {
        self.now += 1;
        let now = self.now;
        let b = &mut self.buckets[(now & self.mask) as usize];
        let before = fired.len();
        let mut i = 0;
        while i < b.len() {
            if b[i].deadline <= now {
                fired.push(b.swap_remove(i));
            } else {
                i += 1;
            }
        }
        let n = fired.len() - before;
        self.len -= n;
        n
    }
}

/// Message kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Keep-alive.
    Ping = 1,
    /// Application data: hashed into the connection's digest.
    Data = 2,
    /// Subscribe the connection to the topic in the payload's first byte.
    Subscribe = 3,
    /// Publish to the topic in the payload's first byte: fan out to its subscribers.
    Publish = 4,
    /// The peer closes the connection.
    Close = 5,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Ping,
            2 => Kind::Data,
            3 => Kind::Subscribe,
            4 => Kind::Publish,
            5 => Kind::Close,
            _ => return None,
        })
    }
}

/// Why the inbound bytes could not be dispatched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Unknown message kind.
    BadKind(u8),
    /// A connection index out of range.
    BadConn(u16),
    /// A message that needs a payload byte has none.
    EmptyPayload,
}

/// Per-connection state.
#[derive(Clone, Debug, Default)]
pub struct Conn {
    /// Bumped whenever the idle timer is re-armed or the connection resets.
    pub generation: u32,
    /// Tick of the last message.
    pub last_active: u64,
    /// Idle timeout in ticks (per connection, 200-800).
    pub timeout: u64,
    /// FNV-1a over all Data payloads.
    pub digest: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Topics subscribed to (at most [`EventLoop::MAX_SUBS`]).
    pub topics: Vec<u8>,
    /// Publications delivered to this connection.
    pub delivered: u64,
    /// Times it timed out or closed.
    pub resets: u32,
}

/// The loop's state: both socket ends, buffers, connections, topics and the wheel.
pub struct EventLoop {
    tx: UnixStream,
    rx: UnixStream,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    in_len: usize,
    wheel: TimerWheel,
    fired: Vec<Timer>,
    conns: Vec<Conn>,
    /// Subscribers per topic.
    topics: Vec<Vec<u16>>,
    rng: Rng,
    /// Random bytes payloads are cut from (so generating a message costs a copy, not an RNG call
    /// per byte).
    pool: Vec<u8>,
    /// Short reads/writes that hit EWOULDBLOCK (expected 0: a batch is far below the socket buffer).
    pub would_block: u64,
}

impl EventLoop {
    /// Connections.
    pub const CONNS: usize = 256;
    /// Topics.
    pub const TOPICS: usize = 64;
    /// Topics one connection may subscribe to.
    pub const MAX_SUBS: usize = 8;
    /// log2 of the wheel's buckets: 1024 ticks per revolution, more than the longest timeout.
    pub const WHEEL_LOG2: u32 = 10;

    /// A loop seeded with `seed` over a fresh non-blocking socketpair; every connection armed.
    pub fn new(seed: u64) -> io::Result<EventLoop> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        let mut rng = Rng::new(seed);
        let pool = (0..8192).map(|_| rng.next_u64() as u8).collect();
        let mut el = EventLoop {
            tx,
            rx,
            out: Vec::with_capacity(16 << 10),
            inbuf: vec![0; 64 << 10],
            in_len: 0,
            wheel: TimerWheel::new(Self::WHEEL_LOG2),
            fired: Vec::new(),
            conns: vec![Conn::default(); Self::CONNS],
            topics: vec![Vec::new(); Self::TOPICS],
            rng,
            pool,
            would_block: 0,
        };
        for c in 0..Self::CONNS {
            el.conns[c].timeout = el.rng.range(200, 800);
            el.arm(c);
        }
        Ok(el)
    }

    /// (Re-)arms connection `c`'s idle timer, making earlier ones stale.
    fn arm(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        conn.generation = conn.generation.wrapping_add(1);
        conn.last_active = self.wheel.now();
        let t = Timer { deadline: self.wheel.now() + conn.timeout, id: c as u32, generation: conn.generation };
        self.wheel.schedule(t);
    }

    /// The peer's side: frames a batch of 4-16 random messages into the outgoing buffer; returns
    /// its length. Payloads are 1-256 bytes (Data) or 1 byte (topics).
    pub fn encode_batch(&mut self) -> usize {
        self.out.clear();
        for _ in 0..self.rng.range(4, 16) {
            let r = self.rng.next_u64();
            let conn = (r % Self::CONNS as u64) as u16;
            let (kind, len) = match (r >> 16) % 16 {
                0..=2 => (Kind::Ping, 0),
                3..=10 => (Kind::Data, 1 + ((r >> 24) % 256) as usize),
                11 | 12 => (Kind::Subscribe, 1),
                13 | 14 => (Kind::Publish, 1 + ((r >> 24) % 64) as usize),
                _ => (Kind::Close, 0),
            };
            self.out.extend_from_slice(&(len as u16).to_le_bytes());
            self.out.push(kind as u8);
            self.out.extend_from_slice(&conn.to_le_bytes());
            let off = ((r >> 40) as usize) % (self.pool.len() - 256);
            self.out.extend_from_slice(&self.pool[off..off + len]);
        }
        self.out.len()
    }

    /// Writes the outgoing buffer to one end of the socketpair and reads it back from the other
    /// into the inbound buffer; returns the bytes moved. Non-blocking: a partial write is finished
    /// after draining the reader (counted in `would_block`).
    pub fn roundtrip(&mut self) -> io::Result<usize> {
        let n = self.out.len();
        let (mut written, mut read) = (0, 0);
        while read < n {
            if written < n {
                match self.tx.write(&self.out[written..]) {
                    Ok(w) => written += w,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => self.would_block += 1,
                    Err(e) => return Err(e),
                }
            }
            match self.rx.read(&mut self.inbuf[read..]) {
                Ok(0) => return Err(io::Error::new(ErrorKind::UnexpectedEof, "socketpair closed")),
                Ok(r) => read += r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.would_block += 1,
                Err(e) => return Err(e),
            }
        }
        self.in_len = read;
        Ok(read)
    }

    /// Parses the inbound buffer and dispatches every message; returns how many.
    pub fn dispatch(&mut self) -> Result<usize, FrameError> {
        let mut pos = 0;
        let mut count = 0;
        let end = self.in_len;
        while pos + HEADER_LEN <= end {
            let len = usize::from(u16::from_le_bytes([self.inbuf[pos], self.inbuf[pos + 1]]));
            let kind_byte = self.inbuf[pos + 2];
            let conn = u16::from_le_bytes([self.inbuf[pos + 3], self.inbuf[pos + 4]]);
            let p0 = pos + HEADER_LEN;
            if p0 + len > end {
                break; // incomplete message: would wait for more bytes
            }
            let kind = Kind::from_u8(kind_byte).ok_or(FrameError::BadKind(kind_byte))?;
            let c = usize::from(conn);
            if c >= self.conns.len() {
                return Err(FrameError::BadConn(conn));
            }
            match kind {
                Kind::Ping => {}
                Kind::Data => {
                    let st = &mut self.conns[c];
                    let mut h = if st.digest == 0 { 0xcbf2_9ce4_8422_2325 } else { st.digest };
                    for &b in &self.inbuf[p0..p0 + len] {
                        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
                    }
                    st.digest = h;
                    st.bytes += len as u64;
                }
                Kind::Subscribe | Kind::Publish => {
                    let topic = *self.inbuf.get(p0).filter(|_| len > 0).ok_or(FrameError::EmptyPayload)?;
                    let topic = usize::from(topic) % Self::TOPICS;
                    if kind == Kind::Subscribe {
                        let st = &mut self.conns[c];
                        if !st.topics.contains(&(topic as u8)) && st.topics.len() < Self::MAX_SUBS {
                            st.topics.push(topic as u8);
                            self.topics[topic].push(conn);
                        }
                    } else {
                        for &s in &self.topics[topic] {
                            self.conns[usize::from(s)].delivered += 1;
                        }
                    }
                }
                Kind::Close => self.reset(c),
            }
            self.arm(c);
            count += 1;
            pos = p0 + len;
        }
        Ok(count)
    }

    /// Drops a connection's subscriptions and counts the reset.
    fn reset(&mut self, c: usize) {
        let topics = std::mem::take(&mut self.conns[c].topics);
        for t in topics {
            self.topics[usize::from(t)].retain(|&s| usize::from(s) != c);
        }
        self.conns[c].resets += 1;
    }

    /// Advances the wheel one tick and handles what fired: a live idle timer resets its
    /// connection (and re-arms it, as a reconnect would); stale ones are dropped. Returns the
    /// live timers handled.
    pub fn timer_tick(&mut self) -> usize {
        self.fired.clear();
        let mut fired = std::mem::take(&mut self.fired);
        self.wheel.tick(&mut fired);
        let mut live = 0;
        for t in &fired {
            let c = t.id as usize;
            if self.conns[c].generation == t.generation {
                self.reset(c);
                self.arm(c);
                live += 1;
            }
        }
        self.fired = fired;
        live
    }

    /// The connections (for checks and checksums).
    pub fn conns(&self) -> &[Conn] {
        &self.conns
    }

    /// The timer wheel.
    pub fn wheel(&self) -> &TimerWheel {
        &self.wheel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_fires_on_time_including_later_rounds() {
        let mut w = TimerWheel::new(3); // 8 buckets
        for (id, d) in [(0u32, 1u64), (1, 5), (2, 13), (3, 5)] {
            w.schedule(Timer { deadline: d, id, generation: 0 });
        }
        let mut fired = Vec::new();
        let mut when = Vec::new();
        for _ in 0..20 {
            fired.clear();
            w.tick(&mut fired);
            for t in &fired {
                when.push((t.id, w.now()));
            }
        }
        when.sort();
        assert_eq!(when, vec![(0, 1), (1, 5), (2, 13), (3, 5)]);
        assert!(w.is_empty());
        w.schedule(Timer { deadline: 0, id: 9, generation: 0 });
        fired.clear();
        assert_eq!(w.tick(&mut fired), 1, "a past deadline fires at the next tick");
    }

    #[test]
    fn loop_moves_and_dispatches_everything() {
        let mut el = EventLoop::new(11).unwrap();
        let mut total = 0;
        for _ in 0..3000 {
            let n = el.encode_batch();
            assert_eq!(el.roundtrip().unwrap(), n);
            total += el.dispatch().unwrap();
            el.timer_tick();
        }
        assert!(total >= 3000 * 4);
        assert!(el.conns().iter().map(|c| c.bytes).sum::<u64>() > 0);
        assert!(el.conns().iter().any(|c| c.delivered > 0));
        // Every connection always has exactly one live timer pending.
        assert!(el.wheel().len() >= EventLoop::CONNS);
        assert_eq!(el.would_block, 0);
        // Deterministic.
        let mut a = EventLoop::new(3).unwrap();
        let mut b = EventLoop::new(3).unwrap();
        for _ in 0..100 {
            a.encode_batch();
            b.encode_batch();
            assert_eq!(a.out, b.out);
        }
    }

    #[test]
    fn bad_frames_are_rejected() {
        let mut el = EventLoop::new(1).unwrap();
        el.inbuf[..5].copy_from_slice(&[0, 0, 9, 0, 0]);
        el.in_len = 5;
        assert_eq!(el.dispatch(), Err(FrameError::BadKind(9)));
        el.inbuf[..5].copy_from_slice(&[0, 0, 1, 0xff, 0xff]);
        assert_eq!(el.dispatch(), Err(FrameError::BadConn(0xffff)));
        el.inbuf[..5].copy_from_slice(&[0, 0, 3, 0, 0]);
        assert_eq!(el.dispatch(), Err(FrameError::EmptyPayload));
    }
}
