//! Deployment manifests and membership.
//!
//! An operation (a flood, an election) is created by an administrator with an ed25519 key. The
//! manifest names the deployment (id, kind, sites, roster hash), the administrator's public key
//! and every enrolled device with its role; the administrator signs it. A laptop enrols by
//! importing the manifest (a file from USB) and checking its fingerprint against the one the
//! administrator reads out. Later manifests — a new laptop, a revoked one — must carry the same
//! deployment and administrator key and a higher version.

use crate::identity::{DeviceKey, signed_bytes, verify};
use kazashi_domain::text::Label;
use kazashi_domain::{Deployment, DeploymentId, DeviceId, Millis, SiteId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const MANIFEST_TAG: &[u8] = b"kazashi-manifest-v1";

/// What an enrolled device may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A laptop at a shelter or polling station: writes events for its sites.
    Station,
    /// Headquarters (災害対策本部 / 選挙管理委員会): writes alert resolutions, assertions and
    /// events for any site.
    CommandCenter,
    /// Carries data between sites (a USB courier's laptop): writes nothing.
    Relay,
}

/// One enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEntry {
    pub device: DeviceId,
    pub role: Role,
    /// A name for people ("第一小学校 受付1").
    pub label: Label,
    /// The sites a station may write for (empty: any site of the deployment).
    pub sites: Vec<SiteId>,
}

/// A revoked device: everything it signed with an HLC time at or after `from_ms` is refused.
/// Set `from_ms` to the last moment the laptop was known to be in trusted hands. The rule
/// depends only on the event and the manifest, so every node that holds the same manifest
/// accepts the same events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub device: DeviceId,
    pub from_ms: Millis,
}

/// The content of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Increases with every reissue.
    pub version: u32,
    pub deployment: Deployment,
    /// The administrator's public key.
    pub admin: DeviceId,
    pub devices: Vec<DeviceEntry>,
    pub revoked: Vec<Revocation>,
}

/// A manifest with its administrator's signature, as carried on USB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedManifest {
    manifest: Vec<u8>,
    signature: Vec<u8>,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest file is malformed: {0}")]
    Malformed(String),
    #[error("the manifest's signature does not verify with its administrator key")]
    BadSignature,
    #[error("the manifest was signed by a key other than the manifest's administrator")]
    NotAdmin,
    #[error("the manifest is for another deployment ({found}), not {expected}")]
    WrongDeployment {
        expected: DeploymentId,
        found: DeploymentId,
    },
    #[error("the manifest names a different administrator key than the enrolled one")]
    AdminChanged,
    #[error("the manifest's version {found} is not newer than the current {current}")]
    NotNewer { current: u32, found: u32 },
    #[error("device {0} is listed twice")]
    DuplicateDevice(DeviceId),
    #[error("device {device} may write for site {site}, which is not in the deployment")]
    UnknownSite { device: DeviceId, site: SiteId },
}

impl SignedManifest {
    /// Sign `manifest` with the administrator key (which must be `manifest.admin`).
    pub fn sign(manifest: &Manifest, admin: &DeviceKey) -> Result<Self, ManifestError> {
        if admin.device_id() != manifest.admin {
            return Err(ManifestError::NotAdmin);
        }
        check(manifest)?;
        let bytes =
            postcard::to_allocvec(manifest).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        let signature = admin.sign(&signed_bytes(MANIFEST_TAG, &[&bytes])).to_vec();
        Ok(Self {
            manifest: bytes,
            signature,
        })
    }

    /// The file's bytes: postcard's layout of the two byte strings (each a varint length,
    /// then the bytes), written by hand because it cannot fail.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.manifest.len() + self.signature.len() + 10);
        crate::wire::put_bytes(&mut out, &self.manifest);
        crate::wire::put_bytes(&mut out, &self.signature);
        out
    }

    /// Decode and verify against the administrator key inside. Whether that key is the right
    /// one is for the person enrolling to confirm, by the fingerprint.
    pub fn decode(bytes: &[u8]) -> Result<Membership, ManifestError> {
        let signed: SignedManifest =
            postcard::from_bytes(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        let manifest: Manifest = postcard::from_bytes(&signed.manifest)
            .map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if !verify(
            &manifest.admin,
            &signed_bytes(MANIFEST_TAG, &[&signed.manifest]),
            &signed.signature,
        ) {
            return Err(ManifestError::BadSignature);
        }
        check(&manifest)?;
        Ok(Membership::new(manifest, signed))
    }
}

fn check(m: &Manifest) -> Result<(), ManifestError> {
    let mut seen = std::collections::BTreeSet::new();
    for d in &m.devices {
        if !seen.insert(d.device) {
            return Err(ManifestError::DuplicateDevice(d.device));
        }
        if let Some(site) = d.sites.iter().find(|s| m.deployment.site(s).is_none()) {
            return Err(ManifestError::UnknownSite {
                device: d.device,
                site: *site,
            });
        }
    }
    Ok(())
}

/// The verified manifest in force, indexed for envelope checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    manifest: Manifest,
    signed: SignedManifest,
    devices: BTreeMap<DeviceId, DeviceEntry>,
    revoked: BTreeMap<DeviceId, Millis>,
}

impl Membership {
    fn new(manifest: Manifest, signed: SignedManifest) -> Self {
        let devices = manifest
            .devices
            .iter()
            .map(|d| (d.device, d.clone()))
            .collect();
        let mut revoked: BTreeMap<DeviceId, Millis> = BTreeMap::new();
        for r in &manifest.revoked {
            let e = revoked.entry(r.device).or_insert(r.from_ms);
            *e = (*e).min(r.from_ms);
        }
        Self {
            manifest,
            signed,
            devices,
            revoked,
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    pub fn deployment(&self) -> &Deployment {
        &self.manifest.deployment
    }
    pub fn version(&self) -> u32 {
        self.manifest.version
    }
    /// The signed file, to pass on to another laptop.
    pub fn signed(&self) -> &SignedManifest {
        &self.signed
    }
    pub fn device(&self, id: &DeviceId) -> Option<&DeviceEntry> {
        self.devices.get(id)
    }
    /// From when a device's events are refused, if it is revoked.
    pub fn revoked_from(&self, id: &DeviceId) -> Option<Millis> {
        self.revoked.get(id).copied()
    }

    /// Eight hex digits of the SHA-256 of the signed manifest, in two groups, for the
    /// administrator to read out and the enrolling operator to compare ("3fa2-91c0").
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.signed.encode());
        let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}",
            hex.get(..4).unwrap_or(""),
            hex.get(4..).unwrap_or("")
        )
    }

    /// Take a newer manifest of the same deployment from the same administrator.
    pub fn update(&self, bytes: &[u8]) -> Result<Membership, ManifestError> {
        let next = SignedManifest::decode(bytes)?;
        if next.deployment().id() != self.deployment().id() {
            return Err(ManifestError::WrongDeployment {
                expected: self.deployment().id(),
                found: next.deployment().id(),
            });
        }
        if next.manifest.admin != self.manifest.admin {
            return Err(ManifestError::AdminChanged);
        }
        if next.version() <= self.version() {
            return Err(ManifestError::NotNewer {
                current: self.version(),
                found: next.version(),
            });
        }
        Ok(next)
    }
}

#[cfg(test)]
mod encoding {
    use super::*;

    #[test]
    fn the_hand_encoding_is_postcards_for_any_length() {
        for (m, s) in [
            (0usize, 0usize),
            (1, 64),
            (127, 128),
            (128, 64),
            (300, 64),
            (20_000, 64),
        ] {
            let signed = SignedManifest {
                manifest: (0..m).map(|i| (i * 7) as u8).collect(),
                signature: vec![0xAB; s],
            };
            assert_eq!(
                signed.encode(),
                postcard::to_allocvec(&signed).unwrap(),
                "{m} {s}"
            );
        }
    }
}
