#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use proptest::prelude::*;
use std::os::unix::fs::PermissionsExt as _;

fn pin(n: u8) -> Pin {
    Pin {
        deployment: DeploymentId([n; 16]),
        admin: kazashi_sync::DeviceKey::from_seed([n; 32]).device_id(),
    }
}

fn json(deployment: &str, admin: &str, fp: &str) -> Vec<u8> {
    format!(
        r#"{{"format":"{FORMAT}","deployment":"{deployment}","admin":"{admin}","admin_fingerprint":"{fp}"}}"#
    )
    .into_bytes()
}

fn malformed(bytes: &[u8], words: &str) {
    match parse(bytes, "p.json") {
        Err(PinError::Malformed { path, reason }) => {
            assert_eq!(path, "p.json");
            assert!(reason.contains(words), "{reason:?} lacks {words:?}");
        }
        other => panic!("{other:?}: expected Malformed({words})"),
    }
}

#[test]
fn a_pin_round_trips_and_names_its_key_by_fingerprint() {
    let p = pin(3);
    let bytes = encode(&p);
    assert_eq!(parse(&bytes, "x").unwrap(), p);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains(&fingerprint(&p.admin)), "{text}");
    assert!(text.ends_with('\n'));
    // Spaces in the fingerprint do not matter; its digits do.
    let f = fingerprint(&p.admin).replace(' ', "");
    let spaced = json(&p.deployment.to_hex(), &p.admin.to_hex(), &f);
    assert_eq!(parse(&spaced, "x").unwrap(), p);
}

#[test]
fn a_bad_pin_file_is_refused_with_a_clear_reason() {
    let p = pin(4);
    let (dep, admin, fp) = (
        p.deployment.to_hex(),
        p.admin.to_hex(),
        fingerprint(&p.admin),
    );
    malformed(b"", "EOF");
    malformed(b"not json", "expected");
    malformed(b"[1,2]", "invalid type");
    malformed(b"{}", "missing field");
    malformed(
        &json(&dep[..30], &admin, &fp),
        "deployment id is not 32 hex",
    );
    malformed(
        &json(&format!("{dep}00"), &admin, &fp),
        "deployment id is not 32 hex",
    );
    malformed(&json(&dep, &admin[..62], &fp), "key is not 64 hex");
    malformed(&json(&dep, &format!("{admin}ab"), &fp), "key is not 64 hex");
    malformed(&json(&dep, &"zz".repeat(32), &fp), "key is not 64 hex");
    malformed(&json(&dep, &"é".repeat(32), &fp), "key is not 64 hex");
    // Another key's fingerprint: a hand-edited key is caught.
    malformed(
        &json(&dep, &admin, &fingerprint(&pin(5).admin)),
        "fingerprint does not match",
    );
    malformed(&json(&dep, &admin, ""), "fingerprint does not match");
    let other_format = String::from_utf8(json(&dep, &admin, &fp))
        .unwrap()
        .replace(FORMAT, "kazashi-update-pin-v9");
    malformed(other_format.as_bytes(), "format is not");
    let extra = String::from_utf8(json(&dep, &admin, &fp))
        .unwrap()
        .replace('}', r#","more":"x"}"#);
    malformed(extra.as_bytes(), "unknown field");
    let mut big = encode(&p);
    big.resize(MAX_PIN_FILE as usize + 1, b' ');
    assert!(matches!(parse(&big, "b"), Err(PinError::TooLarge(_))));
}

#[test]
fn writing_into_the_folder_is_public_atomic_and_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pin(6);
    assert!(write_in(tmp.path(), &p).unwrap());
    let path = in_folder(tmp.path());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    assert_eq!(read(&path).unwrap(), Some(p));
    assert!(
        !write_in(tmp.path(), &p).unwrap(),
        "the same pin is not rewritten"
    );
    assert!(!tmp.path().join("update-pin.json.tmp").exists());
    assert_eq!(read(&tmp.path().join("none.json")).unwrap(), None);
}

#[test]
fn root_takes_the_first_pin_and_refuses_another_changing_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let trusted = tmp
        .path()
        .join("etc")
        .join("kazashi")
        .join("update-pin.json");
    let offered = in_folder(&folder);
    // No folder pin yet: nothing.
    assert_eq!(take(&offered, &trusted).unwrap(), Taken::NoFolderPin);
    assert!(!trusted.exists());
    // First use: copied, 0644.
    write_in(&folder, &pin(7)).unwrap();
    assert_eq!(take(&offered, &trusted).unwrap(), Taken::New(pin(7)));
    assert_eq!(std::fs::read(&trusted).unwrap(), encode(&pin(7)));
    let mode = std::fs::metadata(&trusted).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    assert_eq!(take(&offered, &trusted).unwrap(), Taken::Unchanged(pin(7)));
    // Another deployment's pin in the folder: refused, root's unchanged.
    write_in(&folder, &pin(8)).unwrap();
    let before = std::fs::read(&trusted).unwrap();
    let err = take(&offered, &trusted).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PinError::Differs(_)), "{text}");
    assert!(text.contains("refused, nothing changed"), "{text}");
    assert!(text.contains(&fingerprint(&pin(7).admin)), "{text}");
    assert!(text.contains(&fingerprint(&pin(8).admin)), "{text}");
    assert_eq!(std::fs::read(&trusted).unwrap(), before);
    // A damaged folder pin: refused, root's unchanged.
    std::fs::write(&offered, b"{\"format\":").unwrap();
    assert!(matches!(
        take(&offered, &trusted),
        Err(PinError::Malformed { .. })
    ));
    assert_eq!(std::fs::read(&trusted).unwrap(), before);
    // A link or a FIFO in the folder's place is not followed or read.
    std::fs::remove_file(&offered).unwrap();
    std::os::unix::fs::symlink(&trusted, &offered).unwrap();
    assert!(matches!(
        take(&offered, &trusted),
        Err(PinError::NotAFile(_))
    ));
    std::fs::remove_file(&offered).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&offered)
        .status()
        .unwrap();
    assert!(made.success());
    assert!(matches!(
        take(&offered, &trusted),
        Err(PinError::NotAFile(_))
    ));
    assert_eq!(std::fs::read(&trusted).unwrap(), before);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// Arbitrary bytes, and a real pin with one byte changed: an error or a pin, never a panic.
    #[test]
    fn any_bytes_parse_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                                      at in any::<usize>(), flip in 1u8..) {
        let _ = parse(&bytes, "x");
        let mut real = encode(&pin(9));
        let i = at % real.len();
        real[i] ^= flip;
        if let Ok(p) = parse(&real, "x") {
            // The key is bound by its fingerprint: a changed byte may pass only where the
            // parser ignores it (spacing, hex case) or in the deployment id.
            prop_assert_eq!(p.admin, pin(9).admin);
        }
    }
}
