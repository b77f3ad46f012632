//! The sealed note format (`EventBody::SealedNote`'s bytes): a note's text readable only by
//! the holders of purpose keys ([`crate::purpose`]).
//!
//! A fresh 32-byte content key encrypts the UTF-8 text with ChaCha20-Poly1305 (zero nonce: the
//! key seals one message), the associated data being a tag, the note's kind and the caller's
//! context (the person it is attached to), so a ciphertext cannot be moved to another person or
//! kind unnoticed. The content key is wrapped ([`crate::wrap`], info `kazashi-note-wrap-v1`,
//! then the purpose's byte and public key) to each purpose the kind is for ([`recipients`]):
//! a medical note to Medical and Manager, protection (DV) details to Manager only.
//!
//! Layout (postcard): a format byte (1), the ephemeral X25519 public key, the wraps (purpose,
//! 48 bytes; one to three, no purpose twice), the ciphertext (17 to [`MAX_NOTE_TEXT`] + 16
//! bytes). Decoding reads every byte (a tail is refused) and checks every bound; nothing here
//! panics on hostile bytes (`tests/tests/fuzz_parsers.rs`, target `sealed_note`).

use crate::manifest::Membership;
use crate::purpose::{KeyPurpose, PurposeSecret};
use crate::wrap;
use chacha20poly1305::Key;
use kazashi_domain::sealed_note::{NoteKind, SealedBytes};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The longest note text, in UTF-8 bytes.
pub const MAX_NOTE_TEXT: usize = 8 * 1024;
const FORMAT: u8 = 1;
const WRAP_TAG: &[u8] = b"kazashi-note-wrap-v1";
const BODY_TAG: &[u8] = b"kazashi-note-v1";

/// Why a note was not sealed. Nothing is written when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "the deployment's manifest has no {0} key: the administrator must issue a manifest with \
         purpose keys (kazashi deployment grant) before notes can be written"
    )]
    NoKey(&'static str),
    #[error("the note is empty")]
    Empty,
    #[error("the note is longer than {MAX_NOTE_TEXT} bytes")]
    TooLong,
    #[error("sealing failed")]
    Failed,
}

/// Why a sealed note did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the sealed note is malformed: {0}")]
    Malformed(&'static str),
    #[error("the note is not sealed to this key")]
    NotForThisKey,
    #[error("the note does not open (altered, or attached to another person)")]
    Altered,
}

#[derive(Serialize, Deserialize)]
struct Wrapped {
    purpose: KeyPurpose,
    key: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    format: u8,
    ephemeral: [u8; 32],
    wraps: Vec<Wrapped>,
    ciphertext: Vec<u8>,
}

/// The purposes a note of `kind` is sealed to.
pub fn recipients(kind: NoteKind) -> &'static [KeyPurpose] {
    match kind {
        NoteKind::Medical => &[KeyPurpose::Medical, KeyPurpose::Manager],
        NoteKind::Protection => &[KeyPurpose::Manager],
    }
}

fn kind_byte(kind: NoteKind) -> u8 {
    match kind {
        NoteKind::Medical => 1,
        NoteKind::Protection => 2,
    }
}

fn wrap_id(purpose: KeyPurpose, public: &[u8; 32]) -> [u8; 33] {
    let mut id = [0u8; 33];
    id[0] = purpose.byte();
    id[1..].copy_from_slice(public);
    id
}

fn body_aad(kind: NoteKind, context: &[u8]) -> Vec<u8> {
    let mut aad = BODY_TAG.to_vec();
    aad.push(kind_byte(kind));
    aad.extend_from_slice(context);
    aad
}

/// Seal `text` as a note of `kind` to the purpose keys of `members`' manifest, bound to
/// `context` (the person's reference, encoded by the caller). `entropy`: 64 fresh random bytes
/// (the ephemeral secret, then the content key).
pub fn seal(
    text: &str,
    kind: NoteKind,
    context: &[u8],
    members: &Membership,
    entropy: &[u8; 64],
) -> Result<SealedBytes, SealError> {
    if text.trim().is_empty() {
        return Err(SealError::Empty);
    }
    if text.len() > MAX_NOTE_TEXT {
        return Err(SealError::TooLong);
    }
    let (eph, content) = entropy.split_at(32);
    let eph: [u8; 32] = eph.try_into().map_err(|_| SealError::Failed)?;
    let content = Zeroizing::new(<[u8; 32]>::try_from(content).map_err(|_| SealError::Failed)?);
    let mut wraps = Vec::new();
    for purpose in recipients(kind) {
        let public = members
            .purpose_public(*purpose)
            .ok_or(SealError::NoKey(purpose.code()))?;
        let to = curve25519_dalek::MontgomeryPoint(public);
        let key = wrap::wrap(
            eph,
            &to,
            WRAP_TAG,
            &wrap_id(*purpose, &public),
            content.as_slice(),
        )
        .ok_or(SealError::NoKey(purpose.code()))?;
        wraps.push(Wrapped {
            purpose: *purpose,
            key,
        });
    }
    let ciphertext = wrap::seal_once(
        &Key::from(*content),
        text.as_bytes(),
        &body_aad(kind, context),
    )
    .ok_or(SealError::Failed)?;
    let wire = Wire {
        format: FORMAT,
        ephemeral: wrap::ephemeral_public(eph),
        wraps,
        ciphertext,
    };
    let bytes = postcard::to_allocvec(&wire).map_err(|_| SealError::Failed)?;
    SealedBytes::new(bytes).map_err(|_| SealError::TooLong)
}

/// Decode and check every bound, without opening.
fn decode(bytes: &[u8]) -> Result<Wire, OpenError> {
    let wire: Wire = match postcard::take_from_bytes::<Wire>(bytes) {
        Ok((w, [])) => w,
        Ok(_) => return Err(OpenError::Malformed("bytes after the note")),
        Err(_) => return Err(OpenError::Malformed("not a sealed note")),
    };
    if wire.format != FORMAT {
        return Err(OpenError::Malformed("an unknown format"));
    }
    if wire.wraps.is_empty() || wire.wraps.len() > KeyPurpose::ALL.len() {
        return Err(OpenError::Malformed("the number of keys"));
    }
    for (i, w) in wire.wraps.iter().enumerate() {
        if w.key.len() != wrap::WRAPPED_LEN {
            return Err(OpenError::Malformed("a key of the wrong size"));
        }
        if wire
            .wraps
            .iter()
            .skip(i + 1)
            .any(|o| o.purpose == w.purpose)
        {
            return Err(OpenError::Malformed("a purpose twice"));
        }
    }
    if wire.ciphertext.len() <= 16 || wire.ciphertext.len() > MAX_NOTE_TEXT + 16 {
        return Err(OpenError::Malformed("the text's size"));
    }
    Ok(wire)
}

/// The purposes a sealed note's bytes are sealed to, if they are a well-formed note.
pub fn sealed_to(bytes: &[u8]) -> Result<Vec<KeyPurpose>, OpenError> {
    Ok(decode(bytes)?.wraps.iter().map(|w| w.purpose).collect())
}

/// Open a note of `kind` attached to `context` with the secret of `purpose`. The text is wiped
/// when dropped.
pub fn open(
    sealed: &[u8],
    kind: NoteKind,
    context: &[u8],
    purpose: KeyPurpose,
    secret: &PurposeSecret,
) -> Result<Zeroizing<String>, OpenError> {
    let wire = decode(sealed)?;
    let w = wire
        .wraps
        .iter()
        .find(|w| w.purpose == purpose)
        .ok_or(OpenError::NotForThisKey)?;
    let public = secret.public();
    let content = wrap::unwrap_key(
        *secret.bytes(),
        &wire.ephemeral,
        WRAP_TAG,
        &wrap_id(purpose, &public),
        &w.key,
    )
    .ok_or(OpenError::NotForThisKey)?;
    let plain = Zeroizing::new(
        wrap::open_once(
            &Key::from(*content),
            &wire.ciphertext,
            &body_aad(kind, context),
        )
        .ok_or(OpenError::Altered)?,
    );
    let text = std::str::from_utf8(&plain).map_err(|_| OpenError::Malformed("not UTF-8"))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Open with whichever of `secrets` the note is sealed to.
pub fn open_with(
    sealed: &SealedBytes,
    kind: NoteKind,
    context: &[u8],
    secrets: &[(KeyPurpose, &PurposeSecret)],
) -> Result<Zeroizing<String>, OpenError> {
    let mut last = OpenError::NotForThisKey;
    for (purpose, secret) in secrets {
        match open(sealed.as_bytes(), kind, context, *purpose, secret) {
            Ok(t) => return Ok(t),
            Err(e @ OpenError::Malformed(_)) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceKey;
    use crate::manifest::{Manifest, SignedManifest};
    use crate::purpose::reseal;
    use kazashi_domain::deployment::DeploymentKind;
    use kazashi_domain::ids::RosterHash;
    use kazashi_domain::text::Label;
    use kazashi_domain::{Deployment, DeploymentId, Site, SiteId, SiteKind};

    fn members(with_manager: bool) -> (Membership, PurposeSecret, PurposeSecret) {
        let admin = DeviceKey::from_seed([9; 32]);
        let medical = PurposeSecret::new([1; 32]);
        let manager = PurposeSecret::new([2; 32]);
        let mut secrets = vec![(KeyPurpose::Medical, &medical)];
        if with_manager {
            secrets.push((KeyPurpose::Manager, &manager));
        }
        let m = Manifest {
            version: 1,
            deployment: Deployment::new(
                DeploymentId([1; 16]),
                Label::new("t").unwrap(),
                DeploymentKind::ShelterOperation,
                RosterHash([0; 32]),
                vec![Site {
                    id: SiteId::new("S1").unwrap(),
                    name: Label::new("本部").unwrap(),
                    kind: SiteKind::CommandCenter,
                }],
            )
            .unwrap(),
            admin: admin.device_id(),
            devices: vec![],
            revoked: vec![],
            staff: vec![],
            closed_at: None,
            card_cas: vec![],
            sealed_keys: reseal(&[], &[], &secrets, [4; 32]),
            retention_days: None,
            receipt_slips: false,
        };
        let bytes = SignedManifest::sign(&m, &admin).unwrap().encode();
        (SignedManifest::decode(&bytes).unwrap(), medical, manager)
    }

    #[test]
    fn a_medical_note_opens_for_medical_and_manager_a_protection_note_for_manager_only() {
        let (m, medical, manager) = members(true);
        let text = "血圧の薬を持参 PLANTED-1";
        let sealed = seal(text, NoteKind::Medical, b"person-a", &m, &[7; 64]).unwrap();
        assert!(
            !sealed
                .as_bytes()
                .windows(text.len())
                .any(|w| w == text.as_bytes())
        );
        for (p, s) in [
            (KeyPurpose::Medical, &medical),
            (KeyPurpose::Manager, &manager),
        ] {
            let t = open(sealed.as_bytes(), NoteKind::Medical, b"person-a", p, s).unwrap();
            assert_eq!(t.as_str(), text);
        }
        // Another person, another kind, a wrong key: nothing.
        assert_eq!(
            open(
                sealed.as_bytes(),
                NoteKind::Medical,
                b"person-b",
                KeyPurpose::Medical,
                &medical
            ),
            Err(OpenError::Altered)
        );
        assert_eq!(
            open(
                sealed.as_bytes(),
                NoteKind::Protection,
                b"person-a",
                KeyPurpose::Medical,
                &medical
            ),
            Err(OpenError::Altered)
        );
        assert_eq!(
            open(
                sealed.as_bytes(),
                NoteKind::Medical,
                b"person-a",
                KeyPurpose::Medical,
                &manager
            ),
            Err(OpenError::NotForThisKey)
        );
        let dv = seal("DV details", NoteKind::Protection, b"p", &m, &[8; 64]).unwrap();
        assert_eq!(sealed_to(dv.as_bytes()).unwrap(), vec![KeyPurpose::Manager]);
        assert_eq!(
            open(
                dv.as_bytes(),
                NoteKind::Protection,
                b"p",
                KeyPurpose::Medical,
                &medical
            ),
            Err(OpenError::NotForThisKey)
        );
        assert_eq!(
            open_with(
                &dv,
                NoteKind::Protection,
                b"p",
                &[(KeyPurpose::Manager, &manager)]
            )
            .unwrap()
            .as_str(),
            "DV details"
        );
        // Refusals: no manager key in the manifest, empty, too long.
        let (no_manager, _, _) = members(false);
        assert_eq!(
            seal("x", NoteKind::Medical, b"p", &no_manager, &[7; 64]),
            Err(SealError::NoKey("manager"))
        );
        assert_eq!(
            seal(" ", NoteKind::Medical, b"p", &m, &[7; 64]),
            Err(SealError::Empty)
        );
        let long = "あ".repeat(MAX_NOTE_TEXT);
        assert_eq!(
            seal(&long, NoteKind::Medical, b"p", &m, &[7; 64]),
            Err(SealError::TooLong)
        );
        // The longest note fits the domain's bound.
        let longest = "a".repeat(MAX_NOTE_TEXT);
        assert!(seal(&longest, NoteKind::Medical, b"p", &m, &[7; 64]).is_ok());
    }

    #[test]
    fn hostile_bytes_are_refused_not_panicked_on() {
        let (m, medical, _) = members(true);
        let sealed = seal("note", NoteKind::Medical, b"p", &m, &[7; 64]).unwrap();
        let bytes = sealed.as_bytes();
        let mut tail = bytes.to_vec();
        tail.push(0);
        assert!(matches!(sealed_to(&tail), Err(OpenError::Malformed(_))));
        for cut in 0..bytes.len() {
            assert!(sealed_to(&bytes[..cut]).is_err());
        }
        let (_, _, manager) = members(true);
        for i in 0..bytes.len() {
            let mut b = bytes.to_vec();
            b[i] ^= 0x41;
            // Any flipped byte stops at least one of the two holders from reading the text.
            let reads =
                |p, s| open(&b, NoteKind::Medical, b"p", p, s).is_ok_and(|t| t.as_str() == "note");
            assert!(
                !(reads(KeyPurpose::Medical, &medical) && reads(KeyPurpose::Manager, &manager)),
                "byte {i}"
            );
        }
    }
}
