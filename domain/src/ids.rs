//! Identifiers. Each is validated when made and when decoded, so a malformed id never enters
//! the model.
//!
//! [`PersonId`] is the municipality's 宛名番号 (addressee number), never the 12-digit 個人番号.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is too long ({len} characters, at most {max})")]
    TooLong {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{kind} may contain only ASCII letters, digits, '-' and '_' (found {found:?})")]
    BadChar { kind: &'static str, found: char },
    #[error("{kind} must be {expected} hex digits")]
    BadHex { kind: &'static str, expected: usize },
}

fn check_code(kind: &'static str, raw: &str, max: usize) -> Result<String, IdError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    let len = s.chars().count();
    if len > max {
        return Err(IdError::TooLong { kind, len, max });
    }
    if let Some(found) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(IdError::BadChar { kind, found });
    }
    Ok(s.to_owned())
}

/// Declares a short ASCII code identifier, stored inline (no allocation, `Copy`).
///
/// The bytes are zero-padded, so the derived order is the order of the strings.
macro_rules! code_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name {
            bytes: [u8; $max],
            len: u8,
        }

        impl $name {
            /// Longest accepted code, in characters.
            pub const MAX: usize = $max;

            /// Validate and wrap.
            pub fn new(raw: &str) -> Result<Self, IdError> {
                let s = check_code($kind, raw, $max)?;
                let mut bytes = [0u8; $max];
                for (b, c) in bytes.iter_mut().zip(s.bytes()) {
                    *b = c;
                }
                // check_code bounds the length by $max, which is below 256.
                Ok(Self { bytes, len: s.len() as u8 })
            }

            /// The code as text.
            pub fn as_str(&self) -> &str {
                // Only validated ASCII is ever stored.
                self.bytes.get(..usize::from(self.len)).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("")
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_owned()
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }
    };
}

code_id!(
    /// 宛名番号: the municipality's resident (addressee) number from the roster.
    PersonId, "person id", 20
);
code_id!(
    /// 世帯番号: the household number from the roster.
    HouseholdId, "household id", 20
);
code_id!(
    /// A site code (shelter, polling station, command center), unique in a deployment.
    SiteId, "site id", 32
);
code_id!(
    /// A staff member's id (職員番号 or a volunteer code). Never a name.
    OperatorId, "operator id", 32
);
code_id!(
    /// 投票区: a voting precinct code.
    PrecinctId, "precinct id", 16
);
code_id!(
    /// 名簿番号: the number printed on the admission ticket (入場券).
    ListNumber, "list number", 20
);

/// Lexicographic order of two equal-length byte strings, in big-endian words (the ids sort
/// on every hot path of the fold; a `memcmp` call per comparison costs more than the compare).
fn cmp_bytes<const N: usize>(a: &[u8; N], b: &[u8; N]) -> std::cmp::Ordering {
    fn word(c: &[u8]) -> u64 {
        let mut w = [0u8; 8];
        for (d, s) in w.iter_mut().zip(c) {
            *d = *s;
        }
        u64::from_be_bytes(w)
    }
    for (x, y) in a.chunks(8).zip(b.chunks(8)) {
        match word(x).cmp(&word(y)) {
            std::cmp::Ordering::Equal => {}
            unequal => return unequal,
        }
    }
    std::cmp::Ordering::Equal
}

/// Declares a fixed-size byte identifier shown as hex.
macro_rules! byte_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; $len]);

        /// Byte order (as the hex), compared eight bytes at a time.
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                cmp_bytes(&self.0, &other.0)
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Full lowercase hex.
            pub fn to_hex(&self) -> String {
                crate::hex::encode(&self.0)
            }

            /// Parse full hex.
            pub fn from_hex(s: &str) -> Result<Self, IdError> {
                crate::hex::decode::<$len>(s.trim())
                    .map(Self)
                    .ok_or(IdError::BadHex { kind: $kind, expected: 2 * $len })
            }

            /// The first eight hex digits, for display.
            pub fn short(&self) -> String {
                let mut h = self.to_hex();
                h.truncate(8);
                h
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

byte_id!(
    /// A device: the ed25519 public key it signs its events with.
    DeviceId, "device id", 32
);
byte_id!(
    /// An event id: the first 16 bytes of the SHA-256 of the event's content
    /// (see [`crate::event::Event`]). Equal ids mean equal events.
    EventId, "event id", 16
);
byte_id!(
    /// A card key: a salted hash of the My Number Card's JPKI authentication public key.
    /// A stable pseudonym of the card; it reveals nothing about the holder.
    CardKey, "card key", 32
);
byte_id!(
    /// A detector alert id, derived from the evidence it cites.
    AlertId, "alert id", 32
);
byte_id!(
    /// A deployment (one flood, one election).
    DeploymentId, "deployment id", 16
);
byte_id!(
    /// SHA-256 of a roster's canonical encoding.
    RosterHash, "roster hash", 32
);

/// A person known to the model: a roster entry, or someone registered as a walk-in.
///
/// A walk-in is identified by the event that registered them and their place in it, so two
/// devices can never mint the same walk-in id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PersonRef {
    Roster(PersonId),
    WalkIn { registration: EventId, index: u16 },
}

impl fmt::Display for PersonRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersonRef::Roster(p) => write!(f, "{p}"),
            PersonRef::WalkIn {
                registration,
                index,
            } => write!(f, "W-{}-{}", registration.short(), index),
        }
    }
}

/// A household: a roster household, or the household a walk-in registration created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HouseholdRef {
    Roster(HouseholdId),
    WalkIn(EventId),
}

impl fmt::Display for HouseholdRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HouseholdRef::Roster(h) => write!(f, "{h}"),
            HouseholdRef::WalkIn(e) => write!(f, "W-{}", e.short()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_validated() {
        assert!(PersonId::new("0012345678").is_ok());
        assert_eq!(
            PersonId::new(" "),
            Err(IdError::Empty { kind: "person id" })
        );
        assert!(matches!(
            PersonId::new("12 34"),
            Err(IdError::BadChar { found: ' ', .. })
        ));
        assert!(matches!(
            SiteId::new("避難所"),
            Err(IdError::BadChar { .. })
        ));
        assert!(matches!(
            PersonId::new(&"1".repeat(21)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn inline_codes_order_like_strings() {
        let a = SiteId::new("A1").unwrap();
        let b = SiteId::new("A10").unwrap();
        let c = SiteId::new("B").unwrap();
        assert!(a < b && b < c);
        assert_eq!(b.as_str(), "A10");
        assert_eq!(PersonId::new(&"9".repeat(20)).unwrap().as_str().len(), 20);
    }

    #[test]
    fn byte_ids_order_as_their_bytes() {
        let ids: Vec<[u8; 16]> = vec![
            [0; 16],
            [255; 16],
            {
                let mut a = [0u8; 16];
                a[15] = 1;
                a
            },
            {
                let mut a = [0u8; 16];
                a[7] = 1;
                a
            },
            {
                let mut a = [0u8; 16];
                a[8] = 1;
                a
            },
        ];
        for x in &ids {
            for y in &ids {
                assert_eq!(EventId(*x).cmp(&EventId(*y)), x.cmp(y));
            }
        }
    }

    #[test]
    fn byte_ids_round_trip_hex() {
        let d = DeviceId([0xab; 32]);
        assert_eq!(DeviceId::from_hex(&d.to_hex()).unwrap(), d);
        assert_eq!(d.short(), "abababab");
        assert!(DeviceId::from_hex("abc").is_err());
        assert!(EventId::from_hex(&"zz".repeat(16)).is_err());
    }
}
