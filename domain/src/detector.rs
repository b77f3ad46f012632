//! The detector: rules over the merged state that find double votes and duplicate evacuees.
//!
//! Every alert is a pure function of the event set (plus the deployment and roster every node
//! shares): its id is a hash of its kind, subjects and evidence, so every node that holds the
//! same events shows the same alerts with the same ids, and a resolution event (which names the
//! id) means the same thing everywhere.
//!
//! Alerts are kept per *subject* (a voter, a person, a household, a walk-in registration). The
//! full run computes every subject; the incremental run recomputes only the subjects an arriving
//! event touches. The property tests check that both give identical alerts in any order.

use crate::address::{AddressKey, Agreement};
use crate::clusters::Clusters;
use crate::deployment::{Deployment, DeploymentKind, SiteKind};
use crate::event::{Event, EventBody, VoteMode};
use crate::ids::{AlertId, EventId, HouseholdRef, PersonId, PersonRef, SiteId};
use crate::normalize::bigram_similarity;
use crate::roster::{Roster, RosterEntry, RosterStore, Sex};
use crate::state::State;
use crate::time::CivilDate;
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    /// 二重投票: more than one check-in not undone for one voter.
    DoubleVote,
    /// An election-day check-in at a station that does not serve the voter's 投票区.
    WrongPrecinct,
    /// A check-in for a voter flagged ineligible or already voted (absentee, early) in the roster.
    NotEligible,
    /// A check-in that overrode a block: authorised by two officers, shown for review.
    OverrideReview,
    /// An early vote outside the early-voting period, or an election-day vote on another day.
    OutsideVotingPeriod,
    /// The same person registered (present or on leave) at two sites.
    PresentAtTwoSites,
    /// A roster household registered at more than one site.
    HouseholdSplit,
    /// A walk-in who is probably a roster person or an earlier walk-in.
    LikelyDuplicate,
    /// … possibly.
    PossibleDuplicate,
    /// A not-same assertion between two records that same-as assertions join.
    AssertionConflict,
}

impl AlertKind {
    pub fn code(self) -> &'static str {
        match self {
            AlertKind::DoubleVote => "double-vote",
            AlertKind::WrongPrecinct => "wrong-precinct",
            AlertKind::NotEligible => "not-eligible",
            AlertKind::OverrideReview => "override-review",
            AlertKind::OutsideVotingPeriod => "outside-voting-period",
            AlertKind::PresentAtTwoSites => "present-at-two-sites",
            AlertKind::HouseholdSplit => "household-split",
            AlertKind::LikelyDuplicate => "likely-duplicate",
            AlertKind::PossibleDuplicate => "possible-duplicate",
            AlertKind::AssertionConflict => "assertion-conflict",
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            AlertKind::DoubleVote => "二重投票の疑い",
            AlertKind::WrongPrecinct => "投票区が異なる",
            AlertKind::NotEligible => "選挙権なし・投票済みの記載",
            AlertKind::OverrideReview => "承認による受付（要確認）",
            AlertKind::OutsideVotingPeriod => "投票期間外の受付",
            AlertKind::PresentAtTwoSites => "複数の避難所に在所",
            AlertKind::HouseholdSplit => "世帯が複数の避難所に分かれている",
            AlertKind::LikelyDuplicate => "同一人物の可能性が高い",
            AlertKind::PossibleDuplicate => "同一人物の可能性あり",
            AlertKind::AssertionConflict => "同一人物の判断が矛盾",
        }
    }
}

/// Why two records may be one person.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchReason {
    /// The names are equal once folded; `variants` lists the glyph pairs that differ (髙→高).
    NameSame {
        variants: Vec<(char, char)>,
    },
    /// The same family and given names, in the other order.
    NameSwapped,
    /// The same family name only.
    FamilyNameSame,
    /// The same given name, another family name (a marriage, an adoption).
    GivenNameSame,
    /// The same name, one written in hiragana and the other in katakana.
    NameKanaScript,
    ReadingSame,
    /// The readings disagree (the same kanji read two ways).
    ReadingDiffers,
    BirthDateSame,
    /// The same date, but one was written without pinning it down (a two-digit year, an era
    /// date the era did not have).
    BirthDateUncertain,
    /// Birth dates a typo apart (a digit, two digits swapped, day and month swapped).
    BirthDateNear,
    BirthYearSame,
    /// The same address written two ways.
    AddressSame,
    /// Addresses that differ (another 町名 or house number).
    AddressDiffers,
    /// Addresses alike (similarity in per cent).
    AddressNear(u8),
}

impl MatchReason {
    /// In words, for the reviewing official.
    pub fn explain_ja(&self) -> String {
        match self {
            MatchReason::NameSame { variants } if variants.is_empty() => "氏名一致".into(),
            MatchReason::NameSame { variants } => {
                let v: Vec<String> = variants.iter().map(|(a, b)| format!("{a}→{b}")).collect();
                format!("氏名の異体字 {} が一致", v.join("・"))
            }
            MatchReason::NameSwapped => "姓と名を入れ替えると一致".into(),
            MatchReason::FamilyNameSame => "姓が一致".into(),
            MatchReason::GivenNameSame => "名が一致（姓は異なる）".into(),
            MatchReason::NameKanaScript => "氏名がひらがなとカタカナで一致".into(),
            MatchReason::ReadingSame => "読み一致".into(),
            MatchReason::ReadingDiffers => "読みが異なる".into(),
            MatchReason::BirthDateSame => "生年月日一致".into(),
            MatchReason::BirthDateUncertain => "生年月日一致（表記が不確か）".into(),
            MatchReason::BirthDateNear => "生年月日が一字違い・日月の入れ替わり".into(),
            MatchReason::BirthYearSame => "生年が一致".into(),
            MatchReason::AddressSame => "住所一致（表記の違いを除く）".into(),
            MatchReason::AddressDiffers => "住所が異なる".into(),
            MatchReason::AddressNear(p) => format!("住所が近い（{p}%）"),
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alert {
    pub id: AlertId,
    pub kind: AlertKind,
    /// The persons it is about, sorted.
    pub subjects: Vec<PersonRef>,
    /// The events that show it, sorted.
    pub evidence: Vec<EventId>,
    /// The sites involved, sorted.
    pub sites: Vec<SiteId>,
    /// For duplicates: the score (per mille) and the reasons.
    pub score: Option<u16>,
    pub reasons: Vec<MatchReason>,
}

fn alert(
    kind: AlertKind,
    mut subjects: Vec<PersonRef>,
    mut evidence: Vec<EventId>,
    mut sites: Vec<SiteId>,
    score: Option<u16>,
    reasons: Vec<MatchReason>,
) -> Alert {
    subjects.sort_unstable();
    subjects.dedup();
    evidence.sort_unstable();
    evidence.dedup();
    sites.sort_unstable();
    sites.dedup();
    let mut h = Sha256::new();
    h.update(b"kazashi-alert-v1");
    h.update(kind.code().as_bytes());
    for s in &subjects {
        h.update(s.to_string().as_bytes());
        h.update([0]);
    }
    for e in &evidence {
        h.update(e.0);
    }
    Alert {
        id: AlertId(h.finalize().into()),
        kind,
        subjects,
        evidence,
        sites,
        score,
        reasons,
    }
}

/// What alerts are kept by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Subject {
    Voter(PersonId),
    Person(PersonRef),
    Household(HouseholdRef),
    /// One walk-in person (fuzzy matching against the roster and earlier walk-ins).
    WalkIn(PersonRef),
    /// The same-as / not-same assertions as a whole (their conflicts).
    Assertions,
}

// ----- fuzzy matching -----

/// A person's identifying fields, folded for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Folded {
    raw_name: String,
    name: String,
    name_tokens: Vec<String>,
    /// The reading, folded ([`crate::normalize::reading_key`]), and where its second token
    /// starts when it has exactly two (family and given).
    kana: Option<String>,
    kana_split: Option<u16>,
    birth: Option<CivilDate>,
    /// False when the birth date was not pinned down where it was written (see
    /// [`crate::birth::Birth`]).
    birth_exact: bool,
    sex: Sex,
    address: Option<String>,
}

fn folded(
    memo: &mut FoldMemo,
    name: &str,
    kana: Option<&str>,
    birth: Option<CivilDate>,
    sex: Sex,
    address: Option<&str>,
) -> Folded {
    let name_tokens = memo.tokens(name);
    let kana_tokens: Vec<String> = kana
        .map(|k| {
            memo.tokens(k)
                .iter()
                .map(|t| crate::normalize::reading_key(t))
                .collect()
        })
        .unwrap_or_default();
    let kana_split = match kana_tokens.as_slice() {
        [family, _] => u16::try_from(family.len()).ok(),
        _ => None,
    };
    Folded {
        raw_name: name
            .split_whitespace()
            .flat_map(str::chars)
            .filter(|&c| !crate::normalize::is_variation_selector(c))
            .collect(),
        name: name_tokens.concat(),
        name_tokens,
        kana: (!kana_tokens.is_empty()).then(|| kana_tokens.concat()),
        kana_split,
        birth,
        birth_exact: true,
        sex,
        address: address.map(|a| memo.fold_by_char(a)),
    }
}

/// Alerts at or above this score (per mille) are "likely" duplicates.
pub const LIKELY: u16 = 900;
/// … and at or above this one, "possible".
pub const POSSIBLE: u16 = 600;

/// One person's identifying fields as written, for [`compare`].
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub name: &'a str,
    pub kana: Option<&'a str>,
    pub birth: Option<CivilDate>,
    /// False for a birth date not pinned down where it was written
    /// ([`crate::birth::parse_birth_date`]).
    pub birth_exact: bool,
    pub sex: Sex,
    pub address: Option<&'a str>,
}

/// The match score of two records (per mille) and its reasons, as the detector and
/// [`MatchIndex::find`] judge a pair; `None` below [`POSSIBLE`].
pub fn compare(a: &Record<'_>, b: &Record<'_>) -> Option<(u16, Vec<MatchReason>)> {
    let mut memo = FoldMemo::default();
    let mut f = |r: &Record<'_>| {
        let mut f = folded(&mut memo, r.name, r.kana, r.birth, r.sex, r.address);
        f.birth_exact = r.birth_exact;
        f
    };
    let (fa, fb) = (f(a), f(b));
    score(&fa, &fb)
}

/// The two tokens swapped, concatenated (`None` unless there are two).
fn swapped(tokens: &[String]) -> Option<String> {
    match tokens {
        [x, y] => Some(format!("{y}{x}")),
        _ => None,
    }
}

/// Whether two names equal once folded were written in different kana scripts (さくら and
/// サクラ): a given name in hiragana and one in katakana may be two people's.
fn kana_script_differs(a: &str, b: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    let script = |c: char| match c {
        '\u{3041}'..='\u{3096}' => 1,
        '\u{30a1}'..='\u{30fa}' => 2,
        _ => 0,
    };
    let a: Vec<u8> = a
        .nfkc()
        .filter(|c| !c.is_whitespace())
        .map(script)
        .collect();
    let b: Vec<u8> = b
        .nfkc()
        .filter(|c| !c.is_whitespace())
        .map(script)
        .collect();
    a.len() == b.len() && a.iter().zip(&b).any(|(x, y)| x * y == 2)
}

/// How the names compare.
enum NameRel {
    Same,
    Swapped,
    GivenSame,
    FamilySame,
    Other,
}

/// The match score of two records, per mille, with its reasons; `None` below [`POSSIBLE`].
///
/// Weights: name equal once folded 500 (given and family swapped 450; given name only 250,
/// family name only 150); reading equal 250; birth date equal 400 (one written inexactly 300),
/// a typo away ([`crate::birth::near`]) 150, same year otherwise −300, another year −500;
/// address the same ([`AddressKey::agreement`]) 100, another −50, else 100 × similarity when
/// ≥ 0.5; sex differs −300. A reading that disagrees counts against: −250 where the names
/// agree, −100 otherwise.
///
/// "Likely" ([`LIKELY`]) needs the names to agree (equal or swapped, in the same kana script),
/// the readings not to disagree, the birth dates to be exactly equal and the addresses not to
/// differ; any of those missing keeps a pair at "possible" at most. So a variant-glyph name
/// with the same birth date is likely, the same kanji read two ways, a birth date a typo away,
/// another address or another family name with the same given name and date are possible,
/// and two people of one common name born the same year are not raised (450).
fn score(a: &Folded, b: &Folded) -> Option<(u16, Vec<MatchReason>)> {
    let mut s: i32 = 0;
    let mut reasons = Vec::new();
    let mut at_most_possible = false;
    let rel = if a.name == b.name {
        NameRel::Same
    } else if swapped(&a.name_tokens).is_some_and(|x| x == b.name)
        || swapped(&b.name_tokens).is_some_and(|x| x == a.name)
    {
        NameRel::Swapped
    } else if a.name_tokens.len() == 2
        && b.name_tokens.len() == 2
        && a.name_tokens.get(1) == b.name_tokens.get(1)
    {
        NameRel::GivenSame
    } else if a.name_tokens.len() > 1 && a.name_tokens.first() == b.name_tokens.first() {
        NameRel::FamilySame
    } else {
        NameRel::Other
    };
    match rel {
        NameRel::Same => {
            s += 500;
            let variants: Vec<(char, char)> =
                if a.raw_name.chars().count() == b.raw_name.chars().count() {
                    a.raw_name
                        .chars()
                        .zip(b.raw_name.chars())
                        .filter(|(x, y)| x != y)
                        .collect()
                } else {
                    Vec::new()
                };
            if !variants.is_empty() && kana_script_differs(&a.raw_name, &b.raw_name) {
                at_most_possible = true;
                reasons.push(MatchReason::NameKanaScript);
            } else {
                reasons.push(MatchReason::NameSame { variants });
            }
        }
        NameRel::Swapped => {
            s += 450;
            reasons.push(MatchReason::NameSwapped);
        }
        NameRel::GivenSame => {
            s += 250;
            at_most_possible = true;
            reasons.push(MatchReason::GivenNameSame);
        }
        NameRel::FamilySame => {
            s += 150;
            at_most_possible = true;
            reasons.push(MatchReason::FamilyNameSame);
        }
        NameRel::Other => at_most_possible = true,
    }
    if let (Some(x), Some(y)) = (&a.kana, &b.kana) {
        let swap = |k: &str, at: Option<u16>| {
            let (f, g) = k.split_at_checked(usize::from(at?))?;
            Some(format!("{g}{f}"))
        };
        let same = x == y
            || swap(x, a.kana_split).is_some_and(|k| k == *y)
            || swap(y, b.kana_split).is_some_and(|k| k == *x);
        if same {
            s += 250;
            reasons.push(MatchReason::ReadingSame);
        } else if matches!(rel, NameRel::Same | NameRel::Swapped) {
            s -= 250;
            at_most_possible = true;
            reasons.push(MatchReason::ReadingDiffers);
        } else {
            s -= 100;
        }
    }
    match (a.birth, b.birth) {
        (Some(x), Some(y)) if x == y && a.birth_exact && b.birth_exact => {
            s += 400;
            reasons.push(MatchReason::BirthDateSame);
        }
        (Some(x), Some(y)) if x == y => {
            s += 300;
            at_most_possible = true;
            reasons.push(MatchReason::BirthDateUncertain);
        }
        (Some(x), Some(y)) if crate::birth::near(x, y) => {
            s += 150;
            at_most_possible = true;
            reasons.push(MatchReason::BirthDateNear);
        }
        (Some(x), Some(y)) if x.year() == y.year() => {
            s -= 300;
            reasons.push(MatchReason::BirthYearSame);
        }
        (Some(_), Some(_)) => s -= 500,
        _ => {}
    }
    if a.sex != b.sex {
        s -= 300;
    }
    // The address adds 100 at most: below that, the pair is not raised whatever it says (most
    // candidates of a common name end here, before the address is parsed).
    if s + 100 < i32::from(POSSIBLE) {
        return None;
    }
    if let (Some(x), Some(y)) = (&a.address, &b.address) {
        // Made per comparison, not kept: a roster of ten million would carry them all.
        let agreement = AddressKey::new(x).agreement(&AddressKey::new(y));
        match agreement {
            Agreement::Same => {
                s += 100;
                reasons.push(MatchReason::AddressSame);
            }
            Agreement::Differs => {
                s -= 50;
                at_most_possible = true;
                reasons.push(MatchReason::AddressDiffers);
            }
            Agreement::Unknown => {
                let sim = bigram_similarity(x, y);
                if sim >= 0.5 {
                    s += (100.0 * sim) as i32;
                    reasons.push(MatchReason::AddressNear((sim * 100.0).round() as u8));
                }
            }
        }
    }
    if at_most_possible {
        s = s.min(i32::from(LIKELY) - 1);
    }
    let s = u16::try_from(s.max(0)).unwrap_or(u16::MAX);
    (s >= POSSIBLE).then_some((s, reasons))
}

/// A blocking key: 64-bit FNV-1a over a tag and the fields. It is the same on every platform,
/// so every node compares the same pairs; a collision only adds a pair to compare, which the
/// score then judges on the real fields.
struct Key(u64);

impl Key {
    fn new(tag: u8) -> Self {
        let mut k = Key(0xcbf2_9ce4_8422_2325);
        k.eat(&[tag]);
        k
    }
    fn eat(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }
    /// A field boundary (0xff never occurs in UTF-8).
    fn end(&mut self) -> &mut Self {
        self.eat(&[0xff])
    }
}

type Keys = SmallVec<[u64; 8]>;

/// Blocking keys: a record is compared only with records that share one. With a birth date,
/// the keys carry it (name + date, reading + date, swapped name + date, family initial + date,
/// given name + date),
/// so common names do not make large blocks; records without a birth date fall back to name
/// and reading alone. A record with a birth date also searches by its name (and swapped name)
/// alone, so that a date a typo away is found. `for_index` gives every key a record may be found by; without it, the
/// keys a record searches with.
fn block_keys(f: &Folded, for_index: bool) -> Keys {
    let name = |tag: u8| {
        let mut k = Key::new(tag);
        k.eat(f.name.as_bytes()).end();
        k
    };
    let swapped = |tag: u8| match f.name_tokens.as_slice() {
        [family, given] => {
            let mut k = Key::new(tag);
            k.eat(given.as_bytes()).eat(family.as_bytes()).end();
            Some(k)
        }
        _ => None,
    };
    let kana = |tag: u8| {
        f.kana.as_ref().map(|r| {
            let mut k = Key::new(tag);
            k.eat(r.as_bytes()).end();
            k
        })
    };
    let mut keys = Keys::new();
    let plain = |keys: &mut Keys| {
        keys.push(name(b'n').0);
        keys.extend(swapped(b'n').map(|k| k.0));
        keys.extend(kana(b'k').map(|k| k.0));
    };
    let Some(b) = f.birth else {
        plain(&mut keys);
        return keys;
    };
    let date = b.days_since_epoch().to_le_bytes();
    let mut dated = |k: Option<Key>| {
        if let Some(mut k) = k {
            keys.push(k.eat(&date).0);
        }
    };
    dated(Some(name(b'n')));
    dated(swapped(b'n'));
    dated(kana(b'k'));
    if let Some(initial) = f.name_tokens.first().and_then(|t| t.chars().next()) {
        let mut k = Key::new(b'b');
        k.eat(&date).eat(&u32::from(initial).to_le_bytes());
        keys.push(k.0);
    }
    // The given name with the date: the same person under another family name (a marriage).
    if let [_, given] = f.name_tokens.as_slice() {
        let mut k = Key::new(b'g');
        k.eat(given.as_bytes()).end().eat(&date);
        keys.push(k.0);
    }
    if for_index {
        plain(&mut keys);
    } else {
        // The name without the date, so that a birth date a typo away is found too.
        keys.push(name(b'n').0);
        keys.extend(swapped(b'n').map(|k| k.0));
    }
    keys
}

/// Folded tokens remembered while folding many records: names repeat, and folding (NFKC and
/// the MJ shrink map) is the costly part.
#[derive(Default)]
struct FoldMemo(FxHashMap<String, String>, FxHashMap<char, String>);

impl FoldMemo {
    fn token(&mut self, t: &str) -> String {
        if let Some(f) = self.0.get(t) {
            return f.clone();
        }
        let f = crate::normalize::fold_token(t);
        if self.0.len() < 1 << 16 {
            self.0.insert(t.to_owned(), f.clone());
        }
        f
    }
    fn tokens(&mut self, s: &str) -> Vec<String> {
        crate::normalize::split(s)
            .iter()
            .map(|t| self.token(t))
            .collect()
    }
    /// [`crate::normalize::fold`] a character at a time, for text that rarely repeats whole
    /// (addresses) but is made of few characters.
    fn fold_by_char(&mut self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for t in crate::normalize::split(s) {
            for c in t.chars() {
                match self.1.get(&c) {
                    Some(f) => out.push_str(f),
                    None => {
                        let f = crate::normalize::fold_token(c.encode_utf8(&mut [0; 4]));
                        out.push_str(&f);
                        self.1.insert(c, f);
                    }
                }
            }
        }
        crate::normalize::settle(out)
    }
}

/// `f` over `items` on up to two threads, in order; each thread keeps its own `init()` state.
fn par_map<T: Sync, S, R: Send>(
    items: &[T],
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> R + Sync,
) -> Vec<R> {
    par_filter_map(items, init, |s, x| Some(f(s, x)))
}

/// `f` over `items` on up to two threads, keeping the `Some`s in order; each thread keeps its
/// own `init()` state. Only what is kept is held: a full build's million subjects, most with
/// no alert, would otherwise hold a slot each (twice over while the pieces are joined).
fn par_filter_map<T: Sync, S, R: Send>(
    items: &[T],
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> Option<R> + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    if threads < 2 || items.len() < 4096 {
        let mut s = init();
        return items.iter().filter_map(|x| f(&mut s, x)).collect();
    }
    // Pieces handed out in turn, not halves: the costly subjects (walk-ins looked up in a
    // roster on disk) come together, and a half of them would leave the other thread idle.
    const PIECE: usize = 256;
    let pieces: Vec<&[T]> = items.chunks(PIECE).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let run = || {
        let mut s = init();
        let mut done: Vec<(usize, Vec<R>)> = Vec::new();
        loop {
            let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(part) = pieces.get(at) else {
                return done;
            };
            done.push((at, part.iter().filter_map(|x| f(&mut s, x)).collect()));
        }
    };
    let mut done: Vec<Option<Vec<R>>> = pieces.iter().map(|_| None).collect();
    let finished = std::thread::scope(|sc| {
        let second = sc.spawn(run);
        let mut out = run();
        // The closure does not panic; if it ever did, the pieces it held are done again below.
        if let Ok(rest) = second.join() {
            out.extend(rest);
        }
        out
    });
    let kept: usize = finished.iter().map(|(_, part)| part.len()).sum();
    for (at, part) in finished {
        if let Some(slot) = done.get_mut(at) {
            *slot = Some(part);
        }
    }
    let mut s = init();
    let mut out = Vec::with_capacity(kept);
    for (p, part) in pieces.iter().zip(done) {
        match part {
            Some(part) => out.extend(part),
            None => out.extend(p.iter().filter_map(|x| f(&mut s, x))),
        }
    }
    out
}

/// Many values per blocking key without an allocation per key: each key points at the head of
/// a chain of links in one vector. Most keys hold one record; a common name holds thousands.
#[derive(Debug, Clone, Default)]
struct MultiMap {
    heads: FxHashMap<u64, u32>,
    /// (value, next link or [`MultiMap::END`]).
    links: Vec<(u32, u32)>,
}

impl MultiMap {
    const END: u32 = u32::MAX;

    fn with_capacity(keys: usize) -> Self {
        MultiMap {
            heads: FxHashMap::with_capacity_and_hasher(keys, Default::default()),
            links: Vec::with_capacity(keys),
        }
    }

    fn insert(&mut self, key: u64, value: u32) {
        let Ok(at) = u32::try_from(self.links.len()) else {
            return;
        };
        if at == Self::END {
            return;
        }
        let next = self.heads.insert(key, at).unwrap_or(Self::END);
        self.links.push((value, next));
    }

    /// The values under `key`, newest first.
    fn get(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.heads.get(&key).copied().unwrap_or(Self::END);
        std::iter::from_fn(move || {
            let (value, next) = *self.links.get(at as usize)?;
            at = next;
            Some(value)
        })
    }
}

/// The roster, folded and indexed for fuzzy matching (built once per roster).
#[derive(Debug, Clone, Default)]
pub struct MatchIndex {
    people: Vec<(PersonId, Folded)>,
    blocks: MultiMap,
    /// A roster on disk: candidates are read from it per query (by birth date, by name) and
    /// folded then, instead of folding ten million entries up front.
    store: Option<Arc<dyn RosterStore>>,
}

/// At most this many entries per name looked up in a roster store (a name as common as 佐藤
/// 花子 has hundreds in ten million; the dated candidates are not capped).
const STORE_NAME_CAP: usize = 5000;

impl MatchIndex {
    pub fn new(roster: &Roster) -> Self {
        if let Some(store) = roster.store() {
            return MatchIndex {
                store: Some(store.clone()),
                ..MatchIndex::default()
            };
        }
        let people: Vec<(PersonId, Folded)> =
            par_map(roster.entries(), FoldMemo::default, |m, e| {
                let f = folded(
                    m,
                    e.name.as_str(),
                    Some(e.kana.as_str()),
                    Some(e.birth_date),
                    e.sex,
                    Some(e.address.as_str()),
                );
                (e.person, f)
            });
        let mut blocks = MultiMap::with_capacity(people.len() * 6);
        for (i, (_, f)) in people.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else { break };
            for k in block_keys(f, true) {
                blocks.insert(k, i);
            }
        }
        MatchIndex {
            people,
            blocks,
            store: None,
        }
    }

    /// Roster entries that match the given fields at [`POSSIBLE`] or above, best first (ties
    /// by person id): how a card's basic four items or a typed search find their person.
    pub fn find(
        &self,
        name: &str,
        kana: Option<&str>,
        birth: Option<CivilDate>,
        sex: Sex,
        address: Option<&str>,
    ) -> Vec<Candidate> {
        let f = folded(&mut FoldMemo::default(), name, kana, birth, sex, address);
        let mut found: Vec<Candidate> = Vec::new();
        self.each_candidate(&f, &mut |person, g| {
            if let Some((score, reasons)) = score(&f, g) {
                found.push(Candidate {
                    person,
                    score,
                    reasons,
                });
            }
        });
        found.sort_by(|a, b| b.score.cmp(&a.score).then(a.person.cmp(&b.person)));
        found
    }

    fn candidates(&self, f: &Folded) -> Vec<u32> {
        let mut v: Vec<u32> = block_keys(f, false)
            .iter()
            .flat_map(|k| self.blocks.get(*k))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every roster entry sharing a blocking key with `f`, in person-id order, folded.
    fn each_candidate(&self, f: &Folded, visit: &mut dyn FnMut(PersonId, &Folded)) {
        let Some(store) = &self.store else {
            for i in self.candidates(f) {
                if let Some((p, g)) = self.people.get(i as usize) {
                    visit(*p, g);
                }
            }
            return;
        };
        let keys = block_keys(f, false);
        let mut entries: Vec<Arc<RosterEntry>> = Vec::new();
        if let Some(b) = f.birth {
            entries.extend(store.born_on(b));
        }
        // The keys without a date: the name as written and swapped. A name's key is its folded
        // tokens run together; settled, that is `fold` of the name, which the store indexes.
        // With a birth date, a bearer of the name born neither that day nor a typo away
        // ([`crate::birth::near`]) cannot reach [`POSSIBLE`] (name 500 + reading 250 +
        // address 100 − 300 for another date = 550), so the store need not hand it over.
        let dates = f.birth.map(|b| {
            let mut v = crate::birth::near_dates(b);
            v.push(b);
            v.sort_unstable();
            v
        });
        for n in std::iter::once(f.name.clone()).chain(swapped(&f.name_tokens)) {
            if !n.is_empty() {
                let n = crate::normalize::settle(n);
                entries.extend(match &dates {
                    Some(dates) => store.named_born(&n, dates, STORE_NAME_CAP),
                    None => store.named(&n, STORE_NAME_CAP),
                });
            }
        }
        entries.sort_unstable_by_key(|e| e.person);
        entries.dedup_by_key(|e| e.person);
        let mut memo = FoldMemo::default();
        for e in entries {
            let mut g = folded(
                &mut memo,
                e.name.as_str(),
                Some(e.kana.as_str()),
                Some(e.birth_date),
                e.sex,
                None,
            );
            if block_keys(&g, true).iter().any(|k| keys.contains(k)) {
                // The address only for those that share a key (folding it is the costly part).
                g.address = Some(memo.fold_by_char(e.address.as_str()));
                visit(e.person, &g);
            }
        }
    }
}

/// A roster entry found by [`MatchIndex::find`], with its score (per mille) and reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub person: PersonId,
    pub score: u16,
    pub reasons: Vec<MatchReason>,
}

/// What the rules need besides the state.
pub struct Context<'a> {
    pub deployment: &'a Deployment,
    pub roster: &'a Roster,
    pub matcher: &'a MatchIndex,
}

/// The alerts of an event set.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    by_subject: BTreeMap<Subject, Vec<Alert>>,
    /// Walk-ins folded once (folding is the costly part of a comparison), in the order they
    /// were indexed; the indexes below hold positions in it.
    walks: Vec<(PersonRef, Folded)>,
    walk_at: FxHashMap<PersonRef, u32>,
    /// Walk-ins by the blocking keys they may be found by.
    walk_index: MultiMap,
    /// Walk-ins by the blocking keys they search with: the walk-ins that must look again
    /// when a walk-in registered earlier arrives late.
    walk_query: MultiMap,
    /// Which records are one person (same-as assertions).
    clusters: Clusters,
}

/// Two detectors are equal when they hold the same alerts over the same clusters (the walk-in
/// indexes are caches of the state).
impl PartialEq for Detector {
    fn eq(&self, other: &Self) -> bool {
        self.by_subject == other.by_subject && self.clusters == other.clusters
    }
}
impl Eq for Detector {}

fn folded_walk_in(memo: &mut FoldMemo, w: &crate::event::WalkInPerson) -> Folded {
    folded(
        memo,
        w.name.as_str(),
        w.kana.as_ref().map(|k| k.as_str()),
        w.birth_date,
        w.sex,
        w.address.as_ref().map(|a| a.as_str()),
    )
}

impl Detector {
    /// Every rule over the whole state.
    pub fn full(ctx: &Context<'_>, state: &State) -> Self {
        let walk_ins = state.walk_ins(None);
        let mut d = Detector {
            clusters: state.clusters(None),
            walks: Vec::with_capacity(walk_ins.len()),
            walk_at: FxHashMap::with_capacity_and_hasher(walk_ins.len(), Default::default()),
            walk_index: MultiMap::with_capacity(walk_ins.len() * 6),
            walk_query: MultiMap::with_capacity(walk_ins.len() * 4),
            ..Detector::default()
        };
        let folded = par_map(&walk_ins, FoldMemo::default, |m, (_, w)| {
            folded_walk_in(m, w)
        });
        // Subjects need no order here: the alerts are kept by subject, in order.
        let mut subjects: Vec<Subject> = Vec::new();
        for ((p, _), f) in walk_ins.iter().zip(folded) {
            subjects.push(Subject::WalkIn(*p));
            d.index_folded(*p, f);
        }
        subjects.extend(state.voters().into_iter().map(Subject::Voter));
        let persons = state.persons();
        let mut reps: Vec<PersonRef> = persons.iter().map(|p| d.clusters.rep(p)).collect();
        if !d.clusters.is_empty() {
            reps.sort_unstable();
            reps.dedup();
        }
        subjects.extend(reps.into_iter().map(Subject::Person));
        let mut households: Vec<HouseholdRef> = persons
            .iter()
            .filter_map(|p| household_of(ctx, state, p))
            .collect();
        // Not held through the rules' run (a slot per person: tens of MB at a million events).
        drop(persons);
        drop(walk_ins);
        households.sort_unstable();
        households.dedup();
        subjects.extend(households.into_iter().map(Subject::Household));
        subjects.push(Subject::Assertions);
        subjects.shrink_to_fit();
        // Only the subjects with alerts are kept, as they come (most have none).
        let alerts = par_filter_map(
            &subjects,
            || (),
            |_, s| {
                let a = d.compute(ctx, state, *s);
                (!a.is_empty()).then_some((*s, a))
            },
        );
        drop(subjects);
        d.by_subject = alerts.into_iter().collect();
        d
    }

    /// Take one event that has just been folded into `state`.
    pub fn update(&mut self, ctx: &Context<'_>, state: &State, event: &Event) {
        if matches!(
            event.body(),
            EventBody::SameAs { .. }
                | EventBody::NotSame { .. }
                | EventBody::RetractAssertion { .. }
        ) {
            self.clusters = state.clusters(None);
        }
        let mut subjects = touched(ctx, state, event, &self.clusters);
        if let EventBody::WalkInRegistration { members, .. } = event.body() {
            // A walk-in registered earlier in the agreed order may arrive late: the walk-ins
            // that would find it look again.
            let mut memo = FoldMemo::default();
            for (i, w) in members.iter().enumerate() {
                let p = PersonRef::WalkIn {
                    registration: event.id(),
                    index: u16::try_from(i).unwrap_or(u16::MAX),
                };
                let f = folded_walk_in(&mut memo, w);
                for k in block_keys(&f, true) {
                    subjects.extend(
                        self.walk_query
                            .get(k)
                            .filter_map(|i| self.walks.get(i as usize))
                            .map(|(q, _)| Subject::WalkIn(*q)),
                    );
                }
                self.index_folded(p, f);
            }
            subjects.sort_unstable();
            subjects.dedup();
        }
        for s in subjects {
            let alerts = self.compute(ctx, state, s);
            if alerts.is_empty() {
                self.by_subject.remove(&s);
            } else {
                self.by_subject.insert(s, alerts);
            }
        }
    }

    fn index_folded(&mut self, p: PersonRef, f: Folded) {
        if self.walk_at.contains_key(&p) {
            return;
        }
        let Ok(i) = u32::try_from(self.walks.len()) else {
            return;
        };
        for k in block_keys(&f, true) {
            self.walk_index.insert(k, i);
        }
        for k in block_keys(&f, false) {
            self.walk_query.insert(k, i);
        }
        self.walk_at.insert(p, i);
        self.walks.push((p, f));
    }

    fn walk_folded(&self, p: &PersonRef) -> Option<&Folded> {
        let i = self.walk_at.get(p)?;
        self.walks.get(*i as usize).map(|(_, f)| f)
    }

    /// Every alert, by kind then id.
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.by_subject.values().flatten().collect();
        v.sort_unstable_by_key(|a| (a.kind, a.id));
        v.dedup_by(|a, b| a.id == b.id);
        v
    }

    /// Which records are one person, as the same-as assertions say.
    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    fn compute(&self, ctx: &Context<'_>, state: &State, s: Subject) -> Vec<Alert> {
        match s {
            Subject::Voter(v) => voter_alerts(ctx, state, &v),
            Subject::Person(p) => person_alerts(state, &p, &self.clusters),
            Subject::Household(h) => household_alerts(ctx, state, &h),
            Subject::WalkIn(p) => walk_in_alerts(ctx, state, &p, self),
            Subject::Assertions => conflict_alerts(state, &self.clusters),
        }
    }
}

fn household_of(ctx: &Context<'_>, state: &State, p: &PersonRef) -> Option<HouseholdRef> {
    match p {
        PersonRef::Roster(id) => ctx
            .roster
            .get(id)
            .map(|e| HouseholdRef::Roster(e.household)),
        PersonRef::WalkIn { registration, .. } => state
            .walk_in(p, None)
            .map(|_| HouseholdRef::WalkIn(*registration)),
    }
}

/// The subjects whose alerts an event can change.
fn touched(ctx: &Context<'_>, state: &State, event: &Event, clusters: &Clusters) -> Vec<Subject> {
    let mut out = Vec::new();
    let persons = |out: &mut Vec<Subject>, ps: &[PersonRef]| {
        for p in ps {
            out.push(Subject::Person(clusters.rep(p)));
            if let Some(h) = household_of(ctx, state, p) {
                out.push(Subject::Household(h));
            }
        }
    };
    // An assertion joins or splits clusters: a link added merges the clusters of its two
    // records, a link retracted splits one into (at most) the two that hold them. Either way
    // the records touched are those of the clusters of `a` and `b` after the event.
    let assertion = |out: &mut Vec<Subject>, a: &PersonRef, b: &PersonRef| {
        for x in [a, b] {
            for m in clusters.members(x) {
                out.push(Subject::Person(m));
                out.push(Subject::WalkIn(m));
            }
        }
        out.push(Subject::Assertions);
    };
    match event.body() {
        EventBody::VoterCheckIn { voter, .. } => out.push(Subject::Voter(*voter)),
        EventBody::UndoCheckIn { target, .. } => match state.event(target).map(Event::body) {
            Some(EventBody::VoterCheckIn { voter, .. }) => out.push(Subject::Voter(*voter)),
            Some(EventBody::ShelterCheckIn { members, .. }) => {
                persons(&mut out, members.as_slice())
            }
            _ => {}
        },
        EventBody::WalkInRegistration { members, .. } => {
            for i in 0..members.len() {
                let p = PersonRef::WalkIn {
                    registration: event.id(),
                    index: u16::try_from(i).unwrap_or(u16::MAX),
                };
                out.push(Subject::WalkIn(p));
                out.push(Subject::Person(clusters.rep(&p)));
            }
        }
        EventBody::SameAs { a, b, .. } | EventBody::NotSame { a, b, .. } => {
            assertion(&mut out, a, b)
        }
        EventBody::RetractAssertion { target, .. } => {
            if let Some(EventBody::SameAs { a, b, .. } | EventBody::NotSame { a, b, .. }) =
                state.event(target).map(Event::body)
            {
                assertion(&mut out, a, b)
            }
        }
        body => {
            if let Some(m) = body.stay_members() {
                persons(&mut out, m.as_slice());
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn voter_alerts(ctx: &Context<'_>, state: &State, voter: &PersonId) -> Vec<Alert> {
    let votes = state.standing_votes(voter, None);
    let subject = vec![PersonRef::Roster(*voter)];
    let mut out = Vec::new();
    if votes.len() > 1 {
        out.push(alert(
            AlertKind::DoubleVote,
            subject.clone(),
            votes.iter().map(|r| r.event).collect(),
            votes.iter().map(|r| r.site).collect(),
            None,
            Vec::new(),
        ));
    }
    let entry = ctx.roster.get(voter);
    let info = entry.as_ref().and_then(|e| e.voter.as_ref());
    let period = match ctx.deployment.kind() {
        DeploymentKind::Election {
            election_day,
            early_voting_from,
        } => Some((early_voting_from, election_day)),
        DeploymentKind::ShelterOperation => None,
    };
    for r in &votes {
        let one = |kind| {
            alert(
                kind,
                subject.clone(),
                vec![r.event],
                vec![r.site],
                None,
                Vec::new(),
            )
        };
        if r.overridden {
            out.push(one(AlertKind::OverrideReview));
        }
        if let Some(info) = info {
            if !info.flags.eligible || info.flags.absentee_voted || info.flags.early_voted {
                out.push(one(AlertKind::NotEligible));
            }
            if r.mode == VoteMode::ElectionDay
                && let Some(site) = ctx.deployment.site(&r.site)
                && let SiteKind::PollingStation { precincts, .. } = &site.kind
                && !precincts.contains(&info.precinct)
            {
                out.push(one(AlertKind::WrongPrecinct));
            }
        }
        if let (Some((from, day)), Some(on)) = (period, CivilDate::jst_of(r.at.wall_ms)) {
            let ok = match r.mode {
                VoteMode::Early(_) => on >= from && on < day,
                VoteMode::ElectionDay => on == day,
            };
            if !ok {
                out.push(one(AlertKind::OutsideVotingPeriod));
            }
        }
    }
    out
}

/// A person registered at two sites — or, for a cluster of records that same-as assertions
/// join, any of its records registered at sites that differ. Kept under the cluster's
/// representative.
fn person_alerts(state: &State, p: &PersonRef, clusters: &Clusters) -> Vec<Alert> {
    if clusters.rep(p) != *p {
        return Vec::new();
    }
    let mut registered: SmallVec<[(SiteId, EventId, PersonRef); 4]> = SmallVec::new();
    for m in clusters.members(p) {
        registered.extend(
            state
                .registered_at(&m)
                .into_iter()
                .map(|(site, event)| (site, event, m)),
        );
    }
    let mut sites: SmallVec<[SiteId; 4]> = registered.iter().map(|r| r.0).collect();
    sites.sort_unstable();
    sites.dedup();
    if sites.len() < 2 {
        return Vec::new();
    }
    vec![alert(
        AlertKind::PresentAtTwoSites,
        registered.iter().map(|r| r.2).collect(),
        registered.iter().map(|r| r.1).collect(),
        sites.to_vec(),
        None,
        Vec::new(),
    )]
}

/// Not-same assertions contradicted by same-as links, one alert each.
fn conflict_alerts(state: &State, clusters: &Clusters) -> Vec<Alert> {
    clusters
        .conflicts()
        .iter()
        .map(|c| {
            alert(
                AlertKind::AssertionConflict,
                vec![c.a, c.b],
                vec![c.not_same],
                state
                    .event(&c.not_same)
                    .map(Event::site)
                    .into_iter()
                    .collect(),
                None,
                Vec::new(),
            )
        })
        .collect()
}

fn household_alerts(ctx: &Context<'_>, state: &State, h: &HouseholdRef) -> Vec<Alert> {
    let HouseholdRef::Roster(hid) = h else {
        return Vec::new();
    };
    let mut sites: BTreeMap<SiteId, Vec<(PersonRef, EventId)>> = BTreeMap::new();
    for e in ctx.roster.household(hid) {
        let p = PersonRef::Roster(e.person);
        for (site, s) in state.stays(&p, None) {
            if s.status.is_registered() {
                sites.entry(site).or_default().push((p, s.event));
            }
        }
    }
    if sites.len() < 2 {
        return Vec::new();
    }
    let all: Vec<(PersonRef, EventId)> = sites.values().flatten().copied().collect();
    vec![alert(
        AlertKind::HouseholdSplit,
        all.iter().map(|(p, _)| *p).collect(),
        all.iter().map(|(_, e)| *e).collect(),
        sites.keys().copied().collect(),
        None,
        Vec::new(),
    )]
}

fn walk_in_alerts(ctx: &Context<'_>, state: &State, p: &PersonRef, d: &Detector) -> Vec<Alert> {
    let Some(w) = state.walk_in(p, None) else {
        return Vec::new();
    };
    let PersonRef::WalkIn { registration, .. } = p else {
        return Vec::new();
    };
    let Some(reg) = state.event(registration) else {
        return Vec::new();
    };
    let owned;
    let me = match d.walk_folded(p) {
        Some(f) => f,
        None => {
            owned = folded_walk_in(&mut FoldMemo::default(), w);
            &owned
        }
    };
    let mut out = Vec::new();
    let mut raise =
        |other: PersonRef, other_event: Option<EventId>, s: u16, reasons: Vec<MatchReason>| {
            // Pairs an official has settled (one person, or not-same) are not raised again.
            if d.clusters.settled(p, &other) {
                return;
            }
            let kind = if s >= LIKELY {
                AlertKind::LikelyDuplicate
            } else {
                AlertKind::PossibleDuplicate
            };
            let mut evidence = vec![*registration];
            evidence.extend(other_event);
            out.push(alert(
                kind,
                vec![*p, other],
                evidence,
                vec![reg.site()],
                Some(s),
                reasons,
            ));
        };
    ctx.matcher.each_candidate(me, &mut |pid, f| {
        if let Some((s, reasons)) = score(me, f) {
            raise(PersonRef::Roster(pid), None, s, reasons);
        }
    });
    // Earlier walk-ins (in the agreed order) alike, at any site.
    let my_key = reg.order_key();
    let mut alike: Vec<u32> = block_keys(me, false)
        .iter()
        .flat_map(|k| d.walk_index.get(*k))
        .collect();
    alike.sort_unstable();
    alike.dedup();
    // In record order, so the alerts come out the same however the walk-ins were indexed.
    let mut alike: Vec<(PersonRef, &Folded)> = alike
        .into_iter()
        .filter_map(|i| d.walks.get(i as usize))
        .map(|(q, f)| (*q, f))
        .collect();
    alike.sort_unstable_by_key(|(q, _)| *q);
    for (q, other) in alike {
        let PersonRef::WalkIn {
            registration: r2, ..
        } = q
        else {
            continue;
        };
        let Some(e2) = state.event(&r2) else {
            continue;
        };
        if e2.order_key() >= my_key {
            continue;
        }
        if let Some((s, reasons)) = score(me, other) {
            raise(q, Some(r2), s, reasons);
        }
    }
    out
}

/// One piece of an alert's evidence, resolved from the state: what was recorded, where, when,
/// by which operator on which device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub event: EventId,
    /// The kind of event ("voter check-in", "walk-in registration", …).
    pub what: &'static str,
    pub site: SiteId,
    pub at: crate::hlc::Timestamp,
    pub operator: crate::ids::OperatorId,
    pub device: crate::ids::DeviceId,
}

/// An alert's evidence in full, in the alert's order (events the state does not hold are left
/// out; every node that shows the alert holds them all).
pub fn evidence(state: &State, alert: &Alert) -> Vec<Evidence> {
    alert
        .evidence
        .iter()
        .filter_map(|id| state.event(id))
        .map(|e| Evidence {
            event: e.id(),
            what: e.body().name(),
            site: e.site(),
            at: e.at(),
            operator: e.operator(),
            device: e.device(),
        })
        .collect()
}

// ----- live prevention -----

/// What should stop a voter check-in at `site` before it is written, on this node's merged
/// state: an earlier check-in not undone, a roster flag (voted by other means, ineligible), or —
/// on election day — a station that does not serve the voter's 投票区. Each can be let through
/// only by an override that names it and a second officer.
pub fn vote_blocks(
    state: &State,
    roster: &Roster,
    deployment: &Deployment,
    site: &SiteId,
    voter: &PersonId,
    mode: VoteMode,
) -> BTreeSet<crate::event::BlockReason> {
    use crate::event::BlockReason;
    let mut out = BTreeSet::new();
    if !state.standing_votes(voter, None).is_empty() {
        out.insert(BlockReason::AlreadyVoted);
    }
    let entry = roster.get(voter);
    if let Some(info) = entry.as_ref().and_then(|e| e.voter.as_ref()) {
        if info.flags.absentee_voted || info.flags.early_voted {
            out.insert(BlockReason::RosterFlaggedVoted);
        }
        if !info.flags.eligible {
            out.insert(BlockReason::Ineligible);
        }
        if mode == VoteMode::ElectionDay
            && let Some(SiteKind::PollingStation { precincts, .. }) =
                deployment.site(site).map(|s| &s.kind)
            && !precincts.contains(&info.precinct)
        {
            out.insert(BlockReason::WrongPrecinct);
        }
    }
    out
}

/// Where else the persons are registered (present or on leave) than at `site`: shown to the
/// receptionist before a shelter check-in, not a block (people do move).
pub fn registered_elsewhere(
    state: &State,
    persons: &[PersonRef],
    site: &SiteId,
) -> Vec<(PersonRef, SiteId)> {
    let mut out = Vec::new();
    for p in persons {
        for (s, stay) in state.stays(p, None) {
            if s != *site && stay.status.is_registered() {
                out.push((*p, s));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Folding a character at a time gives what folding the whole text gives.
        #[test]
        fn folding_by_character_equals_folding_whole(
            s in "[見本県かざし市髙﨑邉齋𠮷濵德高崎辺斎吉ｶﾞｷﾞﾊﾟガギパ丁目番地号ー－‐0-9０-９A-Za-zＡ-Ｚ ・　-]{0,24}"
        ) {
            let mut memo = FoldMemo::default();
            prop_assert_eq!(memo.fold_by_char(&s), crate::normalize::fold(&s));
            // And again, from the memo.
            prop_assert_eq!(memo.fold_by_char(&s), crate::normalize::fold(&s));
        }
    }

    /// Pieces handed to two threads come back in the items' order, each item once.
    #[test]
    fn par_map_keeps_the_order_of_its_items() {
        for n in [0usize, 5, 4095, 4096, 4097, 10_000, 65_537] {
            let items: Vec<u64> = (0..n as u64).collect();
            let out = par_map(
                &items,
                || 0u64,
                |seen, x| {
                    *seen += 1;
                    x * 3 + 1
                },
            );
            let want: Vec<u64> = items.iter().map(|x| x * 3 + 1).collect();
            assert_eq!(out, want, "{n} items");
        }
    }

    /// Only the kept results come back, in the items' order, across pieces of both threads
    /// (some pieces keep nothing).
    #[test]
    fn par_filter_map_keeps_what_it_keeps_in_order() {
        for n in [0usize, 5, 4095, 4096, 4097, 10_000, 65_537] {
            let items: Vec<u64> = (0..n as u64).collect();
            let keep = |x: &u64| (x % 7 == 3 || (1000..1600).contains(x)) && x % 1024 < 900;
            let out = par_filter_map(&items, || (), |_, x| keep(x).then_some(x * 5));
            let want: Vec<u64> = items.iter().filter(|x| keep(x)).map(|x| x * 5).collect();
            assert_eq!(out, want, "{n} items");
        }
    }
}
