//! A whole shard (`Message::Whole`) of many envelopes — enough for the vetting to check them on
//! several threads — with one bad signature among them is refused whole, naming that envelope,
//! and nothing of it is kept; without the bad one it is taken. Among the bad signatures: one
//! whose `R` carries a torsion component, which a cofactored (batch) check would accept and
//! `verify_strict` refuses (sync/src/envelope_verify.rs).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ScalarValue};
use common::*;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use kazashi_domain::{Event, EventId};
use kazashi_sync::{
    Log, Membership, Message, Rejection, Session, ShardError, ShardId, open, open_as, seal,
};
use sha2::{Digest, Sha512};

/// Honest events of stations 1 and 2 at S1 on one day: 600 of them.
fn events() -> Vec<Event> {
    (0..600u32)
        .map(|i| event(1 + (i % 2) as u8, "S1", u64::from(i) * 1000, i + 1))
        .collect()
}

/// A saved shard document holding `envelopes`, put by an actor of station 1.
fn whole(envelopes: &[(EventId, Vec<u8>)]) -> Vec<u8> {
    let mut doc = AutoCommit::new();
    doc.set_actor(automerge::ActorId::from(&device(1).0[..]));
    for (id, env) in envelopes {
        doc.put(ROOT, id.to_hex(), ScalarValue::Bytes(env.clone()))
            .unwrap();
    }
    doc.commit();
    doc.save()
}

fn send(m: &Membership, shard: ShardId, doc: Vec<u8>) -> (Log, kazashi_sync::Outcome<()>) {
    let check =
        |id: &EventId, env: &[u8]| -> Result<(), Rejection> { open_as(env, id, m).map(|_| ()) };
    let mut log = Log::new(device(3));
    let out = Session::new().handle(&mut log, Message::Whole { shard, doc }, &check);
    (log, out)
}

fn sealed(m: &Membership) -> Vec<(EventId, Vec<u8>)> {
    events()
        .iter()
        .map(|e| {
            let k = key(if e.device() == device(1) { 1 } else { 2 });
            (e.id(), seal(e, m.deployment().id(), &k).unwrap())
        })
        .collect()
}

/// The refusal must name envelope `bad` with a bad signature of its device, and nothing of
/// the shard may be kept.
fn assert_refused(log: &mut Log, out: &kazashi_sync::Outcome<()>, bad: &EventId) {
    assert_eq!(out.refused.len(), 1, "{:?}", out.refused);
    match &out.refused[0].1 {
        ShardError::BadEnvelope {
            key,
            reason: Rejection::BadSignature(_),
        } => assert_eq!(key, &bad.to_hex()),
        other => panic!("refused for another reason: {other}"),
    }
    assert!(out.added.is_empty());
    assert_eq!(log.len(), 0);
    assert!(log.catalog().is_empty());
}

#[test]
fn one_flipped_signature_bit_among_600_refuses_the_whole_shard() {
    let m = membership();
    let honest = sealed(&m);
    let shard = ShardId::of(&events()[0]).unwrap();
    for at in [0, 299, 599] {
        let mut envs = honest.clone();
        let (id, env) = &mut envs[at];
        // The envelope ends with the 64 signature bytes: flip a bit of `s`.
        let n = env.len();
        env[n - 10] ^= 0x04;
        assert!(matches!(open(env, &m), Err(Rejection::BadSignature(_))));
        let bad = *id;
        let (mut log, out) = send(&m, shard, whole(&envs));
        assert_refused(&mut log, &out, &bad);
    }
    // Two bad ones: the first in the shard's key order is named, whatever thread checked it.
    let mut envs = honest.clone();
    let mut bad = Vec::new();
    for at in [100, 450] {
        let (id, env) = &mut envs[at];
        let n = env.len();
        env[n - 40] ^= 0x01;
        bad.push(*id);
    }
    bad.sort_by_key(EventId::to_hex);
    let (mut log, out) = send(&m, shard, whole(&envs));
    assert_refused(&mut log, &out, &bad[0]);
    // The honest shard is taken whole.
    let (log, out) = send(&m, shard, whole(&honest));
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(out.added.len(), honest.len());
    assert_eq!(log.len(), honest.len());
}

/// Station 1's secret scalar (ed25519: SHA-512 of the seed, clamped) and its public point.
fn secret_of_station_1() -> (Scalar, EdwardsPoint) {
    let h = Sha512::digest([1u8; 32]);
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a);
    let point = EdwardsPoint::mul_base(&a);
    assert_eq!(point.compress().to_bytes(), device(1).0);
    (a, point)
}

/// A point of order 8: [ℓ]P for a point P whose torsion component has order 8.
fn order_8_point() -> EdwardsPoint {
    (0u8..=255)
        .filter_map(|i| CompressedEdwardsY([i; 32]).decompress())
        .map(|p| (-Scalar::ONE) * p + p)
        .find(|t| {
            let t2 = t + t;
            !(t2 + t2).is_identity()
        })
        .unwrap()
}

/// SHA-512 of `parts` as a scalar mod ℓ.
fn hash_scalar(parts: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Station 1's envelope of `e` whose `R` is `[r]B + T` (T of order 8) and `s` made for that R:
/// `[s]B − [k]A − R = −T`, a small-order difference that the cofactored equation
/// (`[8]([s]B − [k]A − R) = 0`, a batch check's) accepts and `verify_strict` refuses.
fn torsion_envelope(e: &Event, m: &Membership) -> Vec<u8> {
    let (a, a_point) = secret_of_station_1();
    let deployment = m.deployment().id();
    let content = e.encode().unwrap();
    let mut message = b"kazashi-envelope-v1".to_vec();
    for part in [&deployment.0[..], &content[..]] {
        message.extend_from_slice(&u32::try_from(part.len()).unwrap().to_le_bytes());
        message.extend_from_slice(part);
    }
    let r = hash_scalar(&[b"nonce"]);
    let t = order_8_point();
    let r_point = EdwardsPoint::mul_base(&r) + t;
    let r_bytes = r_point.compress().to_bytes();
    let k = hash_scalar(&[&r_bytes, &a_point.compress().to_bytes(), &message]);
    let s = r + k * a;
    // The cofactored equation holds; the cofactorless one does not.
    let diff = (EdwardsPoint::mul_base(&s) - k * a_point) - r_point;
    assert!(!diff.is_identity());
    assert!(diff.mul_by_cofactor().is_identity());
    let mut sig = r_bytes.to_vec();
    sig.extend_from_slice(s.as_bytes());
    let mut env = deployment.0.to_vec();
    kazashi_sync::wire::put_bytes(&mut env, &content);
    kazashi_sync::wire::put_bytes(&mut env, &sig);
    env
}

#[test]
fn a_signature_only_a_cofactored_check_accepts_refuses_the_whole_shard() {
    let m = membership();
    let mut envs = sealed(&m);
    let shard = ShardId::of(&events()[0]).unwrap();
    let at = 2 * 150; // station 1's
    let e = events()[at].clone();
    assert_eq!(e.device(), device(1));
    let env = torsion_envelope(&e, &m);
    // Canonical and well-formed: only the signature is wrong.
    assert_eq!(open(&env, &m), Err(Rejection::BadSignature(device(1))));
    envs[at] = (e.id(), env);
    let (mut log, out) = send(&m, shard, whole(&envs));
    assert_refused(&mut log, &out, &e.id());
}
