//! Japanese addresses compared across the ways people write them.
//!
//! [`AddressKey::new`] takes an address already [`crate::normalize::fold`]ed (NFKC, widths,
//! hiragana, variant glyphs, no spaces) and drops what people add or leave out: a postal code,
//! the prefecture, a 郡, 大字/字, a Kyoto street direction (四条通烏丸東入); kanji numerals
//! become Arabic (二十四, 一〇); 丁目/番地/番/号/号室/部 after a number, の/ノ/之 between
//! numbers and the hyphen look-alikes (−, ‐, ー after a digit) become one `-`; ヶ/ケ/が
//! between ideographs are one. What remains is compared as the 町名 (the text before the
//! first number, after the last 市 or 区, so a merged municipality — 清水市 and 静岡市清水区 —
//! still agrees) and the house numbers, of which the shorter list must be the longer one's
//! start (a building or room left out).

use smallvec::SmallVec;

/// The 47 prefectures, as an address may start with them.
const PREFECTURES: [&str; 47] = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

/// How two addresses compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// The same place written two ways.
    Same,
    /// Clearly another place: another 町名, or house numbers that differ.
    Differs,
    /// Too little to say.
    Unknown,
}

/// An address reduced for comparison.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressKey {
    /// The text before the first number, after the last 市 or 区.
    pub town: String,
    /// The numbers, in order (丁目, 番, 号, room).
    pub numbers: SmallVec<[u32; 6]>,
    /// The whole reduced address.
    pub text: String,
}

fn is_ideograph(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{20000}'..='\u{3134f}')
}

fn kanji_digit(c: char) -> Option<u32> {
    Some(match c {
        '〇' | '零' => 0,
        '一' => 1,
        '二' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

fn kanji_unit(c: char) -> Option<u32> {
    Some(match c {
        '十' => 10,
        '百' => 100,
        '千' => 1000,
        _ => return None,
    })
}

/// The value of a run of kanji numerals: with 十/百/千 (二十四 = 24, 千八百 = 1800) or
/// positional (一〇 = 10, 二〇二 = 202). `None` if it overflows.
fn kanji_value(run: &[char]) -> Option<u32> {
    if run.iter().any(|&c| kanji_unit(c).is_some()) {
        let (mut total, mut digit) = (0u32, None::<u32>);
        for &c in run {
            if let Some(u) = kanji_unit(c) {
                total = total.checked_add(digit.unwrap_or(1).checked_mul(u)?)?;
                digit = None;
            } else {
                let d = kanji_digit(c)?;
                digit = Some(digit.unwrap_or(0).checked_mul(10)?.checked_add(d)?);
            }
        }
        total.checked_add(digit.unwrap_or(0))
    } else {
        run.iter().try_fold(0u32, |acc, &c| {
            acc.checked_mul(10)?.checked_add(kanji_digit(c)?)
        })
    }
}

/// Kanji numerals written as Arabic digits (昭和三十年 → 昭和30年, 二丁目十番 → 2丁目10番),
/// where they count something: before 丁目, 番, 号, 条, 部, 地割, 線, の, 之, 年, 月, 日, a
/// hyphen, a digit or the end (千里山 and 三軒茶屋 are names).
pub fn kanji_numerals_to_digits(s: &str) -> String {
    let cs: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = cs.get(i) {
        if kanji_digit(c).is_some() || kanji_unit(c).is_some() {
            let start = i;
            while cs
                .get(i)
                .is_some_and(|&c| kanji_digit(c).is_some() || kanji_unit(c).is_some())
            {
                i += 1;
            }
            let run = cs.get(start..i).unwrap_or(&[]);
            let counts = match cs.get(i) {
                None => true,
                Some(&n) => {
                    n.is_ascii_digit()
                        || matches!(
                            n,
                            '丁' | '番'
                                | '号'
                                | '条'
                                | '部'
                                | '地'
                                | '線'
                                | 'の'
                                | 'ノ'
                                | '之'
                                | '年'
                                | '月'
                                | '日'
                                | '-'
                                | '\u{2212}'
                                | 'ー'
                                | '.'
                                | '/'
                        )
                }
            };
            match kanji_value(run).filter(|_| counts) {
                Some(v) => out.push_str(&v.to_string()),
                None => out.extend(run.iter()),
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Removes a Kyoto street direction: from just after the last 区 before a 通 to the end of
/// 上る/下る/東入/西入 (with an optional る).
fn drop_kyoto_directions(s: &str) -> String {
    let Some(tori) = s.find('通') else {
        return s.to_owned();
    };
    let start = s
        .get(..tori)
        .and_then(|h| h.rfind('区'))
        .map_or(0, |i| i + '区'.len_utf8());
    let rest = s.get(tori..).unwrap_or("");
    let mut end = None;
    for m in [
        "東入る",
        "西入る",
        "上る",
        "下る",
        "東入",
        "西入",
        "あがる",
        "さがる",
    ] {
        if let Some(i) = rest.find(m) {
            let e = tori + i + m.len();
            end = Some(end.map_or(e, |x: usize| x.min(e)));
        }
    }
    match (end, s.get(..start), s.get(end.unwrap_or(0)..)) {
        (Some(_), Some(head), Some(tail)) if start <= tori => format!("{head}{tail}"),
        _ => s.to_owned(),
    }
}

impl AddressKey {
    /// The key of a folded address ([`crate::normalize::fold`]).
    pub fn new(folded: &str) -> Self {
        let mut s: &str = folded;
        // Postal code: 〒 and/or NNN-NNNN (or seven digits) at the start.
        s = s.trim_start_matches('〒');
        let digits = |t: &str| t.chars().take_while(char::is_ascii_digit).count();
        if digits(s) == 3 && s.get(3..4) == Some("-") && s.get(4..).is_some_and(|t| digits(t) == 4)
        {
            s = s.get(8..).unwrap_or("");
        } else if digits(s) == 7 {
            s = s.get(7..).unwrap_or("");
        }
        for p in PREFECTURES {
            if let Some(rest) = s.strip_prefix(p) {
                s = rest;
                break;
            }
        }
        let mut t = s.replace("大字", "").replace('字', "");
        // A 郡 before any 市: the 町 or 村 follows it.
        if let Some(g) = t.find('郡')
            && !t.get(..g).unwrap_or("").contains('市')
        {
            t = t.get(g + '郡'.len_utf8()..).unwrap_or("").to_owned();
        }
        let t = kanji_numerals_to_digits(&drop_kyoto_directions(&t));
        // Markers after a number become one hyphen.
        let cs: Vec<char> = t.chars().collect();
        let mut out = String::with_capacity(t.len());
        let mut i = 0;
        let last = |o: &String| o.chars().last();
        while let Some(&c) = cs.get(i) {
            let after_digit = last(&out).is_some_and(|l| l.is_ascii_digit());
            let after_num = after_digit || last(&out) == Some('-');
            let rest: String = cs
                .get(i..(i + 3).min(cs.len()))
                .unwrap_or(&[])
                .iter()
                .collect();
            let marker = ["丁目", "番地", "号室", "番", "号", "部", "地割"]
                .iter()
                .find(|m| rest.starts_with(**m));
            if after_digit && let Some(m) = marker {
                out.push('-');
                i += m.chars().count();
                continue;
            }
            if after_num && matches!(c, 'の' | '之') {
                if !out.ends_with('-') {
                    out.push('-');
                }
                i += 1;
                continue;
            }
            if after_digit
                && matches!(
                    c,
                    '-' | '\u{2010}'
                        | '\u{2011}'
                        | '\u{2012}'
                        | '\u{2013}'
                        | '\u{2014}'
                        | '\u{2015}'
                        | '\u{2212}'
                        | 'ー'
                        | '\u{ff70}'
                )
            {
                out.push('-');
                i += 1;
                continue;
            }
            if c == '-' && out.ends_with('-') {
                i += 1;
                continue;
            }
            // ヶ, ケ, け and が between ideographs (茅ヶ崎, 自由が丘) as one.
            let prev_ideo = last(&out).is_some_and(is_ideograph);
            let next_ideo = cs.get(i + 1).is_some_and(|&n| is_ideograph(n));
            if prev_ideo && next_ideo && matches!(c, 'ゖ' | 'け' | 'が' | 'ヶ' | 'ケ') {
                out.push('ヶ');
                i += 1;
                continue;
            }
            out.push(c);
            i += 1;
        }
        let text = out.trim_end_matches('-').to_owned();
        let first_digit = text
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(text.len());
        let head = text.get(..first_digit).unwrap_or("");
        let town = head
            .rfind(['市', '区'])
            .and_then(|i| head.get(i + '市'.len_utf8()..))
            .unwrap_or(head)
            .to_owned();
        let mut numbers = SmallVec::new();
        let mut n: Option<u32> = None;
        for c in text.get(first_digit..).unwrap_or("").chars() {
            match c.to_digit(10) {
                Some(d) => n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d)),
                None => {
                    if let Some(v) = n.take() {
                        numbers.push(v);
                    }
                }
            }
        }
        numbers.extend(n);
        AddressKey {
            town,
            numbers,
            text,
        }
    }

    /// How this address compares with another.
    pub fn agreement(&self, other: &AddressKey) -> Agreement {
        let k = self.numbers.len().min(other.numbers.len());
        let numbers_agree = self.numbers.get(..k) == other.numbers.get(..k);
        let (a, b) = (self.town.as_str(), other.town.as_str());
        let towns_agree =
            a == b || (!a.is_empty() && !b.is_empty() && (a.ends_with(b) || b.ends_with(a)));
        if k > 0 && !numbers_agree {
            return Agreement::Differs;
        }
        if !a.is_empty() && !b.is_empty() && !towns_agree {
            return Agreement::Differs;
        }
        if k > 0 && towns_agree && (!a.is_empty() || self.text == other.text) {
            return Agreement::Same;
        }
        if k > 0 && a.is_empty() && b.is_empty() {
            // Both start with their numbers after the 市/区 (札幌の条・丁目): compare whole.
            return if self.text.ends_with(&other.text) || other.text.ends_with(&self.text) {
                Agreement::Same
            } else {
                Agreement::Unknown
            };
        }
        Agreement::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::fold;

    fn agree(a: &str, b: &str) -> Agreement {
        AddressKey::new(&fold(a)).agreement(&AddressKey::new(&fold(b)))
    }

    #[test]
    fn notations_agree() {
        for (a, b) in [
            (
                "東京都世田谷区三軒茶屋1丁目27番9号",
                "世田谷区三軒茶屋1-27-9",
            ),
            ("大阪府大阪市北区梅田二丁目十番五号", "大阪市北区梅田2-10-5"),
            ("東京都大田区蒲田５－１３－２", "東京都大田区蒲田5-13-2"),
            (
                "兵庫県神戸市中央区三宮町三丁目一〇番一号",
                "兵庫県神戸市中央区三宮町3丁目10番1号",
            ),
            ("長野県長野市大字鶴賀1205番地3", "長野県長野市鶴賀1205-3"),
            (
                "熊本県上益城郡益城町大字宮園812番地の2",
                "熊本県益城町宮園812-2",
            ),
            (
                "北海道札幌市北区北24条西6丁目2番15号",
                "北海道札幌市北区北二十四条西六丁目2-15",
            ),
            (
                "京都府京都市下京区四条通烏丸東入長刀鉾町21番地",
                "京都府京都市下京区長刀鉾町21",
            ),
            (
                "静岡県清水市入船町13番5号",
                "静岡県静岡市清水区入船町13番5号",
            ),
            (
                "宮城県仙台市青葉区一番町4ー7ー12",
                "宮城県仙台市青葉区一番町4-7-12",
            ),
            (
                "〒160-0022 東京都新宿区新宿5丁目12番4号",
                "東京都新宿区新宿5-12-4",
            ),
            (
                "神奈川県茅ヶ崎市東海岸北3丁目7番12号",
                "神奈川県茅ケ崎市東海岸北3丁目7番12号",
            ),
            (
                "大阪府吹田市千里山西5丁目1番9号 千里山ハイツ105",
                "大阪府吹田市千里山西5丁目1番9号",
            ),
        ] {
            assert_eq!(agree(a, b), Agreement::Same, "{a} / {b}");
        }
    }

    #[test]
    fn real_differences_differ() {
        for (a, b) in [
            ("三重県津市大門7番15号", "三重県津市大門7番51号"),
            (
                "東京都練馬区豊玉北4丁目22番5号",
                "東京都練馬区豊玉北5丁目22番5号",
            ),
            (
                "千葉県柏市柏2丁目9番4号 メゾン柏203",
                "千葉県柏市柏2丁目9番4号 メゾン柏302",
            ),
            ("埼玉県川越市新富町2丁目8番3号", "千葉県柏市柏4丁目2番5号"),
        ] {
            assert_eq!(agree(a, b), Agreement::Differs, "{a} / {b}");
        }
    }

    #[test]
    fn kanji_numerals() {
        assert_eq!(kanji_numerals_to_digits("二十四条"), "24条");
        assert_eq!(kanji_numerals_to_digits("一〇番"), "10番");
        assert_eq!(
            kanji_numerals_to_digits("昭和三十年五月五日"),
            "昭和30年5月5日"
        );
        assert_eq!(kanji_numerals_to_digits("千八百"), "1800");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}", t in "[0-9一二三十〇丁目番地号の之ー−‐ 市区町字郡通東入る]{0,30}") {
            let a = AddressKey::new(&fold(&s));
            let b = AddressKey::new(&fold(&t));
            let _ = a.agreement(&b);
            let _ = kanji_numerals_to_digits(&s);
        }
    }
}
