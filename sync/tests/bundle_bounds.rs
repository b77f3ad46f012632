//! Bundles fail closed, and cheaply: every cut point and every single-byte change of a real
//! bundle is refused with a clear error; a stranger's bundle is refused before a byte of it is
//! decrypted or inflated; inflation stops at the size the author's signed header declares; an
//! earlier format (no signed header) is inflated at most to a small multiple of its size.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use common::*;
use kazashi_sync::bundle::{self, BundleBody, BundleError, Sealing};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn shard() -> kazashi_sync::ShardId {
    kazashi_sync::ShardId {
        site: site("S1"),
        day: kazashi_domain::CivilDate::new(2026, 9, 1).unwrap(),
    }
}

fn body(contents: Vec<u8>) -> BundleBody {
    let m = membership();
    BundleBody {
        deployment: m.deployment().id(),
        author: device(1),
        id: [1; 16],
        created_ms: T0,
        snapshot: true,
        catalog: vec![(shard(), vec![[3; 32]])],
        shards: vec![(shard(), contents)],
        manifest: Some(m.signed().encode()),
    }
}

/// A zstd frame that inflates to `bytes` zero bytes (a multiple of 128 KiB) from 4 bytes per
/// 128 KiB: RLE blocks, as a decompression bomb is built.
fn zstd_bomb(bytes: usize) -> Vec<u8> {
    const BLOCK: usize = 128 << 10;
    let blocks = bytes / BLOCK;
    // Magic; frame header: no content size, a 128 KiB window.
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38];
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let h = ((BLOCK as u32) << 3) | (1 << 1) | last;
        f.extend_from_slice(&h.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}

/// Whether a refusal names what is wrong with the file (not a panic, not a bare code).
fn clear(e: &BundleError) -> bool {
    matches!(
        e,
        BundleError::NotABundle | BundleError::Truncated { .. } | BundleError::Damaged(_)
    ) || matches!(e, BundleError::BadSignature | BundleError::UnknownAuthor(_))
        || matches!(
            e,
            BundleError::WrongDeployment(_) | BundleError::NotForThisLaptop
        )
        // The magic's last digit changed to an earlier format's: refused as such.
        || matches!(e, BundleError::OldFormat(_))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Exhaustive per case: every prefix of the file and every byte changed (by a random
    /// non-zero mask) is refused with a clear error.
    #[test]
    fn every_cut_and_every_byte_change_is_refused(
        contents in proptest::collection::vec(any::<u8>(), 0..200),
        masks in proptest::collection::vec(1u8..=255, 64),
        entropy in any::<[u8; 32]>(),
    ) {
        let m = membership();
        let mut e = [0u8; 64];
        e[..32].copy_from_slice(&entropy);
        e[32..].copy_from_slice(&entropy);
        let b = body(contents);
        let file = bundle::write(&b, &key(1), &m, e).unwrap();
        prop_assert_eq!(&bundle::read(&file, &m, &key(2)).unwrap(), &b);
        for cut in 0..file.len() {
            let err = bundle::read(&file[..cut], &m, &key(2)).unwrap_err();
            prop_assert!(clear(&err), "cut at {}: {:?}", cut, err);
            prop_assert!(!err.to_string().is_empty());
        }
        for at in 0..file.len() {
            let mut bad = file.clone();
            bad[at] ^= masks[at % masks.len()];
            let err = bundle::read(&bad, &m, &key(2));
            prop_assert!(err.is_err(), "a change at {} was accepted", at);
            let err = err.unwrap_err();
            prop_assert!(clear(&err), "change at {}: {:?}", at, err);
        }
    }
}

#[test]
fn a_strangers_bundle_is_refused_before_anything_is_inflated() {
    let m = membership();
    // Anyone can encrypt for an enrolled laptop (its public key is public). A stranger's
    // bundle declaring a 1 GiB body that a 32 KiB zstd stream would inflate to:
    let bomb = zstd_bomb(1 << 30);
    assert!(bomb.len() < 40_000);
    let stranger = key(77);
    let how = Sealing {
        deployment: m.deployment().id(),
        created_ms: T0,
        plain_len: 1 << 30,
        v2: false,
    };
    let file = bundle::seal_compressed(&how, &bomb, &stranger, &m, [5; 64]).unwrap();
    let t = Instant::now();
    let err = bundle::read(&file, &m, &key(2)).unwrap_err();
    assert_eq!(err, BundleError::UnknownAuthor(stranger.device_id()));
    // No decryption, no inflation: well under what inflating 1 GiB takes.
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );

    // A member's header re-signed by a stranger: the signature over the header fails.
    let b = body(vec![1, 2, 3]);
    let real = bundle::write(&b, &key(1), &m, [6; 64]).unwrap();
    let header_len = u32::from_le_bytes(real[9..13].try_into().unwrap()) as usize;
    let sig_at = 13 + header_len;
    let mut forged = real.clone();
    let other = stranger.sign(b"anything");
    forged[sig_at..sig_at + 64].copy_from_slice(&other);
    assert_eq!(
        bundle::read(&forged, &m, &key(2)).unwrap_err(),
        BundleError::BadSignature
    );
}

#[test]
fn inflation_stops_at_the_size_the_signed_header_declares() {
    let m = membership();
    let bomb = zstd_bomb(1 << 30);
    // An enrolled author whose header says 4 KiB, over contents that inflate to 1 GiB.
    let how = Sealing {
        deployment: m.deployment().id(),
        created_ms: T0,
        plain_len: 4096,
        v2: false,
    };
    let file = bundle::seal_compressed(&how, &bomb, &key(1), &m, [5; 64]).unwrap();
    let t = Instant::now();
    let err = bundle::read(&file, &m, &key(2)).unwrap_err();
    assert!(
        matches!(&err, BundleError::Damaged(w) if w.contains("larger than the size its header allows")),
        "{err:?}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    // A header declaring more than the bundle limit is refused before decryption.
    let how = Sealing {
        plain_len: u64::MAX,
        ..how
    };
    let file = bundle::seal_compressed(&how, &bomb, &key(1), &m, [5; 64]).unwrap();
    let err = bundle::read(&file, &m, &key(2)).unwrap_err();
    assert!(
        matches!(&err, BundleError::Damaged(w) if w.contains("limit")),
        "{err:?}"
    );
    // Contents smaller than declared are refused too (the size is part of what is signed).
    let small = zstd_bomb(128 << 10);
    let how = Sealing {
        plain_len: 1 << 20,
        ..how
    };
    let file = bundle::seal_compressed(&how, &small, &key(1), &m, [5; 64]).unwrap();
    assert!(matches!(
        bundle::read(&file, &m, &key(2)).unwrap_err(),
        BundleError::Damaged(_)
    ));
}

#[test]
fn an_earlier_format_is_refused_by_default_and_inflated_only_a_little_on_request() {
    let m = membership();
    let bomb = zstd_bomb(1 << 30);
    let how = Sealing {
        deployment: m.deployment().id(),
        created_ms: T0,
        plain_len: 0,
        v2: true,
    };
    let file = bundle::seal_compressed(&how, &bomb, &key(77), &m, [5; 64]).unwrap();
    assert!(file.starts_with(b"KZBUNDLE2"));
    // Refused by default, before a byte is decrypted or inflated, with the remedy named.
    let t = Instant::now();
    let err = bundle::read(&file, &m, &key(2)).unwrap_err();
    assert_eq!(err, BundleError::OldFormat("KZBUNDLE2"));
    assert!(
        err.to_string()
            .contains("export it again with this version"),
        "{err}"
    );
    assert!(err.to_string().contains("--legacy"), "{err}");
    assert!(!err.suspect());
    assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
    // Read on request (`kazashi bundle import --legacy`): inflated only a little.
    let legacy = bundle::ReadOptions { legacy: true };
    let t = Instant::now();
    let err = bundle::read_with(&file, &m, &key(2), legacy).unwrap_err();
    assert!(
        matches!(&err, BundleError::Damaged(w) if w.contains("larger")),
        "{err:?}"
    );
    // At most 32 times the file (about 1 MiB here), not the 1 GiB the stream holds.
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    // A good bundle of that format still reads.
    let b = body(vec![9; 50]);
    let old = bundle::write_second_format(&b, &key(1), &m, [7; 64]).unwrap();
    assert_eq!(
        bundle::read(&old, &m, &key(2)),
        Err(BundleError::OldFormat("KZBUNDLE2"))
    );
    assert_eq!(
        bundle::read_with(&old, &m, &key(2), legacy).unwrap().shards,
        b.shards
    );
}
