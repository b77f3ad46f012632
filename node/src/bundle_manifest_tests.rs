//! Manifests in USB bundles (issue 23): a bundle carries its author's signed manifest, and the
//! importer adopts a newer one before it checks the bundle's events.

use crate::link::tests::{device, person};
use crate::manifest_spread_tests::{ADMIN, C, Lab, OTHER_ADMIN, T0, signed, v};
use crate::node::{BundleScope, ManifestRefusal, Node, NodeError};
use kazashi_domain::event::IdMethod;
use kazashi_domain::ids::{EventId, OperatorId, PersonRef};
use kazashi_domain::{EventBody, Members};
use kazashi_sync::BundleError;

const DAY: u64 = 86_400_000;

fn check_in(node: &mut Node<crate::ManualClock>, i: usize) -> EventId {
    node.record(
        OperatorId::new("staff01").unwrap(),
        EventBody::ShelterCheckIn {
            household: None,
            members: Members::new(vec![PersonRef::Roster(person(i))]).unwrap(),
            method: IdMethod::Lookup,
        },
    )
    .unwrap()
    .id()
}

/// Version 2 revokes C from T0.
fn v2_revoking_c() -> Vec<u8> {
    signed(2, 1, ADMIN, &[1, 2, C], &[C])
}

#[test]
fn a_bundle_carries_a_newer_manifest_that_revokes_a_device_before_its_events_are_judged() {
    let lab = Lab::new();
    let v1 = v(1, &[1, 2, C]);
    let (mut a, mut b, mut c) = (lab.node(1, &v1), lab.node(2, &v1), lab.node(C, &v1));
    // C writes one event the day before its cut-off, one after (separate shards: days).
    lab.clock.set(T0 - DAY);
    let before = check_in(&mut c, 0);
    lab.clock.set(T0 + 3_600_000);
    let after = check_in(&mut c, 1);
    // A takes both from C's bundle while it still knows only version 1.
    let from_c = c.export_bundle(BundleScope::All).unwrap();
    let r = a.import_bundle(&from_c, "usb").unwrap();
    assert_eq!((r.added, r.manifest_adopted), (2, None));

    // A learns of version 2 (over the LAN, say); B never does, except by A's bundle.
    a.adopt_manifest(&v2_revoking_c()).unwrap();
    let from_a = a.export_bundle(BundleScope::All).unwrap();
    let r = b.import_bundle(&from_a, "usb").unwrap();
    assert_eq!(r.manifest_adopted, Some(2));
    assert_eq!(b.membership().version(), 2);
    assert_eq!(b.membership().revoked_from(&device(C)), Some(T0));
    assert_eq!(
        b.store().manifest().unwrap().as_deref(),
        Some(&v2_revoking_c()[..])
    );
    // A, which took both under version 1, counts only the one before the cut-off now.
    assert!(a.state().contains(&before) && !a.state().contains(&after));
    assert!(a.holds(&after));
    // B takes both (the same log as A's) and, like A, counts only the one before the cut-off:
    // revocation is a verdict of the fold, not of the door.
    assert_eq!(r.added_ids.len(), 2);
    assert!(r.added_ids.contains(&before) && r.added_ids.contains(&after));
    assert_eq!((r.withheld, r.refused_shards), (1, 0));
    assert!(b.state().contains(&before) && !b.state().contains(&after));
    assert!(b.holds(&after));
    assert_eq!(a.state_digest(), b.state_digest());
    assert_eq!(a.fold_digest(), b.fold_digest());

    // C, revoked, is no longer a recipient of what A or B writes.
    let from_b = b.export_bundle(BundleScope::All).unwrap();
    for file in [&from_a, &from_b] {
        assert!(matches!(
            c.import_bundle(file, "usb"),
            Err(NodeError::Bundle(BundleError::NotForThisLaptop))
        ));
    }
    // And a bundle C makes after its cut-off brings nothing to a laptop that knows.
    let late = c.export_bundle(BundleScope::All).unwrap();
    assert!(matches!(
        b.import_bundle(&late, "usb"),
        Err(NodeError::Bundle(BundleError::RevokedAuthor(_)))
    ));
}

#[test]
fn an_older_manifest_in_a_bundle_is_not_adopted_and_the_bundle_still_imports() {
    let lab = Lab::new();
    let v1 = v(1, &[1, 2]);
    let (mut a, mut b) = (lab.node(1, &v1), lab.node(2, &v1));
    check_in(&mut a, 0);
    let from_a = a.export_bundle(BundleScope::All).unwrap();
    b.adopt_manifest(&v(2, &[1, 2])).unwrap();
    let r = b.import_bundle(&from_a, "usb").unwrap();
    assert_eq!((r.added, r.manifest_adopted), (1, None));
    assert_eq!(b.membership().version(), 2);
    // The same version: nothing to adopt either.
    a.adopt_manifest(&v(2, &[1, 2])).unwrap();
    check_in(&mut a, 1);
    let r = b
        .import_bundle(&a.export_bundle(BundleScope::SinceLast).unwrap(), "usb")
        .unwrap();
    assert_eq!((r.added, r.manifest_adopted), (1, None));
}

#[test]
fn a_bundle_whose_manifest_loses_a_same_version_conflict_imports_under_the_winner() {
    let lab = Lab::new();
    let v1 = v(1, &[1, 2]);
    // Two version-2 manifests; the lower digest wins (Membership::precedence). Which of the
    // two that is depends on the encoding, so the fixture orders them by digest.
    let digest = |m: &[u8]| kazashi_sync::SignedManifest::decode(m).unwrap().digest();
    let (x, y) = (v(2, &[1, 2]), v(2, &[1, 2, 6]));
    let (win, lose) = if digest(&x) < digest(&y) {
        (x, y)
    } else {
        (y, x)
    };
    assert!(digest(&win) < digest(&lose), "the fixture's winner");
    let mut b = lab.node(2, &v1);
    b.adopt_manifest(&win).unwrap();
    // A holds the losing version 2 (another administrator's folder signed it) and writes.
    let other = Lab::new();
    let mut a = other.node(1, &v1);
    let e = check_in(&mut a, 0);
    let members = kazashi_sync::SignedManifest::decode(&lose).unwrap();
    a.replace_membership(members, &lose).unwrap();
    let file = a.export_bundle(BundleScope::All).unwrap();
    let r = b.import_bundle(&file, "usb").unwrap();
    // B keeps the winner and takes A's event, checked under it; the loser is kept aside.
    assert_eq!((r.manifest_adopted, r.added_ids), (None, vec![e]));
    assert_eq!(b.store().manifest().unwrap().as_deref(), Some(&win[..]));
    let q = b.store().quarantined().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].code, "conflict-manifest");
    // The other way round: a laptop holding the loser adopts the winner from a bundle.
    let (lab_f, lab_g) = (Lab::new(), Lab::new());
    let mut f = lab_f.node(2, &v1);
    f.adopt_manifest(&lose).unwrap();
    let mut g = lab_g.node(1, &v1);
    g.adopt_manifest(&win).unwrap();
    check_in(&mut g, 1);
    let r = f
        .import_bundle(&g.export_bundle(BundleScope::All).unwrap(), "usb")
        .unwrap();
    assert_eq!((r.manifest_adopted, r.added), (Some(2), 1));
    assert_eq!(f.store().manifest().unwrap().as_deref(), Some(&win[..]));
}

#[test]
fn a_bundle_whose_manifest_is_another_admins_is_refused_whole() {
    let lab = Lab::new();
    let v1 = v(1, &[1, 2]);
    let mut b = lab.node(2, &v1);
    b.adopt_manifest(&v(2, &[1, 2])).unwrap();
    let cases = [(
        signed(3, 1, OTHER_ADMIN, &[1, 2], &[]),
        ManifestRefusal::OtherAdmin,
    )];
    for (n, (theirs, why)) in cases.into_iter().enumerate() {
        // A laptop of the same deployment whose manifest B must not take.
        let other = Lab::new();
        other.clock.set(T0);
        let mut a = other.node(1, &v1);
        check_in(&mut a, n);
        // Put in force directly, as if another administrator had installed it at A.
        let members = kazashi_sync::SignedManifest::decode(&theirs).unwrap();
        a.replace_membership(members, &theirs).unwrap();
        let file = a.export_bundle(BundleScope::All).unwrap();
        let digest = b.state_digest();
        match b.import_bundle(&file, "usb") {
            Err(NodeError::BundleManifestRefused(r)) => assert_eq!(r, why),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.state_digest(), digest);
        assert_eq!(b.membership().version(), 2);
        assert_eq!(
            b.store().manifest().unwrap().as_deref(),
            Some(&v(2, &[1, 2])[..])
        );
    }
}
