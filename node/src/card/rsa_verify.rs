//! RSA PKCS#1 v1.5 signature verification (RFC 8017 §8.2.2), the one RSA operation the
//! product needs: checking a JPKI certificate's signature against a CA and the card's
//! signature in the possession check. Public-key arithmetic only (`s^e mod n`), so no secret
//! is handled and nothing needs to run in constant time. The `rsa` crate is kept for the lab's
//! virtual cards, which sign; the product does not link it (nor the key-generation randomness
//! it brings).

use num_bigint::BigUint;
use pkcs1::der::Decode;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

/// rsaEncryption.
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// Smallest modulus taken, in bytes (1024 bits; JPKI keys are 2048).
const MIN_MODULUS_BYTES: usize = 128;

/// An RSA public key.
#[derive(Clone)]
pub struct RsaKey {
    n: BigUint,
    e: BigUint,
    /// The modulus' length in bytes.
    k: usize,
}

impl RsaKey {
    /// The key of a SubjectPublicKeyInfo: algorithm rsaEncryption, an RSAPublicKey inside; a
    /// modulus of at least 1024 bits and an odd exponent of at least 3.
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Option<Self> {
        if spki.algorithm.oid.to_string() != RSA_ENCRYPTION {
            return None;
        }
        let key = pkcs1::RsaPublicKey::from_der(spki.subject_public_key.as_bytes()?).ok()?;
        let n = BigUint::from_bytes_be(key.modulus.as_bytes());
        let e = BigUint::from_bytes_be(key.public_exponent.as_bytes());
        let k = usize::try_from(n.bits().div_ceil(8)).ok()?;
        let three = BigUint::from(3u8);
        if k < MIN_MODULUS_BYTES || e < three || !e.bit(0) || e >= n {
            return None;
        }
        Some(Self { n, e, k })
    }

    /// Whether `signature` is a PKCS#1 v1.5 signature of `t` (an encoded DigestInfo, or any
    /// byte string the signer padded as such) under this key.
    pub fn verifies(&self, t: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.k || t.len() + 11 > self.k {
            return false;
        }
        let s = BigUint::from_bytes_be(signature);
        if s >= self.n {
            return false;
        }
        let m = s.modpow(&self.e, &self.n).to_bytes_be();
        let Some(pad) = self.k.checked_sub(m.len()) else {
            return false;
        };
        let mut em = vec![0u8; pad];
        em.extend_from_slice(&m);
        // EM = 0x00 || 0x01 || PS (0xff, at least 8) || 0x00 || T
        let mut expected = Vec::with_capacity(self.k);
        expected.extend_from_slice(&[0x00, 0x01]);
        expected.resize(self.k - t.len() - 1, 0xff);
        expected.push(0x00);
        expected.extend_from_slice(t);
        em == expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_cert::Certificate;

    const CA: &[u8] = include_bytes!("../../../sim/fixtures/cards/ca.der");
    const CARD1: &[u8] = include_bytes!("../../../sim/fixtures/cards/card-1.crt.der");

    fn key_of(der: &[u8]) -> RsaKey {
        let c = Certificate::from_der(der).unwrap();
        RsaKey::from_spki(&c.tbs_certificate.subject_public_key_info).unwrap()
    }

    /// The card certificate's signature, made by OpenSSL (sim/fixtures/cards/make.sh), verifies
    /// under the CA's key; any change to it or to what was signed does not.
    #[test]
    fn openssls_signature_verifies_and_nothing_else_does() {
        use x509_cert::der::Encode;
        let ca = key_of(CA);
        let card = Certificate::from_der(CARD1).unwrap();
        let tbs = card.tbs_certificate.to_der().unwrap();
        let sig = card.signature.as_bytes().unwrap().to_vec();
        let t = crate::card::cert::digest_info(&tbs);
        assert!(ca.verifies(&t, &sig));
        let mut flipped = sig.clone();
        flipped[40] ^= 0x10;
        assert!(!ca.verifies(&t, &flipped));
        let mut other = t.clone();
        other[30] ^= 1;
        assert!(!ca.verifies(&other, &sig));
        assert!(!ca.verifies(&t, &sig[1..]));
        let mut longer = vec![0u8];
        longer.extend_from_slice(&sig);
        assert!(!ca.verifies(&t, &longer));
        // Not the card's own key.
        assert!(!key_of(CARD1).verifies(&t, &sig));
        // A "signature" at or above the modulus.
        assert!(!ca.verifies(&t, &vec![0xff; sig.len()]));
    }
}
