//! The event arena: events by arrival index, interned sites, and sorted histories of
//! arena indices.

use crate::event::{Event, OrderKey};
use crate::ids::{EventId, SiteId};
use crate::time::Millis;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::sync::Arc;

/// Position of an event in the arena.
pub(super) type Ix = u32;
/// Interned site.
pub(super) type SiteIx = u32;
/// "No event" in a compact field.
pub(super) const NO_EVENT: Ix = Ix::MAX;

/// Which fold a state is: a number of its own for every state made (`State::new`,
/// `State::from_events`: a fold again), kept by its clones and through inserts (appends). An
/// index made over a copy of a state serves the original grown since, and nothing else
/// (`CountsIndex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lineage(pub(super) u64);

impl Default for Lineage {
    fn default() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Lineage(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// The events, shared: the batch a state was folded from as one block, the arrivals since in
/// blocks of [`BLOCK`]. A copy of the arena shares every block (a state's clone costs a pointer
/// per block, not a copy of every event: the window copies the state to make the checkpoint
/// index off its thread), and an append to a shared last block copies that block once. The
/// batch is kept as it came (`State::from_events` moves no event).
#[derive(Debug, Clone, Default)]
pub(super) struct Arena {
    base: Arc<Vec<Event>>,
    tail: Vec<Arc<Vec<Event>>>,
    len: usize,
}

const BLOCK_BITS: u32 = 12;
/// Events a block of arrivals holds.
const BLOCK: usize = 1 << BLOCK_BITS;

impl Arena {
    /// The events of `v`, in its order.
    pub(super) fn from_vec(v: Vec<Event>) -> Self {
        Arena {
            len: v.len(),
            base: Arc::new(v),
            tail: Vec::new(),
        }
    }
    pub(super) fn get(&self, i: usize) -> Option<&Event> {
        match i.checked_sub(self.base.len()) {
            None => self.base.get(i),
            Some(j) => self.tail.get(j >> BLOCK_BITS)?.get(j & (BLOCK - 1)),
        }
    }
    pub(super) fn push(&mut self, e: Event) {
        match self.tail.last_mut() {
            Some(b) if b.len() < BLOCK => Arc::make_mut(b).push(e),
            _ => {
                let mut block = Vec::with_capacity(BLOCK);
                block.push(e);
                self.tail.push(Arc::new(block));
            }
        }
        self.len += 1;
    }
    pub(super) fn len(&self) -> usize {
        self.len
    }
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub(super) fn iter(&self) -> impl Iterator<Item = &Event> {
        self.base
            .iter()
            .chain(self.tail.iter().flat_map(|b| b.iter()))
    }
}

/// The events' arena indices by id. The table holds only the 4-byte indices and reads each
/// id from the arena when it needs it (a map of id to index held every 16-byte id a second
/// time: 2^21 buckets of 20 bytes, 42 MiB, at a million events; this is 10 MiB).
#[derive(Debug, Clone, Default)]
pub(super) struct IdIndex(hashbrown::HashTable<Ix>);

/// The hash of an event id in [`IdIndex`].
fn id_hash(id: &EventId) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(id)
}

/// The hash of the event at `ix` (only events in the arena are ever indexed).
fn ix_hash(arena: &Arena, ix: Ix) -> u64 {
    arena.get(ix as usize).map_or(0, |e| id_hash(&e.id()))
}

/// Whether the event at `ix` has id `id`.
fn ix_is(arena: &Arena, ix: Ix, id: &EventId) -> bool {
    arena.get(ix as usize).is_some_and(|e| e.id() == *id)
}

impl IdIndex {
    /// An index of `events` (indices in their order), and whether an id came twice (the
    /// later is then not indexed).
    pub(super) fn build(events: &[Event]) -> (IdIndex, bool) {
        let hash_at = |&i: &Ix| events.get(i as usize).map_or(0, |e| id_hash(&e.id()));
        let mut table = hashbrown::HashTable::new();
        table.reserve(events.len(), hash_at);
        let mut duplicates = false;
        for (e, i) in events.iter().zip(0..) {
            let id = e.id();
            let is = |&j: &Ix| events.get(j as usize).is_some_and(|f| f.id() == id);
            match table.entry(id_hash(&id), is, hash_at) {
                hashbrown::hash_table::Entry::Occupied(_) => duplicates = true,
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert(i);
                }
            }
        }
        (IdIndex(table), duplicates)
    }

    /// An index of an arena whose ids are all distinct (a state's own).
    pub(super) fn of_arena(arena: &Arena) -> IdIndex {
        let hash_at = |&i: &Ix| ix_hash(arena, i);
        let mut table = hashbrown::HashTable::new();
        table.reserve(arena.len(), hash_at);
        for (e, i) in arena.iter().zip(0..) {
            table.insert_unique(id_hash(&e.id()), i, hash_at);
        }
        IdIndex(table)
    }
}

/// The events themselves: an append-only arena, the interned site of each, and an index by id.
#[derive(Debug, Clone, Default)]
pub(super) struct EventStore {
    pub(super) arena: Arena,
    pub(super) site_of: Vec<SiteIx>,
    /// Each event's HLC wall time, beside the arena: as-of cuts read only these 8 bytes.
    pub(super) wall: Vec<Millis>,
    pub(super) index: IdIndex,
}

impl EventStore {
    /// Index the event at `ix`, already in the arena, under `id` (not yet indexed).
    pub(super) fn index_insert(&mut self, id: &EventId, ix: Ix) {
        let EventStore { arena, index, .. } = self;
        index
            .0
            .insert_unique(id_hash(id), ix, |&j| ix_hash(arena, j));
    }
    pub(super) fn contains(&self, id: &EventId) -> bool {
        self.ix(id).is_some()
    }
    pub(super) fn get(&self, ix: Ix) -> Option<&Event> {
        self.arena.get(ix as usize)
    }
    pub(super) fn site_of(&self, ix: Ix) -> Option<SiteIx> {
        self.site_of.get(ix as usize).copied()
    }
    pub(super) fn wall(&self, ix: Ix) -> Option<Millis> {
        self.wall.get(ix as usize).copied()
    }
    pub(super) fn ix(&self, id: &EventId) -> Option<Ix> {
        self.index
            .0
            .find(id_hash(id), |&j| ix_is(&self.arena, j, id))
            .copied()
    }
    pub(super) fn by_id(&self, id: &EventId) -> Option<&Event> {
        self.ix(id).and_then(|i| self.get(i))
    }
    pub(super) fn key(&self, ix: Ix) -> Option<OrderKey> {
        self.get(ix).map(Event::order_key)
    }
    pub(super) fn id(&self, ix: Ix) -> Option<EventId> {
        self.get(ix).map(Event::id)
    }
    pub(super) fn len(&self) -> usize {
        self.arena.len()
    }
}

/// Sites met in events, interned.
#[derive(Debug, Clone, Default)]
pub(super) struct SiteTable {
    pub(super) ids: Vec<SiteId>,
    pub(super) index: FxHashMap<SiteId, SiteIx>,
}

impl SiteTable {
    pub(super) fn intern(&mut self, site: SiteId) -> SiteIx {
        if let Some(&i) = self.index.get(&site) {
            return i;
        }
        // Sites are few (a deployment's); the events that name them are validated first.
        let i = SiteIx::try_from(self.ids.len()).unwrap_or(SiteIx::MAX);
        self.ids.push(site);
        self.index.insert(site, i);
        i
    }
    pub(super) fn get(&self, site: &SiteId) -> Option<SiteIx> {
        self.index.get(site).copied()
    }
    pub(super) fn id(&self, i: SiteIx) -> Option<SiteId> {
        self.ids.get(i as usize).copied()
    }
}

/// Arena indices of events, sorted by their order keys, without duplicates. Most histories
/// are short (a person's few stay events), so the first few live inline.
#[derive(Debug, Clone, Default)]
pub(super) struct History(pub(super) SmallVec<[Ix; 8]>);

impl History {
    /// Insert an event not yet present; returns true if it went at the end (the in-order
    /// fast path). `in_order` promises that it comes after every event present (the batch
    /// fold applies events in the agreed order), which saves reading the last one.
    pub(super) fn insert(
        &mut self,
        ix: Ix,
        key: OrderKey,
        events: &EventStore,
        in_order: bool,
    ) -> bool {
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
    pub(super) fn upto(&self, as_of: Option<Millis>, events: &EventStore) -> &[Ix] {
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
    pub(super) fn latest(&self, as_of: Option<Millis>, events: &EventStore) -> Option<Ix> {
        self.upto(as_of, events).last().copied()
    }

    pub(super) fn ids(&self, events: &EventStore) -> Vec<EventId> {
        self.0.iter().filter_map(|&i| events.id(i)).collect()
    }
}

pub(super) fn visible(key: &OrderKey, as_of: Option<Millis>) -> bool {
    as_of.is_none_or(|t| key.0.wall_ms <= t)
}
