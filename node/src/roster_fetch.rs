//! A pinned roster received over the mesh, on this laptop's side: the chunks kept in the
//! encrypted store, the roster built from them, and the progress the status shows. The
//! protocol is `kazashi_sync::roster_transfer` (sans-IO); the network is `crate::roster_net`.
//!
//! **Where chunks live.** Each chunk, once checked against the index, goes into the store's
//! `roster_chunk` table (SQLCipher, fully synced) under its SHA-256: personal data never lands
//! unencrypted on disk, and a transfer cut off (a dropped connection, a killed process) starts
//! again with the chunks already held ([`begin`]). Chunks of any other roster are deleted when
//! a transfer begins (an abandoned one), and all of them once the roster is built.
//!
//! **Building.** [`build`] reads the chunks in index order, one at a time, through
//! `roster_transfer::Assembler`, which recomputes the roster hash over the entries as received,
//! and writes each entry straight into the new roster store's part files as it passes
//! (`crate::roster_build`: the entries checked as [`Roster::new`] checks them, the store under
//! this laptop's own roster passphrase): the roster is never held whole. The part files are
//! renamed into place only once the assembler compared the hash with the pin and the entries
//! were valid. A wrong hash or damaged chunks discard every chunk held and the part files, and
//! the error says so. The roster is then opened from the new store as `enrolled::open` opens
//! one (answered from disk from `roster_lookup::ON_DISK_FROM` entries, loaded whole below).
//! Switching the running station to it is [`crate::Node::replace_roster`].

use crate::roster_build::{Declared, Target, Unwritten, write_streamed};
use crate::roster_db::RosterDbError;
use crate::roster_lookup::{ON_DISK_FROM, StoreRoster};
use crate::store::{KdfParams, Store, StoreError};
use kazashi_domain::ids::RosterHash;
use kazashi_domain::roster::RosterEntry;
use kazashi_domain::{CivilDate, Roster};
use kazashi_sync::roster_transfer::{Assembler, Fetch, RosterIndex, TransferError};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Where a received roster is written, and under which key.
#[derive(Clone)]
pub struct RosterTarget {
    /// The roster store's path (the folder's `roster.db`).
    pub path: PathBuf,
    pub passphrase: Zeroizing<String>,
    pub kdf: KdfParams,
}

impl RosterTarget {
    pub fn new(path: PathBuf, passphrase: &str, kdf: KdfParams) -> Self {
        RosterTarget {
            path,
            passphrase: Zeroizing::new(passphrase.to_owned()),
            kdf,
        }
    }
}

impl std::fmt::Debug for RosterTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RosterTarget({})", self.path.display())
    }
}

/// Why a received roster could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transfer(#[from] TransferError),
    #[error("the roster received is not valid: {0}")]
    Invalid(String),
    #[error("a chunk went missing from the store")]
    Missing,
    #[error("the roster store: {0}")]
    RosterDb(#[from] RosterDbError),
}

/// The roster transfer as the status shows it (`kazashi node` JSON lines, the network panel).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RosterStatus {
    /// `in_use` (the roster in use is the pinned one), `fetching`, `building`, `waiting` (no
    /// member holding it is connected), or `failed` (see `error`; it tries again).
    pub state: String,
    /// The roster in use, first eight hex digits.
    pub in_use: String,
    /// The pinned roster being fetched, first eight hex digits.
    pub wanted: Option<String>,
    /// Chunks held of the pinned roster, and in its index (0 until the index is in).
    pub chunks_held: usize,
    pub chunks_total: usize,
    /// Chunks received in this run (not those found held from an earlier one).
    pub chunks_fetched: u64,
    /// Times the running station switched to a newer roster since it started.
    pub switches: u64,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// Eight hex digits of a roster hash, as the window's header shows them.
pub fn short(h: &RosterHash) -> String {
    let mut s = h.to_hex();
    s.truncate(8);
    s
}

/// Start (or resume) a transfer of `pinned`: other rosters' chunks are deleted, this one's
/// already held are counted as such.
pub fn begin(store: &Store, pinned: RosterHash) -> Result<Fetch, StoreError> {
    store.drop_roster_chunks(Some(&pinned.0))?;
    Ok(Fetch::new(pinned, store.roster_chunks(&pinned.0)?))
}

/// Keep a checked chunk.
pub fn keep(
    store: &Store,
    pinned: RosterHash,
    sha256: &[u8; 32],
    bytes: &[u8],
) -> Result<(), StoreError> {
    store.put_roster_chunk(&pinned.0, sha256, bytes)
}

/// Runs a closure on the store (which the node may own).
pub type WithStore<'a> = &'a dyn Fn(&mut dyn FnMut(&Store));

/// Build the roster store of a complete transfer: every chunk, in order, read from the store
/// one at a time through the assembler and written straight into the roster store's part files
/// (`crate::roster_build`), which are put in place only once the pinned hash checked out and
/// the entries are valid; then the roster opened from it as `enrolled::open` would (on disk
/// from `ON_DISK_FROM` entries). `with_store` runs a closure on the store (the node may own it).
/// On a wrong hash or damaged chunks every chunk is deleted. On success the chunks are deleted
/// too.
pub fn build(
    with_store: WithStore<'_>,
    pinned: RosterHash,
    index: &RosterIndex,
    target: &RosterTarget,
    today: CivilDate,
) -> Result<Arc<Roster>, BuildError> {
    let drop_all = || with_store(&mut |s| drop(s.drop_roster_chunks(None)));
    let mut asm = Some(Assembler::new(pinned, index.clone()));
    let mut feed = |sink: &mut dyn FnMut(&[u8], RosterEntry)| -> Result<(), BuildError> {
        let mut asm = asm.take().ok_or(BuildError::Missing)?;
        for c in &index.chunks {
            let mut got: Result<Option<Vec<u8>>, StoreError> = Ok(None);
            with_store(&mut |s| got = s.roster_chunk(&c.sha256));
            let Some(bytes) = got? else {
                return Err(BuildError::Missing);
            };
            asm.feed_with(&bytes, sink)?;
        }
        asm.check()?;
        Ok(())
    };
    let written = write_streamed(
        Target {
            path: &target.path,
            passphrase: &target.passphrase,
            kdf: target.kdf,
        },
        Declared {
            kind: index.kind,
            total: index.total,
            hash: pinned,
            today,
        },
        &mut feed,
    );
    let db = match written {
        Ok(db) => db,
        Err(Unwritten::Feed(e)) => {
            if matches!(e, BuildError::Transfer(_)) {
                drop_all();
            }
            return Err(e);
        }
        Err(Unwritten::Invalid(m)) => {
            drop_all();
            return Err(BuildError::Invalid(m));
        }
        Err(Unwritten::Db(e)) => return Err(e.into()),
    };
    drop_all();
    let roster = if db.len() >= ON_DISK_FROM && db.answers_from_disk() {
        StoreRoster::roster(db, Some(pinned))?
    } else {
        db.load(today, Some(pinned))?
    };
    Ok(Arc::new(roster))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roster_db::RosterDb;
    use kazashi_domain::ids::{HouseholdId, PersonId};
    use kazashi_domain::roster::{RosterEntry, RosterKind, Sex};
    use kazashi_domain::text::{Address, KanaReading, PersonName};

    fn roster() -> Roster {
        let entries = (0..8)
            .map(|i| RosterEntry {
                person: PersonId::new(&format!("P{i:03}")).unwrap(),
                household: HouseholdId::new(&format!("H{i:03}")).unwrap(),
                name: PersonName::new("髙橋 花子").unwrap(),
                kana: KanaReading::new("たかはし はなこ").unwrap(),
                birth_date: CivilDate::new(1980, 1, 1).unwrap(),
                sex: Sex::Female,
                address: Address::new("新潟県三条市旭町2丁目3-1").unwrap(),
                voter: None,
                care_needs: Default::default(),
                support_measure: false,
            })
            .collect();
        Roster::new(
            RosterKind::Residents,
            entries,
            CivilDate::new(2026, 9, 1).unwrap(),
        )
        .unwrap()
    }
    use kazashi_sync::roster_transfer::{Got, Served};

    fn store(dir: &std::path::Path) -> Store {
        Store::create(&dir.join("k.db"), "pw", KdfParams::FAST_INSECURE).unwrap()
    }

    fn target(dir: &std::path::Path) -> RosterTarget {
        RosterTarget {
            path: dir.join("roster.db"),
            passphrase: Zeroizing::new("roster pw".into()),
            kdf: KdfParams::FAST_INSECURE,
        }
    }

    /// Run a transfer from `s` into `store` until done, or until `stop` chunks came.
    fn run(store: &Store, r: &Roster, s: &Served, stop: Option<u64>) -> Fetch {
        let mut f = begin(store, r.hash()).unwrap();
        loop {
            let reqs = f.next_requests(4);
            if reqs.is_empty() || stop.is_some_and(|k| f.received() >= k) {
                return f;
            }
            for q in reqs {
                let resp = s.respond(&q, r.entries());
                let bytes = match &resp {
                    kazashi_sync::roster_transfer::Response::Chunk { bytes, .. } => bytes.clone(),
                    _ => Vec::new(),
                };
                if let Got::Chunk { sha256, .. } = f.on_response(&resp).unwrap() {
                    keep(store, r.hash(), &sha256, &bytes).unwrap();
                }
            }
        }
    }

    #[test]
    fn chunks_kept_in_the_store_survive_a_cut_and_the_roster_is_built_and_opens() {
        let dir = tempfile::tempdir().unwrap();
        let r = roster();
        let s = Served::new(r.hash(), r.kind(), r.entries());
        {
            // A chunk of an abandoned transfer of another roster.
            let st = store(dir.path());
            st.put_roster_chunk(&[7; 32], &[8; 32], b"old").unwrap();
        }
        let st = Store::open(&dir.path().join("k.db"), "pw").unwrap();
        let f = run(&st, &r, &s, None);
        assert!(f.is_complete());
        assert_eq!(
            st.roster_chunk(&[8; 32]).unwrap(),
            None,
            "abandoned chunks stay"
        );
        let with = |g: &mut dyn FnMut(&Store)| g(&st);
        let t = target(dir.path());
        let today = CivilDate::new(2026, 9, 1).unwrap();
        let built = build(&with, r.hash(), f.index().unwrap(), &t, today).unwrap();
        assert_eq!(built.hash(), r.hash());
        assert!(st.roster_chunks(&r.hash().0).unwrap().is_empty());
        let db = RosterDb::open(&t.path, "roster pw").unwrap();
        assert_eq!(
            db.load(today, Some(r.hash())).unwrap().entries(),
            r.entries()
        );
    }

    #[test]
    fn a_wrong_roster_is_discarded_whole_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let r = roster();
        let pinned = RosterHash([5; 32]);
        // A liar: another roster's chunks under the pinned name.
        let s = Served::new(pinned, r.kind(), r.entries());
        let st = store(dir.path());
        let mut f = begin(&st, pinned).unwrap();
        while let Some(q) = f.next_requests(1).pop() {
            let resp = s.respond(&q, r.entries());
            let bytes = match &resp {
                kazashi_sync::roster_transfer::Response::Chunk { bytes, .. } => bytes.clone(),
                _ => Vec::new(),
            };
            if let Got::Chunk { sha256, .. } = f.on_response(&resp).unwrap() {
                keep(&st, pinned, &sha256, &bytes).unwrap();
            }
        }
        assert!(!st.roster_chunks(&pinned.0).unwrap().is_empty());
        let with = |g: &mut dyn FnMut(&Store)| g(&st);
        let t = target(dir.path());
        let e = build(
            &with,
            pinned,
            f.index().unwrap(),
            &t,
            CivilDate::new(2026, 9, 1).unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("discarded"), "{e}");
        assert!(st.roster_chunks(&pinned.0).unwrap().is_empty());
        assert!(!t.path.exists());
    }
}
