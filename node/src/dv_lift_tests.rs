//! Only a manager lifts the DV block (issue 24, requirement 2), on a real store: a reception
//! operator's lift is refused and changes nothing; a lead's is written and clears the block.

use crate::link::tests::{node, world};
use crate::staff::Role;
use kazashi_domain::event::{Disclosure, EventBody, HouseholdCard, StayingPlace};
use kazashi_domain::ids::{HouseholdRef, OperatorId, PersonRef};
use kazashi_domain::text::Note;

#[test]
fn only_a_manager_lifts_the_dv_block() {
    let w = world();
    let mut n = node(&w, 1);
    let desk = OperatorId::new("uketsuke").unwrap();
    let lead = OperatorId::new("sekinin").unwrap();
    n.enrol_staff(&desk, Role::Reception, Some("1111")).unwrap();
    n.enrol_staff(&lead, Role::Lead, Some("2222")).unwrap();
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
