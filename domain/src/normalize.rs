//! Japanese text folded for comparison — never for display or storage, which keep the
//! registered glyphs.
//!
//! [`fold`]: Unicode NFKC (full-width Latin and digits, half-width katakana, compatibility
//! forms), katakana to hiragana, 異体字 to their common forms through the MJ shrink map
//! (MJ縮退マップ, IPA/CITPC, CC BY-SA 2.1 JP, via the `jntajis` crate: 髙→高, 﨑→崎, 邉→辺,
//! 齋→斎, 𠮷→吉), and no spaces or middle dots.

use jntajis::codec::mj_shrink::{MJShrinkSchemes, mj_shrink_candidates};
use unicode_normalization::UnicodeNormalization;

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '・' | '･' | '.' | '·' | '\u{3000}')
}

fn kata_to_hira(c: char) -> char {
    match c {
        'ァ'..='ヶ' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
        _ => c,
    }
}

/// Characters the MJ shrink map leaves as they are: ASCII, hiragana and the prolonged sound
/// mark (readings are all of these, so they skip the map's lookup).
fn needs_no_shrink(c: char) -> bool {
    c.is_ascii() || ('\u{3041}'..='\u{309f}').contains(&c) || c == 'ー'
}

/// One token folded: NFKC, hiragana, common glyphs, lower-case Latin.
pub fn fold_token(s: &str) -> String {
    let nfkc: String = s
        .nfkc()
        .map(kata_to_hira)
        .collect::<String>()
        .to_lowercase();
    if nfkc.chars().all(needs_no_shrink) {
        return nfkc;
    }
    shrink(nfkc.chars(), nfkc.len())
}

/// `chars` with each replaced by its first shrink candidate, the most common form. The map
/// works character by character, so each character's form is looked up once per thread and
/// kept (a roster of ten million names has a few thousand distinct kanji).
fn shrink(chars: impl Iterator<Item = char>, len: usize) -> String {
    SHRUNK.with(|memo| {
        let mut memo = memo.borrow_mut();
        let mut out = String::with_capacity(len);
        for c in chars {
            if needs_no_shrink(c) {
                out.push(c);
            } else {
                out.push_str(memo.entry(c).or_insert_with(|| shrink_char(c)));
            }
        }
        out
    })
}

thread_local! {
    static SHRUNK: std::cell::RefCell<rustc_hash::FxHashMap<char, String>> =
        std::cell::RefCell::new(rustc_hash::FxHashMap::default());
}

/// The whole-text shrink, as the map gives it (the reference [`fold_token`] must agree with).
#[cfg(test)]
fn shrink_whole(s: &str) -> String {
    mj_shrink_candidates(s, MJShrinkSchemes::ALL)
        .next()
        .unwrap_or_else(|| s.to_owned())
}

/// The whole text folded, separators removed.
pub fn fold(s: &str) -> String {
    fold_plain(s).unwrap_or_else(|| tokens(s).concat())
}

/// Characters NFKC leaves as they are, that compose with nothing in this set, and that
/// lower-casing leaves as they are (ASCII upper case aside, lowered one by one): the common
/// ideographs, hiragana, katakana, ー, 々, ASCII letters and digits, and the two spaces (both
/// separators; NFKC makes the ideographic one an ASCII space). Almost every registered name and
/// reading is made of these alone.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c,
            ' ' | '\u{3000}' | '々' | 'ー'
            | '\u{3041}'..='\u{3096}'   // hiragana, without the voicing marks
            | '\u{30a1}'..='\u{30f6}'   // katakana, without ヷ–ヺ and the marks
            | '\u{3400}'..='\u{4dbf}'   // CJK extension A
            | '\u{4e00}'..='\u{9fff}'   // CJK unified ideographs
            | '\u{20000}'..='\u{2a6df}' // CJK extension B (𠮷)
        )
}

/// [`fold`] of a text made only of [`is_plain`] characters, one character at a time: for these
/// NFKC is the identity (the ideographic space aside, which is dropped as a separator either
/// way), so neither the normalizer nor the token split is needed. `None` for any other text.
fn fold_plain(s: &str) -> Option<String> {
    if !s.chars().all(is_plain) {
        return None;
    }
    let chars = s
        .chars()
        .filter(|&c| c != ' ' && c != '\u{3000}')
        .map(|c| kata_to_hira(c).to_ascii_lowercase());
    Some(shrink(chars, s.len()))
}

/// The first shrink candidate of one character (its most common form), or itself.
fn shrink_char(c: char) -> String {
    let mut b = [0u8; 4];
    mj_shrink_candidates(&*c.encode_utf8(&mut b), MJShrinkSchemes::ALL)
        .next()
        .unwrap_or_else(|| c.to_string())
}

/// The text's tokens (split at spaces and middle dots), each folded.
pub fn tokens(s: &str) -> Vec<String> {
    split(s).iter().map(|t| fold_token(t)).collect()
}

/// The text's tokens before folding: NFKC, then split at spaces and middle dots.
pub fn split(s: &str) -> Vec<String> {
    s.nfkc()
        .collect::<String>()
        .split(is_separator)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Similarity of two folded strings: Jaccard over character bigrams, in [0, 1].
pub fn bigram_similarity(a: &str, b: &str) -> f64 {
    let grams = |s: &str| {
        let cs: Vec<char> = s.chars().collect();
        let mut g: Vec<(char, char)> = cs
            .windows(2)
            .filter_map(|w| match w {
                [x, y] => Some((*x, *y)),
                _ => None,
            })
            .collect();
        g.sort_unstable();
        g.dedup();
        g
    };
    let (ga, gb) = (grams(a), grams(b));
    if ga.is_empty() && gb.is_empty() {
        return if a == b { 1.0 } else { 0.0 };
    }
    let inter = ga.iter().filter(|x| gb.binary_search(x).is_ok()).count();
    let union = ga.len() + gb.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_by_character_agrees_with_the_whole_text() {
        for s in [
            "髙橋",
            "山﨑 一",
            "渡邉",
            "齋藤 𠮷男",
            "かざし市港町二丁目3番4号",
            "邊見 﨑子",
            "東京都千代田区霞が関1-2-3",
            "ABC髙ｶﾀｶﾅ",
            "澤田 榮一郎",
        ] {
            let nfkc: String = s
                .nfkc()
                .map(kata_to_hira)
                .collect::<String>()
                .to_lowercase();
            assert_eq!(fold_token(s), shrink_whole(&nfkc), "{s}");
        }
    }

    #[test]
    fn variants_fold_together() {
        assert_eq!(fold("髙橋 花子"), fold("高橋　花子"));
        assert_eq!(fold("齋藤"), fold("斎藤"));
        assert_eq!(fold("渡邉"), fold("渡辺"));
        assert_eq!(fold("山﨑"), fold("山崎"));
        assert_eq!(fold("𠮷田"), fold("吉田"));
        assert_eq!(fold("タカハシ ハナコ"), fold("たかはし はなこ"));
        assert_eq!(fold("ﾀｶﾊｼ"), fold("たかはし"));
        assert_eq!(fold("ＡＢＣ１"), "abc1");
        // 斉 is its own character, not a variant of 斎.
        assert_ne!(fold("斉藤"), fold("斎藤"));
        assert_eq!(tokens("髙橋 花子"), vec!["高橋", "花子"]);
    }

    proptest::proptest! {
        /// The one-character-at-a-time fold of plain text is the full fold (NFKC, split,
        /// per-token fold), and text with anything else in it takes the full fold.
        #[test]
        fn the_plain_fold_is_the_full_fold(
            picks in proptest::collection::vec(0usize..PICK.len(), 0..12)
        ) {
            let s: String = picks.iter().filter_map(|&i| PICK.get(i)).collect();
            let full = tokens(&s).concat();
            proptest::prop_assert_eq!(fold(&s), full, "{:?}", s);
        }
    }

    /// Plain characters (variants, katakana, upper case, both spaces) and others that NFKC
    /// changes or composes (voicing marks, half-width kana, full-width Latin, compatibility
    /// ideographs, middle dots).
    const PICK: &[char] = &[
        '髙', '高', '﨑', '邉', '齋', '𠮷', '田', '々', 'あ', 'か', 'ゔ', 'カ', 'ヴ', 'ー', 'ヶ',
        'A', 'z', '7', ' ', '\u{3000}', '\u{3099}', '\u{309a}', '゛', 'ｶ', 'ﾞ', 'Ａ', '１',
        '\u{f900}', '・', '･', 'ヷ', 'é', 'ß', '㈱',
    ];

    #[test]
    fn bigram_similarity_is_sane() {
        assert_eq!(bigram_similarity("かざし市本町1-2", "かざし市本町1-2"), 1.0);
        assert!(bigram_similarity("かざし市本町1-2", "かざし市本町1-3") > 0.7);
        assert!(bigram_similarity("かざし市本町", "みほん県北町") < 0.2);
    }
}
