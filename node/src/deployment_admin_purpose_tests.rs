//! The administrator's purpose keys (issue 24, requirement 3): made at init, granted device by
//! device, re-sealed at every version (a revoked device dropped), the retention period set and
//! cleared; a refusal writes nothing.

use super::*;
use crate::enrolled::Folder;
use crate::store::Store;

const PASS: &str = "administrator passphrase";
const LAPTOP: &str = "laptop passphrase";

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

#[test]
fn purpose_keys_are_granted_sealed_to_their_holders_and_resealed_without_the_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = AdminFolder::new(tmp.path().join("admin"));
    let sites = parse_sites_csv("code,name,kind,capacity\nS1,第一小学校,shelter,100\n").unwrap();
    let v1 = admin
        .init_full(
            "かざし市",
            Operation::Shelters,
            sites,
            vec![],
            vec![],
            Some(30),
            PASS,
        )
        .unwrap();
    assert_eq!(v1.retention_days(), Some(30));
    assert!(admin.dir.join(PURPOSE_FILE).exists());
    for p in KeyPurpose::ALL {
        assert!(v1.purpose_public(p).is_some(), "{p:?}");
    }
    // Two laptops.
    let s1 = SiteId::new("S1").unwrap();
    let mut keys = Vec::new();
    for name in ["a", "b"] {
        let folder = Folder::new(tmp.path().join(name));
        let req = crate::enrolment::request(&folder, LAPTOP, name).unwrap();
        admin
            .approve(PASS, &req, &req.fingerprint, s1, Role::Station)
            .unwrap();
        let store = Store::open(&folder.store_path(), LAPTOP).unwrap();
        keys.push(store.identity().unwrap().unwrap());
    }
    let (a, b) = (keys[0].device_id(), keys[1].device_id());
    let m = admin.current().unwrap();
    assert_eq!(m.purposes_of(&a), vec![KeyPurpose::Operation]);
    assert!(m.unseal(KeyPurpose::Medical, &keys[0]).is_none());
    // A wrong passphrase writes nothing.
    let before = listing(&admin.dir);
    assert!(matches!(
        admin.grant("wrong passphrase", &a.to_hex(), KeyPurpose::Medical),
        Err(AdminError::WrongPassphrase)
    ));
    assert_eq!(listing(&admin.dir), before);
    // Grants: medical to a, manager to a and b.
    admin
        .grant(PASS, &a.to_hex()[..12], KeyPurpose::Medical)
        .unwrap();
    admin.grant(PASS, &a.to_hex(), KeyPurpose::Manager).unwrap();
    let m = admin.grant(PASS, &b.to_hex(), KeyPurpose::Manager).unwrap();
    assert_eq!(m.purposes_of(&a), KeyPurpose::ALL.to_vec());
    assert_eq!(
        m.purposes_of(&b),
        vec![KeyPurpose::Manager, KeyPurpose::Operation]
    );
    let medical = m.unseal(KeyPurpose::Medical, &keys[0]).unwrap();
    assert_eq!(
        Some(medical.public()),
        v1.purpose_public(KeyPurpose::Medical)
    );
    assert!(matches!(
        admin.grant(PASS, &a.to_hex(), KeyPurpose::Medical),
        Err(AdminError::AlreadyHolds(..))
    ));
    assert!(matches!(
        admin.grant(PASS, &a.to_hex(), KeyPurpose::Operation),
        Err(AdminError::NotGranted(_))
    ));
    assert!(matches!(
        admin.revoke_holds(PASS, &b.to_hex(), KeyPurpose::Medical),
        Err(AdminError::NotHolding(..))
    ));
    // Revoking a: the next version seals nothing to it; b keeps its keys, the same secrets.
    let m = admin.revoke(PASS, &a.to_hex(), 5).unwrap();
    assert!(m.purposes_of(&a).is_empty());
    assert!(
        m.sealed_keys()
            .iter()
            .all(|k| k.holders.iter().all(|h| h.device != a))
    );
    let manager = m.unseal(KeyPurpose::Manager, &keys[1]).unwrap();
    assert_eq!(
        Some(manager.public()),
        v1.purpose_public(KeyPurpose::Manager)
    );
    assert!(matches!(
        admin.grant(PASS, &a.to_hex(), KeyPurpose::Medical),
        Err(AdminError::Revoked(_))
    ));
    let m = admin
        .revoke_holds(PASS, &b.to_hex(), KeyPurpose::Manager)
        .unwrap();
    assert_eq!(m.purposes_of(&b), vec![KeyPurpose::Operation]);
    let m = admin.set_retention(PASS, None).unwrap();
    assert_eq!(m.retention_days(), None);
    // The backup copies the purpose secrets with the key.
    let stick = tmp.path().join("usb");
    std::fs::create_dir_all(&stick).unwrap();
    admin.export_key(&stick).unwrap();
    assert_eq!(
        std::fs::read(stick.join(PURPOSE_FILE)).unwrap(),
        std::fs::read(admin.dir.join(PURPOSE_FILE)).unwrap()
    );
}
