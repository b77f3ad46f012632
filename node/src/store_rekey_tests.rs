//! The move of a first-format store (keyed by the passphrase's Argon2id output) to a random
//! data key (`crate::store_key`, migration), on real SQLCipher files: the store opens under the
//! same passphrase with everything in it, the new key file is of the second format, and every
//! state a kill can leave between the migration's durable steps opens whole.

use crate::store::{Store, StoreError};
use crate::store_key::{format_of, kdf_path, rekey_paths};
use std::path::Path;

const PASS: &str = "rekey test";

fn first_format_store(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("kazashi.db");
    let s = Store::create_first_format(&path, PASS).unwrap();
    s.set_meta("site", b"S1").unwrap();
    s.set_meta("big", &vec![7u8; 200_000]).unwrap();
    drop(s);
    assert_eq!(
        format_of(&kdf_path(&path)).as_deref(),
        Some("kazashi-kdf-v1 argon2id")
    );
    path
}

fn check_whole(path: &Path) {
    let s = Store::open(path, PASS).unwrap();
    assert_eq!(s.get_meta("site").unwrap().as_deref(), Some(&b"S1"[..]));
    assert_eq!(s.get_meta("big").unwrap().map(|v| v.len()), Some(200_000));
    drop(s);
    assert_eq!(
        format_of(&kdf_path(path)).as_deref(),
        Some("kazashi-kdf-v2 argon2id+dek")
    );
    let (rekey, next) = rekey_paths(path);
    assert!(!rekey.exists() && !next.exists());
}

#[test]
fn a_first_format_store_moves_to_a_data_key_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = first_format_store(dir.path());
    let old_db = std::fs::read(&path).unwrap();
    check_whole(&path);
    // A wrong passphrase is still told as such, and the schema version came along.
    assert!(matches!(
        Store::open(&path, "wrong"),
        Err(StoreError::WrongPassphrase)
    ));
    let s = Store::open(&path, PASS).unwrap();
    assert_eq!(
        s.conn_for_tests()
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .unwrap(),
        2
    );
    drop(s);
    // The file is keyed anew: the old bytes are not the new ones.
    assert_ne!(std::fs::read(&path).unwrap(), old_db);
}

/// The files a finished migration of `path` would leave: its database and key file.
fn migrated_copy(path: &Path, scratch: &Path) -> (Vec<u8>, Vec<u8>) {
    std::fs::create_dir_all(scratch).unwrap();
    let copy = scratch.join("kazashi.db");
    std::fs::copy(path, &copy).unwrap();
    std::fs::copy(kdf_path(path), kdf_path(&copy)).unwrap();
    drop(Store::open(&copy, PASS).unwrap());
    (
        std::fs::read(&copy).unwrap(),
        std::fs::read(kdf_path(&copy)).unwrap(),
    )
}

#[test]
fn every_state_a_kill_leaves_during_the_move_opens_whole() {
    let dir = tempfile::tempdir().unwrap();
    for (n, state) in [
        "copy-begun",
        "copy-done",
        "both-written",
        "store-renamed",
        "tmp-key",
    ]
    .iter()
    .enumerate()
    {
        let here = dir.path().join(format!("case{n}"));
        std::fs::create_dir_all(&here).unwrap();
        let path = first_format_store(&here);
        let (new_db, new_kdf) = migrated_copy(&path, &here.join("scratch"));
        let (rekey, next) = rekey_paths(&path);
        match *state {
            // Killed while copying: a partial copy, no new key file.
            "copy-begun" => std::fs::write(&rekey, &new_db[..new_db.len() / 2]).unwrap(),
            // Killed after the copy was synced, before the new key file.
            "copy-done" => std::fs::write(&rekey, &new_db).unwrap(),
            // Killed after the new key file, before the renames.
            "both-written" => {
                std::fs::write(&rekey, &new_db).unwrap();
                std::fs::write(&next, &new_kdf).unwrap();
            }
            // Killed between the two renames: the store is new, its key file still old.
            "store-renamed" => {
                std::fs::write(&path, &new_db).unwrap();
                std::fs::write(&next, &new_kdf).unwrap();
            }
            // Killed while writing the new key file.
            "tmp-key" => {
                std::fs::write(&rekey, &new_db).unwrap();
                let mut tmp = next.as_os_str().to_owned();
                tmp.push(".tmp");
                std::fs::write(std::path::PathBuf::from(tmp), &new_kdf[..10]).unwrap();
            }
            _ => unreachable!(),
        }
        check_whole(&path);
    }
}
