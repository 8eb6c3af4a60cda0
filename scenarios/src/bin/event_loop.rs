//! Scenario `event_loop`: one turn of a reactor per iteration.
//!
//! Checkpoints: `encode_batch` (the peer frames 4-16 messages), `socket_roundtrip` (non-blocking
//! write + read of the batch over a Unix socketpair, two or more syscalls), `dispatch` (parse and
//! handle every message, re-arming idle timers), `timer_tick` (advance the wheel one tick and
//! handle what fired). See `funcscope_scenarios::evloop`.

#![forbid(unsafe_code)]

use funcscope_scenarios::evloop::EventLoop;
use funcscope_scenarios::{Meter, Plant, Scenario};

const ENCODE_BATCH: usize = 0;
const SOCKET_ROUNDTRIP: usize = 1;
const DISPATCH: usize = 2;
const TIMER_TICK: usize = 3;

struct Loop {
    el: EventLoop,
}

impl Scenario for Loop {
    const NAME: &'static str = "event_loop";
    const CHECKPOINTS: &'static [&'static str] = &["encode_batch", "socket_roundtrip", "dispatch", "timer_tick"];

    fn new(seed: u64) -> Self {
        match EventLoop::new(seed) {
            Ok(el) => Loop { el },
            Err(e) => {
                eprintln!("event_loop: cannot create the socketpair: {e}");
                std::process::exit(2)
            }
        }
    }

    fn step<M: Meter>(&mut self, m: &mut M, plant: &Plant) -> u64 {
        let el = &mut self.el;

        m.enter(ENCODE_BATCH);
        let n = el.encode_batch();
        plant.extra(ENCODE_BATCH);
        m.exit(ENCODE_BATCH);

        m.enter(SOCKET_ROUNDTRIP);
        let moved = el.roundtrip();
        plant.extra(SOCKET_ROUNDTRIP);
        m.exit(SOCKET_ROUNDTRIP);
        if let Err(e) = moved {
            eprintln!("event_loop: socketpair I/O failed: {e}");
            std::process::exit(2);
        }

        m.enter(DISPATCH);
        let handled = el.dispatch();
        plant.extra(DISPATCH);
        m.exit(DISPATCH);

        m.enter(TIMER_TICK);
        let fired = el.timer_tick();
        plant.extra(TIMER_TICK);
        m.exit(TIMER_TICK);

        (n as u64) ^ ((handled.unwrap_or(0) as u64) << 16) ^ ((fired as u64) << 32)
    }
}

fn main() {
    funcscope_scenarios::main::<Loop>();
}
