//! The JPKI user-authentication certificate: its public key (the card's stable pseudonym until
//! renewal), a signature check for the possession test, and an offline chain check against
//! CA certificates the deployment ships. Revocation cannot be checked offline.

use crate::card::rsa_verify::RsaKey;
use kazashi_domain::ids::{CardKey, DeploymentId};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("the certificate cannot be read: {0}")]
    Malformed(String),
    #[error("the certificate's key is not an RSA key")]
    NotRsa,
}

/// sha256WithRSAEncryption.
const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";

/// DigestInfo prefix for SHA-256 (PKCS#1 v1.5).
pub const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The DigestInfo the card signs for `data` (SHA-256).
pub fn digest_info(data: &[u8]) -> Vec<u8> {
    let mut v = SHA256_DIGEST_INFO_PREFIX.to_vec();
    v.extend_from_slice(&Sha256::digest(data));
    v
}

/// A parsed certificate.
#[derive(Clone)]
pub struct AuthCert {
    cert: Certificate,
    spki_der: Vec<u8>,
    key: RsaKey,
}

/// The public key's encoding (what the card key hashes) is wiped when the certificate is
/// dropped. (The parsed certificate is public data, readable from the card without a PIN; it is
/// freed, not wiped.)
impl Drop for AuthCert {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.spki_der);
    }
}

impl std::fmt::Debug for AuthCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthCert(..)")
    }
}

/// What the offline chain check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// Signed by one of the CA certificates given, and within its validity period.
    /// Revocation is not known offline.
    Trusted,
    /// Signed by none of the CA certificates given (or none were given).
    UnknownIssuer,
    /// A CA with the issuer's name is there but its signature does not verify.
    BadSignature,
    Expired,
    NotYetValid,
}

impl AuthCert {
    pub fn parse(der: &[u8]) -> Result<Self, CertError> {
        let cert = Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
        let spki_der = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        let key = RsaKey::from_spki(&cert.tbs_certificate.subject_public_key_info)
            .ok_or(CertError::NotRsa)?;
        Ok(AuthCert {
            cert,
            spki_der,
            key,
        })
    }

    /// The card key: SHA-256 over a label, the deployment id (the per-deployment salt, so one
    /// card gives unlinkable keys in two deployments) and the certificate's public key.
    pub fn card_key(&self, deployment: &DeploymentId) -> CardKey {
        let mut h = Sha256::new();
        h.update(b"kazashi card key v1\0");
        h.update(deployment.0);
        h.update(&self.spki_der);
        CardKey(h.finalize().into())
    }

    /// Does `signature` over `digest_info` verify with this certificate's key (PKCS#1 v1.5)?
    pub fn verifies(&self, digest_info: &[u8], signature: &[u8]) -> bool {
        self.key.verifies(digest_info, signature)
    }

    /// Seconds since 1970 until which the certificate is valid.
    pub fn not_after(&self) -> u64 {
        self.cert
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs()
    }

    /// Check the certificate against CA certificates (DER), at `now` (seconds since 1970).
    pub fn chain(&self, cas: &[Vec<u8>], now: u64) -> Chain {
        let v = &self.cert.tbs_certificate.validity;
        let issuer = &self.cert.tbs_certificate.issuer;
        let mut seen_issuer = false;
        for ca in cas {
            let Ok(ca) = Certificate::from_der(ca) else {
                continue;
            };
            if &ca.tbs_certificate.subject != issuer {
                continue;
            }
            seen_issuer = true;
            if self.signed_by(&ca) {
                if now < v.not_before.to_unix_duration().as_secs() {
                    return Chain::NotYetValid;
                }
                if now > v.not_after.to_unix_duration().as_secs() {
                    return Chain::Expired;
                }
                return Chain::Trusted;
            }
        }
        if seen_issuer {
            Chain::BadSignature
        } else {
            Chain::UnknownIssuer
        }
    }

    fn signed_by(&self, ca: &Certificate) -> bool {
        if self.cert.signature_algorithm.oid.to_string() != SHA256_WITH_RSA {
            return false;
        }
        let Some(ca_key) = RsaKey::from_spki(&ca.tbs_certificate.subject_public_key_info) else {
            return false;
        };
        let Ok(tbs) = self.cert.tbs_certificate.to_der() else {
            return false;
        };
        let Some(sig) = self.cert.signature.as_bytes() else {
            return false;
        };
        ca_key.verifies(&digest_info(&tbs), sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &[u8] = include_bytes!("../../../sim/fixtures/cards/ca.der");
    const OTHER_CA: &[u8] = include_bytes!("../../../sim/fixtures/cards/other-ca.der");
    const CARD1: &[u8] = include_bytes!("../../../sim/fixtures/cards/card-1.crt.der");
    const CARD2: &[u8] = include_bytes!("../../../sim/fixtures/cards/card-2.crt.der");

    #[test]
    fn card_keys_are_stable_per_card_and_salted_per_deployment() {
        let (d1, d2) = (DeploymentId([1; 16]), DeploymentId([2; 16]));
        let c1 = AuthCert::parse(CARD1).unwrap();
        let c2 = AuthCert::parse(CARD2).unwrap();
        assert_eq!(
            c1.card_key(&d1),
            AuthCert::parse(CARD1).unwrap().card_key(&d1)
        );
        assert_ne!(c1.card_key(&d1), c2.card_key(&d1));
        assert_ne!(c1.card_key(&d1), c1.card_key(&d2));
    }

    #[test]
    fn chain_check_offline() {
        let c1 = AuthCert::parse(CARD1).unwrap();
        let now = c1.not_after() - 86_400;
        assert_eq!(c1.chain(&[CA.to_vec()], now), Chain::Trusted);
        assert_eq!(
            c1.chain(&[OTHER_CA.to_vec(), CA.to_vec()], now),
            Chain::Trusted
        );
        assert_eq!(c1.chain(&[OTHER_CA.to_vec()], now), Chain::UnknownIssuer);
        assert_eq!(c1.chain(&[], now), Chain::UnknownIssuer);
        assert_eq!(c1.chain(&[CA.to_vec()], c1.not_after() + 1), Chain::Expired);
        assert_eq!(c1.chain(&[CA.to_vec()], 0), Chain::NotYetValid);
        // A certificate whose signature was altered.
        let mut forged = CARD1.to_vec();
        let n = forged.len();
        forged[n - 10] ^= 1;
        let forged = AuthCert::parse(&forged).unwrap();
        assert_eq!(forged.chain(&[CA.to_vec()], now), Chain::BadSignature);
    }

    #[test]
    fn refuses_non_certificates() {
        assert!(matches!(
            AuthCert::parse(b"hello"),
            Err(CertError::Malformed(_))
        ));
        assert!(matches!(
            AuthCert::parse(&CARD1[..200]),
            Err(CertError::Malformed(_))
        ));
        // The CA itself is a certificate, so it parses.
        assert!(AuthCert::parse(CA).is_ok());
    }
}
