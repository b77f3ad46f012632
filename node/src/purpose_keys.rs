//! The administrator's purpose secrets (medical, manager, operation; see
//! `kazashi_sync::purpose`), kept in the deployment folder as `purpose-keys.kzk`.
//!
//! Each secret is 32 bytes from the operating system's random source, made once (at
//! `deployment init`, or at the first new manifest version of a folder made before v4 manifests).
//! The file is sealed with ChaCha20-Poly1305 under a key derived from the deployment's signing
//! key — SHA-256 of a tag, the signing key's secret, the deployment id and a random salt — so it
//! opens only with the deployment passphrase that opens `deployment-key.kzk`, and a copy of the
//! folder without the passphrase reads nothing. JSON: `format`, `deployment` (hex), `salt`,
//! `nonce`, `sealed` (the three secrets, medical, manager, operation, and the tag); everything but
//! `sealed` is the associated data.
//!
//! Each manifest version re-seals the three secrets to the devices that hold them
//! (`kazashi_sync::purpose::reseal`): revoked devices are dropped. The secrets are not rotated
//! on a revocation (docs/security.md).

use crate::store::{StoreError, random_bytes};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use kazashi_domain::DeploymentId;
use kazashi_sync::{DeviceKey, KeyPurpose, PurposeSecret};
use sha2::{Digest, Sha256};
use std::path::Path;
use zeroize::Zeroizing;

/// The sealed purpose secrets in an administrator's folder.
pub const PURPOSE_FILE: &str = "purpose-keys.kzk";
const FORMAT: &str = "kazashi-purpose-keys-v1 sha256(deployment-key) chacha20poly1305";
const KDF_TAG: &[u8] = b"kazashi-purpose-keys-v1";

/// Why the purpose key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PurposeFileError {
    #[error("the purpose key file {0} is damaged or altered, or not this deployment's: {1}")]
    Damaged(String, String),
    #[error("the operating system's random source")]
    Random(#[from] StoreError),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PurposeFile {
    format: String,
    deployment: String,
    salt: String,
    nonce: String,
    sealed: String,
}

impl PurposeFile {
    fn associated(&self) -> Vec<u8> {
        format!(
            "{}\n{}\n{}\n{}",
            self.format, self.deployment, self.salt, self.nonce
        )
        .into_bytes()
    }
}

/// The three purpose secrets, wiped when dropped.
#[derive(Debug)]
pub struct PurposeSecrets {
    medical: PurposeSecret,
    manager: PurposeSecret,
    operation: PurposeSecret,
}

fn file_key(key: &DeviceKey, deployment: DeploymentId, salt: &[u8]) -> Key {
    let secret = Zeroizing::new(key.secret_bytes());
    let mut h = Sha256::new();
    h.update(KDF_TAG);
    h.update(secret.as_slice());
    h.update(deployment.0);
    h.update(salt);
    let digest = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
    Key::from(*digest)
}

impl PurposeSecrets {
    /// Three fresh secrets from the operating system.
    pub fn generate() -> Result<Self, PurposeFileError> {
        Ok(Self {
            medical: PurposeSecret::new(*Zeroizing::new(random_bytes::<32>()?)),
            manager: PurposeSecret::new(*Zeroizing::new(random_bytes::<32>()?)),
            operation: PurposeSecret::new(*Zeroizing::new(random_bytes::<32>()?)),
        })
    }

    /// Each purpose with its secret, for `kazashi_sync::purpose::reseal`.
    pub fn list(&self) -> [(KeyPurpose, &PurposeSecret); 3] {
        [
            (KeyPurpose::Medical, &self.medical),
            (KeyPurpose::Manager, &self.manager),
            (KeyPurpose::Operation, &self.operation),
        ]
    }

    /// The file's bytes, sealed under a key derived from the deployment's signing key.
    pub fn seal(
        &self,
        key: &DeviceKey,
        deployment: DeploymentId,
    ) -> Result<Vec<u8>, PurposeFileError> {
        let salt: [u8; 16] = random_bytes()?;
        let nonce: [u8; 12] = random_bytes()?;
        let mut file = PurposeFile {
            format: FORMAT.into(),
            deployment: deployment.to_hex(),
            salt: hex::encode(salt),
            nonce: hex::encode(nonce),
            sealed: String::new(),
        };
        let mut plain = Zeroizing::new([0u8; 96]);
        for (i, (_, s)) in self.list().iter().enumerate() {
            if let Some(slot) = plain.get_mut(i * 32..(i + 1) * 32) {
                slot.copy_from_slice(s.bytes());
            }
        }
        let aad = file.associated();
        let sealed = ChaCha20Poly1305::new(&file_key(key, deployment, &salt))
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain.as_slice(),
                    aad: &aad,
                },
            )
            .map_err(|_| PurposeFileError::Damaged(PURPOSE_FILE.into(), "sealing failed".into()))?;
        file.sealed = hex::encode(sealed);
        serde_json::to_vec_pretty(&file)
            .map_err(|e| PurposeFileError::Damaged(PURPOSE_FILE.into(), e.to_string()))
    }

    /// The secrets in a file's `bytes`, opened with the deployment's signing key.
    pub fn open(
        bytes: &[u8],
        key: &DeviceKey,
        deployment: DeploymentId,
        path: &Path,
    ) -> Result<Self, PurposeFileError> {
        let damaged =
            |what: &str| PurposeFileError::Damaged(path.display().to_string(), what.to_owned());
        let file: PurposeFile =
            serde_json::from_slice(bytes).map_err(|e| damaged(&e.to_string()))?;
        if file.format != FORMAT {
            return Err(damaged("not a Kazashi purpose key file"));
        }
        if file.deployment != deployment.to_hex() {
            return Err(damaged("another deployment's"));
        }
        let salt = hex::decode(&file.salt).map_err(|_| damaged("bad salt"))?;
        let nonce: [u8; 12] = hex::decode(&file.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| damaged("bad nonce"))?;
        let sealed = hex::decode(&file.sealed).map_err(|_| damaged("bad sealed secrets"))?;
        let aad = file.associated();
        let plain = Zeroizing::new(
            ChaCha20Poly1305::new(&file_key(key, deployment, &salt))
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: &sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| damaged("does not open with this deployment's key"))?,
        );
        let part = |i: usize| -> Result<PurposeSecret, PurposeFileError> {
            let s: [u8; 32] = plain
                .get(i * 32..(i + 1) * 32)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| damaged("the secrets are not 96 bytes"))?;
            Ok(PurposeSecret::new(*Zeroizing::new(s)))
        };
        if plain.len() != 96 {
            return Err(damaged("the secrets are not 96 bytes"));
        }
        Ok(Self {
            medical: part(0)?,
            manager: part(1)?,
            operation: part(2)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_opens_only_with_its_deployment_key_and_unaltered() {
        let key = DeviceKey::from_seed([1; 32]);
        let dep = DeploymentId([2; 16]);
        let s = PurposeSecrets::generate().unwrap();
        let bytes = s.seal(&key, dep).unwrap();
        let p = Path::new("x");
        let back = PurposeSecrets::open(&bytes, &key, dep, p).unwrap();
        for ((a, x), (b, y)) in s.list().iter().zip(back.list().iter()) {
            assert_eq!(a, b);
            assert_eq!(x.bytes(), y.bytes());
        }
        assert_ne!(s.list()[0].1.bytes(), s.list()[1].1.bytes());
        // No secret in the file's bytes.
        let text = String::from_utf8(bytes.clone()).unwrap();
        for (_, x) in s.list() {
            assert!(!text.contains(&hex::encode(x.bytes())));
        }
        assert!(PurposeSecrets::open(&bytes, &DeviceKey::from_seed([3; 32]), dep, p).is_err());
        assert!(PurposeSecrets::open(&bytes, &key, DeploymentId([4; 16]), p).is_err());
        let altered = text.replace("\"salt\": \"", "\"salt\": \"00");
        assert!(PurposeSecrets::open(altered.as_bytes(), &key, dep, p).is_err());
        assert!(PurposeSecrets::open(b"\xff", &key, dep, p).is_err());
    }
}
