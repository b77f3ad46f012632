//! The vetting of a peer's changes hands back what the envelope check made of each new
//! envelope (the node's check: the opened event), so that nothing downstream opens an envelope
//! a second time.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use automerge::sync;
use common::*;
use kazashi_domain::{Event, EventId};
use kazashi_sync::{
    Membership, OpenCounts, Rejection, ShardDoc, ShardId, Vetted, open_as, open_counts, seal,
};

fn source(m: &Membership) -> (ShardDoc, Vec<Event>) {
    let events: Vec<Event> = (0..3u32)
        .map(|i| event(1, "S1", 1000 * u64::from(i), i))
        .collect();
    let mut doc = ShardDoc::new(ShardId::of(&events[0]).unwrap(), &device(1));
    for e in &events {
        let env = seal(e, m.deployment().id(), &key(1)).unwrap();
        assert!(doc.insert(&e.id(), &env).unwrap());
    }
    (doc, events)
}

fn since(before: OpenCounts) -> (u64, u64) {
    let now = open_counts();
    (now.decoded - before.decoded, now.verified - before.verified)
}

/// Each new event once, as sealed, opened by the check and filed under its id.
fn assert_vetted(mut got: Vec<Vetted<Event>>, source: &ShardDoc, events: &[Event]) {
    got.sort_by_key(|v| v.id);
    let mut want: Vec<&Event> = events.iter().collect();
    want.sort_by_key(|e| e.id());
    assert_eq!(got.len(), want.len());
    for (v, e) in got.iter().zip(want) {
        assert_eq!(v.id, e.id());
        assert_eq!(&v.opened, e);
        assert_eq!(Some(v.envelope.clone()), source.envelope(&e.id()));
    }
}

#[test]
fn a_sync_message_hands_back_each_new_event_opened_once() {
    let m = membership();
    let check = |id: &EventId, env: &[u8]| -> Result<Event, Rejection> { open_as(env, id, &m) };
    let (mut a, events) = source(&m);
    let mut b = ShardDoc::new(a.id(), &device(2));
    let (mut sa, mut sb) = (sync::State::new(), sync::State::new());
    let before = open_counts();
    let mut got = Vec::new();
    for _ in 0..10 {
        let to_b = a.generate(&mut sa);
        if let Some(msg) = &to_b {
            got.extend(b.receive(&mut sb, msg, &check).unwrap());
        }
        let to_a = b.generate(&mut sb);
        if let Some(msg) = &to_a {
            assert!(a.receive(&mut sa, msg, &check).unwrap().is_empty());
        }
        if to_a.is_none() && to_b.is_none() {
            break;
        }
    }
    assert_eq!(
        since(before),
        (3, 3),
        "(decoded, verified) while syncing three events"
    );
    assert_vetted(got, &a, &events);
    assert_eq!(b.envelopes(), a.envelopes());
}

#[test]
fn merged_bytes_hand_back_each_new_event_opened_once() {
    let m = membership();
    let check = |id: &EventId, env: &[u8]| -> Result<Event, Rejection> { open_as(env, id, &m) };
    let (mut a, events) = source(&m);
    let mut b = ShardDoc::new(a.id(), &device(2));
    let before = open_counts();
    let got = b.merge_bytes(&a.save(), &check).unwrap();
    assert_eq!(since(before), (3, 3));
    assert_vetted(got, &a, &events);
    // Merged again: nothing new, nothing opened.
    let before = open_counts();
    assert!(b.merge_bytes(&a.save(), &check).unwrap().is_empty());
    assert_eq!(since(before), (0, 0));
}
