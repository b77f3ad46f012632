//! Stay queries: who stays where, now or as of a time.

use super::arena::SiteIx;
use super::fold::State;
use super::stay::{CompactStay, Stay, Stays, stay_get};
use crate::ids::{EventId, PersonRef, SiteId};
use crate::time::Millis;
use smallvec::SmallVec;

impl State {
    /// Everyone with a stay event, in id order.
    pub fn persons(&self) -> Vec<PersonRef> {
        let mut v: Vec<PersonRef> = self.people.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// A person's stays, by site.
    pub fn stays(&self, person: &PersonRef, as_of: Option<Millis>) -> Stays {
        match self.track(person) {
            None => Stays::new(),
            Some(t) => self.public_stays(&self.compact_stays(person, t, as_of)),
        }
    }

    /// Where a person is registered now (present or on leave), with the event that set each
    /// stay, in site order — the detector's cheap view of [`State::stays`].
    pub fn registered_at(&self, person: &PersonRef) -> SmallVec<[(SiteId, EventId); 2]> {
        let mut out: SmallVec<[(SiteId, EventId); 2]> = self
            .track(person)
            .map(|t| {
                t.stays
                    .iter()
                    .filter(|s| s.status.is_registered())
                    .filter_map(|s| Some((self.sites.id(s.site)?, self.events.get(s.event)?.id())))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_unstable();
        out
    }

    /// Persons with a stay at `site`, in id order, with that stay.
    pub fn stays_at(&self, site: &SiteId, as_of: Option<Millis>) -> Vec<(PersonRef, Stay)> {
        let Some(six) = self.sites.get(site) else {
            return Vec::new();
        };
        self.compact_stays_at(six, as_of)
            .into_iter()
            .filter_map(|(p, stay)| Some((p, self.public_stay(&stay)?.1)))
            .collect()
    }

    /// [`State::stays_at`] for an interned site, compact.
    pub(super) fn compact_stays_at(
        &self,
        six: SiteIx,
        as_of: Option<Millis>,
    ) -> Vec<(PersonRef, CompactStay)> {
        let Some(list) = self.site_people.get(six as usize) else {
            return Vec::new();
        };
        let mut persons = list.clone();
        persons.sort_unstable();
        persons.dedup();
        persons
            .iter()
            .filter_map(|p| {
                let t = self.people.get(p)?;
                let stay = match as_of {
                    None => stay_get(&t.stays, six),
                    Some(_) => stay_get(&self.compact_stays(p, t, as_of), six),
                }?;
                Some((*p, stay))
            })
            .collect()
    }
}
