//! A peer that tries to delete, overwrite or smuggle data into a shard is refused, and the
//! shard is left exactly as it was.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ScalarValue};
use common::*;
use kazashi_domain::EventId;
use kazashi_sync::{Membership, Rejection, ShardDoc, ShardError, ShardId, open_as, seal};

fn honest_shard(m: &Membership) -> (ShardDoc, Vec<(EventId, Vec<u8>)>) {
    let e1 = event(1, "S1", 0, 1);
    let e2 = event(1, "S1", 1000, 2);
    let mut doc = ShardDoc::new(ShardId::of(&e1).unwrap(), &device(1));
    let mut envs = Vec::new();
    for e in [e1, e2] {
        let env = seal(&e, m.deployment().id(), &key(1)).unwrap();
        assert!(doc.insert(&e.id(), &env).unwrap());
        envs.push((e.id(), env));
    }
    (doc, envs)
}

/// Run the Automerge sync protocol between `evil` (a raw document) and `honest` until one side
/// has nothing to say or the honest side refuses.
fn sync_from(
    evil: &mut AutoCommit,
    honest: &mut ShardDoc,
    m: &Membership,
) -> Result<(), ShardError> {
    let check =
        |id: &EventId, env: &[u8]| -> Result<(), Rejection> { open_as(env, id, m).map(|_| ()) };
    let mut evil_state = sync::State::new();
    let mut honest_state = sync::State::new();
    for _ in 0..20 {
        let to_honest = evil.sync().generate_sync_message(&mut evil_state);
        if let Some(msg) = &to_honest {
            honest.receive(&mut honest_state, &msg.clone().encode(), &check)?;
        }
        let to_evil = honest.generate(&mut honest_state);
        if let Some(bytes) = &to_evil {
            let msg = sync::Message::decode(bytes).unwrap();
            evil.sync()
                .receive_sync_message(&mut evil_state, msg)
                .unwrap();
        }
        if to_honest.is_none() && to_evil.is_none() {
            return Ok(());
        }
    }
    Ok(())
}

fn attack(what: &str, act: impl FnOnce(&mut AutoCommit, &[(EventId, Vec<u8>)])) -> ShardError {
    let m = membership();
    let (mut honest, envs) = honest_shard(&m);
    let before = honest.envelopes();
    let mut evil = AutoCommit::load(&honest.save()).unwrap();
    evil.set_actor(automerge::ActorId::from(&device(2).0[..]));
    act(&mut evil, &envs);
    evil.commit();
    let err = sync_from(&mut evil, &mut honest, &m).expect_err(what);
    assert_eq!(honest.envelopes(), before, "{what}: the shard changed");
    err
}

#[test]
fn deleting_an_event_is_refused() {
    let err = attack("delete", |d, envs| {
        d.delete(ROOT, envs[0].0.to_hex()).unwrap()
    });
    assert!(matches!(err, ShardError::Delete(_)), "{err:?}");
}

#[test]
fn overwriting_an_event_is_refused() {
    let err = attack("overwrite", |d, envs| {
        let m = membership();
        // Even with a valid envelope of another event.
        let other = seal(&event(1, "S1", 5000, 3), m.deployment().id(), &key(1)).unwrap();
        d.put(ROOT, envs[0].0.to_hex(), ScalarValue::Bytes(other))
            .unwrap();
    });
    assert!(matches!(err, ShardError::Overwrite(_)), "{err:?}");
}

#[test]
fn a_forged_envelope_is_refused() {
    let err = attack("forge", |d, _| {
        // Device 2's event "signed" by device 1's key is impossible; sign it with device 5's
        // key, which is not enrolled.
        let m = membership();
        let e = event(5, "S1", 7000, 4);
        let env = seal(&e, m.deployment().id(), &key(5)).unwrap();
        d.put(ROOT, e.id().to_hex(), ScalarValue::Bytes(env))
            .unwrap();
    });
    assert!(
        matches!(
            err,
            ShardError::BadEnvelope {
                reason: Rejection::UnknownDevice(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_valid_envelope_under_the_wrong_id_is_refused() {
    let err = attack("misfile", |d, _| {
        let m = membership();
        let e = event(2, "S1", 7000, 4);
        let env = seal(&e, m.deployment().id(), &key(2)).unwrap();
        d.put(ROOT, EventId([9; 16]).to_hex(), ScalarValue::Bytes(env))
            .unwrap();
    });
    assert!(
        matches!(
            err,
            ShardError::BadEnvelope {
                reason: Rejection::IdMismatch { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn anything_but_envelopes_is_refused() {
    let err = attack("garbage key", |d, _| {
        d.put(ROOT, "hello", ScalarValue::Bytes(vec![1, 2, 3]))
            .unwrap();
    });
    assert!(matches!(err, ShardError::NotAnEnvelope(_)), "{err:?}");
    let err = attack("string value", |d, _| {
        d.put(ROOT, EventId([9; 16]).to_hex(), "text").unwrap();
    });
    assert!(matches!(err, ShardError::NotAnEnvelope(_)), "{err:?}");
    let err = attack("nested object", |d, _| {
        let obj = d
            .put_object(ROOT, EventId([8; 16]).to_hex(), ObjType::Map)
            .unwrap();
        d.put(&obj, "x", 1).unwrap();
    });
    assert!(matches!(err, ShardError::NotAnEnvelope(_)), "{err:?}");
}

#[test]
fn an_honest_addition_is_taken() {
    let m = membership();
    let (mut honest, _) = honest_shard(&m);
    let mut peer = AutoCommit::load(&honest.save()).unwrap();
    peer.set_actor(automerge::ActorId::from(&device(2).0[..]));
    let e = event(2, "S1", 9000, 5);
    let env = seal(&e, m.deployment().id(), &key(2)).unwrap();
    peer.put(ROOT, e.id().to_hex(), ScalarValue::Bytes(env.clone()))
        .unwrap();
    peer.commit();
    sync_from(&mut peer, &mut honest, &m).unwrap();
    assert_eq!(honest.envelope(&e.id()), Some(env));
    assert_eq!(honest.len(), 3);
}

/// A whole shard (`Message::Whole`, sent to a laptop that holds none of it) passes the same
/// vetting as sync messages: a saved document holding one forged envelope among honest ones is
/// refused whole, the receiver keeps nothing of it, and the honest document is taken.
#[test]
fn a_whole_shard_with_a_forged_envelope_is_refused_and_an_honest_one_taken() {
    use kazashi_sync::{Log, Message, Session};
    let m = membership();
    let (mut honest, envs) = honest_shard(&m);
    let shard = honest.id();
    let mut evil = AutoCommit::load(&honest.save()).unwrap();
    evil.set_actor(automerge::ActorId::from(&device(2).0[..]));
    let e = event(5, "S1", 7000, 4);
    let env = seal(&e, m.deployment().id(), &key(5)).unwrap();
    evil.put(ROOT, e.id().to_hex(), ScalarValue::Bytes(env))
        .unwrap();
    evil.commit();
    let check =
        |id: &EventId, env: &[u8]| -> Result<(), Rejection> { open_as(env, id, &m).map(|_| ()) };
    let mut log = Log::new(device(3));
    let mut session = Session::new();
    let out = session.handle(
        &mut log,
        Message::Whole {
            shard,
            doc: evil.save(),
        },
        &check,
    );
    assert_eq!(out.refused.len(), 1, "{:?}", out.refused);
    assert!(matches!(
        out.refused[0].1,
        ShardError::BadEnvelope {
            reason: Rejection::UnknownDevice(_),
            ..
        }
    ));
    assert!(out.added.is_empty());
    assert_eq!(log.len(), 0);
    assert!(log.catalog().is_empty());
    // From another peer (a new session), the honest document is taken, every envelope
    // checked and handed back.
    let mut session = Session::new();
    let out = session.handle(
        &mut log,
        Message::Whole {
            shard,
            doc: honest.whole(),
        },
        &check,
    );
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(out.added.len(), envs.len());
    let mut envs = envs;
    envs.sort();
    assert_eq!(log.shard(&shard).unwrap().envelopes(), envs);
}

/// Two logs reconcile through sessions: one holding shards the other lacks gets them whole,
/// shards both hold at different heads go through Automerge's sync, and an equal catalog
/// afterwards settles in one message each way with nothing more sent.
#[test]
fn sessions_send_missing_shards_whole_and_settle_when_equal() {
    use kazashi_sync::{Log, Message, Session};
    let m = membership();
    let check =
        |id: &EventId, env: &[u8]| -> Result<(), Rejection> { open_as(env, id, &m).map(|_| ()) };
    let dep = m.deployment().id();
    let mut a = Log::new(device(1));
    let mut b = Log::new(device(2));
    // 40 days of S1 at a; day 0 at both (different events); day 100 of S2 at b only.
    for d in 0..40u64 {
        let e = event(1, "S1", d * 86_400_000, d as u32);
        a.insert(
            ShardId::of(&e).unwrap(),
            &e.id(),
            &seal(&e, dep, &key(1)).unwrap(),
        )
        .unwrap();
    }
    let e = event(2, "S1", 1000, 99);
    b.insert(
        ShardId::of(&e).unwrap(),
        &e.id(),
        &seal(&e, dep, &key(2)).unwrap(),
    )
    .unwrap();
    let e = event(2, "S2", 100 * 86_400_000, 98);
    b.insert(
        ShardId::of(&e).unwrap(),
        &e.id(),
        &seal(&e, dep, &key(2)).unwrap(),
    )
    .unwrap();
    let mut logs = [a, b];
    let run = |logs: &mut [Log; 2]| -> (usize, usize) {
        let (mut sa, mut sb) = (Session::new(), Session::new());
        let mut queue: Vec<(usize, Message)> =
            vec![(1, sa.start(&mut logs[0])), (0, sb.start(&mut logs[1]))];
        let (mut messages, mut wholes) = (0, 0);
        while let Some((to, msg)) = (!queue.is_empty()).then(|| queue.remove(0)) {
            messages += 1;
            wholes += usize::from(matches!(msg, Message::Whole { .. }));
            let session = if to == 0 { &mut sa } else { &mut sb };
            let out = session.handle(&mut logs[to], msg, &check);
            assert!(out.refused.is_empty());
            queue.extend(out.replies.into_iter().map(|r| (1 - to, r)));
            let w = session.serve_whole(&mut logs[to], &out.send_whole);
            queue.extend(w.into_iter().map(|r| (1 - to, r)));
            assert!(messages < 500);
        }
        (messages, wholes)
    };
    let (_, wholes) = run(&mut logs);
    assert_eq!(
        wholes, 40,
        "39 days of S1 to b, day 100 of S2 to a, each once"
    );
    assert_eq!(logs[0].catalog(), logs[1].catalog());
    assert_eq!(logs[0].len(), 42);
    let (messages, wholes) = run(&mut logs);
    assert_eq!(
        (messages, wholes),
        (2, 0),
        "equal catalogs: one opening each, nothing else"
    );
}

/// A peer that asks for one change twice (`need` = [h, h]) is refused: Automerge 0.12 would
/// build that change twice for its answer and panic (`MissingOps` in its change collector),
/// which the fuzzer found through a real node's link. The shard still answers honest peers.
#[test]
fn a_change_asked_for_twice_is_refused_and_the_shard_still_answers() {
    let m = membership();
    let (mut honest, _) = honest_shard(&m);
    // More changes than a third of which are asked for: Automerge answers change by change
    // rather than with the whole document.
    for n in 3..12u32 {
        let e = event(1, "S1", u64::from(n) * 1000, n);
        let env = seal(&e, m.deployment().id(), &key(1)).unwrap();
        assert!(honest.insert(&e.id(), &env).unwrap());
    }
    let before = honest.envelopes();
    let heads = honest.heads();
    assert!(!heads.is_empty());
    let check =
        |id: &EventId, env: &[u8]| -> Result<(), Rejection> { open_as(env, id, &m).map(|_| ()) };
    let mut empty = AutoCommit::new();
    let mut evil_state = sync::State::new();
    let mut msg = empty.sync().generate_sync_message(&mut evil_state).unwrap();
    // Heads the shard does not know (a peer that is not empty, so Automerge answers change by
    // change rather than with the whole document), no summary, and one hash needed twice.
    msg.heads = vec![automerge::ChangeHash([7; 32])];
    msg.have.clear();
    msg.need = vec![heads[0], heads[0]];
    let mut state = sync::State::new();
    let err = honest
        .receive(&mut state, &msg.clone().encode(), &check)
        .expect_err("a change asked for twice");
    assert!(
        matches!(&err, ShardError::BadMessage(why) if why.contains("asked for twice")),
        "{err:?}"
    );
    assert_eq!(honest.envelopes(), before, "the shard changed");
    // The refused message taught the shard nothing: its answer is an ordinary one, and an
    // honest empty peer still gets every envelope.
    let mut fresh = ShardDoc::new(honest.id(), &device(3));
    let mut fresh_state = sync::State::new();
    for _ in 0..10 {
        let a = honest.generate(&mut state);
        if let Some(a) = &a {
            fresh.receive(&mut fresh_state, a, &check).unwrap();
        }
        let b = fresh.generate(&mut fresh_state);
        if let Some(b) = &b {
            honest.receive(&mut state, b, &check).unwrap();
        }
        if a.is_none() && b.is_none() {
            break;
        }
    }
    assert_eq!(fresh.envelopes(), before);
}
