//! Every way an envelope or a manifest can be bad is refused with its own reason.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use common::*;
use kazashi_domain::audit::{AuditAction, AuditRecord, CHAIN_START};
use kazashi_domain::{Event, EventBody, EventContent, OperatorId, Timestamp};
use kazashi_sync::envelope::SealError;
use kazashi_sync::manifest::ManifestError;
use kazashi_sync::{Rejection, Revocation, SignedManifest, Withheld, open, open_as, seal};

#[test]
fn a_sealed_event_opens_to_itself() {
    let m = membership();
    let e = event(1, "S1", 0, 1);
    let env = seal(&e, m.deployment().id(), &key(1)).unwrap();
    assert_eq!(open(&env, &m).unwrap(), e);
    assert_eq!(open_as(&env, &e.id(), &m).unwrap(), e);
    // Deterministic: the same event seals to the same bytes.
    assert_eq!(seal(&e, m.deployment().id(), &key(1)).unwrap(), env);
}

#[test]
fn a_device_cannot_seal_another_devices_event() {
    let e = event(1, "S1", 0, 1);
    assert!(matches!(
        seal(&e, membership().deployment().id(), &key(2)),
        Err(SealError::NotOurDevice { .. })
    ));
}

#[test]
fn bad_envelopes_are_refused_with_their_reason() {
    let m = membership();
    let dep = m.deployment().id();
    let good = seal(&event(1, "S1", 0, 1), dep, &key(1)).unwrap();

    // Malformed bytes: empty, truncated, garbage.
    for bytes in [&[][..], &good[..good.len() / 2], &[0xff; 40][..]] {
        assert_eq!(
            open(bytes, &m).unwrap_err().code(),
            "malformed",
            "{bytes:?}"
        );
    }
    // Another deployment.
    let other = seal(
        &event(1, "S1", 0, 1),
        kazashi_domain::DeploymentId([2; 16]),
        &key(1),
    )
    .unwrap();
    assert!(matches!(
        open(&other, &m),
        Err(Rejection::WrongDeployment { .. })
    ));
    // A device not in the manifest.
    let stranger = seal(&event(5, "S1", 0, 1), dep, &key(5)).unwrap();
    assert_eq!(
        open(&stranger, &m),
        Err(Rejection::UnknownDevice(device(5)))
    );
    // A flipped bit in the signature, and in the event content.
    let mut sig = good.clone();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    assert_eq!(open(&sig, &m), Err(Rejection::BadSignature(device(1))));
    let tampered = {
        // Re-seal station 1's event with station 2's key but station 1's name on it: the
        // content says device 1, the signature is device 2's.
        let e = event(1, "S1", 0, 1);
        let forged = seal(&event(2, "S1", 0, 1), dep, &key(2)).unwrap();
        let honest = seal(&e, dep, &key(1)).unwrap();
        let sig_at = forged.len() - 64;
        let mut v = honest[..honest.len() - 64].to_vec();
        v.extend_from_slice(&forged[sig_at..]);
        v
    };
    assert_eq!(open(&tampered, &m), Err(Rejection::BadSignature(device(1))));
    // A relay writes nothing; station 3 writes only for S2.
    let relay = seal(&event(9, "S1", 0, 1), dep, &key(9)).unwrap();
    assert_eq!(open(&relay, &m), Err(Rejection::RelayWrote(device(9))));
    let wrong_site = seal(&event(3, "S1", 0, 1), dep, &key(3)).unwrap();
    assert!(matches!(
        open(&wrong_site, &m),
        Err(Rejection::SiteNotPermitted { .. })
    ));
    assert!(open(&seal(&event(3, "S2", 0, 1), dep, &key(3)).unwrap(), &m).is_ok());
    // Filed under another id.
    let other_id = event(1, "S1", 5, 1).id();
    assert!(matches!(
        open_as(&good, &other_id, &m),
        Err(Rejection::IdMismatch { .. })
    ));
}

/// Revocation is a verdict of the fold, never of the door: `open` takes a revoked device's
/// envelope on either side of the cut-off, and `withholds` says which of them the fold leaves
/// out (from `from_ms` on, inclusive).
#[test]
fn a_revoked_devices_events_open_and_are_withheld_from_its_cut_off() {
    let v2 = SignedManifest::sign(
        &manifest(
            2,
            vec![Revocation {
                device: device(2),
                from_ms: T0 + 60_000,
            }],
        ),
        &admin(),
    )
    .unwrap();
    let m = membership().update(&v2.encode()).unwrap();
    let dep = m.deployment().id();
    let before = seal(&event(2, "S1", 59_999, 1), dep, &key(2)).unwrap();
    let after = seal(&event(2, "S1", 60_000, 1), dep, &key(2)).unwrap();
    let (b, a) = (open(&before, &m).unwrap(), open(&after, &m).unwrap());
    assert_eq!(m.withholds(&b), None);
    assert_eq!(
        m.withholds(&a),
        Some(Withheld::Revoked { from: T0 + 60_000 })
    );
    // Another device's event at the same time counts.
    assert_eq!(m.withholds(&event(1, "S1", 60_000, 1)), None);
    // The cut-offs tell the two manifests apart; the same manifest's are equal.
    assert_ne!(m.cutoffs(), membership().cutoffs());
    assert_eq!(m.cutoffs(), m.cutoffs());
    assert!(membership().cutoffs().is_empty());
}

/// The operation's close withholds every event stamped at or after it but audit records, and
/// a revocation withholds audit records too.
#[test]
fn the_close_withholds_all_but_audit_records() {
    let mut closed = manifest(
        2,
        vec![Revocation {
            device: device(2),
            from_ms: T0 + 90_000,
        }],
    );
    closed.closed_at = Some(T0 + 60_000);
    let v2 = SignedManifest::sign(&closed, &admin()).unwrap();
    let m = membership().update(&v2.encode()).unwrap();
    assert_eq!(m.withholds(&event(1, "S1", 59_999, 1)), None);
    assert_eq!(
        m.withholds(&event(1, "S1", 60_000, 1)),
        Some(Withheld::AfterClose { at: T0 + 60_000 })
    );
    let audit = |n: u8, at: u64| {
        Event::new(EventContent {
            device: device(n),
            site: site("S1"),
            operator: OperatorId::new("op1").unwrap(),
            at: Timestamp::new(T0 + at, 0),
            body: EventBody::Audit(Box::new(AuditRecord {
                seq: 1,
                prev: CHAIN_START,
                action: AuditAction::MedicalNoteView,
                persons: vec![],
            })),
        })
        .unwrap()
    };
    assert_eq!(m.withholds(&audit(1, 60_000)), None);
    assert_eq!(m.withholds(&audit(1, 600_000)), None);
    assert_eq!(
        m.withholds(&audit(2, 90_000)),
        Some(Withheld::Revoked { from: T0 + 90_000 })
    );
    let dep = m.deployment().id();
    let late = seal(&event(1, "S1", 70_000, 1), dep, &key(1)).unwrap();
    assert!(open(&late, &m).is_ok());
}

#[test]
fn manifests_are_checked() {
    let signed = SignedManifest::sign(&manifest(1, vec![]), &admin()).unwrap();
    let bytes = signed.encode();
    let m = SignedManifest::decode(&bytes).unwrap();
    assert_eq!(
        m.fingerprint(),
        SignedManifest::decode(&bytes).unwrap().fingerprint()
    );
    assert_eq!(m.fingerprint().len(), 9);

    // Signed by someone else than the admin named inside.
    assert_eq!(
        SignedManifest::sign(&manifest(1, vec![]), &key(1)).unwrap_err(),
        ManifestError::NotAdmin
    );
    // Any flipped byte breaks it.
    for i in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let mut t = bytes.clone();
        t[i] ^= 0x20;
        assert!(SignedManifest::decode(&t).is_err(), "byte {i}");
    }
    // Updates: same admin, same deployment, newer version.
    let v1_again = SignedManifest::sign(&manifest(1, vec![]), &admin()).unwrap();
    assert!(matches!(
        m.update(&v1_again.encode()),
        Err(ManifestError::NotNewer { .. })
    ));
    let mut other_admin = manifest(2, vec![]);
    other_admin.admin = key(1).device_id();
    let other_admin = SignedManifest::sign(&other_admin, &key(1)).unwrap();
    assert_eq!(
        m.update(&other_admin.encode()),
        Err(ManifestError::AdminChanged)
    );
    let mut other_dep = manifest(2, vec![]);
    other_dep.deployment = deployment(9);
    let other_dep = SignedManifest::sign(&other_dep, &admin()).unwrap();
    assert!(matches!(
        m.update(&other_dep.encode()),
        Err(ManifestError::WrongDeployment { .. })
    ));
    // A device listed twice, or allowed a site the deployment lacks.
    let mut dup = manifest(2, vec![]);
    dup.devices.push(dup.devices[0].clone());
    assert!(matches!(
        SignedManifest::sign(&dup, &admin()),
        Err(ManifestError::DuplicateDevice(_))
    ));
    let mut bad_site = manifest(2, vec![]);
    bad_site.devices[0].sites = vec![site("S9")];
    assert!(matches!(
        SignedManifest::sign(&bad_site, &admin()),
        Err(ManifestError::UnknownSite { .. })
    ));
}

#[test]
fn bundles_are_checked_before_anything_is_read() {
    use kazashi_sync::bundle::{self, BundleBody, BundleError};
    let m = membership();
    let body = |author: &kazashi_sync::DeviceKey, dep: u8, at: u64| BundleBody {
        deployment: kazashi_domain::DeploymentId([dep; 16]),
        author: author.device_id(),
        id: [at as u8; 16],
        created_ms: T0 + at,
        snapshot: true,
        catalog: vec![],
        shards: vec![],
        manifest: None,
    };
    let write = |b: &BundleBody, k: &kazashi_sync::DeviceKey, m: &kazashi_sync::Membership| {
        bundle::write(b, k, m, [42; 64])
    };
    // A relay may carry bundles, and every enrolled laptop can open them.
    let ok = write(&body(&key(9), 1, 0), &key(9), &m).unwrap();
    for n in [1, 2, 3, 9] {
        assert_eq!(bundle::read(&ok, &m, &key(n)).unwrap().author, device(9));
    }
    // Signed by another key than the named author.
    assert_eq!(
        write(&body(&key(1), 1, 0), &key(2), &m),
        Err(BundleError::BadSignature)
    );
    assert_eq!(
        bundle::read(
            &write(&body(&key(1), 2, 0), &key(1), &m).unwrap(),
            &m,
            &key(2)
        ),
        Err(BundleError::WrongDeployment(kazashi_domain::DeploymentId(
            [2; 16]
        )))
    );
    // A stranger can address a bundle to the enrolled laptops (their keys are public), but
    // its signature names a device the manifest does not enrol.
    assert_eq!(
        bundle::read(
            &write(&body(&key(5), 1, 0), &key(5), &m).unwrap(),
            &m,
            &key(1)
        ),
        Err(BundleError::UnknownAuthor(device(5)))
    );
    // Nor can the stranger open a bundle: it is not among the recipients.
    assert_eq!(
        bundle::read(&ok, &m, &key(5)),
        Err(BundleError::NotForThisLaptop)
    );
    let v2 = SignedManifest::sign(
        &manifest(
            2,
            vec![Revocation {
                device: device(2),
                from_ms: T0 + 10,
            }],
        ),
        &admin(),
    )
    .unwrap();
    let m2 = m.update(&v2.encode()).unwrap();
    assert!(
        bundle::read(
            &write(&body(&key(2), 1, 9), &key(2), &m).unwrap(),
            &m2,
            &key(1)
        )
        .is_ok()
    );
    assert_eq!(
        bundle::read(
            &write(&body(&key(2), 1, 10), &key(2), &m).unwrap(),
            &m2,
            &key(1)
        ),
        Err(BundleError::RevokedAuthor(device(2)))
    );
    // Bundles made once the revocation is known are not addressed to the revoked laptop.
    let after = write(&body(&key(1), 1, 20), &key(1), &m2).unwrap();
    assert_eq!(
        bundle::read(&after, &m2, &key(2)),
        Err(BundleError::NotForThisLaptop)
    );
    assert!(bundle::read(&after, &m2, &key(3)).is_ok());
    assert_eq!(
        bundle::read(b"KZBUNDLE1garbage", &m, &key(1))
            .unwrap_err()
            .code(),
        "damaged-bundle"
    );
    assert_eq!(
        bundle::read(b"PK\x03\x04", &m, &key(1)),
        Err(BundleError::NotABundle)
    );
}

#[test]
fn a_bundle_is_unreadable_without_a_key_and_any_change_to_it_is_caught() {
    use kazashi_sync::bundle::{self, BundleBody, BundleError};
    let m = membership();
    let marker = b"\xe9\x81\xbf\xe9\x9b\xa3\xe6\x89\x80 personal data marker".to_vec();
    let shard = kazashi_sync::ShardId {
        site: site("S1"),
        day: kazashi_domain::CivilDate::new(2026, 9, 1).unwrap(),
    };
    let body = BundleBody {
        deployment: m.deployment().id(),
        author: device(1),
        id: [1; 16],
        created_ms: T0,
        snapshot: true,
        catalog: vec![(shard, vec![[3; 32]])],
        shards: vec![(shard, marker.repeat(20))],
        manifest: Some(m.signed().encode()),
    };
    let file = bundle::write(&body, &key(1), &m, [7; 64]).unwrap();
    assert_eq!(bundle::read(&file, &m, &key(2)).unwrap(), body);
    // A bundle of the second format (no manifest) from an earlier Kazashi is refused unless
    // asked for (`--legacy`), then reads.
    let old = bundle::write_second_format(&body, &key(1), &m, [7; 64]).unwrap();
    assert!(old.starts_with(b"KZBUNDLE2"));
    assert!(matches!(
        bundle::read(&old, &m, &key(2)),
        Err(kazashi_sync::BundleError::OldFormat("KZBUNDLE2"))
    ));
    let legacy = bundle::ReadOptions { legacy: true };
    let read_old = bundle::read_with(&old, &m, &key(2), legacy).unwrap();
    assert_eq!(read_old.manifest, None);
    assert_eq!(read_old.shards, body.shards);
    assert!(file.starts_with(b"KZBUNDLE4"));
    // Nothing of the contents shows in the file.
    assert!(!file.windows(marker.len()).any(|w| w == marker.as_slice()));
    assert!(!file.windows(8).any(|w| w == &marker[..8]));
    // Two bundles of the same contents share no ciphertext (fresh keys).
    let again = bundle::write(&body, &key(1), &m, [8; 64]).unwrap();
    assert_ne!(file[file.len() - 64..], again[again.len() - 64..]);
    // Cut short anywhere: named as truncated, or damaged where the header itself is cut.
    for cut in [10, 13, 40, file.len() / 2, file.len() - 1] {
        let e = bundle::read(&file[..cut], &m, &key(2)).unwrap_err();
        assert!(
            matches!(e, BundleError::Truncated { .. } | BundleError::Damaged(_)),
            "cut at {cut}: {e:?}"
        );
    }
    assert!(matches!(
        bundle::read(&file[..file.len() - 1], &m, &key(2)),
        Err(BundleError::Truncated { want, .. }) if want == file.len() as u64
    ));
    // A byte flipped anywhere past the magic is refused.
    for at in (9..file.len()).step_by(7) {
        let mut bad = file.clone();
        bad[at] ^= 0x10;
        assert!(bundle::read(&bad, &m, &key(2)).is_err(), "flip at {at}");
    }
    let mut longer = file.clone();
    longer.push(0);
    assert!(matches!(
        bundle::read(&longer, &m, &key(2)),
        Err(BundleError::Damaged(_))
    ));
}
