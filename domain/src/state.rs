//! The fold: a set of events to state.
//!
//! [`State`] is built by inserting events one at a time, in any order, any number of times; the
//! result depends only on the set of events (see the property tests). Events are ordered by
//! [`OrderKey`] (HLC time, then id), which every node computes the same way.
//!
//! A person's shelter stays depend only on that person's own stay events, so an event that
//! arrives late (a peer was offline) costs a replay of that person's history, not of the log.
//! An undo, whenever it arrives, removes its check-in's effect the same way.
//!
//! Every query takes `as_of: Option<Millis>`: `None` is the merged present; `Some(t)` answers as
//! the log stood with only the events whose HLC wall time is at most `t`. The present answers
//! come from state kept up to date on insert; the as-of answers are replayed from the same
//! histories, and the property tests check that both agree with folding the prefix alone.

use crate::event::{
    AgeBand, AlertOutcome, CheckOutReason, Event, EventBody, HouseholdCard, IdMethod, LeaveKind,
    OrderKey, SiteState, StatusReport, StayingPlace, VoteMode,
};
use crate::hlc::Timestamp;
use crate::ids::{
    AlertId, CardKey, DeviceId, EventId, HouseholdRef, OperatorId, PersonId, PersonRef, SiteId,
};
use crate::roster::{CareNeed, Roster, Sex};
use crate::time::{CivilDate, Millis};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, BTreeSet};

/// The events themselves: an append-only arena (sequential writes, compact) and an index by id.
/// Arena order is arrival order and means nothing; equality compares the sets of events.
#[derive(Debug, Clone, Default)]
struct EventStore {
    arena: Vec<Event>,
    index: FxHashMap<EventId, u32>,
}

impl EventStore {
    fn reserve(&mut self, n: usize) {
        self.arena.reserve(n);
        self.index.reserve(n);
    }
    fn get(&self, id: &EventId) -> Option<&Event> {
        self.index.get(id).and_then(|&i| self.arena.get(i as usize))
    }
    fn contains_key(&self, id: &EventId) -> bool {
        self.index.contains_key(id)
    }
    /// Add an event not yet present.
    fn insert(&mut self, id: EventId, event: Event) {
        if let Ok(i) = u32::try_from(self.arena.len()) {
            self.index.insert(id, i);
            self.arena.push(event);
        }
    }
    fn len(&self) -> usize {
        self.arena.len()
    }
    fn is_empty(&self) -> bool {
        self.arena.is_empty()
    }
    fn values(&self) -> impl Iterator<Item = &Event> {
        self.arena.iter()
    }
}

impl PartialEq for EventStore {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.arena.iter().all(|e| other.get(&e.id()) == Some(e))
    }
}

impl Eq for EventStore {}

/// A sorted, duplicate-free list of order keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History(Vec<OrderKey>);

impl History {
    /// Insert; returns true if the key went at the end (the in-order fast path).
    fn insert(&mut self, k: OrderKey) -> bool {
        match self.0.last() {
            None => {
                self.0.push(k);
                true
            }
            Some(last) if *last < k => {
                self.0.push(k);
                true
            }
            _ => {
                if let Err(pos) = self.0.binary_search(&k) {
                    self.0.insert(pos, k);
                }
                false
            }
        }
    }

    /// The keys visible as of `t` (all of them for `None`).
    pub fn upto(&self, as_of: Option<Millis>) -> &[OrderKey] {
        match as_of {
            None => &self.0,
            Some(t) => {
                let n = self.0.partition_point(|(ts, _)| ts.wall_ms <= t);
                self.0.get(..n).unwrap_or(&[])
            }
        }
    }

    /// The last key visible as of `t`.
    pub fn latest(&self, as_of: Option<Millis>) -> Option<&OrderKey> {
        self.upto(as_of).last()
    }
}

fn visible(key: &OrderKey, as_of: Option<Millis>) -> bool {
    as_of.is_none_or(|t| key.0.wall_ms <= t)
}

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

/// A person's stays as kept inside the state: a short vector sorted by site (most people have
/// one or two), far smaller than a B-tree node per person.
type StayVec = Vec<(SiteId, Stay)>;

fn stay_get(v: &StayVec, site: &SiteId) -> Option<Stay> {
    v.binary_search_by(|(s, _)| s.cmp(site))
        .ok()
        .and_then(|i| v.get(i))
        .map(|(_, st)| *st)
}

fn stay_set(v: &mut StayVec, site: SiteId, stay: Stay) {
    match v.binary_search_by(|(s, _)| s.cmp(&site)) {
        Ok(i) => {
            if let Some(slot) = v.get_mut(i) {
                slot.1 = stay;
            }
        }
        Err(i) => v.insert(i, (site, stay)),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PersonTrack {
    history: History,
    stays: StayVec,
}

/// One voter check-in, with what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VoteRecord {
    pub event: EventId,
    pub at: Timestamp,
    pub site: SiteId,
    pub device: DeviceId,
    pub operator: OperatorId,
    pub mode: VoteMode,
    pub method: IdMethod,
    /// Let through a block by two officers.
    pub overridden: bool,
    /// The undo that withdrew it, if any (as of the query time).
    pub undone_by: Option<EventId>,
}

/// What is known of a person for counting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonFacts {
    pub household: Option<HouseholdRef>,
    pub sex: Option<Sex>,
    pub birth_date: Option<CivilDate>,
    pub care_needs: BTreeSet<CareNeed>,
}

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

/// Early and election-day ballots counted at one station.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoteTally {
    pub early: u32,
    pub election_day: u32,
    /// Check-ins that overrode a block.
    pub overridden: u32,
    /// Check-ins withdrawn by an undo (not counted above).
    pub undone: u32,
}

/// A live same-as / not-same assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Assertion {
    pub event: EventId,
    pub a: PersonRef,
    pub b: PersonRef,
    pub same: bool,
}

/// Whether an insert added anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    Duplicate,
}

/// The state folded from a set of events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    events: EventStore,
    latest: Option<OrderKey>,
    /// Undo events by the event they withdraw.
    undos: FxHashMap<EventId, History>,
    people: FxHashMap<PersonRef, PersonTrack>,
    /// Persons with any stay event at (or transfer to) a site.
    site_people: FxHashMap<SiteId, FxHashSet<PersonRef>>,
    votes: FxHashMap<PersonId, History>,
    walk_ins: History,
    household_cards: FxHashMap<HouseholdRef, History>,
    card_bindings: FxHashMap<CardKey, History>,
    alert_resolutions: FxHashMap<AlertId, History>,
    assertions: History,
    retractions: FxHashMap<EventId, History>,
    status_reports: FxHashMap<SiteId, History>,
    site_states: FxHashMap<SiteId, History>,
    ballot_tallies: FxHashMap<SiteId, History>,
}

/// The undo that withdraws `target` as of `as_of`, if any (the earliest in order).
fn undone_by(
    undos: &FxHashMap<EventId, History>,
    target: &EventId,
    as_of: Option<Millis>,
) -> Option<EventId> {
    undos
        .get(target)
        .and_then(|h| h.upto(as_of).first())
        .map(|k| k.1)
}

/// Apply one stay event to a person's stays. `withdrawn` is true for an undone check-in.
fn step(stays: &mut StayVec, person: &PersonRef, ev: &Event, withdrawn: bool) {
    let at = ev.at();
    let site = ev.site();
    let set =
        |stays: &mut StayVec, site: SiteId, status: StayStatus, checked_in: Option<Timestamp>| {
            stay_set(
                stays,
                site,
                Stay {
                    status,
                    since: at,
                    event: ev.id(),
                    checked_in,
                },
            );
        };
    let current = stay_get(stays, &site);
    let checked_in = current.and_then(|s| s.checked_in);
    let registered = current.is_some_and(|s| s.status.is_registered());
    match ev.body() {
        EventBody::ShelterCheckIn { members, .. }
            if !withdrawn && members.as_slice().contains(person) =>
        {
            match current.map(|s| s.status) {
                // A second tap while present changes nothing; the stay began at the first.
                Some(StayStatus::Present) => {}
                // Checked in again while on leave: back, in the same stay.
                Some(StayStatus::OnLeave(_)) => set(stays, site, StayStatus::Present, checked_in),
                _ => set(stays, site, StayStatus::Present, Some(at)),
            }
        }
        EventBody::ShelterCheckOut { reason, .. } if registered => {
            set(
                stays,
                site,
                StayStatus::Left(Departure::CheckedOut(*reason)),
                checked_in,
            );
        }
        EventBody::TemporaryLeave { kind, .. }
            if current.is_some_and(|s| s.status == StayStatus::Present) =>
        {
            set(stays, site, StayStatus::OnLeave(*kind), checked_in);
        }
        EventBody::ReturnFromLeave { .. }
            if current.is_some_and(|s| matches!(s.status, StayStatus::OnLeave(_))) =>
        {
            set(stays, site, StayStatus::Present, checked_in);
        }
        EventBody::Transfer { to, .. } if registered => {
            set(
                stays,
                site,
                StayStatus::Left(Departure::TransferredTo(*to)),
                checked_in,
            );
            if !stay_get(stays, to).is_some_and(|s| s.status.is_registered()) {
                set(stays, *to, StayStatus::Expected { from: site }, None);
            }
        }
        EventBody::SupportOnlyRegistration { staying, .. } => {
            set(stays, site, StayStatus::SupportOnly(*staying), None);
        }
        _ => {}
    }
}

/// Replay a person's history as of `as_of`.
fn derive_stays(
    person: &PersonRef,
    history: &History,
    events: &EventStore,
    undos: &FxHashMap<EventId, History>,
    as_of: Option<Millis>,
) -> StayVec {
    let mut stays = StayVec::new();
    for (_, id) in history.upto(as_of) {
        if let Some(ev) = events.get(id) {
            let withdrawn = matches!(ev.body(), EventBody::ShelterCheckIn { .. })
                && undone_by(undos, id, as_of).is_some();
            step(&mut stays, person, ev, withdrawn);
        }
    }
    stays
}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fold a batch of events (sorted first, so that inserts take the fast path).
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> Self {
        let mut slots: Vec<Option<Event>> = events.into_iter().map(Some).collect();
        // Sort small keys, not the events themselves.
        let mut order: Vec<(OrderKey, u32)> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((e.as_ref()?.order_key(), u32::try_from(i).ok()?)))
            .collect();
        order.sort_unstable();
        let mut s = Self::new();
        s.events.reserve(slots.len());
        // Roughly one person per three events in real operations; a guess only saves rehashing.
        s.people.reserve(slots.len() / 3);
        for (_, i) in order {
            if let Some(e) = slots.get_mut(i as usize).and_then(Option::take) {
                s.insert(e);
            }
        }
        s
    }

    /// Add one event. Inserting the same event again changes nothing.
    pub fn insert(&mut self, event: Event) -> Inserted {
        let id = event.id();
        if self.events.contains_key(&id) {
            return Inserted::Duplicate;
        }
        let key = event.order_key();
        if self.latest.is_none_or(|l| l < key) {
            self.latest = Some(key);
        }
        let site = event.site();
        let State {
            events,
            undos,
            people,
            site_people,
            votes,
            walk_ins,
            household_cards,
            card_bindings,
            alert_resolutions,
            assertions,
            retractions,
            status_reports,
            site_states,
            ballot_tallies,
            ..
        } = self;
        events.insert(id, event);
        let Some(ev) = events.get(&id) else {
            return Inserted::New;
        };

        if let Some(members) = ev.body().stay_members() {
            let transfer_to = match ev.body() {
                EventBody::Transfer { to, .. } => Some(*to),
                _ => None,
            };
            for p in members.as_slice() {
                let track = people.entry(*p).or_insert_with(|| PersonTrack {
                    history: History(Vec::with_capacity(4)),
                    stays: StayVec::with_capacity(1),
                });
                let new_here = stay_get(&track.stays, &site).is_none();
                let at_end = track.history.insert(key);
                let withdrawn = matches!(ev.body(), EventBody::ShelterCheckIn { .. })
                    && undone_by(undos, &id, None).is_some();
                if at_end {
                    step(&mut track.stays, p, ev, withdrawn);
                } else {
                    track.stays = derive_stays(p, &track.history, events, undos, None);
                }
                // Every stay arises from an event here or a transfer here, both indexed, so a
                // person who already has a stay at this site is already in its index.
                if new_here {
                    site_people.entry(site).or_default().insert(*p);
                }
                if let Some(to) = transfer_to {
                    site_people.entry(to).or_default().insert(*p);
                }
            }
            return Inserted::New;
        }

        match ev.body() {
            EventBody::UndoCheckIn { target, .. } => {
                undos.entry(*target).or_default().insert(key);
                if let Some(EventBody::ShelterCheckIn { members, .. }) =
                    events.get(target).map(Event::body)
                {
                    for p in members.as_slice() {
                        if let Some(track) = people.get_mut(p) {
                            track.stays = derive_stays(p, &track.history, events, undos, None);
                        }
                    }
                }
            }
            EventBody::VoterCheckIn { voter, .. } => {
                votes.entry(*voter).or_default().insert(key);
            }
            EventBody::WalkInRegistration { .. } => {
                walk_ins.insert(key);
            }
            EventBody::HouseholdCard { household, .. } => {
                household_cards.entry(*household).or_default().insert(key);
            }
            EventBody::CardBinding { card, .. } => {
                card_bindings.entry(*card).or_default().insert(key);
            }
            EventBody::AlertResolution { alert, .. } => {
                alert_resolutions.entry(*alert).or_default().insert(key);
            }
            EventBody::SameAs { .. } | EventBody::NotSame { .. } => {
                assertions.insert(key);
            }
            EventBody::RetractAssertion { target, .. } => {
                retractions.entry(*target).or_default().insert(key);
            }
            EventBody::ShelterStatusReport(_) => {
                status_reports.entry(site).or_default().insert(key);
            }
            EventBody::SiteLifecycle(_) => {
                site_states.entry(site).or_default().insert(key);
            }
            EventBody::BallotTally { .. } => {
                ballot_tallies.entry(site).or_default().insert(key);
            }
            // Stay events were handled above.
            _ => {}
        }
        Inserted::New
    }

    /// Number of distinct events.
    pub fn len(&self) -> usize {
        self.events.len()
    }
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
    /// The greatest order key seen.
    pub fn latest(&self) -> Option<OrderKey> {
        self.latest
    }
    pub fn event(&self, id: &EventId) -> Option<&Event> {
        self.events.get(id)
    }
    pub fn contains(&self, id: &EventId) -> bool {
        self.events.contains_key(id)
    }
    /// All events in the agreed order.
    pub fn events_in_order(&self) -> Vec<&Event> {
        let mut v: Vec<&Event> = self.events.values().collect();
        v.sort_unstable_by_key(|e| e.order_key());
        v
    }

    fn event_of(&self, key: Option<&OrderKey>) -> Option<&Event> {
        key.and_then(|k| self.events.get(&k.1))
    }

    /// The undo withdrawing `target`, as of `as_of` (only check-ins can be withdrawn).
    pub fn undone_by(&self, target: &EventId, as_of: Option<Millis>) -> Option<EventId> {
        let is_check_in = self
            .events
            .get(target)
            .is_some_and(|e| e.body().is_check_in());
        if is_check_in {
            undone_by(&self.undos, target, as_of)
        } else {
            None
        }
    }

    /// The time of the latest event a new event with `body` acts upon: the members' last stay
    /// events, the check-in an undo withdraws, the assertion a retraction withdraws, the current
    /// household card, card binding or alert resolution, the voter's last check-in. A writer
    /// orders its new event after it (see `Hlc::tick_after`).
    pub fn causal_floor(&self, body: &EventBody) -> Option<Timestamp> {
        let last_of = |h: Option<&History>| h.and_then(|h| h.latest(None)).map(|k| k.0);
        let at_of = |id: &EventId| self.events.get(id).map(Event::at);
        match body {
            EventBody::UndoCheckIn { target, .. } | EventBody::RetractAssertion { target, .. } => {
                at_of(target)
            }
            EventBody::HouseholdCard { household, .. } => {
                last_of(self.household_cards.get(household))
            }
            EventBody::CardBinding { card, .. } => last_of(self.card_bindings.get(card)),
            EventBody::AlertResolution { alert, .. } => last_of(self.alert_resolutions.get(alert)),
            EventBody::VoterCheckIn { voter, .. } => last_of(self.votes.get(voter)),
            _ => body.stay_members().and_then(|m| {
                m.as_slice()
                    .iter()
                    .filter_map(|p| last_of(self.people.get(p).map(|t| &t.history)))
                    .max()
            }),
        }
    }

    // ----- shelters -----

    /// Everyone with a stay event, in id order.
    pub fn persons(&self) -> Vec<PersonRef> {
        let mut v: Vec<PersonRef> = self.people.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// A person's stays, by site.
    pub fn stays(&self, person: &PersonRef, as_of: Option<Millis>) -> Stays {
        match (self.people.get(person), as_of) {
            (None, _) => Stays::new(),
            (Some(t), None) => t.stays.iter().copied().collect(),
            (Some(t), Some(_)) => {
                derive_stays(person, &t.history, &self.events, &self.undos, as_of)
                    .into_iter()
                    .collect()
            }
        }
    }

    /// Persons with a stay at `site`, in id order, with that stay.
    pub fn stays_at(&self, site: &SiteId, as_of: Option<Millis>) -> Vec<(PersonRef, Stay)> {
        let Some(set) = self.site_people.get(site) else {
            return Vec::new();
        };
        let mut out: Vec<(PersonRef, Stay)> = set
            .iter()
            .filter_map(|p| {
                let stay = match as_of {
                    None => self.people.get(p).and_then(|t| stay_get(&t.stays, site)),
                    Some(_) => self.people.get(p).and_then(|t| {
                        stay_get(
                            &derive_stays(p, &t.history, &self.events, &self.undos, as_of),
                            site,
                        )
                    }),
                };
                stay.map(|s| (*p, s))
            })
            .collect();
        out.sort_unstable();
        out
    }

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
            .get(registration)
            .filter(|e| visible(&e.order_key(), as_of))?;
        match ev.body() {
            EventBody::WalkInRegistration { members, .. } => members.get(usize::from(*index)),
            _ => None,
        }
    }

    /// All walk-ins registered as of `as_of`, in order of registration.
    pub fn walk_ins(&self, as_of: Option<Millis>) -> Vec<(PersonRef, &crate::event::WalkInPerson)> {
        let mut out = Vec::new();
        for (_, id) in self.walk_ins.upto(as_of) {
            if let Some(EventBody::WalkInRegistration { members, .. }) =
                self.events.get(id).map(Event::body)
            {
                for (i, m) in members.iter().enumerate() {
                    let index = u16::try_from(i).unwrap_or(u16::MAX);
                    out.push((
                        PersonRef::WalkIn {
                            registration: *id,
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
            .event_of(self.household_cards.get(h).and_then(|x| x.latest(as_of)))
            .map(Event::body)
        {
            Some(EventBody::HouseholdCard { card, .. }) => Some(card),
            _ => None,
        }
    }

    /// What is known of a person from the roster, walk-in registration and household card.
    pub fn person_facts(
        &self,
        person: &PersonRef,
        roster: &Roster,
        as_of: Option<Millis>,
    ) -> PersonFacts {
        let mut f = PersonFacts::default();
        match person {
            PersonRef::Roster(id) => {
                if let Some(e) = roster.get(id) {
                    f.household = Some(HouseholdRef::Roster(e.household));
                    f.sex = Some(e.sex);
                    f.birth_date = Some(e.birth_date);
                    f.care_needs.extend(e.care_needs.iter().copied());
                }
            }
            PersonRef::WalkIn { registration, .. } => {
                if let Some(w) = self.walk_in(person, as_of) {
                    f.household = Some(HouseholdRef::WalkIn(*registration));
                    f.sex = Some(w.sex);
                    f.birth_date = w.birth_date;
                    f.care_needs.extend(w.care_needs.iter().copied());
                }
            }
        }
        if let Some(card) = f.household.and_then(|h| self.household_card(&h, as_of))
            && let Some(m) = card.members.iter().find(|m| m.person == *person)
        {
            f.care_needs.extend(m.care_needs.iter().copied());
        }
        f
    }

    /// Counts for one site. Ages are taken on `on` (for as-of queries, the JST date of `as_of`).
    pub fn site_counts(
        &self,
        site: &SiteId,
        roster: &Roster,
        on: CivilDate,
        as_of: Option<Millis>,
    ) -> SiteCounts {
        let mut c = SiteCounts::default();
        let mut households: BTreeSet<Result<HouseholdRef, PersonRef>> = BTreeSet::new();
        for (p, stay) in self.stays_at(site, as_of) {
            match stay.status {
                StayStatus::Present => c.present += 1,
                StayStatus::OnLeave(_) => c.on_leave += 1,
                StayStatus::Expected { .. } => c.expected += 1,
                StayStatus::Left(_) => c.left += 1,
                StayStatus::SupportOnly(place) => *c.support_only.entry(place).or_default() += 1,
            }
            if !stay.status.is_registered() {
                continue;
            }
            let f = self.person_facts(&p, roster, as_of);
            households.insert(f.household.ok_or(p));
            *c.by_sex.entry(f.sex).or_default() += 1;
            *c.by_age
                .entry(f.birth_date.map(|b| AgeBand::of_age(b.age_on(on))))
                .or_default() += 1;
            if !f.care_needs.is_empty() {
                c.with_care_needs += 1;
            }
            for n in f.care_needs {
                *c.care_needs.entry(n).or_default() += 1;
            }
        }
        c.households = u32::try_from(households.len()).unwrap_or(u32::MAX);
        c
    }

    // ----- elections -----

    /// A voter's check-ins in order, undone ones included (marked).
    pub fn votes_of(&self, voter: &PersonId, as_of: Option<Millis>) -> Vec<VoteRecord> {
        let Some(h) = self.votes.get(voter) else {
            return Vec::new();
        };
        h.upto(as_of)
            .iter()
            .filter_map(|(_, id)| {
                let ev = self.events.get(id)?;
                let EventBody::VoterCheckIn {
                    mode,
                    method,
                    override_,
                    ..
                } = ev.body()
                else {
                    return None;
                };
                Some(VoteRecord {
                    event: *id,
                    at: ev.at(),
                    site: ev.site(),
                    device: ev.device(),
                    operator: ev.operator(),
                    mode: *mode,
                    method: *method,
                    overridden: override_.is_some(),
                    undone_by: self.undone_by(id, as_of),
                })
            })
            .collect()
    }

    /// Voters with at least one check-in event (undone or not), in id order.
    pub fn voters(&self) -> Vec<PersonId> {
        let mut v: Vec<PersonId> = self.votes.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Check-ins that stand (not undone) for a voter.
    pub fn standing_votes(&self, voter: &PersonId, as_of: Option<Millis>) -> Vec<VoteRecord> {
        let mut v = self.votes_of(voter, as_of);
        v.retain(|r| r.undone_by.is_none());
        v
    }

    /// Ballots per station.
    pub fn vote_tallies(&self, as_of: Option<Millis>) -> BTreeMap<SiteId, VoteTally> {
        let mut out: BTreeMap<SiteId, VoteTally> = BTreeMap::new();
        for voter in self.votes.keys() {
            for r in self.votes_of(voter, as_of) {
                let t = out.entry(r.site).or_default();
                if r.undone_by.is_some() {
                    t.undone += 1;
                    continue;
                }
                match r.mode {
                    VoteMode::Early(_) => t.early += 1,
                    VoteMode::ElectionDay => t.election_day += 1,
                }
                if r.overridden {
                    t.overridden += 1;
                }
            }
        }
        out
    }

    /// Hand-counted ballot tallies entered at a station, in order: (period end, ballots issued).
    pub fn ballot_tallies(&self, site: &SiteId, as_of: Option<Millis>) -> Vec<(Millis, u32)> {
        let Some(h) = self.ballot_tallies.get(site) else {
            return Vec::new();
        };
        h.upto(as_of)
            .iter()
            .filter_map(|(_, id)| match self.events.get(id).map(Event::body) {
                Some(EventBody::BallotTally {
                    period_end,
                    ballots_issued,
                }) => Some((*period_end, *ballots_issued)),
                _ => None,
            })
            .collect()
    }

    // ----- cards, identity, alerts, sites -----

    /// The person a card key is bound to (the latest binding wins; `None` if unbound).
    pub fn card_binding(&self, card: &CardKey, as_of: Option<Millis>) -> Option<PersonRef> {
        match self
            .event_of(self.card_bindings.get(card).and_then(|h| h.latest(as_of)))
            .map(Event::body)
        {
            Some(EventBody::CardBinding { person, .. }) => *person,
            _ => None,
        }
    }

    /// Same-as / not-same assertions not retracted, in order.
    pub fn assertions(&self, as_of: Option<Millis>) -> Vec<Assertion> {
        self.assertions
            .upto(as_of)
            .iter()
            .filter(|(_, id)| {
                !self
                    .retractions
                    .get(id)
                    .is_some_and(|r| !r.upto(as_of).is_empty())
            })
            .filter_map(|(_, id)| match self.events.get(id).map(Event::body) {
                Some(EventBody::SameAs { a, b, .. }) => Some(Assertion {
                    event: *id,
                    a: *a,
                    b: *b,
                    same: true,
                }),
                Some(EventBody::NotSame { a, b, .. }) => Some(Assertion {
                    event: *id,
                    a: *a,
                    b: *b,
                    same: false,
                }),
                _ => None,
            })
            .collect()
    }

    /// The latest resolution of an alert.
    pub fn alert_outcome(&self, alert: &AlertId, as_of: Option<Millis>) -> Option<AlertOutcome> {
        match self
            .event_of(
                self.alert_resolutions
                    .get(alert)
                    .and_then(|h| h.latest(as_of)),
            )
            .map(Event::body)
        {
            Some(EventBody::AlertResolution { outcome, .. }) => Some(*outcome),
            _ => None,
        }
    }

    /// The latest status report of a site, with its time.
    pub fn latest_status_report(
        &self,
        site: &SiteId,
        as_of: Option<Millis>,
    ) -> Option<(Timestamp, &StatusReport)> {
        let ev = self.event_of(self.status_reports.get(site).and_then(|h| h.latest(as_of)))?;
        match ev.body() {
            EventBody::ShelterStatusReport(r) => Some((ev.at(), r)),
            _ => None,
        }
    }

    /// Whether a site is open, and since when (the latest open/close event).
    pub fn site_state(
        &self,
        site: &SiteId,
        as_of: Option<Millis>,
    ) -> Option<(SiteState, Timestamp)> {
        let ev = self.event_of(self.site_states.get(site).and_then(|h| h.latest(as_of)))?;
        match ev.body() {
            EventBody::SiteLifecycle(s) => Some((*s, ev.at())),
            _ => None,
        }
    }

    /// The time of the last event written at each site (for staleness).
    pub fn last_event_per_site(&self, as_of: Option<Millis>) -> BTreeMap<SiteId, Timestamp> {
        let mut out: BTreeMap<SiteId, Timestamp> = BTreeMap::new();
        for ev in self.events.values() {
            if visible(&ev.order_key(), as_of) {
                let e = out.entry(ev.site()).or_default();
                if ev.at() > *e {
                    *e = ev.at();
                }
            }
        }
        out
    }
}
