//! Dates of birth as people write them on Japanese forms, and how two dates may be one.
//!
//! [`parse_birth_date`] reads ISO (`1980-03-04`), slashes and dots (`1969/7/20`, `1957.8.25`),
//! eight digits (`19781103`), `年月日` with a Western or an era year (`1975年1月7日`,
//! `昭和55年3月4日`, `平成元年1月8日`, kanji numerals `昭和三十年五月五日`), the era initials
//! (`S55.3.4`, `H8.9.14`, `R3.1.15`) and full-width digits. A date it is not sure of is marked
//! inexact: an era date the era did not have (`平成元年1月7日`) or a two-digit year with no era
//! (`62.8.15`, read as 1962).
//!
//! [`near`] says whether two dates differ as a typo does: one digit of YYYYMMDD, two
//! neighbouring digits swapped, day and month swapped, or the year one off with the same day
//! (an era converted one year wrong).

use crate::address::kanji_numerals_to_digits;
use crate::time::CivilDate;
use unicode_normalization::UnicodeNormalization;

/// A parsed date of birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Birth {
    pub date: CivilDate,
    /// False when the text does not pin the date down (an era date the era did not have, a
    /// two-digit year).
    pub exact: bool,
}

/// The eras: names, initials, first day (the year of the first day is 元年).
const ERAS: [(&str, char, (i32, u32, u32)); 5] = [
    ("明治", 'm', (1868, 10, 23)),
    ("大正", 't', (1912, 7, 30)),
    ("昭和", 's', (1926, 12, 25)),
    ("平成", 'h', (1989, 1, 8)),
    ("令和", 'r', (2019, 5, 1)),
];

/// A date of birth from the way it was written; `None` if it is not a date.
pub fn parse_birth_date(s: &str) -> Option<Birth> {
    let t: String = s.nfkc().filter(|c| !c.is_whitespace()).collect::<String>();
    let t = kanji_numerals_to_digits(&t.replace('元', "1")).to_lowercase();
    // An era, by name or initial.
    let mut era = None;
    let mut rest = t.as_str();
    for (i, (name, initial, _)) in ERAS.iter().enumerate() {
        if let Some(r) = rest.strip_prefix(name) {
            era = Some(i);
            rest = r;
            break;
        }
        if let Some(r) = rest.strip_prefix(*initial)
            && r.starts_with(|c: char| c.is_ascii_digit())
        {
            era = Some(i);
            rest = r;
            break;
        }
    }
    let nums: Vec<&str> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .collect();
    let num = |p: &str| p.parse::<u32>().ok();
    let (y, m, d, ylen) = match nums.as_slice() {
        [one] if one.len() == 8 && era.is_none() => (
            num(one.get(..4)?)?,
            num(one.get(4..6)?)?,
            num(one.get(6..)?)?,
            4,
        ),
        [y, m, d] => (num(y)?, num(m)?, num(d)?, y.len()),
        _ => return None,
    };
    match era {
        Some(i) => {
            let (_, _, (y0, m0, d0)) = *ERAS.get(i)?;
            let year = y0 + i32::try_from(y).ok()? - 1;
            let date = CivilDate::new(year, m, d).ok()?;
            let start = CivilDate::new(y0, m0, d0).ok()?;
            let before_next = match ERAS.get(i + 1) {
                Some((_, _, (y1, m1, d1))) => date < CivilDate::new(*y1, *m1, *d1).ok()?,
                None => true,
            };
            Some(Birth {
                date,
                exact: y >= 1 && date >= start && before_next,
            })
        }
        None if ylen == 4 => Some(Birth {
            date: CivilDate::new(i32::try_from(y).ok()?, m, d).ok()?,
            exact: true,
        }),
        None if ylen <= 2 => Some(Birth {
            date: CivilDate::new(1900 + i32::try_from(y).ok()?, m, d).ok()?,
            exact: false,
        }),
        None => None,
    }
}

/// Whether two different dates differ as a typo or a slip does (see the module doc).
pub fn near(a: CivilDate, b: CivilDate) -> bool {
    if a == b {
        return false;
    }
    let digits =
        |x: CivilDate| format!("{:04}{:02}{:02}", x.year(), x.month(), x.day()).into_bytes();
    let (da, db) = (digits(a), digits(b));
    if da.len() == db.len() {
        let diff: Vec<usize> = (0..da.len()).filter(|&i| da.get(i) != db.get(i)).collect();
        match diff.as_slice() {
            [_] => return true,
            [i, j] if *j == i + 1 && da.get(*i) == db.get(*j) && da.get(*j) == db.get(*i) => {
                return true;
            }
            _ => {}
        }
    }
    if a.year() == b.year() && a.month() == b.day() && a.day() == b.month() {
        return true;
    }
    (a.year() - b.year()).abs() == 1 && a.month() == b.month() && a.day() == b.day()
}

/// Every date [`near`] `b`: a digit of YYYYMMDD changed, two neighbouring digits swapped, the
/// month and day swapped, or the year one off — the dates a roster store can look up by birth
/// date instead of testing every bearer of a name. Sorted, without `b`.
pub fn near_dates(b: CivilDate) -> Vec<CivilDate> {
    let digits = format!("{:04}{:02}{:02}", b.year(), b.month(), b.day()).into_bytes();
    let date = |ds: &[u8]| -> Option<CivilDate> {
        let n = |r: std::ops::Range<usize>| -> Option<u32> {
            std::str::from_utf8(ds.get(r)?).ok()?.parse().ok()
        };
        if ds.len() != 8 {
            return None;
        }
        CivilDate::new(i32::try_from(n(0..4)?).ok()?, n(4..6)?, n(6..8)?).ok()
    };
    let mut out = Vec::new();
    for i in 0..digits.len() {
        for c in b'0'..=b'9' {
            let mut d = digits.clone();
            if let Some(x) = d.get_mut(i) {
                *x = c;
            }
            out.extend(date(&d));
        }
        if i + 1 < digits.len() {
            let mut d = digits.clone();
            d.swap(i, i + 1);
            out.extend(date(&d));
        }
    }
    out.extend(CivilDate::new(b.year(), b.day(), b.month()).ok());
    out.extend(CivilDate::new(b.year() - 1, b.month(), b.day()).ok());
    out.extend(CivilDate::new(b.year() + 1, b.month(), b.day()).ok());
    out.retain(|d| near(*d, b));
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `near_dates` lists exactly the dates `near` accepts: every date of the calendar checked.
    #[test]
    fn near_dates_are_every_date_near_and_no_other() {
        let all: Vec<CivilDate> = (crate::time::MIN_YEAR..=crate::time::MAX_YEAR)
            .flat_map(|y| (1..=12).flat_map(move |m| (1..=31).map(move |d| (y, m, d))))
            .filter_map(|(y, m, d)| CivilDate::new(y, m, d).ok())
            .collect();
        for b in [
            d(1985, 11, 11),
            d(2000, 2, 29),
            d(1999, 12, 31),
            d(1960, 1, 10),
            d(1870, 1, 1),
            d(2200, 12, 31),
            d(1943, 7, 4),
        ] {
            let brute: Vec<CivilDate> = all.iter().copied().filter(|x| near(*x, b)).collect();
            assert_eq!(near_dates(b), brute, "{b:?}");
            assert!(!brute.is_empty());
        }
    }

    fn d(y: i32, m: u32, day: u32) -> CivilDate {
        CivilDate::new(y, m, day).unwrap()
    }

    #[test]
    fn notations() {
        let exact = |s: &str| parse_birth_date(s).filter(|b| b.exact).map(|b| b.date);
        assert_eq!(exact("昭和55年3月4日"), Some(d(1980, 3, 4)));
        assert_eq!(exact("S51.10.8"), Some(d(1976, 10, 8)));
        assert_eq!(exact("1969/7/20"), Some(d(1969, 7, 20)));
        assert_eq!(exact("平成元年1月8日"), Some(d(1989, 1, 8)));
        assert_eq!(exact("昭和64年1月7日"), Some(d(1989, 1, 7)));
        assert_eq!(exact("令和元年5月1日"), Some(d(2019, 5, 1)));
        assert_eq!(exact("平成31年4月30日"), Some(d(2019, 4, 30)));
        assert_eq!(exact("大正13年2月11日"), Some(d(1924, 2, 11)));
        assert_eq!(exact("19781103"), Some(d(1978, 11, 3)));
        assert_eq!(exact("１９６３年１０月２日"), Some(d(1963, 10, 2)));
        assert_eq!(exact("昭和三十年五月五日"), Some(d(1955, 5, 5)));
        assert_eq!(exact("R3.1.15"), Some(d(2021, 1, 15)));
        assert_eq!(exact("1980-03-04"), Some(d(1980, 3, 4)));
        let inexact = parse_birth_date("平成元年1月7日").unwrap();
        assert_eq!((inexact.date, inexact.exact), (d(1989, 1, 7), false));
        let two = parse_birth_date("62.8.15").unwrap();
        assert_eq!((two.date, two.exact), (d(1962, 8, 15), false));
        assert_eq!(parse_birth_date("平成5年2月30日"), None);
        assert_eq!(parse_birth_date("hello"), None);
    }

    #[test]
    fn typos_are_near() {
        assert!(near(d(1992, 7, 14), d(1992, 7, 17)));
        assert!(near(d(1978, 3, 21), d(1987, 3, 21)));
        assert!(near(d(1984, 5, 9), d(1984, 9, 5)));
        assert!(near(d(1980, 3, 4), d(1981, 3, 4)));
        assert!(near(d(1983, 10, 16), d(1983, 1, 16)));
        assert!(!near(d(1974, 5, 12), d(1981, 9, 3)));
        assert!(!near(d(1930, 4, 10), d(1993, 4, 10)));
        assert!(!near(d(1980, 3, 4), d(1980, 3, 4)));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}", t in "[0-9０-９年月日./\\-元昭和平成令SHRshr一二三十]{0,16}") {
            let _ = parse_birth_date(&s);
            let _ = parse_birth_date(&t);
        }
    }
}
