//! Tokens on real stores (issue 26, requirement 4): a UID bound at one laptop is found at
//! another after a USB bundle, with no raw identifier anywhere in the log; a wristband the
//! same; a token bound to one person is refused for another; a laptop whose manifest seals it
//! no operation key can neither bind nor find.

use crate::clock::ManualClock;
use crate::dv_lift_tests::{T0, admin, carry, manifest, node_at};
use crate::link::tests::key;
use crate::token::{TokenError, TokenId, wristband_code};
use kazashi_domain::event::EventBody;
use kazashi_domain::ids::{OperatorId, PersonRef};
use kazashi_sync::purpose::{Holder, reseal};
use kazashi_sync::{KeyPurpose, PurposeSecret, SealedKey, SignedManifest};

/// The test manifest with the operation key sealed to devices 1 and 2.
fn with_operation_key() -> Vec<u8> {
    let plain = SignedManifest::decode(&manifest(1, &["sekinin"])).unwrap();
    let mut m = plain.manifest().clone();
    let active: Vec<_> = m.devices.iter().map(|d| d.device).collect();
    let op = PurposeSecret::new([42; 32]);
    let grants = vec![SealedKey {
        purpose: KeyPurpose::Operation,
        public: [0; 32],
        ephemeral: [0; 32],
        holders: active
            .iter()
            .map(|d| Holder {
                device: *d,
                wrapped: Vec::new(),
            })
            .collect(),
    }];
    m.sealed_keys = reseal(&grants, &active, &[(KeyPurpose::Operation, &op)], [9; 32]);
    SignedManifest::sign(&m, &admin()).unwrap().encode()
}

#[test]
fn a_token_bound_at_one_laptop_is_found_at_another_and_never_stored_raw() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let m = with_operation_key();
    let mut a = node_at(dir.path(), 1, &m, &clock);
    let mut b = node_at(dir.path(), 2, &m, &clock);
    assert!(a.tokens_available() && b.tokens_available());
    let op = OperatorId::new("uketsuke").unwrap();
    let entries = a.station().roster().entries().to_vec();
    let (p, q) = (
        PersonRef::Roster(entries[0].person),
        PersonRef::Roster(entries[1].person),
    );

    // A FeliCa IDm and a wristband, first seen: nobody.
    let raw_idm = [0x01, 0x2E, 0x4C, 0xD3, 0x5A, 0x19, 0x77, 0x08];
    let idm = TokenId::from_reader(&raw_idm).unwrap();
    let band_bytes = [0x5A; 10];
    let band = TokenId::wristband(&wristband_code(&band_bytes)).unwrap();
    let tap = a.token_tap(&idm).unwrap();
    assert_eq!(tap.person, None);
    assert!(a.bind_token(op, tap.key, p).unwrap().is_some());
    let band_tap = a.token_tap(&band).unwrap();
    a.bind_token(op, band_tap.key, q).unwrap();
    assert_eq!(a.token_tap(&idm).unwrap().person, Some(p));
    assert_eq!(a.token_tap(&band).unwrap().person, Some(q));

    // Again for the same person: nothing written. For another: refused, nothing written.
    let before = a.state().len();
    assert_eq!(a.bind_token(op, tap.key, p).unwrap(), None);
    assert_eq!(a.bind_token(op, tap.key, q), Err(TokenError::BoundToOther));
    assert_eq!(a.state().len(), before);

    // At laptop 2, after a USB bundle: both found without anything but the tap.
    assert_eq!(b.token_tap(&idm).unwrap().person, None);
    carry(&mut a, &mut b);
    assert_eq!(b.token_tap(&idm).unwrap().person, Some(p));
    assert_eq!(b.token_tap(&band).unwrap().person, Some(q));
    assert_eq!(
        b.token_tap(&idm).unwrap().key,
        tap.key,
        "same key on every laptop"
    );

    // The log holds keys, never the identifiers.
    for e in b.state().events_unordered() {
        if let EventBody::CardBinding { card, .. } = e.body() {
            assert_ne!(&card.0[..8], &raw_idm[..]);
            assert!(!card.0.windows(8).any(|w| w == raw_idm));
            assert!(!card.0.windows(10).any(|w| w == band_bytes));
        }
    }
    // Nor the store file on disk.
    drop(b);
    let disk = std::fs::read(dir.path().join("2.db")).unwrap();
    assert!(!disk.windows(8).any(|w| w == raw_idm));

    // A lost wristband: unbound, it finds no one.
    a.unbind_token(op, band_tap.key).unwrap();
    assert_eq!(a.token_tap(&band).unwrap().person, None);
}

#[test]
fn a_laptop_without_the_operation_key_cannot_bind_or_find_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let a = node_at(dir.path(), 1, &manifest(1, &["sekinin"]), &clock);
    assert!(!a.tokens_available());
    let uid = TokenId::from_reader(&[0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66]).unwrap();
    assert_eq!(a.token_tap(&uid), Err(TokenError::NoSecret));
    assert_eq!(a.token_key(&uid), Err(TokenError::NoSecret));
    // Device 3 is not in the manifest with the key: it holds nothing either.
    let m = with_operation_key();
    let members = SignedManifest::decode(&m).unwrap();
    assert!(members.unseal(KeyPurpose::Operation, &key(3)).is_none());
    assert!(members.unseal(KeyPurpose::Operation, &key(1)).is_some());
}

#[test]
fn two_deployments_key_the_same_card_apart() {
    let uid = TokenId::from_reader(&[0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66]).unwrap();
    let s = [42u8; 32];
    let one = crate::token::token_key(&s, &kazashi_domain::DeploymentId([1; 16]), &uid);
    let two = crate::token::token_key(&s, &kazashi_domain::DeploymentId([2; 16]), &uid);
    assert_ne!(one, two);
}
