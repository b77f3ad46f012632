//! The roster store: an imported roster in two SQLCipher files under one key (Argon2id from a
//! passphrase, salt in `<file>.kdf`, as the node's store), indexed for lookup at
//! ten-million-row scale.
//!
//! **Files and tables.**
//! - `<file>` — `meta` (kind, hash, count, the SHA-256 of the source file, the layout version
//!   (`layout` = 11: `by_household` in rows of households; 10: `by_id` in rows of ids; the
//!   layouts before, a row a key, are still read; 9
//!   added `by_name` and 8 `by_household` — with both a station can answer from disk; 7 and 8
//!   are still read, loaded into memory whole; 7: entries carry the 支援措置 flag; 6 added names
//!   folded with the Unihan + MJ variant table) and a random import id); `person`, one row per
//!   entry in person-id order
//!   (`rid` is the position): the birth date and the entry itself (postcard); and the
//!   exact-key lookup tables, each a
//!   `WITHOUT ROWID` B-tree: `by_id` (宛名番号 → rid: rows of up to 64 ids in rid order, keyed by
//!   the first, see `IdRows`), `by_list` (名簿番号 → rid, voters
//!   only), `by_birth` (birth date → postings: rows of up to 1024 ascending rids as LEB128
//!   deltas, keyed by (date, first rid)) and `by_household` (世帯番号 → rids: rows of up to 64 households
//!   keyed by the first, see `household_rows`; 10 and before, postings like `by_birth`).
//! - `<file>.text` — `meta` (the same import id); `person_fts`, FTS5 with the trigram
//!   tokenizer over the folded name and reading, contentless, for substring search of three or
//!   more characters; `by_text` (postings like `by_birth`, keyed by the first two characters of every
//!   folded name and reading, for words shorter than a trigram: 佐藤, 林); and `by_name` (the whole
//!   folded name → postings: the fuzzy matcher's candidates without a date). Opened attached as schema `text`.
//!
//! **Writes.** An import builds new files beside the target (`<file>.part`,
//! `<file>.part.text`) with journaling off, one writer thread per file, and renames them into
//! place only once both are complete and synced, the main file last: a refused import, or one
//! interrupted before the renames, leaves the previous roster as it was. The commit point is a
//! marker file, `<file>.part.commit`, created (and its folder synced) once both new files are
//! complete and synced, just before the renames, and removed after them: an import killed
//! between the renames is finished by the next open (or import), which does the renames left
//! and removes the marker, so a kill at any point leaves the old roster or the new one whole
//! (`tests/tests/crash_paths.rs`). Files of two imports still never open as one store: a text
//! file from another import does not open under this store's key, and carries another import
//! id besides — such a store is refused with a message to import again. The lookup tables are not `CREATE INDEX`es: their keys are sorted and appended
//! in order — no pass re-reads a table, and every B-tree grows at its right edge.
//!
//! **Pinning.** The roster's hash (see `Roster::hash`) is computed from the encoded entries as
//! they are written and pinned in the deployment manifest. [`RosterDb::load`] recomputes it
//! from the stored entries, so a file altered after import is caught before any station uses
//! it, and the station compares it with the manifest; [`RosterDb::verify`] does the same
//! streaming, for a roster answered from disk (`crate::roster_lookup`).

use crate::store::{KdfParams, StoreError, create_encrypted_pair, kdf_path, open_encrypted_pair};
use kazashi_domain::ids::{ListNumber, PersonId, RosterHash};
use kazashi_domain::normalize::fold;
use kazashi_domain::roster::{RosterEntry, RosterHasher, RosterKind};
use kazashi_domain::search::parse_typed_date;
use kazashi_domain::{CivilDate, Roster};
use rusqlite::{Connection, OptionalExtension, params};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Why the roster store failed.
#[derive(Debug, thiserror::Error)]
pub enum RosterDbError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the roster store is damaged: {0}")]
    Damaged(String),
    #[error(
        "the roster's hash {found} does not match the one pinned in the deployment manifest ({pinned}): this is not the roster of this deployment"
    )]
    NotPinned { found: String, pinned: String },
}

/// An imported roster on disk.
pub struct RosterDb {
    pub(crate) conn: Connection,
    path: PathBuf,
    kind: RosterKind,
    hash: RosterHash,
    len: u64,
    layout: u32,
}

impl std::fmt::Debug for RosterDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RosterDb({}, {} entries)", self.path.display(), self.len)
    }
}

/// The folded text of one entry, as indexed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoldedEntry {
    pub name: String,
    pub kana: String,
}

/// Fold every entry's name and reading, on every core.
pub fn fold_entries(entries: &[RosterEntry]) -> Vec<FoldedEntry> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = entries.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|e| FoldedEntry {
                            name: fold(e.name.as_str()),
                            kana: fold(e.kana.as_str()),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

pub(crate) fn part_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".part");
    PathBuf::from(p)
}

pub(crate) fn days(d: CivilDate) -> i64 {
    d.days_since_epoch()
}

/// The first two characters of `s` (all of it if shorter).
pub(crate) fn prefix2(s: &str) -> &str {
    let end = s.char_indices().nth(2).map_or(s.len(), |(i, _)| i);
    s.get(..end).unwrap_or(s)
}

/// The smallest string greater than every string starting with `p` (for prefix ranges).
fn prefix_end(p: &str) -> String {
    let mut s = p.to_owned();
    s.push(char::MAX);
    s
}

/// Rows per multi-row `INSERT` in bulk loads: one statement step per this many rows.
const BULK_ROWS: usize = 500;

/// Append (key, rid) pairs to a lookup table, many rows per statement.
pub(crate) fn bulk_pairs<K: rusqlite::ToSql>(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    pairs: impl Iterator<Item = (K, i64)>,
) -> Result<(), RosterDbError> {
    let sql = |n: usize| {
        let mut q = format!("INSERT INTO {table} (k, rid) VALUES ");
        q.push_str(&vec!["(?, ?)"; n].join(", "));
        q
    };
    let mut full = tx.prepare(&sql(BULK_ROWS))?;
    let mut batch: Vec<(K, i64)> = Vec::with_capacity(BULK_ROWS);
    let flush = |batch: &mut Vec<(K, i64)>, st: &mut rusqlite::Statement<'_>| {
        let params: Vec<&dyn rusqlite::ToSql> = batch
            .iter()
            .flat_map(|(k, r)| [k as &dyn rusqlite::ToSql, r as &dyn rusqlite::ToSql])
            .collect();
        let n = st.execute(params.as_slice());
        batch.clear();
        n
    };
    for p in pairs {
        batch.push(p);
        if batch.len() == BULK_ROWS {
            flush(&mut batch, &mut full)?;
        }
    }
    if !batch.is_empty() {
        let mut last = tx.prepare(&sql(batch.len()))?;
        flush(&mut batch, &mut last)?;
    }
    Ok(())
}

/// Rids per postings row of `by_birth` and `by_text`.
pub(crate) const POSTINGS_PER_ROW: usize = 1024;

/// Write each key's rids (ascending) as rows of (key, first rid, the rids as LEB128 deltas),
/// [`POSTINGS_PER_ROW`] at most per row.
pub(crate) fn postings<'a, K: rusqlite::ToSql>(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    lists: impl Iterator<Item = (K, &'a [i64])>,
) -> Result<(), RosterDbError> {
    // Cached: `roster_import::grouped_postings` calls this once per key (hundreds of
    // thousands of households), which parsed the statement each time.
    let mut st = tx.prepare_cached(&format!(
        "INSERT INTO {table} (k, first, rids) VALUES (?1, ?2, ?3)"
    ))?;
    let mut blob = Vec::new();
    for (k, rids) in lists {
        for chunk in rids.chunks(POSTINGS_PER_ROW) {
            let Some(&first) = chunk.first() else {
                continue;
            };
            blob.clear();
            let mut prev = first;
            for &r in chunk {
                let d = u64::try_from(r - prev).unwrap_or(0);
                prev = r;
                kazashi_sync::wire::put_varint(&mut blob, d);
            }
            st.execute(params![k, first, blob])?;
        }
    }
    Ok(())
}

/// The rids of one postings row; `Damaged` if the bytes are not what [`postings`] writes.
fn read_postings(first: i64, blob: &[u8], out: &mut Vec<i64>) -> Result<(), RosterDbError> {
    let bad = || RosterDbError::Damaged("a postings row does not decode".into());
    let mut prev = first;
    let (mut d, mut shift) = (0u64, 0u32);
    for &b in blob {
        if shift > 56 {
            return Err(bad());
        }
        d |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            prev = prev
                .checked_add(i64::try_from(d).map_err(|_| bad())?)
                .ok_or_else(bad)?;
            out.push(prev);
            (d, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
    if shift != 0 {
        return Err(bad());
    }
    Ok(())
}

/// The layout this code writes (see the module's table list).
pub(crate) const LAYOUT: u32 = 11;
/// The first layout whose `by_id` holds rows of ids (see [`IdRows`]); before, a row an id.
const LAYOUT_ID_ROWS: u32 = 10;
/// The first layout whose `by_household` holds rows of households (see [`household_rows`]);
/// before, postings like `by_birth`.
const LAYOUT_HOUSEHOLD_ROWS: u32 = 11;
/// The oldest layout it still reads: 7 has no `by_household` and 8 no `by_name`, so such a
/// store is loaded into memory whole ([`RosterDb::load`]), never answered from disk.
const LAYOUT_READ: u32 = 7;

/// Ids a `by_id` row holds at most (layout 10 on): ten million ids make about 156,000 rows.
pub(crate) const IDS_PER_ROW: usize = 64;

/// The bound on a `by_id` or `by_household` row's bytes: a `by_id` row is closed once past it
/// (by one id at most, 21 bytes), a household row before a household would take it past.
/// Either stays within a 4 KiB page's share for one row of a `WITHOUT ROWID` table (about
/// 980 bytes with SQLCipher's reserve), so no row spills to an overflow page.
pub(crate) const ROW_BYTES: usize = 800;

/// `by_id`'s writer (layout 10 on). The ids come in rid order from 0, strictly ascending
/// (the order of the `person` table); each row holds up to [`IDS_PER_ROW`] of them (fewer
/// past [`ROW_BYTES`]), keyed by its first: (first id, first rid, each id as its length byte and its bytes). An id is found
/// by the last row keyed at or before it, then in that row. One B-tree entry for 64 ids
/// instead of one each: a 10 M import wrote them in 4.5 s, one a row.
pub(crate) struct IdRows<'c> {
    ins: rusqlite::Statement<'c>,
    /// The pending row's first id and rid, and its ids so far.
    key: Option<(PersonId, i64)>,
    ids: Vec<u8>,
    count: usize,
    last: Option<PersonId>,
    next: i64,
}

impl<'c> IdRows<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Result<Self, RosterDbError> {
        Ok(IdRows {
            ins: conn.prepare("INSERT INTO by_id (k, first, ids) VALUES (?1, ?2, ?3)")?,
            key: None,
            ids: Vec::with_capacity(IDS_PER_ROW * 12),
            count: 0,
            last: None,
            next: 0,
        })
    }

    /// The id of the next rid; `Damaged` unless it is greater than the one before.
    pub(crate) fn push(&mut self, id: PersonId) -> Result<(), RosterDbError> {
        if self.last.is_some_and(|l| l >= id) {
            return Err(RosterDbError::Damaged(
                "ids not in ascending order for by_id".into(),
            ));
        }
        self.last = Some(id);
        if self.key.is_none() {
            self.key = Some((id, self.next));
        }
        let s = id.as_str();
        // An id is at most `PersonId::MAX` (20) ASCII bytes.
        self.ids.push(s.len() as u8);
        self.ids.extend_from_slice(s.as_bytes());
        self.count += 1;
        self.next += 1;
        if self.count == IDS_PER_ROW || self.ids.len() >= ROW_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RosterDbError> {
        if let Some((k, first)) = self.key.take() {
            self.ins.execute(params![k.as_str(), first, self.ids])?;
        }
        self.ids.clear();
        self.count = 0;
        Ok(())
    }

    /// The last row written.
    pub(crate) fn finish(mut self) -> Result<(), RosterDbError> {
        self.flush()
    }
}

/// The rid of `id` in a row of [`IdRows`] whose first rid is `first`, if it is there.
fn rid_in_row(ids: &[u8], first: i64, id: &str) -> Result<Option<i64>, RosterDbError> {
    let mut rest = ids;
    let mut rid = first;
    while let Some((&len, tail)) = rest.split_first() {
        let Some((this, tail)) = tail.split_at_checked(usize::from(len)) else {
            return Err(RosterDbError::Damaged("a by_id row does not decode".into()));
        };
        if this == id.as_bytes() {
            return Ok(Some(rid));
        }
        rest = tail;
        rid = rid
            .checked_add(1)
            .ok_or_else(|| RosterDbError::Damaged("a by_id row does not decode".into()))?;
    }
    Ok(None)
}

/// Households a `by_household` row holds at most (layout 11 on).
pub(crate) const HOUSEHOLDS_PER_ROW: usize = 64;

/// `by_household` (layout 11 on) from (世帯番号, rid) pairs sorted by key, then rid: each row
/// holds up to [`HOUSEHOLDS_PER_ROW`] households and at most [`ROW_BYTES`] (a household too
/// large for that, hundreds of members, is a row of its own, which may spill to an overflow
/// page), keyed by its first, each as its key's length byte
/// and bytes, its member count, then its rids (the first whole, then the differences), all
/// LEB128. A household is found by the last row keyed at or before it, then in that row.
/// One B-tree entry for 64 households instead of one each: a 10 M import wrote about 4.5 M
/// rows in 5 s, one a household.
pub(crate) fn household_rows<'a>(
    conn: &Connection,
    pairs: impl Iterator<Item = (&'a str, u32)>,
) -> Result<(), RosterDbError> {
    let mut ins = conn.prepare("INSERT INTO by_household (k, households) VALUES (?1, ?2)")?;
    let mut row: Vec<u8> = Vec::new();
    let mut row_key: Option<&str> = None;
    let mut in_row = 0usize;
    let mut rids: Vec<u32> = Vec::new();
    let mut key: Option<&str> = None;
    let mut entry: Vec<u8> = Vec::new();
    let mut put = |k: &'a str, rids: &[u32]| -> Result<(), RosterDbError> {
        entry.clear();
        // A household id is at most `HouseholdId::MAX` (20) ASCII bytes.
        entry.push(k.len() as u8);
        entry.extend_from_slice(k.as_bytes());
        kazashi_sync::wire::put_varint(&mut entry, rids.len() as u64);
        let mut prev = 0u32;
        for &r in rids {
            kazashi_sync::wire::put_varint(&mut entry, u64::from(r - prev));
            prev = r;
        }
        // The row so far is closed first if this household would take it past the bound.
        if row.len() + entry.len() > ROW_BYTES
            && let Some(first) = row_key.take()
        {
            ins.execute(params![first, row])?;
            row.clear();
            in_row = 0;
        }
        if row_key.is_none() {
            row_key = Some(k);
        }
        row.extend_from_slice(&entry);
        in_row += 1;
        if in_row == HOUSEHOLDS_PER_ROW
            && let Some(first) = row_key.take()
        {
            ins.execute(params![first, row])?;
            row.clear();
            in_row = 0;
        }
        Ok(())
    };
    for (k, r) in pairs {
        if key != Some(k) {
            if let Some(done) = key {
                if done >= k {
                    return Err(RosterDbError::Damaged(
                        "households not in ascending order for by_household".into(),
                    ));
                }
                put(done, &rids)?;
            }
            rids.clear();
            key = Some(k);
        }
        if rids.last().is_some_and(|&l| l >= r) {
            return Err(RosterDbError::Damaged(
                "a household's rids not ascending for by_household".into(),
            ));
        }
        rids.push(r);
    }
    if let Some(done) = key {
        put(done, &rids)?;
    }
    if let Some(first) = row_key {
        ins.execute(params![first, row])?;
    }
    Ok(())
}

/// The rids of household `h` in a row of [`household_rows`], if it is there.
fn household_in_row(row: &[u8], h: &str) -> Result<Option<Vec<i64>>, RosterDbError> {
    let bad = || RosterDbError::Damaged("a by_household row does not decode".into());
    let mut rest = row;
    while let Some((&len, tail)) = rest.split_first() {
        let (k, tail) = tail.split_at_checked(usize::from(len)).ok_or_else(bad)?;
        let (count, mut tail) = kazashi_sync::wire::take_varint(tail).ok_or_else(bad)?;
        let ours = k == h.as_bytes();
        let mut out = Vec::new();
        let mut prev = 0i64;
        for _ in 0..count {
            let (d, t) = kazashi_sync::wire::take_varint(tail).ok_or_else(bad)?;
            tail = t;
            if ours {
                prev = prev
                    .checked_add(i64::try_from(d).map_err(|_| bad())?)
                    .ok_or_else(bad)?;
                out.push(prev);
            }
        }
        if ours {
            return Ok(Some(out));
        }
        rest = tail;
    }
    Ok(None)
}

/// The text index file beside a store: `<file>.text`.
pub fn text_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".text");
    PathBuf::from(p)
}

/// What a roster store is written from: entries in person-id order, each id once (as a
/// [`Roster`] or an import keeps them), and optionally their folded text.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub kind: RosterKind,
    pub entries: &'a [RosterEntry],
    /// [`fold_entries`] of the entries, when the caller already has it.
    pub folded: Option<&'a [FoldedEntry]>,
}

impl<'a> From<&'a Roster> for Rows<'a> {
    fn from(r: &'a Roster) -> Self {
        Rows {
            kind: r.kind(),
            entries: r.entries(),
            folded: None,
        }
    }
}

pub(crate) fn write_meta(
    tx: &rusqlite::Transaction<'_>,
    pairs: &[(&str, Vec<u8>)],
) -> Result<(), RosterDbError> {
    let mut meta = tx.prepare("INSERT INTO meta (k, v) VALUES (?1, ?2)")?;
    for (k, v) in pairs {
        meta.execute(params![k, v])?;
    }
    Ok(())
}

/// The main file's tables (see the module doc).
pub(crate) const MAIN_SCHEMA: &str =
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
         CREATE TABLE person (
             rid INTEGER PRIMARY KEY,
             birth INTEGER NOT NULL,
             entry BLOB NOT NULL
         );
         CREATE TABLE by_id (k TEXT PRIMARY KEY, first INTEGER NOT NULL, ids BLOB NOT NULL)
                             WITHOUT ROWID;
         CREATE TABLE by_list (k TEXT PRIMARY KEY, rid INTEGER NOT NULL) WITHOUT ROWID;
         CREATE TABLE by_birth (k INTEGER, first INTEGER, rids BLOB NOT NULL,
                                PRIMARY KEY (k, first)) WITHOUT ROWID;
         CREATE TABLE by_household (k TEXT PRIMARY KEY, households BLOB NOT NULL)
                                    WITHOUT ROWID;";

/// The text file's tables (see the module doc).
pub(crate) const TEXT_SCHEMA: &str =
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
         CREATE VIRTUAL TABLE person_fts USING fts5(
             name, kana, content='', detail=none, tokenize='trigram'
         );
         CREATE TABLE by_text (k TEXT, first INTEGER, rids BLOB NOT NULL,
                               PRIMARY KEY (k, first)) WITHOUT ROWID;
         CREATE TABLE by_name (k TEXT, first INTEGER, rids BLOB NOT NULL,
                               PRIMARY KEY (k, first)) WITHOUT ROWID;";

/// FTS5 flushes its in-memory index to a new segment whenever it outgrows this (1 MB by
/// default); a larger one means fewer segments to merge during a bulk load.
pub(crate) fn fts_hashsize(conn: &Connection) -> Result<(), RosterDbError> {
    conn.execute(
        "INSERT INTO person_fts (person_fts, rank) VALUES ('hashsize', 268435456)",
        [],
    )?;
    Ok(())
}

/// Pragmas for a bulk load into a new file that is discarded if anything fails.
pub(crate) fn bulk_pragmas(conn: &Connection) -> Result<(), RosterDbError> {
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    Ok(())
}

/// The entries' rows, their lookup tables and the meta, into the main file; returns the hash.
fn write_main(
    conn: &Connection,
    rows: Rows<'_>,
    meta: &[(&str, Vec<u8>)],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RosterHash, RosterDbError> {
    let entries = rows.entries;
    let total = entries.len() as u64;
    conn.execute_batch(MAIN_SCHEMA)?;
    let tx = conn.unchecked_transaction()?;
    // The roster hash from the same encoding as the stored entries.
    let mut hasher = RosterHasher::new(rows.kind);
    {
        let mut ins = tx.prepare("INSERT INTO person (rid, birth, entry) VALUES (?1, ?2, ?3)")?;
        let mut buf = Vec::with_capacity(256);
        for (i, e) in entries.iter().enumerate() {
            buf.clear();
            let entry = postcard::to_extend(e, std::mem::take(&mut buf))
                .map_err(|x| RosterDbError::Damaged(x.to_string()))?;
            hasher.entry(&entry);
            ins.execute(params![i as i64, days(e.birth_date), entry])?;
            buf = entry;
            if i % 65_536 == 0 {
                progress(i as u64, total);
            }
        }
    }
    // Persons are in id order already: rid is the position.
    let mut by_id = IdRows::new(&tx)?;
    for e in entries {
        by_id.push(e.person)?;
    }
    by_id.finish()?;
    let mut list: Vec<(&str, i64)> = (0..)
        .zip(entries)
        .filter_map(|(i, e)| Some((e.voter.as_ref()?.list_number.as_str(), i)))
        .collect();
    list.sort_unstable();
    bulk_pairs(&tx, "by_list", list.into_iter())?;
    let mut birth: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
    for (i, e) in (0..).zip(entries) {
        birth.entry(days(e.birth_date)).or_default().push(i);
    }
    let mut birth: Vec<(i64, Vec<i64>)> = birth.into_iter().collect();
    birth.sort_unstable_by_key(|(k, _)| *k);
    postings(
        &tx,
        "by_birth",
        birth.iter().map(|(k, r)| (k, r.as_slice())),
    )?;
    drop(birth);
    let mut household: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
    for (i, e) in (0u32..).zip(entries) {
        household.entry(e.household.as_str()).or_default().push(i);
    }
    let mut household: Vec<(&str, Vec<u32>)> = household.into_iter().collect();
    household.sort_unstable_by_key(|(k, _)| *k);
    household_rows(
        &tx,
        household
            .iter()
            .flat_map(|(k, rids)| rids.iter().map(move |&r| (*k, r))),
    )?;
    drop(household);
    let hash = hasher.finish();
    let mut meta = meta.to_vec();
    meta.push(("hash", hash.0.to_vec()));
    write_meta(&tx, &meta)?;
    tx.commit()?;
    Ok(hash)
}

/// The full-text index and the prefix table of the folded names and readings, into the text
/// file.
fn write_text(
    conn: &Connection,
    folded: &[FoldedEntry],
    meta: &[(&str, Vec<u8>)],
) -> Result<(), RosterDbError> {
    conn.execute_batch(TEXT_SCHEMA)?;
    fts_hashsize(conn)?;
    let tx = conn.unchecked_transaction()?;
    {
        let mut fts =
            tx.prepare("INSERT INTO person_fts (rowid, name, kana) VALUES (?1, ?2, ?3)")?;
        for (i, f) in folded.iter().enumerate() {
            fts.execute(params![i as i64, f.name, f.kana])?;
        }
    }
    // Only the first two characters: words of three or more go through the trigrams.
    // Rows in rid order, so each key's list comes out sorted.
    let mut text: FxHashMap<&str, Vec<i64>> = FxHashMap::default();
    for (i, f) in (0..).zip(folded) {
        for k in [prefix2(&f.name), prefix2(&f.kana)] {
            let list = text.entry(k).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let mut text: Vec<(&str, Vec<i64>)> = text.into_iter().collect();
    text.sort_unstable_by_key(|(k, _)| *k);
    postings(&tx, "by_text", text.iter().map(|(k, r)| (k, r.as_slice())))?;
    drop(text);
    // The whole folded name → its bearers (the matcher's candidates without a date), from one
    // sorted list of (name, rid) rather than a list per name.
    let mut names: Vec<(&str, i64)> = (0..)
        .zip(folded)
        .map(|(i, f)| (f.name.as_str(), i))
        .collect();
    names.sort_unstable();
    let mut st = tx.prepare("INSERT INTO by_name (k, first, rids) VALUES (?1, ?2, ?3)")?;
    let mut blob = Vec::new();
    for group in names.chunk_by(|a, b| a.0 == b.0) {
        for chunk in group.chunks(POSTINGS_PER_ROW) {
            let Some(&(k, first)) = chunk.first() else {
                continue;
            };
            blob.clear();
            let mut prev = first;
            for &(_, r) in chunk {
                kazashi_sync::wire::put_varint(&mut blob, u64::try_from(r - prev).unwrap_or(0));
                prev = r;
            }
            st.execute(params![k, first, blob])?;
        }
    }
    drop(st);
    drop(names);
    write_meta(&tx, meta)?;
    tx.commit()?;
    Ok(())
}

/// `<file>.part.commit`: present from an import's commit point until its renames are done.
pub(crate) fn commit_marker(path: &Path) -> PathBuf {
    let mut p = part_path(path).into_os_string();
    p.push(".commit");
    PathBuf::from(p)
}

fn sync_folder(path: &Path) -> Result<(), RosterDbError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Move a committed import's files into place — those not moved yet: the text file, the key
/// file, then the main file — sync the folder and remove the commit marker.
fn finish_renames(path: &Path) -> Result<(), RosterDbError> {
    let part = part_path(path);
    for (from, to) in [
        (text_path(&part), text_path(path)),
        (kdf_path(&part), kdf_path(path)),
        (part.clone(), path.to_owned()),
    ] {
        if from.exists() {
            std::fs::rename(&from, &to)?;
        }
    }
    sync_folder(path)?;
    std::fs::remove_file(commit_marker(path))?;
    sync_folder(path)
}

/// `<file>.part.stage`: the rows of a streamed import in file order, while it runs
/// (`crate::roster_import`).
pub fn stage_path(path: &Path) -> PathBuf {
    let mut p = part_path(path).into_os_string();
    p.push(".stage");
    PathBuf::from(p)
}

/// Before an import: finish one that was committed, remove the files of one that was not.
pub(crate) fn clear_parts(path: &Path) -> Result<(), RosterDbError> {
    if commit_marker(path).exists() {
        finish_renames(path)?;
    }
    let part = part_path(path);
    for p in [
        part.clone(),
        kdf_path(&part),
        text_path(&part),
        stage_path(path),
    ] {
        if p.exists() {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// The meta rows of a new import (the hash is added once known).
pub(crate) fn import_meta(
    kind: RosterKind,
    count: u64,
    source_sha256: [u8; 32],
) -> Result<Vec<(&'static str, Vec<u8>)>, RosterDbError> {
    // Both files carry the same import id: a store whose two files come from different
    // imports is refused on open.
    let import_id: [u8; 16] = crate::store::random_bytes()?;
    let kind: &[u8] = match kind {
        RosterKind::Residents => b"residents",
        RosterKind::Voters => b"voters",
    };
    Ok(vec![
        ("kind", kind.to_vec()),
        ("count", count.to_le_bytes().to_vec()),
        ("source_sha256", source_sha256.to_vec()),
        ("layout", LAYOUT.to_le_bytes().to_vec()),
        ("import", import_id.to_vec()),
    ])
}

/// An import's part files, complete and closed, synced and renamed into place past the commit
/// point; then the store opened.
pub(crate) fn commit_parts(path: &Path, passphrase: &str) -> Result<RosterDb, RosterDbError> {
    let part = part_path(path);
    for p in [&part, &text_path(&part), &kdf_path(&part)] {
        std::fs::File::open(p)?.sync_all()?;
    }
    // The commit point: from the marker on, the renames are finished even after a crash
    // (by `finish_renames` on the next open or import).
    let marker = commit_marker(path);
    std::fs::File::create(&marker)?.sync_all()?;
    sync_folder(path)?;
    finish_renames(path)?;
    RosterDb::open(path, passphrase)
}

impl RosterDb {
    /// Write `rows` to a new roster store at `path`, replacing any roster there only once the
    /// new one is complete. `source_sha256` is the hash of the imported file, for the record.
    ///
    /// The store is two encrypted files under one key, written at once on two threads: `path`
    /// (the entries and the exact-key tables) and `<path>.text` (the text indexes).
    pub fn create(
        path: &Path,
        passphrase: &str,
        params: KdfParams,
        rows: Rows<'_>,
        source_sha256: [u8; 32],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RosterDb, RosterDbError> {
        if let Some(i) = rows.entries.windows(2).position(|w| match w {
            [a, b] => a.person >= b.person,
            _ => false,
        }) {
            return Err(RosterDbError::Damaged(format!(
                "entries out of person-id order at position {}",
                i + 1
            )));
        }
        clear_parts(path)?;
        let part = part_path(path);
        let text_part = text_path(&part);
        let computed;
        let folded = match rows.folded {
            Some(f) if f.len() == rows.entries.len() => f,
            _ => {
                computed = fold_entries(rows.entries);
                &computed[..]
            }
        };
        let total = rows.entries.len() as u64;
        let meta = import_meta(rows.kind, total, source_sha256)?;
        {
            let (main, text) = create_encrypted_pair(&part, &text_part, passphrase, params)?;
            bulk_pragmas(&main)?;
            bulk_pragmas(&text)?;
            std::thread::scope(|scope| -> Result<(), RosterDbError> {
                let meta = &meta;
                let text_job = std::thread::Builder::new().spawn_scoped(scope, move || {
                    write_text(&text, folded, meta)?;
                    text.pragma_update(None, "journal_mode", "DELETE")?;
                    Ok(())
                })?;
                let main_done = write_main(&main, rows, meta, progress);
                let text_done = text_job.join().unwrap_or_else(|_| {
                    Err(RosterDbError::Damaged(
                        "the text index writer failed".into(),
                    ))
                });
                main_done?;
                text_done
            })?;
            progress(total, total);
            main.pragma_update(None, "journal_mode", "DELETE")?;
        }
        commit_parts(path, passphrase)
    }

    /// Open a roster store.
    pub fn open(path: &Path, passphrase: &str) -> Result<RosterDb, RosterDbError> {
        if commit_marker(path).exists() {
            finish_renames(path)?;
        }
        let conn = open_encrypted_pair(path, &text_path(path), "text", passphrase)?;
        let meta = |k: &str| -> Result<Vec<u8>, RosterDbError> {
            conn.query_row("SELECT v FROM main.meta WHERE k = ?1", [k], |r| r.get(0))
                .optional()?
                .ok_or_else(|| RosterDbError::Damaged(format!("no {k} recorded")))
        };
        let kind = match meta("kind")?.as_slice() {
            b"residents" => RosterKind::Residents,
            b"voters" => RosterKind::Voters,
            _ => return Err(RosterDbError::Damaged("unknown roster kind".into())),
        };
        let hash = RosterHash(
            meta("hash")?
                .try_into()
                .map_err(|_| RosterDbError::Damaged("hash of the wrong length".into()))?,
        );
        let layout = meta("layout")
            .ok()
            .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
            .map(u32::from_le_bytes)
            .filter(|l| (LAYOUT_READ..=LAYOUT).contains(l))
            .ok_or_else(|| {
                RosterDbError::Damaged(
                    "the store was written by another version of Kazashi: import the roster again"
                        .into(),
                )
            })?;
        let import_of = |schema: &str| -> Result<Vec<u8>, RosterDbError> {
            conn.query_row(
                &format!("SELECT v FROM {schema}.meta WHERE k = 'import'"),
                [],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| RosterDbError::Damaged(format!("no import id in {schema}")))
        };
        if import_of("main")? != import_of("text")? {
            return Err(RosterDbError::Damaged(
                "its text index belongs to another import: import the roster again".into(),
            ));
        }
        let len = u64::from_le_bytes(
            meta("count")?
                .try_into()
                .map_err(|_| RosterDbError::Damaged("count of the wrong length".into()))?,
        );
        Ok(RosterDb {
            conn,
            path: path.to_owned(),
            kind,
            hash,
            len,
            layout,
        })
    }

    /// The open connection, for tests that alter a store behind its back.
    #[doc(hidden)]
    pub fn connection_for_tests(&self) -> &Connection {
        &self.conn
    }

    /// Whether the store has every table a roster answered from disk needs (layout 9 on).
    pub fn answers_from_disk(&self) -> bool {
        self.layout >= 9
    }

    pub fn kind(&self) -> RosterKind {
        self.kind
    }
    /// The hash recorded at import (to pin in the deployment manifest).
    pub fn hash(&self) -> RosterHash {
        self.hash
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `f`'s statements in one read transaction (unless one is open already): one lock and one
    /// check of the page cache for all of them instead of one per statement, which is what a
    /// lookup of hundreds of entries by row otherwise pays per row (the journal's existence,
    /// the file's change counter, for the main and the attached text file).
    fn in_read<T>(&self, f: impl FnOnce() -> Result<T, RosterDbError>) -> Result<T, RosterDbError> {
        if !self.conn.is_autocommit() {
            return f();
        }
        self.conn.execute_batch("BEGIN")?;
        let out = f();
        // A read transaction: ending it cannot lose anything; a failure to end it is reported.
        let end = self
            .conn
            .execute_batch(if out.is_ok() { "COMMIT" } else { "ROLLBACK" });
        let out = out?;
        end?;
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<RosterEntry, RosterDbError> {
        postcard::from_bytes(bytes).map_err(|e| RosterDbError::Damaged(e.to_string()))
    }

    /// One entry by 宛名番号.
    pub fn get(&self, person: &PersonId) -> Result<Option<RosterEntry>, RosterDbError> {
        if self.layout < LAYOUT_ID_ROWS {
            let mut st = self.conn.prepare_cached(
                "SELECT p.entry FROM by_id b JOIN person p ON p.rid = b.rid WHERE b.k = ?1",
            )?;
            let blob: Option<Vec<u8>> = st.query_row([person.as_str()], |r| r.get(0)).optional()?;
            return blob.map(|b| Self::decode(&b)).transpose();
        }
        // Two reads (the row of ids, then the entry) in one read transaction.
        self.in_read(|| {
            let mut st = self.conn.prepare_cached(
                "SELECT first, ids FROM by_id WHERE k <= ?1 ORDER BY k DESC LIMIT 1",
            )?;
            let row: Option<(i64, Vec<u8>)> = st
                .query_row([person.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((first, ids)) = row else {
                return Ok(None);
            };
            let Some(rid) = rid_in_row(&ids, first, person.as_str())? else {
                return Ok(None);
            };
            let mut st = self
                .conn
                .prepare_cached("SELECT entry FROM person WHERE rid = ?1")?;
            let blob: Option<Vec<u8>> = st.query_row([rid], |r| r.get(0)).optional()?;
            blob.map(|b| Self::decode(&b)).transpose()
        })
    }

    /// One voter by 名簿番号.
    pub fn by_list_number(&self, n: &ListNumber) -> Result<Option<RosterEntry>, RosterDbError> {
        let mut st = self.conn.prepare_cached(
            "SELECT p.entry FROM by_list b JOIN person p ON p.rid = b.rid WHERE b.k = ?1",
        )?;
        let blob: Option<Vec<u8>> = st.query_row([n.as_str()], |r| r.get(0)).optional()?;
        blob.map(|b| Self::decode(&b)).transpose()
    }

    /// Entries matching every word of `query`: a date equals the birth date, any other word is
    /// part of the folded name, reading or address. Candidates come from the name and reading
    /// (or the birth date): an address alone finds nobody, and a query of one or two
    /// characters alone is looked for at the start of the name or reading. At most `limit`: exact full names
    /// first, then in roster order (a word as common as 佐藤 alone gives the first found).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<RosterEntry>, RosterDbError> {
        self.in_read(|| self.search_in(query, limit))
    }

    fn search_in(&self, query: &str, limit: usize) -> Result<Vec<RosterEntry>, RosterDbError> {
        let mut dates = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        for w in query.split([' ', '　']).filter(|w| !w.is_empty()) {
            match parse_typed_date(w) {
                Some(d) => dates.push(d),
                None => texts.push(fold(w)),
            }
        }
        texts.retain(|t| !t.is_empty());
        if dates.is_empty() && texts.is_empty() {
            return Ok(Vec::new());
        }
        // Words of three characters or more go through the trigram index.
        let long: Vec<String> = texts
            .iter()
            .filter(|t| t.chars().count() >= 3)
            .cloned()
            .collect();
        // Candidates from the most selective index, then every word checked on the row (the
        // trigram index keeps no positions: a word's trigrams may match apart).
        let cap = i64::try_from(limit.saturating_mul(50).max(1000)).unwrap_or(i64::MAX);
        let mut rids: Vec<i64> = Vec::new();
        // 田中 太郎 / なかむら みほ: a name typed in two words is stored without the space, and
        // the whole of it is far rarer than its family name.
        let joined = texts.concat();
        if dates.is_empty() && texts.len() > 1 && joined.chars().count() >= 3 {
            rids = self.trigram_rids(std::slice::from_ref(&joined), cap)?;
        }
        if !rids.is_empty() {
            // The full name as typed: those bearers, and nobody else.
        } else if let Some(d) = dates.first() {
            // About 270 people share a birth date in ten million.
            rids = self.birth_rids(*d, cap)?;
        } else if !long.is_empty() {
            rids = self.trigram_rids(&long, cap)?;
            if rids.is_empty() {
                // A word not in any name or reading (an address): candidates from the others,
                // every word checked on the row below.
                for w in &long {
                    rids.extend(self.trigram_rids(std::slice::from_ref(w), cap)?);
                }
            }
        }
        let short = texts.iter().find(|t| t.chars().count() < 3);
        if let Some(w) = short.filter(|_| rids.is_empty() && dates.is_empty()) {
            let mut ids = self.postings_rids(
                "SELECT first, rids FROM text.by_text WHERE k >= ?1 AND k < ?2 ORDER BY k, first",
                params![w, prefix_end(w)],
                cap.saturating_mul(2),
            )?;
            ids.sort_unstable();
            rids.extend(ids);
        }
        let mut seen = std::collections::HashSet::new();
        rids.retain(|r| seen.insert(*r));
        let mut out = Vec::new();
        let mut st = self
            .conn
            .prepare_cached("SELECT birth, entry FROM person WHERE rid = ?1")?;
        for rid in rids {
            if out.len() >= limit {
                break;
            }
            let (birth, entry) = st.query_row([rid], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            if !dates.iter().all(|d| days(*d) == birth) {
                continue;
            }
            let e = Self::decode(&entry)?;
            let (name, kana) = (fold(e.name.as_str()), fold(e.kana.as_str()));
            // The address is folded only when a word is not in the name or reading.
            let mut address: Option<String> = None;
            let ok = texts.iter().all(|w| {
                name.contains(w.as_str())
                    || kana.contains(w.as_str())
                    || address
                        .get_or_insert_with(|| fold(e.address.as_str()))
                        .contains(w.as_str())
            });
            if ok {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The first `cap` rids of the postings rows `sql` selects (as `first, rids`), in order.
    /// The first `cap` rows born on `date`, in order.
    fn birth_rids(&self, date: CivilDate, cap: i64) -> Result<Vec<i64>, RosterDbError> {
        self.postings_rids(
            "SELECT first, rids FROM by_birth WHERE k = ?1 ORDER BY first",
            params![days(date)],
            cap,
        )
    }

    /// The first `limit` rows whose whole folded name is `folded`, in order.
    fn name_rids(&self, folded: &str, limit: usize) -> Result<Vec<i64>, RosterDbError> {
        self.postings_rids(
            "SELECT first, rids FROM text.by_name WHERE k = ?1 ORDER BY first",
            params![folded],
            i64::try_from(limit).unwrap_or(i64::MAX),
        )
    }

    fn postings_rids(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
        cap: i64,
    ) -> Result<Vec<i64>, RosterDbError> {
        let most = usize::try_from(cap).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut st = self.conn.prepare_cached(sql)?;
        let mut rows = st.query(args)?;
        while let Some(r) = rows.next()?
            && out.len() < most
        {
            let blob = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            read_postings(r.get(0)?, blob, &mut out)?;
        }
        out.truncate(most);
        Ok(out)
    }

    /// Rows whose folded text holds every trigram of `words`, in roster order, at most `cap`.
    fn trigram_rids(&self, words: &[String], cap: i64) -> Result<Vec<i64>, RosterDbError> {
        let mut grams: Vec<String> = words
            .iter()
            .flat_map(|w| {
                let cs: Vec<char> = w.chars().collect();
                cs.windows(3)
                    .map(|g| g.iter().collect::<String>())
                    .collect::<Vec<_>>()
            })
            .collect();
        grams.sort_unstable();
        grams.dedup();
        if grams.is_empty() {
            return Ok(Vec::new());
        }
        let expr = grams
            .iter()
            .map(|g| format!("\"{}\"", g.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" AND ");
        let mut st = self.conn.prepare_cached(
            "SELECT rowid FROM text.person_fts WHERE person_fts MATCH ?1 ORDER BY rowid LIMIT ?2",
        )?;
        let rows = st.query_map(params![expr, cap], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The entries at `rids`, in the order given (a rid not in the store is skipped).
    fn entries_at(&self, rids: &[i64]) -> Result<Vec<RosterEntry>, RosterDbError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT entry FROM person WHERE rid = ?1")?;
        let mut out = Vec::with_capacity(rids.len());
        for rid in rids {
            let blob: Option<Vec<u8>> = st.query_row([rid], |r| r.get(0)).optional()?;
            if let Some(b) = blob {
                out.push(Self::decode(&b)?);
            }
        }
        Ok(out)
    }

    /// The members of household `h`, in person-id order (layout 8 on; empty before).
    pub fn household(
        &self,
        h: &kazashi_domain::HouseholdId,
    ) -> Result<Vec<RosterEntry>, RosterDbError> {
        if !self.answers_from_disk() {
            return Ok(Vec::new());
        }
        self.in_read(|| {
            let rids = if self.layout < LAYOUT_HOUSEHOLD_ROWS {
                self.postings_rids(
                    "SELECT first, rids FROM by_household WHERE k = ?1 ORDER BY first",
                    params![h.as_str()],
                    i64::MAX,
                )?
            } else {
                let mut st = self.conn.prepare_cached(
                    "SELECT households FROM by_household WHERE k <= ?1 ORDER BY k DESC LIMIT 1",
                )?;
                let row: Option<Vec<u8>> = st.query_row([h.as_str()], |r| r.get(0)).optional()?;
                match row {
                    Some(row) => household_in_row(&row, h.as_str())?.unwrap_or_default(),
                    None => Vec::new(),
                }
            };
            self.entries_at(&rids)
        })
    }

    /// Everyone born on `date`, in person-id order.
    pub fn born_on(&self, date: CivilDate) -> Result<Vec<RosterEntry>, RosterDbError> {
        self.in_read(|| {
            let rids = self.birth_rids(date, i64::MAX)?;
            self.entries_at(&rids)
        })
    }

    /// The entries whose whole folded name ([`fold`]) is `folded`, in person-id order, at most
    /// `limit` (layout 9 on; empty before).
    pub fn named(&self, folded: &str, limit: usize) -> Result<Vec<RosterEntry>, RosterDbError> {
        if !self.answers_from_disk() || folded.is_empty() {
            return Ok(Vec::new());
        }
        self.in_read(|| {
            let rids = self.name_rids(folded, limit)?;
            self.entries_at(&rids)
        })
    }

    /// [`RosterDb::named`] (its first `limit` bearers), keeping only those the store records as
    /// born on one of `dates` (sorted). Few bearers: each one's date column is read, and only
    /// the entries kept are decoded. Many (a common name in a large roster): the dates'
    /// postings are matched against the name's, and only the bearers in both are read. As with
    /// [`RosterDb::born_on`], the entries' own dates are checked by the caller
    /// (`roster_lookup::StoreRoster`), the lookup tables not being under the roster hash.
    pub fn named_born(
        &self,
        folded: &str,
        dates: &[CivilDate],
        limit: usize,
    ) -> Result<Vec<RosterEntry>, RosterDbError> {
        if !self.answers_from_disk() || folded.is_empty() || dates.is_empty() {
            return Ok(Vec::new());
        }
        self.in_read(|| {
            let rids = self.name_rids(folded, limit)?;
            if rids.len() > 2 * dates.len() {
                let mut born: Vec<i64> = Vec::new();
                for d in dates {
                    born.extend(self.birth_rids(*d, i64::MAX)?);
                }
                born.sort_unstable();
                let both: Vec<i64> = rids
                    .into_iter()
                    .filter(|r| born.binary_search(r).is_ok())
                    .collect();
                return self.entries_at(&both);
            }
            let mut st = self
                .conn
                .prepare_cached("SELECT birth, entry FROM person WHERE rid = ?1")?;
            let mut out = Vec::new();
            for rid in rids {
                let mut rows = st.query([rid])?;
                let Some(r) = rows.next()? else { continue };
                let born = CivilDate::from_days_since_epoch(r.get(0)?);
                if born.is_none_or(|b| dates.binary_search(&b).is_err()) {
                    continue;
                }
                let b = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
                out.push(Self::decode(b)?);
            }
            Ok(out)
        })
    }

    /// Every entry in person-id order, one at a time (a roster answered from disk streams its
    /// exports and extracts through this).
    pub fn for_each_entry(&self, f: &mut dyn FnMut(&RosterEntry)) -> Result<(), RosterDbError> {
        let mut st = self.conn.prepare("SELECT entry FROM person ORDER BY rid")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let b: &[u8] = r.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
            f(&Self::decode(b)?);
        }
        Ok(())
    }

    /// Up to `count` stored entries from row `from` on, in person-id order, each as stored (the
    /// encoding the roster hash is computed over) with its row, to `f`; how many were. Serving
    /// the roster to a peer reads its chunks back through this (`crate::roster_serve`).
    pub fn encoded_from(
        &self,
        from: u64,
        count: usize,
        f: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<usize, RosterDbError> {
        let mut st = self.conn.prepare_cached(
            "SELECT rid, entry FROM person WHERE rid >= ?1 ORDER BY rid LIMIT ?2",
        )?;
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let mut rows = st.query(params![from, count])?;
        let mut n = 0usize;
        while let Some(r) = rows.next()? {
            let rid = u64::try_from(r.get::<_, i64>(0)?)
                .map_err(|_| RosterDbError::Damaged("a negative row number".into()))?;
            let b: &[u8] = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            f(rid, b);
            n += 1;
        }
        Ok(n)
    }

    /// Recompute the roster hash from the stored entries without holding them: the encoded
    /// rows are read in batches and hashed on a second thread as the next batch is read.
    /// Checked against the hash recorded at import and, when given, the pinned one — what
    /// [`RosterDb::load`] checks, in constant memory.
    pub fn verify(&self, pinned: Option<RosterHash>) -> Result<(), RosterDbError> {
        const BATCH: usize = 4096;
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, Vec<usize>)>(4);
        let kind = self.kind;
        let found = std::thread::scope(|scope| -> Result<(RosterHash, u64), RosterDbError> {
            let hasher = scope.spawn(move || {
                let mut h = RosterHasher::new(kind);
                let mut n = 0u64;
                for (bytes, ends) in rx {
                    let mut at = 0;
                    for end in ends {
                        h.entry(bytes.get(at..end).unwrap_or_default());
                        at = end;
                        n += 1;
                    }
                }
                (h.finish(), n)
            });
            let read = (|| -> Result<(), RosterDbError> {
                let mut st = self.conn.prepare("SELECT entry FROM person ORDER BY rid")?;
                let mut rows = st.query([])?;
                let (mut bytes, mut ends) = (Vec::with_capacity(BATCH * 256), Vec::new());
                while let Some(r) = rows.next()? {
                    let b: &[u8] = r.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
                    bytes.extend_from_slice(b);
                    ends.push(bytes.len());
                    if ends.len() == BATCH {
                        let full = (
                            std::mem::replace(&mut bytes, Vec::with_capacity(BATCH * 256)),
                            std::mem::take(&mut ends),
                        );
                        if tx.send(full).is_err() {
                            break;
                        }
                    }
                }
                if !ends.is_empty() {
                    let _ = tx.send((bytes, ends));
                }
                Ok(())
            })();
            drop(tx);
            let found = hasher.join().map_err(|_| {
                RosterDbError::Damaged("the hash of the roster could not be made".into())
            })?;
            read?;
            Ok(found)
        })?;
        let (found, n) = found;
        if found != self.hash || n != self.len {
            return Err(RosterDbError::Damaged(
                "the entries no longer give the hash recorded at import".into(),
            ));
        }
        if let Some(pinned) = pinned
            && pinned != found
        {
            return Err(RosterDbError::NotPinned {
                found: found.to_hex(),
                pinned: pinned.to_hex(),
            });
        }
        Ok(())
    }

    /// The whole roster, checked against the hash recorded at import and, when given, the hash
    /// pinned in the deployment manifest.
    pub fn load(
        &self,
        today: CivilDate,
        pinned: Option<RosterHash>,
    ) -> Result<Roster, RosterDbError> {
        let mut st = self.conn.prepare("SELECT entry FROM person ORDER BY rid")?;
        let mut entries = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let b: &[u8] = r.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
            entries.push(Self::decode(b)?);
        }
        let roster = Roster::new(self.kind, entries, today)
            .map_err(|e| RosterDbError::Damaged(e.to_string()))?;
        let found = roster.hash();
        if found != self.hash {
            return Err(RosterDbError::Damaged(
                "the entries no longer give the hash recorded at import".into(),
            ));
        }
        if let Some(pinned) = pinned
            && pinned != found
        {
            return Err(RosterDbError::NotPinned {
                found: found.to_hex(),
                pinned: pinned.to_hex(),
            });
        }
        Ok(roster)
    }
}

/// SHA-256 of a file's bytes (recorded with the import).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
