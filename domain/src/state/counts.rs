//! Shelter counts: one site's, every site's at once, and distinct persons registered.

use super::fold::State;
use super::stay::{CompactStay, PersonTrack, Status, StayVec};
use crate::event::{AgeBand, StayingPlace};
use crate::ids::{HouseholdRef, PersonRef, SiteId};
use crate::roster::{CareNeed, Roster, Sex};
use crate::time::{CivilDate, Millis};
use std::collections::{BTreeMap, BTreeSet};

/// Counts for one shelter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteCounts {
    /// In the building.
    pub present: u32,
    /// Out for the day or overnight, still registered.
    pub on_leave: u32,
    /// Transferred here, not yet arrived.
    pub expected: u32,
    /// Left (checked out or transferred away).
    pub left: u32,
    /// Distinct households among the registered (present or on leave).
    pub households: u32,
    /// The registered, by sex; `None` key for unknown persons.
    pub by_sex: BTreeMap<Option<Sex>, u32>,
    /// The registered, by age band; `None` for unknown birth dates.
    pub by_age: BTreeMap<Option<AgeBand>, u32>,
    /// The registered with at least one 要配慮者 category.
    pub with_care_needs: u32,
    /// The registered, per 要配慮者 category (a person may count in several).
    pub care_needs: BTreeMap<CareNeed, u32>,
    /// Supported outside the building, by where they stay.
    pub support_only: BTreeMap<StayingPlace, u32>,
}

impl SiteCounts {
    /// Present plus on leave.
    pub fn registered(&self) -> u32 {
        self.present + self.on_leave
    }
}

pub(super) const SEXES: [Sex; 3] = [Sex::Male, Sex::Female, Sex::Unspecified];

/// One site's counts while [`State::all_site_counts`] runs: arrays, not maps, turned into a
/// [`SiteCounts`] once at the end.
#[derive(Default)]
pub(super) struct SiteAcc {
    pub(super) present: u32,
    pub(super) on_leave: u32,
    pub(super) expected: u32,
    pub(super) left: u32,
    pub(super) with_care_needs: u32,
    /// Unknown, then `SEXES`.
    pub(super) by_sex: [u32; 4],
    /// Unknown, then `AgeBand::ALL`.
    pub(super) by_age: [u32; 6],
    /// By position in `CareNeed::ALL`.
    pub(super) care_needs: [u32; 16],
    pub(super) support_only: BTreeMap<StayingPlace, u32>,
    pub(super) households: rustc_hash::FxHashSet<Result<HouseholdRef, PersonRef>>,
    /// Cluster representatives already counted here.
    pub(super) counted: BTreeSet<PersonRef>,
    pub(super) seen: bool,
}

impl SiteAcc {
    pub(super) fn sex_slot(s: Option<Sex>) -> usize {
        s.and_then(|s| SEXES.iter().position(|x| *x == s))
            .map_or(0, |i| i + 1)
    }
    pub(super) fn age_slot(b: Option<AgeBand>) -> usize {
        b.and_then(|b| AgeBand::ALL.iter().position(|x| *x == b))
            .map_or(0, |i| i + 1)
    }
    pub(super) fn need_slot(n: CareNeed) -> usize {
        CareNeed::ALL.iter().position(|x| *x == n).unwrap_or(15)
    }

    /// Add another part's counts (the cluster sets stay empty until the sequential pass).
    fn merge(&mut self, o: SiteAcc) {
        self.present += o.present;
        self.on_leave += o.on_leave;
        self.expected += o.expected;
        self.left += o.left;
        self.with_care_needs += o.with_care_needs;
        for (x, y) in self.by_sex.iter_mut().zip(o.by_sex) {
            *x += y;
        }
        for (x, y) in self.by_age.iter_mut().zip(o.by_age) {
            *x += y;
        }
        for (x, y) in self.care_needs.iter_mut().zip(o.care_needs) {
            *x += y;
        }
        for (k, v) in o.support_only {
            *self.support_only.entry(k).or_default() += v;
        }
        if self.households.len() < o.households.len() {
            let mine = std::mem::replace(&mut self.households, o.households);
            self.households.extend(mine);
        } else {
            self.households.extend(o.households);
        }
        self.counted.extend(o.counted);
        self.seen |= o.seen;
    }

    fn finish(self) -> SiteCounts {
        SiteCounts {
            present: self.present,
            on_leave: self.on_leave,
            expected: self.expected,
            left: self.left,
            households: u32::try_from(self.households.len()).unwrap_or(u32::MAX),
            by_sex: std::iter::once(None)
                .chain(SEXES.map(Some))
                .zip(self.by_sex)
                .filter(|(_, n)| *n > 0)
                .collect(),
            by_age: std::iter::once(None)
                .chain(AgeBand::ALL.map(Some))
                .zip(self.by_age)
                .filter(|(_, n)| *n > 0)
                .collect(),
            with_care_needs: self.with_care_needs,
            care_needs: CareNeed::ALL
                .into_iter()
                .zip(self.care_needs)
                .filter(|(_, n)| *n > 0)
                .collect(),
            support_only: self.support_only,
        }
    }
}

/// Every shelter's counts at once (see [`State::all_site_counts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllSiteCounts {
    /// Sites where someone has a stay; a site missing here has empty counts.
    pub by_site: BTreeMap<SiteId, SiteCounts>,
    /// Distinct persons registered at any shelter (same-as links applied).
    pub distinct_registered: u32,
}

impl State {
    /// Counts for one site. Ages are taken on `on` (for as-of queries, the JST date of `as_of`).
    pub fn site_counts(
        &self,
        site: &SiteId,
        roster: &Roster,
        on: CivilDate,
        as_of: Option<Millis>,
    ) -> SiteCounts {
        self.site_counts_with(site, roster, on, as_of, &self.clusters(as_of))
    }

    /// [`State::site_counts`] with the clusters already made (one pass for many sites).
    pub fn site_counts_with(
        &self,
        site: &SiteId,
        roster: &Roster,
        on: CivilDate,
        as_of: Option<Millis>,
        clusters: &crate::clusters::Clusters,
    ) -> SiteCounts {
        // The counting of `all_site_counts`, over this site's persons in id order: the first
        // record of a same-as cluster is the one counted.
        let Some(six) = self.sites.get(site) else {
            return SiteCounts::default();
        };
        let mut acc: Vec<SiteAcc> = Vec::new();
        acc.resize_with(six as usize + 1, SiteAcc::default);
        for (p, stay) in self.compact_stays_at(six, as_of) {
            self.count_person(&mut acc, &p, &[stay], roster, on, as_of, Some(clusters));
        }
        acc.pop().map(SiteAcc::finish).unwrap_or_default()
    }

    /// Every shelter's counts and the distinct persons registered anywhere, in one pass over
    /// the persons: each person's stays are replayed once (not once per site and again for the
    /// distinct count), on two threads. Equal to [`State::site_counts_with`] for every site
    /// with a stay and to [`State::distinct_registered`] (the property tests check both).
    pub fn all_site_counts(
        &self,
        roster: &Roster,
        on: CivilDate,
        as_of: Option<Millis>,
        clusters: &crate::clusters::Clusters,
    ) -> AllSiteCounts {
        let people: Vec<(&PersonRef, &PersonTrack)> = self.people.iter().collect();
        let sites = self.sites.ids.len();
        // Persons that same-as links join are set aside and counted after the rest, in id
        // order, so the first of a cluster at a site is the one counted, as in
        // `site_counts_with`. Everyone else is independent: each half is counted apart and
        // the sums (and household sets) merged, which gives the same answer in any split.
        let pass = |part: &[(&PersonRef, &PersonTrack)]| {
            let mut acc: Vec<SiteAcc> = Vec::new();
            acc.resize_with(sites, SiteAcc::default);
            let mut distinct: u32 = 0;
            let mut clustered: Vec<(PersonRef, StayVec)> = Vec::new();
            for &(p, t) in part {
                let derived;
                let stays = match as_of {
                    None => &t.stays,
                    Some(_) => {
                        derived = self.compact_stays(p, t, as_of);
                        &derived
                    }
                };
                if clusters.is_clustered(p) {
                    clustered.push((*p, stays.clone()));
                } else {
                    distinct += u32::from(stays.iter().any(|s| s.status.is_registered()));
                    self.count_person(&mut acc, p, stays, roster, on, as_of, None);
                }
            }
            (acc, distinct, clustered)
        };
        let half = people.len().div_ceil(2);
        let (first, second) = people.split_at(half);
        let (mut acc, mut distinct, mut clustered) = std::thread::scope(|scope| {
            let worker = (!second.is_empty())
                .then(|| {
                    std::thread::Builder::new()
                        .spawn_scoped(scope, || pass(second))
                        .ok()
                })
                .flatten();
            let mut a = pass(if worker.is_some() { first } else { &people });
            if let Some(b) = worker.and_then(|w| w.join().ok()) {
                for (x, y) in a.0.iter_mut().zip(b.0) {
                    x.merge(y);
                }
                a.1 += b.1;
                a.2.extend(b.2);
            }
            a
        });
        clustered.sort_unstable_by_key(|a| a.0);
        let mut reps: Vec<PersonRef> = Vec::new();
        for (p, stays) in &clustered {
            if stays.iter().any(|s| s.status.is_registered()) {
                reps.push(clusters.rep(p));
            }
            self.count_person(&mut acc, p, stays, roster, on, as_of, Some(clusters));
        }
        reps.sort_unstable();
        reps.dedup();
        distinct = distinct.saturating_add(u32::try_from(reps.len()).unwrap_or(u32::MAX));
        let by_site = (0..)
            .zip(acc)
            .filter(|(_, a)| a.seen)
            .filter_map(|(i, a)| Some((self.sites.id(i)?, a.finish())))
            .collect();
        AllSiteCounts {
            by_site,
            distinct_registered: distinct,
        }
    }

    /// Count one person's stays into the per-site accumulators. With `clusters`, a registered
    /// stay of a clustered record whose cluster was already counted at the site is skipped.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn count_person(
        &self,
        acc: &mut [SiteAcc],
        p: &PersonRef,
        stays: &[CompactStay],
        roster: &Roster,
        on: CivilDate,
        as_of: Option<Millis>,
        clusters: Option<&crate::clusters::Clusters>,
    ) {
        // (household, sex slot, age slot, care-need bits), read once per person.
        let mut facts: Option<(Result<HouseholdRef, PersonRef>, usize, usize, u16)> = None;
        for s in stays {
            let Some(a) = acc.get_mut(s.site as usize) else {
                continue;
            };
            a.seen = true;
            if let Some(c) = clusters
                && s.status.is_registered()
                && c.is_clustered(p)
                && !a.counted.insert(c.rep(p))
            {
                continue;
            }
            match s.status {
                Status::Present => a.present += 1,
                Status::OnLeave(_) => a.on_leave += 1,
                Status::Expected { .. } => a.expected += 1,
                Status::CheckedOut | Status::TransferredTo(_) => a.left += 1,
                Status::SupportOnly(place) => *a.support_only.entry(place).or_default() += 1,
            }
            if !s.status.is_registered() {
                continue;
            }
            let (household, sex, age, needs) = *facts.get_or_insert_with(|| {
                let mut bits = 0u16;
                let (h, sex, birth) =
                    self.facts_with(p, roster, as_of, |n| bits |= 1 << SiteAcc::need_slot(n));
                let age = birth.map(|b| AgeBand::of_age(b.age_on(on)));
                (
                    h.ok_or(*p),
                    SiteAcc::sex_slot(sex),
                    SiteAcc::age_slot(age),
                    bits,
                )
            });
            a.households.insert(household);
            if let Some(x) = a.by_sex.get_mut(sex) {
                *x += 1;
            }
            if let Some(x) = a.by_age.get_mut(age) {
                *x += 1;
            }
            if needs != 0 {
                a.with_care_needs += 1;
            }
            for (i, x) in a.care_needs.iter_mut().enumerate() {
                *x += u32::from(needs >> i & 1 == 1);
            }
        }
    }

    /// Distinct persons registered (present or on leave) at any shelter: a person registered
    /// at two sites, or as two records that same-as assertions join, counts once.
    pub fn distinct_registered(&self, as_of: Option<Millis>) -> u32 {
        let clusters = self.clusters(as_of);
        let mut reps: Vec<PersonRef> = Vec::new();
        for (p, t) in &self.people {
            let registered = match as_of {
                None => t.stays.iter().any(|s| s.status.is_registered()),
                Some(_) => self
                    .compact_stays(p, t, as_of)
                    .iter()
                    .any(|s| s.status.is_registered()),
            };
            if registered {
                reps.push(clusters.rep(p));
            }
        }
        reps.sort_unstable();
        reps.dedup();
        u32::try_from(reps.len()).unwrap_or(u32::MAX)
    }
}
