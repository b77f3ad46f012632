//! BER-TLV as the card writes it: the basic four items (`FF20 { DF21..DF25 }`) and the length
//! of a DER certificate from its first bytes. Every function here takes untrusted bytes and
//! answers with an error, never a panic.

use kazashi_domain::CivilDate;
use kazashi_domain::roster::Sex;
use zeroize::Zeroize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("the data ends inside a tag or length")]
    Truncated,
    #[error("a length of {0} bytes runs past the end of the data")]
    LengthPastEnd(usize),
    #[error("a length form the card does not use (first byte {0:#04x})")]
    BadLength(u8),
    #[error("a tag longer than three bytes")]
    LongTag,
    #[error("expected tag {expected:X}, found {found:X}")]
    UnexpectedTag { expected: u32, found: u32 },
    #[error("the basic four items lack the {0}")]
    Missing(&'static str),
    #[error("the {0} is not valid text")]
    NotText(&'static str),
    #[error("the birth date is not a date")]
    BadBirthDate,
    #[error("the sex code is not 1, 2 or 9")]
    BadSex,
}

/// One TLV: its tag (up to three bytes, as a number) and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u32,
    pub value: &'a [u8],
}

/// Read one TLV from the front of `buf`; returns it and the rest.
pub fn read(buf: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (tag, rest) = read_tag(buf)?;
    let (len, rest) = read_len(rest)?;
    if len > rest.len() {
        return Err(TlvError::LengthPastEnd(len));
    }
    let (value, rest) = rest.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

fn read_tag(buf: &[u8]) -> Result<(u32, &[u8]), TlvError> {
    let (&first, mut rest) = buf.split_first().ok_or(TlvError::Truncated)?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        // Subsequent bytes while bit 8 is set; at most two more.
        for i in 0.. {
            let (&b, r) = rest.split_first().ok_or(TlvError::Truncated)?;
            rest = r;
            tag = (tag << 8) | u32::from(b);
            if b & 0x80 == 0 {
                break;
            }
            if i >= 1 {
                return Err(TlvError::LongTag);
            }
        }
    }
    Ok((tag, rest))
}

/// Short form, or `81 xx`, `82 xx xx`, `83 xx xx xx`.
pub fn read_len(buf: &[u8]) -> Result<(usize, &[u8]), TlvError> {
    let (&first, rest) = buf.split_first().ok_or(TlvError::Truncated)?;
    if first < 0x80 {
        return Ok((usize::from(first), rest));
    }
    let n = usize::from(first & 0x7F);
    if !(1..=3).contains(&n) {
        return Err(TlvError::BadLength(first));
    }
    if rest.len() < n {
        return Err(TlvError::Truncated);
    }
    let (bytes, rest) = rest.split_at(n);
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok((len, rest))
}

/// The whole length (header and value) of the TLV that starts `prefix`, read from its first
/// bytes only: how much of a file to read. `None` until enough of the header is there.
pub fn total_len(prefix: &[u8]) -> Result<Option<usize>, TlvError> {
    let after_tag = match read_tag(prefix) {
        Ok((_, r)) => r,
        Err(TlvError::Truncated) => return Ok(None),
        Err(e) => return Err(e),
    };
    match read_len(after_tag) {
        Ok((len, r)) => Ok(Some(prefix.len() - r.len() + len)),
        Err(TlvError::Truncated) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The basic four items (基本4情報). Sensitive: its `Debug` shows nothing, it is wiped when
/// dropped, and it is never logged or written outside the encrypted store.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicFour {
    pub name: String,
    pub address: String,
    pub birth_date: CivilDate,
    pub sex: Sex,
}

impl std::fmt::Debug for BasicFour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicFour(..)")
    }
}

impl Drop for BasicFour {
    fn drop(&mut self) {
        self.name.zeroize();
        self.address.zeroize();
    }
}

pub const TAG_BASIC_FOUR: u32 = 0xFF20;
const TAG_NAME: u32 = 0xDF22;
const TAG_ADDRESS: u32 = 0xDF23;
const TAG_BIRTH: u32 = 0xDF24;
const TAG_SEX: u32 = 0xDF25;

/// Parse EF 0002 of 券面事項入力補助AP. Bytes after the `FF20` template (padding) are ignored;
/// unknown tags inside it are skipped.
pub fn basic_four(file: &[u8]) -> Result<BasicFour, TlvError> {
    let (outer, _padding) = read(file)?;
    if outer.tag != TAG_BASIC_FOUR {
        return Err(TlvError::UnexpectedTag {
            expected: TAG_BASIC_FOUR,
            found: outer.tag,
        });
    }
    let (mut name, mut address, mut birth, mut sex) = (None, None, None, None);
    let mut rest = outer.value;
    while !rest.is_empty() {
        let (t, r) = read(rest)?;
        rest = r;
        match t.tag {
            TAG_NAME => name = Some(text(t.value, "name")?),
            TAG_ADDRESS => address = Some(text(t.value, "address")?),
            TAG_BIRTH => {
                let s = std::str::from_utf8(t.value).map_err(|_| TlvError::BadBirthDate)?;
                birth = Some(CivilDate::parse(s).map_err(|_| TlvError::BadBirthDate)?);
            }
            TAG_SEX => {
                let s = std::str::from_utf8(t.value).map_err(|_| TlvError::BadSex)?;
                sex = Some(Sex::from_code(s).ok_or(TlvError::BadSex)?);
            }
            // DF21 (the header) and anything unknown.
            _ => {}
        }
    }
    Ok(BasicFour {
        name: name.ok_or(TlvError::Missing("name"))?,
        address: address.ok_or(TlvError::Missing("address"))?,
        birth_date: birth.ok_or(TlvError::Missing("birth date"))?,
        sex: sex.ok_or(TlvError::Missing("sex"))?,
    })
}

/// UTF-8 text, trailing NUL or space padding removed.
fn text(v: &[u8], what: &'static str) -> Result<String, TlvError> {
    let s = std::str::from_utf8(v).map_err(|_| TlvError::NotText(what))?;
    let s = s.trim_end_matches(['\0', ' ', '\u{3000}']);
    if s.is_empty() || s.chars().any(|c| c.is_control()) {
        return Err(TlvError::NotText(what));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: &[u8], value: &[u8], long: bool) -> Vec<u8> {
        let mut v = tag.to_vec();
        let n = value.len();
        if long || n > 0xFF {
            v.extend([0x82, (n >> 8) as u8, n as u8]);
        } else if n >= 0x80 {
            v.extend([0x81, n as u8]);
        } else {
            v.push(n as u8);
        }
        v.extend_from_slice(value);
        v
    }

    fn file(long: bool, name: &str) -> Vec<u8> {
        let mut inner = tlv(&[0xDF, 0x21], &[0x00, 0x10], long);
        inner.extend(tlv(&[0xDF, 0x22], name.as_bytes(), long));
        inner.extend(tlv(
            &[0xDF, 0x23],
            "東京都千代田区霞が関二丁目1番2号".as_bytes(),
            long,
        ));
        inner.extend(tlv(&[0xDF, 0x24], b"19800229", long));
        inner.extend(tlv(&[0xDF, 0x25], b"2", long));
        let mut f = tlv(&[0xFF, 0x20], &inner, long);
        f.extend([0xFF; 20]);
        f
    }

    #[test]
    fn parses_short_and_long_lengths() {
        for long in [false, true] {
            let b = basic_four(&file(long, "髙橋 花子")).unwrap();
            assert_eq!(b.name, "髙橋 花子");
            assert_eq!(b.birth_date, CivilDate::new(1980, 2, 29).unwrap());
            assert_eq!(b.sex, Sex::Female);
            assert!(b.address.starts_with("東京都"));
        }
        // A name past 127 bytes takes the 81 form.
        let long_name = "あ".repeat(50);
        assert_eq!(
            basic_four(&file(false, &long_name)).unwrap().name,
            long_name
        );
    }

    #[test]
    fn total_len_from_a_prefix() {
        let f = file(true, "山田 太郎");
        let want = f.len() - 20;
        assert_eq!(total_len(&f[..2]).unwrap(), None);
        assert_eq!(total_len(&f[..5]).unwrap(), Some(want));
        assert_eq!(
            total_len(&[0x30, 0x82, 0x03, 0x5F]).unwrap(),
            Some(4 + 0x35F)
        );
        assert_eq!(
            total_len(&[0x30, 0x85, 0, 0, 0]),
            Err(TlvError::BadLength(0x85))
        );
    }

    #[test]
    fn refuses_what_is_wrong() {
        let f = file(false, "山田 太郎");
        assert!(matches!(
            basic_four(&f[..10]),
            Err(TlvError::LengthPastEnd(_))
        ));
        assert!(matches!(
            basic_four(&[0x30, 0x00]),
            Err(TlvError::UnexpectedTag { .. })
        ));
        let no_name = tlv(
            &[0xFF, 0x20],
            &tlv(&[0xDF, 0x24], b"19800101", false),
            false,
        );
        assert_eq!(basic_four(&no_name), Err(TlvError::Missing("name")));
        let mut bad_date = file(false, "山田 太郎");
        let at = bad_date.windows(8).position(|w| w == b"19800229").unwrap();
        bad_date[at + 4..at + 8].copy_from_slice(b"0230");
        assert_eq!(basic_four(&bad_date), Err(TlvError::BadBirthDate));
        assert_eq!(basic_four(&[]), Err(TlvError::Truncated));
        assert_eq!(
            basic_four(&[0xFF, 0x20, 0x80]),
            Err(TlvError::BadLength(0x80))
        );
        assert_eq!(
            basic_four(&[0xFF, 0xA0, 0xA0, 0x01]),
            Err(TlvError::LongTag)
        );
    }

    #[test]
    fn debug_shows_nothing_personal() {
        let b = basic_four(&file(false, "山田 太郎")).unwrap();
        assert_eq!(format!("{b:?}"), "BasicFour(..)");
    }
}
