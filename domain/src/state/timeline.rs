//! Every shelter's counts as of any time T from checkpoints (issue 27): [`CountsIndex`].
//!
//! The index keeps, every few thousand events of HLC time, every site's counts as the log stood
//! then (the fields of [`SiteCounts`] as signed sums, households counted, the distinct total),
//! and answers as of T from the checkpoint nearest to T, before or after it: only the persons
//! that the events between the two touch are replayed, each one's contribution as of the
//! checkpoint taken off and their contribution as of T added. The answer equals
//! [`State::all_site_counts`] exactly (`domain/tests/fold_props.rs` checks it for random logs,
//! random T, random arrival orders and late events).
//!
//! Why it is exact. A person's contribution (their stays at each site, their sex, age band and
//! care needs when registered, their household) depends only on their own stay events, the undos
//! of their check-ins, their walk-in registration and their household's cards, and on nothing
//! else but the roster and the day ages are counted on. So the persons an event can change are
//! known from the event alone ([`CountsIndex::affected`]), and a household's presence at a site
//! changes only where one of its members' contributions does.
//!
//! Late events. The arena is append-only, so a checkpoint is "the log as of W, among the first
//! N arrivals". Events that arrive later are folded into the index on the next query: every
//! checkpoint at or after an event's time is patched by the same shift (the persons it touches,
//! as of W without it and with it). A batch that would cost more to patch than to fold again (a
//! laptop back from a week offline) rebuilds the index instead.
//!
//! Linked persons. Persons named in any same-as or not-same assertion (standing or retracted)
//! are kept out of the checkpoints and counted at query time exactly as `all_site_counts`
//! counts them, with the clusters as of T: assertions are few, and clusters change which record
//! of a person counts.
//!
//! Memory: a checkpoint is 152 bytes a site; checkpoints are at least `every` events apart and
//! their number is kept near `CELLS` cells in all, plus 4 bytes an event for the buckets and a
//! few per person. Pure: no I/O, no clock; the day ages are counted on is fixed per index.

use super::arena::{Ix, SiteIx};
use super::counts::{AllSiteCounts, SEXES, SiteAcc, SiteCounts};
use super::fold::State;
use super::stay::{PersonTrack, Status, StayVec, step};
use crate::clusters::Clusters;
use crate::event::{AgeBand, Event, EventBody, StayingPlace, WalkInPerson};
use crate::ids::{EventId, HouseholdRef, PersonRef};
use crate::roster::{CareNeed, Roster, Sex};
use crate::time::{CivilDate, Millis};
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;

// Slots of one site's signed counts.
const PRESENT: usize = 0;
const ON_LEAVE: usize = 1;
const EXPECTED: usize = 2;
const LEFT: usize = 3;
const CARE: usize = 4;
const HOUSEHOLDS: usize = 5;
/// Unknown, then `SEXES` (4 slots).
const SEX: usize = 6;
/// Unknown, then `AgeBand::ALL` (6 slots).
const AGE: usize = 10;
/// By position in `CareNeed::ALL` (16 slots).
const NEEDS: usize = 16;
/// By `PLACES` (6 slots).
const SUPPORT: usize = 32;
const WIDTH: usize = 38;

const PLACES: [StayingPlace; 6] = [
    StayingPlace::InShelter,
    StayingPlace::AtHome,
    StayingPlace::Car,
    StayingPlace::Tent,
    StayingPlace::Relatives,
    StayingPlace::Other,
];

fn place_slot(p: StayingPlace) -> usize {
    match p {
        StayingPlace::InShelter => 0,
        StayingPlace::AtHome => 1,
        StayingPlace::Car => 2,
        StayingPlace::Tent => 3,
        StayingPlace::Relatives => 4,
        StayingPlace::Other => 5,
    }
}

/// The default least number of events between two checkpoints.
pub const DEFAULT_EVERY: usize = 4096;
/// About how many counters all checkpoints together may hold (4 bytes each).
const CELLS: usize = 4 << 20;

type Row = [i32; WIDTH];
type HouseholdKey = Result<HouseholdRef, PersonRef>;

fn bump(row: &mut Row, slot: usize, by: i32) {
    if let Some(x) = row.get_mut(slot) {
        *x += by;
    }
}

/// Every site's signed counts of the persons not linked, and how many of them are registered
/// somewhere.
#[derive(Debug, Clone, Default)]
struct Counts {
    rows: Vec<Row>,
    distinct: i64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        if self.rows.len() < other.rows.len() {
            self.rows.resize(other.rows.len(), [0; WIDTH]);
        }
        for (row, o) in self.rows.iter_mut().zip(&other.rows) {
            for (x, y) in row.iter_mut().zip(o) {
                *x += y;
            }
        }
        self.distinct += other.distinct;
    }

    fn row(&mut self, site: SiteIx) -> Option<&mut Row> {
        let i = site as usize;
        if self.rows.len() <= i {
            self.rows.resize(i + 1, [0; WIDTH]);
        }
        self.rows.get_mut(i)
    }
}

/// What one view of the log sees: the events among the first `limit` arrivals whose wall time is
/// at most `upto` (`None`: none at all); of the linked persons, the first `linked`.
#[derive(Debug, Clone, Copy)]
struct View {
    upto: Option<Millis>,
    limit: usize,
    linked: usize,
}

impl View {
    fn sees(&self, st: &State, ix: Ix) -> bool {
        (ix as usize) < self.limit
            && self
                .upto
                .is_some_and(|t| st.events.wall(ix).is_some_and(|w| w <= t))
    }
}

#[derive(Debug, Clone)]
struct Checkpoint {
    at: Millis,
    counts: Counts,
}

/// What taking in a state's new arrivals costs a [`CountsIndex`] ([`CountsIndex::pending`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// Arrivals not yet folded in.
    pub events: usize,
    /// Checkpoints to patch, summed over the late arrivals (and the newly linked persons).
    pub patches: usize,
}

/// Checkpoints of every shelter's counts over HLC time, for the command center's picture as of
/// any T (see the module docs). Made for one day ages are counted on and one roster: a caller
/// with another roster makes a new index.
#[derive(Debug, Clone)]
pub struct CountsIndex {
    on: CivilDate,
    every: usize,
    /// Arrivals folded in (a prefix of the state's arena).
    seen: usize,
    /// The fold indexed and the ids of the first and the last arrival folded in, to tell
    /// another state (a fold again: reordered, events held back or let in) from this one grown.
    lineage: Option<super::arena::Lineage>,
    marks: Option<(EventId, EventId)>,
    roster_len: usize,
    /// The state's interned sites when last folded in (rows are by interned site).
    sites: Vec<crate::ids::SiteId>,
    /// Persons named in an assertion, in the order met, and each one's place.
    linked: Vec<PersonRef>,
    linked_at: FxHashMap<PersonRef, usize>,
    /// Persons with a stay event, by the household the roster or their registration gives.
    households: FxHashMap<HouseholdRef, Vec<PersonRef>>,
    known: FxHashSet<PersonRef>,
    checkpoints: Vec<Checkpoint>,
    /// `buckets[j]`: the arrivals with wall time after checkpoint `j - 1` and at most
    /// checkpoint `j`'s; the last one: those after the last checkpoint.
    buckets: Vec<Vec<Ix>>,
}

impl CountsIndex {
    /// An empty index counting ages on `on`.
    pub fn new(on: CivilDate) -> Self {
        Self::with_interval(on, DEFAULT_EVERY)
    }

    /// An empty index with checkpoints at least `every` events apart (tests use small ones).
    pub fn with_interval(on: CivilDate, every: usize) -> Self {
        CountsIndex {
            on,
            every: every.max(1),
            seen: 0,
            lineage: None,
            marks: None,
            roster_len: 0,
            sites: Vec::new(),
            linked: Vec::new(),
            linked_at: FxHashMap::default(),
            households: FxHashMap::default(),
            known: FxHashSet::default(),
            checkpoints: Vec::new(),
            buckets: vec![Vec::new()],
        }
    }

    /// The day ages are counted on.
    pub fn on(&self) -> CivilDate {
        self.on
    }

    /// How many checkpoints the index holds.
    pub fn checkpoints(&self) -> usize {
        self.checkpoints.len()
    }

    /// Every shelter's counts and the distinct persons registered as of `as_of`, equal to
    /// `state.all_site_counts(roster, on, Some(as_of), clusters)` with the index's `on`, except
    /// that sites whose counts are all zero are left out. `clusters` must be
    /// `state.clusters(Some(as_of))`. Folds in what arrived since the last call first.
    pub fn all_site_counts(
        &mut self,
        st: &State,
        roster: &Roster,
        as_of: Millis,
        clusters: &Clusters,
    ) -> AllSiteCounts {
        self.catch_up(st, roster);
        let now = View {
            upto: Some(as_of),
            limit: st.events.len(),
            linked: self.linked.len(),
        };
        // The nearest checkpoint: the last at or before T, or the first after it, whichever
        // leaves fewer events between.
        let j = self.checkpoints.partition_point(|c| c.at <= as_of);
        let bucket: &[Ix] = self.buckets.get(j).map_or(&[], Vec::as_slice);
        let (before, after): (Vec<Ix>, Vec<Ix>) = bucket
            .iter()
            .partition(|&&ix| st.events.wall(ix).is_some_and(|w| w <= as_of));
        let later = self
            .checkpoints
            .get(j)
            .filter(|_| after.len() < before.len());
        let (start, window) = match later {
            Some(c) => ((Some(c.at), c.counts.clone()), after),
            None => match j.checked_sub(1).and_then(|i| self.checkpoints.get(i)) {
                Some(c) => ((Some(c.at), c.counts.clone()), before),
                None => ((None, Counts::default()), before),
            },
        };
        let (from_at, mut counts) = start;
        let mut dirty = Vec::new();
        for &ix in &window {
            self.affected(st, ix, &mut dirty);
        }
        dirty.sort_unstable();
        dirty.dedup();
        let from = View {
            upto: from_at,
            ..now
        };
        self.shift(st, roster, &mut counts, &dirty, from, now);
        self.finish(st, roster, counts, now, clusters)
    }

    /// The persons not linked counted; add the linked ones as `all_site_counts` does, in id
    /// order with the clusters as of T, and turn the sums into counts.
    fn finish(
        &self,
        st: &State,
        roster: &Roster,
        counts: Counts,
        now: View,
        clusters: &Clusters,
    ) -> AllSiteCounts {
        let sites = st.sites.ids.len();
        let mut acc: Vec<SiteAcc> = Vec::new();
        acc.resize_with(sites, SiteAcc::default);
        let mut persons: Vec<PersonRef> = self
            .linked
            .iter()
            .filter(|p| st.people.contains_key(p))
            .copied()
            .collect();
        persons.sort_unstable();
        let mut reps: Vec<PersonRef> = Vec::new();
        for p in &persons {
            let Some(t) = st.people.get(p) else {
                continue;
            };
            let stays = st.compact_stays(p, t, now.upto);
            if stays.iter().any(|s| s.status.is_registered()) {
                reps.push(clusters.rep(p));
            }
            st.count_person(
                &mut acc,
                p,
                &stays,
                roster,
                self.on,
                now.upto,
                Some(clusters),
            );
        }
        reps.sort_unstable();
        reps.dedup();
        let distinct = counts
            .distinct
            .saturating_add(i64::try_from(reps.len()).unwrap_or(i64::MAX));
        let n = |x: i32, y: u32| u32::try_from(i64::from(x) + i64::from(y)).unwrap_or(0);
        let mut by_site = std::collections::BTreeMap::new();
        for (i, a) in (0..).zip(acc) {
            let row = counts.rows.get(i as usize).copied().unwrap_or([0; WIDTH]);
            let slot = |s: usize| row.get(s).copied().unwrap_or(0);
            // A household a linked person brings counts unless a member not linked is
            // registered here already.
            let extra = a
                .households
                .iter()
                .filter(|k| !self.household_sites(st, roster, k, now).contains(&i))
                .count();
            let by = |base: usize, n: usize| (0..n).map(move |x| base + x);
            let sums = |base: usize, from: &[u32]| -> Vec<u32> {
                by(base, from.len())
                    .zip(from)
                    .map(|(s, y)| n(slot(s), *y))
                    .collect()
            };
            let mut support: [u32; 6] = [0; 6];
            for (k, v) in &a.support_only {
                if let Some(x) = support.get_mut(place_slot(*k)) {
                    *x += v;
                }
            }
            let c = SiteCounts {
                present: n(slot(PRESENT), a.present),
                on_leave: n(slot(ON_LEAVE), a.on_leave),
                expected: n(slot(EXPECTED), a.expected),
                left: n(slot(LEFT), a.left),
                households: n(slot(HOUSEHOLDS), u32::try_from(extra).unwrap_or(u32::MAX)),
                by_sex: std::iter::once(None)
                    .chain(SEXES.map(Some))
                    .zip(sums(SEX, &a.by_sex))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
                by_age: std::iter::once(None)
                    .chain(AgeBand::ALL.map(Some))
                    .zip(sums(AGE, &a.by_age))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
                with_care_needs: n(slot(CARE), a.with_care_needs),
                care_needs: CareNeed::ALL
                    .into_iter()
                    .zip(sums(NEEDS, &a.care_needs))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
                support_only: PLACES
                    .into_iter()
                    .zip(sums(SUPPORT, &support))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
            };
            if c != SiteCounts::default()
                && let Some(site) = st.sites.id(i)
            {
                by_site.insert(site, c);
            }
        }
        AllSiteCounts {
            by_site,
            distinct_registered: u32::try_from(distinct).unwrap_or(0),
        }
    }

    /// How many arrivals of the state are folded in.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// Fold in what arrived since the last call (as a query does first), without a query: a
    /// caller makes the checkpoints ahead of the first picture, e.g. off the window's thread.
    pub fn fold_in(&mut self, st: &State, roster: &Roster) {
        self.catch_up(st, roster);
    }

    /// What the next query would do first to take in what arrived since the last call, without
    /// doing it: `None` when it would make every checkpoint again (`st` is not the state folded
    /// so far grown, the roster changed, or the late events would cost more to patch than a new
    /// fold), else the arrivals to take in and how many checkpoint patches they cost (one per
    /// late event and checkpoint at or after it, and one per checkpoint for each newly linked
    /// person). A caller on a thread that must not wait can fold a large catch-up elsewhere.
    pub fn pending(&self, st: &State, roster: &Roster) -> Option<Pending> {
        if !self.same_log(st, roster) {
            return None;
        }
        let len = st.events.len();
        let last_at = self.checkpoints.last().map(|c| c.at);
        let (mut late, mut linked) = (0usize, 0usize);
        for ix in (self.seen..len).filter_map(|i| Ix::try_from(i).ok()) {
            let w = st.events.wall(ix).unwrap_or(0);
            if last_at.is_some_and(|l| w <= l) {
                late += self.checkpoints.len() - self.checkpoints.partition_point(|c| c.at < w);
            }
            if let Some(EventBody::SameAs { .. } | EventBody::NotSame { .. }) =
                st.events.get(ix).map(Event::body)
            {
                linked = linked.saturating_add(self.checkpoints.len().saturating_mul(2));
            }
        }
        // The rule `catch_up` follows.
        (late <= len.max(self.every)).then_some(Pending {
            events: len - self.seen,
            patches: late.saturating_add(linked),
        })
    }

    /// Whether `st` is the state folded so far, grown (the arena is append-only).
    fn same_log(&self, st: &State, roster: &Roster) -> bool {
        if roster.len() != self.roster_len
            || !st.sites.ids.starts_with(&self.sites)
            || self.lineage.is_some_and(|l| l != st.lineage)
        {
            return false;
        }
        match self.marks {
            None => self.seen == 0,
            Some((first, last)) => {
                st.events.len() >= self.seen
                    && st.events.id(0) == Some(first)
                    && st.events.id(Ix::try_from(self.seen - 1).unwrap_or(Ix::MAX)) == Some(last)
            }
        }
    }

    /// Fold in the arrivals since the last call: patch the checkpoints they reach back to, then
    /// add checkpoints where too many events have gathered.
    fn catch_up(&mut self, st: &State, roster: &Roster) {
        if !self.same_log(st, roster) {
            *self = Self::with_interval(self.on, self.every);
            self.roster_len = roster.len();
        }
        let len = st.events.len();
        if self.seen >= len {
            return;
        }
        let (old_seen, old_linked) = (self.seen, self.linked.len());
        let fresh: Vec<Ix> = (self.seen..len)
            .filter_map(|i| Ix::try_from(i).ok())
            .collect();
        for &ix in &fresh {
            self.register(st, roster, ix);
        }
        let last_at = self.checkpoints.last().map(|c| c.at);
        let mut late: Vec<(Millis, Ix)> = Vec::new();
        for &ix in &fresh {
            let w = st.events.wall(ix).unwrap_or(0);
            let j = self.checkpoints.partition_point(|c| c.at < w);
            if let Some(b) = self.buckets.get_mut(j) {
                b.push(ix);
            }
            if last_at.is_some_and(|l| w <= l) {
                late.push((w, ix));
            }
        }
        late.sort_unstable();
        // Patching costs a replay per touched person per checkpoint after the event; past the
        // size of the log, folding everything again is cheaper.
        let cost: usize = late
            .iter()
            .map(|(w, _)| self.checkpoints.len() - self.checkpoints.partition_point(|c| c.at < *w))
            .sum();
        if cost > len.max(self.every) {
            *self = Self::with_interval(self.on, self.every);
            self.catch_up(st, roster);
            return;
        }
        let new_linked: Vec<PersonRef> = self.linked.get(old_linked..).unwrap_or(&[]).to_vec();
        if !late.is_empty() || !new_linked.is_empty() {
            // Each checkpoint's persons touched (those of the late events at or before it),
            // then each one's change on its own, on two threads.
            let mut jobs: Vec<(usize, Millis, Vec<PersonRef>)> = Vec::new();
            let mut dirty = new_linked;
            let mut k = 0;
            for (j, c) in self.checkpoints.iter().enumerate() {
                while let Some(&(w, ix)) = late.get(k)
                    && w <= c.at
                {
                    self.affected(st, ix, &mut dirty);
                    k += 1;
                }
                if dirty.is_empty() {
                    continue;
                }
                let mut d = dirty.clone();
                d.sort_unstable();
                d.dedup();
                jobs.push((j, c.at, d));
            }
            let (old, new) = (old_linked, self.linked.len());
            let deltas = two_threads(&jobs, |(_, at, d)| {
                let from = View {
                    upto: Some(*at),
                    limit: old_seen,
                    linked: old,
                };
                let to = View {
                    upto: Some(*at),
                    limit: len,
                    linked: new,
                };
                let mut delta = Counts::default();
                self.shift(st, roster, &mut delta, d, from, to);
                delta
            });
            for ((j, _, _), delta) in jobs.iter().zip(deltas) {
                if let Some(c) = self.checkpoints.get_mut(*j) {
                    c.counts.add(&delta);
                }
            }
        }
        self.seen = len;
        self.lineage = Some(st.lineage);
        self.sites.clone_from(&st.sites.ids);
        self.marks = st
            .events
            .id(0)
            .zip(st.events.id(Ix::try_from(len - 1).unwrap_or(Ix::MAX)));
        self.split(st, roster);
    }

    /// Note who an arrival names: persons with a stay event (by household) and linked persons.
    fn register(&mut self, st: &State, roster: &Roster, ix: Ix) {
        let Some(ev) = st.events.get(ix) else {
            return;
        };
        if let Some(members) = ev.body().stay_members() {
            for p in members.as_slice() {
                if self.known.insert(*p) {
                    let household = match p {
                        PersonRef::Roster(id) => {
                            roster.get(id).map(|e| HouseholdRef::Roster(e.household))
                        }
                        PersonRef::WalkIn { registration, .. } => {
                            Some(HouseholdRef::WalkIn(*registration))
                        }
                    };
                    if let Some(h) = household {
                        self.households.entry(h).or_default().push(*p);
                    }
                }
            }
        }
        if let EventBody::SameAs { a, b, .. } | EventBody::NotSame { a, b, .. } = ev.body() {
            for p in [a, b] {
                if !self.linked_at.contains_key(p) {
                    self.linked_at.insert(*p, self.linked.len());
                    self.linked.push(*p);
                }
            }
        }
    }

    /// The persons whose counts the event at `ix` can change, added to `out`.
    fn affected(&self, st: &State, ix: Ix, out: &mut Vec<PersonRef>) {
        let Some(ev) = st.events.get(ix) else {
            return;
        };
        if let Some(members) = ev.body().stay_members() {
            out.extend_from_slice(members.as_slice());
            return;
        }
        match ev.body() {
            EventBody::UndoCheckIn { target, .. } => {
                if let Some(m) = st
                    .events
                    .by_id(target)
                    .and_then(|e| e.body().stay_members())
                {
                    out.extend_from_slice(m.as_slice());
                }
            }
            EventBody::WalkInRegistration { members, .. } => {
                let registration = ev.id();
                out.extend(
                    (0..members.len())
                        .filter_map(|i| u16::try_from(i).ok())
                        .map(|index| PersonRef::WalkIn {
                            registration,
                            index,
                        }),
                );
            }
            EventBody::HouseholdCard { household, .. } => {
                if let Some(ps) = self.households.get(household) {
                    out.extend_from_slice(ps);
                }
            }
            EventBody::SameAs { a, b, .. } | EventBody::NotSame { a, b, .. } => {
                out.push(*a);
                out.push(*b);
            }
            _ => {}
        }
    }

    /// Make checkpoints where a bucket holds too many events: the tail past twice the interval,
    /// one between checkpoints (grown by late events) past four times.
    fn split(&mut self, st: &State, roster: &Roster) {
        let sites = st.sites.ids.len().max(1);
        let every = self
            .every
            .max(st.events.len().saturating_mul(sites * WIDTH) / CELLS);
        let mut j = 0;
        while j < self.buckets.len() {
            let tail = j == self.checkpoints.len();
            let size = self.buckets.get(j).map_or(0, Vec::len);
            if size <= every * if tail { 2 } else { 4 } {
                j += 1;
                continue;
            }
            j += 1 + self.split_bucket(st, roster, j, every);
        }
    }

    /// Cut bucket `j` into pieces of about `every` events, each ending in a new checkpoint made
    /// from the one before; returns how many were made.
    fn split_bucket(&mut self, st: &State, roster: &Roster, j: usize, every: usize) -> usize {
        let Some(bucket) = self.buckets.get_mut(j) else {
            return 0;
        };
        let mut evs: Vec<(Millis, Ix)> = std::mem::take(bucket)
            .into_iter()
            .map(|ix| (st.events.wall(ix).unwrap_or(0), ix))
            .collect();
        evs.sort_unstable();
        let (first_at, mut counts) = match j.checked_sub(1).and_then(|i| self.checkpoints.get(i)) {
            Some(c) => (Some(c.at), c.counts.clone()),
            None => (None, Counts::default()),
        };
        let all = View {
            upto: None,
            limit: st.events.len(),
            linked: self.linked.len(),
        };
        // The pieces first: (from, to, events).
        let mut pieces: Vec<(Option<Millis>, Millis, Vec<Ix>)> = Vec::new();
        let mut at = first_at;
        let mut start = 0;
        while evs.len() - start > every {
            let mut end = start + every;
            let Some(w) = evs.get(end - 1).map(|e| e.0) else {
                break;
            };
            while evs.get(end).is_some_and(|e| e.0 == w) {
                end += 1;
            }
            // The rest all at one time: it ends at the next checkpoint, or is the frontier.
            if end >= evs.len() {
                break;
            }
            let piece: Vec<Ix> = evs
                .get(start..end)
                .unwrap_or(&[])
                .iter()
                .map(|e| e.1)
                .collect();
            pieces.push((at, w, piece));
            at = Some(w);
            start = end;
        }
        // Each piece's change on its own (a shift only adds and takes off), on two threads;
        // then summed in order.
        let delta = |(from, to, piece): &(Option<Millis>, Millis, Vec<Ix>)| {
            let mut dirty = Vec::new();
            for &ix in piece {
                self.affected(st, ix, &mut dirty);
            }
            dirty.sort_unstable();
            dirty.dedup();
            let mut d = Counts::default();
            let (from, to) = (
                View { upto: *from, ..all },
                View {
                    upto: Some(*to),
                    ..all
                },
            );
            self.shift(st, roster, &mut d, &dirty, from, to);
            d
        };
        let deltas = two_threads(&pieces, delta);
        let mut made: Vec<(Checkpoint, Vec<Ix>)> = Vec::new();
        for ((_, w, piece), d) in pieces.into_iter().zip(deltas) {
            counts.add(&d);
            made.push((
                Checkpoint {
                    at: w,
                    counts: counts.clone(),
                },
                piece,
            ));
        }
        let rest: Vec<Ix> = evs
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .map(|e| e.1)
            .collect();
        let n = made.len();
        let (cps, pieces): (Vec<Checkpoint>, Vec<Vec<Ix>>) = made.into_iter().unzip();
        self.checkpoints.splice(j..j, cps);
        if let Some(b) = self.buckets.get_mut(j) {
            *b = rest;
        }
        self.buckets.splice(j..j, pieces);
        n
    }

    /// Move `counts` from view `from` to view `to`, where `dirty` (sorted, without repeats)
    /// holds every person whose contribution may differ between the two.
    fn shift(
        &self,
        st: &State,
        roster: &Roster,
        counts: &mut Counts,
        dirty: &[PersonRef],
        from: View,
        to: View,
    ) {
        let mut keys: Vec<HouseholdKey> = Vec::with_capacity(dirty.len() * 2);
        for p in dirty {
            self.contribute(st, roster, counts, p, from, -1);
            self.contribute(st, roster, counts, p, to, 1);
            keys.push(self.key(st, roster, p, from));
            keys.push(self.key(st, roster, p, to));
        }
        keys.sort_unstable();
        keys.dedup();
        for k in &keys {
            for (view, by) in [(from, -1), (to, 1)] {
                for s in self.household_sites(st, roster, k, view) {
                    if let Some(row) = counts.row(s) {
                        bump(row, HOUSEHOLDS, by);
                    }
                }
            }
        }
    }

    fn is_linked(&self, p: &PersonRef, v: View) -> bool {
        self.linked_at.get(p).is_some_and(|&i| i < v.linked)
    }

    /// The sites where a member of household `k` not linked is registered, in view `v`.
    fn household_sites(
        &self,
        st: &State,
        roster: &Roster,
        k: &HouseholdKey,
        v: View,
    ) -> SmallVec<[SiteIx; 4]> {
        let members: &[PersonRef] = match k {
            Ok(h) => self.households.get(h).map_or(&[], Vec::as_slice),
            Err(p) => std::slice::from_ref(p),
        };
        let mut out: SmallVec<[SiteIx; 4]> = SmallVec::new();
        for q in members {
            if self.is_linked(q, v) || self.key(st, roster, q, v) != *k {
                continue;
            }
            let Some(t) = st.people.get(q) else {
                continue;
            };
            out.extend(
                stays_in(st, q, t, v)
                    .iter()
                    .filter(|s| s.status.is_registered())
                    .map(|s| s.site),
            );
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The household a person counts in, in view `v` (themselves when none is known).
    fn key(&self, st: &State, roster: &Roster, p: &PersonRef, v: View) -> HouseholdKey {
        match p {
            PersonRef::Roster(id) => roster.get(id).map(|e| HouseholdRef::Roster(e.household)),
            PersonRef::WalkIn { registration, .. } => {
                walk_in_at(st, p, v).map(|_| HouseholdRef::WalkIn(*registration))
            }
        }
        .ok_or(*p)
    }

    /// Add a person's counts in view `v`, times `sign`.
    fn contribute(
        &self,
        st: &State,
        roster: &Roster,
        counts: &mut Counts,
        p: &PersonRef,
        v: View,
        sign: i32,
    ) {
        if self.is_linked(p, v) {
            return;
        }
        let Some(track) = st.people.get(p) else {
            return;
        };
        let mut facts: Option<(usize, usize, u16)> = None;
        let mut registered = false;
        for s in &stays_in(st, p, track, v) {
            let Some(row) = counts.row(s.site) else {
                continue;
            };
            match s.status {
                Status::Present => bump(row, PRESENT, sign),
                Status::OnLeave(_) => bump(row, ON_LEAVE, sign),
                Status::Expected { .. } => bump(row, EXPECTED, sign),
                Status::CheckedOut | Status::TransferredTo(_) => bump(row, LEFT, sign),
                Status::SupportOnly(place) => bump(row, SUPPORT + place_slot(place), sign),
            }
            if !s.status.is_registered() {
                continue;
            }
            registered = true;
            let (sex, age, needs) = *facts.get_or_insert_with(|| {
                let mut bits = 0u16;
                let (sex, birth) =
                    facts_at(st, roster, p, v, |n| bits |= 1 << SiteAcc::need_slot(n));
                let age = birth.map(|b| AgeBand::of_age(b.age_on(self.on)));
                (SiteAcc::sex_slot(sex), SiteAcc::age_slot(age), bits)
            });
            bump(row, SEX + sex, sign);
            bump(row, AGE + age, sign);
            if needs != 0 {
                bump(row, CARE, sign);
            }
            for i in 0..16 {
                if needs >> i & 1 == 1 {
                    bump(row, NEEDS + i, sign);
                }
            }
        }
        if registered {
            counts.distinct += i64::from(sign);
        }
    }
}

/// A person's stays in view `v` (`derive_stays` with the view's cut).
fn stays_in(st: &State, p: &PersonRef, track: &PersonTrack, v: View) -> StayVec {
    let mut stays = StayVec::new();
    let Some(t) = v.upto else {
        return stays;
    };
    for &ix in track.history.0.iter() {
        let Some(w) = st.events.wall(ix) else {
            continue;
        };
        if w > t {
            break;
        }
        if (ix as usize) >= v.limit {
            continue;
        }
        let (Some(ev), Some(site)) = (st.events.get(ix), st.events.site_of(ix)) else {
            continue;
        };
        let to = match ev.body() {
            EventBody::Transfer { to, .. } => st.sites.get(to),
            _ => None,
        };
        let withdrawn = matches!(ev.body(), EventBody::ShelterCheckIn { .. })
            && st
                .undos
                .get(&ev.id())
                .is_some_and(|h| h.0.iter().any(|&u| v.sees(st, u)));
        step(&mut stays, p, ev, ix, site, to, withdrawn);
    }
    stays
}

/// The walk-in record behind `p` if its registration is in view `v`.
fn walk_in_at<'a>(st: &'a State, p: &PersonRef, v: View) -> Option<&'a WalkInPerson> {
    let PersonRef::WalkIn {
        registration,
        index,
    } = p
    else {
        return None;
    };
    let ix = st.events.ix(registration).filter(|&ix| v.sees(st, ix))?;
    match st.events.get(ix)?.body() {
        EventBody::WalkInRegistration { members, .. } => members.get(usize::from(*index)),
        _ => None,
    }
}

/// `State::facts_with` in view `v`: sex and birth date returned, care needs handed to `need`.
fn facts_at(
    st: &State,
    roster: &Roster,
    p: &PersonRef,
    v: View,
    mut need: impl FnMut(CareNeed),
) -> (Option<Sex>, Option<crate::time::CivilDate>) {
    let (household, sex, birth) =
        super::records::registered_facts(p, roster, walk_in_at(st, p, v), &mut need);
    let card = household
        .and_then(|h| st.household_cards.get(&h))
        .and_then(|h| h.0.iter().rev().find(|&&ix| v.sees(st, ix)).copied())
        .and_then(|ix| st.events.get(ix))
        .and_then(|e| match e.body() {
            EventBody::HouseholdCard { card, .. } => Some(card),
            _ => None,
        });
    if let Some(m) = card.and_then(|c| c.members.iter().find(|m| m.person == *p)) {
        m.care_needs.iter().for_each(|n| need(*n));
    }
    (sex, birth)
}

/// `items.iter().map(f)`, the second half on another thread.
fn two_threads<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let (a, b) = items.split_at(items.len().div_ceil(2));
    std::thread::scope(|scope| {
        let worker = (!b.is_empty())
            .then(|| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, || b.iter().map(&f).collect::<Vec<R>>())
                    .ok()
            })
            .flatten();
        let mut out: Vec<R> = a.iter().map(&f).collect();
        match worker.and_then(|w| w.join().ok()) {
            Some(rest) => out.extend(rest),
            None => out.extend(b.iter().map(&f)),
        }
        out
    })
}
