//! What a hostile member sends, for the lab's `bench hostile` and the multi-process tests
//! (issue 25): an Automerge sync message whose DEFLATE data inflates far past
//! `kazashi_sync::shard::MAX_INFLATED`, a catalog naming a million shards, and the wire's
//! frame layout (a `u32` big-endian length, the kind byte, the body).

use kazashi_domain::{CivilDate, SiteId};
use kazashi_sync::ShardId;
use kazashi_sync::protocol::Message;
use kazashi_sync::wire::put_varint;

/// A frame as the mesh writes it.
pub fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len() + 1).unwrap_or(u32::MAX);
    let mut out = len.to_be_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(body);
    out
}

/// Raw DEFLATE (fixed Huffman) of `n` zero bytes: one literal zero, then copies of 258 bytes
/// at distance 1 — 13 bits for every 258 bytes.
pub fn deflate_zeros(n: u64) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        len: u32,
    }
    impl Bits {
        fn put(&mut self, value: u64, bits: u32) {
            self.acc |= value << self.len;
            self.len += bits;
            while self.len >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.len -= 8;
            }
        }
        /// A Huffman code, most significant bit first.
        fn code(&mut self, code: u64, bits: u32) {
            let mut rev = 0;
            for i in 0..bits {
                rev |= ((code >> i) & 1) << (bits - 1 - i);
            }
            self.put(rev, bits);
        }
    }
    let mut b = Bits {
        out: Vec::new(),
        acc: 0,
        len: 0,
    };
    b.put(1, 1); // final block
    b.put(1, 2); // fixed Huffman
    b.code(0x30, 8); // literal 0
    let mut left = n.saturating_sub(1);
    while left >= 258 {
        b.code(0xc5, 8); // length 258 (symbol 285)
        b.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        b.code(0x30, 8);
    }
    b.code(0, 7); // end of block (symbol 256)
    b.put(0, 7);
    b.out
}

/// An Automerge sync message (v1: no heads, needs or haves) carrying one compressed change
/// chunk whose DEFLATE data inflates to `n` bytes.
pub fn bomb_sync_message(n: u64) -> Vec<u8> {
    let data = deflate_zeros(n);
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    put_varint(&mut chunk, data.len() as u64);
    chunk.extend_from_slice(&data);
    let mut msg = vec![0x42, 0, 0, 0, 1];
    put_varint(&mut msg, chunk.len() as u64);
    msg.extend_from_slice(&chunk);
    msg
}

/// The body of a sync frame carrying [`bomb_sync_message`] for `shard`.
pub fn bomb_message(shard: ShardId, inflates_to: u64) -> Vec<u8> {
    Message::Shard {
        shard,
        sync: bomb_sync_message(inflates_to),
    }
    .encode()
}

/// The body of a sync frame: a catalog of `n` shards, 80,000 days of each of `sites`, then of
/// made-up sites (a million distinct days do not fit the calendar's range, 1870–2200).
pub fn big_catalog(sites: &[SiteId], n: usize) -> Vec<u8> {
    const DAYS: usize = 80_000;
    let entries: Vec<(ShardId, [u8; 32])> = (0..n)
        .filter_map(|i| {
            let j = i / DAYS;
            let site = match sites.get(j) {
                Some(s) => *s,
                None => SiteId::new(&format!("X{j:04}")).ok()?,
            };
            let day = CivilDate::from_days_since_epoch(i64::try_from(i % DAYS).ok()?)?;
            Some((ShardId { site, day }, [0x5a; 32]))
        })
        .collect();
    Message::Catalog(entries).encode()
}
