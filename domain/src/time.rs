//! Calendar dates and wall-clock instants. The model never reads a clock: every "now" or
//! "today" is an argument.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch (UTC). Used for wall time and as-of queries.
pub type Millis = u64;

/// Japan Standard Time is UTC+9 all year (no daylight saving).
pub const JST_OFFSET_MS: i64 = 9 * 3600 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Oldest and newest years a date in the model may carry.
pub const MIN_YEAR: i32 = 1870;
pub const MAX_YEAR: i32 = 2200;

/// Why a date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("not a date: {0:?} (expected YYYYMMDD or YYYY-MM-DD)")]
    Format(String),
    #[error("no such date: {year:04}-{month:02}-{day:02}")]
    NoSuchDay { year: i32, month: u32, day: u32 },
    #[error("year {0} is out of range ({MIN_YEAR}..={MAX_YEAR})")]
    YearOutOfRange(i32),
    #[error("date {date} is in the future (today is {today})")]
    InFuture { date: CivilDate, today: CivilDate },
}

/// A calendar date (proleptic Gregorian), validated.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "(i32, u8, u8)", into = "(i32, u8, u8)")]
pub struct CivilDate {
    year: i32,
    month: u8,
    day: u8,
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

impl CivilDate {
    /// Validate year, month and day.
    pub fn new(year: i32, month: u32, day: u32) -> Result<Self, DateError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(DateError::YearOutOfRange(year));
        }
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(DateError::NoSuchDay { year, month, day });
        }
        // month <= 12 and day <= 31 were just checked.
        Ok(Self {
            year,
            month: month as u8,
            day: day as u8,
        })
    }

    /// Parse `YYYYMMDD` (as on the card) or `YYYY-MM-DD` / `YYYY/MM/DD`.
    pub fn parse(s: &str) -> Result<Self, DateError> {
        let t = s.trim();
        let digits: String = t.chars().filter(|c| !matches!(c, '-' | '/')).collect();
        let seps = t.len() - digits.len();
        let shape_ok = digits.len() == 8
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (seps == 0
                || (seps == 2 && t.len() == 10 && t.as_bytes().get(4) == t.as_bytes().get(7)));
        if !shape_ok {
            return Err(DateError::Format(t.chars().take(40).collect()));
        }
        let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|x| x.parse::<u32>().ok());
        match (num(0..4), num(4..6), num(6..8)) {
            (Some(y), Some(m), Some(d)) => Self::new(y as i32, m, d),
            _ => Err(DateError::Format(t.chars().take(40).collect())),
        }
    }

    pub fn year(&self) -> i32 {
        self.year
    }
    pub fn month(&self) -> u32 {
        u32::from(self.month)
    }
    pub fn day(&self) -> u32 {
        u32::from(self.day)
    }

    /// Days since 1970-01-01 (negative before). Howard Hinnant's days-from-civil formula.
    pub fn days_since_epoch(&self) -> i64 {
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The inverse of [`Self::days_since_epoch`]; `None` outside the supported years.
    pub fn from_days_since_epoch(z: i64) -> Option<Self> {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        Self::new(
            i32::try_from(y).ok()?,
            u32::try_from(m).ok()?,
            u32::try_from(d).ok()?,
        )
        .ok()
    }

    /// The calendar date in Japan at instant `ms`.
    pub fn jst_of(ms: Millis) -> Option<Self> {
        let local = i64::try_from(ms).ok()?.checked_add(JST_OFFSET_MS)?;
        Self::from_days_since_epoch(local.div_euclid(DAY_MS))
    }

    /// Midnight JST at the start of this date, as an instant.
    pub fn jst_midnight(&self) -> Option<Millis> {
        let ms = self
            .days_since_epoch()
            .checked_mul(DAY_MS)?
            .checked_sub(JST_OFFSET_MS)?;
        u64::try_from(ms).ok()
    }

    /// Age in whole years on `on` (0 if `on` is before the birth date).
    pub fn age_on(&self, on: CivilDate) -> u32 {
        let mut years = on.year - self.year;
        if (on.month, on.day) < (self.month, self.day) {
            years -= 1;
        }
        u32::try_from(years).unwrap_or(0)
    }

    /// Refuse a date after `today` (a birth date, for instance).
    pub fn not_after(self, today: CivilDate) -> Result<Self, DateError> {
        if self > today {
            Err(DateError::InFuture { date: self, today })
        } else {
            Ok(self)
        }
    }
}

impl TryFrom<(i32, u8, u8)> for CivilDate {
    type Error = DateError;
    fn try_from((y, m, d): (i32, u8, u8)) -> Result<Self, DateError> {
        Self::new(y, u32::from(m), u32::from(d))
    }
}

impl From<CivilDate> for (i32, u8, u8) {
    fn from(d: CivilDate) -> Self {
        (d.year, d.month, d.day)
    }
}

impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An instant for people: `YYYY-MM-DD HH:MM` in Japan time (JST) — the one form every message
/// that shows a time uses, never raw milliseconds. Outside the calendar: `(time unknown)`.
pub fn jst_text(ms: Millis) -> String {
    let Some(local) = i64::try_from(ms)
        .ok()
        .and_then(|m| m.checked_add(JST_OFFSET_MS))
    else {
        return "(time unknown)".into();
    };
    let day = CivilDate::from_days_since_epoch(local.div_euclid(DAY_MS));
    let min = local.rem_euclid(DAY_MS) / 60_000;
    match day {
        Some(d) => format!("{d} {:02}:{:02}", min / 60, min % 60),
        None => "(time unknown)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn jst_text_is_the_local_date_and_minute() {
        // 2026-12-06 04:50:17 UTC is 13:50 the same day in Japan.
        assert_eq!(jst_text(1_796_532_617_000), "2026-12-06 13:50");
        // 15:30 UTC is past midnight in Japan: the next day.
        assert_eq!(jst_text(1_796_571_000_000), "2026-12-07 00:30");
        assert_eq!(jst_text(0), "1970-01-01 09:00");
        assert_eq!(jst_text(u64::MAX), "(time unknown)");
    }

    #[test]
    fn validates_days() {
        assert!(CivilDate::new(2024, 2, 29).is_ok());
        assert!(CivilDate::new(2023, 2, 29).is_err());
        assert!(CivilDate::new(1900, 2, 29).is_err());
        assert!(CivilDate::new(2000, 2, 29).is_ok());
        assert!(CivilDate::new(2024, 13, 1).is_err());
        assert!(CivilDate::new(2024, 4, 31).is_err());
        assert_eq!(
            CivilDate::new(1500, 1, 1),
            Err(DateError::YearOutOfRange(1500))
        );
    }

    #[test]
    fn parses_card_and_iso_forms() {
        let d = CivilDate::new(1985, 7, 3).unwrap();
        assert_eq!(CivilDate::parse("19850703").unwrap(), d);
        assert_eq!(CivilDate::parse("1985-07-03").unwrap(), d);
        assert_eq!(CivilDate::parse("1985/07/03").unwrap(), d);
        for bad in [
            "",
            "1985-07",
            "1985-0703-",
            "19850732",
            "1985-07/03",
            "１９８５０７０３",
            "abcdefgh",
        ] {
            assert!(CivilDate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jst_dates_and_ages() {
        // 2024-01-01T15:00:00Z is 2024-01-02 00:00 JST.
        let ms = 1_704_121_200_000;
        assert_eq!(
            CivilDate::jst_of(ms).unwrap(),
            CivilDate::new(2024, 1, 2).unwrap()
        );
        assert_eq!(
            CivilDate::jst_of(ms - 1).unwrap(),
            CivilDate::new(2024, 1, 1).unwrap()
        );
        assert_eq!(CivilDate::new(2024, 1, 2).unwrap().jst_midnight(), Some(ms));
        let born = CivilDate::new(2000, 3, 1).unwrap();
        assert_eq!(born.age_on(CivilDate::new(2024, 2, 29).unwrap()), 23);
        assert_eq!(born.age_on(CivilDate::new(2024, 3, 1).unwrap()), 24);
        assert_eq!(born.age_on(CivilDate::new(1999, 1, 1).unwrap()), 0);
    }

    proptest! {
        #[test]
        fn days_round_trip(z in -36_000i64..80_000) {
            let d = CivilDate::from_days_since_epoch(z).unwrap();
            prop_assert_eq!(d.days_since_epoch(), z);
        }
    }
}
