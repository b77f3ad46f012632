//! A roster received over the mesh written into a roster store as its entries stream past,
//! never held whole: what `crate::roster_fetch::build` does with a complete transfer.
//!
//! **Streamed.** [`write_streamed`] takes the entries from a feed (the received chunks, one at
//! a time, through `roster_transfer::Assembler::feed_with`) in person-id order, each as its
//! encoding and the decoded entry, and writes them as `crate::roster_import` writes a file's
//! rows: the encoding as the `person` row (the bytes the pinned hash is computed over, so the
//! store verifies as the sender's does) and `by_id` as they come, the name and reading folded
//! on a thread of their own and passed to the text file's writer thread (`roster_import::write_text`: FTS rows as they come, then
//! `by_text` and `by_name`), and the other lookup keys (birth date, household, 名簿番号: a few
//! bytes a row) collected and appended as postings once every entry is in. The entries are
//! checked as `Roster::new` checks them (birth dates not after today, a voter roster's voter
//! information, no 名簿番号 twice; the person-id order is the assembler's check).
//!
//! **All or nothing, the hash before use.** The files are the import's `<file>.part*`, renamed
//! into place past the commit marker (`roster_db::commit_parts`) only once the feed has ended
//! well — the feed ends with the assembler's check of the pinned hash — and the entries were
//! valid. Anything else removes the part files: the roster store in place (the one the
//! station may be running on) is left as it was, and nothing received is used.

use crate::roster_db::{
    IdRows, MAIN_SCHEMA, RosterDb, RosterDbError, bulk_pairs, bulk_pragmas, clear_parts,
    commit_parts, days, household_rows, import_meta, part_path, text_path, write_meta,
};
use crate::roster_import::{ImportError, TEXT_BATCH, grouped_postings, write_text};
use crate::store::{KdfParams, create_encrypted_set, kdf_path};
use kazashi_domain::CivilDate;
use kazashi_domain::ids::{HouseholdId, ListNumber, RosterHash};
use kazashi_domain::normalize::fold;
use kazashi_domain::roster::{RosterEntry, RosterError, RosterKind};
use rusqlite::params;
use std::path::Path;

/// Where the store goes and under which key.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub path: &'a Path,
    pub passphrase: &'a str,
    pub kdf: KdfParams,
}

/// What the streamed roster is, as the feed's sender declared it (the feed checks it).
#[derive(Debug, Clone, Copy)]
pub struct Declared {
    pub kind: RosterKind,
    pub total: u64,
    /// The hash the feed checks the entries against before it ends well.
    pub hash: RosterHash,
    pub today: CivilDate,
}

/// Why nothing was written.
#[derive(Debug)]
pub enum Unwritten<F> {
    /// The feed failed (its error as it gave it).
    Feed(F),
    /// The entries are not a valid roster (the feed ended well).
    Invalid(String),
    Db(RosterDbError),
}

impl<F> From<RosterDbError> for Unwritten<F> {
    fn from(e: RosterDbError) -> Self {
        Unwritten::Db(e)
    }
}
impl<F> From<rusqlite::Error> for Unwritten<F> {
    fn from(e: rusqlite::Error) -> Self {
        Unwritten::Db(e.into())
    }
}
impl<F> From<crate::store::StoreError> for Unwritten<F> {
    fn from(e: crate::store::StoreError) -> Self {
        Unwritten::Db(e.into())
    }
}

fn import_err(e: ImportError) -> RosterDbError {
    match e {
        ImportError::Db(e) => e,
        other => RosterDbError::Damaged(other.to_string()),
    }
}

/// A feed hands each entry, as its encoding and decoded, to the sink it is given, in person-id
/// order; it ends `Ok` only once the entries are checked against the declared hash.
pub type Feed<'a, F> = &'a mut dyn FnMut(&mut dyn FnMut(&[u8], RosterEntry)) -> Result<(), F>;

/// Write the roster `feed` gives into a new roster store at `target.path` (see the module
/// doc); the store, opened, once it is in place.
pub fn write_streamed<F>(
    target: Target<'_>,
    declared: Declared,
    feed: Feed<'_, F>,
) -> Result<RosterDb, Unwritten<F>> {
    if let Some(dir) = target.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(RosterDbError::from)?;
    }
    clear_parts(target.path)?;
    let part = part_path(target.path);
    match write_parts(target, &part, declared, feed) {
        Ok(()) => Ok(commit_parts(target.path, target.passphrase)?),
        Err(e) => {
            for p in [part.clone(), kdf_path(&part), text_path(&part)] {
                let _ = std::fs::remove_file(p);
            }
            Err(e)
        }
    }
}

/// Entries checked as `Roster::new` checks them, keys kept for the lookup tables.
struct Keys {
    births: Vec<(i64, u32)>,
    households: Vec<(HouseholdId, u32)>,
    lists: Vec<(ListNumber, u32)>,
    invalid: Option<String>,
    failed: Option<RosterDbError>,
}

fn write_parts<F>(
    target: Target<'_>,
    part: &Path,
    declared: Declared,
    feed: Feed<'_, F>,
) -> Result<(), Unwritten<F>> {
    let (main, mut others) =
        create_encrypted_set(part, &[&text_path(part)], target.passphrase, target.kdf)?;
    let text = others
        .pop()
        .ok_or_else(|| RosterDbError::Damaged("no text file".into()))?;
    for c in [&main, &text] {
        bulk_pragmas(c)?;
        // A bounded page cache per file: the memory of the build does not grow with it.
        c.pragma_update(None, "cache_size", -32_768)?;
    }
    // The source "file" of this store is the pinned roster itself.
    let mut meta = import_meta(declared.kind, declared.total, declared.hash.0)?;
    main.execute_batch(MAIN_SCHEMA)?;
    let mut keys = Keys {
        births: Vec::new(),
        households: Vec::new(),
        lists: Vec::new(),
        invalid: None,
        failed: None,
    };
    let (kind, today) = (declared.kind, declared.today);
    let fed = std::thread::scope(|scope| -> Result<Result<(), F>, Unwritten<F>> {
        let (text_tx, text_rx) = std::sync::mpsc::sync_channel::<Vec<(String, String)>>(4);
        let text_meta = meta.clone();
        let text_job = std::thread::Builder::new()
            .spawn_scoped(scope, move || write_text(&text, text_rx, &text_meta, true))
            .map_err(RosterDbError::from)?;
        // Names and readings folded on a thread of their own, between this one (decoding and
        // writing the rows) and the text writer.
        let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<Vec<(String, String)>>(4);
        std::thread::Builder::new()
            .spawn_scoped(scope, move || {
                for batch in raw_rx {
                    let folded = batch
                        .into_iter()
                        .map(|(name, kana)| (fold(&name), fold(&kana)))
                        .collect();
                    if text_tx.send(folded).is_err() {
                        return;
                    }
                }
            })
            .map_err(RosterDbError::from)?;
        let text_tx = raw_tx;
        let looped = (|| -> Result<Result<(), F>, Unwritten<F>> {
            let tx = main.unchecked_transaction()?;
            let fed = {
                let mut ins =
                    tx.prepare("INSERT INTO person (rid, birth, entry) VALUES (?1, ?2, ?3)")?;
                let mut by_id = IdRows::new(&tx)?;
                let mut batch: Vec<(String, String)> = Vec::with_capacity(TEXT_BATCH);
                let mut rid = 0u32;
                let mut last: Option<kazashi_domain::ids::PersonId> = None;
                let keys = &mut keys;
                let mut sink = |encoded: &[u8], e: RosterEntry| {
                    // After a refusal the feed still runs to its end (its hash check decides
                    // whose fault it is); nothing more is written.
                    if keys.invalid.is_some() || keys.failed.is_some() {
                        return;
                    }
                    if let Err(source) = e.birth_date.not_after(today) {
                        let person = e.person;
                        keys.invalid = Some(RosterError::BirthDate { person, source }.to_string());
                        return;
                    }
                    match (&e.voter, kind) {
                        (None, RosterKind::Voters) => {
                            keys.invalid =
                                Some(RosterError::MissingVoterInfo(e.person).to_string());
                            return;
                        }
                        (Some(v), _) => keys.lists.push((v.list_number, rid)),
                        (None, RosterKind::Residents) => {}
                    }
                    if last.is_some_and(|l| l >= e.person) {
                        keys.invalid = Some(format!(
                            "the entries are not in 宛名番号 order ({} after {})",
                            e.person,
                            last.map(|l| l.to_string()).unwrap_or_default()
                        ));
                        return;
                    }
                    last = Some(e.person);
                    let birth = days(e.birth_date);
                    let wrote = ins
                        .execute(params![rid, birth, encoded])
                        .map_err(RosterDbError::from)
                        .and_then(|_| by_id.push(e.person));
                    if let Err(x) = wrote {
                        keys.failed = Some(x);
                        return;
                    }
                    keys.births.push((birth, rid));
                    keys.households.push((e.household, rid));
                    batch.push((e.name.as_str().to_owned(), e.kana.as_str().to_owned()));
                    if batch.len() == TEXT_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(TEXT_BATCH));
                        if text_tx.send(full).is_err() {
                            keys.failed = Some(RosterDbError::Damaged(
                                "the text index writer stopped".into(),
                            ));
                        }
                    }
                    match rid.checked_add(1) {
                        Some(next) => rid = next,
                        None => {
                            keys.failed = Some(RosterDbError::Damaged(
                                "more than 4,294,967,295 entries".into(),
                            ))
                        }
                    }
                };
                let fed = feed(&mut sink);
                if let Err(x) = by_id.finish() {
                    keys.failed.get_or_insert(x);
                }
                if !batch.is_empty() && text_tx.send(batch).is_err() {
                    keys.failed.get_or_insert(RosterDbError::Damaged(
                        "the text index writer stopped".into(),
                    ));
                }
                fed
            };
            tx.commit()?;
            Ok(fed)
        })();
        drop(text_tx);
        let text_done = text_job.join().unwrap_or_else(|_| {
            Err(ImportError::Db(RosterDbError::Damaged(
                "the text index writer failed".into(),
            )))
        });
        let fed = looped?;
        // The feed's own error first (a peer's fault), then this laptop's.
        if fed.is_ok() {
            text_done.map_err(import_err)?;
        }
        Ok(fed)
    })?;
    fed.map_err(Unwritten::Feed)?;
    if let Some(e) = keys.failed.take() {
        return Err(Unwritten::Db(e));
    }
    if let Some(m) = keys.invalid.take() {
        return Err(Unwritten::Invalid(m));
    }
    let Keys {
        mut births,
        mut households,
        mut lists,
        ..
    } = keys;
    lists.sort_unstable();
    if let Some(w) = lists.windows(2).find(|w| matches!(w, [a, b] if a.0 == b.0))
        && let Some((dup, _)) = w.first()
    {
        return Err(Unwritten::Invalid(
            RosterError::DuplicateListNumber(*dup).to_string(),
        ));
    }
    let tx = main.unchecked_transaction()?;
    bulk_pairs(
        &tx,
        "by_list",
        lists.iter().map(|(l, r)| (l.as_str(), i64::from(*r))),
    )?;
    drop(lists);
    births.sort_unstable();
    grouped_postings(&tx, "by_birth", births.into_iter())?;
    households.sort_unstable();
    household_rows(&tx, households.iter().map(|(h, r)| (h.as_str(), *r)))?;
    drop(households);
    meta.push(("hash", declared.hash.0.to_vec()));
    write_meta(&tx, &meta)?;
    tx.commit()?;
    main.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(())
}
