//! Roster import: every lint rule on a small fixture file, the three encodings, the mapping
//! file, the CSV round trip, and the encrypted roster store (lookup, search, pinning, a refused
//! import that changes nothing).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_domain::CivilDate;
use kazashi_domain::ids::{ListNumber, PersonId, RosterHash};
use kazashi_domain::roster::{CareNeed, RosterKind};
use kazashi_node::KdfParams;
use kazashi_node::roster_csv::{
    Lint, Mapping, ReadOptions, Rule, Severity, SourceEncoding, WriteEncoding, encode, read, write,
};
use kazashi_node::roster_db::{RosterDb, RosterDbError, sha256, text_path};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/roster")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn today() -> CivilDate {
    CivilDate::new(2026, 11, 21).unwrap()
}

fn opts(kind: RosterKind) -> ReadOptions {
    ReadOptions {
        kind,
        mapping: Mapping::default(),
        today: today(),
        encoding: None,
    }
}

/// The file is refused, for `rule`, at `line` (when given).
fn refused(name: &str, kind: RosterKind, rule: Rule, line: Option<u64>) -> Lint {
    let r = read(&fixture(name), &opts(kind), &mut |_, _| {});
    let lint = match r {
        Ok(_) => panic!("{name} was accepted"),
        Err(l) => l,
    };
    assert!(lint.has_errors(), "{name}");
    let f = lint
        .errors()
        .find(|f| f.rule == rule)
        .unwrap_or_else(|| panic!("{name}: no {rule:?} error in {:#?}", lint.findings));
    if line.is_some() {
        assert_eq!(f.line, line, "{name}: {f}");
    }
    lint
}

#[test]
fn one_roster_in_three_encodings() {
    let mut hashes = Vec::new();
    for (file, enc) in [
        ("residents_utf8.csv", SourceEncoding::Utf8),
        ("residents_bom.csv", SourceEncoding::Utf8Bom),
        ("residents_cp932.csv", SourceEncoding::Cp932),
    ] {
        let imp = read(&fixture(file), &opts(RosterKind::Residents), &mut |_, _| {})
            .unwrap_or_else(|l| panic!("{file}: {:#?}", l.findings));
        assert_eq!(imp.lint.encoding, Some(enc), "{file}");
        let hash = imp.hash();
        let roster = imp.clone().into_roster(today()).unwrap();
        assert_eq!(roster.hash(), hash, "the import's hash is the roster's");
        assert_eq!(roster.len(), 5);
        assert!(!imp.lint.has_errors());
        let a3 = roster.get(&PersonId::new("A0003").unwrap()).unwrap();
        // 異体字 kept as registered; 和暦 read.
        assert_eq!(a3.name.as_str(), "山﨑 一");
        assert_eq!(a3.birth_date, CivilDate::new(1980, 2, 29).unwrap());
        assert!(a3.care_needs.contains(&CareNeed::FoodAllergy));
        let a4 = roster.get(&PersonId::new("A0004").unwrap()).unwrap();
        assert_eq!(a4.name.as_str(), "山﨑 \"はな\"");
        assert_eq!(a4.address.as_str(), "かざし市港町二丁目3番4号, 101");
        assert_eq!(roster.household(&a4.household).len(), 2);
        hashes.push(hash);
    }
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "same roster, same hash"
    );
}

#[test]
fn a_mapping_file_renames_columns_and_unknown_fields_are_refused() {
    let map = String::from_utf8(fixture("residents_mapped.map")).unwrap();
    let mut o = opts(RosterKind::Residents);
    o.mapping = Mapping::parse(&map).unwrap();
    let imp = read(&fixture("residents_mapped.csv"), &o, &mut |_, _| {}).unwrap();
    assert_eq!(imp.len(), 1);
    // Without the mapping, the columns are missing.
    refused(
        "residents_mapped.csv",
        RosterKind::Residents,
        Rule::MissingColumn,
        Some(1),
    );
    assert!(
        Mapping::parse("given_name = 名")
            .unwrap_err()
            .contains("unknown field")
    );
    assert!(Mapping::parse("name").is_err());
}

#[test]
fn each_lint_rule_on_its_fixture() {
    let r = RosterKind::Residents;
    let v = RosterKind::Voters;
    refused("bad_encoding.csv", r, Rule::Encoding, Some(2));
    refused("missing_column.csv", r, Rule::MissingColumn, Some(1));
    let l = refused("individual_number.csv", r, Rule::IndividualNumber, Some(1));
    // The refusal names the column, never a value from it.
    assert!(
        l.findings
            .iter()
            .all(|f| !f.message.contains("000000000000"))
    );
    refused("duplicate_person.csv", r, Rule::DuplicatePerson, Some(3));
    let l = refused("impossible_date.csv", r, Rule::ImpossibleDate, Some(2));
    assert_eq!(
        l.counts.get(&Rule::ImpossibleDate),
        Some(&3),
        "{:#?}",
        l.findings
    );
    refused("empty_household.csv", r, Rule::EmptyHousehold, Some(3));
    refused("bad_csv.csv", r, Rule::Csv, Some(2));
    let l = refused("bad_value.csv", r, Rule::BadValue, Some(2));
    // Kana, sex and the care category: three findings on the one row.
    assert_eq!(l.counts.get(&Rule::BadValue), Some(&3), "{:#?}", l.findings);
    refused("header_only.csv", r, Rule::Empty, None);
    refused(
        "voters_missing_precinct.csv",
        v,
        Rule::MissingPrecinct,
        Some(2),
    );
    let l = refused(
        "voters_no_flag_columns.csv",
        v,
        Rule::MissingColumn,
        Some(1),
    );
    assert!(!l.vote_flags_present);
    assert!(l.errors().any(|f| f.message.contains("early_voted")));
    assert!(l.errors().any(|f| f.message.contains("absentee_voted")));
    refused("voters_empty_flag.csv", v, Rule::MissingVoteFlag, Some(2));
    refused(
        "voters_duplicate_list_number.csv",
        v,
        Rule::DuplicateListNumber,
        Some(3),
    );
    // Two ballots for one voter: refused in a voter list.
    refused(
        "voters_variant_duplicate.csv",
        v,
        Rule::VariantDuplicate,
        None,
    );
}

#[test]
fn variant_glyph_duplicates_are_a_warning_for_residents() {
    let imp = read(
        &fixture("variant_duplicate.csv"),
        &opts(RosterKind::Residents),
        &mut |_, _| {},
    )
    .unwrap();
    let w: Vec<_> = imp.lint.warnings().collect();
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0].rule, Rule::VariantDuplicate);
    assert_eq!(w[0].severity, Severity::Warning);
    assert!(w[0].message.contains("A0777") && w[0].message.contains("A0001"));
    // Findings name ids and lines, never names.
    assert!(!w[0].message.contains("高橋") && !w[0].message.contains("髙橋"));
}

#[test]
fn voters_with_flags_are_read() {
    let imp = read(
        &fixture("voters_ok.csv"),
        &opts(RosterKind::Voters),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(imp.lint.vote_flags_present);
    let voters = imp.into_roster(today()).unwrap();
    let v = voters
        .by_list_number(&ListNumber::new("1-0002").unwrap())
        .unwrap();
    let info = v.voter.as_ref().unwrap();
    assert!(info.flags.early_voted && !info.flags.absentee_voted && info.flags.eligible);
    assert_eq!(info.precinct.as_str(), "01");
    // A resident list is not a voter list: the same file read as residents drops nothing but
    // carries no voter information.
    let res = read(
        &fixture("voters_ok.csv"),
        &opts(RosterKind::Residents),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(res.entries.iter().all(|e| e.voter.is_none()));
}

#[test]
fn the_written_csv_reads_back_to_the_same_roster_in_both_encodings() {
    for kind in [RosterKind::Residents, RosterKind::Voters] {
        let file = match kind {
            RosterKind::Residents => "residents_utf8.csv",
            RosterKind::Voters => "voters_ok.csv",
        };
        let a = read(&fixture(file), &opts(kind), &mut |_, _| {})
            .unwrap()
            .into_roster(today())
            .unwrap();
        let text = write(&a);
        for enc in [WriteEncoding::Utf8Bom, WriteEncoding::Cp932] {
            let (bytes, report) = encode(&text, enc);
            assert_eq!(report.replaced_cells, 0);
            let b = read(&bytes, &opts(kind), &mut |_, _| {}).unwrap();
            assert_eq!(b.hash(), a.hash(), "{kind:?} {enc:?}");
        }
    }
}

#[test]
fn cp932_marks_and_counts_glyphs_it_cannot_hold() {
    let (bytes, report) = encode("氏名\r\n𠮷田 一,𠮷野\r\n佐藤\r\n", WriteEncoding::Cp932);
    assert_eq!(report.replaced_cells, 2);
    let (back, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!bad);
    assert_eq!(back, "氏名\r\n〓田 一,〓野\r\n佐藤\r\n");
}

fn roster_db(dir: &tempfile::TempDir, file: &str) -> (RosterDb, kazashi_domain::Roster) {
    let bytes = fixture(file);
    let imp = read(&bytes, &opts(RosterKind::Residents), &mut |_, _| {}).unwrap();
    let path = dir.path().join("roster.db");
    let mut seen = Vec::new();
    let db = RosterDb::create(
        &path,
        "pass",
        KdfParams::FAST_INSECURE,
        (&imp).into(),
        sha256(&bytes),
        &mut |d, t| seen.push((d, t)),
    )
    .unwrap();
    assert_eq!(seen.last(), Some(&(5, 5)), "progress ends at the total");
    (db, imp.into_roster(today()).unwrap())
}

/// A store at `path` with passphrase "pass", no source hash and no progress wanted.
fn new_store(path: &std::path::Path, rows: kazashi_node::roster_db::Rows<'_>) -> RosterDb {
    RosterDb::create(
        path,
        "pass",
        KdfParams::FAST_INSECURE,
        rows,
        [0; 32],
        &mut |_, _| {},
    )
    .unwrap()
}

#[test]
fn the_roster_store_is_encrypted_indexed_and_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let (db, roster) = roster_db(&dir, "residents_utf8.csv");
    assert_eq!(db.len(), 5);
    assert_eq!(db.hash(), roster.hash());
    // Encrypted: no name, reading or address in either file's bytes (the folded text is in
    // the text index file).
    for file in [db.path().to_owned(), text_path(db.path())] {
        let raw = std::fs::read(&file).unwrap();
        assert!(raw.len() > 4096, "{} holds the data", file.display());
        for needle in ["髙橋", "高橋", "タカハシ", "たかはし", "かざし市"] {
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in clear in {}",
                file.display()
            );
        }
    }
    assert!(matches!(
        RosterDb::open(db.path(), "wrong"),
        Err(RosterDbError::Store(
            kazashi_node::StoreError::WrongPassphrase
        ))
    ));
    // Lookup.
    let a1 = db.get(&PersonId::new("A0001").unwrap()).unwrap().unwrap();
    assert_eq!(a1.name.as_str(), "髙橋 太郎");
    assert!(db.get(&PersonId::new("A9999").unwrap()).unwrap().is_none());
    // Search: variant glyphs, kana in either script, short names, dates in 和暦, addresses.
    let ids = |q: &str| -> Vec<String> {
        db.search(q, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.person.to_string())
            .collect()
    };
    assert_eq!(ids("高橋"), ["A0001", "A0002"]);
    assert_eq!(ids("たかはし はなこ"), ["A0002"]);
    assert_eq!(ids("ヤマサキ"), Vec::<String>::new(), "ザ is not サ");
    assert_eq!(ids("山崎"), ["A0003", "A0004"]);
    assert_eq!(ids("渡辺"), ["A0005"]);
    assert_eq!(ids("S55.2.29"), ["A0003"]);
    assert_eq!(ids("山崎 昭和55年2月29日"), ["A0003"]);
    assert_eq!(ids("山崎 港町二丁目"), ["A0003", "A0004"]);
    assert_eq!(ids("山崎 北町"), Vec::<String>::new());
    // Candidates come from names, readings and birth dates: an address alone finds nobody.
    assert_eq!(ids("港町二丁目"), Vec::<String>::new());
    assert_eq!(ids("林"), Vec::<String>::new());
    assert_eq!(ids("髙"), ["A0001", "A0002"]);
    assert_eq!(ids("北町 わたなべ"), ["A0005"]);
    assert_eq!(db.search("高橋", 1).unwrap().len(), 1);
    // Load: the same roster, checked against the manifest's pin.
    let loaded = db.load(today(), Some(roster.hash())).unwrap();
    assert_eq!(loaded, roster);
    assert!(matches!(
        db.load(today(), Some(RosterHash([7; 32]))),
        Err(RosterDbError::NotPinned { .. })
    ));
}

#[test]
fn a_refused_import_leaves_the_roster_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (db, roster) = roster_db(&dir, "residents_utf8.csv");
    let path = db.path().to_owned();
    drop(db);
    let before = std::fs::read(&path).unwrap();
    let text_before = std::fs::read(text_path(&path)).unwrap();
    // The refused file never reaches the store.
    let bad = fixture("duplicate_person.csv");
    assert!(read(&bad, &opts(RosterKind::Residents), &mut |_, _| {}).is_err());
    // An import that replaces the roster is built beside it and swapped in whole.
    let other = read(
        &fixture("variant_duplicate.csv"),
        &opts(RosterKind::Residents),
        &mut |_, _| {},
    )
    .unwrap();
    let db = new_store(&path, (&other).into());
    assert_eq!(db.len(), 2);
    assert_ne!(std::fs::read(&path).unwrap(), before);
    assert_ne!(db.hash(), roster.hash());
    // A text index from another import (a half-copied folder) is refused, not searched.
    drop(db);
    std::fs::write(text_path(&path), text_before).unwrap();
    match RosterDb::open(&path, "pass") {
        Err(e) => assert!(e.to_string().contains("another import"), "{e}"),
        Ok(_) => panic!("opened a store with a stranger's index"),
    }
    for leftover in [
        "roster.db.part",
        "roster.db.part.text",
        "roster.db.part.kdf",
    ] {
        assert!(!dir.path().join(leftover).exists(), "{leftover}");
    }
}

/// A store bigger than one bulk statement (the lookup tables are appended 500 rows at a
/// time): every person by id and by 名簿番号, a birth date and a short name by range.
#[test]
fn a_store_of_many_bulk_batches_finds_everyone() {
    use kazashi_domain::Roster;
    use kazashi_domain::ids::{HouseholdId, PrecinctId};
    use kazashi_domain::roster::{RosterEntry, Sex, VoterFlags, VoterInfo};
    use kazashi_domain::text::{Address, KanaReading, PersonName};
    let families = [("佐藤", "さとう"), ("林", "はやし"), ("髙橋", "たかはし")];
    // More than one postings row (1024 rids) for each family name and for one birth date.
    const N: u32 = 3300;
    let entries: Vec<RosterEntry> = (0..N)
        .map(|i| {
            let (f, k) = families[i as usize % 3];
            RosterEntry {
                person: PersonId::new(&format!("P{i:05}")).unwrap(),
                household: HouseholdId::new(&format!("H{:05}", i / 3)).unwrap(),
                name: PersonName::new(&format!("{f} 一{}", i % 7)).unwrap(),
                kana: KanaReading::new(&format!("{k} いち")).unwrap(),
                birth_date: if i % 5 == 0 {
                    CivilDate::new(1950 + (i % 50) as i32, 1 + i % 12, 1 + i % 28).unwrap()
                } else {
                    CivilDate::new(1960, 5, 5).unwrap()
                },
                sex: Sex::Female,
                address: Address::new("かざし市港町一丁目").unwrap(),
                voter: Some(VoterInfo {
                    list_number: ListNumber::new(&format!("1-{i:05}")).unwrap(),
                    precinct: PrecinctId::new("1").unwrap(),
                    flags: VoterFlags {
                        eligible: true,
                        absentee_voted: false,
                        early_voted: false,
                    },
                }),
                care_needs: Default::default(),
                support_measure: false,
            }
        })
        .collect();
    let roster = Roster::new(RosterKind::Voters, entries, today()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = new_store(&dir.path().join("roster.db"), (&roster).into());
    for e in roster.entries() {
        assert_eq!(db.get(&e.person).unwrap().as_ref(), Some(e));
        let n = e.voter.as_ref().unwrap().list_number;
        assert_eq!(db.by_list_number(&n).unwrap().as_ref(), Some(e));
    }
    assert!(
        db.by_list_number(&ListNumber::new("9-99999").unwrap())
            .unwrap()
            .is_none()
    );
    // Everyone born on one day, found through the birth table: a rare day, and a day shared
    // by thousands, in roster order.
    for day in [
        roster.entries()[700].birth_date,
        CivilDate::new(1960, 5, 5).unwrap(),
    ] {
        let born: Vec<_> = roster
            .entries()
            .iter()
            .filter(|e| e.birth_date == day)
            .map(|e| e.person)
            .collect();
        let q = day.to_string().replace('-', "/");
        let found: Vec<_> = db
            .search(&q, 5000)
            .unwrap()
            .into_iter()
            .map(|e| e.person)
            .collect();
        assert_eq!(found, born, "{day}");
        assert_eq!(db.search(&q, 10).unwrap().len(), 10.min(born.len()));
    }
    assert!(CivilDate::new(1960, 5, 5).is_ok_and(|d| {
        roster
            .entries()
            .iter()
            .filter(|e| e.birth_date == d)
            .count()
            > 2048
    }));
    // A one-character family name by prefix range: every 林 (a third), up to the limit.
    assert_eq!(db.search("林", 2000).unwrap().len(), 1100);
    assert_eq!(db.search("はやし", 2000).unwrap().len(), 1100);
    assert_eq!(db.search("佐藤", 2000).unwrap().len(), 1100);
    assert_eq!(db.search("林", 20).unwrap().len(), 20);
    assert_eq!(db.load(today(), Some(roster.hash())).unwrap(), roster);
}

/// A roster whose ids and household ids are prefixes of each other ("1", "10", "100", "10-",
/// …), of every length, with one household of hundreds; and its ids.
fn prefix_roster() -> (kazashi_domain::Roster, Vec<String>) {
    use kazashi_domain::Roster;
    use kazashi_domain::ids::HouseholdId;
    use kazashi_domain::roster::{RosterEntry, Sex};
    use kazashi_domain::text::{Address, KanaReading, PersonName};
    // "1", "10", "100", "1000", "10000", "1001", ... : prefixes of each other, of every length.
    let mut ids: Vec<String> = Vec::new();
    for i in 1..=400u32 {
        ids.push(i.to_string());
        ids.push(format!("{i}0"));
        ids.push(format!("{i}0-"));
    }
    ids.push("Z".repeat(20));
    ids.sort();
    ids.dedup();
    let entries: Vec<RosterEntry> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| RosterEntry {
            person: PersonId::new(id).unwrap(),
            // Every tenth person in one household of hundreds; the rest in threes, keyed
            // "0", "1", ... "10", ... (prefixes of each other).
            household: HouseholdId::new(&if n % 10 == 0 {
                "BIG".to_owned()
            } else {
                (n / 3).to_string()
            })
            .unwrap(),
            name: PersonName::new("林 花子").unwrap(),
            kana: KanaReading::new("はやし はなこ").unwrap(),
            birth_date: CivilDate::new(1970, 1, 1).unwrap(),
            sex: Sex::Female,
            address: Address::new("かざし市港町一丁目").unwrap(),
            voter: None,
            care_needs: Default::default(),
            support_measure: false,
        })
        .collect();
    let roster = Roster::new(RosterKind::Residents, entries, today()).unwrap();
    (roster, ids)
}

/// `by_id` holds 64 ids a row and `by_household` 64 households, each found by the last row
/// keyed at or before it: ids and household ids of every length, prefixes of each other,
/// a household of hundreds, and keys that fall before, between and after the stored ones
/// (some in the gap a row's first key opens, some past the last row's end).
#[test]
fn ids_and_households_are_found_in_their_row_and_absent_ones_are_not() {
    use kazashi_domain::ids::HouseholdId;
    use kazashi_domain::roster::RosterEntry;
    let (roster, ids) = prefix_roster();
    assert!(roster.len() > 64 * 10, "many rows of ids");
    let dir = tempfile::tempdir().unwrap();
    let db = new_store(&dir.path().join("roster.db"), (&roster).into());
    for e in roster.entries() {
        assert_eq!(db.get(&e.person).unwrap().as_ref(), Some(e), "{}", e.person);
    }
    let stored: std::collections::HashSet<&str> = ids.iter().map(|s| s.as_str()).collect();
    let absent = [
        "0",
        "00",
        "0-",
        "1-",
        "10-0",
        "1001",
        "10000",
        "4001",
        "401",
        "99999",
        "A",
        "Z",
        "ZZZZZZZZZZZZZZZZZZZY",
        "_",
        "-",
    ];
    for id in absent {
        assert!(!stored.contains(id), "{id} is meant to be absent");
        assert!(
            db.get(&PersonId::new(id).unwrap()).unwrap().is_none(),
            "{id} is not in the roster"
        );
    }
    let mut households: Vec<HouseholdId> = roster.entries().iter().map(|e| e.household).collect();
    households.sort();
    households.dedup();
    assert!(households.len() > 64 * 3, "many rows of households");
    for h in &households {
        let want: Vec<RosterEntry> = roster
            .household(h)
            .iter()
            .map(|e| RosterEntry::clone(e))
            .collect();
        assert!(!want.is_empty());
        assert_eq!(db.household(h).unwrap(), want, "household {h}");
    }
    assert!(roster.household(&HouseholdId::new("BIG").unwrap()).len() > 100);
    for h in ["00", "0-", "1000000", "A", "BI", "BIG0", "BIGA", "Z", "-"] {
        let h = HouseholdId::new(h).unwrap();
        assert!(!households.contains(&h), "{h} is meant to be absent");
        assert!(db.household(&h).unwrap().is_empty(), "{h} has no members");
    }
    // Opened again from disk, the same.
    let path = db.path().to_owned();
    drop(db);
    let db = RosterDb::open(&path, "pass").unwrap();
    for e in roster.entries().iter().step_by(37) {
        assert_eq!(db.get(&e.person).unwrap().as_ref(), Some(e));
    }
    assert!(db.get(&PersonId::new("1001").unwrap()).unwrap().is_none());
}

/// A file of many kinds of rows — quoted cells holding commas, doubled quotes and line
/// breaks, a stray quote inside an unquoted cell, CRLF and LF endings, household rows, and
/// errors (bad dates, repeated ids, short rows) — `n` rows long.
fn tricky_csv(n: usize, with_errors: bool) -> Vec<u8> {
    let mut s = String::from("宛名番号,世帯番号,氏名,氏名カナ,生年月日,性別,住所,要配慮\r\n");
    for i in 0..n {
        let id = format!("T{i:05}");
        let hh = format!("H{:04}", i / 3);
        let end = if i % 4 == 0 { "\n" } else { "\r\n" };
        // Line breaks inside cells are read as such, and refused as values.
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
                i - 5
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

/// The rows are parsed in parts on several threads for big files: the result — entries,
/// lines in every finding, the findings kept and counted — must not depend on where the file
/// was cut, whatever the quoting around the cut.
#[test]
fn reading_in_parts_gives_what_reading_whole_gives() {
    use kazashi_node::roster_csv::read_in_parts;
    for with_errors in [false, true] {
        let bytes = tricky_csv(700, with_errors);
        let whole = read_in_parts(&bytes, &opts(RosterKind::Residents), &mut |_, _| {}, 1);
        match (&whole, with_errors) {
            (Ok(imp), false) => assert!(imp.len() > 400, "{}", imp.len()),
            (Err(lint), true) => {
                // A short row, an impossible date and a repeated id, each on its own line.
                assert!(lint.found(Rule::Csv) && lint.found(Rule::ImpossibleDate));
                assert!(lint.found(Rule::DuplicatePerson));
            }
            (Ok(_), true) => panic!("errors accepted"),
            (Err(l), false) => panic!("refused: {:#?}", l.findings),
        }
        for parts in [2, 3, 5, 8, 13, 50, 333] {
            let got = read_in_parts(&bytes, &opts(RosterKind::Residents), &mut |_, _| {}, parts);
            match (&whole, &got) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.entries, b.entries, "{parts} parts");
                    assert_eq!(a.folded, b.folded, "{parts} parts");
                    assert_eq!(a.lint, b.lint, "{parts} parts");
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{parts} parts"),
                _ => panic!("{parts} parts: accepted one way, refused the other"),
            }
        }
    }
    // The line of a finding after many multi-line cells is the line in the file.
    let bytes = tricky_csv(60, true);
    let lint = read_in_parts(&bytes, &opts(RosterKind::Residents), &mut |_, _| {}, 4).unwrap_err();
    let short = lint
        .errors()
        .find(|f| f.rule == Rule::Csv)
        .expect("the short row");
    // Row 6 (from 0) is the first short one; row 1 of every nine holds one line break and
    // row 3 two.
    let breaks_before: u64 = (0..6u64)
        .map(|i| match i % 9 {
            1 => 1,
            3 => 2,
            _ => 0,
        })
        .sum();
    assert_eq!(short.line, Some(2 + 6 + breaks_before), "{short}");
}

#[test]
fn the_support_measure_column_is_read_written_and_refused_when_unclear() {
    let csv = "宛名番号,世帯番号,氏名,氏名カナ,生年月日,性別,住所,支援措置\n\
               A0001,H001,髙橋 太郎,タカハシ タロウ,1950-04-01,1,かざし市中央一丁目1番1号,1\n\
               A0002,H002,髙橋 花子,タカハシ ハナコ,S30.7.15,2,かざし市中央一丁目1番1号,\n\
               A0003,H003,佐藤 一,サトウ ハジメ,1990-01-01,1,かざし市中央一丁目1番2号,あり\n";
    let roster = read(csv.as_bytes(), &opts(RosterKind::Residents), &mut |_, _| {})
        .unwrap()
        .into_roster(today())
        .unwrap();
    let flagged = |id: &str| {
        roster
            .get(&PersonId::new(id).unwrap())
            .unwrap()
            .support_measure
    };
    assert!(flagged("A0001") && !flagged("A0002") && flagged("A0003"));
    // The flag changes the roster hash (the manifest pins it) and survives the written CSV.
    let text = write(&roster);
    assert!(text.lines().next().unwrap().contains("支援措置"));
    let back = read(
        text.as_bytes(),
        &opts(RosterKind::Residents),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(back.hash(), roster.hash());
    let unflagged = read(
        csv.replace(",1\n", ",0\n")
            .replace(",あり\n", ",\n")
            .as_bytes(),
        &opts(RosterKind::Residents),
        &mut |_, _| {},
    )
    .unwrap();
    assert_ne!(unflagged.hash(), roster.hash());
    // A value that is neither yes nor no refuses the file: read wrong, it would disclose the
    // very people it protects.
    let unclear = csv.replace(",あり\n", ",要確認\n");
    let lint = match read(
        unclear.as_bytes(),
        &opts(RosterKind::Residents),
        &mut |_, _| {},
    ) {
        Ok(_) => panic!("an unclear 支援措置 value was accepted"),
        Err(l) => l,
    };
    assert!(
        lint.errors()
            .any(|f| f.rule == Rule::BadValue && f.line == Some(4))
    );
}

/// A store of an earlier layout (10: `by_household` as postings; 9: `by_id` a row an id too)
/// is still read its own way. Made here by rewriting a new store's two tables and its layout
/// as those layouts wrote them.
#[test]
fn a_store_of_an_earlier_layout_is_read_the_old_way() {
    use kazashi_domain::roster::RosterEntry;
    let (roster, _) = prefix_roster();
    for layout in [9u32, 10] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        let db = new_store(&path, (&roster).into());
        let conn = db.connection_for_tests();
        // Earlier layouts: every household's rids as one postings row (first rid, then
        // LEB128 deltas, the first 0), keyed by (household, first rid).
        conn.execute_batch(
            "DROP TABLE by_household;
             CREATE TABLE by_household (k TEXT, first INTEGER, rids BLOB NOT NULL,
                                        PRIMARY KEY (k, first)) WITHOUT ROWID;",
        )
        .unwrap();
        let mut households: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
        for (rid, e) in (0i64..).zip(roster.entries()) {
            households
                .entry(e.household.as_str())
                .or_default()
                .push(rid);
        }
        for (k, rids) in &households {
            let mut blob = Vec::new();
            let mut prev = rids[0];
            for &r in rids {
                kazashi_sync::wire::put_varint(&mut blob, u64::try_from(r - prev).unwrap());
                prev = r;
            }
            conn.execute(
                "INSERT INTO by_household (k, first, rids) VALUES (?1, ?2, ?3)",
                rusqlite::params![k, rids[0], blob],
            )
            .unwrap();
        }
        if layout == 9 {
            conn.execute_batch(
                "DROP TABLE by_id;
                 CREATE TABLE by_id (k TEXT PRIMARY KEY, rid INTEGER NOT NULL) WITHOUT ROWID;",
            )
            .unwrap();
            for (rid, e) in (0i64..).zip(roster.entries()) {
                conn.execute(
                    "INSERT INTO by_id (k, rid) VALUES (?1, ?2)",
                    rusqlite::params![e.person.as_str(), rid],
                )
                .unwrap();
            }
        }
        conn.execute(
            "UPDATE meta SET v = ?1 WHERE k = 'layout'",
            [layout.to_le_bytes().to_vec()],
        )
        .unwrap();
        drop(db);
        let db = RosterDb::open(&path, "pass").unwrap();
        for e in roster.entries() {
            assert_eq!(
                db.get(&e.person).unwrap().as_ref(),
                Some(e),
                "layout {layout}"
            );
            let want: Vec<RosterEntry> = roster
                .household(&e.household)
                .iter()
                .map(|x| RosterEntry::clone(x))
                .collect();
            assert_eq!(db.household(&e.household).unwrap(), want, "layout {layout}");
        }
        assert!(db.get(&PersonId::new("1001").unwrap()).unwrap().is_none());
    }
}

/// The builder of a roster received from a peer writes `by_id` as the entries come: entries out
/// of 宛名番号 order (even with a feed that ends well) are refused as not a roster, nothing
/// written; the same entries in order make a store that finds everyone.
#[test]
fn a_streamed_roster_out_of_order_is_refused_and_in_order_is_written() {
    use kazashi_node::roster_build::{Declared, Target, Unwritten, write_streamed};
    let (roster, _) = prefix_roster();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("got.db");
    let target = Target {
        path: &path,
        passphrase: "pass",
        kdf: KdfParams::FAST_INSECURE,
    };
    let declared = Declared {
        kind: RosterKind::Residents,
        total: roster.len() as u64,
        hash: roster.hash(),
        today: today(),
    };
    let mut swapped: Vec<_> = roster.entries().to_vec();
    swapped.swap(100, 101);
    let got = write_streamed::<()>(target, declared, &mut |sink| {
        for e in &swapped {
            sink(&postcard::to_allocvec(e).unwrap(), e.clone());
        }
        Ok(())
    });
    match got {
        Err(Unwritten::Invalid(m)) => assert!(m.contains("宛名番号 order"), "{m}"),
        Err(other) => panic!("refused for another reason: {other:?}"),
        Ok(_) => panic!("entries out of order were written"),
    }
    assert!(!path.exists(), "nothing written");
    let db = write_streamed::<()>(target, declared, &mut |sink| {
        for e in roster.entries() {
            sink(&postcard::to_allocvec(e).unwrap(), e.clone());
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(db.hash(), roster.hash());
    for e in roster.entries() {
        assert_eq!(db.get(&e.person).unwrap().as_ref(), Some(e));
    }
}
