//! The text file's writer of an import (a child of `roster_import`): the FTS rows as they
//! come, then the `by_text` and `by_name` postings from the interned keys.

use super::{ImportError, grouped_postings, set_count};
use crate::roster_db::{TEXT_SCHEMA, fts_hashsize, prefix2, write_meta};
use rusqlite::{Connection, params};
use rustc_hash::FxHashMap;

/// Strings numbered as they are first seen.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.insert(s.into(), i);
        i
    }
    /// The strings in byte order, and each id's rank in it.
    fn ranked(self) -> (Vec<Box<str>>, Vec<u32>) {
        let mut all: Vec<(Box<str>, u32)> = self.ids.into_iter().collect();
        all.sort_unstable();
        let mut rank = vec![0u32; all.len()];
        for (r, (_, id)) in (0u32..).zip(&all) {
            if let Some(x) = rank.get_mut(*id as usize) {
                *x = r;
            }
        }
        (all.into_iter().map(|(s, _)| s).collect(), rank)
    }
}

/// The text file: FTS rows as they come (rid order), then `by_text` and `by_name` from the
/// interned keys. With `write` false only drains the rows.
pub(crate) fn write_text(
    conn: &Connection,
    rx: std::sync::mpsc::Receiver<Vec<(String, String)>>,
    meta: &[(&str, Vec<u8>)],
    write: bool,
) -> Result<(), ImportError> {
    if !write {
        for _ in rx {}
        return Ok(());
    }
    conn.execute_batch(TEXT_SCHEMA)?;
    fts_hashsize(conn)?;
    let tx = conn.unchecked_transaction()?;
    let mut prefixes = Interner::default();
    let mut names = Interner::default();
    let mut by_text: Vec<(u32, u32)> = Vec::new();
    let mut by_name: Vec<(u32, u32)> = Vec::new();
    let mut rid = 0u32;
    {
        let mut fts =
            tx.prepare("INSERT INTO person_fts (rowid, name, kana) VALUES (?1, ?2, ?3)")?;
        for batch in rx {
            for (name, kana) in batch {
                fts.execute(params![rid, name, kana])?;
                let a = prefixes.id(prefix2(&name));
                let b = prefixes.id(prefix2(&kana));
                by_text.push((a, rid));
                if b != a {
                    by_text.push((b, rid));
                }
                by_name.push((names.id(&name), rid));
                rid += 1;
            }
        }
    }
    let rows = rid;
    for (interner, pairs, table) in [(prefixes, by_text, "by_text"), (names, by_name, "by_name")] {
        let (keys, rank) = interner.ranked();
        let mut pairs: Vec<(u32, u32)> = pairs
            .into_iter()
            .map(|(k, r)| (rank.get(k as usize).copied().unwrap_or(0), r))
            .collect();
        drop(rank);
        pairs.sort_unstable();
        grouped_postings(
            &tx,
            table,
            pairs
                .into_iter()
                .map(|(k, r)| (keys.get(k as usize).map_or("", |s| &**s), r)),
        )?;
    }
    // The count is the rows given (a direct import learns it only at the end).
    let mut meta = meta.to_vec();
    set_count(&mut meta, u64::from(rows));
    write_meta(&tx, &meta)?;
    tx.commit()?;
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(())
}
