//! Scenario `codec`: frame, checksum and decode seeded binary messages.
//!
//! Checkpoints, per message: `encode_frame` (varint payload + header + CRC trailer), `crc32c`
//! (the receiver's frame check: header and CRC32C of the payload), `decode_frame` (varint
//! decoding of every field). See `funcscope_scenarios::codec`.

#![forbid(unsafe_code)]

use funcscope_scenarios::codec::{self, Decoded, Message};
use funcscope_scenarios::{Meter, Plant, Scenario};

const ENCODE_FRAME: usize = 0;
const CRC32C: usize = 1;
const DECODE_FRAME: usize = 2;

/// Messages cycled through (~0.5 MiB of payload).
const MESSAGES: usize = 512;

struct Codec {
    messages: Vec<Message>,
    next: usize,
    frame: Vec<u8>,
    decoded: Decoded,
}

impl Scenario for Codec {
    const NAME: &'static str = "codec";
    const CHECKPOINTS: &'static [&'static str] = &["encode_frame", "crc32c", "decode_frame"];

    fn new(seed: u64) -> Self {
        Codec {
            messages: codec::messages(seed, MESSAGES),
            next: 0,
            frame: Vec::with_capacity(8192),
            decoded: Decoded::default(),
        }
    }

    fn step<M: Meter>(&mut self, m: &mut M, plant: &Plant) -> u64 {
        let msg = &self.messages[self.next];
        self.next = (self.next + 1) % self.messages.len();

        m.enter(ENCODE_FRAME);
        let n = codec::encode_frame(msg, &mut self.frame);
        plant.extra(ENCODE_FRAME);
        m.exit(ENCODE_FRAME);

        m.enter(CRC32C);
        let payload = codec::check_frame(&self.frame);
        plant.extra(CRC32C);
        m.exit(CRC32C);
        let Ok(payload) = payload else { return 1 };

        m.enter(DECODE_FRAME);
        let r = codec::decode_payload(&self.frame[payload], &mut self.decoded);
        plant.extra(DECODE_FRAME);
        m.exit(DECODE_FRAME);
        if r.is_err() {
            return 2;
        }
        (n as u64) ^ (self.decoded.id << 20) ^ self.decoded.fields.len() as u64
    }
}

fn main() {
    funcscope_scenarios::main::<Codec>();
}
