//! The streamed roster import (`roster_import::import_file`, what `kazashi roster import`
//! runs) against the linter that reads a file whole (`roster_csv::read`): the same findings on
//! every fixture, the same roster hash (what the manifest pins) and the same store; a file
//! refused near its end leaves nothing behind and names the row; an unsorted file gives the
//! same store as a sorted one.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_domain::CivilDate;
use kazashi_domain::roster::RosterKind;
use kazashi_node::KdfParams;
use kazashi_node::roster_csv::{Lint, Mapping, ReadOptions, Rule, read};
use kazashi_node::roster_db::{RosterDb, Rows, sha256};
use kazashi_node::roster_import::{ImportError, ImportOptions, import_file, import_file_in_chunks};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/roster")
}

fn read_opts(kind: RosterKind, mapping: Mapping) -> ReadOptions {
    ReadOptions {
        kind,
        mapping,
        today: CivilDate::new(2026, 11, 21).unwrap(),
        encoding: None,
    }
}

fn import(
    src: &Path,
    out: &Path,
    read: &ReadOptions,
    chunk: usize,
) -> Result<(RosterDb, Lint), ImportError> {
    let opts = ImportOptions {
        read,
        passphrase: "pass",
        params: KdfParams::FAST_INSECURE,
        expect: None,
    };
    import_file_in_chunks(src, out, &opts, &mut |_, _, _| {}, chunk)
}

/// The names of the files in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `bytes` imported streamed in chunks of `chunk` bytes and read whole: the same verdict,
/// findings, hash and entries.
fn agree(bytes: &[u8], read_o: &ReadOptions, chunk: usize, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.csv");
    std::fs::write(&src, bytes).unwrap();
    let out = dir.path().join("roster.db");
    let whole = read(bytes, read_o, &mut |_, _| {});
    let streamed = import(&src, &out, read_o, chunk);
    match (whole, streamed) {
        (Ok(imp), Ok((db, lint))) => {
            assert_eq!(lint, imp.lint, "{what}");
            assert_eq!(db.hash(), imp.hash(), "{what}: the pinned hash");
            assert_eq!(db.len(), imp.len() as u64, "{what}");
            // The same store as the in-memory path writes, entry by entry.
            let other = dir.path().join("other.db");
            let mem = RosterDb::create(
                &other,
                "pass",
                KdfParams::FAST_INSECURE,
                Rows::from(&imp),
                sha256(bytes),
                &mut |_, _| {},
            )
            .unwrap();
            assert_eq!(mem.hash(), db.hash(), "{what}");
            for (i, e) in imp.entries.iter().enumerate() {
                assert_eq!(db.get(&e.person).unwrap().as_ref(), Some(e), "{what}");
                if i % 7 != 0 {
                    continue;
                }
                if let Some(v) = &e.voter {
                    assert_eq!(
                        db.by_list_number(&v.list_number).unwrap().as_ref(),
                        Some(e),
                        "{what}"
                    );
                }
                assert_eq!(
                    db.household(&e.household).unwrap(),
                    mem.household(&e.household).unwrap(),
                    "{what}"
                );
                let family: String = e.name.as_str().chars().take(2).collect();
                for q in [e.name.as_str(), e.kana.as_str(), family.as_str()] {
                    assert_eq!(
                        db.search(q, 50).unwrap(),
                        mem.search(q, 50).unwrap(),
                        "{what}: {q}"
                    );
                }
                let folded = kazashi_domain::normalize::fold(e.name.as_str());
                assert_eq!(
                    db.named(&folded, 50).unwrap(),
                    mem.named(&folded, 50).unwrap()
                );
                assert_eq!(
                    db.born_on(e.birth_date).unwrap(),
                    mem.born_on(e.birth_date).unwrap()
                );
            }
            db.verify(Some(imp.hash())).unwrap();
        }
        (Err(a), Err(ImportError::Refused(b))) => {
            assert_eq!(b, a, "{what}");
            assert_eq!(files(dir.path()), vec!["in.csv"], "{what}: files left");
        }
        (Ok(_), Err(e)) => panic!("{what}: accepted whole, refused streamed: {e}"),
        (Err(l), Ok(_)) => panic!("{what}: refused whole, accepted streamed: {l:#?}"),
        (Err(_), Err(e)) => panic!("{what}: refused whole, failed streamed: {e}"),
    }
}

#[test]
fn every_fixture_gets_the_findings_and_hash_of_the_linter() {
    let mut names: Vec<String> = files(&fixtures())
        .into_iter()
        .filter(|f| f.ends_with(".csv"))
        .collect();
    names.sort();
    assert!(names.len() >= 20);
    for name in names {
        let bytes = std::fs::read(fixtures().join(&name)).unwrap();
        let kind = if name.starts_with("voters") {
            RosterKind::Voters
        } else {
            RosterKind::Residents
        };
        let mapping = if name == "residents_mapped.csv" {
            Mapping::parse(
                &std::fs::read_to_string(fixtures().join("residents_mapped.map")).unwrap(),
            )
            .unwrap()
        } else {
            Mapping::default()
        };
        for chunk in [16, 1 << 22] {
            agree(
                &bytes,
                &read_opts(kind, mapping.clone()),
                chunk,
                &format!("{name} in chunks of {chunk}"),
            );
        }
    }
}

/// Quoted cells with commas, doubled quotes and line breaks, CRLF and LF, household rows,
/// and (with errors) bad dates, repeated ids and short rows.
fn tricky_csv(n: usize, with_errors: bool) -> Vec<u8> {
    let mut s = String::from("宛名番号,世帯番号,氏名,氏名カナ,生年月日,性別,住所,要配慮\r\n");
    for i in 0..n {
        let id = format!("T{:05}", (i * 7919) % n);
        let hh = format!("H{:04}", i / 3);
        let end = if i % 4 == 0 { "\n" } else { "\r\n" };
        let br = if with_errors { "\n" } else { " " };
        let row = match i % 9 {
            0 => format!("{id},{hh},佐藤 一郎,サトウ イチロウ,1970-01-02,1,かざし市東町1,"),
            1 => format!(
                "{id},{hh},\"山﨑 \"\"はな\"\"\",ヤマザキ ハナ,S30.7.15,2,\"かざし市港町2,{br}101\",服薬"
            ),
            2 => format!("{id},{hh},高橋 5\"太,タカハシ タ,1980-03-04,1,かざし市北町\"3\",乳幼児"),
            3 => format!(
                "{id},{hh},\"渡辺{br}さくら\",ワタナベ サクラ,2001-02-03,2,\"北町,\"\"5\"\"{br}番地\",要介護"
            ),
            4 if with_errors && i % 36 == 4 => {
                format!("{id},{hh},鈴木 花,スズキ ハナ,1999-02-30,2,東町,")
            }
            5 if with_errors && i % 45 == 5 => format!(
                "T{:05},{hh},鈴木 次郎,スズキ ジロウ,1990-01-01,1,東町,",
                ((i - 5) * 7919) % n
            ),
            6 if with_errors && i % 54 == 6 => format!("{id},{hh},短い 行"),
            7 => format!(",{hh},,,,,,"),
            _ => format!("{id},{hh},\"田中, 三郎\",タナカ サブロウ,平成2年4月5日,9,\"南町\",\"\""),
        };
        s.push_str(&row);
        s.push_str(end);
    }
    s.into_bytes()
}

/// Wherever the text is cut into chunks — inside quotes, between a CR and its LF, inside a
/// doubled quote — the streamed import agrees with the whole read; the ids are out of order,
/// so the store is written through the stage in id order.
#[test]
fn tricky_files_in_any_chunks_agree_with_the_whole_read() {
    for with_errors in [false, true] {
        let bytes = tricky_csv(400, with_errors);
        for chunk in [16, 17, 100, 4096, 1 << 22] {
            agree(
                &bytes,
                &read_opts(RosterKind::Residents, Mapping::default()),
                chunk,
                &format!("errors {with_errors}, chunks of {chunk}"),
            );
        }
    }
}

/// A generated residents file of `n` rows in id order (ids `P0000000`…), each household of
/// three, with `bad` (row index) given an impossible birth date.
fn big_csv(n: usize, bad: Option<usize>) -> Vec<u8> {
    let family = ["佐藤", "鈴木", "髙橋", "田中", "渡辺", "林"];
    let kana = [
        "サトウ",
        "スズキ",
        "タカハシ",
        "タナカ",
        "ワタナベ",
        "ハヤシ",
    ];
    let given = ["一郎", "花子", "太郎", "さくら", "健", "美穂", "翔"];
    let gkana = [
        "イチロウ",
        "ハナコ",
        "タロウ",
        "サクラ",
        "ケン",
        "ミホ",
        "ショウ",
    ];
    let mut s =
        String::from("宛名番号,世帯番号,氏名,氏名カナ,生年月日,性別,住所,要配慮,支援措置\r\n");
    for i in 0..n {
        let (f, g) = (i % family.len(), (i / 6) % given.len());
        let birth = if Some(i) == bad {
            "1990-02-30".to_owned()
        } else {
            format!(
                "{}-{:02}-{:02}",
                1930 + i % 90,
                1 + i % 12,
                1 + (i / 12) % 28
            )
        };
        s.push_str(&format!(
            "P{i:07},H{:07},{} {},{} {},{birth},{},かざし市港町{}丁目{}番,{},{}\r\n",
            i / 3,
            family[f],
            given[g],
            kana[f],
            gkana[g],
            1 + i % 2,
            1 + i % 9,
            i % 40,
            if i % 97 == 0 { "服薬" } else { "" },
            u8::from(i % 501 == 0),
        ));
    }
    s.into_bytes()
}

/// A 50,000-row file with one impossible date on its 49,990th row: refused with that row's
/// line and 宛名番号, and nothing of it is left — no new store, no part or stage file, and the
/// roster imported before is still there, whole, with its hash.
#[test]
fn a_bad_row_near_the_end_of_a_large_file_leaves_no_roster_and_names_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("roster.db");
    let r = read_opts(RosterKind::Residents, Mapping::default());
    // Without a roster before: nothing at all is written.
    let src = dir.path().join("big.csv");
    std::fs::write(&src, big_csv(50_000, Some(49_989))).unwrap();
    let opts = ImportOptions {
        read: &r,
        passphrase: "pass",
        params: KdfParams::FAST_INSECURE,
        expect: None,
    };
    let refused = |out: &Path| match import_file(&src, out, &opts, &mut |_, _, _| {}) {
        Err(ImportError::Refused(lint)) => lint,
        Err(e) => panic!("failed otherwise: {e}"),
        Ok(_) => panic!("a file with an impossible date was imported"),
    };
    let lint = refused(&out);
    assert_eq!(lint.rows, 50_000);
    assert_eq!(lint.error_count(), 1, "{:#?}", lint.findings);
    let f = lint.errors().next().unwrap();
    assert_eq!(f.rule, Rule::ImpossibleDate);
    // The header is line 1: row 49,990 is line 49,991.
    assert_eq!(f.line, Some(49_991), "{f}");
    assert!(f.message.contains("P0049989"), "{f}");
    assert_eq!(files(dir.path()), vec!["big.csv"]);

    // With a roster before: it stays as it was.
    let good = dir.path().join("good.csv");
    std::fs::write(&good, big_csv(2_000, None)).unwrap();
    let (before, _) = import_file(&good, &out, &opts, &mut |_, _, _| {}).unwrap();
    let hash = before.hash();
    drop(before);
    let files_before = files(dir.path());
    let lint = refused(&out);
    assert_eq!(lint.errors().next().unwrap().line, Some(49_991));
    assert_eq!(files(dir.path()), files_before);
    let db = RosterDb::open(&out, "pass").unwrap();
    assert_eq!((db.hash(), db.len()), (hash, 2_000));
    db.verify(Some(hash)).unwrap();

    // A pinned hash other than the file's: refused the same way, the old roster kept.
    let fixed = dir.path().join("fixed.csv");
    std::fs::write(&fixed, big_csv(50_000, None)).unwrap();
    let pinned = ImportOptions {
        expect: Some(hash),
        ..opts
    };
    match import_file(&fixed, &out, &pinned, &mut |_, _, _| {}) {
        Err(ImportError::NotPinned { .. }) => {}
        other => panic!("not refused for its hash: {:?}", other.map(|x| x.0)),
    }
    assert_eq!(files(dir.path()), {
        let mut f = files_before.clone();
        f.push("fixed.csv".into());
        f.sort();
        f
    });
    assert_eq!(RosterDb::open(&out, "pass").unwrap().hash(), hash);
}

/// The same rows in another order give the same roster hash and the same store: the hash a
/// manifest pins depends on the roster, not on the order of the export.
#[test]
fn an_unsorted_file_gives_the_store_and_hash_of_a_sorted_one() {
    let bytes = big_csv(20_000, None);
    let text = String::from_utf8(bytes.clone()).unwrap();
    let mut lines: Vec<&str> = text.split_inclusive("\r\n").collect();
    let header = lines.remove(0);
    // A fixed shuffle.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..lines.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lines.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let shuffled: String = std::iter::once(header).chain(lines).collect();
    let dir = tempfile::tempdir().unwrap();
    let r = read_opts(RosterKind::Residents, Mapping::default());
    // Each name and birth date comes back every 5,040 rows (variant duplicates, warnings for
    // residents: three rows in four), more rows than the cross-row checks read at a time.
    let whole = read(&bytes, &r, &mut |_, _| {}).unwrap();
    let variants = whole.lint.counts.get(&Rule::VariantDuplicate).copied();
    assert!(variants > Some(14_000), "{variants:?} variant duplicates");
    let mut hashes = Vec::new();
    for (name, b) in [("sorted", bytes), ("shuffled", shuffled.into_bytes())] {
        let src = dir.path().join(format!("{name}.csv"));
        std::fs::write(&src, &b).unwrap();
        let (db, lint) = import(&src, &dir.path().join(format!("{name}.db")), &r, 1 << 16).unwrap();
        // The findings of the whole read, whichever way the rows went to the store.
        assert_eq!(lint, read(&b, &r, &mut |_, _| {}).unwrap().lint, "{name}");
        assert_eq!(
            lint.counts.get(&Rule::VariantDuplicate).copied(),
            variants,
            "{name}"
        );
        assert_eq!(db.len(), 20_000);
        let mut first = Vec::new();
        db.for_each_entry(&mut |e| {
            if first.len() < 3 {
                first.push(e.person.to_string());
            }
        })
        .unwrap();
        assert_eq!(first, ["P0000000", "P0000001", "P0000002"], "{name}");
        assert_eq!(db.search("佐藤", 5).unwrap().len(), 5);
        hashes.push(db.hash());
    }
    assert_eq!(hashes[0], hashes[1]);
    // And it is the hash of the roster read whole.
    assert_eq!(whole.hash(), hashes[0]);
}
