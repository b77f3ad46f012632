//! `AdminFolder::purge` on a real folder: refused (nothing changed) before the close, while the
//! retention period runs, without a period, with a wrong id or passphrase; then the purpose
//! keys destroyed, the record written, other files left alone, and no version signed after.

use super::*;
use crate::deployment_admin::{Operation, parse_sites_csv};

const PASS: &str = "administrator passphrase";
const DAY: u64 = 86_400_000;

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

fn folder(dir: &Path, retention: Option<u32>) -> AdminFolder {
    let admin = AdminFolder::new(dir);
    let sites = parse_sites_csv("code,name,kind,capacity\nS1,第一小学校,shelter,100\n").unwrap();
    admin
        .init_full(
            "かざし市",
            Operation::Shelters,
            sites,
            vec![],
            vec![],
            retention,
            PASS,
        )
        .unwrap();
    admin
}

#[test]
fn the_purpose_keys_are_destroyed_only_after_the_retention_period_of_a_closed_deployment() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = folder(&tmp.path().join("admin"), Some(1));
    let id = admin.current().unwrap().deployment().id().to_hex();
    let closed_at = 1_800_000_000_000;

    let before = listing(&admin.dir);
    assert!(matches!(
        admin.purge(PASS, &id, closed_at + 10 * DAY),
        Err(AdminError::NotClosed)
    ));
    assert_eq!(listing(&admin.dir), before);

    admin.close(PASS, closed_at).unwrap();
    // A file the administrator left in the folder.
    std::fs::write(admin.dir.join("staff.csv"), "staff_id,name\nA1,x\n").unwrap();
    let before = listing(&admin.dir);
    let err = admin.purge(PASS, &id, closed_at + DAY - 1).unwrap_err();
    assert!(
        matches!(err, AdminError::RetentionRunning { until, .. } if until == closed_at + DAY),
        "{err}"
    );
    assert!(matches!(
        admin.purge(PASS, "0123456789abcdef0123456789abcdef", closed_at + DAY),
        Err(AdminError::Unconfirmed(ref d)) if *d == id
    ));
    assert!(matches!(
        admin.purge("wrong passphrase", &id, closed_at + DAY),
        Err(AdminError::WrongPassphrase)
    ));
    assert_eq!(listing(&admin.dir), before);

    // A leftover of an interrupted write of the secrets goes too.
    let purpose = std::fs::read(admin.dir.join(PURPOSE_FILE)).unwrap();
    std::fs::write(admin.dir.join("purpose-keys.kzk.tmp"), &purpose).unwrap();
    let done = admin
        .purge(PASS, &id.to_ascii_uppercase(), closed_at + DAY)
        .unwrap();
    assert_eq!(done.destroyed, ["purpose-keys.kzk", "purpose-keys.kzk.tmp"]);
    assert_eq!(
        done.kept,
        [
            "deployment-key.kzk",
            "manifest-v1.kzm",
            "manifest-v2.kzm",
            "manifest.kzm"
        ]
    );
    assert_eq!(done.other_files, ["staff.csv"]);
    assert_eq!((done.closed_at, done.retention_days), (closed_at, 1));
    assert!(!admin.dir.join(PURPOSE_FILE).exists());
    assert!(!admin.dir.join("purpose-keys.kzk.tmp").exists());
    assert!(admin.dir.join("staff.csv").exists());
    assert_eq!(read_purged(&admin.dir).unwrap(), Some(done.clone()));
    // No byte of the sealed secrets is left in any file of the folder.
    let sealed: serde_json::Value = serde_json::from_slice(&purpose).unwrap();
    let sealed = sealed["sealed"].as_str().unwrap();
    for (name, bytes) in listing(&admin.dir) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(sealed),
            "{name} holds the secrets"
        );
    }
    // The key and manifests still prove the record; nothing more is signed.
    assert_eq!(admin.current().unwrap().closed_at(), Some(closed_at));
    assert!(matches!(
        admin.set_retention(PASS, Some(5)),
        Err(AdminError::Purged)
    ));
    assert!(!admin.dir.join(PURPOSE_FILE).exists());
    // Again: the same record.
    assert_eq!(admin.purge(PASS, "", closed_at + 2 * DAY).unwrap(), done);
}

#[test]
fn without_a_retention_period_nothing_is_purged() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = folder(&tmp.path().join("admin"), None);
    let id = admin.current().unwrap().deployment().id().to_hex();
    admin.close(PASS, 1_000).unwrap();
    let before = listing(&admin.dir);
    assert!(matches!(
        admin.purge(PASS, &id, u64::MAX),
        Err(AdminError::NoRetention)
    ));
    assert_eq!(listing(&admin.dir), before);
}
