//! What the tour's later screens show, written through the node as staff would have: a
//! duplicate pair for the resolution view (a roster resident checked in, then registered again
//! as a walk-in written the same way), and a household only partly arrived for 安否未確認.

use kazashi_domain::event::{EventBody, IdMethod, Members, WalkInPerson};
use kazashi_domain::ids::{HouseholdRef, OperatorId, PersonRef};
use kazashi_domain::text::{Address, KanaReading, PersonName};
use kazashi_node::{Node, SystemClock};

fn staff(id: &str) -> Result<OperatorId, String> {
    OperatorId::new(id).map_err(|e| e.to_string())
}

fn check_in(node: &mut Node<SystemClock>, p: PersonRef) -> Result<(), String> {
    node.record(
        staff("uketsuke")?,
        EventBody::ShelterCheckIn {
            household: None,
            members: Members::new(vec![p]).map_err(|e| e.to_string())?,
            method: IdMethod::Lookup,
        },
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Roster entry 40 checked in, then a walk-in written exactly as that entry checked in too:
/// the detector's duplicate alert, which the alerts view shows side by side.
pub fn duplicate_pair(node: &mut Node<SystemClock>) -> Result<(), String> {
    let who = node
        .station()
        .roster()
        .entries()
        .get(40)
        .cloned()
        .ok_or("the demo roster is short")?;
    check_in(node, PersonRef::Roster(who.person))?;
    let text = |e: kazashi_domain::text::TextError| e.to_string();
    let person = WalkInPerson {
        name: PersonName::new(who.name.as_str()).map_err(text)?,
        kana: Some(KanaReading::new(who.kana.as_str()).map_err(text)?),
        birth_date: Some(who.birth_date),
        sex: who.sex,
        address: Some(Address::new(who.address.as_str()).map_err(text)?),
        care_needs: Default::default(),
    };
    let reg = node
        .record(
            staff("uketsuke")?,
            EventBody::WalkInRegistration {
                members: vec![person],
                home_municipality: None,
            },
        )
        .map_err(|e| e.to_string())?;
    check_in(
        node,
        PersonRef::WalkIn {
            registration: reg.id(),
            index: 0,
        },
    )
}

/// The first member of a household of three or four nobody has seen checked in with the
/// household: the others are 安否未確認.
pub fn household_partly_in(node: &mut Node<SystemClock>) -> Result<(), String> {
    let roster = node.station().roster();
    let first = roster
        .entries()
        .iter()
        .skip(100)
        .map(|e| roster.household(&e.household))
        .find(|m| {
            (3..=4).contains(&m.len())
                && m.iter().all(|e| {
                    node.state()
                        .stays(&PersonRef::Roster(e.person), None)
                        .is_empty()
                })
        })
        .and_then(|m| m.first().map(|e| (e.person, e.household)))
        .ok_or("no household of three in the demo roster")?;
    node.record(
        staff("uketsuke")?,
        EventBody::ShelterCheckIn {
            household: Some(HouseholdRef::Roster(first.1)),
            members: Members::new(vec![PersonRef::Roster(first.0)]).map_err(|e| e.to_string())?,
            method: IdMethod::Lookup,
        },
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}
