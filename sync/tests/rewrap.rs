//! One event, one byte string: an enrolled member that re-wraps other devices' envelopes
//! (trailing bytes, over-long lengths) and files its own events twice under two valid
//! signatures, concurrently, to different peers, does not split the honest nodes. Under random
//! delivery orders (reordered, dropped, duplicated messages), the three honest nodes end with
//! the same envelopes, the same folded state and the same state digest; no re-wrapped copy
//! is held anywhere.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use common::*;
use curve25519_dalek::{EdwardsPoint, Scalar};
use kazashi_domain::{DeviceId, EventId, State};
use kazashi_sync::{Log, Membership, Message, Rejection, Session, ShardId, open, open_as, seal};
use proptest::prelude::*;
use sha2::{Digest, Sha256, Sha512};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Honest nodes 0..3, malicious logs 3 and 4 (both device 2's, under two Automerge actors).
const HONEST: usize = 3;
const NODES: usize = 5;

fn honest_check(m: &Membership) -> impl Fn(&EventId, &[u8]) -> Result<(), Rejection> + '_ {
    move |id, env| open_as(env, id, m).map(|_| ())
}

/// The malicious side takes anything.
fn lax(_: &EventId, _: &[u8]) -> Result<(), Rejection> {
    Ok(())
}

fn contents(log: &Log) -> BTreeMap<EventId, Vec<u8>> {
    log.shards().flat_map(|s| s.envelopes()).collect()
}

/// As `Node::state_digest`: SHA-256 over the sorted ids of the folded state's events.
fn state_digest(state: &State) -> [u8; 32] {
    let mut ids: Vec<EventId> = state.events_in_order().iter().map(|e| e.id()).collect();
    ids.sort_unstable();
    let mut h = Sha256::new();
    for id in &ids {
        h.update(id.0);
    }
    h.finalize().into()
}

fn fold(log: &Log, m: &Membership) -> State {
    State::from_events(
        contents(log)
            .iter()
            .map(|(id, env)| open_as(env, id, m).unwrap()),
    )
}

/// An ed25519 signature by seed `seed` over `msg` with the nonce drawn from `nonce` instead of
/// the deterministic one: as valid as the usual one, and different.
fn sign_with_nonce(seed: [u8; 32], msg: &[u8], nonce: [u8; 64]) -> [u8; 64] {
    let h: [u8; 64] = Sha512::digest(seed).into();
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a);
    let public = EdwardsPoint::mul_base(&a).compress();
    let r = Scalar::from_bytes_mod_order_wide(&nonce);
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let k: [u8; 64] = Sha512::new()
        .chain_update(big_r.as_bytes())
        .chain_update(public.as_bytes())
        .chain_update(msg)
        .finalize()
        .into();
    let s = r + Scalar::from_bytes_mod_order_wide(&k) * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// An envelope's parts: (deployment, event bytes, signature), as it lays them out.
fn parts(env: &[u8]) -> ([u8; 16], Vec<u8>, Vec<u8>) {
    let mut dep = [0u8; 16];
    dep.copy_from_slice(&env[..16]);
    let (elen, rest) = varint(&env[16..]);
    let event = rest[..elen].to_vec();
    let (slen, rest) = varint(&rest[elen..]);
    (dep, event, rest[..slen].to_vec())
}

fn varint(b: &[u8]) -> (usize, &[u8]) {
    let mut n = 0usize;
    for (i, x) in b.iter().enumerate() {
        n |= usize::from(x & 0x7f) << (7 * i);
        if x & 0x80 == 0 {
            return (n, &b[i + 1..]);
        }
    }
    panic!("bad varint")
}

/// The envelope of `event` bytes with `sig`, its lengths written over-long by `pad` bytes.
fn wrap(dep: &[u8; 16], event: &[u8], sig: &[u8], pad: usize) -> Vec<u8> {
    let mut out = dep.to_vec();
    for part in [event, sig] {
        let mut n = part.len();
        let mut len = Vec::new();
        loop {
            len.push((n & 0x7f) as u8 | 0x80);
            n >>= 7;
            if n == 0 {
                break;
            }
        }
        len.extend(std::iter::repeat_n(0x80, pad));
        len.push(0);
        if pad == 0 {
            // Canonical: the last byte carries no continuation bit and no zero group.
            len.pop();
            let last = len.len() - 1;
            len[last] &= 0x7f;
        }
        out.extend_from_slice(&len);
        out.extend_from_slice(part);
    }
    out
}

fn signed_message(dep: &[u8; 16], event: &[u8]) -> Vec<u8> {
    let mut v = b"kazashi-envelope-v1".to_vec();
    for p in [&dep[..], event] {
        v.extend_from_slice(&(p.len() as u32).to_le_bytes());
        v.extend_from_slice(p);
    }
    v
}

type Memory = BTreeMap<(usize, usize), BTreeMap<ShardId, Vec<u8>>>;

/// One session between `a` and `b`, as `convergence.rs` runs it: `faults` picks which queued
/// message goes next and whether it is dropped or doubled. Returns the shards refused by an
/// honest side.
fn session(
    logs: &mut [Log],
    a: usize,
    b: usize,
    faults: &[u8],
    m: &Membership,
    memory: &mut Memory,
) -> Vec<(usize, ShardId)> {
    let resume = |k| memory.get(&k).map(Session::resume).unwrap_or_default();
    let (mut sa, mut sb) = (resume((a, b)), resume((b, a)));
    let mut queue: VecDeque<(usize, Message)> = VecDeque::new();
    queue.push_back((b, sa.start(&mut logs[a])));
    queue.push_back((a, sb.start(&mut logs[b])));
    let mut refused = Vec::new();
    let mut f = faults.iter().copied();
    for _ in 0..400 {
        let pick = match f.next() {
            Some(x) if !queue.is_empty() => usize::from(x) % queue.len(),
            _ => 0,
        };
        let Some((to, msg)) = queue.remove(pick) else {
            break;
        };
        let fault = f.next().unwrap_or(0);
        if fault % 7 == 1 {
            continue;
        }
        let deliveries = if fault % 7 == 2 { 2 } else { 1 };
        for _ in 0..deliveries {
            let (session, from) = if to == a { (&mut sa, b) } else { (&mut sb, a) };
            let out = if to < HONEST {
                session.handle(&mut logs[to], msg.clone(), &honest_check(m))
            } else {
                session.handle(&mut logs[to], msg.clone(), &lax)
            };
            if to < HONEST {
                refused.extend(out.refused.iter().map(|(s, _)| (from, *s)));
            }
            queue.extend(out.replies.into_iter().map(|r| (from, r)));
            let wholes = session.serve_whole(&mut logs[to], &out.send_whole);
            queue.extend(wholes.into_iter().map(|r| (from, r)));
        }
    }
    memory.insert((a, b), sa.save());
    memory.insert((b, a), sb.save());
    refused
}

/// What the malicious member files.
#[derive(Debug, Clone)]
enum Attack {
    /// A re-wrapped copy of honest write `i` (over-long lengths by `pad`, or a trailing byte),
    /// filed by malicious log `by` under the event's id.
    Rewrap { i: usize, pad: usize, by: usize },
    /// Device 2's own event `p`, filed by both malicious logs, each with its own valid
    /// signature.
    DoubleSigned { at: u64, p: u32, nonce: u8 },
}

fn attack() -> impl Strategy<Value = Attack> {
    prop_oneof![
        (0usize..12, 0usize..3, 0usize..2).prop_map(|(i, pad, by)| Attack::Rewrap { i, pad, by }),
        (0u64..2 * 86_400_000, 1u32..6, any::<u8>())
            .prop_map(|(at, p, nonce)| Attack::DoubleSigned { at, p, nonce }),
    ]
}

fn cases() -> u32 {
    // The test as written runs 256 cases; a slow machine may ask for fewer.
    std::env::var("KAZASHI_REWRAP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn rewrapped_and_double_signed_copies_do_not_split_honest_nodes(
        writes in proptest::collection::vec((0usize..2, 0u64..2 * 86_400_000, 0u32..6), 1..12),
        attacks in proptest::collection::vec(attack(), 1..6),
        sessions in proptest::collection::vec(
            (0usize..NODES, 0usize..NODES, proptest::collection::vec(any::<u8>(), 0..40)),
            1..14,
        ),
    ) {
        let m = membership();
        let dep = m.deployment().id();
        // Honest 0 is device 1, honest 1 is device 3 (S2 only), honest 2 writes nothing;
        // malicious logs 3 and 4 are device 2 under two Automerge actors.
        let actors = [device(1), device(3), device(4), device(2), DeviceId([0xee; 32])];
        let mut logs: Vec<Log> = actors.iter().map(|a| Log::new(*a)).collect();
        let mut written = Vec::new();
        for (w, at, p) in &writes {
            let (n, site) = if *w == 0 { (1u8, "S1") } else { (3u8, "S2") };
            let e = event(n, site, *at, *p);
            let env = seal(&e, dep, &key(n)).unwrap();
            logs[*w].insert(ShardId::of(&e).unwrap(), &e.id(), &env).unwrap();
            written.push((e, env));
        }
        let mut rewrapped = BTreeSet::new();
        for a in &attacks {
            match a {
                Attack::Rewrap { i, pad, by } => {
                    let Some((e, env)) = written.get(*i) else { continue };
                    let (d, ev, sig) = parts(env);
                    prop_assert_eq!(&wrap(&d, &ev, &sig, 0), env);
                    let bad = if *pad == 0 {
                        let mut b = env.clone();
                        b.push(0);
                        b
                    } else {
                        wrap(&d, &ev, &sig, *pad)
                    };
                    // Still verifies under postcard's lax reading; refused as not canonical.
                    prop_assert!(matches!(open(&bad, &m), Err(Rejection::Malformed(_))));
                    logs[HONEST + by].insert(ShardId::of(e).unwrap(), &e.id(), &bad).unwrap();
                    rewrapped.insert(bad);
                }
                Attack::DoubleSigned { at, p, nonce } => {
                    let e = event(2, "S1", *at, *p);
                    let honest_env = seal(&e, dep, &key(2)).unwrap();
                    let (d, ev, _) = parts(&honest_env);
                    let sig = sign_with_nonce([2; 32], &signed_message(&d, &ev), Sha512::digest([*nonce]).into());
                    let other = wrap(&d, &ev, &sig, 0);
                    prop_assert_ne!(&other, &honest_env);
                    let opened = open_as(&other, &e.id(), &m);
                    prop_assert!(opened.is_ok(), "{opened:?}");
                    let shard = ShardId::of(&e).unwrap();
                    logs[HONEST].insert(shard, &e.id(), &honest_env).unwrap();
                    logs[HONEST + 1].insert(shard, &e.id(), &other).unwrap();
                }
            }
        }
        let mut memory = Memory::new();
        for (a, b, faults) in &sessions {
            if a != b {
                let refused = session(&mut logs, *a, *b, faults, &m, &mut memory);
                // An honest node refuses only what the malicious logs send.
                prop_assert!(refused.iter().all(|(from, _)| *from >= HONEST), "{refused:?}");
            }
        }
        // Then the honest nodes meet, twice round, without faults.
        for _ in 0..2 {
            for (a, b) in [(0, 1), (1, 2), (0, 2)] {
                let refused = session(&mut logs, a, b, &[], &m, &mut memory);
                prop_assert!(refused.is_empty(), "{refused:?}");
            }
        }
        let c0 = contents(&logs[0]);
        for log in &logs[1..HONEST] {
            prop_assert_eq!(&contents(log), &c0);
        }
        for env in c0.values() {
            prop_assert!(!rewrapped.contains(env), "a re-wrapped copy was taken");
        }
        // Every honest write is held everywhere.
        for (e, env) in &written {
            prop_assert_eq!(c0.get(&e.id()), Some(env));
        }
        let s0 = fold(&logs[0], &m);
        for log in &logs[1..HONEST] {
            let s = fold(log, &m);
            prop_assert_eq!(state_digest(&s), state_digest(&s0));
            prop_assert_eq!(&s, &s0);
        }
    }
}

/// The author itself signs its event's bytes with a trailing byte, or an over-long integer:
/// the signature verifies, the id is the canonical form's, and the envelope is refused.
#[test]
fn an_event_signed_in_a_non_canonical_encoding_is_refused() {
    let m = membership();
    let e = event(2, "S1", 1000, 3);
    let env = seal(&e, m.deployment().id(), &key(2)).unwrap();
    let (d, ev, _) = parts(&env);
    let mut trailing = ev.clone();
    trailing.push(0);
    // The event starts with the device id (32 bytes), the site code's length and the code:
    // that length written over-long.
    let mut overlong = ev[..32].to_vec();
    overlong.push(ev[32] | 0x80);
    overlong.push(0);
    overlong.extend_from_slice(&ev[33..]);
    for bytes in [trailing, overlong] {
        let sig = sign_with_nonce(
            [2; 32],
            &signed_message(&d, &bytes),
            Sha512::digest(b"n").into(),
        );
        let bad = wrap(&d, &bytes, &sig, 0);
        let r = open_as(&bad, &e.id(), &m);
        assert!(
            matches!(&r, Err(Rejection::Malformed(w)) if w.contains("canonical")),
            "{r:?}"
        );
    }
    // The same route with the canonical bytes is taken: the refusal is the encoding's.
    let sig = sign_with_nonce(
        [2; 32],
        &signed_message(&d, &ev),
        Sha512::digest(b"n").into(),
    );
    assert_eq!(open_as(&wrap(&d, &ev, &sig, 0), &e.id(), &m), Ok(e));
}
