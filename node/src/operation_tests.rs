//! The operation's lifecycle on running nodes (issue 23): staff from the manifest and the
//! precedence rule, a newer manifest applied at once (sites, the laptop's site, the roster pin,
//! a revocation), and closing the operation.

use crate::clock::ManualClock;
use crate::enrolment::Adopted;
use crate::link::tests::{device, key, person, roster};
use crate::node::{BundleScope, Node, NodeError, WriteBlock};
use crate::staff::{LoginError, Role, hash_pin};
use crate::store::KdfParams;
use kazashi_domain::deployment::DeploymentKind;
use kazashi_domain::event::IdMethod;
use kazashi_domain::ids::{CardKey, OperatorId, PersonRef, RosterHash};
use kazashi_domain::text::Label;
use kazashi_domain::{
    Deployment, DeploymentId, EventBody, Members, ShelterType, Site, SiteId, SiteKind,
};
use kazashi_sync::manifest::StaffEntry;
use kazashi_sync::{
    DeviceEntry, DeviceKey, Manifest, Revocation, Role as DeviceRole, SignedManifest,
};
use std::sync::Arc;

const T0: u64 = 1_788_220_800_000;

fn site(s: &str) -> SiteId {
    SiteId::new(s).unwrap()
}

fn op(s: &str) -> OperatorId {
    OperatorId::new(s).unwrap()
}

fn shelter(id: &str) -> Site {
    Site {
        id: site(id),
        name: Label::new(&format!("{id} 避難所")).unwrap(),
        kind: SiteKind::Shelter {
            shelter_type: ShelterType::Designated,
            capacity: 100,
        },
    }
}

/// What a manifest version says, for these tests.
#[derive(Clone)]
struct Spec {
    version: u32,
    sites: Vec<&'static str>,
    roster: RosterHash,
    /// Devices and the sites each may write for.
    devices: Vec<(u8, Vec<&'static str>)>,
    revoked: Vec<u8>,
    staff: Vec<StaffEntry>,
    closed_at: Option<u64>,
}

impl Spec {
    fn new(devices: &[u8]) -> Spec {
        Spec {
            version: 1,
            sites: vec!["S1", "S2"],
            roster: roster().hash(),
            devices: devices.iter().map(|&n| (n, vec![])).collect(),
            revoked: vec![],
            staff: vec![],
            closed_at: None,
        }
    }

    fn next(&self) -> Spec {
        Spec {
            version: self.version + 1,
            ..self.clone()
        }
    }

    fn sign(&self) -> Vec<u8> {
        let m = Manifest {
            version: self.version,
            deployment: Deployment::new(
                DeploymentId([1; 16]),
                Label::new("訓練").unwrap(),
                DeploymentKind::ShelterOperation,
                self.roster,
                self.sites.iter().map(|s| shelter(s)).collect(),
            )
            .unwrap(),
            admin: DeviceKey::from_seed([100; 32]).device_id(),
            devices: self
                .devices
                .iter()
                .map(|(n, sites)| DeviceEntry {
                    device: device(*n),
                    role: DeviceRole::Station,
                    label: Label::new(&format!("端末{n}")).unwrap(),
                    sites: sites.iter().map(|s| site(s)).collect(),
                })
                .collect(),
            revoked: self
                .revoked
                .iter()
                .map(|&n| Revocation {
                    device: device(n),
                    from_ms: T0,
                })
                .collect(),
            staff: self.staff.clone(),
            closed_at: self.closed_at,
            card_cas: vec![],
            sealed_keys: Vec::new(),
            retention_days: None,
            receipt_slips: false,
        };
        SignedManifest::sign(&m, &DeviceKey::from_seed([100; 32]))
            .unwrap()
            .encode()
    }
}

fn staff(id: &str, role: Role, pin: &str, sites: &[&str]) -> StaffEntry {
    StaffEntry {
        id: op(id),
        name: Label::new("職員").unwrap(),
        role,
        pin_hash: Some(hash_pin(pin).unwrap()),
        card: None,
        sites: sites.iter().map(|s| site(s)).collect(),
    }
}

struct Lab {
    dir: tempfile::TempDir,
    clock: ManualClock,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            dir: tempfile::tempdir().unwrap(),
            clock: ManualClock::new(T0),
        }
    }

    fn node(&self, n: u8, manifest: &[u8], at: &str) -> Node<ManualClock> {
        Node::create(
            &self.dir.path().join(format!("{n}.db")),
            "correct horse",
            KdfParams::FAST_INSECURE,
            key(n),
            manifest,
            Arc::new(roster()),
            site(at),
            self.clock.clone(),
        )
        .unwrap()
    }
}

fn check_in(node: &mut Node<ManualClock>, i: usize) -> Result<kazashi_domain::Event, NodeError> {
    node.record(
        op("staff01"),
        EventBody::ShelterCheckIn {
            household: None,
            members: Members::new(vec![PersonRef::Roster(person(i))]).unwrap(),
            method: IdMethod::Lookup,
        },
    )
}

#[test]
fn manifest_staff_come_first_where_they_are_valid_and_the_laptops_own_after() {
    let lab = Lab::new();
    let mut v1 = Spec::new(&[1]);
    let mut lead = staff("lead1", Role::Lead, "1357", &[]);
    lead.card = Some(CardKey([7; 32]));
    v1.staff = vec![
        lead,
        staff("both", Role::Medical, "2222", &["S1"]),
        staff("s2only", Role::Reception, "1111", &["S2"]),
    ];
    let signed = v1.sign();
    // The PIN is nowhere in the signed manifest, only its hash.
    let text = String::from_utf8_lossy(&signed);
    assert!(text.contains("$argon2id$"));
    for pin in ["1357", "2222", "1111"] {
        assert!(!text.contains(pin), "{pin} in the manifest");
    }
    let mut node = lab.node(1, &signed, "S1");
    // Per-laptop records: one shadowed by the manifest, one the manifest lists only for S2,
    // one the manifest does not know.
    node.enrol_staff(&op("both"), Role::Reception, Some("9999"))
        .unwrap();
    node.enrol_staff(&op("s2only"), Role::Command, Some("4444"))
        .unwrap();
    node.enrol_staff(&op("local1"), Role::Reception, Some("5555"))
        .unwrap();

    assert_eq!(node.staff_login(&op("lead1"), "1357"), Ok(Role::Lead));
    assert_eq!(
        node.staff_login(&op("lead1"), "１３５７"),
        Ok(Role::Lead),
        "full-width digits"
    );
    assert_eq!(
        node.staff_login(&op("lead1"), "7531"),
        Err(LoginError::WrongPin)
    );
    // The manifest's entry valid here decides alone: its PIN and role, not the laptop's.
    assert_eq!(node.staff_login(&op("both"), "2222"), Ok(Role::Medical));
    assert_eq!(
        node.staff_login(&op("both"), "9999"),
        Err(LoginError::WrongPin)
    );
    assert_eq!(node.staff_role(&op("both")), Ok(Some(Role::Medical)));
    // Listed only for S2: at S1 the laptop's own record applies.
    assert_eq!(
        node.staff_login(&op("s2only"), "1111"),
        Err(LoginError::WrongPin)
    );
    assert_eq!(node.staff_login(&op("s2only"), "4444"), Ok(Role::Command));
    assert_eq!(node.staff_login(&op("local1"), "5555"), Ok(Role::Reception));
    assert_eq!(
        node.staff_login(&op("nobody"), "5555"),
        Err(LoginError::Unknown)
    );
    // A staff card in the manifest unlocks; another card does not.
    assert_eq!(
        node.staff_card_login(&CardKey([7; 32])),
        Ok((op("lead1"), Role::Lead))
    );
    assert_eq!(
        node.staff_card_login(&CardKey([8; 32])),
        Err(LoginError::UnknownCard)
    );

    // A newer manifest, adopted by the running node, applies at once: lead1 gone, both's
    // PIN changed, s2only now valid everywhere.
    let mut v2 = v1.next();
    v2.staff = vec![
        staff("both", Role::Medical, "3333", &["S1"]),
        staff("s2only", Role::Reception, "1111", &[]),
    ];
    assert!(matches!(
        node.adopt_manifest(&v2.sign()),
        Ok(Adopted::Newer { version: 2, .. })
    ));
    assert_eq!(
        node.staff_login(&op("lead1"), "1357"),
        Err(LoginError::Unknown)
    );
    assert_eq!(
        node.staff_card_login(&CardKey([7; 32])),
        Err(LoginError::UnknownCard)
    );
    assert_eq!(
        node.staff_login(&op("both"), "2222"),
        Err(LoginError::WrongPin)
    );
    assert_eq!(node.staff_login(&op("both"), "3333"), Ok(Role::Medical));
    assert_eq!(node.staff_login(&op("s2only"), "1111"), Ok(Role::Reception));

    // The laptop's own records go with `remove_staff`, their cards with them.
    node.enrol_staff_card(&CardKey([9; 32]), &op("local1"))
        .unwrap();
    assert_eq!(
        node.staff_card_login(&CardKey([9; 32])),
        Ok((op("local1"), Role::Reception))
    );
    assert_eq!(node.remove_staff(&op("local1")), Ok(true));
    assert_eq!(node.remove_staff(&op("local1")), Ok(false));
    assert_eq!(
        node.staff_login(&op("local1"), "5555"),
        Err(LoginError::Unknown)
    );
    assert_eq!(
        node.staff_card_login(&CardKey([9; 32])),
        Err(LoginError::UnknownCard)
    );
}

#[test]
fn a_newer_manifest_moves_the_running_station_and_a_revocation_stops_its_writes() {
    let lab = Lab::new();
    let mut v1 = Spec::new(&[1]);
    v1.devices = vec![(1, vec!["S1"])];
    let mut node = lab.node(1, &v1.sign(), "S1");
    assert_eq!(check_in(&mut node, 0).unwrap().site(), site("S1"));
    assert_eq!(node.write_block(), None);

    // Version 2 adds a site and moves the laptop to S2: the running station follows.
    let mut v2 = v1.next();
    v2.sites = vec!["S1", "S2", "S3"];
    v2.devices = vec![(1, vec!["S2"])];
    node.adopt_manifest(&v2.sign()).unwrap();
    assert_eq!(node.station().site(), site("S2"));
    assert!(node.station().deployment().site(&site("S3")).is_some());
    assert_eq!(node.store().get_meta("site").unwrap(), Some(b"S2".to_vec()));
    assert_eq!(check_in(&mut node, 1).unwrap().site(), site("S2"));

    // Version 3 pins another roster: visible at once, the station runs on its own until
    // it is switched.
    let mut v3 = v2.next();
    v3.roster = RosterHash([42; 32]);
    node.adopt_manifest(&v3.sign()).unwrap();
    assert_eq!(node.pinned_roster(), RosterHash([42; 32]));
    assert_eq!(node.station().roster().hash(), roster().hash());
    assert!(node.station().deployment().site(&site("S3")).is_some());
    check_in(&mut node, 2).unwrap();

    // Version 4 revokes the laptop: adopted, and it writes nothing more.
    let mut v4 = v3.next();
    v4.revoked = vec![1];
    assert_eq!(
        node.adopt_manifest(&v4.sign()).unwrap(),
        Adopted::Newer {
            version: 4,
            revokes_me: true
        }
    );
    assert_eq!(node.write_block(), Some(WriteBlock::Revoked { from: T0 }));
    let before = node.state().len();
    assert!(matches!(
        check_in(&mut node, 3),
        Err(NodeError::WritesStopped(WriteBlock::Revoked { .. }))
    ));
    assert_eq!(node.state().len(), before);
}

#[test]
fn a_closed_operation_writes_nothing_still_syncs_and_holds_later_events_uncounted() {
    let lab = Lab::new();
    let v1 = Spec::new(&[1, 2]);
    let (mut a, mut b) = (lab.node(1, &v1.sign(), "S1"), lab.node(2, &v1.sign(), "S1"));
    check_in(&mut a, 0).unwrap();
    check_in(&mut b, 1).unwrap();
    // A takes B's day so far.
    let r = a
        .import_bundle(&b.export_bundle(BundleScope::SinceLast).unwrap(), "usb")
        .unwrap();
    assert_eq!(r.added, 1);

    // The administrator closes the operation one second after T0; A adopts it.
    let mut closing = v1.next();
    closing.closed_at = Some(T0 + 1_000);
    let closing = closing.sign();
    a.adopt_manifest(&closing).unwrap();
    assert_eq!(a.write_block(), Some(WriteBlock::Closed { at: T0 + 1_000 }));
    let held = a.state().len();
    let err = check_in(&mut a, 2).unwrap_err();
    assert!(matches!(
        err,
        NodeError::WritesStopped(WriteBlock::Closed { .. })
    ));
    assert!(
        err.to_string()
            .contains("this operation is closed (since 2026-09-01 09:00 JST)"),
        "{err}"
    );
    assert_eq!(a.state().len(), held);

    // B has not heard yet and writes after the close: A holds that event (it is B's log too,
    // and refusing it would refuse the rest of the shard-day with it) but does not count it,
    // like a revoked device's from its cut-off.
    lab.clock.set(T0 + 5_000);
    let late = check_in(&mut b, 3).unwrap();
    let r = a
        .import_bundle(&b.export_bundle(BundleScope::SinceLast).unwrap(), "usb")
        .unwrap();
    assert_eq!((r.added, r.refused_shards, r.withheld), (1, 0, 1));
    assert!(a.holds(&late.id()));
    assert!(!a.state().contains(&late.id()));
    assert_eq!(a.state().len(), held);
    assert_eq!(a.withheld_counts().after_close, 1);
    // B writes on in the same shard-day before it hears: that still reaches A (held, not
    // counted), where refusing the first cut A off from every later change of the day.
    lab.clock.set(T0 + 6_000);
    let later = check_in(&mut b, 5).unwrap();
    let r = a
        .import_bundle(&b.export_bundle(BundleScope::SinceLast).unwrap(), "usb")
        .unwrap();
    assert_eq!((r.added, r.refused_shards, r.withheld), (1, 0, 1));
    assert!(a.holds(&later.id()));
    assert_eq!(a.state().len(), held);
    assert!(a.store().quarantined().unwrap().is_empty());

    // A still syncs out: its bundle carries the closing manifest, and B stops writing too.
    let r = b
        .import_bundle(&a.export_bundle(BundleScope::All).unwrap(), "usb")
        .unwrap();
    assert_eq!(r.manifest_adopted, Some(2));
    assert!(matches!(
        check_in(&mut b, 4),
        Err(NodeError::WritesStopped(WriteBlock::Closed { .. }))
    ));
    // A peer's event from before the close still enters a closed node.
    assert!(a.state().len() >= 2);
}

#[test]
fn two_manifests_of_the_same_version_end_the_same_on_every_node_whatever_the_order() {
    let lab = Lab::new();
    let v1 = Spec::new(&[1, 2]);
    let (mut a, mut b) = (lab.node(1, &v1.sign(), "S1"), lab.node(2, &v1.sign(), "S1"));
    // Two administrators (one key, restored on a second laptop) sign version 2 apart.
    let mut x = v1.next();
    x.staff = vec![staff("lead1", Role::Lead, "1357", &[])];
    let mut y = v1.next();
    y.sites = vec!["S1", "S2", "S3"];
    let (x, y) = (x.sign(), y.sign());
    let digest = |m: &[u8]| SignedManifest::decode(m).unwrap().digest();
    let winner = if digest(&x) < digest(&y) { &x } else { &y };
    // A hears x first, B hears y first; each then hears the other.
    let _ = a.adopt_manifest(&x);
    let _ = a.adopt_manifest(&y);
    let _ = b.adopt_manifest(&y);
    let _ = b.adopt_manifest(&x);
    for n in [&a, &b] {
        assert_eq!(n.membership().signed().encode(), *winner);
        assert_eq!(n.store().manifest().unwrap().as_deref(), Some(&winner[..]));
    }
    // The loser is refused as a conflict, and changes nothing.
    let loser = if winner == &x { &y } else { &x };
    assert!(matches!(
        a.adopt_manifest(loser),
        Err(NodeError::ManifestRefused(
            crate::node::ManifestRefusal::Conflict(2)
        ))
    ));
    assert_eq!(a.membership().signed().encode(), *winner);
}
