//! A change overtaken by its successor (a datagram network reorders; a bloom filter's false
//! positive does the same) is dropped on arrival, its dependency not being there yet, and asked
//! for again: the sender must send it again, or both sides answer each other for ever (chaos
//! world 36: a storm of sync messages that never settled).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use common::*;
use kazashi_domain::EventId;
use kazashi_sync::{Log, Membership, Message, Rejection, Session, ShardId, open_as, seal};
use std::collections::VecDeque;

fn check(m: &Membership) -> impl Fn(&EventId, &[u8]) -> Result<(), Rejection> + '_ {
    move |id, env| open_as(env, id, m).map(|_| ())
}

/// Deliver `queue` (to, message) in order until both sides are quiet; the number of messages,
/// or `None` past `cap`.
fn settle(
    logs: &mut [Log; 2],
    sessions: &mut [Session; 2],
    mut queue: VecDeque<(usize, Message)>,
    m: &Membership,
    cap: usize,
) -> Option<usize> {
    let mut n = 0;
    while let Some((to, msg)) = queue.pop_front() {
        n += 1;
        if n > cap {
            return None;
        }
        let out = sessions[to].handle(&mut logs[to], msg, &check(m));
        assert!(out.refused.is_empty(), "refused {:?}", out.refused);
        let wholes = sessions[to].serve_whole(&mut logs[to], &out.send_whole);
        queue.extend(out.replies.into_iter().chain(wholes).map(|r| (1 - to, r)));
    }
    Some(n)
}

#[test]
fn a_change_overtaken_by_its_successor_is_sent_again_and_the_session_settles() {
    let m = membership();
    let dep = m.deployment().id();
    let mut logs = [Log::new(device(1)), Log::new(device(2))];
    let mut sessions = [Session::new(), Session::new()];
    let write = |logs: &mut [Log; 2], at: u64, p: u32| {
        let e = event(1, "S1", at, p);
        let env = seal(&e, dep, &key(1)).unwrap();
        let shard = ShardId::of(&e).unwrap();
        logs[0].insert(shard, &e.id(), &env).unwrap();
        e.id()
    };
    write(&mut logs, 0, 0);
    let opening = VecDeque::from([
        (1, sessions[0].start(&mut logs[0])),
        (0, sessions[1].start(&mut logs[1])),
    ]);
    settle(&mut logs, &mut sessions, opening, &m, 100).expect("the opening settles");
    assert_eq!(logs[1].len(), 1);

    // A change goes out in answer to the peer's ask; a second, pushed after it, arrives first.
    write(&mut logs, 1_000, 1);
    let announce = sessions[0].push(&mut logs[0]);
    assert_eq!(announce.len(), 1);
    let mut carrying_first = Vec::new();
    for msg in announce {
        for ask in sessions[1].handle(&mut logs[1], msg, &check(&m)).replies {
            carrying_first.extend(sessions[0].handle(&mut logs[0], ask, &check(&m)).replies);
        }
    }
    assert_eq!(carrying_first.len(), 1);
    write(&mut logs, 2_000, 2);
    let second = sessions[0].push(&mut logs[0]);
    assert_eq!(second.len(), 1);
    let overtaken: VecDeque<(usize, Message)> = second
        .into_iter()
        .chain(carrying_first)
        .map(|msg| (1, msg))
        .collect();
    let n = settle(&mut logs, &mut sessions, overtaken, &m, 200)
        .expect("the session settles (it used to answer itself for ever)");
    assert!(n <= 12, "{n} messages");
    assert_eq!(logs[1].len(), 3);
    assert_eq!(logs[0].catalog(), logs[1].catalog());
}
