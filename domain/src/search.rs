//! Staff search without a card: by kana, kanji, birth date (Western or 和暦) or address, all
//! folded (異体字, kana/katakana, full-width) so 髙橋 finds 高橋 and タナカ finds たなか.
//!
//! Every word of the query must match one field: a date must equal the birth date, any other
//! word must be part of the folded name, reading or address. Linear over a pre-folded roster;
//! the indexed search for ten-million-row rosters is the roster store's job.

use crate::ids::PersonId;
use crate::normalize::fold;
use crate::roster::Roster;
use crate::time::CivilDate;
use unicode_normalization::UnicodeNormalization;

/// The roster folded once for search.
#[derive(Debug, Clone, Default)]
pub struct SearchIndex {
    rows: Vec<Row>,
    /// A roster on disk searches its own indexes.
    store: Option<std::sync::Arc<dyn crate::roster::RosterStore>>,
}

#[derive(Debug, Clone)]
struct Row {
    person: PersonId,
    name: String,
    kana: String,
    address: String,
    birth: CivilDate,
}

/// One word of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Date(CivilDate),
    /// A year alone (four digits, or an era year like 昭和55年).
    Year(i32),
    Text(String),
}

impl SearchIndex {
    pub fn new(roster: &Roster) -> Self {
        if let Some(store) = roster.store() {
            return SearchIndex {
                rows: Vec::new(),
                store: Some(store.clone()),
            };
        }
        let rows = roster
            .entries()
            .iter()
            .map(|e| Row {
                person: e.person,
                name: fold(e.name.as_str()),
                kana: fold(e.kana.as_str()),
                address: fold(e.address.as_str()),
                birth: e.birth_date,
            })
            .collect();
        SearchIndex { rows, store: None }
    }

    /// Persons matching every word of `query`, in roster order, at most `limit`.
    pub fn search(&self, query: &str, limit: usize) -> Vec<PersonId> {
        if let Some(store) = &self.store {
            return store.search(query, limit);
        }
        let q = Query::parse(query);
        self.rows
            .iter()
            .filter(|r| q.matches(&r.name, &r.kana, &r.address, Some(r.birth)))
            .take(limit)
            .map(|r| r.person)
            .collect()
    }
}

/// A staff query, parsed once: dates (Western or 和暦), years, and folded words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query(Vec<Word>);

impl Query {
    pub fn parse(query: &str) -> Query {
        Query(parse(query))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Whether every word matches: a date the birth date, a year its year, any other word part
    /// of the folded name, reading or address (all three already folded by the caller).
    pub fn matches(&self, name: &str, kana: &str, address: &str, birth: Option<CivilDate>) -> bool {
        !self.0.is_empty()
            && self.0.iter().all(|w| match w {
                Word::Date(d) => birth == Some(*d),
                Word::Year(y) => birth.is_some_and(|b| b.year() == *y),
                Word::Text(t) => {
                    name.contains(t.as_str())
                        || kana.contains(t.as_str())
                        || address.contains(t.as_str())
                }
            })
    }
}

fn parse(query: &str) -> Vec<Word> {
    // Words at white space only: a date's dots are not separators here.
    let q: String = query.nfkc().collect();
    q.split_whitespace()
        .filter_map(|w| {
            if let Some(d) = parse_date(w) {
                return Some(d);
            }
            let f = fold(w);
            (!f.is_empty()).then_some(Word::Text(f))
        })
        .collect()
}

/// Eras: (letter, name, first Western year − 1).
const ERAS: [(char, &str, i32); 5] = [
    ('M', "明治", 1867),
    ('T', "大正", 1911),
    ('S', "昭和", 1925),
    ('H', "平成", 1988),
    ('R', "令和", 2018),
];

/// A full date typed by staff: `1980-02-29`, `19800229`, `1980/2/29`, `S55.2.29` or
/// `昭和55年2月29日` (full-width digits accepted).
pub fn parse_typed_date(s: &str) -> Option<CivilDate> {
    let w: String = s.trim().nfkc().filter(|c| !c.is_whitespace()).collect();
    match parse_date(&w)? {
        Word::Date(d) => Some(d),
        _ => None,
    }
}

/// `1980-02-29`, `19800229`, `1980/2/29`, `S55.2.29`, `昭和55年2月29日`, `1980` or `昭和55年`.
fn parse_date(w: &str) -> Option<Word> {
    if let Ok(d) = CivilDate::parse(w) {
        return Some(Word::Date(d));
    }
    let (base, rest) = match ERAS.iter().find_map(|(c, name, base)| {
        w.strip_prefix(*c)
            .or_else(|| w.strip_prefix(c.to_ascii_lowercase()))
            .or_else(|| w.strip_prefix(name))
            .map(|r| (*base, r))
    }) {
        Some((b, r)) => (Some(b), r),
        None => (None, w),
    };
    // 元年 is year 1 of an era.
    let rest = match (base, rest.strip_prefix('元')) {
        (Some(_), Some(r)) => format!("1{r}"),
        _ => rest.to_owned(),
    };
    let nums: Vec<&str> = rest
        .split(['.', '/', '-', '年', '月', '日'])
        .filter(|s| !s.is_empty())
        .collect();
    if nums
        .iter()
        .any(|n| !n.bytes().all(|b| b.is_ascii_digit()) || n.len() > 4)
    {
        return None;
    }
    let num = |i: usize| nums.get(i).and_then(|n| n.parse::<i32>().ok());
    let year = match (base, num(0)?) {
        (Some(b), n) if (1..=64).contains(&n) => b + n,
        (Some(_), _) => return None,
        (None, y) if (1868..=2100).contains(&y) && nums.first()?.len() == 4 => y,
        (None, _) => return None,
    };
    match nums.len() {
        1 => Some(Word::Year(year)),
        3 => {
            let (m, d) = (u32::try_from(num(1)?).ok()?, u32::try_from(num(2)?).ok()?);
            CivilDate::new(year, m, d).ok().map(Word::Date)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_every_form() {
        let d = Word::Date(CivilDate::new(1980, 2, 29).unwrap());
        for w in [
            "1980-02-29",
            "19800229",
            "1980/2/29",
            "S55.2.29",
            "s55.2.29",
            "昭和55年2月29日",
        ] {
            assert_eq!(parse_date(w), Some(d.clone()), "{w}");
        }
        assert_eq!(parse_date("昭和55年"), Some(Word::Year(1980)));
        assert_eq!(
            parse_date("R1.5.1"),
            Some(Word::Date(CivilDate::new(2019, 5, 1).unwrap()))
        );
        assert_eq!(parse_date("1980"), Some(Word::Year(1980)));
        assert_eq!(
            parse_date("令和元年5月1日"),
            Some(Word::Date(CivilDate::new(2019, 5, 1).unwrap()))
        );
        assert_eq!(parse_date("S99.1.1"), None);
        assert_eq!(parse_date("123"), None);
        assert_eq!(parse_date("中央1"), None);
        assert_eq!(
            parse_typed_date(" Ｓ５５．２．２９ "),
            Some(CivilDate::new(1980, 2, 29).unwrap())
        );
        assert_eq!(parse_typed_date("昭和55年"), None);
    }
}
