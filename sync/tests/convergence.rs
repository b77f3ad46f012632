//! Replicas exchanging sync messages in random order, with duplicates and drops, converge —
//! once every pair has had one clean exchange — to identical event sets and identical folded
//! state.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use common::*;
use kazashi_domain::{EventId, State};
use kazashi_sync::{Log, Membership, Message, Rejection, Session, ShardId, open_as, seal};
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};

fn check(m: &Membership) -> impl Fn(&EventId, &[u8]) -> Result<(), Rejection> + '_ {
    move |id, env| open_as(env, id, m).map(|_| ())
}

/// Every (id, envelope) of a log.
fn contents(log: &Log) -> BTreeMap<EventId, Vec<u8>> {
    log.shards().flat_map(|s| s.envelopes()).collect()
}

fn fold(log: &Log, m: &Membership) -> State {
    State::from_events(
        contents(log)
            .iter()
            .map(|(id, env)| open_as(env, id, m).unwrap()),
    )
}

/// One session between replicas `a` and `b`. `faults` drives the schedule: which queued
/// message goes next, and whether it is dropped or delivered twice. With no faults, runs
/// until both sides are quiet.
/// Sessions resume from what the last one between the same pair left (Automerge's saved sync
/// states), as laptops that meet again do — even when that session lost messages.
type Memory = BTreeMap<(usize, usize), BTreeMap<ShardId, Vec<u8>>>;

fn session(
    logs: &mut [Log],
    a: usize,
    b: usize,
    faults: &[u8],
    m: &Membership,
    memory: &mut Memory,
) {
    let resume = |k| memory.get(&k).map(Session::resume).unwrap_or_default();
    let (mut sa, mut sb) = (resume((a, b)), resume((b, a)));
    // (to, message)
    let mut queue: VecDeque<(usize, Message)> = VecDeque::new();
    queue.push_back((b, sa.start(&mut logs[a])));
    queue.push_back((a, sb.start(&mut logs[b])));
    // What each wrote since their last session goes at once, as the link sends it.
    queue.extend(sa.resume_push(&mut logs[a]).into_iter().map(|m| (b, m)));
    queue.extend(sb.resume_push(&mut logs[b]).into_iter().map(|m| (a, m)));
    let mut f = faults.iter().copied();
    let mut steps = 0;
    while steps < 400 {
        steps += 1;
        let pick = match f.next() {
            Some(x) if !queue.is_empty() => usize::from(x) % queue.len(),
            _ => 0,
        };
        let Some((to, msg)) = queue.remove(pick) else {
            break;
        };
        let fault = f.next().unwrap_or(0);
        if fault % 7 == 1 {
            continue; // dropped
        }
        let deliveries = if fault % 7 == 2 { 2 } else { 1 };
        for _ in 0..deliveries {
            let (session, log, from) = if to == a {
                (&mut sa, &mut logs[a], b)
            } else {
                (&mut sb, &mut logs[b], a)
            };
            let out = session.handle(log, msg.clone(), &check(m));
            assert!(
                out.refused.is_empty(),
                "honest replicas refused {:?}",
                out.refused
            );
            queue.extend(out.replies.into_iter().map(|r| (from, r)));
            let wholes = session.serve_whole(log, &out.send_whole);
            queue.extend(wholes.into_iter().map(|r| (from, r)));
        }
    }
    memory.insert((a, b), sa.save());
    memory.insert((b, a), sb.save());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge(
        writes in proptest::collection::vec((0usize..3, 0u8..2, 0u64..3 * 86_400_000, 0u32..6), 1..25),
        shared in proptest::collection::vec((0usize..25, 0usize..3), 0..4),
        sessions in proptest::collection::vec((0usize..3, 0usize..3, proptest::collection::vec(any::<u8>(), 0..40)), 0..8),
    ) {
        let m = membership();
        let dep = m.deployment().id();
        let mut logs: Vec<Log> = (0..3).map(|r| Log::new(device(r as u8 + 1))).collect();
        let mut written = Vec::new();
        for (r, s, at, p) in &writes {
            // Station 3 may write only for S2.
            let site = if *r == 2 || *s == 1 { "S2" } else { "S1" };
            let e = event(*r as u8 + 1, site, *at, *p);
            let env = seal(&e, dep, &key(*r as u8 + 1)).unwrap();
            logs[*r].insert(ShardId::of(&e).unwrap(), &e.id(), &env).unwrap();
            written.push((e, env));
        }
        // Some events also reach another replica by another path (a USB bundle): the same
        // envelope is put there independently.
        for (i, r) in &shared {
            if let Some((e, env)) = written.get(*i) {
                logs[*r].insert(ShardId::of(e).unwrap(), &e.id(), env).unwrap();
            }
        }
        // Faulty sessions: reordered, dropped, duplicated messages.
        let mut memory = Memory::new();
        for (a, b, faults) in &sessions {
            if a != b {
                session(&mut logs, *a, *b, faults, &m, &mut memory);
            }
        }
        // One clean exchange per pair, twice round, heals everything.
        for _ in 0..2 {
            for (a, b) in [(0, 1), (1, 2), (0, 2)] {
                session(&mut logs, a, b, &[], &m, &mut memory);
            }
        }
        let expected: BTreeMap<EventId, Vec<u8>> =
            written.iter().map(|(e, env)| (e.id(), env.clone())).collect();
        for log in &logs {
            prop_assert_eq!(&contents(log), &expected);
        }
        let s0 = fold(&logs[0], &m);
        prop_assert_eq!(&fold(&logs[1], &m), &s0);
        prop_assert_eq!(&fold(&logs[2], &m), &s0);
        prop_assert_eq!(s0.len(), expected.len());
    }
}
