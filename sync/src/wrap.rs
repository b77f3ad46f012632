//! Key wrapping with X25519, shared by USB bundles ([`crate::bundle`]), the purpose keys the
//! manifest seals to devices ([`crate::purpose`]) and sealed notes ([`crate::sealed`]).
//!
//! The sender draws an ephemeral X25519 secret. For each recipient, the shared secret is X25519
//! of it with the recipient's public key (a device's ed25519 key in Montgomery form, or a
//! purpose's X25519 key); HKDF-SHA256 (salt: the ephemeral public key; info: a tag naming the
//! use, then the recipient's id bytes) gives a wrapping key, under which ChaCha20-Poly1305
//! (zero nonce: every wrapping key seals one message) seals the payload, with the recipient's id
//! bytes as associated data. A device uses its ed25519 secret scalar (the one signing uses) for
//! its side, so one device key serves signing, the network identity and decryption.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::MontgomeryPoint;
use kazashi_domain::DeviceId;

/// A wrapped 32-byte key: the key and the AEAD tag.
pub(crate) const WRAPPED_LEN: usize = 32 + 16;

/// The X25519 public key of a device (its ed25519 key in Montgomery form).
pub(crate) fn device_public(device: &DeviceId) -> Option<MontgomeryPoint> {
    ed25519_dalek::VerifyingKey::from_bytes(&device.0)
        .ok()
        .map(|k| k.to_montgomery())
}

/// The ephemeral public key of an ephemeral secret.
pub(crate) fn ephemeral_public(secret: [u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(secret).to_bytes()
}

fn wrapping_key(
    shared: &MontgomeryPoint,
    ephemeral: &[u8; 32],
    tag: &[u8],
    id: &[u8],
) -> Option<Key> {
    // A low-order point gives an all-zero secret: never a valid recipient.
    if shared.to_bytes() == [0; 32] {
        return None;
    }
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(ephemeral), &shared.to_bytes());
    let mut okm = zeroize::Zeroizing::new([0u8; 32]);
    let info = [tag, id].concat();
    hk.expand(&info, okm.as_mut()).ok()?;
    Some(Key::from(*okm))
}

/// ChaCha20-Poly1305 under `key` with a zero nonce: every key here seals one message only.
pub(crate) fn seal_once(key: &Key, msg: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(key)
        .encrypt(&Nonce::from([0u8; 12]), Payload { msg, aad })
        .ok()
}

/// The other side of [`seal_once`]: `None` if it does not authenticate.
pub(crate) fn open_once(key: &Key, msg: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(key)
        .decrypt(&Nonce::from([0u8; 12]), Payload { msg, aad })
        .ok()
}

/// `payload` sealed to the holder of `to`'s secret, from the ephemeral secret `eph_secret`
/// (whose public key the recipient is handed alongside). `None` for an invalid recipient key.
pub(crate) fn wrap(
    eph_secret: [u8; 32],
    to: &MontgomeryPoint,
    tag: &[u8],
    id: &[u8],
    payload: &[u8],
) -> Option<Vec<u8>> {
    let ephemeral = ephemeral_public(eph_secret);
    let shared = to.mul_clamped(eph_secret);
    let key = wrapping_key(&shared, &ephemeral, tag, id)?;
    seal_once(&key, payload, id)
}

/// A payload [`wrap`]ped to the holder of `secret` (an X25519 secret used with clamping, or a
/// device's ed25519 secret scalar), under `ephemeral`. `None` if it does not open.
pub(crate) fn unwrap(
    secret: [u8; 32],
    ephemeral: &[u8; 32],
    tag: &[u8],
    id: &[u8],
    sealed: &[u8],
) -> Option<Vec<u8>> {
    let shared = MontgomeryPoint(*ephemeral).mul_clamped(secret);
    let key = wrapping_key(&shared, ephemeral, tag, id)?;
    open_once(&key, sealed, id)
}

/// A 32-byte key [`unwrap`]ped, wiped when dropped.
pub(crate) fn unwrap_key(
    secret: [u8; 32],
    ephemeral: &[u8; 32],
    tag: &[u8],
    id: &[u8],
    sealed: &[u8],
) -> Option<zeroize::Zeroizing<[u8; 32]>> {
    let plain = zeroize::Zeroizing::new(unwrap(secret, ephemeral, tag, id, sealed)?);
    let key: [u8; 32] = plain.as_slice().try_into().ok()?;
    Some(zeroize::Zeroizing::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceKey;

    #[test]
    fn a_wrap_opens_only_for_its_recipient_tag_and_id() {
        let me = DeviceKey::from_seed([3; 32]);
        let other = DeviceKey::from_seed([4; 32]);
        let to = device_public(&me.device_id()).unwrap();
        let eph = [9u8; 32];
        let sealed = wrap(eph, &to, b"t", &me.device_id().0, b"secret").unwrap();
        let e = ephemeral_public(eph);
        let id = me.device_id().0;
        assert_eq!(
            unwrap(me.x25519_scalar(), &e, b"t", &id, &sealed).unwrap(),
            b"secret"
        );
        assert!(unwrap(other.x25519_scalar(), &e, b"t", &id, &sealed).is_none());
        assert!(unwrap(me.x25519_scalar(), &e, b"u", &id, &sealed).is_none());
        assert!(unwrap(me.x25519_scalar(), &e, b"t", &[0; 32], &sealed).is_none());
        // An X25519 key pair of its own (a purpose key).
        let secret = [7u8; 32];
        let public = MontgomeryPoint(ephemeral_public(secret));
        let sealed = wrap(eph, &public, b"t", b"p", b"k").unwrap();
        assert_eq!(unwrap(secret, &e, b"t", b"p", &sealed).unwrap(), b"k");
        // A low-order recipient point is refused.
        assert!(wrap(eph, &MontgomeryPoint([0; 32]), b"t", b"p", b"k").is_none());
    }
}
