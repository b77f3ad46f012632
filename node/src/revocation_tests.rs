//! Revocation and the operation's close are verdicts of the fold, never of the door
//! (docs/design/revocation-fold.md, issue 28): a revoked laptop's events stamped at or after
//! its cut-off are held, synced and bundled by every laptop, and folded by none that holds the
//! revoking manifest — whatever the order in which the events and the manifest arrive.

use crate::clock::ManualClock;
use crate::link::tests::{device, person};
use crate::manifest_spread_tests::{ADMIN, Lab, T0, signed, v};
use crate::node::roster_gap_tests::sync;
use crate::node::{BundleScope, Node};
use kazashi_domain::event::IdMethod;
use kazashi_domain::ids::{OperatorId, PersonRef};
use kazashi_domain::{Event, EventBody, Members};
use kazashi_sync::SignedManifest;
use proptest::prelude::*;
use std::collections::BTreeSet;

/// The laptop that is lost and revoked (from T0) in version 2.
const D: u8 = 4;
const ALL: &[u8] = &[1, 2, 3, D];

/// Version 2: laptop D revoked from T0.
fn v2() -> Vec<u8> {
    signed(2, 1, ADMIN, ALL, &[D])
}

fn write(node: &mut Node<ManualClock>, i: usize) -> Event {
    node.record(
        OperatorId::new("staff01").unwrap(),
        EventBody::ShelterCheckIn {
            household: None,
            members: Members::new(vec![PersonRef::Roster(person(i % 8))]).unwrap(),
            method: IdMethod::Lookup,
        },
    )
    .unwrap()
}

fn refused_changes(node: &Node<ManualClock>) -> usize {
    node.store()
        .quarantined()
        .unwrap()
        .iter()
        .filter(|q| q.code == "refused-change")
        .count()
}

fn alert_ids(node: &mut Node<ManualClock>) -> Vec<kazashi_domain::ids::AlertId> {
    let mut ids: Vec<_> = node.alerts().into_iter().map(|a| a.id).collect();
    ids.sort();
    ids
}

/// The world of the bug: D writes `e` ahead of its cut-off while still trusted; A takes it
/// under v1; C learns of the revocation first, then meets A.
#[test]
fn a_laptop_that_learned_of_the_revocation_first_holds_the_event_and_every_later_one() {
    let lab = Lab::new();
    let v1 = v(1, ALL);
    let (mut a, mut c, mut d) = (lab.node(1, &v1), lab.node(3, &v1), lab.node(D, &v1));
    write(&mut a, 1);
    lab.clock.set(T0 + 1_000);
    let e = write(&mut d, 2);
    assert_eq!(sync(&mut d, &mut a).added, vec![e.id()]);
    assert!(a.state().contains(&e.id()));

    c.adopt_manifest(&v2()).unwrap();
    let took = sync(&mut a, &mut c);
    // C holds e (the same log as A) but does not count it; nothing is refused.
    assert_eq!(took.refused, 0);
    assert!(took.added.contains(&e.id()));
    assert!(c.holds(&e.id()) && !c.state().contains(&e.id()));
    assert_eq!(c.withheld_counts().revoked, 1);
    assert_eq!(a.state_digest(), c.state_digest());
    assert_ne!(a.fold_digest(), c.fold_digest());
    // A learns of it too: the same verdict.
    a.adopt_manifest(&v2()).unwrap();
    assert!(a.holds(&e.id()) && !a.state().contains(&e.id()));
    assert_eq!(a.fold_digest(), c.fold_digest());
    assert_eq!(alert_ids(&mut a), alert_ids(&mut c));

    // A writes on in the same site-day: its change depends on e's. C takes it (before, C
    // refused e's message and so every later change of the day, by every author).
    lab.clock.set(T0 + 2_000);
    let x = write(&mut a, 3);
    let took = sync(&mut a, &mut c);
    assert_eq!((took.added.clone(), took.refused), (vec![x.id()], 0));
    assert!(c.state().contains(&x.id()));
    assert_eq!(a.state_digest(), c.state_digest());
    assert_eq!(a.fold_digest(), c.fold_digest());
    assert_eq!(refused_changes(&a) + refused_changes(&c), 0);
}

/// Adopting the revocation refolds (e leaves the counts, the digest cache and the detector are
/// renewed); a manifest of the same version without it that wins by digest folds e again; a
/// cold start under the revoking manifest keeps e withheld.
#[test]
fn adoption_refolds_a_winning_manifest_readmits_and_a_cold_start_keeps_the_verdict() {
    let lab = Lab::new();
    let v1 = v(1, ALL);
    let (mut a, mut d) = (lab.node(1, &v1), lab.node(D, &v1));
    write(&mut a, 1);
    lab.clock.set(T0 + 1_000);
    let e = write(&mut d, 2);
    sync(&mut d, &mut a);
    let (held, log) = (a.state().len(), a.state_digest());
    let before = (a.fold_digest(), alert_ids(&mut a));

    a.adopt_manifest(&v2()).unwrap();
    assert_eq!(a.state().len(), held - 1);
    assert!(a.holds(&e.id()) && !a.state().contains(&e.id()));
    assert_eq!(a.state_digest(), log, "the same log");
    assert_ne!(a.fold_digest(), before.0, "the fold digest is taken again");

    // The same version without the revocation, winning by the lower digest.
    let revoking = SignedManifest::decode(&v2()).unwrap().digest();
    let lifting = (5u8..60)
        .map(|extra| {
            let mut devices = ALL.to_vec();
            devices.push(extra);
            signed(2, 1, ADMIN, &devices, &[])
        })
        .find(|m| SignedManifest::decode(m).unwrap().digest() < revoking)
        .unwrap();
    a.adopt_manifest(&lifting).unwrap();
    assert!(a.state().contains(&e.id()));
    assert_eq!(a.withheld_counts().total(), 0);
    assert_eq!((a.fold_digest(), alert_ids(&mut a)), before);
    assert_eq!(a.state_digest(), log);

    // Back under a revocation (version 3), then the cold start: still withheld.
    a.adopt_manifest(&signed(3, 1, ADMIN, ALL, &[D])).unwrap();
    let fold = a.fold_digest();
    drop(a);
    let mut a = lab.reopen(1);
    assert!(a.holds(&e.id()) && !a.state().contains(&e.id()));
    assert_eq!(a.state().len(), held - 1);
    assert_eq!((a.fold_digest(), a.state_digest()), (fold, log));
}

/// The revoked laptop itself: its own withheld events still set its clock on a restart, so it
/// never stamps at or before them (even with its wall clock set back).
#[test]
fn a_revoked_laptops_own_withheld_events_still_set_its_clock() {
    let lab = Lab::new();
    let mut d = lab.node(D, &v(1, ALL));
    lab.clock.set(T0 + 60_000);
    let e = write(&mut d, 2);
    d.adopt_manifest(&v2()).unwrap();
    assert!(d.holds(&e.id()) && !d.state().contains(&e.id()));
    drop(d);
    lab.clock.set(T0);
    let d = lab.reopen(D);
    assert!(d.station().last_stamp() >= e.at());
}

/// A bundle from an honest laptop carrying D's post-cut-off envelope: added, held, withheld,
/// no shard refused.
#[test]
fn a_bundle_carrying_a_withheld_envelope_is_taken_whole() {
    let lab = Lab::new();
    let v1 = v(1, ALL);
    let (mut a, mut c, mut d) = (lab.node(1, &v1), lab.node(3, &v1), lab.node(D, &v1));
    lab.clock.set(T0 + 1_000);
    let e = write(&mut d, 2);
    sync(&mut d, &mut a);
    let x = write(&mut a, 3);
    c.adopt_manifest(&v2()).unwrap();
    let r = c
        .import_bundle(&a.export_bundle(BundleScope::All).unwrap(), "usb")
        .unwrap();
    assert_eq!((r.added, r.withheld, r.refused_shards), (2, 1, 0));
    assert!(c.holds(&e.id()) && !c.state().contains(&e.id()));
    assert!(c.state().contains(&x.id()));
    assert_eq!(c.state_digest(), a.state_digest());
    assert_eq!(refused_changes(&c), 0);
}

/// A thief with D feeds a stale laptop S events stamped after the cut-off; S writes on top of
/// them and meets U, which holds the revocation. U holds everything, folds none of the thief's
/// events, takes all of S's, and refuses nothing (so the mesh strikes no honest relay: a
/// strike is a refused message).
#[test]
fn a_thief_through_a_stale_laptop_silences_nothing() {
    let lab = Lab::new();
    let v1 = v(1, ALL);
    let (mut s, mut u, mut d) = (lab.node(1, &v1), lab.node(2, &v1), lab.node(D, &v1));
    u.adopt_manifest(&v2()).unwrap();
    lab.clock.set(T0 + 30_000);
    let stolen: Vec<Event> = (10..15).map(|i| write(&mut d, i)).collect();
    sync(&mut d, &mut s);
    // U meets S holding only the thief's events: held, not folded, and its clock not moved by
    // them (a thief's stamps are free).
    let took = sync(&mut s, &mut u);
    assert_eq!((took.added.len(), took.refused), (stolen.len(), 0));
    assert!(u.station().last_stamp() < stolen[0].at());
    // S writes on top of them (its changes depend on the thief's), and meets U again.
    let honest: Vec<Event> = (20..23).map(|i| write(&mut s, i)).collect();
    let took = sync(&mut s, &mut u);
    assert_eq!((took.added.len(), took.refused), (honest.len(), 0));
    assert!(
        stolen
            .iter()
            .all(|e| u.holds(&e.id()) && !u.state().contains(&e.id()))
    );
    assert!(honest.iter().all(|e| u.state().contains(&e.id())));
    assert_eq!(u.withheld_counts().revoked, stolen.len());
    assert_eq!(u.state_digest(), s.state_digest());
    assert_eq!(refused_changes(&u) + refused_changes(&s), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Three laptops, D's events written ahead of its cut-off, random syncs between random
    /// pairs and the revocation handed to the laptops at random steps: once everyone has synced
    /// with everyone and holds v2, every laptop holds the same events, folds the same ones and
    /// shows the same alerts.
    #[test]
    fn every_delivery_order_ends_with_the_same_verdict(
        steps in proptest::collection::vec((0usize..4, 0usize..4, 0usize..4), 1..14),
        adopt_at in proptest::collection::vec(0usize..14, 3),
    ) {
        let lab = Lab::new();
        let v1 = v(1, ALL);
        let mut nodes: Vec<Node<ManualClock>> =
            [1u8, 2, 3, D].iter().map(|&n| lab.node(n, &v1)).collect();
        let mut written = 0usize;
        for (k, &(w, from, to)) in steps.iter().enumerate() {
            lab.clock.set(T0 + 1_000 * (k as u64 + 1));
            for (n, &at) in adopt_at.iter().enumerate() {
                if at == k {
                    nodes[n].adopt_manifest(&v2()).unwrap();
                }
            }
            // D keeps writing only while it has not learned it is revoked (it never does).
            if nodes[w].write_block().is_none() {
                written += 1;
                write(&mut nodes[w], written);
            }
            if from != to {
                let (lo, hi) = (from.min(to), from.max(to));
                let (left, right) = nodes.split_at_mut(hi);
                let took = sync(&mut left[lo], &mut right[0]);
                prop_assert_eq!(took.refused, 0);
            }
        }
        for n in nodes.iter_mut().take(3) {
            let _ = n.adopt_manifest(&v2());
        }
        for _ in 0..2 {
            for i in 0..4 {
                for j in (i + 1)..4 {
                    let (left, right) = nodes.split_at_mut(j);
                    prop_assert_eq!(sync(&mut left[i], &mut right[0]).refused, 0);
                }
            }
        }
        // D never learned of its revocation: the three others are compared.
        nodes.truncate(3);
        let logs: BTreeSet<[u8; 32]> = nodes.iter_mut().map(|n| n.state_digest()).collect();
        let folds: BTreeSet<[u8; 32]> = nodes.iter_mut().map(|n| n.fold_digest()).collect();
        let alerts: BTreeSet<Vec<_>> = nodes.iter_mut().map(alert_ids).collect();
        prop_assert_eq!((logs.len(), folds.len(), alerts.len()), (1, 1, 1));
        for n in &nodes {
            prop_assert!(n.state().events_in_order().iter().all(|e| e.device() != device(D)));
        }
    }
}
