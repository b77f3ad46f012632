//! Each new change is judged by itself, so that two honest nodes that saw different parts of
//! a malicious member's history still judge it alike: a write-then-delete, or a re-write of a
//! key the change's own history holds, is refused by a node that saw the write first and by
//! one that sees both at once; an honest concurrent write of the same envelope is taken.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ScalarValue};
use common::*;
use kazashi_domain::EventId;
use kazashi_sync::{Membership, Rejection, ShardDoc, ShardError, ShardId, open_as, seal};

fn sync_from(
    evil: &mut AutoCommit,
    honest: &mut ShardDoc,
    m: &Membership,
) -> Result<usize, ShardError> {
    let check =
        |id: &EventId, env: &[u8]| -> Result<(), Rejection> { open_as(env, id, m).map(|_| ()) };
    let (mut es, mut hs) = (sync::State::new(), sync::State::new());
    let mut added = 0;
    for _ in 0..20 {
        let to_honest = evil.sync().generate_sync_message(&mut es);
        if let Some(msg) = &to_honest {
            added += honest
                .receive(&mut hs, &msg.clone().encode(), &check)?
                .len();
        }
        let to_evil = honest.generate(&mut hs);
        if let Some(b) = &to_evil {
            evil.sync()
                .receive_sync_message(&mut es, sync::Message::decode(b).unwrap())
                .unwrap();
        }
        if to_honest.is_none() && to_evil.is_none() {
            break;
        }
    }
    Ok(added)
}

fn evil_doc() -> AutoCommit {
    AutoCommit::new().with_actor(automerge::ActorId::from(&device(2).0[..]))
}

fn shard() -> ShardId {
    ShardId::of(&event(2, "S1", 0, 1)).unwrap()
}

#[test]
fn write_then_delete_is_refused_whether_the_write_came_first_or_not() {
    let m = membership();
    let e = event(2, "S1", 100, 1);
    let env = seal(&e, m.deployment().id(), &key(2)).unwrap();
    let mut evil = evil_doc();
    evil.put(ROOT, e.id().to_hex(), ScalarValue::Bytes(env))
        .unwrap();
    evil.commit();
    // Node A takes the write alone.
    let mut a = ShardDoc::new(shard(), &device(1));
    assert_eq!(sync_from(&mut evil.fork(), &mut a, &m).unwrap(), 1);
    evil.delete(ROOT, e.id().to_hex()).unwrap();
    evil.commit();
    // A refuses the delete; B, which sees write and delete at once, refuses them too.
    let err = sync_from(&mut evil.fork(), &mut a, &m).unwrap_err();
    assert!(matches!(err, ShardError::Delete(_)), "{err:?}");
    assert!(a.contains(&e.id()));
    let mut b = ShardDoc::new(shard(), &device(3));
    let err = sync_from(&mut evil, &mut b, &m).unwrap_err();
    assert!(matches!(err, ShardError::Delete(_)), "{err:?}");
    assert!(b.is_empty());
}

#[test]
fn a_re_write_over_its_own_history_is_refused_by_every_node() {
    let m = membership();
    let e = event(2, "S1", 100, 1);
    let env = seal(&e, m.deployment().id(), &key(2)).unwrap();
    let mut evil = evil_doc();
    evil.put(ROOT, e.id().to_hex(), ScalarValue::Bytes(env.clone()))
        .unwrap();
    evil.commit();
    let mut a = ShardDoc::new(shard(), &device(1));
    sync_from(&mut evil.fork(), &mut a, &m).unwrap();
    // The same key again (Automerge writes nothing for the same bytes, so other bytes: the
    // put supersedes the first; refused as that, before its bytes are even opened).
    let mut other = env;
    other.push(0);
    evil.put(ROOT, e.id().to_hex(), ScalarValue::Bytes(other))
        .unwrap();
    evil.commit();
    for mut doc in [a, ShardDoc::new(shard(), &device(3))] {
        let before = doc.envelopes();
        let err = sync_from(&mut evil.fork(), &mut doc, &m).unwrap_err();
        assert!(matches!(err, ShardError::Overwrite(_)), "{err:?}");
        assert_eq!(doc.envelopes(), before);
    }
}

#[test]
fn an_honest_concurrent_write_of_the_same_envelope_is_taken() {
    let m = membership();
    let e = event(1, "S1", 100, 1);
    let env = seal(&e, m.deployment().id(), &key(1)).unwrap();
    let mut a = ShardDoc::new(shard(), &device(1));
    a.insert(&e.id(), &env).unwrap();
    // Device 3 put the same envelope on its own (from a USB stick) before any sync.
    let mut other = evil_doc();
    other.set_actor(automerge::ActorId::from(&device(3).0[..]));
    other
        .put(ROOT, e.id().to_hex(), ScalarValue::Bytes(env.clone()))
        .unwrap();
    other.commit();
    assert_eq!(sync_from(&mut other, &mut a, &m).unwrap(), 0);
    assert_eq!(a.envelope(&e.id()), Some(env));
}

/// Changes whose dependencies are missing are not kept (Automerge would queue them in the
/// document for good); once the missing change comes, the sync protocol brings them again.
#[test]
fn changes_whose_dependencies_are_missing_are_dropped_then_taken_in_order() {
    let m = membership();
    let mut evil = evil_doc();
    let mut envs = Vec::new();
    for i in 0..3u32 {
        let e = event(2, "S1", 100 + u64::from(i), i + 1);
        let env = seal(&e, m.deployment().id(), &key(2)).unwrap();
        evil.put(ROOT, e.id().to_hex(), ScalarValue::Bytes(env.clone()))
            .unwrap();
        evil.commit();
        envs.push((e.id(), env));
    }
    let changes = evil.get_changes(&[]);
    // The last two changes alone, without the first they depend on.
    let orphans: Vec<Vec<u8>> = changes[1..]
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let msg = sync::Message {
        heads: evil.get_heads(),
        need: vec![],
        have: vec![],
        changes: sync::ChunkList::from(orphans),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    let mut honest = ShardDoc::new(shard(), &device(1));
    let check =
        |id: &EventId, env: &[u8]| -> Result<(), Rejection> { open_as(env, id, &m).map(|_| ()) };
    let mut hs = sync::State::new();
    assert!(
        honest
            .receive(&mut hs, &msg.encode(), &check)
            .unwrap()
            .is_empty()
    );
    assert!(honest.is_empty());
    assert!(honest.heads().is_empty(), "nothing queued or applied");
    // A normal sync then brings all three.
    assert_eq!(sync_from(&mut evil, &mut honest, &m).unwrap(), 3);
    assert_eq!(honest.len(), 3);
}
