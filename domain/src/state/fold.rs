//! The state itself and the fold: inserting events, equality, and the basic queries.

use super::arena::{EventStore, History, Ix, NO_EVENT, SiteIx, SiteTable};
use super::stay::{
    CompactStay, Departure, PersonTrack, Status, Stay, StayStatus, StayVec, Stays, derive_stays,
    index_site, stay_get, step, undone_by,
};
use crate::event::{Event, EventBody, OrderKey};
use crate::hlc::Timestamp;
use crate::ids::{AlertId, CardKey, EventId, HouseholdRef, PersonId, PersonRef, SiteId};
use crate::time::Millis;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;

/// Whether an insert added anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    Duplicate,
    /// The state already holds `u32::MAX` events; nothing was added.
    Full,
}

/// [`State::version`]: equal for two looks at one state exactly when nothing was added or
/// folded again in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateVersion {
    lineage: u64,
    len: usize,
}

impl StateVersion {
    /// How many events the state held.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the state held none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The state folded from a set of events.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Which fold this is (kept by clones and appends; see `Lineage`).
    pub(super) lineage: super::arena::Lineage,
    pub(super) events: EventStore,
    pub(super) sites: SiteTable,
    pub(super) latest: Option<OrderKey>,
    /// Undo events by the event they withdraw.
    pub(super) undos: FxHashMap<EventId, History>,
    /// Kept in the map itself: one cache miss per stay event, not two.
    pub(super) people: FxHashMap<PersonRef, PersonTrack>,
    /// Per interned site, the persons (by index) who had a stay there at some point; may hold
    /// a person twice or one whose stay there has since been withdrawn: readers check.
    pub(super) site_people: Vec<Vec<PersonRef>>,
    pub(super) votes: FxHashMap<PersonId, History>,
    pub(super) walk_ins: History,
    pub(super) household_cards: FxHashMap<HouseholdRef, History>,
    pub(super) card_bindings: FxHashMap<CardKey, History>,
    pub(super) alert_resolutions: FxHashMap<AlertId, History>,
    pub(super) assertions: History,
    pub(super) retractions: FxHashMap<EventId, History>,
    pub(super) status_reports: FxHashMap<SiteId, History>,
    pub(super) site_states: FxHashMap<SiteId, History>,
    pub(super) ballot_tallies: FxHashMap<SiteId, History>,
    /// DV block lifts by household.
    pub(super) dv_lifts: FxHashMap<HouseholdRef, History>,
    /// Per person, the households whose cards ever named them (member or representative) with
    /// the DV block set: a person listed on a blocked card is withheld whatever their own
    /// household.
    pub(super) dv_listed: FxHashMap<PersonRef, BTreeSet<HouseholdRef>>,
    /// Consent events by person.
    pub(super) consents: FxHashMap<PersonRef, History>,
    /// A manager's closes of the whole operation.
    pub(super) operation_closes: History,
    /// Whose manager's decisions count (DV block lifts, site open/close, the operation's
    /// close: `authority`); set by the node from the manifest.
    pub(super) manager_authority: Option<super::authority::ManagerAuthority>,
    /// Sealed notes (medical, protection) by person.
    pub(super) sealed_notes: FxHashMap<PersonRef, History>,
    /// "Reported safe by a relative" events by person (`safe_reports.rs`).
    pub(super) safe_reports: FxHashMap<PersonRef, History>,
}

/// A history inside a keyed map.
pub(super) fn record<K: Eq + Hash>(
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
        let sorted_keys = |arena: &[Event]| sorted(arena.iter());
        let build_index = |arena: &[Event]| super::arena::IdIndex::build(arena);
        let (mut order, built) = sorted_beside(arena.iter(), || build_index(&arena));
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
        Self::new().fold_arena(super::arena::Arena::from_vec(arena), index, order)
    }

    /// Fold `arena` (no id twice; `index` its ids, `order` its order keys sorted) into this
    /// state, which holds no event yet: the events stay where they are, and are applied in the
    /// agreed order, so that every history takes the in-order fast path.
    pub(super) fn fold_arena(
        mut self,
        arena: super::arena::Arena,
        index: super::arena::IdIndex,
        order: Vec<(OrderKey, Ix)>,
    ) -> Self {
        self.events.site_of = arena.iter().map(|e| self.sites.intern(e.site())).collect();
        self.events.wall = arena.iter().map(|e| e.at().wall_ms).collect();
        self.events.index = index;
        self.events.arena = arena;
        // Roughly one person per three events in real operations; a guess only saves rehashing.
        self.people.reserve(self.events.len() / 3);
        for (key, ix) in order {
            self.latest = Some(key);
            self.apply(ix, key, true);
        }
        self
    }

    /// Add one event. Inserting the same event again changes nothing.
    pub fn insert(&mut self, event: Event) -> Inserted {
        let id = event.id();
        if self.events.contains(&id) {
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
        self.events.index_insert(&id, ix);
        self.apply(ix, key, false);
        Inserted::New
    }

    /// Fold the event at arena index `ix` (already stored and indexed) into the derived state.
    /// `in_order`: every event applied so far comes before this one in the agreed order.
    pub(super) fn apply(&mut self, ix: Ix, key: OrderKey, in_order: bool) {
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
            dv_lifts,
            dv_listed,
            consents,
            operation_closes,
            sealed_notes,
            safe_reports,
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
            EventBody::HouseholdCard { household, card } => {
                record(household_cards, *household, ix, key, events, in_order);
                if card.dv_block {
                    for p in card
                        .members
                        .iter()
                        .map(|m| &m.person)
                        .chain(&card.representative)
                    {
                        dv_listed.entry(*p).or_default().insert(*household);
                    }
                }
            }
            EventBody::DvBlockLift { household, .. } => {
                record(dv_lifts, *household, ix, key, events, in_order);
            }
            EventBody::Consent { person, .. } => {
                record(consents, *person, ix, key, events, in_order);
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
            EventBody::OperationClosed { .. } => {
                operation_closes.insert(ix, key, events, in_order);
            }
            EventBody::BallotTally { .. } => {
                record(ballot_tallies, ev.site(), ix, key, events, in_order)
            }
            EventBody::SealedNote { person, .. } => {
                record(sealed_notes, *person, ix, key, events, in_order);
            }
            EventBody::ReportedSafe { person, .. } => {
                record(safe_reports, *person, ix, key, events, in_order);
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
                keyed(&self.dv_lifts, ev),
                keyed(&self.consents, ev),
                keyed(&self.sealed_notes, ev),
                keyed(&self.safe_reports, ev),
            ],
            walk_ins: self.walk_ins.ids(ev),
            assertions: self.assertions.ids(ev),
        }
    }

    pub(super) fn public_stay(&self, s: &CompactStay) -> Option<(SiteId, Stay)> {
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

    pub(super) fn public_stays(&self, v: &[CompactStay]) -> Stays {
        v.iter().filter_map(|s| self.public_stay(s)).collect()
    }

    pub(super) fn track(&self, person: &PersonRef) -> Option<&PersonTrack> {
        self.people.get(person)
    }

    /// A person's stays as of `as_of`, compact.
    pub(super) fn compact_stays(
        &self,
        person: &PersonRef,
        t: &PersonTrack,
        as_of: Option<Millis>,
    ) -> StayVec {
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
    /// Which fold this is and how far it has grown: changes on every append and on every fold
    /// again (a node re-judging its log under a new manifest, a bulk load), even one that ends
    /// with as many events as before. The key for anything derived from the state and cached.
    pub fn version(&self) -> StateVersion {
        StateVersion {
            lineage: self.lineage.0,
            len: self.events.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.events.arena.is_empty()
    }
    /// Whether this state is the one `v` was taken of, grown since (the same fold, appended
    /// to): its first `v.len()` events in [`State::events_unordered`] are the ones it had then.
    pub fn grew_from(&self, v: StateVersion) -> bool {
        self.lineage.0 == v.lineage && self.events.len() >= v.len
    }
    /// The greatest order key seen.
    pub fn latest(&self) -> Option<OrderKey> {
        self.latest
    }
    pub fn event(&self, id: &EventId) -> Option<&Event> {
        self.events.by_id(id)
    }
    pub fn contains(&self, id: &EventId) -> bool {
        self.events.contains(id)
    }
    /// All events, in no particular order (for order-free scans: the audit chains).
    pub fn events_unordered(&self) -> impl Iterator<Item = &Event> {
        self.events.arena.iter()
    }
    /// All events in the agreed order.
    pub fn events_in_order(&self) -> Vec<&Event> {
        let mut v: Vec<&Event> = self.events.arena.iter().collect();
        v.sort_unstable_by_key(|e| e.order_key());
        v
    }

    /// The latest event of a keyed history, as of `as_of`.
    pub(super) fn latest_in<K: Eq + Hash>(
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
            EventBody::DvBlockLift { household, .. } => {
                last_of(self.household_cards.get(household))
                    .max(last_of(self.dv_lifts.get(household)))
            }
            EventBody::Consent { person, .. } => last_of(self.consents.get(person)),
            EventBody::ReportedSafe { person, .. } => last_of(self.safe_reports.get(person)),
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
}

/// The events' order keys with their places, sorted.
fn sorted<'a>(events: impl Iterator<Item = &'a Event>) -> Vec<(OrderKey, Ix)> {
    let mut order: Vec<(OrderKey, Ix)> = events.zip(0..).map(|(e, i)| (e.order_key(), i)).collect();
    order.sort_unstable();
    order
}

/// [`sorted`] on this thread while `beside` runs on another (both only read the events; `None`:
/// no thread could be started, and `beside` did not run).
pub(super) fn sorted_beside<'a, T: Send>(
    events: impl Iterator<Item = &'a Event>,
    beside: impl FnOnce() -> T + Send,
) -> (Vec<(OrderKey, Ix)>, Option<T>) {
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new().spawn_scoped(scope, beside).ok();
        let order = sorted(events);
        (order, worker.and_then(|w| w.join().ok()))
    })
}
