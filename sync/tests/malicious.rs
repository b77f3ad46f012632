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
