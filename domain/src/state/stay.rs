//! A person's stays: the public and compact stay types, and the replay of a person's stay
//! events into stays.

use super::arena::{EventStore, History, Ix, NO_EVENT, SiteIx, SiteTable};
use crate::event::{CheckOutReason, Event, EventBody, LeaveKind, StayingPlace};
use crate::hlc::Timestamp;
use crate::ids::{EventId, PersonRef, SiteId};
use crate::time::Millis;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::collections::BTreeMap;
use std::hash::Hash;

/// Why a stay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Departure {
    CheckedOut(CheckOutReason),
    TransferredTo(SiteId),
}

/// A person's status at one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StayStatus {
    /// 在所.
    Present,
    /// 外出 / 外泊: still registered at the site.
    OnLeave(LeaveKind),
    /// 退所.
    Left(Departure),
    /// Transferred here from another site, not yet checked in.
    Expected { from: SiteId },
    /// Supported by this site while staying elsewhere (在宅・車中泊・テント).
    SupportOnly(StayingPlace),
}

impl StayStatus {
    /// Present or on leave: counted as an evacuee of the site.
    pub fn is_registered(&self) -> bool {
        matches!(self, StayStatus::Present | StayStatus::OnLeave(_))
    }
}

/// A person's stay at one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stay {
    pub status: StayStatus,
    /// Time of the event that set the status.
    pub since: Timestamp,
    /// That event.
    pub event: EventId,
    /// When the current stay began (the check-in), if checked in.
    pub checked_in: Option<Timestamp>,
}

/// A person's stays, by site.
pub type Stays = BTreeMap<SiteId, Stay>;

/// [`StayStatus`] with interned sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Present,
    OnLeave(LeaveKind),
    /// The reason is in the event.
    CheckedOut,
    TransferredTo(SiteIx),
    Expected {
        from: SiteIx,
    },
    SupportOnly(StayingPlace),
}

impl Status {
    pub(super) fn is_registered(self) -> bool {
        matches!(self, Status::Present | Status::OnLeave(_))
    }
}

/// [`Stay`] as kept inside the state: 16 bytes; times, ids and reasons are read from the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CompactStay {
    pub(super) site: SiteIx,
    pub(super) status: Status,
    /// The event that set the status.
    pub(super) event: Ix,
    /// The check-in that began the stay, or `NO_EVENT`.
    pub(super) checked_in: Ix,
}

/// A person's stays: a short vector (most people have one or two), the first inline.
pub(super) type StayVec = SmallVec<[CompactStay; 1]>;

pub(super) fn stay_get(v: &[CompactStay], site: SiteIx) -> Option<CompactStay> {
    v.iter().find(|s| s.site == site).copied()
}

pub(super) fn stay_set(v: &mut StayVec, stay: CompactStay) {
    match v.iter_mut().find(|s| s.site == stay.site) {
        Some(slot) => *slot = stay,
        None => v.push(stay),
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct PersonTrack {
    pub(super) history: History,
    pub(super) stays: StayVec,
}

/// The undo that withdraws `target` as of `as_of`, if any (the earliest in order).
pub(super) fn undone_by(
    undos: &FxHashMap<EventId, History>,
    target: &EventId,
    as_of: Option<Millis>,
    events: &EventStore,
) -> Option<Ix> {
    undos
        .get(target)
        .and_then(|h| h.upto(as_of, events).first().copied())
}

/// Apply one stay event (at arena index `ix`, at interned `site`, transferring to `to`) to a
/// person's stays. `withdrawn` is true for an undone check-in.
pub(super) fn step(
    stays: &mut StayVec,
    person: &PersonRef,
    ev: &Event,
    ix: Ix,
    site: SiteIx,
    to: Option<SiteIx>,
    withdrawn: bool,
) {
    let set = |stays: &mut StayVec, site: SiteIx, status: Status, checked_in: Ix| {
        stay_set(
            stays,
            CompactStay {
                site,
                status,
                event: ix,
                checked_in,
            },
        );
    };
    let current = stay_get(stays, site);
    let checked_in = current.map_or(NO_EVENT, |s| s.checked_in);
    let registered = current.is_some_and(|s| s.status.is_registered());
    match ev.body() {
        EventBody::ShelterCheckIn { members, .. }
            if !withdrawn && members.as_slice().contains(person) =>
        {
            match current.map(|s| s.status) {
                // A second tap while present changes nothing; the stay began at the first.
                Some(Status::Present) => {}
                // Checked in again while on leave: back, in the same stay.
                Some(Status::OnLeave(_)) => set(stays, site, Status::Present, checked_in),
                _ => set(stays, site, Status::Present, ix),
            }
        }
        EventBody::ShelterCheckOut { .. } if registered => {
            set(stays, site, Status::CheckedOut, checked_in);
        }
        EventBody::TemporaryLeave { kind, .. }
            if current.is_some_and(|s| s.status == Status::Present) =>
        {
            set(stays, site, Status::OnLeave(*kind), checked_in);
        }
        EventBody::ReturnFromLeave { .. }
            if current.is_some_and(|s| matches!(s.status, Status::OnLeave(_))) =>
        {
            set(stays, site, Status::Present, checked_in);
        }
        EventBody::Transfer { .. } if registered => {
            // `to` is interned whenever a transfer is inserted; without it, nothing moves.
            if let Some(to) = to {
                set(stays, site, Status::TransferredTo(to), checked_in);
                if !stay_get(stays, to).is_some_and(|s| s.status.is_registered()) {
                    set(stays, to, Status::Expected { from: site }, NO_EVENT);
                }
            }
        }
        EventBody::SupportOnlyRegistration { staying, .. } => {
            set(stays, site, Status::SupportOnly(*staying), NO_EVENT);
        }
        _ => {}
    }
}

/// Replay a person's history as of `as_of`.
pub(super) fn derive_stays(
    person: &PersonRef,
    history: &History,
    events: &EventStore,
    sites: &SiteTable,
    undos: &FxHashMap<EventId, History>,
    as_of: Option<Millis>,
) -> StayVec {
    let mut stays = StayVec::new();
    for &ix in history.upto(as_of, events) {
        let (Some(ev), Some(site)) = (events.get(ix), events.site_of(ix)) else {
            continue;
        };
        let to = match ev.body() {
            EventBody::Transfer { to, .. } => sites.get(to),
            _ => None,
        };
        let withdrawn = matches!(ev.body(), EventBody::ShelterCheckIn { .. })
            && undone_by(undos, &ev.id(), as_of, events).is_some();
        step(&mut stays, person, ev, ix, site, to, withdrawn);
    }
    stays
}

/// List a person at a site in the site index.
pub(super) fn index_site(site_people: &mut Vec<Vec<PersonRef>>, site: SiteIx, person: PersonRef) {
    let i = site as usize;
    if site_people.len() <= i {
        site_people.resize_with(i + 1, Vec::new);
    }
    if let Some(list) = site_people.get_mut(i) {
        list.push(person);
    }
}
