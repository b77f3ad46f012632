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
    }
}
