//! Events during the roster gap (issue 23): between adopting a manifest that pins a new roster
//! and switching to it, a laptop checks peers' events against the deployment but not against
//! the roster it runs on (the rule in [`crate::node`]'s module docs). Nodes synced back to back
//! through [`Node::sync_start`] / [`Node::sync_handle`], real stores.

use crate::clock::ManualClock;
use crate::link::tests::{check_in, deployment, device, key, person, roster, site};
use crate::node::{Node, NodeError, Peer};
use crate::store::KdfParams;
use kazashi_domain::ids::{HouseholdId, RosterHash};
use kazashi_domain::text::Label;
use kazashi_domain::{CivilDate, EventId, Roster, RosterEntry, RosterKind};
use kazashi_sync::{DeviceEntry, DeviceKey, Manifest, Role as DeviceRole, SignedManifest};
use std::collections::VecDeque;
use std::sync::Arc;

const T0: u64 = 1_788_220_800_000;
const ADMIN: u8 = 100;

/// Manifest `version` pinning `pinned`, enrolling laptops 1, 2 and 3.
pub(crate) fn pinning(version: u32, pinned: RosterHash) -> Vec<u8> {
    let admin = DeviceKey::from_seed([ADMIN; 32]);
    let manifest = Manifest {
        version,
        deployment: deployment(1, pinned),
        admin: admin.device_id(),
        devices: [1u8, 2, 3]
            .iter()
            .map(|&n| DeviceEntry {
                device: device(n),
                role: DeviceRole::Station,
                label: Label::new(&format!("端末{n}")).unwrap(),
                sites: vec![],
            })
            .collect(),
        revoked: vec![],
        staff: vec![],
        closed_at: None,
        card_cas: vec![],
        sealed_keys: Vec::new(),
        retention_days: None,
        receipt_slips: false,
    };
    SignedManifest::sign(&manifest, &admin).unwrap().encode()
}

/// The test roster with person 100 (household H100) added, and without person 7.
pub(crate) fn newer_roster() -> Roster {
    let old = roster();
    let mut entries: Vec<RosterEntry> = old
        .entries()
        .iter()
        .filter(|e| e.person != person(7))
        .cloned()
        .collect();
    let mut added = entries[0].clone();
    added.person = person(100);
    added.household = HouseholdId::new("H100").unwrap();
    entries.push(added);
    Roster::new(
        RosterKind::Residents,
        entries,
        CivilDate::new(2026, 9, 1).unwrap(),
    )
    .unwrap()
}

struct World {
    dir: tempfile::TempDir,
    clock: ManualClock,
}

impl World {
    fn new() -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
            clock: ManualClock::new(T0),
        }
    }

    fn node(&self, n: u8, manifest: &[u8], roster: &Arc<Roster>) -> Node<ManualClock> {
        Node::create(
            &self.dir.path().join(format!("{n}.db")),
            "correct horse",
            KdfParams::FAST_INSECURE,
            key(n),
            manifest,
            roster.clone(),
            site(),
            self.clock.clone(),
        )
        .unwrap()
    }
}

/// What `b` took from `a` in one session run to quiescence (also used by the revocation tests).
#[derive(Default)]
pub(crate) struct Took {
    pub(crate) added: Vec<EventId>,
    /// Refusals on both sides.
    pub(crate) refused: usize,
}

/// Sync `a` and `b` on a fresh session until neither has anything to say: what `b` took, and
/// the refusals on both sides.
pub(crate) fn sync(a: &mut Node<ManualClock>, b: &mut Node<ManualClock>) -> Took {
    let (mut pa, mut pb) = (Peer::new("peer b"), Peer::new("peer a"));
    let mut to_b = VecDeque::from([a.sync_start(&mut pa)]);
    let mut to_a = VecDeque::from([b.sync_start(&mut pb)]);
    let mut took = Took::default();
    for _ in 0..1000 {
        if let Some(m) = to_b.pop_front() {
            let step = b.sync_handle(&mut pb, &m).unwrap();
            took.added.extend(step.added_ids);
            took.refused += step.refused;
            to_a.extend(step.replies);
        } else if let Some(m) = to_a.pop_front() {
            let step = a.sync_handle(&mut pa, &m).unwrap();
            took.refused += step.refused;
            to_b.extend(step.replies);
        } else {
            return took;
        }
    }
    panic!("no quiescence");
}

#[test]
fn a_peer_event_naming_a_person_only_in_the_pinned_roster_is_taken_before_the_switch() {
    let w = World::new();
    let (old, new) = (Arc::new(roster()), Arc::new(newer_roster()));
    let v1 = pinning(1, old.hash());
    let v2 = pinning(2, new.hash());
    // A runs on the new roster; B adopted v2 but still runs on the old one (the gap).
    let mut a = w.node(1, &v2, &new);
    let mut b = w.node(2, &v1, &old);
    b.adopt_manifest(&v2).unwrap();
    assert_eq!(b.roster_wanted(), Some(new.hash()));
    assert!(old.get(&person(100)).is_none());

    // A checks in person 100 (only in the new roster) and person 1, in one shard.
    check_in(&mut a, 100);
    check_in(&mut a, 1);
    let took = sync(&mut a, &mut b);
    assert_eq!(took.refused, 0, "nothing refused");
    assert_eq!(took.added.len(), 2, "both taken during the gap");
    assert!(b.store().quarantined().unwrap().is_empty());
    assert_eq!(a.state_digest(), b.state_digest());

    // B's own writes are still checked against the roster it runs on, until it switches.
    assert!(matches!(
        b.record(
            kazashi_domain::OperatorId::new("staff01").unwrap(),
            kazashi_domain::EventBody::ShelterCheckIn {
                household: None,
                members: kazashi_domain::Members::new(vec![
                    kazashi_domain::ids::PersonRef::Roster(person(100))
                ])
                .unwrap(),
                method: kazashi_domain::event::IdMethod::Lookup,
            },
        ),
        Err(NodeError::Station(_))
    ));
    b.replace_roster(new.clone()).unwrap();
    check_in(&mut b, 100);
    assert_eq!(b.roster_wanted(), None);
}

#[test]
fn a_laptop_on_the_newer_roster_takes_events_naming_a_person_it_dropped() {
    let w = World::new();
    let (old, new) = (Arc::new(roster()), Arc::new(newer_roster()));
    let v1 = pinning(1, old.hash());
    let v2 = pinning(2, new.hash());
    // C has not heard of v2 and checks in person 7, whom the new roster dropped; B has
    // switched. C's event is signed by an enrolled laptop: B takes it, then C's later ones.
    let mut c = w.node(3, &v1, &old);
    let mut b = w.node(2, &v2, &new);
    assert!(new.get(&person(7)).is_none());
    check_in(&mut c, 7);
    check_in(&mut c, 2);
    let took = sync(&mut c, &mut b);
    assert_eq!((took.refused, took.added.len()), (0, 2));
    check_in(&mut c, 3);
    let took = sync(&mut c, &mut b);
    assert_eq!(
        (took.refused, took.added.len()),
        (0, 1),
        "the shard is not stuck"
    );
    assert_eq!(c.state_digest(), b.state_digest());
}
