//! A device's identity: an ed25519 key pair. The public key is the [`DeviceId`]; the secret
//! signs every event the device writes. The same 32-byte secret is the device's iroh
//! `SecretKey` (iroh uses the same ed25519-dalek), so one key names the device on the mesh and
//! on the log.
//!
//! This crate never makes keys from randomness of its own: the caller passes a seed (the node
//! draws it from the operating system).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use kazashi_domain::DeviceId;

/// A device's signing key. Its `Debug` shows only the public half; the secret is wiped when
/// dropped.
pub struct DeviceKey(SigningKey);

impl DeviceKey {
    /// The key whose secret is `seed` (32 bytes from a CSPRNG).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// The secret, for storage inside the encrypted store only.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key, which is the device id.
    pub fn device_id(&self) -> DeviceId {
        DeviceId(self.0.verifying_key().to_bytes())
    }

    /// The secret scalar bytes ed25519 signs with, for X25519 (bundle decryption): used with
    /// clamping, they pair with the device id's Montgomery form.
    pub(crate) fn x25519_scalar(&self) -> [u8; 32] {
        self.0.to_scalar_bytes()
    }

    /// Sign `message` (deterministic ed25519).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.device_id().short())
    }
}

/// Whether `signature` is `device`'s signature of `message` (strict verification: no weak
/// keys, no malleable signatures).
pub fn verify(device: &DeviceId, message: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Some(key) = verifying_key(device) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(&sig))
        .is_ok()
}

/// The device id as a decompressed key, kept per thread for the next call: decompressing the
/// point costs a square root, a sixth or so of a verification, and a catch-up verifies
/// thousands of envelopes of a few devices. The same key as [`VerifyingKey::from_bytes`]
/// gives (the cache holds only what it returned), so nothing about what verifies changes.
fn verifying_key(device: &DeviceId) -> Option<VerifyingKey> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    /// Devices kept per thread (a deployment enrols hundreds at most); past it, it starts over.
    const KEPT: usize = 4096;
    thread_local! {
        static KEYS: RefCell<HashMap<[u8; 32], VerifyingKey>> = RefCell::new(HashMap::new());
    }
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(k) = keys.get(&device.0) {
            return Some(*k);
        }
        let k = VerifyingKey::from_bytes(&device.0).ok()?;
        if keys.len() >= KEPT {
            keys.clear();
        }
        keys.insert(device.0, k);
        Some(k)
    })
}

/// A signed message: `tag` separates the kinds of thing signed, so that a signature made for
/// one can never pass as another.
pub(crate) fn signed_bytes(tag: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::with_capacity(tag.len() + parts.iter().map(|p| p.len() + 4).sum::<usize>());
    v.extend_from_slice(tag);
    for p in parts {
        // Length-prefixed, so that part boundaries cannot shift.
        v.extend_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_le_bytes());
        v.extend_from_slice(p);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_their_key_and_message() {
        let a = DeviceKey::from_seed([1; 32]);
        let b = DeviceKey::from_seed([2; 32]);
        let sig = a.sign(b"hello");
        assert!(verify(&a.device_id(), b"hello", &sig));
        assert!(!verify(&b.device_id(), b"hello", &sig));
        assert!(!verify(&a.device_id(), b"hellO", &sig));
        assert!(!verify(&a.device_id(), b"hello", &sig[..63]));
        let mut bad = sig;
        bad[10] ^= 1;
        assert!(!verify(&a.device_id(), b"hello", &bad));
        assert_eq!(
            DeviceKey::from_seed(a.secret_bytes()).device_id(),
            a.device_id()
        );
        assert!(!format!("{a:?}").contains(&format!("{:?}", a.secret_bytes())));
    }

    #[test]
    fn length_prefixes_keep_parts_apart() {
        assert_ne!(
            signed_bytes(b"t", &[b"ab", b"c"]),
            signed_bytes(b"t", &[b"a", b"bc"])
        );
    }
}
