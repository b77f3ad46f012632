//! A site's close and the operation's close count on every node only by a manifest manager
//! (`crate::managers`), on two real stores carried by USB bundle: an `OperationClosed` with a
//! retention of 0 days and a `SiteLifecycle(Closed)` written under a laptop-only lead's, a
//! reception operator's and another site's manager's ids (signed by an enrolled device, as a
//! modified laptop could write them) are kept in the log and ignored by both laptops, before
//! and after a restart: the operation is not closed, the site is not closed, no purge ever
//! falls due. The manifest manager's closes count on both; the retention a manager's event
//! announces never goes below a day without the administrator (`purge::retention`).

use crate::clock::{Clock, ManualClock};
use crate::dv_lift_tests::{T0, carry, deployment, manifest, node_at};
use crate::link::tests::{key, roster, site};
use crate::node::{Node, NodeError};
use crate::purge;
use crate::staff::Role;
use kazashi_domain::event::{EventBody, IdMethod, Members, SiteState};
use kazashi_domain::hlc::Timestamp;
use kazashi_domain::ids::{HouseholdRef, OperatorId, PersonRef};
use kazashi_domain::{Event, EventContent};
use kazashi_sync::seal;
use std::sync::Arc;

const DAY: u64 = 86_400_000;
/// Far beyond any retention period.
const YEARS: u64 = 10 * 366 * DAY;

/// `body` by `operator` at S1, signed by device 1 as a laptop that skipped the check would.
fn forged(body: EventBody, operator: &str, wall_ms: u64) -> Vec<u8> {
    let event = Event::new(EventContent {
        device: key(1).device_id(),
        site: site(),
        operator: OperatorId::new(operator).unwrap(),
        at: Timestamp {
            wall_ms,
            counter: 0,
        },
        body,
    })
    .unwrap();
    seal(&event, deployment(roster().hash()).id(), &key(1)).unwrap()
}

fn wipe() -> EventBody {
    EventBody::OperationClosed {
        retention_days: Some(0),
    }
}

fn close_site() -> EventBody {
    EventBody::SiteLifecycle(SiteState::Closed)
}

fn op(id: &str) -> OperatorId {
    OperatorId::new(id).unwrap()
}

/// A check-in of the roster's `n`th entry by reception.
fn check_in(node: &mut Node<ManualClock>, n: usize) -> Result<Event, NodeError> {
    let entry = node.station().roster().entries()[n].clone();
    node.record(
        op("uketsuke"),
        EventBody::ShelterCheckIn {
            household: Some(HouseholdRef::Roster(entry.household)),
            members: Members::new(vec![PersonRef::Roster(entry.person)]).unwrap(),
            method: IdMethod::Lookup,
        },
    )
}

/// Neither the operation nor the site is closed on `n`, and no purge ever falls due.
fn open_everywhere(n: &Node<ManualClock>, now: u64) {
    assert_eq!(
        n.state().operation_closed(None),
        None,
        "a forged close counted"
    );
    assert_eq!(
        n.state().site_state(&site(), None),
        None,
        "a forged site close counted"
    );
    assert!(purge::closure(n.membership(), n.state()).is_none());
    assert!(purge::due(n, now).is_none());
    assert!(
        purge::due(n, now + YEARS).is_none(),
        "a forged close would purge"
    );
    assert!(n.write_block().is_none());
}

fn managed(n: &Node<ManualClock>) -> usize {
    n.state()
        .events_in_order()
        .iter()
        .filter(|e| {
            matches!(
                e.body(),
                EventBody::OperationClosed { .. } | EventBody::SiteLifecycle(_)
            )
        })
        .count()
}

#[test]
fn a_close_counts_on_every_node_only_by_a_manifest_manager() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let v1 = manifest(1, &["sekinin"]);
    let mut a = node_at(dir.path(), 1, &v1, &clock);
    let mut b = node_at(dir.path(), 2, &v1, &clock);

    // At the author: a lead on laptop 1's own table, reception and another site's manager are
    // refused (no other laptop would honour them), and nothing is written.
    let local = op("jimoto");
    a.enrol_staff(&local, Role::Lead, Some("2222")).unwrap();
    assert_eq!(a.staff_role(&local), Ok(Some(Role::Lead)));
    let before = a.state().len();
    for who in ["jimoto", "uketsuke", "betsu"] {
        for body in [wipe(), close_site()] {
            let refused = a.record(op(who), body).unwrap_err();
            assert!(refused.to_string().contains("only a manager"), "{refused}");
        }
    }
    assert_eq!(a.state().len(), before);

    // The same closes, signed by an enrolled device, reach both laptops: kept, ignored.
    clock.advance(60_000);
    let t = clock.now_ms();
    let forgeries = [
        forged(wipe(), "jimoto", t),
        forged(close_site(), "jimoto", t + 1),
        forged(wipe(), "uketsuke", t + 2),
        forged(close_site(), "uketsuke", t + 3),
        forged(wipe(), "betsu", t + 4),
        forged(close_site(), "betsu", t + 5),
    ];
    for env in &forgeries[..3] {
        assert!(a.import(env, "usb").unwrap());
    }
    // Laptop 2 gets them by USB bundle from laptop 1, and the rest directly.
    carry(&mut a, &mut b);
    for env in &forgeries[3..] {
        assert!(b.import(env, "usb").unwrap());
    }
    carry(&mut b, &mut a);
    assert_eq!((managed(&a), managed(&b)), (6, 6));
    clock.advance(60_000);
    for n in [&a, &b] {
        open_everywhere(n, clock.now_ms());
    }
    // Check-ins go on at the site on both.
    check_in(&mut a, 0).unwrap();
    check_in(&mut b, 1).unwrap();

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
    assert_eq!(managed(&b), 6);
    open_everywhere(&b, clock.now_ms());
    check_in(&mut b, 2).unwrap();

    // The manifest's manager closes the site on laptop 1: it counts on both.
    clock.advance(60_000);
    a.record(op("sekinin"), close_site()).unwrap();
    carry(&mut a, &mut b);
    for n in [&a, &b] {
        assert!(matches!(
            n.state().site_state(&site(), None),
            Some((SiteState::Closed, _))
        ));
        assert_eq!(n.state().operation_closed(None), None);
    }
    let refused = check_in(&mut b, 3).unwrap_err();
    assert!(
        matches!(
            refused,
            NodeError::Station(crate::station::StationError::SiteClosed(_))
        ),
        "{refused}"
    );

    // ... and the operation, announcing 0 days: the manifest sets none, so a day applies (the
    // floor), counted from the manager's close, not from the forged ones before it.
    clock.advance(60_000);
    let closed = a.record(op("sekinin"), wipe()).unwrap();
    carry(&mut a, &mut b);
    let at = closed.at().wall_ms;
    for n in [&a, &b] {
        assert_eq!(
            n.state().operation_closed(None),
            Some((closed.at(), Some(0)))
        );
        let c = purge::closure(n.membership(), n.state()).unwrap();
        assert_eq!((c.at, c.by), (at, purge::ClosedBy::Manager));
        assert_eq!(c.retention_days, Some(purge::MIN_EVENT_RETENTION_DAYS));
        assert!(purge::due(n, at).is_none(), "purged at once");
        assert!(purge::due(n, at + DAY - 1).is_none());
        assert!(purge::due(n, at + DAY).is_some());
        assert!(n.write_block().is_some());
    }
}

#[test]
fn the_retention_is_the_manifests_and_an_event_only_lengthens_it() {
    use purge::retention;
    // The administrator's period stands against a shorter one typed by a manager.
    assert_eq!(retention(Some(30), Some(0)), Some(30));
    assert_eq!(retention(Some(30), Some(7)), Some(30));
    assert_eq!(retention(Some(30), None), Some(30));
    // A longer one lengthens it.
    assert_eq!(retention(Some(30), Some(90)), Some(90));
    // Without the administrator's, the manager's, but never below a day.
    assert_eq!(retention(None, Some(0)), Some(1));
    assert_eq!(retention(None, Some(14)), Some(14));
    assert_eq!(retention(None, None), None);
}
