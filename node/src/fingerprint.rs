//! A device's fingerprint, to read aloud (enrolment requests, the deployment key): a leaf
//! module, so that the update pin (`update_pin.rs`) can name it without reaching enrolment.

use kazashi_domain::DeviceId;
use sha2::{Digest, Sha256};

const FINGERPRINT_TAG: &[u8] = b"kazashi-device-fingerprint-v1";
/// Decimal digits in a fingerprint: 28 digits are 93 bits.
pub const FINGERPRINT_DIGITS: usize = 28;

/// A device's fingerprint, to read aloud: 28 decimal digits (93 bits of SHA-256 of the public
/// key) in groups of four, "0123 4567 …".
pub fn fingerprint(device: &DeviceId) -> String {
    let digest = Sha256::new()
        .chain_update(FINGERPRINT_TAG)
        .chain_update(device.0)
        .finalize();
    let mut first = [0u8; 16];
    for (d, s) in first.iter_mut().zip(digest.iter()) {
        *d = *s;
    }
    // 128 bits reduced mod 10^28 (10^28 < 2^94: the bias is below 2^-34).
    let n = u128::from_be_bytes(first) % 10u128.pow(FINGERPRINT_DIGITS as u32);
    let digits = format!("{n:0width$}", width = FINGERPRINT_DIGITS);
    digits
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
