//! The lockout after wrong PINs (`crate::possession`), on a real store: counted per staff id
//! and per card, kept across a restart, ended by its period, cleared by a success.

use crate::clock::Clock;
use crate::link::tests::{node, site, world};
use crate::node::Node;
use crate::possession::{LOCK_MS, MAX_FAILURES, Subject};
use crate::staff::{LoginError, Role};
use kazashi_domain::ids::{CardKey, OperatorId};

/// Five wrong PINs lock the staff id (the right PIN too, then), the count survives a
/// restart of the node on the same store, the lock ends after its period, and a success
/// clears the count. A card's count is its own.
#[test]
fn wrong_pins_lock_the_id_across_a_restart_until_the_period_ends() {
    let w = world();
    let op = OperatorId::new("uketsuke").unwrap();
    {
        let n = node(&w, 1);
        n.enrol_staff(&op, Role::Reception, Some("1111")).unwrap();
        for _ in 1..MAX_FAILURES {
            assert_eq!(n.staff_login(&op, "9999"), Err(LoginError::WrongPin));
        }
    }
    // A restart: the fifth failure in a row still locks.
    let n = Node::open(
        &w.dir.path().join("1.db"),
        "correct horse",
        w.roster.clone(),
        site(),
        w.clock.clone(),
    )
    .unwrap();
    let until = w.clock.now_ms() + LOCK_MS;
    assert_eq!(
        n.staff_login(&op, "9999"),
        Err(LoginError::Locked { until })
    );
    assert_eq!(
        n.staff_login(&op, "1111"),
        Err(LoginError::Locked { until }),
        "the right PIN during the lock"
    );
    // Another id and a card are counted apart.
    let other = OperatorId::new("sekinin").unwrap();
    assert_eq!(n.locked_until(Subject::Staff(&other)).unwrap(), None);
    let card = CardKey([3; 32]);
    assert_eq!(n.pin_failed(Subject::Card(&card)).unwrap(), None);
    w.clock.advance(LOCK_MS);
    assert_eq!(n.staff_login(&op, "1111"), Ok(Role::Reception));
    // The success cleared the count: four more failures do not lock.
    for _ in 1..MAX_FAILURES {
        assert_eq!(n.staff_login(&op, "9999"), Err(LoginError::WrongPin));
    }
    assert_eq!(n.staff_login(&op, "1111"), Ok(Role::Reception));
}

#[test]
fn a_damaged_count_locks_rather_than_resets() {
    let w = world();
    let n = node(&w, 1);
    let card = CardKey([5; 32]);
    n.set_setting(&Subject::Card(&card).key(), b"junk").unwrap();
    assert!(n.locked_until(Subject::Card(&card)).unwrap().is_some());
}
