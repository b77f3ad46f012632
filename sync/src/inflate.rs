//! What Automerge bytes from outside would inflate to, found before Automerge reads them.
//!
//! Automerge (0.12) inflates a compressed change chunk, and every DEFLATE column of a document
//! chunk, with an unbounded `read_to_end`: a few MiB from a peer can ask for many GiB. This
//! walks the chunks (the storage format's header: magic, checksum, type, length; for a
//! document, its column metadata) and inflates each compressed part into nothing, counting,
//! stopping at the cap. Nothing is allocated from a length the bytes declare.

use std::io::Read;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DEFLATE_BIT: u64 = 0b1000;

/// Why Automerge bytes were refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    #[error("the chunks would inflate past {cap} bytes")]
    OverCap { cap: usize },
    #[error("not Automerge chunks: {0}")]
    Malformed(&'static str),
}

/// The bytes `bytes` (one or more Automerge chunks, concatenated) stand for once inflated;
/// refused past `cap`, or when not well-formed chunks of a kind this node takes (the
/// experimental bundle chunk is not one).
pub fn check_chunks(bytes: &[u8], cap: usize) -> Result<usize, InflateError> {
    let mut rest = bytes;
    let mut total = 0usize;
    while !rest.is_empty() {
        let (magic, r) = split(rest, 4)?;
        if magic != MAGIC {
            return Err(InflateError::Malformed("bad magic bytes"));
        }
        let (_checksum, r) = split(r, 4)?;
        let (kind, r) = split(r, 1)?;
        let (len, r) = leb(r)?;
        let (data, r) = split(r, usize::try_from(len).map_err(|_| too_long())?)?;
        rest = r;
        let left = cap.saturating_sub(total);
        total += match kind.first() {
            Some(0) => document(data, left)?,
            Some(1) => within(data.len(), left, cap)?,
            Some(2) => inflated(data, left, cap)?,
            _ => return Err(InflateError::Malformed("chunk type not taken")),
        };
        if total > cap {
            return Err(InflateError::OverCap { cap });
        }
    }
    Ok(total)
}

fn too_long() -> InflateError {
    InflateError::Malformed("a length runs past the end")
}

fn split(b: &[u8], n: usize) -> Result<(&[u8], &[u8]), InflateError> {
    if n > b.len() {
        return Err(too_long());
    }
    Ok(b.split_at(n))
}

fn leb(b: &[u8]) -> Result<(u64, &[u8]), InflateError> {
    let mut n: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        let low = u64::from(byte & 0x7f);
        n |= low.checked_shl(7 * i as u32).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Ok((n, b.get(i + 1..).unwrap_or_default()));
        }
    }
    Err(InflateError::Malformed("bad integer"))
}

fn within(n: usize, left: usize, cap: usize) -> Result<usize, InflateError> {
    if n > left {
        Err(InflateError::OverCap { cap })
    } else {
        Ok(n)
    }
}

/// Inflate `data` into nothing, counting, at most `left + 1` bytes.
fn inflated(data: &[u8], left: usize, cap: usize) -> Result<usize, InflateError> {
    let mut decoder = flate2::bufread::DeflateDecoder::new(data).take(left as u64 + 1);
    let n = std::io::copy(&mut decoder, &mut std::io::sink())
        .map_err(|_| InflateError::Malformed("bad DEFLATE data"))?;
    within(usize::try_from(n).unwrap_or(usize::MAX), left, cap)
}

/// A document chunk: actors, heads, then the change and operation column metadata (spec and
/// length each), then the columns' data in that order.
fn document(data: &[u8], left: usize) -> Result<usize, InflateError> {
    let cap = left;
    let (actors, mut r) = leb(data)?;
    for _ in 0..actors {
        let (len, r2) = leb(r)?;
        let (_, r3) = split(r2, usize::try_from(len).map_err(|_| too_long())?)?;
        r = r3;
    }
    let (heads, r2) = leb(r)?;
    let heads = usize::try_from(heads)
        .ok()
        .and_then(|h| h.checked_mul(32))
        .ok_or_else(too_long)?;
    let (_, mut r) = split(r2, heads)?;
    let mut columns: Vec<(u64, usize)> = Vec::new();
    for _ in 0..2 {
        let (count, r2) = leb(r)?;
        r = r2;
        for _ in 0..count {
            let (spec, r2) = leb(r)?;
            let (len, r3) = leb(r2)?;
            r = r3;
            columns.push((spec, usize::try_from(len).map_err(|_| too_long())?));
            if columns.len() > 4096 {
                return Err(InflateError::Malformed("too many columns"));
            }
        }
    }
    let mut total = 0usize;
    for (spec, len) in columns {
        let (col, r2) = split(r, len)?;
        r = r2;
        let left = cap.saturating_sub(total);
        total += if spec & DEFLATE_BIT != 0 {
            inflated(col, left, cap)?
        } else {
            within(len, left, cap)?
        };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT, ScalarValue};
    use std::io::Write;

    fn chunk(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[0, 0, 0, 0, kind]);
        crate::wire::put_varint(&mut out, data.len() as u64);
        out.extend_from_slice(data);
        out
    }

    fn deflate(n: usize) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(zeros.len());
            e.write_all(&zeros[..k]).unwrap();
            left -= k;
        }
        e.finish().unwrap()
    }

    #[test]
    fn real_documents_and_changes_pass_at_their_size() {
        let mut doc = AutoCommit::new();
        for i in 0..300u32 {
            doc.put(ROOT, format!("{i:032x}"), ScalarValue::Bytes(vec![7; 200]))
                .unwrap();
            doc.commit();
        }
        let full = doc.save();
        let n = check_chunks(&full, 64 << 20).unwrap();
        assert!(n >= full.len() / 2, "{n} for {} bytes", full.len());
        let changes = doc.save_after(&[]);
        assert!(check_chunks(&changes, 64 << 20).is_ok());
        // The same bytes under a cap they exceed are refused.
        assert!(matches!(
            check_chunks(&full, 1000),
            Err(InflateError::OverCap { .. })
        ));
    }

    #[test]
    fn a_compressed_change_that_inflates_past_the_cap_is_refused_cheaply() {
        let bomb = chunk(2, &deflate(256 << 20));
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        assert_eq!(
            check_chunks(&bomb, 64 << 20),
            Err(InflateError::OverCap { cap: 64 << 20 })
        );
        // Automerge itself would have inflated it whole.
    }

    #[test]
    fn a_document_with_a_deflate_column_bomb_is_refused() {
        let col = deflate(128 << 20);
        let mut data = vec![0u8]; // no actors
        data.push(0); // no heads
        data.push(1); // one change column
        crate::wire::put_varint(&mut data, (1 << 4) | DEFLATE_BIT);
        crate::wire::put_varint(&mut data, col.len() as u64);
        data.push(0); // no op columns
        data.extend_from_slice(&col);
        assert_eq!(
            check_chunks(&chunk(0, &data), 64 << 20),
            Err(InflateError::OverCap { cap: 64 << 20 })
        );
    }

    #[test]
    fn garbage_and_bundles_are_refused_without_panicking() {
        assert!(check_chunks(&[1, 2, 3], 100).is_err());
        assert!(check_chunks(&chunk(3, &[1, 2]), 100).is_err());
        let mut cut = chunk(1, &[1, 2, 3, 4]);
        cut.pop();
        assert!(check_chunks(&cut, 100).is_err());
        let mut huge_len = MAGIC.to_vec();
        huge_len.extend_from_slice(&[0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(check_chunks(&huge_len, 100).is_err());
        assert_eq!(check_chunks(&[], 100), Ok(0));
    }
}
