//! A framed binary message codec: LEB128 varints, a tag-length-value payload and a CRC32C trailer
//! (the `codec` scenario).
//!
//! The shape of many RPC and log formats (protobuf's wire format, Kafka and RocksDB records):
//!
//! ```text
//! frame   = MAGIC (1 byte) | payload length (varint) | payload | CRC32C(payload) (u32 LE)
//! payload = id (varint) | timestamp (varint) | field count (varint) | field*
//! field   = key (varint: tag << 3 | wire type) | value
//! value   = varint (wire 0) | zigzag varint (wire 1) | length (varint) + bytes (wire 2)
//! ```
//!
//! [`encode_frame`] sizes the payload first ([`payload_len`]) so it writes the frame in one pass
//! with no moves; [`check_frame`] validates the header and the CRC; [`decode_payload`] parses the
//! fields into a reusable [`Decoded`] without copying byte values. [`crc32c`] is the
//! table-driven slicing-by-8 software CRC (Castagnoli polynomial, reflected 0x82F63B78), with
//! its tables computed at compile time.

use std::ops::Range;

use crate::rng::Rng;

/// First byte of every frame.
pub const MAGIC: u8 = 0xF5;

/// Longest LEB128 encoding of a u64: ceil(64 / 7) bytes.
pub const MAX_VARINT_LEN: usize = 10;

/// Why bytes could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends inside a value.
    Truncated,
    /// A varint longer than 10 bytes, or whose 10th byte sets bits above bit 63.
    Overlong,
    /// The first byte is not [`MAGIC`].
    BadMagic,
    /// The trailer does not match the payload's CRC32C.
    BadChecksum,
    /// An unknown wire type.
    BadWireType(u8),
    /// The payload has bytes after its last field.
    TrailingBytes,
}

/// Appends the LEB128 encoding of `v` (1-10 bytes).
#[inline]
pub fn encode_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encoded length of `v` in bytes (1-10).
#[inline]
pub fn varint_len(v: u64) -> usize {
    // ceil(bits / 7), with bits = 64 - lzcnt(v | 1) (zero still takes one byte).
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Decodes a LEB128 varint at the start of `buf`: (value, bytes used).
#[inline]
pub fn decode_varint(buf: &[u8]) -> Result<(u64, usize), DecodeError> {
    let mut v = 0u64;
    for (i, &b) in buf.iter().enumerate().take(MAX_VARINT_LEN) {
        if i == MAX_VARINT_LEN - 1 && b > 1 {
            return Err(DecodeError::Overlong);
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok((v, i + 1));
        }
    }
    Err(if buf.len() >= MAX_VARINT_LEN { DecodeError::Overlong } else { DecodeError::Truncated })
}

/// ZigZag: maps signed to unsigned so small magnitudes get short varints (0, -1, 1, -2 -> 0, 1, 2, 3).
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

/// Slicing-by-8 tables: `T[0]` is the classic byte table, `T[k]` advances a byte through k more
/// zero bytes. 8 KiB, computed at compile time.
static CRC_TABLES: [[u32; 256]; 8] = crc_tables();

/// CRC32C (Castagnoli) of `data`, software, slicing-by-8: 8 table lookups per 8 bytes.
///
/// Cost: about 1 cycle per byte plus a small constant.
pub fn crc32c(data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// One field's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Wire type 0.
    Uint(u64),
    /// Wire type 1 (zigzag).
    Sint(i64),
    /// Wire type 2.
    Bytes(Vec<u8>),
}

/// A message to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Sequence id.
    pub id: u64,
    /// Microseconds since the epoch.
    pub timestamp_us: u64,
    /// (tag, value) pairs; tags fit in 61 bits.
    pub fields: Vec<(u32, Value)>,
}

/// A decoded field: byte values are ranges into the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodedValue {
    /// Wire type 0.
    Uint(u64),
    /// Wire type 1.
    Sint(i64),
    /// Wire type 2: where the bytes are in the payload.
    Bytes(Range<usize>),
}

/// A decoded message, reused across calls so decoding does not allocate in steady state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Sequence id.
    pub id: u64,
    /// Timestamp.
    pub timestamp_us: u64,
    /// (tag, value) pairs.
    pub fields: Vec<(u32, DecodedValue)>,
}

fn key(tag: u32, wire: u8) -> u64 {
    (u64::from(tag) << 3) | u64::from(wire)
}

/// Length of `m`'s payload in bytes.
pub fn payload_len(m: &Message) -> usize {
    let mut n = varint_len(m.id) + varint_len(m.timestamp_us) + varint_len(m.fields.len() as u64);
    for (tag, v) in &m.fields {
        n += match v {
            Value::Uint(x) => varint_len(key(*tag, 0)) + varint_len(*x),
            Value::Sint(x) => varint_len(key(*tag, 1)) + varint_len(zigzag(*x)),
            Value::Bytes(b) => varint_len(key(*tag, 2)) + varint_len(b.len() as u64) + b.len(),
        };
    }
    n
}

/// Writes `m` as one frame into `out` (cleared first), CRC trailer included; returns its length.
pub fn encode_frame(m: &Message, out: &mut Vec<u8>) -> usize {
    out.clear();
    let len = payload_len(m);
    out.reserve(1 + MAX_VARINT_LEN + len + 4);
    out.push(MAGIC);
    encode_varint(len as u64, out);
    let start = out.len();
    encode_varint(m.id, out);
    encode_varint(m.timestamp_us, out);
    encode_varint(m.fields.len() as u64, out);
    for (tag, v) in &m.fields {
        match v {
            Value::Uint(x) => {
                encode_varint(key(*tag, 0), out);
                encode_varint(*x, out);
            }
            Value::Sint(x) => {
                encode_varint(key(*tag, 1), out);
                encode_varint(zigzag(*x), out);
            }
            Value::Bytes(b) => {
                encode_varint(key(*tag, 2), out);
                encode_varint(b.len() as u64, out);
                out.extend_from_slice(b);
            }
        }
    }
    debug_assert_eq!(out.len() - start, len, "payload_len and encode_frame must agree");
    let crc = crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.len()
}

/// Validates a frame's magic, length and CRC32C; returns the payload's range in `frame`.
pub fn check_frame(frame: &[u8]) -> Result<Range<usize>, DecodeError> {
    match frame.first() {
        None => return Err(DecodeError::Truncated),
        Some(&MAGIC) => {}
        Some(_) => return Err(DecodeError::BadMagic),
    }
    let (len, used) = decode_varint(&frame[1..])?;
    let start = 1 + used;
    let end = usize::try_from(len).ok().and_then(|l| start.checked_add(l)).ok_or(DecodeError::Truncated)?;
    let trailer = frame.get(end..end + 4).ok_or(DecodeError::Truncated)?;
    let want = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if crc32c(&frame[start..end]) != want {
        return Err(DecodeError::BadChecksum);
    }
    Ok(start..end)
}

/// Decodes a payload (as located by [`check_frame`]) into `out`; byte ranges are relative to
/// `payload`.
pub fn decode_payload(payload: &[u8], out: &mut Decoded) -> Result<(), DecodeError> {
    out.fields.clear();
    let mut pos = 0;
    let next = |pos: &mut usize| -> Result<u64, DecodeError> {
        let (v, n) = decode_varint(&payload[*pos..])?;
        *pos += n;
        Ok(v)
    };
    out.id = next(&mut pos)?;
    out.timestamp_us = next(&mut pos)?;
    let count = next(&mut pos)?;
    for _ in 0..count {
        let k = next(&mut pos)?;
        let tag = (k >> 3) as u32;
        let value = match (k & 7) as u8 {
            0 => DecodedValue::Uint(next(&mut pos)?),
            1 => DecodedValue::Sint(unzigzag(next(&mut pos)?)),
            2 => {
                let len = next(&mut pos)?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| pos.checked_add(l))
                    .filter(|&e| e <= payload.len())
                    .ok_or(DecodeError::Truncated)?;
                let r = pos..end;
                pos = end;
                DecodedValue::Bytes(r)
            }
            w => return Err(DecodeError::BadWireType(w)),
        };
        out.fields.push((tag, value));
    }
    if pos != payload.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(())
}

/// A seeded message: 3-40 fields mixing small and large integers, negative numbers and byte
/// strings of 0-512 bytes (payloads of roughly 20 bytes to 4 KiB).
pub fn generate_message(rng: &mut Rng, id: u64) -> Message {
    let nfields = rng.range(3, 40) as u32;
    let fields = (1..=nfields)
        .map(|tag| {
            let v = match rng.below(10) {
                0..=3 => Value::Uint(rng.below(128)),
                4 | 5 => Value::Uint(rng.next_u64() >> rng.below(64)),
                6 | 7 => Value::Sint((rng.next_u64() as i64) >> rng.range(1, 63)),
                _ => {
                    let n = if rng.chance(1, 4) { rng.range(64, 512) } else { rng.below(48) };
                    Value::Bytes((0..n).map(|_| rng.next_u64() as u8).collect())
                }
            };
            (tag * 3, v)
        })
        .collect();
    Message { id, timestamp_us: 1_795_000_000_000_000 + rng.below(1 << 32), fields }
}

/// `n` seeded messages (see [`generate_message`]).
pub fn messages(seed: u64, n: usize) -> Vec<Message> {
    let mut rng = Rng::new(seed);
    (0..n as u64).map(|i| generate_message(&mut rng, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc32c_bitwise(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn crc32c_known_values() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720 (iSCSI) appendix B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        let mut rng = Rng::new(5);
        for len in 0..100 {
            let d: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            assert_eq!(crc32c(&d), crc32c_bitwise(&d), "len {len}");
        }
    }

    #[test]
    fn varint_round_trip() {
        let mut buf = Vec::new();
        let mut vals = vec![0, 1, 127, 128, 255, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX];
        vals.extend((0..64).map(|s| 1u64 << s));
        for v in vals {
            buf.clear();
            encode_varint(v, &mut buf);
            assert_eq!(buf.len(), varint_len(v), "{v}");
            assert_eq!(decode_varint(&buf), Ok((v, buf.len())), "{v}");
            assert_eq!(decode_varint(&buf[..buf.len() - 1]), Err(DecodeError::Truncated));
        }
        assert_eq!(decode_varint(&[0x96, 0x01]), Ok((150, 2)));
        assert_eq!(decode_varint(&[0xff; 10]), Err(DecodeError::Overlong));
        assert_eq!(
            decode_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(DecodeError::Overlong)
        );
        for v in [0i64, -1, 1, -2, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!((zigzag(0), zigzag(-1), zigzag(1), zigzag(-2)), (0, 1, 2, 3));
    }

    #[test]
    fn frame_round_trip() {
        let mut frame = Vec::new();
        let mut d = Decoded::default();
        for m in messages(9, 200) {
            encode_frame(&m, &mut frame);
            let p = check_frame(&frame).unwrap();
            decode_payload(&frame[p.clone()], &mut d).unwrap();
            assert_eq!((d.id, d.timestamp_us, d.fields.len()), (m.id, m.timestamp_us, m.fields.len()));
            for ((tag, v), (dtag, dv)) in m.fields.iter().zip(&d.fields) {
                assert_eq!(tag, dtag);
                match (v, dv) {
                    (Value::Uint(a), DecodedValue::Uint(b)) => assert_eq!(a, b),
                    (Value::Sint(a), DecodedValue::Sint(b)) => assert_eq!(a, b),
                    (Value::Bytes(a), DecodedValue::Bytes(r)) => assert_eq!(&a[..], &frame[p.clone()][r.clone()]),
                    other => panic!("mismatch {other:?}"),
                }
            }
        }
    }

    #[test]
    fn corrupt_frames_are_rejected() {
        let m = messages(3, 1).pop().unwrap();
        let mut frame = Vec::new();
        encode_frame(&m, &mut frame);
        let mut bad = frame.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x10;
        assert_eq!(check_frame(&bad), Err(DecodeError::BadChecksum));
        assert_eq!(check_frame(&frame[..frame.len() - 1]), Err(DecodeError::Truncated));
        bad = frame.clone();
        bad[0] = 0;
        assert_eq!(check_frame(&bad), Err(DecodeError::BadMagic));
        let mut d = Decoded::default();
        assert_eq!(decode_payload(&[1, 2, 1, 0x0f, 0], &mut d), Err(DecodeError::BadWireType(7)));
        assert_eq!(decode_payload(&[1, 2, 0, 9], &mut d), Err(DecodeError::TrailingBytes));
        assert_eq!(decode_payload(&[1, 2, 1, 0x0a, 5, 1], &mut d), Err(DecodeError::Truncated));
    }
}
