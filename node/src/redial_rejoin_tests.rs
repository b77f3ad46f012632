use super::*;

/// A laptop dialling peers 1..=n, each greeted once at 0 and lost at `lost_at`.
fn lost_all(n: u32, lost_at: u64) -> Rejoin<u32> {
    let mut r = Rejoin::new(7);
    for k in 1..=n {
        r.dials(k);
        assert!(!r.greeted(k, 0), "a first meeting is no evidence");
    }
    for k in 1..=n {
        r.ended(k, lost_at);
    }
    r
}

/// Every attempt handed out between `from` and `to` (stepping 1 ms), finished at once.
fn handed_out(r: &mut Rejoin<u32>, from: u64, to: u64) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    for t in from..to {
        while let Some(k) = r.next(t) {
            out.push((t, k));
            r.finished();
        }
    }
    out
}

/// Every attempt due at `now`, each finished as it is handed out.
fn drain_at(r: &mut Rejoin<u32>, now: u64) -> Vec<u32> {
    let mut got = Vec::new();
    while let Some(k) = r.next(now) {
        got.push(k);
        r.finished();
    }
    got
}

#[test]
fn a_forming_mesh_is_never_probed_nor_kicked() {
    let mut r: Rejoin<u32> = Rejoin::new(1);
    for k in 1..=50 {
        r.dials(k);
    }
    // Connections that end before their greeting (turned away as busy) say nothing here;
    // greetings of peers met for the first time are no evidence.
    for k in 1..=50 {
        assert!(!r.greeted(k, u64::from(k)));
    }
    assert_eq!(r.wake(), None);
    assert!(handed_out(&mut r, 0, 60_000).is_empty());
}

#[test]
fn one_probe_per_gap_whatever_the_number_of_peers_lost() {
    for n in [1u32, 5, 50] {
        let mut r = lost_all(n, 1_000);
        let got = handed_out(&mut r, 1_000, 61_000);
        // 60 s at the mean gap: about 60 s / gap probes, never two in one gap's lower bound.
        let expected = 60_000 / PROBE_GAP_MS as usize;
        assert!(
            got.len().abs_diff(expected) <= expected / 6,
            "{n} peers lost: {} probes in a minute",
            got.len()
        );
        for w in got.windows(2) {
            assert!(w[1].0 - w[0].0 >= PROBE_GAP_MS / 2, "{w:?}");
        }
        // In turn: every lost peer is probed.
        let seen: std::collections::BTreeSet<u32> = got.iter().map(|(_, k)| *k).collect();
        assert_eq!(seen.len(), n as usize);
    }
}

#[test]
fn a_reconnection_kicks_every_other_lost_peer_once() {
    let mut r = lost_all(20, 1_000);
    const { assert!(1_000 + SETTLE_MS <= 5_000) };
    // Peer 3 is greeted again: evidence the network is back.
    assert!(r.greeted(3, 5_000));
    assert_eq!(r.wake(), Some(0));
    let kicked = {
        let mut v = Vec::new();
        while let Some(k) = r.next(5_000) {
            v.push(k);
        }
        v
    };
    // At most the cap in flight at once.
    assert_eq!(kicked.len(), MAX_HANDSHAKES);
    assert!(!kicked.contains(&3));
    for _ in 0..MAX_HANDSHAKES {
        r.finished();
    }
    let mut rest = Vec::new();
    while let Some(k) = r.next(5_000) {
        rest.push(k);
        r.finished();
        if rest.len() > 100 {
            break;
        }
    }
    // Every other lost peer once, and the one probe that was due (the probes started at
    // the loss); then nothing until the next probe.
    let mut all: Vec<u32> = kicked.into_iter().chain(rest).collect();
    assert_eq!(all.len(), 20);
    all.sort_unstable();
    all.dedup();
    let want: Vec<u32> = (1..=20).filter(|k| *k != 3).collect();
    assert_eq!(all, want);
    assert!(r.wake().is_some_and(|w| w > 5_000));
}

#[test]
fn kicks_skip_peers_back_meanwhile_and_peers_not_dialled() {
    let mut r = lost_all(4, 0);
    let t = SETTLE_MS;
    // Peer 9 dials us (no loop here): greeted, lost, greeted again — evidence.
    assert!(!r.greeted(9, 0));
    r.ended(9, 10);
    assert!(!r.is_candidate(&9));
    assert!(r.greeted(9, t));
    // Peer 2 came back on its own before its kick was handed out.
    assert!(r.greeted(2, t));
    let mut got = drain_at(&mut r, t);
    // (And perhaps a probe that was due, at a lost peer too.)
    got.sort_unstable();
    got.dedup();
    assert_eq!(got, vec![1, 3, 4]);
}

#[test]
fn an_announcement_kicks_its_peer_and_the_other_lost_ones() {
    let mut r = lost_all(3, 0);
    r.dials(8);
    r.announced(8, SETTLE_MS);
    let got = drain_at(&mut r, SETTLE_MS);
    // (And perhaps a probe that was due.)
    assert_eq!(got.get(..4), Some(&[8, 1, 2, 3][..]));
}

#[test]
fn nothing_beyond_the_cap_is_in_flight() {
    let mut r = lost_all(3, 0).with_cap(2);
    let mut t = 0;
    let mut out = 0;
    while t < 10_000 {
        if r.next(t).is_some() {
            out += 1;
        }
        t += 10;
    }
    // Nothing finished: two handed out, then none.
    assert_eq!(out, 2);
    r.finished();
    assert!(r.next(t).is_some());
}

#[test]
fn skipping_to_a_heal_finds_the_first_probe_at_a_reachable_peer() {
    let mut skipped = lost_all(6, 1_000);
    let heal = 1_800_000;
    let (failed, at) = skipped.skip_to(heal, |k| *k == 6);
    let (at, k) = at.expect("a reachable candidate");
    assert_eq!(k, 6);
    assert!(at >= heal);
    // Within one turn over the six candidates of the heal.
    assert!(at - heal <= 6 * PROBE_GAP_MS * 3 / 2, "{}", at - heal);
    // About one probe a gap meanwhile.
    let expected = (heal - 1_000) / PROBE_GAP_MS;
    assert!(
        failed.abs_diff(expected) < expected / 10,
        "{failed} vs {expected}"
    );
    // Nothing reachable: no probe is scheduled, the failed ones are still counted.
    let mut none = lost_all(2, 0);
    let (failed, at) = none.skip_to(60_000, |_| false);
    assert!(at.is_none());
    assert!(failed > 100);
}

#[test]
fn the_same_seed_gives_the_same_probes() {
    let a = handed_out(&mut lost_all(5, 0), 0, 20_000);
    let b = handed_out(&mut lost_all(5, 0), 0, 20_000);
    assert_eq!(a, b);
    let mut other = Rejoin::new(8);
    for k in 1..=5 {
        other.dials(k);
        other.greeted(k, 0);
        other.ended(k, 0);
    }
    assert_ne!(a, handed_out(&mut other, 0, 20_000));
}

#[test]
fn a_restart_forgets_the_meetings() {
    let mut r = lost_all(3, 0);
    r.restart();
    assert_eq!(r.candidates().count(), 0);
    assert_eq!(r.wake(), None);
    // The loops are kept: once met again and lost, they are probed.
    assert!(!r.greeted(2, 10));
    r.ended(2, 20);
    assert!(r.is_candidate(&2));
}

#[test]
fn an_opening_kicks_once_and_its_greeting_does_not_again() {
    let mut r = lost_all(5, 0);
    // A stranger, or a peer never greeted, opening a connection is no evidence.
    assert!(!r.opened(42, 10));
    r.dials(6);
    assert!(!r.opened(6, 10));
    // Peer 2 is back: its connection opened.
    let t = SETTLE_MS;
    assert!(r.opened(2, t));
    let mut got = drain_at(&mut r, t);
    got.sort_unstable();
    got.dedup();
    assert_eq!(got, vec![1, 3, 4, 5]);
    // Its greeting kicks nobody again, nor does a second opening meanwhile.
    assert!(!r.opened(2, t + 5));
    assert!(!r.greeted(2, t + 10));
    // Nothing owed at once (a probe may come, at its time).
    assert_ne!(r.wake(), Some(0));
    // A connection that opened and was never greeted leaves the peer lost: a later opening is
    // evidence again.
    r.ended(2, t + 20);
    assert!(r.opened(2, t + 30));
    r.not_greeted(2);
    assert!(r.opened(2, t + 40));
}

#[test]
fn a_fresh_loss_is_left_to_its_loop() {
    let mut r = lost_all(3, 0);
    r.dials(4);
    r.greeted(4, 0);
    r.ended(4, 1_000);
    // Peer 1 back at 2 s: peers 2 and 3 (lost at 0) are kicked, peer 4 (lost 1 s ago) is not.
    assert!(r.opened(1, 2_000));
    let got = drain_at(&mut r, 2_000);
    // (At 0 s, lost 2 s ago: not yet settled either.)
    assert!(got.is_empty() || !got.contains(&4), "{got:?}");
    let mut r = lost_all(3, 0);
    r.dials(4);
    r.greeted(4, 0);
    r.ended(4, 4_000);
    assert!(r.opened(1, 5_000));
    let kicked = drain_at(&mut r, 5_000);
    assert!(kicked.contains(&2) && kicked.contains(&3), "{kicked:?}");
    assert!(!kicked.contains(&4), "{kicked:?}");
}

#[test]
fn a_laptop_still_connected_to_many_probes_less_often() {
    let count = |connected: u32| {
        let mut r = lost_all(2, 0);
        for k in 100..100 + connected {
            r.greeted(k, 0);
        }
        handed_out(&mut r, 0, 60_000).len()
    };
    let alone = count(0);
    let with_99 = count(99);
    // Alone: about one a probe gap; connected to 99 others: a hundred times fewer.
    assert!(alone > 400, "{alone}");
    assert!(with_99 <= 12, "{with_99}");
}

#[test]
fn news_of_a_lost_peer_kicks_it_once_per_loss_and_only_once_settled() {
    // Probes far apart, so that only kicks are handed out here.
    let mut r = Rejoin::new(7).with_gap(10_000_000);
    for k in 1..=3u32 {
        r.dials(k);
        r.greeted(k, 0);
    }
    for k in 1..=3 {
        r.ended(k, 1_000);
    }
    // Too fresh a loss: its loop redials it.
    assert!(!r.heard_from(2, 1_000 + SETTLE_MS - 1));
    assert!(drain_at(&mut r, 1_000 + SETTLE_MS - 1).is_empty());
    let t = 1_000 + SETTLE_MS;
    assert!(r.heard_from(2, t));
    assert_eq!(r.wake(), Some(0));
    assert_eq!(drain_at(&mut r, t), [2], "only the peer heard of");
    // More of its events: no second attempt for the same loss.
    assert!(!r.heard_from(2, t + 10));
    assert!(drain_at(&mut r, t + 10).is_empty());
    // A peer not dialled, never met, or connected: nothing.
    assert!(!r.heard_from(9, t));
    let mut fresh: Rejoin<u32> = Rejoin::new(3);
    fresh.dials(1);
    assert!(!fresh.heard_from(1, 60_000), "never met");
    r.greeted(3, t + 20);
    drain_at(&mut r, t + 20);
    assert!(!r.heard_from(3, t + 30), "connected again");
    // Met again, lost again: news kicks it again, once settled.
    r.greeted(2, t + 40);
    drain_at(&mut r, t + 40);
    r.ended(2, t + 50);
    assert!(!r.heard_from(2, t + 60));
    assert!(r.heard_from(2, t + 50 + SETTLE_MS));
    assert_eq!(drain_at(&mut r, t + 50 + SETTLE_MS), [2]);
}
