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
    // The first shrink candidate is the most common form of every character. The map works
    // character by character, so each character's form is looked up once per thread and kept
    // (a roster of ten million names has a few thousand distinct kanji).
    SHRUNK.with(|memo| {
        let mut memo = memo.borrow_mut();
        let mut out = String::with_capacity(nfkc.len());
        for c in nfkc.chars() {
            if needs_no_shrink(c) {
                out.push(c);
                continue;
            }
            let form = memo.entry(c).or_insert_with(|| {
                let mut b = [0u8; 4];
                mj_shrink_candidates(&*c.encode_utf8(&mut b), MJShrinkSchemes::ALL)
                    .next()
                    .unwrap_or_else(|| c.to_string())
            });
            out.push_str(form);
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
    tokens(s).concat()
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

    #[test]
    fn bigram_similarity_is_sane() {
        assert_eq!(bigram_similarity("かざし市本町1-2", "かざし市本町1-2"), 1.0);
        assert!(bigram_similarity("かざし市本町1-2", "かざし市本町1-3") > 0.7);
        assert!(bigram_similarity("かざし市本町", "みほん県北町") < 0.2);
    }
}
