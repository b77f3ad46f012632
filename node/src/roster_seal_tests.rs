//! The seal of a checked roster store (`crate::roster_seal`), through `enrolled::open` on a
//! roster large enough to stay on disk: the first open walks the entries and seals the files;
//! opening does not change them; a row changed afterwards is caught by the walk the changed
//! bytes bring back; the seal is what is trusted (a seal written over changed bytes with the
//! station's passphrase lets them through, which is why it lives in the station's store); a
//! manifest pinning another roster is refused whatever the seal says.

use crate::clock::ManualClock;
use crate::enrolled::{self, Folder, OpenError};
use crate::roster_db::{RosterDb, RosterDbError, text_path};
use crate::roster_lookup::ON_DISK_FROM;
use crate::roster_net_tests::{PASS, ROSTER_PASS, T0, big_roster, folder_without_roster, manifest};
use crate::roster_seal::{META_ROSTER_SEAL, fingerprint, seal_bytes};
use crate::roster_serve_tests::folder_with_roster;
use crate::store::Store;
use kazashi_domain::ids::RosterHash;

fn seal_in(folder: &Folder) -> Option<Vec<u8>> {
    Store::open(&folder.store_path(), PASS)
        .unwrap()
        .get_meta(META_ROSTER_SEAL)
        .unwrap()
}

fn files_fingerprint(folder: &Folder) -> [u8; 32] {
    let main = folder.roster_path();
    let text = text_path(&main);
    fingerprint(&[&main, &text]).unwrap()
}

fn open(folder: &Folder) -> Result<(), OpenError> {
    enrolled::open(folder, PASS, ROSTER_PASS, ManualClock::new(T0)).map(|_| ())
}

#[test]
fn a_checked_roster_is_sealed_and_only_its_exact_bytes_skip_the_walk() {
    let dir = tempfile::tempdir().unwrap();
    let roster = big_roster(ON_DISK_FROM as usize);
    let pin = roster.hash();
    let m = manifest(1, pin, &[1]);
    let folder = folder_with_roster(dir.path(), 1, &m, &roster);
    drop(roster);
    assert_eq!(seal_in(&folder), None);

    // The first open walks the entries and seals the bytes it checked; opening again leaves
    // the files as they were (SQLite writes nothing on reads), so the seal still fits them.
    let (node, opened) = enrolled::open(&folder, PASS, ROSTER_PASS, ManualClock::new(T0)).unwrap();
    assert!(opened.in_memory().is_none(), "the roster is held in memory");
    drop((node, opened));
    let sealed = seal_in(&folder).expect("no seal after a passed check");
    assert_eq!(sealed, seal_bytes(&pin, &files_fingerprint(&folder)));
    open(&folder).unwrap();
    assert_eq!(seal_in(&folder), Some(sealed.clone()));
    assert_eq!(sealed, seal_bytes(&pin, &files_fingerprint(&folder)));

    // One entry replaced by another's, by someone holding the roster's passphrase: the bytes
    // differ from the sealed ones, so the walk runs and refuses the store.
    let db = RosterDb::open(&folder.roster_path(), ROSTER_PASS).unwrap();
    db.connection_for_tests()
        .execute(
            "UPDATE person SET entry = (SELECT entry FROM person WHERE rid = 7) WHERE rid = 5",
            [],
        )
        .unwrap();
    drop(db);
    let changed = files_fingerprint(&folder);
    assert_ne!(seal_bytes(&pin, &changed), sealed);
    match open(&folder) {
        Err(OpenError::Roster {
            source: RosterDbError::Damaged(_),
            ..
        }) => {}
        other => panic!("a changed roster was opened: {other:?}"),
    }
    assert_eq!(seal_in(&folder), Some(sealed), "a refused store was sealed");

    // The seal is what is trusted: written over the changed bytes (which takes the station's
    // passphrase), the walk is skipped. Hence it lives in the station's store.
    Store::open(&folder.store_path(), PASS)
        .unwrap()
        .set_meta(META_ROSTER_SEAL, &seal_bytes(&pin, &changed))
        .unwrap();
    open(&folder).unwrap();

    // A manifest pinning another roster is refused, even with a seal made for that pin.
    let other = RosterHash([7; 32]);
    let folder2 = folder_without_roster(dir.path(), 2, &manifest(1, other, &[1]));
    std::fs::copy(folder.roster_path(), folder2.roster_path()).unwrap();
    std::fs::copy(
        text_path(&folder.roster_path()),
        text_path(&folder2.roster_path()),
    )
    .unwrap();
    std::fs::copy(
        crate::store::kdf_path(&folder.roster_path()),
        crate::store::kdf_path(&folder2.roster_path()),
    )
    .unwrap();
    Store::open(&folder2.store_path(), PASS)
        .unwrap()
        .set_meta(META_ROSTER_SEAL, &seal_bytes(&other, &changed))
        .unwrap();
    match open(&folder2) {
        Err(OpenError::Roster {
            source: RosterDbError::NotPinned { .. },
            ..
        }) => {}
        other => panic!("a roster of another pin was opened: {other:?}"),
    }
}
