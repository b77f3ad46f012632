//! 安否未確認 (safety unconfirmed): roster household members not seen anywhere while the rest
//! of their household was (issue 26, requirement 3).
//!
//! A roster household is *on the list* when at least one member has been seen — has a shelter
//! stay at any site (check-in not undone, support-only registration, transfer, check-out) or a
//! voter check-in — as of `as_of`, and another member is *unaccounted for*: no stay anywhere,
//! no vote, no standing "reported safe" event (`EventBody::ReportedSafe`, not retracted), and
//! no record linked to them by a standing same-as assertion that is accounted for. A person
//! is judged through their same-as cluster, so a walk-in later linked to a roster resident
//! accounts for that resident.
//!
//! **DV block and 支援措置.** A household with any member under `State::dv_withheld` (judged on
//! the whole log, as every disclosure is) is never named: its unaccounted members are counted
//! only, in [`UnconfirmedList::withheld_persons`] and [`UnconfirmedList::withheld_households`]
//! — no id, no site, no row.
//!
//! **Who sees it.** The list is for the deployment's own staff (the command center, a site's
//! lead); it answers no outside asker, so the consent levels of safety answers
//! (`crate::safety`) do not narrow it further — the DV rule does.
//!
//! Pure: time is an argument; the result depends only on the set of events and the roster.

use crate::clusters::Clusters;
use crate::ids::{HouseholdId, PersonId, PersonRef, SiteId};
use crate::roster::Roster;
use crate::state::State;
use crate::time::Millis;
use std::collections::{BTreeMap, BTreeSet};

/// One household on the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnconfirmedHousehold {
    pub household: HouseholdId,
    /// The sites where the household's seen members have (or had) a stay, sorted.
    pub sites: Vec<SiteId>,
    /// Members seen or otherwise accounted for.
    pub accounted: u32,
    /// Members not accounted for, by person id.
    pub missing: Vec<PersonId>,
}

/// The list, households in id order, and what it withholds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnconfirmedList {
    pub households: Vec<UnconfirmedHousehold>,
    /// Households on the list but under the DV block or 支援措置: counted, never named.
    pub withheld_households: u32,
    /// Their unaccounted members.
    pub withheld_persons: u32,
}

impl UnconfirmedList {
    /// Unaccounted persons shown by name.
    pub fn missing_count(&self) -> usize {
        self.households.iter().map(|h| h.missing.len()).sum()
    }
}

/// Whether a record itself (not its cluster) is seen at a site or a polling station.
fn seen_alone(state: &State, p: &PersonRef, as_of: Option<Millis>) -> bool {
    !state.stays(p, as_of).is_empty()
        || matches!(p, PersonRef::Roster(id) if !state.votes_of(id, as_of).is_empty())
}

/// Whether `p` is seen, through their same-as cluster.
fn seen(state: &State, clusters: &Clusters, p: &PersonRef, as_of: Option<Millis>) -> bool {
    clusters
        .members(p)
        .iter()
        .any(|m| seen_alone(state, m, as_of))
        || seen_alone(state, p, as_of)
}

/// Whether `p` is accounted for: seen, or reported safe, through their same-as cluster.
pub fn accounted_for(
    state: &State,
    clusters: &Clusters,
    p: &PersonRef,
    as_of: Option<Millis>,
) -> bool {
    seen(state, clusters, p, as_of)
        || state.reported_safe(p, as_of)
        || clusters
            .members(p)
            .iter()
            .any(|m| state.reported_safe(m, as_of))
}

/// The 安否未確認 list as of `as_of`: every household, or those with a stay at `site`.
pub fn unconfirmed(
    state: &State,
    roster: &Roster,
    as_of: Option<Millis>,
    site: Option<SiteId>,
) -> UnconfirmedList {
    let clusters = state.clusters(as_of);
    // Candidate households: those of every record seen (directly or through a link).
    let mut candidates: BTreeSet<HouseholdId> = BTreeSet::new();
    let mut seen_records: Vec<PersonRef> = state.persons();
    seen_records.extend(state.voters().into_iter().map(PersonRef::Roster));
    for r in &seen_records {
        if !seen_alone(state, r, as_of) {
            continue;
        }
        for m in clusters.members(r).iter().chain(std::iter::once(r)) {
            if let PersonRef::Roster(id) = m
                && let Some(e) = roster.get(id)
            {
                candidates.insert(e.household);
            }
        }
    }
    let mut out = UnconfirmedList::default();
    for h in candidates {
        let members = roster.household(&h);
        let mut sites: BTreeSet<SiteId> = BTreeSet::new();
        let mut missing = Vec::new();
        let mut accounted = 0u32;
        let mut any_seen = false;
        for e in &members {
            let p = PersonRef::Roster(e.person);
            if seen(state, &clusters, &p, as_of) {
                any_seen = true;
                for m in clusters.members(&p).iter().chain(std::iter::once(&p)) {
                    sites.extend(state.stays(m, as_of).keys().copied());
                }
            }
            if accounted_for(state, &clusters, &p, as_of) {
                accounted = accounted.saturating_add(1);
            } else {
                missing.push(e.person);
            }
        }
        if !any_seen || missing.is_empty() || site.is_some_and(|s| !sites.contains(&s)) {
            continue;
        }
        let withheld = members
            .iter()
            .any(|e| state.dv_withheld(&PersonRef::Roster(e.person), roster));
        if withheld {
            out.withheld_households = out.withheld_households.saturating_add(1);
            let n = u32::try_from(missing.len()).unwrap_or(u32::MAX);
            out.withheld_persons = out.withheld_persons.saturating_add(n);
            continue;
        }
        missing.sort();
        out.households.push(UnconfirmedHousehold {
            household: h,
            sites: sites.into_iter().collect(),
            accounted,
            missing,
        });
    }
    out
}

/// The unaccounted members of one household (for reception, when part of it arrives), or
/// `None` when the household is withheld (DV block, 支援措置) or unknown.
pub fn household_missing(
    state: &State,
    roster: &Roster,
    household: &HouseholdId,
    as_of: Option<Millis>,
) -> Option<Vec<PersonId>> {
    let members = roster.household(household);
    if members.is_empty()
        || members
            .iter()
            .any(|e| state.dv_withheld(&PersonRef::Roster(e.person), roster))
    {
        return None;
    }
    let clusters = state.clusters(as_of);
    Some(
        members
            .iter()
            .filter(|e| !accounted_for(state, &clusters, &PersonRef::Roster(e.person), as_of))
            .map(|e| e.person)
            .collect(),
    )
}

/// Household → missing members, for callers that want a map.
pub fn as_map(list: &UnconfirmedList) -> BTreeMap<HouseholdId, Vec<PersonId>> {
    list.households
        .iter()
        .map(|h| (h.household, h.missing.clone()))
        .collect()
}
