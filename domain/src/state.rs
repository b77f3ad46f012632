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
//!
//! Inside, the state is compact: events sit in an append-only arena and everything else refers
//! to them by arena index (4 bytes, not a 32-byte order key); sites and persons are interned to
//! small integers. Arena and intern order is arrival order and means nothing: equality and every
//! query answer depend only on the set of events.

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
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;

/// Position of an event in the arena.
type Ix = u32;
/// Interned site.
type SiteIx = u32;
/// "No event" in a compact field.
const NO_EVENT: Ix = Ix::MAX;

/// The events themselves: an append-only arena, the interned site of each, and an index by id.
#[derive(Debug, Clone, Default)]
struct EventStore {
    arena: Vec<Event>,
    site_of: Vec<SiteIx>,
    /// Each event's HLC wall time, beside the arena: as-of cuts read only these 8 bytes.
    wall: Vec<Millis>,
    index: FxHashMap<EventId, Ix>,
}

impl EventStore {
    fn get(&self, ix: Ix) -> Option<&Event> {
        self.arena.get(ix as usize)
    }
    fn site_of(&self, ix: Ix) -> Option<SiteIx> {
        self.site_of.get(ix as usize).copied()
    }
    fn wall(&self, ix: Ix) -> Option<Millis> {
        self.wall.get(ix as usize).copied()
    }
    fn ix(&self, id: &EventId) -> Option<Ix> {
        self.index.get(id).copied()
    }
    fn by_id(&self, id: &EventId) -> Option<&Event> {
        self.ix(id).and_then(|i| self.get(i))
    }
    fn key(&self, ix: Ix) -> Option<OrderKey> {
        self.get(ix).map(Event::order_key)
    }
    fn id(&self, ix: Ix) -> Option<EventId> {
        self.get(ix).map(Event::id)
    }
    fn len(&self) -> usize {
        self.arena.len()
    }
}

/// Sites met in events, interned.
#[derive(Debug, Clone, Default)]
struct SiteTable {
    ids: Vec<SiteId>,
    index: FxHashMap<SiteId, SiteIx>,
}

impl SiteTable {
    fn intern(&mut self, site: SiteId) -> SiteIx {
        if let Some(&i) = self.index.get(&site) {
            return i;
        }
        // Sites are few (a deployment's); the events that name them are validated first.
        let i = SiteIx::try_from(self.ids.len()).unwrap_or(SiteIx::MAX);
        self.ids.push(site);
        self.index.insert(site, i);
        i
    }
    fn get(&self, site: &SiteId) -> Option<SiteIx> {
        self.index.get(site).copied()
    }
    fn id(&self, i: SiteIx) -> Option<SiteId> {
        self.ids.get(i as usize).copied()
    }
}

/// Arena indices of events, sorted by their order keys, without duplicates. Most histories
/// are short (a person's few stay events), so the first few live inline.
#[derive(Debug, Clone, Default)]
struct History(SmallVec<[Ix; 8]>);

impl History {
    /// Insert an event not yet present; returns true if it went at the end (the in-order
    /// fast path). `in_order` promises that it comes after every event present (the batch
    /// fold applies events in the agreed order), which saves reading the last one.
    fn insert(&mut self, ix: Ix, key: OrderKey, events: &EventStore, in_order: bool) -> bool {
        if in_order {
            self.0.push(ix);
            return true;
        }
        match self.0.last().and_then(|&l| events.key(l)) {
            Some(last) if key < last => {
                let pos = self
                    .0
                    .partition_point(|&i| events.key(i).is_some_and(|k| k < key));
                self.0.insert(pos, ix);
                false
            }
            _ => {
                self.0.push(ix);
                true
            }
        }
    }

    /// The events visible as of `t` (all of them for `None`).
    fn upto(&self, as_of: Option<Millis>, events: &EventStore) -> &[Ix] {
        match as_of {
            None => &self.0,
            Some(t) => {
                let n = self
                    .0
                    .partition_point(|&i| events.wall(i).is_some_and(|w| w <= t));
                self.0.get(..n).unwrap_or(&[])
            }
        }
    }

    /// The last event visible as of `t`.
    fn latest(&self, as_of: Option<Millis>, events: &EventStore) -> Option<Ix> {
        self.upto(as_of, events).last().copied()
    }

    fn ids(&self, events: &EventStore) -> Vec<EventId> {
        self.0.iter().filter_map(|&i| events.id(i)).collect()
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

/// [`StayStatus`] with interned sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
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
    fn is_registered(self) -> bool {
        matches!(self, Status::Present | Status::OnLeave(_))
    }
}

/// [`Stay`] as kept inside the state: 16 bytes; times, ids and reasons are read from the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CompactStay {
    site: SiteIx,
    status: Status,
    /// The event that set the status.
    event: Ix,
    /// The check-in that began the stay, or `NO_EVENT`.
    checked_in: Ix,
}

/// A person's stays: a short vector (most people have one or two), the first inline.
type StayVec = SmallVec<[CompactStay; 1]>;

fn stay_get(v: &[CompactStay], site: SiteIx) -> Option<CompactStay> {
    v.iter().find(|s| s.site == site).copied()
}

fn stay_set(v: &mut StayVec, stay: CompactStay) {
    match v.iter_mut().find(|s| s.site == stay.site) {
        Some(slot) => *slot = stay,
        None => v.push(stay),
    }
}

#[derive(Debug, Clone, Default)]
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

/// Who a person record is: name, reading, address and birth date as registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    pub name: &'a str,
    pub kana: Option<&'a str>,
    pub address: Option<&'a str>,
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

const SEXES: [Sex; 3] = [Sex::Male, Sex::Female, Sex::Unspecified];

/// One site's counts while [`State::all_site_counts`] runs: arrays, not maps, turned into a
/// [`SiteCounts`] once at the end.
#[derive(Default)]
struct SiteAcc {
    present: u32,
    on_leave: u32,
    expected: u32,
    left: u32,
    with_care_needs: u32,
    /// Unknown, then `SEXES`.
    by_sex: [u32; 4],
    /// Unknown, then `AgeBand::ALL`.
    by_age: [u32; 6],
    /// By position in `CareNeed::ALL`.
    care_needs: [u32; 16],
    support_only: BTreeMap<StayingPlace, u32>,
    households: rustc_hash::FxHashSet<Result<HouseholdRef, PersonRef>>,
    /// Cluster representatives already counted here.
    counted: BTreeSet<PersonRef>,
    seen: bool,
}

impl SiteAcc {
    fn sex_slot(s: Option<Sex>) -> usize {
        s.and_then(|s| SEXES.iter().position(|x| *x == s))
            .map_or(0, |i| i + 1)
    }
    fn age_slot(b: Option<AgeBand>) -> usize {
        b.and_then(|b| AgeBand::ALL.iter().position(|x| *x == b))
            .map_or(0, |i| i + 1)
    }
    fn need_slot(n: CareNeed) -> usize {
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
    /// The state already holds `u32::MAX` events; nothing was added.
    Full,
}

/// The state folded from a set of events.
#[derive(Debug, Clone, Default)]
pub struct State {
    events: EventStore,
    sites: SiteTable,
    latest: Option<OrderKey>,
    /// Undo events by the event they withdraw.
    undos: FxHashMap<EventId, History>,
    /// Kept in the map itself: one cache miss per stay event, not two.
    people: FxHashMap<PersonRef, PersonTrack>,
    /// Per interned site, the persons (by index) who had a stay there at some point; may hold
    /// a person twice or one whose stay there has since been withdrawn: readers check.
    site_people: Vec<Vec<PersonRef>>,
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
    events: &EventStore,
) -> Option<Ix> {
    undos
        .get(target)
        .and_then(|h| h.upto(as_of, events).first().copied())
}

/// Apply one stay event (at arena index `ix`, at interned `site`, transferring to `to`) to a
/// person's stays. `withdrawn` is true for an undone check-in.
fn step(
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
fn derive_stays(
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
fn index_site(site_people: &mut Vec<Vec<PersonRef>>, site: SiteIx, person: PersonRef) {
    let i = site as usize;
    if site_people.len() <= i {
        site_people.resize_with(i + 1, Vec::new);
    }
    if let Some(list) = site_people.get_mut(i) {
        list.push(person);
    }
}

/// A history inside a keyed map.
fn record<K: Eq + Hash>(
    map: &mut FxHashMap<K, History>,
    k: K,
    ix: Ix,
    key: OrderKey,
    events: &EventStore,
    in_order: bool,
) {
    map.entry(k).or_default().insert(ix, key, events, in_order);
}

/// What equality compares: every derived structure in terms of ids, independent of arrival
/// order.
#[derive(Debug, PartialEq, Eq)]
struct Canonical {
    latest: Option<OrderKey>,
    people: BTreeMap<PersonRef, (Vec<EventId>, Stays)>,
    site_people: BTreeMap<SiteId, BTreeSet<PersonRef>>,
    keyed: Vec<BTreeMap<String, Vec<EventId>>>,
    walk_ins: Vec<EventId>,
    assertions: Vec<EventId>,
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        self.events.len() == other.events.len()
            && self
                .events
                .arena
                .iter()
                .all(|e| other.events.by_id(&e.id()) == Some(e))
            && self.canonical() == other.canonical()
    }
}

impl Eq for State {}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fold a batch of events: they become the arena as they are (a `Vec` is not copied), and
    /// are applied in the agreed order, so that every history takes the in-order fast path.
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> Self {
        let mut arena: Vec<Event> = events.into_iter().collect();
        arena.truncate(NO_EVENT as usize);
        let sorted_keys = |arena: &[Event]| -> Vec<(OrderKey, Ix)> {
            let mut order: Vec<(OrderKey, Ix)> = arena
                .iter()
                .zip(0..)
                .map(|(e, i)| (e.order_key(), i))
                .collect();
            order.sort_unstable();
            order
        };
        let build_index = |arena: &[Event]| -> (FxHashMap<EventId, Ix>, bool) {
            let mut index = FxHashMap::default();
            index.reserve(arena.len());
            let mut duplicates = false;
            for (e, i) in arena.iter().zip(0..) {
                duplicates |= index.insert(e.id(), i).is_some();
            }
            (index, duplicates)
        };
        // Sort on this thread while another indexes the ids (both only read the arena).
        let (mut order, built) = std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .spawn_scoped(scope, || build_index(&arena))
                .ok();
            let order = sorted_keys(&arena);
            (order, worker.and_then(|w| w.join().ok()))
        });
        let (mut index, mut duplicates) = built.unwrap_or_else(|| build_index(&arena));
        if duplicates {
            // Equal ids mean equal events (and equal keys, adjacent in the order): keep one.
            let mut keep = vec![false; arena.len()];
            let mut previous: Option<OrderKey> = None;
            for (k, i) in &order {
                if previous != Some(*k)
                    && let Some(slot) = keep.get_mut(*i as usize)
                {
                    *slot = true;
                }
                previous = Some(*k);
            }
            let mut flags = keep.into_iter();
            arena.retain(|_| flags.next().unwrap_or(false));
            order = sorted_keys(&arena);
            (index, duplicates) = build_index(&arena);
            debug_assert!(!duplicates);
        }

        let mut s = Self::new();
        s.events.site_of = arena.iter().map(|e| s.sites.intern(e.site())).collect();
        s.events.wall = arena.iter().map(|e| e.at().wall_ms).collect();
        s.events.index = index;
        s.events.arena = arena;
        // Roughly one person per three events in real operations; a guess only saves rehashing.
        s.people.reserve(s.events.len() / 3);
        for (key, ix) in order {
            s.latest = Some(key);
            s.apply(ix, key, true);
        }
        s
    }

    /// Add one event. Inserting the same event again changes nothing.
    pub fn insert(&mut self, event: Event) -> Inserted {
        let id = event.id();
        if self.events.index.contains_key(&id) {
            return Inserted::Duplicate;
        }
        let Ok(ix) = Ix::try_from(self.events.len()) else {
            return Inserted::Full;
        };
        if ix == NO_EVENT {
            return Inserted::Full;
        }
        let key = event.order_key();
        if self.latest.is_none_or(|l| l < key) {
            self.latest = Some(key);
        }
        let site = self.sites.intern(event.site());
        self.events.arena.push(event);
        self.events.site_of.push(site);
        self.events.wall.push(key.0.wall_ms);
        self.events.index.insert(id, ix);
        self.apply(ix, key, false);
        Inserted::New
    }

    /// Fold the event at arena index `ix` (already stored and indexed) into the derived state.
    /// `in_order`: every event applied so far comes before this one in the agreed order.
    fn apply(&mut self, ix: Ix, key: OrderKey, in_order: bool) {
        let State {
            events,
            sites,
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
        let events = &*events;
        let (Some(ev), Some(site)) = (events.get(ix), events.site_of(ix)) else {
            return;
        };
        let id = key.1;

        if let Some(members) = ev.body().stay_members() {
            let to = match ev.body() {
                EventBody::Transfer { to, .. } => Some(sites.intern(*to)),
                _ => None,
            };
            let withdrawn =
                matches!(ev.body(), EventBody::ShelterCheckIn { .. }) && undos.contains_key(&id);
            for p in members.as_slice() {
                let track = people.entry(*p).or_default();
                // The site index lists everyone with a stay event at the site or a transfer
                // to it (as-of queries need them all). Every stay arises from such an event, so
                // a person already staying at the site is already listed.
                for s in std::iter::once(site).chain(to) {
                    if stay_get(&track.stays, s).is_none() {
                        index_site(site_people, s, *p);
                    }
                }
                if track.history.insert(ix, key, events, in_order) {
                    step(&mut track.stays, p, ev, ix, site, to, withdrawn);
                } else {
                    track.stays = derive_stays(p, &track.history, events, sites, undos, None);
                }
            }
            return;
        }

        match ev.body() {
            EventBody::UndoCheckIn { target, .. } => {
                record(undos, *target, ix, key, events, in_order);
                if let Some(EventBody::ShelterCheckIn { members, .. }) =
                    events.by_id(target).map(Event::body)
                {
                    for p in members.as_slice() {
                        if let Some(track) = people.get_mut(p) {
                            track.stays =
                                derive_stays(p, &track.history, events, sites, undos, None);
                        }
                    }
                }
            }
            EventBody::VoterCheckIn { voter, .. } => {
                record(votes, *voter, ix, key, events, in_order)
            }
            EventBody::WalkInRegistration { .. } => {
                walk_ins.insert(ix, key, events, in_order);
            }
            EventBody::HouseholdCard { household, .. } => {
                record(household_cards, *household, ix, key, events, in_order);
            }
            EventBody::CardBinding { card, .. } => {
                record(card_bindings, *card, ix, key, events, in_order)
            }
            EventBody::AlertResolution { alert, .. } => {
                record(alert_resolutions, *alert, ix, key, events, in_order);
            }
            EventBody::SameAs { .. } | EventBody::NotSame { .. } => {
                assertions.insert(ix, key, events, in_order);
            }
            EventBody::RetractAssertion { target, .. } => {
                record(retractions, *target, ix, key, events, in_order);
            }
            EventBody::ShelterStatusReport(_) => {
                record(status_reports, ev.site(), ix, key, events, in_order);
            }
            EventBody::SiteLifecycle(_) => {
                record(site_states, ev.site(), ix, key, events, in_order)
            }
            EventBody::BallotTally { .. } => {
                record(ballot_tallies, ev.site(), ix, key, events, in_order)
            }
            // Stay events were handled above.
            _ => {}
        }
    }

    /// Every derived structure in arrival-independent terms (for equality).
    fn canonical(&self) -> Canonical {
        let ev = &self.events;
        let people = self
            .people
            .iter()
            .map(|(p, t)| (*p, (t.history.ids(ev), self.public_stays(&t.stays))))
            .collect();
        let mut site_people: BTreeMap<SiteId, BTreeSet<PersonRef>> = BTreeMap::new();
        for (i, list) in self.site_people.iter().enumerate() {
            let (Ok(six), Some(site)) = (SiteIx::try_from(i), self.sites.ids.get(i)) else {
                continue;
            };
            for p in list {
                if self
                    .people
                    .get(p)
                    .is_some_and(|t| stay_get(&t.stays, six).is_some())
                {
                    site_people.entry(*site).or_default().insert(*p);
                }
            }
        }
        fn keyed<K: std::fmt::Debug>(
            m: &FxHashMap<K, History>,
            ev: &EventStore,
        ) -> BTreeMap<String, Vec<EventId>> {
            m.iter()
                .map(|(k, h)| (format!("{k:?}"), h.ids(ev)))
                .collect()
        }
        Canonical {
            latest: self.latest,
            people,
            site_people,
            keyed: vec![
                keyed(&self.undos, ev),
                keyed(&self.votes, ev),
                keyed(&self.household_cards, ev),
                keyed(&self.card_bindings, ev),
                keyed(&self.alert_resolutions, ev),
                keyed(&self.retractions, ev),
                keyed(&self.status_reports, ev),
                keyed(&self.site_states, ev),
                keyed(&self.ballot_tallies, ev),
            ],
            walk_ins: self.walk_ins.ids(ev),
            assertions: self.assertions.ids(ev),
        }
    }

    fn public_stay(&self, s: &CompactStay) -> Option<(SiteId, Stay)> {
        let site = self.sites.id(s.site)?;
        let ev = self.events.get(s.event)?;
        let status = match s.status {
            Status::Present => StayStatus::Present,
            Status::OnLeave(k) => StayStatus::OnLeave(k),
            Status::CheckedOut => match ev.body() {
                EventBody::ShelterCheckOut { reason, .. } => {
                    StayStatus::Left(Departure::CheckedOut(*reason))
                }
                _ => return None,
            },
            Status::TransferredTo(to) => {
                StayStatus::Left(Departure::TransferredTo(self.sites.id(to)?))
            }
            Status::Expected { from } => StayStatus::Expected {
                from: self.sites.id(from)?,
            },
            Status::SupportOnly(p) => StayStatus::SupportOnly(p),
        };
        let checked_in = match s.checked_in {
            NO_EVENT => None,
            i => Some(self.events.get(i)?.at()),
        };
        Some((
            site,
            Stay {
                status,
                since: ev.at(),
                event: ev.id(),
                checked_in,
            },
        ))
    }

    fn public_stays(&self, v: &[CompactStay]) -> Stays {
        v.iter().filter_map(|s| self.public_stay(s)).collect()
    }

    fn track(&self, person: &PersonRef) -> Option<&PersonTrack> {
        self.people.get(person)
    }

    /// A person's stays as of `as_of`, compact.
    fn compact_stays(&self, person: &PersonRef, t: &PersonTrack, as_of: Option<Millis>) -> StayVec {
        match as_of {
            None => t.stays.clone(),
            Some(_) => derive_stays(
                person,
                &t.history,
                &self.events,
                &self.sites,
                &self.undos,
                as_of,
            ),
        }
    }

    /// Number of distinct events.
    pub fn len(&self) -> usize {
        self.events.len()
    }
    pub fn is_empty(&self) -> bool {
        self.events.arena.is_empty()
    }
    /// The greatest order key seen.
    pub fn latest(&self) -> Option<OrderKey> {
        self.latest
    }
    pub fn event(&self, id: &EventId) -> Option<&Event> {
        self.events.by_id(id)
    }
    pub fn contains(&self, id: &EventId) -> bool {
        self.events.index.contains_key(id)
    }
    /// All events in the agreed order.
    pub fn events_in_order(&self) -> Vec<&Event> {
        let mut v: Vec<&Event> = self.events.arena.iter().collect();
        v.sort_unstable_by_key(|e| e.order_key());
        v
    }

    /// The latest event of a keyed history, as of `as_of`.
    fn latest_in<K: Eq + Hash>(
        &self,
        map: &FxHashMap<K, History>,
        k: &K,
        as_of: Option<Millis>,
    ) -> Option<&Event> {
        let ix = map.get(k)?.latest(as_of, &self.events)?;
        self.events.get(ix)
    }

    /// The undo withdrawing `target`, as of `as_of` (only check-ins can be withdrawn).
    pub fn undone_by(&self, target: &EventId, as_of: Option<Millis>) -> Option<EventId> {
        let is_check_in = self
            .events
            .by_id(target)
            .is_some_and(|e| e.body().is_check_in());
        if is_check_in {
            undone_by(&self.undos, target, as_of, &self.events).and_then(|i| self.events.id(i))
        } else {
            None
        }
    }

    /// The time of the latest event a new event with `body` acts upon: the members' last stay
    /// events, the check-in an undo withdraws, the assertion a retraction withdraws, the current
    /// household card, card binding or alert resolution, the voter's last check-in. A writer
    /// orders its new event after it (see `Hlc::tick_after`).
    pub fn causal_floor(&self, body: &EventBody) -> Option<Timestamp> {
        let last_of = |h: Option<&History>| {
            h.and_then(|h| h.latest(None, &self.events))
                .and_then(|i| self.events.get(i))
                .map(Event::at)
        };
        let at_of = |id: &EventId| self.events.by_id(id).map(Event::at);
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
                    .filter_map(|p| last_of(self.track(p).map(|t| &t.history)))
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
    fn compact_stays_at(
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
            PersonRef::Roster(id) => roster.get(id).map(|e| Identity {
                name: e.name.as_str(),
                kana: Some(e.kana.as_str()),
                address: Some(e.address.as_str()),
                birth_date: Some(e.birth_date),
            }),
            PersonRef::WalkIn { .. } => self.walk_in(person, as_of).map(|w| Identity {
                name: w.name.as_str(),
                kana: w.kana.as_ref().map(|k| k.as_str()),
                address: w.address.as_ref().map(|a| a.as_str()),
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
    fn facts_with(
        &self,
        person: &PersonRef,
        roster: &Roster,
        as_of: Option<Millis>,
        mut need: impl FnMut(CareNeed),
    ) -> (Option<HouseholdRef>, Option<Sex>, Option<CivilDate>) {
        let (household, sex, birth) = match person {
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
            PersonRef::WalkIn { registration, .. } => match self.walk_in(person, as_of) {
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
        };
        if let Some(card) = household.and_then(|h| self.household_card(&h, as_of))
            && let Some(m) = card.members.iter().find(|m| m.person == *person)
        {
            m.care_needs.iter().for_each(|n| need(*n));
        }
        (household, sex, birth)
    }

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
    fn count_person(
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

    // ----- elections -----

    /// A voter's check-ins in order, undone ones included (marked).
    pub fn votes_of(&self, voter: &PersonId, as_of: Option<Millis>) -> Vec<VoteRecord> {
        let Some(h) = self.votes.get(voter) else {
            return Vec::new();
        };
        h.upto(as_of, &self.events)
            .iter()
            .filter_map(|&ix| {
                let ev = self.events.get(ix)?;
                let id = ev.id();
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
                    event: id,
                    at: ev.at(),
                    site: ev.site(),
                    device: ev.device(),
                    operator: ev.operator(),
                    mode: *mode,
                    method: *method,
                    overridden: override_.is_some(),
                    undone_by: undone_by(&self.undos, &id, as_of, &self.events)
                        .and_then(|u| self.events.id(u)),
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
        h.upto(as_of, &self.events)
            .iter()
            .filter_map(|&ix| match self.events.get(ix).map(Event::body) {
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
            .latest_in(&self.card_bindings, card, as_of)
            .map(Event::body)
        {
            Some(EventBody::CardBinding { person, .. }) => *person,
            _ => None,
        }
    }

    /// Same-as / not-same assertions not retracted, in order.
    pub fn assertions(&self, as_of: Option<Millis>) -> Vec<Assertion> {
        self.assertions
            .upto(as_of, &self.events)
            .iter()
            .filter_map(|&ix| self.events.get(ix))
            .filter(|e| {
                self.retractions
                    .get(&e.id())
                    .is_none_or(|r| r.upto(as_of, &self.events).is_empty())
            })
            .filter_map(|e| match e.body() {
                EventBody::SameAs { a, b, .. } => Some(Assertion {
                    event: e.id(),
                    a: *a,
                    b: *b,
                    same: true,
                }),
                EventBody::NotSame { a, b, .. } => Some(Assertion {
                    event: e.id(),
                    a: *a,
                    b: *b,
                    same: false,
                }),
                _ => None,
            })
            .collect()
    }

    /// Person clusters from the same-as assertions standing at `as_of`.
    pub fn clusters(&self, as_of: Option<Millis>) -> crate::clusters::Clusters {
        crate::clusters::Clusters::new(&self.assertions(as_of))
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

    /// The latest resolution of an alert.
    pub fn alert_outcome(&self, alert: &AlertId, as_of: Option<Millis>) -> Option<AlertOutcome> {
        match self
            .latest_in(&self.alert_resolutions, alert, as_of)
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
        let ev = self.latest_in(&self.status_reports, site, as_of)?;
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
        let ev = self.latest_in(&self.site_states, site, as_of)?;
        match ev.body() {
            EventBody::SiteLifecycle(s) => Some((*s, ev.at())),
            _ => None,
        }
    }

    /// The time of the last event written at each site (for staleness).
    pub fn last_event_per_site(&self, as_of: Option<Millis>) -> BTreeMap<SiteId, Timestamp> {
        // Per interned site, the latest visible event's time: a scan of the two compact columns,
        // reading an event itself only when its wall time ties the best so far.
        let ev = &self.events;
        let mut best: Vec<Option<(Millis, Ix)>> = vec![None; self.sites.ids.len()];
        for (ix, (&wall, &site)) in (0..).zip(ev.wall.iter().zip(&ev.site_of)) {
            if as_of.is_some_and(|t| wall > t) {
                continue;
            }
            let Some(slot) = best.get_mut(site as usize) else {
                continue;
            };
            let better = match *slot {
                None => true,
                Some((w, _)) if wall != w => wall > w,
                Some((_, b)) => ev.get(ix).map(Event::at) > ev.get(b).map(Event::at),
            };
            if better {
                *slot = Some((wall, ix));
            }
        }
        (0..)
            .zip(best)
            .filter_map(|(i, b)| Some((self.sites.id(i)?, ev.get(b?.1)?.at())))
            .collect()
    }
}
