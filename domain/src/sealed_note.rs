//! Sealed notes: 問診票 (medical) notes and DV/protection details travel in the log only as
//! ciphertext (`EventBody::SealedNote`). The bytes are opaque here — the format and the keys
//! are `kazashi_sync::sealed` — and bounded, so a peer cannot make an event of any size.
//!
//! The plain `MemberCard::medical_note` of earlier versions is still read (old events stay
//! valid) but nothing writes it any more, and no view or export shows it.

use serde::{Deserialize, Serialize};

/// The largest sealed note, in bytes (the text limit plus the keys and tags).
pub const MAX_SEALED_NOTE: usize = 16 * 1024;

/// What a sealed note holds, and so whom it is sealed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NoteKind {
    /// 問診票: medical staff and managers read it.
    Medical,
    /// DV / protection details (支援措置, what to tell whom): managers only.
    Protection,
}

/// A sealed note's bytes: 1 to [`MAX_SEALED_NOTE`] of them, checked on decode.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct SealedBytes(Vec<u8>);

/// Why bytes are not a sealed note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed note must have 1 to {MAX_SEALED_NOTE} bytes, not {0}")]
pub struct SealedLength(pub usize);

impl SealedBytes {
    pub fn new(bytes: Vec<u8>) -> Result<Self, SealedLength> {
        if bytes.is_empty() || bytes.len() > MAX_SEALED_NOTE {
            return Err(SealedLength(bytes.len()));
        }
        Ok(Self(bytes))
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<Vec<u8>> for SealedBytes {
    type Error = SealedLength;
    fn try_from(v: Vec<u8>) -> Result<Self, SealedLength> {
        Self::new(v)
    }
}

impl From<SealedBytes> for Vec<u8> {
    fn from(s: SealedBytes) -> Self {
        s.0
    }
}

impl std::fmt::Debug for SealedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedBytes({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bounded_on_decode() {
        assert!(SealedBytes::new(vec![]).is_err());
        assert!(SealedBytes::new(vec![0; MAX_SEALED_NOTE + 1]).is_err());
        let ok = SealedBytes::new(vec![7; 10]).unwrap();
        let bytes = postcard::to_allocvec(&ok).unwrap();
        assert_eq!(postcard::from_bytes::<SealedBytes>(&bytes).unwrap(), ok);
        let big = postcard::to_allocvec(&vec![0u8; MAX_SEALED_NOTE + 1]).unwrap();
        assert!(postcard::from_bytes::<SealedBytes>(&big).is_err());
    }
}
