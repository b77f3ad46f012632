//! The DV block and consent: who may never be disclosed, and what each person agreed to.
//!
//! **The DV block is read from the whole log, never as of a time.** A household is blocked if
//! any of its cards, at any time, carried the block and no [`EventBody::DvBlockLift`] for it
//! comes after that card in the agreed order. A later card without the flag does not lift it,
//! and a report for an hour before the block was set still withholds the household: the
//! danger is where the person is, whenever the report was for. This is the one deliberate
//! exception to "as of T is the log as it stood at T" (ARCHITECTURE.md).

//!
//! **Who may lift it.** Only a manager's lift counts, judged by the event and the deployment's
//! staff list alone ([`ManagerAuthority`](super::ManagerAuthority), which the node sets from
//! the signed manifest; the same rule judges site and operation closes, `authority`): a lift
//! whose operator is listed as a manager at the event's site is honoured, any other is kept in
//! the log (peer events are facts) and ignored. A laptop's own staff table is not consulted —
//! no other laptop can see it — so every node holding the same manifest reaches the same
//! verdict on every lift, whatever laptop wrote it. With no authority set (the pure model in
//! tests) every lift counts.

use super::fold::State;
use crate::event::{Disclosure, Event, EventBody, OrderKey};
use crate::ids::{HouseholdRef, PersonRef};
use crate::roster::Roster;
use crate::time::Millis;

impl State {
    /// Whether `h` is under the DV block now: one of its cards set it and no lift that counts
    /// came after.
    pub fn dv_blocked(&self, h: &HouseholdRef) -> bool {
        let lifted: Option<OrderKey> = self.dv_lifts.get(h).and_then(|l| {
            l.upto(None, &self.events)
                .iter()
                .rev()
                .filter_map(|&ix| self.events.get(ix))
                .find(|e| self.manager_counts(e))
                .map(Event::order_key)
        });
        let Some(cards) = self.household_cards.get(h) else {
            return false;
        };
        cards.upto(None, &self.events).iter().rev().any(|&ix| {
            let Some(e) = self.events.get(ix) else {
                return false;
            };
            if lifted.is_some_and(|l| e.order_key() < l) {
                return false;
            }
            matches!(e.body(), EventBody::HouseholdCard { card, .. } if card.dv_block)
        })
    }

    /// The household a record belongs to: its roster household, or its walk-in registration.
    pub fn household_of(&self, p: &PersonRef, roster: &Roster) -> Option<HouseholdRef> {
        match p {
            PersonRef::Roster(id) => roster.get(id).map(|e| HouseholdRef::Roster(e.household)),
            PersonRef::WalkIn { registration, .. } => Some(HouseholdRef::WalkIn(*registration)),
        }
    }

    /// Whether this record must never be disclosed, judged on the whole log (never as of a
    /// time): its household is under the DV block, a card under the block names it, or its
    /// roster household has a resident under 支援措置 (the roster's flag: only a new roster
    /// clears it, no event does).
    pub fn dv_withheld(&self, p: &PersonRef, roster: &Roster) -> bool {
        if let PersonRef::Roster(id) = p
            && roster
                .get(id)
                .is_some_and(|e| e.support_measure || roster.household_protected(&e.household))
        {
            return true;
        }
        self.household_of(p, roster)
            .is_some_and(|h| self.dv_blocked(&h))
            || self
                .dv_listed
                .get(p)
                .is_some_and(|hs| hs.iter().any(|h| self.dv_blocked(h)))
    }

    /// The consent level of one record as of `as_of`: the later of its own consent event and
    /// its household card (a member's own level on the card overriding the household's);
    /// `Nobody` with neither. The DV block is not judged here ([`State::dv_withheld`]).
    pub fn consent_level(
        &self,
        p: &PersonRef,
        roster: &Roster,
        as_of: Option<Millis>,
    ) -> Disclosure {
        let own = self
            .latest_in(&self.consents, p, as_of)
            .and_then(|e| match e.body() {
                EventBody::Consent { disclosure, .. } => Some((e.order_key(), *disclosure)),
                _ => None,
            });
        let card = self
            .household_of(p, roster)
            .and_then(|h| self.latest_in(&self.household_cards, &h, as_of))
            .and_then(|e: &Event| match e.body() {
                EventBody::HouseholdCard { card, .. } => {
                    let level = card
                        .members
                        .iter()
                        .find(|m| m.person == *p)
                        .and_then(|m| m.disclosure)
                        .unwrap_or(card.disclosure);
                    Some((e.order_key(), level))
                }
                _ => None,
            });
        match (own, card) {
            (Some((a, x)), Some((b, y))) => {
                if a > b {
                    x
                } else {
                    y
                }
            }
            (Some((_, x)), None) | (None, Some((_, x))) => x,
            (None, None) => Disclosure::Nobody,
        }
    }
}
