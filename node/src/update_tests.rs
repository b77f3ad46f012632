//! The update file: signed, parsed and verified; every altered, truncated or foreign file
//! refused; versions ordered as dpkg orders them.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use kazashi_sync::DeviceKey;
use proptest::prelude::*;

const DEP: DeploymentId = DeploymentId([3; 16]);

fn admin() -> DeviceKey {
    DeviceKey::from_seed([7; 32])
}

fn pin() -> Pin {
    Pin {
        deployment: DEP,
        admin: admin().device_id(),
    }
}

fn package() -> Vec<u8> {
    b"!<arch>\ndebian-binary   not really a deb, but bytes to carry".to_vec()
}

fn file(version: &str) -> Vec<u8> {
    encode(&admin(), DEP, version, &package()).unwrap()
}

#[test]
fn a_signed_update_verifies_and_hands_back_exactly_the_signed_package() {
    let bytes = file("0.2.0-1");
    let v = verify(&bytes, &pin(), "0.1.0-1", false).unwrap();
    assert_eq!(v.version, "0.2.0-1");
    assert_eq!(v.package, package().as_slice());
    assert_eq!(v.sha256, <[u8; 32]>::from(Sha256::digest(package())));
    assert_eq!(file_name("1:0.2.0-1"), "kazashi-1_0.2.0-1.kzu");
}

#[test]
fn another_deployments_key_or_id_is_refused() {
    // Another deployment: its own key and id.
    let other = DeviceKey::from_seed([9; 32]);
    let theirs = encode(&other, DeploymentId([4; 16]), "0.2.0", &package()).unwrap();
    assert!(matches!(
        verify(&theirs, &pin(), "0.1.0", false),
        Err(UpdateError::OtherDeployment { .. })
    ));
    // Another key claiming this deployment's id.
    let forged = encode(&other, DEP, "0.2.0", &package()).unwrap();
    assert!(matches!(
        verify(&forged, &pin(), "0.1.0", false),
        Err(UpdateError::ForeignKey { .. })
    ));
    // Another key's signature under this deployment's key's name.
    let mut swapped = forged.clone();
    swapped[32..64].copy_from_slice(&admin().device_id().0);
    assert!(matches!(
        verify(&swapped, &pin(), "0.1.0", false),
        Err(UpdateError::BadSignature)
    ));
    // This key, but signed for another deployment and the id rewritten.
    let mut moved = encode(&admin(), DeploymentId([4; 16]), "0.2.0", &package()).unwrap();
    moved[16..32].copy_from_slice(&DEP.0);
    assert!(matches!(
        verify(&moved, &pin(), "0.1.0", false),
        Err(UpdateError::BadSignature)
    ));
}

#[test]
fn every_flipped_byte_and_every_truncation_is_refused() {
    let bytes = file("0.2.0");
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            assert!(
                verify(&b, &pin(), "0.1.0", false).is_err(),
                "byte {i} bit {bit:#x} accepted"
            );
        }
    }
    for n in 0..bytes.len() {
        assert!(
            matches!(
                verify(&bytes[..n], &pin(), "0.1.0", false),
                Err(UpdateError::Malformed(_))
            ),
            "truncated to {n}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        verify(&longer, &pin(), "0.1.0", false),
        Err(UpdateError::Malformed(_))
    ));
}

#[test]
fn a_huge_length_is_refused_before_any_allocation() {
    let mut b = file("0.2.0");
    let at = 16 + 16 + 32 + 1 + "0.2.0".len();
    b[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(parse(&b), Err(UpdateError::TooLarge)));
    b[at..at + 8].copy_from_slice(&(MAX_PACKAGE).to_le_bytes());
    assert!(matches!(parse(&b), Err(UpdateError::Malformed(_))));
}

#[test]
fn a_downgrade_or_the_same_version_is_refused_unless_allowed() {
    let bytes = file("0.1.0-1");
    for installed in ["0.1.0-1", "0.1.0-2", "0.2.0", "1:0.0.1"] {
        assert!(
            matches!(
                verify(&bytes, &pin(), installed, false),
                Err(UpdateError::NotNewer { .. })
            ),
            "{installed}"
        );
        assert!(verify(&bytes, &pin(), installed, true).is_ok());
    }
    assert!(verify(&bytes, &pin(), "0.1.0", false).is_ok());
    assert!(verify(&bytes, &pin(), "0.1.0~rc1-1", false).is_ok());
}

#[test]
fn versions_order_as_dpkg_orders_them() {
    use Ordering::*;
    let cases = [
        ("1.0", "1.0", Equal),
        ("1.0", "1.0-0", Equal),
        ("1.0-1", "1.0", Greater),
        ("1.0~rc1", "1.0", Less),
        ("1.0~rc1", "1.0~rc2", Less),
        ("1.0~~", "1.0~", Less),
        ("1.0+b1", "1.0", Greater),
        ("1.0a", "1.0", Greater),
        ("1.0a", "1.0+", Less),
        ("1.10", "1.9", Greater),
        ("1.010", "1.10", Equal),
        ("1:0.1", "9.9", Greater),
        ("0.1.0-1", "0.1.0-10", Less),
        ("2.0-1", "10.0-1", Less),
    ];
    for (a, b, want) in cases {
        assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
    }
    for good in ["0.1.0", "1:2.3-4", "0.1.0~rc1+git.1-1", "2-a-b"] {
        assert!(check_version(good).is_ok(), "{good}");
    }
    for bad in ["", "a1.0", "1.0-", ":1.0", "1.0 ", "1.0/2", "x:1.0", "１.0"] {
        assert!(check_version(bad).is_err(), "{bad:?}");
    }
    assert!(check_version(&"1".repeat(MAX_VERSION + 1)).is_err());
}

#[test]
fn the_folders_key_signs_for_its_deployment_and_nothing_else_does() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = AdminFolder::new(tmp.path().join("admin"));
    let site = kazashi_domain::Site {
        id: kazashi_domain::SiteId::new("S1").unwrap(),
        name: kazashi_domain::text::Label::new("第一小学校").unwrap(),
        kind: kazashi_domain::SiteKind::CommandCenter,
    };
    let members = folder
        .init(
            "かざし市",
            crate::deployment_admin::Operation::Shelters,
            vec![site],
            "admin passphrase",
        )
        .unwrap();
    assert!(matches!(
        sign_update(&folder, "wrong passphrase", "0.2.0", &package()),
        Err(UpdateError::Admin(AdminError::WrongPassphrase))
    ));
    let (bytes, signed_pin) =
        sign_update(&folder, "admin passphrase", "0.2.0", &package()).unwrap();
    let laptop_pin = Pin {
        deployment: members.deployment().id(),
        admin: members.manifest().admin,
    };
    assert_eq!(signed_pin, laptop_pin);
    assert_eq!(
        verify(&bytes, &laptop_pin, "0.1.0", false).unwrap().package,
        package().as_slice()
    );
    assert!(verify(&bytes, &pin(), "0.1.0", false).is_err());
    // A folder that is not a laptop's: nothing pinned.
    assert!(matches!(
        pin_of(&Folder::new(tmp.path().join("laptop")), "x"),
        Err(UpdateError::NotEnrolled(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_are_parsed_or_refused_without_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        keep in 0usize..200,
    ) {
        prop_assert!(verify(&bytes, &pin(), "0.1.0", false).is_err());
        // A real header with arbitrary bytes after it.
        let mut b = file("0.2.0");
        b.truncate(keep.min(b.len()));
        b.extend_from_slice(&bytes);
        let _ = verify(&b, &pin(), "0.1.0", false);
    }

    #[test]
    fn version_comparison_is_a_total_order(
        a in "[0-9]{1,3}(\\.[0-9a-z~+]{1,3}){0,3}(-[0-9a-z~.]{1,3})?",
        b in "[0-9]{1,3}(\\.[0-9a-z~+]{1,3}){0,3}(-[0-9a-z~.]{1,3})?",
    ) {
        prop_assert_eq!(compare_versions(&a, &b), compare_versions(&b, &a).reverse());
        prop_assert_eq!(compare_versions(&a, &a), Ordering::Equal);
    }
}
