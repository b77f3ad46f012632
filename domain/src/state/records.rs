//! Person records: walk-ins, household cards, who a record is and what is known of it.

use super::arena::visible;
use super::fold::State;
use crate::event::{Event, EventBody, HouseholdCard};
use crate::ids::{HouseholdRef, PersonRef};
use crate::roster::{CareNeed, EntryRef, Roster, Sex};
use crate::time::{CivilDate, Millis};
use std::borrow::Cow;
use std::collections::BTreeSet;

/// Who a person record is: name, reading, address and birth date as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity<'a> {
    pub name: Cow<'a, str>,
    pub kana: Option<Cow<'a, str>>,
    pub address: Option<Cow<'a, str>>,
    pub birth_date: Option<CivilDate>,
}

/// What is known of a person for counting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonFacts {
    pub household: Option<HouseholdRef>,
    pub sex: Option<Sex>,
    pub birth_date: Option<CivilDate>,
    pub care_needs: BTreeSet<CareNeed>,
}

impl State {
    /// The walk-in record behind a `PersonRef::WalkIn`, if its registration is known as of
    /// `as_of`.
    pub fn walk_in(
        &self,
        person: &PersonRef,
        as_of: Option<Millis>,
    ) -> Option<&crate::event::WalkInPerson> {
        let PersonRef::WalkIn {
            registration,
            index,
        } = person
        else {
            return None;
        };
        let ev = self
            .events
            .by_id(registration)
            .filter(|e| visible(&e.order_key(), as_of))?;
        match ev.body() {
            EventBody::WalkInRegistration { members, .. } => members.get(usize::from(*index)),
            _ => None,
        }
    }

    /// All walk-ins registered as of `as_of`, in order of registration.
    pub fn walk_ins(&self, as_of: Option<Millis>) -> Vec<(PersonRef, &crate::event::WalkInPerson)> {
        let mut out = Vec::new();
        for &ix in self.walk_ins.upto(as_of, &self.events) {
            if let Some((id, EventBody::WalkInRegistration { members, .. })) =
                self.events.get(ix).map(|e| (e.id(), e.body()))
            {
                for (i, m) in members.iter().enumerate() {
                    let index = u16::try_from(i).unwrap_or(u16::MAX);
                    out.push((
                        PersonRef::WalkIn {
                            registration: id,
                            index,
                        },
                        m,
                    ));
                }
            }
        }
        out
    }

    /// The current household card (latest in order) as of `as_of`.
    pub fn household_card(
        &self,
        h: &HouseholdRef,
        as_of: Option<Millis>,
    ) -> Option<&HouseholdCard> {
        match self
            .latest_in(&self.household_cards, h, as_of)
            .map(Event::body)
        {
            Some(EventBody::HouseholdCard { card, .. }) => Some(card),
            _ => None,
        }
    }

    /// Who a record is, as registered on the roster or at the walk-in desk.
    pub fn identity<'a>(
        &'a self,
        person: &PersonRef,
        roster: &'a Roster,
        as_of: Option<Millis>,
    ) -> Option<Identity<'a>> {
        match person {
            PersonRef::Roster(id) => roster.get(id).map(|e| match e {
                EntryRef::Borrowed(e) => Identity {
                    name: Cow::Borrowed(e.name.as_str()),
                    kana: Some(Cow::Borrowed(e.kana.as_str())),
                    address: Some(Cow::Borrowed(e.address.as_str())),
                    birth_date: Some(e.birth_date),
                },
                EntryRef::Shared(e) => Identity {
                    name: Cow::Owned(e.name.as_str().to_owned()),
                    kana: Some(Cow::Owned(e.kana.as_str().to_owned())),
                    address: Some(Cow::Owned(e.address.as_str().to_owned())),
                    birth_date: Some(e.birth_date),
                },
            }),
            PersonRef::WalkIn { .. } => self.walk_in(person, as_of).map(|w| Identity {
                name: Cow::Borrowed(w.name.as_str()),
                kana: w.kana.as_ref().map(|k| Cow::Borrowed(k.as_str())),
                address: w.address.as_ref().map(|a| Cow::Borrowed(a.as_str())),
                birth_date: w.birth_date,
            }),
        }
    }

    /// What is known of a person from the roster, walk-in registration and household card.
    pub fn person_facts(
        &self,
        person: &PersonRef,
        roster: &Roster,
        as_of: Option<Millis>,
    ) -> PersonFacts {
        let mut care_needs = BTreeSet::new();
        let (household, sex, birth_date) = self.facts_with(person, roster, as_of, |n| {
            care_needs.insert(n);
        });
        PersonFacts {
            household,
            sex,
            birth_date,
            care_needs,
        }
    }

    /// [`State::person_facts`] without allocating: household, sex and birth date returned,
    /// each care need (possibly twice) handed to `need`.
    pub(super) fn facts_with(
        &self,
        person: &PersonRef,
        roster: &Roster,
        as_of: Option<Millis>,
        mut need: impl FnMut(CareNeed),
    ) -> (Option<HouseholdRef>, Option<Sex>, Option<CivilDate>) {
        let (household, sex, birth) =
            registered_facts(person, roster, self.walk_in(person, as_of), &mut need);
        if let Some(card) = household.and_then(|h| self.household_card(&h, as_of))
            && let Some(m) = card.members.iter().find(|m| m.person == *person)
        {
            m.care_needs.iter().for_each(|n| need(*n));
        }
        (household, sex, birth)
    }
}

/// Household, sex and birth date of `person` as registered — on the roster, or as `walk_in`
/// (its walk-in registration as the caller sees it) — with the registered care needs handed to
/// `need`. The household card's care needs are the caller's, as it sees the cards.
pub(super) fn registered_facts(
    person: &PersonRef,
    roster: &Roster,
    walk_in: Option<&crate::event::WalkInPerson>,
    need: &mut impl FnMut(CareNeed),
) -> (Option<HouseholdRef>, Option<Sex>, Option<CivilDate>) {
    match person {
        PersonRef::Roster(id) => match roster.get(id) {
            Some(e) => {
                e.care_needs.iter().for_each(|n| need(*n));
                (
                    Some(HouseholdRef::Roster(e.household)),
                    Some(e.sex),
                    Some(e.birth_date),
                )
            }
            None => (None, None, None),
        },
        PersonRef::WalkIn { registration, .. } => match walk_in {
            Some(w) => {
                w.care_needs.iter().for_each(|n| need(*n));
                (
                    Some(HouseholdRef::WalkIn(*registration)),
                    Some(w.sex),
                    w.birth_date,
                )
            }
            None => (None, None, None),
        },
    }
}
