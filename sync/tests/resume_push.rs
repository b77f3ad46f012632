//! A resumed session hands over what was written since the last one in its first flight
//! (`Session::resume_push`): a laptop back from a partition does not wait for a round of
//! catalogs and Automerge summaries before its events leave.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use common::*;
use kazashi_domain::EventId;
use kazashi_sync::{Log, Membership, Message, Rejection, Session, ShardId, open_as, seal};
use std::collections::{BTreeMap, VecDeque};

fn check(m: &Membership) -> impl Fn(&EventId, &[u8]) -> Result<(), Rejection> + '_ {
    move |id, env| open_as(env, id, m).map(|_| ())
}

fn write(log: &mut Log, m: &Membership, n: u8, at: u64, p: u32) {
    write_at(log, m, n, "S1", at, p);
}

/// Laptop `n`'s event at site `s`, sealed and in `log`; its shard.
fn write_at(log: &mut Log, m: &Membership, n: u8, s: &str, at: u64, p: u32) -> ShardId {
    let e = event(n, s, at, p);
    let env = seal(&e, m.deployment().id(), &key(n)).unwrap();
    let shard = ShardId::of(&e).unwrap();
    log.insert(shard, &e.id(), &env).unwrap();
    shard
}

/// A first session between the two laptops, run to quiet.
fn first_session(logs: &mut [Log; 2], m: &Membership) -> [Session; 2] {
    let mut sessions = [Session::new(), Session::new()];
    let first = [
        vec![sessions[0].start(&mut logs[0])],
        vec![sessions[1].start(&mut logs[1])],
    ];
    exchange(logs, &mut sessions, m, first);
    sessions
}

/// How many events `msgs` add to `log` through `session`.
fn deliver(session: &mut Session, log: &mut Log, msgs: Vec<Message>, m: &Membership) -> usize {
    msgs.into_iter()
        .map(|msg| session.handle(log, msg, &check(m)).added.len())
        .sum()
}

/// Run a session between `a` and `b` until quiet, both opening with `first` messages.
fn exchange(
    logs: &mut [Log; 2],
    sessions: &mut [Session; 2],
    m: &Membership,
    first: [Vec<Message>; 2],
) {
    let mut queue: VecDeque<(usize, Message)> = VecDeque::new();
    for (from, msgs) in first.into_iter().enumerate() {
        queue.extend(msgs.into_iter().map(|x| (1 - from, x)));
    }
    let mut steps = 0;
    while let Some((to, msg)) = queue.pop_front() {
        steps += 1;
        assert!(steps < 1_000, "no quiescence");
        let out = sessions[to].handle(&mut logs[to], msg, &check(m));
        assert!(out.refused.is_empty());
        queue.extend(out.replies.into_iter().map(|r| (1 - to, r)));
        let wholes = sessions[to].serve_whole(&mut logs[to], &out.send_whole);
        queue.extend(wholes.into_iter().map(|r| (1 - to, r)));
    }
}

#[test]
fn a_resumed_session_pushes_what_was_written_since_in_its_first_flight() {
    let m = membership();
    let mut logs = [Log::new(device(1)), Log::new(device(2))];
    for p in 1..=5 {
        write(&mut logs[0], &m, 1, u64::from(p) * 1_000, p);
    }
    write(&mut logs[1], &m, 2, 500, 100);
    // The first session: both hold everything, and remember where they left off.
    let sessions = first_session(&mut logs, &m);
    assert_eq!(logs[0].shards().map(|s| s.len()).sum::<usize>(), 6);
    assert_eq!(logs[1].shards().map(|s| s.len()).sum::<usize>(), 6);
    let saved: BTreeMap<usize, BTreeMap<ShardId, Vec<u8>>> =
        (0..2).map(|i| (i, sessions[i].save())).collect();

    // Apart: laptop 1 writes three more check-ins in the same shard.
    for p in 6..=8 {
        write(&mut logs[0], &m, 1, u64::from(p) * 1_000, p);
    }
    // Met again: laptop 1's first flight is its catalog and the push.
    let mut a = Session::resume(&saved[&0]);
    let _catalog = a.start(&mut logs[0]);
    let pushed = a.resume_push(&mut logs[0]);
    assert_eq!(pushed.len(), 1, "one shard moved since");
    let mut b = Session::resume(&saved[&1]);
    let _ = b.start(&mut logs[1]);
    let added = deliver(&mut b, &mut logs[1], pushed, &m);
    assert_eq!(added, 3, "the push alone carries the three new check-ins");
    // A session with no memory of the peer pushes nothing (the catalogs find the way).
    let mut fresh = Session::new();
    let _ = fresh.start(&mut logs[0]);
    assert!(fresh.resume_push(&mut logs[0]).is_empty());
    // Once a session that pushed has run to quiet, both know where the other stands: its
    // resumption pushes nothing.
    let mut sessions = [Session::resume(&saved[&0]), Session::resume(&saved[&1])];
    let first = [0, 1].map(|i| {
        let mut f = vec![sessions[i].start(&mut logs[i])];
        f.extend(sessions[i].resume_push(&mut logs[i]));
        f
    });
    exchange(&mut logs, &mut sessions, &m, first);
    for i in 0..2 {
        let mut again = Session::resume(&sessions[i].save());
        let _ = again.start(&mut logs[i]);
        assert!(again.resume_push(&mut logs[i]).is_empty(), "laptop {i}");
    }
}

/// A shard the last session never announced (laptop 1's first events at a site, written
/// while apart) goes whole in the resumed session's first flight too; one both sides knew and
/// that did not move does not.
#[test]
fn a_shard_made_while_apart_goes_in_the_first_flight() {
    let m = membership();
    let mut logs = [Log::new(device(1)), Log::new(device(2))];
    write(&mut logs[0], &m, 1, 1_000, 1);
    write(&mut logs[1], &m, 2, 500, 100);
    let sessions = first_session(&mut logs, &m);
    let saved: Vec<BTreeMap<ShardId, Vec<u8>>> = sessions.iter().map(Session::save).collect();

    // Apart: laptop 1 writes its first events at S2 (a shard neither had).
    let shards: Vec<ShardId> = (1..=3)
        .map(|p| write_at(&mut logs[0], &m, 1, "S2", 2_000 + u64::from(p), 200 + p))
        .collect();
    let new_shard = shards[0];

    let mut a = Session::resume(&saved[0]);
    let _catalog = a.start(&mut logs[0]);
    let pushed = a.resume_push(&mut logs[0]);
    let shards: Vec<ShardId> = pushed
        .iter()
        .filter_map(|msg| match msg {
            Message::Shard { shard, .. } => Some(*shard),
            _ => None,
        })
        .collect();
    assert_eq!(
        shards,
        [new_shard],
        "only the new shard, the old one did not move"
    );
    let mut b = Session::resume(&saved[1]);
    let _ = b.start(&mut logs[1]);
    let added = deliver(&mut b, &mut logs[1], pushed, &m);
    assert_eq!(
        added, 3,
        "the push alone carries the new shard's three events"
    );
    // Laptop 2 had nothing new: its resumed push is empty.
    assert!(b.resume_push(&mut logs[1]).is_empty());
}

/// On a live session, a small shard new to it (laptop 1's first event at S2) is pushed with
/// its changes: the peer holds the event after that one message. A large new shard opens
/// with Automerge's summary instead (the peer may hold it already).
#[test]
fn a_small_new_shard_is_pushed_with_its_changes_and_a_large_one_is_summarised() {
    let m = membership();
    let mut logs = [Log::new(device(1)), Log::new(device(2))];
    write(&mut logs[0], &m, 1, 1_000, 1);
    let mut sessions = first_session(&mut logs, &m);

    write_at(&mut logs[0], &m, 1, "S2", 2_000, 200);
    let pushed = sessions[0].push(&mut logs[0]);
    assert_eq!(pushed.len(), 1);
    let added = deliver(&mut sessions[1], &mut logs[1], pushed, &m);
    assert_eq!(added, 1, "the push alone carries the new shard's event");

    // A new shard larger than the bound (a day gained by catching up): the summary first.
    let mut logs = [Log::new(device(1)), Log::new(device(2))];
    write(&mut logs[0], &m, 1, 1_000, 1);
    let mut sessions = first_session(&mut logs, &m);
    let big = kazashi_sync::protocol::FRESH_SHARD_PUSH as u32 + 1;
    for p in 0..big {
        write_at(&mut logs[0], &m, 1, "S2", 2_000 + u64::from(p), 300 + p);
    }
    let pushed = sessions[0].push(&mut logs[0]);
    assert_eq!(pushed.len(), 1);
    let added = deliver(&mut sessions[1], &mut logs[1], pushed, &m);
    assert_eq!(added, 0, "a large new shard opened with its summary");
}
