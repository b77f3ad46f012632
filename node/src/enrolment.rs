//! A fresh laptop's side of enrolment: the device key, the request the administrator approves,
//! and installing a signed manifest into the store.
//!
//! 1. [`request`]: a device key from the operating system's random source, a new store
//!    (`kazashi.db`, Argon2id at [`KdfParams::STANDARD`]) under the laptop's passphrase holding
//!    it (asked again before a manifest is installed: the same key), and `enrol-request.json`
//!    in the folder: the device id, a label, the [`fingerprint`]
//!    and the device's signature over them (so a request cannot name a key its sender does not
//!    hold). The operator reads the fingerprint out; the administrator types it into
//!    `kazashi deployment approve`.
//! 2. [`install`]: a signed manifest (from `manifest.kzm`) is verified, must list this device,
//!    and passes [`accept`] against the installed one; the first one also needs the deployment
//!    key's fingerprint, read out by the administrator and typed (later ones must carry the
//!    same key); then the manifest and the `site` setting
//!    are written in one transaction.
//!
//! **Which manifest wins** ([`accept`], the one rule every install and adoption goes through,
//! `kazashi_sync::manifest::Membership::precedence`): a manifest of another deployment or
//! another administrator key is refused; a higher version replaces the installed one; a lower
//! version is a rollback and refused; the same version with the same bytes is already
//! installed (nothing to do); the same version with other bytes is a conflict (two
//! administrators signed version N apart, or the key was restored on a second laptop): the one
//! whose signed bytes have the lower SHA-256 wins — it replaces the installed one, or the
//! installed one stays and the other is refused as a conflict. Every laptop decides the same
//! whatever the order the manifests reach it, so all that have seen the same manifests hold the
//! same one.
//!
//! **A newer manifest on a running laptop** ([`Node::adopt_manifest`]) takes effect at once:
//! the staff list and the closed flag are read from the manifest in force on every call; the
//! station's sites and this laptop's site are swapped in (the site stays if the laptop's entry
//! still allows it, otherwise the entry's first site, written to the store with the manifest);
//! a revocation of this laptop or a closing stops its writes ([`Node::write_block`]).

use crate::clock::Clock;
use crate::enrolled::{Folder, META_SITE};
pub use crate::fingerprint::{FINGERPRINT_DIGITS, fingerprint};
use crate::node::{ManifestRefusal, Node, NodeError};
use crate::store::{KdfParams, Store, StoreError, random_bytes};
use kazashi_domain::{DeploymentId, DeviceId, SiteId};
use kazashi_sync::manifest::ManifestError;
use kazashi_sync::{DeviceKey, Membership, SignedManifest};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// The request file a laptop writes into its folder.
pub const REQUEST_FILE: &str = "enrol-request.json";
const REQUEST_FORMAT: &str = "kazashi-enrol-request-v1";
const REQUEST_TAG: &[u8] = b"kazashi-enrol-request-v1";
/// An enrolment request, as written to `enrol-request.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub format: String,
    /// The device's public key, hex.
    pub device: String,
    /// A name for people ("第一小学校 受付1").
    pub label: String,
    pub fingerprint: String,
    /// The device's signature over format, device and label, hex.
    pub signature: String,
}

fn request_message(device: &DeviceId, label: &str) -> Vec<u8> {
    let mut m = REQUEST_TAG.to_vec();
    m.extend_from_slice(&device.0);
    m.extend_from_slice(label.as_bytes());
    m
}

/// Why a request, an enrolment or an install was refused. Nothing was changed when one is
/// returned.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("{0} holds a laptop that is enrolled already (its manifest is installed)")]
    Exists(PathBuf),
    #[error("no store in {0}: run kazashi enrol --dir first")]
    NoStore(PathBuf),
    #[error("the store has no device key")]
    NoKey,
    #[error("the passphrase must have at least 8 characters")]
    ShortPassphrase,
    #[error("the request is malformed: {0}")]
    BadRequest(String),
    #[error("the request's signature does not verify with its device key")]
    BadRequestSignature,
    #[error("the request's fingerprint does not match its device key")]
    RequestFingerprint,
    #[error("the manifest")]
    Manifest(#[source] ManifestError),
    #[error("the manifest is for deployment {found}, but this laptop is in {installed}")]
    WrongDeployment {
        installed: DeploymentId,
        found: DeploymentId,
    },
    #[error("the manifest is signed by another administrator key than the installed one")]
    AdminChanged,
    #[error("the manifest's version {found} is older than the installed {installed}: refused")]
    Rollback { installed: u32, found: u32 },
    #[error(
        "conflict: another manifest with version {0} is installed (two administrators signed version {0}); the installed one wins (its signed bytes have the lower SHA-256, the rule on every laptop) — the administrator must sign a newer version"
    )]
    Conflict(u32),
    #[error("this laptop ({0}) is not in the manifest: the administrator has not approved it")]
    NotListed(String),
    #[error("this laptop ({0}) is revoked in the manifest")]
    Revoked(String),
    #[error("site {0} is not one this laptop's manifest entry allows")]
    BadSite(String),
    #[error("the manifest entry names {0} sites: choose one with --site")]
    ChooseSite(usize),
    #[error(
        "the first manifest needs the deployment key's fingerprint as the administrator reads it out (--admin-fingerprint)"
    )]
    AdminUnconfirmed,
    #[error(
        "the manifest's deployment key does not have the fingerprint {0}: refused (not your administrator's manifest, or mistyped)"
    )]
    AdminFingerprint(String),
    #[error("the store")]
    Store(#[from] StoreError),
    #[error("file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the update pin (the deployment key, for signed updates) could not be written")]
    UpdatePin(#[source] Box<crate::update_pin::PinError>),
}

impl Request {
    /// The device the request is for, once its fingerprint and signature check out.
    pub fn verify(&self) -> Result<DeviceId, EnrolError> {
        if self.format != REQUEST_FORMAT {
            return Err(EnrolError::BadRequest(
                "not a Kazashi enrolment request".into(),
            ));
        }
        let device = DeviceId::from_hex(&self.device)
            .map_err(|e| EnrolError::BadRequest(format!("device: {e}")))?;
        if fingerprint(&device) != self.fingerprint {
            return Err(EnrolError::RequestFingerprint);
        }
        let sig = hex::decode(&self.signature)
            .map_err(|_| EnrolError::BadRequest("signature is not hex".into()))?;
        if !kazashi_sync::identity::verify(&device, &request_message(&device, &self.label), &sig) {
            return Err(EnrolError::BadRequestSignature);
        }
        Ok(device)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, EnrolError> {
        serde_json::from_slice(bytes).map_err(|e| EnrolError::BadRequest(e.to_string()))
    }
}

/// Start enrolling the laptop of `folder`: a new device key from the operating system, a new
/// store holding it under `passphrase`, and the request file. On a store that has a key and no
/// manifest yet (the request was lost, or the fingerprint is to be read out again) the request
/// is written again for the same key; a store with a manifest installed is refused.
pub fn request(folder: &Folder, passphrase: &str, label: &str) -> Result<Request, EnrolError> {
    let path = folder.store_path();
    if passphrase.chars().count() < 8 && !path.exists() {
        return Err(EnrolError::ShortPassphrase);
    }
    kazashi_domain::text::Label::new(label)
        .map_err(|e| EnrolError::BadRequest(format!("label: {e}")))?;
    let key = if path.exists() {
        let store = Store::open(&path, passphrase)?;
        if store.manifest()?.is_some() {
            return Err(EnrolError::Exists(folder.dir.clone()));
        }
        match store.identity()? {
            Some(k) => k,
            None => {
                let k = DeviceKey::from_seed(*Zeroizing::new(random_bytes::<32>()?));
                store.set_identity(&k)?;
                k
            }
        }
    } else {
        std::fs::create_dir_all(&folder.dir).map_err(|source| EnrolError::Io {
            path: folder.dir.clone(),
            source,
        })?;
        let k = DeviceKey::from_seed(*Zeroizing::new(random_bytes::<32>()?));
        let store = Store::create(&path, passphrase, KdfParams::STANDARD)?;
        store.set_identity(&k)?;
        k
    };
    let device = key.device_id();
    let req = Request {
        format: REQUEST_FORMAT.into(),
        device: device.to_hex(),
        label: label.to_owned(),
        fingerprint: fingerprint(&device),
        signature: hex::encode(key.sign(&request_message(&device, label))),
    };
    let req_path = folder.dir.join(REQUEST_FILE);
    let json =
        serde_json::to_vec_pretty(&req).map_err(|e| EnrolError::BadRequest(e.to_string()))?;
    crate::store::write_atomic(&req_path, &json).map_err(|source| EnrolError::Io {
        path: req_path,
        source,
    })?;
    Ok(req)
}

/// What [`accept`] decided.
#[derive(Debug)]
pub enum Accepted {
    /// Newer than the installed one (or the first): install it.
    Newer(Membership),
    /// Byte for byte the installed one.
    Same(Membership),
}

/// The rule for a manifest arriving at a laptop that holds `installed` (see the module docs).
pub fn accept(installed: Option<&[u8]>, incoming: &[u8]) -> Result<Accepted, EnrolError> {
    use kazashi_sync::manifest::Precedence;
    let next = SignedManifest::decode(incoming).map_err(EnrolError::Manifest)?;
    let Some(installed) = installed else {
        return Ok(Accepted::Newer(next));
    };
    let current = SignedManifest::decode(installed).map_err(EnrolError::Manifest)?;
    match current.precedence(&next) {
        Err(ManifestError::WrongDeployment { expected, found }) => {
            Err(EnrolError::WrongDeployment {
                installed: expected,
                found,
            })
        }
        Err(ManifestError::AdminChanged) => Err(EnrolError::AdminChanged),
        Err(e) => Err(EnrolError::Manifest(e)),
        Ok(Precedence::Newer | Precedence::ConflictWins) => Ok(Accepted::Newer(next)),
        Ok(Precedence::Same) => Ok(Accepted::Same(next)),
        Ok(Precedence::Older) => Err(EnrolError::Rollback {
            installed: current.version(),
            found: next.version(),
        }),
        Ok(Precedence::ConflictLoses) => Err(EnrolError::Conflict(current.version())),
    }
}

/// Where this laptop works under `members`: `current` if its entry (or, without an entry, the
/// deployment) still allows it, otherwise the entry's first site, otherwise the deployment's
/// first. `None` only for a deployment without sites.
pub fn site_under(members: &Membership, device: &DeviceId, current: SiteId) -> Option<SiteId> {
    let d = members.deployment();
    let entry_sites = members
        .device(device)
        .map(|e| e.sites.clone())
        .unwrap_or_default();
    if entry_sites.is_empty() {
        if d.site(&current).is_some() {
            return Some(current);
        }
        return d.sites().next().map(|s| s.id);
    }
    if entry_sites.contains(&current) {
        return Some(current);
    }
    entry_sites.first().copied()
}

pub use crate::node::Adopted;

impl<C: Clock> Node<C> {
    /// A signed manifest from a peer (the mesh) for this running node: [`accept`] against
    /// the one in force. A newer one is written to the store in one synced transaction and
    /// swapped in memory at once, so the envelope checks, the bundles' recipients and the
    /// greeting use it from the next call on; the same one is a no-op; anything else (invalid
    /// signature, another deployment or administrator, a rollback, a conflict it loses) is
    /// refused with nothing changed. The new staff list, closed flag, sites and this laptop's
    /// site apply at once (module docs); the roster pin shows in `Node::pinned_roster` and is
    /// switched to when the pinned roster is in hand.
    ///
    /// A manifest that revokes this very laptop is adopted too: the cut-off is the
    /// administrator's word. The laptop keeps running and keeps what it holds, but every
    /// laptop holding the new version (this one included) refuses its connections and its
    /// events stamped from the cut-off on; what it wrote before stays.
    pub fn adopt_manifest(&mut self, bytes: &[u8]) -> Result<Adopted, NodeError> {
        let installed = self.membership().signed().encode();
        let next = match accept(Some(&installed), bytes) {
            Ok(Accepted::Newer(m)) => m,
            Ok(Accepted::Same(_)) => return Ok(Adopted::Same),
            Err(e) => return Err(NodeError::ManifestRefused(refusal(e))),
        };
        let me = self.device();
        let revokes_me = next.device(&me).is_none() || next.revoked_from(&me).is_some();
        let version = next.version();
        let current = self.station().site();
        let site = site_under(&next, &me, current).unwrap_or(current);
        let moved = site.as_str().as_bytes().to_vec();
        let meta: Vec<(&str, &[u8])> = if site == current {
            Vec::new()
        } else {
            vec![(META_SITE, &moved)]
        };
        self.replace_membership_at(next, bytes, site, &meta)?;
        Ok(Adopted::Newer {
            version,
            revokes_me,
        })
    }
}

/// [`accept`]'s refusal, as the node reports it.
fn refusal(e: EnrolError) -> ManifestRefusal {
    match e {
        EnrolError::WrongDeployment { .. } => ManifestRefusal::OtherDeployment,
        EnrolError::AdminChanged => ManifestRefusal::OtherAdmin,
        EnrolError::Rollback { installed, found } => ManifestRefusal::Rollback { installed, found },
        EnrolError::Conflict(v) => ManifestRefusal::Conflict(v),
        other => ManifestRefusal::Invalid(other.to_string()),
    }
}

/// What an install did.
#[derive(Debug)]
pub struct Installed {
    pub members: Membership,
    pub site: SiteId,
    /// False when this exact manifest was installed already.
    pub changed: bool,
}

/// Install the signed manifest `bytes` into the store of `folder` (see the module docs). `site`
/// chooses among the sites the device's entry allows; without it the entry must name one.
pub fn install(
    folder: &Folder,
    passphrase: &str,
    bytes: &[u8],
    site: Option<SiteId>,
    admin_fingerprint: Option<&str>,
) -> Result<Installed, EnrolError> {
    let path = folder.store_path();
    if !path.exists() {
        return Err(EnrolError::NoStore(folder.dir.clone()));
    }
    let mut store = Store::open(&path, passphrase)?;
    let key = store.identity()?.ok_or(EnrolError::NoKey)?;
    let device = key.device_id();
    let installed = store.manifest()?;
    let (members, changed) = match accept(installed.as_deref(), bytes)? {
        Accepted::Newer(m) => (m, true),
        Accepted::Same(m) => (m, false),
    };
    // The first manifest is trusted only on the administrator's word: the deployment key's
    // fingerprint, read out and typed. Later ones must carry the same key (`accept`).
    let digits = |s: &str| -> String { s.chars().filter(char::is_ascii_digit).collect() };
    let admin = fingerprint(&members.manifest().admin);
    match admin_fingerprint {
        Some(typed) if digits(typed) != digits(&admin) => {
            return Err(EnrolError::AdminFingerprint(typed.trim().to_owned()));
        }
        None if installed.is_none() => return Err(EnrolError::AdminUnconfirmed),
        _ => {}
    }
    let entry = members
        .device(&device)
        .ok_or_else(|| EnrolError::NotListed(device.short()))?;
    if members.revoked_from(&device).is_some() {
        return Err(EnrolError::Revoked(device.short()));
    }
    let allowed: Vec<SiteId> = if entry.sites.is_empty() {
        members.deployment().sites().map(|s| s.id).collect()
    } else {
        entry.sites.clone()
    };
    let current_site = store
        .get_meta(META_SITE)?
        .and_then(|b| SiteId::new(&String::from_utf8_lossy(&b)).ok());
    let site = match (site, allowed.as_slice()) {
        (Some(s), _) if allowed.contains(&s) => s,
        (Some(s), _) => return Err(EnrolError::BadSite(s.to_string())),
        (None, [one]) => *one,
        (None, _) => match current_site {
            Some(s) if allowed.contains(&s) => s,
            _ => return Err(EnrolError::ChooseSite(allowed.len())),
        },
    };
    // The deployment key, verified and confirmed above, as the public file root trusts for
    // signed updates (`update_pin`): written before the manifest, so a laptop holding a
    // manifest holds its pin.
    crate::update_pin::write_in(
        &folder.dir,
        &crate::update_pin::Pin {
            deployment: members.deployment().id(),
            admin: members.manifest().admin,
        },
    )
    .map_err(|e| EnrolError::UpdatePin(Box::new(e)))?;
    if changed || current_site != Some(site) {
        store.install_manifest(bytes, &[(META_SITE, site.as_str().as_bytes())])?;
    }
    Ok(Installed {
        members,
        site,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kazashi_domain::deployment::DeploymentKind;
    use kazashi_domain::ids::RosterHash;
    use kazashi_domain::text::Label;
    use kazashi_domain::{Deployment, Site, SiteKind};
    use kazashi_sync::{DeviceEntry, Manifest, Role};

    fn manifest(admin: &DeviceKey, dep: u8, version: u32, devices: &[DeviceId]) -> Vec<u8> {
        let site = Site {
            id: SiteId::new("S1").unwrap(),
            name: Label::new("第一小学校").unwrap(),
            kind: SiteKind::CommandCenter,
        };
        let m = Manifest {
            version,
            deployment: Deployment::new(
                DeploymentId([dep; 16]),
                Label::new("test").unwrap(),
                DeploymentKind::ShelterOperation,
                RosterHash([0; 32]),
                vec![site],
            )
            .unwrap(),
            admin: admin.device_id(),
            devices: devices
                .iter()
                .map(|d| DeviceEntry {
                    device: *d,
                    role: Role::Station,
                    label: Label::new("laptop").unwrap(),
                    sites: vec![],
                })
                .collect(),
            revoked: vec![],
            staff: vec![],
            closed_at: None,
            card_cas: vec![],
            sealed_keys: Vec::new(),
            retention_days: None,
            receipt_slips: false,
        };
        SignedManifest::sign(&m, admin).unwrap().encode()
    }

    #[test]
    fn fingerprints_are_long_grouped_and_stable() {
        let a = DeviceKey::from_seed([1; 32]).device_id();
        let b = DeviceKey::from_seed([2; 32]).device_id();
        let f = fingerprint(&a);
        assert_eq!(f, fingerprint(&a));
        assert_ne!(f, fingerprint(&b));
        let digits: String = f.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(digits.len(), FINGERPRINT_DIGITS);
        assert!(FINGERPRINT_DIGITS as f64 * 10f64.log2() >= 80.0);
        assert!(f.split(' ').all(|g| g.len() == 4), "{f}");
        // Pinned: the fingerprint of a key must never change between releases.
        assert_eq!(f, FINGERPRINT_SEED1);
    }
    const FINGERPRINT_SEED1: &str = "7213 4346 1453 0432 7901 2571 0163";

    #[test]
    fn versions_only_grow_and_conflicts_go_to_the_lower_digest() {
        let admin = DeviceKey::from_seed([9; 32]);
        let other_admin = DeviceKey::from_seed([8; 32]);
        let d1 = DeviceKey::from_seed([1; 32]).device_id();
        let d2 = DeviceKey::from_seed([2; 32]).device_id();
        let v1 = manifest(&admin, 1, 1, &[d1]);
        let v2 = manifest(&admin, 1, 2, &[d1]);
        let v2_other = manifest(&admin, 1, 2, &[d1, d2]);
        assert!(matches!(accept(None, &v1), Ok(Accepted::Newer(m)) if m.version() == 1));
        assert!(matches!(accept(Some(&v1), &v2), Ok(Accepted::Newer(m)) if m.version() == 2));
        assert!(matches!(accept(Some(&v2), &v2), Ok(Accepted::Same(_))));
        assert!(matches!(
            accept(Some(&v2), &v1),
            Err(EnrolError::Rollback {
                installed: 2,
                found: 1
            })
        ));
        // Two administrators signed version 2 apart: the lower SHA-256 of the signed bytes
        // wins, whichever a laptop holds first.
        let digest = |b: &[u8]| SignedManifest::decode(b).unwrap().digest();
        let (low, high) = if digest(&v2) < digest(&v2_other) {
            (&v2, &v2_other)
        } else {
            (&v2_other, &v2)
        };
        assert!(matches!(
            accept(Some(high), low),
            Ok(Accepted::Newer(m)) if m.digest() == digest(low)
        ));
        assert!(matches!(
            accept(Some(low), high),
            Err(EnrolError::Conflict(2))
        ));
        // A higher version wins whatever its content.
        let v3 = manifest(&admin, 1, 3, &[d2]);
        assert!(matches!(
            accept(Some(&v2_other), &v3),
            Ok(Accepted::Newer(_))
        ));
        // Another deployment, another administrator, a tampered file.
        assert!(matches!(
            accept(Some(&v1), &manifest(&admin, 2, 5, &[d1])),
            Err(EnrolError::WrongDeployment { .. })
        ));
        assert!(matches!(
            accept(Some(&v1), &manifest(&other_admin, 1, 5, &[d1])),
            Err(EnrolError::AdminChanged)
        ));
        let mut bad = v3.clone();
        let n = bad.len();
        bad[n / 2] ^= 1;
        assert!(matches!(
            accept(Some(&v1), &bad),
            Err(EnrolError::Manifest(_))
        ));
    }

    #[test]
    fn install_checks_before_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::new(dir.path().join("laptop"));
        let req = request(&folder, "laptop passphrase", "受付1").unwrap();
        let device = req.verify().unwrap();
        let saved = Request::parse(&std::fs::read(folder.dir.join(REQUEST_FILE)).unwrap()).unwrap();
        assert_eq!(saved, req);
        // Asked again before any manifest: the same key, the request written again.
        std::fs::remove_file(folder.dir.join(REQUEST_FILE)).unwrap();
        let again = request(&folder, "laptop passphrase", "受付1").unwrap();
        assert_eq!(again, req);
        assert!(matches!(
            request(&folder, "wrong passphrase", "受付1"),
            Err(EnrolError::Store(StoreError::WrongPassphrase))
        ));
        // A request whose label or key was changed does not verify.
        let mut forged = req.clone();
        forged.label = "本部".into();
        assert!(matches!(
            forged.verify(),
            Err(EnrolError::BadRequestSignature)
        ));
        let admin = DeviceKey::from_seed([9; 32]);
        let admin_fp = fingerprint(&admin.device_id());
        let other = DeviceKey::from_seed([1; 32]).device_id();
        // Not listed: refused, nothing installed.
        let v1 = manifest(&admin, 1, 1, &[other]);
        assert!(matches!(
            install(&folder, "laptop passphrase", &v1, None, Some(&admin_fp)),
            Err(EnrolError::NotListed(_))
        ));
        let store = Store::open(&folder.store_path(), "laptop passphrase").unwrap();
        assert_eq!(store.manifest().unwrap(), None);
        drop(store);
        assert!(matches!(
            install(&folder, "wrong passphrase", &v1, None, Some(&admin_fp)),
            Err(EnrolError::Store(StoreError::WrongPassphrase))
        ));
        let v2 = manifest(&admin, 1, 2, &[other, device]);
        assert!(matches!(
            install(&folder, "laptop passphrase", &v2, None, None),
            Err(EnrolError::AdminUnconfirmed)
        ));
        let rogue = fingerprint(&DeviceKey::from_seed([3; 32]).device_id());
        assert!(matches!(
            install(&folder, "laptop passphrase", &v2, None, Some(&rogue)),
            Err(EnrolError::AdminFingerprint(_))
        ));
        let done = install(&folder, "laptop passphrase", &v2, None, Some(&admin_fp)).unwrap();
        assert!(done.changed);
        assert_eq!(done.site.as_str(), "S1");
        let v1_listed = manifest(&admin, 1, 1, &[device]);
        assert!(matches!(
            install(&folder, "laptop passphrase", &v1_listed, None, None),
            Err(EnrolError::Rollback { .. })
        ));
        let store = Store::open(&folder.store_path(), "laptop passphrase").unwrap();
        assert_eq!(store.manifest().unwrap(), Some(v2.clone()));
        assert_eq!(store.get_meta(META_SITE).unwrap(), Some(b"S1".to_vec()));
        drop(store);
        assert!(
            !install(&folder, "laptop passphrase", &v2, None, None)
                .unwrap()
                .changed
        );
        assert!(matches!(
            request(&folder, "laptop passphrase", "受付1"),
            Err(EnrolError::Exists(_))
        ));
    }
}
