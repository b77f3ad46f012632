//! The envelope's signature check: ed25519-dalek's `VerifyingKey::verify_strict`, with the one
//! costly step — the double scalar multiplication `[s]B − [k]A` — computed from tables made
//! once per device instead of from scratch. A catch-up verifies a million envelopes of a few
//! hundred devices; this halves the cost of each (about 55 against 100 µs on the 2-core lab
//! machine, loaded).
//!
//! **The verdict is `verify_strict`'s, exactly.** Every laptop must accept the same envelopes,
//! so the steps are those of ed25519-dalek 3.0.0's `verify_strict` (after
//! `VerifyingKey::from_bytes` of the device id), in order, with the same library calls:
//!
//! 1. the signature is 64 bytes; `s` (its last 32) is a canonical scalar
//!    (`Scalar::from_canonical_bytes`; `InternalSignature::from_bytes`);
//! 2. the device id decompresses to a point `A` (`VerifyingKey::from_bytes`); `R` (the first
//!    32 bytes) decompresses (`CompressedEdwardsY::decompress`);
//! 3. neither `R` nor `A` is of small order (`EdwardsPoint::is_small_order`);
//! 4. `k` = SHA-512(`R` bytes ‖ `A` bytes ‖ message) reduced mod ℓ (`Scalar::from_hash` is
//!    `from_bytes_mod_order_wide` of the digest);
//! 5. `compress([s]B + [ℓ−k]A)` equals the 32 bytes of `R` (no cofactor: the same unbatched,
//!    cofactorless equation).
//!
//! `R` is not decompressed: steps 2 and 3 for `R` are read off the point `P` step 5 computes
//! (its compression equals `R`'s bytes only if `R` decompresses to `P`, and `R` is then of
//! small order exactly when `P` is), which gives the same verdict for every input.
//!
//! Only step 5's arithmetic differs: dalek computes `[k](−A) + [s]B` by a width-5/width-8 NAF
//! Straus over 256 doublings; here `s` and `k` are cut into eight 32-bit limbs, and
//! `[s]B + [k](−A) = Σⱼ [sⱼ](2³²ʲB) + Σⱼ [kⱼ](2³²ʲ(−A))`, a Straus over sixteen points with 33
//! doublings, from tables of odd multiples (1, 3, …, 31 times each `2³²ʲB`, and the same of
//! `−A`, made when a device is first seen). Both multiply the same points by the same canonical
//! integers and add with complete Edwards formulas, so the point is the same point and its
//! compressed bytes the same bytes — for any `A`, torsion component or not. (Using `[ℓ−k]A`
//! instead would not be: it differs from `[k](−A)` by `[ℓ]A`, which is not the identity when
//! `A` has a torsion component.)
//!
//! Why not batch verification (`ed25519_dalek::verify_batch`, several times cheaper per
//! signature): its equation is multiplied by the cofactor 8 and its random linear combination
//! hides torsion, so a crafted envelope whose `R` (or device key) carries a torsion
//! component — mixed order, which `verify_strict`'s small-order check does not catch — can pass
//! the batch and fail `verify_strict`, or pass on one laptop's random draw and fail on
//! another's. Making a batch exact would need every `R` proven torsion-free first, which costs
//! a scalar multiplication by ℓ per signature (as much as the check it would save).
//! docs/security.md, "Signature checks", says the same.
//!
//! Tested against `verify_strict` on valid signatures, flipped bits, non-canonical `s` and
//! `R`, torsion added to `R`, and mixed-order device keys (`tests` below).

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use kazashi_domain::DeviceId;
use sha2::{Digest, Sha512};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// Limbs a scalar is cut into, and their width in bits.
const LIMBS: usize = 8;
const BITS: usize = 256 / LIMBS;
/// NAF window: digits are odd, in −31..=31.
const W: u32 = 6;
/// Odd multiples kept per limb's point: 1, 3, …, 31.
const ODD: usize = 1 << (W - 2);
/// Devices whose tables are kept (about 20 KiB each); past it one is dropped for each new one.
const KEPT: usize = 256;

/// The odd multiples of `2^(32j)·P` for each limb `j`.
struct Table(Vec<[EdwardsPoint; ODD]>);

impl Table {
    fn new(p: &EdwardsPoint) -> Table {
        let mut out = Vec::with_capacity(LIMBS);
        let mut base = *p;
        for _ in 0..LIMBS {
            let two = base + base;
            let mut odd = [base; ODD];
            let mut next = base;
            for slot in odd.iter_mut() {
                *slot = next;
                next += two;
            }
            out.push(odd);
            for _ in 0..BITS {
                base = base + base;
            }
        }
        Table(out)
    }
}

/// A device id as the check needs it: the point `A` and the tables of `−A`.
struct Device {
    a: EdwardsPoint,
    minus_a: Table,
}

static BASE: LazyLock<Table> = LazyLock::new(|| Table::new(&ED25519_BASEPOINT_POINT));
static DEVICES: LazyLock<Mutex<HashMap<[u8; 32], Arc<Device>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The device's point and tables, made on first sight (`None`: the id is not a point, which
/// `VerifyingKey::from_bytes` refuses too).
fn device(id: &DeviceId) -> Option<Arc<Device>> {
    let kept = |m: &Mutex<HashMap<[u8; 32], Arc<Device>>>| {
        m.lock().ok().and_then(|m| m.get(&id.0).cloned())
    };
    if let Some(d) = kept(&DEVICES) {
        return Some(d);
    }
    let a = CompressedEdwardsY(id.0).decompress()?;
    let d = Arc::new(Device {
        a,
        minus_a: Table::new(&-a),
    });
    if let Ok(mut m) = DEVICES.lock() {
        if m.len() >= KEPT
            && let Some(k) = m.keys().next().copied()
        {
            m.remove(&k);
        }
        m.insert(id.0, d.clone());
    }
    Some(d)
}

/// Whether `signature` is `device`'s signature of `message`: exactly ed25519-dalek's
/// `VerifyingKey::from_bytes(device)` then `verify_strict(message, signature)` (module docs).
pub(crate) fn verify_strict(device: &DeviceId, message: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = <&[u8; 64]>::try_from(signature) else {
        return false;
    };
    let (r_bytes, s_bytes) = sig.split_at(32);
    let Ok(s_bytes) = <[u8; 32]>::try_from(s_bytes) else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    let Some(dev) = self::device(device) else {
        return false;
    };
    let Ok(r_bytes) = <[u8; 32]>::try_from(r_bytes) else {
        return false;
    };
    if dev.a.is_small_order() {
        return false;
    }
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(device.0);
    h.update(message);
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h.finalize());
    let k = Scalar::from_bytes_mod_order_wide(&wide);
    // Steps 2 and 3 for `R` without decompressing it (a square root, about a tenth of the
    // check): when `compress(P)` equals `R`'s bytes, `R` decompresses — to `P` itself — and
    // is of small order exactly when `P` is; when it does not, both checks refuse anyway.
    let p = double_mul(&BASE, &s, &dev.minus_a, &k);
    p.compress() == CompressedEdwardsY(r_bytes) && !p.is_small_order()
}

/// `[a]P + [b]Q` for the points `base` and `other` were made from.
fn double_mul(base: &Table, a: &Scalar, other: &Table, b: &Scalar) -> EdwardsPoint {
    let mut nafs = [[0i8; BITS + 1]; 2 * LIMBS];
    let (first, second) = nafs.split_at_mut(LIMBS);
    for (naf, limb) in first.iter_mut().zip(limbs(a)) {
        *naf = naf_of(limb);
    }
    for (naf, limb) in second.iter_mut().zip(limbs(b)) {
        *naf = naf_of(limb);
    }
    let tables = base.0.iter().chain(other.0.iter());
    let mut acc = EdwardsPoint::identity();
    let mut started = false;
    for pos in (0..=BITS).rev() {
        if started {
            acc = acc + acc;
        }
        for (naf, odd) in nafs.iter().zip(tables.clone()) {
            let d = naf.get(pos).copied().unwrap_or(0);
            if d == 0 {
                continue;
            }
            let Some(p) = odd.get(usize::from(d.unsigned_abs() / 2)) else {
                continue;
            };
            acc = if d > 0 { acc + p } else { acc - p };
            started = true;
        }
    }
    acc
}

/// The scalar's canonical integer cut into `LIMBS` limbs of `BITS` bits, least first.
fn limbs(s: &Scalar) -> [u32; LIMBS] {
    let bytes = s.to_bytes();
    let mut out = [0u32; LIMBS];
    for (limb, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        let mut four = [0u8; 4];
        four.copy_from_slice(chunk);
        *limb = u32::from_le_bytes(four);
    }
    out
}

/// The width-`W` non-adjacent form of `v`: odd digits in −(2^(W−1))..2^(W−1), each followed by
/// at least W−1 zeros, least significant first, with Σ dᵢ2ⁱ = v.
fn naf_of(v: u32) -> [i8; BITS + 1] {
    let mut out = [0i8; BITS + 1];
    let mut v = i64::from(v);
    for digit in out.iter_mut() {
        if v == 0 {
            break;
        }
        if v & 1 == 1 {
            let m = v & ((1 << W) - 1);
            let d = if m >= 1 << (W - 1) { m - (1 << W) } else { m };
            // |d| < 2^(W−1) = 32: it fits.
            *digit = i8::try_from(d).unwrap_or(0);
            v -= d;
        }
        v >>= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::traits::IsIdentity;
    use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

    /// ed25519-dalek's own verdict, as `identity::verify` reaches it.
    fn reference(device: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
        VerifyingKey::from_bytes(device)
            .map(|k| {
                k.verify_strict(message, &Signature::from_bytes(sig))
                    .is_ok()
            })
            .unwrap_or(false)
    }

    /// Both verdicts, which must agree.
    fn agreed(device: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
        let ours = verify_strict(&DeviceId(*device), message, sig);
        assert_eq!(
            ours,
            reference(device, message, sig),
            "verdicts differ: key {device:02x?} sig {sig:02x?}"
        );
        ours
    }

    /// Deterministic bytes for test case `i` of `what`.
    fn bytes(what: &str, i: u64) -> [u8; 64] {
        let mut h = Sha512::new();
        h.update(what.as_bytes());
        h.update(i.to_le_bytes());
        let mut out = [0u8; 64];
        out.copy_from_slice(&h.finalize());
        out
    }

    fn scalar(what: &str, i: u64) -> Scalar {
        Scalar::from_bytes_mod_order_wide(&bytes(what, i))
    }

    /// The torsion points: [ℓ]P of points P with a torsion component, by order (2, 4, 8).
    fn torsion() -> Vec<EdwardsPoint> {
        let mut found: Vec<EdwardsPoint> = Vec::new();
        for i in 0..200 {
            let mut y = [0u8; 32];
            y.copy_from_slice(&bytes("torsion", i)[..32]);
            let Some(p) = CompressedEdwardsY(y).decompress() else {
                continue;
            };
            let t = (-Scalar::ONE) * p + p;
            if !t.is_identity() && !found.contains(&t) {
                found.push(t);
            }
        }
        assert_eq!(found.len(), 7, "the seven non-identity torsion points");
        found
    }

    /// An ed25519 signature of `message` under the public point `a_pub` (whose bytes are
    /// hashed) made with secret scalar `a`: valid in the cofactorless equation exactly when
    /// `a_pub` = [a]B, or when its torsion vanishes under k.
    fn sign_raw(
        a: &Scalar,
        a_pub: &[u8; 32],
        r: &Scalar,
        r_pub: &EdwardsPoint,
        m: &[u8],
    ) -> [u8; 64] {
        let rb = r_pub.compress().to_bytes();
        let mut h = Sha512::new();
        h.update(rb);
        h.update(a_pub);
        h.update(m);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&h.finalize());
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&rb);
        sig[32..].copy_from_slice(s.as_bytes());
        sig
    }

    #[test]
    fn valid_signatures_pass_and_any_flipped_bit_fails_as_in_verify_strict() {
        for i in 0..40u64 {
            let mut seed = [0u8; 32];
            seed.copy_from_slice(&bytes("key", i % 7)[..32]);
            let key = SigningKey::from_bytes(&seed);
            let id = key.verifying_key().to_bytes();
            let m = bytes("message", i);
            let m = &m[..usize::try_from(i).unwrap() % 64];
            let sig = key.sign(m).to_bytes();
            assert!(agreed(&id, m, &sig));
            for bit in [0usize, 7, 100, 255, 256, 300, 500, 503, 505, 511] {
                let mut bad = sig;
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(!agreed(&id, m, &bad));
            }
            let mut other = m.to_vec();
            other.push(1);
            assert!(!agreed(&id, &other, &sig));
            assert!(!verify_strict(&DeviceId(id), m, &sig[..63]));
        }
    }

    #[test]
    fn non_canonical_s_and_r_are_refused_as_in_verify_strict() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let id = key.verifying_key().to_bytes();
        let sig = key.sign(b"event").to_bytes();
        // s + ℓ: the same residue, not canonical.
        let ell: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut plus = sig;
        let mut carry = 0u16;
        for (b, l) in plus[32..].iter_mut().zip(ell) {
            let v = u16::from(*b) + u16::from(l) + carry;
            *b = (v & 0xff) as u8;
            carry = v >> 8;
        }
        assert!(!agreed(&id, b"event", &plus));
        // R with y ≥ p: encodings of y = p + j (decompressed as y = j).
        for j in 0u8..19 {
            let mut r = [0xffu8; 32];
            r[0] = 0xed + j;
            r[31] = 0x7f;
            let mut bad = sig;
            bad[..32].copy_from_slice(&r);
            assert!(!agreed(&id, b"event", &bad));
            bad[31] |= 0x80;
            assert!(!agreed(&id, b"event", &bad));
        }
    }

    #[test]
    fn torsion_in_r_or_in_the_key_gets_verify_strict_verdict() {
        let torsion = torsion();
        let (mut passed, mut failed) = (0, 0);
        for i in 0..64u64 {
            let a = scalar("secret", i);
            let a_point = EdwardsPoint::mul_base(&a);
            let r = scalar("nonce", i);
            let m = bytes("torsion message", i);
            let t = torsion[usize::try_from(i).unwrap() % torsion.len()];
            // R with a torsion component, s made for it: the cofactored equation holds, the
            // cofactorless one does not.
            let id = a_point.compress().to_bytes();
            let r_t = EdwardsPoint::mul_base(&r) + t;
            assert!(!agreed(&id, &m, &sign_raw(&a, &id, &r, &r_t, &m)));
            // R of small order only.
            assert!(!agreed(&id, &m, &sign_raw(&a, &id, &Scalar::ZERO, &t, &m)));
            // R the identity and s = k·a: the equation holds (both sides the identity), and
            // only the small-order check refuses it.
            let identity = EdwardsPoint::identity();
            let forged = sign_raw(&a, &id, &Scalar::ZERO, &identity, &m);
            let (s, k) = (
                Scalar::from_canonical_bytes(forged[32..].try_into().unwrap()).unwrap(),
                {
                    let mut h = Sha512::new();
                    h.update(&forged[..32]);
                    h.update(id);
                    h.update(m);
                    let mut wide = [0u8; 64];
                    wide.copy_from_slice(&h.finalize());
                    Scalar::from_bytes_mod_order_wide(&wide)
                },
            );
            assert_eq!(
                EdwardsPoint::mul_base(&s) - k * a_point,
                identity,
                "the cofactorless equation holds"
            );
            assert!(!agreed(&id, &m, &forged));
            // A mixed-order key: valid exactly when [k]T is the identity.
            let mixed = (a_point + t).compress().to_bytes();
            let sig = sign_raw(&a, &mixed, &r, &EdwardsPoint::mul_base(&r), &m);
            if agreed(&mixed, &m, &sig) {
                passed += 1;
            } else {
                failed += 1;
            }
            // A small-order key.
            let small = t.compress().to_bytes();
            assert!(!agreed(&small, &m, &sig));
        }
        assert!(passed > 0 && failed > 0, "{passed} passed, {failed} failed");
    }

    #[test]
    fn a_device_id_that_is_not_a_point_verifies_nothing() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let sig = key.sign(b"x").to_bytes();
        let mut found = 0;
        for i in 0..50u64 {
            let mut id = [0u8; 32];
            id.copy_from_slice(&bytes("not a point", i)[..32]);
            if CompressedEdwardsY(id).decompress().is_none() {
                found += 1;
                assert!(!agreed(&id, b"x", &sig));
            }
        }
        assert!(found > 0);
    }

    #[test]
    fn the_limb_tables_multiply_as_dalek_does() {
        let base = Table::new(&ED25519_BASEPOINT_POINT);
        for i in 0..30u64 {
            let p = EdwardsPoint::mul_base(&scalar("p", i));
            let table = Table::new(&p);
            let (a, b) = (scalar("a", i), scalar("b", i));
            assert_eq!(
                double_mul(&base, &a, &table, &b),
                EdwardsPoint::vartime_double_scalar_mul_basepoint(&b, &p, &a)
            );
        }
        for v in [
            0u32,
            1,
            31,
            32,
            33,
            63,
            64,
            u32::MAX,
            0x8000_0000,
            0x5555_5555,
        ] {
            let naf = naf_of(v);
            let sum: i64 = naf
                .iter()
                .enumerate()
                .map(|(i, d)| i64::from(*d) << i)
                .sum();
            assert_eq!(sum, i64::from(v));
        }
    }
}
