//! A damaged store file is reported as damaged, not as a wrong passphrase, with what to do;
//! a full disk refuses writes with a clear message, loses nothing acknowledged, and recovers
//! once space is freed (on a small tmpfs: needs root to mount one, else skipped and logged).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_domain::ids::{OperatorId, SiteId};
use kazashi_node::store::{KdfParams, StoreError};
use kazashi_node::{ManualClock, Node, NodeError};
use kazashi_sync::DeviceKey;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const PASS: &str = "disk test";

fn create(path: &Path) -> (Node<ManualClock>, kazashi_domain::Roster) {
    let (roster, fleet) = kazashi_tests::town().unwrap();
    let site = SiteId::new("S001").unwrap();
    let key = DeviceKey::from_seed(fleet.key(&site).unwrap().secret_bytes());
    let node = Node::create(
        path,
        PASS,
        KdfParams::FAST_INSECURE,
        key,
        &fleet.manifest,
        Arc::new(roster.clone()),
        site,
        ManualClock::new(1_788_220_800_000),
    )
    .unwrap();
    (node, roster)
}

fn open(
    path: &Path,
    pass: &str,
    roster: &kazashi_domain::Roster,
) -> Result<Node<ManualClock>, NodeError> {
    Node::open(
        path,
        pass,
        Arc::new(roster.clone()),
        SiteId::new("S001").unwrap(),
        ManualClock::new(1_788_220_800_000),
    )
}

fn record(
    node: &mut Node<ManualClock>,
    roster: &kazashi_domain::Roster,
    i: usize,
) -> Result<kazashi_domain::EventId, NodeError> {
    let body = kazashi_tests::check_in(roster, i).unwrap();
    node.record(OperatorId::new("disk").unwrap(), body)
        .map(|e| e.id())
}

/// XOR `mask` into `len` bytes at `at` of `path`.
fn damage(path: &Path, at: usize, len: usize) {
    let mut raw = std::fs::read(path).unwrap();
    for b in raw.iter_mut().skip(at).take(len) {
        *b ^= 0x5a;
    }
    std::fs::write(path, raw).unwrap();
}

fn says_damaged(err: &NodeError) -> bool {
    let text = err.to_string();
    matches!(err, NodeError::Store(StoreError::DamagedFile(_)))
        && text.contains("damaged")
        && text.contains("passphrase is right")
        && text.contains("enrol this laptop again")
        && text.contains("bundles")
}

#[test]
fn a_damaged_store_is_told_apart_from_a_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kazashi.db");
    let (mut node, roster) = create(&path);
    for i in 0..20 {
        record(&mut node, &roster, i).unwrap();
    }
    node.store().checkpoint().unwrap();
    drop(node);
    let pristine = std::fs::read(&path).unwrap();
    assert!(matches!(
        open(&path, "wrong horse", &roster).err().unwrap(),
        NodeError::Store(StoreError::WrongPassphrase)
    ));

    // Page 1 damaged (past SQLCipher's 16-byte salt): the right passphrase is told so.
    damage(&path, 200, 64);
    let err = open(&path, PASS, &roster).err().unwrap();
    assert!(says_damaged(&err), "{err}");
    // A wrong passphrase on the damaged file is still a wrong passphrase.
    assert!(matches!(
        open(&path, "wrong horse", &roster).err().unwrap(),
        NodeError::Store(StoreError::WrongPassphrase)
    ));

    // Every later page damaged: found when the log is read, and named as damage.
    std::fs::write(&path, &pristine).unwrap();
    let pages = pristine.len() / 4096;
    assert!(pages > 2, "{pages} pages");
    for p in 1..pages {
        damage(&path, p * 4096 + 300, 32);
    }
    let err = open(&path, PASS, &roster).err().unwrap();
    assert!(says_damaged(&err), "{err}");

    // A key file from before the key check: a wrong passphrase cannot be told from damage
    // there, so it says wrong passphrase; the first right open adds the check.
    std::fs::write(&path, &pristine).unwrap();
    let kdf = dir.path().join("kazashi.db.kdf");
    let text = std::fs::read_to_string(&kdf).unwrap();
    let at = text
        .find(",\n  \"check\"")
        .expect("a key check in the .kdf");
    let end = at + 2 + text[at + 2..].find('\n').unwrap();
    std::fs::write(&kdf, format!("{}{}", &text[..at], &text[end..])).unwrap();
    assert!(!std::fs::read_to_string(&kdf).unwrap().contains("check"));
    assert!(matches!(
        open(&path, "wrong horse", &roster).err().unwrap(),
        NodeError::Store(StoreError::WrongPassphrase)
    ));
    let node = open(&path, PASS, &roster).unwrap();
    assert_eq!(node.state().len(), 20);
    drop(node);
    assert!(
        std::fs::read_to_string(&kdf).unwrap().contains("\"check\""),
        "the key check was not added"
    );
    damage(&path, 200, 64);
    let err = open(&path, PASS, &roster).err().unwrap();
    assert!(says_damaged(&err), "{err}");
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_refuses_writes_loses_nothing_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .output();
    match mounted {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            kazashi_tests::card_rig::skip(&format!(
                "full disk: cannot mount a small tmpfs (needs root): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            return;
        }
        Err(e) => {
            kazashi_tests::card_rig::skip(&format!("full disk: no mount command: {e}"));
            return;
        }
    }
    let _guard = Tmpfs(mnt.clone());
    let path = mnt.join("kazashi.db");
    let (mut node, roster) = create(&path);
    // Another laptop's bundle, to import while the disk is full.
    let other_dir = tempfile::tempdir().unwrap();
    let bundle = {
        let (_, fleet) = kazashi_tests::town().unwrap();
        let s2 = SiteId::new("S002").unwrap();
        let mut other = Node::create(
            &other_dir.path().join("b.db"),
            PASS,
            KdfParams::FAST_INSECURE,
            DeviceKey::from_seed(fleet.key(&s2).unwrap().secret_bytes()),
            &fleet.manifest,
            Arc::new(roster.clone()),
            s2,
            ManualClock::new(1_788_220_800_000),
        )
        .unwrap();
        for i in 40..60 {
            record(&mut other, &roster, i).unwrap();
        }
        other.export_bundle(kazashi_node::BundleScope::All).unwrap()
    };
    let mut acked = Vec::new();
    for i in 0..5 {
        acked.push(record(&mut node, &roster, i).unwrap());
    }
    // Fill the disk but for a little.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len.saturating_sub(96 << 10))
        .unwrap();
    // Write until the disk is full.
    let mut full = None;
    for i in 5..5000 {
        match record(&mut node, &roster, i) {
            Ok(id) => acked.push(id),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let err = full.expect("the disk never filled");
    assert!(
        matches!(err, NodeError::Store(StoreError::DiskFull)),
        "not named as a full disk: {err}"
    );
    assert!(err.to_string().contains("the disk is full"), "{err}");
    // New writes are refused, and say why; what was acknowledged is all there.
    let again = record(&mut node, &roster, 9_000).unwrap_err();
    assert!(again.to_string().contains("the disk is full"), "{again}");
    for id in &acked {
        assert!(
            node.state().contains(id),
            "acknowledged {id} not in the state"
        );
    }
    // A bundle import is refused the same way, and takes nothing.
    let before = node.state().len();
    let imported = node.import_bundle(&bundle, "usb").unwrap_err();
    assert!(
        matches!(imported, NodeError::Store(StoreError::DiskFull)),
        "the import on a full disk: {imported}"
    );
    assert_eq!(node.state().len(), before);
    eprintln!("full disk after {} acknowledged writes: {err}", acked.len());
    // Space comes back: writing works again, on the same node and after a reopen.
    std::fs::remove_file(&filler).unwrap();
    let later = record(&mut node, &roster, 9_001).unwrap();
    acked.push(later);
    // The refused import, again: it completes now.
    assert_eq!(node.import_bundle(&bundle, "usb").unwrap().added, 20);
    let imported = node.state().len() - acked.len();
    drop(node);
    let mut node = open(&path, PASS, &roster).unwrap();
    for id in &acked {
        assert!(
            node.state().contains(id),
            "acknowledged {id} lost after the full disk"
        );
    }
    assert_eq!(node.state().len(), acked.len() + imported);
    record(&mut node, &roster, 9_002).unwrap();
}
