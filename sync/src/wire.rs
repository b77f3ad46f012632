//! Hand-written encoders for the byte strings this crate sends and signs, in postcard's
//! layout (so the decoders stay postcard's). Written by hand because they cannot fail: a
//! fallible encoder behind `unwrap_or_default()` would send empty bytes on the day it did.
//! Each encoder is tested against postcard's own output.

/// An unsigned integer as postcard writes it: LEB128, seven bits a byte, low bits first.
pub fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// An unsigned integer as [`put_varint`] writes it, from the front of `b`, and the rest;
/// `None` if `b` ends inside it or it runs past ten bytes.
pub fn take_varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut n: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        n |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((n, b.get(i + 1..)?));
        }
    }
    None
}

/// A signed integer as postcard writes it: zigzag, then LEB128.
pub fn put_signed(out: &mut Vec<u8>, n: i64) {
    put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

/// A byte string (or `Vec<u8>`): its length, then the bytes.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A string: its length in bytes, then UTF-8.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn integers_and_strings_are_laid_out_as_postcard_lays_them(
            u in any::<u64>(), i in any::<i64>(), s in ".{0,300}", b in proptest::collection::vec(any::<u8>(), 0..300)
        ) {
            let mut out = Vec::new();
            put_varint(&mut out, u);
            prop_assert_eq!(&out, &postcard::to_allocvec(&u).unwrap());
            out.clear();
            put_signed(&mut out, i);
            prop_assert_eq!(&out, &postcard::to_allocvec(&i).unwrap());
            out.clear();
            put_str(&mut out, &s);
            prop_assert_eq!(&out, &postcard::to_allocvec(&s).unwrap());
            out.clear();
            put_bytes(&mut out, &b);
            prop_assert_eq!(&out, &postcard::to_allocvec(&b).unwrap());
        }

        #[test]
        fn an_integer_is_read_back_as_written_and_a_cut_one_is_not(
            u in any::<u64>(), tail in proptest::collection::vec(any::<u8>(), 0..8)
        ) {
            let mut out = Vec::new();
            put_varint(&mut out, u);
            let len = out.len();
            out.extend_from_slice(&tail);
            prop_assert_eq!(take_varint(&out), Some((u, &tail[..])));
            prop_assert_eq!(take_varint(&out[..len - 1]), None);
        }
    }
}
