//! Purpose keys: X25519 key pairs the administrator makes for the deployment and seals, in
//! every manifest version (from v4), to the devices that hold each purpose.
//!
//! - [`KeyPurpose::Medical`]: 問診票 notes are sealed to it (and to Manager); held by the
//!   laptops the administrator grants (`kazashi deployment grant --holds medical`).
//! - [`KeyPurpose::Manager`]: medical notes and DV/protection details are sealed to it; held by
//!   the laptops granted `--holds manager`.
//! - [`KeyPurpose::Operation`]: the per-operation data key (the purge destroys it, so what was
//!   sealed under it becomes unreadable); held by every enrolled, unrevoked device.
//!
//! A [`SealedKey`] carries the purpose, its public key, an ephemeral X25519 public key and, per
//! holding device, the 32-byte secret wrapped with [`crate::wrap`] (info:
//! `kazashi-purpose-wrap-v1`, then the purpose's code byte and the device id). The secrets live
//! in the administrator's folder only; this crate is handed them and the randomness
//! ([`reseal`]), never draws either. A device unwraps its own with its device key
//! ([`crate::Membership::unseal`]); the secret is wiped when dropped ([`PurposeSecret`]).
//!
//! Revocation drops a device from every holder list at the next version, but the purpose
//! secrets are not rotated: a revoked laptop keeps what it unwrapped before (see
//! docs/security.md).

use crate::identity::DeviceKey;
use crate::wrap;
use kazashi_domain::DeviceId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const PURPOSE_WRAP_TAG: &[u8] = b"kazashi-purpose-wrap-v1";

/// The most devices one purpose is sealed to (a manifest lists far fewer).
pub const MAX_HOLDERS: usize = 4096;

/// What a purpose key is for (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KeyPurpose {
    Medical,
    Manager,
    Operation,
}

impl KeyPurpose {
    pub const ALL: [KeyPurpose; 3] = [
        KeyPurpose::Medical,
        KeyPurpose::Manager,
        KeyPurpose::Operation,
    ];

    /// The byte that names the purpose in wrapping info and sealed notes.
    pub fn byte(self) -> u8 {
        match self {
            KeyPurpose::Medical => 1,
            KeyPurpose::Manager => 2,
            KeyPurpose::Operation => 3,
        }
    }

    /// The word the administrator's commands use.
    pub fn code(self) -> &'static str {
        match self {
            KeyPurpose::Medical => "medical",
            KeyPurpose::Manager => "manager",
            KeyPurpose::Operation => "operation",
        }
    }

    pub fn from_code(s: &str) -> Option<KeyPurpose> {
        KeyPurpose::ALL.into_iter().find(|p| p.code() == s)
    }

    /// Whether the administrator grants it device by device (Operation goes to every device).
    pub fn granted(self) -> bool {
        self != KeyPurpose::Operation
    }
}

/// One device's copy of a purpose secret, wrapped to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub device: DeviceId,
    /// The wrapped secret (48 bytes); empty in a manifest being built, before [`reseal`].
    pub wrapped: Vec<u8>,
}

/// A purpose's public key and its secret sealed to the devices that hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKey {
    pub purpose: KeyPurpose,
    /// The X25519 public key notes are sealed to.
    pub public: [u8; 32],
    /// The ephemeral X25519 public key the wraps were made with.
    pub ephemeral: [u8; 32],
    pub holders: Vec<Holder>,
}

/// A purpose secret in memory, wiped when dropped.
pub struct PurposeSecret(zeroize::Zeroizing<[u8; 32]>);

impl PurposeSecret {
    pub fn new(secret: [u8; 32]) -> Self {
        Self(zeroize::Zeroizing::new(secret))
    }
    /// The secret's bytes (for the administrator's sealed file).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Its X25519 public key.
    pub fn public(&self) -> [u8; 32] {
        wrap::ephemeral_public(*self.0)
    }
}

impl std::fmt::Debug for PurposeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PurposeSecret(..)")
    }
}

fn wrap_id(purpose: KeyPurpose, device: &DeviceId) -> [u8; 33] {
    let mut id = [0u8; 33];
    id[0] = purpose.byte();
    id[1..].copy_from_slice(&device.0);
    id
}

/// Why the sealed keys of a manifest are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurposeError {
    #[error("purpose {0} is listed twice")]
    Twice(&'static str),
    #[error("purpose {0} is sealed to a device the manifest does not list")]
    UnknownHolder(&'static str),
    #[error("purpose {0} is sealed to a device twice, or too many times")]
    Holders(&'static str),
    #[error("purpose {0} has a wrapped secret of the wrong size")]
    Wrapped(&'static str),
}

/// The checks a signed manifest's sealed keys pass: one entry per purpose, holders listed
/// devices, each once, each wrap 48 bytes.
pub fn check(keys: &[SealedKey], devices: &BTreeSet<DeviceId>) -> Result<(), PurposeError> {
    let mut seen = BTreeSet::new();
    for k in keys {
        let name = k.purpose.code();
        if !seen.insert(k.purpose) {
            return Err(PurposeError::Twice(name));
        }
        if k.holders.len() > MAX_HOLDERS {
            return Err(PurposeError::Holders(name));
        }
        let mut holders = BTreeSet::new();
        for h in &k.holders {
            if !devices.contains(&h.device) {
                return Err(PurposeError::UnknownHolder(name));
            }
            if !holders.insert(h.device) {
                return Err(PurposeError::Holders(name));
            }
            if h.wrapped.len() != wrap::WRAPPED_LEN {
                return Err(PurposeError::Wrapped(name));
            }
        }
    }
    Ok(())
}

/// Rebuild `keys` for the devices `active` (enrolled, unrevoked): every purpose whose secret is
/// in `secrets` gets its public key and fresh wraps — Operation for every active device, the
/// granted purposes for the active devices already listed as holders in `keys` (a grant adds a
/// [`Holder`] with empty `wrapped` before this runs). `eph_secret`: 32 fresh random bytes.
pub fn reseal(
    keys: &[SealedKey],
    active: &[DeviceId],
    secrets: &[(KeyPurpose, &PurposeSecret)],
    eph_secret: [u8; 32],
) -> Vec<SealedKey> {
    let ephemeral = wrap::ephemeral_public(eph_secret);
    let mut out = Vec::new();
    for (purpose, secret) in secrets {
        let listed: BTreeSet<DeviceId> = keys
            .iter()
            .filter(|k| k.purpose == *purpose)
            .flat_map(|k| k.holders.iter().map(|h| h.device))
            .collect();
        let mut holders = Vec::new();
        for device in active {
            if purpose.granted() && !listed.contains(device) {
                continue;
            }
            if holders.iter().any(|h: &Holder| h.device == *device) {
                continue;
            }
            let Some(public) = wrap::device_public(device) else {
                continue;
            };
            let id = wrap_id(*purpose, device);
            let Some(wrapped) =
                wrap::wrap(eph_secret, &public, PURPOSE_WRAP_TAG, &id, secret.bytes())
            else {
                continue;
            };
            holders.push(Holder {
                device: *device,
                wrapped,
            });
        }
        if out.iter().any(|k: &SealedKey| k.purpose == *purpose) {
            continue;
        }
        out.push(SealedKey {
            purpose: *purpose,
            public: secret.public(),
            ephemeral,
            holders,
        });
    }
    out
}

/// `me`'s copy of the secret of `key`, if `me` holds it and it opens.
pub(crate) fn unseal(key: &SealedKey, me: &DeviceKey) -> Option<PurposeSecret> {
    let device = me.device_id();
    let holder = key.holders.iter().find(|h| h.device == device)?;
    let id = wrap_id(key.purpose, &device);
    let secret = wrap::unwrap_key(
        me.x25519_scalar(),
        &key.ephemeral,
        PURPOSE_WRAP_TAG,
        &id,
        &holder.wrapped,
    )?;
    let secret = PurposeSecret::new(*secret);
    // A secret that does not match the public key would seal notes nobody can read.
    (secret.public() == key.public).then_some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reseal_wraps_operation_to_all_and_granted_purposes_to_their_holders() {
        let devices: Vec<DeviceKey> = (1..=3u8).map(|n| DeviceKey::from_seed([n; 32])).collect();
        let ids: Vec<DeviceId> = devices.iter().map(DeviceKey::device_id).collect();
        let medical = PurposeSecret::new([11; 32]);
        let op = PurposeSecret::new([12; 32]);
        let grant = vec![SealedKey {
            purpose: KeyPurpose::Medical,
            public: [0; 32],
            ephemeral: [0; 32],
            holders: vec![Holder {
                device: ids[1],
                wrapped: vec![],
            }],
        }];
        let secrets = [
            (KeyPurpose::Medical, &medical),
            (KeyPurpose::Operation, &op),
        ];
        let keys = reseal(&grant, &ids, &secrets, [5; 32]);
        check(&keys, &ids.iter().copied().collect()).unwrap();
        let med = keys
            .iter()
            .find(|k| k.purpose == KeyPurpose::Medical)
            .unwrap();
        assert_eq!(med.holders.len(), 1);
        assert_eq!(unseal(med, &devices[1]).unwrap().bytes(), &[11; 32]);
        assert!(unseal(med, &devices[0]).is_none());
        let opk = keys
            .iter()
            .find(|k| k.purpose == KeyPurpose::Operation)
            .unwrap();
        for d in &devices {
            assert_eq!(unseal(opk, d).unwrap().bytes(), &[12; 32]);
        }
        // A device dropped from the active list (revoked) loses every wrap at the next reseal.
        let keys = reseal(&keys, &ids[..1], &secrets, [6; 32]);
        let med = keys
            .iter()
            .find(|k| k.purpose == KeyPurpose::Medical)
            .unwrap();
        assert!(med.holders.is_empty());
        // Another device's wrap copied under a holder's name does not open.
        let mut forged = keys[1].clone();
        forged.holders[0].device = ids[2];
        assert!(unseal(&forged, &devices[2]).is_none());
        // Checks: an unknown holder, a bad wrap, a purpose twice.
        let only0: BTreeSet<DeviceId> = [ids[0]].into_iter().collect();
        assert!(matches!(
            check(std::slice::from_ref(&forged), &only0),
            Err(PurposeError::UnknownHolder(_))
        ));
        let mut bad = keys.clone();
        bad[1].holders[0].wrapped.pop();
        assert!(matches!(check(&bad, &only0), Err(PurposeError::Wrapped(_))));
        let twice = [keys[1].clone(), keys[1].clone()];
        assert!(matches!(check(&twice, &only0), Err(PurposeError::Twice(_))));
    }
}
