//! `kazashi-lab bench match --scale N`: the matcher on real Japanese names (issue 26).
//!
//! - Per class of the hand-curated labelled pairs (`tests/data/name_pairs/pairs.tsv`, 377
//!   pairs, CC0; read from the source tree, or from `KAZASHI_NAME_PAIRS`), each pair scored by
//!   `detector::compare` (the detector's own pair score) and rated likely / possible / none:
//!   `<class>_recall_same` (`same` pairs rated likely), `<class>_recall_same_any` (likely or
//!   possible), `<class>_recall_possible` (`possible` pairs rated possible or likely),
//!   `<class>_possible_as_likely` (count), `<class>_precision_likely` (`same` among the pairs
//!   rated likely), `<class>_precision_flagged` (`same` or `possible` among the pairs rated
//!   likely or possible), `<class>_distinct_likely` (count; the goal is 0). Class `all` is the
//!   whole set.
//! - `index_build`: the roster match index over an N-person synthetic roster (once per roster).
//! - `lookup`: `MatchIndex::find` as a card's basic four or a typed search calls it, with the
//!   richer folding, for 2,000 queries made from roster entries — as registered, the reading in
//!   hiragana, family and given name swapped, the birth day one digit off — p50/p99 (goal
//!   p99 ≤ 20 ms at 10 M); `lookup_found_<kind>`: the share of those queries that found their
//!   person (likely, or possible for the date typo).

use crate::bench::{emit, emit_percentiles, ms};
use kazashi_domain::birth::parse_birth_date;
use kazashi_domain::detector::{LIKELY, MatchIndex, POSSIBLE, Record, compare};
use kazashi_domain::roster::Sex;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::time::Instant;

const B: &str = "match";

fn pairs_path() -> std::path::PathBuf {
    std::env::var_os("KAZASHI_NAME_PAIRS").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/data/name_pairs/pairs.tsv")
        },
        std::path::PathBuf::from,
    )
}

/// 0 likely, 1 possible, 2 none.
fn rate(f: &[&str]) -> Option<usize> {
    let [_, _, _, an, ak, ab, aa, bn, bk, bb, ba, ..] = f else {
        return None;
    };
    let rec =
        |n: &'static str, k: &'static str, b: &'static str, a: &'static str| -> Record<'static> {
            let birth = parse_birth_date(b);
            Record {
                name: n,
                kana: (!k.is_empty()).then_some(k),
                birth: birth.map(|x| x.date),
                birth_exact: birth.is_none_or(|x| x.exact),
                sex: Sex::Unspecified,
                address: (!a.is_empty()).then_some(a),
            }
        };
    // The records borrow for the call only; leaking a few hundred short strings keeps this
    // simple in a one-shot benchmark process.
    let own = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    let a = rec(own(an), own(ak), own(ab), own(aa));
    let b = rec(own(bn), own(bk), own(bb), own(ba));
    let s = compare(&a, &b).map_or(0, |(s, _)| s);
    Some(if s >= LIKELY {
        0
    } else if s >= POSSIBLE {
        1
    } else {
        2
    })
}

fn pairs(scale: usize) -> Result<(), String> {
    let path = pairs_path();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("the labelled pairs {}: {e}", path.display()))?;
    // class → [label same/possible/distinct][rating likely/possible/none]
    let mut by: BTreeMap<String, [[u32; 3]; 3]> = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(class), Some(label)) = (f.get(1), f.get(2)) else {
            return Err(format!("line {}: too few columns", i + 1));
        };
        let l = ["same", "possible", "distinct"]
            .iter()
            .position(|x| x == label)
            .ok_or_else(|| format!("line {}: unknown label", i + 1))?;
        let r = rate(&f).ok_or_else(|| format!("line {}: too few columns", i + 1))?;
        for key in [class.to_string(), "all".to_string()] {
            if let Some(c) = by
                .entry(key)
                .or_default()
                .get_mut(l)
                .and_then(|x| x.get_mut(r))
            {
                *c += 1;
            }
        }
    }
    let ratio = |n: u32, d: u32| (d > 0).then(|| f64::from(n) / f64::from(d));
    for (class, [s, p, d]) in &by {
        let likely = s[0] + p[0] + d[0];
        let flagged = likely + s[1] + p[1] + d[1];
        let metrics = [
            ("recall_same", ratio(s[0], s[0] + s[1] + s[2])),
            ("recall_same_any", ratio(s[0] + s[1], s[0] + s[1] + s[2])),
            ("recall_possible", ratio(p[0] + p[1], p[0] + p[1] + p[2])),
            ("precision_likely", ratio(s[0], likely)),
            (
                "precision_flagged",
                ratio(s[0] + s[1] + p[0] + p[1], flagged),
            ),
        ];
        for (m, v) in metrics {
            if let Some(v) = v {
                emit(B, &format!("{class}_{m}"), v, "ratio", scale);
            }
        }
        emit(
            B,
            &format!("{class}_possible_as_likely"),
            f64::from(p[0]),
            "pairs",
            scale,
        );
        emit(
            B,
            &format!("{class}_distinct_likely"),
            f64::from(d[0]),
            "pairs",
            scale,
        );
    }
    Ok(())
}

/// The katakana of `s` as hiragana.
fn hiragana(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ァ'..='ヶ' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            c => c,
        })
        .collect()
}

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = args.scale;
    if !(1000..=20_000_000).contains(&n) {
        return Err("--scale (roster persons) must be between 1000 and 20000000".into());
    }
    pairs(n)?;
    let m = crate::bench::town_of_people(n, args.seed)?;
    let persons = m.roster.len();
    let t = Instant::now();
    let index = MatchIndex::new(&m.roster);
    emit(B, "index_build", ms(t), "ms", persons);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let mut times = Vec::new();
    let mut found: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for _ in 0..500 {
        let Some(e) = m.roster.entries().get(rng.random_range(0..persons)) else {
            continue;
        };
        let name = e.name.as_str();
        let kana = e.kana.as_str();
        let address = e.address.as_str();
        let swapped_name = {
            let mut t: Vec<&str> = name.split_whitespace().collect();
            t.reverse();
            t.join(" ")
        };
        let swapped_kana = {
            let mut t: Vec<&str> = kana.split_whitespace().collect();
            t.reverse();
            t.join(" ")
        };
        let hira = hiragana(kana);
        let b = e.birth_date;
        // The day's last digit one off (a digit misread: 9 → 8, 10 → 11), staying a real date.
        let day = if b.day() % 10 == 9 {
            b.day() - 1
        } else {
            b.day() + 1
        };
        let typo = kazashi_domain::CivilDate::new(b.year(), b.month(), day)
            .or_else(|_| kazashi_domain::CivilDate::new(b.year(), b.month(), b.day() - 1))
            .ok();
        let queries: [(&str, &str, &str, Option<kazashi_domain::CivilDate>, bool); 4] = [
            ("exact", name, kana, Some(b), true),
            ("reading_hiragana", name, &hira, Some(b), true),
            ("swapped", &swapped_name, &swapped_kana, Some(b), true),
            ("date_typo", name, kana, typo, false),
        ];
        for (kind, qn, qk, qb, want_likely) in queries {
            let t = Instant::now();
            let hits = index.find(qn, Some(qk), qb, e.sex, Some(address));
            times.push(ms(t));
            let ok = hits
                .iter()
                .any(|c| c.person == e.person && (!want_likely || c.score >= LIKELY));
            let f = found.entry(kind).or_default();
            f.0 += u32::from(ok);
            f.1 += 1;
        }
    }
    emit_percentiles(B, "lookup", &times, "ms", persons);
    for (kind, (ok, all)) in found {
        emit(
            B,
            &format!("lookup_found_{kind}"),
            f64::from(ok) / f64::from(all.max(1)),
            "ratio",
            persons,
        );
    }
    if let Some((rss, peak)) = crate::bench::memory_mib() {
        let _ = rss;
        emit(B, "peak_rss", peak, "MiB", persons);
    }
    Ok(())
}
