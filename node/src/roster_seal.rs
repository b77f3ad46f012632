//! The seal of a checked roster store: what lets a station with ten million residents open in
//! seconds without giving up the check against the pin.
//!
//! Opening a roster kept on disk checks it entry by entry against the hash the manifest pins
//! ([`crate::roster_db::RosterDb::verify`]: every page decrypted, every entry hashed; about
//! 8 s at 10 M entries on the reference laptop). Once that check has passed, the station
//! records in its own store (encrypted under the station's passphrase, not the roster's) a
//! **seal**: the pin the roster was checked against and a fingerprint of the bytes of the two
//! roster files as they were checked. The next open fingerprints the files again — read at disk
//! speed, nothing decrypted — and when the seal matches (same pin, same bytes) the entry walk is
//! not repeated: those exact bytes were checked before.
//!
//! Anything that changes either file — another import, a newer roster received over the mesh,
//! an edit by someone holding the roster's passphrase, damage — changes the fingerprint, and the
//! full check runs again (and seals again if it passes). A seal cannot be forged without the
//! station's passphrase. The fingerprint is taken before and after the walk and the seal written
//! only when both agree, so a file changed during the check is never sealed.
//!
//! The fingerprint is BLAKE3 (derived-key mode, a context of its own) over each file's length
//! and the BLAKE3 hashes of its 64 MiB pieces in order, the pieces hashed on every core.

use kazashi_domain::ids::RosterHash;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The station store's setting holding the seal (the pin, then the fingerprint).
pub const META_ROSTER_SEAL: &str = "roster.seal";

/// Bytes of a file hashed as one piece.
const PIECE: u64 = 64 << 20;
/// Bytes read at a time within a piece.
const READ: usize = 1 << 20;

/// The hashes one thread made: (place in the list of pieces, hash).
type Hashed = std::io::Result<Vec<(usize, [u8; 32])>>;

const CONTEXT: &str = "kazashi 2026 roster store seal v1";

/// The fingerprint of `files`' bytes (each file's length and contents, in the order given).
pub fn fingerprint(files: &[&Path]) -> std::io::Result<[u8; 32]> {
    fingerprint_in(files, PIECE)
}

fn fingerprint_in(files: &[&Path], piece: u64) -> std::io::Result<[u8; 32]> {
    let piece = piece.max(1);
    let opened: Vec<(std::fs::File, u64)> = files
        .iter()
        .map(|p| {
            let f = std::fs::File::open(p)?;
            let len = f.metadata()?.len();
            Ok((f, len))
        })
        .collect::<std::io::Result<_>>()?;
    // Every piece of every file, hashed by a few threads taking pieces in turn.
    let pieces: Vec<(usize, u64)> = opened
        .iter()
        .enumerate()
        .flat_map(|(i, (_, len))| (0..len.div_ceil(piece).max(1)).map(move |k| (i, k * piece)))
        .collect();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        .min(pieces.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut hashes: Vec<Option<[u8; 32]>> = vec![None; pieces.len()];
    let results: Vec<Hashed> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Hashed {
                    let mut out = Vec::new();
                    let mut buf = vec![0u8; READ];
                    loop {
                        let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&(file, start)) = pieces.get(at) else {
                            return Ok(out);
                        };
                        let Some((f, len)) = opened.get(file) else {
                            return Ok(out);
                        };
                        let end = (start + piece).min(*len);
                        let mut h = blake3::Hasher::new();
                        let mut pos = start;
                        while pos < end {
                            let want = usize::try_from(end - pos).unwrap_or(READ).min(READ);
                            let chunk = buf.get_mut(..want).unwrap_or_default();
                            f.read_exact_at(chunk, pos)?;
                            h.update(chunk);
                            pos += want as u64;
                        }
                        out.push((at, *h.finalize().as_bytes()));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a fingerprint thread stopped")))
            })
            .collect()
    });
    for r in results {
        for (at, h) in r? {
            if let Some(slot) = hashes.get_mut(at) {
                *slot = Some(h);
            }
        }
    }
    let mut top = blake3::Hasher::new_derive_key(CONTEXT);
    top.update(&(opened.len() as u64).to_le_bytes());
    let mut at = 0usize;
    for (file, (_, len)) in opened.iter().enumerate() {
        top.update(&len.to_le_bytes());
        while pieces.get(at).is_some_and(|(f, _)| *f == file) {
            let h = hashes
                .get(at)
                .copied()
                .flatten()
                .ok_or_else(|| std::io::Error::other("a piece was not hashed"))?;
            top.update(&h);
            at += 1;
        }
    }
    Ok(*top.finalize().as_bytes())
}

/// The seal's bytes: the pin the roster was checked against, then the files' fingerprint.
pub fn seal_bytes(pin: &RosterHash, fingerprint: &[u8; 32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(&pin.0);
    v.extend_from_slice(fingerprint);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn the_fingerprint_follows_every_byte_and_the_files_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let a = file(dir.path(), "a", b"roster pages");
        let b = file(dir.path(), "b", b"text pages");
        let one = fingerprint(&[&a, &b]).unwrap();
        assert_eq!(one, fingerprint(&[&a, &b]).unwrap());
        // The same bytes cut at another place between the files, or the files swapped.
        let a2 = file(dir.path(), "a2", b"roster pagest");
        let b2 = file(dir.path(), "b2", b"ext pages");
        assert_ne!(one, fingerprint(&[&a2, &b2]).unwrap());
        assert_ne!(one, fingerprint(&[&b, &a]).unwrap());
        // One bit changed.
        let b3 = file(dir.path(), "b3", b"text pagem");
        assert_ne!(one, fingerprint(&[&a, &b3]).unwrap());
        // A missing file is an error, not a fingerprint.
        assert!(fingerprint(&[&a, &dir.path().join("gone")]).is_err());
    }

    #[test]
    fn a_file_of_several_pieces_is_fingerprinted_whole() {
        let dir = tempfile::tempdir().unwrap();
        // Pieces of 4 KiB here (64 MiB in use), reads of up to 1 MiB within each.
        let piece = 4096u64;
        let size = 4096 * 5 + 123;
        let mut bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let a = file(dir.path(), "big", &bytes);
        let first = fingerprint_in(&[&a], piece).unwrap();
        // Not the hash of the bytes cut otherwise.
        assert_ne!(first, fingerprint_in(&[&a], piece * 2).unwrap());
        // A byte in the last piece, then one in the first, changed.
        for pos in [size - 1, 10] {
            let old = bytes[pos];
            bytes[pos] ^= 1;
            let changed = file(dir.path(), "big", &bytes);
            assert_ne!(
                first,
                fingerprint_in(&[&changed], piece).unwrap(),
                "byte {pos}"
            );
            bytes[pos] = old;
        }
        let back = file(dir.path(), "big", &bytes);
        assert_eq!(first, fingerprint_in(&[&back], piece).unwrap());
        // Empty files still count by their length.
        let e = file(dir.path(), "empty", b"");
        assert_ne!(fingerprint(&[&e]).unwrap(), fingerprint(&[&e, &e]).unwrap());
    }
}
