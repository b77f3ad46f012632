//! Only a manager lifts the DV block (issue 24, requirement 2), on a real store: a reception
//! operator's lift is refused and changes nothing; a lead's is written and clears the block.
//!
//! A DV block lift from another laptop is honoured only if the manifest lists its operator as
//! a manager at its site (`crate::managers`), on two real stores: lifts by a reception operator,
//! by a lead enrolled on one laptop alone and by a manager of another site reach the other
//! laptop (signed by an enrolled device, as a modified or older laptop could write them) and
//! are kept but ignored by both; the manifest's manager's lift clears the block on both; a
//! restart judges the same; a newer manifest naming the reception operator a manager makes
//! their earlier lift count on both.

use crate::clock::{Clock, ManualClock};
use crate::link::tests::{key, roster, site};
use crate::node::{BundleScope, Node};
use crate::staff::Role;
use crate::store::KdfParams;
use kazashi_domain::event::{Disclosure, EventBody, HouseholdCard, StayingPlace};
use kazashi_domain::hlc::Timestamp;
use kazashi_domain::ids::RosterHash;
use kazashi_domain::ids::{HouseholdRef, OperatorId, PersonRef, SiteId};
use kazashi_domain::text::{Label, Note};
use kazashi_domain::{
    Deployment, DeploymentId, DeploymentKind, Event, EventContent, ShelterType, Site, SiteKind,
};
use kazashi_sync::manifest::{StaffEntry, StaffRole};
use kazashi_sync::{DeviceEntry, DeviceKey, Manifest, Role as DeviceRole, SignedManifest, seal};
use std::sync::Arc;

/// 2026-09-01 09:00 JST.
pub(crate) const T0: u64 = 1_788_220_800_000;

/// Sites S1 and S9 (a shelter each).
pub(crate) fn deployment(roster: RosterHash) -> Deployment {
    let shelter = |id: &str| Site {
        id: SiteId::new(id).unwrap(),
        name: Label::new(&format!("{id} 避難所")).unwrap(),
        kind: SiteKind::Shelter {
            shelter_type: ShelterType::Designated,
            capacity: 100,
        },
    };
    Deployment::new(
        DeploymentId([1; 16]),
        Label::new("訓練").unwrap(),
        DeploymentKind::ShelterOperation,
        roster,
        vec![shelter("S1"), shelter("S9")],
    )
    .unwrap()
}

pub(crate) fn admin() -> DeviceKey {
    DeviceKey::from_seed([100; 32])
}

pub(crate) fn staff(id: &str, role: StaffRole, sites: Vec<SiteId>) -> StaffEntry {
    StaffEntry {
        id: OperatorId::new(id).unwrap(),
        name: Label::new(id).unwrap(),
        role,
        pin_hash: None,
        card: None,
        sites,
    }
}

/// Devices 1 and 2 (at S1 in these tests); `leads`: who the staff list names as managers (everyone else on it
/// is reception); "betsu" is a manager of another site only.
pub(crate) fn manifest(version: u32, leads: &[&str]) -> Vec<u8> {
    let r = roster();
    let entry = |n: u8| DeviceEntry {
        device: key(n).device_id(),
        role: DeviceRole::Station,
        label: Label::new(&format!("端末{n}")).unwrap(),
        sites: vec![],
    };
    let role = |id: &str| {
        if leads.contains(&id) {
            StaffRole::Lead
        } else {
            StaffRole::Reception
        }
    };
    let m = Manifest {
        version,
        deployment: deployment(r.hash()),
        admin: admin().device_id(),
        devices: vec![entry(1), entry(2)],
        revoked: vec![],
        staff: vec![
            staff("sekinin", role("sekinin"), vec![]),
            staff("uketsuke", role("uketsuke"), vec![]),
            staff("betsu", StaffRole::Lead, vec![SiteId::new("S9").unwrap()]),
        ],
        closed_at: None,
        card_cas: vec![],
        sealed_keys: Vec::new(),
        retention_days: None,
        receipt_slips: false,
    };
    SignedManifest::sign(&m, &admin()).unwrap().encode()
}

pub(crate) fn node_at(
    dir: &std::path::Path,
    n: u8,
    manifest: &[u8],
    clock: &ManualClock,
) -> Node<ManualClock> {
    Node::create(
        &dir.join(format!("{n}.db")),
        "correct horse",
        KdfParams::FAST_INSECURE,
        key(n),
        manifest,
        Arc::new(roster()),
        site(),
        clock.clone(),
    )
    .unwrap()
}

fn lift(household: HouseholdRef) -> EventBody {
    EventBody::DvBlockLift {
        household,
        reason: Note::new("本人の申出により解除").unwrap(),
    }
}

/// A lift by `operator`, signed by device 1 as a laptop that skipped the check would write it.
fn forged_lift(household: HouseholdRef, operator: &str, wall_ms: u64) -> Vec<u8> {
    let event = Event::new(EventContent {
        device: key(1).device_id(),
        site: site(),
        operator: OperatorId::new(operator).unwrap(),
        at: Timestamp {
            wall_ms,
            counter: 0,
        },
        body: lift(household),
    })
    .unwrap();
    seal(&event, deployment(roster().hash()).id(), &key(1)).unwrap()
}

/// Everything `from` holds, into `to` (a USB bundle).
pub(crate) fn carry(from: &mut Node<ManualClock>, to: &mut Node<ManualClock>) {
    let b = from.export_bundle(BundleScope::All).unwrap();
    to.import_bundle(&b, "usb").unwrap();
}

#[test]
fn a_lift_counts_on_every_node_only_by_a_manifest_manager() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let v1 = manifest(1, &["sekinin"]);
    let mut a = node_at(dir.path(), 1, &v1, &clock);
    let mut b = node_at(dir.path(), 2, &v1, &clock);
    let entry = a.station().roster().entries()[0].clone();
    let household = HouseholdRef::Roster(entry.household);
    let person = PersonRef::Roster(entry.person);
    let card = HouseholdCard {
        representative: None,
        phone: None,
        damage: None,
        flooding: None,
        staying: StayingPlace::InShelter,
        car: None,
        pets: None,
        disclosure: Disclosure::Public,
        dv_block: true,
        members: vec![],
        notes: None,
    };
    a.record(
        OperatorId::new("uketsuke").unwrap(),
        EventBody::HouseholdCard {
            household,
            card: Box::new(card),
        },
    )
    .unwrap();
    carry(&mut a, &mut b);
    let blocked = |n: &Node<ManualClock>| n.state().dv_withheld(&person, n.station().roster());
    assert!(blocked(&a) && blocked(&b));

    // A lead on laptop 1's own table is refused there: no other laptop could honour it.
    let local = OperatorId::new("jimoto").unwrap();
    a.enrol_staff(&local, Role::Lead, Some("2222")).unwrap();
    assert_eq!(a.staff_role(&local), Ok(Some(Role::Lead)));
    let refused = a.record(local, lift(household)).unwrap_err();
    assert!(refused.to_string().contains("only a manager"), "{refused}");
    // A manager of another site is refused here too.
    assert!(
        a.record(OperatorId::new("betsu").unwrap(), lift(household))
            .is_err()
    );

    // Lifts that do not count, signed by an enrolled device, reach both laptops: kept, ignored.
    clock.advance(60_000);
    let forged = [
        forged_lift(household, "uketsuke", clock.now_ms()),
        forged_lift(household, "jimoto", clock.now_ms() + 1),
        forged_lift(household, "betsu", clock.now_ms() + 2),
    ];
    for env in &forged {
        assert!(b.import(env, "usb").unwrap());
        assert!(a.import(env, "usb").unwrap());
    }
    let lifts = |n: &Node<ManualClock>| {
        n.state()
            .events_in_order()
            .iter()
            .filter(|e| matches!(e.body(), EventBody::DvBlockLift { .. }))
            .count()
    };
    assert_eq!((lifts(&a), lifts(&b)), (3, 3));
    assert!(
        blocked(&a) && blocked(&b),
        "a non-manager's lift was honoured"
    );
    carry(&mut b, &mut a);
    carry(&mut a, &mut b);
    assert!(blocked(&a) && blocked(&b));

    // After a restart, the same verdict.
    drop(b);
    let mut b = Node::open(
        &dir.path().join("2.db"),
        "correct horse",
        Arc::new(roster()),
        site(),
        clock.clone(),
    )
    .unwrap();
    assert_eq!(lifts(&b), 3);
    assert!(blocked(&b));

    // A newer manifest names uketsuke a manager: their earlier lift counts, on both.
    let v2 = manifest(2, &["sekinin", "uketsuke"]);
    a.adopt_manifest(&v2).unwrap();
    b.adopt_manifest(&v2).unwrap();
    assert!(!blocked(&a) && !blocked(&b));

    // The manifest's manager lifts it on laptop 1; laptop 2 takes it.
    let dir2 = tempfile::tempdir().unwrap();
    let mut a = node_at(dir2.path(), 1, &v1, &clock);
    let mut b = node_at(dir2.path(), 2, &v1, &clock);
    a.record(
        OperatorId::new("uketsuke").unwrap(),
        EventBody::HouseholdCard {
            household,
            card: Box::new(HouseholdCard {
                representative: None,
                phone: None,
                damage: None,
                flooding: None,
                staying: StayingPlace::InShelter,
                car: None,
                pets: None,
                disclosure: Disclosure::Public,
                dv_block: true,
                members: vec![],
                notes: None,
            }),
        },
    )
    .unwrap();
    clock.advance(60_000);
    b.import(&forged_lift(household, "uketsuke", clock.now_ms()), "usb")
        .unwrap();
    clock.advance(60_000);
    a.record(OperatorId::new("sekinin").unwrap(), lift(household))
        .unwrap();
    carry(&mut a, &mut b);
    carry(&mut b, &mut a);
    assert!(!blocked(&a) && !blocked(&b));
}

#[test]
fn only_a_manager_lifts_the_dv_block() {
    // The manifest's staff list names sekinin a manager (`crate::managers`).
    let dir = tempfile::tempdir().unwrap();
    let mut n = node_at(
        dir.path(),
        1,
        &manifest(1, &["sekinin"]),
        &ManualClock::new(T0),
    );
    let desk = OperatorId::new("uketsuke").unwrap();
    let lead = OperatorId::new("sekinin").unwrap();
    assert_eq!(n.staff_role(&desk), Ok(Some(Role::Reception)));
    assert_eq!(n.staff_role(&lead), Ok(Some(Role::Lead)));
    let entry = n.station().roster().entries()[0].clone();
    let household = HouseholdRef::Roster(entry.household);
    let card = HouseholdCard {
        representative: None,
        phone: None,
        damage: None,
        flooding: None,
        staying: StayingPlace::InShelter,
        car: None,
        pets: None,
        disclosure: Disclosure::Public,
        dv_block: true,
        members: vec![],
        notes: None,
    };
    n.record(
        desk,
        EventBody::HouseholdCard {
            household,
            card: Box::new(card),
        },
    )
    .unwrap();
    let person = PersonRef::Roster(entry.person);
    assert!(n.state().dv_withheld(&person, n.station().roster()));
    let lift = || EventBody::DvBlockLift {
        household,
        reason: Note::new("本人の申出により解除").unwrap(),
    };
    let before = n.state().len();
    let refused = n.record(desk, lift()).unwrap_err();
    assert!(refused.to_string().contains("only a manager"), "{refused}");
    // An operator unknown to this laptop is refused as well.
    let stranger = OperatorId::new("dareka").unwrap();
    assert!(n.record(stranger, lift()).is_err());
    assert_eq!(n.state().len(), before);
    assert!(n.state().dv_withheld(&person, n.station().roster()));
    n.record(lead, lift()).unwrap();
    assert!(!n.state().dv_withheld(&person, n.station().roster()));
}
