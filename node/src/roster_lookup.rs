//! A roster answered from its encrypted store ([`RosterDb`]) instead of held in memory: the
//! station's lookups (an entry by 宛名番号 or 名簿番号, a household, the fuzzy matcher's
//! candidates by birth date and name, staff search) go to the store's B-trees and postings,
//! through bounded LRU caches. Ten million residents cost the station the caches and SQLite's
//! page cache, not gigabytes of entries and a match index.
//!
//! **Checked before use.** [`StoreRoster::open`] streams every stored entry through the roster
//! hash ([`RosterDb::verify`]) and refuses the store unless it gives the hash recorded at import
//! and the one the manifest pins — the check `RosterDb::load` makes, without holding the
//! entries. A roster.db altered after import (even by someone holding its passphrase) is refused
//! as before. `enrolled::open` skips that walk only for the exact bytes it sealed after such a
//! check (`crate::roster_seal`: the pin and a fingerprint of the files, kept in the station's
//! own store); any change to the files brings the walk back. The lookup tables are not under the hash: every entry read through one is checked
//! to be the one asked for (its 宛名番号, 名簿番号, household or birth date), so an altered
//! index can make the station miss a person but never show another person in their place.
//!
//! **Faults.** A read that fails after the open (a vanished or damaged file) answers "not on
//! the roster" and is kept as [`RosterStore::fault`] for the station to show; it never panics.

use crate::roster_db::{RosterDb, RosterDbError};
use kazashi_domain::ids::{HouseholdId, ListNumber, PersonId, RosterHash};
use kazashi_domain::roster::{RosterEntry, RosterKind, RosterStore};
use kazashi_domain::{CivilDate, Roster};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

/// Rosters of at least this many entries are answered from disk when the store allows it
/// (layout 9 on); smaller ones are loaded into memory, as they always were.
pub const ON_DISK_FROM: u64 = 200_000;

/// Cached persons (by 宛名番号; a 名簿番号 lookup caches its person too).
const PERSONS: usize = 65_536;
/// Cached households.
const GROUPS: usize = 8_192;
/// Cached birth dates: about 270 people share one in ten million, so the cache is bounded by
/// entries (256 dates, some 70,000 entries), not by dates alone.
const BIRTHS: usize = 256;

struct Inner {
    db: RosterDb,
    persons: LruCache<PersonId, Option<Arc<RosterEntry>>>,
    households: LruCache<HouseholdId, Arc<[Arc<RosterEntry>]>>,
    births: LruCache<CivilDate, Arc<[Arc<RosterEntry>]>>,
    fault: Option<String>,
}

/// A verified roster store answering a [`Roster`]'s queries.
pub struct StoreRoster {
    inner: Mutex<Inner>,
    kind: RosterKind,
    hash: RosterHash,
    len: usize,
}

impl std::fmt::Debug for StoreRoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreRoster({} entries)", self.len)
    }
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl StoreRoster {
    /// Check `db` against the hash recorded at import and `pinned` (streamed, constant memory)
    /// and answer from it.
    pub fn open(db: RosterDb, pinned: Option<RosterHash>) -> Result<Self, RosterDbError> {
        if !db.answers_from_disk() {
            return Err(RosterDbError::Damaged(
                "the store predates lookups from disk: import the roster again".into(),
            ));
        }
        db.verify(pinned)?;
        Ok(Self::unverified(db))
    }

    /// Answer from `db` without walking its entries: for the store whose files' bytes the
    /// station sealed after checking them against `pinned` (`crate::roster_seal`). The hash
    /// recorded at import must still be the pin.
    pub(crate) fn sealed(db: RosterDb, pinned: RosterHash) -> Result<Self, RosterDbError> {
        if !db.answers_from_disk() {
            return Err(RosterDbError::Damaged(
                "the store predates lookups from disk: import the roster again".into(),
            ));
        }
        if db.hash() != pinned {
            return Err(RosterDbError::NotPinned {
                found: db.hash().to_hex(),
                pinned: pinned.to_hex(),
            });
        }
        Ok(Self::unverified(db))
    }

    fn unverified(db: RosterDb) -> Self {
        let (kind, hash) = (db.kind(), db.hash());
        let len = usize::try_from(db.len()).unwrap_or(usize::MAX);
        // SQLite's page cache for the lookups: 32 MiB (negative: KiB).
        let _ = db.conn.pragma_update(None, "cache_size", -32_768);
        StoreRoster {
            inner: Mutex::new(Inner {
                db,
                persons: LruCache::new(cap(PERSONS)),
                households: LruCache::new(cap(GROUPS)),
                births: LruCache::new(cap(BIRTHS)),
                fault: None,
            }),
            kind,
            hash,
            len,
        }
    }

    /// [`StoreRoster::open`] as a [`Roster`].
    pub fn roster(db: RosterDb, pinned: Option<RosterHash>) -> Result<Roster, RosterDbError> {
        Ok(Roster::from_store(Arc::new(Self::open(db, pinned)?)))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves only caches behind: go on with them.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// `Ok` as given; an error is kept as the fault (no personal data: the error's words only)
    /// and answered as `fallback`.
    fn or<T>(&mut self, r: Result<T, RosterDbError>, fallback: T) -> T {
        r.unwrap_or_else(|e| {
            self.fault = Some(e.to_string());
            fallback
        })
    }

    fn shared(&mut self, entries: Vec<RosterEntry>) -> Vec<Arc<RosterEntry>> {
        entries
            .into_iter()
            .map(|e| {
                let e = Arc::new(e);
                self.persons.put(e.person, Some(e.clone()));
                e
            })
            .collect()
    }
}

impl RosterStore for StoreRoster {
    fn kind(&self) -> RosterKind {
        self.kind
    }
    fn len(&self) -> usize {
        self.len
    }
    fn hash(&self) -> RosterHash {
        self.hash
    }

    fn get(&self, person: &PersonId) -> Option<Arc<RosterEntry>> {
        let mut g = self.lock();
        if let Some(hit) = g.persons.get(person) {
            return hit.clone();
        }
        let read = g.db.get(person);
        let found = g
            .or(read, None)
            .filter(|e| e.person == *person)
            .map(Arc::new);
        g.persons.put(*person, found.clone());
        found
    }

    fn by_list_number(&self, n: &ListNumber) -> Option<Arc<RosterEntry>> {
        let mut g = self.lock();
        let read = g.db.by_list_number(n);
        let e = g
            .or(read, None)
            .filter(|e| e.voter.as_ref().is_some_and(|v| v.list_number == *n))?;
        let e = Arc::new(e);
        g.persons.put(e.person, Some(e.clone()));
        Some(e)
    }

    fn household(&self, h: &HouseholdId) -> Vec<Arc<RosterEntry>> {
        let mut g = self.lock();
        if let Some(hit) = g.households.get(h) {
            return hit.to_vec();
        }
        let read = g.db.household(h);
        let mut entries = g.or(read, Vec::new());
        entries.retain(|e| e.household == *h);
        let members = g.shared(entries);
        g.households.put(*h, members.clone().into());
        members
    }

    fn born_on(&self, date: CivilDate) -> Vec<Arc<RosterEntry>> {
        let mut g = self.lock();
        if let Some(hit) = g.births.get(&date) {
            return hit.to_vec();
        }
        let read = g.db.born_on(date);
        let mut entries = g.or(read, Vec::new());
        entries.retain(|e| e.birth_date == date);
        let born: Vec<Arc<RosterEntry>> = entries.into_iter().map(Arc::new).collect();
        g.births.put(date, born.clone().into());
        born
    }

    fn named(&self, folded: &str, limit: usize) -> Vec<Arc<RosterEntry>> {
        let mut g = self.lock();
        let read = g.db.named(folded, limit);
        let entries = g.or(read, Vec::new());
        entries.into_iter().map(Arc::new).collect()
    }

    fn named_born(&self, folded: &str, dates: &[CivilDate], limit: usize) -> Vec<Arc<RosterEntry>> {
        let mut g = self.lock();
        let read = g.db.named_born(folded, dates, limit);
        let mut entries = g.or(read, Vec::new());
        // The date column and the postings are not under the hash; the entry is.
        entries.retain(|e| dates.binary_search(&e.birth_date).is_ok());
        entries.into_iter().map(Arc::new).collect()
    }

    fn search(&self, query: &str, limit: usize) -> Vec<PersonId> {
        let mut g = self.lock();
        let read = g.db.search(query, limit);
        g.or(read, Vec::new())
            .into_iter()
            .map(|e| e.person)
            .collect()
    }

    fn for_each(&self, f: &mut dyn FnMut(&RosterEntry)) -> bool {
        let mut g = self.lock();
        let read = g.db.for_each_entry(f);
        g.or(read.map(|()| true), false)
    }

    fn encoded_from(
        &self,
        from: u64,
        count: usize,
        f: &mut dyn FnMut(u64, &[u8]),
    ) -> Option<usize> {
        // One batch per lock: a peer being served keeps the desk's lookups waiting one batch
        // at most.
        let mut g = self.lock();
        let read = g.db.encoded_from(from, count, f);
        g.or(read.map(Some), None)
    }

    fn fault(&self) -> Option<String> {
        self.lock().fault.clone()
    }
}
