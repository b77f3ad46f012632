//! Validated free text: names, readings, addresses, notes.
//!
//! Every string that enters the model goes through [`check`]: it is trimmed, must fit a length
//! range counted in characters, and may not carry control characters (a newline only where the
//! field allows it). The registered glyphs are kept exactly as given: no normalisation happens
//! here; folding for comparison belongs to the matcher.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is too long ({len} characters, at most {max})")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} contains a control character (U+{code:04X})")]
    ControlChar { field: &'static str, code: u32 },
    #[error("{field} contains a character that is not kana (U+{code:04X})")]
    NotKana { field: &'static str, code: u32 },
    #[error("{field} contains a character not allowed in a phone number (U+{code:04X})")]
    NotPhone { field: &'static str, code: u32 },
}

/// Trim `raw` and check it against the field's rules.
pub fn check(
    field: &'static str,
    raw: &str,
    min: usize,
    max: usize,
    allow_newline: bool,
) -> Result<String, TextError> {
    // U+3000 (ideographic space) counts as white space for trimming, as Japanese forms use it.
    let s = raw.trim_matches(|c: char| c.is_whitespace());
    let len = s.chars().count();
    if len < min {
        return Err(TextError::Empty { field });
    }
    if len > max {
        return Err(TextError::TooLong { field, len, max });
    }
    if let Some(c) = s
        .chars()
        .find(|&c| c.is_control() && !(allow_newline && (c == '\n' || c == '\t')))
    {
        return Err(TextError::ControlChar {
            field,
            code: c as u32,
        });
    }
    Ok(s.to_owned())
}

/// True for characters a kana reading may contain: hiragana, katakana (full and half width),
/// the prolonged sound mark, the middle dot and spaces between family and given name.
pub fn is_kana_char(c: char) -> bool {
    matches!(c,
        '\u{3041}'..='\u{3096}' | '\u{3099}'..='\u{309F}' | // hiragana and (semi-)voiced marks
        '\u{30A0}'..='\u{30FF}' |                           // katakana, ー, ・
        '\u{31F0}'..='\u{31FF}' |                           // small katakana extension
        '\u{FF66}'..='\u{FF9F}' |                           // half-width katakana
        ' ' | '\u{3000}')
}

/// Declares a validated text newtype: construction and deserialisation both go through `check`.
macro_rules! text_type {
    ($(#[$meta:meta])* $name:ident, $field:literal, $min:expr, $max:expr, newline = $nl:expr $(, extra = $extra:expr)?) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Field name used in error messages.
            pub const FIELD: &'static str = $field;

            /// Validate and wrap.
            pub fn new(raw: &str) -> Result<Self, TextError> {
                let s = check($field, raw, $min, $max, $nl)?;
                $( ($extra)($field, &s)?; )?
                Ok(Self(s))
            }

            /// The text as given (trimmed), with its registered glyphs.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(s: String) -> Result<Self, TextError> {
                Self::new(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn kana_only(field: &'static str, s: &str) -> Result<(), TextError> {
    match s.chars().find(|&c| !is_kana_char(c)) {
        Some(c) => Err(TextError::NotKana {
            field,
            code: c as u32,
        }),
        None => Ok(()),
    }
}

fn phone_chars(field: &'static str, s: &str) -> Result<(), TextError> {
    let ok = |c: char| {
        c.is_ascii_digit()
            || matches!(c, '-' | '+' | '(' | ')' | ' ' | 'ー' | '－')
            || ('０'..='９').contains(&c)
    };
    match s.chars().find(|&c| !ok(c)) {
        Some(c) => Err(TextError::NotPhone {
            field,
            code: c as u32,
        }),
        None => Ok(()),
    }
}

text_type!(
    /// A person's name as registered (original glyphs such as 髙 or 﨑 are kept).
    PersonName, "name", 1, 100, newline = false
);
text_type!(
    /// A kana reading (furigana) of a name.
    KanaReading, "kana reading", 1, 100, newline = false, extra = kana_only
);
text_type!(
    /// A postal address as registered.
    Address, "address", 1, 200, newline = false
);
text_type!(
    /// A short label: a site name, a deployment name, a municipality, a supply item.
    Label, "label", 1, 100, newline = false
);
text_type!(
    /// A free-text note or reason; may be several lines. Non-empty.
    Note, "note", 1, 2000, newline = true
);
text_type!(
    /// A phone number as written (digits, hyphens, parentheses, +).
    Phone, "phone number", 1, 24, newline = false, extra = phone_chars
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_variant_glyphs_and_trims() {
        let n = PersonName::new("\u{3000}髙橋 﨑子 ").unwrap();
        assert_eq!(n.as_str(), "髙橋 﨑子");
    }

    #[test]
    fn refuses_empty_long_and_control() {
        assert_eq!(
            PersonName::new("  "),
            Err(TextError::Empty { field: "name" })
        );
        assert!(matches!(
            PersonName::new(&"あ".repeat(101)),
            Err(TextError::TooLong { len: 101, .. })
        ));
        assert!(matches!(
            PersonName::new("a\u{0007}b"),
            Err(TextError::ControlChar { code: 7, .. })
        ));
        assert!(matches!(
            PersonName::new("a\nb"),
            Err(TextError::ControlChar { .. })
        ));
        assert!(Note::new("line one\nline two").is_ok());
    }

    #[test]
    fn kana_readings() {
        assert!(KanaReading::new("たかはし さきこ").is_ok());
        assert!(KanaReading::new("タカハシ　サキコ").is_ok());
        assert!(KanaReading::new("ﾀｶﾊｼ").is_ok());
        assert!(matches!(
            KanaReading::new("高橋"),
            Err(TextError::NotKana { .. })
        ));
    }

    #[test]
    fn phone_numbers() {
        assert!(Phone::new("0256-34-5511").is_ok());
        assert!(Phone::new("０９０－１２３４－５６７８").is_ok());
        assert!(matches!(
            Phone::new("call me"),
            Err(TextError::NotPhone { .. })
        ));
    }

    #[test]
    fn deserialisation_validates() {
        let empty = postcard::to_allocvec(&String::from("  ")).unwrap();
        assert!(postcard::from_bytes::<PersonName>(&empty).is_err());
        let good = postcard::to_allocvec(&String::from("佐藤")).unwrap();
        assert_eq!(
            postcard::from_bytes::<PersonName>(&good).unwrap().as_str(),
            "佐藤"
        );
    }
}
