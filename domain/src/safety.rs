//! Safety confirmation (安否確認): "is this person safe, and where?" asked of the whole merged
//! log, by name (variant-tolerant: 髙/高, kana in either script), birth date (also 和暦) or
//! address.
//!
//! Every answer honours the person's consent: the disclosure level on their household card (a
//! member's own level overrides the household's), or their own consent recorded at reception
//! when later, must reach the asker — relatives, acquaintances or the public. With neither,
//! nothing is disclosed. A person whose household carried the DV block (DV被害者等) on any card
//! not since lifted by a manager's [`crate::event::EventBody::DvBlockLift`], whose roster
//! household has a resident under 支援措置, or who is joined by a same-as link to such a
//! record, is never disclosed, to anyone, for any `as_of`: such a person is simply absent from
//! the answers, exactly as someone never registered is.

use crate::event::Disclosure;
use crate::hlc::Timestamp;
use crate::ids::{PersonRef, SiteId};
use crate::normalize::fold;
use crate::roster::Roster;
use crate::search::Query;
use crate::state::{State, StayStatus};
use crate::time::{CivilDate, Millis};

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Asker {
    /// 親族 (relatives, including household members).
    Relative,
    /// 知人 (acquaintances, neighbours, employers).
    Acquaintance,
    /// 一般 (the public, the press, person-finder services).
    Public,
}

impl Asker {
    /// Whether a person who agreed to `d` may be disclosed to this asker.
    pub fn may_know(self, d: Disclosure) -> bool {
        match self {
            Asker::Relative => d >= Disclosure::Relatives,
            Asker::Acquaintance => d >= Disclosure::Acquaintances,
            Asker::Public => d >= Disclosure::Public,
        }
    }
}

/// Where a person is, as far as may be said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whereabouts {
    /// In the shelter, or out for the day or night and coming back.
    AtShelter,
    /// Supported by the shelter while staying at home, in a car, a tent, with relatives.
    SupportedOutside,
    /// Left the shelter (gone home, moved on).
    Left,
    /// On the way to the shelter (transferred).
    Expected,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyAnswer {
    pub person: PersonRef,
    pub name: String,
    pub kana: Option<String>,
    pub birth_date: Option<CivilDate>,
    pub site: SiteId,
    pub whereabouts: Whereabouts,
    /// When that stay began or last changed.
    pub since: Timestamp,
}

/// Consent of one record: `None` if it must never be disclosed; otherwise the widest audience
/// it agreed to (`Nobody` without a household card or a consent).
///
/// The DV block and 支援措置 are judged on the whole log, whatever `as_of` says
/// ([`State::dv_withheld`]): a report for an hour before the block was set withholds the
/// person as well. The level is the narrower of what stood at `as_of` and what stands now, so
/// a consent withdrawn later also withdraws it from the earlier reports.
pub fn consent(
    state: &State,
    roster: &Roster,
    p: &PersonRef,
    as_of: Option<Millis>,
) -> Option<Disclosure> {
    if state.dv_withheld(p, roster) {
        return None;
    }
    let now = state.consent_level(p, roster, None);
    Some(match as_of {
        None => now,
        Some(_) => now.min(state.consent_level(p, roster, as_of)),
    })
}

/// The same-as clusters a consent is judged over: those standing at the report's time and
/// those standing now (a link made or retracted since still joins the records for the
/// purpose of withholding).
#[derive(Debug, Clone)]
pub struct ConsentClusters {
    at: crate::clusters::Clusters,
    now: Option<crate::clusters::Clusters>,
    as_of: Option<Millis>,
}

impl ConsentClusters {
    /// Build both (once per report or search).
    pub fn new(state: &State, as_of: Option<Millis>) -> Self {
        ConsentClusters {
            at: state.clusters(as_of),
            now: as_of.map(|_| state.clusters(None)),
            as_of,
        }
    }
    /// The time the consents are asked for.
    pub fn as_of(&self) -> Option<Millis> {
        self.as_of
    }
}

/// The consent of a person: the narrowest over the record and every record same-as links
/// join to it (at `clusters.as_of()` or now); `None` if any of them is under the DV block or
/// 支援措置.
pub fn person_consent(
    state: &State,
    roster: &Roster,
    clusters: &ConsentClusters,
    p: &PersonRef,
) -> Option<Disclosure> {
    let as_of = clusters.as_of;
    let mut least = Some(Disclosure::Public);
    let now = clusters
        .now
        .as_ref()
        .map(|c| c.members(p))
        .unwrap_or_default();
    for m in clusters
        .at
        .members(p)
        .iter()
        .chain(now.iter())
        .chain(std::iter::once(p))
    {
        least = match (least, consent(state, roster, m, as_of)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
    }
    least
}

/// People known to the log matching `query` whom `asker` may be told about, at most `limit`
/// (folds everyone first: a caller that asks more than once keeps a [`SafetyIndex`]).
pub fn safety_search(
    state: &State,
    roster: &Roster,
    query: &str,
    asker: Asker,
    as_of: Option<Millis>,
    limit: usize,
) -> Vec<SafetyAnswer> {
    let mut index = SafetyIndex::default();
    index.refresh(state, roster);
    index.search(state, roster, query, asker, as_of, limit)
}

/// Everyone the log knows, with name, reading and address folded once. A record's identity
/// never changes once known (the roster is pinned; a walk-in's registration is one event), so
/// [`SafetyIndex::refresh`] only folds the records that are new since the last call.
#[derive(Debug, Clone, Default)]
pub struct SafetyIndex {
    rows: std::collections::BTreeMap<PersonRef, Folded>,
    /// The number of events the index was last refreshed at.
    seen: usize,
}

#[derive(Debug, Clone)]
struct Folded {
    name: String,
    kana: String,
    address: String,
    birth: Option<CivilDate>,
}

impl SafetyIndex {
    /// Fold the records the index does not hold yet (nothing to do if no event arrived).
    pub fn refresh(&mut self, state: &State, roster: &Roster) {
        if self.seen == state.len() && !self.rows.is_empty() {
            return;
        }
        for p in state.persons() {
            if self.rows.contains_key(&p) {
                continue;
            }
            // A walk-in whose registration has not arrived yet is folded when it does.
            if let Some(who) = state.identity(&p, roster, None) {
                self.rows.insert(
                    p,
                    Folded {
                        name: fold(&who.name),
                        kana: who.kana.as_deref().map(fold).unwrap_or_default(),
                        address: who.address.as_deref().map(fold).unwrap_or_default(),
                        birth: who.birth_date,
                    },
                );
            }
        }
        self.seen = state.len();
    }

    /// Records folded so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// [`safety_search`] over the folded records (call [`SafetyIndex::refresh`] first).
    pub fn search(
        &self,
        state: &State,
        roster: &Roster,
        query: &str,
        asker: Asker,
        as_of: Option<Millis>,
        limit: usize,
    ) -> Vec<SafetyAnswer> {
        let q = Query::parse(query);
        if q.is_empty() {
            return Vec::new();
        }
        let clusters = ConsentClusters::new(state, as_of);
        let mut out = Vec::new();
        for (p, f) in &self.rows {
            if out.len() >= limit {
                break;
            }
            if !q.matches(&f.name, &f.kana, &f.address, f.birth) {
                continue;
            }
            // As of an earlier time a walk-in may not be registered yet.
            let Some(who) = state.identity(p, roster, as_of) else {
                continue;
            };
            // The narrowest consent among the records that are this one person; any DV block
            // among them withholds all of them.
            if !person_consent(state, roster, &clusters, p).is_some_and(|d| asker.may_know(d)) {
                continue;
            }
            for (site, stay) in state.stays(p, as_of).iter() {
                let whereabouts = match stay.status {
                    StayStatus::Present | StayStatus::OnLeave(_) => Whereabouts::AtShelter,
                    StayStatus::SupportOnly(_) => Whereabouts::SupportedOutside,
                    StayStatus::Left(_) => Whereabouts::Left,
                    StayStatus::Expected { .. } => Whereabouts::Expected,
                };
                out.push(SafetyAnswer {
                    person: *p,
                    name: who.name.to_string(),
                    kana: who.kana.as_deref().map(str::to_owned),
                    birth_date: who.birth_date,
                    site: *site,
                    whereabouts,
                    since: stay.since,
                });
            }
        }
        out
    }
}
